//! `distill load`: docker-archive (`docker save`, `skopeo copy …
//! docker-archive:`, Docker 25+ hybrids) and OCI archives (`skopeo copy …
//! oci-archive:`), plain or gzip/zstd-compressed, from a file or a pipe.
//!
//! One pass over the tar stages every member in the writer's staging
//! directory with its digest; links between members are resolved inside
//! the archive, never on disk. Then the format is recognised, every
//! referenced blob is checked against its digest, every layer is validated
//! (hostile tars are rejected) and its diff_id checked against the config.
//! Only when all images are sound are blobs committed, byte-identical to
//! the archive's, and the names recorded in one transaction.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, BufReader, Read};

use serde::Deserialize;

use crate::config::{ImageConfig, host_platform};
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::hash_reader::HashingReader;
use crate::layer::{self, EntryKind, LayerError, TarReader, scan_tar};
use crate::manifest::{
    ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, Descriptor, Index, Manifest, media_type, select_platform,
};
use crate::reference::Reference;
use crate::store::{ImageRecord, LayerInfo, StagedBlob, Writer};
use crate::timestamp::Timestamp;

/// Largest JSON member (manifest, config, index) read into memory.
const MAX_JSON: u64 = 64 << 20;
/// Symlink hops followed inside an archive.
const MAX_LINK_HOPS: usize = 40;

/// One image that was loaded.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub image: ImageRecord,
    /// Tags that moved here from another image: (tag, previous image).
    pub replaced: Vec<(Reference, Digest)>,
}

/// The archive's members, staged.
struct Members {
    files: HashMap<String, StagedBlob>,
    /// path → target path (already resolved relative to the archive root).
    links: HashMap<String, String>,
}

impl Members {
    fn get(&self, path: &str) -> Option<&StagedBlob> {
        let mut p = normalize(path)?;
        for _ in 0..MAX_LINK_HOPS {
            if let Some(f) = self.files.get(&p) {
                return Some(f);
            }
            p = self.links.get(&p)?.clone();
        }
        None
    }

    fn read_json(&self, path: &str) -> Result<Vec<u8>> {
        let f = self.get(path).ok_or_else(|| Error::Archive(format!("{path} is missing")))?;
        if f.size > MAX_JSON {
            return Err(Error::Archive(format!("{path} is {} bytes, too large for JSON metadata", f.size)));
        }
        fs::read(f.path()).ctx(|| format!("reading staged {path}"))
    }

    /// The member `blobs/sha256/<hex>` (or a member at `path` for
    /// docker-archives), checked against `digest`.
    fn blob(&self, path: &str, digest: &Digest) -> Result<&StagedBlob> {
        let f = self.get(path).ok_or_else(|| Error::Archive(format!("blob {digest} ({path}) is missing")))?;
        if f.digest != *digest {
            return Err(Error::DigestMismatch {
                what: format!("archive member {path}"),
                expected: *digest,
                actual: f.digest,
            });
        }
        Ok(f)
    }
}

/// Lexically cleans an archive member name; `None` if it leaves the root.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

