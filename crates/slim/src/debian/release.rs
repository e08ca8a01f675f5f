//! `InRelease`: the clearsigned suite index. The signature is checked with `gpgv` against a binary OpenPGP keyring
//! (Debian's `debian-archive-keyring.gpg`); only the text gpgv itself reports as signed is parsed afterwards.

use distill_image::timestamp::{civil_from_days, days_from_civil};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::DebianError;
use super::control;

/// One signature gpgv accepted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GoodSignature {
    /// Fingerprint of the signing (sub)key.
    pub fingerprint: String,
    /// User ID gpgv printed for it.
    pub user_id: String,
}

/// The outcome of [`verify_clearsigned`]: the signed text, exactly as gpgv extracted it, and who signed it.
#[derive(Debug, Clone)]
pub struct VerifiedText {
    /// The signed text (dash-escaping removed).
    pub text: String,
    /// Every good signature (at least one).
    pub signers: Vec<GoodSignature>,
}

/// Hash algorithms (RFC 4880 ids) accepted in a signature: SHA-256, SHA-384, SHA-512, SHA-224. MD5 and SHA-1 signatures
/// never count as good, as in apt.
const STRONG_HASHES: [&str; 4] = ["8", "9", "10", "11"];

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Verifies a clearsigned OpenPGP message (an `InRelease` file) against `keyring` with `gpgv`.
///
/// Rules, like apt's: the file must be exactly one clearsigned message with nothing around it; gpgv must exit 0;
/// no signature may be bad (`BADSIG`); at least one must be good and valid (`GOODSIG` + `VALIDSIG`) with a SHA-2
/// digest. Expired or revoked keys (`EXPKEYSIG`, `REVKEYSIG`) do not count. Signatures by keys missing from the
/// keyring (`ERRSIG`/`NO_PUBKEY`) are ignored when another signature is good. `scratch` is a private directory for
/// gpgv's home and output file.
pub fn verify_clearsigned(data: &[u8], keyring: &Path, scratch: &Path) -> Result<VerifiedText, DebianError> {
    check_clearsigned_structure(data)?;
    if !keyring.is_file() {
        return Err(DebianError::Signature(format!("keyring {} does not exist", keyring.display())));
    }
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let home = scratch.join(format!("gnupg.{}.{n}", std::process::id()));
    std::fs::create_dir_all(&home).map_err(|e| DebianError::io(&home, e))?;
    let result = run_gpgv(data, keyring, &home);
    let _ = std::fs::remove_dir_all(&home);
    result
}

