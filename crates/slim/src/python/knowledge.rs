//! What CPython does that import statements do not show, as data.

/// Built-in modules with no `PyInit_` symbol of their own (created by the
/// interpreter core), always in `sys.builtin_module_names`.
pub const CORE_BUILTINS: &[&str] = &["sys", "builtins", "marshal", "_warnings", "_imp"];

/// Modules frozen into the interpreter (importlib's bootstrap): never read
/// from disk, so they need no file.
pub const FROZEN_ONLY: &[&str] = &[
    "_frozen_importlib",
    "_frozen_importlib_external",
    "importlib._bootstrap",
    "importlib._bootstrap_external",
    "zipimport",
];

/// Modules CPython imports before running the program, with `site` enabled
/// and without. Learned from `python3.11 -X importtime -c pass` in a Debian
/// bookworm rootfs (chroot), also true of 3.8–3.13 (`encodings.*` codecs the
/// locale needs come on top):
///
/// ```text
/// _io marshal posix _frozen_importlib_external time zipimport _codecs codecs
/// encodings.aliases encodings encodings.utf_8 _signal _abc abc io _stat stat
/// _collections_abc genericpath posixpath os _sitebuiltins sitecustomize
/// usercustomize site
/// ```
///
/// Since 3.11 several of them are frozen into the binary too, but their
/// sources stay: `os.py` is the landmark by which the interpreter finds its
/// prefix (without it, it warns "Could not find platform independent
/// libraries"), and tracebacks show their lines.
pub const STARTUP_CORE: &[&str] = &["encodings", "encodings.aliases", "encodings.utf_8", "codecs", "io", "abc"];
pub const STARTUP_SITE: &[&str] =
    &["site", "os", "stat", "posixpath", "genericpath", "_collections_abc", "_sitebuiltins"];
/// Imported by `site` only when found; absent is fine.
pub const STARTUP_OPTIONAL: &[&str] = &["sitecustomize", "usercustomize"];
/// Codecs kept whatever the locale: the C/POSIX locale (UTF-8 mode), the
/// `ascii` and `latin-1` fallbacks.
pub const STARTUP_CODECS: &[&str] = &["encodings.ascii", "encodings.latin_1"];
/// `python -m mod` runs it through runpy.
pub const RUN_MODULE: &[&str] = &["runpy", "importlib.machinery", "importlib.util"];

/// Python modules that C code imports (extension or built-in modules, and
/// the interpreter itself). Measured in the bookworm chroot by diffing
/// `sys.modules` around `import <ext>`.
pub const C_IMPORTS: &[(&str, &[&str])] = &[
    (
        "_asyncio",
        &[
            "asyncio",
            "asyncio.events",
            "asyncio.base_futures",
            "asyncio.exceptions",
            "asyncio.base_tasks",
            "asyncio.coroutines",
            "traceback",
            "weakref",
            "inspect",
        ],
    ),
    ("_curses_panel", &["_curses"]),
    ("_decimal", &["collections", "numbers", "contextvars"]),
    ("_sqlite3", &["collections", "functools"]),
    ("_zoneinfo", &["zoneinfo", "zoneinfo._common", "zoneinfo._tzpath", "datetime", "weakref"]),
    ("_elementtree", &["copy", "xml.etree.ElementPath", "pyexpat"]),
    ("_pickle", &["copyreg", "_compat_pickle", "functools"]),
    ("array", &["collections.abc"]),
    ("_testbuffer", &["struct"]),
    ("_datetime", &["time"]),
    ("_ssl", &["_socket"]),
    // The pickle protocol of every object goes through copyreg.
    ("copy", &["copyreg"]),
    // sysconfig imports its data module by a computed name.
    ("sysconfig", &["@sysconfigdata"]),
];

/// Identifiers whose use means a module is imported from C when called:
/// `time.strptime`/`datetime.strptime` import `_strptime`.
pub const NAME_IMPORTS: &[(&str, &str)] = &[("strptime", "_strptime")];

/// Special methods of the pickle/copy protocol: called only through
/// `copyreg` (which `copy`, `pickle` and `_pickle` import), so a function
/// of this name is live once `copyreg` is in the closure, not before.
pub const PICKLE_DUNDERS: &[&str] = &[
    "__reduce__",
    "__reduce_ex__",
    "__getstate__",
    "__setstate__",
    "__copy__",
    "__deepcopy__",
    "__getnewargs__",
    "__getnewargs_ex__",
];

/// Names a module installs in `sys.modules` for another one.
pub const ALIASES: &[(&str, &str)] = &[("os.path", "posixpath")];

/// Function-level imports of the stdlib that a program does not need even
/// though the function runs: `(module, function, imported module or *)`.
pub const NOT_AT_RUN_TIME: &[(&str, &str, &str)] = &[
    // The interactive prompt's readline/history setup.
    ("site", "register_readline", "*"),
    // Printing a traceback for a broken .pth line.
    ("site", "addpackage", "traceback"),
    // help(): interactive.
    ("_sitebuiltins", "__call__", "pydoc"),
    // The deprecated io.OpenWrapper alias warns.
    ("io", "__getattr__", "warnings"),
];