fn blob_path(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

fn archive_err(e: LayerError) -> Error {
    Error::Archive(format!("{e}"))
}

/// Reads the archive and stages its members.
fn stage(writer: &Writer<'_>, input: impl Read) -> Result<Members> {
    let dec = layer::decompress(input).map_err(archive_err)?;
    let mut tar = TarReader::new(dec);
    let mut m = Members { files: HashMap::new(), links: HashMap::new() };
    let mut entries = 0u64;
    while let Some(entry) = tar.next_entry().map_err(archive_err)? {
        entries += 1;
        let raw = String::from_utf8(entry.path.clone())
            .map_err(|_| Error::Archive(format!("member name {:?} is not UTF-8", entry.display_path())))?;
        if raw.split('/').any(|c| c == "..") || raw.starts_with('/') {
            return Err(Error::Archive(format!("member {raw:?} points outside the archive")));
        }
        let name = normalize(&raw).unwrap_or_default();
        match entry.kind {
            EntryKind::Directory => {}
            EntryKind::Regular => {
                let mut sink = writer.blob_sink()?;
                let mut data = tar.data();
                io::copy(&mut data, &mut sink).map_err(|e| match e.kind() {
                    io::ErrorKind::UnexpectedEof => Error::Archive(format!("truncated archive: {e}")),
                    _ => Error::Archive(format!("reading member {raw:?}: {e}")),
                })?;
                let staged = sink.finish()?;
                m.links.remove(&name);
                if let Some(old) = m.files.insert(name, staged) {
                    let _ = fs::remove_file(old.path());
                }
            }
            EntryKind::Symlink | EntryKind::HardLink => {
                let target = String::from_utf8_lossy(&entry.link_name).into_owned();
                // Symlinks are relative to the member's directory, hard links
                // to the archive root; neither may leave the archive.
                let resolved = if entry.kind == EntryKind::Symlink && !target.starts_with('/') {
                    let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                    normalize(&format!("{dir}/{target}"))
                } else if entry.kind == EntryKind::HardLink && !target.starts_with('/') {
                    normalize(&target)
                } else {
                    None
                };
                let resolved = resolved
                    .ok_or_else(|| Error::Archive(format!("link {raw:?} -> {target:?} points outside the archive")))?;
                if let Some(old) = m.files.remove(&name) {
                    let _ = fs::remove_file(old.path());
                }
                m.links.insert(name, resolved);
            }
            other => {
                return Err(Error::Archive(format!("member {raw:?} has an unexpected type ({other:?})")));
            }
        }
    }
    tar.drain(false).map_err(archive_err)?;
    if entries == 0 {
        return Err(Error::Archive("the archive is empty".to_string()));
    }
    Ok(m)
}

/// An image found in the archive, checked but not yet committed.
struct Candidate {
    manifest_bytes: Vec<u8>,
    manifest_media_type: String,
    manifest: Manifest,
    /// Member paths of the config and the layers.
    config_path: String,
    layer_paths: Vec<String>,
    names: Vec<Reference>,
}

/// Loads every image in the archive read from `input`.
pub fn load_archive(writer: &Writer<'_>, input: impl Read) -> Result<Vec<LoadedImage>> {
    let members = stage(writer, input)?;
    let found = if members.get("manifest.json").is_some() {
        docker_candidates(&members)?
    } else if members.get("index.json").is_some() {
        oci_candidates(&members)?
    } else {
        return Err(Error::Archive(
            "neither a docker-archive (no manifest.json) nor an OCI archive (no index.json)".to_string(),
        ));
    };
    // One candidate per manifest, in archive order, with all its names.
    let mut candidates: Vec<Candidate> = Vec::new();
    for c in found {
        match candidates.iter_mut().find(|k| k.manifest_bytes == c.manifest_bytes) {
            Some(k) => {
                for n in c.names {
                    if !k.names.contains(&n) {
                        k.names.push(n);
                    }
                }
            }
            None => candidates.push(c),
        }
    }
    if candidates.is_empty() {
        return Err(Error::Archive("the archive holds no image".to_string()));
    }

    // Validate everything before committing anything.
    let mut layer_infos: BTreeMap<Digest, LayerInfo> = BTreeMap::new();
    for c in &candidates {
        let config_bytes = members.read_json(&c.config_path)?;
        let config_digest = Digest::of(&config_bytes);
        if config_digest != c.manifest.config.digest {
            return Err(Error::DigestMismatch {
                what: format!("config {}", c.config_path),
                expected: c.manifest.config.digest,
                actual: config_digest,
            });
        }
        let config =
            ImageConfig::from_slice(&config_bytes).map_err(|e| Error::json(format!("config {}", c.config_path), e))?;
        if config.rootfs.diff_ids.len() != c.manifest.layers.len() {
            return Err(Error::Archive(format!(
                "image config {} lists {} diff_ids for {} layers",
                config_digest,
                config.rootfs.diff_ids.len(),
                c.manifest.layers.len()
            )));
        }
        for ((desc, path), diff_id) in c.manifest.layers.iter().zip(&c.layer_paths).zip(&config.rootfs.diff_ids) {
            if layer_infos.contains_key(&desc.digest) {
                continue;
            }
            let staged = members.blob(path, &desc.digest)?;
            // A layer already in the store was validated when it came in.
            let known = writer.store().layer_info(&desc.digest)?.filter(|i| i.diff_id == *diff_id);
            let (actual, size) = match known {
                Some(info) => (info.diff_id, info.uncompressed_size),
                None => validate_layer(staged, path)?,
            };
            if actual != *diff_id {
                return Err(Error::DigestMismatch {
                    what: format!("layer {path} (diff_id)"),
                    expected: *diff_id,
                    actual,
                });
            }
            layer_infos.insert(
                desc.digest,
                LayerInfo {
                    digest: desc.digest,
                    diff_id: actual,
                    media_type: desc.media_type.clone(),
                    size: desc.size,
                    uncompressed_size: size,
                },
            );
        }
    }

    // Commit blobs (layers, configs, manifests), then the names.
    let mut committed = std::collections::BTreeSet::new();
    let mut commit = |path: &str, digest: &Digest| -> Result<()> {
        if !committed.insert(*digest) || writer.store().has_blob(digest) {
            return Ok(());
        }
        let staged = members.blob(path, digest)?;
        let copy = writer.staging_path("commit-")?;
        // Commit a hard link: the staged member stays where `members` expects it.
        fs::hard_link(staged.path(), &copy).ctx(|| format!("staging {path}"))?;
        writer.commit_blob(StagedBlob { path: copy, digest: staged.digest, size: staged.size }, Some(digest))?;
        Ok(())
    };
    for c in &candidates {
        for (desc, path) in c.manifest.layers.iter().zip(&c.layer_paths) {
            commit(path, &desc.digest)?;
        }
        commit(&c.config_path, &c.manifest.config.digest)?;
    }
    let mut records = Vec::new();
    for c in &candidates {
        let digest = writer.put_blob(&c.manifest_bytes)?;
        records.push(ImageRecord {
            digest,
            media_type: c.manifest_media_type.clone(),
            size: c.manifest_bytes.len() as u64,
            config: c.manifest.config.digest,
            added: Timestamp::now(),
            tags: c.names.clone(),
        });
    }
    writer.update(|tx| {
        for info in layer_infos.values() {
            tx.put_layer(info)?;
        }
        let mut out = Vec::new();
        for rec in &records {
            tx.add_image(rec)?;
            let mut replaced = Vec::new();
            for name in &rec.tags {
                if let Some(prev) = tx.set_tag(name, &rec.digest)? {
                    replaced.push((name.clone(), prev));
                }
            }
            out.push(LoadedImage { image: rec.clone(), replaced });
        }
        Ok(out)
    })
}

/// Checks a layer member: a safe, complete tar (maybe compressed). Returns
/// its diff_id and uncompressed size.
fn validate_layer(staged: &StagedBlob, path: &str) -> Result<(Digest, u64)> {
    let file = fs::File::open(staged.path()).ctx(|| format!("reading staged {path}"))?;
    let dec = layer::decompress(BufReader::new(file)).map_err(|e| Error::Archive(format!("layer {path}: {e}")))?;
    let mut hashed = HashingReader::new(dec);
    scan_tar(&mut hashed).map_err(|e| Error::Archive(format!("layer {path}: {e}")))?;
    hashed.finish_draining().map_err(|e| Error::Archive(format!("layer {path}: {e}")))
}

// ---- OCI archives ----

fn oci_candidates(m: &Members) -> Result<Vec<Candidate>> {
    let index_bytes = m.read_json("index.json")?;
    let index = Index::from_slice(&index_bytes).map_err(|e| Error::json("index.json", e))?;
    let mut out = Vec::new();
    for desc in &index.manifests {
        let names = descriptor_names(desc);
        if let Some(c) = oci_candidate(m, desc, names, 0)? {
            out.push(c);
        }
    }
    Ok(out)
}

/// The image a descriptor leads to (through nested indexes, choosing the
/// host's platform), or `None` for artifacts that are not images.
fn oci_candidate(m: &Members, desc: &Descriptor, names: Vec<Reference>, depth: usize) -> Result<Option<Candidate>> {
    if depth > 4 {
        return Err(Error::Archive("indexes nested too deeply".to_string()));
    }
    let bytes_of = |d: &Descriptor| -> Result<Vec<u8>> {
        let p = blob_path(&d.digest);
        m.blob(&p, &d.digest)?;
        m.read_json(&p)
    };
    if media_type::is_index(&desc.media_type) {
        let bytes = bytes_of(desc)?;
        let index = Index::from_slice(&bytes).map_err(|e| Error::json(format!("index {}", desc.digest), e))?;
        let (arch, variant) = host_platform();
        let chosen = select_platform(&index.manifests, arch, variant)
            .ok_or_else(|| Error::Archive(format!("index {} has no linux/{arch} image", desc.digest)))?;
        return oci_candidate(m, chosen, names, depth + 1);
    }
    let bytes = bytes_of(desc)?;
    let manifest = match Manifest::from_slice(&bytes) {
        Ok(man) => man,
        Err(e) if media_type::is_manifest(&desc.media_type) => {
            return Err(Error::json(format!("manifest {}", desc.digest), e));
        }
        Err(_) => return Ok(None),
    };
    Ok(Some(candidate_from_manifest(bytes, desc.media_type.clone(), manifest, names)))
}

fn candidate_from_manifest(bytes: Vec<u8>, mt: String, manifest: Manifest, names: Vec<Reference>) -> Candidate {
    let mt = if mt.is_empty() { manifest.effective_media_type().to_string() } else { mt };
    Candidate {
        config_path: blob_path(&manifest.config.digest),
        layer_paths: manifest.layers.iter().map(|l| blob_path(&l.digest)).collect(),
        manifest_media_type: mt,
        manifest,
        manifest_bytes: bytes,
        names,
    }
}

/// Tags named by an index descriptor: containerd's full name if present,
/// else the OCI ref name, read as a Docker reference (`app:1.0`). A ref name
/// that is not a valid reference is ignored.
fn descriptor_names(desc: &Descriptor) -> Vec<Reference> {
    let name = desc.annotation(ANNOTATION_CONTAINERD_NAME).or_else(|| desc.annotation(ANNOTATION_REF_NAME));
    name.and_then(|n| Reference::parse_normalized(n).ok())
        .filter(|r| r.digest().is_none())
        .map(|r| vec![r.with_default_tag()])
        .unwrap_or_default()
}

// ---- docker-archives ----

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Option<Vec<String>>,
}

