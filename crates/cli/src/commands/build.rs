//! `distill build`: like `docker build`, with no daemon.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use distill_build::executor::{CancelToken, Network, SnapshotterKind};
use distill_build::progress::{self, Mode};
use distill_build::solver::{BuildError, BuildOptions, build, context_key};
use distill_image::archive::{
    ArchiveFormat, SaveItem, save_archive, save_oci_index, save_to_path, write_file_atomically,
};
use distill_image::export::export_rootfs;
use distill_image::layer::{self, ApplyOptions, Compression, WhiteoutMode, apply_layer};
use distill_image::manifest::Platform as ManifestPlatform;
use distill_image::reference::Reference;
use distill_image::store::{ImageRecord, Store};

use distill_dockerfile::plan::{Base, PlanOptions};
use distill_registry::{Client, Platform};

use super::build_context::{ContextSpec, parse_build_contexts, resolve_contexts};
use super::check::DockerfileArgs;
use super::image_common::StoreArgs;
use super::registry_common::{PullLines, PushLines, RegistryArgs};
use super::slim::{SlimOptions, print_outcome, slim_image};
use crate::render;

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub dockerfile: DockerfileArgs,
    /// Name the image (`name:tag`); may be repeated.
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// Do not use the cache: run every step.
    #[arg(long)]
    pub no_cache: bool,
    /// Always fetch base images from their registry (without it, only images missing from the store are pulled).
    #[arg(long)]
    pub pull: bool,
    /// Push the result to the registries of its `-t` names (like `--output type=registry`).
    #[arg(long)]
    pub push: bool,
    /// Progress output: auto, plain, tty, quiet or rawjson.
    #[arg(long, default_value = "auto", value_name = "MODE")]
    pub progress: Mode,
    /// Print only the image ID (like `--progress quiet`).
    #[arg(short, long)]
    pub quiet: bool,
    /// Where the result goes besides the store: `type=oci|docker,dest=FILE`, `type=tar,dest=FILE`,
    /// `type=local,dest=DIR`, or `type=image` (the default). `dest=-` is standard output for archives.
    #[arg(short, long, value_name = "type=TYPE,dest=PATH")]
    pub output: Vec<String>,
    /// Set a label on the image (`key=value`); may be repeated.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Write the image ID to this file.
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// The network RUN steps use: host (default) or none.
    #[arg(long, default_value = "host", value_name = "MODE")]
    pub network: String,
    /// OCI runtime: a name looked up in PATH or a path [default: runc].
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: Option<String>,
    /// Layer compression in the store: none (default: like Docker's image store, layers stay
    /// uncompressed locally; compression is a matter for distribution), gzip or zstd.
    #[arg(long, default_value = "none", value_name = "ALGORITHM")]
    pub compression: String,
    /// A secret for `RUN --mount=type=secret`: `id=ID,src=FILE`, `id=ID,env=VAR`, or `id=ID`
    /// (from the environment variable ID). Never stored in a layer, the cache or the history.
    #[arg(long = "secret", value_name = "id=ID,src=FILE")]
    pub secrets: Vec<String>,
    /// An SSH agent for `RUN --mount=type=ssh`: `default` ($SSH_AUTH_SOCK), `ID=SOCKET`, or
    /// `ID=KEY[,KEY…]` (private key files, served by an ssh-agent started for the build).
    #[arg(long = "ssh", value_name = "default|ID[=SOCKET|KEY[,KEY]]")]
    pub ssh: Vec<String>,
    /// A named context: `NAME=DIR`, `NAME=docker-image://REF` (pulled if missing) or
    /// `NAME=oci-layout://PATH[:TAG][@sha256:…]`. It replaces what `FROM NAME`, `COPY --from=NAME`
    /// and `RUN --mount=from=NAME` read, a stage named NAME included; may be repeated.
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub build_contexts: Vec<String>,
    /// Reduce the target stage to its runtime closure (like `distill slim`), verified: the
    /// tags, --iidfile and --output get the slim image.
    #[arg(long)]
    pub slim: bool,
    #[command(flatten)]
    pub slim_options: SlimOptions,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// A parsed `--output`.
enum Export {
    Archive {
        format: ArchiveFormat,
        dest: PathBuf,
    },
    Tar {
        dest: PathBuf,
    },
    Local {
        dest: PathBuf,
    },
    /// `type=registry` (or `type=image,push=true`): push to these names, or the `-t` names.
    Registry {
        names: Vec<String>,
    },
}

