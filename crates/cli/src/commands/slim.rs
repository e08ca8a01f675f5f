//! `distill slim IMAGE -t NAME` (and `distill build --slim`): a new image
//! from scratch holding only the runtime closure of the image's command,
//! verified by running the same probes in the fat and the slim image, with
//! an SPDX SBOM and the reason for every file stored beside it.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use distill_build::executor::{
    ActiveSnapshot, CancelToken, ExecError, RunSpec, Runtime, SnapshotterKind, Stream, resolve_user, run_split,
};
use distill_image::config::{History, ImageConfig};
use distill_image::digest::Digest;
use distill_image::layer::{Compression, WriteOptions, write_layer_from_dir};
use distill_image::manifest::{Descriptor, Manifest, media_type};
use distill_image::reference::Reference;
use distill_image::store::{Image, LayerInfo, Store, Writer};
use distill_image::timestamp::Timestamp;
use distill_slim::assemble::{NONROOT_UID, assemble};
use distill_slim::plan::{Plan, SlimRequest, plan};
use distill_slim::report::Report;
use distill_slim::sbom::{installed_packages, packages_in_slim, spdx_document};
use distill_slim::trace::Tracer;
use distill_slim::verify::{self, Mismatch, ProbeOutput};

use super::image_common::StoreArgs;

/// Media type of the stored per-file reasons (`distill explain`).
pub const EXPLAIN_MEDIA_TYPE: &str = "application/vnd.distill.slim.explain.v1+json";
pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// The slim options `distill slim` and `distill build --slim` share.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SlimOptions {
    /// Analyse (and set in the slim image) this ENTRYPOINT instead of the image's: a JSON
    /// array (`'["/app/server","--port","80"]'`) or one program path.
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// Keep this path too (a program or library with its closure, a data file, or a
    /// directory whole); may be repeated.
    #[arg(long = "keep", value_name = "PATH")]
    pub keep: Vec<String>,
    /// A command to verify with: arguments as `distill run IMAGE ARGS…` takes them (they
    /// replace CMD; the ENTRYPOINT stays). A JSON array, or words split on spaces. May be
    /// repeated. It must behave the same in the fat and the slim image.
    #[arg(long = "probe", value_name = "'ARGS'")]
    pub probes: Vec<String>,
    /// Run the probes in the fat image with file-access tracing (fanotify) and keep
    /// what they open.
    #[arg(long)]
    pub trace: bool,
    /// The slim image's user: nonroot (65532, the default unless the image sets a
    /// non-root USER), root, or UID[:GID] / NAME.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Also make NAME:TAG-debug, the slim image plus the fat image's shell and a few tools.
    #[arg(long)]
    pub debug_variant: bool,
    /// Keep time zone data (/usr/share/zoneinfo, /etc/localtime).
    #[arg(long)]
    pub tzdata: bool,
    /// Skip verification.
    #[arg(long)]
    pub no_verify: bool,
    /// Print sizes before and after, by category.
    #[arg(long)]
    pub report: bool,
    /// Seconds a probe (or a CMD that exits by itself) may run.
    #[arg(long, default_value = "20", value_name = "SECONDS")]
    pub probe_timeout: u64,
}

impl SlimOptions {
    /// Whether any option was given (they only mean something with --slim).
    pub fn is_set(&self) -> bool {
        self.entrypoint.is_some()
            || !self.keep.is_empty()
            || !self.probes.is_empty()
            || self.trace
            || self.user.is_some()
            || self.debug_variant
            || self.tzdata
            || self.no_verify
            || self.report
    }
}

#[derive(Debug, clap::Args)]
pub struct SlimArgs {
    /// The fat image (name, ID or digest).
    pub image: String,
    /// Name of the slim image (`name:tag`); may be repeated.
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    #[command(flatten)]
    pub slim: SlimOptions,
    /// OCI runtime for the probes: a name looked up in PATH or a path [default: runc].
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: SlimArgs) -> anyhow::Result<std::process::ExitCode> {
    let store = args.store.open()?;
    let tags = parse_tags(&args.tags)?;
    let outcome = slim_image(&store, &args.image, &args.slim, &tags, args.runtime.as_deref())?;
    print_outcome(&outcome, args.slim.report);
    Ok(std::process::ExitCode::SUCCESS)
}

