//! `distill save`: images out of the store as one tar, in either format.
//!
//! - OCI (`--format oci`): an OCI image layout in a tar: `oci-layout`,
//!   `index.json` (one descriptor per name, annotated with the familiar
//!   reference as `org.opencontainers.image.ref.name`), `blobs/sha256/…`
//!   byte-identical to the store's.
//! - Docker (`--format docker`): `manifest.json` (`Config`, `RepoTags`,
//!   `Layers`) with blobs under `blobs/sha256/` as Docker 25+ writes them.
//!   Layers are uncompressed tars named by their diff_id, as `docker save`
//!   writes them; uncompressed layers are the stored blobs themselves.
//!
//! Members are written in sorted order with fixed metadata, so saving the
//! same images twice gives the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::tar_out::TarOut;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::hash_reader::HashingReader;
use crate::layer::{self, Codec};
use crate::manifest::{ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, Descriptor, Index, OCI_LAYOUT_FILE};
use crate::reference::Reference;
use crate::store::{Image, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// docker-archive, as `docker save` writes (and `docker load` reads).
    Docker,
    /// OCI image layout in a tar (oci-archive).
    Oci,
}

/// One image to save and the names it gets in the archive.
#[derive(Debug, Clone)]
pub struct SaveItem {
    pub image: Image,
    /// Tags to record (empty: saved by ID, untagged).
    pub names: Vec<Reference>,
}

/// Writes `items` to `out` as an archive of `format`.
pub fn save_archive(store: &Store, items: &[SaveItem], format: ArchiveFormat, out: impl Write) -> Result<()> {
    let out = match format {
        ArchiveFormat::Oci => save_oci(store, items, TarOut::new(out))?,
        ArchiveFormat::Docker => save_docker(store, items, TarOut::new(out))?,
    };
    out.finish().ctx(|| "writing the archive".to_string())?;
    Ok(())
}

fn save_oci<W: Write>(store: &Store, items: &[SaveItem], mut tar: TarOut<W>) -> Result<TarOut<W>> {
    let mut blobs = BTreeSet::new();
    let mut manifests = Vec::new();
    for item in items {
        let rec = &item.image.record;
        blobs.insert(rec.digest);
        blobs.insert(item.image.manifest.config.digest);
        blobs.extend(item.image.manifest.layers.iter().map(|l| l.digest));
        let base = Descriptor::new(&rec.media_type, rec.digest, rec.size);
        push_named(&mut manifests, &base, &item.names);
    }
    write_layout(store, &blobs, manifests, &mut tar)?;
    Ok(tar)
}

/// Writes a multi-platform image (a recorded index, see
/// [`crate::store::Writer::commit_index`]) as an OCI archive: the index
/// blob, every platform's manifest, config and layers, and `index.json`
/// naming the index once per name (or once, unnamed).
pub fn save_oci_index(store: &Store, index: &Digest, names: &[Reference], out: impl Write) -> Result<()> {
    let bytes = store.read_blob(index)?;
    let parsed = Index::from_slice(&bytes).map_err(|e| Error::json(format!("index {index}"), e))?;
    let mut blobs = BTreeSet::from([*index]);
    for entry in &parsed.manifests {
        let manifest = store.read_blob(&entry.digest)?;
        let manifest = crate::manifest::Manifest::from_slice(&manifest)
            .map_err(|e| Error::json(format!("manifest {}", entry.digest), e))?;
        blobs.insert(entry.digest);
        blobs.insert(manifest.config.digest);
        blobs.extend(manifest.layers.iter().map(|l| l.digest));
    }
    let media_type = parsed.media_type.as_deref().unwrap_or(crate::manifest::media_type::OCI_INDEX);
    let base = Descriptor::new(media_type, *index, bytes.len() as u64);
    let mut manifests = Vec::new();
    push_named(&mut manifests, &base, names);
    let mut tar = TarOut::new(out);
    write_layout(store, &blobs, manifests, &mut tar)?;
    tar.finish().ctx(|| "writing the archive".to_string())?;
    Ok(())
}

