//! Layer tar writing (deterministic, one streaming pass for diff_id,
//! compression and blob digest) and safe extraction into snapshots.
//!
//! - [`write_layer_from_dir`]: a directory tree (or an overlayfs upper dir)
//!   becomes a layer blob: `tar → sha256 (diff_id) → compressor → sha256
//!   (digest) → out`, in one pass, byte-for-byte reproducible.
//! - [`write_layer_from_tar`]: an existing, possibly compressed tar stream
//!   is validated and recompressed; its tar bytes pass through unchanged.
//! - [`apply_layer`]: safe extraction that never writes outside the root,
//!   with overlay (snapshot) or apply (flatten) whiteout handling.
//! - [`scan_tar`]: the same validation without writing anything.
//! - [`Compression`], [`CompressWriter`], [`decompress`]: codecs and media
//!   types.
//! - [`TarReader`]: a strict, streaming tar parser (ustar, PAX, GNU long
//!   names) that never allocates from sizes claimed by the archive.

mod apply;
mod compress;
mod path;
mod reader;
mod scan;
mod sys;
mod tarfmt;
mod write;

use std::io;

use thiserror::Error;

pub use apply::{ApplyOptions, ApplyStats, WhiteoutMode, apply_layer};
pub use compress::{
    Codec, CompressWriter, Compression, Decompressor, MEDIA_TYPE_DOCKER_FOREIGN_LAYER_GZIP, MEDIA_TYPE_DOCKER_LAYER,
    MEDIA_TYPE_DOCKER_LAYER_GZIP, MEDIA_TYPE_DOCKER_LAYER_ZSTD, MEDIA_TYPE_OCI_LAYER, MEDIA_TYPE_OCI_LAYER_GZIP,
    MEDIA_TYPE_OCI_LAYER_ZSTD, MEDIA_TYPE_OCI_NONDISTRIBUTABLE_LAYER, MEDIA_TYPE_OCI_NONDISTRIBUTABLE_LAYER_GZIP,
    MEDIA_TYPE_OCI_NONDISTRIBUTABLE_LAYER_ZSTD, decompress,
};
pub use reader::{EntryKind, TarEntry, TarReader};
pub use scan::{TarSummary, scan_tar};
pub use write::{LayerDescriptor, WriteOptions, write_layer_from_dir, write_layer_from_tar, write_tar_from_dir};

/// Name prefix of a whiteout entry: `.wh.<name>` deletes `<name>`.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the opaque-directory marker: hides everything below the
/// directory from lower layers.
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
/// Prefix of AUFS metadata names (`.wh..wh.plnk`, ...), which are skipped.
pub const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
/// The xattr overlayfs uses to mark an opaque directory (rootful mounts).
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The same marker for overlayfs mounted with `userxattr` (rootless).
pub const OVERLAY_USER_OPAQUE_XATTR: &str = "user.overlay.opaque";

/// Everything that can go wrong writing, scanning or applying a layer.
/// Messages name the entry (as stored in the archive) and what is wrong.
#[derive(Debug, Error)]
pub enum LayerError {
    /// An I/O error outside any particular entry (opening the output, ...).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// An I/O error while handling one entry or file.
    #[error("{path:?}: {action}: {source}")]
    Entry {
        path: String,
        action: &'static str,
        #[source]
        source: io::Error,
    },
    /// An entry that would write outside the root, or otherwise unsafe.
    #[error("unsafe tar entry {path:?}: {reason}")]
    Unsafe { path: String, reason: String },
    /// A tar header or extended header that cannot be parsed.
    #[error("invalid tar stream at byte {offset}: {reason}")]
    Malformed { offset: u64, reason: String },
    /// The stream ended before the archive did.
    #[error("truncated tar stream: {detail}")]
    Truncated { detail: String },
    /// Corrupt gzip or zstd data.
    #[error("corrupt {codec} data: {source}")]
    Decompress {
        codec: &'static str,
        #[source]
        source: io::Error,
    },
    /// A valid entry that this implementation does not handle.
    #[error("tar entry {path:?}: unsupported: {what}")]
    Unsupported { path: String, what: String },
    /// A source file changed while the layer was being written.
    #[error("{path:?} changed while the layer was being written: {detail}")]
    Changed { path: String, detail: String },
    /// Invalid options (compression level, root path, ...).
    #[error("invalid layer options: {0}")]
    Options(String),
}

impl LayerError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        LayerError::Io { context: context.into(), source }
    }

    pub(crate) fn entry(path: &[u8], action: &'static str, source: io::Error) -> Self {
        LayerError::Entry { path: lossy(path), action, source }
    }

    pub(crate) fn unsafe_entry(path: &[u8], reason: impl Into<String>) -> Self {
        LayerError::Unsafe { path: lossy(path), reason: reason.into() }
    }

    pub(crate) fn unsupported(path: &[u8], what: impl Into<String>) -> Self {
        LayerError::Unsupported { path: lossy(path), what: what.into() }
    }
}

/// Display form of a raw archive or file name.
pub(crate) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests;
