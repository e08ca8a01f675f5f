//! The import scanner: edge cases, hostile input, and agreement with
//! CPython's own `ast` over the whole standard library of the bookworm
//! rootfs (when the cached tarball is there).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use distill_slim::python::scan::{ImportRef, scan};
use distill_slim::python::tokenize::tokenize;

fn imports(src: &str) -> Vec<(usize, String, Vec<String>)> {
    scan(src.as_bytes()).imports.into_iter().map(|i| (i.level, i.module, i.names)).collect()
}

fn mods(src: &str) -> Vec<String> {
    scan(src.as_bytes()).imports.into_iter().map(|i| format!("{}{}", ".".repeat(i.level), i.module)).collect()
}

fn v(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

#[test]
fn python_scan_import_forms() {
    assert_eq!(mods("import a as b, c\nimport d.e.f as g"), v(&["a", "c", "d.e.f"]));
    assert_eq!(
        imports("from x.y import (\n    a as b,  # comment\n    c,\n)\n"),
        vec![(0, "x.y".to_string(), v(&["a", "c"]))]
    );
    assert_eq!(imports("from . import x"), vec![(1, String::new(), v(&["x"]))]);
    assert_eq!(imports("from ..y import z"), vec![(2, "y".to_string(), v(&["z"]))]);
    assert_eq!(imports("from ...pkg.m import *"), vec![(3, "pkg.m".to_string(), v(&["*"]))]);
    assert_eq!(imports("from .... import q"), vec![(4, String::new(), v(&["q"]))]);
    assert_eq!(mods("import a; import b\nif x: import c\nelse: from d import e"), v(&["a", "b", "c", "d"]));
    assert_eq!(mods("from a import b \\\n  , c"), v(&["a"]));
}

#[test]
fn python_scan_strings_and_comments_do_not_count() {
    assert!(mods("s = 'import os'\n# import sys\nt = \"\"\"\nimport json\nfrom x import y\n\"\"\"\n").is_empty());
    assert!(mods("u = f'{x}import re' + rb'''\nimport a'''\n").is_empty());
    assert!(mods("x = f\"{'import a'}\"\ny = f'{d[\"k\"]!r:>{w}}'\n").is_empty());
    assert!(mods("yield from gen\nraise E from None\nx = lambda: 0\n").is_empty());
    assert_eq!(mods("s = '''a\nb'''; import after"), v(&["after"]));
    // Escaped quotes and raw strings ending in a backslash-quote pair.
    assert_eq!(mods("s = 'it\\'s'\nr = r'\\''\nimport z"), v(&["z"]));
}

#[test]
fn python_scan_dynamic_imports() {
    let s = scan(b"import importlib\nm = importlib.import_module('json')\nn = __import__(\"os.path\")\nimportlib.import_module(name)\n__import__('a' + b)\nimport_module('.sub', __name__)\nimport_module('..x', package='p.q.r')\n");
    let got: Vec<(String, usize, bool)> = s.imports.iter().map(|i| (i.module.clone(), i.level, i.dynamic)).collect();
    assert_eq!(
        got,
        vec![
            ("importlib".into(), 0, false),
            ("json".into(), 0, true),
            ("os.path".into(), 0, true),
            ("sub".into(), 1, true),
            ("p.q.x".into(), 0, true),
        ]
    );
}

#[test]
fn python_scan_context() {
    let src = "import top\ndef f():\n    import inner\n    def g(): import deeper\nclass C:\n    import in_class\n    def m(self):\n        try:\n            from _fast import x\n        except ImportError:\n            from _slow import x\nif TYPE_CHECKING:\n    import typing_only\nif __name__ == '__main__':\n    import main_only\n";
    let s = scan(src.as_bytes());
    let find = |m: &str| -> &ImportRef { s.imports.iter().find(|i| i.module == m).unwrap() };
    assert_eq!(find("top").at.function, None);
    assert_eq!(find("inner").at.function.as_deref(), Some("f"));
    assert_eq!(find("deeper").at.function.as_deref(), Some("g"));
    assert_eq!(find("in_class").at.function, None);
    assert_eq!(find("_fast").at.function.as_deref(), Some("m"));
    let t = find("_fast").in_try.unwrap();
    assert_eq!(find("_slow").fallback_of, Some(t));
    assert!(s.imports.iter().all(|i| i.module != "typing_only"));
    assert_eq!(s.type_checking_only, 1);
    assert!(find("main_only").at.main_guard);
    // Uses: bare vs attribute, defining names excluded.
    assert!(s.uses.iter().any(|(_, attr, n)| !attr && n == "ImportError"));
    assert!(!s.uses.iter().any(|(_, _, n)| n == "g" || n == "C"));
    let s = scan(b"import os\nos.popen('x')\nf(encoding='latin-1')\nb.decode('cp1252')\nx = 'utf-16'\n");
    assert!(s.uses.iter().any(|(_, attr, n)| *attr && n == "popen"));
    let lits: BTreeSet<&str> = s.codec_literals.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(lits, BTreeSet::from(["latin-1", "cp1252"]));
}

/// A small deterministic PRNG (xorshift) for the fuzz loop.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn python_scan_hostile_input_never_panics() {
    let nasty: &[&[u8]] = &[
        b"",
        b"\\",
        b"'",
        b"'''",
        b"f'{",
        b"f'{'",
        b"f\"{x:{y:{z",
        b"rb'\\",
        b"from",
        b"from .",
        b"from . import",
        b"import",
        b"import .",
        b"import a as",
        b"))))]]]}}}import x",
        b"((((((((((((((((((((",
        b"\xff\xfe\x00import\x00os\n\x80\x81",
        b"\r\r\n\r  import x\r\n\tdef\tf():\r\n\t\timport y",
        b"def",
        b"async",
        b"except ImportError:\n  import a",
        b"__import__(",
        b"__import__('",
        b"importlib.import_module('.', __name__)",
        b"import_module('...', package='a')",
        b"f'''{\n'''",
        b"x = 1 if y else\\\n",
    ];
    for input in nasty {
        let _ = scan(input);
        let _ = tokenize(input);
    }
    let alphabet: &[&[u8]] = &[
        b"import ",
        b"from ",
        b" as ",
        b".",
        b",",
        b"(",
        b")",
        b"'",
        b"\"",
        b"'''",
        b"f'",
        b"{",
        b"}",
        b"\\",
        b"\n",
        b"\r",
        b"\t",
        b"    ",
        b"#",
        b":",
        b";",
        b"a",
        b"def ",
        b"try:",
        b"except ImportError:",
        b"if TYPE_CHECKING:",
        b"__import__(",
        b"import_module(",
        b"\xc3",
        b"\xa9",
        b"\0",
        b"*",
        b"=",
        b"rb",
        b"0x1e-",
        b"...",
    ];
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    for _ in 0..20_000 {
        let n = (rng.next() % 64) as usize;
        let mut buf = Vec::new();
        for _ in 0..n {
            buf.extend_from_slice(alphabet[(rng.next() % alphabet.len() as u64) as usize]);
        }
        let _ = scan(&buf);
    }
    for _ in 0..2_000 {
        let n = (rng.next() % 512) as usize;
        let buf: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        let _ = scan(&buf);
    }
    // Deep nesting and a large input stay fast and panic-free.
    let deep = "(".repeat(100_000) + "import x";
    let _ = scan(deep.as_bytes());
    let big = "import a.b.c as d, e\nfrom .x import (y, z)\n".repeat(20_000);
    assert_eq!(scan(big.as_bytes()).imports.len(), 60_000);
}

