//! `distill build --build-context NAME=VALUE`: named contexts, as buildx
//! passes them to BuildKit. A local directory, `docker-image://REF` (an
//! image of the store, pulled when missing like a FROM image) or
//! `oci-layout://PATH[:TAG][@sha256:…]` (an OCI image layout on disk, whose
//! image is loaded into the store, untagged).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use distill_build::solver::NamedContext;
use distill_image::config::{ImageConfig, host_platform};
use distill_image::digest::Digest;
use distill_image::manifest::{
    ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, Descriptor, Index, Manifest, media_type,
};
use distill_image::store::{ImageRecord, LayerInfo, Store};
use distill_image::timestamp::Timestamp;

/// A `--build-context` value as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextSpec {
    Dir(PathBuf),
    /// `docker-image://REF` (`scratch` included).
    DockerImage(String),
    /// `oci-layout://PATH[:TAG][@DIGEST]`; without either, the tag `latest`.
    OciLayout {
        path: PathBuf,
        tag: Option<String>,
        digest: Option<Digest>,
    },
}

/// Parses the `--build-context` flags: NAME → value (a later NAME wins, as in buildx).
pub fn parse_build_contexts(specs: &[String]) -> anyhow::Result<BTreeMap<String, ContextSpec>> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let Some((name, value)) = spec.split_once('=').filter(|(n, v)| !n.is_empty() && !v.is_empty()) else {
            bail!("--build-context {spec:?}: expected NAME=VALUE");
        };
        out.insert(name.to_string(), parse_value(name, value)?);
    }
    Ok(out)
}

fn parse_value(name: &str, value: &str) -> anyhow::Result<ContextSpec> {
    if let Some(reference) = value.strip_prefix("docker-image://") {
        if reference.is_empty() {
            bail!("--build-context {name}: docker-image:// needs an image reference");
        }
        return Ok(ContextSpec::DockerImage(reference.to_string()));
    }
    if let Some(rest) = value.strip_prefix("oci-layout://") {
        // As buildx splits it: `@` for the digest, then `:` for the tag.
        let (rest, digest) = match rest.split_once('@') {
            Some((p, d)) => {
                let digest: Digest =
                    d.parse().map_err(|e| anyhow::anyhow!("--build-context {name}: digest {d:?}: {e}"))?;
                (p, Some(digest))
            }
            None => (rest, None),
        };
        let (path, tag) = match rest.split_once(':') {
            Some((p, t)) => (p, Some(t.to_string())),
            None => (rest, None),
        };
        if path.is_empty() {
            bail!("--build-context {name}: oci-layout:// needs a path");
        }
        return Ok(ContextSpec::OciLayout { path: PathBuf::from(path), tag, digest });
    }
    let lower = value.to_ascii_lowercase();
    if ["http://", "https://", "git://", "git@", "ssh://"].iter().any(|p| lower.starts_with(p)) {
        bail!(
            "--build-context {name}={value}: Git and URL contexts are not supported yet (use a local directory, docker-image:// or oci-layout://)"
        );
    }
    if let Some((scheme, _)) = value.split_once("://") {
        bail!(
            "--build-context {name}: unsupported context source {scheme}:// (expected a directory, docker-image:// or oci-layout://)"
        );
    }
    let path = PathBuf::from(value);
    if !path.is_dir() {
        bail!("--build-context {name}: {value} is not a directory");
    }
    Ok(ContextSpec::Dir(path))
}

