//! Snapshots: each layer extracted once, under `snapshots/<chain-id hex>/`,
//! in overlay form (whiteouts as 0:0 char devices, opaque directories as
//! xattrs) so the directories of an image's chain, top first, are its
//! overlayfs `lowerdir`. A chain ID names a layer with everything below it,
//! so images that share a base share its snapshots.
//!
//! A snapshot is extracted into the writer's staging directory, its
//! diff_id checked, synced, and renamed into place; only then is it
//! recorded. Holders (an image, a build) are rows in `snapshot_refs`: the
//! reference count is their number, and `prune` removes snapshots nobody
//! holds. A directory without a row (a crash between rename and commit) is
//! garbage and is re-extracted when needed.

use std::fs;
use std::io::BufReader;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::{Image, Writer, db, fsutil};
use crate::config::chain_ids;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::hash_reader::HashingReader;
use crate::layer::{self, ApplyOptions, WhiteoutMode, apply_layer};
use crate::manifest::Descriptor;

/// The holder name an image uses for its own snapshots.
pub fn image_holder(manifest: &Digest) -> String {
    db::image_holder(manifest)
}

impl Writer<'_> {
    /// Makes sure every layer of `image` has a snapshot and records `holder`
    /// as holding each. Returns the snapshot directories, bottom layer first
    /// (overlayfs lists lower directories top first: reverse them).
    pub fn prepare_snapshots(&self, image: &Image, holder: &str) -> Result<Vec<PathBuf>> {
        let diff_ids = &image.config.rootfs.diff_ids;
        if diff_ids.len() != image.manifest.layers.len() {
            return Err(Error::invalid(
                format!("image {}", image.record.digest),
                "the config's diff_ids do not match the manifest's layers",
            ));
        }
        self.prepare_layer_snapshots(&image.manifest.layers, diff_ids, holder)
    }

    /// Makes sure every layer of a chain (blobs in the store, bottom first,
    /// with their diff_ids) has a snapshot, held by `holder`. Returns the
    /// snapshot directories, bottom layer first.
    pub fn prepare_layer_snapshots(
        &self,
        layers: &[Descriptor],
        diff_ids: &[Digest],
        holder: &str,
    ) -> Result<Vec<PathBuf>> {
        if diff_ids.len() != layers.len() {
            return Err(Error::invalid("layer chain", "as many diff_ids as layers are needed"));
        }
        let chain = chain_ids(diff_ids);
        let mut created = Vec::new();
        for (i, (layer, chain_id)) in layers.iter().zip(&chain).enumerate() {
            let recorded = self.store().snapshot(chain_id)?.is_some();
            let path = self.store().snapshot_path(chain_id);
            if recorded && path.is_dir() {
                continue;
            }
            self.extract_snapshot(layer, &diff_ids[i], chain_id)?;
            created.push((*chain_id, i.checked_sub(1).map(|p| chain[p]), diff_ids[i]));
        }
        let held = created.is_empty() && db::snapshots_held(self.store().conn(), &chain, holder)?;
        if !held {
            self.update(|tx| {
                for (chain_id, parent, diff_id) in &created {
                    db::insert_snapshot(tx.conn(), chain_id, parent.as_ref(), diff_id)?;
                }
                for chain_id in &chain {
                    db::add_snapshot_ref(tx.conn(), chain_id, holder)?;
                }
                Ok(())
            })?;
        }
        Ok(chain.iter().map(|c| self.store().snapshot_path(c)).collect())
    }

    /// Moves `dir` — a layer's content in overlay form, e.g. the upper
    /// directory of a finished build step, on the store's file system — into
    /// place as the snapshot `chain_id`; record it with
    /// [`Tx::record_snapshot`](super::Tx::record_snapshot). When the snapshot
    /// already exists, `dir` is removed and the existing one kept.
    ///
    /// Unlike extracted snapshots, adopted ones are not synced: like
    /// containerd's snapshotter, they are a cache of the layer blob (which is
    /// durable); a process crash cannot tear them, only a power loss could.
    pub fn place_snapshot(&self, dir: &Path, chain_id: &Digest) -> Result<PathBuf> {
        let store = self.store();
        let target = store.snapshot_path(chain_id);
        if store.snapshot(chain_id)?.is_some() && target.is_dir() {
            fsutil::remove_path(dir)?;
            return Ok(target);
        }
        if fs::symlink_metadata(&target).is_ok() {
            let trash = self.staging_path("trash-")?;
            fs::rename(&target, &trash).ctx(|| format!("moving {} out of the way", target.display()))?;
            fsutil::remove_path(&trash)?;
        }
        fs::rename(dir, &target).ctx(|| format!("storing snapshot {chain_id}"))?;
        Ok(target)
    }

    /// Takes the snapshot `chain_id` out of the store, moving its directory
    /// to `dest` (on the store's file system, e.g. in the staging dir), when
    /// `holder` alone holds it and no other snapshot is built on it; returns
    /// false, changing nothing, otherwise. The builder uses it to turn the
    /// previous result of a step into the start of the next one instead of
    /// copying it. The row goes first: a crash in between leaves an
    /// unrecorded directory, which `prune` reclaims. Whoever needs that
    /// layer as a snapshot again gets it extracted from its blob.
    pub fn take_snapshot(&self, chain_id: &Digest, holder: &str, dest: &Path) -> Result<bool> {
        let path = self.store().snapshot_path(chain_id);
        if !path.is_dir() || !db::snapshot_solely_held(self.store().conn(), chain_id, holder)? {
            return Ok(false);
        }
        self.update(|tx| db::remove_snapshot(tx.conn(), chain_id))?;
        fs::rename(&path, dest).ctx(|| format!("moving snapshot {chain_id} to {}", dest.display()))?;
        Ok(true)
    }

    /// [`Self::prepare_snapshots`] held by the image itself: they live as
    /// long as the image does.
    pub fn prepare_image_snapshots(&self, image: &Image) -> Result<Vec<PathBuf>> {
        self.prepare_snapshots(image, &image_holder(&image.record.digest))
    }

    /// Drops every reference `holder` has; returns how many.
    pub fn release_snapshots(&self, holder: &str) -> Result<u64> {
        self.update(|tx| db::release_snapshot_refs(tx.conn(), holder))
    }

    fn extract_snapshot(&self, layer: &Descriptor, diff_id: &Digest, chain_id: &Digest) -> Result<()> {
        let store = self.store();
        let target = store.snapshot_path(chain_id);
        if fs::symlink_metadata(&target).is_ok() {
            // Unrecorded (or recorded but damaged): not trusted, redo it.
            let trash = self.staging_path("trash-")?;
            fs::rename(&target, &trash).ctx(|| format!("moving {} out of the way", target.display()))?;
            fsutil::remove_path(&trash)?;
        }
        let dir = self.staging_path("snapshot-")?;
        fs::create_dir(&dir).ctx(|| format!("creating {}", dir.display()))?;
        let blob = store.open_blob(&layer.digest)?;
        let mut hashed = HashingReader::new(layer::decompress(BufReader::new(blob))?);
        let opts = ApplyOptions { whiteouts: WhiteoutMode::Overlay, same_owner: rustix::process::geteuid().is_root() };
        apply_layer(&mut hashed, &dir, &opts)?;
        let (actual, _) = hashed.finish_draining().ctx(|| format!("reading layer {}", layer.digest))?;
        if actual != *diff_id {
            return Err(Error::DigestMismatch {
                what: format!("layer {} (diff_id)", layer.digest),
                expected: *diff_id,
                actual,
            });
        }
        // The rename must not become durable before the files it names.
        let dirfd = fs::File::open(&dir).ctx(|| format!("opening {}", dir.display()))?;
        rustix::fs::syncfs(dirfd.as_fd())
            .map_err(|e| Error::Io { context: format!("syncing {}", dir.display()), source: e.into() })?;
        fs::rename(&dir, &target).ctx(|| format!("storing snapshot {chain_id}"))?;
        fsutil::fsync_dir(&store.snapshots_dir())
    }
}
