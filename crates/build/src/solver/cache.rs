//! Step cache keys and what the cache remembers.
//!
//! A key chains: the parent step's key, the instruction as expanded (its
//! typed form, serialized), and what else the step's result depends on —
//! the build args a RUN sees, the content digest of COPY sources from the
//! context (content, mode, owner; never mtimes), the key of a `--from`
//! stage. The config a step sees is a function of the base and the
//! instructions before it, so the chain covers it. A salt carries the
//! options that change layer bytes (compression, SOURCE_DATE_EPOCH).
//! A `--link` COPY/ADD is keyed without the parent (its layer does not
//! depend on it) but with the WORKDIR; the step after it chains both.
//!
//! Only steps that produce a file system change are recorded: the value is
//! the layer they produced (or none) and when, so that an unchanged rebuild
//! gives the very same image.

use distill_image::digest::{Digest, Hasher};
use distill_image::store::LayerInfo;
use serde::{Deserialize, Serialize};

/// Builds a key from length-prefixed parts, so part boundaries are unambiguous.
#[derive(Clone)]
pub(crate) struct KeyBuilder(Hasher);

impl KeyBuilder {
    pub fn new(kind: &str) -> KeyBuilder {
        let mut k = KeyBuilder(Hasher::new());
        k.part(b"distill-build-cache-v1");
        k.part(kind.as_bytes());
        k
    }

    pub fn part(&mut self, bytes: &[u8]) -> &mut KeyBuilder {
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    pub fn str(&mut self, s: &str) -> &mut KeyBuilder {
        self.part(s.as_bytes())
    }

    pub fn digest(&mut self, d: &Digest) -> &mut KeyBuilder {
        self.part(d.as_bytes())
    }

    pub fn finish(self) -> Digest {
        self.0.finish()
    }
}

/// What a cached step produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CachedStep {
    /// None when the step changed nothing (an empty layer is skipped, as BuildKit does).
    pub layer: Option<CachedLayer>,
    /// When the step first ran (RFC 3339): its history entry keeps it.
    pub created: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CachedLayer {
    pub digest: Digest,
    pub diff_id: Digest,
    pub media_type: String,
    pub size: u64,
    pub uncompressed_size: u64,
}

impl From<&LayerInfo> for CachedLayer {
    fn from(l: &LayerInfo) -> Self {
        CachedLayer {
            digest: l.digest,
            diff_id: l.diff_id,
            media_type: l.media_type.clone(),
            size: l.size,
            uncompressed_size: l.uncompressed_size,
        }
    }
}

impl From<&CachedLayer> for LayerInfo {
    fn from(l: &CachedLayer) -> Self {
        LayerInfo {
            digest: l.digest,
            diff_id: l.diff_id,
            media_type: l.media_type.clone(),
            size: l.size,
            uncompressed_size: l.uncompressed_size,
        }
    }
}

/// The store key of a step key.
pub(crate) fn store_key(key: &Digest) -> String {
    format!("step:{key}")
}

/// The build-cache key of the copy index of a COPY step identity (the
/// step's key without the content digests of its sources: parent key,
/// salt, instruction), holding the last result's [`crate::copy::CopyIndex`].
pub(crate) fn copy_index_key(identity: &Digest) -> String {
    format!("copy-index:{identity}")
}

/// Holder name of snapshots and GC-root prefix of layers the build cache keeps.
pub(crate) const CACHE_HOLDER: &str = "build-cache";

pub(crate) fn layer_root_name(layer: &Digest) -> String {
    format!("{CACHE_HOLDER}:{layer}")
}
