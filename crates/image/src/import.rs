//! `distill import`: a root file system tar (plain, gzip or zstd) becomes a
//! one-layer image, like `docker import`. The tar bytes pass through
//! unchanged (validated on the way: hostile archives fail before anything
//! is committed); the config carries the host platform, `--change`
//! instructions and a history entry; `created` is `SOURCE_DATE_EPOCH` when
//! set, so importing the same tar twice gives the same image digest.

use std::io::Read;

use crate::change::apply_change;
use crate::config::{ContainerConfig, History, ImageConfig, RootFs, host_platform};
use crate::error::{Error, Result};
use crate::layer::{Compression, WriteOptions, write_layer_from_tar};
use crate::reference::Reference;
use crate::store::{Committed, LayerInfo, Writer};
use crate::timestamp::Timestamp;

#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The tag to give the image (`None`: untagged, like `docker import` without a name).
    pub reference: Option<Reference>,
    /// Dockerfile instructions applied to the config (`--change`).
    pub changes: Vec<String>,
    /// The history comment; default `Imported from <source>`.
    pub message: Option<String>,
    /// How the source is named in the history (a path or `-`).
    pub source: String,
    pub compression: Compression,
    /// The creation time; default `SOURCE_DATE_EPOCH`, else now.
    pub created: Option<Timestamp>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            reference: None,
            changes: Vec::new(),
            message: None,
            source: "-".to_string(),
            compression: Compression::default(),
            created: None,
        }
    }
}

/// Imports `rootfs` into the store through `writer`.
pub fn import_rootfs(writer: &Writer<'_>, rootfs: impl Read, opts: &ImportOptions) -> Result<Committed> {
    // Validate the changes before the (long) layer write.
    let mut container = ContainerConfig::default();
    for change in &opts.changes {
        apply_change(&mut container, change).map_err(|e| Error::invalid("instruction", e.to_string()))?;
    }
    let created = opts.created.or_else(Timestamp::source_date_epoch).unwrap_or_else(Timestamp::now);

    let mut sink = writer.blob_sink()?;
    let write_opts = WriteOptions { compression: opts.compression, ..WriteOptions::default() };
    let layer = write_layer_from_tar(rootfs, &write_opts, &mut sink)?;
    let staged = sink.finish()?;
    writer.commit_blob(staged, Some(&layer.digest))?;

    let (architecture, variant) = host_platform();
    let mut config = ImageConfig {
        created: Some(created.to_rfc3339()),
        architecture: architecture.to_string(),
        os: "linux".to_string(),
        variant: variant.map(str::to_string),
        config: (container != ContainerConfig::default()).then_some(container),
        rootfs: RootFs { kind: "layers".to_string(), diff_ids: vec![layer.diff_id] },
        history: vec![History {
            created: Some(created.to_rfc3339()),
            comment: Some(opts.message.clone().unwrap_or_else(|| format!("Imported from {}", opts.source))),
            ..History::default()
        }],
        ..ImageConfig::default()
    };
    // Docker also keeps the message as the image's top-level comment.
    if let Some(message) = &opts.message {
        config.extra.insert("comment".to_string(), serde_json::Value::String(message.clone()));
    }
    let info = LayerInfo::from(&layer);
    writer.commit_image(&config, &[info], opts.reference.as_ref())
}
