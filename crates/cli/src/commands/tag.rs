//! `distill tag`: another name for an image (`docker tag`).

use std::process::ExitCode;

use distill_image::reference::Reference;

use super::image_common::StoreArgs;

#[derive(Debug, clap::Args)]
pub struct TagArgs {
    /// The image (name, ID or digest).
    pub source: String,
    /// The new name, REPOSITORY[:TAG].
    pub target: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: TagArgs) -> anyhow::Result<ExitCode> {
    let target = Reference::parse_normalized(&args.target)?;
    let store = args.store.open()?;
    let writer = store.writer()?;
    // A multi-platform name: the new name is for the whole index.
    let record = match store.resolve_index(&args.source)? {
        Some((index, _)) => index,
        None => store.resolve(&args.source)?,
    };
    writer.tag(&record, &target)?;
    Ok(ExitCode::SUCCESS)
}
