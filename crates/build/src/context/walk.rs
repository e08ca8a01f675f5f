//! The build context on disk: resolving COPY/ADD sources like BuildKit and
//! walking the selected trees, with `.dockerignore` applied as if excluded
//! files had never been sent.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::ffi::{CStr, OsStr, OsString};
use std::fs::{self, Metadata};
use std::io;
use std::mem::MaybeUninit;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;
use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, Mode, OFlags, RawDir, StatxFlags};

use super::error::{ContextError, Result};
use super::gomatch::{self, contains_wildcards, go_match};
use super::hash::{self, HashCache};
use super::ignore::{IgnoreMatcher, MatchState, load_ignore};

/// Bytes of directory entries read per `getdents64` call.
const DENTS_BUF: usize = 64 * 1024;

/// Most symbolic links followed while resolving one source (as Linux and
/// containerd's `fs.RootPath` allow).
const MAX_SYMLINKS: usize = 255;

/// The type of a context entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link (kept as a link inside a copied tree).
    Symlink,
    /// Named pipe.
    Fifo,
    /// Unix socket.
    Socket,
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
}

impl EntryKind {
    /// A one-byte code (`f d l p s c b`, as `find -type`), for cache keys
    /// and the copy index.
    pub fn code(self) -> u8 {
        match self {
            EntryKind::File => b'f',
            EntryKind::Dir => b'd',
            EntryKind::Symlink => b'l',
            EntryKind::Fifo => b'p',
            EntryKind::Socket => b's',
            EntryKind::CharDevice => b'c',
            EntryKind::BlockDevice => b'b',
        }
    }

    /// The kind of a [`EntryKind::code`].
    pub fn from_code(code: u8) -> Option<EntryKind> {
        Some(match code {
            b'f' => EntryKind::File,
            b'd' => EntryKind::Dir,
            b'l' => EntryKind::Symlink,
            b'p' => EntryKind::Fifo,
            b's' => EntryKind::Socket,
            b'c' => EntryKind::CharDevice,
            b'b' => EntryKind::BlockDevice,
            _ => return None,
        })
    }
}

impl EntryKind {
    /// The kind of a `st_mode`/`stx_mode` (its `S_IFMT` bits).
    fn from_mode(mode: u32) -> EntryKind {
        match mode & libc_mode::S_IFMT {
            libc_mode::S_IFDIR => EntryKind::Dir,
            libc_mode::S_IFLNK => EntryKind::Symlink,
            libc_mode::S_IFIFO => EntryKind::Fifo,
            libc_mode::S_IFSOCK => EntryKind::Socket,
            libc_mode::S_IFCHR => EntryKind::CharDevice,
            libc_mode::S_IFBLK => EntryKind::BlockDevice,
            _ => EntryKind::File,
        }
    }

    fn from_metadata(meta: &Metadata) -> EntryKind {
        EntryKind::from_mode(meta.mode())
    }
}

/// The file-type bits of a mode, as Linux defines them.
mod libc_mode {
    pub const S_IFMT: u32 = 0o170000;
    pub const S_IFSOCK: u32 = 0o140000;
    pub const S_IFLNK: u32 = 0o120000;
    pub const S_IFBLK: u32 = 0o060000;
    pub const S_IFDIR: u32 = 0o040000;
    pub const S_IFCHR: u32 = 0o020000;
    pub const S_IFIFO: u32 = 0o010000;
}

/// One file, directory or link selected from the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path in the context as the source names it, relative to the context
    /// root (`.` is the root itself). A source without wildcards keeps the
    /// names it was given, links included (`link/file`); for a wildcard
    /// source the directory part in front of the first wildcard is shown
    /// resolved, as BuildKit reports it.
    pub rel_path: PathBuf,
    /// Path below the matched source: empty for the match itself, `a/b` for
    /// a file two levels inside a matched directory. COPY puts an entry at
    /// `<dest>/<sub_path>` for directory matches.
    pub sub_path: PathBuf,
    /// Absolute path on disk to read this entry from (symlinks in the source
    /// path resolved, within the context).
    pub disk_path: PathBuf,
    /// File type.
    pub kind: EntryKind,
    /// Permission bits including setuid, setgid and sticky (`mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes (of the link text for symlinks).
    pub size: u64,
    /// Target of a symbolic link, as stored.
    pub link_target: Option<PathBuf>,
    /// Device number for character and block devices.
    pub rdev: u64,
    /// Hard-link count.
    pub nlink: u64,
    /// Device of the file system holding the entry.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Modification time, nanoseconds since the epoch (never hashed).
    pub mtime_ns: i64,
    /// Status-change time, nanoseconds since the epoch (never hashed).
    pub ctime_ns: i64,
}