/// The ast ground truth: `level module names function in_main_guard` per
/// import statement, TYPE_CHECKING blocks left out.
const AST_DUMP: &str = r#"
import ast, os, sys
root = sys.argv[1]
DEF = (ast.FunctionDef, ast.AsyncFunctionDef)
def emit(p, node, fn, main, tc):
    if tc:
        return
    if isinstance(node, ast.Import):
        for a in node.names:
            print(p, 0, a.name, '-', fn or '-', int(main))
    elif isinstance(node, ast.ImportFrom):
        print(p, node.level, node.module or '', ','.join(a.name for a in node.names), fn or '-', int(main))
def visit_list(p, nodes, fn, main, tc):
    for n in nodes:
        if isinstance(n, ast.If):
            src = ast.unparse(n.test)
            if src in ('TYPE_CHECKING', 'typing.TYPE_CHECKING'):
                visit_list(p, n.body, fn, main, True)
                visit_list(p, n.orelse, fn, main, tc)
                continue
            if src == "__name__ == '__main__'":
                visit_list(p, n.body, fn, True, tc)
                visit_list(p, n.orelse, fn, main, tc)
                continue
        emit(p, n, fn, main, tc)
        visit_list(p, list(ast.iter_child_nodes(n)), n.name if isinstance(n, DEF) else fn, main, tc)
for dirpath, dirs, files in os.walk(root):
    dirs.sort()
    for f in sorted(files):
        if f.endswith('.py'):
            p = os.path.join(dirpath, f)
            try:
                tree = ast.parse(open(p, 'rb').read())
            except Exception:
                continue
            visit_list(p, tree.body, None, False, False)
"#;

#[test]
fn python_scan_agrees_with_ast_on_the_stdlib() {
    let cache = std::env::var_os("DISTILL_TEST_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/distill-test"));
    let tar = cache.join("bookworm-python3.tar");
    if !tar.is_file() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true but {} is missing", tar.display());
        }
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("\n!!!!!!!!!! SKIPPED: {} is missing !!!!!!!!!!\n", tar.display()).as_bytes(),
        );
        return;
    }
    // A private extraction of the stdlib only: no chroot, no root needed;
    // the host's python3 (any 3.9+) runs ast over the bookworm sources.
    let dir = std::env::temp_dir().join(format!("distill-python-scan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let st = Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&dir)
        .args(["--wildcards", "./usr/lib/python3.11/*.py"])
        .status()
        .unwrap();
    assert!(st.success());
    let stdlib = dir.join("usr/lib/python3.11");
    let Ok(out) = Command::new("python3").arg("-c").arg(AST_DUMP).arg(&stdlib).output() else {
        let _ = std::fs::remove_dir_all(&dir);
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true but no python3 on the host");
        }
        eprintln!("SKIPPED: no python3 on the host");
        return;
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want: BTreeSet<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    let files: BTreeSet<String> = want.iter().filter_map(|l| l.split(' ').next().map(str::to_string)).collect();
    let mut got = BTreeSet::new();
    for f in &files {
        let s = scan(&std::fs::read(f).unwrap());
        for i in s.imports.iter().filter(|i| !i.dynamic) {
            let fun = i.at.function.clone().unwrap_or_else(|| "-".into());
            let main = i.at.main_guard as u8;
            if i.names.is_empty() {
                got.insert(format!("{f} 0 {} - {fun} {main}", i.module));
            } else {
                got.insert(format!("{f} {} {} {} {fun} {main}", i.level, i.module, i.names.join(",")));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let missing: Vec<&String> = want.difference(&got).collect();
    let extra: Vec<&String> = got.difference(&want).collect();
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("[python scan] {} files, {} import statements agree with ast\n", files.len(), want.len()).as_bytes(),
    );
    assert!(want.len() > 2500, "{}", want.len());
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:#?}\nextra {extra:#?}");
}
