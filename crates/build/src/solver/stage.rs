//! Building one stage: its base, then each instruction in order.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use distill_dockerfile::instructions::{
    AddInstruction, CopyInstruction, Instruction, MountKind, NetworkMode, RunInstruction, SecurityMode, Source,
};
use distill_dockerfile::plan::{Base, PlannedInstruction, PlannedStage, Platform, join_path};
use distill_image::config::{History, ImageConfig, chain_ids};
use distill_image::digest::Digest;
use distill_image::layer::{Compression, LayerDescriptor, WriteOptions, write_layer_from_dir, write_tar_from_dir};
use distill_image::manifest::Descriptor;
use distill_image::store::{ImageRecord, LayerInfo, Writer};

use super::cache::{self, CachedLayer, CachedStep, KeyBuilder};
use super::config::{self, apply_metadata, command_argv, created_by, env_pairs};
use super::error::BuildError;
use super::runmounts::{self, PreparedMounts};
use super::service::StoreHandle;
use super::{Builder, ResolvedImage, image_key, stage_platform};
use crate::context::{Context, IgnoreMatcher};
use crate::copy::{
    CopyIndex, CopyRecord, CopyRequest, Recorded, Selection, SourceFilter, SourceItem, copy_into, copy_into_with,
    seed_in_place, seed_upper, select_source, url,
};
use crate::executor::SnapshotterKind;
use crate::executor::fsutil::resolve_in_root;
use crate::executor::{ActiveSnapshot, BINFMT_DIR, Network, RunSpec, check_emulation, resolve_user, run};
use crate::progress::{Event, Stream, VertexId};

/// A stage as far as it is built.
#[derive(Debug, Clone)]
pub(crate) struct StageState {
    pub layers: Vec<LayerInfo>,
    pub config: ImageConfig,
    /// Cache key of the last step.
    pub key: Digest,
    /// CMD was set in this stage (an ENTRYPOINT after it keeps it).
    pub cmd_set: bool,
    /// Timestamp of the newest history entry with a layer: config-only
    /// entries reuse it so that unchanged rebuilds give the same image.
    pub last_created: Option<String>,
}

impl StageState {
    fn push_layer(&mut self, layer: LayerInfo) {
        self.config.rootfs.diff_ids.push(layer.diff_id);
        self.layers.push(layer);
    }
}

/// The parts of a COPY instruction the copy needs.
struct CopyParts<'i> {
    sources: &'i [Source],
    dest: &'i str,
    chown: Option<&'i str>,
    chmod: Option<&'i str>,
}

/// Where COPY/ADD read from.
enum CopySource<'b> {
    Context,
    Stage(std::sync::Arc<StageState>),
    Image(&'b ResolvedImage),
}

struct StageBuild<'a, 'b, 's> {
    b: &'b Builder<'a>,
    store: StoreHandle<'s>,
    stage: &'b PlannedStage,
    /// What the stage builds for: its `FROM --platform`, else the target's.
    platform: Platform,
    /// Step count as BuildKit shows it (`[name 2/5]`): FROM and file-system steps.
    total: usize,
    step: usize,
    /// What the COPY step being run copied, recorded with its result.
    pending_index: Option<(Digest, Vec<u64>, Vec<CopyRecord>)>,
}

pub(crate) fn build_stage<'b, 's>(
    b: &'b Builder<'_>,
    store: StoreHandle<'s>,
    stage: &'b PlannedStage,
) -> Result<StageState, BuildError> {
    let total = 1 + stage.instructions.iter().filter(|i| is_step(&i.instruction)).count();
    let platform = stage_platform(b.opts, stage);
    let mut sb = StageBuild { b, store, stage, platform, total, step: 1, pending_index: None };
    let mut state = sb.base()?;
    // Docker runs a base's ONBUILD triggers as the stage's first
    // instructions; until distill does, such a base is refused rather than
    // built differently.
    if let Some(triggers) = state.config.config.as_ref().and_then(|c| c.on_build.as_ref()).filter(|t| !t.is_empty()) {
        return Err(BuildError::step(
            stage.start_line,
            stage.end_line,
            format!(
                "the base of stage {} has ONBUILD triggers ({}): running them is not supported yet",
                stage.display_name(),
                triggers.join("; ")
            ),
        ));
    }
    for ins in &stage.instructions {
        if b.cancel.is_cancelled() {
            return Err(BuildError::Cancelled);
        }
        sb.instruction(&mut state, ins).map_err(|e| e.at(ins.start_line, ins.end_line))?;
    }
    Ok(state)
}

fn is_step(ins: &Instruction) -> bool {
    matches!(ins, Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_) | Instruction::Workdir { .. })
}

impl<'a, 'b, 's> StageBuild<'a, 'b, 's> {
    fn title(&self, text: &str) -> String {
        format!("[{} {}/{}] {}", self.stage.display_name(), self.step, self.total, text)
    }