/// The summary line (stderr) and, with `--report`, the table (stdout).
pub fn print_outcome(outcome: &SlimOutcome, report: bool) {
    let verified = match outcome.verified {
        0 => "not verified".to_string(),
        1 => "1 probe verified".to_string(),
        n => format!("{n} probes verified"),
    };
    eprintln!("slim image {}: {}; {verified}", outcome.image.record.config, outcome.report.summary());
    if report {
        println!("{}", outcome.report);
    }
}

pub fn parse_tags(tags: &[String]) -> anyhow::Result<Vec<Reference>> {
    tags.iter()
        .map(|t| {
            Reference::parse_normalized(t).with_context(|| format!("invalid tag {t:?}")).map(|r| r.with_default_tag())
        })
        .collect()
}

/// What `slim_image` made.
pub struct SlimOutcome {
    pub image: Image,
    pub report: Report,
    pub verified: usize,
}

/// Makes the slim image of `image_spec`, verifies it, and tags it.
pub fn slim_image(
    store: &Store,
    image_spec: &str,
    opts: &SlimOptions,
    tags: &[Reference],
    runtime: Option<&str>,
) -> anyhow::Result<SlimOutcome> {
    let fat = store.find_image(image_spec)?;
    let cc = fat.config.config.clone().unwrap_or_default();
    let entrypoint = match &opts.entrypoint {
        Some(e) => parse_command(e)?,
        None => cc.entrypoint.clone().unwrap_or_default(),
    };
    let cmd = cc.cmd.clone().unwrap_or_default();
    let env = cc.env.clone().unwrap_or_default();
    let workdir = cc.working_dir.clone().filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into());
    let fat_user = cc.user.clone().filter(|u| !u.is_empty()).unwrap_or_else(|| "0".into());
    let slim_user = slim_user(opts.user.as_deref(), &fat_user);
    let runtime = Runtime::resolve(runtime)?;
    let kind = SnapshotterKind::from_env()?;
    let cancel = CancelToken::new();
    cancel.cancel_on_signals().context("installing signal handlers")?;
    let timeout = Duration::from_secs(opts.probe_timeout.max(1));

    let writer = store.writer()?;
    let holder = format!("slim:{}", std::process::id());
    let result = (|| -> anyhow::Result<SlimOutcome> {
        let mut lowers = writer.prepare_snapshots(&fat, &holder)?;
        lowers.reverse();
        let runner =
            Runner { writer: &writer, runtime: &runtime, kind, cancel: &cancel, timeout, trace_required: opts.trace };
        let default_argv: Vec<String> = entrypoint.iter().chain(&cmd).cloned().collect();
        let probes: Vec<Vec<String>> =
            opts.probes.iter().map(|p| probe_argv(&entrypoint, p)).collect::<anyhow::Result<_>>()?;

        // The fat runs first: with --trace they say what to keep, and their
        // results are what the slim image must reproduce.
        let verify = !opts.no_verify;
        let mut fat_runs: Vec<(String, Vec<String>, ProbeOutput, BTreeSet<String>)> = Vec::new();
        if (verify || opts.trace) && !default_argv.is_empty() {
            let (out, opened) = runner.run(&lowers, &default_argv, &env, &workdir, &fat_user, true)?;
            // A command that does not exit by itself (a server) cannot be compared.
            if out.exit_code.is_some() {
                fat_runs.push(("the image's command".into(), default_argv.clone(), out, opened));
            }
        }
        for argv in &probes {
            let (out, opened) = runner.run(&lowers, argv, &env, &workdir, &fat_user, true)?;
            fat_runs.push((argv.join(" "), argv.clone(), out, opened));
        }
        let traced: Vec<String> = if opts.trace {
            fat_runs.iter().flat_map(|r| r.3.iter().cloned()).collect::<BTreeSet<_>>().into_iter().collect()
        } else {
            Vec::new()
        };

        let scratch = writer.staging_path("slim-")?;
        let analysed = ActiveSnapshot::prepare(kind, &lowers, &scratch.join("fat"))?;
        let fat_root = analysed.rootfs().to_path_buf();
        let mut keep = opts.keep.clone();
        let req = |keep: Vec<String>| SlimRequest {
            argv: default_argv.clone(),
            env: env.clone(),
            workdir: workdir.clone(),
            keep,
            traced: traced.clone(),
            include_tzdata: opts.tzdata,
        };
        let mut the_plan = plan(&fat_root, &req(keep.clone())).context("computing the runtime closure")?;
        for m in &the_plan.missing {
            eprintln!("warning: {m}");
        }
        let slim_dir = scratch.join("rootfs");
        let assembled = assemble(&fat_root, &the_plan, &slim_dir).context("assembling the slim root file system")?;
        the_plan.links = assembled.links;
        let report = Report::measure(&fat_root, &slim_dir);
        let packages = installed_packages(&fat_root);
        let kept_files = regular_files(&slim_dir);
        let sbom_packages = packages_in_slim(&fat_root, &packages, &kept_files);

        let mut config = slim_config(&fat.config, opts, &entrypoint, &slim_user, image_spec);
        let slim = commit_tree(&writer, &slim_dir, &mut config)?;

        let debug = if opts.debug_variant {
            let mut fat_fs = distill_slim::python::layout::RootFs::new(&fat_root);
            keep.extend(DEBUG_TOOLS.iter().filter(|t| fat_fs.is_file(t)).map(|s| s.to_string()));
            let debug_plan = plan(&fat_root, &req(keep)).context("computing the debug variant's closure")?;
            let dir = scratch.join("debug");
            assemble(&fat_root, &debug_plan, &dir).context("assembling the debug variant")?;
            let mut dconfig = config.clone();
            Some(commit_tree(&writer, &dir, &mut dconfig)?)
        } else {
            None
        };
        drop(analysed);
        let _ = fs::remove_dir_all(&scratch);

        // Verification: every fat run again in the slim image.
        let mut verified = 0;
        if verify {
            let mut slim_lowers = writer.prepare_snapshots(&slim, &holder)?;
            slim_lowers.reverse();
            let slim_env = config.config.as_ref().and_then(|c| c.env.clone()).unwrap_or_default();
            let mut failures: Vec<Mismatch> = Vec::new();
            for (label, argv, fat_out, opened) in &fat_runs {
                let (slim_out, _) = runner.run(&slim_lowers, argv, &slim_env, &workdir, &slim_user, false)?;
                if let Some(mut m) = verify::compare(label, fat_out, &slim_out) {
                    m.missing = verify::missing_from_errors(&slim_out.stderr);
                    m.missing.extend(verify::missing_from_trace(opened, &slim_root_listing(store, &slim)?));
                    failures.push(m);
                } else {
                    verified += 1;
                }
            }
            if !failures.is_empty() {
                let _ = writer.update(|tx| tx.remove_image(&slim.record.digest).map(|_| ()));
                let text: Vec<String> = failures.iter().map(ToString::to_string).collect();
                bail!("the slim image does not behave like {image_spec}:\n{}", text.join("\n"));
            }
            if fat_runs.is_empty() {
                eprintln!("note: nothing verified: the command does not exit by itself and no --probe was given");
            }
        }

        // The SBOM and the reasons, stored as an OCI referrer of the slim image.
        let created = Timestamp::reproducible_now().to_rfc3339();
        let name = tags.first().map(ToString::to_string).unwrap_or_else(|| slim.record.digest.to_string());
        let sbom = spdx_document(&name, &slim.record.digest.to_string(), &created, &sbom_packages);
        store_referrer(&writer, &slim, &sbom, &the_plan)?;
        for t in tags {
            writer.update(|tx| tx.set_tag(t, &slim.record.digest))?;
        }
        if let Some(debug) = &debug {
            for t in tags {
                let tag = format!("{}-debug", t.tag().unwrap_or("latest"));
                let r = t.with_tag(&tag)?;
                writer.update(|tx| tx.set_tag(&r, &debug.record.digest))?;
            }
        }
        let image = store.find_image(&slim.record.digest.to_string())?;
        Ok(SlimOutcome { image, report, verified })
    })();
    let _ = writer.release_snapshots(&holder);
    result
}

