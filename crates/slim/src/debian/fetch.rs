//! Downloads: plain HTTP (or `file://` for local mirrors) with retries, and a cache of verified files keyed by
//! SHA-256. A cached file is re-hashed every time it is used; a mismatch deletes it and fetches it again.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::DebianError;

/// Lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

/// SHA-256 of a byte slice, lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    to_hex(&Sha256::digest(data))
}

/// SHA-256 and length of a file.
pub fn sha256_file(path: &Path) -> io::Result<(String, u64)> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n_total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        n_total += n as u64;
    }
    Ok((to_hex(&h.finalize()), n_total))
}

/// What a verified download must hash to.
#[derive(Debug, Clone)]
pub struct Expected {
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// Exact size, when known.
    pub size: Option<u64>,
}

static TMP: AtomicU64 = AtomicU64::new(0);

/// HTTP client plus digest-keyed cache.
pub struct Fetcher {
    agent: ureq::Agent,
    cache_dir: PathBuf,
    attempts: u32,
    /// Downloaded bytes (not counting cache hits).
    pub downloaded: u64,
}

enum Failure {
    /// Worth retrying (network error, 5xx, digest mismatch of a fresh download).
    Transient(String),
    /// Not worth retrying (404, local file missing).
    Permanent(String),
}

impl Fetcher {
    /// A fetcher caching under `cache_dir` (created if needed); `cache_dir/sha256/<hex>` holds verified files.
    pub fn new(cache_dir: &Path) -> Result<Fetcher, DebianError> {
        for d in ["sha256", "tmp"] {
            let p = cache_dir.join(d);
            fs::create_dir_all(&p).map_err(|e| DebianError::io(&p, e))?;
        }
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_recv_body(Some(Duration::from_secs(1800)))
            .user_agent(concat!("distill/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Fetcher { agent: config.into(), cache_dir: cache_dir.to_path_buf(), attempts: 3, downloaded: 0 })
    }

    /// The scratch directory inside the cache (temporary files, gpgv homes).
    pub fn scratch_dir(&self) -> PathBuf {
        self.cache_dir.join("tmp")
    }

    /// Where a verified file with this digest lives in the cache.
    pub fn cache_path(&self, sha256: &str) -> PathBuf {
        self.cache_dir.join("sha256").join(sha256)
    }

    /// Fetches a small, not yet verifiable file (InRelease) into memory, at most `limit` bytes.
    pub fn get_bytes(&mut self, url: &str, limit: u64) -> Result<Vec<u8>, DebianError> {
        let mut last = String::new();
        for attempt in 0..self.attempts {
            if attempt > 0 {
                std::thread::sleep(Duration::from_secs(1 << attempt));
            }
            let mut buf = Vec::new();
            let res = self
                .open(url)
                .and_then(|r| r.take(limit + 1).read_to_end(&mut buf).map_err(|e| Failure::Transient(e.to_string())));
            match res {
                Ok(_) if buf.len() as u64 > limit => {
                    return Err(DebianError::Download {
                        url: url.into(),
                        reason: format!("larger than {limit} bytes"),
                    });
                }
                Ok(_) => {
                    self.downloaded += buf.len() as u64;
                    return Ok(buf);
                }
                Err(Failure::Permanent(e)) => return Err(DebianError::Download { url: url.into(), reason: e }),
                Err(Failure::Transient(e)) => last = e,
            }
        }
        Err(DebianError::Download {
            url: url.into(),
            reason: format!("{} attempts failed; last: {last}", self.attempts),
        })
    }

    /// Returns the cached path of a file with the expected digest, downloading it from the first of `urls` that
    /// works. Cached files are re-hashed before use; a corrupt one is deleted (and reported through `note`) and
    /// fetched again. A download that does not match is an error ([`DebianError::DigestMismatch`]) after retries.
    pub fn get_verified(
        &mut self,
        urls: &[String],
        want: &Expected,
        note: &mut dyn FnMut(&str),
    ) -> Result<PathBuf, DebianError> {
        let dest = self.cache_path(&want.sha256);
        if dest.exists() {
            match sha256_file(&dest) {
                Ok((h, n)) if h == want.sha256 && want.size.is_none_or(|s| s == n) => return Ok(dest),
                Ok((h, _)) => {
                    note(&format!("cache: {} is corrupt (sha256 {h}), fetching it again", dest.display()));
                    fs::remove_file(&dest).map_err(|e| DebianError::io(&dest, e))?;
                }
                Err(e) => return Err(DebianError::io(&dest, e)),
            }
        }
        let mut errors = Vec::new();
        for url in urls {
            match self.download_verified(url, want, &dest) {
                Ok(()) => return Ok(dest),
                Err(e @ DebianError::DigestMismatch { .. }) => return Err(e),
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(DebianError::Download { url: urls.join(" | "), reason: errors.join("; ") })
    }

    fn download_verified(&mut self, url: &str, want: &Expected, dest: &Path) -> Result<(), DebianError> {
        let n = TMP.fetch_add(1, Ordering::Relaxed);
        let tmp = self.scratch_dir().join(format!("{}.{}.{n}.part", want.sha256, std::process::id()));
        let mut last = String::new();
        let mut mismatch = None;
        for attempt in 0..self.attempts {
            if attempt > 0 {
                std::thread::sleep(Duration::from_secs(1 << attempt));
            }
            let res = self.open(url).and_then(|r| copy_hashing(r, &tmp, want.size));
            match res {
                Ok((hash, len)) => {
                    self.downloaded += len;
                    if hash == want.sha256 && want.size.is_none_or(|s| s == len) {
                        fs::rename(&tmp, dest).map_err(|e| DebianError::io(dest, e))?;
                        return Ok(());
                    }
                    let _ = fs::remove_file(&tmp);
                    mismatch = Some(DebianError::DigestMismatch {
                        what: url.to_string(),
                        expected: format!("sha256 {} ({} bytes)", want.sha256, size_str(want.size)),
                        actual: format!("sha256 {hash} ({len} bytes)"),
                    });
                    // A mirror caught mid-sync may serve a stale file once; a local file will not change.
                    if url.starts_with("file://") || attempt >= 1 {
                        break;
                    }
                }
                Err(Failure::Permanent(e)) => {
                    let _ = fs::remove_file(&tmp);
                    return Err(DebianError::Download { url: url.into(), reason: e });
                }
                Err(Failure::Transient(e)) => {
                    let _ = fs::remove_file(&tmp);
                    last = e;
                }
            }
        }
        if let Some(m) = mismatch {
            return Err(m);
        }
        Err(DebianError::Download {
            url: url.into(),
            reason: format!("{} attempts failed; last: {last}", self.attempts),
        })
    }

    fn open(&self, url: &str) -> Result<Box<dyn Read>, Failure> {
        if let Some(path) = url.strip_prefix("file://") {
            return match File::open(path) {
                Ok(f) => Ok(Box::new(f)),
                Err(e) => Err(Failure::Permanent(format!("{path}: {e}"))),
            };
        }
        if url.starts_with("https://") {
            return Err(Failure::Permanent(
                "https is not supported by this build; use an http:// mirror (everything is verified against the \
                 signed InRelease)"
                    .into(),
            ));
        }
        match self.agent.get(url).call() {
            Ok(resp) => Ok(Box::new(resp.into_body().into_reader())),
            Err(ureq::Error::StatusCode(code)) if (400..500).contains(&code) && code != 408 && code != 429 => {
                Err(Failure::Permanent(format!("HTTP {code}")))
            }
            Err(e) => Err(Failure::Transient(e.to_string())),
        }
    }
}

fn size_str(s: Option<u64>) -> String {
    s.map_or_else(|| "?".to_string(), |s| s.to_string())
}

/// Streams `r` into `path` (created fresh), hashing on the way; stops reading past `max` + 1 bytes.
fn copy_hashing(r: Box<dyn Read>, path: &Path, max: Option<u64>) -> Result<(String, u64), Failure> {
    let io_err = |e: io::Error| Failure::Transient(format!("{}: {e}", path.display()));
    let mut r: Box<dyn Read> = match max {
        Some(m) => Box::new(r.take(m + 1)),
        None => r,
    };
    let mut f = File::create(path).map_err(|e| Failure::Permanent(format!("{}: {e}", path.display())))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Failure::Transient(e.to_string())),
        };
        h.update(&buf[..n]);
        f.write_all(&buf[..n]).map_err(io_err)?;
        total += n as u64;
    }
    f.sync_all().map_err(io_err)?;
    Ok((to_hex(&h.finalize()), total))
}
