//! Blob ingestion: content is written into the writer's staging directory
//! (same file system as `blobs/`), hashed on the way, and only renamed into
//! `blobs/sha256/<hex>` once complete, fsynced and verified. A reader never
//! sees a partial blob; a crash leaves only staging leftovers.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::fsutil;
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, IoContext, Result};

/// A staging file being written; obtained from [`super::Writer::blob_sink`].
pub struct BlobSink {
    path: PathBuf,
    out: HashingWriter<BufWriter<File>>,
}

/// A complete staging file with its digest and size, ready to commit.
#[derive(Debug)]
pub struct StagedBlob {
    pub(crate) path: PathBuf,
    pub digest: Digest,
    pub size: u64,
}

impl StagedBlob {
    /// Where the content is until it is committed (readable, e.g. to verify
    /// a layer before committing it).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl BlobSink {
    pub(crate) fn create(path: PathBuf) -> Result<BlobSink> {
        let file = File::create(&path).ctx(|| format!("creating {}", path.display()))?;
        Ok(BlobSink { path, out: HashingWriter::new(BufWriter::with_capacity(256 * 1024, file)) })
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.out.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The digest of what was written so far.
    pub fn digest(&self) -> Digest {
        self.out.digest()
    }

    /// Throws away what was written and starts over (a download that must
    /// begin again, e.g. when a server ignored a range request).
    pub fn restart(&mut self) -> Result<()> {
        self.out.flush().ctx(|| format!("writing {}", self.path.display()))?;
        let file = self.out.get_mut().get_mut();
        file.set_len(0).ctx(|| format!("truncating {}", self.path.display()))?;
        io::Seek::rewind(file).ctx(|| format!("rewinding {}", self.path.display()))?;
        self.out.reset();
        Ok(())
    }

    /// Flushes and fsyncs; the content is durable before it is renamed.
    pub fn finish(self) -> Result<StagedBlob> {
        let (buf, digest, size) = self.out.finish();
        let path = self.path;
        let file = buf
            .into_inner()
            .map_err(|e| Error::Io { context: format!("writing {}", path.display()), source: e.into_error() })?;
        file.sync_all().ctx(|| format!("syncing {}", path.display()))?;
        Ok(StagedBlob { path, digest, size })
    }
}

impl Write for BlobSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Moves a staged blob to `blobs/sha256/<hex>`, checking `expected` first.
/// If the blob is already there the staged copy is dropped. The directory
/// is fsynced, so the blob is durable before anything refers to it.
pub(crate) fn commit(blobs_dir: &Path, staged: StagedBlob, expected: Option<&Digest>) -> Result<Digest> {
    if let Some(expected) = expected
        && *expected != staged.digest
    {
        let _ = fs::remove_file(&staged.path);
        return Err(Error::DigestMismatch {
            what: format!("blob {expected}"),
            expected: *expected,
            actual: staged.digest,
        });
    }
    let target = blobs_dir.join(staged.digest.hex());
    if target.is_file() {
        let _ = fs::remove_file(&staged.path);
        return Ok(staged.digest);
    }
    fs::rename(&staged.path, &target).ctx(|| format!("storing blob {}", staged.digest))?;
    fsutil::fsync_dir(blobs_dir)?;
    Ok(staged.digest)
}
