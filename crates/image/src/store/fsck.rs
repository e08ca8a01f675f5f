//! The store check: every blob against its digest, every image's manifest,
//! config and layers present and consistent, tags and GC roots pointing at
//! something, `index.json` matching the database, snapshots matching their
//! rows, and what `prune` would reclaim. It takes no lock (a concurrent
//! writer may show up as leftovers); `repair` takes the writer lock to
//! re-derive `index.json`.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;

use super::gc::{dead_blobs, reachable};
use super::{Store, db};
use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::manifest::{Index, Manifest};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Content that does not match its digest or cannot be parsed.
    Corrupt,
    /// A reference to something that is not there.
    Dangling,
    /// Derived or cached state out of date; repairable without loss.
    Stale,
    /// Garbage that `prune` removes.
    Reclaimable,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Corrupt => "corrupt",
            Severity::Dangling => "dangling",
            Severity::Stale => "stale",
            Severity::Reclaimable => "reclaimable",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub severity: Severity,
    pub subject: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct FsckOptions {
    /// Re-derive `index.json` (under the writer lock) if it is stale.
    pub repair: bool,
    /// Also decompress every layer and check its diff_id (slow).
    pub verify_diff_ids: bool,
}

#[derive(Debug, Default, Clone)]
pub struct FsckReport {
    pub issues: Vec<Issue>,
    pub blobs_checked: u64,
    pub bytes_checked: u64,
    pub images_checked: u64,
    pub snapshots_checked: u64,
    /// Bytes `prune` would free (blobs, snapshots, tmp).
    pub reclaimable_bytes: u64,
    pub repaired: Vec<String>,
    /// A writer held the lock during the check: leftovers may be in use.
    pub writer_active: bool,
}

impl FsckReport {
    /// No corrupt or dangling content (stale or reclaimable state is fine).
    pub fn is_healthy(&self) -> bool {
        !self.issues.iter().any(|i| matches!(i.severity, Severity::Corrupt | Severity::Dangling))
    }

    /// No issue at all.
    pub fn is_clean(&self) -> bool {
        self.issues.is_empty()
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.issues.iter().filter(|i| i.severity == severity).count()
    }

    fn push(&mut self, severity: Severity, subject: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue { severity, subject: subject.into(), message: message.into() });
    }
}

impl Store {
    /// Checks the whole store; see the module docs.
    pub fn fsck(&self, opts: FsckOptions) -> Result<FsckReport> {
        let mut r = FsckReport { writer_active: self.writer_active()?, ..Default::default() };
        self.check_database(&mut r)?;
        self.check_blobs(&mut r)?;
        self.check_images(&mut r, opts)?;
        self.check_index(&mut r, opts)?;
        self.check_snapshots(&mut r)?;
        self.check_tmp(&mut r)?;
        r.issues.sort_by(|a, b| a.severity.cmp(&b.severity).then_with(|| a.subject.cmp(&b.subject)));
        Ok(r)
    }

    fn check_database(&self, r: &mut FsckReport) -> Result<()> {
        let verdict: String = self.conn().query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
        if verdict != "ok" {
            r.push(Severity::Corrupt, "distill.db", verdict);
        }
        let mut stmt = self.conn().prepare("PRAGMA foreign_key_check")?;
        let bad: Vec<String> = stmt.query_map([], |row| row.get::<_, String>(0))?.collect::<rusqlite::Result<_>>()?;
        for table in bad {
            r.push(Severity::Dangling, "distill.db", format!("a row of table {table} refers to a missing row"));
        }
        for (name, digest) in self.gc_roots()? {
            if !self.has_blob(&digest) {
                r.push(Severity::Dangling, format!("GC root {name:?}"), format!("blob {digest} is missing"));
            }
        }
        Ok(())
    }

