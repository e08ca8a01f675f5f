//! Content digests of selected context entries, for COPY/ADD cache keys, and
//! the persistent per-file hash cache that makes an unchanged rebuild read
//! no file contents.

use std::cell::RefCell;
use std::cmp::Ordering as CmpOrdering;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::error::{ContextError, Result};
use super::walk::{Entry, EntryKind};

/// Prefix of every content digest record stream; bump when the format changes.
const DIGEST_DOMAIN: &[u8] = b"distill.context.v1\0";

const CACHE_MAGIC: &[u8; 8] = b"DSTLHASH";
const CACHE_VERSION: u32 = 1;
const CACHE_HEADER: usize = 8 + 4 + 4 + 8;
const CACHE_RECORD: usize = 8 * 5 + 4 + 32;
/// Entries not used in this many consecutive saves are dropped.
const MAX_AGE: u32 = 8;

/// A file whose mtime or ctime is this close to the moment hashing started
/// could still change without its timestamps moving (timestamps come from a
/// coarse clock), so its hash is used but not persisted ("racily clean").
const RACY_MARGIN_NS: i64 = 50_000_000;
/// The margin on file systems that store whole seconds only.
const RACY_MARGIN_COARSE_NS: i64 = 2_000_000_000;

const READ_BUF: usize = 256 * 1024;

/// Bytes of digest records hashed at once.
const RECORD_BLOCK: usize = 64 * 1024;

/// Cache lookups per parallel task: enough to outweigh handing work over.
const LOOKUPS_PER_TASK: usize = 2048;

/// What identifies an unchanged file: if none of these moved, its content
/// did not either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
}

impl FileKey {
    fn of(e: &Entry) -> FileKey {
        FileKey { dev: e.dev, ino: e.ino, size: e.size, mtime_ns: e.mtime_ns, ctime_ns: e.ctime_ns }
    }
}

/// Keys are inode numbers and timestamps, not chosen by an adversary: a
/// fast hasher (SipHash was a visible share of a warm run).
type KeyMap = foldhash::HashMap<FileKey, Slot>;

#[derive(Debug)]
struct Slot {
    digest: [u8; 32],
    /// Saves since it was last used.
    age: u32,
    /// Set by lookups, which share the map (read lock) across threads.
    used: AtomicBool,
    racy: bool,
}

/// Persistent cache of file content sha256 digests keyed by
/// (device, inode, size, mtime, ctime), with hit/miss counters.
///
/// The on-disk form is a compact binary file (76 bytes per file plus a
/// sha256 trailer) written atomically (temp file, fsync, rename). A missing,
/// truncated or corrupt file loads as an empty cache.
pub struct HashCache {
    path: Option<PathBuf>,
    /// A load still running on another thread (see
    /// [`HashCache::load_in_background`]); taken by the first lookup.
    loading: Mutex<Option<JoinHandle<KeyMap>>>,
    slots: RwLock<KeyMap>,
    hits: AtomicU64,
    misses: AtomicU64,
    dirty: AtomicBool,
}

impl fmt::Debug for HashCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashCache")
            .field("path", &self.path)
            .field("entries", &self.len())
            .field("hits", &self.hits())
            .field("misses", &self.misses())
            .finish()
    }
}

impl Default for HashCache {
    fn default() -> Self {
        HashCache::new()
    }
}

impl HashCache {
    /// An empty in-memory cache (not tied to a file).
    pub fn new() -> HashCache {
        HashCache {
            path: None,
            loading: Mutex::new(None),
            slots: RwLock::new(KeyMap::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            dirty: AtomicBool::new(false),
        }
    }

    /// Loads the cache stored at `path`; [`HashCache::save`] writes it back
    /// there. A missing or unreadable-as-cache file gives an empty cache;
    /// other I/O errors (permissions) are reported.
    pub fn load(path: impl AsRef<Path>) -> Result<HashCache> {
        let path = path.as_ref();
        let mut cache = HashCache::new();
        cache.path = Some(path.to_path_buf());
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(cache),
            Err(e) => return Err(ContextError::io("read hash cache", path, e)),
        };
        if let Some(slots) = decode(&bytes) {
            cache.slots = RwLock::new(slots);
        }
        Ok(cache)
    }

