//! `distill du`: what the store holds, by kind (like `docker system df`):
//! images, layer blobs, extracted snapshots, cache mounts.

use std::process::ExitCode;

use distill_build::solver::runmounts::{cache_mounts_usage, tree_usage};

use super::image_common::{StoreArgs, human_size};

#[derive(Debug, clap::Args)]
pub struct DuArgs {
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: DuArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    let root = store.root();
    let images = store.images()?;
    let tagged = images.iter().filter(|i| !i.tags.is_empty()).count();
    let (blob_count, blob_bytes) = tree_usage(&root.join("blobs"));
    let snapshots = store.snapshots()?.len();
    let (_, snapshot_bytes) = tree_usage(&root.join("snapshots"));
    let (mounts, mount_bytes) = cache_mounts_usage(root);
    println!("{:<16} {:>8} {:>12}", "TYPE", "COUNT", "SIZE");
    println!("{:<16} {:>8} {:>12}", "images", format!("{tagged}/{}", images.len()), "");
    println!("{:<16} {:>8} {:>12}", "blobs", blob_count, human_size(blob_bytes));
    println!("{:<16} {:>8} {:>12}", "snapshots", snapshots, human_size(snapshot_bytes));
    println!("{:<16} {:>8} {:>12}", "cache mounts", mounts, human_size(mount_bytes));
    Ok(ExitCode::SUCCESS)
}
