//! Garbage collection. Roots are the images in the database (tagged ones,
//! and untagged ones unless pruned as dangling) and the named GC roots; a
//! blob is live if a root reaches it through manifests and indexes. A
//! snapshot is live while something holds a reference to it. Everything in
//! `tmp/` is garbage whenever the writer lock is held by someone else than
//! its owner, since staging lives only as long as its writer.
//!
//! Order matters for crash safety: database rows go first, files after, so
//! a crash mid-way leaves unreferenced files (garbage for the next prune),
//! never rows that point at missing files.

use std::collections::BTreeSet;
use std::fs;

use super::{Store, Writer, db, fsutil};
use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::manifest::{Index, Manifest, media_type};

/// What `prune` removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PruneReport {
    /// Untagged images removed (manifest digests).
    pub images: Vec<Digest>,
    pub blobs: u64,
    pub snapshots: u64,
    /// Staging leftovers and other entries of `tmp/`.
    pub temp: u64,
    pub bytes: u64,
}

/// The blobs the roots reach, and what is wrong on the way.
#[derive(Debug, Default)]
pub(crate) struct Reachability {
    pub live: BTreeSet<Digest>,
    /// (who refers, missing blob)
    pub missing: Vec<(String, Digest)>,
    /// (blob, why it cannot be read)
    pub unreadable: Vec<(Digest, String)>,
}

/// Walks from every image and GC root.
pub(crate) fn reachable(store: &Store) -> Result<Reachability> {
    let mut r = Reachability::default();
    // Indexes too: they reach their platforms' manifests.
    for img in db::images(store.conn())? {
        visit(store, &img.digest, &format!("image {}", img.digest), 0, &mut r);
    }
    for (name, digest) in store.gc_roots()? {
        visit(store, &digest, &format!("GC root {name:?}"), 0, &mut r);
    }
    Ok(r)
}

fn visit(store: &Store, digest: &Digest, owner: &str, depth: usize, r: &mut Reachability) {
    if !r.live.insert(*digest) {
        return;
    }
    if !store.has_blob(digest) {
        r.missing.push((owner.to_string(), *digest));
        return;
    }
    // Only small JSON blobs can have children; layers are not read here.
    if depth > 8 || store.blob_size(digest).map_or(true, |s| s > 4 << 20) {
        return;
    }
    let Ok(data) = store.read_blob(digest) else {
        r.unreadable.push((*digest, "content does not match its digest".to_string()));
        return;
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&data) else { return };
    let mt = value.get("mediaType").and_then(|v| v.as_str()).unwrap_or("");
    let is_index = media_type::is_index(mt) || (value.get("manifests").is_some() && value.get("config").is_none());
    if is_index {
        match Index::from_slice(&data) {
            Ok(index) => {
                for d in &index.manifests {
                    visit(store, &d.digest, &format!("index {digest}"), depth + 1, r);
                }
            }
            Err(e) => r.unreadable.push((*digest, format!("not a valid index: {e}"))),
        }
    } else if value.get("config").is_some() {
        match Manifest::from_slice(&data) {
            Ok(m) => {
                let owner = format!("manifest {digest}");
                for d in std::iter::once(&m.config).chain(&m.layers) {
                    if r.live.insert(d.digest) && !store.has_blob(&d.digest) {
                        r.missing.push((owner.clone(), d.digest));
                    }
                }
            }
            Err(e) => r.unreadable.push((*digest, format!("not a valid manifest: {e}"))),
        }
    }
}

/// Names in `blobs/sha256/` that are not a live digest.
pub(crate) fn dead_blobs(store: &Store, live: &BTreeSet<Digest>) -> Result<Vec<(String, u64)>> {
    let dir = store.blobs_dir();
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).ctx(|| format!("listing {}", dir.display()))? {
        let entry = entry.ctx(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let alive = format!("sha256:{name}").parse::<Digest>().is_ok_and(|d| live.contains(&d));
        if !alive {
            out.push((name, entry.metadata().map_or(0, |m| m.len())));
        }
    }
    out.sort();
    Ok(out)
}

