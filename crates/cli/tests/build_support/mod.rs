//! Helpers for tests that build real images with `distill build`.
//!
//! - Gating: [`require_root`], [`require_tools`], [`require_build`] skip a
//!   test loudly (a `*** SKIPPED … ***` banner on stderr) when something is
//!   missing locally; with `CI=true` they fail it instead.
//! - Stores: [`TestStore::with_base_images`] gives a scratch store (its own
//!   `DISTILL_ROOT`) that already holds the Debian base images
//!   ([`DEBIAN`], [`DEBIAN_PYTHON`], [`DEBIAN_GCC`]) in well under a second:
//!   `scripts/base-images` fills a *seed* store once (cached under
//!   [`cache_dir`], guarded by a file lock), and every test gets a copy whose
//!   immutable `blobs/` and `snapshots/` are hard links. [`TestStore::empty`]
//!   is a store with nothing in it.
//! - Commands: [`TestStore::distill`] / [`TestStore::build`] run the real
//!   binary and return a [`CmdOutput`] (exit code, stdout, stderr);
//!   [`TestStore::run_image`] runs an image under runc (OCI archive →
//!   `umoci unpack` → `runc run`); [`TestStore::image_config`] reads the
//!   image config exactly as stored; [`TestStore::export_rootfs`] extracts
//!   the flattened root file system.
//!
//! A store copy shares the seed's blob and snapshot files (hard links): a
//! test must never write into those files in place (a corruption test
//! should use [`TestStore::empty`] and import what it needs).
#![allow(dead_code)]

use std::fmt;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use serde_json::Value;

/// `FROM debian:bookworm`: Debian 12 minbase (mmdebstrap).
pub const DEBIAN: &str = "debian:bookworm";
/// `FROM debian-python:bookworm`: minbase + python3 (the calculator example).
pub const DEBIAN_PYTHON: &str = "debian-python:bookworm";
/// `FROM debian-gcc:bookworm`: minbase + gcc and libc6-dev.
pub const DEBIAN_GCC: &str = "debian-gcc:bookworm";
/// `FROM debian-dev:bookworm`: minbase + gcc, libc6-dev, libssl-dev, rustc (examples/).
pub const DEBIAN_DEV: &str = "debian-dev:bookworm";
/// Every base image of the seed store.
pub const BASE_IMAGES: [&str; 4] = [DEBIAN, DEBIAN_PYTHON, DEBIAN_GCC, DEBIAN_DEV];

/// The rootfs tars `scripts/base-images` builds in the cache (the same files
/// `image_support` and the build crate's executor tests use).
const BASE_TARS: [&str; 4] = ["bookworm-minbase.tar", "bookworm-python3.tar", "bookworm-gcc.tar", "bookworm-dev.tar"];
/// Bump when the seed store must be rebuilt for reasons the key cannot see.
const SEED_FORMAT: u32 = 1;

// ---------------------------------------------------------------------------
// Gating

/// Whether this is CI (`CI=true`): there, missing prerequisites fail tests.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether the test can go on: `false` after a loud message when `what` is
/// missing locally; a panic under `CI=true`.
pub fn gate(ok: bool, test: &str, what: &str) -> bool {
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

pub fn have_tool(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn require_root(test: &str) -> bool {
    gate(is_root(), test, "root")
}

pub fn require_tools(test: &str, tools: &[&str]) -> bool {
    tools.iter().all(|t| gate(have_tool(t), test, t))
}

/// Whether the binary has a `build` command.
pub fn has_build_command() -> bool {
    Command::new(distill_bin()).args(["build", "--help"]).output().is_ok_and(|o| o.status.success())
}

/// Gate on `distill build` existing (and, since building runs containers,
/// on root and runc).
pub fn require_build(test: &str) -> bool {
    require_root(test) && require_tools(test, &["runc"]) && gate(has_build_command(), test, "`distill build`")
}

// ---------------------------------------------------------------------------
// Paths

/// The `distill` binary under test.
pub fn distill_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_distill"))
}

/// The workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// `crates/cli/tests/build_fixtures`.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/build_fixtures")
}

