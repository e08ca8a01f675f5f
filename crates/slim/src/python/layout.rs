//! Reading the image's root file system: paths as the container sees them,
//! symlinks resolved inside the rootfs (never on the host), and the
//! interpreter's layout (version, prefix, sys.path, builtins).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

/// Symlink hops allowed while resolving one path (Linux's limit).
const MAX_LINKS: usize = 40;

/// A container path resolved inside the rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The path with every symlink resolved.
    pub real: String,
    /// Every symlink crossed on the way (container paths, in order).
    pub links: Vec<String>,
}

/// Lexical normalisation of an absolute container path (`.`/`..`/`//`).
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `dir` joined with `rel` (absolute `rel` wins), normalised.
pub fn join(dir: &str, rel: &str) -> String {
    if rel.starts_with('/') { normalize(rel) } else { normalize(&format!("{dir}/{rel}")) }
}

/// The parent directory of a container path (`/` for `/`).
pub fn parent(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => path[..i].to_string(),
    }
}

/// The last component of a container path.
pub fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The file system of the image, read through a cache.
pub struct RootFs {
    root: PathBuf,
    resolved: HashMap<String, Option<Resolved>>,
    listings: HashMap<String, Option<BTreeSet<String>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Other,
}

impl RootFs {
    pub fn new(root: &Path) -> RootFs {
        RootFs { root: root.to_path_buf(), resolved: HashMap::new(), listings: HashMap::new() }
    }

    /// The host path of a container path, without resolving anything.
    pub fn host(&self, path: &str) -> PathBuf {
        self.root.join(normalize(path).trim_start_matches('/'))
    }

    /// Resolves every symlink of `path` inside the rootfs. `None` when a
    /// component is missing or the links loop.
    pub fn resolve(&mut self, path: &str) -> Option<Resolved> {
        let path = normalize(path);
        if let Some(r) = self.resolved.get(&path) {
            return r.clone();
        }
        let r = self.resolve_uncached(&path);
        self.resolved.insert(path, r.clone());
        r
    }

    fn resolve_uncached(&self, path: &str) -> Option<Resolved> {
        let mut links = Vec::new();
        let mut todo: Vec<String> = path.split('/').filter(|c| !c.is_empty()).rev().map(str::to_string).collect();
        let mut cur: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = todo.pop() {
            match c.as_str() {
                "." => continue,
                ".." => {
                    cur.pop();
                    continue;
                }
                _ => {}
            }
            cur.push(c);
            let here = format!("/{}", cur.join("/"));
            let meta = fs::symlink_metadata(self.host(&here)).ok()?;
            if meta.file_type().is_symlink() {
                hops += 1;
                if hops > MAX_LINKS {
                    return None;
                }
                let target = fs::read_link(self.host(&here)).ok()?;
                let target = target.to_string_lossy().into_owned();
                links.push(here);
                cur.pop();
                if target.starts_with('/') {
                    cur.clear();
                }
                todo.extend(target.split('/').filter(|c| !c.is_empty()).rev().map(str::to_string));
            }
        }
        Some(Resolved { real: format!("/{}", cur.join("/")), links })
    }

    /// What `path` is, following symlinks inside the rootfs.
    pub fn kind(&mut self, path: &str) -> Option<Kind> {
        let r = self.resolve(path)?;
        let meta = fs::symlink_metadata(self.host(&r.real)).ok()?;
        Some(if meta.is_file() {
            Kind::File
        } else if meta.is_dir() {
            Kind::Dir
        } else {
            Kind::Other
        })
    }

    pub fn is_file(&mut self, path: &str) -> bool {
        self.kind(path) == Some(Kind::File)
    }

    pub fn is_dir(&mut self, path: &str) -> bool {
        self.kind(path) == Some(Kind::Dir)
    }

    /// The names in a directory (following symlinks), cached.
    pub fn list(&mut self, dir: &str) -> Option<BTreeSet<String>> {
        let real = self.resolve(dir)?.real;
        if let Some(l) = self.listings.get(&real) {
            return l.clone();
        }
        let l = fs::read_dir(self.host(&real))
            .ok()
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect());
        self.listings.insert(real, l.clone());
        l
    }

    /// Reads a file (following symlinks inside the rootfs).
    pub fn read(&mut self, path: &str) -> Option<Vec<u8>> {
        let r = self.resolve(path)?;
        fs::read(self.host(&r.real)).ok()
    }

    /// Size in bytes of the file itself (a symlink's own size for links).
    pub fn size(&self, path: &str) -> u64 {
        fs::symlink_metadata(self.host(path)).map(|m| m.len()).unwrap_or(0)
    }
}

/// `pyvenv.cfg` keys, lower-cased, trimmed.
pub fn parse_cfg(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect()
}

/// `3.11` from a name like `python3.11` / `python3.11d` / `libpython3.11.so`.
pub fn version_in(name: &str) -> Option<(u32, u32)> {
    let i = name.find("python")? + "python".len();
    let rest = &name[i..];
    let (maj, rest) = rest.split_once('.')?;
    let min: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    Some((maj.parse().ok()?, min.parse().ok()?))
}

/// Module names compiled into an interpreter image: the `PyInit_<name>`
/// symbols its dynamic symbol table exports (one per `_PyImport_Inittab`
/// entry), plus the core modules that have no `PyInit_` function.
pub fn builtins_from_binary(bytes: &[u8]) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = super::knowledge::CORE_BUILTINS.iter().map(|s| s.to_string()).collect();
    let needle = b"PyInit_";
    let mut i = 0;
    while i + needle.len() < bytes.len() {
        if &bytes[i..i + needle.len()] == needle && (i == 0 || bytes[i - 1] == 0) {
            let start = i + needle.len();
            let mut j = start;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                j += 1;
            }
            if j > start && j < bytes.len() && bytes[j] == 0 {
                out.insert(String::from_utf8_lossy(&bytes[start..j]).into_owned());
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(normalize("/a//b/./c/../d"), "/a/b/d");
        assert_eq!(normalize("/../.."), "/");
        assert_eq!(join("/app", "../x"), "/x");
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
        assert_eq!(version_in("python3.11"), Some((3, 11)));
        assert_eq!(version_in("libpython3.12.so.1.0"), Some((3, 12)));
        assert_eq!(version_in("python3"), None);
    }

    #[test]
    fn pyinit_symbols() {
        let b = builtins_from_binary(b"\0PyInit_posix\0PyInit_\0xPyInit_no\0PyInit__io\0PyInit_bad name\0");
        assert!(b.contains("posix") && b.contains("_io") && b.contains("sys"));
        assert!(!b.contains("no") && !b.contains("bad") && !b.contains(""));
    }
}
