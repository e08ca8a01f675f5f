//! COPY and ADD on directories: Docker's and BuildKit's semantics, applied
//! to a destination root filesystem on disk.
//!
//! ```text
//! copy_into(&context, &CopyRequest { sources, dest, workdir, chown, chmod, add, keep_owner, exclude, parents }, rootfs)
//! ```
//! The sources come from a [`Context`] (the build context, or another
//! stage's or image's root opened with `IgnoreMatcher::empty()`); the
//! destination is the target stage's root filesystem (e.g. an overlayfs
//! merged dir), into which everything is written. Nothing is ever written
//! outside `dest_rootfs`.
//!
//! # Semantics (BuildKit's `dockerfile2llb` + `llbsolver/file` + fsutil `copy`)
//! - **Sources** are resolved by [`Context::select_with`] with BuildKit's
//!   `AllowEmptyWildcard`: a wildcard matching nothing copies nothing; a
//!   missing plain source is an error (`failed to compute cache key: "/x":
//!   not found`). A top-level symlink source is followed; symlinks inside a
//!   copied directory stay symlinks. A directory source copies its
//!   *contents*; its own metadata is not copied.
//! - **Destination**: relative to `workdir`; cleaned lexically (`..` never
//!   above `/`). Written `dir/`, `dir/.`, `.` or empty, it is a directory
//!   (created). Otherwise a file source lands *at* the destination, unless
//!   it exists as a directory (then inside it, under the source's name). The
//!   destination is resolved inside the root with every symlink followed
//!   as if the root were `/` (Debian's `/bin -> usr/bin`: `COPY x /bin/`
//!   writes `/usr/bin/x`; an absolute or `..`-laden link target never
//!   leaves the root). Missing parents are created 0755, owned by the
//!   `--chown` owner when given, else root (fsutil `MkdirAll` with the
//!   chowner); an existing destination directory keeps its metadata.
//! - **Several sources** (after wildcard expansion, heredocs included,
//!   archives ADD unpacks excluded) need a destination written as a
//!   directory. BuildKit does not check this and lets each source overwrite
//!   the previous one (moby/buildkit#1853, #4550); the Dockerfile reference
//!   and the classic builder require it. We fail with the classic builder's
//!   message, except when the destination already is a directory (BuildKit
//!   then copies into it, and so do we), so no build that works with
//!   BuildKit and means something breaks.
//! - **Replacing**: an existing non-directory is replaced; an existing
//!   directory is merged (a directory inside a copied tree gets the
//!   source's metadata, as fsutil's `overwriteTargetMetadata`); a file over
//!   a directory is an error (`cannot replace to directory ... with file`),
//!   and so is a directory over a non-directory, symlinks included (`cannot
//!   copy to non-directory`), as fsutil.
//! - **Owners**: `--chown` (rules in `owner.rs`: names from the destination's
//!   `/etc/passwd` and `/etc/group`) for everything copied and every
//!   directory created; otherwise 0:0 for the build context (BuildKit's
//!   context transfer resets owners) and the source's own owner when
//!   [`CopyRequest::keep_owner`] is set (`COPY --from`: moby/moby#38599,
//!   BuildKit copies with no chowner).
//! - **Modes** are the source's unless `--chmod` ([`Chmod`]: octal or
//!   symbolic), which applies to every file and directory copied (not to
//!   symlinks, not to created parents or the top destination directory).
//!   `chmod` runs after `chown` (which clears setuid/setgid).
//! - **Times**: the source's mtime (to the nanosecond) for files, links and
//!   directories (directories after their contents); atime = mtime.
//!   Heredoc files get the current time.
//! - **Hard links** within one `copy_into` call are kept: a second path to
//!   an inode already copied becomes a hard link to the copy (fsutil's
//!   inode map), when its link count is above one.
//! - **Xattrs** of files and directories are copied best effort (failures
//!   ignored, as BuildKit's handler only logs), after chown so
//!   `security.capability` survives; overlayfs' `trusted.overlay.*` and
//!   `user.overlay.*` never are.
//! - **Special files**: fifos and devices are recreated with `mknod`;
//!   sockets are skipped (fsutil does not support them).
//! - **Heredocs** (`COPY <<EOF /dest`): a file named after the heredoc,
//!   mode 0644, root-owned, subject to `--chmod`/`--chown`; like a file
//!   source otherwise.
//! - **ADD** unpacks a source that is a local tar archive, see
//!   `archive.rs` for the rules (content detection, extraction
//!   into the destination as a directory, no whiteouts, archive owners
//!   unless `--chown`). Only top-level matches are unpacked; archives inside
//!   a copied directory are copied. URLs (`url.rs`) and Git sources
//!   (`git.rs`) are fetched by the caller, then copied from a directory.
//! - **`--link`**: the caller passes an empty directory as the root; names
//!   in `--chown` are then refused ([`check_link_chown`]), as BuildKit
//!   documents, since the stage's `/etc/passwd` is not read.