impl Entry {
    fn new(rel_path: PathBuf, sub_path: PathBuf, disk_path: PathBuf, meta: &Metadata) -> Result<Entry> {
        let kind = EntryKind::from_metadata(meta);
        let link_target = if kind == EntryKind::Symlink {
            Some(fs::read_link(&disk_path).map_err(|e| ContextError::io("readlink", &disk_path, e))?)
        } else {
            None
        };
        Ok(Entry {
            rel_path,
            sub_path,
            disk_path,
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            size: meta.size(),
            link_target,
            rdev: meta.rdev(),
            nlink: meta.nlink(),
            dev: meta.dev(),
            ino: meta.ino(),
            mtime_ns: meta.mtime().saturating_mul(1_000_000_000).saturating_add(meta.mtime_nsec()),
            ctime_ns: meta.ctime().saturating_mul(1_000_000_000).saturating_add(meta.ctime_nsec()),
        })
    }

    /// An entry of a directory being walked, from its `statx` (one syscall,
    /// relative to the open directory) and, for a link, its target.
    fn from_statx(
        rel_path: PathBuf,
        sub_path: PathBuf,
        disk_path: PathBuf,
        st: &rustix::fs::Statx,
        link_target: Option<PathBuf>,
    ) -> Entry {
        let ns = |t: &rustix::fs::StatxTimestamp| {
            t.tv_sec.saturating_mul(1_000_000_000).saturating_add(i64::from(t.tv_nsec))
        };
        let mode = u32::from(st.stx_mode);
        Entry {
            rel_path,
            sub_path,
            disk_path,
            kind: EntryKind::from_mode(mode),
            mode: mode & 0o7777,
            uid: st.stx_uid,
            gid: st.stx_gid,
            size: st.stx_size,
            link_target,
            rdev: rustix::fs::makedev(st.stx_rdev_major, st.stx_rdev_minor),
            nlink: u64::from(st.stx_nlink),
            dev: rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor),
            ino: st.stx_ino,
            mtime_ns: ns(&st.stx_mtime),
            ctime_ns: ns(&st.stx_ctime),
        }
    }

    /// True for the entry a source pattern matched (not something inside it).
    pub fn is_match_root(&self) -> bool {
        self.sub_path.as_os_str().is_empty()
    }
}

/// How [`Context::select_with`] treats a wildcard that matches nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SelectOptions {
    /// Return an empty list instead of [`ContextError::NoMatch`]. BuildKit's
    /// Dockerfile frontend sets this for COPY/ADD (`AllowEmptyWildcard`), so
    /// `COPY requirements*.txt ./` is a no-op when nothing matches; the
    /// classic builder failed with "no source files were specified".
    pub allow_empty_wildcard: bool,
}

/// A build-context directory with its `.dockerignore` rules and file hash cache.
#[derive(Debug)]
pub struct Context {
    root: PathBuf,
    matcher: IgnoreMatcher,
    cache: HashCache,
    /// Excluded directories (by real path) → whether something inside is
    /// re-included, which makes them part of the context after all.
    reincluded: Mutex<HashMap<Vec<u8>, bool>>,
}

/// Outcome of resolving a path inside the context.
enum Resolve {
    Found { real: Vec<u8>, meta: Metadata },
    NotFound,
    Excluded,
    Loop,
}

