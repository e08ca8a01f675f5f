//! Incremental COPY: what a COPY from the build context copied (the copy
//! index), and seeding a new upper dir from the previous result of the same
//! step.
//!
//! A COPY step whose cache key misses because some source files changed
//! would copy the whole tree again (for a 350 MB context: seconds of
//! copying, 30,000 file creations). Instead, when the same step (same
//! parent, same instruction) ran before, its snapshot — the upper dir it
//! produced, immutable once stored — already holds most of the result:
//!
//! 1. When the build cache alone holds that snapshot and nothing is built
//!    on it, the builder takes it out of the store and [`seed_in_place`]
//!    trims it: it keeps every regular file whose source is unchanged (same
//!    context path and destination, same content digest, mode, owner, size,
//!    mtime and xattrs, no hard links on either side) and removes the rest,
//!    and the subtree of a directory whose source is gone or is no longer a
//!    directory. Cost: one readdir per directory, one `llistxattr` per
//!    source file, and the removals. (The old result's layer blob stays;
//!    its snapshot is extracted again if ever needed.) Otherwise
//!    [`seed_upper`] does the same into a fresh upper dir, recreating the
//!    directories and hard-linking the files it keeps (one `link` per file).
//! 2. The ordinary [`copy_into`](super::copy_into) then runs over an overlay
//!    with that upper dir, with the [`Reuse`] map: a file already linked in
//!    is skipped, everything else (directories' metadata, changed and new
//!    entries, symlinks, devices) is done exactly as a full copy does it. So
//!    the diff is the one a full copy gives, and so are the layer bytes
//!    (times of directories the copy creates itself aside, which only
//!    `SOURCE_DATE_EPOCH` makes reproducible anyway).
//!
//! Safety of the hard links (the [`seed_upper`] case): a linked inode is shared with the previous
//! snapshot, which other builds use as a lower dir. Nothing may write to
//! it: `copy_into` never opens, chmods, chowns or retimes a reused file
//! (it skips it), only ever replaces a path by unlinking it; overlayfs
//! copies a lower file up before any change (and with `index=off` a copy-up
//! never follows hard links); the naive snapshotter and the store only read
//! snapshots. Deleting a snapshot unlinks its names, which leaves the other
//! snapshot's names intact.
//!
//! The index is the list of [`CopyRecord`]s, one per entry `copy_into`
//! wrote, in a compact binary form with a sha256 trailer; the builder keeps
//! the last one per step identity in the build cache.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use rustix::fs::{AtFlags, Mode, OFlags};
use sha2::{Digest as _, Sha256};

use super::sys;
use crate::context::{Entry, EntryKind};

const MAGIC: &[u8; 8] = b"DSTLCOPY";
const VERSION: u32 = 1;

/// One entry a COPY wrote: where it came from, where it went, and the
/// source's attributes that decide the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyRecord {
    /// Index of the COPY source (pattern) that selected it.
    pub source: u32,
    /// The entry's context path as selected ([`Entry::rel_path`]).
    pub rel: Vec<u8>,
    /// Where it was written, relative to the root file system (no leading `/`).
    pub target: Vec<u8>,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime_ns: i64,
    pub rdev: u64,
    /// The source had more than one hard link (never reused).
    pub multi_link: bool,
    /// sha256 of a regular file's content (zero otherwise).
    pub digest: [u8; 32],
    /// A symlink's target.
    pub link: Vec<u8>,
    /// The source's xattrs as copied (see [`encode_xattrs`]).
    pub xattrs: Vec<u8>,
    /// The source's device, inode and status-change time: while they stay
    /// the same its xattrs did too (setting or removing one moves ctime),
    /// which spares reading them again.
    pub dev: u64,
    pub ino: u64,
    pub ctime_ns: i64,
}

impl CopyRecord {
    /// The record of `e`, copied from `source` to `target`.
    pub(crate) fn of(e: &Entry, source: u32, digest: Option<[u8; 32]>, target: Vec<u8>, xattrs: Vec<u8>) -> Self {
        CopyRecord {
            source,
            rel: e.rel_path.as_os_str().as_bytes().to_vec(),
            target,
            kind: e.kind,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            size: e.size,
            mtime_ns: e.mtime_ns,
            rdev: e.rdev,
            multi_link: e.nlink > 1,
            digest: digest.unwrap_or_default(),
            link: e.link_target.as_deref().map(|t| t.as_os_str().as_bytes().to_vec()).unwrap_or_default(),
            xattrs,
            dev: e.dev,
            ino: e.ino,
            ctime_ns: e.ctime_ns,
        }
    }

