//! Distroless-style base images from Debian's signed archive, without any registry (`distill base debian`).
//!
//! ```text
//! build_rootfs(&BaseRequest { suite: "bookworm", packages: ["python3"], .. }, root, progress)
//!   for each source (suite, suite-updates, suite-security):
//!     GET  dists/<suite>/InRelease            -> gpgv against the keyring (Release)
//!     check Suite/Codename, Valid-Until
//!     GET  dists/<suite>/main/binary-<arch>/by-hash/SHA256/<hex> (Packages.xz)  -> SHA-256 from Release
//!   resolve Pre-Depends + Depends (alternatives, Provides, versions)   -> resolve
//!   GET  pool/…/<pkg>.deb                      -> SHA-256 + size from Packages
//!   unpack data.tar.* into root (chroot-confined), control -> /var/lib/dpkg/status.d/<pkg>
//!   /etc/passwd, /etc/group (root 0, nobody 65534, nonroot 65532), /etc/nsswitch.conf, /tmp 1777, /home/nonroot
//! ```
//!
//! # API
//!
//! - [`BaseRequest`] says what to build ([`BaseRequest::new`] fills Debian's defaults);
//!   [`build_rootfs`] writes the root file system into a directory and returns a [`BaseReport`] (every package
//!   with version, sizes, SHA-256 and why it was selected; the suites with their Release dates and signers).
//! - Lower layers are public for tools and tests: [`fetch_index`] (verified metadata only), [`version`] (dpkg
//!   version ordering), [`deps`] (relationship fields), [`control`] (deb822), [`release`] (gpgv, Release),
//!   [`index`], [`resolve`], [`deb`] (ar + confined tar unpacking), [`fetch`] (HTTP and the digest cache).
//!
//! # What is verified, and how
//!
//! - `InRelease`: a single clearsigned message with nothing outside it, checked by `gpgv` (the verifier apt uses)
//!   against [`BaseRequest::keyring`] only (private empty `--homedir`). No bad signature is allowed, and at least
//!   one good signature with a SHA-2 digest from a non-expired, non-revoked key is required. Only the text gpgv
//!   writes out as signed is parsed. Its `Suite` or `Codename` must equal the suite asked for, and `Valid-Until`
//!   must not have passed (unless [`BaseRequest::check_valid_until`] is false, e.g. for snapshot mirrors).
//! - `Packages.xz`/`.gz`: size and SHA-256 from the signed Release, and the decompressed text's SHA-256 when
//!   Release lists the uncompressed `Packages` (Debian does).
//! - Each `.deb`: size and SHA-256 from the verified `Packages` stanza.
//! - The download cache (`cache_dir/sha256/<hex>`) is keyed by digest and re-hashed on every use; a corrupt entry
//!   is deleted and fetched again. Plain HTTP is therefore enough: the transport is not trusted.
//!
//! # Design choices
//!
//! - Own deb822/relationship/version code (about 900 lines with the resolver) rather than the `debian-packaging`
//!   crate, whose dependency tree brings async-std, rusoto, reqwest, chrono and an old rPGP.
//! - `gpgv` rather than a pure-Rust OpenPGP stack: sequoia is heavy, and rPGP's RSA dependency carries an open
//!   advisory that `cargo audit` would flag. gpgv is what apt used for years and is present wherever apt is.
//! - `ureq` without TLS: the archive's integrity comes from the signature chain, not the transport.
//!
//! # Ownership
//!
//! Ownership from the archives (and 65532 for `/home/nonroot`) is applied only when running as root; unprivileged
//! builds leave files owned by the caller, so a layer writer should then record root (and 65532 for
//! `/home/nonroot`) itself. Modes, including setuid bits and `/tmp`'s sticky bit, are always applied.
//!
//! # Limitations
//!
//! - Signature checking runs the `gpgv` binary (Debian package `gpgv`); the keyring must be a binary OpenPGP
//!   keyring (`.gpg`/`.kbx`, not ASCII-armored).
//! - Only `http://` and `file://` mirrors (no TLS in this build).
//! - No maintainer scripts, so nothing a postinst generates exists: no `ld.so.cache` (Debian's loader searches the
//!   multiarch directories anyway), no alternatives symlinks, no byte-compiled Python. The CA bundle is the one
//!   exception: `/etc/ssl/certs/ca-certificates.crt` is assembled when `ca-certificates` is installed.
//! - The resolver does not backtrack; an unlucky alternative choice is reported, not undone. Recommends are
//!   never installed; Essential packages are only installed when something depends on them (distroless style).
//! - The root file system uses merged `/usr` (`/bin`, `/sbin`, `/lib`, `/lib64` on amd64 are symlinks into `/usr`),
//!   as Debian has installed it since bookworm.
//! - `/etc/os-release` comes only from `base-files`; ask for it when scanners need it.
//! - Only `InRelease` is read (no `Release` + `Release.gpg` fallback for archives older than Debian 7), and only
//!   one architecture (no multiarch foreign packages).
//! - A suite without `Valid-Until` (Debian's main suites) cannot be protected against a mirror replaying an older,
//!   validly signed Release; `-security` has a 7-day `Valid-Until` and is checked.

