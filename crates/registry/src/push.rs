//! Pushing an image from the store: each blob is checked with HEAD,
//! mounted from another repository of the same registry when one is known
//! to hold it (falling back to an upload when the registry declines with
//! 202), uploaded with one PUT when small or in PATCH chunks when big; then
//! the manifest is PUT with the exact bytes the store holds and its media
//! type, so the digest on the registry is the digest in the store.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use distill_image::digest::Digest;
use distill_image::manifest::{Descriptor, Index, Manifest};
use distill_image::reference::Reference;
use distill_image::store::{ImageRecord, Store};

use crate::client::{Call, CallBody, Client, Repo, drain, error_detail, urlencode};
use crate::error::{RegistryError, Result};

#[derive(Debug, Clone)]
pub enum PushEvent {
    BlobExists { digest: Digest },
    BlobMounted { digest: Digest, from: String },
    BlobUploading { digest: Digest, size: u64 },
    BlobRetry { digest: Digest, reason: String },
    BlobPushed { digest: Digest },
    ManifestPushed { digest: Digest },
}

pub trait PushProgress: Sync {
    fn event(&self, event: PushEvent);
}

pub struct NoPushProgress;

impl PushProgress for NoPushProgress {
    fn event(&self, _: PushEvent) {}
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub digest: Digest,
    pub size: u64,
    /// Blobs uploaded (not already there, not mounted).
    pub uploaded: usize,
    pub mounted: usize,
}

/// How a blob got to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobOutcome {
    Exists,
    Mounted,
    Uploaded,
}

/// Repositories known to hold a blob, per registry (learned from pulls and
/// pushes of this client), the candidates for a cross-repository mount.
#[derive(Default)]
pub(crate) struct KnownBlobs(Mutex<HashMap<(String, Digest), Vec<String>>>);

impl KnownBlobs {
    pub(crate) fn add(&self, registry: &str, digest: Digest, path: &str) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let v = m.entry((registry.to_string(), digest)).or_default();
        if !v.iter().any(|p| p == path) {
            v.push(path.to_string());
        }
    }

    fn source(&self, registry: &str, digest: &Digest, not: &str) -> Option<String> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&(registry.to_string(), *digest))?.iter().find(|p| p.as_str() != not).cloned()
    }
}

impl Client {
    /// Notes that `reference`'s repository holds `digest` (a mount source for later pushes).
    pub fn remember_blob(&self, reference: &Reference, digest: Digest) {
        let repo = Repo::of(reference);
        self.known.add(&repo.registry, digest, &repo.path);
    }

    /// Pushes a stored image to `target` (its tag, or its digest when it has none).
    pub fn push_image(
        &self,
        store: &Store,
        image: &ImageRecord,
        target: &Reference,
        progress: &dyn PushProgress,
    ) -> Result<Pushed> {
        let repo = Repo::of(target);
        let name = target.to_string();
        let manifest_bytes = store.read_blob(&image.digest)?;
        let manifest = Manifest::from_slice(&manifest_bytes)
            .map_err(|e| RegistryError::invalid(format!("manifest {}", image.digest), e.to_string()))?;
        let mut blobs: Vec<Descriptor> = vec![manifest.config.clone()];
        for l in &manifest.layers {
            if !blobs.iter().any(|b| b.digest == l.digest) {
                blobs.push(l.clone());
            }
        }
        // The store is not shareable between threads: look up the files here.
        let mut files = Vec::new();
        for b in blobs {
            let size = store.blob_size(&b.digest)?;
            if size != b.size {
                return Err(RegistryError::SizeMismatch {
                    what: format!("stored blob {}", b.digest),
                    expected: b.size,
                    actual: size,
                });
            }
            files.push((store.blob_path(&b.digest), b));
        }
        let outcomes = self.push_blobs(&repo, &name, files, progress)?;
        let reference = match (target.tag(), target.digest()) {
            (Some(tag), _) => tag.to_string(),
            (None, Some(d)) if d != image.digest => {
                return Err(RegistryError::invalid(
                    format!("push target {name}"),
                    format!("its digest is not the image's manifest digest {}", image.digest),
                ));
            }
            _ => image.digest.to_string(),
        };
        let digest = self.put_manifest(&repo, &reference, &image.media_type, &manifest_bytes, &name)?;
        progress.event(PushEvent::ManifestPushed { digest });
        Ok(Pushed {
            digest,
            size: manifest_bytes.len() as u64,
            uploaded: outcomes.iter().filter(|o| **o == BlobOutcome::Uploaded).count(),
            mounted: outcomes.iter().filter(|o| **o == BlobOutcome::Mounted).count(),
        })
    }

