//! Helpers for the `image_*` tests: scratch directories, running the real
//! `distill` binary against a scratch store, gating on root and external
//! tools (a loud skip locally, a failure when `CI=true`), root file system
//! tars, and the shared mmdebstrap base rootfs.
#![allow(dead_code)]

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// A scratch directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let p = std::env::temp_dir().join(format!(
            "distill-image-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// A directory with a short path (podman limits its run root to 50 bytes).
    pub fn short(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = PathBuf::from(format!("/tmp/d{tag}{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether the test can go on: false (with a loud message) when `what` is
/// missing locally; a panic in CI, where everything must be there.
fn gate(ok: bool, test: &str, what: &str) -> bool {
    if !ok {
        assert!(!in_ci(), "{test}: {what} is required when CI=true");
        eprintln!("\n*** SKIPPED {test}: {what} is not available ***\n");
    }
    ok
}

/// Effective uid 0, from /proc (no libc binding needed in tests).
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
            .unwrap_or(false)
    })
}

pub fn require_root(test: &str) -> bool {
    gate(is_root(), test, "root")
}

pub fn have_tool(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn require_tools(test: &str, tools: &[&str]) -> bool {
    tools.iter().all(|t| gate(have_tool(t), test, t))
}

/// The distill binary with `DISTILL_ROOT` set to `root`.
pub fn distill_cmd(root: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_distill"));
    cmd.env("DISTILL_ROOT", root).env_remove("SOURCE_DATE_EPOCH").stdin(Stdio::null());
    cmd
}

/// Runs distill and returns its output, whatever the exit status.
pub fn distill(root: &Path, args: &[&str]) -> Output {
    distill_cmd(root).args(args).output().expect("runs distill")
}

/// Runs distill, asserting success; returns stdout.
pub fn distill_ok(root: &Path, args: &[&str]) -> String {
    let out = distill(root, args);
    assert!(out.status.success(), "distill {args:?} failed:\n{}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a command, asserting success; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

/// Deterministic bytes that do not compress much (xorshift).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A small root file system tar made with GNU tar from a scratch tree:
/// `/bin/hello` (a shell script), `/etc/os-release`, and `extra_bytes` of
/// noise split over files under `/data`.
pub fn make_rootfs(dir: &Path, name: &str, seed: u64, extra_bytes: usize) -> PathBuf {
    let tree = dir.join(format!("{name}-tree"));
    fs::create_dir_all(tree.join("bin")).unwrap();
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::create_dir_all(tree.join("data")).unwrap();
    fs::write(tree.join("bin/hello"), format!("#!/bin/sh\necho hello {seed}\n")).unwrap();
    fs::write(tree.join("etc/os-release"), "ID=distill-test\n").unwrap();
    let chunk = 1 << 20;
    let mut left = extra_bytes;
    let mut i = 0;
    while left > 0 {
        let n = left.min(chunk);
        fs::write(tree.join(format!("data/blob{i:04}")), noise(n, seed + i as u64)).unwrap();
        left -= n;
        i += 1;
    }
    let tar = dir.join(format!("{name}.tar"));
    run(Command::new("tar")
        .args(["--sort=name", "--mtime=@1700000000", "--owner=0", "--group=0", "--numeric-owner", "-C"])
        .arg(&tree)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    fs::remove_dir_all(&tree).unwrap();
    tar
}

/// A Debian bookworm minbase root file system with python3, built once with
/// mmdebstrap into a shared cache (`$DISTILL_TEST_CACHE`, default
/// `/var/tmp/distill-test`) under a file lock, so parallel tests share it.
/// `None` (after a loud skip) when mmdebstrap is missing outside CI.
pub fn bookworm_python_rootfs(test: &str) -> Option<PathBuf> {
    if !require_root(test) || !require_tools(test, &["mmdebstrap"]) {
        return None;
    }
    let dir = std::env::var_os("DISTILL_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/distill-test"));
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bookworm-python3.tar");
    let lock = File::create(dir.join("bookworm-python3.lock")).unwrap();
    lock.lock().unwrap();
    if path.metadata().is_ok_and(|m| m.len() > 0) {
        return Some(path);
    }
    let tmp = dir.join(format!("bookworm-python3.tar.partial-{}", std::process::id()));
    let mut last_err = String::new();
    // The Debian mirror is over the network: retry once.
    for _ in 0..2 {
        let out = Command::new("mmdebstrap")
            .args(["--variant=minbase", "--include=python3", "--quiet", "bookworm"])
            .arg(&tmp)
            .output()
            .expect("runs mmdebstrap");
        if out.status.success() {
            fs::rename(&tmp, &path).unwrap();
            File::open(&dir).unwrap().sync_all().unwrap();
            return Some(path);
        }
        last_err = stderr(&out);
        let _ = fs::remove_file(&tmp);
    }
    panic!("mmdebstrap failed:\n{last_err}");
}

/// Writes `data` to `path`.
pub fn write(path: &Path, data: &[u8]) {
    File::create(path).unwrap().write_all(data).unwrap();
}

/// sha256 hex of a file, via the image crate.
pub fn sha256_file(path: &Path) -> String {
    distill_image::digest::Digest::of(&fs::read(path).unwrap()).hex()
}
