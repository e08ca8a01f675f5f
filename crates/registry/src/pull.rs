//! Pulling an image into the store: resolve the reference to a manifest
//! (choosing a platform from an index), fetch the config, fetch the missing
//! layers in parallel into the writer's staging area (verified by size and
//! digest while streaming, resumed with Range after a dropped connection,
//! fetched again after bad bytes), check each layer's diff_id, and only
//! then commit blobs and record the image. A failed pull commits nothing.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use distill_image::config::ImageConfig;
use distill_image::digest::Digest;
use distill_image::hash_reader::HashingReader;
use distill_image::layer::{self, scan_tar};
use distill_image::manifest::{Descriptor, Index, Manifest, media_type};
use distill_image::reference::Reference;
use distill_image::store::{BlobSink, ImageRecord, LayerInfo, StagedBlob, Writer};
use distill_image::timestamp::Timestamp;

use crate::client::{Call, Client, Repo, drain, error_detail};
use crate::error::{RegistryError, Result};
use crate::platform::Platform;

/// What registries are asked to send for a manifest.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";
/// Largest manifest or index read (the spec's registries cap at 4 MiB).
const MAX_MANIFEST: u64 = 4 << 20;
/// Largest image config read into memory.
const MAX_CONFIG: u64 = 64 << 20;
/// Fresh downloads of a blob whose bytes came out wrong before giving up.
const CONTENT_ATTEMPTS: u32 = 3;

/// Progress of a pull, for the CLI's display.
#[derive(Debug, Clone)]
pub enum PullEvent {
    /// The reference resolved to this manifest (and index, if any).
    Resolved {
        manifest: Digest,
        index: Option<Digest>,
    },
    /// A layer is already in the store.
    LayerExists {
        digest: Digest,
    },
    /// A layer will be downloaded.
    LayerWaiting {
        digest: Digest,
        size: u64,
    },
    LayerProgress {
        digest: Digest,
        done: u64,
        size: u64,
    },
    /// A transfer failed and is being retried (resumed at `offset`).
    LayerRetry {
        digest: Digest,
        offset: u64,
        reason: String,
    },
    LayerVerified {
        digest: Digest,
    },
}

pub trait PullProgress: Sync {
    fn event(&self, event: PullEvent);
}

/// No display.
pub struct NoProgress;

impl PullProgress for NoProgress {
    fn event(&self, _: PullEvent) {}
}

/// The result of a pull.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub image: ImageRecord,
    /// The digest the reference resolved to (the index's, for a multi-platform image).
    pub resolved: Digest,
    /// Whether anything new came in (false: the image was up to date).
    pub new: bool,
    /// Bytes downloaded for layers.
    pub downloaded: u64,
}

/// A manifest as fetched: its exact bytes, media type and digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// One layer to download.
struct Job {
    index: usize,
    desc: Descriptor,
    diff_id: Digest,
    sink: Option<BlobSink>,
}

impl Client {
    fn manifest_url(&self, repo: &Repo, reference: &str) -> String {
        format!("{}/v2/{}/manifests/{reference}", self.base_url(&repo.host), repo.path)
    }

    pub(crate) fn blob_url(&self, repo: &Repo, digest: &Digest) -> String {
        format!("{}/v2/{}/blobs/{digest}", self.base_url(&repo.host), repo.path)
    }