    /// Whether `e`'s xattrs are the recorded ones: known without reading
    /// them when it is the same inode with the same ctime.
    fn same_xattrs(&self, e: &Entry) -> bool {
        (e.dev == self.dev && e.ino == self.ino && e.ctime_ns == self.ctime_ns)
            || encode_xattrs(&sys::list_xattrs(&e.disk_path)) == self.xattrs
    }

    /// Whether `e` (with content `digest`) would be copied to exactly what
    /// this record's file is, xattrs aside (the caller checks those last:
    /// they cost a system call).
    fn same_file(&self, e: &Entry, digest: Option<[u8; 32]>) -> bool {
        e.kind == EntryKind::File
            && self.kind == EntryKind::File
            && !self.multi_link
            && e.nlink <= 1
            && digest == Some(self.digest)
            && e.mode == self.mode
            && e.uid == self.uid
            && e.gid == self.gid
            && e.size == self.size
            && e.mtime_ns == self.mtime_ns
    }
}

/// Xattrs as one byte string: `name NUL len(u32 LE) value` per attribute.
pub(crate) fn encode_xattrs(xattrs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in xattrs {
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

/// The copy index of one COPY step's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyIndex {
    /// The build-cache key of the step that produced it.
    pub step_key: String,
    /// How many entries each source selected. Whether a source selected
    /// anything decides which destination directories the copy creates
    /// (none for a wildcard that matches nothing), which no record shows.
    pub selected: Vec<u64>,
    pub records: Vec<CopyRecord>,
}

impl CopyIndex {
    /// The binary form (magic, version, records, sha256 trailer).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.records.len() * 120);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        put_bytes(&mut out, self.step_key.as_bytes());
        out.extend_from_slice(&(self.selected.len() as u32).to_le_bytes());
        for n in &self.selected {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&(self.records.len() as u64).to_le_bytes());
        for r in &self.records {
            out.extend_from_slice(&r.source.to_le_bytes());
            put_bytes(&mut out, &r.rel);
            put_bytes(&mut out, &r.target);
            out.push(r.kind.code());
            out.extend_from_slice(&r.mode.to_le_bytes());
            out.extend_from_slice(&r.uid.to_le_bytes());
            out.extend_from_slice(&r.gid.to_le_bytes());
            out.extend_from_slice(&r.size.to_le_bytes());
            out.extend_from_slice(&r.mtime_ns.to_le_bytes());
            out.extend_from_slice(&r.rdev.to_le_bytes());
            out.push(u8::from(r.multi_link));
            out.extend_from_slice(&r.digest);
            put_bytes(&mut out, &r.link);
            put_bytes(&mut out, &r.xattrs);
            out.extend_from_slice(&r.dev.to_le_bytes());
            out.extend_from_slice(&r.ino.to_le_bytes());
            out.extend_from_slice(&r.ctime_ns.to_le_bytes());
        }
        let sum: [u8; 32] = Sha256::digest(&out).into();
        out.extend_from_slice(&sum);
        out
    }

    /// Parses [`CopyIndex::encode`]'s output; `None` if it is damaged or of
    /// another version (the caller then copies in full).
    pub fn decode(bytes: &[u8]) -> Option<CopyIndex> {
        if bytes.len() < MAGIC.len() + 4 + 32 || &bytes[..8] != MAGIC {
            return None;
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != sum {
            return None;
        }
        let mut r = Reader { b: body, at: 8 };
        if r.u32()? != VERSION {
            return None;
        }
        let step_key = String::from_utf8(r.bytes()?.to_vec()).ok()?;
        let sources = r.u32()? as usize;
        let mut selected = Vec::with_capacity(sources.min(body.len() / 8));
        for _ in 0..sources {
            selected.push(r.u64()?);
        }
        let count = usize::try_from(r.u64()?).ok()?;
        // Each record takes at least 114 bytes: never trust `count` beyond that.
        let mut records = Vec::with_capacity(count.min(body.len() / 114));
        for _ in 0..count {
            let source = r.u32()?;
            let rel = r.bytes()?.to_vec();
            let target = r.bytes()?.to_vec();
            let kind = EntryKind::from_code(r.take(1)?[0])?;
            let (mode, uid, gid) = (r.u32()?, r.u32()?, r.u32()?);
            let size = r.u64()?;
            let mtime_ns = r.u64()? as i64;
            let rdev = r.u64()?;
            let multi_link = r.take(1)?[0] != 0;
            let digest: [u8; 32] = r.take(32)?.try_into().ok()?;
            let link = r.bytes()?.to_vec();
            let xattrs = r.bytes()?.to_vec();
            let (dev, ino, ctime_ns) = (r.u64()?, r.u64()?, r.u64()? as i64);
            records.push(CopyRecord {
                source,
                rel,
                target,
                kind,
                mode,
                uid,
                gid,
                size,
                mtime_ns,
                rdev,
                multi_link,
                digest,
                link,
                xattrs,
                dev,
                ino,
                ctime_ns,
            });
        }
        (r.at == body.len()).then_some(CopyIndex { step_key, selected, records })
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.b.get(self.at..end)?;
        self.at = end;
        Some(s)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// The entries one COPY source selected, with their content digests
/// (regular files; from the context's hash cache), in selection order.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub entries: Vec<Entry>,
    pub digests: Vec<Option<[u8; 32]>>,
}

/// The files [`seed_upper`] linked in: (source, context path) → the
/// previous index's record of the file (whose target holds it).
#[derive(Debug, Default)]
pub struct Reuse<'a> {
    map: HashMap<(u32, &'a [u8]), &'a CopyRecord>,
    /// Targets of recorded directories that were recreated.
    dirs: Vec<&'a [u8]>,
}

impl Reuse<'_> {
    /// The record of a file already in place at `target` for this entry.
    pub(crate) fn get(&self, source: u32, rel: &[u8], target: &[u8]) -> Option<&CopyRecord> {
        self.map.get(&(source, rel)).copied().filter(|r| r.target == target)
    }

    /// Whether the copy that used this map wrote (or skipped as in place)
    /// every recorded path that was seeded: otherwise the seeded upper dir
    /// holds something a full copy would not have written there.
    pub fn all_claimed(&self, records: &[CopyRecord]) -> bool {
        let mut written = HashSet::with_capacity(records.len());
        written.extend(records.iter().map(|r| r.target.as_slice()));
        self.map.values().all(|r| written.contains(r.target.as_slice()))
            && self.dirs.iter().all(|t| written.contains(t))
    }

    /// How many files were linked in.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing was reused.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Fills the empty directory `new_upper` from `old_upper` (the previous
/// result of the same COPY step, described by `old`) for a copy of
/// `selections`, as the module documentation says. Returns `None` when the
/// old upper dir holds something the index does not explain (then the
/// caller empties `new_upper` and copies in full).
pub fn seed_upper<'a>(
    old_upper: &Path,
    new_upper: &Path,
    old: &'a CopyIndex,
    selections: &[Selection],
) -> io::Result<Option<Reuse<'a>>> {
    seed(old_upper, Some(new_upper), old, selections)
}