/// The shared test cache: `$DISTILL_TEST_CACHE`, default `/var/tmp/distill-test`.
pub fn cache_dir() -> PathBuf {
    let dir = std::env::var_os("DISTILL_TEST_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/distill-test"));
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// An exclusive `flock` on `<cache>/<name>.lock`, released when dropped.
pub fn cache_lock(name: &str) -> File {
    let lock = File::create(cache_dir().join(format!("{name}.lock"))).unwrap();
    lock.lock().unwrap();
    lock
}

// ---------------------------------------------------------------------------
// Scratch directories

/// A scratch directory removed on drop. It lives under the cache dir (same
/// file system as the seed store, so hard links work).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = cache_dir().join("scratch").join(format!(
            "{tag}-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos()
        ));
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.0.join(p)
    }

    /// Keeps the directory (for debugging a failure); returns its path.
    pub fn keep(self) -> PathBuf {
        let p = self.0.clone();
        std::mem::forget(self);
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("DISTILL_TEST_KEEP").is_some() {
            eprintln!("kept {}", self.0.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// Commands

/// What a finished command gave back.
#[derive(Clone)]
pub struct CmdOutput {
    /// What ran, for messages.
    pub command: String,
    /// The exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    fn from_output(command: String, out: Output) -> CmdOutput {
        CmdOutput {
            command,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics with the whole output unless it succeeded; returns `self`.
    #[track_caller]
    pub fn assert_success(self) -> CmdOutput {
        assert!(self.success(), "command failed:\n{self}");
        self
    }

    /// Panics unless it failed; returns `self`.
    #[track_caller]
    pub fn assert_failure(self) -> CmdOutput {
        assert!(!self.success(), "command unexpectedly succeeded:\n{self}");
        self
    }
}

impl fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code.map_or("killed by a signal".to_string(), |c| format!("exit code {c}"));
        writeln!(f, "$ {}\n({code})", self.command)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout.trim_end())?;
        write!(f, "--- stderr ---\n{}", self.stderr.trim_end())
    }
}

impl fmt::Debug for CmdOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$*?".contains(c)) {
            s.push_str(&format!(" '{}'", a.replace('\'', r"'\''")));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

/// Runs `cmd` to completion (stdin closed), whatever its exit status.
pub fn run_cmd(cmd: &mut Command) -> CmdOutput {
    let what = describe(cmd);
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("running {what}: {e}"));
    CmdOutput::from_output(what, out)
}

/// Runs `cmd`, asserting success; returns its stdout.
#[track_caller]
/// Writes `(relative path, content)` files below `dir`, creating parents.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
}

pub fn run_ok(cmd: &mut Command) -> String {
    run_cmd(cmd).assert_success().stdout
}

// ---------------------------------------------------------------------------
// Stores

/// A scratch store (its own `DISTILL_ROOT`), removed on drop.
pub struct TestStore {
    dir: TempDir,
}

impl TestStore {
    /// An empty store.
    pub fn empty() -> TestStore {
        let dir = TempDir::new("store");
        fs::create_dir_all(dir.join("root")).unwrap();
        TestStore { dir }
    }

    /// A store holding [`BASE_IMAGES`], copied from the seed store. `None`
    /// (after a loud skip) when not root or mmdebstrap is missing outside CI.
    pub fn with_base_images(test: &str) -> Option<TestStore> {
        if !require_root(test) {
            return None;
        }
        let seed = seed_store(test)?;
        let store = TestStore { dir: TempDir::new("store") };
        copy_store(&seed, &store.root());
        if store.has_base_images() {
            return Some(store);
        }
        // A seed made by an older distill this one cannot read: make it again.
        eprintln!("{test}: the seed store at {} does not work with this distill; rebuilding it", seed.display());
        let _ = fs::remove_file(seed.join("SEED"));
        let seed = seed_store(test)?;
        let store = TestStore { dir: TempDir::new("store") };
        copy_store(&seed, &store.root());
        assert!(store.has_base_images(), "a fresh seed store lacks the base images: {}", store.distill(&["images"]));
        Some(store)
    }