pub mod control;
pub mod deb;
pub mod deps;
pub mod fetch;
pub mod index;
pub mod release;
pub mod resolve;
pub mod version;

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use fetch::{Expected, Fetcher};
use index::Index;
use release::{GoodSignature, Release};

/// Errors of the Debian base builder.
#[derive(Debug, thiserror::Error)]
pub enum DebianError {
    /// A local file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A download failed (after retries where retrying made sense).
    #[error("download {url}: {reason}")]
    Download {
        /// The URL(s).
        url: String,
        /// Why.
        reason: String,
    },
    /// Downloaded or cached data does not have the digest the signed metadata promises.
    #[error("{what}: checksum mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was checked (URL or file).
        what: String,
        /// The expected digest and size.
        expected: String,
        /// What was found.
        actual: String,
    },
    /// The InRelease signature is missing, bad or untrusted.
    #[error("InRelease signature: {0}")]
    Signature(String),
    /// The Release file is malformed, for the wrong suite, or expired.
    #[error("Release: {0}")]
    Release(String),
    /// The Packages index is malformed or missing.
    #[error("Packages index: {0}")]
    Index(String),
    /// Dependency resolution failed.
    #[error("dependency resolution: {0}")]
    Resolve(String),
    /// A .deb is malformed.
    #[error(".deb: {0}")]
    Deb(String),
    /// An archive entry tried to leave the root file system.
    #[error("unsafe path in archive: {0:?}")]
    UnsafePath(String),
    /// The request itself is invalid.
    #[error("invalid request: {0}")]
    Request(String),
}

impl DebianError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: io::Error) -> DebianError {
        DebianError::Io { path: path.to_path_buf(), source }
    }
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BaseRequest {
    /// Suite or codename: `bookworm`, `trixie`, `stable` … (must match the Release's `Suite` or `Codename`).
    pub suite: String,
    /// Archive root, e.g. `http://deb.debian.org/debian` (`file:///…` for a local mirror).
    pub mirror: String,
    /// Also read `<suite>-updates` from [`mirror`](Self::mirror).
    pub updates: bool,
    /// Also read `<suite>-security` from this archive root (`http://deb.debian.org/debian-security`).
    pub security_mirror: Option<String>,
    /// Archive components, normally `["main"]`.
    pub components: Vec<String>,
    /// Packages to install: `name` or `name=version`; their dependencies are added.
    pub packages: Vec<String>,
    /// Debian architecture (`amd64`, `arm64` …).
    pub arch: String,
    /// Download cache, e.g. `$DISTILL_ROOT/cache/debian` (created if missing).
    pub cache_dir: PathBuf,
    /// Binary OpenPGP keyring that must have signed InRelease
    /// (`/usr/share/keyrings/debian-archive-keyring.gpg`).
    pub keyring: PathBuf,
    /// Reject a Release whose `Valid-Until` has passed (apt's default). Turn off only for snapshot mirrors.
    pub check_valid_until: bool,
}

/// Debian's architecture name for the machine this runs on.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "i386",
        "arm" => "armhf",
        "powerpc64" => "ppc64el",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

