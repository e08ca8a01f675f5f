//! Shared helpers of the ELF closure tests: fixture rootfs trees made of the
//! host's real loader and libc plus programs compiled with gcc, and the
//! ground truth from the real dynamic loader run in a chroot.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

pub const INTERP: &str = "/lib64/ld-linux-x86-64.so.2";
pub const LIBDIR: &str = "/lib/x86_64-linux-gnu";

/// Marks a test as skipped (a failure under CI=true, where everything must run).
pub fn skip(what: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but {what}");
    }
    eprintln!("\n!!!!!!!!!! SKIPPED: {what} !!!!!!!!!!\n");
}

pub fn is_root() -> bool {
    fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false)
}

pub fn have_gcc() -> bool {
    let ok = Command::new("gcc").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        skip("gcc is not installed");
    }
    ok
}

/// The real (symlink-free) host path of a host file.
pub fn host_real(path: &str) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A rootfs under a temporary directory.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    build: tempfile::TempDir,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl Fixture {
    /// An empty rootfs with the host's loader at /lib64 and libc in the
    /// multiarch directory (what the host's gcc links against).
    pub fn glibc() -> Fixture {
        let f = Fixture::empty();
        f.copy_host(INTERP, INTERP);
        f.copy_host("/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6");
        f
    }

    pub fn empty() -> Fixture {
        Fixture { dir: tempfile::tempdir().unwrap(), build: tempfile::tempdir().unwrap() }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn host(&self, path: &str) -> PathBuf {
        self.dir.path().join(path.trim_start_matches('/'))
    }

    /// Copies the real content of a host file to `to` in the rootfs.
    pub fn copy_host(&self, from: &str, to: &str) {
        let dst = self.host(to);
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        fs::copy(host_real(from), &dst).unwrap_or_else(|e| panic!("copy {from}: {e}"));
    }

    pub fn write(&self, path: &str, content: &[u8]) {
        let dst = self.host(path);
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        fs::write(&dst, content).unwrap();
    }

    pub fn write_exec(&self, path: &str, content: &[u8]) {
        self.write(path, content);
        fs::set_permissions(self.host(path), fs::Permissions::from_mode(0o755)).unwrap();
    }

    pub fn symlink(&self, path: &str, target: &str) {
        let dst = self.host(path);
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        symlink(target, &dst).unwrap();
    }

    pub fn mkdir(&self, path: &str) {
        fs::create_dir_all(self.host(path)).unwrap();
    }

    /// Compiles C source into `to` (in the rootfs) with extra gcc arguments;
    /// `-L` of the fixture's build directory is always passed, so `-lNAME`
    /// finds libraries built by [`Fixture::lib`].
    pub fn cc(&self, to: &str, src: &str, args: &[&str]) {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let c = self.build.path().join(format!("src{n}.c"));
        fs::write(&c, src).unwrap();
        let out = self.build.path().join(format!("out{n}"));
        let o = Command::new("gcc")
            .arg("-o")
            .arg(&out)
            .arg(&c)
            .arg(format!("-L{}", self.build.path().display()))
            .arg(format!("-Wl,-rpath-link,{}", self.build.path().display()))
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "gcc {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        let dst = self.host(to);
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        fs::copy(&out, &dst).unwrap();
    }

    /// Builds `lib<name>.so` with SONAME `soname` in the build directory (for
    /// linking) and installs it at `to` in the rootfs.
    pub fn lib(&self, name: &str, soname: &str, to: &str, src: &str, args: &[&str]) {
        let link = self.build.path().join(format!("lib{name}.so"));
        let mut all = vec!["-shared", "-fPIC"];
        let so = format!("-Wl,-soname,{soname}");
        all.push(&so);
        all.extend_from_slice(args);
        self.cc(to, src, &all);
        let _ = fs::remove_file(&link);
        fs::copy(self.host(to), &link).unwrap();
        if !soname.contains('/') {
            fs::copy(self.host(to), self.build.path().join(soname)).unwrap();
        }
    }

    /// `ldconfig -r ROOT` with the given cache format (`new`, `old`, `compat`).
    pub fn ldconfig(&self, format: &str) {
        let o = Command::new("ldconfig").arg("-r").arg(self.root()).arg("-c").arg(format).arg("-X").output().unwrap();
        assert!(o.status.success(), "ldconfig: {}", String::from_utf8_lossy(&o.stderr));
    }

    /// The real loader's answer, run in the rootfs: the program executed
    /// with `LD_TRACE_LOADED_OBJECTS=1` (what `ldd` does), so `$ORIGIN` and
    /// the search are those of a real execve. A static helper does the
    /// chroot (a dynamic `chroot` binary would trace itself instead).
    /// `None` when not root.
    pub fn ground_truth(&self, program: &str, env: &[(&str, &str)]) -> Option<Trace> {
        if !is_root() {
            skip("not root: no chroot for the ld.so ground truth");
            return None;
        }
        Some(trace_env(self.root(), program, env))
    }
}

/// [`Fixture::ground_truth`] for any rootfs, without extra environment.
pub fn trace_in(root: &Path, program: &str) -> Trace {
    trace_env(root, program, &[])
}

fn trace_env(root: &Path, program: &str, env: &[(&str, &str)]) -> Trace {
    let mut cmd = Command::new(tracer());
    cmd.arg(root).arg(program).env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "tracer {program}: {:?} {}", o.status, String::from_utf8_lossy(&o.stderr));
    Trace::parse(&String::from_utf8_lossy(&o.stdout))
}

