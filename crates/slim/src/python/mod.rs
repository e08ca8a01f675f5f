//! The Python part of the runtime closure, read from a root file system
//! without running anything.
//!
//! ```no_run
//! # use std::path::Path;
//! use distill_slim::python::{Entry, PythonOptions, python_closure};
//! let opts = PythonOptions::new("/usr/bin/python3", vec![Entry::Script("/app/calc.py".into())]);
//! let c = python_closure(Path::new("/tmp/rootfs"), &opts).unwrap();
//! for (path, why) in &c.files {
//!     println!("{path}: {}", why.join("; "));
//! }
//! // The caller runs the ELF closure on c.interpreter and c.extension_modules.
//! ```
//!
//! # What it computes
//! 1. **The interpreter**: its path is resolved inside the rootfs (`PATH`
//!    from the image env for bare names, symlinks followed: `/usr/bin/python3`
//!    → `/usr/bin/python3.11`); the version comes from the file name, else a
//!    venv's `pyvenv.cfg`, else the only `lib/python3.X/os.py` of the prefix.
//! 2. **sys.path**, as CPython builds it: the script's directory (or the
//!    working directory for `-m`/`-c`), `PYTHONPATH`, `pythonXY.zip`, the
//!    stdlib, `lib-dynload`, then what `site` adds: the user site if `HOME`
//!    is set and it exists, `site-packages` (and Debian's `dist-packages`
//!    when the stdlib's `site.py` speaks of them; a venv's own), each
//!    followed by the directories its `.pth` files name. `.pth` files are
//!    kept, and their `import` lines are scanned like code.
//! 3. **Startup modules** ([`knowledge::STARTUP_CORE`] & co., measured with
//!    `-X importtime`), the codecs the locale needs (`LANG`/`LC_ALL`/
//!    `LC_CTYPE`/`PYTHONIOENCODING`), `sitecustomize`/`usercustomize` when
//!    present, `runpy` for `-m`.
//! 4. **Imports, transitively**: each source file is tokenized
//!    ([`tokenize`]) and scanned ([`scan`]) for `import a.b`, `from a import
//!    b` (b tried as a submodule), relative imports, `from pkg import *`
//!    (through `__all__`), and `__import__`/`importlib.import_module` with a
//!    literal name. Modules resolve the way `PathFinder` does: built-ins
//!    first, then per sys.path entry a package (`__init__` + any suffix), an
//!    extension (`.cpython-3XY-<triplet>.so`, `.abi3.so`, `.so`), a source
//!    (`.py`), a sourceless `.pyc`, else namespace portions.
//!    Imports C code performs are data ([`knowledge::C_IMPORTS`]); codecs
//!    looked up by name are found by matching the string literals of every
//!    kept file against the codec modules and `encodings/aliases.py`.
//! 5. **Pruning, by default** (both can be turned off):
//!    - an import inside a `def` of a *stdlib* module is followed only if
//!      that function's name is used somewhere in the closure (or it is a
//!      dunder): `os.popen`'s `import subprocess` comes in only when
//!      something says `popen`. App and site-packages code: all imports.
//!    - `except ImportError:` fallbacks are dropped when every import of
//!      their `try` resolved (`from _decimal import *` found → no
//!      `_pydecimal`).
//!    - imports under `if TYPE_CHECKING:` are never followed.
//!
//! Imports that do not resolve are listed in [`PythonClosure::unresolved`]
//! (optional imports in `try` blocks are normal there); `from m import name`
//! trying `name` as a submodule never counts as unresolved.
//!
//! # Paths
//! Keys of [`PythonClosure::files`] are container paths that never cross a
//! symlink: each symlink met on the way is its own entry (to be recreated as
//! a link) and the file is listed under its real path. Directories that
//! must exist even when empty (the `lib-dynload` landmark the interpreter
//! looks for, namespace packages) are in [`PythonClosure::directories`].
//!
//! # Bytecode
//! [`PycMode::WithSource`] (default) keeps each `.py` and its
//! `__pycache__/<name>.cpython-3XY.pyc` (`.opt-N.pyc` for `-O`/`-OO`) when
//! present: the interpreter then loads without compiling, but validates the
//! pyc against the source's mtime and size, so the copy must keep mtimes.
//! [`PycMode::SourceOnly`] drops the caches (smaller; compiled at each start
//! when the image is read-only). A pyc-only mode is not offered: CPython
//! loads sourceless bytecode only from the legacy location (`name.pyc` next
//! to where the source was), which is a rename, not a file selection.
//! Sourceless modules already in that layout are kept, but their imports
//! cannot be read (noted in [`PythonClosure::notes`]).

pub mod knowledge;
pub mod layout;
pub mod scan;
pub mod tokenize;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::Path;

use layout::{RootFs, base_name, join, normalize, parent};
use scan::{ImportRef, Scan};

/// How an application is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// `python3 /app/x.py` (relative paths are against the working directory).
    Script(String),
    /// `python3 -m pkg.mod`.
    Module(String),
    /// `python3 -c 'code'`.
    Code(String),
}

/// What to keep of bytecode caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PycMode {
    /// Sources plus their `__pycache__` entries when present.
    #[default]
    WithSource,
    /// Sources only.
    SourceOnly,
}

