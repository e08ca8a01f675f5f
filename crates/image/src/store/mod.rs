//! The local image store. Its root is a valid OCI image layout:
//!
//! ```text
//! $DISTILL_ROOT/
//!   oci-layout            {"imageLayoutVersion":"1.0.0"}
//!   index.json            one descriptor per tag (derived from the database)
//!   blobs/sha256/<hex>    manifests, configs, layers; content-addressed
//!   distill.db            metadata database (SQLite, WAL)
//!   lock                  flock(2): one writer at a time
//!   snapshots/<chain-hex> extracted layers, overlayfs lower directories
//!   tmp/                  staging of the active writer; leftovers are garbage
//! ```
//!
//! Writers take [`Store::writer`] (an exclusive lock held until dropped);
//! readers take no lock: blobs appear by atomic rename, the database is
//! read in its own transactions, `index.json` is replaced atomically.

mod blobs;
mod commit;
pub(crate) mod db;
mod fsck;
pub(crate) mod fsutil;
mod gc;
mod index;
mod names;
mod snapshots;
mod writer;

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rusqlite::Connection;

pub use blobs::{BlobSink, StagedBlob};
pub use commit::Committed;
pub use db::{ImageRecord, LayerInfo, SnapshotRecord};
pub use fsck::{FsckOptions, FsckReport, Issue, Severity};
pub use gc::PruneReport;
pub use names::Removal;
pub use snapshots::image_holder;
pub use writer::{Tx, Writer};

use crate::config::ImageConfig;
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, IoContext, Result};
use crate::layer;
use crate::manifest::{Descriptor, Index, Manifest, OCI_LAYOUT_FILE, media_type};
use crate::reference::{Reference, is_full_hex_id};

/// The environment variable that overrides the store root.
pub const ROOT_ENV: &str = "DISTILL_ROOT";
const DB_FILE: &str = "distill.db";
const LOCK_FILE: &str = "lock";

/// An open store.
pub struct Store {
    root: PathBuf,
    conn: Connection,
}

/// An image with its manifest and config, parsed.
#[derive(Debug, Clone)]
pub struct Image {
    pub record: ImageRecord,
    pub manifest: Manifest,
    pub config: ImageConfig,
    /// The config exactly as stored (its digest is the image ID).
    pub config_bytes: Vec<u8>,
}

/// `$DISTILL_ROOT`, else `/var/lib/distill` for root, else
/// `$XDG_DATA_HOME/distill` (default `~/.local/share/distill`).
pub fn default_root() -> PathBuf {
    if let Some(root) = std::env::var_os(ROOT_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(root);
    }
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/distill");
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("distill")
}