/// A static program: `tracer ROOT PROGRAM` chroots to ROOT and execs PROGRAM
/// with `LD_TRACE_LOADED_OBJECTS=1` added to its environment.
fn tracer() -> &'static Path {
    static TRACER: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = TRACER.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("tracer.c");
        fs::write(
            &src,
            "#define _GNU_SOURCE\n#include <stdlib.h>\n#include <unistd.h>\n\
             #include <sched.h>\n#include <sys/mount.h>\n#include <sys/stat.h>\n#include <stdio.h>\n\
             int main(int c, char **v) { char p[4096]; if (c < 3) return 110;\n\
             /* /proc in a private mount namespace: ld.so reads /proc/self/exe for the executable's $ORIGIN. */\n\
             snprintf(p, sizeof p, \"%s/proc\", v[1]); mkdir(p, 0555);\n\
             if (unshare(CLONE_NEWNS) || mount(0, \"/\", 0, MS_REC | MS_PRIVATE, 0) || mount(\"proc\", p, \"proc\", 0, 0)) return 113;\n\
             if (chroot(v[1]) || chdir(\"/\")) return 111;\n\
             setenv(\"LD_TRACE_LOADED_OBJECTS\", \"1\", 1); execv(v[2], v + 2); return 112; }\n",
        )
        .unwrap();
        let out = dir.path().join("tracer");
        let st = Command::new("gcc").arg("-static").arg("-o").arg(&out).arg(&src).status().unwrap();
        assert!(st.success(), "building the static tracer");
        (dir, out)
    });
    path
}

/// What ld.so printed in trace mode.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Trace {
    /// `name => path` pairs (the loader as `path => path`).
    pub found: BTreeSet<(String, String)>,
    /// Names ld.so could not find.
    pub not_found: BTreeSet<String>,
}

impl Trace {
    pub fn parse(text: &str) -> Trace {
        let mut t = Trace::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with("linux-vdso") || line.starts_with("statically linked") {
                continue;
            }
            if let Some((name, rest)) = line.split_once(" => ") {
                let path = rest.split(" (").next().unwrap().trim();
                if path == "not found" {
                    t.not_found.insert(name.to_string());
                } else {
                    t.found.insert((name.to_string(), path.to_string()));
                }
            } else if line.starts_with('/') {
                let path = line.split(" (").next().unwrap().trim().to_string();
                t.found.insert((path.clone(), path));
            }
        }
        t
    }
}

/// Our answer in the same shape as [`Trace`].
pub fn our_trace(c: &distill_slim::elf::Closure, program_real: &str) -> Trace {
    let mut t = Trace::default();
    for e in c.ldd.get(program_real).unwrap_or_else(|| panic!("no ldd for {program_real}: {:?}", c.ldd.keys())) {
        t.found.insert((e.name.clone(), e.path.clone()));
    }
    // Tests give one program per closure: every required miss is its.
    for m in c.unresolved() {
        t.not_found.insert(m.name.clone());
    }
    t
}

/// Extracts a cached Debian rootfs tarball once into a directory owned by
/// these tests (under a lock); tests only read it.
pub fn debian_rootfs(tarball: &str) -> Option<PathBuf> {
    let cache = std::env::var_os("DISTILL_TEST_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/distill-test"));
    let tar = cache.join(tarball);
    if !tar.is_file() {
        skip(&format!("{} is missing", tar.display()));
        return None;
    }
    let name = tarball.trim_end_matches(".tar");
    let dir = cache.join(format!("elf-closure-{name}"));
    let lock = fs::File::create(cache.join(format!("elf-closure-{name}.lock"))).unwrap();
    lock.lock().unwrap();
    let stamp = format!("{:?}", fs::metadata(&tar).unwrap().modified().unwrap());
    let marker = dir.join(".distill-extracted");
    if fs::read_to_string(&marker).ok().as_deref() != Some(stamp.as_str()) {
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let st = Command::new("tar").arg("-xf").arg(&tar).arg("-C").arg(&dir).status().unwrap();
        assert!(st.success(), "extracting {}", tar.display());
        fs::write(&marker, &stamp).unwrap();
    }
    Some(dir)
}