/// Input of [`python_closure`].
#[derive(Debug, Clone)]
pub struct PythonOptions {
    /// The interpreter as the container names it (`/usr/bin/python3`, or
    /// `python3` looked up in the env's `PATH`).
    pub interpreter: String,
    /// What runs. Several entries are unioned.
    pub entry: Vec<Entry>,
    /// The image's environment (`PYTHONPATH`, `PATH`, `HOME`, `LANG`…).
    pub env: BTreeMap<String, String>,
    /// The working directory (`WORKDIR`); `/` if empty.
    pub workdir: String,
    pub pyc: PycMode,
    /// `-S`: no `site`, no site-packages.
    pub no_site: bool,
    /// `-E`/`-I`: ignore `PYTHON*` variables.
    pub ignore_env: bool,
    /// `-s`/`-I`: no user site-packages.
    pub no_user_site: bool,
    /// `-P`/`-I`: no script directory in sys.path.
    pub safe_path: bool,
    /// `-O` (1) / `-OO` (2): which `.opt-N.pyc` to keep.
    pub optimize: u8,
    /// Follow every function-level import of the stdlib, not only those of
    /// functions whose name the closure uses.
    pub all_deferred_imports: bool,
    /// Keep `except ImportError:` fallbacks even when their `try` resolved.
    pub keep_import_fallbacks: bool,
    /// More modules to keep (`--keep-module`), with their imports.
    pub extra_modules: Vec<String>,
}

impl PythonOptions {
    pub fn new(interpreter: &str, entry: Vec<Entry>) -> PythonOptions {
        PythonOptions {
            interpreter: interpreter.to_string(),
            entry,
            env: BTreeMap::new(),
            workdir: "/".to_string(),
            pyc: PycMode::default(),
            no_site: false,
            ignore_env: false,
            no_user_site: false,
            safe_path: false,
            optimize: 0,
            all_deferred_imports: false,
            keep_import_fallbacks: false,
            extra_modules: Vec::new(),
        }
    }

    /// From a container command line (`ENTRYPOINT` + `CMD`) whose first word
    /// is a Python interpreter: parses the interpreter options that matter
    /// (`-m`, `-c`, `-S`, `-E`, `-s`, `-I`, `-P`, `-O`, and skips the others).
    /// `None` if no script, module or code is named.
    pub fn from_argv(argv: &[String], env: &[String], workdir: &str) -> Option<PythonOptions> {
        let mut o = PythonOptions::new(argv.first()?, Vec::new());
        o.env = env.iter().filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect();
        o.workdir = if workdir.is_empty() { "/".into() } else { workdir.into() };
        let mut i = 1;
        while i < argv.len() {
            let a = &argv[i];
            if a == "-" || !a.starts_with('-') {
                if a != "-" {
                    o.entry.push(Entry::Script(a.clone()));
                }
                break;
            }
            if a == "--" {
                if let Some(s) = argv.get(i + 1) {
                    o.entry.push(Entry::Script(s.clone()));
                }
                break;
            }
            if a.starts_with("--") {
                i += 1;
                continue;
            }
            // Bundled short options: `-uSm mod`, `-mmod`, `-c'code'`.
            let flags: Vec<char> = a[1..].chars().collect();
            let mut j = 0;
            let mut stop = false;
            while j < flags.len() {
                match flags[j] {
                    'm' | 'c' => {
                        let rest: String = flags[j + 1..].iter().collect();
                        let arg = if rest.is_empty() {
                            i += 1;
                            argv.get(i).cloned().unwrap_or_default()
                        } else {
                            rest
                        };
                        o.entry.push(if flags[j] == 'm' { Entry::Module(arg) } else { Entry::Code(arg) });
                        stop = true;
                        break;
                    }
                    'X' | 'W' => {
                        if j + 1 == flags.len() {
                            i += 1;
                        }
                        break;
                    }
                    'S' => o.no_site = true,
                    'E' => o.ignore_env = true,
                    's' => o.no_user_site = true,
                    'P' => o.safe_path = true,
                    'I' => {
                        o.ignore_env = true;
                        o.no_user_site = true;
                        o.safe_path = true;
                    }
                    'O' => o.optimize = (o.optimize + 1).min(2),
                    _ => {}
                }
                j += 1;
            }
            if stop {
                break;
            }
            i += 1;
        }
        if o.entry.is_empty() { None } else { Some(o) }
    }
}

/// Output of [`python_closure`].
#[derive(Debug, Clone, Default)]
pub struct PythonClosure {
    /// The interpreter binary's real path (for the ELF closure).
    pub interpreter: String,
    /// `(major, minor)`.
    pub version: (u32, u32),
    /// sys.path as the interpreter will build it (directories that exist).
    pub sys_path: Vec<String>,
    /// Container path → why it is needed (first few reasons).
    pub files: BTreeMap<String, Vec<String>>,
    /// Directories that must exist even if nothing in them is kept.
    pub directories: BTreeMap<String, String>,
    /// Extension modules kept (`.so`): the caller runs the ELF closure on them.
    pub extension_modules: Vec<String>,
    /// `(module, importer)` pairs that resolve nowhere.
    pub unresolved: Vec<(String, String)>,
    /// Every module found: name → file, `builtin`, or `namespace`.
    pub modules: BTreeMap<String, String>,
    /// Things worth knowing (sourceless modules, skipped fallbacks…).
    pub notes: Vec<String>,
}

