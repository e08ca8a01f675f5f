//! Public types of the ELF closure: options, roots, results, reasons, errors.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::PathBuf;

use serde::Serialize;

/// Debian's default `PATH` (also Docker's when an image sets none).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How to analyse: the image environment and what to add by knowledge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosureOptions {
    /// The image's `PATH` (`:`-separated), for bare root names and
    /// `#!/usr/bin/env NAME`.
    pub env_path: String,
    /// The image's `LD_LIBRARY_PATH`, if set.
    pub ld_library_path: Option<String>,
    /// The image's `LD_PRELOAD`, if set (space or `:` separated).
    pub ld_preload: Option<String>,
    /// The working directory (image `WorkingDir`), for relative paths.
    pub workdir: String,
    /// Keep `/usr/share/zoneinfo`, `/etc/localtime`, `/etc/timezone`.
    pub include_tzdata: bool,
    /// Keep `/etc/passwd`, `/etc/group`, `/etc/nsswitch.conf`,
    /// `/etc/ld.so.cache` and the CA bundle rules.
    pub data_files: bool,
    /// Apply the dlopen rules (libgcc_s, NSS modules, gconv).
    pub dlopen_rules: bool,
    /// What `$LIB` expands to; by default from the rootfs layout
    /// (`lib/x86_64-linux-gnu` on Debian, `lib64` or `lib` elsewhere).
    pub lib_token: Option<String>,
    /// What `$PLATFORM` expands to; by default the machine's `AT_PLATFORM`
    /// (`x86_64`, `aarch64`, `i686`, …).
    pub platform: Option<String>,
}

impl Default for ClosureOptions {
    fn default() -> Self {
        ClosureOptions {
            env_path: DEFAULT_PATH.to_string(),
            ld_library_path: None,
            ld_preload: None,
            workdir: "/".to_string(),
            include_tzdata: false,
            data_files: true,
            dlopen_rules: true,
            lib_token: None,
            platform: None,
        }
    }
}

impl ClosureOptions {
    /// Options from an image config's `Env` (`KEY=VALUE` strings): `PATH`,
    /// `LD_LIBRARY_PATH`, `LD_PRELOAD`; everything else at its default.
    pub fn from_env<S: AsRef<str>>(env: &[S]) -> ClosureOptions {
        let mut opts = ClosureOptions::default();
        for kv in env {
            let Some((k, v)) = kv.as_ref().split_once('=') else { continue };
            match k {
                "PATH" => opts.env_path = v.to_string(),
                "LD_LIBRARY_PATH" => opts.ld_library_path = Some(v.to_string()),
                "LD_PRELOAD" => opts.ld_preload = Some(v.to_string()),
                _ => {}
            }
        }
        opts
    }
}

/// Something whose closure is wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// A program (ELF executable, `#!` script), a data file or a directory
    /// to keep whole: absolute, relative to the working directory, or a bare
    /// name looked up in `PATH`.
    Program(String),
    /// A shared library loaded at run time (dlopen, a Python extension
    /// module): resolved as if `loaded_by` (a program) dlopen'ed it, so the
    /// program's `DT_RPATH`, `LD_LIBRARY_PATH` and already-loaded libraries
    /// apply; standalone when `None`.
    Library {
        /// The library's path in the rootfs.
        path: String,
        /// The program that loads it.
        loaded_by: Option<String>,
    },
}

/// How a `DT_NEEDED` name was found (the step of ld.so's search).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Via {
    /// The name contains `/`: used as a path.
    Path,
    /// `DT_RPATH` of `of` (the requester or one of its loaders).
    Rpath {
        /// The object whose DT_RPATH matched.
        of: String,
    },
    /// `LD_LIBRARY_PATH`.
    LdLibraryPath,
    /// `DT_RUNPATH` of the requester.
    Runpath,
    /// `/etc/ld.so.cache`.
    LdSoCache,
    /// A default directory.
    DefaultDir,
    /// Already loaded in the process (same name or SONAME).
    AlreadyLoaded,
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Via::Path => write!(f, "used as a path"),
            Via::Rpath { of } => write!(f, "found via DT_RPATH of {of}"),
            Via::LdLibraryPath => write!(f, "found via LD_LIBRARY_PATH"),
            Via::Runpath => write!(f, "found via DT_RUNPATH"),
            Via::LdSoCache => write!(f, "found via /etc/ld.so.cache"),
            Via::DefaultDir => write!(f, "found in a default directory"),
            Via::AlreadyLoaded => write!(f, "already loaded"),
        }
    }
}