fn run_gpgv(data: &[u8], keyring: &Path, home: &Path) -> Result<VerifiedText, DebianError> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700));
    let input: PathBuf = home.join("InRelease");
    let output: PathBuf = home.join("signed.txt");
    std::fs::write(&input, data).map_err(|e| DebianError::io(&input, e))?;
    let out = Command::new("gpgv")
        .env("LC_ALL", "C")
        .arg("--homedir")
        .arg(home)
        .arg("--status-fd")
        .arg("1")
        .arg("--keyring")
        .arg(keyring)
        .arg("--output")
        .arg(&output)
        .arg(&input)
        .output()
        .map_err(|e| DebianError::Signature(format!("cannot run gpgv (install the gpgv package): {e}")))?;
    let status = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut good: BTreeMap<String, String> = BTreeMap::new(); // long key id -> uid
    let mut valid: Vec<(String, String)> = Vec::new(); // (fingerprint, hash algo)
    let mut bad = Vec::new();
    for line in status.lines() {
        let Some(rest) = line.strip_prefix("[GNUPG:] ") else { continue };
        let mut parts = rest.splitn(3, ' ');
        let kw = parts.next().unwrap_or("");
        let a = parts.next().unwrap_or("").to_string();
        let b = parts.next().unwrap_or("").to_string();
        match kw {
            "GOODSIG" => {
                good.insert(a, b);
            }
            "VALIDSIG" => {
                let f: Vec<&str> = rest.split(' ').collect();
                // VALIDSIG <fpr> <date> <ts> <expire> <ver> <reserved> <pkalgo> <hashalgo> <class> [<primary fpr>]
                valid.push((f.get(1).unwrap_or(&"").to_string(), f.get(8).unwrap_or(&"").to_string()));
            }
            "BADSIG" => bad.push(format!("{a} {b}")),
            _ => {}
        }
    }
    if !bad.is_empty() {
        return Err(DebianError::Signature(format!("bad signature from {}", bad.join(", "))));
    }
    if !out.status.success() {
        return Err(DebianError::Signature(format!(
            "gpgv rejected the file (exit {}): {}",
            out.status.code().unwrap_or(-1),
            stderr.trim()
        )));
    }
    let mut signers = Vec::new();
    for (fpr, hash) in &valid {
        if !STRONG_HASHES.contains(&hash.as_str()) {
            continue;
        }
        // GOODSIG names the long key id: the last 16 hex digits of the fingerprint.
        if let Some((_, uid)) = good.iter().find(|(id, _)| fpr.ends_with(id.as_str())) {
            signers.push(GoodSignature { fingerprint: fpr.clone(), user_id: uid.clone() });
        }
    }
    if signers.is_empty() {
        return Err(DebianError::Signature(format!(
            "no good signature with a SHA-2 digest; gpgv said: {}",
            stderr.trim()
        )));
    }
    let text = std::fs::read(&output).map_err(|e| DebianError::io(&output, e))?;
    let text = String::from_utf8(text).map_err(|_| DebianError::Signature("signed text is not UTF-8".into()))?;
    Ok(VerifiedText { text, signers })
}

/// An InRelease must be exactly one clearsigned message: no text before the header or after the signature, no
/// second message (apt's rule; text outside the signed block would otherwise be easy to smuggle in).
fn check_clearsigned_structure(data: &[u8]) -> Result<(), DebianError> {
    let text = std::str::from_utf8(data).map_err(|_| DebianError::Signature("InRelease is not UTF-8".into()))?;
    let bad = |why: &str| Err(DebianError::Signature(format!("malformed clearsigned file: {why}")));
    const BEGIN: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
    const SIG: &str = "-----BEGIN PGP SIGNATURE-----";
    const END: &str = "-----END PGP SIGNATURE-----";
    if !text.starts_with(BEGIN) {
        return bad("does not start with the clearsign header");
    }
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    if lines.iter().filter(|l| **l == BEGIN).count() != 1 || lines.iter().filter(|l| **l == SIG).count() != 1 {
        return bad("more than one signed message");
    }
    if lines.iter().filter(|l| l.starts_with("-----BEGIN PGP") || l.starts_with("-----END PGP")).count() != 3 {
        return bad("unexpected armor lines");
    }
    let last = lines.iter().rposition(|l| !l.trim().is_empty());
    if last.map(|i| lines[i]) != Some(END) {
        return bad("text after the signature");
    }
    Ok(())
}

/// One `SHA256:` entry of a Release file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseEntry {
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// The parsed, verified Release text of one suite.
#[derive(Debug, Clone)]
pub struct Release {
    /// `Suite:` (e.g. `oldstable`).
    pub suite: String,
    /// `Codename:` (e.g. `bookworm`).
    pub codename: String,
    /// `Date:` as Unix seconds.
    pub date: Option<i64>,
    /// `Valid-Until:` as Unix seconds.
    pub valid_until: Option<i64>,
    /// `Acquire-By-Hash: yes`.
    pub by_hash: bool,
    /// `Architectures:`.
    pub architectures: Vec<String>,
    /// `Components:`.
    pub components: Vec<String>,
    /// Files by path relative to `dists/<suite>/`.
    pub sha256: BTreeMap<String, ReleaseEntry>,
}