/// Adds `base` to an `index.json` list once per name (annotated with it),
/// or once unnamed; entries already listed are not repeated.
fn push_named(list: &mut Vec<Descriptor>, base: &Descriptor, names: &[Reference]) {
    let mut push_unique = |d: Descriptor| {
        if !list.contains(&d) {
            list.push(d);
        }
    };
    if names.is_empty() {
        push_unique(base.clone());
    }
    for name in names {
        let mut d = base.clone();
        d.annotations = Some(BTreeMap::from([
            (ANNOTATION_REF_NAME.to_string(), name.familiar()),
            (ANNOTATION_CONTAINERD_NAME.to_string(), name.to_string()),
        ]));
        push_unique(d);
    }
}

/// The OCI layout inside an archive: `blobs/sha256/…` (each checked against
/// its digest), `index.json` listing `manifests`, and `oci-layout`.
fn write_layout<W: Write>(
    store: &Store,
    blobs: &BTreeSet<Digest>,
    manifests: Vec<Descriptor>,
    tar: &mut TarOut<W>,
) -> Result<()> {
    let index = Index::new_oci(manifests).to_canonical_vec().map_err(|e| Error::json("index.json", e))?;
    let w = |e| Error::Io { context: "writing the archive".to_string(), source: e };
    tar.dir("blobs/").map_err(w)?;
    tar.dir("blobs/sha256/").map_err(w)?;
    for digest in blobs {
        copy_blob(store, digest, tar)?;
    }
    tar.file("index.json", index.len() as u64, &index[..]).map_err(w)?;
    tar.file("oci-layout", OCI_LAYOUT_FILE.len() as u64, OCI_LAYOUT_FILE).map_err(w)?;
    Ok(())
}