    /// [`HashCache::load`] on another thread, so that reading and decoding
    /// the file overlaps the context walk that precedes the first lookup. A
    /// file that cannot be read gives an empty cache (it is rewritten on
    /// save).
    pub fn load_in_background(path: impl AsRef<Path>) -> HashCache {
        let path = path.as_ref().to_path_buf();
        let load_slots = |path: &Path| {
            HashCache::load(path).map(|c| c.slots.into_inner().unwrap_or_else(|e| e.into_inner())).unwrap_or_default()
        };
        let loader = path.clone();
        let spawned = std::thread::Builder::new().name("hash-cache-load".into()).spawn(move || load_slots(&loader));
        let mut cache = HashCache::new();
        match spawned {
            Ok(handle) => cache.loading = Mutex::new(Some(handle)),
            // No thread to be had: load here.
            Err(_) => cache.slots = RwLock::new(load_slots(&path)),
        }
        cache.path = Some(path);
        cache
    }

    /// The cached slots, once a background load has finished.
    fn slots(&self) -> &RwLock<KeyMap> {
        let pending = self.loading.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = pending
            && let Ok(loaded) = handle.join()
        {
            *self.slots.write().unwrap_or_else(|e| e.into_inner()) = loaded;
        }
        &self.slots
    }

    /// The file this cache was loaded from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Writes the cache back to the file it was loaded from (nothing to do
    /// for an in-memory cache, or when nothing changed since loading).
    pub fn save(&self) -> Result<()> {
        match &self.path {
            Some(p) if self.dirty.load(Ordering::Relaxed) || !p.exists() => self.save_to(p),
            _ => Ok(()),
        }
    }