mod archive;
mod error;
pub mod git;
pub mod index;
mod mode;
mod owner;
mod root;
mod select;
mod sys;
pub mod url;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub use error::{CopyError, Result};
pub use index::{CopyIndex, CopyRecord, Reuse, Selection, seed_in_place, seed_upper};
pub use mode::Chmod;
pub use select::{SourceFilter, select_source};

use crate::context::{Context, Entry, EntryKind};
use root::{Escape, NewDirs, Resolved, Root};

/// One COPY or ADD.
#[derive(Debug, Clone)]
pub struct CopyRequest<'a> {
    /// Sources in order (patterns already variable-expanded).
    pub sources: Vec<SourceItem>,
    /// The destination as written (expanded); relative = relative to `workdir`.
    pub dest: &'a str,
    /// The working directory (absolute).
    pub workdir: &'a str,
    /// `--chown`: `user`, `user:group`, `uid`, `uid:gid`.
    pub chown: Option<&'a str>,
    /// `--chmod`: octal (`0755`) or symbolic (`u+x,g-w`).
    pub chmod: Option<&'a str>,
    /// ADD: unpack local tar archives (plain, gzip, bzip2, xz, zstd).
    pub add: bool,
    /// Keep the sources' owners when there is no `--chown`: set for
    /// `COPY --from=<stage or image>`, clear for the build context (whose
    /// owners BuildKit resets to 0:0).
    pub keep_owner: bool,
    /// `--exclude` patterns (`.dockerignore` rules, relative to each source).
    pub exclude: &'a [String],
    /// `COPY --parents`: keep the sources' parent directories.
    pub parents: bool,
}

/// A COPY/ADD source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceItem {
    /// A path or wildcard pattern in the source [`Context`].
    Pattern(String),
    /// A heredoc (`COPY <<EOF /dest`): a file called `name` holding `content`.
    Heredoc {
        /// The heredoc's name (the file name).
        name: String,
        /// Its body.
        content: String,
    },
}

/// What one [`copy_into`] wrote, for progress output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Regular files written (hard links included).
    pub files: u64,
    /// Directories copied or extracted (created or merged).
    pub dirs: u64,
    /// Symbolic links created.
    pub symlinks: u64,
    /// Devices and fifos created.
    pub other: u64,
    /// Bytes of file data written.
    pub bytes: u64,
    /// Archives ADD unpacked.
    pub archives: u64,
}

/// One thing to copy: a matched source with its subtree, or a heredoc.
enum Item {
    /// `digests` is empty unless the copy is recorded (then one per entry).
    Tree {
        shown: String,
        name: Vec<u8>,
        entries: Vec<Entry>,
        digests: Vec<Option<[u8; 32]>>,
        source: u32,
        archive: bool,
    },
    Heredoc {
        name: Vec<u8>,
        content: Vec<u8>,
    },
}