impl Context {
    /// Opens the context directory `root` with the given ignore rules.
    pub fn open(root: impl AsRef<Path>, matcher: IgnoreMatcher) -> Result<Context> {
        let given = root.as_ref();
        let root = fs::canonicalize(given).map_err(|e| ContextError::io("open build context", given, e))?;
        let meta = fs::metadata(&root).map_err(|e| ContextError::io("stat", &root, e))?;
        if !meta.is_dir() {
            return Err(ContextError::NotADirectory { path: given.to_path_buf() });
        }
        Ok(Context { root, matcher, cache: HashCache::new(), reincluded: Mutex::new(HashMap::new()) })
    }

    /// Opens `root` with the ignore file found by [`load_ignore`].
    pub fn open_with_dockerignore(root: impl AsRef<Path>, dockerfile: Option<&Path>) -> Result<Context> {
        let matcher = load_ignore(root.as_ref(), dockerfile)?;
        Context::open(root, matcher)
    }

    /// Uses `cache` for file content hashes (e.g. one loaded from disk).
    pub fn with_hash_cache(mut self, cache: HashCache) -> Context {
        self.cache = cache;
        self
    }

    /// The canonical absolute path of the context directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The ignore rules in force.
    pub fn matcher(&self) -> &IgnoreMatcher {
        &self.matcher
    }

    /// The file hash cache (hit/miss counters, saving).
    pub fn hash_cache(&self) -> &HashCache {
        &self.cache
    }

    /// Gives back the hash cache, e.g. to save it after a build.
    pub fn into_hash_cache(self) -> HashCache {
        self.cache
    }

    /// Every entry of the context that `.dockerignore` leaves in, root first.
    pub fn walk(&self) -> Result<Vec<Entry>> {
        self.select(".")
    }

    /// Resolves one COPY/ADD source like BuildKit: the pattern is rooted at
    /// the context (`..` and a leading `/` cannot leave it); each component
    /// after the first one holding a wildcard is matched with Go's
    /// `filepath.Match`; symlinks on the way, and a matched symlink itself,
    /// are followed within the context; a matched directory yields its whole
    /// subtree (links inside stay links). Excluded paths do not exist.
    /// Entries come parent first, in path order per match.
    ///
    /// A wildcard that matches nothing is [`ContextError::NoMatch`]; see
    /// [`Context::select_with`] for BuildKit's lenient behaviour.
    pub fn select(&self, pattern: &str) -> Result<Vec<Entry>> {
        self.select_with(pattern, &SelectOptions::default())
    }