/// Why a file is in the closure. `Display` renders a sentence for
/// `distill explain`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// A root as requested (`given` is how it was named).
    Root {
        /// The root as given.
        given: String,
    },
    /// Inside a directory root.
    Kept {
        /// The directory root.
        root: String,
    },
    /// `PT_INTERP` of a program.
    Interpreter {
        /// The program.
        of: String,
    },
    /// A `DT_NEEDED` entry.
    Needed {
        /// The DT_NEEDED string.
        name: String,
        /// The object that needs it.
        by: String,
        /// How ld.so finds it.
        via: Via,
    },
    /// `LD_PRELOAD` or `/etc/ld.so.preload`.
    Preload {
        /// The name preloaded.
        name: String,
        /// `LD_PRELOAD` or `/etc/ld.so.preload`.
        source: String,
    },
    /// A library root dlopen'ed by a program (or standalone).
    Library {
        /// The program loading it.
        loaded_by: Option<String>,
    },
    /// A symlink met on the way to `target` (every link of the chain is kept).
    Symlink {
        /// The file the chain ends at.
        target: String,
    },
    /// A `glibc-hwcaps` variant of a library (the CPU picks one at run time).
    HwcapsVariant {
        /// The baseline library.
        of: String,
    },
    /// The `#!` interpreter of a script.
    Shebang {
        /// The script.
        script: String,
    },
    /// A program run through `/usr/bin/env` in a `#!` line.
    EnvProgram {
        /// The program name, as written.
        program: String,
        /// The script.
        script: String,
    },
    /// A library glibc dlopens (libgcc_s for thread cancellation).
    Dlopen {
        /// The name dlopen'ed.
        name: String,
        /// The library that dlopens it.
        by: String,
        /// Why.
        why: String,
    },
    /// An NSS module named in nsswitch.conf.
    Nss {
        /// The database (`passwd`, `hosts`, …).
        database: String,
        /// The service (`files`, `compat`, …).
        service: String,
    },
    /// A gconv module or its configuration (iconv is used).
    Gconv {
        /// The object importing `iconv_open`.
        importer: String,
    },
    /// A data file kept by rule.
    Data {
        /// The rule's explanation.
        why: String,
    },
    /// tzdata, kept on request.
    Tzdata,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Root { given } => write!(f, "requested root `{given}`"),
            Reason::Kept { root } => write!(f, "inside kept directory {root}"),
            Reason::Interpreter { of } => write!(f, "PT_INTERP of {of}"),
            Reason::Needed { name, by, via } => write!(f, "DT_NEEDED {name} of {by} ({via})"),
            Reason::Preload { name, source } => write!(f, "{name} preloaded by {source}"),
            Reason::Library { loaded_by: Some(p) } => write!(f, "library loaded at run time by {p}"),
            Reason::Library { loaded_by: None } => write!(f, "requested library"),
            Reason::Symlink { target } => write!(f, "symlink in the chain to {target}"),
            Reason::HwcapsVariant { of } => write!(f, "glibc-hwcaps variant of {of}"),
            Reason::Shebang { script } => write!(f, "#! interpreter of {script}"),
            Reason::EnvProgram { program, script } => {
                write!(f, "program `{program}` run by env in the #! line of {script}")
            }
            Reason::Dlopen { name, by, why } => write!(f, "{name} dlopen'ed by {by}: {why}"),
            Reason::Nss { database, service } => {
                write!(f, "NSS module for '{database}: {service}' in /etc/nsswitch.conf")
            }
            Reason::Gconv { importer } => write!(f, "gconv (iconv) module: {importer} imports iconv_open"),
            Reason::Data { why } => write!(f, "{why}"),
            Reason::Tzdata => write!(f, "time zone data (requested)"),
        }
    }
}