    fn base(&mut self) -> Result<StageState, BuildError> {
        let b = self.b;
        let stage = self.stage;
        match &stage.base {
            Base::Scratch => {
                let platform = &self.platform;
                let config = config::scratch_config(&platform.os, &platform.architecture, platform.variant.as_deref());
                let mut key = KeyBuilder::new("scratch");
                key.str(&format!("{}/{}/{:?}", platform.os, platform.architecture, platform.variant));
                Ok(StageState { layers: Vec::new(), config, key: key.finish(), cmd_set: false, last_created: None })
            }
            Base::Image(name) => {
                let resolved = b
                    .images
                    .get(&image_key(name, &self.platform))
                    .ok_or_else(|| BuildError::ImageNotFound { reference: name.clone() })?;
                let id = b.vertex();
                let title = self.title(&format!("FROM {name}"));
                b.progress.event(Event::Started { id, name: title });
                b.progress.event(Event::Completed { id, error: None });
                let mut key = KeyBuilder::new("image");
                key.digest(&resolved.image.record.digest);
                let config = resolved.image.config.clone();
                let last_created = config.created.clone();
                Ok(StageState {
                    layers: resolved.layers.clone(),
                    config,
                    key: key.finish(),
                    cmd_set: false,
                    last_created,
                })
            }
            Base::Stage(parent) => {
                let state = b
                    .board
                    .wait(*parent, b.cancel)
                    .ok_or_else(|| BuildError::DependencyFailed { stage: stage.display_name() })?;
                let mut state = (*state).clone();
                state.cmd_set = false;
                Ok(state)
            }
        }
    }

    fn instruction(&mut self, state: &mut StageState, ins: &PlannedInstruction) -> Result<(), BuildError> {
        let text = ins.text();
        let mut key = KeyBuilder::new("step");
        key.digest(&state.key).digest(&self.b.salt);
        let repr = serde_json::to_vec(&ins.instruction).map_err(|e| BuildError::Internal(e.to_string()))?;
        key.part(&repr);
        let history_by = created_by(state.config.config.as_ref(), &ins.instruction, &text);
        match &ins.instruction {
            Instruction::Run(run) => {
                unsupported_run(run)?;
                let args = serde_json::to_vec(&*ins.args).map_err(|e| BuildError::Internal(e.to_string()))?;
                key.part(&args).str(&format!("{:?}", self.b.opts.network));
                // What bind mounts read is an input like COPY's sources.
                for m in run.mounts.iter().filter(|m| m.kind == MountKind::Bind) {
                    let source = self.copy_source(m.from.as_deref())?;
                    let path = m.source.clone().unwrap_or_else(|| ".".into());
                    self.source_key(&mut key, &source, &[Source::Path(path)], &SourceFilter::default())?;
                }
                self.step += 1;
                let title = self.title(&text);
                self.layer_step(state, key.finish(), title, history_by, |this, state, id| this.run(state, ins, run, id))
            }
            Instruction::Copy(copy) => {
                unsupported_copy(copy)?;
                let source = self.copy_source(copy.from.as_deref())?;
                // The step without its sources' content: what an incremental
                // COPY looks its previous result up by.
                let identity = {
                    let mut k = key.clone();
                    k.str("copy-identity");
                    k.finish()
                };
                let filter = SourceFilter::new(&copy.exclude, copy.parents)?;
                let selections = self.source_key(&mut key, &source, &copy.sources, &filter)?;
                // Incremental copies record plain selections; filtered ones copy in full.
                let plain = copy.exclude.is_empty() && !copy.parents;
                let incremental = selections.filter(|_| plain).map(|s| (identity, s));
                self.step += 1;
                let title = self.title(&text);
                self.layer_step(state, key.finish(), title, history_by, |this, state, id| {
                    let req = CopyParts {
                        sources: &copy.sources,
                        dest: &copy.dest,
                        chown: copy.chown.as_deref(),
                        chmod: copy.chmod.as_deref(),
                    };
                    match incremental {
                        Some((identity, selections)) => {
                            let selected = selections.iter().map(|s| s.len() as u64).collect();
                            let (upper, records) = this.copy_recorded(state, &req, &identity, selections, id)?;
                            this.pending_index = Some((identity, selected, records));
                            Ok(upper)
                        }
                        None => this.copy(
                            state,
                            &source,
                            req.sources,
                            req.dest,
                            req.chown,
                            req.chmod,
                            false,
                            (&copy.exclude, copy.parents),
                        ),
                    }
                })
            }
            Instruction::Add(add) => {
                unsupported_add(add)?;
                let filter = SourceFilter::new(&add.exclude, false)?;
                let has_url = add.sources.iter().any(|s| matches!(s, Source::Path(p) if url::is_url(p)));
                if !has_url {
                    if add.checksum.is_some() {
                        return Err(BuildError::Internal(
                            "ADD --checksum can't be specified for non-HTTP(S) sources".into(),
                        ));
                    }
                    let source = CopySource::Context;
                    let _ = self.source_key(&mut key, &source, &add.sources, &filter)?;
                    self.step += 1;
                    let title = self.title(&text);
                    // `--unpack=false` copies local archives as they are.
                    let unpack = add.unpack.unwrap_or(true);
                    return self.layer_step(state, key.finish(), title, history_by, |this, state, _| {
                        this.copy(
                            state,
                            &source,
                            &add.sources,
                            &add.dest,
                            add.chown.as_deref(),
                            add.chmod.as_deref(),
                            unpack,
                            (&add.exclude, false),
                        )
                    });
                }
                let checksum = add.checksum.as_deref().map(url::Checksum::parse).transpose()?;
                let staging = self.scratch("add-url-")?;
                let result = self.add_with_urls(state, add, &filter, checksum, &staging, key, text, history_by);
                let _ = fs::remove_dir_all(&staging);
                result
            }
            Instruction::Workdir { path } => {
                let current = state.config.config.as_ref().and_then(|c| c.working_dir.clone());
                let dir = join_path(current.as_deref().unwrap_or("/"), path);
                config::container(&mut state.config).working_dir = Some(dir.clone());
                key.str(&dir);
                self.step += 1;
                let title = self.title(&text);
                self.layer_step(state, key.finish(), title, history_by, |this, state, _| this.workdir(state, &dir))
            }
            other => {
                apply_metadata(&mut state.config, other, &mut state.cmd_set);
                let created =
                    self.b.opts.source_date_epoch.map(|_| self.b.now()).or_else(|| state.last_created.clone());
                state.config.history.push(History {
                    created: created.or_else(|| Some(self.b.now())),
                    created_by: Some(history_by),
                    comment: Some("buildkit.dockerfile.v0".into()),
                    empty_layer: true,
                    ..History::default()
                });
                state.key = key.finish();
                Ok(())
            }
        }
    }

