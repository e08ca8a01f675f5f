//! `distill pull`: an image from a registry into the store (`docker pull`).

use std::process::ExitCode;

use anyhow::Context;
use distill_image::reference::Reference;
use distill_registry::Platform;

use super::image_common::StoreArgs;
use super::registry_common::{PullLines, RegistryArgs};

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The image: `name[:tag]` or `name@sha256:…` (`python` means docker.io/library/python:latest).
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub reference: String,
    /// The platform to take from a multi-platform image (`os/arch[/variant]`) [default: this machine's].
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Print only the reference.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: PullArgs) -> anyhow::Result<ExitCode> {
    let parsed = Reference::parse_normalized(&args.reference)
        .with_context(|| format!("invalid reference {:?}", args.reference))?;
    let platform = match &args.platform {
        Some(p) => p.parse::<Platform>().map_err(anyhow::Error::msg)?,
        None => Platform::host(),
    };
    let client = args.registry.client()?;
    let store = args.store.open()?;
    let lines = PullLines::new(args.quiet);
    if parsed.tag().is_none() && parsed.digest().is_none() {
        lines.line("Using default tag: latest");
    }
    let reference = parsed.with_default_tag();
    let what = reference
        .tag()
        .map(str::to_string)
        .unwrap_or_else(|| reference.digest().map(|d| d.to_string()).unwrap_or_default());
    lines.line(&format!("{what}: Pulling from {}", reference.familiar_name()));
    let writer = store.writer()?;
    let pulled = client
        .pull(&writer, &reference, &platform, &lines)
        .with_context(|| format!("pulling {}", reference.familiar()))?;
    drop(writer);
    lines.line(&format!("Digest: {}", pulled.resolved));
    if pulled.new {
        lines.line(&format!("Status: Downloaded newer image for {}", reference.familiar()));
    } else {
        lines.line(&format!("Status: Image is up to date for {}", reference.familiar()));
    }
    println!("{reference}");
    Ok(ExitCode::SUCCESS)
}