impl Writer<'_> {
    /// Removes unreferenced blobs, unreferenced snapshots and staging
    /// leftovers; with `dangling_images`, first drops untagged images that
    /// no GC root pins (like `docker image prune`).
    pub fn prune(&self, dangling_images: bool) -> Result<PruneReport> {
        let store = self.store();
        let mut report = PruneReport::default();

        if dangling_images {
            let mut pinned: BTreeSet<Digest> = store.gc_roots()?.into_iter().map(|(_, d)| d).collect();
            // Untagged indexes go like untagged images; the platforms'
            // images of the indexes that stay, stay.
            let indexes = store.indexes()?;
            let mut doomed: Vec<Digest> = Vec::new();
            for index in &indexes {
                if index.tags.is_empty() && !pinned.contains(&index.digest) {
                    doomed.push(index.digest);
                    continue;
                }
                let blob = store.read_blob(&index.digest)?;
                let parsed = Index::from_slice(&blob).map_err(|e| crate::error::Error::json("image index", e))?;
                pinned.extend(parsed.manifests.iter().map(|d| d.digest));
            }
            doomed.extend(
                store
                    .images()?
                    .into_iter()
                    .filter(|i| i.tags.is_empty() && !pinned.contains(&i.digest))
                    .map(|i| i.digest),
            );
            self.update(|tx| {
                for d in &doomed {
                    tx.remove_image(d)?;
                }
                Ok(())
            })?;
            report.images = doomed;
        }

        // Blobs: forget layer facts first, then delete the files.
        let reach = reachable(store)?;
        let dead = dead_blobs(store, &reach.live)?;
        self.update(|tx| {
            for (name, _) in &dead {
                if let Ok(d) = format!("sha256:{name}").parse::<Digest>() {
                    db::remove_layer(tx.conn(), &d)?;
                }
            }
            // Facts about blobs that are gone some other way.
            for info in db::layers(tx.conn())? {
                if !store.has_blob(&info.digest) {
                    db::remove_layer(tx.conn(), &info.digest)?;
                }
            }
            Ok(())
        })?;
        for (name, size) in &dead {
            fsutil::remove_path(&store.blobs_dir().join(name))?;
            report.blobs += 1;
            report.bytes += size;
        }
        if !dead.is_empty() {
            fsutil::fsync_dir(&store.blobs_dir())?;
        }

        // Snapshots: drop references of vanished images, then unreferenced rows,
        // then their directories (moved to tmp/ first so a half-deleted tree is
        // never under snapshots/).
        let doomed_snaps = self.update(|tx| {
            for holder in db::orphan_image_holders(tx.conn())? {
                db::release_snapshot_refs(tx.conn(), &holder)?;
            }
            let doomed: Vec<Digest> =
                db::snapshots(tx.conn())?.into_iter().filter(|s| s.refcount == 0).map(|s| s.chain_id).collect();
            for c in &doomed {
                db::remove_snapshot(tx.conn(), c)?;
            }
            Ok(doomed)
        })?;
        let known: BTreeSet<String> = store.snapshots()?.into_iter().map(|s| s.chain_id.hex()).collect();
        let snap_dir = store.snapshots_dir();
        let mut doomed_dirs: Vec<String> = doomed_snaps.iter().map(Digest::hex).collect();
        for entry in fs::read_dir(&snap_dir).ctx(|| format!("listing {}", snap_dir.display()))? {
            let name =
                entry.ctx(|| format!("listing {}", snap_dir.display()))?.file_name().to_string_lossy().into_owned();
            if !known.contains(&name) && !doomed_dirs.contains(&name) {
                doomed_dirs.push(name);
            }
        }
        for name in doomed_dirs {
            let path = snap_dir.join(&name);
            if !path.exists() {
                continue;
            }
            report.bytes += fsutil::tree_size(&path);
            let trash = self.staging_path("trash-")?;
            fs::rename(&path, &trash).ctx(|| format!("moving {} out of the way", path.display()))?;
            fsutil::remove_path(&trash)?;
            report.snapshots += 1;
        }

        // Staging leftovers of dead writers (ours, if any, is skipped).
        let own = self.current_staging();
        let tmp = store.tmp_dir();
        for entry in fs::read_dir(&tmp).ctx(|| format!("listing {}", tmp.display()))? {
            let path = entry.ctx(|| format!("listing {}", tmp.display()))?.path();
            if Some(&path) == own.as_ref() {
                continue;
            }
            report.bytes += fsutil::tree_size(&path);
            fsutil::remove_path(&path)?;
            report.temp += 1;
        }
        store.sync_index()?;
        Ok(report)
    }
}