impl BaseRequest {
    /// A request with Debian's defaults: deb.debian.org, `-updates` and `-security` included, `main`, the host
    /// architecture, the system's `debian-archive-keyring.gpg`, Valid-Until checked.
    pub fn new(suite: &str, packages: &[&str], cache_dir: &Path) -> BaseRequest {
        BaseRequest {
            suite: suite.to_string(),
            mirror: "http://deb.debian.org/debian".to_string(),
            updates: true,
            security_mirror: Some("http://deb.debian.org/debian-security".to_string()),
            components: vec!["main".to_string()],
            packages: packages.iter().map(|p| p.to_string()).collect(),
            arch: host_arch().to_string(),
            cache_dir: cache_dir.to_path_buf(),
            keyring: PathBuf::from("/usr/share/keyrings/debian-archive-keyring.gpg"),
            check_valid_until: true,
        }
    }

    /// The (mirror, suite) pairs read, in order; on equal versions the earlier source wins.
    pub fn sources(&self) -> Vec<Source> {
        let mut v = vec![Source { mirror: self.mirror.clone(), suite: self.suite.clone() }];
        if self.updates {
            v.push(Source { mirror: self.mirror.clone(), suite: format!("{}-updates", self.suite) });
        }
        if let Some(sec) = &self.security_mirror {
            v.push(Source { mirror: sec.clone(), suite: format!("{}-security", self.suite) });
        }
        v
    }

    fn validate(&self) -> Result<(), DebianError> {
        let bad = |m: String| Err(DebianError::Request(m));
        if self.packages.is_empty() {
            return bad("no packages requested".into());
        }
        for s in [&self.suite, &self.arch] {
            if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return bad(format!("bad suite or architecture name {s:?}"));
            }
        }
        for c in &self.components {
            if c.is_empty() || c.contains("..") || !c.chars().all(|c| c.is_ascii_alphanumeric() || "-_/".contains(c)) {
                return bad(format!("bad component {c:?}"));
            }
        }
        Ok(())
    }
}

/// One archive source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Archive root URL.
    pub mirror: String,
    /// Suite (directory under `dists/`).
    pub suite: String,
}

/// One verified suite.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SuiteInfo {
    /// Archive root URL.
    pub mirror: String,
    /// Suite asked for.
    pub suite: String,
    /// `Codename:` of the signed Release.
    pub codename: String,
    /// `Date:` of the signed Release (`YYYY-MM-DD HH:MM:SS UTC`).
    pub date: Option<String>,
    /// `Valid-Until:`, if any.
    pub valid_until: Option<String>,
    /// Keys that signed it.
    pub signers: Vec<GoodSignature>,
    /// Packages indices used (path under `dists/<suite>/` and SHA-256).
    pub indices: Vec<(String, String)>,
}

/// One installed package.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ResolvedPackage {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// `amd64`, `all` …
    pub architecture: String,
    /// Suite it came from.
    pub suite: String,
    /// `.deb` path under the mirror.
    pub filename: String,
    /// `.deb` SHA-256.
    pub sha256: String,
    /// `.deb` size in bytes.
    pub size: u64,
    /// `Installed-Size` in KiB (from the index).
    pub installed_size_kib: u64,
    /// Bytes of regular files actually unpacked.
    pub unpacked_bytes: u64,
    /// `requested`, or which package's dependency pulled it in.
    pub reason: String,
}

/// What [`build_rootfs`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BaseReport {
    /// Suites read, with their signatures.
    pub suites: Vec<SuiteInfo>,
    /// Installed packages, in selection order.
    pub packages: Vec<ResolvedPackage>,
    /// Bytes downloaded (cache hits excluded).
    pub downloaded_bytes: u64,
    /// Files written by the builder rather than unpacked from a package.
    pub generated: Vec<String>,
    /// Archive entries not created (device nodes …).
    pub skipped: Vec<String>,
}

impl BaseReport {
    /// Sum of the unpacked regular file sizes.
    pub fn unpacked_bytes(&self) -> u64 {
        self.packages.iter().map(|p| p.unpacked_bytes).sum()
    }
}

