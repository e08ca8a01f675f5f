//! Manifests, indexes and descriptors, OCI and Docker schema 2 alike (they
//! share one JSON shape; only media types differ). Unknown fields are kept.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Digest;

/// Media types of manifests, indexes and configs (layer media types are in
/// [`crate::layer`], next to the codecs they name).
pub mod media_type {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Whether `mt` names a single-platform image manifest.
    pub fn is_manifest(mt: &str) -> bool {
        mt == OCI_MANIFEST || mt == DOCKER_MANIFEST
    }

    /// Whether `mt` names a multi-platform index / manifest list.
    pub fn is_index(mt: &str) -> bool {
        mt == OCI_INDEX || mt == DOCKER_MANIFEST_LIST
    }
}

/// The `org.opencontainers.image.ref.name` annotation: an image's name in an
/// OCI layout (distill writes the familiar reference, e.g. `app:1.0`).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's full image name annotation (`docker.io/library/app:1.0`).
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: None,
            annotations: None,
            platform: None,
            artifact_type: None,
            extra: BTreeMap::new(),
        }
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(rename = "os.version", default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Option::is_none")]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Manifest {
    /// A fresh OCI manifest for `config` and `layers`.
    pub fn new_oci(config: Descriptor, layers: Vec<Descriptor>) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: Some(media_type::OCI_MANIFEST.to_string()),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: None,
            extra: BTreeMap::new(),
        }
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Manifest, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    pub fn to_canonical_vec(&self) -> Result<Vec<u8>, serde_json::Error> {
        crate::json::to_canonical_vec(self)
    }

    /// The media type to announce for this manifest: its own field, else
    /// inferred from the config's media type (Docker configs mean schema 2).
    pub fn effective_media_type(&self) -> &str {
        match &self.media_type {
            Some(mt) => mt,
            None if self.config.media_type == media_type::DOCKER_CONFIG => media_type::DOCKER_MANIFEST,
            None => media_type::OCI_MANIFEST,
        }
    }
}

/// An image index / manifest list, and the shape of an OCI layout's `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Index {
    pub fn new_oci(manifests: Vec<Descriptor>) -> Index {
        Index {
            schema_version: 2,
            media_type: Some(media_type::OCI_INDEX.to_string()),
            manifests,
            annotations: None,
            extra: BTreeMap::new(),
        }
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Index, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    pub fn to_canonical_vec(&self) -> Result<Vec<u8>, serde_json::Error> {
        crate::json::to_canonical_vec(self)
    }
}

/// The `oci-layout` file's content.
pub const OCI_LAYOUT_FILE: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Which manifest of an index to take for `(arch, variant)` on Linux: an exact
/// variant match first, else any variant, skipping attestation manifests
/// (`unknown/unknown`).
pub fn select_platform<'a>(manifests: &'a [Descriptor], arch: &str, variant: Option<&str>) -> Option<&'a Descriptor> {
    let candidates = || {
        manifests.iter().filter(|d| match &d.platform {
            Some(p) => p.os == "linux" && p.architecture == arch,
            None => false,
        })
    };
    candidates()
        .find(|d| d.platform.as_ref().and_then(|p| p.variant.as_deref()) == variant)
        .or_else(|| candidates().next())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::Codec;

    #[test]
    fn round_trips_docker_schema2() {
        let raw = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
          "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7,"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
          "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":3,"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","x-extra":true}]}"#;
        let m = Manifest::from_slice(raw.as_bytes()).unwrap();
        assert_eq!(m.effective_media_type(), media_type::DOCKER_MANIFEST);
        assert_eq!(m.layers[0].extra["x-extra"], true);
        assert_eq!(Codec::from_media_type(&m.layers[0].media_type), Some(Codec::Gzip));
        assert_eq!(Manifest::from_slice(&m.to_canonical_vec().unwrap()).unwrap(), m);
    }

    #[test]
    fn platform_selection() {
        let mut amd = Descriptor::new(media_type::OCI_MANIFEST, Digest::of(b"1"), 1);
        amd.platform = Some(Platform { architecture: "amd64".into(), os: "linux".into(), ..Default::default() });
        let mut att = Descriptor::new(media_type::OCI_MANIFEST, Digest::of(b"2"), 1);
        att.platform = Some(Platform { architecture: "unknown".into(), os: "unknown".into(), ..Default::default() });
        let mut arm = Descriptor::new(media_type::OCI_MANIFEST, Digest::of(b"3"), 1);
        arm.platform = Some(Platform {
            architecture: "arm64".into(),
            os: "linux".into(),
            variant: Some("v8".into()),
            ..Default::default()
        });
        let all = [att, arm, amd];
        assert_eq!(select_platform(&all, "amd64", None).unwrap().digest, Digest::of(b"1"));
        assert_eq!(select_platform(&all, "arm64", None).unwrap().digest, Digest::of(b"3"));
        assert!(select_platform(&all, "s390x", None).is_none());
    }
}