impl PythonClosure {
    /// Total bytes of the files (symlinks count their own size).
    pub fn total_size(&self, rootfs: &Path) -> u64 {
        let fs = RootFs::new(rootfs);
        self.files.keys().map(|p| fs.size(p)).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    #[error("python interpreter {0} not found in the image")]
    InterpreterNotFound(String),
    #[error("cannot tell the Python version of {0} (no pythonX.Y name, pyvenv.cfg or lib/pythonX.Y)")]
    UnknownVersion(String),
    #[error("the standard library of {interpreter} is not where expected ({dir}/os.py)")]
    NoStdlib { interpreter: String, dir: String },
    #[error("entry {0} not found in the image")]
    EntryNotFound(String),
}

/// Reasons kept per file (the first ones; `explain` needs one chain, not all).
const MAX_REASONS: usize = 4;

/// Computes the Python closure of an application in `rootfs`.
pub fn python_closure(rootfs: &Path, opts: &PythonOptions) -> Result<PythonClosure, PythonError> {
    let mut w = Walker::new(rootfs, opts)?;
    w.run(opts)?;
    Ok(w.finish())
}

#[derive(Debug, Clone)]
enum Found {
    Builtin,
    /// A `.py` (or a package's `__init__.py`).
    Source {
        file: String,
        package_dirs: Option<Vec<String>>,
    },
    /// An extension module (or a package whose `__init__` is one).
    Extension {
        file: String,
        package_dirs: Option<Vec<String>>,
    },
    Sourceless {
        file: String,
        package_dirs: Option<Vec<String>>,
    },
    Namespace(Vec<String>),
}

impl Found {
    fn package_dirs(&self) -> Option<&[String]> {
        match self {
            Found::Builtin => None,
            Found::Namespace(d) => Some(d),
            Found::Source { package_dirs, .. }
            | Found::Extension { package_dirs, .. }
            | Found::Sourceless { package_dirs, .. } => package_dirs.as_deref(),
        }
    }
}

struct Request {
    module: String,
    reason: String,
    importer: String,
    /// Missing is fine (a `from m import name` tried as a submodule, an
    /// optional startup module).
    optional: bool,
    /// A file to scan directly as `__main__` instead of a module.
    main_file: Option<String>,
}

/// Something a function body does, waiting for the function to be used.
enum Deferred {
    Import(Request),
    /// A use: attribute (`true`) or bare name of the owning module.
    Use(bool, String),
    Codec(String, String),
}

enum Gate {
    Now,
    Later(String),
    Never,
}

struct Walker {
    fs: RootFs,
    tag: String,
    ext_suffixes: Vec<String>,
    builtins: BTreeSet<String>,
    stdlib: String,
    sys_path: Vec<String>,
    out: PythonClosure,
    found: HashMap<String, Option<Found>>,
    queue: VecDeque<Request>,
    done: BTreeSet<String>,
    /// Identifiers used by live code: `.:name` for attributes,
    /// `module:name` for bare names in a module's scope.
    live: BTreeSet<String>,
    /// What stdlib functions do, waiting for the function to be used: by
    /// function name, `(module of the function, what)`.
    pending: HashMap<String, Vec<(String, Deferred)>>,
    /// Codec name (normalised alias or module) → encodings submodule.
    codecs: BTreeMap<String, String>,
    optimize: u8,
    pyc: PycMode,
    all_deferred: bool,
    keep_fallbacks: bool,
}

impl Walker {
    fn new(rootfs: &Path, opts: &PythonOptions) -> Result<Walker, PythonError> {
        let mut fs = RootFs::new(rootfs);
        let env = |k: &str| if opts.ignore_env && k.starts_with("PYTHON") { None } else { opts.env.get(k).cloned() };
        let workdir = if opts.workdir.is_empty() { "/".to_string() } else { normalize(&opts.workdir) };
        let mut out = PythonClosure::default();

        // The interpreter, as the container finds it.
        let argv0 = if opts.interpreter.contains('/') {
            join(&workdir, &opts.interpreter)
        } else {
            let path = opts
                .env
                .get("PATH")
                .cloned()
                .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
            path.split(':')
                .map(|d| join(&join(&workdir, d), &opts.interpreter))
                .find(|p| fs.is_file(p))
                .ok_or_else(|| PythonError::InterpreterNotFound(opts.interpreter.clone()))?
        };
        let resolved = fs.resolve(&argv0).ok_or_else(|| PythonError::InterpreterNotFound(argv0.clone()))?;
        if !fs.is_file(&resolved.real) {
            return Err(PythonError::InterpreterNotFound(argv0));
        }
        let real = resolved.real.clone();
        out.interpreter = real.clone();

        // A venv: pyvenv.cfg beside the interpreter or one level up.
        let argv0_dir = parent(&argv0);
        let mut venv: Option<(String, BTreeMap<String, String>)> = None;
        for d in [argv0_dir.clone(), parent(&argv0_dir)] {
            let cfg = join(&d, "pyvenv.cfg");
            if let Some(text) = fs.read(&cfg) {
                venv = Some((d, layout::parse_cfg(&String::from_utf8_lossy(&text))));
                break;
            }
        }

        let prefix_of = |bin: &str| parent(&parent(bin));
        let mut prefix = prefix_of(&real);
        let version = layout::version_in(base_name(&real))
            .or_else(|| {
                venv.as_ref().and_then(|(_, cfg)| {
                    let v = cfg.get("version_info").or_else(|| cfg.get("version"))?;
                    let mut it = v.split('.');
                    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
                })
            })
            .or_else(|| {
                let libs = fs.list(&join(&prefix, "lib"))?;
                let mut vs = libs.iter().filter_map(|n| layout::version_in(n)).collect::<BTreeSet<_>>();
                vs.retain(|&(a, b)| a >= 3 && b < 100);
                if vs.len() == 1 { vs.into_iter().next() } else { None }
            })
            .ok_or_else(|| PythonError::UnknownVersion(real.clone()))?;
        out.version = version;
        let (maj, min) = version;
        let pyver = format!("python{maj}.{min}");

        // The stdlib: <prefix>/lib/pythonX.Y, found by its os.py landmark;
        // like getpath, fall back to the usual prefixes.
        if let Some((_, cfg)) = &venv
            && let Some(home) = cfg.get("home")
        {
            prefix = parent(&join("/", home));
        }
        let mut candidates = vec![prefix.clone()];
        candidates.extend(["/usr/local".to_string(), "/usr".to_string()]);
        let prefix =
            candidates.into_iter().find(|p| fs.is_file(&join(p, &format!("lib/{pyver}/os.py")))).ok_or_else(|| {
                PythonError::NoStdlib { interpreter: real.clone(), dir: join(&prefix, &format!("lib/{pyver}")) }
            })?;
        let stdlib = join(&prefix, &format!("lib/{pyver}"));
        let dynload = join(&stdlib, "lib-dynload");

        // Built-in modules: PyInit_ symbols of the binary and of libpython.
        let mut builtins = BTreeSet::new();
        let bin = fs.read(&real).unwrap_or_default();
        builtins.extend(layout::builtins_from_binary(&bin));
        for dir in [join(&prefix, "lib"), "/usr/lib".into(), "/usr/local/lib".into(), "/lib".into()] {
            let dirs: Vec<String> = std::iter::once(dir.clone())
                .chain(
                    fs.list(&dir)
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|n| n.ends_with("-linux-gnu"))
                        .map(|n| join(&dir, &n)),
                )
                .collect();
            for d in dirs {
                for n in fs.list(&d).unwrap_or_default() {
                    if n.starts_with(&format!("lib{pyver}")) && n.contains(".so") && contains(&bin, n.as_bytes()) {
                        let lib = join(&d, &n);
                        builtins.extend(layout::builtins_from_binary(&fs.read(&lib).unwrap_or_default()));
                    }
                }
            }
        }

