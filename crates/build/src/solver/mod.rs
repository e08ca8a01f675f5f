//! The solver: turns a planned Dockerfile into an image in the store.
//!
//! Every stage the target reaches gets a thread; a stage waits for the
//! stages it needs (its base, `COPY --from`) on a `board::Board`, then
//! runs its instructions in order. Config-only instructions (ENV, LABEL,
//! CMD...) fold into the config; RUN, COPY, ADD and WORKDIR are steps with a
//! cache key (`cache`): a hit reuses the recorded layer, a miss runs the
//! step over an overlayfs snapshot of the layers so far and turns the upper
//! directory into a layer and a snapshot. Store operations go through one
//! service thread (`service`), since the store's writer is not shared.

mod board;
mod cache;
mod config;
mod error;
pub mod runmounts;
mod service;
pub mod ssh;
mod stage;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use distill_dockerfile::lint::Warning;
use distill_dockerfile::plan::{Base, BuildPlan, PlanOptions, PlannedStage, Platform, plan_dockerfile};
use distill_image::digest::Digest;
use distill_image::layer::Compression;
use distill_image::reference::Reference;
use distill_image::store::{Image, ImageRecord, LayerInfo, Store};
use distill_image::timestamp::Timestamp;

use crate::context::{Context, HashCache};
use crate::executor::{CancelToken, Network, Runtime, SnapshotterKind};
use crate::progress::{Event, Progress, VertexId};

pub use error::BuildError;

/// Forgets the build cache (`distill prune --build-cache`): its entries and
/// what pins its layers and snapshots. Returns the number of entries; a
/// prune afterwards reclaims the space.
pub fn clear_build_cache(writer: &distill_image::store::Writer<'_>) -> Result<u64, BuildError> {
    Ok(writer.update(|tx| tx.clear_build_cache(cache::CACHE_HOLDER))?)
}

use board::Board;
use cache::KeyBuilder;

/// What to build and how.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The Dockerfile's content.
    pub dockerfile: Vec<u8>,
    /// Where the Dockerfile is (for `<Dockerfile>.dockerignore`); None for stdin.
    pub dockerfile_path: Option<PathBuf>,
    /// The build context directory.
    pub context_dir: PathBuf,
    /// Build args, target, platforms.
    pub plan: PlanOptions,
    /// Names for the result (`-t`).
    pub tags: Vec<Reference>,
    /// `--label`s added to the image.
    pub labels: BTreeMap<String, String>,
    /// `--no-cache`: run every step, record the results anyway.
    pub no_cache: bool,
    /// The network RUN steps get (`--network`).
    pub network: Network,
    /// `--runtime`: an OCI runtime name or path (runc by default).
    pub runtime: Option<String>,
    pub compression: Compression,
    /// SOURCE_DATE_EPOCH: timestamps in the image and mtimes in layers are clamped to it.
    pub source_date_epoch: Option<i64>,
    pub snapshotter: SnapshotterKind,
    /// `--secret`s by id, for `RUN --mount=type=secret` (never in a cache key or a layer).
    pub secrets: runmounts::Secrets,
    /// `--ssh` agent sockets by id, for `RUN --mount=type=ssh` (see [`ssh::SshAgents`]).
    pub ssh: BTreeMap<String, PathBuf>,
    /// `--build-context NAME=…`: what `FROM NAME`, `COPY --from=NAME` and
    /// `RUN --mount from=NAME` read instead (a stage named NAME included).
    pub named_contexts: BTreeMap<String, NamedContext>,
}

/// A named context (`--build-context`), as the caller resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A local directory. Its own `.dockerignore` applies and its files are
    /// owned by 0:0, as BuildKit sends local directories; as a FROM base it
    /// is the root file system of an image with an empty config.
    Dir(PathBuf),
    /// An image in the store (`docker-image://REF`, or an `oci-layout://`
    /// image the caller loaded): a name, an image ID or a manifest digest.
    Image(String),
    /// `docker-image://scratch`: nothing.
    Scratch,
}

/// The key a Dockerfile name is looked up by among named contexts: BuildKit
/// normalizes it (`docker.io/library/alpine:latest` → `alpine`).
pub fn context_key(name: &str) -> String {
    match Reference::parse_normalized(name) {
        Ok(r) => {
            let familiar = r.familiar();
            familiar.strip_suffix(":latest").map(str::to_string).unwrap_or(familiar)
        }
        Err(_) => name.to_string(),
    }
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    pub image: ImageRecord,
    /// Build-check findings.
    pub warnings: Vec<Warning>,
    /// Steps that ran, and steps answered from the cache.
    pub executed: usize,
    pub cached: usize,
}