    /// Pushes a stored multi-platform image (an index recorded by
    /// `Writer::commit_index`): each platform's image by digest, then the
    /// index's own bytes under `target`'s tag.
    pub fn push_index(
        &self,
        store: &Store,
        index: &ImageRecord,
        target: &Reference,
        progress: &dyn PushProgress,
    ) -> Result<Pushed> {
        let repo = Repo::of(target);
        let name = target.to_string();
        let bytes = store.read_blob(&index.digest)?;
        let parsed = Index::from_slice(&bytes)
            .map_err(|e| RegistryError::invalid(format!("index {}", index.digest), e.to_string()))?;
        let (mut uploaded, mut mounted) = (0, 0);
        let images = store.images()?;
        for entry in &parsed.manifests {
            let image = images.iter().find(|i| i.digest == entry.digest).ok_or_else(|| {
                RegistryError::invalid(
                    format!("index {}", index.digest),
                    format!("{} is not in the store", entry.digest),
                )
            })?;
            let pushed = self.push_image(store, image, &target.with_digest(entry.digest), progress)?;
            uploaded += pushed.uploaded;
            mounted += pushed.mounted;
        }
        let reference = match target.tag() {
            Some(tag) => tag.to_string(),
            None => index.digest.to_string(),
        };
        let digest = self.put_manifest(&repo, &reference, &index.media_type, &bytes, &name)?;
        progress.event(PushEvent::ManifestPushed { digest });
        Ok(Pushed { digest, size: bytes.len() as u64, uploaded, mounted })
    }