/// What the debug variant adds (those the fat image has).
const DEBUG_TOOLS: [&str; 8] =
    ["/bin/sh", "/bin/ls", "/bin/cat", "/usr/bin/env", "/usr/bin/id", "/bin/ps", "/usr/bin/which", "/bin/busybox"];

/// `--user`, or nonroot unless the fat image already runs as someone else than root.
fn slim_user(requested: Option<&str>, fat_user: &str) -> String {
    match requested {
        Some("nonroot") => format!("{NONROOT_UID}:{NONROOT_UID}"),
        Some(u) => u.to_string(),
        None if matches!(fat_user, "0" | "root" | "0:0" | "root:root") => format!("{NONROOT_UID}:{NONROOT_UID}"),
        None => fat_user.to_string(),
    }
}

/// A JSON array or whitespace-separated words.
fn parse_command(text: &str) -> anyhow::Result<Vec<String>> {
    let t = text.trim();
    if t.starts_with('[') {
        return serde_json::from_str(t).with_context(|| format!("{text:?} is not a JSON array of strings"));
    }
    Ok(t.split_whitespace().map(str::to_string).collect())
}

/// A probe's full argv: the entrypoint, then the probe's arguments (as `docker run IMAGE ARGS`).
fn probe_argv(entrypoint: &[String], probe: &str) -> anyhow::Result<Vec<String>> {
    let args = parse_command(probe)?;
    let argv: Vec<String> = entrypoint.iter().cloned().chain(args).collect();
    if argv.is_empty() {
        bail!("--probe {probe:?}: empty command");
    }
    Ok(argv)
}