/// A base image (or `COPY --from` image) resolved in the store.
pub(crate) struct ResolvedImage {
    /// The reference as FROM / `--from` wrote it (expanded).
    pub reference: String,
    pub image: Image,
    pub layers: Vec<LayerInfo>,
}

/// A named context that is not an image (images are resolved with the others).
pub(crate) enum NamedSource<'b> {
    Dir(&'b Context),
    Scratch,
}

/// Everything the stage threads share.
pub(crate) struct Builder<'a> {
    pub opts: &'a BuildOptions,
    pub plan: BuildPlan,
    /// By [`image_key`]: one image per name and platform (a named context's image under
    /// the name it replaces).
    pub images: HashMap<String, ResolvedImage>,
    pub context: Context,
    /// Directory named contexts, by context name.
    pub dirs: HashMap<String, Context>,
    pub progress: &'a dyn Progress,
    pub cancel: &'a CancelToken,
    pub board: Board,
    /// Options that change layer bytes, mixed into every key.
    pub salt: Digest,
    runtime: OnceLock<Result<Runtime, String>>,
    next_vertex: AtomicU64,
    pub executed: AtomicUsize,
    pub cached: AtomicUsize,
    /// The first failure (others are usually its consequences).
    first_error: Mutex<Option<BuildError>>,
}

impl Builder<'_> {
    pub fn vertex(&self) -> VertexId {
        self.next_vertex.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The OCI runtime, resolved when the first RUN needs it.
    pub fn runtime(&self) -> Result<&Runtime, BuildError> {
        self.runtime
            .get_or_init(|| Runtime::resolve(self.opts.runtime.as_deref()).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| BuildError::Internal(e.clone()))
    }

    /// Timestamps for new history entries and the image.
    pub fn now(&self) -> String {
        match self.opts.source_date_epoch {
            Some(secs) => Timestamp::from_secs(secs).to_rfc3339(),
            None => Timestamp::now().to_rfc3339(),
        }
    }

    /// The directory or scratch named context a Dockerfile name stands for.
    pub fn named_source(&self, name: &str) -> Option<NamedSource<'_>> {
        let key = context_key(name);
        match self.opts.named_contexts.get(&key)? {
            NamedContext::Dir(_) => self.dirs.get(&key).map(NamedSource::Dir),
            NamedContext::Scratch => Some(NamedSource::Scratch),
            NamedContext::Image(_) => None,
        }
    }

    fn fail(&self, err: BuildError) {
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        let replace = match &*first {
            None => true,
            // A real failure explains a build better than the cancellations it caused.
            Some(prev) => {
                (prev.is_cancelled() || matches!(prev, BuildError::DependencyFailed { .. }))
                    && !err.is_cancelled()
                    && !matches!(err, BuildError::DependencyFailed { .. })
            }
        };
        if replace {
            *first = Some(err);
        }
        // Stop the other stages: the build has failed.
        self.cancel.cancel();
    }
}