    /// [`Context::select`] with options.
    pub fn select_with(&self, pattern: &str, opts: &SelectOptions) -> Result<Vec<Entry>> {
        let mut rooted = b"/".to_vec();
        rooted.extend_from_slice(pattern.as_bytes());
        let cleaned = gomatch::clean(&rooted);
        let shown = String::from_utf8_lossy(&cleaned).into_owned();
        let rel: &[u8] = &cleaned[1..];
        let comps: Vec<&[u8]> = if rel.is_empty() { Vec::new() } else { rel.split(|&b| b == b'/').collect() };

        let mut matches: Vec<(Vec<u8>, Vec<u8>, Metadata)> = Vec::new();
        match comps.iter().position(|c| contains_wildcards(c)) {
            None => match self.resolve(rel, true)? {
                Resolve::Found { real, meta } => matches.push((rel.to_vec(), real, meta)),
                Resolve::NotFound => return Err(ContextError::NotFound { path: shown }),
                Resolve::Excluded => return Err(ContextError::Excluded { path: shown }),
                Resolve::Loop => return Err(ContextError::SymlinkLoop { path: shown }),
            },
            Some(first) => {
                let base = comps[..first].join(&b'/');
                let glob = comps[first..].join(&b'/');
                if let Err(e) = go_match(&glob, b"") {
                    return Err(ContextError::InvalidSourcePattern {
                        pattern: pattern.to_string(),
                        reason: e.to_string(),
                    });
                }
                let parent_shown = || format!("/{}", String::from_utf8_lossy(&base));
                let (base_real, base_meta) = match self.resolve(&base, true)? {
                    Resolve::Found { real, meta } => (real, meta),
                    Resolve::NotFound | Resolve::Excluded => {
                        return Err(ContextError::WildcardParentNotFound {
                            path: parent_shown(),
                            pattern: pattern.to_string(),
                        });
                    }
                    Resolve::Loop => return Err(ContextError::SymlinkLoop { path: parent_shown() }),
                };
                let mut found = Vec::new();
                if base_meta.is_dir() {
                    let slashes = glob.iter().filter(|&&b| b == b'/' || b == b'[').count();
                    self.glob_walk(&base_real, &[], &glob, slashes + 1, &mut found)?;
                }
                for sub in found {
                    let matched = join_bytes(&base_real, &sub);
                    match self.resolve(&matched, true)? {
                        Resolve::Found { real, meta } => matches.push((matched, real, meta)),
                        Resolve::NotFound | Resolve::Excluded => {
                            return Err(ContextError::NotFound {
                                path: format!("/{}", String::from_utf8_lossy(&matched)),
                            });
                        }
                        Resolve::Loop => {
                            return Err(ContextError::SymlinkLoop {
                                path: format!("/{}", String::from_utf8_lossy(&matched)),
                            });
                        }
                    }
                }
                if matches.is_empty() && !opts.allow_empty_wildcard {
                    return Err(ContextError::NoMatch { pattern: pattern.to_string() });
                }
            }
        }

        let mut out = Vec::new();
        for (shown_rel, real, meta) in matches {
            let rel_path = if shown_rel.is_empty() { PathBuf::from(".") } else { bytes_path(&shown_rel) };
            let disk_path = self.abs(&real);
            let is_dir = meta.is_dir();
            out.push(Entry::new(rel_path.clone(), PathBuf::new(), disk_path, &meta)?);
            if is_dir {
                let state = self.state_of(&real);
                let chunks = self.walk_tree(&real, &rel_path, Path::new(""), &state)?;
                out.reserve(chunks.iter().map(Vec::len).sum());
                for chunk in chunks {
                    out.extend(chunk);
                }
            }
        }
        Ok(out)
    }

    /// The one entry at `path` (no wildcards; symlinks followed within the
    /// context), without walking below it: `COPY --parents` needs the
    /// metadata of the directories it recreates above what it copies.
    pub fn entry(&self, path: &str) -> Result<Entry> {
        let mut rooted = b"/".to_vec();
        rooted.extend_from_slice(path.as_bytes());
        let cleaned = gomatch::clean(&rooted);
        let shown = String::from_utf8_lossy(&cleaned).into_owned();
        let rel = &cleaned[1..];
        match self.resolve(rel, true)? {
            Resolve::Found { real, meta } => {
                let rel_path = if rel.is_empty() { PathBuf::from(".") } else { bytes_path(rel) };
                Entry::new(rel_path, PathBuf::new(), self.abs(&real), &meta)
            }
            Resolve::NotFound => Err(ContextError::NotFound { path: shown }),
            Resolve::Excluded => Err(ContextError::Excluded { path: shown }),
            Resolve::Loop => Err(ContextError::SymlinkLoop { path: shown }),
        }
    }

    /// Computes the content digest of `entries` (see [`hash::content_digest`]),
    /// using and filling this context's hash cache.
    pub fn content_digest(&self, entries: &[Entry]) -> Result<String> {
        hash::content_digest(&self.cache, entries)
    }

    /// sha256 of each regular file's content among `entries` (None for
    /// other kinds), from this context's hash cache or by reading them.
    pub fn file_digests(&self, entries: &[Entry]) -> Result<Vec<Option<[u8; 32]>>> {
        self.cache.file_digests(entries)
    }

    fn abs(&self, real: &[u8]) -> PathBuf {
        if real.is_empty() { self.root.clone() } else { self.root.join(OsStr::from_bytes(real)) }
    }