/// What the builder gets for each context. Image contexts are named as the
/// store finds them; an `oci-layout://` image is loaded first, only when
/// `used(name)` (an unused context costs nothing, as in BuildKit).
pub fn resolve_contexts(
    store: &Store,
    specs: &BTreeMap<String, ContextSpec>,
    used: impl Fn(&str) -> bool,
) -> anyhow::Result<BTreeMap<String, NamedContext>> {
    let mut out = BTreeMap::new();
    for (name, spec) in specs {
        let named = match spec {
            ContextSpec::Dir(path) => NamedContext::Dir(path.clone()),
            ContextSpec::DockerImage(r) if r == "scratch" => NamedContext::Scratch,
            ContextSpec::DockerImage(r) => NamedContext::Image(r.clone()),
            ContextSpec::OciLayout { .. } if !used(name) => continue,
            ContextSpec::OciLayout { path, tag, digest } => {
                let digest = load_oci_layout(store, path, tag.as_deref(), digest.as_ref())
                    .with_context(|| format!("--build-context {name}: loading the OCI layout {}", path.display()))?;
                NamedContext::Image(digest.to_string())
            }
        };
        out.insert(name.clone(), named);
    }
    Ok(out)
}

/// Loads one image of an OCI image layout directory into the store
/// (untagged) and returns its manifest digest. The image is chosen by
/// digest, else by tag (`org.opencontainers.image.ref.name`), else the
/// layout's only image; an index leads to the host's platform. Every blob
/// is checked against its digest, every layer against the config's diff_id.
pub fn load_oci_layout(
    store: &Store,
    dir: &Path,
    tag: Option<&str>,
    digest: Option<&Digest>,
) -> anyhow::Result<Digest> {
    if !dir.join("oci-layout").is_file() {
        bail!("{} is not an OCI image layout (no oci-layout file)", dir.display());
    }
    let index_bytes = fs::read(dir.join("index.json")).context("reading index.json")?;
    let index = Index::from_slice(&index_bytes).context("parsing index.json")?;
    let chosen: Descriptor = match (digest, tag) {
        (Some(d), _) => match index.manifests.iter().find(|m| m.digest == *d) {
            Some(m) => m.clone(),
            // A digest below the top index (a platform's manifest).
            None => Descriptor::new("", *d, 0),
        },
        (None, tag) => {
            let tag = tag.unwrap_or("latest");
            // The ref name is a bare tag (skopeo, buildx) or a full name (distill, Docker).
            let suffix = format!(":{tag}");
            let named = |m: &&Descriptor| {
                let is_tag = |n: &str| n == tag || n.ends_with(&suffix);
                m.annotation(ANNOTATION_REF_NAME).is_some_and(is_tag)
                    || m.annotation(ANNOTATION_CONTAINERD_NAME).is_some_and(is_tag)
            };
            match index.manifests.iter().find(named) {
                Some(m) => m.clone(),
                None if index.manifests.len() == 1 => index.manifests[0].clone(),
                None => bail!("no image tagged {tag:?} in index.json"),
            }
        }
    };
    let (manifest_bytes, media) = manifest_of(dir, &chosen, 0)?;
    let manifest = Manifest::from_slice(&manifest_bytes).context("parsing the image manifest")?;
    let config_bytes = read_blob(dir, &manifest.config.digest)?;
    let config = ImageConfig::from_slice(&config_bytes).context("parsing the image config")?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        bail!("the image config lists {} layers, its manifest {}", config.rootfs.diff_ids.len(), manifest.layers.len());
    }
    let writer = store.writer()?;
    let mut layers = Vec::new();
    for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
        commit_file(&writer, dir, &layer.digest)?;
        let (actual, size) = match store.layer_info(&layer.digest)?.filter(|i| i.diff_id == *diff_id) {
            Some(info) => (info.diff_id, info.uncompressed_size),
            None => store.layer_diff_id(&layer.digest)?,
        };
        if actual != *diff_id {
            bail!("layer {}: its content is {actual}, the config says {diff_id}", layer.digest);
        }
        layers.push(LayerInfo {
            digest: layer.digest,
            diff_id: actual,
            media_type: layer.media_type.clone(),
            size: layer.size,
            uncompressed_size: size,
        });
    }
    commit_file(&writer, dir, &manifest.config.digest)?;
    let digest = writer.put_blob(&manifest_bytes)?;
    let media_type = if media.is_empty() { manifest.effective_media_type().to_string() } else { media };
    let record = ImageRecord {
        digest,
        media_type,
        size: manifest_bytes.len() as u64,
        config: manifest.config.digest,
        added: Timestamp::now(),
        tags: Vec::new(),
    };
    writer.update(|tx| {
        for info in &layers {
            tx.put_layer(info)?;
        }
        tx.add_image(&record)
    })?;
    Ok(digest)
}