/// [`seed_upper`] in place: `upper` is the previous result itself, taken
/// out of the store (nobody else uses it), and what a full copy would not
/// keep is removed from it. Nothing is linked, so nothing is shared.
pub fn seed_in_place<'a>(upper: &Path, old: &'a CopyIndex, selections: &[Selection]) -> io::Result<Option<Reuse<'a>>> {
    seed(upper, None, old, selections)
}

fn seed<'a>(
    old_upper: &Path,
    new_upper: Option<&Path>,
    old: &'a CopyIndex,
    selections: &[Selection],
) -> io::Result<Option<Reuse<'a>>> {
    let same_shape = old.selected.len() == selections.len()
        && old.selected.iter().zip(selections).all(|(&n, s)| (n == 0) == s.entries.is_empty());
    if !same_shape {
        return Ok(None);
    }
    let mut by_target: HashMap<&[u8], &CopyRecord> = HashMap::with_capacity(old.records.len());
    for r in &old.records {
        if by_target.insert(&r.target, r).is_some() {
            // Two sources wrote one path: which one won is the copy's business.
            return Ok(None);
        }
    }
    let mut new: NewEntries<'_> = HashMap::with_capacity(selections.iter().map(|s| s.entries.len()).sum());
    for (i, sel) in selections.iter().enumerate() {
        for (j, e) in sel.entries.iter().enumerate() {
            new.insert((i as u32, e.rel_path.as_os_str().as_bytes()), (e, sel.digests.get(j).copied().flatten()));
        }
    }
    let mut seeder = Seeder { root: old_upper, by_target, new, reuse: Reuse::default() };
    let old_fd = open_dir(old_upper)?;
    let new_fd = new_upper.map(open_dir).transpose()?;
    if !seeder.dir(&old_fd, new_fd.as_ref(), &mut Vec::new())? {
        return Ok(None);
    }
    Ok(Some(seeder.reuse))
}

