//! Paths inside a root directory that must never be left: the destination
//! root filesystem (as containerd's `fs.RootPath`: symlinks are followed as
//! if the root were `/`, `..` stops at it) and an ADD extraction directory
//! (as BuildKit's unpacker: absolute link targets restart at the extraction
//! directory, a relative one that climbs out of it is an error).
//!
//! Every path handed back is made of real directories only (each component
//! checked with `lstat`), so later calls on it cannot be redirected by a
//! symlink, as long as nothing else changes the tree meanwhile (a build
//! step's root filesystem has no other writer).

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fs::{self, DirBuilder, Metadata};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::error::{CopyError, Result};

/// Most symbolic links followed while resolving one path.
const MAX_SYMLINKS: usize = 255;

/// What a `..` that would leave the root does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escape {
    /// Stays at the root (a chroot's behaviour).
    Clamp,
    /// Is an error naming the path being resolved.
    Error,
}

/// Owner and time for directories created on the way.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NewDirs {
    /// `lchown` created directories to this (uid, gid); `None` leaves them
    /// to the caller (root).
    pub owner: Option<(u32, u32)>,
}

/// A resolved location.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// Absolute path on disk (real directories only, then the last name).
    pub path: PathBuf,
    /// Components below the root, for messages.
    pub rel: Vec<Vec<u8>>,
    /// `lstat` of the location when it exists.
    pub meta: Option<Metadata>,
}

/// A directory that resolution never leaves.
#[derive(Debug, Clone)]
pub(crate) struct Root {
    base: PathBuf,
    escape: Escape,
    /// Prefix for messages (`/` for the root filesystem, `/dest/` for an
    /// extraction directory shown inside it).
    shown: String,
}

