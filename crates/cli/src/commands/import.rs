//! `distill import`: a root file system tar becomes an image (`docker import`).

use std::fs::File;
use std::io::{self, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use distill_image::import::{ImportOptions, import_rootfs};
use distill_image::layer::Compression;
use distill_image::reference::Reference;

use super::image_common::StoreArgs;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Root file system tar (plain, .gz or .zst); `-` reads stdin.
    pub file: PathBuf,
    /// Name and tag for the image (REPOSITORY[:TAG]).
    pub reference: Option<String>,
    /// Apply a Dockerfile instruction to the config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR).
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// History comment for the imported layer.
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Layer compression: gzip, zstd or none.
    #[arg(long, default_value = "gzip")]
    pub compression: String,
    /// Compression level (gzip 0-9, zstd -7..22).
    #[arg(long)]
    pub compression_level: Option<i32>,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let reference = args
        .reference
        .as_deref()
        .map(|r| Reference::parse_normalized(r).map(Reference::with_default_tag))
        .transpose()?;
    if reference.as_ref().is_some_and(|r| r.digest().is_some()) {
        anyhow::bail!("the image name for import cannot contain a digest");
    }
    let compression = Compression::from_name(&args.compression, args.compression_level)?;
    let store = args.store.open()?;
    let opts = ImportOptions {
        reference,
        changes: args.changes,
        message: args.message,
        source: args.file.display().to_string(),
        compression,
        created: None,
    };
    let writer = store.writer()?;
    let imported = if args.file.as_os_str() == "-" {
        import_rootfs(&writer, io::stdin().lock(), &opts)
    } else {
        let file = File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
        import_rootfs(&writer, BufReader::with_capacity(1 << 20, file), &opts)
    }
    .with_context(|| format!("importing {}", args.file.display()))?;
    println!("{}", imported.image.id());
    Ok(ExitCode::SUCCESS)
}
