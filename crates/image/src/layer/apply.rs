//! Safe layer extraction.
//!
//! Nothing is ever written outside the root. Names are cleaned (`..` that
//! climbs out of the root is an error, absolute names are relative to the
//! root). Every parent directory is resolved component by component with
//! `lstat`; a symlink met on the way is followed *as if the root were `/`*
//! (absolute targets restart at the root, `..` stops at it), which is what a
//! chroot gives Docker. The paths finally handed to the kernel therefore
//! contain no symlink at all, and the last component is never followed:
//! whatever was there is removed first (directories over directories are
//! kept), files are created with `O_CREAT|O_EXCL|O_NOFOLLOW`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsStr;
use std::fs::{self, DirBuilder, Metadata, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::compress::{Codec, classify_read_error, decompress};
use super::path::clean_components;
use super::reader::{EntryKind, TarEntry, TarReader};
use super::{LayerError, OVERLAY_OPAQUE_XATTR, WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE, WHITEOUT_PREFIX, lossy, sys};

/// What to do with whiteout entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhiteoutMode {
    /// The root is one layer's snapshot, used as an overlayfs lower dir:
    /// `.wh.<name>` becomes a char device 0:0 and `.wh..wh..opq` the
    /// `trusted.overlay.opaque=y` xattr on its directory.
    Overlay,
    /// The root is a flattened rootfs: `.wh.<name>` deletes `<name>`, and
    /// `.wh..wh..opq` deletes what the directory held before this layer.
    Apply,
}

/// How to extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyOptions {
    pub whiteouts: WhiteoutMode,
    /// Restore uid/gid from the archive (needs root for other owners).
    pub same_owner: bool,
}

impl Default for ApplyOptions {
    /// Apply mode; owners restored when running as root.
    fn default() -> Self {
        ApplyOptions { whiteouts: WhiteoutMode::Apply, same_owner: sys::is_root() }
    }
}

/// Counts from one [`apply_layer`] call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyStats {
    pub entries: u64,
    pub files: u64,
    pub directories: u64,
    pub symlinks: u64,
    pub hard_links: u64,
    pub devices: u64,
    pub fifos: u64,
    pub whiteouts: u64,
    /// Bytes of file data written.
    pub bytes: u64,
    /// Device nodes not created because we are not root.
    pub skipped_devices: u64,
    /// Xattrs not set: unsupported by the filesystem, not permitted, or
    /// overlayfs' own (`trusted.overlay.*`, `user.overlay.*`).
    pub skipped_xattrs: u64,
}

/// Extracts a tar stream into `root` (which must exist). The stream should
/// be plain tar; gzip or zstd is detected and decompressed anyway.
/// Entries are applied in archive order (a later entry replaces an earlier
/// one); directory modes and mtimes are set at the end, after their
/// contents. On error, `root` may hold part of the layer: extract into a
/// fresh directory and discard it on failure.
pub fn apply_layer(reader: impl Read, root: &Path, opts: &ApplyOptions) -> Result<ApplyStats, LayerError> {
    let root = fs::canonicalize(root).map_err(|e| LayerError::io(format!("extraction root {}", root.display()), e))?;
    if !root.is_dir() {
        return Err(LayerError::Options(format!("extraction root {} is not a directory", root.display())));
    }
    let dec = decompress(reader)?;
    let compressed = dec.codec() != Codec::None;
    let mut tr = TarReader::new(dec);
    let mut ap = Applier {
        root,
        opts: *opts,
        am_root: sys::is_root(),
        stats: ApplyStats::default(),
        unpacked: HashSet::new(),
        dirs: HashMap::new(),
        buf: vec![0u8; 256 * 1024],
    };
    let mut run = || -> Result<(), LayerError> {
        while let Some(e) = tr.next_entry()? {
            ap.entry(&e, &mut tr)?;
        }
        tr.drain(false)?;
        ap.finish_dirs()
    };
    match run() {
        Ok(()) => Ok(ap.stats),
        Err(e) => Err(tr.root_cause(e, compressed)),
    }
}

struct Applier {
    root: PathBuf,
    opts: ApplyOptions,
    am_root: bool,
    stats: ApplyStats,
    /// Real paths (relative to root) this layer created or updated; an
    /// opaque marker in Apply mode keeps these.
    unpacked: HashSet<Vec<u8>>,
    /// Directory → (mode, mtime), set at the end.
    dirs: HashMap<PathBuf, (u32, i64)>,
    buf: Vec<u8>,
}

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