/// Builds the Dockerfile in `opts` into `store`, reporting to `progress`.
/// Ctrl-C (or any `cancel`) stops running containers and unmounts
/// everything; completed steps stay cached.
pub fn build(
    store: &Store,
    opts: &BuildOptions,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<BuildOutput, BuildError> {
    let def = progress_vertex(progress, 0, "[internal] load build definition from Dockerfile");
    let mut plan_opts = opts.plan.clone();
    plan_opts.named_contexts.extend(opts.named_contexts.keys().cloned());
    let first_plan = plan_dockerfile(&opts.dockerfile, &plan_opts);
    let first_plan = finish_vertex(progress, def, first_plan)?;
    if let Some(err) = first_plan.check_error() {
        return Err(err.into());
    }

    // The store's writer lock is held for the whole build: two builds at
    // once take turns on the store.
    let writer = store.writer()?;
    let mut dirs = HashMap::new();
    for (name, named) in &opts.named_contexts {
        if let NamedContext::Dir(dir) = named {
            let ctx = open_dir_context(store, dir, None)
                .map_err(|e| BuildError::Internal(format!("named context {name} ({}): {e}", dir.display())))?;
            dirs.insert(name.clone(), ctx);
        }
    }
    // Plan again knowing the base images: their environments (so `$PATH`
    // and friends expand as in the container) and their ONBUILD triggers,
    // which may reach more stages and images. Until nothing new is learned.
    let mut plan = first_plan;
    let mut images = HashMap::new();
    for _ in 0..=plan.stages.len() {
        resolve_images(store, opts, &plan, &mut images)?;
        let mut next = plan_opts.clone();
        for img in images.values() {
            let name = &img.reference;
            let Some(config) = img.image.config.config.as_ref() else { continue };
            if let Some(env) = &config.env {
                next.image_env.insert(name.clone(), env.clone());
            }
            if let Some(triggers) = config.on_build.as_ref().filter(|t| !t.is_empty()) {
                next.image_onbuild.insert(name.clone(), triggers.clone());
            }
        }
        // A directory or scratch context is an image with an empty config.
        for stage in plan.stages.iter().filter(|s| !s.pruned) {
            if let Base::Image(name) | Base::Context(name) = &stage.base
                && let Some(NamedContext::Dir(_) | NamedContext::Scratch) = opts.named_contexts.get(&context_key(name))
            {
                next.image_env.insert(name.clone(), Vec::new());
            }
        }
        if next.image_env == plan_opts.image_env && next.image_onbuild == plan_opts.image_onbuild {
            break;
        }
        plan = plan_dockerfile(&opts.dockerfile, &next)?;
        plan_opts = next;
    }
    resolve_images(store, opts, &plan, &mut images)?;

    let ctx_vertex = progress_vertex(progress, 1, "[internal] load .dockerignore");
    let context = open_context(store, opts);
    let context = finish_vertex(progress, ctx_vertex, context)?;

    let mut salt = KeyBuilder::new("salt");
    salt.str(opts.compression.media_type());
    salt.str(&format!("{:?}", opts.compression));
    salt.str(&opts.source_date_epoch.map(|s| s.to_string()).unwrap_or_default());
    let builder = Builder {
        opts,
        plan,
        images,
        context,
        dirs,
        progress,
        cancel,
        board: Board::default(),
        salt: salt.finish(),
        runtime: OnceLock::new(),
        next_vertex: AtomicU64::new(2),
        executed: AtomicUsize::new(0),
        cached: AtomicUsize::new(0),
        first_error: Mutex::new(None),
    };

    let order = builder.plan.build_order();
    let (handle, service) = service::channel();
    std::thread::scope(|scope| {
        for &index in &order {
            let handle = handle.clone();
            let builder = &builder;
            scope.spawn(move || {
                let stage = &builder.plan.stages[index];
                match stage::build_stage(builder, handle, stage) {
                    Ok(state) => builder.board.publish(index, Some(Arc::new(state))),
                    Err(err) => {
                        builder.board.publish(index, None);
                        builder.fail(err);
                    }
                }
            });
        }
        drop(handle);
        service.serve(&writer);
    });
    let save_hashes = || {
        let _ = builder.context.hash_cache().save();
        for ctx in builder.dirs.values() {
            let _ = ctx.hash_cache().save();
        }
    };
    if let Some(err) = builder.first_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
        save_hashes();
        return Err(err);
    }
    let target = builder
        .board
        .get(builder.plan.target)
        .ok_or_else(|| BuildError::Internal("the target stage produced no result".into()))?;

    let export = builder.vertex();
    progress.event(Event::Started { id: export, name: "exporting to image".into() });
    let record = stage::commit_image(&builder, &writer, &target, export);
    let record = finish_vertex(progress, export, record)?;
    save_hashes();
    Ok(BuildOutput {
        image: record,
        warnings: builder.plan.warnings.clone(),
        executed: builder.executed.load(Ordering::Relaxed),
        cached: builder.cached.load(Ordering::Relaxed),
    })
}

fn progress_vertex(progress: &dyn Progress, id: VertexId, name: &str) -> VertexId {
    progress.event(Event::Started { id, name: name.to_string() });
    id
}

fn finish_vertex<T, E: Into<BuildError>>(
    progress: &dyn Progress,
    id: VertexId,
    result: Result<T, E>,
) -> Result<T, BuildError> {
    let result = result.map_err(Into::into);
    progress.event(Event::Completed { id, error: result.as_ref().err().map(|e| e.to_string()) });
    result
}

