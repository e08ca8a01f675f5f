//! Building one stage: its base, then each instruction in order.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use distill_dockerfile::instructions::{
    AddInstruction, CopyInstruction, Instruction, Mount, MountKind, NetworkMode, RunInstruction, SecurityMode, Source,
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
use super::{Builder, NamedSource, ResolvedImage, image_key, stage_platform};
use crate::context::{Context, IgnoreMatcher};
use crate::copy::{
    CopyIndex, CopyRecord, CopyRequest, Recorded, Selection, SourceFilter, SourceItem, check_link_chown, copy_into,
    copy_into_with, git, seed_in_place, seed_upper, select_source, url,
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
    /// A directory named context (`--build-context NAME=DIR`).
    Dir(&'b Context),
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
    /// The COPY/ADD being run has `--link`: it copies into an empty
    /// directory (see [`StageBuild::target`]).
    link: bool,
    /// The instruction being run is an ONBUILD trigger of the base.
    onbuild: bool,
}

pub(crate) fn build_stage<'b, 's>(
    b: &'b Builder<'_>,
    store: StoreHandle<'s>,
    stage: &'b PlannedStage,
) -> Result<StageState, BuildError> {
    let total = 1 + stage.instructions.iter().filter(|i| is_step(&i.instruction)).count();
    let platform = stage_platform(b.opts, stage);
    let mut sb =
        StageBuild { b, store, stage, platform, total, step: 1, pending_index: None, link: false, onbuild: false };
    let mut state = sb.base()?;
    // The base's ONBUILD triggers are the plan's first instructions (the
    // builder planned with them); like Docker, they are not inherited further.
    if let Some(config) = state.config.config.as_mut() {
        config.on_build = None;
    }
    for ins in &stage.instructions {
        if b.cancel.is_cancelled() {
            return Err(BuildError::Cancelled);
        }
        sb.onbuild = ins.onbuild.is_some();
        sb.instruction(&mut state, ins).map_err(|e| {
            let e = e.at(ins.start_line, ins.end_line);
            match (&ins.onbuild, e) {
                (Some(origin), BuildError::Step { start_line, end_line, message, output_tail }) => BuildError::Step {
                    start_line,
                    end_line,
                    message: format!("ONBUILD trigger from {origin}: {message}"),
                    output_tail,
                },
                (_, e) => e,
            }
        })?;
    }
    Ok(state)
}

/// The empty base of `FROM scratch`.
fn scratch_state(platform: &Platform) -> StageState {
    let config = config::scratch_config(&platform.os, &platform.architecture, platform.variant.as_deref());
    let mut key = KeyBuilder::new("scratch");
    key.str(&format!("{}/{}/{:?}", platform.os, platform.architecture, platform.variant));
    StageState { layers: Vec::new(), config, key: key.finish(), cmd_set: false, last_created: None }
}

fn is_step(ins: &Instruction) -> bool {
    matches!(ins, Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_) | Instruction::Workdir { .. })
}

impl<'a, 'b, 's> StageBuild<'a, 'b, 's> {
    fn title(&self, text: &str) -> String {
        let onbuild = if self.onbuild { "ONBUILD " } else { "" };
        format!("[{} {}/{}] {onbuild}{}", self.stage.display_name(), self.step, self.total, text)
    }

