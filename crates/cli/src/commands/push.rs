//! `distill push`: an image from the store to a registry (`docker push`).

use std::process::ExitCode;

use anyhow::Context;
use distill_image::reference::Reference;

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
    /// Print only the pushed digest.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: PushArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    let image = store.resolve(&args.image)?;
    let dest = args.destination.as_deref().unwrap_or(&args.image);
    let target = Reference::parse_normalized(dest)
        .with_context(|| format!("invalid destination {dest:?} (give one when IMAGE is an ID)"))?
        .with_default_tag();
    let client = args.registry.client()?;
    if !args.quiet {
        println!("The push refers to repository [{}]", target.name());
    }
    let pushed = client
        .push_image(&store, &image, &target, &PushLines { quiet: args.quiet })
        .with_context(|| format!("pushing {} to {}", args.image, target.familiar()))?;
    if args.quiet {
        println!("{}", pushed.digest);
    } else {
        let tag = target.tag().unwrap_or("latest");
        println!("{tag}: digest: {} size: {}", pushed.digest, pushed.size);
    }
    Ok(ExitCode::SUCCESS)
}