    fn has_base_images(&self) -> bool {
        let out = self.distill(&["images"]);
        let listed: Vec<String> = out
            .stdout
            .lines()
            .filter_map(|l| {
                let mut cols = l.split_whitespace();
                Some(format!("{}:{}", cols.next()?, cols.next()?))
            })
            .collect();
        out.success() && BASE_IMAGES.iter().all(|b| listed.iter().any(|l| l == b))
    }

    /// The store root (`DISTILL_ROOT`).
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// A scratch directory next to the store (removed with it).
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.dir.join("scratch").join(name);
        fs::create_dir_all(&p).unwrap();
        p
    }

    /// The distill binary with `DISTILL_ROOT` set to this store, stdin
    /// closed and no `SOURCE_DATE_EPOCH` inherited.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(distill_bin());
        cmd.env("DISTILL_ROOT", self.root()).env_remove("SOURCE_DATE_EPOCH").stdin(Stdio::null());
        cmd
    }

    /// `distill ARGS…`, whatever the exit status.
    pub fn distill(&self, args: &[&str]) -> CmdOutput {
        run_cmd(self.command().args(args))
    }

    /// `distill ARGS…`, asserting success; returns stdout.
    #[track_caller]
    pub fn distill_ok(&self, args: &[&str]) -> String {
        self.distill(args).assert_success().stdout
    }

    /// `distill build ARGS… CONTEXT`, whatever the exit status. Pass flags
    /// as docker-build flags: `["-t", "app", "-f", "x/Dockerfile", "--target", "t"]`.
    pub fn build(&self, context: &Path, args: &[&str]) -> CmdOutput {
        self.build_env(context, args, &[])
    }

    /// [`Self::build`] with extra environment variables (`SOURCE_DATE_EPOCH`…).
    pub fn build_env(&self, context: &Path, args: &[&str], env: &[(&str, &str)]) -> CmdOutput {
        let mut cmd = self.command();
        cmd.arg("build").args(args).arg(context);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_cmd(&mut cmd)
    }

    /// [`Self::build`], asserting success.
    #[track_caller]
    pub fn build_ok(&self, context: &Path, args: &[&str]) -> CmdOutput {
        self.build(context, args).assert_success()
    }

    /// The image config exactly as stored (the JSON behind the image ID),
    /// with the Docker-only fields (`Healthcheck`, `OnBuild`, `Shell`…) kept.
    pub fn image_config(&self, image: &str) -> Value {
        let id = self.distill_ok(&["inspect", "--format", "{{.Id}}", image]);
        let hex = id.trim().strip_prefix("sha256:").unwrap_or_else(|| panic!("image ID of {image}: {id:?}"));
        let path = self.root().join("blobs/sha256").join(hex);
        serde_json::from_slice(&fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())))
            .unwrap_or_else(|e| panic!("config of {image}: {e}"))
    }

    /// `distill inspect IMAGE`, parsed (the first element).
    pub fn inspect(&self, image: &str) -> Value {
        let v: Value = serde_json::from_str(&self.distill_ok(&["inspect", image])).unwrap();
        v[0].clone()
    }

    /// Writes the flattened root file system of `image` to `dest` (created):
    /// `distill export` piped through GNU tar (owners, modes, xattrs kept).
    /// `image`'s root file system exported into a new temporary directory.
    pub fn rootfs(&self, image: &str) -> TempDir {
        let root = TempDir::new("rootfs");
        self.export_rootfs(image, root.path());
        root
    }

    pub fn export_rootfs(&self, image: &str, dest: &Path) {
        fs::create_dir_all(dest).unwrap();
        let tar = dest.with_extension("export.tar");
        self.distill_ok(&["export", "-o", tar.to_str().unwrap(), image]);
        run_ok(
            Command::new("tar")
                .args(["-x", "--numeric-owner", "-p", "--same-owner", "--xattrs", "--xattrs-include=*", "-f"])
                .arg(&tar)
                .arg("-C")
                .arg(dest),
        );
        fs::remove_file(&tar).unwrap();
    }

    /// Runs `image` under runc the way another runtime would: `distill save
    /// --format oci`, `umoci unpack`, `runc run`. `args` replaces the
    /// image's ENTRYPOINT + CMD when given. Needs root, umoci and runc.
    pub fn run_image(&self, image: &str, args: Option<&[&str]>) -> CmdOutput {
        let work = TempDir::new("run");
        let archive = work.join("image.tar");
        self.distill_ok(&["save", "--format", "oci", "-o", archive.to_str().unwrap(), image]);
        let layout = work.join("layout");
        fs::create_dir_all(&layout).unwrap();
        run_ok(Command::new("tar").arg("-xf").arg(&archive).arg("-C").arg(&layout));
        let index: Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
        let reference = index["manifests"]
            .as_array()
            .and_then(|m| m.first())
            .and_then(|d| d["annotations"]["org.opencontainers.image.ref.name"].as_str())
            .unwrap_or(image)
            .to_string();
        let bundle = work.join("bundle");
        run_ok(
            Command::new("umoci")
                .arg("unpack")
                .arg("--image")
                .arg(format!("{}:{reference}", layout.display()))
                .arg(&bundle),
        );
        let config_path = bundle.join("config.json");
        let mut config: Value = serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
        // No terminal here, and no rlimits above what this host allows.
        config["process"]["terminal"] = Value::Bool(false);
        config["process"].as_object_mut().unwrap().remove("rlimits");
        if let Some(args) = args {
            config["process"]["args"] = args.iter().map(|a| Value::from(*a)).collect();
        }
        fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        static N: AtomicU64 = AtomicU64::new(0);
        let id = format!("distill-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let out = run_cmd(Command::new("runc").arg("run").arg("-b").arg(&bundle).arg(&id));
        let _ = Command::new("runc").args(["delete", "-f", &id]).output();
        out
    }
}