        // Extension-module suffixes: the tagged one lib-dynload uses.
        let tag = format!("cpython-{maj}{min}");
        let mut ext_suffixes = Vec::new();
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for n in fs.list(&dynload).unwrap_or_default() {
            if let Some(i) = n.find(&format!(".{tag}-"))
                && n.ends_with(".so")
            {
                *counts.entry(n[i..].to_string()).or_default() += 1;
            }
        }
        if let Some((s, _)) = counts.into_iter().max_by_key(|(_, c)| *c) {
            ext_suffixes.push(s);
        }
        ext_suffixes.push(".abi3.so".into());
        ext_suffixes.push(".so".into());

        // sys.path.
        let mut sys_path = Vec::new();
        let main_dir = opts.entry.iter().find_map(|e| match e {
            Entry::Script(s) => {
                let p = join(&workdir, s);
                if fs.is_dir(&p) {
                    Some(p)
                } else {
                    // CPython resolves a symlinked script before taking its dir.
                    Some(parent(&fs.resolve(&p).map(|r| r.real).unwrap_or(p)))
                }
            }
            _ => None,
        });
        if !opts.safe_path {
            sys_path.push(main_dir.unwrap_or_else(|| workdir.clone()));
        }
        if let Some(pp) = env("PYTHONPATH") {
            for p in pp.split(':').filter(|p| !p.is_empty()) {
                sys_path.push(join(&workdir, p));
            }
        }
        let zip = join(&prefix, &format!("lib/python{maj}{min}.zip"));
        if fs.is_file(&zip) {
            sys_path.push(zip.clone());
        }
        sys_path.push(stdlib.clone());
        sys_path.push(dynload.clone());

        let mut w = Walker {
            fs,
            tag,
            ext_suffixes,
            builtins,
            stdlib: stdlib.clone(),
            sys_path: Vec::new(),
            out,
            found: HashMap::new(),
            queue: VecDeque::new(),
            done: BTreeSet::new(),
            live: BTreeSet::new(),
            pending: HashMap::new(),
            codecs: BTreeMap::new(),
            optimize: opts.optimize,
            pyc: opts.pyc,
            all_deferred: opts.all_deferred_imports,
            keep_fallbacks: opts.keep_import_fallbacks,
        };
        w.add_file(&argv0, "the Python interpreter");
        if w.fs.is_dir(&dynload) {
            w.add_dir(&dynload, "lib-dynload: the interpreter's exec-prefix landmark");
        }
        if w.fs.is_file(&zip) {
            w.add_file(&zip, "stdlib zip archive on sys.path");
        }
        if let Some((d, _)) = &venv {
            w.add_file(&join(d, "pyvenv.cfg"), "virtual environment configuration read at startup");
        }

