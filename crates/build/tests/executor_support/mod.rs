//! Shared fixtures of the executor tests: privilege checks, a cached Debian
//! minbase rootfs (built with mmdebstrap once, under a file lock), scratch
//! dirs, and an upper-dir summary to compare snapshotters.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use distill_build::executor::{Runtime, SnapshotterKind};

pub const CACHE: &str = "/var/tmp/distill-test";
const TARBALL: &str = "bookworm-minbase.tar";
const LOWER: &str = "exec-lower-bookworm-minbase";

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn skip_or_fail(what: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but {what}: the executor tests need root, runc and overlayfs");
    }
    // Straight to the stderr fd: libtest's capture only catches eprintln!.
    let msg = format!("\n!!!!!!!!!! SKIPPED: {what} (the executor tests need root, runc and overlayfs) !!!!!!!!!!\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), msg.as_bytes());
    false
}

/// Root (for mounts): true, or skip loudly (fail under CI=true).
pub fn require_root() -> bool {
    if !is_root() {
        return skip_or_fail("not running as root");
    }
    true
}

/// Root and runc: the runtime to use, or skip loudly (fail under CI=true).
pub fn require_runc() -> Option<Runtime> {
    if !require_root() {
        return None;
    }
    match Runtime::resolve(None) {
        Ok(r) => Some(r),
        Err(e) => {
            skip_or_fail(&format!("{e}"));
            None
        }
    }
}

/// The extracted Debian bookworm minbase rootfs, in overlay lower-dir form.
/// Built once (mmdebstrap, ~30 s) and cached across runs; a file lock makes
/// concurrent test processes wait for one another.
pub fn base_lower() -> PathBuf {
    let cache = Path::new(CACHE);
    fs::create_dir_all(cache).unwrap();
    let lower = cache.join(LOWER);
    if lower.is_dir() {
        return lower;
    }
    let lock = fs::File::create(cache.join("bookworm-minbase.lock")).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    if lower.is_dir() {
        return lower;
    }
    let tarball = cache.join(TARBALL);
    if !tarball.is_file() {
        if Command::new("mmdebstrap").arg("--version").output().is_err() {
            let ok = Command::new("apt-get")
                .args(["install", "-y", "-qq", "--no-install-recommends", "mmdebstrap"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "mmdebstrap is missing and apt-get install mmdebstrap failed");
        }
        let tmp = cache.join(format!("bookworm-minbase.tmp-{}.tar", std::process::id()));
        let out = Command::new("mmdebstrap")
            .args(["--variant=minbase", "--quiet", "bookworm"])
            .arg(&tmp)
            .output()
            .expect("running mmdebstrap");
        assert!(out.status.success(), "mmdebstrap failed: {}", String::from_utf8_lossy(&out.stderr));
        fs::rename(&tmp, &tarball).unwrap();
    }
    let tmp = cache.join(format!("{LOWER}.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).unwrap();
    let out = Command::new("tar")
        .args(["-x", "--numeric-owner", "-p", "--xattrs", "--xattrs-include=*", "-f"])
        .arg(&tarball)
        .arg("-C")
        .arg(&tmp)
        .output()
        .expect("running tar");
    assert!(out.status.success(), "tar -x failed: {}", String::from_utf8_lossy(&out.stderr));
    fs::rename(&tmp, &lower).unwrap();
    lower
}

/// A scratch dir under the cache, removed (after unmounting anything left
/// under it, which a test then reports) on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = Path::new(CACHE).join("exec-scratch").join(format!(
            "{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for m in mounts_under(&self.0).into_iter().rev() {
            let _ = rustix::mount::unmount(&m, rustix::mount::UnmountFlags::DETACH);
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Mount points at or below `dir`, from /proc/self/mountinfo.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// What an upper dir holds, per path: type, mode, owner, and content (file
/// bytes, link target, device number), plus the opaque marker. Directory
/// mtimes are left out: two runs never share them.
pub fn summarize(upper: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(upper, upper, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let mut names: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    for n in names {
        let p = dir.join(&n);
        let rel = format!("/{}", p.strip_prefix(root).unwrap().display());
        let m = fs::symlink_metadata(&p).unwrap();
        let ft = m.file_type();
        let owner = format!("{:o} {}:{}", m.mode() & 0o7777, m.uid(), m.gid());
        let desc = if ft.is_dir() {
            let opaque = rustix::fs::lgetxattr(&p, "trusted.overlay.opaque", &mut [0u8; 8][..]).is_ok();
            format!("dir {owner}{}", if opaque { " opaque" } else { "" })
        } else if ft.is_char_device() && m.rdev() == 0 {
            "whiteout".to_string()
        } else if ft.is_symlink() {
            format!("symlink -> {}", fs::read_link(&p).unwrap().display())
        } else if ft.is_file() {
            let bytes = fs::read(&p).unwrap();
            let text = if bytes.len() < 200 {
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                format!("{} bytes", bytes.len())
            };
            format!("file {owner} {text:?}")
        } else {
            format!("special {owner} {:x}", m.rdev())
        };
        out.insert(rel, desc);
        if ft.is_dir() {
            walk(root, &p, out);
        }
    }
}

/// The snapshotter kinds to exercise.
pub const KINDS: [SnapshotterKind; 2] = [SnapshotterKind::Overlay, SnapshotterKind::Naive];