    /// Every file in blobs/sha256 must hash to its name.
    fn check_blobs(&self, r: &mut FsckReport) -> Result<()> {
        let dir = self.blobs_dir();
        let mut names: Vec<String> = Vec::new();
        for entry in fs::read_dir(&dir).ctx(|| format!("listing {}", dir.display()))? {
            names.push(entry.ctx(|| format!("listing {}", dir.display()))?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        for name in names {
            let subject = format!("blobs/sha256/{name}");
            let Ok(digest) = format!("sha256:{name}").parse::<Digest>() else {
                r.push(Severity::Reclaimable, subject, "not a sha256 digest name");
                continue;
            };
            match self.hash_blob(&digest) {
                Ok((actual, size)) => {
                    r.blobs_checked += 1;
                    r.bytes_checked += size;
                    if actual != digest {
                        r.push(Severity::Corrupt, subject, format!("content hashes to {actual}"));
                    }
                }
                Err(e) => r.push(Severity::Corrupt, subject, format!("unreadable: {e}")),
            }
        }
        Ok(())
    }

    fn check_images(&self, r: &mut FsckReport, opts: FsckOptions) -> Result<()> {
        let reach = reachable(self)?;
        for (owner, digest) in &reach.missing {
            r.push(Severity::Dangling, owner.clone(), format!("refers to missing blob {digest}"));
        }
        for (digest, why) in &reach.unreadable {
            r.push(Severity::Corrupt, format!("blob {digest}"), why.clone());
        }
        for (name, size) in dead_blobs(self, &reach.live)? {
            r.reclaimable_bytes += size;
            r.push(Severity::Reclaimable, format!("blobs/sha256/{name}"), "not referenced by any image or GC root");
        }
        for img in self.images()? {
            r.images_checked += 1;
            self.check_image_config(&img.digest, r, opts);
        }
        let live_layers = reach.live;
        for info in db::layers(self.conn())? {
            if !live_layers.contains(&info.digest) && !self.has_blob(&info.digest) {
                r.push(Severity::Stale, format!("layer {}", info.digest), "facts recorded for a blob that is gone");
            }
        }
        Ok(())
    }

    /// Config parses, has one diff_id per layer, and recorded (or, with
    /// `verify_diff_ids`, recomputed) diff_ids agree with it.
    fn check_image_config(&self, digest: &Digest, r: &mut FsckReport, opts: FsckOptions) {
        let subject = format!("image {digest}");
        let Ok(bytes) = self.read_blob(digest) else { return }; // reported by reachability
        let manifest = match Manifest::from_slice(&bytes) {
            Ok(m) => m,
            Err(e) => return r.push(Severity::Corrupt, subject, format!("manifest does not parse: {e}")),
        };
        let Ok(config_bytes) = self.read_blob(&manifest.config.digest) else { return };
        let config = match ImageConfig::from_slice(&config_bytes) {
            Ok(c) => c,
            Err(e) => return r.push(Severity::Corrupt, subject, format!("config does not parse: {e}")),
        };
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return r.push(
                Severity::Corrupt,
                subject,
                format!("{} layers but {} diff_ids in the config", manifest.layers.len(), config.rootfs.diff_ids.len()),
            );
        }
        for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
            if !self.has_blob(&layer.digest) {
                continue;
            }
            if let Ok(Some(info)) = self.layer_info(&layer.digest)
                && info.diff_id != *diff_id
            {
                r.push(
                    Severity::Corrupt,
                    format!("layer {}", layer.digest),
                    format!("recorded diff_id {} but the config says {diff_id}", info.diff_id),
                );
            }
            if opts.verify_diff_ids {
                match self.layer_diff_id(&layer.digest) {
                    Ok((actual, _)) if actual == *diff_id => {}
                    Ok((actual, _)) => r.push(
                        Severity::Corrupt,
                        format!("layer {}", layer.digest),
                        format!("uncompressed content hashes to {actual}, the config says {diff_id}"),
                    ),
                    Err(e) => r.push(
                        Severity::Corrupt,
                        format!("layer {}", layer.digest),
                        format!("cannot be decompressed: {e}"),
                    ),
                }
            }
        }
    }

    fn check_index(&self, r: &mut FsckReport, opts: FsckOptions) -> Result<()> {
        let path = self.index_path();
        match fs::read(&path) {
            Ok(bytes) => match Index::from_slice(&bytes) {
                Ok(index) => {
                    for d in &index.manifests {
                        if !self.has_blob(&d.digest) {
                            r.push(Severity::Dangling, "index.json", format!("lists missing manifest {}", d.digest));
                        }
                    }
                }
                Err(e) => r.push(Severity::Stale, "index.json", format!("does not parse: {e}")),
            },
            Err(e) => r.push(Severity::Stale, "index.json", format!("unreadable: {e}")),
        }
        if !self.index_in_sync()? {
            if opts.repair
                && let Ok(w) = self.writer()
            {
                drop(w); // taking the writer re-derives index.json
                r.issues.retain(|i| i.subject != "index.json");
                r.repaired.push("index.json re-derived from the metadata database".to_string());
            } else {
                r.push(
                    Severity::Stale,
                    "index.json",
                    "differs from the metadata database (repair: distill fsck --repair)",
                );
            }
        }
        Ok(())
    }

    fn check_snapshots(&self, r: &mut FsckReport) -> Result<()> {
        let rows = self.snapshots()?;
        let known: BTreeSet<String> = rows.iter().map(|s| s.chain_id.hex()).collect();
        for s in &rows {
            r.snapshots_checked += 1;
            let path = self.snapshot_path(&s.chain_id);
            if !path.is_dir() {
                let sev = if s.refcount > 0 { Severity::Dangling } else { Severity::Stale };
                r.push(sev, format!("snapshot {}", s.chain_id), "recorded but its directory is missing");
            } else if s.refcount == 0 {
                r.reclaimable_bytes += super::fsutil::tree_size(&path);
                r.push(Severity::Reclaimable, format!("snapshot {}", s.chain_id), "no references");
            }
            if let Some(parent) = &s.parent
                && !known.contains(&parent.hex())
            {
                r.push(
                    Severity::Dangling,
                    format!("snapshot {}", s.chain_id),
                    format!("parent {parent} is not recorded"),
                );
            }
        }
        for holder in db::orphan_image_holders(self.conn())? {
            r.push(Severity::Stale, format!("snapshot holder {holder}"), "the image is gone");
        }
        let dir = self.snapshots_dir();
        for entry in fs::read_dir(&dir).ctx(|| format!("listing {}", dir.display()))? {
            let entry = entry.ctx(|| format!("listing {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !known.contains(&name) {
                r.reclaimable_bytes += super::fsutil::tree_size(&entry.path());
                r.push(Severity::Reclaimable, format!("snapshots/{name}"), "not recorded in the metadata database");
            }
        }
        Ok(())
    }

    fn check_tmp(&self, r: &mut FsckReport) -> Result<()> {
        let dir = self.tmp_dir();
        for entry in fs::read_dir(&dir).ctx(|| format!("listing {}", dir.display()))? {
            let entry = entry.ctx(|| format!("listing {}", dir.display()))?;
            let size = super::fsutil::tree_size(&entry.path());
            r.reclaimable_bytes += size;
            let why = if r.writer_active {
                "staging (a writer is active: may be in use)"
            } else {
                "leftover of an interrupted writer"
            };
            r.push(Severity::Reclaimable, format!("tmp/{}", entry.file_name().to_string_lossy()), why);
        }
        Ok(())
    }
}
