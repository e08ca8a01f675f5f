//! `distill base debian`: a distroless-style base image made from Debian
//! packages (signed archive index, checked .debs, no maintainer scripts),
//! with no registry.

use std::process::ExitCode;

use anyhow::{Context, bail};
use distill_image::config::{ContainerConfig, History, ImageConfig, RootFs, host_platform};
use distill_image::layer::{Compression, WriteOptions, write_layer_from_dir};
use distill_image::reference::Reference;
use distill_image::store::LayerInfo;
use distill_image::timestamp::Timestamp;
use distill_slim::debian::{BaseRequest, build_rootfs};

use super::image_common::StoreArgs;

#[derive(Debug, clap::Args)]
pub struct BaseArgs {
    #[command(subcommand)]
    pub source: BaseSource,
}

#[derive(Debug, clap::Subcommand)]
pub enum BaseSource {
    /// From Debian's archive: the packages and their dependencies, unpacked without maintainer scripts.
    Debian(DebianArgs),
}

#[derive(Debug, clap::Args)]
pub struct DebianArgs {
    /// Debian suite or codename.
    #[arg(long, default_value = "bookworm")]
    pub suite: String,
    /// Packages to install (comma-separated or repeated; `name` or `name=version`).
    #[arg(long, value_delimiter = ',', required = true)]
    pub packages: Vec<String>,
    /// Name for the image.
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tag: String,
    /// Archive root.
    #[arg(long, default_value = "http://deb.debian.org/debian")]
    pub mirror: String,
    /// Security archive root ("" to skip it).
    #[arg(long, default_value = "http://deb.debian.org/debian-security")]
    pub security_mirror: String,
    /// Do not read `<suite>-updates`.
    #[arg(long)]
    pub no_updates: bool,
    /// OpenPGP keyring the archive's InRelease must be signed with.
    #[arg(long, default_value = "/usr/share/keyrings/debian-archive-keyring.gpg")]
    pub keyring: std::path::PathBuf,
    /// Where downloads are cached, by SHA-256 [default: STORE/cache/debian].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: BaseArgs) -> anyhow::Result<ExitCode> {
    let BaseSource::Debian(args) = args.source;
    let tag = Reference::parse_normalized(&args.tag)
        .with_context(|| format!("invalid tag {:?}", args.tag))?
        .with_default_tag();
    if args.packages.is_empty() {
        bail!("--packages needs at least one package");
    }
    let store = args.store.open()?;
    let cache = args.cache_dir.clone().unwrap_or_else(|| store.root().join("cache/debian"));
    let packages: Vec<&str> = args.packages.iter().map(String::as_str).collect();
    let mut req = BaseRequest::new(&args.suite, &packages, &cache);
    req.mirror = args.mirror.clone();
    req.updates = !args.no_updates;
    req.security_mirror = Some(args.security_mirror.clone()).filter(|m| !m.is_empty());
    req.keyring = args.keyring.clone();

    let writer = store.writer()?;
    let rootfs = writer.staging_path("debian-base-")?;
    let report = build_rootfs(&req, &rootfs, |msg| eprintln!("{msg}")).context("building the root file system")?;

    let mut sink = writer.blob_sink()?;
    let created = Timestamp::source_date_epoch().unwrap_or_else(Timestamp::now);
    let opts = WriteOptions {
        compression: Compression::gzip(),
        overlay_upper: false,
        source_date_epoch: Timestamp::source_date_epoch().map(|t| t.secs),
        threads: 0,
    };
    let layer = write_layer_from_dir(&rootfs, &opts, &mut sink)?;
    writer.commit_blob(sink.finish()?, Some(&layer.digest))?;
    let (architecture, variant) = host_platform();
    let versions: Vec<String> = report.packages.iter().map(|p| format!("{}={}", p.name, p.version)).collect();
    let config = ImageConfig {
        created: Some(created.to_rfc3339()),
        architecture: architecture.to_string(),
        os: "linux".to_string(),
        variant: variant.map(str::to_string),
        config: Some(ContainerConfig {
            env: Some(vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()]),
            ..ContainerConfig::default()
        }),
        rootfs: RootFs { kind: "layers".to_string(), diff_ids: vec![layer.diff_id] },
        history: vec![History {
            created: Some(created.to_rfc3339()),
            created_by: Some(format!(
                "distill base debian --suite {} --packages {}",
                args.suite,
                args.packages.join(",")
            )),
            comment: Some(versions.join(" ")),
            ..History::default()
        }],
        ..ImageConfig::default()
    };
    let info = LayerInfo::from(&layer);
    let committed = writer.commit_image(&config, &[info], Some(&tag))?;
    let _ = std::fs::remove_dir_all(&rootfs);
    eprintln!("{} packages, {} written as {}", report.packages.len(), tag.familiar(), committed.image.config);
    println!("{}", committed.image.config);
    Ok(ExitCode::SUCCESS)
}