    /// Per-pattern ignore state of a real path (see `IgnoreMatcher::eval_child`).
    fn state_of(&self, real: &[u8]) -> MatchState {
        let mut state = self.matcher.root_state();
        if real.is_empty() || self.matcher.is_empty() {
            return state;
        }
        for (i, &b) in real.iter().enumerate().chain(std::iter::once((real.len(), &b'/'))) {
            if b == b'/' {
                state = self.matcher.eval_child(&real[..i], &state).1;
            }
        }
        state
    }

    /// Whether the entry at real path `real` is part of the context: not
    /// excluded, or an excluded directory with something re-included inside.
    fn visible(&self, real: &[u8], is_dir: bool) -> Result<bool> {
        if real.is_empty() || self.matcher.is_empty() || !self.matcher.is_excluded_bytes(real) {
            return Ok(true);
        }
        if !is_dir || !self.matcher.exception_may_match_under(real) {
            return Ok(false);
        }
        if let Some(&known) = self.reincluded.lock().unwrap_or_else(|e| e.into_inner()).get(real) {
            return Ok(known);
        }
        let state = self.state_of(real);
        let found = self.has_included_descendant(real, &state)?;
        self.reincluded.lock().unwrap_or_else(|e| e.into_inner()).insert(real.to_vec(), found);
        Ok(found)
    }

    fn has_included_descendant(&self, real: &[u8], state: &MatchState) -> Result<bool> {
        for (name, ft) in self.read_dir_sorted(real)? {
            let child = join_bytes(real, &name);
            let (excluded, child_state) = self.matcher.eval_child(&child, state);
            if !excluded {
                return Ok(true);
            }
            let is_dir = match ft {
                Some(ft) => ft.is_dir(),
                None => self.lstat(&child)?.is_dir(),
            };
            if is_dir
                && self.matcher.exception_may_match_under(&child)
                && self.has_included_descendant(&child, &child_state)?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn lstat(&self, real: &[u8]) -> Result<Metadata> {
        let path = self.abs(real);
        fs::symlink_metadata(&path).map_err(|e| ContextError::io("lstat", path, e))
    }

    /// Directory entries of real path `real`, sorted by name.
    fn read_dir_sorted(&self, real: &[u8]) -> Result<Vec<(Vec<u8>, Option<fs::FileType>)>> {
        let path = self.abs(real);
        let rd = fs::read_dir(&path).map_err(|e| ContextError::io("readdir", &path, e))?;
        let mut names = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| ContextError::io("readdir", &path, e))?;
            names.push((entry.file_name().into_vec(), entry.file_type().ok()));
        }
        names.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(names)
    }

