//! The ELF closure of a root file system: which files a set of programs
//! needs at run time, each with the reasons it is needed, computed from the
//! files alone (nothing is executed, nothing outside the rootfs is read).
//!
//! # What is resolved, and how
//!
//! - **Programs** ([`Root::Program`]): the path as the container sees it
//!   (absolute, relative to [`ClosureOptions::workdir`], or a bare name looked
//!   up in `PATH`). The file and every symlink on the way to it are kept.
//!   - ELF: `PT_INTERP` (the loader), then every `DT_NEEDED`, breadth first
//!     and transitively, the way glibc's `ld.so` maps them (`elf/dl-load.c`,
//!     `elf/dl-deps.c`): a name already loaded (by the name it was loaded as,
//!     or its `DT_SONAME`, the loader's `PT_INTERP` path and SONAME included)
//!     is reused; a name with `/` is a path (DSTs expanded, relative to the
//!     working directory); any other name is searched in
//!     1. `DT_RPATH` of the requesting object and of each object up its chain
//!        of loaders, then of the executable — only when the requesting object
//!        has no `DT_RUNPATH` (an object with both ignores its `DT_RPATH`);
//!     2. `LD_LIBRARY_PATH` (from the image environment, `:`/`;` separated,
//!        `$ORIGIN` there is the executable's);
//!     3. `DT_RUNPATH` of the requesting object only;
//!     4. `/etc/ld.so.cache` of the rootfs (new `glibc-ld.so.cache1.1` and old
//!        `ld.so-1.7.0` formats; entries of the process' ABI only), unless the
//!        requesting object has `DF_1_NODEFLIB`;
//!     5. the default directories, unless `DF_1_NODEFLIB`: on a multiarch
//!        (Debian) rootfs `/lib/<triplet>`, `/usr/lib/<triplet>`, `/lib`,
//!        `/usr/lib` (what Debian's ld.so prints in `--help`); otherwise
//!        `/lib64`, `/usr/lib64` for 64-bit and `/lib`, `/usr/lib` for 32-bit.
//!
//!     `$ORIGIN`/`${ORIGIN}` (the directory of the object as it was found; for
//!     the executable, its symlink-free path, as `/proc/self/exe` gives it),
//!     `$LIB` and `$PLATFORM` are substituted. In every directory,
//!     `glibc-hwcaps/*/` variants are kept too (which one loads depends on
//!     the CPU). Candidates of another class, byte order or machine are
//!     skipped and the search goes on, as ld.so does; a candidate that is not
//!     ELF stops the search with an error, as ld.so's `open_verify` does.
//!     `LD_PRELOAD` and the rootfs' `/etc/ld.so.preload` are loaded before
//!     the executable's dependencies.
//!   - `#!` scripts: the interpreter (recursively, as the kernel does, at most
//!     4 levels); `#!/usr/bin/env [-S] NAME` also keeps `NAME` resolved
//!     through `PATH`.
//! - **Libraries** ([`Root::Library`]): a library and its dependencies, as if
//!   dlopen'ed by a program (its `DT_RPATH` and the environment apply), or
//!   standalone.
//! - **Directories** (`--keep /dir`): everything under them, each file
//!   analysed as a program.
//!
//! # Knowledge rules (what `DT_NEEDED` does not say)
//!
//! Applied per process whose closure holds glibc's `libc.so.6`, resolving the
//! dlopen'ed names as libc's own dependencies (that is where glibc dlopens
//! them from); a module that cannot be found is reported as not required:
//! - `libgcc_s.so.1` when an object of the process imports `pthread_cancel`
//!   or `pthread_exit` (glibc dlopens it to unwind);
//! - `libnss_<service>.so.2` for every service named in the rootfs'
//!   `/etc/nsswitch.conf`, except `files` and `dns` when libc defines
//!   `GLIBC_2.34` (built into libc since 2.34); without the file, glibc's
//!   defaults;
//! - the gconv modules directory next to libc (`<libdir>/gconv`) when an
//!   object imports `iconv_open`.
//!
//! Data files: `/etc/passwd`, `/etc/group` (always, when present);
//! `/etc/nsswitch.conf`, `/etc/ld.so.cache` (for glibc programs); the CA
//! bundle `/etc/ssl/certs/ca-certificates.crt` and OpenSSL's `openssl.cnf`
//! when libssl, libcrypto or libgnutls is in the closure; tzdata
//! (`/usr/share/zoneinfo`, `/etc/localtime`, `/etc/timezone`) only with
//! [`ClosureOptions::include_tzdata`].
//!
//! # Example
//!
//! ```no_run
//! use distill_slim::elf::{closure, ClosureOptions};
//! let opts = ClosureOptions::from_env(&["PATH=/usr/bin:/bin"]);
//! let c = closure("/tmp/rootfs".as_ref(), &["python3".to_string()], &opts).unwrap();
//! for (path, reasons) in &c.files {
//!     println!("{path}: {}", reasons[0]);
//! }
//! ```

mod analyze;
mod dst;
pub mod ldcache;
pub mod parse;
mod rootfs;
mod rules;
mod types;

use std::path::Path;

pub use ldcache::{CacheEntry, CacheFormat, LdCache};
pub use parse::{ElfInfo, Ident, parse as parse_elf};
pub use types::{Closure, ClosureOptions, ElfError, LddEntry, Missing, Reason, Root, Via};

/// The closure of `roots` (programs as the container names them: absolute
/// paths, paths relative to the working directory, or names looked up in
/// `PATH`; directories are kept whole) in the rootfs at `rootfs`.
///
/// Errors only for the roots themselves (not found, unreadable, a malformed
/// ELF file) and an unusable rootfs; what the roots need but cannot be found
/// is listed in [`Closure::missing`].
pub fn closure(rootfs: &Path, roots: &[String], opts: &ClosureOptions) -> Result<Closure, ElfError> {
    let roots: Vec<Root> = roots.iter().map(|r| Root::Program(r.clone())).collect();
    closure_of(rootfs, &roots, opts)
}

/// Like [`closure`], with library roots (e.g. Python extension modules,
/// dlopen'ed by the interpreter).
pub fn closure_of(rootfs: &Path, roots: &[Root], opts: &ClosureOptions) -> Result<Closure, ElfError> {
    analyze::Analyzer::new(rootfs, opts)?.run(roots)
}
