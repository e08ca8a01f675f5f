//! `distill push`: an image from the store to a registry (`docker push`).

use std::process::ExitCode;

use anyhow::{Context, bail};
use distill_image::layer::Compression;
use distill_image::reference::Reference;
use distill_registry::compressed_variant;

use super::image_common::StoreArgs;
use super::registry_common::{PushLines, RegistryArgs};

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The image in the store (a name or an ID).
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Where to push [default: IMAGE, when it is a name].
    #[arg(value_name = "NAME[:TAG]")]
    pub destination: Option<String>,
    /// Compress uncompressed layers on the way (`gzip` or `zstd`, like `docker push`, which
    /// gzips them); the default `keep` pushes the stored manifest byte for byte.
    #[arg(long, default_value = "keep", value_name = "keep|gzip|zstd")]
    pub compression: String,
    /// Print only the pushed digest.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: PushArgs) -> anyhow::Result<ExitCode> {
    let compression = match args.compression.as_str() {
        "keep" | "none" => Compression::None,
        "gzip" => Compression::gzip(),
        "zstd" => Compression::zstd(),
        other => bail!("--compression {other:?}: expected keep, gzip or zstd"),
    };
    let store = args.store.open()?;
    let index = store.resolve_index(&args.image)?.map(|(record, _)| record);
    if index.is_some() && compression != Compression::None {
        bail!("--compression: {} is a multi-platform image; it is pushed as stored", args.image);
    }
    let mut image = store.resolve(&args.image)?;
    if compression != Compression::None {
        let writer = store.writer()?;
        image = compressed_variant(&writer, &image, compression).context("compressing layers for the push")?;
    }
    let dest = args.destination.as_deref().unwrap_or(&args.image);
    let target = Reference::parse_normalized(dest)
        .with_context(|| format!("invalid destination {dest:?} (give one when IMAGE is an ID)"))?
        .with_default_tag();
    let client = args.registry.client()?;
    if !args.quiet {
        println!("The push refers to repository [{}]", target.name());
    }
    let lines = PushLines { quiet: args.quiet };
    let pushed = match &index {
        Some(index) => client.push_index(&store, index, &target, &lines),
        None => client.push_image(&store, &image, &target, &lines),
    };
    let pushed = pushed.with_context(|| format!("pushing {} to {}", args.image, target.familiar()))?;
    if args.quiet {
        println!("{}", pushed.digest);
    } else {
        let tag = target.tag().unwrap_or("latest");
        println!("{tag}: digest: {} size: {}", pushed.digest, pushed.size);
    }
    Ok(ExitCode::SUCCESS)
}
