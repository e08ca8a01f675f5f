//! The fanotify trace on a real overlayfs mount (as root): files opened
//! through the mount are reported by their path inside it, also when opened
//! from another mount namespace (as runc's containers do).

use std::fs;
use std::path::Path;
use std::process::Command;

use distill_slim::trace::Tracer;

fn skip(what: &str) -> bool {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} (CI=true: this test must run)");
    }
    eprintln!("SKIPPED: {what}");
    true
}

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount_overlay(dir: &Path) -> Mount {
    for d in ["lower/etc", "upper", "work", "merged"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    fs::write(dir.join("lower/etc/app.conf"), "x").unwrap();
    fs::write(dir.join("lower/unused"), "y").unwrap();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        dir.join("lower").display(),
        dir.join("upper").display(),
        dir.join("work").display()
    );
    let st =
        Command::new("mount").args(["-t", "overlay", "overlay", "-o", &opts]).arg(dir.join("merged")).status().unwrap();
    assert!(st.success(), "mounting overlayfs");
    Mount(dir.join("merged"))
}

#[test]
fn opens_through_an_overlay_mount_are_traced() {
    if !rustix::process::geteuid().is_root() && skip("not root (fanotify and mount need it)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let m = mount_overlay(dir.path());
    let tracer = Tracer::start(&m.0).unwrap();
    // Another process, in its own mount namespace, like a container.
    let st = Command::new("unshare").args(["-m", "cat"]).arg(m.0.join("etc/app.conf")).status().unwrap();
    assert!(st.success());
    let seen = tracer.finish();
    assert!(seen.contains("/etc/app.conf"), "{seen:?}");
    assert!(!seen.contains("/unused"), "{seen:?}");
}