fn docker_candidates(m: &Members) -> Result<Vec<Candidate>> {
    let bytes = m.read_json("manifest.json")?;
    let entries: Vec<DockerManifestEntry> =
        serde_json::from_slice(&bytes).map_err(|e| Error::json("manifest.json", e))?;
    // Docker 25+ archives are also OCI layouts: reuse their manifests, so the
    // image keeps its manifest digest.
    let oci_by_config: HashMap<Digest, Candidate> = match m.get("index.json") {
        Some(_) => oci_candidates(m).unwrap_or_default().into_iter().map(|c| (c.manifest.config.digest, c)).collect(),
        None => HashMap::new(),
    };
    let mut out = Vec::new();
    for entry in entries {
        let mut names = Vec::new();
        for tag in entry.repo_tags.unwrap_or_default() {
            let r = Reference::parse_normalized(&tag)
                .map_err(|e| Error::Archive(format!("RepoTags entry {tag:?}: {e}")))?
                .with_default_tag();
            names.push(r);
        }
        let config =
            m.get(&entry.config).ok_or_else(|| Error::Archive(format!("config {} is missing", entry.config)))?;
        let layer_paths = entry.layers.unwrap_or_default();
        if let Some(mut c) = oci_by_config.get(&config.digest).map(|c| Candidate {
            manifest_bytes: c.manifest_bytes.clone(),
            manifest_media_type: c.manifest_media_type.clone(),
            manifest: c.manifest.clone(),
            config_path: c.config_path.clone(),
            layer_paths: c.layer_paths.clone(),
            names: Vec::new(),
        }) && c.layer_paths.len() == layer_paths.len()
        {
            c.names = names;
            out.push(c);
            continue;
        }
        // Classic docker-archive: build an OCI manifest for the members.
        let config_desc = Descriptor::new(media_type::OCI_CONFIG, config.digest, config.size);
        let mut layers = Vec::new();
        for path in &layer_paths {
            let f = m.get(path).ok_or_else(|| Error::Archive(format!("layer {path} is missing")))?;
            let codec = sniff(f)?;
            layers.push(Descriptor::new(codec.media_type(), f.digest, f.size));
        }
        let manifest = Manifest::new_oci(config_desc, layers);
        let manifest_bytes = manifest.to_canonical_vec().map_err(|e| Error::json("generated manifest", e))?;
        out.push(Candidate {
            manifest_bytes,
            manifest_media_type: media_type::OCI_MANIFEST.to_string(),
            manifest,
            config_path: entry.config,
            layer_paths,
            names,
        });
    }
    Ok(out)
}

/// The compression of a staged layer member, from its magic bytes.
fn sniff(f: &StagedBlob) -> Result<layer::Codec> {
    let mut head = [0u8; 4];
    let mut file = fs::File::open(f.path()).ctx(|| "reading a staged layer".to_string())?;
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]).ctx(|| "reading a staged layer".to_string())? {
            0 => break,
            k => n += k,
        }
    }
    Ok(layer::Codec::detect(&head[..n]))
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalizes_member_names() {
        assert_eq!(normalize("./blobs//sha256/x").as_deref(), Some("blobs/sha256/x"));
        assert_eq!(normalize("a/../b").as_deref(), Some("b"));
        assert_eq!(normalize("../x"), None);
        assert_eq!(normalize("a/../../x"), None);
    }
}