/// The slim image's config: the fat one's container config with the new
/// user (and entrypoint), one layer, one history entry.
fn slim_config(fat: &ImageConfig, opts: &SlimOptions, entrypoint: &[String], user: &str, from: &str) -> ImageConfig {
    let mut config = fat.clone();
    let mut cc = config.config.clone().unwrap_or_default();
    cc.user = Some(user.to_string());
    if opts.entrypoint.is_some() {
        cc.entrypoint = Some(entrypoint.to_vec());
    }
    config.config = Some(cc);
    let created = Timestamp::reproducible_now().to_rfc3339();
    config.created = Some(created.clone());
    config.history = vec![History {
        created: Some(created),
        created_by: Some(format!("distill slim {from}")),
        comment: Some("runtime closure of the image's command".into()),
        ..History::default()
    }];
    config.rootfs.diff_ids.clear();
    config
}

/// Writes `dir` as the single layer of a new (untagged) image with `config`.
fn commit_tree(writer: &Writer<'_>, dir: &Path, config: &mut ImageConfig) -> anyhow::Result<Image> {
    let mut sink = writer.blob_sink()?;
    let wopts = WriteOptions {
        compression: Compression::None,
        overlay_upper: false,
        source_date_epoch: Timestamp::source_date_epoch().map(|t| t.secs),
        threads: 0,
    };
    let desc = write_layer_from_dir(dir, &wopts, &mut sink).context("writing the slim layer")?;
    let staged = sink.finish()?;
    writer.commit_blob(staged, Some(&desc.digest))?;
    let layer = LayerInfo::from(&desc);
    config.rootfs.diff_ids = vec![layer.diff_id];
    let committed = writer.commit_image(config, &[layer], None)?;
    Ok(writer.store().find_image(&committed.image.digest.to_string())?)
}

