//! `distill load`: images from a docker-archive or OCI archive (`docker load`).

use std::fs::File;
use std::io::{self, BufReader, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use distill_image::archive::load_archive;

use super::image_common::{StoreArgs, short_id};

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Read from this archive (plain, gzip or zstd) instead of stdin.
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Print nothing.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    let writer = store.writer()?;
    let loaded = match &args.input {
        Some(path) if path.as_os_str() != "-" => {
            let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            load_archive(&writer, BufReader::with_capacity(1 << 20, file))
                .with_context(|| format!("loading {}", path.display()))?
        }
        _ => {
            if io::stdin().is_terminal() {
                anyhow::bail!("requested load from stdin, but stdin is a terminal; use -i FILE");
            }
            load_archive(&writer, io::stdin().lock()).context("loading from stdin")?
        }
    };
    if !args.quiet {
        for img in &loaded {
            for (tag, previous) in &img.replaced {
                let old = store.images()?.into_iter().find(|i| i.digest == *previous);
                if let Some(old) = old.filter(|o| o.config != img.image.config) {
                    println!(
                        "The image {} already exists, renaming the old one with ID {} to empty string",
                        tag.familiar(),
                        short_id(&old.config)
                    );
                }
            }
            if img.image.tags.is_empty() {
                println!("Loaded image ID: {}", img.image.id());
            }
            for tag in &img.image.tags {
                println!("Loaded image: {}", tag.familiar());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