    /// Fetches a manifest or index by tag or digest, verified against the
    /// digest asked for (or the one the registry announces).
    pub fn fetch_manifest(&self, repo: &Repo, tag_or_digest: &str, reference: &str) -> Result<FetchedManifest> {
        let call = Call::new("GET", self.manifest_url(repo, tag_or_digest), repo.pull_scope(), reference)
            .header("accept", MANIFEST_ACCEPT);
        let mut resp = self.execute(repo, &call)?;
        match resp.status().as_u16() {
            200 => {}
            404 => {
                return Err(RegistryError::NotFound {
                    what: format!("manifest {tag_or_digest} in {}", repo.name()),
                    reference: reference.to_string(),
                    detail: error_detail(&mut resp),
                });
            }
            status => {
                return Err(RegistryError::Status {
                    method: "GET".into(),
                    url: call.url.clone(),
                    status,
                    detail: error_detail(&mut resp),
                });
            }
        }
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let content_type = header("content-type");
        let announced = header("docker-content-digest");
        let mut bytes = Vec::new();
        resp.body_mut().as_reader().take(MAX_MANIFEST + 1).read_to_end(&mut bytes).map_err(|e| {
            RegistryError::Transport { method: "GET".into(), url: call.url.clone(), message: e.to_string() }
        })?;
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(RegistryError::invalid(format!("manifest of {reference}"), "larger than 4 MiB"));
        }
        let digest = Digest::of(&bytes);
        let expected = match tag_or_digest.parse::<Digest>() {
            Ok(d) => Some(d),
            Err(_) => announced.and_then(|a| a.parse::<Digest>().ok()),
        };
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(RegistryError::DigestMismatch {
                what: format!("manifest of {reference}"),
                expected,
                actual: digest,
            });
        }
        let media_type = manifest_media_type(content_type.as_deref(), &bytes)
            .ok_or_else(|| RegistryError::invalid(format!("manifest of {reference}"), "unknown media type"))?;
        Ok(FetchedManifest { bytes, media_type, digest })
    }

    /// Resolves `reference` to a single-platform manifest for `platform`.
    /// Returns the manifest and the digest the reference named (an index's
    /// digest for a multi-platform image).
    pub fn resolve(&self, reference: &Reference, platform: &Platform) -> Result<(FetchedManifest, Digest)> {
        self.resolve_with_index(reference, platform).map(|(m, d, _)| (m, d))
    }

    /// [`Self::resolve`], also returning the index's bytes when there was one.
    fn resolve_with_index(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<(FetchedManifest, Digest, Option<Vec<u8>>)> {
        let repo = Repo::of(reference);
        let name = reference.to_string();
        let first = match reference.digest() {
            Some(d) => d.to_string(),
            None => reference.tag().unwrap_or("latest").to_string(),
        };
        let mut fetched = self.fetch_manifest(&repo, &first, &name)?;
        let resolved = fetched.digest;
        let mut top_index = None;
        for _ in 0..2 {
            if !media_type::is_index(&fetched.media_type) {
                break;
            }
            let index = Index::from_slice(&fetched.bytes)
                .map_err(|e| RegistryError::invalid(format!("index of {name}"), e.to_string()))?;
            let chosen = platform.select(&index.manifests).ok_or_else(|| RegistryError::NoPlatform {
                reference: name.clone(),
                platform: platform.to_string(),
                available: available_platforms(&index),
            })?;
            let child = self.fetch_manifest(&repo, &chosen.digest.to_string(), &name)?;
            if top_index.is_none() {
                top_index = Some(fetched.bytes.clone());
            }
            if child.bytes.len() as u64 != chosen.size {
                return Err(RegistryError::SizeMismatch {
                    what: format!("manifest {} of {name}", chosen.digest),
                    expected: chosen.size,
                    actual: child.bytes.len() as u64,
                });
            }
            fetched = child;
        }
        if !media_type::is_manifest(&fetched.media_type) {
            return Err(RegistryError::invalid(
                format!("manifest of {name}"),
                format!("{} is not an image manifest", fetched.media_type),
            ));
        }
        Ok((fetched, resolved, top_index))
    }

    /// Fetches a small blob (a config) into memory, verified.
    pub fn fetch_small_blob(&self, repo: &Repo, desc: &Descriptor, reference: &str) -> Result<Vec<u8>> {
        if desc.size > MAX_CONFIG {
            return Err(RegistryError::invalid(format!("blob {}", desc.digest), "too large to read into memory"));
        }
        let mut buf = Vec::new();
        self.fetch_blob(repo, desc, &mut MemSink(&mut buf), reference, &NoProgress)?;
        Ok(buf)
    }

    /// Pulls `reference` for `platform` into the store through `writer`.
    pub fn pull(
        &self,
        writer: &Writer<'_>,
        reference: &Reference,
        platform: &Platform,
        progress: &dyn PullProgress,
    ) -> Result<Pulled> {
        let store = writer.store();
        let reference = reference.clone().with_default_tag();
        let name = reference.to_string();
        let repo = Repo::of(&reference);
        let (fetched, resolved, index_bytes) = self.resolve_with_index(&reference, platform)?;
        progress.event(PullEvent::Resolved {
            manifest: fetched.digest,
            index: (resolved != fetched.digest).then_some(resolved),
        });
        let manifest = Manifest::from_slice(&fetched.bytes)
            .map_err(|e| RegistryError::invalid(format!("manifest of {name}"), e.to_string()))?;
        let config_bytes = if store.has_blob(&manifest.config.digest) {
            store.read_blob(&manifest.config.digest)?
        } else {
            self.fetch_small_blob(&repo, &manifest.config, &name)?
        };
        let config = ImageConfig::from_slice(&config_bytes)
            .map_err(|e| RegistryError::invalid(format!("config of {name}"), e.to_string()))?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != manifest.layers.len() {
            return Err(RegistryError::invalid(
                format!("image {name}"),
                format!("its config lists {} diff_ids for {} layers", diff_ids.len(), manifest.layers.len()),
            ));
        }

        // Which layers are missing; sinks are made here because the writer stays on this thread.
        let mut infos: Vec<Option<LayerInfo>> = vec![None; manifest.layers.len()];
        let mut jobs = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, (desc, diff_id)) in manifest.layers.iter().zip(diff_ids).enumerate() {
            if let Some(info) = store.layer_info(&desc.digest)?.filter(|l| l.diff_id == *diff_id)
                && store.has_blob(&desc.digest)
            {
                progress.event(PullEvent::LayerExists { digest: desc.digest });
                infos[i] = Some(info);
                continue;
            }
            if !seen.insert(desc.digest) {
                continue;
            }
            progress.event(PullEvent::LayerWaiting { digest: desc.digest, size: desc.size });
            jobs.push(Job { index: i, desc: desc.clone(), diff_id: *diff_id, sink: Some(writer.download_sink()?) });
        }
        let downloaded: u64 = jobs.iter().map(|j| j.desc.size).sum();
        let new_layers = jobs.len();
        let staged = self.download_layers(&repo, &name, jobs, progress)?;

        // Everything is verified: commit blobs, then the names.
        for (index, blob, info) in staged {
            writer.commit_blob(blob, Some(&info.digest))?;
            infos[index] = Some(info);
        }
        // Duplicated layers in one manifest share the first one's info.
        for i in 0..infos.len() {
            if infos[i].is_none() {
                let digest = manifest.layers[i].digest;
                infos[i] = infos.iter().flatten().find(|l| l.digest == digest).cloned();
            }
        }
        let infos: Vec<LayerInfo> = infos.into_iter().flatten().collect();
        if infos.len() != manifest.layers.len() {
            return Err(RegistryError::invalid(format!("image {name}"), "a layer went missing while pulling"));
        }
        writer.put_blob(&config_bytes)?;
        let manifest_digest = writer.put_blob(&fetched.bytes)?;
        // Kept so that `name@<index digest>` finds the image (see `Store::resolve`).
        if let Some(index) = &index_bytes {
            writer.put_blob(index)?;
        }
        let tag = reference.tag().is_some().then(|| reference.clone());
        let record = ImageRecord {
            digest: manifest_digest,
            media_type: fetched.media_type.clone(),
            size: fetched.bytes.len() as u64,
            config: manifest.config.digest,
            added: Timestamp::now(),
            tags: tag.iter().cloned().collect(),
        };
        let (added, moved) = writer.update(|tx| {
            for info in &infos {
                tx.put_layer(info)?;
            }
            let added = tx.add_image(&record)?;
            let moved = match &tag {
                Some(t) => tx.set_tag(t, &record.digest)?.is_some(),
                None => false,
            };
            Ok((added, moved))
        })?;
        for l in &manifest.layers {
            self.known.add(&repo.registry, l.digest, &repo.path);
        }
        self.known.add(&repo.registry, manifest.config.digest, &repo.path);
        let image = store.images()?.into_iter().find(|i| i.digest == record.digest).unwrap_or(record);
        Ok(Pulled { image, resolved, new: added || moved || new_layers > 0, downloaded })
    }

    /// Downloads and verifies `jobs` on up to `parallel` threads. Returns
    /// (layer index, staged blob, layer info) for each; the first error
    /// stops the others.
    fn download_layers(
        &self,
        repo: &Repo,
        name: &str,
        jobs: Vec<Job>,
        progress: &dyn PullProgress,
    ) -> Result<Vec<(usize, StagedBlob, LayerInfo)>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let threads = self.opts.parallel.clamp(1, jobs.len());
        let queue = Mutex::new(jobs.into_iter().rev().collect::<Vec<_>>());
        let results = Mutex::new(Vec::new());
        let failed = AtomicBool::new(false);
        let first_error: Mutex<Option<RegistryError>> = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    loop {
                        if failed.load(Ordering::Relaxed) {
                            return;
                        }
                        let Some(mut job) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop() else { return };
                        match self.download_layer(repo, name, &mut job, progress, &failed) {
                            Ok((blob, info)) => {
                                results.lock().unwrap_or_else(|e| e.into_inner()).push((job.index, blob, info))
                            }
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                first_error.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(e);
                                return;
                            }
                        }
                    }
                });
            }
        });
        if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(e);
        }
        Ok(results.into_inner().unwrap_or_else(|e| e.into_inner()))
    }

    fn download_layer(
        &self,
        repo: &Repo,
        name: &str,
        job: &mut Job,
        progress: &dyn PullProgress,
        cancelled: &AtomicBool,
    ) -> Result<(StagedBlob, LayerInfo)> {
        let mut sink = job.sink.take().ok_or_else(|| RegistryError::invalid("pull", "a layer was taken twice"))?;
        self.fetch_blob(repo, &job.desc, &mut SinkAdapter { sink: &mut sink, cancelled }, name, progress)?;
        let staged = sink.finish()?;
        let (diff_id, uncompressed) = layer_diff_id(&staged)
            .map_err(|e| RegistryError::invalid(format!("layer {} of {name}", job.desc.digest), e))?;
        if diff_id != job.diff_id {
            let _ = std::fs::remove_file(staged.path());
            return Err(RegistryError::DigestMismatch {
                what: format!("layer {} of {name} (diff_id)", job.desc.digest),
                expected: job.diff_id,
                actual: diff_id,
            });
        }
        progress.event(PullEvent::LayerVerified { digest: job.desc.digest });
        let info = LayerInfo {
            digest: job.desc.digest,
            diff_id,
            media_type: job.desc.media_type.clone(),
            size: job.desc.size,
            uncompressed_size: uncompressed,
        };
        Ok((staged, info))
    }

    /// Streams a blob into `sink`, checking size and digest. A dropped
    /// connection or a short body resumes at the current length with a
    /// Range request; wrong bytes start over (a few times, then fail).
    pub(crate) fn fetch_blob(
        &self,
        repo: &Repo,
        desc: &Descriptor,
        sink: &mut dyn Sink,
        reference: &str,
        progress: &dyn PullProgress,
    ) -> Result<()> {
        let url = self.blob_url(repo, &desc.digest);
        let mut transport_failures = 0u32;
        let mut content_failures = 0u32;
        let mut use_urls = false;
        loop {
            sink.check_cancelled()?;
            let offset = sink.len();
            let outcome = if use_urls {
                self.fetch_foreign(desc, sink, reference)
            } else {
                self.fetch_blob_once(repo, &url, desc, sink, reference, progress)
            };
            let err = match outcome {
                Ok(()) => {
                    let actual = sink.digest();
                    if sink.len() == desc.size && actual == desc.digest {
                        return Ok(());
                    }
                    if sink.len() == desc.size {
                        RegistryError::DigestMismatch {
                            what: format!("blob {} of {reference}", desc.digest),
                            expected: desc.digest,
                            actual,
                        }
                    } else {
                        // A clean end of stream before `size` bytes: resume.
                        RegistryError::Transport {
                            method: "GET".into(),
                            url: url.clone(),
                            message: format!("connection closed after {} of {} bytes", sink.len(), desc.size),
                        }
                    }
                }
                Err(RegistryError::NotFound { .. })
                    if !use_urls && desc.urls.as_ref().is_some_and(|u| !u.is_empty()) =>
                {
                    // Non-distributable layers live at their `urls`.
                    use_urls = true;
                    sink.restart()?;
                    continue;
                }
                Err(e) => e,
            };
            match &err {
                RegistryError::DigestMismatch { .. } | RegistryError::SizeMismatch { .. } => {
                    content_failures += 1;
                    if content_failures >= CONTENT_ATTEMPTS {
                        return Err(err);
                    }
                    sink.restart()?;
                }
                e if e.is_transient() => {
                    // Progress made since the last failure resets the count:
                    // a link that drops every few MB still finishes.
                    if sink.len() > offset {
                        transport_failures = 0;
                    }
                    transport_failures += 1;
                    if transport_failures >= self.opts.attempts.max(1) {
                        return Err(err);
                    }
                    std::thread::sleep(self.opts.backoff.saturating_mul(1 << transport_failures.min(5)));
                }
                _ => return Err(err),
            }
            progress.event(PullEvent::LayerRetry { digest: desc.digest, offset: sink.len(), reason: err.to_string() });
        }
    }

    /// One GET of a blob from `sink.len()` on; returns when the body ends.
    fn fetch_blob_once(
        &self,
        repo: &Repo,
        url: &str,
        desc: &Descriptor,
        sink: &mut dyn Sink,
        reference: &str,
        progress: &dyn PullProgress,
    ) -> Result<()> {
        let offset = sink.len();
        let mut call = Call::new("GET", url.to_string(), repo.pull_scope(), reference);
        if offset > 0 {
            call = call.header("range", format!("bytes={offset}-"));
        }
        let mut resp = self.execute(repo, &call)?;
        match resp.status().as_u16() {
            200 if offset > 0 => sink.restart()?,
            200 => {}
            206 => {
                let range = resp.headers().get("content-range").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                if !range.starts_with(&format!("bytes {offset}-")) {
                    // Not the range we asked for: start over without one.
                    drain(&mut resp);
                    sink.restart()?;
                    return Err(RegistryError::Transport {
                        method: "GET".into(),
                        url: url.to_string(),
                        message: format!("unexpected Content-Range {range:?}"),
                    });
                }
            }
            416 => {
                drain(&mut resp);
                sink.restart()?;
                return Err(RegistryError::Transport {
                    method: "GET".into(),
                    url: url.to_string(),
                    message: "range not satisfiable".into(),
                });
            }
            404 => {
                return Err(RegistryError::NotFound {
                    what: format!("blob {} in {}", desc.digest, repo.name()),
                    reference: reference.to_string(),
                    detail: error_detail(&mut resp),
                });
            }
            status => {
                return Err(RegistryError::Status {
                    method: "GET".into(),
                    url: url.to_string(),
                    status,
                    detail: error_detail(&mut resp),
                });
            }
        }
        let mut body = resp.body_mut().as_reader();
        copy_limited(&mut body, sink, desc, url, progress)
    }

    /// A non-distributable layer from its `urls` (no registry auth).
    fn fetch_foreign(&self, desc: &Descriptor, sink: &mut dyn Sink, reference: &str) -> Result<()> {
        let mut errors = Vec::new();
        for url in desc.urls.iter().flatten() {
            sink.restart()?;
            let host = url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or("");
            let repo = Repo { registry: host.to_string(), host: host.to_string(), path: String::new() };
            let call = Call::new("GET", url.clone(), String::new(), reference);
            match self.execute(&repo, &call) {
                Ok(mut resp) if resp.status().as_u16() == 200 => {
                    let mut body = resp.body_mut().as_reader();
                    return copy_limited(&mut body, sink, desc, url, &NoProgress);
                }
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    errors.push(format!("{url}: HTTP {status}: {}", error_detail(&mut resp)));
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(RegistryError::NotFound {
            what: format!("non-distributable layer {}", desc.digest),
            reference: reference.to_string(),
            detail: errors.join("; "),
        })
    }
}

/// Copies a body into `sink`, never past the descriptor's size.
fn copy_limited(
    body: &mut dyn Read,
    sink: &mut dyn Sink,
    desc: &Descriptor,
    url: &str,
    progress: &dyn PullProgress,
) -> Result<()> {
    let mut buf = vec![0u8; 256 << 10];
    let mut last_report = sink.len();
    loop {
        sink.check_cancelled()?;
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                sink.flush()?;
                return Err(RegistryError::Transport {
                    method: "GET".into(),
                    url: url.to_string(),
                    message: e.to_string(),
                });
            }
        };
        if sink.len() + n as u64 > desc.size {
            return Err(RegistryError::SizeMismatch {
                what: format!("blob {}", desc.digest),
                expected: desc.size,
                actual: sink.len() + n as u64,
            });
        }
        sink.write(&buf[..n])?;
        if sink.len() - last_report >= 1 << 20 || sink.len() == desc.size {
            last_report = sink.len();
            progress.event(PullEvent::LayerProgress { digest: desc.digest, done: sink.len(), size: desc.size });
        }
    }
    sink.flush()
}