/// Stores the SBOM and the per-file reasons as an OCI artifact whose
/// subject is the slim image, kept alive by a GC root named after it.
fn store_referrer(writer: &Writer<'_>, slim: &Image, sbom: &serde_json::Value, plan: &Plan) -> anyhow::Result<()> {
    let sbom_bytes = serde_json::to_vec(sbom)?;
    let explain_bytes = serde_json::to_vec(plan)?;
    let empty = writer.put_blob(b"{}")?;
    let sbom_digest = writer.put_blob(&sbom_bytes)?;
    let explain_digest = writer.put_blob(&explain_bytes)?;
    let mut manifest = Manifest::new_oci(
        Descriptor::new(EMPTY_MEDIA_TYPE, empty, 2),
        vec![
            Descriptor::new(SPDX_MEDIA_TYPE, sbom_digest, sbom_bytes.len() as u64),
            Descriptor::new(EXPLAIN_MEDIA_TYPE, explain_digest, explain_bytes.len() as u64),
        ],
    );
    manifest.artifact_type = Some(SPDX_MEDIA_TYPE.to_string());
    manifest.subject = Some(Descriptor::new(media_type::OCI_MANIFEST, slim.record.digest, slim.record.size));
    let bytes = manifest.to_canonical_vec()?;
    let digest = writer.put_blob(&bytes)?;
    writer.update(|tx| tx.set_gc_root(&referrer_root(&slim.record.digest), &digest))?;
    Ok(())
}

/// The GC root naming the SBOM/explain artifact of a slim image.
pub fn referrer_root(image: &Digest) -> String {
    format!("slim-referrer:{image}")
}

/// A blob of the slim image's referrer artifact, by media type.
pub fn referrer_blob(store: &Store, image: &Digest, media: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let name = referrer_root(image);
    let Some((_, digest)) = store.gc_roots()?.into_iter().find(|(n, _)| *n == name) else { return Ok(None) };
    let manifest = Manifest::from_slice(&store.read_blob(&digest)?)?;
    match manifest.layers.iter().find(|l| l.media_type == media) {
        Some(d) => Ok(Some(store.read_blob(&d.digest)?)),
        None => Ok(None),
    }
}

/// Regular files of a tree, as container paths.
fn regular_files(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = fs::symlink_metadata(&p) else { continue };
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                out.insert(format!("/{}", p.strip_prefix(root).unwrap_or(&p).to_string_lossy()));
            }
        }
    }
    out
}

/// The slim image's snapshot directory (one layer), to check paths against.
fn slim_root_listing(store: &Store, slim: &Image) -> anyhow::Result<PathBuf> {
    let diff_id = slim.config.rootfs.diff_ids.first().context("the slim image has no layer")?;
    Ok(store.snapshot_path(diff_id))
}

/// Runs commands in throwaway containers of an image's layers.
struct Runner<'a> {
    writer: &'a Writer<'a>,
    runtime: &'a Runtime,
    kind: SnapshotterKind,
    cancel: &'a CancelToken,
    timeout: Duration,
    /// `--trace` was asked for: a trace that cannot start is an error (otherwise
    /// runs are traced when possible, to name what a failing slim run lacks).
    trace_required: bool,
}