pub fn run(mut args: BuildArgs) -> anyhow::Result<ExitCode> {
    let network = match args.network.as_str() {
        "host" | "default" => Network::Host,
        "none" => Network::None,
        other => bail!("--network {other:?}: expected host or none"),
    };
    let compression = match args.compression.as_str() {
        "gzip" => Compression::gzip(),
        "zstd" => Compression::zstd(),
        "none" | "uncompressed" => Compression::None,
        other => bail!("--compression {other:?}: expected gzip, zstd or none"),
    };
    if !args.slim && args.slim_options.is_set() {
        bail!("the slim options (--keep, --probe, --trace, --entrypoint, --user, …) need --slim");
    }
    let mut exports = args.output.iter().map(|o| parse_output(o)).collect::<anyhow::Result<Vec<_>>>()?;
    if args.push {
        exports.push(Some(Export::Registry { names: Vec::new() }));
    }
    let mut tags = Vec::new();
    for t in &args.tags {
        tags.push(Reference::parse_normalized(t).with_context(|| format!("invalid tag {t:?}"))?.with_default_tag());
    }
    let mut labels = BTreeMap::new();
    for l in &args.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let contexts = parse_build_contexts(&args.build_contexts)?;
    let store = args.store.open()?;

    // `-` as the context: a tar on standard input, unpacked into the store's tmp/.
    let _stdin_context = if args.dockerfile.context.as_os_str() == "-" {
        if args.dockerfile.file.as_deref().is_some_and(|f| f.as_os_str() == "-") {
            bail!("the context and the Dockerfile cannot both come from standard input");
        }
        let dir = unpack_stdin_context(&store)?;
        args.dockerfile.context = dir.path.clone();
        Some(dir)
    } else {
        None
    };
    let dockerfile = args.dockerfile.load()?;
    // BuildKit would run the `# syntax=` frontend image; distill cannot, so
    // an unofficial one is worth a warning before anything is built.
    if let Some(warning) = distill_dockerfile::parse(&dockerfile.bytes)
        .ok()
        .and_then(|ast| ast.directives.syntax)
        .and_then(|d| distill_dockerfile::syntax::frontend_warning(&d.value))
    {
        eprintln!("WARNING: {warning}");
    }
    // `--platform a,b` builds the target once per platform (RUN steps of
    // another architecture run under qemu-user) into one multi-platform image.
    let platforms = parse_platforms(args.dockerfile.platform.take())?;
    let multi = platforms.len() > 1;
    if multi && args.slim {
        bail!("--slim reduces one image: build one --platform at a time");
    }
    if multi && exports.iter().flatten().any(|e| matches!(e, Export::Tar { .. })) {
        bail!(MULTI_TAR);
    }
    if multi && exports.iter().flatten().any(|e| matches!(e, Export::Archive { format: ArchiveFormat::Docker, .. })) {
        bail!(MULTI_DOCKER);
    }
    let mut plan = args.dockerfile.plan_options()?;
    plan.named_contexts.extend(contexts.keys().cloned());
    // Pull lines would break the JSON stream of rawjson.
    let pull_lines = PullLines::to_stderr(args.quiet || matches!(args.progress, Mode::Quiet | Mode::RawJson));
    let wants_registry = exports.iter().any(|e| matches!(e, Some(Export::Registry { .. })));
    let per_platform = |p: &distill_dockerfile::plan::Platform| {
        let mut plan = plan.clone();
        plan.target_platform = p.clone();
        plan
    };
    let mut client = if args.pull || wants_registry { Some(args.registry.client()?) } else { None };
    // Named contexts some platform's build reads.
    let mut used: Vec<String> = Vec::new();
    for p in &platforms {
        let plan = per_platform(p);
        let mut wanted = external_images(&dockerfile.bytes, &plan, &contexts);
        if client.is_none() && needs_pull(&store, &wanted, &plan) {
            client = Some(args.registry.client()?);
        }
        if let Some(client) = &client {
            pull_base_images(&store, client, &wanted, &plan, args.pull, &pull_lines)?;
        }
        // The base images' ONBUILD triggers may read more stages and images
        // (`COPY --from`): plan with them, as the builder will, and pull those too.
        let mut with_triggers = plan.clone();
        for _ in 0..=wanted.len() {
            let triggers = base_triggers(&store, &wanted);
            if triggers == with_triggers.image_onbuild {
                break;
            }
            with_triggers.image_onbuild = triggers;
            let more: Vec<Wanted> = external_images(&dockerfile.bytes, &with_triggers, &contexts)
                .into_iter()
                .filter(|w| !wanted.iter().any(|o| o.name == w.name))
                .collect();
            if client.is_none() && needs_pull(&store, &more, &plan) {
                client = Some(args.registry.client()?);
            }
            if let Some(client) = &client {
                pull_base_images(&store, client, &more, &plan, args.pull, &pull_lines)?;
            }
            wanted.extend(more);
        }
        used.extend(wanted.iter().map(|w| context_key(&w.name)));
    }
    let named_contexts = resolve_contexts(&store, &contexts, |name| used.iter().any(|u| u == name))?;
    let source_date_epoch = source_date_epoch(&plan.build_args)?;
    if let Some(sde) = source_date_epoch {
        plan.build_args.entry("SOURCE_DATE_EPOCH".to_string()).or_insert_with(|| sde.to_string());
    }
    let dockerfile_path = match &args.dockerfile.file {
        Some(f) if f.as_os_str() == "-" => None,
        Some(f) if f.is_relative() && !f.exists() => Some(args.dockerfile.context.join(f)),
        Some(f) => Some(f.clone()),
        None => Some(args.dockerfile.context.join("Dockerfile")),
    };
    // Agents started for key files live until the build is over.
    let ssh_agents = distill_build::solver::ssh::SshAgents::start(&args.ssh)?;
    let mut opts = BuildOptions {
        dockerfile: dockerfile.bytes.clone(),
        dockerfile_path,
        context_dir: args.dockerfile.context.clone(),
        plan,
        // With --slim the names go to the slim image, with several
        // platforms to their index.
        tags: if args.slim || multi { Vec::new() } else { tags.clone() },
        labels,
        no_cache: args.no_cache,
        network,
        runtime: args.runtime.clone(),
        compression,
        source_date_epoch,
        snapshotter: SnapshotterKind::from_env()?,
        secrets: parse_secrets(&args.secrets)?,
        ssh: ssh_agents.sockets(),
        named_contexts,
    };

    let mode = if args.quiet { Mode::Quiet } else { args.progress };
    let cancel = CancelToken::new();
    cancel.cancel_on_signals().context("installing signal handlers")?;
    let mut built = Vec::new();
    for (i, platform) in platforms.iter().enumerate() {
        opts.plan.target_platform = platform.clone();
        if multi && !matches!(mode, Mode::Quiet | Mode::RawJson) {
            eprintln!("building for {platform}");
        }
        let printer = progress::printer(mode, Box::new(io::stderr()));
        let result = build(&store, &opts, printer.as_ref(), &cancel);
        printer.finish();
        let output = match result {
            Ok(output) => output,
            Err(err) => {
                if multi {
                    eprint!("[{platform}] ");
                }
                eprint!("{}", render_build_error(&dockerfile.label, &dockerfile.text(), &err));
                return Ok(ExitCode::from(if err.is_cancelled() { 130 } else { 1 }));
            }
        };
        // The same findings for every platform: shown once.
        if i == 0 {
            for w in &output.warnings {
                eprintln!("WARNING: {} - {} ({}:{})", w.rule.name(), w.message, dockerfile.label, w.line);
            }
        }
        built.push(output.image);
    }
    if multi {
        return finish_multi_platform(&store, client.as_ref(), &args, &tags, &built, exports);
    }
    let mut image = built.remove(0);
    if args.slim {
        let outcome =
            slim_image(&store, &image.digest.to_string(), &args.slim_options, &tags, args.runtime.as_deref())?;
        print_outcome(&outcome, args.slim_options.report);
        image = outcome.image.record;
    }
    let id = image.config.to_string();
    if let Some(path) = &args.iidfile {
        fs::write(path, &id).with_context(|| format!("writing {}", path.display()))?;
    }
    for export in exports {
        if let Some(Export::Registry { names }) = &export {
            let client = client.as_ref().context("internal: no registry client")?;
            push_result(&store, client, &image.digest.to_string(), &tags, names, args.quiet)?;
            continue;
        }
        run_export(&store, &image.digest.to_string(), &tags, export)?;
    }
    if args.quiet {
        println!("{id}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Exports that hold one platform (as with BuildKit's docker exporter).
const MULTI_DOCKER: &str = "--output type=docker holds one platform: use type=oci for a multi-platform image";
const MULTI_TAR: &str =
    "--output type=tar holds one root file system: use type=local or type=oci with several platforms";

/// `--platform`: a comma-separated list (`linux/amd64,linux/arm64`), each
/// once; the host's platform when not given.
fn parse_platforms(spec: Option<String>) -> anyhow::Result<Vec<distill_dockerfile::plan::Platform>> {
    let Some(spec) = spec else { return Ok(vec![distill_dockerfile::plan::Platform::host()]) };
    let mut out: Vec<distill_dockerfile::plan::Platform> = Vec::new();
    for part in spec.split(',').map(str::trim) {
        let p = distill_dockerfile::plan::Platform::parse(part).map_err(|e| anyhow::anyhow!("--platform: {e}"))?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// After a multi-platform build: the index over the platforms' images,
/// tagged with the `-t` names, then the exports of the whole.
fn finish_multi_platform(
    store: &Store,
    client: Option<&Client>,
    args: &BuildArgs,
    tags: &[Reference],
    images: &[ImageRecord],
    exports: Vec<Option<Export>>,
) -> anyhow::Result<ExitCode> {
    let index = {
        let writer = store.writer()?;
        let mut entries = Vec::new();
        for record in images {
            entries.push((record.clone(), manifest_platform(store, record)?));
        }
        let committed = writer.commit_index(&entries, tags.first())?;
        for tag in tags.iter().skip(1) {
            writer.tag(&committed.image, tag)?;
        }
        committed.image
    };
    let id = index.digest.to_string();
    if let Some(path) = &args.iidfile {
        fs::write(path, &id).with_context(|| format!("writing {}", path.display()))?;
    }
    for export in exports.into_iter().flatten() {
        match export {
            Export::Registry { names } => {
                let client = client.context("internal: no registry client")?;
                for target in push_targets(tags, &names)? {
                    let pushed = client
                        .push_index(store, &index, &target, &PushLines { quiet: true })
                        .with_context(|| format!("pushing to {}", target.familiar()))?;
                    if !args.quiet {
                        eprintln!("pushed {target}@{}", pushed.digest);
                    }
                }
            }
            Export::Archive { format: ArchiveFormat::Oci, dest } => {
                if dest.as_os_str() == "-" {
                    let mut out = io::BufWriter::new(io::stdout().lock());
                    save_oci_index(store, &index.digest, tags, &mut out).context("writing the archive to stdout")?;
                    out.flush()?;
                } else {
                    write_file_atomically(&dest, |out| save_oci_index(store, &index.digest, tags, out))
                        .with_context(|| format!("saving to {}", dest.display()))?;
                }
            }
            Export::Archive { format: ArchiveFormat::Docker, .. } => bail!(MULTI_DOCKER),
            // As BuildKit does: one directory per platform (`linux_arm64/`).
            Export::Local { dest } => {
                for record in images {
                    let image = store.image(record)?;
                    let mut dir = format!("{}_{}", image.config.os, image.config.architecture);
                    if let Some(v) = &image.config.variant {
                        dir.push_str(&format!("_{v}"));
                    }
                    run_export(store, &record.digest.to_string(), tags, Some(Export::Local { dest: dest.join(dir) }))?;
                }
            }
            Export::Tar { .. } => bail!(MULTI_TAR),
        }
    }
    if args.quiet {
        println!("{id}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The names `--push` / `type=registry` push to: `name=` values, else the `-t` names.
fn push_targets(tags: &[Reference], names: &[String]) -> anyhow::Result<Vec<Reference>> {
    let mut targets = Vec::new();
    for n in names {
        targets.push(Reference::parse_normalized(n).with_context(|| format!("invalid name {n:?}"))?.with_default_tag());
    }
    if targets.is_empty() {
        targets = tags.to_vec();
    }
    if targets.is_empty() {
        bail!("pushing needs a name: give -t NAME or --output type=registry,name=NAME");
    }
    Ok(targets)
}

/// `--secret` values read now: `id=ID,src=FILE` (also `source=`), `id=ID,env=VAR`, or
/// `id=ID` alone (the environment variable ID, else the file ID), as `docker build` takes them.
fn parse_secrets(specs: &[String]) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let (mut id, mut src, mut env) = (None, None, None);
        for field in spec.split(',') {
            match field.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
                Some(("env", v)) => env = Some(v.to_string()),
                Some(("type", "file" | "env")) => {}
                _ => bail!("--secret {spec:?}: unknown field {field:?} (expected id=, src= or env=)"),
            }
        }
        let id = id.filter(|i| !i.is_empty()).with_context(|| format!("--secret {spec:?}: id= is required"))?;
        let value = match (src, env) {
            (Some(path), _) => fs::read(&path).with_context(|| format!("--secret {id}: reading {}", path.display()))?,
            (None, Some(var)) => std::env::var(&var)
                .with_context(|| format!("--secret {id}: environment variable {var} is not set"))?
                .into_bytes(),
            (None, None) => match std::env::var(&id) {
                Ok(v) => v.into_bytes(),
                Err(_) => {
                    fs::read(&id).with_context(|| format!("--secret {id}: no env variable {id} and no file {id}"))?
                }
            },
        };
        out.insert(id, value);
    }
    Ok(out)
}

/// SOURCE_DATE_EPOCH from `--build-arg` (as BuildKit takes it) or the environment.
fn source_date_epoch(build_args: &BTreeMap<String, String>) -> anyhow::Result<Option<i64>> {
    let value = build_args.get("SOURCE_DATE_EPOCH").cloned().or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok());
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => Ok(Some(v.parse().with_context(|| format!("SOURCE_DATE_EPOCH {v:?} is not a number of seconds"))?)),
    }
}

fn parse_output(spec: &str) -> anyhow::Result<Option<Export>> {
    let mut kind = None;
    let mut dest = None;
    let mut names = Vec::new();
    let mut push = false;
    for part in spec.split(',') {
        match part.split_once('=') {
            Some(("type", v)) => kind = Some(v.to_string()),
            Some(("dest", v)) => dest = Some(PathBuf::from(v)),
            Some(("name", v)) => names.push(v.to_string()),
            Some(("push", v)) => push = v == "true",
            // Docker's shorthand: `-o DIR` means type=local,dest=DIR.
            None if !spec.contains('=') => {
                kind = Some("local".to_string());
                dest = Some(PathBuf::from(part));
            }
            _ => bail!("--output {spec:?}: unknown option {part:?} (expected type=…,dest=…)"),
        }
    }
    let kind = kind.unwrap_or_else(|| "local".to_string());
    if kind == "registry" || (kind == "image" && push) {
        return Ok(Some(Export::Registry { names }));
    }
    if kind == "image" {
        return Ok(None);
    }
    let dest = dest.with_context(|| format!("--output {spec:?}: dest= is required for type={kind}"))?;
    Ok(Some(match kind.as_str() {
        "oci" => Export::Archive { format: ArchiveFormat::Oci, dest },
        "docker" => Export::Archive { format: ArchiveFormat::Docker, dest },
        "tar" => Export::Tar { dest },
        "local" => Export::Local { dest },
        other => bail!("--output type={other}: expected image, registry, oci, docker, tar or local"),
    }))
}

/// An image name the build reads and what to pull for it.
struct Wanted {
    /// As the Dockerfile names it.
    name: String,
    /// The image to pull: the name itself, or a `docker-image://` context's
    /// reference; None for other named contexts.
    pull: Option<String>,
    /// The platform its stage asks for.
    platform: Option<String>,
}

/// The images (and named contexts) the reachable stages read (FROM, `COPY --from`,
/// `RUN --mount from=`). Empty if the Dockerfile does not plan: the build itself then
/// reports why.
fn external_images(dockerfile: &[u8], plan: &PlanOptions, contexts: &BTreeMap<String, ContextSpec>) -> Vec<Wanted> {
    let Ok(p) = distill_dockerfile::plan::plan_dockerfile(dockerfile, plan) else { return Vec::new() };
    let mut out: Vec<Wanted> = Vec::new();
    for stage in p.stages.iter().filter(|s| !s.pruned) {
        let mut names: Vec<&String> = stage.external_images.iter().collect();
        if let Base::Image(name) | Base::Context(name) = &stage.base {
            names.insert(0, name);
        }
        for n in names {
            if out.iter().any(|w| &w.name == n) {
                continue;
            }
            let pull = match contexts.get(&context_key(n)) {
                Some(ContextSpec::DockerImage(r)) if r != "scratch" => Some(r.clone()),
                Some(_) => None,
                None => Some(n.clone()),
            };
            out.push(Wanted { name: n.clone(), pull, platform: stage.platform.clone() });
        }
    }
    out
}

/// The ONBUILD triggers of the images in the store the build reads, by the
/// name the Dockerfile gives them.
fn base_triggers(store: &Store, wanted: &[Wanted]) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for w in wanted {
        let Some(image) = w.pull.as_deref().and_then(|p| store.find_image(p).ok()) else { continue };
        if let Some(triggers) = image.config.config.and_then(|c| c.on_build).filter(|t| !t.is_empty()) {
            out.insert(w.name.clone(), triggers);
        }
    }
    out
}

/// The platform an image is read for: its stage's `--platform`, else the target's.
fn image_platform(platform: Option<&str>, plan: &PlanOptions) -> anyhow::Result<Platform> {
    let p = plan.target_platform.clone();
    let target = Platform { os: p.os, architecture: p.architecture, variant: p.variant };
    match platform {
        Some(p) => p.parse::<Platform>().map_err(anyhow::Error::msg),
        None => Ok(target),
    }
}

/// Whether the store lacks `name` for `platform` (not there at all, or
/// only for other platforms).
fn missing_for(store: &Store, name: &str, platform: &Platform) -> bool {
    let found = store.find_image_for_platform(name, &platform.os, &platform.architecture, platform.variant.as_deref());
    matches!(found, Err(distill_image::Error::ImageNotFound(_) | distill_image::Error::WrongPlatform { .. }))
}

/// Whether some image the build reads is missing from the store.
fn needs_pull(store: &Store, wanted: &[Wanted], plan: &PlanOptions) -> bool {
    wanted
        .iter()
        .filter_map(|w| w.pull.as_deref().map(|name| (name, w.platform.as_deref())))
        .any(|(name, platform)| image_platform(platform, plan).is_ok_and(|p| missing_for(store, name, &p)))
}

/// Pulls the images the build reads: all of them with `--pull`, else those
/// missing from the store. The solver then finds them by name, at the
/// digest printed here.
fn pull_base_images(
    store: &Store,
    client: &Client,
    wanted: &[Wanted],
    plan: &PlanOptions,
    always: bool,
    lines: &PullLines,
) -> anyhow::Result<()> {
    for w in wanted {
        let (Some(name), platform) = (w.pull.clone(), w.platform.clone()) else { continue };
        let platform = image_platform(platform.as_deref(), plan)?;
        let missing = missing_for(store, &name, &platform);
        if !always && !missing {
            continue;
        }
        // An image ID or a local-only name is not something to pull.
        let Ok(reference) = Reference::parse_normalized(&name) else { continue };
        let reference = reference.with_default_tag();
        lines.line(&format!("pulling {reference} for {platform}"));
        let writer = store.writer()?;
        // What the name holds for other platforms stays under it.
        let others = other_platforms(store, &reference, &platform)?;
        match client.pull(&writer, &reference, &platform, lines) {
            Ok(pulled) => {
                lines.line(&format!("resolved {reference} to {}", pulled.resolved));
                if !others.is_empty() {
                    let mut entries = others;
                    entries.push((pulled.image.clone(), manifest_platform(store, &pulled.image)?));
                    writer.commit_index(&entries, Some(&reference))?;
                }
            }
            // The build then fails at the instruction that names the image.
            Err(e) if missing => eprintln!("WARNING: pulling {name} failed: {e}"),
            Err(e) => return Err(anyhow::Error::new(e).context(format!("pulling {name}"))),
        }
    }
    Ok(())
}

/// The images `reference` names now for platforms other than `platform`
/// (the image it points at, or the entries of its index), with their platforms.
fn other_platforms(
    store: &Store,
    reference: &Reference,
    platform: &Platform,
) -> anyhow::Result<Vec<(ImageRecord, ManifestPlatform)>> {
    let name = reference.to_string();
    let records = match store.resolve_index(&name)? {
        Some((_, index)) => {
            let images = store.images()?;
            index.manifests.iter().filter_map(|d| images.iter().find(|i| i.digest == d.digest).cloned()).collect()
        }
        None => match store.resolve(&name) {
            Ok(record) => vec![record],
            Err(distill_image::Error::ImageNotFound(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        },
    };
    let mut out = Vec::new();
    for record in records {
        let p = manifest_platform(store, &record)?;
        if p.architecture != platform.architecture || p.os != platform.os {
            out.push((record, p));
        }
    }
    Ok(out)
}

/// The platform an image's config declares, as an index entry carries it.
fn manifest_platform(store: &Store, record: &ImageRecord) -> anyhow::Result<ManifestPlatform> {
    let image = store.image(record)?;
    Ok(ManifestPlatform {
        architecture: image.config.architecture.clone(),
        os: image.config.os.clone(),
        variant: image.config.variant.clone(),
        ..ManifestPlatform::default()
    })
}

/// `--push` / `--output type=registry`: the result to each name (the `-t` names by default).
fn push_result(
    store: &Store,
    client: &Client,
    image: &str,
    tags: &[Reference],
    names: &[String],
    quiet: bool,
) -> anyhow::Result<()> {
    let record = store.resolve(image)?;
    for target in push_targets(tags, names)? {
        let pushed = client
            .push_image(store, &record, &target, &PushLines { quiet: true })
            .with_context(|| format!("pushing to {}", target.familiar()))?;
        if !quiet {
            eprintln!("pushed {target}@{}", pushed.digest);
        }
    }
    Ok(())
}

fn run_export(store: &Store, image: &str, tags: &[Reference], export: Option<Export>) -> anyhow::Result<()> {
    let Some(export) = export else { return Ok(()) };
    let image = store.find_image(image)?;
    match export {
        Export::Archive { format, dest } => {
            let items = [SaveItem { image, names: tags.to_vec() }];
            if dest.as_os_str() == "-" {
                let mut out = io::BufWriter::new(io::stdout().lock());
                save_archive(store, &items, format, &mut out).context("writing the archive to stdout")?;
                out.flush()?;
            } else {
                save_to_path(store, &items, format, &dest).with_context(|| format!("saving to {}", dest.display()))?;
            }
        }
        Export::Tar { dest } => {
            let writer = store.writer()?;
            if dest.as_os_str() == "-" {
                let mut out = io::BufWriter::new(io::stdout().lock());
                export_rootfs(&writer, &image, &mut out).context("exporting to stdout")?;
                out.flush()?;
            } else {
                write_file_atomically(&dest, |out| export_rootfs(&writer, &image, out))
                    .with_context(|| format!("exporting to {}", dest.display()))?;
            }
        }
        Export::Local { dest } => {
            let writer = store.writer()?;
            let tar = writer.staging_path("export-")?;
            {
                let mut file = io::BufWriter::new(fs::File::create(&tar)?);
                export_rootfs(&writer, &image, &mut file)?;
                file.flush()?;
            }
            fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
            let input = BufReader::new(fs::File::open(&tar)?);
            let opts = ApplyOptions { whiteouts: WhiteoutMode::Apply, ..ApplyOptions::default() };
            apply_layer(input, &dest, &opts).with_context(|| format!("writing {}", dest.display()))?;
            let _ = fs::remove_file(&tar);
        }
        // Pushed by the caller, which holds the registry client.
        Export::Registry { .. } => {}
    }
    Ok(())
}

/// A context unpacked from stdin; removed when dropped.
struct TempContext {
    path: PathBuf,
}

impl Drop for TempContext {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

fn unpack_stdin_context(store: &Store) -> anyhow::Result<TempContext> {
    let path = store.root().join("tmp").join(format!("context-{}", std::process::id()));
    let _ = fs::remove_dir_all(&path);
    fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    let dir = TempContext { path };
    let input = layer::decompress(BufReader::new(io::stdin().lock())).context("reading the context from stdin")?;
    let opts = ApplyOptions { whiteouts: WhiteoutMode::Apply, same_owner: false };
    apply_layer(input, &dir.path, &opts).context("unpacking the context tar from standard input")?;
    Ok(dir)
}

/// A build error the way BuildKit shows one: the Dockerfile lines, then the error.
fn render_build_error(label: &str, source: &str, err: &BuildError) -> String {
    let mut out = String::new();
    if let Some((start, end)) = err.lines() {
        out.push_str(&format!("{label}:{start}\n"));
        out.push_str(&render::excerpt(source, start, end));
    }
    out.push_str(&format!("ERROR: failed to solve: {err}\n"));
    out
}
