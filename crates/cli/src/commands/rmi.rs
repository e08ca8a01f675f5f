//! `distill rmi`: remove images (`docker rmi`), then reclaim what no image
//! uses any more.

use std::process::ExitCode;

use super::image_common::StoreArgs;

#[derive(Debug, clap::Args)]
pub struct RmiArgs {
    /// Images (names, IDs or digests).
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove an image even when several names point at it.
    #[arg(short, long)]
    pub force: bool,
    /// Keep the blobs (do not prune after removing).
    #[arg(long)]
    pub no_prune: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: RmiArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    let writer = store.writer()?;
    let mut failed = false;
    for spec in &args.images {
        match writer.remove(spec, args.force) {
            Ok(removal) => {
                for t in &removal.untagged {
                    println!("Untagged: {}", t.familiar());
                }
                for d in &removal.deleted {
                    println!("Deleted: {d}");
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if !args.no_prune {
        writer.prune(false)?;
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