    fn base(&mut self) -> Result<StageState, BuildError> {
        let b = self.b;
        let stage = self.stage;
        match &stage.base {
            Base::Scratch => Ok(scratch_state(&self.platform)),
            Base::Image(name) | Base::Context(name) => {
                match b.named_source(name) {
                    Some(NamedSource::Dir(ctx)) => return self.dir_base(name, ctx),
                    Some(NamedSource::Scratch) => return Ok(scratch_state(&self.platform)),
                    None => {}
                }
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

    /// A directory named context as a base: its files (0:0, its own
    /// `.dockerignore` applied) as one layer over scratch, keyed by content.
    fn dir_base(&mut self, name: &str, ctx: &'b Context) -> Result<StageState, BuildError> {
        let b = self.b;
        let mut state = scratch_state(&self.platform);
        let entries = select_source(ctx, ".", &SourceFilter::default())?;
        let mut key = KeyBuilder::new("context-dir");
        key.digest(&state.key).digest(&b.salt).str(&ctx.content_digest(&entries)?);
        let title = format!("[context {name}] load from client");
        let history = format!("context {name}");
        self.layer_step(&mut state, key.finish(), title, history, |this, state, _| {
            let (snap, _) = this.snapshot(&state.layers)?;
            let req = CopyRequest {
                sources: vec![SourceItem::Pattern(".".into())],
                dest: "/",
                workdir: "/",
                chown: None,
                chmod: None,
                add: false,
                keep_owner: false,
                exclude: &[],
                parents: false,
            };
            copy_into(ctx, &req, snap.rootfs())?;
            Ok(Some(snap.commit()?))
        })?;
        Ok(state)
    }

    fn instruction(&mut self, state: &mut StageState, ins: &PlannedInstruction) -> Result<(), BuildError> {
        let link = match &ins.instruction {
            Instruction::Copy(c) => c.link,
            Instruction::Add(a) => a.link,
            _ => false,
        };
        let parent = state.key;
        self.link = link;
        let result = self.dispatch(state, ins);
        self.link = false;
        result?;
        if link {
            // The linked step's own key leaves the parent out (its layer is
            // reused over any base); the steps after it see both.
            let mut chained = KeyBuilder::new("linked");
            chained.digest(&parent).digest(&state.key);
            state.key = chained.finish();
        }
        Ok(())
    }

    fn dispatch(&mut self, state: &mut StageState, ins: &PlannedInstruction) -> Result<(), BuildError> {
        let text = ins.text();
        // `--link` (BuildKit): the copy never reads the previous state, so
        // its key is the instruction (dest and flags expanded), its sources
        // and the WORKDIR the dest is relative to, not the parent's key.
        let mut key = KeyBuilder::new(if self.link { "link-step" } else { "step" });
        if !self.link {
            key.digest(&state.key);
        }
        key.digest(&self.b.salt);
        let repr = serde_json::to_vec(&ins.instruction).map_err(|e| BuildError::Internal(e.to_string()))?;
        key.part(&repr);
        if self.link {
            key.str(&workdir_of(state));
        }
        let history_by = created_by(state.config.config.as_ref(), &ins.instruction, &text);
        match &ins.instruction {
            Instruction::Run(run) => {
                unsupported_run(run)?;
                let args = serde_json::to_vec(&*ins.args).map_err(|e| BuildError::Internal(e.to_string()))?;
                key.part(&args).str(&format!("{:?}", self.b.opts.network));
                // What bind mounts and seeded caches read is an input like COPY's sources.
                for m in run.mounts.iter().filter(|m| reads_source(m)) {
                    let source = self.copy_source(m.from.as_deref())?;
                    let path = m.source.clone().unwrap_or_else(|| ".".into());
                    self.source_key(&mut key, &source, &[Source::Path(path)], &SourceFilter::default())?;
                }
                self.step += 1;
                let title = self.title(&text);
                self.layer_step(state, key.finish(), title, history_by, |this, state, id| this.run(state, ins, run, id))
            }
            Instruction::Copy(copy) => {
                check_copy(copy)?;
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
                // Incremental copies record plain selections; filtered and
                // linked ones copy in full.
                let plain = copy.exclude.is_empty() && !copy.parents && !copy.link;
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
                if add.link {
                    check_link_chown(add.chown.as_deref())?;
                }
                let filter = SourceFilter::new(&add.exclude, false)?;
                let remote =
                    add.sources.iter().any(|s| matches!(s, Source::Path(p) if url::is_url(p) || git::is_git(p)));
                if !remote {
                    if add.checksum.is_some() {
                        return Err(BuildError::Internal(
                            "ADD --checksum can't be specified for non-HTTP(S) and non-Git sources".into(),
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
                if add.checksum.is_some() && add.sources.len() != 1 {
                    return Err(BuildError::Internal("ADD --checksum can't be specified for multiple sources".into()));
                }
                let staging = self.scratch("add-remote-")?;
                let result = self.add_remote(state, add, &filter, &staging, key, text, history_by);
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

    /// Where a COPY/ADD writes: a writable snapshot over the stage's layers,
    /// or with `--link` an empty directory that becomes the layer as is
    /// (BuildKit copies onto scratch and merges the result over the
    /// previous state: nothing of that state is read, so the destination
    /// path is made of directories only, and a symlink there is replaced).
    fn target(&self, layers: &[LayerInfo]) -> Result<Target, BuildError> {
        if !self.link {
            return Ok(Target::Snapshot(self.snapshot(layers)?.0));
        }
        let scratch = self.scratch("step-")?;
        let upper = scratch.join("upper");
        fs::create_dir_all(&upper).map_err(|e| BuildError::Internal(format!("creating {}: {e}", upper.display())))?;
        Ok(Target::Linked(LinkedDir { scratch, upper: Some(upper) }))
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
        if let Some(sock) = &mounts.ssh_auth_sock
            && !lines.iter().any(|l| l.starts_with("SSH_AUTH_SOCK="))
        {
            lines.push(format!("SSH_AUTH_SOCK={sock}"));
        }
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
        let mut ssh_index = 0;
        for (i, m) in run_ins.mounts.iter().enumerate() {
            match m.kind {
                MountKind::Tmpfs => out.mounts.push(runmounts::tmpfs(m)?),
                MountKind::Cache => {
                    let root = self.store.with(|w| Ok(w.store().root().to_path_buf()))?;
                    if m.from.is_some() {
                        let mut key = KeyBuilder::new("cache-seed");
                        let source = self.copy_source(m.from.as_deref())?;
                        let path = m.source.clone().unwrap_or_else(|| ".".into());
                        self.source_key(&mut key, &source, &[Source::Path(path)], &SourceFilter::default())?;
                        let view = self.mount_view(m, &scratch.join(format!("seed-{i}")))?;
                        let seed = runmounts::source_in_view(m, view.rootfs())?;
                        runmounts::cache(m, &root, scratch, Some((&seed, &key.finish())), out)?;
                        out.snapshots.push(view);
                    } else {
                        runmounts::cache(m, &root, scratch, None, out)?;
                    }
                }
                MountKind::Secret => runmounts::secret(m, &b.opts.secrets, scratch, out)?,
                MountKind::Bind => {
                    let view = self.mount_view(m, &scratch.join(format!("bind-{i}")))?;
                    out.mounts.push(runmounts::bind_from(m, view.rootfs())?);
                    out.snapshots.push(view);
                }
                MountKind::Ssh => {
                    runmounts::ssh(m, ssh_index, &b.opts.ssh, out)?;
                    ssh_index += 1;
                }
            }
        }
        Ok(())
    }

    /// A throwaway overlay view of a mount's `from=` (the context by
    /// default), so that `rw` writes go nowhere.
    fn mount_view(&self, m: &Mount, dir: &Path) -> Result<ActiveSnapshot, BuildError> {
        let b = self.b;
        let lowers = match self.copy_source(m.from.as_deref())? {
            CopySource::Context => vec![b.opts.context_dir.clone()],
            CopySource::Dir(ctx) => vec![ctx.root().to_path_buf()],
            CopySource::Stage(state) => self.lowers(&state.layers)?,
            CopySource::Image(image) => self.lowers(&image.layers)?,
        };
        Ok(ActiveSnapshot::prepare(b.opts.snapshotter, &lowers, dir)?)
    }

    /// ADD with http(s) or Git sources (and maybe context paths), each
    /// copied in the order written. As BuildKit, the key holds each URL with
    /// `--checksum` when given (a cache hit then downloads nothing), else
    /// with the digest of the content, downloaded first; and each Git
    /// source's commit, resolved with `git ls-remote` before the lookup (a
    /// moved branch is a miss; the checkout itself only happens on a miss).
    #[allow(clippy::too_many_arguments)]
    fn add_remote(
        &mut self,
        state: &mut StageState,
        add: &AddInstruction,
        filter: &SourceFilter,
        staging: &Path,
        mut key: KeyBuilder,
        text: String,
        history_by: String,
    ) -> Result<(), BuildError> {
        /// One ADD source, in order.
        enum Part {
            Local(Source),
            Url(String, Option<url::Downloaded>),
            Git(Box<git::Resolved>, bool),
        }
        if add.sources.len() > 1 && !is_dir_syntax(&add.dest) {
            return Err(crate::copy::CopyError::MultipleSourcesNeedDirectory {
                instruction: "ADD",
                dest: add.dest.clone(),
                count: add.sources.len(),
            }
            .into());
        }
        let mut parts = Vec::with_capacity(add.sources.len());
        let mut url_checksum = None;
        for (i, src) in add.sources.iter().enumerate() {
            let Source::Path(p) = src else {
                parts.push(Part::Local(src.clone()));
                continue;
            };
            if let Some(g) = git::parse(p)? {
                let checksum = match (add.checksum.as_deref(), g.checksum.as_deref()) {
                    (Some(flag), Some(in_url)) if flag != in_url => {
                        return Err(BuildError::Internal(format!("checksum mismatch {flag:?} != {in_url:?}")));
                    }
                    (flag, in_url) => flag.or(in_url).map(git::check_checksum).transpose()?,
                };
                if add.keep_git_dir && g.keep_git_dir == Some(false) {
                    return Err(BuildError::Internal("inconsistent keep-git-dir configuration".into()));
                }
                let keep = add.keep_git_dir || g.keep_git_dir == Some(true);
                let resolved = git::resolve(g, &staging.join(format!("git-{i}")))?;
                if let Some(expected) = checksum
                    && !resolved.commit.starts_with(&expected)
                {
                    return Err(crate::copy::CopyError::GitChecksumMismatch {
                        url: resolved.git.remote.clone(),
                        expected,
                        actual: resolved.commit.clone(),
                    }
                    .into());
                }
                let g = &resolved.git;
                key.str("git").str(&g.remote).str(&resolved.commit).str(&g.subdir);
                key.str(&format!("keep-git-dir={keep} submodules={}", g.submodules));
                parts.push(Part::Git(Box::new(resolved), keep));
            } else if url::is_url(p) {
                if url_checksum.is_none() {
                    url_checksum = add.checksum.as_deref().map(url::Checksum::parse).transpose()?;
                }
                key.str("url").str(p);
                match &url_checksum {
                    Some(c) => {
                        key.str(c.as_str());
                        parts.push(Part::Url(p.clone(), None));
                    }
                    None => {
                        let d = url::download(p, &staging.join(i.to_string()), None)?;
                        key.str(&d.digest);
                        parts.push(Part::Url(p.clone(), Some(d)));
                    }
                }
            } else {
                self.source_key(&mut key, &CopySource::Context, std::slice::from_ref(src), filter)?;
                parts.push(Part::Local(src.clone()));
            }
        }
        self.step += 1;
        let title = self.title(&text);
        self.layer_step(state, key.finish(), title, history_by, |this, state, id| {
            let workdir = workdir_of(state);
            let target = this.target(&state.layers)?;
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
            for (i, part) in parts.into_iter().enumerate() {
                match part {
                    Part::Local(src) => {
                        let req = CopyRequest { sources: source_items(std::slice::from_ref(&src)), ..base.clone() };
                        copy_into(&this.b.context, &req, target.rootfs())?;
                    }
                    Part::Url(u, d) => {
                        let d = match d {
                            Some(d) => d,
                            None => url::download(&u, &staging.join(i.to_string()), url_checksum.as_ref())?,
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
                        copy_into(&ctx, &req, target.rootfs())?;
                    }
                    Part::Git(resolved, keep) => {
                        this.b.progress.event(Event::Status {
                            id,
                            text: format!("checking out {} at {}", resolved.git.remote, resolved.commit),
                        });
                        let sde = this.b.opts.source_date_epoch.is_some();
                        let out = git::checkout(*resolved, keep, sde)?;
                        let ctx = Context::open(&out.root, IgnoreMatcher::empty())?;
                        // The repository (or its subdir) is copied like a
                        // directory of the context; nothing in it is unpacked.
                        let req = CopyRequest {
                            sources: vec![SourceItem::Pattern(literal_pattern(&out.source))],
                            add: false,
                            ..base.clone()
                        };
                        copy_into(&ctx, &req, target.rootfs())?;
                    }
                }
            }
            Ok(Some(target.commit()?))
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
        match b.named_source(from) {
            Some(NamedSource::Dir(ctx)) => return Ok(CopySource::Dir(ctx)),
            Some(NamedSource::Scratch) => {
                return Ok(CopySource::Stage(std::sync::Arc::new(scratch_state(&self.platform))));
            }
            None => {}
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
            CopySource::Dir(ctx) => {
                key.str("context-dir");
                for src in sources {
                    if let Source::Path(pattern) = src {
                        let entries = select_source(ctx, pattern, filter)?;
                        key.str(pattern).str(&ctx.content_digest(&entries)?);
                    }
                }
                Ok(None)
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
        let keep_owner = !matches!(source, CopySource::Context | CopySource::Dir(_));
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
            CopySource::Context | CopySource::Dir(_) => None,
            CopySource::Stage(s) => Some(self.snapshot(&s.layers)?),
            CopySource::Image(i) => Some(self.snapshot(&i.layers)?),
        };
        let view_context;
        let src_ctx: &Context = match (&source_view, source) {
            (None, CopySource::Dir(ctx)) => ctx,
            (None, _) => &self.b.context,
            (Some((snap, _)), _) => {
                view_context = Context::open(snap.rootfs(), IgnoreMatcher::empty())?;
                &view_context
            }
        };
        let target = self.target(&state.layers)?;
        copy_into(src_ctx, &req, target.rootfs())?;
        drop(source_view);
        Ok(Some(target.commit()?))
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

/// See [`StageBuild::target`].
enum Target {
    Snapshot(ActiveSnapshot),
    Linked(LinkedDir),
}

/// The empty directory a `--link` copy writes (`scratch/upper`, as a
/// snapshot's upper dir), removed with its scratch dir unless committed.
struct LinkedDir {
    scratch: PathBuf,
    upper: Option<PathBuf>,
}

impl Drop for LinkedDir {
    fn drop(&mut self) {
        if self.upper.is_some() {
            let _ = fs::remove_dir_all(&self.scratch);
        }
    }
}

impl Target {
    fn rootfs(&self) -> &Path {
        match self {
            Target::Snapshot(snap) => snap.rootfs(),
            Target::Linked(dir) => dir.upper.as_deref().unwrap_or(&dir.scratch),
        }
    }

    /// The diff: the snapshot's upper dir, or the linked directory itself.
    fn commit(self) -> Result<PathBuf, BuildError> {
        match self {
            Target::Snapshot(snap) => Ok(snap.commit()?),
            Target::Linked(mut dir) => {
                dir.upper.take().ok_or_else(|| BuildError::Internal("linked directory committed twice".into()))
            }
        }
    }
}

/// The stage's WORKDIR (absolute; `/` when unset).
fn workdir_of(state: &StageState) -> String {
    state.config.config.as_ref().and_then(|c| c.working_dir.clone()).unwrap_or_else(|| "/".into())
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

/// A RUN mount whose content is an input of the step: bind mounts and
/// caches seeded with `from=`.
fn reads_source(m: &Mount) -> bool {
    m.kind == MountKind::Bind || (m.kind == MountKind::Cache && m.from.is_some())
}

fn unsupported_run(run: &RunInstruction) -> Result<(), BuildError> {
    if !run.devices.is_empty() {
        return Err(BuildError::Unsupported(
            "RUN --device is not supported yet (CDI devices are not available to distill builds)".into(),
        ));
    }
    if run.security == SecurityMode::Insecure {
        return Err(BuildError::Unsupported(
            "RUN --security=insecure is refused: distill does not grant security.insecure".into(),
        ));
    }
    Ok(())
}

/// What COPY refuses before anything runs: remote sources (BuildKit's
/// messages), and names in `--chown` with `--link`.
fn check_copy(copy: &CopyInstruction) -> Result<(), BuildError> {
    for src in &copy.sources {
        if let Source::Path(p) = src {
            if git::is_git(p) {
                return Err(BuildError::Internal(format!("COPY {p}: source can't be a git ref for COPY")));
            }
            if url::is_url(p) {
                return Err(BuildError::Internal(format!("COPY {p}: source can't be a URL for COPY")));
            }
        }
    }
    if copy.link {
        check_link_chown(copy.chown.as_deref())?;
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
