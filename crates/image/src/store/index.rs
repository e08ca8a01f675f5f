//! `index.json`, derived from the metadata database: one descriptor per tag
//! (annotated with its name) and one per untagged image.
//!
//! Crash safety: [`super::Writer::update`] writes the index twice around the
//! database commit: before it, the entries common to the old and the new
//! state (removals applied, additions not yet); after it, the new state. So
//! at every instant the index lists a subset of what the database holds: a
//! crash leaves it stale (the next writer, `Store::open` with no writer
//! active, or `fsck --repair` re-derives it), never naming what is gone.
//!
//! Other tools: since distill's own entries are always in the database, an
//! entry of `index.json` that is not must have been written by another tool
//! (`skopeo copy … oci:$DISTILL_ROOT:app:1`). Such entries are adopted into
//! the database when their blobs are complete, instead of being dropped.
//!
//! Name mapping: the `org.opencontainers.image.ref.name` annotation holds the
//! familiar reference (`app:1.0`, `user/app:1.0`, `quay.io/x/y:2`), which is
//! what `skopeo inspect oci:$DISTILL_ROOT:app:1.0` looks up (skopeo splits
//! `oci:PATH:REF` at the first colon after the path). The full name is in
//! `io.containerd.image.name`.

use std::collections::BTreeMap;
use std::fs;

use rusqlite::Connection;

use super::{ImageRecord, Store, db};
use crate::error::{Error, Result};
use crate::manifest::{ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, Descriptor, Index, Manifest, media_type};
use crate::reference::Reference;
use crate::timestamp::Timestamp;

/// The canonical bytes `index.json` should hold for the database's state.
pub(crate) fn derive(conn: &Connection) -> Result<Vec<u8>> {
    encode(&derive_index(conn)?)
}

pub(crate) fn encode(index: &Index) -> Result<Vec<u8>> {
    index.to_canonical_vec().map_err(|e| Error::json("derived index.json", e))
}

/// The entries of `a` that are also in `b`, in `a`'s order.
pub(crate) fn intersection(a: &Index, b: &Index) -> Index {
    Index::new_oci(a.manifests.iter().filter(|d| b.manifests.contains(d)).cloned().collect())
}

/// The index the database's state implies.
pub(crate) fn derive_index(conn: &Connection) -> Result<Index> {
    let images = db::images(conn)?;
    let mut tagged = Vec::new();
    let mut untagged = Vec::new();
    for img in &images {
        if img.tags.is_empty() {
            untagged.push(Descriptor::new(&img.media_type, img.digest, img.size));
        }
        for tag in &img.tags {
            let mut d = Descriptor::new(&img.media_type, img.digest, img.size);
            let mut ann = BTreeMap::new();
            ann.insert(ANNOTATION_REF_NAME.to_string(), tag.familiar());
            ann.insert(ANNOTATION_CONTAINERD_NAME.to_string(), tag.to_string());
            d.annotations = Some(ann);
            tagged.push((tag.familiar(), d));
        }
    }
    tagged.sort_by(|a, b| a.0.cmp(&b.0));
    untagged.sort_by_key(|d| d.digest);
    let manifests = tagged.into_iter().map(|(_, d)| d).chain(untagged).collect();
    Ok(Index::new_oci(manifests))
}

/// Records in the database the complete images that `index.json` lists
/// but the database does not know (written by another tool); returns
/// their names. Incomplete or unreadable entries are left out.
pub(crate) fn adopt_foreign(store: &Store) -> Result<Vec<String>> {
    let Some(on_disk) = fs::read(store.index_path()).ok().and_then(|b| Index::from_slice(&b).ok()) else {
        return Ok(Vec::new());
    };
    let ours = derive_index(store.conn())?;
    let foreign: Vec<&Descriptor> = on_disk.manifests.iter().filter(|d| !ours.manifests.contains(d)).collect();
    if foreign.is_empty() {
        return Ok(Vec::new());
    }
    let tx = store.conn().unchecked_transaction()?;
    let mut adopted = Vec::new();
    for d in foreign {
        let Some(manifest) = complete_manifest(store, d) else { continue };
        let name = d.annotation(ANNOTATION_CONTAINERD_NAME).or_else(|| d.annotation(ANNOTATION_REF_NAME));
        let reference = match name.map(Reference::parse_normalized) {
            None => None,
            Some(Ok(r)) if r.digest().is_none() => Some(r.with_default_tag()),
            Some(_) => continue,
        };
        let record = ImageRecord {
            digest: d.digest,
            media_type: d.media_type.clone(),
            size: d.size,
            config: manifest.config.digest,
            added: Timestamp::now(),
            tags: Vec::new(),
        };
        db::insert_image(&tx, &record)?;
        match reference {
            Some(r) => {
                db::set_tag(&tx, &r, &d.digest)?;
                adopted.push(r.familiar());
            }
            None => adopted.push(d.digest.to_string()),
        }
    }
    tx.commit()?;
    Ok(adopted)
}

/// The manifest `d` names, if it and every blob it refers to are stored.
fn complete_manifest(store: &Store, d: &Descriptor) -> Option<Manifest> {
    if !media_type::is_manifest(&d.media_type) {
        return None;
    }
    let manifest = Manifest::from_slice(&store.read_blob(&d.digest).ok()?).ok()?;
    let complete = store.has_blob(&manifest.config.digest) && manifest.layers.iter().all(|l| store.has_blob(&l.digest));
    complete.then_some(manifest)
}