/// Verified metadata of every source: the merged index and one [`SuiteInfo`] per source.
pub fn fetch_index(
    req: &BaseRequest,
    fetcher: &mut Fetcher,
    progress: &mut dyn FnMut(&str),
) -> Result<(Index, Vec<SuiteInfo>), DebianError> {
    req.validate()?;
    let mut index = Index::new();
    let mut suites = Vec::new();
    for (origin, src) in req.sources().iter().enumerate() {
        let dists = format!("{}/dists/{}", src.mirror.trim_end_matches('/'), src.suite);
        let url = format!("{dists}/InRelease");
        progress(&format!("fetching {url}"));
        let data = fetcher.get_bytes(&url, 64 << 20)?;
        let verified = release::verify_clearsigned(&data, &req.keyring, &fetcher.scratch_dir())?;
        let rel = Release::parse(&verified.text)?;
        rel.check(&src.suite, SystemTime::now(), req.check_valid_until)?;
        if !rel.architectures.is_empty() && !rel.architectures.contains(&req.arch) {
            return Err(DebianError::Release(format!(
                "{} has no architecture {} (it has: {})",
                src.suite,
                req.arch,
                rel.architectures.join(" ")
            )));
        }
        progress(&format!(
            "{}: signed by {}",
            src.suite,
            verified.signers.iter().map(|s| s.user_id.as_str()).collect::<Vec<_>>().join(", ")
        ));
        let mut indices = Vec::new();
        for comp in &req.components {
            let base = format!("{comp}/binary-{}/Packages", req.arch);
            let (path, text) = fetch_packages(fetcher, &rel, &dists, &base, progress)?;
            let n = index.add_packages_text(&text, &req.arch, origin)?;
            progress(&format!("{}/{path}: {n} packages", src.suite));
            indices.push((path.clone(), rel.sha256[&path].sha256.clone()));
        }
        suites.push(SuiteInfo {
            mirror: src.mirror.clone(),
            suite: src.suite.clone(),
            codename: rel.codename.clone(),
            date: rel.date.map(release::format_unix),
            valid_until: rel.valid_until.map(release::format_unix),
            signers: verified.signers,
            indices,
        });
    }
    Ok((index, suites))
}