/// The seed store: [`BASE_IMAGES`] imported by `scripts/base-images` into
/// `<cache>/seed-store`, rebuilt when the rootfs tars change. Built under a
/// file lock so concurrent test processes wait for the first.
fn seed_store(test: &str) -> Option<PathBuf> {
    let cache = cache_dir();
    let seed = cache.join("seed-store");
    let stamp = seed.join("SEED");
    let key = |cache: &Path| -> Option<String> {
        let mut key = format!("format {SEED_FORMAT}\n");
        for tar in BASE_TARS {
            let m = fs::metadata(cache.join(tar)).ok()?;
            key.push_str(&format!("{tar} {} {} {}\n", m.len(), m.mtime(), m.ino()));
        }
        Some(key)
    };
    let ready = |stamp: &Path| key(&cache).is_some_and(|k| fs::read_to_string(stamp).is_ok_and(|s| s == k));
    if ready(&stamp) {
        return Some(seed);
    }
    let _lock = cache_lock("seed-store");
    if ready(&stamp) {
        return Some(seed);
    }
    let missing_tars = BASE_TARS.iter().any(|t| !cache.join(t).is_file());
    if missing_tars && !require_tools(test, &["mmdebstrap"]) {
        return None;
    }
    let tmp = cache.join(format!("seed-store.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let script = repo_root().join("scripts/base-images");
    eprintln!("{test}: building the seed store of base images with {} (once)", script.display());
    let out = run_cmd(
        Command::new(&script)
            .arg("--store")
            .arg(&tmp)
            .env("DISTILL", distill_bin())
            .env("DISTILL_TEST_CACHE", &cache)
            .env_remove("DISTILL_ROOT"),
    );
    assert!(out.success(), "scripts/base-images failed:\n{out}");
    let key = key(&cache).expect("scripts/base-images left the rootfs tars in the cache");
    File::create(tmp.join("SEED")).unwrap().write_all(key.as_bytes()).unwrap();
    if seed.exists() {
        let old = cache.join(format!("seed-store.old-{}", std::process::id()));
        fs::rename(&seed, &old).unwrap();
        let _ = fs::remove_dir_all(&old);
    }
    fs::rename(&tmp, &seed).unwrap();
    Some(seed)
}

/// Copies a store: the content-addressed, write-once trees (`blobs/`,
/// `snapshots/`: files only ever appear by rename and are never changed in
/// place) as hard links, the mutable metadata (`distill.db` and its WAL,
/// `index.json`, `oci-layout`) as real copies; `lock` and `tmp/` fresh.
fn copy_store(from: &Path, to: &Path) {
    let blobs = to.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    for entry in fs::read_dir(from.join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        fs::hard_link(entry.path(), blobs.join(entry.file_name())).unwrap();
    }
    let snapshots = from.join("snapshots");
    if fs::read_dir(&snapshots).is_ok_and(|mut d| d.next().is_some()) {
        // Directories cannot be linked: cp recreates them with their owners,
        // modes and xattrs (overlay opaque markers) and links the rest.
        run_ok(Command::new("cp").arg("-a").arg("--link").arg(&snapshots).arg(to));
    } else {
        fs::create_dir_all(to.join("snapshots")).unwrap();
    }
    fs::create_dir_all(to.join("tmp")).unwrap();
    for file in ["distill.db", "distill.db-wal", "index.json", "oci-layout"] {
        let src = from.join(file);
        if src.exists() {
            fs::copy(&src, to.join(file)).unwrap_or_else(|e| panic!("copying {}: {e}", src.display()));
        }
    }
}

// ---------------------------------------------------------------------------
// Foreign-architecture bases

/// Whether RUN steps for `arch` can run here: a qemu-user binfmt_misc
/// handler (`scripts/install-test-deps` registers them).
pub fn have_emulation(qemu_arch: &str) -> bool {
    fs::read_to_string(format!("/proc/sys/fs/binfmt_misc/qemu-{qemu_arch}"))
        .is_ok_and(|s| s.starts_with("enabled") && s.lines().any(|l| l.starts_with("flags:") && l.contains('F')))
}

/// A tiny root file system for `arch` (an OCI architecture: `amd64`,
/// `arm64`): Debian's `busybox-static` with `sh`, `uname`, `cat` and `echo`
/// links, as `<cache>/busybox-<arch>.tar` (about 2 MB). Made once with
/// `mmdebstrap --variant=extract`, which unpacks without running anything,
/// so no emulation is needed to make it. Deliberately not in the seed
/// store: the tests that need it add it to their own store.
pub fn busybox_rootfs(test: &str, arch: &str) -> Option<PathBuf> {
    let cache = cache_dir();
    let tar = cache.join(format!("busybox-{arch}.tar"));
    if tar.is_file() {
        return Some(tar);
    }
    let _lock = cache_lock(&format!("busybox-{arch}"));
    if tar.is_file() {
        return Some(tar);
    }
    if !require_tools(test, &["mmdebstrap"]) {
        return None;
    }
    let work = TempDir::new("busybox");
    let script = r#"set -e
mmdebstrap --arch="$ARCH" --variant=extract --include=busybox-static --quiet bookworm "$WORK/debs.tar"
mkdir -p "$WORK/root/tmp"
chmod 1777 "$WORK/root/tmp"
tar -xf "$WORK/debs.tar" -C "$WORK/root" ./bin/busybox
for applet in sh uname cat echo ls; do ln -s busybox "$WORK/root/bin/$applet"; done
tar --numeric-owner --owner=0 --group=0 --mtime=@1700000000 --sort=name -C "$WORK/root" -cf "$WORK/out.tar" .
"#;
    let out = run_cmd(Command::new("sh").arg("-c").arg(script).env("ARCH", arch).env("WORK", work.path()));
    assert!(out.success(), "making the {arch} busybox rootfs failed:\n{out}");
    fs::rename(work.join("out.tar"), &tar).unwrap();
    Some(tar)
}