/// Copies a stored blob into the archive, checking its digest on the way.
fn copy_blob<W: Write>(store: &Store, digest: &Digest, tar: &mut TarOut<W>) -> Result<()> {
    let file = store.open_blob(digest)?;
    let size = file.metadata().ctx(|| format!("inspecting blob {digest}"))?.len();
    let mut reader = HashingReader::new(io::BufReader::new(file));
    tar.file(&format!("blobs/sha256/{}", digest.hex()), size, &mut reader)
        .ctx(|| format!("writing blob {digest} to the archive"))?;
    let (actual, _) = reader.finish_draining().ctx(|| format!("reading blob {digest}"))?;
    if actual != *digest {
        return Err(Error::DigestMismatch { what: format!("stored blob {digest}"), expected: *digest, actual });
    }
    Ok(())
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn save_docker<W: Write>(store: &Store, items: &[SaveItem], mut tar: TarOut<W>) -> Result<TarOut<W>> {
    // Each member once: configs by digest, layers by diff_id.
    let mut configs: BTreeSet<Digest> = BTreeSet::new();
    let mut layers: BTreeMap<Digest, Descriptor> = BTreeMap::new();
    let mut entries: Vec<DockerManifestEntry> = Vec::new();
    for item in items {
        let img = &item.image;
        let diff_ids = &img.config.rootfs.diff_ids;
        if diff_ids.len() != img.manifest.layers.len() {
            return Err(Error::invalid(
                format!("image {}", img.record.digest),
                "the config's diff_ids do not match the manifest's layers",
            ));
        }
        configs.insert(img.manifest.config.digest);
        for (desc, diff_id) in img.manifest.layers.iter().zip(diff_ids) {
            layers.entry(*diff_id).or_insert_with(|| desc.clone());
        }
        let tags: Vec<String> = item.names.iter().map(Reference::familiar).collect();
        let entry = DockerManifestEntry {
            config: format!("blobs/sha256/{}", img.manifest.config.digest.hex()),
            repo_tags: (!tags.is_empty()).then_some(tags),
            layers: diff_ids.iter().map(|d| format!("blobs/sha256/{}", d.hex())).collect(),
        };
        match entries.iter_mut().find(|e| e.config == entry.config && e.layers == entry.layers) {
            Some(existing) => {
                if let Some(new) = entry.repo_tags {
                    let tags = existing.repo_tags.get_or_insert_with(Vec::new);
                    for t in new {
                        if !tags.contains(&t) {
                            tags.push(t);
                        }
                    }
                }
            }
            None => entries.push(entry),
        }
    }
    // Members sorted by name: configs and layers share blobs/sha256.
    let mut members: BTreeMap<Digest, Option<Descriptor>> = BTreeMap::new();
    for c in configs {
        members.insert(c, None);
    }
    for (diff_id, desc) in layers {
        members.entry(diff_id).or_insert(Some(desc));
    }
    let w = |e| Error::Io { context: "writing the archive".to_string(), source: e };
    tar.dir("blobs/").map_err(w)?;
    tar.dir("blobs/sha256/").map_err(w)?;
    for (digest, layer) in members {
        match layer {
            None => copy_blob(store, &digest, &mut tar)?,
            Some(desc) => copy_uncompressed_layer(store, &desc, &digest, &mut tar)?,
        }
    }
    let manifest = serde_json::to_vec(&entries).map_err(|e| Error::json("manifest.json", e))?;
    tar.file("manifest.json", manifest.len() as u64, &manifest[..]).map_err(w)?;
    Ok(tar)
}

/// Writes a layer as an uncompressed tar named by its diff_id, checking
/// that the content really has that diff_id.
fn copy_uncompressed_layer<W: Write>(
    store: &Store,
    desc: &Descriptor,
    diff_id: &Digest,
    tar: &mut TarOut<W>,
) -> Result<()> {
    let codec = Codec::from_media_type(&desc.media_type).ok_or_else(|| {
        Error::Unsupported(format!(
            "layer {} has media type {}, not a layer distill can save",
            desc.digest, desc.media_type
        ))
    })?;
    if codec == Codec::None {
        return copy_blob(store, &desc.digest, tar);
    }
    let size = match store.layer_info(&desc.digest)? {
        Some(info) if info.diff_id == *diff_id => info.uncompressed_size,
        _ => store.layer_diff_id(&desc.digest)?.1,
    };
    let file = store.open_blob(&desc.digest)?;
    let dec = layer::decompress(io::BufReader::new(file))?;
    let mut reader = HashingReader::new(dec);
    tar.file(&format!("blobs/sha256/{}", diff_id.hex()), size, &mut reader)
        .ctx(|| format!("writing layer {} to the archive", desc.digest))?;
    let (actual, total) = reader.finish_draining().ctx(|| format!("decompressing layer {}", desc.digest))?;
    if actual != *diff_id || total != size {
        return Err(Error::DigestMismatch { what: format!("layer {}", desc.digest), expected: *diff_id, actual });
    }
    Ok(())
}

/// Writes an archive to `path` atomically (see [`write_file_atomically`]).
pub fn save_to_path(store: &Store, items: &[SaveItem], format: ArchiveFormat, path: &Path) -> Result<()> {
    write_file_atomically(path, |out| save_archive(store, items, format, out))
}

/// Creates `path` through `write`: the content goes to a temporary file
/// beside it, is fsynced and renamed into place, so readers see the old
/// file or the complete new one, and an error leaves nothing behind.
pub fn write_file_atomically<T>(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<T>) -> Result<T> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}", crate::store::fsutil::unique_name("tmp-")));
    let result = (|| -> Result<T> {
        let file = File::create(&tmp).ctx(|| format!("creating {}", tmp.display()))?;
        let mut buf = io::BufWriter::with_capacity(1 << 20, file);
        let value = write(&mut buf)?;
        let file = buf
            .into_inner()
            .map_err(|e| Error::Io { context: format!("writing {}", tmp.display()), source: e.into_error() })?;
        file.sync_all().ctx(|| format!("syncing {}", tmp.display()))?;
        fs::rename(&tmp, path).ctx(|| format!("renaming the output to {}", path.display()))?;
        Ok(value)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