impl Store {
    /// Opens the store at `root`, creating the layout if needed. When no
    /// writer is active, a stale `index.json` (left by a crash) is repaired.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        for dir in [root.join("blobs/sha256"), root.join("snapshots"), root.join("tmp")] {
            fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
        }
        // Builds and extractions create whole trees in these two.
        for dir in [root.join("snapshots"), root.join("tmp")] {
            fsutil::spread_subtrees(&dir);
        }
        let layout = root.join("oci-layout");
        if fs::read(&layout).ok().as_deref() != Some(OCI_LAYOUT_FILE) {
            fsutil::write_atomic(&layout, OCI_LAYOUT_FILE, &root.join("tmp"))?;
        }
        let conn = db::open(&root.join(DB_FILE))?;
        let store = Store { root, conn };
        if let Some(lock) = store.try_lock()? {
            store.sync_index()?;
            drop(lock);
        }
        Ok(store)
    }

    /// Opens the store at [`default_root`].
    pub fn open_default() -> Result<Store> {
        Store::open(default_root())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    pub(crate) fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    pub(crate) fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    fn lock_file(&self) -> Result<File> {
        let path = self.root.join(LOCK_FILE);
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ctx(|| format!("opening {}", path.display()))
    }

    /// Takes the writer lock without waiting; `None` if another process holds it.
    pub(crate) fn try_lock(&self) -> Result<Option<File>> {
        let file = match self.lock_file() {
            Ok(f) => f,
            // A read-only store (another user's): nothing to repair from here.
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::PermissionDenied => return Ok(None),
            Err(e) => return Err(e),
        };
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(e).ctx(|| "locking the store".to_string()),
        }
    }

    /// Whether some process holds the writer lock now.
    pub fn writer_active(&self) -> Result<bool> {
        Ok(self.try_lock()?.is_none())
    }

    /// Waits for the writer lock. Everything that changes the store goes
    /// through the returned [`Writer`]; the lock is released when it drops.
    pub fn writer(&self) -> Result<Writer<'_>> {
        let file = self.lock_file()?;
        file.lock().ctx(|| "locking the store".to_string())?;
        let writer = Writer::new(self, file);
        self.sync_index()?;
        Ok(writer)
    }

    /// Rewrites `index.json` if it differs from what the database implies,
    /// after adopting complete images other tools listed in it. Callers
    /// hold the writer lock. Returns whether it was rewritten.
    pub(crate) fn sync_index(&self) -> Result<bool> {
        let mut want = index::derive(&self.conn)?;
        let path = self.index_path();
        if fs::read(&path).ok().as_deref() == Some(&want[..]) {
            return Ok(false);
        }
        if !index::adopt_foreign(self)?.is_empty() {
            want = index::derive(&self.conn)?;
        }
        self.write_index(&want)?;
        Ok(true)
    }

    pub(crate) fn write_index(&self, bytes: &[u8]) -> Result<()> {
        fsutil::write_atomic(&self.index_path(), bytes, &self.tmp_dir())
    }

    /// Whether `index.json` matches the database.
    pub fn index_in_sync(&self) -> Result<bool> {
        let want = index::derive(&self.conn)?;
        Ok(fs::read(self.index_path()).ok().as_deref() == Some(&want[..]))
    }

    // ---- blobs ----

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        File::open(self.blob_path(digest)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::BlobNotFound(*digest),
            _ => Error::Io { context: format!("opening blob {digest}"), source: e },
        })
    }

    pub fn blob_size(&self, digest: &Digest) -> Result<u64> {
        Ok(self.open_blob(digest)?.metadata().ctx(|| format!("inspecting blob {digest}"))?.len())
    }

    /// Reads a (small) blob and checks it against its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut data = Vec::new();
        self.open_blob(digest)?.read_to_end(&mut data).ctx(|| format!("reading blob {digest}"))?;
        let actual = Digest::of(&data);
        if actual != *digest {
            return Err(Error::DigestMismatch { what: format!("blob {digest}"), expected: *digest, actual });
        }
        Ok(data)
    }

    /// Streams a blob through sha256; returns its actual digest and size.
    pub fn hash_blob(&self, digest: &Digest) -> Result<(Digest, u64)> {
        let mut file = self.open_blob(digest)?;
        let mut w = HashingWriter::new(io::sink());
        io::copy(&mut file, &mut w).ctx(|| format!("reading blob {digest}"))?;
        let (_, actual, size) = w.finish();
        Ok((actual, size))
    }

    /// Decompresses a layer blob and returns its diff_id and uncompressed size.
    pub fn layer_diff_id(&self, digest: &Digest) -> Result<(Digest, u64)> {
        let file = self.open_blob(digest)?;
        let mut reader = layer::decompress(io::BufReader::new(file))?;
        let mut w = HashingWriter::new(io::sink());
        io::copy(&mut reader, &mut w).ctx(|| format!("decompressing layer {digest}"))?;
        let (_, d, n) = w.finish();
        Ok((d, n))
    }

    /// A layer's uncompressed size as recorded when it came in, else its
    /// blob size (what `docker images` adds up).
    pub fn uncompressed_size(&self, layer: &Descriptor) -> u64 {
        match self.layer_info(&layer.digest) {
            Ok(Some(info)) => info.uncompressed_size,
            _ => layer.size,
        }
    }

    // ---- images ----

    /// All images (single-platform manifests), newest first, with their tags.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        Ok(db::images(&self.conn)?.into_iter().filter(|i| !media_type::is_index(&i.media_type)).collect())
    }

    /// The multi-platform images (image indexes) recorded with
    /// [`Writer::commit_index`], newest first, with their tags. Their
    /// `config` is their own digest: an index has no config.
    pub fn indexes(&self) -> Result<Vec<ImageRecord>> {
        Ok(db::images(&self.conn)?.into_iter().filter(|i| media_type::is_index(&i.media_type)).collect())
    }

    /// The recorded index `spec` (a name or `name@digest` / `sha256:…`)
    /// points at, if it names one.
    pub fn resolve_index(&self, spec: &str) -> Result<Option<(ImageRecord, Index)>> {
        let digest = if let Some(d) = spec.strip_prefix("sha256:").and_then(|_| spec.parse::<Digest>().ok()) {
            Some(d)
        } else {
            match Reference::parse_normalized(spec) {
                Ok(r) => match r.digest() {
                    Some(d) => Some(d),
                    None => db::tag_target(&self.conn, &r.with_default_tag())?,
                },
                Err(_) => None,
            }
        };
        let Some(digest) = digest else { return Ok(None) };
        let Some(record) = self.indexes()?.into_iter().find(|i| i.digest == digest) else { return Ok(None) };
        let bytes = self.read_blob(&digest)?;
        let index = Index::from_slice(&bytes).map_err(|e| Error::json(format!("index {digest}"), e))?;
        Ok(Some((record, index)))
    }

    /// The image `spec` names for a platform: the entry of a multi-platform
    /// image (an index) for `os/arch[/variant]`, or the image itself when
    /// its config is of that platform (or names none). The variant only
    /// chooses among entries of an index.
    pub fn find_image_for_platform(&self, spec: &str, os: &str, arch: &str, variant: Option<&str>) -> Result<Image> {
        let wanted = || match variant {
            Some(v) => format!("{os}/{arch}/{v}"),
            None => format!("{os}/{arch}"),
        };
        let index = match self.resolve_index(spec)? {
            Some((_, index)) => Some(index),
            // A pulled index blob named by digest.
            None => spec
                .rsplit_once('@')
                .map(|(_, d)| d)
                .or(spec.strip_prefix("sha256:").map(|_| spec))
                .and_then(|d| d.parse::<Digest>().ok())
                .filter(|d| self.has_blob(d) && !self.images().is_ok_and(|all| all.iter().any(|i| i.digest == *d)))
                .and_then(|d| Index::from_slice(&self.read_blob(&d).ok()?).ok()),
        };
        if let Some(index) = index {
            let images = self.images()?;
            let candidates: Vec<&Descriptor> = index
                .manifests
                .iter()
                .filter(|d| d.platform.as_ref().is_some_and(|p| p.os == os && p.architecture == arch))
                .filter(|d| images.iter().any(|i| i.digest == d.digest))
                .collect();
            let chosen = candidates
                .iter()
                .find(|d| d.platform.as_ref().and_then(|p| p.variant.as_deref()) == variant)
                .or(candidates.first());
            return match chosen {
                Some(d) => self.find_image(&d.digest.to_string()),
                None => Err(Error::WrongPlatform {
                    reference: spec.to_string(),
                    wanted: wanted(),
                    found: platforms_of(&index),
                }),
            };
        }
        let image = self.find_image(spec)?;
        let (img_os, img_arch) = (&image.config.os, &image.config.architecture);
        if img_arch.is_empty() || (img_arch == arch && (img_os.is_empty() || img_os == os)) {
            return Ok(image);
        }
        Err(Error::WrongPlatform {
            reference: spec.to_string(),
            wanted: wanted(),
            found: format!("{img_os}/{img_arch}"),
        })
    }

    /// The image a tag points at.
    pub fn tag_target(&self, reference: &Reference) -> Result<Option<Digest>> {
        db::tag_target(&self.conn, reference)
    }

    /// Finds an image like `docker image inspect` does: a name (`app`,
    /// `app:1.0`, `name@sha256:…`), a full or abbreviated image ID, or
    /// `sha256:` + an ID or a manifest digest.
    pub fn resolve(&self, spec: &str) -> Result<ImageRecord> {
        let images = self.images()?;
        let not_found = || Error::ImageNotFound(spec.to_string());
        let hex_part = spec.strip_prefix("sha256:");
        let looks_like_id =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if let Some(hex) = hex_part {
            if !looks_like_id(hex) {
                return Err(not_found());
            }
            if let Some(img) = images.iter().find(|i| i.digest.hex() == hex) {
                return Ok(img.clone());
            }
            return by_id_prefix(&images, spec, hex);
        }
        if is_full_hex_id(spec) {
            return by_id_prefix(&images, spec, spec);
        }
        match Reference::parse_normalized(spec) {
            Ok(reference) => {
                let found = if let Some(digest) = reference.digest() {
                    images.iter().find(|i| i.digest == digest).cloned().or_else(|| self.via_index(&images, &digest))
                } else {
                    let reference = reference.with_default_tag();
                    match db::tag_target(&self.conn, &reference)? {
                        // A multi-platform name: the host's image.
                        Some(d) => {
                            images.iter().find(|i| i.digest == d).cloned().or_else(|| self.via_index(&images, &d))
                        }
                        None => None,
                    }
                };
                match found {
                    Some(img) => Ok(img),
                    None if looks_like_id(spec) => by_id_prefix(&images, spec, spec),
                    None => Err(not_found()),
                }
            }
            Err(_) if looks_like_id(spec) => by_id_prefix(&images, spec, spec),
            Err(e) => Err(e.into()),
        }
    }

    /// The image an index blob in the store leads to (an image pulled by
    /// the digest of its multi-platform index): the host platform's entry
    /// if it is stored, else the first stored entry.
    fn via_index(&self, images: &[ImageRecord], digest: &Digest) -> Option<ImageRecord> {
        if !self.has_blob(digest) {
            return None;
        }
        let index = crate::manifest::Index::from_slice(&self.read_blob(digest).ok()?).ok()?;
        let stored = |d: &Descriptor| images.iter().find(|i| i.digest == d.digest).cloned();
        let (arch, variant) = crate::config::host_platform();
        crate::manifest::select_platform(&index.manifests, arch, variant)
            .and_then(stored)
            .or_else(|| index.manifests.iter().find_map(stored))
    }

    /// Loads and parses an image's manifest and config.
    pub fn image(&self, record: &ImageRecord) -> Result<Image> {
        let manifest_bytes = self.read_blob(&record.digest)?;
        let manifest =
            Manifest::from_slice(&manifest_bytes).map_err(|e| Error::json(format!("manifest {}", record.digest), e))?;
        let config_bytes = self.read_blob(&manifest.config.digest)?;
        let config = ImageConfig::from_slice(&config_bytes)
            .map_err(|e| Error::json(format!("config {}", manifest.config.digest), e))?;
        Ok(Image { record: record.clone(), manifest, config, config_bytes })
    }

    /// [`Self::resolve`] then [`Self::image`].
    pub fn find_image(&self, spec: &str) -> Result<Image> {
        let record = self.resolve(spec)?;
        self.image(&record)
    }

    /// What the store knows about a layer blob.
    pub fn layer_info(&self, digest: &Digest) -> Result<Option<LayerInfo>> {
        db::layer(&self.conn, digest)
    }

    /// A layer blob whose uncompressed content has `diff_id`, if any.
    pub fn layer_by_diff_id(&self, diff_id: &Digest) -> Result<Option<LayerInfo>> {
        db::layer_by_diff_id(&self.conn, diff_id)
    }

    /// A build-cache entry recorded with [`Tx::put_build_cache`].
    pub fn build_cache_get(&self, key: &str) -> Result<Option<String>> {
        db::build_cache_get(&self.conn, key)
    }

    /// A binary build-cache entry recorded with [`Tx::put_build_cache_blob`].
    pub fn build_cache_get_blob(&self, key: &str) -> Result<Option<Vec<u8>>> {
        db::build_cache_get_blob(&self.conn, key)
    }

    /// Named GC roots.
    pub fn gc_roots(&self) -> Result<Vec<(String, Digest)>> {
        db::gc_roots(&self.conn)
    }

    // ---- snapshots ----

    /// The directory of the snapshot for `chain_id` (it may not exist).
    pub fn snapshot_path(&self, chain_id: &Digest) -> PathBuf {
        self.snapshots_dir().join(chain_id.hex())
    }

    pub fn snapshots(&self) -> Result<Vec<SnapshotRecord>> {
        db::snapshots(&self.conn)
    }

    pub fn snapshot(&self, chain_id: &Digest) -> Result<Option<SnapshotRecord>> {
        db::snapshot(&self.conn, chain_id)
    }
}

/// `linux/amd64, linux/arm64`: the platforms an index lists.
fn platforms_of(index: &Index) -> String {
    let list: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .map(|p| match &p.variant {
            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        })
        .collect();
    if list.is_empty() { "no platform".to_string() } else { list.join(", ") }
}

fn by_id_prefix(images: &[ImageRecord], spec: &str, hex: &str) -> Result<ImageRecord> {
    let mut matches = images.iter().filter(|i| i.config.hex().starts_with(hex));
    let Some(first) = matches.next() else {
        return Err(Error::ImageNotFound(spec.to_string()));
    };
    // Several manifests may share one config (the same image with other
    // compression): that is one image ID, take the newest manifest.
    if matches.any(|i| i.config != first.config) {
        return Err(Error::Ambiguous(spec.to_string()));
    }
    Ok(first.clone())
}