impl Item {
    fn shown(&self) -> String {
        match self {
            Item::Tree { shown, .. } => shown.clone(),
            Item::Heredoc { name, .. } => format!("<<{}", String::from_utf8_lossy(name)),
        }
    }
}

/// Performs the COPY or ADD described by `req`, reading from `src` and
/// writing into the directory `dest_rootfs`. Everything is checked (sources
/// resolved, flags parsed, owners looked up) before anything is written; a
/// failure after that may leave part of the copy behind (the caller
/// discards the snapshot).
pub fn copy_into(src: &Context, req: &CopyRequest, dest_rootfs: &Path) -> Result<CopyStats> {
    copy_into_with(src, req, dest_rootfs, None).map(|(stats, _)| stats)
}

/// What an incremental copy works from: the sources already selected (one
/// [`Selection`] per source, heredocs included as empty ones), and the files
/// [`seed_upper`] put in place, which are then skipped.
#[derive(Debug, Clone, Copy)]
pub struct Recorded<'a> {
    pub selections: &'a [Selection],
    pub reuse: Option<&'a Reuse<'a>>,
}

/// [`copy_into`], also returning the record of every entry written when
/// `recorded` is given (the copy index; see [`index`]).
pub fn copy_into_with(
    src: &Context,
    req: &CopyRequest,
    dest_rootfs: &Path,
    recorded: Option<Recorded<'_>>,
) -> Result<(CopyStats, Vec<CopyRecord>)> {
    let instruction = if req.add { "ADD" } else { "COPY" };
    if !req.workdir.starts_with('/') {
        return Err(CopyError::RelativeWorkdir { workdir: req.workdir.to_string() });
    }
    let chmod = req.chmod.map(Chmod::parse).transpose()?;
    let filter = SourceFilter::new(req.exclude, req.parents)?;
    let base = fs::canonicalize(dest_rootfs)
        .map_err(|e| CopyError::io("open destination root", dest_rootfs.display().to_string(), e))?;
    let root = Root::new(base, Escape::Clamp, String::new());
    let chown = req.chown.map(|spec| owner::resolve_chown(spec, &root)).transpose()?;

    // The destination, absolute and cleaned; whether it is written as a directory.
    let dest_written = req.dest;
    let dir_syntax =
        dest_written.is_empty() || dest_written == "." || dest_written.ends_with('/') || dest_written.ends_with("/.");
    let full = if dest_written.starts_with('/') {
        dest_written.to_string()
    } else {
        format!("{}/{}", req.workdir, dest_written)
    };
    let dest = clean_abs(full.as_bytes());

    // Resolve every source before writing anything.
    let mut items = Vec::new();
    for (i, s) in req.sources.iter().enumerate() {
        match s {
            SourceItem::Pattern(p) => {
                let (entries, digests) = match recorded.and_then(|r| r.selections.get(i)) {
                    Some(sel) => (sel.entries.clone(), sel.digests.clone()),
                    None => (select_source(src, p, &filter)?, Vec::new()),
                };
                group_items(entries, digests, i as u32, req.add, &mut items);
            }
            SourceItem::Heredoc { name, content } => {
                let Some(base) = Path::new(name).file_name().map(|n| n.as_bytes().to_vec()) else {
                    return Err(CopyError::InvalidHeredocName { name: name.clone() });
                };
                items.push(Item::Heredoc { name: base, content: content.as_bytes().to_vec() });
            }
        }
    }
    let copies = items.iter().filter(|i| !matches!(i, Item::Tree { archive: true, .. })).count();
    if copies > 1 && !dir_syntax {
        let existing_dir = root.resolve(&dest, true, None).ok().and_then(|r| r.meta).is_some_and(|m| m.is_dir());
        if !existing_dir {
            return Err(CopyError::MultipleSourcesNeedDirectory {
                instruction,
                dest: dest_written.to_string(),
                count: copies,
            });
        }
    }

    let mut cp = Copier {
        root,
        chown,
        chmod,
        keep_owner: req.keep_owner,
        inodes: HashMap::new(),
        dirs: Vec::new(),
        stats: CopyStats::default(),
        records: recorded.map(|_| Vec::new()),
        reuse: recorded.and_then(|r| r.reuse),
    };
    for item in &items {
        let res = cp.item(item, &dest, dir_syntax);
        let res = res.and_then(|()| cp.finish_dirs());
        res.map_err(|e| CopyError::Item {
            instruction: if matches!(item, Item::Tree { archive: true, .. }) { "ADD (extract)" } else { instruction },
            src: item.shown(),
            dest: dest_written.to_string(),
            source: Box::new(e),
        })?;
    }
    Ok((cp.stats, cp.records.unwrap_or_default()))
}

