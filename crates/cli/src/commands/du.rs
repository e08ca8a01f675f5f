//! `distill du`: what the store holds, by kind (like `docker system df`):
//! images, layer blobs, extracted snapshots, cache mounts.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;

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
    let (blob_count, blob_bytes) = tree(&root.join("blobs"));
    let snapshots = store.snapshots()?.len();
    let (_, snapshot_bytes) = tree(&root.join("snapshots"));
    let (mounts, mount_bytes) = distill_build::solver::runmounts::cache_mounts_usage(root);
    println!("{:<16} {:>8} {:>12}", "TYPE", "COUNT", "SIZE");
    println!("{:<16} {:>8} {:>12}", "images", format!("{tagged}/{}", images.len()), "");
    println!("{:<16} {:>8} {:>12}", "blobs", blob_count, human_size(blob_bytes));
    println!("{:<16} {:>8} {:>12}", "snapshots", snapshots, human_size(snapshot_bytes));
    println!("{:<16} {:>8} {:>12}", "cache mounts", mounts, human_size(mount_bytes));
    Ok(ExitCode::SUCCESS)
}

/// Files under `dir` (hard links once) and their bytes.
fn tree(dir: &Path) -> (u64, u64) {
    let (mut n, mut bytes) = (0, 0);
    let mut seen = HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(m) = e.path().symlink_metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.nlink() == 1 || seen.insert((m.dev(), m.ino())) {
                n += 1;
                bytes += m.len();
            }
        }
    }
    (n, bytes)
}
