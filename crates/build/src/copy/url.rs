//! ADD's http(s) sources: download, checksum, Last-Modified.
//!
//! As BuildKit's http source and `dockerfile2llb`:
//! - the file is named after the last segment of the URL path
//!   (`__unnamed__` when there is none); ADD then places it like a local
//!   file (inside a destination written with `/`, else at the destination);
//! - mode 0600 (before `--chmod`), owner 0:0 (before `--chown`), mtime from
//!   `Last-Modified` when the server sends one (else the download time);
//! - `--checksum=sha256:<hex>` must match the body, or the step fails;
//! - remote archives are not extracted (only with `--unpack=true`).
//!
//! Redirects are followed (ureq's default, up to 10); a status other than
//! 2xx is an error naming the URL.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::error::{CopyError, Result};
use super::sys;

/// True when an ADD source is an http(s) URL (case-insensitive scheme).
pub fn is_url(source: &str) -> bool {
    let lower = source.get(..8).unwrap_or(source).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// The file name ADD gives a URL's content (BuildKit's `__unnamed__` rule).
pub fn url_file_name(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let no_fragment = after_scheme.split('#').next().unwrap_or_default();
    let no_query = no_fragment.split('?').next().unwrap_or_default();
    let path = no_query.find('/').map_or("", |i| &no_query[i..]);
    match path.trim_end_matches('/').rsplit('/').next() {
        Some(base) if !base.is_empty() && base != "." && base != ".." => base.to_string(),
        _ => "__unnamed__".to_string(),
    }
}

/// A parsed `--checksum=sha256:<hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum(String);

impl Checksum {
    /// Parses the flag value; only sha256 digests are accepted (Git commit
    /// checksums belong to Git sources, which are not supported yet).
    pub fn parse(spec: &str) -> Result<Checksum> {
        let bad = |reason: &str| CopyError::InvalidChecksum { spec: spec.to_string(), reason: reason.to_string() };
        let Some(hex) = spec.strip_prefix("sha256:") else {
            return Err(bad("expected sha256:<64 hex digits>"));
        };
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("expected sha256:<64 hex digits>"));
        }
        Ok(Checksum(format!("sha256:{}", hex.to_ascii_lowercase())))
    }

    /// `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A downloaded URL, staged as `dir/<name>`.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// The URL as written.
    pub url: String,
    /// The file's name (see [`url_file_name`]).
    pub name: String,
    /// Where it is staged.
    pub path: PathBuf,
    /// `sha256:<hex>` of the body.
    pub digest: String,
}

/// Downloads `url` into `dir/<name>` (mode 0600, mtime from
/// `Last-Modified`), verifying `checksum` when given. `dir` must not hold
/// another download of the same name.
pub fn download(url: &str, dir: &Path, checksum: Option<&Checksum>) -> Result<Downloaded> {
    let fail = |reason: String| CopyError::Download { url: url.to_string(), reason };
    let mut config = ureq::Agent::config_builder();
    // Proxies come from the environment (HTTPS_PROXY, NO_PROXY, ...), but
    // the loopback interface is never behind one.
    if is_loopback(url) {
        config = config.proxy(None);
    }
    let agent: ureq::Agent = config
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .user_agent(concat!("distill/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| fail(e.to_string()))?;
    let last_modified = response.headers().get("last-modified").and_then(|v| v.to_str().ok()).and_then(parse_http_date);
    let name = url_file_name(url);
    fs::create_dir_all(dir).map_err(|e| CopyError::io("mkdir", dir.display().to_string(), e))?;
    let path = dir.join(&name);
    let mut out: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| CopyError::io("create", path.display().to_string(), e))?;
    let mut body = response.into_body().into_reader();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(format!("reading the body: {e}"))),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| CopyError::io("write", path.display().to_string(), e))?;
    }
    drop(out);
    let digest = format!("sha256:{}", hasher.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>());
    if let Some(expected) = checksum
        && expected.as_str() != digest
    {
        return Err(CopyError::ChecksumMismatch {
            url: url.to_string(),
            expected: expected.as_str().to_string(),
            actual: digest,
        });
    }
    // The umask may have narrowed 0600; ADD promises exactly 0600.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
        .map_err(|e| CopyError::io("chmod", path.display().to_string(), e))?;
    if let Some(secs) = last_modified {
        sys::set_times(&path, secs.saturating_mul(1_000_000_000))
            .map_err(|e| CopyError::io("utimensat", path.display().to_string(), e))?;
    }
    Ok(Downloaded { url: url.to_string(), name, path, digest })
}

/// Whether the URL's host is `localhost` or a loopback address.
fn is_loopback(url: &str) -> bool {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Seconds since the epoch of an HTTP date in the IMF-fixdate form
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), the one servers must send. The
/// obsolete forms give `None` (the download time is kept).
pub fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else { return None };
    let day: i64 = day.parse().ok()?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| m == month)? as i64
        + 1;
    let year: i64 = year.parse().ok()?;
    let hms: Vec<i64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [h, m, sec] = hms.as_slice() else { return None };
    if !(1..=31).contains(&day) || *h > 23 || *m > 59 || *sec > 60 {
        return None;
    }
    Some(distill_image::timestamp::days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_follow_buildkit() {
        assert_eq!(url_file_name("https://example.com/a/b/tool.tar.gz"), "tool.tar.gz");
        assert_eq!(url_file_name("https://example.com/a/b/tool?x=1#frag"), "tool");
        assert_eq!(url_file_name("https://example.com/dir/"), "dir");
        assert_eq!(url_file_name("https://example.com"), "__unnamed__");
        assert_eq!(url_file_name("https://example.com/"), "__unnamed__");
        assert!(is_url("HTTPS://x/y") && is_url("http://x") && !is_url("httpx/y") && !is_url("h"));
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("http://127.0.0.1:8080/x"));
        assert!(is_loopback("http://LOCALHOST/x"));
        assert!(is_loopback("http://[::1]:80/x"));
        assert!(is_loopback("http://user:pw@127.0.0.2/x"));
        assert!(!is_loopback("https://example.com/x"));
        assert!(!is_loopback("https://10.0.0.1:443"));
    }

    #[test]
    fn http_dates() {
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("garbage"), None);
    }

    #[test]
    fn checksums() {
        let hex = "a".repeat(64);
        assert_eq!(
            Checksum::parse(&format!("sha256:{}", hex.to_uppercase())).unwrap().as_str(),
            format!("sha256:{hex}")
        );
        assert!(Checksum::parse("sha256:abc").is_err());
        assert!(Checksum::parse(&format!("md5:{hex}")).is_err());
    }
}