/// `--link` copies into an empty file system: `--chown` must be numeric.
pub fn check_link_chown(chown: Option<&str>) -> Result<()> {
    let Some(spec) = chown else { return Ok(()) };
    // Malformed specs (an empty part) are left to the copy's own parser.
    let is_name = |s: &str| !s.bytes().all(|b| b.is_ascii_digit());
    let (user, group) = spec.split_once(':').map_or((spec, None), |(u, g)| (u, Some(g)));
    if is_name(user) || group.is_some_and(is_name) {
        Err(CopyError::LinkChownName { spec: spec.to_string() })
    } else {
        Ok(())
    }
}

/// `/`-rooted Go `path.Clean`: components without `.`, `..` applied (never
/// above the root), joined by `/`, no leading slash (`""` is the root).
fn clean_abs(p: &[u8]) -> Vec<u8> {
    let mut out: Vec<&[u8]> = Vec::new();
    for c in p.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            _ => out.push(c),
        }
    }
    out.join(&b'/')
}

/// Splits a selection into items: each match root with its subtree.
/// `digests` is empty or has one per entry; each item gets its share.
fn group_items(entries: Vec<Entry>, digests: Vec<Option<[u8; 32]>>, source: u32, add: bool, items: &mut Vec<Item>) {
    let mut cur: Vec<Entry> = Vec::new();
    let mut cur_digests: Vec<Option<[u8; 32]>> = Vec::new();
    let flush = |cur: &mut Vec<Entry>, cur_digests: &mut Vec<Option<[u8; 32]>>, items: &mut Vec<Item>| {
        if cur.is_empty() {
            return;
        }
        let entries = std::mem::take(cur);
        let digests = std::mem::take(cur_digests);
        let first = &entries[0];
        let shown = first.rel_path.display().to_string();
        let name = first.rel_path.file_name().map(|n| n.as_bytes().to_vec()).unwrap_or_default();
        let archive = add && first.kind == EntryKind::File && archive::is_archive(&first.disk_path);
        items.push(Item::Tree { shown, name, entries, digests, source, archive });
    };
    let with_digests = digests.len() == entries.len();
    let mut digests = digests.into_iter();
    for e in entries {
        if e.is_match_root() {
            flush(&mut cur, &mut cur_digests, items);
        }
        cur.push(e);
        if with_digests {
            cur_digests.push(digests.next().flatten());
        }
    }
    flush(&mut cur, &mut cur_digests, items);
}

struct Copier<'a> {
    root: Root,
    chown: Option<(u32, u32)>,
    chmod: Option<Chmod>,
    keep_owner: bool,
    /// (dev, ino) of a multiply-linked source file → its copy.
    inodes: HashMap<(u64, u64), PathBuf>,
    /// Directories copied: (path, shown, mtime ns), times set at the end.
    dirs: Vec<(PathBuf, String, i64)>,
    stats: CopyStats,
    /// The copy index being built, when recording.
    records: Option<Vec<CopyRecord>>,
    /// Files already in place (an incremental copy).
    reuse: Option<&'a Reuse<'a>>,
}