fn lstat(p: &Path) -> io::Result<Option<Metadata>> {
    match fs::symlink_metadata(p) {
        Ok(m) => Ok(Some(m)),
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Root {
    /// `base` must be an absolute, symlink-free directory path.
    pub(crate) fn new(base: PathBuf, escape: Escape, shown: String) -> Root {
        Root { base, escape, shown }
    }

    pub(crate) fn base(&self) -> &Path {
        &self.base
    }

    /// `rel` as shown in messages.
    pub(crate) fn show(&self, rel: &[Vec<u8>]) -> String {
        let mut s = self.shown.clone();
        for (i, c) in rel.iter().enumerate() {
            if i > 0 || !s.ends_with('/') {
                s.push('/');
            }
            s.push_str(&String::from_utf8_lossy(c));
        }
        if s.is_empty() { "/".to_string() } else { s }
    }

    fn disk(&self, rel: &[Vec<u8>]) -> PathBuf {
        let mut p = self.base.clone();
        for c in rel {
            p.push(OsStr::from_bytes(c));
        }
        p
    }

    /// A path below the root given as components already known to be real
    /// directories (then a last name), e.g. a child of a resolved directory.
    pub(crate) fn join(&self, dir: &[Vec<u8>], name: &[u8]) -> (PathBuf, Vec<Vec<u8>>) {
        let mut rel = dir.to_vec();
        rel.push(name.to_vec());
        (self.disk(&rel), rel)
    }

    /// Resolves `path` (slash-separated; absolute or not, both are taken
    /// from the root). Symlinks on the way are followed inside the root;
    /// the last component is followed too when `follow_last`. With
    /// `create`, missing directories along the whole path are made (mode
    /// 0755) and the result is a directory; without it, the first missing
    /// component ends the walk and the rest is appended as written (`..`
    /// applied lexically, never above the root).
    pub(crate) fn resolve(&self, path: &[u8], follow_last: bool, create: Option<NewDirs>) -> Result<Resolved> {
        let mut queue: VecDeque<Vec<u8>> = path.split(|&b| b == b'/').map(<[u8]>::to_vec).collect();
        let mut cur: Vec<Vec<u8>> = Vec::new();
        let mut meta: Option<Metadata> = None;
        let mut links = 0;
        while let Some(comp) = queue.pop_front() {
            match comp.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    if cur.pop().is_none() && self.escape == Escape::Error {
                        return Err(CopyError::UnsafeArchiveEntry {
                            entry: String::from_utf8_lossy(path).into_owned(),
                            reason: "it resolves outside the extraction directory".to_string(),
                        });
                    }
                    meta = None;
                    continue;
                }
                _ => {}
            }
            let last = queue.iter().all(|c| c.is_empty() || c == b".");
            let mut cand = cur.clone();
            cand.push(comp.clone());
            let disk = self.disk(&cand);
            let m = lstat(&disk).map_err(|e| CopyError::io("lstat", self.show(&cand), e))?;
            let Some(m) = m else {
                if let Some(nd) = create {
                    DirBuilder::new()
                        .mode(0o755)
                        .create(&disk)
                        .map_err(|e| CopyError::io("mkdir", self.show(&cand), e))?;
                    if let Some((uid, gid)) = nd.owner {
                        std::os::unix::fs::lchown(&disk, Some(uid), Some(gid))
                            .map_err(|e| CopyError::io("lchown", self.show(&cand), e))?;
                    }
                    cur = cand;
                    meta = Some(fs::symlink_metadata(&disk).map_err(|e| CopyError::io("lstat", self.show(&cur), e))?);
                    continue;
                }
                // Missing: the rest is lexical.
                cur = cand;
                for c in queue {
                    match c.as_slice() {
                        b"" | b"." => {}
                        b".." => {
                            if cur.pop().is_none() && self.escape == Escape::Error {
                                return Err(CopyError::UnsafeArchiveEntry {
                                    entry: String::from_utf8_lossy(path).into_owned(),
                                    reason: "it resolves outside the extraction directory".to_string(),
                                });
                            }
                        }
                        _ => cur.push(c),
                    }
                }
                return Ok(Resolved { path: self.disk(&cur), rel: cur, meta: None });
            };
            if m.file_type().is_symlink() && (!last || follow_last || create.is_some()) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(CopyError::SymlinkLoop { path: self.show(&cand) });
                }
                let target = fs::read_link(&disk).map_err(|e| CopyError::io("readlink", self.show(&cand), e))?;
                let target = target.into_os_string().into_vec();
                if target.first() == Some(&b'/') {
                    cur.clear();
                }
                for part in target.split(|&b| b == b'/').rev() {
                    queue.push_front(part.to_vec());
                }
                meta = None;
                continue;
            }
            if !m.is_dir() && (!last || create.is_some()) {
                return Err(CopyError::NotADirectory { path: self.show(&cand) });
            }
            cur = cand;
            meta = Some(m);
        }
        let meta = match meta {
            Some(m) => Some(m),
            None => lstat(&self.disk(&cur)).map_err(|e| CopyError::io("lstat", self.show(&cur), e))?,
        };
        Ok(Resolved { path: self.disk(&cur), rel: cur, meta })
    }

    /// Resolves the directory `path`, creating what is missing.
    pub(crate) fn mkdir_all(&self, path: &[u8], dirs: NewDirs) -> Result<Resolved> {
        self.resolve(path, true, Some(dirs))
    }

    /// Resolves the parent of `path` (following everything) and keeps the
    /// last name unresolved: where an entry called `path` is to be created.
    /// `None` for the root itself.
    pub(crate) fn resolve_parent(&self, path: &[u8], create: Option<NewDirs>) -> Result<Option<(Resolved, Vec<u8>)>> {
        let comps: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".").collect();
        let Some((last, parent)) = comps.split_last() else {
            return Ok(None);
        };
        if *last == b".." {
            // Let the full resolution deal with it: `a/..` is `a`'s parent.
            return Ok(None);
        }
        let parent = parent.join(&b'/');
        let dir = match create {
            Some(nd) => self.mkdir_all(&parent, nd)?,
            None => self.resolve(&parent, true, None)?,
        };
        Ok(Some((dir, last.to_vec())))
    }
}