impl Release {
    /// Parses a Release text (the signed part of InRelease).
    pub fn parse(text: &str) -> Result<Release, DebianError> {
        let para = control::parse_single(text).map_err(|e| DebianError::Release(e.to_string()))?;
        let get = |f: &str| para.get(f).unwrap_or("").trim().to_string();
        let date_field = |f: &str| -> Result<Option<i64>, DebianError> {
            match para.get(f) {
                None => Ok(None),
                Some(s) => {
                    parse_rfc2822(s).map(Some).ok_or_else(|| DebianError::Release(format!("cannot parse {f}: {s:?}")))
                }
            }
        };
        let mut sha256 = BTreeMap::new();
        let list = para.get("SHA256").ok_or_else(|| DebianError::Release("no SHA256 file list".into()))?;
        for line in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let ok_hash = f.first().is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            let size = f.get(1).and_then(|s| s.parse::<u64>().ok());
            match (ok_hash, size, f.len()) {
                (true, Some(size), 3) => {
                    sha256.insert(f[2].to_string(), ReleaseEntry { sha256: f[0].to_ascii_lowercase(), size });
                }
                _ => return Err(DebianError::Release(format!("bad SHA256 line {line:?}"))),
            }
        }
        Ok(Release {
            suite: get("Suite"),
            codename: get("Codename"),
            date: date_field("Date")?,
            valid_until: date_field("Valid-Until")?,
            by_hash: get("Acquire-By-Hash").eq_ignore_ascii_case("yes"),
            architectures: get("Architectures").split_whitespace().map(str::to_string).collect(),
            components: get("Components").split_whitespace().map(str::to_string).collect(),
            sha256,
        })
    }

    /// Checks that this Release is the one asked for (`Suite` or `Codename` equals `suite`, so a mirror cannot
    /// substitute another suite's signed file) and has not expired at `now` (unless `check_valid_until` is false).
    pub fn check(&self, suite: &str, now: SystemTime, check_valid_until: bool) -> Result<(), DebianError> {
        if self.suite != suite && self.codename != suite {
            return Err(DebianError::Release(format!(
                "asked for suite {suite:?} but the signed Release is for {:?} ({:?})",
                self.codename, self.suite
            )));
        }
        if check_valid_until && let Some(until) = self.valid_until {
            let now = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
            if now > until {
                return Err(DebianError::Release(format!(
                    "Release for {suite} expired at {} (Valid-Until), {}s ago; the mirror is stale or replaying old metadata",
                    format_unix(until),
                    now - until
                )));
            }
        }
        Ok(())
    }
}

/// Parses an RFC 2822 date as used in Release files (`Sat, 11 Jul 2026 10:16:37 UTC`) to Unix seconds.
pub fn parse_rfc2822(s: &str) -> Option<i64> {
    let mut parts: Vec<&str> = s.split_whitespace().collect();
    if parts.first().is_some_and(|p| p.ends_with(',')) {
        parts.remove(0);
    }
    if parts.len() < 4 {
        return None;
    }
    let day: i64 = parts[0].parse().ok()?;
    const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let month = MONTHS.iter().position(|m| parts[1].eq_ignore_ascii_case(m))? as i64 + 1;
    let year: i64 = parts[2].parse().ok()?;
    let hms: Vec<i64> = parts[3].split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    if hms.len() < 2 || hms.len() > 3 || !(1..=31).contains(&day) {
        return None;
    }
    let (h, m, sec) = (hms[0], hms[1], hms.get(2).copied().unwrap_or(0));
    let offset = match parts.get(4).copied().unwrap_or("UTC") {
        "UTC" | "GMT" | "Z" | "UT" => 0,
        z if (z.starts_with('+') || z.starts_with('-')) && z.len() == 5 => {
            let v: i64 = z[1..].parse().ok()?;
            let secs = (v / 100) * 3600 + (v % 100) * 60;
            if z.starts_with('-') { -secs } else { secs }
        }
        _ => return None,
    };
    Some(days_from_civil(year, month, day) * 86400 + h * 3600 + m * 60 + sec - offset)
}

/// `YYYY-MM-DD HH:MM:SS UTC` for messages.
pub fn format_unix(t: i64) -> String {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", secs / 3600, secs % 3600 / 60, secs % 60)
}