fn join_rel(rel: &[u8], name: &[u8]) -> Vec<u8> {
    let mut v = rel.to_vec();
    if !v.is_empty() {
        v.push(b'/');
    }
    v.extend_from_slice(name);
    v
}

fn remove_existing(p: &Path, m: &Metadata) -> io::Result<()> {
    if m.is_dir() { fs::remove_dir_all(p) } else { fs::remove_file(p) }
}

fn lstat(p: &Path) -> io::Result<Option<Metadata>> {
    match fs::symlink_metadata(p) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl Applier {
    /// Resolves the directory `comps` inside the root, following symlinks
    /// as if the root were `/`. Returns the real path (no symlinks in it)
    /// and its path relative to the root; `None` when a component is
    /// missing and `create` is false (with `create`, missing directories
    /// are made, mode 0755).
    fn resolve_dir(
        &mut self,
        comps: &[&[u8]],
        create: bool,
        entry: &[u8],
    ) -> Result<Option<(PathBuf, Vec<u8>)>, LayerError> {
        let mut cur: Vec<Vec<u8>> = Vec::new();
        let mut pending: VecDeque<Vec<u8>> = comps.iter().map(|c| c.to_vec()).collect();
        let mut hops = 0;
        while let Some(c) = pending.pop_front() {
            if c.is_empty() || c == b"." {
                continue;
            }
            if c == b".." {
                cur.pop();
                continue;
            }
            let mut p = self.root.clone();
            for d in &cur {
                p.push(os(d));
            }
            p.push(os(&c));
            let m = lstat(&p).map_err(|e| LayerError::entry(entry, "resolving a parent directory", e))?;
            match m {
                Some(m) if m.is_dir() => cur.push(c),
                Some(m) if m.file_type().is_symlink() => {
                    hops += 1;
                    if hops > 40 {
                        return Err(LayerError::unsafe_entry(entry, "too many levels of symlinks in its parents"));
                    }
                    let target = fs::read_link(&p)
                        .map_err(|e| LayerError::entry(entry, "reading a symlink among its parents", e))?
                        .into_os_string()
                        .into_vec();
                    if target.starts_with(b"/") {
                        cur.clear();
                    }
                    for part in target.split(|&b| b == b'/').rev() {
                        pending.push_front(part.to_vec());
                    }
                }
                Some(_) => {
                    let rel: Vec<&[u8]> = cur.iter().map(|v| v.as_slice()).chain([c.as_slice()]).collect();
                    return Err(LayerError::entry(
                        entry,
                        "creating parent directories",
                        io::Error::new(
                            io::ErrorKind::NotADirectory,
                            format!("{:?} is not a directory", lossy(&super::path::join(&rel))),
                        ),
                    ));
                }
                None if create => {
                    DirBuilder::new()
                        .mode(0o755)
                        .create(&p)
                        .map_err(|e| LayerError::entry(entry, "creating parent directories", e))?;
                    cur.push(c);
                }
                None => return Ok(None),
            }
        }
        let mut p = self.root.clone();
        for d in &cur {
            p.push(os(d));
        }
        let rel: Vec<&[u8]> = cur.iter().map(|v| v.as_slice()).collect();
        Ok(Some((p, super::path::join(&rel))))
    }

    fn entry<R: Read>(&mut self, e: &TarEntry, tr: &mut TarReader<R>) -> Result<(), LayerError> {
        self.stats.entries += 1;
        let comps = clean_components(&e.path).map_err(|why| LayerError::unsafe_entry(&e.path, why))?;
        let Some((base, parent)) = comps.split_last() else {
            // `./`: the root's own metadata.
            if e.kind != EntryKind::Directory {
                return Err(LayerError::unsafe_entry(&e.path, "it names the root but is not a directory"));
            }
            let root = self.root.clone();
            self.owner(&root, e)?;
            self.xattrs(&root, e)?;
            self.dirs.insert(root, (e.mode, e.mtime));
            return Ok(());
        };
        if base.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(e, parent, base);
        }

        // A hard link's target is resolved before anything is removed.
        let link_target = if e.kind == EntryKind::HardLink { Some(self.hardlink_target(e)?) } else { None };

        let Some((pdir, prel)) = self.resolve_dir(parent, true, &e.path)? else {
            return Err(LayerError::entry(&e.path, "creating parent directories", io::ErrorKind::NotFound.into()));
        };
        let target = pdir.join(os(base));
        let rel = join_rel(&prel, base);
        if let Some(m) =
            lstat(&target).map_err(|err| LayerError::entry(&e.path, "inspecting the existing file", err))?
            && !(m.is_dir() && e.kind == EntryKind::Directory)
        {
            remove_existing(&target, &m)
                .map_err(|err| LayerError::entry(&e.path, "replacing the existing file", err))?;
        }

        match e.kind {
            EntryKind::Regular => {
                self.write_file(&target, e, tr)?;
                self.stats.files += 1;
            }
            EntryKind::Directory => {
                if lstat(&target).ok().flatten().is_none() {
                    DirBuilder::new()
                        .mode(0o700)
                        .create(&target)
                        .map_err(|err| LayerError::entry(&e.path, "creating directory", err))?;
                }
                self.owner(&target, e)?;
                self.xattrs(&target, e)?;
                self.dirs.insert(target.clone(), (e.mode, e.mtime));
                self.stats.directories += 1;
            }
            EntryKind::Symlink => {
                std::os::unix::fs::symlink(os(&e.link_name), &target)
                    .map_err(|err| LayerError::entry(&e.path, "creating symlink", err))?;
                self.owner(&target, e)?;
                self.xattrs(&target, e)?;
                self.mtime(&target, e)?;
                self.stats.symlinks += 1;
            }
            EntryKind::HardLink => {
                let src = link_target.unwrap_or_default();
                fs::hard_link(&src, &target).map_err(|err| LayerError::entry(&e.path, "creating hard link", err))?;
                self.stats.hard_links += 1;
            }
            EntryKind::CharDevice | EntryKind::BlockDevice | EntryKind::Fifo => {
                let kind = match e.kind {
                    EntryKind::CharDevice => sys::char_device(),
                    EntryKind::BlockDevice => sys::block_device(),
                    _ => sys::fifo(),
                };
                if e.kind != EntryKind::Fifo && !self.am_root {
                    self.stats.skipped_devices += 1;
                    return Ok(());
                }
                sys::mknod(&target, kind, 0o600, e.dev_major, e.dev_minor)
                    .map_err(|err| LayerError::entry(&e.path, "creating device node", err))?;
                self.owner(&target, e)?;
                fs::set_permissions(&target, fs::Permissions::from_mode(e.mode))
                    .map_err(|err| LayerError::entry(&e.path, "setting mode", err))?;
                self.xattrs(&target, e)?;
                self.mtime(&target, e)?;
                if e.kind == EntryKind::Fifo {
                    self.stats.fifos += 1;
                } else {
                    self.stats.devices += 1;
                }
            }
            EntryKind::Other(t) => {
                return Err(LayerError::unsupported(&e.path, format!("entry type {:?}", char::from(t))));
            }
        }
        self.unpacked.insert(rel);
        Ok(())
    }

    /// The real path of a hard link's target: inside the root, existing,
    /// not a directory.
    fn hardlink_target(&mut self, e: &TarEntry) -> Result<PathBuf, LayerError> {
        let t = clean_components(&e.link_name).map_err(|why| {
            LayerError::unsafe_entry(&e.path, format!("hard link target {:?}: {why}", lossy(&e.link_name)))
        })?;
        let Some((tbase, tparent)) = t.split_last() else {
            return Err(LayerError::unsafe_entry(&e.path, "a hard link to the root"));
        };
        let missing = || {
            LayerError::unsafe_entry(
                &e.path,
                format!("hard link target {:?} does not exist in the root", lossy(&e.link_name)),
            )
        };
        let Some((tdir, _)) = self.resolve_dir(tparent, false, &e.path)? else {
            return Err(missing());
        };
        let tpath = tdir.join(os(tbase));
        match lstat(&tpath).map_err(|err| LayerError::entry(&e.path, "inspecting the hard link target", err))? {
            None => Err(missing()),
            Some(m) if m.is_dir() => Err(LayerError::unsafe_entry(
                &e.path,
                format!("hard link target {:?} is a directory", lossy(&e.link_name)),
            )),
            Some(_) => Ok(tpath),
        }
    }

    fn write_file<R: Read>(&mut self, target: &Path, e: &TarEntry, tr: &mut TarReader<R>) -> Result<(), LayerError> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(target)
            .map_err(|err| LayerError::entry(&e.path, "creating file", err))?;
        let ctx = format!("entry {:?}", e.display_path());
        let mut written: u64 = 0;
        let mut holes = false;
        let mut data = tr.data();
        loop {
            // Fill the buffer (or reach the entry's end).
            let mut n = 0;
            while n < self.buf.len() {
                match data.read(&mut self.buf[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => return Err(classify_read_error(err, &ctx)),
                }
            }
            if n == 0 {
                break;
            }
            let chunk = &self.buf[..n];
            // All-zero chunks become holes: sparse files stay sparse.
            if chunk.iter().all(|&b| b == 0) {
                f.seek(SeekFrom::Current(n as i64)).map_err(|err| LayerError::entry(&e.path, "writing file", err))?;
                holes = true;
            } else {
                f.write_all(chunk).map_err(|err| LayerError::entry(&e.path, "writing file", err))?;
            }
            written += n as u64;
        }
        if holes {
            f.set_len(written).map_err(|err| LayerError::entry(&e.path, "writing file", err))?;
        }
        self.stats.bytes += written;
        if self.opts.same_owner {
            let (uid, gid) = ids(e)?;
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))
                .map_err(|err| LayerError::entry(&e.path, "setting owner", err))?;
        }
        // chmod after chown: chown clears setuid/setgid.
        f.set_permissions(fs::Permissions::from_mode(e.mode))
            .map_err(|err| LayerError::entry(&e.path, "setting mode", err))?;
        drop(f);
        self.xattrs(target, e)?;
        self.mtime(target, e)
    }

    fn owner(&mut self, p: &Path, e: &TarEntry) -> Result<(), LayerError> {
        if self.opts.same_owner {
            let (uid, gid) = ids(e)?;
            std::os::unix::fs::lchown(p, Some(uid), Some(gid))
                .map_err(|err| LayerError::entry(&e.path, "setting owner", err))?;
        }
        Ok(())
    }

    fn xattrs(&mut self, p: &Path, e: &TarEntry) -> Result<(), LayerError> {
        for (k, v) in &e.xattrs {
            if k.starts_with(b"trusted.overlay.") || k.starts_with(b"user.overlay.") {
                self.stats.skipped_xattrs += 1;
                continue;
            }
            match sys::set_xattr(p, k, v) {
                Ok(()) => {}
                Err(err) if sys::xattr_unsupported(&err) => self.stats.skipped_xattrs += 1,
                Err(err) => {
                    return Err(LayerError::Entry {
                        path: lossy(&e.path),
                        action: "setting xattr",
                        source: io::Error::new(err.kind(), format!("{}: {err}", lossy(k))),
                    });
                }
            }
        }
        Ok(())
    }

    fn mtime(&mut self, p: &Path, e: &TarEntry) -> Result<(), LayerError> {
        sys::set_mtime_nofollow(p, e.mtime).map_err(|err| LayerError::entry(&e.path, "setting mtime", err))
    }

    fn whiteout(&mut self, e: &TarEntry, parent: &[&[u8]], base: &[u8]) -> Result<(), LayerError> {
        if base == WHITEOUT_OPAQUE.as_bytes() {
            self.stats.whiteouts += 1;
            match self.opts.whiteouts {
                WhiteoutMode::Overlay => {
                    let Some((dir, _)) = self.resolve_dir(parent, true, &e.path)? else {
                        return Ok(());
                    };
                    sys::set_xattr(&dir, OVERLAY_OPAQUE_XATTR.as_bytes(), b"y")
                        .map_err(|err| LayerError::entry(&e.path, "marking the directory opaque", err))?;
                }
                WhiteoutMode::Apply => {
                    if let Some((dir, rel)) = self.resolve_dir(parent, false, &e.path)? {
                        self.clear_dir(&dir, &rel, &e.path)?;
                    }
                }
            }
            return Ok(());
        }
        if base.starts_with(WHITEOUT_META_PREFIX.as_bytes()) {
            // AUFS metadata (.wh..wh.plnk, ...): nothing to do.
            return Ok(());
        }
        let name = &base[WHITEOUT_PREFIX.len()..];
        if name.is_empty() || name == b"." || name == b".." {
            return Err(LayerError::unsafe_entry(&e.path, "a whiteout must name a file"));
        }
        self.stats.whiteouts += 1;
        match self.opts.whiteouts {
            WhiteoutMode::Overlay => {
                if !self.am_root {
                    return Err(LayerError::unsupported(&e.path, "overlay whiteouts (char devices 0:0) need root"));
                }
                let Some((dir, _)) = self.resolve_dir(parent, true, &e.path)? else {
                    return Ok(());
                };
                let p = dir.join(os(name));
                if let Some(m) = lstat(&p).map_err(|err| LayerError::entry(&e.path, "inspecting the whiteout", err))? {
                    remove_existing(&p, &m).map_err(|err| LayerError::entry(&e.path, "replacing a file", err))?;
                }
                sys::mknod(&p, sys::char_device(), 0, 0, 0)
                    .map_err(|err| LayerError::entry(&e.path, "creating whiteout device", err))?;
                self.owner(&p, e)?;
            }
            WhiteoutMode::Apply => {
                if let Some((dir, _)) = self.resolve_dir(parent, false, &e.path)? {
                    let p = dir.join(os(name));
                    if let Some(m) =
                        lstat(&p).map_err(|err| LayerError::entry(&e.path, "inspecting the whiteout", err))?
                    {
                        remove_existing(&p, &m)
                            .map_err(|err| LayerError::entry(&e.path, "deleting the whited-out file", err))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Removes what `dir` held that this layer did not create.
    fn clear_dir(&mut self, dir: &Path, rel: &[u8], entry: &[u8]) -> Result<(), LayerError> {
        let rd = fs::read_dir(dir).map_err(|e| LayerError::entry(entry, "reading the opaque directory", e))?;
        for ent in rd {
            let ent = ent.map_err(|e| LayerError::entry(entry, "reading the opaque directory", e))?;
            let name = ent.file_name();
            let child_rel = join_rel(rel, name.as_bytes());
            let p = ent.path();
            let Some(m) = lstat(&p).map_err(|e| LayerError::entry(entry, "reading the opaque directory", e))? else {
                continue;
            };
            if self.unpacked.contains(&child_rel) {
                if m.is_dir() {
                    self.clear_dir(&p, &child_rel, entry)?;
                }
            } else {
                remove_existing(&p, &m).map_err(|e| LayerError::entry(entry, "clearing the opaque directory", e))?;
            }
        }
        Ok(())
    }

    /// Whether `p` (under the root) is a directory reached through real
    /// directories only, with no symlink on the way.
    fn real_dir_path(&self, p: &Path) -> bool {
        let Ok(rel) = p.strip_prefix(&self.root) else {
            return false;
        };
        let mut cur = self.root.clone();
        for c in rel.components() {
            cur.push(c);
            match lstat(&cur) {
                Ok(Some(m)) if m.is_dir() => {}
                _ => return false,
            }
        }
        true
    }

    /// Directory modes and mtimes, deepest first, after all contents.
    fn finish_dirs(&mut self) -> Result<(), LayerError> {
        let mut dirs: Vec<(PathBuf, (u32, i64))> = self.dirs.drain().collect();
        dirs.sort_by(|a, b| b.0.components().count().cmp(&a.0.components().count()).then_with(|| a.0.cmp(&b.0)));
        for (p, (mode, mtime)) in dirs {
            let name = p.strip_prefix(&self.root).unwrap_or(&p).as_os_str().as_bytes().to_vec();
            // A later entry may have replaced a parent with a symlink: only
            // a path of real directories all the way down is touched.
            if !self.real_dir_path(&p) {
                continue;
            }
            fs::set_permissions(&p, fs::Permissions::from_mode(mode))
                .map_err(|e| LayerError::entry(&name, "setting directory mode", e))?;
            sys::set_mtime_nofollow(&p, mtime).map_err(|e| LayerError::entry(&name, "setting directory mtime", e))?;
        }
        Ok(())
    }
}

fn ids(e: &TarEntry) -> Result<(u32, u32), LayerError> {
    match (u32::try_from(e.uid), u32::try_from(e.gid)) {
        (Ok(u), Ok(g)) => Ok((u, g)),
        _ => Err(LayerError::unsupported(&e.path, format!("uid/gid {}:{} out of range", e.uid, e.gid))),
    }
}
