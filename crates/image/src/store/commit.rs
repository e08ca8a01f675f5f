//! Recording a new image whose layer blobs are already stored: the config
//! and an OCI manifest are written as canonical JSON (so the same content
//! always gets the same digests), then the image and its tag are recorded
//! in one transaction. Import uses it; so will the builder.

use super::{ImageRecord, LayerInfo, Writer};
use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, Index, Manifest, Platform, media_type};
use crate::reference::Reference;
use crate::timestamp::Timestamp;

/// A committed image and the image its tag pointed at before, if another.
#[derive(Debug, Clone)]
pub struct Committed {
    pub image: ImageRecord,
    pub replaced: Option<Digest>,
}

impl Writer<'_> {
    /// Writes `config` and a manifest for `layers` (bottom first, blobs
    /// already committed), records the image and points `tag` at it.
    /// `config.rootfs.diff_ids` must list the layers' diff_ids.
    pub fn commit_image(
        &self,
        config: &ImageConfig,
        layers: &[LayerInfo],
        tag: Option<&Reference>,
    ) -> Result<Committed> {
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id).collect();
        if config.rootfs.diff_ids != diff_ids {
            return Err(Error::invalid("image config", "rootfs.diff_ids does not list the layers' diff_ids"));
        }
        for l in layers {
            if !self.store().has_blob(&l.digest) {
                return Err(Error::BlobNotFound(l.digest));
            }
        }
        let config_bytes = config.to_canonical_vec().map_err(|e| Error::json("image config", e))?;
        let config_digest = self.put_blob(&config_bytes)?;
        let manifest = Manifest::new_oci(
            Descriptor::new(media_type::OCI_CONFIG, config_digest, config_bytes.len() as u64),
            layers.iter().map(|l| Descriptor::new(&l.media_type, l.digest, l.size)).collect(),
        );
        let manifest_bytes = manifest.to_canonical_vec().map_err(|e| Error::json("image manifest", e))?;
        let manifest_digest = self.put_blob(&manifest_bytes)?;
        let tag = tag.map(|t| t.clone().with_default_tag());
        // Already recorded and named (an unchanged rebuild): no transaction.
        if let Some(existing) = self.store().images()?.into_iter().find(|i| i.digest == manifest_digest) {
            let named = match &tag {
                Some(t) => self.store().tag_target(t)? == Some(manifest_digest),
                None => true,
            };
            if named {
                return Ok(Committed { image: existing, replaced: None });
            }
        }
        let mut image = ImageRecord {
            digest: manifest_digest,
            media_type: media_type::OCI_MANIFEST.to_string(),
            size: manifest_bytes.len() as u64,
            config: config_digest,
            added: Timestamp::now(),
            tags: Vec::new(),
        };
        let replaced = self.update(|tx| {
            for l in layers {
                tx.put_layer(l)?;
            }
            tx.add_image(&image)?;
            match &tag {
                Some(t) => tx.set_tag(t, &image.digest),
                None => Ok(None),
            }
        })?;
        image = self.store().images()?.into_iter().find(|i| i.digest == image.digest).unwrap_or(image);
        Ok(Committed { image, replaced })
    }

    /// Records a multi-platform image: an OCI index listing `entries` (stored
    /// images, each with its platform) and points `tag` at it. The images
    /// stay recorded (untagged); the index keeps them from `prune`.
    pub fn commit_index(&self, entries: &[(ImageRecord, Platform)], tag: Option<&Reference>) -> Result<Committed> {
        let stored = self.store().images()?;
        let mut manifests = Vec::new();
        for (image, platform) in entries {
            if !stored.iter().any(|i| i.digest == image.digest) {
                return Err(Error::ImageNotFound(image.digest.to_string()));
            }
            let mut d = Descriptor::new(&image.media_type, image.digest, image.size);
            d.platform = Some(platform.clone());
            manifests.push(d);
        }
        let bytes = Index::new_oci(manifests).to_canonical_vec().map_err(|e| Error::json("image index", e))?;
        let digest = self.put_blob(&bytes)?;
        let tag = tag.map(|t| t.clone().with_default_tag());
        let mut record = ImageRecord {
            digest,
            media_type: media_type::OCI_INDEX.to_string(),
            size: bytes.len() as u64,
            // An index has no config: the column holds its own digest.
            config: digest,
            added: Timestamp::now(),
            tags: Vec::new(),
        };
        let replaced = self.update(|tx| {
            tx.add_image(&record)?;
            match &tag {
                Some(t) => tx.set_tag(t, &digest),
                None => Ok(None),
            }
        })?;
        record = self.store().indexes()?.into_iter().find(|i| i.digest == digest).unwrap_or(record);
        Ok(Committed { image: record, replaced })
    }
}
