//! The writer: holds the store's exclusive lock and a private staging
//! directory under `tmp/`. Blobs are committed first (content-addressed, so
//! an early commit is harmless: unreferenced blobs are garbage that `prune`
//! reclaims), then names change in one database transaction, then
//! `index.json` is re-derived. Dropping the writer removes its staging
//! directory; a killed writer leaves it for `prune`.

use std::cell::{Cell, OnceCell};
use std::fs::{self, File};
use std::path::PathBuf;

use rusqlite::Transaction;

use super::blobs::{self, BlobSink, StagedBlob};
use super::{Store, db, fsutil, index};
use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::reference::Reference;
use crate::store::{ImageRecord, LayerInfo};

pub struct Writer<'s> {
    store: &'s Store,
    // Held for its flock; released when the writer drops.
    _lock: File,
    staging: OnceCell<PathBuf>,
    counter: Cell<u64>,
}

impl<'s> Writer<'s> {
    pub(crate) fn new(store: &'s Store, lock: File) -> Writer<'s> {
        Writer { store, _lock: lock, staging: OnceCell::new(), counter: Cell::new(0) }
    }

    pub fn store(&self) -> &'s Store {
        self.store
    }

    /// This writer's staging directory (created on first use). Everything
    /// in it is removed when the writer drops.
    pub fn staging_dir(&self) -> Result<PathBuf> {
        if let Some(dir) = self.staging.get() {
            return Ok(dir.clone());
        }
        let dir = self.store.tmp_dir().join(fsutil::unique_name("staging-"));
        fs::create_dir(&dir).ctx(|| format!("creating {}", dir.display()))?;
        Ok(self.staging.get_or_init(|| dir).clone())
    }

    /// The staging directory, if this writer has made one.
    pub(crate) fn current_staging(&self) -> Option<PathBuf> {
        self.staging.get().cloned()
    }

    /// A fresh path inside the staging directory.
    pub fn staging_path(&self, prefix: &str) -> Result<PathBuf> {
        let n = self.counter.get();
        self.counter.set(n + 1);
        Ok(self.staging_dir()?.join(format!("{prefix}{n}")))
    }

    /// A writer for a new blob; commit it with [`Self::commit_blob`].
    pub fn blob_sink(&self) -> Result<BlobSink> {
        BlobSink::create(self.staging_path("blob-")?, false)
    }

    /// A staging file for a download: written on the caller's thread, so
    /// its length and digest can be asked for mid-stream and it can
    /// [`BlobSink::restart`].
    pub fn download_sink(&self) -> Result<BlobSink> {
        BlobSink::create(self.staging_path("blob-")?, true)
    }

    /// Stores a staged blob under its digest, after checking it against
    /// `expected` when given.
    pub fn commit_blob(&self, staged: StagedBlob, expected: Option<&Digest>) -> Result<Digest> {
        blobs::commit(&self.store.blobs_dir(), staged, expected)
    }

    /// Stores a small blob (a manifest, a config).
    pub fn put_blob(&self, data: &[u8]) -> Result<Digest> {
        let digest = Digest::of(data);
        if self.store.has_blob(&digest) {
            return Ok(digest);
        }
        let mut sink = self.blob_sink()?;
        std::io::Write::write_all(&mut sink, data).ctx(|| "writing blob".to_string())?;
        self.commit_blob(sink.finish()?, Some(&digest))
    }

    /// Runs `f` in one database transaction and brings `index.json` along:
    /// before the commit it lists only entries both states share, after it
    /// the new state (see `index.rs` for why). If `f` fails nothing changes.
    pub fn update<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let before = index::derive_index(self.store.conn())?;
        let tx = self.store.conn().unchecked_transaction()?;
        let out = f(&Tx { tx: &tx })?;
        let after = index::derive_index(&tx)?;
        if after != before {
            let common = index::intersection(&before, &after);
            if common != before {
                self.store.write_index(&index::encode(&common)?)?;
            }
        }
        tx.commit()?;
        self.store.sync_index()?;
        Ok(out)
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        if let Some(dir) = self.staging.get() {
            let _ = fsutil::remove_path(dir);
        }
    }
}

/// Changes to the store's names, inside one transaction ([`Writer::update`]).
pub struct Tx<'a> {
    tx: &'a Transaction<'a>,
}

impl Tx<'_> {
    /// Records an image whose manifest, config and layers are already stored.
    /// Returns whether it is new.
    pub fn add_image(&self, record: &ImageRecord) -> Result<bool> {
        db::insert_image(self.tx, record)
    }

    /// Points `reference` (with a tag) at an image; returns the image it
    /// pointed at before, if another.
    pub fn set_tag(&self, reference: &Reference, image: &Digest) -> Result<Option<Digest>> {
        db::set_tag(self.tx, reference, image)
    }

    pub fn remove_tag(&self, reference: &Reference) -> Result<bool> {
        db::remove_tag(self.tx, reference)
    }

    /// Removes an image record with its tags and snapshot references (blobs
    /// stay until `prune`).
    pub fn remove_image(&self, digest: &Digest) -> Result<bool> {
        db::remove_image(self.tx, digest)
    }

    pub fn put_layer(&self, info: &LayerInfo) -> Result<()> {
        db::put_layer(self.tx, info)
    }

    pub fn image(&self, digest: &Digest) -> Result<Option<ImageRecord>> {
        db::image(self.tx, digest)
    }

    pub fn tag_target(&self, reference: &Reference) -> Result<Option<Digest>> {
        db::tag_target(self.tx, reference)
    }

    /// Pins `digest` under `name` so that `prune` keeps it.
    pub fn set_gc_root(&self, name: &str, digest: &Digest) -> Result<()> {
        db::set_gc_root(self.tx, name, digest)
    }

    pub fn remove_gc_root(&self, name: &str) -> Result<bool> {
        db::remove_gc_root(self.tx, name)
    }

    /// Records a snapshot placed with [`Writer::place_snapshot`], held by `holder`.
    pub fn record_snapshot(
        &self,
        chain_id: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
        holder: &str,
    ) -> Result<()> {
        db::insert_snapshot(self.tx, chain_id, parent, diff_id)?;
        db::add_snapshot_ref(self.tx, chain_id, holder)
    }

    /// Records a build-cache entry (the value is the builder's JSON).
    pub fn put_build_cache(&self, key: &str, value: &str) -> Result<()> {
        db::build_cache_put(self.tx, key, value)
    }

    /// Records a binary build-cache entry (the builder's own encoding; e.g.
    /// what a COPY step copied, for the next build of the same step).
    pub fn put_build_cache_blob(&self, key: &str, value: &[u8]) -> Result<()> {
        db::build_cache_put_blob(self.tx, key, value)
    }

    /// Forgets every build-cache entry and drops what pins the cache's
    /// layers and snapshots (GC roots and holder rows starting with
    /// `holder`); returns how many entries there were. `prune` then reclaims
    /// what no image uses.
    pub fn clear_build_cache(&self, holder: &str) -> Result<u64> {
        let n = db::build_cache_clear(self.tx)?;
        db::release_snapshot_refs(self.tx, holder)?;
        db::remove_gc_roots_with_prefix(self.tx, &format!("{holder}:"))?;
        Ok(n)
    }

    pub(crate) fn conn(&self) -> &rusqlite::Connection {
        self.tx
    }
}