    /// containerd's `fs.RootPath` with the context's visibility rules:
    /// resolves `path` (relative, cleaned) component by component, following
    /// symlinks (the last one only when `follow_last`) and clamping `..` and
    /// absolute link targets at the context root.
    fn resolve(&self, path: &[u8], follow_last: bool) -> Result<Resolve> {
        let mut queue: VecDeque<Vec<u8>> = path.split(|&b| b == b'/').map(<[u8]>::to_vec).collect();
        let mut cur: Vec<u8> = Vec::new();
        let mut meta: Option<Metadata> = None;
        let mut links = 0;
        while let Some(comp) = queue.pop_front() {
            match comp.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    let cut = cur.iter().rposition(|&b| b == b'/').unwrap_or(0);
                    cur.truncate(cut);
                    meta = None;
                    continue;
                }
                _ => {}
            }
            let cand = join_bytes(&cur, &comp);
            let disk = self.abs(&cand);
            let m = match fs::symlink_metadata(&disk) {
                Ok(m) => m,
                Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                    return Ok(Resolve::NotFound);
                }
                Err(e) => return Err(ContextError::io("lstat", disk, e)),
            };
            if !self.visible(&cand, m.is_dir())? {
                return Ok(Resolve::Excluded);
            }
            let last = queue.iter().all(|c| c.is_empty() || c == b".");
            if m.file_type().is_symlink() && (!last || follow_last) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Ok(Resolve::Loop);
                }
                let target = fs::read_link(&disk).map_err(|e| ContextError::io("readlink", &disk, e))?;
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
            if !last && !m.is_dir() {
                return Ok(Resolve::NotFound);
            }
            cur = cand;
            meta = Some(m);
        }
        let meta = match meta {
            Some(m) => m,
            None => {
                let disk = self.abs(&cur);
                match fs::symlink_metadata(&disk) {
                    Ok(m) => m,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Resolve::NotFound),
                    Err(e) => return Err(ContextError::io("lstat", disk, e)),
                }
            }
        };
        Ok(Resolve::Found { real: cur, meta })
    }

    /// fsutil's `resolveWildcards`: walks below `base` (without following
    /// links), matching each path relative to `base` against `glob`; a
    /// matched directory is not descended into. `max_depth` bounds the walk
    /// (no path with more components can match).
    fn glob_walk(&self, base: &[u8], sub: &[u8], glob: &[u8], max_depth: usize, out: &mut Vec<Vec<u8>>) -> Result<()> {
        let dir = join_bytes(base, sub);
        for (name, ft) in self.read_dir_sorted(&dir)? {
            let child_sub = join_bytes(sub, &name);
            let child_real = join_bytes(base, &child_sub);
            let is_dir = match ft {
                Some(ft) => ft.is_dir(),
                None => self.lstat(&child_real)?.is_dir(),
            };
            if !self.visible(&child_real, is_dir)? {
                continue;
            }
            if go_match(glob, &child_sub).unwrap_or(false) {
                out.push(child_sub);
                continue;
            }
            let depth = child_sub.iter().filter(|&&b| b == b'/').count() + 1;
            if is_dir && depth < max_depth {
                self.glob_walk(base, &child_sub, glob, max_depth, out)?;
            }
        }
        Ok(())
    }

    /// Every visible entry below directory `real` (shown as `shown`, at
    /// `sub` below the match), parent first in path order, as a list of
    /// chunks to concatenate (so that entries are moved once, not once per
    /// level). Subdirectories are walked in parallel.
    fn walk_tree(&self, real: &[u8], shown: &Path, sub: &Path, state: &MatchState) -> Result<Vec<Vec<Entry>>> {
        let dir_path = self.abs(real);
        let readdir_err = |e: rustix::io::Errno| ContextError::io("readdir", &dir_path, e.into());
        let dir = rustix::fs::open(&dir_path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(readdir_err)?;
        let names = DirNames::read(&dir).map_err(readdir_err)?;

        enum Item {
            Leaf(Entry),
            Dir { entry: Entry, real: Vec<u8>, state: MatchState, excluded: bool },
        }
        let filtering = !self.matcher.is_empty();
        let mut items = Vec::with_capacity(names.len());
        for name in names.iter() {
            let bytes = name.to_bytes();
            let st = match rustix::fs::statx(&dir, name, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::BASIC_STATS) {
                Ok(st) => st,
                // Vanished since readdir: it is simply not there.
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => return Err(ContextError::io("lstat", join_path(&dir_path, bytes), e.into())),
            };
            let kind = EntryKind::from_mode(u32::from(st.stx_mode));
            let is_dir = kind == EntryKind::Dir;
            // The real path is needed to match ignore patterns and to descend.
            let child_real = if filtering || is_dir { join_bytes(real, bytes) } else { Vec::new() };
            let (excluded, child_state) =
                if filtering { self.matcher.eval_child(&child_real, state) } else { (false, state.clone()) };
            if excluded && !(is_dir && self.matcher.exception_may_match_under(&child_real)) {
                continue;
            }
            let link_target = if kind == EntryKind::Symlink {
                let target = rustix::fs::readlinkat(&dir, name, Vec::new())
                    .map_err(|e| ContextError::io("readlink", join_path(&dir_path, bytes), e.into()))?;
                Some(bytes_path(target.as_bytes()))
            } else {
                None
            };
            let entry = Entry::from_statx(
                join_path(shown, bytes),
                join_path(sub, bytes),
                join_path(&dir_path, bytes),
                &st,
                link_target,
            );
            if is_dir {
                items.push(Item::Dir { entry, real: child_real, state: child_state, excluded });
            } else {
                items.push(Item::Leaf(entry));
            }
        }

        let dirs = items.iter().filter(|i| matches!(i, Item::Dir { .. })).count();
        let subtrees: Vec<Result<Vec<Vec<Entry>>>> = if dirs > 1 {
            items
                .par_iter()
                .map(|item| match item {
                    Item::Dir { entry, real, state, .. } => {
                        self.walk_tree(real, &entry.rel_path, &entry.sub_path, state)
                    }
                    Item::Leaf(_) => Ok(Vec::new()),
                })
                .collect()
        } else {
            items
                .iter()
                .map(|item| match item {
                    Item::Dir { entry, real, state, .. } => {
                        self.walk_tree(real, &entry.rel_path, &entry.sub_path, state)
                    }
                    Item::Leaf(_) => Ok(Vec::new()),
                })
                .collect()
        };

        let mut chunks = Vec::with_capacity(1 + 2 * dirs);
        let mut cur = Vec::with_capacity(items.len());
        for (item, subtree) in items.into_iter().zip(subtrees) {
            let subtree = subtree?;
            match item {
                Item::Leaf(entry) => cur.push(entry),
                Item::Dir { entry, excluded, .. } => {
                    // An excluded directory exists only to hold what was re-included.
                    if !excluded || subtree.iter().any(|c| !c.is_empty()) {
                        cur.push(entry);
                        if !subtree.is_empty() {
                            chunks.push(std::mem::take(&mut cur));
                            chunks.extend(subtree);
                        }
                    }
                }
            }
        }
        if !cur.is_empty() {
            chunks.push(cur);
        }
        Ok(chunks)
    }
}