    /// Writes the cache to `path` atomically. Entries unused for several
    /// saves are dropped; hashes of files modified too recently to trust
    /// their timestamps are not written.
    pub fn save_to(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = {
            let mut slots = self.slots().write().unwrap_or_else(|e| e.into_inner());
            slots.retain(|_, s| {
                s.age = if *s.used.get_mut() { 0 } else { s.age.saturating_add(1) };
                *s.used.get_mut() = false;
                s.age <= MAX_AGE
            });
            encode(&slots)
        };
        write_atomic(path, &bytes)?;
        self.dirty.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Lookups answered from the cache since creation or the last reset.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Files that had to be read and hashed since creation or the last reset.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Sets both counters to zero.
    pub fn reset_counters(&self) {
        self.hits.store(0, Ordering::Relaxed);
        self.misses.store(0, Ordering::Relaxed);
    }

    /// Number of cached file hashes.
    pub fn len(&self) -> usize {
        self.slots().read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// True when no file hash is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// sha256 of the content of each regular file among `entries` (None for
    /// other kinds), from the cache or by reading the files in parallel.
    pub fn file_digests(&self, entries: &[Entry]) -> Result<Vec<Option<[u8; 32]>>> {
        let started = now_ns();
        let mut digests: Vec<Option<[u8; 32]>> = {
            let slots = self.slots().read().unwrap_or_else(|e| e.into_inner());
            entries
                .par_iter()
                .with_min_len(LOOKUPS_PER_TASK)
                .map(|e| {
                    if e.kind != EntryKind::File {
                        return None;
                    }
                    let slot = slots.get(&FileKey::of(e))?;
                    slot.used.store(true, Ordering::Relaxed);
                    Some(slot.digest)
                })
                .collect()
        };
        let missing: Vec<usize> =
            (0..entries.len()).filter(|&i| entries[i].kind == EntryKind::File && digests[i].is_none()).collect();
        let hit_count = entries.iter().filter(|e| e.kind == EntryKind::File).count() - missing.len();
        self.hits.fetch_add(hit_count as u64, Ordering::Relaxed);
        self.misses.fetch_add(missing.len() as u64, Ordering::Relaxed);
        if missing.is_empty() {
            return Ok(digests);
        }

        let computed: Vec<(usize, Result<[u8; 32]>)> =
            missing.par_iter().map(|&i| (i, hash_file(&entries[i].disk_path))).collect();

        let mut slots = self.slots().write().unwrap_or_else(|e| e.into_inner());
        for (i, digest) in computed {
            let digest = digest?;
            let e = &entries[i];
            digests[i] = Some(digest);
            let slot = Slot { digest, age: 0, used: AtomicBool::new(true), racy: is_racy(e, started) };
            slots.insert(FileKey::of(e), slot);
        }
        self.dirty.store(true, Ordering::Relaxed);
        Ok(digests)
    }
}

/// The content digest of `entries` (`sha256:<hex>`): sha256 over one record
/// per entry, in path order, holding the context-relative path, the type,
/// the permission bits, uid and gid, and the file content's sha256, the
/// symlink target, or the device number. Timestamps are never part of it,
/// so touching files does not change it; changing content, mode, owner or a
/// link target does.
pub fn content_digest(cache: &HashCache, entries: &[Entry]) -> Result<String> {
    let digests = cache.file_digests(entries)?;
    let mut order: Vec<usize> = (0..entries.len()).collect();
    // `select` returns entries in this order already; sort only when needed.
    let in_order = entries
        .par_windows(2)
        .with_min_len(LOOKUPS_PER_TASK)
        .all(|w| path_order(&w[0].rel_path, &w[1].rel_path) != CmpOrdering::Greater);
    if !in_order {
        order.sort_by(|&a, &b| path_order(&entries[a].rel_path, &entries[b].rel_path));
    }

    let mut h = Sha256::new();
    h.update(DIGEST_DOMAIN);
    // Records are gathered and hashed a block at a time: one `update` per
    // small record costs more than the hashing itself.
    let mut rec = Vec::with_capacity(RECORD_BLOCK + 4096);
    for i in order {
        let e = &entries[i];
        if rec.len() >= RECORD_BLOCK {
            h.update(&rec);
            rec.clear();
        }
        let path = e.rel_path.as_os_str().as_bytes();
        rec.extend_from_slice(&(path.len() as u32).to_le_bytes());
        rec.extend_from_slice(path);
        rec.push(e.kind.code());
        rec.extend_from_slice(&e.mode.to_le_bytes());
        rec.extend_from_slice(&e.uid.to_le_bytes());
        rec.extend_from_slice(&e.gid.to_le_bytes());
        match e.kind {
            EntryKind::File => rec.extend_from_slice(&digests[i].unwrap_or_default()),
            EntryKind::Symlink => {
                let target = e.link_target.as_deref().map(|t| t.as_os_str().as_bytes()).unwrap_or_default();
                rec.extend_from_slice(&(target.len() as u32).to_le_bytes());
                rec.extend_from_slice(target);
            }
            EntryKind::CharDevice | EntryKind::BlockDevice => rec.extend_from_slice(&e.rdev.to_le_bytes()),
            EntryKind::Dir | EntryKind::Fifo | EntryKind::Socket => {}
        }
    }
    h.update(&rec);
    Ok(format!("sha256:{}", hex(&h.finalize())))
}

/// Path order of clean relative paths, component by component (a directory
/// right before its contents; `.` first), computed on bytes: `/` sorts
/// before every other byte.
fn path_order(a: &Path, b: &Path) -> CmpOrdering {
    fn key(p: &Path) -> &[u8] {
        let b = p.as_os_str().as_bytes();
        if b == b"." { b"" } else { b }
    }
    let (a, b) = (key(a), key(b));
    let map = |c: u8| if c == b'/' { 0u16 } else { u16::from(c) + 1 };
    let common = common_prefix(a, b);
    match (a.get(common), b.get(common)) {
        (Some(&x), Some(&y)) => map(x).cmp(&map(y)),
        _ => a.len().cmp(&b.len()),
    }
}

/// Length of the longest common prefix of `a` and `b`, eight bytes at a
/// time (sibling paths share most of their bytes).
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let max = a.len().min(b.len());
    let mut n = 0;
    while n + 8 <= max {
        let x = u64::from_ne_bytes(a[n..n + 8].try_into().unwrap_or_default());
        let y = u64::from_ne_bytes(b[n..n + 8].try_into().unwrap_or_default());
        if x != y {
            break;
        }
        n += 8;
    }
    while n < max && a[n] == b[n] {
        n += 1;
    }
    n
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// sha256 of a file's content.
fn hash_file(path: &Path) -> Result<[u8; 32]> {
    thread_local! {
        static BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUF]);
    }
    let mut file = File::open(path).map_err(|e| ContextError::io("open", path, e))?;
    BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        let mut h = Sha256::new();
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => h.update(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ContextError::io("read", path, e)),
            }
        }
        Ok(h.finalize().into())
    })
}

fn now_ns() -> i64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn is_racy(e: &Entry, started_ns: i64) -> bool {
    let whole_seconds = e.mtime_ns % 1_000_000_000 == 0 && e.ctime_ns % 1_000_000_000 == 0;
    let margin = if whole_seconds { RACY_MARGIN_COARSE_NS } else { RACY_MARGIN_NS };
    e.mtime_ns.max(e.ctime_ns).saturating_add(margin) >= started_ns
}

