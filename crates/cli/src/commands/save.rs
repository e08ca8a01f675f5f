//! `distill save`: images to a docker-archive or OCI archive (`docker save`).

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use distill_image::archive::{
    ArchiveFormat, SaveItem, save_archive, save_oci_index, save_to_path, write_file_atomically,
};
use distill_image::reference::Reference;

use super::image_common::{Output, StoreArgs};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// docker-archive (`docker load`, `podman load`, `skopeo … docker-archive:`)
    Docker,
    /// OCI image layout in a tar (`skopeo … oci-archive:`, `umoci`)
    Oci,
}

#[derive(Debug, clap::Args)]
pub struct SaveArgs {
    /// Images to save: names (their tags are recorded) or IDs.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Write to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Archive format.
    #[arg(long, value_enum, default_value = "docker")]
    pub format: Format,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: SaveArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    // A multi-platform image in OCI format: the index with every platform.
    if let (Format::Oci, [spec]) = (args.format, args.images.as_slice())
        && let Some((index, _)) = store.resolve_index(spec)?
    {
        let names: Vec<Reference> = Reference::parse_normalized(spec)
            .ok()
            .filter(|r| r.digest().is_none())
            .map(Reference::with_default_tag)
            .into_iter()
            .collect();
        match Output::choose(args.output, "archive")? {
            Output::File(path) => {
                write_file_atomically(&path, |out| save_oci_index(&store, &index.digest, &names, out))
                    .with_context(|| format!("saving to {}", path.display()))?
            }
            Output::Stdout => {
                let mut out = io::BufWriter::new(io::stdout().lock());
                save_oci_index(&store, &index.digest, &names, &mut out).context("saving to stdout")?;
                out.flush()?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut items: Vec<SaveItem> = Vec::new();
    for spec in &args.images {
        let record = store.resolve(spec)?;
        // A multi-platform name gives the host's image that name.
        let index_tags = store.resolve_index(spec)?.map(|(i, _)| i.tags).unwrap_or_default();
        // A name saves that tag; an ID or digest saves the image untagged.
        let name = Reference::parse_normalized(spec)
            .ok()
            .filter(|r| r.digest().is_none())
            .map(Reference::with_default_tag)
            .filter(|r| record.tags.contains(r) || index_tags.contains(r));
        match items.iter_mut().find(|i| i.image.record.digest == record.digest) {
            Some(item) => item.names.extend(name.filter(|n| !item.names.contains(n))),
            None => {
                let image = store.image(&record)?;
                items.push(SaveItem { image, names: name.into_iter().collect() });
            }
        }
    }
    let format = match args.format {
        Format::Docker => ArchiveFormat::Docker,
        Format::Oci => ArchiveFormat::Oci,
    };
    match Output::choose(args.output, "archive")? {
        Output::File(path) => {
            save_to_path(&store, &items, format, &path).with_context(|| format!("saving to {}", path.display()))?
        }
        Output::Stdout => {
            let mut out = io::BufWriter::new(io::stdout().lock());
            save_archive(&store, &items, format, &mut out).context("saving to stdout")?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