/// What to create at a target: a context entry (with the index of the
/// source that selected it and its content digest, when recording) or a
/// heredoc file.
enum Source<'a> {
    Entry(&'a Entry, u32, Option<[u8; 32]>),
    Heredoc(&'a [u8]),
}

impl Copier<'_> {
    fn new_dirs(&self) -> NewDirs {
        NewDirs { owner: self.chown }
    }

    fn owner(&self, e: &Entry) -> (u32, u32) {
        self.chown.unwrap_or(if self.keep_owner { (e.uid, e.gid) } else { (0, 0) })
    }

    fn mode(&self, mode: u32, is_dir: bool) -> u32 {
        self.chmod.as_ref().map_or(mode, |c| c.apply(mode, is_dir))
    }

    fn item(&mut self, item: &Item, dest: &[u8], dir_syntax: bool) -> Result<()> {
        // fsutil: make the destination (written as a directory) or its parent.
        if let Item::Tree { archive: true, entries, .. } = item {
            let dir = self.root.mkdir_all(dest, self.new_dirs())?;
            let xroot = archive::extraction_root(dir.path.clone(), self.root.show(&dir.rel));
            archive::extract(&entries[0].disk_path, &xroot, self.chown, &mut self.stats)?;
            self.stats.archives += 1;
            return Ok(());
        }
        if dir_syntax {
            self.root.mkdir_all(dest, self.new_dirs())?;
        } else if let Some(cut) = dest.iter().rposition(|&b| b == b'/') {
            self.root.mkdir_all(&dest[..cut], self.new_dirs())?;
        }
        let resolved = self.root.resolve(dest, true, None)?;
        match item {
            Item::Tree { entries, digests, source, .. } if entries[0].kind == EntryKind::Dir => {
                let dir = match &resolved.meta {
                    None => self.root.mkdir_all(dest, self.new_dirs())?,
                    Some(m) if m.is_dir() => resolved,
                    Some(_) => return Err(CopyError::NotADirectory { path: self.root.show(&resolved.rel) }),
                };
                for (i, e) in entries.iter().enumerate().skip(1) {
                    let mut rel = dir.rel.clone();
                    rel.extend(e.sub_path.as_os_str().as_bytes().split(|&b| b == b'/').map(<[u8]>::to_vec));
                    let target = self.root.base().join(rel_path(&rel));
                    let shown = self.root.show(&rel);
                    let digest = digests.get(i).copied().flatten();
                    self.put(Source::Entry(e, *source, digest), &target, &shown)?;
                }
                Ok(())
            }
            Item::Tree { name, entries, digests, source, .. } => {
                let (target, shown) = self.file_target(resolved, name)?;
                let digest = digests.first().copied().flatten();
                self.put(Source::Entry(&entries[0], *source, digest), &target, &shown)
            }
            Item::Heredoc { name, content } => {
                let (target, shown) = self.file_target(resolved, name)?;
                self.put(Source::Heredoc(content), &target, &shown)
            }
        }
    }

    /// Where a non-directory source goes: into an existing directory under
    /// its own name, else at the destination itself (parents created).
    fn file_target(&self, resolved: Resolved, name: &[u8]) -> Result<(PathBuf, String)> {
        let rel = if resolved.meta.as_ref().is_some_and(|m| m.is_dir()) {
            self.root.join(&resolved.rel, name).1
        } else {
            resolved.rel
        };
        let Some((last, parent)) = rel.split_last() else {
            // The root itself, and it is not a directory: cannot happen.
            return Err(CopyError::NotADirectory { path: "/".to_string() });
        };
        let parent_path = parent.join(&b'/');
        let dir = self.root.mkdir_all(&parent_path, self.new_dirs())?;
        let (target, rel) = self.root.join(&dir.rel, last);
        Ok((target, self.root.show(&rel)))
    }

    /// Creates `target` from `src`, replacing what is there as fsutil does.
    fn put(&mut self, src: Source, target: &Path, shown: &str) -> Result<()> {
        // An incremental copy: this very file is already in place (a hard
        // link to the previous result's). It must not be touched at all:
        // its inode belongs to that snapshot too.
        if let (Source::Entry(e, source, digest), Some(reuse)) = (&src, self.reuse)
            && e.kind == EntryKind::File
            && let target_rel = self.target_rel(target)
            && let Some(record) = reuse.get(*source, e.rel_path.as_os_str().as_bytes(), &target_rel)
        {
            // Fresh from the entry (its ctime may have moved), with the
            // xattrs the seeding found unchanged.
            let record = CopyRecord::of(e, *source, *digest, target_rel, record.xattrs.clone());
            if let Some(records) = &mut self.records {
                records.push(record);
            }
            self.stats.files += 1;
            return Ok(());
        }
        let existing = sys::lstat(target).map_err(|e| CopyError::io("lstat", shown, e))?;
        let kind = match &src {
            Source::Entry(e, ..) => e.kind,
            Source::Heredoc(_) => EntryKind::File,
        };
        if kind == EntryKind::Socket {
            return Ok(());
        }
        match (&existing, kind) {
            (Some(m), EntryKind::Dir) if !m.is_dir() => {
                return Err(CopyError::NotADirectory { path: shown.to_string() });
            }
            (Some(m), EntryKind::Dir) if m.is_dir() => {}
            (Some(m), _) if m.is_dir() => return Err(CopyError::ReplaceDirectory { path: shown.to_string() }),
            (Some(m), _) => sys::remove_all(target, m).map_err(|e| CopyError::io("remove", shown, e))?,
            (None, _) => {}
        }
        let (e, source, digest) = match src {
            Source::Heredoc(content) => return self.write_heredoc(content, target, shown),
            Source::Entry(e, source, digest) => (e, source, digest),
        };
        let xattrs = self.put_entry(e, existing.is_some(), target, shown)?;
        if self.records.is_some() {
            let target = self.target_rel(target);
            let records = self.records.get_or_insert_with(Vec::new);
            records.push(CopyRecord::of(e, source, digest, target, index::encode_xattrs(&xattrs)));
        }
        Ok(())
    }

    /// A target's path relative to the root, as recorded.
    fn target_rel(&self, target: &Path) -> Vec<u8> {
        target.strip_prefix(self.root.base()).map(|p| p.as_os_str().as_bytes().to_vec()).unwrap_or_default()
    }

    /// Creates one entry (the target is free, or a directory to merge);
    /// returns the xattrs copied.
    fn put_entry(&mut self, e: &Entry, exists: bool, target: &Path, shown: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let (uid, gid) = self.owner(e);
        let mut xattrs = Vec::new();
        match e.kind {
            EntryKind::Dir => {
                if !exists {
                    fs::create_dir(target).map_err(|err| CopyError::io("mkdir", shown, err))?;
                }
                std::os::unix::fs::lchown(target, Some(uid), Some(gid))
                    .map_err(|err| CopyError::io("lchown", shown, err))?;
                fs::set_permissions(target, fs::Permissions::from_mode(self.mode(e.mode, true)))
                    .map_err(|err| CopyError::io("chmod", shown, err))?;
                xattrs = sys::list_xattrs(&e.disk_path);
                sys::set_xattrs_best_effort(target, &xattrs);
                self.dirs.push((target.to_path_buf(), shown.to_string(), e.mtime_ns));
                self.stats.dirs += 1;
            }
            EntryKind::File => {
                let key = (e.dev, e.ino);
                if e.nlink > 1
                    && let Some(first) = self.inodes.get(&key)
                    && fs::hard_link(first, target).is_ok()
                {
                    self.stats.files += 1;
                    return Ok(xattrs);
                }
                let mut input = File::open(&e.disk_path)
                    .map_err(|err| CopyError::io("open", e.disk_path.display().to_string(), err))?;
                let mut out = create_new(target).map_err(|err| CopyError::io("create", shown, err))?;
                let n = io::copy(&mut input, &mut out).map_err(|err| CopyError::io("copy", shown, err))?;
                std::os::unix::fs::fchown(&out, Some(uid), Some(gid))
                    .map_err(|err| CopyError::io("fchown", shown, err))?;
                out.set_permissions(fs::Permissions::from_mode(self.mode(e.mode, false)))
                    .map_err(|err| CopyError::io("chmod", shown, err))?;
                drop(out);
                xattrs = sys::list_xattrs(&e.disk_path);
                sys::set_xattrs_best_effort(target, &xattrs);
                sys::set_times(target, e.mtime_ns).map_err(|err| CopyError::io("utimensat", shown, err))?;
                if e.nlink > 1 {
                    self.inodes.insert(key, target.to_path_buf());
                }
                self.stats.files += 1;
                self.stats.bytes += n;
            }
            EntryKind::Symlink => {
                let link = e.link_target.clone().unwrap_or_default();
                std::os::unix::fs::symlink(&link, target).map_err(|err| CopyError::io("symlink", shown, err))?;
                std::os::unix::fs::lchown(target, Some(uid), Some(gid))
                    .map_err(|err| CopyError::io("lchown", shown, err))?;
                sys::set_times(target, e.mtime_ns).map_err(|err| CopyError::io("utimensat", shown, err))?;
                self.stats.symlinks += 1;
            }
            EntryKind::Fifo | EntryKind::CharDevice | EntryKind::BlockDevice => {
                let ft = match e.kind {
                    EntryKind::Fifo => rustix::fs::FileType::Fifo,
                    EntryKind::CharDevice => rustix::fs::FileType::CharacterDevice,
                    _ => rustix::fs::FileType::BlockDevice,
                };
                let rdev = if e.kind == EntryKind::Fifo { 0 } else { e.rdev };
                sys::mknod(target, ft, 0o600, rdev).map_err(|err| CopyError::io("mknod", shown, err))?;
                std::os::unix::fs::lchown(target, Some(uid), Some(gid))
                    .map_err(|err| CopyError::io("lchown", shown, err))?;
                fs::set_permissions(target, fs::Permissions::from_mode(self.mode(e.mode, false)))
                    .map_err(|err| CopyError::io("chmod", shown, err))?;
                sys::set_times(target, e.mtime_ns).map_err(|err| CopyError::io("utimensat", shown, err))?;
                self.stats.other += 1;
            }
            EntryKind::Socket => {}
        }
        Ok(xattrs)
    }

    fn write_heredoc(&mut self, content: &[u8], target: &Path, shown: &str) -> Result<()> {
        use std::io::Write;
        let (uid, gid) = self.chown.unwrap_or((0, 0));
        let mut out = create_new(target).map_err(|err| CopyError::io("create", shown, err))?;
        out.write_all(content).map_err(|err| CopyError::io("write", shown, err))?;
        std::os::unix::fs::fchown(&out, Some(uid), Some(gid)).map_err(|err| CopyError::io("fchown", shown, err))?;
        out.set_permissions(fs::Permissions::from_mode(self.mode(0o644, false)))
            .map_err(|err| CopyError::io("chmod", shown, err))?;
        self.stats.files += 1;
        self.stats.bytes += content.len() as u64;
        Ok(())
    }

    /// Directory times, deepest first, once their contents are in place.
    fn finish_dirs(&mut self) -> Result<()> {
        for (path, shown, mtime) in self.dirs.drain(..).rev() {
            sys::set_times(&path, mtime).map_err(|e| CopyError::io("utimensat", shown, e))?;
        }
        Ok(())
    }
}

fn rel_path(rel: &[Vec<u8>]) -> PathBuf {
    let mut p = PathBuf::new();
    for c in rel {
        p.push(OsStr::from_bytes(c));
    }
    p
}

/// A new file, never following a symlink at `target` (0600 until chmod).
fn create_new(target: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(target)
}
