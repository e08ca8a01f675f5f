//! Compressing an image for distribution: a copy of a stored image whose
//! uncompressed layers are gzip- or zstd-compressed, recorded in the store
//! next to the original (same config, so the same image ID; untagged, so
//! `prune` may drop it). Like `docker push`, which compresses the
//! uncompressed layers of its local store on the way out; unlike it, the
//! result is a stored manifest, so what was pushed can be pushed again
//! byte for byte.

use std::io::{self, BufReader};

use distill_image::layer::{
    Codec, CompressWriter, Compression, MEDIA_TYPE_DOCKER_LAYER_GZIP, MEDIA_TYPE_DOCKER_LAYER_ZSTD,
};
use distill_image::manifest::{Descriptor, media_type};
use distill_image::store::{ImageRecord, LayerInfo, Writer};
use distill_image::timestamp::Timestamp;

use crate::error::{RegistryError, Result};

/// Returns `image` itself when no layer needs compressing, else the
/// compressed variant (created, or found again: compression is deterministic).
pub fn compressed_variant(writer: &Writer<'_>, image: &ImageRecord, compression: Compression) -> Result<ImageRecord> {
    if compression == Compression::None {
        return Ok(image.clone());
    }
    let store = writer.store();
    let full = store.image(image)?;
    let docker = image.media_type == media_type::DOCKER_MANIFEST;
    let layer_type = match (compression.codec(), docker) {
        (Codec::Gzip, true) => MEDIA_TYPE_DOCKER_LAYER_GZIP,
        (Codec::Zstd, true) => MEDIA_TYPE_DOCKER_LAYER_ZSTD,
        (codec, _) => codec.media_type(),
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut layers = Vec::new();
    let mut infos = Vec::new();
    for (i, desc) in full.manifest.layers.iter().enumerate() {
        // Only plain distributable tars: compressed and foreign layers stay as they are.
        let plain = Codec::from_media_type(&desc.media_type) == Some(Codec::None)
            && !desc.media_type.contains("nondistributable")
            && !desc.media_type.contains("foreign");
        if !plain {
            layers.push(desc.clone());
            continue;
        }
        let diff_id =
            *full.config.rootfs.diff_ids.get(i).ok_or_else(|| {
                RegistryError::invalid(format!("image {}", image.digest), "fewer diff_ids than layers")
            })?;
        let mut sink = writer.blob_sink()?;
        {
            let file = store.open_blob(&desc.digest)?;
            let mut out = CompressWriter::new(&mut sink, compression, threads)
                .map_err(|e| RegistryError::invalid("compression", e.to_string()))?;
            io::copy(&mut BufReader::with_capacity(1 << 20, file), &mut out)
                .map_err(|e| RegistryError::io(format!("compressing layer {}", desc.digest), e))?;
            out.finish().map_err(|e| RegistryError::io(format!("compressing layer {}", desc.digest), e))?;
        }
        let staged = sink.finish()?;
        let (digest, size) = (staged.digest, staged.size);
        writer.commit_blob(staged, None)?;
        let mut compressed = Descriptor::new(layer_type, digest, size);
        compressed.annotations = desc.annotations.clone();
        layers.push(compressed);
        infos.push(LayerInfo {
            digest,
            diff_id,
            media_type: layer_type.to_string(),
            size,
            uncompressed_size: desc.size,
        });
    }
    if infos.is_empty() {
        return Ok(image.clone());
    }
    let mut manifest = full.manifest.clone();
    manifest.layers = layers;
    let bytes = manifest
        .to_canonical_vec()
        .map_err(|e| RegistryError::invalid(format!("manifest of {}", image.digest), e.to_string()))?;
    let digest = writer.put_blob(&bytes)?;
    let record = ImageRecord {
        digest,
        media_type: image.media_type.clone(),
        size: bytes.len() as u64,
        config: image.config,
        added: Timestamp::now(),
        tags: Vec::new(),
    };
    writer.update(|tx| {
        for info in &infos {
            tx.put_layer(info)?;
        }
        tx.add_image(&record)?;
        Ok(())
    })?;
    Ok(record)
}