fn encode(slots: &KeyMap) -> Vec<u8> {
    let kept: Vec<(&FileKey, &Slot)> = slots.iter().filter(|(_, s)| !s.racy).collect();
    let mut out = Vec::with_capacity(CACHE_HEADER + kept.len() * CACHE_RECORD + 32);
    out.extend_from_slice(CACHE_MAGIC);
    out.extend_from_slice(&CACHE_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(kept.len() as u64).to_le_bytes());
    for (k, s) in kept {
        out.extend_from_slice(&k.dev.to_le_bytes());
        out.extend_from_slice(&k.ino.to_le_bytes());
        out.extend_from_slice(&k.size.to_le_bytes());
        out.extend_from_slice(&k.mtime_ns.to_le_bytes());
        out.extend_from_slice(&k.ctime_ns.to_le_bytes());
        out.extend_from_slice(&s.age.to_le_bytes());
        out.extend_from_slice(&s.digest);
    }
    let sum: [u8; 32] = Sha256::digest(&out).into();
    out.extend_from_slice(&sum);
    out
}

fn decode(bytes: &[u8]) -> Option<KeyMap> {
    if bytes.len() < CACHE_HEADER + 32 || &bytes[..8] != CACHE_MAGIC {
        return None;
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != sum {
        return None;
    }
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap_or_default());
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default());
    if u32_at(body, 8) != CACHE_VERSION {
        return None;
    }
    let count = usize::try_from(u64_at(body, 16)).ok()?;
    if body.len() != CACHE_HEADER.checked_add(count.checked_mul(CACHE_RECORD)?)? {
        return None;
    }
    let mut slots = KeyMap::with_capacity_and_hasher(count, Default::default());
    for rec in body[CACHE_HEADER..].chunks_exact(CACHE_RECORD) {
        let key = FileKey {
            dev: u64_at(rec, 0),
            ino: u64_at(rec, 8),
            size: u64_at(rec, 16),
            mtime_ns: u64_at(rec, 24) as i64,
            ctime_ns: u64_at(rec, 32) as i64,
        };
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&rec[44..76]);
        slots.insert(key, Slot { digest, age: u32_at(rec, 40), used: AtomicBool::new(false), racy: false });
    }
    Some(slots)
}

/// Writes `bytes` to `path` through a temporary file in the same directory,
/// fsynced, then renamed over the target.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(|e| ContextError::io("create directory", &dir, e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "hash-cache".into());
    let unique = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    let tmp = dir.join(format!(".{name}.tmp-{}-{unique}", std::process::id()));
    let result = (|| -> io::Result<()> {
        let mut f = fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // Make the rename itself durable; a failure here loses nothing.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        ContextError::io("write hash cache", path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip_and_corruption() {
        let mut slots = KeyMap::default();
        for i in 0..10u64 {
            let key = FileKey { dev: 1, ino: i, size: i * 3, mtime_ns: -5, ctime_ns: i as i64 };
            slots.insert(key, Slot { digest: [i as u8; 32], age: i as u32, used: AtomicBool::new(false), racy: false });
        }
        slots.insert(
            FileKey { dev: 9, ino: 9, size: 9, mtime_ns: 9, ctime_ns: 9 },
            Slot { digest: [0; 32], age: 0, used: AtomicBool::new(true), racy: true },
        );
        let bytes = encode(&slots);
        let back = decode(&bytes).expect("decodes");
        assert_eq!(back.len(), 10, "racy entries are not written");
        for (k, s) in &back {
            assert_eq!(slots[k].digest, s.digest);
            assert_eq!(slots[k].age, s.age);
        }
        let mut bad = bytes.clone();
        bad[CACHE_HEADER + 3] ^= 1;
        assert!(decode(&bad).is_none());
        assert!(decode(&bytes[..bytes.len() - 1]).is_none());
        assert!(decode(b"").is_none());
    }

    #[test]
    fn path_order_is_component_order() {
        let mut paths: Vec<PathBuf> =
            [".", "a.txt", "a/b", "a", "a-b", "a/b/c", "-x", "a0", "b"].iter().map(PathBuf::from).collect();
        let mut by_components = paths.clone();
        by_components.sort();
        paths.sort_by(|a, b| path_order(a, b));
        assert_eq!(paths, by_components);

        // Long shared prefixes (compared eight bytes at a time).
        let mut long: Vec<PathBuf> = [
            "src/package-one/module/file-b.rs",
            "src/package-one/module/file-a.rs",
            "src/package-one/module",
            "src/package-one/module/file-a.rs/x",
            "src/package-one/module-two/z",
            "src/package-one/module.txt",
            "src/package-one/modulE",
            "src/package-one/module/file-a.rsx",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        let mut by_components = long.clone();
        by_components.sort();
        long.sort_by(|a, b| path_order(a, b));
        assert_eq!(long, by_components);
        assert_eq!(common_prefix(b"0123456789abcdef", b"0123456789abcdeX"), 15);
        assert_eq!(common_prefix(b"0123456789", b"0123456789"), 10);
        assert_eq!(common_prefix(b"", b"abc"), 0);
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0x9f]), "00ab9f");
    }
}