/// The entries being copied: (source, context path) → (entry, content digest).
type NewEntries<'a> = HashMap<(u32, &'a [u8]), (&'a Entry, Option<[u8; 32]>)>;

struct Seeder<'a, 's> {
    /// The old upper dir (in place: the one being trimmed).
    root: &'s Path,
    by_target: HashMap<&'a [u8], &'a CopyRecord>,
    new: NewEntries<'s>,
    reuse: Reuse<'a>,
}

fn open_dir(p: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(p, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?)
}

fn openat_dir(dir: &OwnedFd, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Xattrs a seeded directory keeps: everything but overlayfs' bookkeeping,
/// except the opaque marker, which is part of the diff.
fn keep_dir_xattr(name: &[u8]) -> bool {
    !(name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay."))
        || name == b"trusted.overlay.opaque"
        || name == b"user.overlay.opaque"
}

impl Seeder<'_, '_> {
    /// Seeds the contents of one directory (`new`: where to link to; none
    /// when trimming in place); `rel` is its path in the root. Returns
    /// false when something unexplained was found.
    fn dir(&mut self, old: &OwnedFd, new: Option<&OwnedFd>, rel: &mut Vec<u8>) -> io::Result<bool> {
        let names: Vec<(Vec<u8>, rustix::fs::FileType)> = {
            let mut dir = rustix::fs::Dir::read_from(old)?;
            let mut names = Vec::new();
            while let Some(ent) = dir.read() {
                let ent = ent?;
                let name = ent.file_name().to_bytes();
                if name == b"." || name == b".." {
                    continue;
                }
                names.push((name.to_vec(), ent.file_type()));
            }
            names
        };
        for (name, mut ft) in names {
            let len = rel.len();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(&name);
            let name_os = OsStr::from_bytes(&name);
            if ft == rustix::fs::FileType::Unknown {
                let st = rustix::fs::statat(old, name_os, AtFlags::SYMLINK_NOFOLLOW)?;
                ft = rustix::fs::FileType::from_raw_mode(st.st_mode);
            }
            let record = self.by_target.get(rel.as_slice()).copied();
            let wanted = record.map(|r| self.new.get(&(r.source, r.rel.as_slice())).copied());
            let ok = match ft {
                rustix::fs::FileType::Directory => {
                    // A directory whose source is gone or became something else goes entirely.
                    let keep = match wanted {
                        None => true,
                        Some(Some((e, _))) => e.kind == EntryKind::Dir,
                        Some(None) => false,
                    };
                    if keep {
                        // The copy sets a kept directory's owner, mode and
                        // time again, but only adds xattrs: a source that
                        // lost one needs a full copy.
                        let same_xattrs = match (record, wanted) {
                            (Some(r), Some(Some((e, _)))) => r.same_xattrs(e),
                            _ => true,
                        };
                        if let Some(r) = record {
                            self.reuse.dirs.push(&r.target);
                        }
                        same_xattrs && self.subdir(old, new, name_os, rel)?
                    } else {
                        if new.is_none() {
                            fs::remove_dir_all(self.root.join(OsStr::from_bytes(rel)))?;
                        }
                        true
                    }
                }
                rustix::fs::FileType::RegularFile => match (record, wanted) {
                    // Content nobody recorded: not ours to judge.
                    (None, _) => false,
                    (Some(r), Some(Some((e, digest)))) if r.same_file(e, digest) && r.same_xattrs(e) => {
                        if let Some(new) = new {
                            rustix::fs::linkat(old, name_os, new, name_os, AtFlags::empty())?;
                        }
                        self.reuse.map.insert((r.source, &r.rel), r);
                        true
                    }
                    _ => {
                        if new.is_none() {
                            rustix::fs::unlinkat(old, name_os, AtFlags::empty())?;
                        }
                        true
                    }
                },
                // Links and devices are cheap: the copy recreates them. One
                // that no record explains (a whiteout?) makes the diff unknown.
                _ => {
                    if record.is_some() && new.is_none() {
                        rustix::fs::unlinkat(old, name_os, AtFlags::empty())?;
                    }
                    record.is_some()
                }
            };
            rel.truncate(len);
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn subdir(&mut self, old: &OwnedFd, new: Option<&OwnedFd>, name: &OsStr, rel: &mut Vec<u8>) -> io::Result<bool> {
        let old_sub = openat_dir(old, name)?;
        let Some(new) = new else { return self.dir(&old_sub, None, rel) };
        let meta = fs::File::from(old_sub.try_clone()?).metadata()?;
        rustix::fs::mkdirat(new, name, Mode::from_raw_mode(0o700))?;
        let new_sub = openat_dir(new, name)?;
        if !self.dir(&old_sub, Some(&new_sub), rel)? {
            return Ok(false);
        }
        // Owner, then mode (chown clears setuid/setgid), xattrs, and the
        // time last, after the directory's contents are in.
        let new_file = fs::File::from(new_sub);
        std::os::unix::fs::fchown(&new_file, Some(meta.uid()), Some(meta.gid()))?;
        new_file.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        let xattrs: Vec<(Vec<u8>, Vec<u8>)> =
            list_all_xattrs(&old_sub).into_iter().filter(|(k, _)| keep_dir_xattr(k)).collect();
        for (k, v) in &xattrs {
            rustix::fs::fsetxattr(&new_file, k.as_slice(), v, rustix::fs::XattrFlags::empty())?;
        }
        let t = rustix::fs::Timespec { tv_sec: meta.mtime(), tv_nsec: meta.mtime_nsec() as _ };
        rustix::fs::futimens(&new_file, &rustix::fs::Timestamps { last_access: t, last_modification: t })?;
        Ok(true)
    }
}

/// Every xattr of an open directory, overlayfs' own included (the opaque
/// marker matters).
fn list_all_xattrs(fd: &OwnedFd) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut names = vec![0u8; 64 * 1024];
    let Ok(n) = rustix::fs::flistxattr(fd, &mut names[..]) else { return Vec::new() };
    names.truncate(n);
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let mut value = vec![0u8; 64 * 1024];
        if let Ok(n) = rustix::fs::fgetxattr(fd, name, &mut value[..]) {
            value.truncate(n);
            out.push((name.to_vec(), value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u32) -> CopyRecord {
        CopyRecord {
            source: i,
            rel: format!("src/f{i}").into_bytes(),
            target: format!("dst/f{i}").into_bytes(),
            kind: if i.is_multiple_of(2) { EntryKind::File } else { EntryKind::Dir },
            mode: 0o644 + i,
            uid: i,
            gid: 2 * i,
            size: 100 * u64::from(i),
            mtime_ns: -(i as i64),
            rdev: 7,
            multi_link: i == 3,
            digest: [i as u8; 32],
            link: if i == 1 { b"../x".to_vec() } else { Vec::new() },
            xattrs: encode_xattrs(&[(b"user.a".to_vec(), vec![i as u8])]),
            dev: 1,
            ino: 1000 + u64::from(i),
            ctime_ns: 5 - i as i64,
        }
    }

    #[test]
    fn index_round_trip_and_damage() {
        let index = CopyIndex {
            step_key: "step:sha256:00".into(),
            selected: vec![3, 0, 7],
            records: (0..5).map(record).collect(),
        };
        let bytes = index.encode();
        assert_eq!(CopyIndex::decode(&bytes), Some(index));
        let mut bad = bytes.clone();
        bad[20] ^= 1;
        assert_eq!(CopyIndex::decode(&bad), None);
        assert_eq!(CopyIndex::decode(&bytes[..bytes.len() - 1]), None);
        assert_eq!(CopyIndex::decode(b""), None);
    }
}