/// Where fetched bytes go: a staging file or memory.
pub(crate) trait Sink {
    fn len(&self) -> u64;
    fn digest(&self) -> Digest;
    fn write(&mut self, data: &[u8]) -> Result<()>;
    fn flush(&mut self) -> Result<()>;
    fn restart(&mut self) -> Result<()>;
    fn check_cancelled(&self) -> Result<()> {
        Ok(())
    }
}

struct MemSink<'a>(&'a mut Vec<u8>);

impl Sink for MemSink<'_> {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    fn digest(&self) -> Digest {
        Digest::of(self.0)
    }
    fn write(&mut self, data: &[u8]) -> Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn restart(&mut self) -> Result<()> {
        self.0.clear();
        Ok(())
    }
}

struct SinkAdapter<'a> {
    sink: &'a mut BlobSink,
    cancelled: &'a AtomicBool,
}

impl Sink for SinkAdapter<'_> {
    fn len(&self) -> u64 {
        self.sink.len()
    }
    fn digest(&self) -> Digest {
        // A download sink always knows; the empty digest would only fail the check.
        self.sink.digest().unwrap_or_else(|| Digest::of(b""))
    }
    fn write(&mut self, data: &[u8]) -> Result<()> {
        self.sink.write_all(data).map_err(|e| RegistryError::io("writing a blob into the store's staging area", e))
    }
    fn flush(&mut self) -> Result<()> {
        self.sink.flush().map_err(|e| RegistryError::io("writing a blob into the store's staging area", e))
    }
    fn restart(&mut self) -> Result<()> {
        Ok(self.sink.restart()?)
    }
    fn check_cancelled(&self) -> Result<()> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(RegistryError::invalid("pull", "cancelled because another layer failed"));
        }
        Ok(())
    }
}