    fn push_blobs(
        &self,
        repo: &Repo,
        name: &str,
        blobs: Vec<(PathBuf, Descriptor)>,
        progress: &dyn PushProgress,
    ) -> Result<Vec<BlobOutcome>> {
        let threads = self.opts.parallel.clamp(1, blobs.len().max(1));
        let queue = Mutex::new(blobs);
        let results = Mutex::new(Vec::new());
        let failed = AtomicBool::new(false);
        let first_error: Mutex<Option<RegistryError>> = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    while !failed.load(Ordering::Relaxed) {
                        let Some((path, desc)) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                            return;
                        };
                        match self.push_blob(&path, repo, &desc, name, progress) {
                            Ok(o) => results.lock().unwrap_or_else(|e| e.into_inner()).push(o),
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                first_error.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(e);
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

    /// Whether the repository has the blob (HEAD).
    pub fn blob_exists(&self, repo: &Repo, digest: &Digest, reference: &str) -> Result<bool> {
        let call = Call::new("HEAD", self.blob_url(repo, digest), repo.push_scope(), reference);
        let mut resp = self.execute(repo, &call)?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            status => Err(RegistryError::Status {
                method: "HEAD".into(),
                url: call.url.clone(),
                status,
                detail: error_detail(&mut resp),
            }),
        }
    }

    /// Gets one blob (the file at `path`, `desc.size` bytes) to the repository.
    pub fn push_blob(
        &self,
        path: &Path,
        repo: &Repo,
        desc: &Descriptor,
        reference: &str,
        progress: &dyn PushProgress,
    ) -> Result<BlobOutcome> {
        let size = desc.size;
        if self.blob_exists(repo, &desc.digest, reference)? {
            progress.event(PushEvent::BlobExists { digest: desc.digest });
            self.known.add(&repo.registry, desc.digest, &repo.path);
            return Ok(BlobOutcome::Exists);
        }
        let mut mount_from = self.known.source(&repo.registry, &desc.digest, &repo.path);
        progress.event(PushEvent::BlobUploading { digest: desc.digest, size });
        let mut failures = 0u32;
        loop {
            let result = self.upload_once(repo, desc, path, reference, mount_from.as_deref());
            match result {
                Ok(outcome) => {
                    if let (BlobOutcome::Mounted, Some(from)) = (&outcome, &mount_from) {
                        progress.event(PushEvent::BlobMounted { digest: desc.digest, from: from.clone() });
                    } else {
                        progress.event(PushEvent::BlobPushed { digest: desc.digest });
                    }
                    self.known.add(&repo.registry, desc.digest, &repo.path);
                    return Ok(outcome);
                }
                Err(e) if e.is_transient() => {
                    failures += 1;
                    if failures >= self.opts.attempts.max(1) {
                        return Err(e);
                    }
                    progress.event(PushEvent::BlobRetry { digest: desc.digest, reason: e.to_string() });
                    // The next session starts fresh; a mount is not worth a second try.
                    mount_from = None;
                    std::thread::sleep(self.opts.backoff.saturating_mul(1 << failures.min(5)));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One upload session: POST (with a mount request), then PUT or PATCHes + PUT.
    fn upload_once(
        &self,
        repo: &Repo,
        desc: &Descriptor,
        path: &Path,
        reference: &str,
        mount_from: Option<&str>,
    ) -> Result<BlobOutcome> {
        let base = self.base_url(&repo.host);
        let mut url = format!("{base}/v2/{}/blobs/uploads/", repo.path);
        let mut scope = repo.push_scope();
        if let Some(from) = mount_from {
            url.push_str(&format!("?mount={}&from={}", urlencode(&desc.digest.to_string()), urlencode(from)));
            scope.push_str(&format!(" repository:{from}:pull"));
        }
        let call = Call::new("POST", url, scope.clone(), reference);
        let mut resp = self.execute(repo, &call)?;
        let status = resp.status().as_u16();
        if status == 201 && mount_from.is_some() {
            drain(&mut resp);
            return Ok(BlobOutcome::Mounted);
        }
        // 202: a fresh upload session, also the registry's way of declining a mount.
        if status != 202 {
            return Err(RegistryError::Status {
                method: "POST".into(),
                url: call.url.clone(),
                status,
                detail: error_detail(&mut resp),
            });
        }
        let mut location = self.location(repo, &resp, &call.url)?;
        drain(&mut resp);
        let octet = "application/octet-stream";
        if desc.size > self.opts.monolithic_max {
            let mut offset = 0u64;
            while offset < desc.size {
                let n = self.opts.chunk_size.max(1).min(desc.size - offset);
                let call = Call::new("PATCH", location.clone(), scope.clone(), reference)
                    .header("content-type", octet)
                    .header("content-range", format!("{offset}-{}", offset + n - 1))
                    .body(CallBody::File { path, offset, len: n })
                    .no_retry();
                let mut resp = self.execute(repo, &call)?;
                match resp.status().as_u16() {
                    // 201 from ECR-like registries that take PATCH as the last word.
                    202 | 201 | 204 => {}
                    status => {
                        return Err(RegistryError::Status {
                            method: "PATCH".into(),
                            url: call.url.clone(),
                            status,
                            detail: error_detail(&mut resp),
                        });
                    }
                }
                location = self.location(repo, &resp, &call.url)?;
                drain(&mut resp);
                offset += n;
            }
            self.finish_upload(repo, &location, desc, CallBody::Empty, &scope, reference)
        } else {
            self.finish_upload(
                repo,
                &location,
                desc,
                CallBody::File { path, offset: 0, len: desc.size },
                &scope,
                reference,
            )
        }
    }

    fn finish_upload(
        &self,
        repo: &Repo,
        location: &str,
        desc: &Descriptor,
        body: CallBody<'_>,
        scope: &str,
        reference: &str,
    ) -> Result<BlobOutcome> {
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={}", urlencode(&desc.digest.to_string()));
        let call = Call::new("PUT", url, scope.to_string(), reference)
            .header("content-type", "application/octet-stream")
            .body(body)
            .no_retry();
        let mut resp = self.execute(repo, &call)?;
        match resp.status().as_u16() {
            201 | 204 => {
                let announced = resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok());
                if let Some(actual) = announced.and_then(|a| a.parse::<Digest>().ok())
                    && actual != desc.digest
                {
                    return Err(RegistryError::DigestMismatch {
                        what: format!("uploaded blob {}", desc.digest),
                        expected: desc.digest,
                        actual,
                    });
                }
                drain(&mut resp);
                Ok(BlobOutcome::Uploaded)
            }
            status => Err(RegistryError::Status {
                method: "PUT".into(),
                url: call.url.clone(),
                status,
                detail: error_detail(&mut resp),
            }),
        }
    }

    /// The absolute URL of a response's Location header.
    fn location(&self, repo: &Repo, resp: &ureq::http::Response<ureq::Body>, url: &str) -> Result<String> {
        let loc = resp.headers().get("location").and_then(|v| v.to_str().ok()).ok_or_else(|| {
            RegistryError::invalid(format!("answer to {url}"), "an upload session without a Location header")
        })?;
        Ok(if loc.starts_with("http://") || loc.starts_with("https://") {
            loc.to_string()
        } else if loc.starts_with('/') {
            format!("{}{loc}", self.base_url(&repo.host))
        } else {
            format!("{}/{loc}", self.base_url(&repo.host))
        })
    }

    /// PUTs a manifest or index with its exact bytes; returns its digest.
    pub fn put_manifest(
        &self,
        repo: &Repo,
        tag_or_digest: &str,
        media_type: &str,
        bytes: &[u8],
        reference: &str,
    ) -> Result<Digest> {
        let digest = Digest::of(bytes);
        let url = format!("{}/v2/{}/manifests/{tag_or_digest}", self.base_url(&repo.host), repo.path);
        let call = Call::new("PUT", url, repo.push_scope(), reference)
            .header("content-type", media_type)
            .body(CallBody::Bytes(bytes));
        let mut resp = self.execute(repo, &call)?;
        match resp.status().as_u16() {
            201 | 200 | 204 => {
                let announced = resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok());
                if let Some(actual) = announced.and_then(|a| a.parse::<Digest>().ok())
                    && actual != digest
                {
                    return Err(RegistryError::DigestMismatch {
                        what: format!("manifest pushed to {reference}"),
                        expected: digest,
                        actual,
                    });
                }
                drain(&mut resp);
                Ok(digest)
            }
            404 => Err(RegistryError::NotFound {
                what: format!("repository {}", repo.name()),
                reference: reference.to_string(),
                detail: error_detail(&mut resp),
            }),
            status => Err(RegistryError::Status {
                method: "PUT".into(),
                url: call.url.clone(),
                status,
                detail: error_detail(&mut resp),
            }),
        }
    }
}