/// The platform a stage builds for: its `FROM --platform` (checked by the
/// planner), else the build's target platform.
pub(crate) fn stage_platform(opts: &BuildOptions, stage: &PlannedStage) -> Platform {
    stage.platform.as_deref().and_then(|p| Platform::parse(p).ok()).unwrap_or_else(|| opts.plan.target_platform.clone())
}

/// The key of [`Builder::images`]: a name for one platform.
pub(crate) fn image_key(name: &str, platform: &Platform) -> String {
    format!("{name} {platform}")
}

/// Finds every image the reachable stages use (FROM, `COPY --from`), each
/// for its stage's platform, that `images` lacks; a named context's image
/// stands in for its name.
fn resolve_images(
    store: &Store,
    opts: &BuildOptions,
    plan: &BuildPlan,
    images: &mut HashMap<String, ResolvedImage>,
) -> Result<(), BuildError> {
    for stage in plan.stages.iter().filter(|s| !s.pruned) {
        let platform = stage_platform(opts, stage);
        let mut wanted: Vec<&String> = stage.external_images.iter().collect();
        if let Base::Image(name) | Base::Context(name) = &stage.base {
            wanted.insert(0, name);
        }
        for name in wanted {
            let key = image_key(name, &platform);
            if images.contains_key(&key) {
                continue;
            }
            let spec = match opts.named_contexts.get(&context_key(name)) {
                Some(NamedContext::Image(spec)) => spec,
                Some(NamedContext::Dir(_) | NamedContext::Scratch) => continue,
                None => name,
            };
            let (os, arch, variant) = (&platform.os, &platform.architecture, platform.variant.as_deref());
            let image = match store.find_image_for_platform(spec, os, arch, variant) {
                Ok(image) => image,
                Err(e @ distill_image::Error::WrongPlatform { .. }) => {
                    return Err(BuildError::step(stage.start_line, stage.end_line, e.to_string()));
                }
                Err(distill_image::Error::ImageNotFound(_)) => {
                    let err = BuildError::ImageNotFound { reference: spec.clone() };
                    return Err(BuildError::step(stage.start_line, stage.end_line, err.to_string()));
                }
                Err(e) => return Err(BuildError::from(e).at(stage.start_line, stage.end_line)),
            };
            let diff_ids = &image.config.rootfs.diff_ids;
            if diff_ids.len() != image.manifest.layers.len() {
                return Err(BuildError::step(
                    stage.start_line,
                    stage.end_line,
                    format!("image {name}: its config lists other layers than its manifest"),
                ));
            }
            let layers = image
                .manifest
                .layers
                .iter()
                .zip(diff_ids)
                .map(|(l, d)| LayerInfo {
                    digest: l.digest,
                    diff_id: *d,
                    media_type: l.media_type.clone(),
                    size: l.size,
                    uncompressed_size: store.uncompressed_size(l),
                })
                .collect();
            images.insert(key, ResolvedImage { reference: name.clone(), image, layers });
        }
    }
    Ok(())
}

/// The build context with its `.dockerignore` and a file-hash cache kept in
/// the store, per context directory.
fn open_context(store: &Store, opts: &BuildOptions) -> Result<Context, BuildError> {
    open_dir_context(store, &opts.context_dir, opts.dockerfile_path.as_deref())
}

/// A context directory (the build's or a named one) with its `.dockerignore`
/// and its file-hash cache.
fn open_dir_context(
    store: &Store,
    dir: &std::path::Path,
    dockerfile: Option<&std::path::Path>,
) -> Result<Context, BuildError> {
    let context = Context::open_with_dockerignore(dir, dockerfile)?;
    let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let name = Digest::of(abs.as_os_str().as_encoded_bytes()).hex();
    let path = store.root().join("cache/context").join(&name[..32]);
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let cache = HashCache::load_in_background(&path);
    Ok(context.with_hash_cache(cache))
}

#[cfg(test)]
mod tests {
    use super::context_key;

    #[test]
    fn context_keys_are_normalized_like_buildkit() {
        assert_eq!(context_key("docker.io/library/alpine:latest"), "alpine");
        assert_eq!(context_key("alpine"), "alpine");
        assert_eq!(context_key("alpine:3.18"), "alpine:3.18");
        assert_eq!(context_key("helper"), "helper");
        assert_eq!(context_key("quay.io/x/y:latest"), "quay.io/x/y");
        assert_eq!(context_key("Not A Name"), "Not A Name");
    }
}