/// Decompresses a staged layer and checks it is a safe tar; returns its
/// diff_id and uncompressed size.
fn layer_diff_id(staged: &StagedBlob) -> Result<(Digest, u64), String> {
    let file = File::open(staged.path()).map_err(|e| e.to_string())?;
    let dec = layer::decompress(BufReader::with_capacity(1 << 20, file)).map_err(|e| e.to_string())?;
    let mut hashed = HashingReader::new(dec);
    scan_tar(&mut hashed).map_err(|e| e.to_string())?;
    hashed.finish_draining().map_err(|e| e.to_string())
}

/// The media type of fetched manifest bytes: the Content-Type if it names
/// a manifest or index, else the body's `mediaType`, else inferred.
fn manifest_media_type(content_type: Option<&str>, bytes: &[u8]) -> Option<String> {
    let ct = content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_string());
    if let Some(ct) = ct.filter(|c| media_type::is_manifest(c) || media_type::is_index(c)) {
        return Some(ct);
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
        #[serde(default)]
        config: Option<serde_json::Value>,
    }
    let p: Probe = serde_json::from_slice(bytes).ok()?;
    if let Some(mt) = p.media_type.filter(|m| !m.is_empty()) {
        return Some(mt);
    }
    if p.manifests.is_some() {
        return Some(media_type::OCI_INDEX.to_string());
    }
    if p.config.is_some() {
        return Manifest::from_slice(bytes).ok().map(|m| m.effective_media_type().to_string());
    }
    None
}

fn available_platforms(index: &Index) -> String {
    let list: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .filter(|p| p.os != "unknown")
        .map(|p| match &p.variant {
            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        })
        .collect();
    if list.is_empty() { "none".to_string() } else { list.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_from_header_or_body() {
        assert_eq!(
            manifest_media_type(Some("application/vnd.oci.image.index.v1+json; charset=utf-8"), b"{}").as_deref(),
            Some(media_type::OCI_INDEX)
        );
        assert_eq!(
            manifest_media_type(Some("application/json"), br#"{"schemaVersion":2,"manifests":[]}"#).as_deref(),
            Some(media_type::OCI_INDEX)
        );
        assert_eq!(manifest_media_type(None, b"not json"), None);
    }
}