/// Downloads the best compressed variant of `base` (`main/binary-amd64/Packages`) listed in the Release, checks it
/// and returns its path and decompressed text.
fn fetch_packages(
    fetcher: &mut Fetcher,
    rel: &Release,
    dists: &str,
    base: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<(String, String), DebianError> {
    let mut errors = Vec::new();
    for ext in [".xz", ".gz", ""] {
        let path = format!("{base}{ext}");
        let Some(entry) = rel.sha256.get(&path) else { continue };
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        let mut urls = Vec::new();
        if rel.by_hash {
            urls.push(format!("{dists}/{dir}/by-hash/SHA256/{}", entry.sha256));
        }
        urls.push(format!("{dists}/{path}"));
        let want = Expected { sha256: entry.sha256.clone(), size: Some(entry.size) };
        let file = match fetcher.get_verified(&urls, &want, progress) {
            Ok(f) => f,
            Err(e @ DebianError::DigestMismatch { .. }) => return Err(e),
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        let raw = fs::File::open(&file).map_err(|e| DebianError::io(&file, e))?;
        let mut reader: Box<dyn Read> = match ext {
            ".xz" => Box::new(liblzma::read::XzDecoder::new(io::BufReader::new(raw))),
            ".gz" => Box::new(flate2::read::GzDecoder::new(io::BufReader::new(raw))),
            _ => Box::new(raw),
        };
        let mut text = String::new();
        reader.read_to_string(&mut text).map_err(|e| DebianError::Index(format!("{path}: {e}")))?;
        if let Some(plain) = rel.sha256.get(base) {
            let got = fetch::sha256_hex(text.as_bytes());
            if got != plain.sha256 || text.len() as u64 != plain.size {
                return Err(DebianError::DigestMismatch {
                    what: format!("{base} (decompressed from {path})"),
                    expected: format!("sha256 {} ({} bytes)", plain.sha256, plain.size),
                    actual: format!("sha256 {got} ({} bytes)", text.len()),
                });
            }
        }
        return Ok((path, text));
    }
    if errors.is_empty() {
        return Err(DebianError::Index(format!("the signed Release lists no {base}[.xz|.gz]")));
    }
    Err(DebianError::Index(format!("cannot fetch {base}: {}", errors.join("; "))))
}

/// Builds the root file system for `req` into `rootfs` (created if missing; should be empty) and reports what went
/// in. `progress` receives one human-readable line per step.
pub fn build_rootfs(
    req: &BaseRequest,
    rootfs: &Path,
    mut progress: impl FnMut(&str),
) -> Result<BaseReport, DebianError> {
    let progress: &mut dyn FnMut(&str) = &mut progress;
    let mut fetcher = Fetcher::new(&req.cache_dir)?;
    let (index, suites) = fetch_index(req, &mut fetcher, progress)?;
    let selection = resolve::resolve(&index, &req.arch, &req.packages)?;
    let total: u64 = selection.iter().map(|s| index.packages[s.index].size).sum();
    progress(&format!("resolved {} packages ({:.1} MiB of .debs)", selection.len(), total as f64 / 1048576.0));

    fs::create_dir_all(rootfs).map_err(|e| DebianError::io(rootfs, e))?;
    let root = fs::canonicalize(rootfs).map_err(|e| DebianError::io(rootfs, e))?;
    prepare_root(&root, &req.arch)?;
    let sources = req.sources();
    let mut packages = Vec::new();
    let mut skipped = Vec::new();
    for sel in &selection {
        let p = &index.packages[sel.index];
        let src = &sources[p.origin];
        let url = format!("{}/{}", src.mirror.trim_end_matches('/'), p.filename);
        progress(&format!("{} {} ({} KiB)", p.name, p.version, p.size.div_ceil(1024)));
        let deb = fetcher.get_verified(
            std::slice::from_ref(&url),
            &Expected { sha256: p.sha256.clone(), size: Some(p.size) },
            progress,
        )?;
        let stats = deb::unpack_data(&deb, &root)?;
        write_status(&root, &deb, &p.name)?;
        skipped.extend(stats.skipped.iter().map(|s| format!("{}: {s}", p.name)));
        packages.push(ResolvedPackage {
            name: p.name.clone(),
            version: p.version.to_string(),
            architecture: p.architecture.clone(),
            suite: src.suite.clone(),
            filename: p.filename.clone(),
            sha256: p.sha256.clone(),
            size: p.size,
            installed_size_kib: p.installed_size_kib,
            unpacked_bytes: stats.bytes,
            reason: sel.reason.clone(),
        });
    }
    let generated = finish_root(&root)?;
    let report = BaseReport { suites, packages, downloaded_bytes: fetcher.downloaded, generated, skipped };
    progress(&format!(
        "root file system ready: {} packages, {:.1} MiB unpacked, {:.1} MiB downloaded",
        report.packages.len(),
        report.unpacked_bytes() as f64 / 1048576.0,
        report.downloaded_bytes as f64 / 1048576.0
    ));
    Ok(report)
}

/// Merged-/usr layout, as debootstrap creates it for bookworm and later.
fn prepare_root(root: &Path, arch: &str) -> Result<(), DebianError> {
    let mut links = vec!["bin", "sbin", "lib"];
    if arch == "amd64" {
        links.push("lib64");
    }
    for name in links {
        let target = root.join("usr").join(name);
        fs::create_dir_all(&target).map_err(|e| DebianError::io(&target, e))?;
        let link = root.join(name);
        if fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("usr/{name}"), &link).map_err(|e| DebianError::io(&link, e))?;
        }
    }
    Ok(())
}

/// Writes `content` to `rel` (e.g. `etc/passwd`) inside `root` with chroot semantics and sets its mode.
fn write_in_root(root: &Path, rel: &str, content: &[u8], mode: u32) -> Result<PathBuf, DebianError> {
    let comps = deb::archive_components(rel.as_bytes())?;
    let (last, parents) = comps.split_last().ok_or_else(|| DebianError::UnsafePath(rel.to_string()))?;
    let path = deb::resolve_in_root(root, parents, true)?.join(last);
    if fs::symlink_metadata(&path).is_ok() {
        fs::remove_file(&path).map_err(|e| DebianError::io(&path, e))?;
    }
    fs::write(&path, content).map_err(|e| DebianError::io(&path, e))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(|e| DebianError::io(&path, e))?;
    Ok(path)
}