/// The manifest a descriptor leads to (an index: the host's platform), with its media type.
fn manifest_of(dir: &Path, desc: &Descriptor, depth: usize) -> anyhow::Result<(Vec<u8>, String)> {
    if depth > 4 {
        bail!("indexes nested too deeply");
    }
    let bytes = read_blob(dir, &desc.digest)?;
    let is_index = media_type::is_index(&desc.media_type)
        || (desc.media_type.is_empty()
            && serde_json::from_slice::<serde_json::Value>(&bytes)?.get("manifests").is_some());
    if is_index {
        let index = Index::from_slice(&bytes).with_context(|| format!("parsing index {}", desc.digest))?;
        let (arch, variant) = host_platform();
        let chosen = distill_image::manifest::select_platform(&index.manifests, arch, variant)
            .with_context(|| format!("index {} has no linux/{arch} image", desc.digest))?;
        return manifest_of(dir, chosen, depth + 1);
    }
    Ok((bytes, desc.media_type.clone()))
}

fn blob_file(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs/sha256").join(digest.hex())
}

/// A small blob (manifest, index, config), checked against its digest.
fn read_blob(dir: &Path, digest: &Digest) -> anyhow::Result<Vec<u8>> {
    let path = blob_file(dir, digest);
    let meta = fs::metadata(&path).with_context(|| format!("blob {digest} is missing"))?;
    if meta.len() > 64 << 20 {
        bail!("blob {digest} is too large for JSON metadata");
    }
    let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let actual = Digest::of(&bytes);
    if actual != *digest {
        bail!("blob {digest} has the digest {actual}");
    }
    Ok(bytes)
}

/// Copies a blob into the store unless it is there (the store verifies the digest).
fn commit_file(writer: &distill_image::store::Writer<'_>, dir: &Path, digest: &Digest) -> anyhow::Result<()> {
    if writer.store().has_blob(digest) {
        return Ok(());
    }
    let path = blob_file(dir, digest);
    let mut file = fs::File::open(&path).with_context(|| format!("blob {digest} is missing"))?;
    let mut sink = writer.blob_sink()?;
    io::copy(&mut file, &mut sink).with_context(|| format!("copying {}", path.display()))?;
    writer.commit_blob(sink.finish()?, Some(digest))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_like_buildx() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let parse = |v: &str| parse_value("n", v);
        assert_eq!(parse("docker-image://alpine:3").unwrap(), ContextSpec::DockerImage("alpine:3".into()));
        assert_eq!(
            parse(&format!("oci-layout:///l/x@{d}")).unwrap(),
            ContextSpec::OciLayout { path: "/l/x".into(), tag: None, digest: Some(d.parse().unwrap()) }
        );
        assert_eq!(
            parse("oci-layout://./l:v1").unwrap(),
            ContextSpec::OciLayout { path: "./l".into(), tag: Some("v1".into()), digest: None }
        );
        assert_eq!(parse("/").unwrap(), ContextSpec::Dir("/".into()));
        assert!(parse("https://github.com/x/y.git").is_err());
        assert!(parse("docker-image://").is_err());
        assert!(parse("oci-layout://l@sha256:12").is_err());
        assert!(parse("/no/such/dir/here").is_err());
        assert!(parse_build_contexts(&["noequals".into()]).is_err());
        assert!(parse_build_contexts(&["=x".into()]).is_err());
    }
}