impl Runner<'_> {
    /// Runs `argv` over `lowers` (top first); with `trace`, also returns the
    /// files the run opened. A run that outlives the timeout is killed and
    /// reported with no exit code.
    fn run(
        &self,
        lowers: &[PathBuf],
        argv: &[String],
        env: &[String],
        workdir: &str,
        user: &str,
        trace: bool,
    ) -> anyhow::Result<(ProbeOutput, BTreeSet<String>)> {
        let scratch = self.writer.staging_path("probe-")?;
        let result = (|| -> anyhow::Result<(ProbeOutput, BTreeSet<String>)> {
            let snap = ActiveSnapshot::prepare(self.kind, lowers, &scratch)?;
            let mut spec = RunSpec::new(argv.to_vec());
            spec.env = env.to_vec();
            spec.cwd = workdir.to_string();
            spec.user = resolve_user(snap.rootfs(), user)?;
            spec.hostname = "distill".into();
            // Only the overlay snapshotter gives the run its own file system to watch.
            let tracer = match (trace, self.kind) {
                (false, _) => None,
                (true, SnapshotterKind::Overlay) => match Tracer::start(snap.rootfs()) {
                    Ok(t) => Some(t),
                    Err(e) if self.trace_required => return Err(e.into()),
                    Err(_) => None,
                },
                (true, _) if self.trace_required => {
                    bail!("--trace needs the overlay snapshotter (DISTILL_SNAPSHOTTER=naive is set)")
                }
                (true, _) => None,
            };
            let run_cancel = CancelToken::new();
            let timed_out = Arc::new(AtomicBool::new(false));
            let done = Arc::new(AtomicBool::new(false));
            let watchdog = {
                let (rc, outer, timed_out, done, timeout) =
                    (run_cancel.clone(), self.cancel.clone(), timed_out.clone(), done.clone(), self.timeout);
                std::thread::spawn(move || {
                    let start = Instant::now();
                    while !done.load(Ordering::SeqCst) {
                        if outer.is_cancelled() {
                            rc.cancel();
                        } else if start.elapsed() >= timeout {
                            timed_out.store(true, Ordering::SeqCst);
                            rc.cancel();
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                })
            };
            let mut out = ProbeOutput::default();
            let outcome =
                run_split(self.runtime, &scratch.join("bundle"), &spec, snap.rootfs(), &run_cancel, |s, b| match s {
                    Stream::Stdout => out.stdout.extend_from_slice(b),
                    Stream::Stderr => out.stderr.extend_from_slice(b),
                });
            done.store(true, Ordering::SeqCst);
            let _ = watchdog.join();
            let opened = tracer.map(Tracer::finish).unwrap_or_default();
            match outcome {
                Ok(o) => out.exit_code = Some(o.exit_code),
                Err(ExecError::Cancelled) if timed_out.load(Ordering::SeqCst) => out.exit_code = None,
                Err(e) => return Err(e.into()),
            }
            Ok((out, opened))
        })();
        let _ = fs::remove_dir_all(&scratch);
        result
    }
}

/// `distill explain IMAGE PATH`: why the slim image holds PATH.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// A slim image (made by `distill slim` or `build --slim`).
    pub image: String,
    /// A path in it.
    pub path: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn explain(args: ExplainArgs) -> anyhow::Result<std::process::ExitCode> {
    let store = args.store.open()?;
    let image = store.find_image(&args.image)?;
    let Some(bytes) = referrer_blob(&store, &image.record.digest, EXPLAIN_MEDIA_TYPE)? else {
        bail!("{} is not a slim image made by distill (no closure record is stored with it)", args.image)
    };
    let plan: Plan = serde_json::from_slice(&bytes).context("reading the stored closure record")?;
    let path = distill_slim::python::layout::normalize(&args.path);
    let (real, crossed) = plan.resolve(&path);
    if real == path {
        println!("{path}");
    } else {
        println!("{path} → {real}");
    }
    for link in &crossed {
        let why = plan.explain(link).and_then(|r| r.first()).map_or("symlink", String::as_str);
        println!("  {link} -> {}: {why}", plan.links.get(link).map_or("?", String::as_str));
    }
    if let Some(reasons) = plan.explain(&real) {
        for r in reasons {
            println!("  {r}");
        }
    } else if let Some(why) = plan.directories.get(&real) {
        println!("  directory: {why}");
    } else if ["/etc/passwd", "/etc/group", "/tmp", "/home/nonroot"].contains(&real.as_str()) {
        println!("  accounts and /tmp every slim image has (root, nonroot 65532)");
    } else if plan.files.keys().any(|f| f.starts_with(&format!("{real}/"))) {
        println!("  directory holding kept files");
    } else {
        bail!("{path} is not in the slim image {}", args.image);
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// `distill sbom IMAGE`: the SPDX document stored with a slim image.
#[derive(Debug, clap::Args)]
pub struct SbomArgs {
    /// A slim image (made by `distill slim` or `build --slim`).
    pub image: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn sbom(args: SbomArgs) -> anyhow::Result<std::process::ExitCode> {
    let store = args.store.open()?;
    let image = store.find_image(&args.image)?;
    let Some(bytes) = referrer_blob(&store, &image.record.digest, SPDX_MEDIA_TYPE)? else {
        bail!("{} is not a slim image made by distill (no SBOM is stored with it)", args.image)
    };
    let doc: serde_json::Value = serde_json::from_slice(&bytes).context("reading the stored SBOM")?;
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(std::process::ExitCode::SUCCESS)
}
