//! The Python closure against the real thing: a Debian bookworm rootfs with
//! python3 (the cached `/var/tmp/distill-test/bookworm-python3.tar`). Each
//! app runs with `chroot FULL` and with `chroot SLIM`, where SLIM holds only
//! the computed closure plus the ELF libraries `ld.so --list` names; stdout,
//! stderr and the exit code must match.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use distill_slim::python::layout::RootFs;
use distill_slim::python::{Entry, PythonClosure, PythonError, PythonOptions, python_closure};

const TARBALL: &str = "bookworm-python3.tar";

fn cache_dir() -> PathBuf {
    std::env::var_os("DISTILL_TEST_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/distill-test"))
}

fn skip(what: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but {what}");
    }
    let msg = format!("\n!!!!!!!!!! SKIPPED: {what} !!!!!!!!!!\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), msg.as_bytes());
    false
}

/// The extracted rootfs, shared by all tests (extracted once under a lock;
/// tests never write into it). `None` (skip) without the tarball or root.
fn base_rootfs() -> Option<PathBuf> {
    let tar = cache_dir().join(TARBALL);
    if !tar.is_file() {
        skip(&format!("{} is missing (the Python closure tests need it)", tar.display()));
        return None;
    }
    if !rustix_is_root() {
        skip("not root (chroot needed for the Python closure tests)");
        return None;
    }
    let dir = cache_dir().join("python-closure-bookworm");
    let lock = File::create(cache_dir().join("python-closure-bookworm.lock")).unwrap();
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

fn rustix_is_root() -> bool {
    // SAFETY-free: read our effective uid from /proc.
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = cache_dir().join("scratch").join(format!(
            "python-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("DISTILL_TEST_KEEP").is_some() {
            eprintln!("kept {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// A fat rootfs of our own (hard links of the shared one) plus app files.
struct Fixture {
    scratch: Scratch,
}

impl Fixture {
    fn new(tag: &str, files: &[(&str, &str)]) -> Option<Fixture> {
        let base = base_rootfs()?;
        let scratch = Scratch::new(tag);
        let full = scratch.0.join("full");
        let st = Command::new("cp").arg("-al").arg(&base).arg(&full).status().unwrap();
        assert!(st.success());
        for (path, text) in files {
            let p = full.join(path.trim_start_matches('/'));
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            let _ = fs::remove_file(&p);
            fs::write(&p, text).unwrap();
        }
        fs::create_dir_all(scratch.0.join("slim")).unwrap();
        Some(Fixture { scratch })
    }

    fn full(&self) -> PathBuf {
        self.scratch.0.join("full")
    }

    fn slim(&self) -> PathBuf {
        self.scratch.0.join("slim")
    }

    /// Copies a container path from FULL to SLIM: symlinks on the way as
    /// links, the file itself with its mtime (pyc validation needs it).
    fn copy(&self, path: &str) {
        let mut fsys = RootFs::new(&self.full());
        let Some(r) = fsys.resolve(path) else { panic!("{path} not in the fat rootfs") };
        for l in r.links.iter().map(String::as_str).chain([path]) {
            let src = self.full().join(l.trim_start_matches('/'));
            let dst = self.slim().join(l.trim_start_matches('/'));
            let Ok(meta) = fs::symlink_metadata(&src) else { continue };
            if fs::symlink_metadata(&dst).is_ok() {
                continue;
            }
            fs::create_dir_all(dst.parent().unwrap()).unwrap();
            if meta.file_type().is_symlink() {
                symlink(fs::read_link(&src).unwrap(), &dst).unwrap();
            } else if meta.is_dir() {
                fs::create_dir_all(&dst).unwrap();
            }
        }
        let src = self.full().join(r.real.trim_start_matches('/'));
        let dst = self.slim().join(r.real.trim_start_matches('/'));
        if fs::symlink_metadata(&dst).is_ok() {
            return;
        }
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        if src.is_dir() {
            fs::create_dir_all(&dst).unwrap();
            return;
        }
        fs::copy(&src, &dst).unwrap();
        let mtime = fs::metadata(&src).unwrap().modified().unwrap();
        File::options().write(true).open(&dst).unwrap().set_modified(mtime).unwrap();
    }

    /// Builds SLIM from the closure plus the ELF closure of the interpreter
    /// and the extension modules, as `ld.so --list` in FULL reports it.
    fn build_slim(&self, c: &PythonClosure) {
        for p in c.files.keys() {
            self.copy(p);
        }
        for d in c.directories.keys() {
            self.copy(d);
        }
        let mut elf: BTreeSet<String> = BTreeSet::new();
        elf.insert("/lib64/ld-linux-x86-64.so.2".into());
        for obj in std::iter::once(&c.interpreter).chain(&c.extension_modules) {
            let out = Command::new("chroot")
                .arg(self.full())
                .args(["/lib64/ld-linux-x86-64.so.2", "--list", obj])
                .output()
                .unwrap();
            assert!(out.status.success(), "ld.so --list {obj}: {}", String::from_utf8_lossy(&out.stderr));
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some((_, rest)) = line.split_once("=> ")
                    && let Some(p) = rest.split_whitespace().next()
                {
                    elf.insert(p.to_string());
                }
            }
        }
        for p in &elf {
            self.copy(p);
        }
    }

    fn run(&self, root: &Path, argv: &[&str], env: &[&str]) -> (Option<i32>, String, String) {
        let out = Command::new("chroot")
            .arg(root)
            .args(argv)
            .env_clear()
            .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .envs(env.iter().filter_map(|kv| kv.split_once('=')))
            .current_dir("/")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
    }

    /// The closure of `argv`, SLIM built from it, and both runs compared.
    fn check(&self, argv: &[&str], env: &[&str]) -> PythonClosure {
        let argv_s: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let env_s: Vec<String> = env.iter().map(|s| s.to_string()).collect();
        let opts = PythonOptions::from_argv(&argv_s, &env_s, "/").expect("a python command");
        let c = python_closure(&self.full(), &opts).expect("closure");
        self.build_slim(&c);
        let fat = self.run(&self.full(), argv, env);
        let slim = self.run(&self.slim(), argv, env);
        assert_eq!(fat.0, Some(0), "the fat run failed: {fat:?}");
        assert_eq!(slim, fat, "slim and fat differ for {argv:?}; unresolved: {:?}", c.unresolved);
        c
    }
}

fn size_of_tree(root: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let m = fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}

fn mib(n: u64) -> String {
    format!("{:.2} MiB", n as f64 / (1024.0 * 1024.0))
}

/// Bytes of the Python files: the closure without the interpreter binary.
fn python_bytes(fx: &Fixture, c: &PythonClosure) -> u64 {
    c.total_size(&fx.full()) - fs::metadata(fx.full().join(c.interpreter.trim_start_matches('/'))).unwrap().len()
}

fn report(tag: &str, fx: &Fixture, c: &PythonClosure) {
    let py = python_bytes(fx, c);
    let total = size_of_tree(&fx.slim());
    let msg = format!(
        "[python closure] {tag}: {} Python files ({} modules, {} extension modules) = {}; slim rootfs with ELF = {}; unresolved {:?}\n",
        c.files.len(),
        c.modules.len(),
        c.extension_modules.len(),
        mib(py),
        mib(total),
        c.unresolved
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), msg.as_bytes());
}

const CALC: &str = include_str!("../../../examples/calculator/calc.py");

#[test]
fn python_calculator_runs_slim_and_fits() {
    let Some(fx) = Fixture::new("calc", &[("/app/calc.py", CALC)]) else { return };
    let c = fx.check(&["python3", "/app/calc.py", "6", "*", "7"], &[]);
    let c2 = fx.check(&["/usr/bin/python3", "/app/calc.py", "1", "/", "4"], &[]);
    assert_eq!(c.files, c2.files);
    let (code, out, _) = fx.run(&fx.slim(), &["python3", "/app/calc.py", "6", "*", "7"], &[]);
    assert_eq!((code, out.as_str()), (Some(0), "42\n"));
    // Usage error path (stderr + exit 2) behaves the same.
    let fat = fx.run(&fx.full(), &["python3", "/app/calc.py", "6", "^", "7"], &[]);
    assert_eq!(fx.run(&fx.slim(), &["python3", "/app/calc.py", "6", "^", "7"], &[]), fat);
    assert_eq!(fat.0, Some(2));
    report("calculator", &fx, &c);
    assert_eq!(c.version, (3, 11));
    assert_eq!(c.interpreter, "/usr/bin/python3.11");
    assert!(c.files.contains_key("/usr/bin/python3"), "the python3 symlink is kept");
    assert!(c.modules.get("operator").is_some_and(|f| f.ends_with("/operator.py")));
    assert_eq!(c.modules.get("sys").map(String::as_str), Some("builtin"));
    let why = &c.files["/usr/lib/python3.11/operator.py"];
    assert!(why.iter().any(|r| r == "module operator (imported by /app/calc.py)"), "{why:?}");
    assert!(c.files["/usr/lib/python3.11/encodings/utf_8.py"].iter().any(|r| r.contains("startup")));
    assert!(c.files.contains_key("/usr/lib/python3.11/__pycache__/operator.cpython-311.pyc"));
    // Small: no subprocess, no full encodings, well under the 20 MiB target.
    assert!(!c.modules.contains_key("subprocess"), "{:?}", c.files["/usr/lib/python3.11/subprocess.py"]);
    assert!(!c.modules.contains_key("encodings.cp1252"));
    assert!(python_bytes(&fx, &c) < 1 << 20, "python files {}", mib(python_bytes(&fx, &c)));
    assert!(size_of_tree(&fx.slim()) < 20 << 20, "slim rootfs {}", mib(size_of_tree(&fx.slim())));
}

const STDLIB_APP: &str = r#"
import argparse, json
import datetime as dt
from decimal import Decimal, getcontext
from collections import Counter, OrderedDict, namedtuple

def main():
    p = argparse.ArgumentParser(description="stdlib tour")
    p.add_argument("--n", type=int, default=3)
    a = p.parse_args()
    getcontext().prec = 30
    Point = namedtuple("Point", "x y")
    d = {
        "sum": str(sum(Decimal(1) / Decimal(7) for _ in range(a.n))),
        "when": dt.datetime(2024, 2, 29, 12, 30).isoformat(),
        "parsed": dt.datetime.strptime("2024-03-01", "%Y-%m-%d").strftime("%A"),
        "delta": str(dt.timedelta(days=1, seconds=5)),
        "count": Counter("mississippi").most_common(2),
        "od": list(OrderedDict(b=1, a=2)),
        "pt": Point(1, 2)._asdict(),
        "snow": "caf\u00e9 \u2603",
    }
    print(json.dumps(d, sort_keys=True, ensure_ascii=False))
    print(json.loads('{"a": [1, 2.5, null]}'))

main()
"#;

#[test]
fn python_stdlib_app_runs_slim() {
    let Some(fx) = Fixture::new("stdlib", &[("/app/tour.py", STDLIB_APP)]) else { return };
    let c = fx.check(&["python3", "/app/tour.py", "--n", "5"], &[]);
    fx.check(&["python3", "/app/tour.py", "--help"], &[]);
    report("json+argparse+datetime+decimal+collections", &fx, &c);
    for m in ["json", "json.decoder", "argparse", "datetime", "decimal", "collections", "_strptime"] {
        assert!(c.modules.contains_key(m), "{m} missing");
    }
    assert!(c.extension_modules.iter().any(|e| e.contains("/lib-dynload/_decimal.")), "{:?}", c.extension_modules);
    // `from _decimal import *` resolved, so the pure-Python fallback is out.
    assert!(!c.modules.contains_key("_pydecimal"));
}

#[test]
fn python_local_package_relative_imports() {
    let files = [
        ("/app/main.py", "from shop import checkout\nprint(checkout.total([3, 4]))\n"),
        ("/app/shop/__init__.py", "from . import prices\nfrom .util.fmt import money\n"),
        ("/app/shop/prices.py", "TAX = 0.5\n"),
        (
            "/app/shop/checkout.py",
            "from .prices import TAX\nfrom .util import fmt\n\ndef total(xs):\n    return fmt.money(sum(xs) * (1 + TAX))\n",
        ),
        ("/app/shop/util/__init__.py", ""),
        (
            "/app/shop/util/fmt.py",
            "from ..prices import TAX as _T\nimport textwrap\n\ndef money(x):\n    return textwrap.shorten(f'${x:.2f} (tax {_T})', 40)\n",
        ),
        ("/app/shop/unused.py", "import this_does_not_exist\n"),
    ];
    let Some(fx) = Fixture::new("relative", &files) else { return };
    let c = fx.check(&["python3", "/app/main.py"], &[]);
    report("local package", &fx, &c);
    for f in [
        "/app/main.py",
        "/app/shop/__init__.py",
        "/app/shop/prices.py",
        "/app/shop/checkout.py",
        "/app/shop/util/__init__.py",
        "/app/shop/util/fmt.py",
    ] {
        assert!(c.files.contains_key(f), "{f} missing");
    }
    assert!(!c.files.contains_key("/app/shop/unused.py"));
    assert_eq!(c.modules.get("shop.util.fmt").map(String::as_str), Some("/app/shop/util/fmt.py"));
}

#[test]
fn python_importlib_literal_import() {
    let app = "import importlib\nmod = importlib.import_module('json')\nprint(mod.dumps({'ok': True}))\nx = __import__('base64')\nprint(x.b64encode(b'hi'))\n";
    let Some(fx) = Fixture::new("importlib", &[("/app/dyn.py", app)]) else { return };
    let c = fx.check(&["python3", "/app/dyn.py"], &[]);
    report("importlib.import_module('json')", &fx, &c);
    assert!(
        c.files["/usr/lib/python3.11/json/__init__.py"]
            .iter()
            .any(|r| r.contains("dynamically imported by /app/dyn.py"))
    );
    assert!(c.modules.contains_key("base64"));
}

#[test]
fn python_module_entry_pythonpath_and_pth() {
    let files = [
        ("/opt/lib/tool/__init__.py", "VERSION = '1.0'\n"),
        (
            "/opt/lib/tool/__main__.py",
            "import sys\nfrom tool import VERSION\nimport extra\nprint('tool', VERSION, extra.X, sys.argv[1:])\n",
        ),
        ("/usr/lib/python3/dist-packages/zz-extra.pth", "# comment\n/opt/extra\nimport hook_mod\n"),
        ("/opt/extra/extra.py", "X = 42\n"),
        ("/usr/lib/python3/dist-packages/hook_mod.py", "import string\n"),
    ];
    let Some(fx) = Fixture::new("dash-m", &files) else { return };
    let c = fx.check(&["python3", "-m", "tool", "a"], &["PYTHONPATH=/opt/lib"]);
    report("python -m tool", &fx, &c);
    assert!(c.sys_path.contains(&"/opt/extra".to_string()), "{:?}", c.sys_path);
    assert!(c.files.contains_key("/usr/lib/python3/dist-packages/zz-extra.pth"));
    assert!(c.modules.contains_key("hook_mod") && c.modules.contains_key("string"));
    assert!(c.modules.contains_key("runpy"));
    assert_eq!(c.modules.get("extra").map(String::as_str), Some("/opt/extra/extra.py"));
}

#[test]
fn python_sys_path_and_builtins_match_the_interpreter() {
    let Some(fx) = Fixture::new(
        "syspath",
        &[(
            "/app/p.py",
            "import sys\nprint(sys.path)\nprint(sorted(sys.builtin_module_names))\nprint(sorted(sys.modules))\n",
        )],
    ) else {
        return;
    };
    let c = fx.check(&["python3", "/app/p.py"], &[]);
    let (_, out, _) = fx.run(&fx.full(), &["python3", "/app/p.py"], &[]);
    let lines: Vec<&str> = out.lines().collect();
    let want: Vec<String> =
        lines[0].trim_matches(&['[', ']'][..]).split(", ").map(|s| s.trim_matches('\'').to_string()).collect();
    let want: Vec<String> = want.into_iter().filter(|p| !p.ends_with(".zip")).collect();
    assert_eq!(c.sys_path, want);
    // Built-ins: read from the binary's PyInit_ symbols, same as the interpreter says.
    let opts = PythonOptions::new("python3", vec![Entry::Code("import sys".into())]);
    let c2 = python_closure(&fx.full(), &opts).unwrap();
    let builtins: BTreeSet<String> =
        c2.modules.iter().filter(|(_, v)| *v == "builtin").map(|(k, _)| k.clone()).collect();
    let said: BTreeSet<String> =
        lines[1].trim_matches(&['[', ']'][..]).split(", ").map(|s| s.trim_matches('\'').to_string()).collect();
    assert!(builtins.is_subset(&said), "{:?}", builtins.difference(&said).collect::<Vec<_>>());
    // Everything loaded at startup is in the closure.
    for m in lines[2].trim_matches(&['[', ']'][..]).split(", ").map(|s| s.trim_matches('\'')) {
        let frozen = distill_slim::python::knowledge::FROZEN_ONLY.contains(&m);
        if m != "__main__" && !frozen && m != "apport_python_hook" {
            assert!(c.modules.contains_key(m) || said.contains(m) || m == "os.path", "startup module {m} missing");
        }
    }
}

#[test]
fn python_builtins_read_from_binary() {
    let Some(base) = base_rootfs() else { return };
    let bin = fs::read(base.join("usr/bin/python3.11")).unwrap();
    let got = distill_slim::python::layout::builtins_from_binary(&bin);
    let out = Command::new("chroot")
        .arg(&base)
        .args(["/usr/bin/python3", "-c", "import sys; print('\\n'.join(sys.builtin_module_names))"])
        .output()
        .unwrap();
    let want: BTreeSet<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    assert!(want.len() > 30);
    assert_eq!(got, want);
}

#[test]
fn python_errors_and_unresolved() {
    let Some(base) = base_rootfs() else { return };
    let e = python_closure(&base, &PythonOptions::new("/usr/bin/python9", vec![Entry::Code("pass".into())]));
    assert!(matches!(e, Err(PythonError::InterpreterNotFound(_))), "{e:?}");
    let e = python_closure(&base, &PythonOptions::new("python3", vec![Entry::Script("/nope.py".into())]));
    assert!(matches!(e, Err(PythonError::EntryNotFound(_))), "{e:?}");
    let opts = PythonOptions::new(
        "python3",
        vec![Entry::Code(
            "import no_such_mod\ntry:\n import yaml\nexcept ImportError:\n pass\nfrom json import nothing_here\n"
                .into(),
        )],
    );
    let c = python_closure(&base, &opts).unwrap();
    assert!(c.unresolved.contains(&("no_such_mod".into(), "-c code".into())), "{:?}", c.unresolved);
    assert!(c.unresolved.iter().any(|(m, _)| m == "yaml"));
    assert!(!c.unresolved.iter().any(|(m, _)| m.contains("nothing_here")));
}

#[test]
fn python_source_only_and_all_deferred() {
    let Some(fx) = Fixture::new("modes", &[("/app/calc.py", CALC)]) else { return };
    let mut opts = PythonOptions::new("python3", vec![Entry::Script("/app/calc.py".into())]);
    let with = python_closure(&fx.full(), &opts).unwrap();
    opts.pyc = distill_slim::python::PycMode::SourceOnly;
    let without = python_closure(&fx.full(), &opts).unwrap();
    assert!(without.files.keys().all(|f| !f.ends_with(".pyc")));
    assert!(without.files.len() < with.files.len());
    opts.all_deferred_imports = true;
    let all = python_closure(&fx.full(), &opts).unwrap();
    assert!(all.modules.contains_key("subprocess"));
    let msg = format!(
        "[python closure] calculator modes (Python files): with pyc {} / source only {} / all deferred imports {} ({} modules)\n",
        mib(python_bytes(&fx, &with)),
        mib(python_bytes(&fx, &without)),
        mib(python_bytes(&fx, &all)),
        all.modules.len()
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), msg.as_bytes());
    // Source only still runs.
    fx.build_slim(&without);
    assert_eq!(
        fx.run(&fx.slim(), &["python3", "/app/calc.py", "2", "+", "2"], &[]),
        fx.run(&fx.full(), &["python3", "/app/calc.py", "2", "+", "2"], &[])
    );
}
