//! `distill export`: an image's flattened root file system as a tar.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use distill_image::archive::write_file_atomically;
use distill_image::export::export_rootfs;

use super::image_common::{Output, StoreArgs};

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The image (name, ID or digest).
    pub image: String,
    /// Write to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let output = Output::choose(args.output, "root file system")?;
    let store = args.store.open()?;
    // Extraction stages under the store's tmp/, which needs the writer lock.
    let writer = store.writer()?;
    let image = store.find_image(&args.image)?;
    match output {
        Output::File(path) => {
            write_file_atomically(&path, |out| export_rootfs(&writer, &image, out))
                .with_context(|| format!("exporting to {}", path.display()))?;
        }
        Output::Stdout => {
            let mut out = io::BufWriter::new(io::stdout().lock());
            export_rootfs(&writer, &image, &mut out).context("exporting to stdout")?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
