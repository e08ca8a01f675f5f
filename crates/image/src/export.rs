//! `distill export`: an image's layers flattened into one root file system
//! tar (whiteouts applied), like `docker export` of a fresh container. The
//! layers are applied into the writer's staging directory and the tree is
//! written back as a deterministic, uncompressed tar.

use std::fs;
use std::io::{BufReader, Write};

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::hash_reader::HashingReader;
use crate::layer::{
    self, ApplyOptions, Compression, LayerDescriptor, WhiteoutMode, WriteOptions, apply_layer, write_layer_from_dir,
};
use crate::store::{Image, Writer};
use crate::timestamp::Timestamp;

/// Writes the flattened root file system of `image` to `out`. mtimes are
/// clamped to `SOURCE_DATE_EPOCH` when it is set.
pub fn export_rootfs(writer: &Writer<'_>, image: &Image, out: impl Write) -> Result<LayerDescriptor> {
    let store = writer.store();
    let diff_ids = &image.config.rootfs.diff_ids;
    if diff_ids.len() != image.manifest.layers.len() {
        return Err(Error::invalid(
            format!("image {}", image.record.digest),
            "the config's diff_ids do not match the manifest's layers",
        ));
    }
    let root = writer.staging_path("export-")?;
    fs::create_dir(&root).ctx(|| format!("creating {}", root.display()))?;
    let opts = ApplyOptions { whiteouts: WhiteoutMode::Apply, same_owner: rustix::process::geteuid().is_root() };
    for (layer, diff_id) in image.manifest.layers.iter().zip(diff_ids) {
        let blob = store.open_blob(&layer.digest)?;
        let mut hashed = HashingReader::new(layer::decompress(BufReader::new(blob))?);
        apply_layer(&mut hashed, &root, &opts)?;
        let (actual, _): (Digest, u64) = hashed.finish_draining().ctx(|| format!("reading layer {}", layer.digest))?;
        if actual != *diff_id {
            return Err(Error::DigestMismatch {
                what: format!("layer {} (diff_id)", layer.digest),
                expected: *diff_id,
                actual,
            });
        }
    }
    let write_opts = WriteOptions {
        compression: Compression::None,
        source_date_epoch: Timestamp::source_date_epoch().map(|t| t.secs),
        ..WriteOptions::default()
    };
    Ok(write_layer_from_dir(&root, &write_opts, out)?)
}