    /// A step that may change the file system: answered from the cache, or
    /// run by `exec`, which returns the diff (an upper directory) if any.
    fn layer_step(
        &mut self,
        state: &mut StageState,
        key: Digest,
        title: String,
        history_by: String,
        exec: impl FnOnce(&mut Self, &StageState, VertexId) -> Result<Option<PathBuf>, BuildError>,
    ) -> Result<(), BuildError> {
        let b = self.b;
        let id = b.vertex();
        let store_key = cache::store_key(&key);
        let hit = if b.opts.no_cache { None } else { self.cached(&store_key)? };
        let step = match hit {
            Some(step) => {
                b.progress.event(Event::Cached { id, name: title });
                b.cached.fetch_add(1, Ordering::Relaxed);
                step
            }
            None => {
                b.progress.event(Event::Started { id, name: title });
                let created = b.now();
                self.pending_index = None;
                let result = exec(self, state, id).and_then(|upper| {
                    let index = self.pending_index.take();
                    self.commit_diff(state, upper, id, store_key, created.clone(), index)
                });
                let layer = match result {
                    Ok(layer) => layer,
                    Err(e) => {
                        b.progress.event(Event::Completed { id, error: Some(e.to_string()) });
                        return Err(e);
                    }
                };
                let step = CachedStep { layer: layer.as_ref().map(CachedLayer::from), created };
                b.executed.fetch_add(1, Ordering::Relaxed);
                b.progress.event(Event::Completed { id, error: None });
                step
            }
        };
        if let Some(layer) = &step.layer {
            state.push_layer(LayerInfo::from(layer));
        }
        state.config.history.push(History {
            created: Some(step.created.clone()),
            created_by: Some(history_by),
            comment: Some("buildkit.dockerfile.v0".into()),
            empty_layer: step.layer.is_none(),
            ..History::default()
        });
        state.last_created = Some(step.created);
        state.key = key;
        Ok(())
    }

    /// A recorded step whose layer is still in the store.
    fn cached(&self, store_key: &str) -> Result<Option<CachedStep>, BuildError> {
        let store_key = store_key.to_string();
        self.store.with(move |w| {
            let Some(value) = w.store().build_cache_get(&store_key)? else { return Ok(None) };
            let Ok(step) = serde_json::from_str::<CachedStep>(&value) else { return Ok(None) };
            Ok(match &step.layer {
                Some(l) if !w.store().has_blob(&l.digest) => None,
                _ => Some(step),
            })
        })
    }

