//! `distill prune`: remove untagged images and everything nothing refers to
//! (blobs, snapshots, leftovers of interrupted writers).

use std::process::ExitCode;

use super::image_common::{StoreArgs, human_size};

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Keep untagged (dangling) images; only reclaim unreferenced data.
    #[arg(long)]
    pub keep_dangling: bool,
    /// Also drop the build cache (like `docker builder prune -a`): later builds run every step again.
    #[arg(long)]
    pub build_cache: bool,
    /// Also empty the `RUN --mount=type=cache` directories (those no build is using).
    #[arg(long)]
    pub cache: bool,
    /// Accepted for Docker compatibility (distill never prompts).
    #[arg(short, long)]
    pub force: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: PruneArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    let writer = store.writer()?;
    if args.build_cache {
        let entries = distill_build::solver::clear_build_cache(&writer)?;
        println!("Dropped {entries} build cache entries");
    }
    if args.cache {
        let (n, bytes) = distill_build::solver::runmounts::clear_cache_mounts(store.root())?;
        println!("Removed {n} cache mounts ({})", human_size(bytes));
    }
    let report = writer.prune(!args.keep_dangling)?;
    if !report.images.is_empty() {
        println!("Deleted Images:");
        for d in &report.images {
            println!("deleted: {d}");
        }
    }
    println!(
        "Removed {} blobs, {} snapshots, {} temporary entries\nTotal reclaimed space: {}",
        report.blobs,
        report.snapshots,
        report.temp,
        human_size(report.bytes)
    );
    Ok(ExitCode::SUCCESS)
}