        // site-packages, and the .pth files in them.
        if !opts.no_site {
            let mut sites = Vec::new();
            if let (Some(home), false) = (opts.env.get("HOME"), opts.no_user_site) {
                sites.push(join(home, &format!(".local/lib/{pyver}/site-packages")));
            }
            let debian =
                w.fs.read(&join(&stdlib, "site.py"))
                    .is_some_and(|s| String::from_utf8_lossy(&s).contains("dist-packages"));
            let mut prefixes = Vec::new();
            if let Some((_, cfg)) = &venv {
                sites.push(join(&parent(&argv0_dir), &format!("lib/{pyver}/site-packages")));

                if cfg.get("include-system-site-packages").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
                    prefixes.push(prefix.clone());
                }
            } else {
                prefixes.push(prefix.clone());
            }
            for p in prefixes {
                if debian {
                    sites.push(join(&p, &format!("local/lib/{pyver}/dist-packages")));
                    sites.push(join(&p, "lib/python3/dist-packages"));
                    sites.push(join(&p, &format!("lib/{pyver}/dist-packages")));
                }
                sites.push(join(&p, &format!("lib/{pyver}/site-packages")));
            }
            for site in sites {
                if !w.fs.is_dir(&site) || sys_path.contains(&site) {
                    continue;
                }
                w.add_dir(&site, "site-packages directory: site puts it on sys.path when it exists");
                sys_path.push(site.clone());

                let pths: Vec<String> =
                    w.fs.list(&site).unwrap_or_default().into_iter().filter(|n| n.ends_with(".pth")).collect();
                for pth in pths {
                    let file = join(&site, &pth);
                    let Some(text) = w.fs.read(&file) else { continue };
                    w.add_file(&file, &format!(".pth file in {site}, processed by site at startup"));
                    for line in String::from_utf8_lossy(&text).lines() {
                        if line.starts_with('#') || line.trim().is_empty() {
                            continue;
                        }
                        if line.starts_with("import ") || line.starts_with("import\t") {
                            let s = scan::scan(line.as_bytes());
                            w.enqueue_scan(&s, "__pth__", &file, false, false);
                            continue;
                        }
                        let dir = join(&site, line.trim_end());
                        if w.fs.is_dir(&dir) && !sys_path.contains(&dir) {
                            sys_path.push(dir);
                        }
                    }
                }
            }
        }
        w.sys_path = sys_path.clone();
        w.out.sys_path = sys_path;
        w.load_codecs();
        Ok(w)
    }

    fn run(&mut self, opts: &PythonOptions) -> Result<(), PythonError> {
        let startup = "required at interpreter startup";
        for m in knowledge::STARTUP_CORE.iter().chain(knowledge::STARTUP_CODECS) {
            self.push(m, startup, "the interpreter", false);
        }
        if !opts.no_site {
            for m in knowledge::STARTUP_SITE {
                self.push(m, "imported by site at startup", "the interpreter", false);
            }
            for m in knowledge::STARTUP_OPTIONAL {
                self.push(m, "imported by site at startup when present", "the interpreter", true);
            }
        }
        // Codecs the locale or PYTHONIOENCODING names.
        for var in ["LC_ALL", "LC_CTYPE", "LANG", "PYTHONIOENCODING"] {
            if let Some(v) = opts.env.get(var) {
                let cs = if var == "PYTHONIOENCODING" { v.split(':').next() } else { v.split_once('.').map(|x| x.1) };
                if let Some(cs) = cs.map(|c| c.split('@').next().unwrap_or(c))
                    && let Some(m) = self.codec_module(cs)
                {
                    self.push(&m, &format!("codec for {var}={v}"), "the interpreter", true);
                }
            }
        }
        for m in &opts.extra_modules {
            self.push(m, "kept on request", "--keep-module", false);
        }
        let workdir = if opts.workdir.is_empty() { "/".to_string() } else { normalize(&opts.workdir) };
        for e in &opts.entry {
            match e {
                Entry::Script(s) => {
                    let mut p = join(&workdir, s);
                    if self.fs.is_dir(&p) {
                        p = join(&p, "__main__.py");
                    }
                    if !self.fs.is_file(&p) {
                        return Err(PythonError::EntryNotFound(p));
                    }
                    self.add_file(&p, "application entry point");
                    self.queue.push_back(Request {
                        module: "__main__".into(),
                        reason: String::new(),
                        importer: p.clone(),
                        optional: false,
                        main_file: Some(p),
                    });
                }
                Entry::Module(m) => {
                    for r in knowledge::RUN_MODULE {
                        self.push(r, "runs `python -m`", "the interpreter", false);
                    }
                    self.push(m, "application entry module (-m)", "the command line", false);
                    self.push(
                        &format!("{m}.__main__"),
                        "run by -m when the entry is a package",
                        "the command line",
                        true,
                    );
                }
                Entry::Code(c) => {
                    let s = scan::scan(c.as_bytes());
                    self.enqueue_scan(&s, "__main__", "-c code", true, false);
                }
            }
        }
        while let Some(r) = self.queue.pop_front() {
            self.process(r);
        }
        Ok(())
    }

    fn finish(mut self) -> PythonClosure {
        self.out.unresolved.sort();
        self.out.unresolved.dedup();
        self.out.extension_modules.sort();
        self.out.extension_modules.dedup();
        self.out
    }

    fn push(&mut self, module: &str, reason: &str, importer: &str, optional: bool) {
        self.queue.push_back(Request {
            module: module.to_string(),
            reason: reason.to_string(),
            importer: importer.to_string(),
            optional,
            main_file: None,
        });
    }

    // ---- files -----------------------------------------------------------

    fn add_file(&mut self, path: &str, reason: &str) {
        let Some(r) = self.fs.resolve(path) else { return };
        for l in &r.links {
            let why = format!("symlink on the way to {} ({reason})", r.real);
            add_reason(&mut self.out.files, l, why);
        }
        add_reason(&mut self.out.files, &r.real, reason.to_string());
    }

    fn add_dir(&mut self, path: &str, reason: &str) {
        if let Some(r) = self.fs.resolve(path) {
            for l in &r.links {
                add_reason(&mut self.out.files, l, format!("symlink on the way to {} ({reason})", r.real));
            }
            self.out.directories.entry(r.real).or_insert_with(|| reason.to_string());
        }
    }

    /// A source file and its bytecode cache.
    fn add_source(&mut self, file: &str, reason: &str) {
        self.add_file(file, reason);
        if self.pyc == PycMode::SourceOnly {
            return;
        }
        let name = base_name(file);
        let Some(stem) = name.strip_suffix(".py") else { return };
        let cache = join(&parent(file), "__pycache__");
        let opt = match self.optimize {
            0 => String::new(),
            n => format!(".opt-{n}"),
        };
        let pyc = join(&cache, &format!("{stem}.{}{opt}.pyc", self.tag));
        if self.fs.is_file(&pyc) {
            self.add_file(&pyc, &format!("bytecode cache of {file}"));
        }
    }

    // ---- codecs ----------------------------------------------------------

    fn load_codecs(&mut self) {
        let dir = join(&self.stdlib, "encodings");
        for n in self.fs.list(&dir).unwrap_or_default() {
            if let Some(stem) = n.strip_suffix(".py")
                && stem != "__init__"
                && stem != "aliases"
            {
                self.codecs.insert(stem.to_string(), stem.to_string());
            }
        }
        if let Some(text) = self.fs.read(&join(&dir, "aliases.py")) {
            for line in tokenize::tokenize(&text) {
                if let [
                    tokenize::Tok::Str { value: Some(k) },
                    tokenize::Tok::Op(c),
                    tokenize::Tok::Str { value: Some(v) },
                    ..,
                ] = line.tokens.as_slice()
                    && c == ":"
                    && self.codecs.contains_key(v)
                {
                    self.codecs.insert(k.clone(), v.clone());
                }
            }
        }
    }

    /// The `encodings.*` module a codec name selects, as `codecs.lookup`
    /// normalises it.
    fn codec_module(&self, name: &str) -> Option<String> {
        if name.is_empty() || name.len() > 40 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_. ".contains(c))
        {
            return None;
        }
        let lower = name.to_ascii_lowercase();
        let mut norm = String::new();
        let mut pending = false;
        for c in lower.chars() {
            if c.is_ascii_alphanumeric() || c == '.' {
                if pending && !norm.is_empty() {
                    norm.push('_');
                }
                pending = false;
                norm.push(c);
            } else {
                pending = true;
            }
        }
        let m = self.codecs.get(&norm).or_else(|| self.codecs.get(&norm.replace('.', "_")))?;
        Some(format!("encodings.{m}"))
    }

    // ---- module resolution ------------------------------------------------

    fn find(&mut self, module: &str) -> Option<Found> {
        if let Some(f) = self.found.get(module) {
            return f.clone();
        }
        let f = self.find_uncached(module);
        self.found.insert(module.to_string(), f.clone());
        f
    }

    fn find_uncached(&mut self, module: &str) -> Option<Found> {
        if let Some((_, target)) = knowledge::ALIASES.iter().find(|(a, _)| *a == module) {
            return self.find(target);
        }
        let (dirs, name) = match module.rsplit_once('.') {
            None => {
                if self.builtins.contains(module) || knowledge::FROZEN_ONLY.contains(&module) {
                    return Some(Found::Builtin);
                }
                (self.sys_path.clone(), module.to_string())
            }
            Some((parent_mod, name)) => {
                if knowledge::FROZEN_ONLY.contains(&module) {
                    return Some(Found::Builtin);
                }
                let p = self.find(parent_mod)?;
                (p.package_dirs()?.to_vec(), name.to_string())
            }
        };
        if name.is_empty() {
            return None;
        }
        let mut portions = Vec::new();
        for d in dirs {
            let Some(list) = self.fs.list(&d) else { continue };
            if list.contains(&name) {
                let pkg = join(&d, &name);
                if self.fs.is_dir(&pkg) {
                    if let Some(f) = self.find_in(&pkg, "__init__", Some(vec![pkg.clone()])) {
                        return Some(f);
                    }
                    portions.push(pkg);
                }
            }
            if let Some(f) = self.find_in(&d, &name, None) {
                return Some(f);
            }
        }
        if portions.is_empty() { None } else { Some(Found::Namespace(portions)) }
    }

    /// `stem` + an import suffix in `dir`, in FileFinder's order.
    fn find_in(&mut self, dir: &str, stem: &str, package_dirs: Option<Vec<String>>) -> Option<Found> {
        let list = self.fs.list(dir)?;
        let mut exts: Vec<String> = self.ext_suffixes.iter().map(|s| format!("{stem}{s}")).collect();
        // Any tagged extension for another triplet spelling.
        let tagged = format!("{stem}.{}-", self.tag);
        exts.extend(list.iter().filter(|n| n.starts_with(&tagged) && n.ends_with(".so")).cloned());
        for n in exts {
            if list.contains(&n) && self.fs.is_file(&join(dir, &n)) {
                return Some(Found::Extension { file: join(dir, &n), package_dirs });
            }
        }
        let py = format!("{stem}.py");
        if list.contains(&py) && self.fs.is_file(&join(dir, &py)) {
            return Some(Found::Source { file: join(dir, &py), package_dirs });
        }
        let pyc = format!("{stem}.pyc");
        if list.contains(&pyc) && self.fs.is_file(&join(dir, &pyc)) {
            return Some(Found::Sourceless { file: join(dir, &pyc), package_dirs });
        }
        None
    }

    // ---- the walk ---------------------------------------------------------

    fn process(&mut self, r: Request) {
        if let Some(main) = &r.main_file {
            let src = self.fs.read(main).unwrap_or_default();
            let s = scan::scan(&src);
            self.enqueue_scan(&s, "__main__", main, true, false);
            return;
        }
        if let Some(pkg) = r.module.strip_suffix(".*").map(str::to_string) {
            self.star(&pkg, r);
            return;
        }
        let module = r.module.trim_matches('.').to_string();
        if module.is_empty() {
            return;
        }
        if let Some(target) = knowledge::C_IMPORTS.iter().find(|(m, _)| *m == module).map(|(_, t)| *t)
            && !self.done.contains(&module)
            && self.find(&module).is_some()
        {
            for t in target {
                if *t == "@sysconfigdata" {
                    let dir = self.stdlib.clone();
                    for n in self.fs.list(&dir).unwrap_or_default() {
                        if n.starts_with("_sysconfigdata_") && n.ends_with(".py") {
                            self.push(&n[..n.len() - 3], "imported by sysconfig by a computed name", &module, true);
                        }
                    }
                } else {
                    self.push(t, &format!("imported by the C code of {module}"), &module, true);
                }
            }
        }
        // Parents first: importing a.b.c runs a/__init__ and a/b/__init__.
        if let Some((p, _)) = module.rsplit_once('.')
            && !self.done.contains(p)
        {
            self.process(Request {
                module: p.to_string(),
                reason: format!("parent package of {module}"),
                importer: r.importer.clone(),
                optional: r.optional,
                main_file: None,
            });
        }
        let Some(found) = self.find(&module) else {
            if !r.optional {
                self.out.unresolved.push((module, r.importer));
            }
            return;
        };
        let reason = if r.reason.is_empty() {
            format!("module {module} (imported by {})", r.importer)
        } else {
            format!("module {module} ({})", r.reason)
        };
        let first = self.done.insert(module.clone());
        if first && module == "copyreg" {
            let uses = knowledge::PICKLE_DUNDERS.iter().map(|d| (None, d.to_string())).collect();
            self.mark_used(uses, "copyreg");
        }

        match &found {
            Found::Builtin => {
                self.out.modules.entry(module.clone()).or_insert_with(|| "builtin".into());
            }
            Found::Namespace(dirs) => {
                self.out.modules.entry(module.clone()).or_insert_with(|| "namespace".into());
                for d in dirs.clone() {
                    self.add_dir(&d, &format!("namespace package {module}"));
                }
            }
            Found::Source { file, .. } => {
                self.out.modules.entry(module.clone()).or_insert_with(|| file.clone());
                let file = file.clone();
                self.add_source(&file, &reason);
                if first {
                    let src = self.fs.read(&file).unwrap_or_default();
                    let s = scan::scan(&src);
                    let stdlib = file.starts_with(&format!("{}/", self.stdlib));
                    let is_pkg = found.package_dirs().is_some();
                    self.enqueue_scan(&s, &module, &file, !stdlib, is_pkg);
                }
            }
            Found::Extension { file, .. } => {
                self.out.modules.entry(module.clone()).or_insert_with(|| file.clone());
                let file = file.clone();
                self.add_file(&file, &reason);
                if let Some(real) = self.fs.resolve(&file) {
                    self.out.extension_modules.push(real.real);
                }
            }
            Found::Sourceless { file, .. } => {
                self.out.modules.entry(module.clone()).or_insert_with(|| file.clone());
                let file = file.clone();
                self.add_file(&file, &reason);
                if first {
                    self.out.notes.push(format!("{file}: sourceless module {module}, its imports are not analysed"));
                }
            }
        }
    }

    /// Marks identifiers as used by live code, releasing what waited for
    /// them (function bodies of that name: their imports, names, codecs).
    /// A use is `(None, name)` for an attribute (any module's function or
    /// method of that name) or `(Some(module), name)` for a bare name in
    /// that module's scope.
    fn mark_used(&mut self, uses: Vec<(Option<String>, String)>, file: &str) {
        let mut todo = uses;
        while let Some((scope, n)) = todo.pop() {
            let key = format!("{}:{n}", scope.as_deref().unwrap_or("."));
            if !self.live.insert(key) {
                continue;
            }
            if let Some((_, m)) = knowledge::NAME_IMPORTS.iter().find(|(k, _)| *k == n) {
                self.push(m, &format!("imported from C when `{n}` is called"), file, true);
            }
            let Some(list) = self.pending.get_mut(&n) else { continue };
            let released: Vec<(String, Deferred)>;
            if let Some(scope) = &scope {
                let (take, keep): (Vec<_>, Vec<_>) = std::mem::take(list).into_iter().partition(|(m, _)| m == scope);
                *list = keep;
                released = take;
            } else {
                released = self.pending.remove(&n).unwrap_or_default();
            }
            for (m, d) in released {
                match d {
                    Deferred::Import(r) => self.queue_request(r),
                    Deferred::Use(attr, u) => todo.push((if attr { None } else { Some(m) }, u)),
                    Deferred::Codec(lit, file) => self.push_codec(&lit, &file),
                }
            }
        }
    }

    /// Is function `f` of `module` used by live code?
    fn is_live(&self, module: &str, f: &str) -> bool {
        self.live.contains(&format!(".:{f}")) || self.live.contains(&format!("{module}:{f}"))
    }

    fn push_codec(&mut self, lit: &str, file: &str) {
        if let Some(m) = self.codec_module(lit) {
            self.push(&m, &format!("codec named \"{lit}\""), file, true);
        }
    }

    fn queue_request(&mut self, r: Request) {
        match r.module.strip_suffix(".*").map(str::to_string) {
            Some(pkg) => self.star(&pkg, r),
            None => self.queue.push_back(r),
        }
    }

    /// When code at `at` in `module` runs: now, once function `f` is used,
    /// or never.
    fn gate(&self, at: &scan::Where, module: &str, follow_all: bool) -> Gate {
        if at.main_guard && module != "__main__" {
            return Gate::Never;
        }
        match &at.function {
            None => Gate::Now,
            Some(f) => {
                let dunder = f.len() > 4
                    && f.starts_with("__")
                    && f.ends_with("__")
                    && !knowledge::PICKLE_DUNDERS.contains(&f.as_str());
                if follow_all || self.all_deferred || dunder || self.is_live(module, f) {
                    Gate::Now
                } else {
                    Gate::Later(f.clone())
                }
            }
        }
    }

    /// Queues what a scanned file imports. `follow_all`: app/site-packages
    /// code (every function counts as called); otherwise stdlib pruning.
    fn enqueue_scan(&mut self, s: &Scan, module: &str, file: &str, follow_all: bool, is_pkg: bool) {
        let mut now = Vec::new();
        // `from m import *`: this file's bare names may be m's functions.
        let star_from: Vec<String> = s
            .imports
            .iter()
            .filter(|i| i.names.iter().any(|n| n == "*"))
            .filter_map(|i| self.absolute(i, module, is_pkg))
            .collect();
        for (at, attr, n) in &s.uses {
            match self.gate(at, module, follow_all) {
                Gate::Now => {
                    now.push((if *attr { None } else { Some(module.to_string()) }, n.clone()));
                    if !*attr {
                        now.extend(star_from.iter().map(|m| (Some(m.clone()), n.clone())));
                    }
                }
                Gate::Later(f) => {
                    self.pending.entry(f).or_default().push((module.to_string(), Deferred::Use(*attr, n.clone())))
                }
                Gate::Never => {}
            }
        }
        for (at, lit) in &s.codec_literals {
            match self.gate(at, module, follow_all) {
                Gate::Now => self.push_codec(lit, file),
                Gate::Later(f) => self
                    .pending
                    .entry(f)
                    .or_default()
                    .push((module.to_string(), Deferred::Codec(lit.clone(), file.to_string()))),
                Gate::Never => {}
            }
        }
        // Which try blocks fully resolved (their ImportError fallbacks can go).
        let mut try_ok: HashMap<usize, bool> = HashMap::new();
        for imp in &s.imports {
            if let Some(t) = imp.in_try {
                let abs = self.absolute(imp, module, is_pkg);
                let ok = abs.is_some_and(|a| self.find(&a).is_some());
                let e = try_ok.entry(t).or_insert(true);
                *e = *e && ok;
            }
        }
        for imp in &s.imports {
            if let Some(t) = imp.fallback_of
                && !self.keep_fallbacks
                && try_ok.get(&t).copied().unwrap_or(false)
            {
                continue;
            }
            let Some(abs) = self.absolute(imp, module, is_pkg) else {
                let dead = imp.at.main_guard && module != "__main__";
                if !imp.dynamic && !dead {
                    let rel = format!("{}{}", ".".repeat(imp.level), imp.module);
                    self.out.unresolved.push((rel, file.to_string()));
                }
                continue;
            };
            if let Some(f) = &imp.at.function
                && !self.all_deferred
                && knowledge::NOT_AT_RUN_TIME
                    .iter()
                    .any(|(m, func, what)| *m == module && func == f && (*what == "*" || *what == abs))
            {
                continue;
            }
            let how = if imp.dynamic { "dynamically imported" } else { "imported" };
            let mut reqs = vec![Request {
                module: abs.clone(),
                reason: format!("{how} by {file}"),
                importer: file.to_string(),
                optional: false,
                main_file: None,
            }];
            for n in &imp.names {
                let (module, reason) = if n == "*" {
                    (format!("{abs}.*"), format!("`from {abs} import *` in {file}"))
                } else {
                    (format!("{abs}.{n}"), format!("`from {abs} import {n}` in {file}"))
                };
                reqs.push(Request { module, reason, importer: file.to_string(), optional: true, main_file: None });
            }
            // `from m import f`: f is used in m's scope.
            let imported: Vec<(Option<String>, String)> =
                imp.names.iter().filter(|n| *n != "*").map(|n| (Some(abs.clone()), n.clone())).collect();
            match self.gate(&imp.at, module, follow_all) {
                Gate::Now => {
                    reqs.into_iter().for_each(|r| self.queue_request(r));
                    now.extend(imported);
                }
                Gate::Later(f) => {
                    let p = self.pending.entry(f).or_default();
                    p.extend(reqs.into_iter().map(|r| (module.to_string(), Deferred::Import(r))));
                    // Released with the function: its from-imports count as uses in `abs`.
                    for (m, n) in imported {
                        p.push((m.unwrap_or_default(), Deferred::Use(false, n)));
                    }
                }
                Gate::Never => {}
            }
        }
        self.mark_used(now, file);
    }

    /// `from pkg import *`: the submodules `__all__` names.
    fn star(&mut self, pkg: &str, r: Request) {
        let Some(Found::Source { file, package_dirs: Some(_) }) = self.find(pkg) else { return };
        let src = self.fs.read(&file).unwrap_or_default();
        for n in scan::scan(&src).all {
            self.queue.push_back(Request {
                module: format!("{pkg}.{n}"),
                reason: r.reason.clone(),
                importer: r.importer.clone(),
                optional: true,
                main_file: None,
            });
        }
    }

    /// The absolute module name of an import made by `module`.
    fn absolute(&self, imp: &ImportRef, module: &str, is_pkg: bool) -> Option<String> {
        if imp.level == 0 {
            return if imp.module.is_empty() { None } else { Some(imp.module.clone()) };
        }
        if module == "__main__" || module == "__pth__" {
            return None;
        }
        let mut parts: Vec<&str> = module.split('.').collect();
        if !is_pkg {
            parts.pop();
        }
        for _ in 1..imp.level {
            parts.pop()?;
        }
        if parts.is_empty() {
            return None;
        }
        let mut abs = parts.join(".");
        if !imp.module.is_empty() {
            abs.push('.');
            abs.push_str(&imp.module);
        }
        Some(abs)
    }
}

fn add_reason(files: &mut BTreeMap<String, Vec<String>>, path: &str, reason: String) {
    let v = files.entry(path.to_string()).or_default();
    if v.len() < MAX_REASONS && !v.contains(&reason) {
        v.push(reason);
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