    /// Snapshot directories of `layers`, top-most first (overlayfs order),
    /// extracting those that are missing.
    fn lowers(&self, layers: &[LayerInfo]) -> Result<Vec<PathBuf>, BuildError> {
        if layers.is_empty() {
            return Ok(Vec::new());
        }
        let descs: Vec<Descriptor> = layers.iter().map(|l| Descriptor::new(&l.media_type, l.digest, l.size)).collect();
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id).collect();
        let mut dirs = self.store.with(move |w| w.prepare_layer_snapshots(&descs, &diff_ids, cache::CACHE_HOLDER))?;
        dirs.reverse();
        Ok(dirs)
    }

    fn scratch(&self, prefix: &'static str) -> Result<PathBuf, BuildError> {
        self.store.with(move |w| w.staging_path(prefix))
    }

    /// A writable snapshot over the stage's layers so far.
    fn snapshot(&self, layers: &[LayerInfo]) -> Result<(ActiveSnapshot, PathBuf), BuildError> {
        let lowers = self.lowers(layers)?;
        let scratch = self.scratch("step-")?;
        let snap = ActiveSnapshot::prepare(self.b.opts.snapshotter, &lowers, &scratch)?;
        Ok((snap, scratch))
    }

    fn run(
        &self,
        state: &StageState,
        ins: &PlannedInstruction,
        run_ins: &RunInstruction,
        id: VertexId,
    ) -> Result<Option<PathBuf>, BuildError> {
        let b = self.b;
        let runtime = b.runtime()?;
        // Another architecture runs under qemu-user, or not at all.
        check_emulation(Path::new(BINFMT_DIR), &self.platform.os, &self.platform.architecture)?;
        let cc = state.config.config.as_ref();
        let (snap, scratch) = self.snapshot(&state.layers)?;
        let mut mounts = PreparedMounts::default();
        let argv = if run_ins.heredocs.is_empty() {
            command_argv(cc, &run_ins.command)
        } else {
            runmounts::heredoc_argv(cc, run_ins, &scratch, &mut mounts.mounts)?
        };
        if argv.is_empty() {
            return Err(BuildError::step(ins.start_line, ins.end_line, "RUN needs a command"));
        }
        self.prepare_mounts(run_ins, &scratch, &mut mounts).map_err(|e| match e {
            BuildError::Internal(message) => BuildError::step(ins.start_line, ins.end_line, message),
            other => other,
        })?;
        let mut spec = RunSpec::new(argv.clone());
        // Build args are in RUN's environment, under ENV of the same name.
        let env = env_pairs(cc);
        let mut lines: Vec<String> = ins
            .args
            .iter()
            .filter(|(k, _)| !env.iter().any(|(e, _)| e == k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        lines.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        lines.extend(mounts.env.iter().cloned());
        spec.env = lines;
        spec.mounts = mounts.mounts.clone();
        spec.cwd = cc.and_then(|c| c.working_dir.clone()).filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into());
        let user = cc.and_then(|c| c.user.clone()).filter(|u| !u.is_empty()).unwrap_or_else(|| "0".into());
        spec.user = resolve_user(snap.rootfs(), &user)?;
        spec.network = match run_ins.network {
            NetworkMode::Default => b.opts.network,
            NetworkMode::None => Network::None,
            NetworkMode::Host => Network::Host,
        };
        let outcome = run(runtime, &scratch.join("bundle"), &spec, snap.rootfs(), b.cancel, |bytes| {
            b.progress.event(Event::Log { id, stream: Stream::Stdout, data: bytes.to_vec() })
        })?;
        // Unmount bind views, drop cache locks, before the diff is taken.
        drop(mounts);
        if !outcome.success() {
            return Err(BuildError::Step {
                start_line: ins.start_line,
                end_line: ins.end_line,
                message: format!(
                    "process \"{}\" did not complete successfully: exit code: {}",
                    argv.join(" "),
                    outcome.exit_code
                ),
                output_tail: outcome.output_tail,
            });
        }
        Ok(Some(snap.commit()?))
    }

    /// Sets up the `--mount`s of a RUN (see [`runmounts`]).
    fn prepare_mounts(
        &self,
        run_ins: &RunInstruction,
        scratch: &Path,
        out: &mut PreparedMounts,
    ) -> Result<(), BuildError> {
        let b = self.b;
        for (i, m) in run_ins.mounts.iter().enumerate() {
            runmounts::check_supported(m)?;
            match m.kind {
                MountKind::Tmpfs => out.mounts.push(runmounts::tmpfs(m)?),
                MountKind::Cache => {
                    let root = self.store.with(|w| Ok(w.store().root().to_path_buf()))?;
                    runmounts::cache(m, &root, scratch, out)?;
                }
                MountKind::Secret => runmounts::secret(m, &b.opts.secrets, scratch, out)?,
                MountKind::Bind => {
                    // A throwaway overlay view, so that `rw` writes go nowhere.
                    let lowers = match self.copy_source(m.from.as_deref())? {
                        CopySource::Context => vec![b.opts.context_dir.clone()],
                        CopySource::Stage(state) => self.lowers(&state.layers)?,
                        CopySource::Image(image) => self.lowers(&image.layers)?,
                    };
                    let view =
                        ActiveSnapshot::prepare(b.opts.snapshotter, &lowers, &scratch.join(format!("bind-{i}")))?;
                    out.mounts.push(runmounts::bind_from(m, view.rootfs())?);
                    out.snapshots.push(view);
                }
                MountKind::Ssh => {}
            }
        }
        Ok(())
    }

    /// ADD with http(s) sources. As BuildKit, the key holds each URL with
    /// `--checksum` when given (a cache hit then downloads nothing), else
    /// with the digest of the content, downloaded first.
    #[allow(clippy::too_many_arguments)]
    fn add_with_urls(
        &mut self,
        state: &mut StageState,
        add: &AddInstruction,
        filter: &SourceFilter,
        checksum: Option<url::Checksum>,
        staging: &Path,
        mut key: KeyBuilder,
        text: String,
        history_by: String,
    ) -> Result<(), BuildError> {
        let locals: Vec<Source> =
            add.sources.iter().filter(|s| !matches!(s, Source::Path(p) if url::is_url(p))).cloned().collect();
        let urls: Vec<&str> = add
            .sources
            .iter()
            .filter_map(|s| match s {
                Source::Path(p) if url::is_url(p) => Some(p.as_str()),
                _ => None,
            })
            .collect();
        if add.sources.len() > 1 && !is_dir_syntax(&add.dest) {
            return Err(crate::copy::CopyError::MultipleSourcesNeedDirectory {
                instruction: "ADD",
                dest: add.dest.clone(),
                count: add.sources.len(),
            }
            .into());
        }
        self.source_key(&mut key, &CopySource::Context, &locals, filter)?;
        let mut downloads: Vec<Option<url::Downloaded>> = Vec::new();
        for (i, u) in urls.iter().enumerate() {
            key.str("url").str(u);
            match &checksum {
                Some(c) => {
                    key.str(c.as_str());
                    downloads.push(None);
                }
                None => {
                    let d = url::download(u, &staging.join(i.to_string()), None)?;
                    key.str(&d.digest);
                    downloads.push(Some(d));
                }
            }
        }
        self.step += 1;
        let title = self.title(&text);
        self.layer_step(state, key.finish(), title, history_by, |this, state, _| {
            let workdir =
                state.config.config.as_ref().and_then(|c| c.working_dir.clone()).unwrap_or_else(|| "/".into());
            let (snap, _) = this.snapshot(&state.layers)?;
            let base = CopyRequest {
                sources: Vec::new(),
                dest: &add.dest,
                workdir: &workdir,
                chown: add.chown.as_deref(),
                chmod: add.chmod.as_deref(),
                add: add.unpack.unwrap_or(true),
                keep_owner: false,
                exclude: &add.exclude,
                parents: false,
            };
            if !locals.is_empty() {
                copy_into(
                    &this.b.context,
                    &CopyRequest { sources: source_items(&locals), ..base.clone() },
                    snap.rootfs(),
                )?;
            }
            for (i, (u, d)) in urls.iter().zip(downloads).enumerate() {
                let d = match d {
                    Some(d) => d,
                    None => url::download(u, &staging.join(i.to_string()), checksum.as_ref())?,
                };
                let dir = d.path.parent().unwrap_or(staging);
                let ctx = Context::open(dir, IgnoreMatcher::empty())?;
                // Remote archives stay archives unless `--unpack=true`.
                let req = CopyRequest {
                    sources: vec![SourceItem::Pattern(literal_pattern(&d.name))],
                    add: add.unpack.unwrap_or(false),
                    exclude: &[],
                    ..base.clone()
                };
                copy_into(&ctx, &req, snap.rootfs())?;
            }
            Ok(Some(snap.commit()?))
        })
    }

    fn copy_source(&self, from: Option<&str>) -> Result<CopySource<'b>, BuildError> {
        let Some(from) = from else { return Ok(CopySource::Context) };
        let b = self.b;
        let lower = from.to_ascii_lowercase();
        let by_name = b.plan.stages.iter().position(|s| s.name.as_deref() == Some(lower.as_str()));
        let by_index = from.parse::<usize>().ok().filter(|&i| i < b.plan.stages.len());
        if let Some(index) = by_name.or(by_index) {
            let state = b
                .board
                .wait(index, b.cancel)
                .ok_or_else(|| BuildError::DependencyFailed { stage: self.stage.display_name() })?;
            return Ok(CopySource::Stage(state));
        }
        let image = b
            .images
            .get(&image_key(from, &self.platform))
            .ok_or_else(|| BuildError::ImageNotFound { reference: from.to_string() })?;
        Ok(CopySource::Image(image))
    }

    /// Mixes what COPY/ADD read into the key: context content digests, or
    /// the source stage's key, or the source image. `--exclude`/`--parents`
    /// select the same entries as the copy, so files they leave out do not
    /// change the key. For a copy of context paths only (no heredocs),
    /// returns what each source selected, so that the copy does not walk the
    /// context a second time.
    fn source_key(
        &self,
        key: &mut KeyBuilder,
        source: &CopySource<'_>,
        sources: &[Source],
        filter: &SourceFilter,
    ) -> Result<Option<Vec<Vec<crate::context::Entry>>>, BuildError> {
        match source {
            CopySource::Context => {
                let ctx = &self.b.context;
                let mut selected = Vec::new();
                for src in sources {
                    if let Source::Path(pattern) = src {
                        let entries = select_source(ctx, pattern, filter)?;
                        key.str(pattern).str(&ctx.content_digest(&entries)?);
                        selected.push(entries);
                    }
                }
                Ok((selected.len() == sources.len()).then_some(selected))
            }
            CopySource::Stage(state) => {
                key.str("stage").digest(&state.key);
                Ok(None)
            }
            CopySource::Image(image) => {
                key.str("image").digest(&image.image.record.digest);
                Ok(None)
            }
        }
    }

    /// COPY from the build context, recording what it copied (the copy
    /// index) and, when this step ran before with other sources, starting
    /// from that result: unchanged files are hard-linked from its snapshot
    /// instead of copied (see `copy::index`). Gives the same diff as a full
    /// copy; `--no-cache` and the naive snapshotter always copy in full.
    fn copy_recorded(
        &self,
        state: &StageState,
        parts: &CopyParts<'_>,
        identity: &Digest,
        selected: Vec<Vec<crate::context::Entry>>,
        id: VertexId,
    ) -> Result<(Option<PathBuf>, Vec<CopyRecord>), BuildError> {
        let b = self.b;
        let ctx = &b.context;
        let mut selections = Vec::with_capacity(selected.len());
        for entries in selected {
            let digests = ctx.file_digests(&entries)?;
            selections.push(Selection { entries, digests });
        }
        let workdir = state.config.config.as_ref().and_then(|c| c.working_dir.clone()).unwrap_or_else(|| "/".into());
        let req = CopyRequest {
            sources: source_items(parts.sources),
            dest: parts.dest,
            workdir: &workdir,
            chown: parts.chown,
            chmod: parts.chmod,
            add: false,
            keep_owner: false,
            // Only unfiltered copies are incremental (see the COPY arm).
            exclude: &[],
            parents: false,
        };
        let previous = if b.opts.no_cache || b.opts.snapshotter != SnapshotterKind::Overlay {
            None
        } else {
            self.previous_copy(state, identity)?
        };
        if let Some((old_upper, chain_id, old)) = previous {
            let scratch = self.scratch("step-")?;
            let upper = scratch.join("upper");
            fs::create_dir_all(&scratch)
                .map_err(|e| BuildError::Internal(format!("creating {}: {e}", scratch.display())))?;
            // The previous result itself when nothing else uses it (no copy
            // at all), else hard links to its files.
            let dest = upper.clone();
            let taken =
                self.store.with(move |w| w.take_snapshot(&chain_id, cache::CACHE_HOLDER, &dest)).unwrap_or(false);
            // Any failure to seed (an unexplained old upper dir, an I/O
            // error) only costs the shortcut: the copy is then done in full.
            let reuse = if taken {
                seed_in_place(&upper, &old, &selections).ok().flatten()
            } else {
                fs::create_dir(&upper)
                    .map_err(|e| BuildError::Internal(format!("creating {}: {e}", upper.display())))?;
                seed_upper(&old_upper, &upper, &old, &selections).ok().flatten()
            };
            if let Some(reuse) = reuse {
                let lowers = self.lowers(&state.layers)?;
                let snap = ActiveSnapshot::prepare_seeded(&lowers, &scratch)?;
                let recorded = Recorded { selections: &selections, reuse: Some(&reuse) };
                let (_, records) = copy_into_with(ctx, &req, snap.rootfs(), Some(recorded))?;
                if reuse.all_claimed(&records) {
                    b.progress.event(Event::Status {
                        id,
                        text: format!(
                            "incremental: {} of {} files kept from the previous result ({})",
                            reuse.len(),
                            records.iter().filter(|r| r.kind == crate::context::EntryKind::File).count(),
                            if taken { "taken over" } else { "hard-linked" }
                        ),
                    });
                    let upper = snap.commit()?;
                    return Ok((Some(upper), records));
                }
                // The seeded dir holds a path this copy did not write: a
                // full copy would not have it. Start over.
            }
            let _ = fs::remove_dir_all(&scratch);
        }
        let (snap, _) = self.snapshot(&state.layers)?;
        let recorded = Recorded { selections: &selections, reuse: None };
        let (_, records) = copy_into_with(ctx, &req, snap.rootfs(), Some(recorded))?;
        Ok((Some(snap.commit()?), records))
    }

    /// The snapshot and copy index of the last result of the COPY step
    /// `identity` over this very parent chain, if still in the store.
    #[allow(clippy::type_complexity)]
    fn previous_copy(
        &self,
        state: &StageState,
        identity: &Digest,
    ) -> Result<Option<(PathBuf, Digest, CopyIndex)>, BuildError> {
        let index_key = cache::copy_index_key(identity);
        let mut diff_ids: Vec<Digest> = state.layers.iter().map(|l| l.diff_id).collect();
        self.store.with(move |w| {
            let store = w.store();
            let Some(bytes) = store.build_cache_get_blob(&index_key)? else { return Ok(None) };
            let Some(index) = CopyIndex::decode(&bytes) else { return Ok(None) };
            let Some(value) = store.build_cache_get(&index.step_key).ok().flatten() else { return Ok(None) };
            let Ok(step) = serde_json::from_str::<CachedStep>(&value) else { return Ok(None) };
            let Some(layer) = step.layer else { return Ok(None) };
            diff_ids.push(layer.diff_id);
            let chain = chain_ids(&diff_ids);
            let Some(chain_id) = chain.last() else { return Ok(None) };
            if store.snapshot(chain_id)?.is_none() {
                return Ok(None);
            }
            let path = store.snapshot_path(chain_id);
            Ok(path.is_dir().then_some((path, *chain_id, index)))
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn copy(
        &self,
        state: &StageState,
        source: &CopySource<'_>,
        sources: &[Source],
        dest: &str,
        chown: Option<&str>,
        chmod: Option<&str>,
        add: bool,
        (exclude, parents): (&[String], bool),
    ) -> Result<Option<PathBuf>, BuildError> {
        let workdir = state.config.config.as_ref().and_then(|c| c.working_dir.clone()).unwrap_or_else(|| "/".into());
        let keep_owner = !matches!(source, CopySource::Context);
        let req = CopyRequest {
            sources: source_items(sources),
            dest,
            workdir: &workdir,
            chown,
            chmod,
            add,
            keep_owner,
            exclude,
            parents,
        };
        // Another stage or image is read through a throwaway overlay of its layers.
        let source_view = match source {
            CopySource::Context => None,
            CopySource::Stage(s) => Some(self.snapshot(&s.layers)?),
            CopySource::Image(i) => Some(self.snapshot(&i.layers)?),
        };
        let view_context;
        let src_ctx: &Context = match &source_view {
            None => &self.b.context,
            Some((snap, _)) => {
                view_context = Context::open(snap.rootfs(), IgnoreMatcher::empty())?;
                &view_context
            }
        };
        let (snap, _) = self.snapshot(&state.layers)?;
        copy_into(src_ctx, &req, snap.rootfs())?;
        drop(source_view);
        Ok(Some(snap.commit()?))
    }

    /// WORKDIR creates its directory (owned by the stage's USER, as BuildKit does).
    fn workdir(&self, state: &StageState, dir: &str) -> Result<Option<PathBuf>, BuildError> {
        let (snap, _) = self.snapshot(&state.layers)?;
        let rel = resolve_in_root(snap.rootfs(), dir)
            .map_err(|e| BuildError::Internal(format!("resolving WORKDIR {dir}: {e}")))?;
        let path = snap.rootfs().join(rel);
        if fs::symlink_metadata(&path).is_err() {
            fs::create_dir_all(&path).map_err(|e| BuildError::Internal(format!("creating WORKDIR {dir}: {e}")))?;
            let user = state.config.config.as_ref().and_then(|c| c.user.clone()).filter(|u| !u.is_empty());
            if let Some(user) = user {
                let spec = resolve_user(snap.rootfs(), &user)?;
                std::os::unix::fs::chown(&path, Some(spec.uid), Some(spec.gid))
                    .map_err(|e| BuildError::Internal(format!("chown WORKDIR {dir}: {e}")))?;
            }
        }
        Ok(Some(snap.commit()?))
    }

    /// Turns a step's upper directory into a layer blob and a snapshot.
    /// The cache entry for the step is recorded in the same transaction.
    fn commit_diff(
        &self,
        state: &StageState,
        upper: Option<PathBuf>,
        id: VertexId,
        store_key: String,
        created: String,
        index: Option<(Digest, Vec<u64>, Vec<CopyRecord>)>,
    ) -> Result<Option<LayerInfo>, BuildError> {
        let scratch = upper.as_deref().and_then(Path::parent).map(Path::to_path_buf);
        let upper = upper.filter(|u| fs::read_dir(u).map(|mut d| d.next().is_some()).unwrap_or(true));
        let Some(upper) = upper else {
            if let Some(s) = scratch {
                let _ = fs::remove_dir_all(s);
            }
            // Nothing changed: no layer, as BuildKit does.
            let record = serde_json::to_string(&CachedStep { layer: None, created })
                .map_err(|e| BuildError::Internal(e.to_string()))?;
            self.store.with(move |w| w.update(|tx| tx.put_build_cache(&store_key, &record)))?;
            return Ok(None);
        };
        let b = self.b;
        let mut sink = self.store.with(|w| w.blob_sink())?;
        let opts = WriteOptions {
            compression: b.opts.compression,
            overlay_upper: true,
            source_date_epoch: b.opts.source_date_epoch,
            threads: 0,
        };
        let (desc, staged) = if opts.compression == Compression::None {
            // The sink hashes what it stores: for an uncompressed layer
            // that is the diff_id and the digest at once, one pass.
            let size = write_tar_from_dir(&upper, &opts, &mut sink)?;
            let staged = sink.finish()?;
            let desc = LayerDescriptor {
                diff_id: staged.digest,
                digest: staged.digest,
                size,
                uncompressed_size: size,
                media_type: opts.compression.media_type().to_string(),
            };
            (desc, staged)
        } else {
            let desc = write_layer_from_dir(&upper, &opts, &mut sink)?;
            (desc, sink.finish()?)
        };
        b.progress.event(Event::Status {
            id,
            text: format!("writing layer {} {}", short(&desc.digest), human_size(desc.size)),
        });
        let layer = LayerInfo::from(&desc);
        let mut diff_ids: Vec<Digest> = state.layers.iter().map(|l| l.diff_id).collect();
        diff_ids.push(layer.diff_id);
        let chain = chain_ids(&diff_ids);
        let chain_id = chain[chain.len() - 1];
        let parent = chain.len().checked_sub(2).map(|i| chain[i]);
        let info = layer.clone();
        let record = serde_json::to_string(&CachedStep { layer: Some(CachedLayer::from(&layer)), created })
            .map_err(|e| BuildError::Internal(e.to_string()))?;
        // What this COPY copied, for the next build of the same step.
        let index = index.map(|(identity, selected, records)| {
            let index = CopyIndex { step_key: store_key.clone(), selected, records };
            (cache::copy_index_key(&identity), index.encode())
        });
        self.store.with(move |w: &Writer<'_>| {
            w.commit_blob(staged, Some(&info.digest))?;
            w.place_snapshot(&upper, &chain_id)?;
            w.update(|tx| {
                tx.put_layer(&info)?;
                tx.set_gc_root(&cache::layer_root_name(&info.digest), &info.digest)?;
                tx.record_snapshot(&chain_id, parent.as_ref(), &info.diff_id, cache::CACHE_HOLDER)?;
                if let Some((key, bytes)) = &index {
                    tx.put_build_cache_blob(key, bytes)?;
                }
                tx.put_build_cache(&store_key, &record)
            })
        })?;
        if let Some(s) = scratch {
            let _ = fs::remove_dir_all(s);
        }
        Ok(Some(layer))
    }
}

fn source_items(sources: &[Source]) -> Vec<SourceItem> {
    sources
        .iter()
        .map(|s| match s {
            Source::Path(p) => SourceItem::Pattern(p.clone()),
            Source::Heredoc { name, content, .. } => {
                SourceItem::Heredoc { name: name.clone(), content: content.clone() }
            }
        })
        .collect()
}

/// A destination written as a directory (`dir/`, `dir/.`, `.`).
fn is_dir_syntax(dest: &str) -> bool {
    dest.is_empty() || dest == "." || dest.ends_with('/') || dest.ends_with("/.")
}

/// A source pattern matching the file `name` (alone in its directory):
/// glob characters become `?`, which matches them too, so that a URL's
/// file name is never read as a wildcard.
fn literal_pattern(name: &str) -> String {
    name.chars().map(|c| if matches!(c, '*' | '?' | '[' | '\\') { '?' } else { c }).collect()
}

fn not_supported(what: &str) -> BuildError {
    BuildError::Internal(format!(
        "{what} is not supported yet (BuildKit extensions arrive in a later version of distill)"
    ))
}

fn unsupported_run(run: &RunInstruction) -> Result<(), BuildError> {
    if !run.devices.is_empty() {
        return Err(not_supported("RUN --device"));
    }
    if run.security == SecurityMode::Insecure {
        return Err(BuildError::Internal(
            "RUN --security=insecure is refused: distill does not grant security.insecure".into(),
        ));
    }
    Ok(())
}

fn unsupported_copy(copy: &CopyInstruction) -> Result<(), BuildError> {
    if copy.link {
        return Err(not_supported("COPY --link"));
    }
    Ok(())
}

fn unsupported_add(add: &AddInstruction) -> Result<(), BuildError> {
    if add.link {
        return Err(not_supported("ADD --link"));
    }
    if add.keep_git_dir {
        return Err(not_supported("ADD --keep-git-dir"));
    }
    for src in &add.sources {
        if let Source::Path(p) = src {
            let lower = p.to_ascii_lowercase();
            if lower.starts_with("git@")
                || lower.starts_with("git://")
                || lower.ends_with(".git")
                || lower.contains(".git#")
            {
                return Err(not_supported("ADD from a Git repository"));
            }
        }
    }
    Ok(())
}

fn short(d: &Digest) -> String {
    format!("sha256:{}", &d.hex()[..12])
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.2}GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.2}MB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.2}kB", b as f64 / (1u64 << 10) as f64),
        b => format!("{b}B"),
    }
}