/// `/var/lib/dpkg/status.d/<package>` (the control stanza with `Status: install ok installed`) and
/// `<package>.md5sums`, as distroless images carry them for scanners.
fn write_status(root: &Path, deb: &Path, name: &str) -> Result<(), DebianError> {
    let files = deb::read_control_files(deb)?;
    let control = files
        .iter()
        .find(|(n, _)| n == "control")
        .ok_or_else(|| DebianError::Deb(format!("{}: no control file", deb.display())))?;
    let text = String::from_utf8_lossy(&control.1);
    let para = control::parse_single(&text).map_err(|e| DebianError::Deb(format!("{name}: control: {e}")))?;
    let mut fields = para.fields.clone();
    fields.retain(|(n, _)| !n.eq_ignore_ascii_case("Status"));
    let at = fields.iter().position(|(n, _)| n.eq_ignore_ascii_case("Package")).map_or(0, |i| i + 1);
    fields.insert(at, ("Status", "install ok installed"));
    let out = control::Paragraph { fields }.to_text();
    write_in_root(root, &format!("var/lib/dpkg/status.d/{name}"), out.as_bytes(), 0o644)?;
    if let Some((_, sums)) = files.iter().find(|(n, _)| n == "md5sums") {
        write_in_root(root, &format!("var/lib/dpkg/status.d/{name}.md5sums"), sums, 0o644)?;
    }
    Ok(())
}

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n";
const NSSWITCH: &str = "passwd:         files\ngroup:          files\nshadow:         files\ngshadow:        files\n\
hosts:          files dns\nnetworks:       files\nprotocols:      files\nservices:       files\nethers:         files\n\
rpc:            files\n";

/// Accounts, /tmp, home directories, nsswitch.conf and the CA bundle; returns the generated paths.
fn finish_root(root: &Path) -> Result<Vec<String>, DebianError> {
    let mut generated = Vec::new();
    write_in_root(root, "etc/passwd", PASSWD.as_bytes(), 0o644)?;
    write_in_root(root, "etc/group", GROUP.as_bytes(), 0o644)?;
    generated.extend(["/etc/passwd".to_string(), "/etc/group".to_string()]);
    let nss = deb::resolve_in_root(root, &["etc".into()], true)?.join("nsswitch.conf");
    if fs::symlink_metadata(&nss).is_err() {
        write_in_root(root, "etc/nsswitch.conf", NSSWITCH.as_bytes(), 0o644)?;
        generated.push("/etc/nsswitch.conf".into());
    }
    for (dir, mode, owner) in [("tmp", 0o1777, 0u32), ("root", 0o700, 0), ("home/nonroot", 0o700, 65532)] {
        let comps = deb::archive_components(dir.as_bytes())?;
        let path = deb::resolve_in_root(root, &comps, true)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(|e| DebianError::io(&path, e))?;
        let _ = std::os::unix::fs::lchown(&path, Some(owner), Some(owner));
        generated.push(format!("/{dir}"));
    }
    if let Some(p) = ca_bundle(root)? {
        generated.push(p);
    }
    Ok(generated)
}

/// What `update-ca-certificates` would produce for the default configuration (every certificate shipped under
/// /usr/share/ca-certificates enabled): the concatenated bundle /etc/ssl/certs/ca-certificates.crt.
fn ca_bundle(root: &Path) -> Result<Option<String>, DebianError> {
    let share = root.join("usr/share/ca-certificates");
    let bundle_rel = "etc/ssl/certs/ca-certificates.crt";
    if !share.is_dir() {
        return Ok(None);
    }
    let existing = deb::resolve_in_root(root, &["etc".into(), "ssl".into(), "certs".into()], true)?;
    if fs::symlink_metadata(existing.join("ca-certificates.crt")).is_ok() {
        return Ok(None);
    }
    let mut certs = Vec::new();
    let mut stack = vec![share.clone()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).map_err(|e| DebianError::io(&d, e))? {
            let e = e.map_err(|e| DebianError::io(&d, e))?;
            let ft = e.file_type().map_err(|err| DebianError::io(&e.path(), err))?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() && e.path().extension().is_some_and(|x| x == "crt") {
                certs.push(e.path());
            }
        }
    }
    certs.sort();
    let mut out = Vec::new();
    for c in &certs {
        let mut data = fs::read(c).map_err(|e| DebianError::io(c, e))?;
        if !data.ends_with(b"\n") {
            data.push(b'\n');
        }
        out.extend(data);
    }
    write_in_root(root, bundle_rel, &out, 0o644)?;
    Ok(Some(format!("/{bundle_rel} ({} certificates)", certs.len())))
}
