//! Tagging and removing images by name or ID, with Docker's rules: `rmi
//! NAME` removes one tag and deletes the image when it was the last; `rmi
//! ID` deletes the image, refusing (unless forced) when several names still
//! point at it.

use super::{ImageRecord, Writer};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;

/// What `remove` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removal {
    pub untagged: Vec<Reference>,
    /// Image IDs (config digests) of deleted images.
    pub deleted: Vec<Digest>,
}

impl Writer<'_> {
    /// Points `target` (default tag `latest`) at `image`. Returns the image
    /// the tag pointed at before, if another.
    pub fn tag(&self, image: &ImageRecord, target: &Reference) -> Result<Option<Digest>> {
        if target.digest().is_some() {
            return Err(Error::invalid("tag", format!("{target} contains a digest; a tag cannot")));
        }
        let target = target.clone().with_default_tag();
        self.update(|tx| tx.set_tag(&target, &image.digest))
    }

    /// Removes what `spec` names (see the module docs). Blobs are left for
    /// [`Writer::prune`].
    pub fn remove(&self, spec: &str, force: bool) -> Result<Removal> {
        let store = self.store();
        // A multi-platform name: the tag goes, and the index with its last
        // tag; its platforms' images stay until `prune`.
        if let Some((index, _)) = store.resolve_index(spec)? {
            let by_name = Reference::parse_normalized(spec)
                .ok()
                .filter(|r| r.digest().is_none())
                .map(Reference::with_default_tag)
                .filter(|r| index.tags.contains(r));
            return self.update(|tx| {
                let mut out = Removal::default();
                let names = match by_name {
                    Some(name) => vec![name],
                    None if index.tags.len() > 1 && !force => {
                        return Err(Error::Conflict(format!(
                            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                            &index.digest.hex()[..12]
                        )));
                    }
                    None => index.tags.clone(),
                };
                for name in &names {
                    tx.remove_tag(name)?;
                }
                if names.len() == index.tags.len() {
                    tx.remove_image(&index.digest)?;
                    out.deleted.push(index.digest);
                }
                out.untagged = names;
                Ok(out)
            });
        }
        let record = store.resolve(spec)?;
        let by_name = Reference::parse_normalized(spec)
            .ok()
            .filter(|r| r.digest().is_none())
            .map(Reference::with_default_tag)
            .filter(|r| record.tags.contains(r));
        self.update(|tx| {
            let mut out = Removal::default();
            if let Some(name) = by_name {
                tx.remove_tag(&name)?;
                out.untagged.push(name);
                if record.tags.len() == 1 {
                    tx.remove_image(&record.digest)?;
                    out.deleted.push(record.config);
                }
                return Ok(out);
            }
            // By ID or digest: every manifest with this image ID goes.
            let victims: Vec<ImageRecord> = if spec.contains('@') {
                vec![record.clone()]
            } else {
                store.images()?.into_iter().filter(|i| i.config == record.config).collect()
            };
            let names: Vec<&Reference> = victims.iter().flat_map(|v| &v.tags).collect();
            if names.len() > 1 && !force {
                return Err(Error::Conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    &record.config.hex()[..12]
                )));
            }
            for v in &victims {
                for t in &v.tags {
                    tx.remove_tag(t)?;
                    out.untagged.push(t.clone());
                }
                tx.remove_image(&v.digest)?;
            }
            out.deleted.push(record.config);
            Ok(out)
        })
    }
}