/// Writes the target stage's image into the store and names it.
pub(crate) fn commit_image(
    b: &Builder<'_>,
    writer: &Writer<'_>,
    target: &StageState,
    id: VertexId,
) -> Result<ImageRecord, BuildError> {
    let mut config = target.config.clone();
    if !b.opts.labels.is_empty() {
        let labels = config::container(&mut config).labels.get_or_insert_with(Default::default);
        labels.extend(b.opts.labels.clone());
    }
    config.created = match b.opts.source_date_epoch {
        Some(_) => Some(b.now()),
        None => target.last_created.clone().or_else(|| Some(b.now())),
    };
    config.rootfs.diff_ids = target.layers.iter().map(|l| l.diff_id).collect();
    let committed = writer.commit_image(&config, &target.layers, b.opts.tags.first())?;
    b.progress.event(Event::Status { id, text: format!("writing image {}", committed.image.config) });
    let image = committed.image.digest;
    for tag in b.opts.tags.iter().skip(1) {
        let tag = tag.clone().with_default_tag();
        writer.update(|tx| tx.set_tag(&tag, &image))?;
    }
    for tag in &b.opts.tags {
        b.progress.event(Event::Status { id, text: format!("naming to {}", tag.clone().with_default_tag()) });
    }
    let record = writer.store().images()?.into_iter().find(|i| i.digest == image).unwrap_or(committed.image);
    Ok(record)
}
