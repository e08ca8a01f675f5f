//! Path resolution inside a root file system directory.
//!
//! Every path is walked component by component, the way the kernel walks it
//! inside a container whose `/` is the rootfs: symlinks with absolute targets
//! restart at the rootfs, `..` never climbs above it, and every symlink met on
//! the way (directory links such as `/lib -> usr/lib` included) is reported so
//! the closure can keep it as a link.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The kernel's limit on symlinks followed in one lookup (`ELOOP`).
const MAX_SYMLINKS: usize = 40;

/// A rootfs directory on the host.
#[derive(Debug, Clone)]
pub(crate) struct RootFs {
    root: PathBuf,
}

/// The outcome of resolving a path inside the rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// The canonical in-container path (no symlink in any component).
    pub real: String,
    /// Every symlink followed, as canonical in-container paths of the links
    /// themselves, in the order they were met.
    pub links: Vec<String>,
}

/// Why a path could not be resolved.
#[derive(Debug)]
pub(crate) enum ResolveError {
    /// A component does not exist (or a non-directory is used as one).
    NotFound,
    /// More than [`MAX_SYMLINKS`] symlinks.
    Loop,
    /// Any other I/O error.
    Io(io::Error),
}

impl RootFs {
    pub(crate) fn new(root: &Path) -> RootFs {
        RootFs { root: root.to_path_buf() }
    }

    /// The host path of a canonical in-container path.
    pub(crate) fn host(&self, real: &str) -> PathBuf {
        let rel = real.trim_start_matches('/');
        if rel.is_empty() { self.root.clone() } else { self.root.join(rel) }
    }

    /// Resolves `path` (absolute, or relative to `cwd`) following every
    /// symlink, the final component's included.
    pub(crate) fn resolve(&self, path: &str, cwd: &str) -> Result<Resolved, ResolveError> {
        self.walk(path, cwd, true)
    }

    /// Resolves every component but the last one (the last one may be a
    /// symlink, which is returned as is, or may not exist).
    pub(crate) fn resolve_parent(&self, path: &str, cwd: &str) -> Result<Resolved, ResolveError> {
        self.walk(path, cwd, false)
    }

    fn walk(&self, path: &str, cwd: &str, follow_last: bool) -> Result<Resolved, ResolveError> {
        let full = if path.starts_with('/') { path.to_string() } else { format!("{cwd}/{path}") };
        // Components still to walk, in reverse order (a stack).
        let mut todo: Vec<String> = split(&full).rev().map(str::to_string).collect();
        let mut cur: Vec<String> = Vec::new();
        let mut links = Vec::new();
        let mut hops = 0usize;
        while let Some(comp) = todo.pop() {
            match comp.as_str() {
                "." => continue,
                ".." => {
                    cur.pop();
                    continue;
                }
                _ => {}
            }
            let is_last = todo.is_empty();
            cur.push(comp);
            let in_container = join(&cur);
            let host = self.host(&in_container);
            let meta = match fs::symlink_metadata(&host) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if is_last && !follow_last {
                        break;
                    }
                    return Err(ResolveError::NotFound);
                }
                Err(e) if e.raw_os_error() == Some(20) => return Err(ResolveError::NotFound), // ENOTDIR
                Err(e) => return Err(ResolveError::Io(e)),
            };
            if meta.file_type().is_symlink() && (!is_last || follow_last) {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return Err(ResolveError::Loop);
                }
                let target = fs::read_link(&host).map_err(ResolveError::Io)?;
                let target = target.to_string_lossy().into_owned();
                links.push(in_container);
                cur.pop();
                if target.starts_with('/') {
                    cur.clear();
                }
                todo.extend(split(&target).rev().map(str::to_string));
            } else if !is_last && !meta.is_dir() {
                return Err(ResolveError::NotFound);
            }
        }
        Ok(Resolved { real: join(&cur), links })
    }

    /// Reads at most `limit` bytes from the start of a canonical path.
    pub(crate) fn read_head(&self, real: &str, limit: usize) -> io::Result<Vec<u8>> {
        let f = fs::File::open(self.host(real))?;
        let mut buf = Vec::with_capacity(limit.min(4096));
        f.take(limit as u64).read_to_end(&mut buf)?;
        Ok(buf)
    }

    /// Reads a whole canonical path, refusing anything bigger than `limit`.
    pub(crate) fn read(&self, real: &str, limit: u64) -> io::Result<Vec<u8>> {
        let f = fs::File::open(self.host(real))?;
        let len = f.metadata()?.len();
        if len > limit {
            return Err(io::Error::other(format!("{real}: {len} bytes is more than the {limit}-byte limit")));
        }
        let mut buf = Vec::with_capacity(len as usize);
        f.take(limit).read_to_end(&mut buf)?;
        Ok(buf)
    }

    /// Metadata of a canonical path, without following a final symlink.
    pub(crate) fn lstat(&self, real: &str) -> io::Result<fs::Metadata> {
        fs::symlink_metadata(self.host(real))
    }

    /// Names in a canonical directory, sorted.
    pub(crate) fn list_dir(&self, real: &str) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(self.host(real))? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }
}

fn split(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty())
}

fn join(components: &[String]) -> String {
    if components.is_empty() { "/".to_string() } else { format!("/{}", components.join("/")) }
}

/// Lexically normalises an in-container path (`.`, `..`, duplicate slashes),
/// making it absolute against `cwd`.
pub(crate) fn normalize(path: &str, cwd: &str) -> String {
    let full = if path.starts_with('/') { path.to_string() } else { format!("{cwd}/{path}") };
    let mut out: Vec<String> = Vec::new();
    for c in split(&full) {
        match c {
            "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c.to_string()),
        }
    }
    join(&out)
}

/// The directory part of an absolute in-container path (`/` for `/x`).
pub(crate) fn dirname(path: &str) -> String {
    match path.trim_end_matches('/').rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => path[..i].to_string(),
    }
}

/// The last component of a path.
pub(crate) fn basename(path: &str) -> &str {
    path.trim_end_matches('/').rsplit('/').next().unwrap_or(path)
}

/// Joins a directory and a name into an in-container path.
pub(crate) fn join_path(dir: &str, name: &str) -> String {
    if dir.ends_with('/') { format!("{dir}{name}") } else { format!("{dir}/{name}") }
}