/// The names in one directory (without `.` and `..`), sorted, each kept
/// NUL-terminated in one buffer for the `*at` calls that follow.
struct DirNames {
    buf: Vec<u8>,
    /// (start, length without the NUL) of each name in `buf`.
    spans: Vec<(usize, usize)>,
}

impl DirNames {
    fn read(dir: &OwnedFd) -> rustix::io::Result<DirNames> {
        thread_local! {
            static DENTS: RefCell<Vec<MaybeUninit<u8>>> = RefCell::new(vec![MaybeUninit::uninit(); DENTS_BUF]);
        }
        DENTS.with(|dents| {
            let mut dents = dents.borrow_mut();
            let mut raw = RawDir::new(dir, &mut dents[..]);
            let mut names = DirNames { buf: Vec::new(), spans: Vec::new() };
            while let Some(entry) = raw.next() {
                let entry = entry?;
                let name = entry.file_name().to_bytes_with_nul();
                if name == b".\0" || name == b"..\0" {
                    continue;
                }
                names.spans.push((names.buf.len(), name.len() - 1));
                names.buf.extend_from_slice(name);
            }
            let buf = &names.buf;
            names.spans.sort_unstable_by(|a, b| buf[a.0..a.0 + a.1].cmp(&buf[b.0..b.0 + b.1]));
            Ok(names)
        })
    }

    fn len(&self) -> usize {
        self.spans.len()
    }

    fn iter(&self) -> impl Iterator<Item = &CStr> {
        self.spans.iter().filter_map(|&(start, len)| CStr::from_bytes_with_nul(&self.buf[start..=start + len]).ok())
    }
}

fn join_bytes(a: &[u8], b: &[u8]) -> Vec<u8> {
    if a.is_empty() {
        return b.to_vec();
    }
    let mut out = Vec::with_capacity(a.len() + 1 + b.len());
    out.extend_from_slice(a);
    out.push(b'/');
    out.extend_from_slice(b);
    out
}

fn bytes_path(b: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(b))
}

/// `parent/name` with one exact allocation; `.` and empty parents vanish.
fn join_path(parent: &Path, name: &[u8]) -> PathBuf {
    let p = parent.as_os_str().as_bytes();
    if p.is_empty() || p == b"." {
        return PathBuf::from(OsString::from_vec(name.to_vec()));
    }
    let mut out = Vec::with_capacity(p.len() + 1 + name.len());
    out.extend_from_slice(p);
    if p.last() != Some(&b'/') {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    PathBuf::from(OsString::from_vec(out))
}