/// Something a root needs that is not in the rootfs (or cannot be used).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Missing {
    /// The name asked for (a DT_NEEDED string, a program, a module, a file).
    pub name: String,
    /// Who needs it.
    pub needed_by: String,
    /// `true`: the program will not start (DT_NEEDED, PT_INTERP, a `#!`
    /// interpreter); `false`: a dlopen'ed module or data file the program
    /// copes without (it may fail later on the feature needing it).
    pub required: bool,
    /// Details: what was searched, what was skipped and why.
    pub detail: String,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.required { "missing" } else { "optional, missing" };
        write!(f, "{kind}: {} needed by {}: {}", self.name, self.needed_by, self.detail)
    }
}

/// One object a program maps, as `ld.so --list` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LddEntry {
    /// The name it was asked for (DT_NEEDED string, PT_INTERP path).
    pub name: String,
    /// The path ld.so opens (as found, before symlinks are resolved).
    pub path: String,
}

/// The result: files (in-container absolute paths, symlinks included as
/// links) with the reasons they are needed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Closure {
    /// Every path to keep, with why. Symlinks appear under their own path
    /// (keep them as links); directories (from directory roots) too.
    pub files: BTreeMap<String, Vec<Reason>>,
    /// What could not be found.
    pub missing: Vec<Missing>,
    /// Per program (its symlink-free path): the objects it maps at start-up,
    /// in load order, loader first — what `ld.so --list` prints (preloads and
    /// DT_NEEDED; not what the dlopen rules or library roots add).
    pub ldd: BTreeMap<String, Vec<LddEntry>>,
}

impl Closure {
    /// The reasons `path` is in the closure (empty when it is not).
    pub fn explain(&self, path: &str) -> Vec<Reason> {
        let key = super::rootfs::normalize(path, "/");
        self.files.get(&key).cloned().unwrap_or_default()
    }

    /// Whether `path` is in the closure.
    pub fn contains(&self, path: &str) -> bool {
        self.files.contains_key(&super::rootfs::normalize(path, "/"))
    }

    /// Adds `reason` for `path` (no duplicates).
    pub fn insert(&mut self, path: &str, reason: Reason) {
        let reasons = self.files.entry(path.to_string()).or_default();
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    }

    /// The union with another closure (reasons and missing entries merged).
    pub fn add(&mut self, other: Closure) {
        for (path, reasons) in other.files {
            for r in reasons {
                self.insert(&path, r);
            }
        }
        for m in other.missing {
            self.note_missing(m);
        }
        for (prog, entries) in other.ldd {
            self.ldd.entry(prog).or_insert(entries);
        }
    }

    /// Records a missing entry (no duplicates).
    pub fn note_missing(&mut self, m: Missing) {
        if !self.missing.contains(&m) {
            self.missing.push(m);
        }
    }

    /// The missing entries that stop a program from starting.
    pub fn unresolved(&self) -> impl Iterator<Item = &Missing> {
        self.missing.iter().filter(|m| m.required)
    }
}

/// Errors of the analysis (only for roots and the rootfs; see [`Closure::missing`]).
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// The rootfs directory is not usable.
    #[error("root file system {path}: {source}")]
    Rootfs {
        /// The rootfs.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A root does not exist in the rootfs (or not in PATH).
    #[error("{root}: not found in the root file system")]
    RootNotFound {
        /// The root as given.
        root: String,
    },
    /// Too many symlinks.
    #[error("{path}: too many levels of symbolic links")]
    SymlinkLoop {
        /// The path.
        path: String,
    },
    /// Reading a root failed.
    #[error("{path}: {source}")]
    Io {
        /// The in-container path.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A root is an ELF file that cannot be parsed.
    #[error("{path}: {message}")]
    Malformed {
        /// The in-container path.
        path: String,
        /// The parser's message.
        message: String,
    },
}
