//! Network tests against Debian's real archive (deb.debian.org, plain HTTP). Outside CI they are skipped, loudly,
//! when the archive or the keyring is unavailable; with CI=true they fail instead. Downloads are cached by digest
//! under /var/tmp/distill-test/debian-cache, so reruns only fetch the InRelease files.

use std::path::{Path, PathBuf};
use std::process::Command;

use distill_slim::debian::fetch::{self, Expected, Fetcher};
use distill_slim::debian::release::{Release, verify_clearsigned};
use distill_slim::debian::{BaseRequest, DebianError, build_rootfs, fetch_index};

const MIRROR: &str = "http://deb.debian.org/debian";
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

fn cache_dir() -> PathBuf {
    PathBuf::from("/var/tmp/distill-test/debian-cache")
}

fn scratch(name: &str) -> PathBuf {
    let p = PathBuf::from(format!("/var/tmp/distill-test/debian-net/{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Fetches bookworm's InRelease, or explains why the test cannot run (and fails in CI).
fn online() -> Option<Vec<u8>> {
    let why = if !Path::new(KEYRING).is_file() {
        format!("{KEYRING} is missing (apt install debian-archive-keyring)")
    } else if Command::new("gpgv").arg("--version").output().is_err() {
        "gpgv is not installed".to_string()
    } else {
        let mut f = Fetcher::new(&cache_dir()).unwrap();
        match f.get_bytes(&format!("{MIRROR}/dists/bookworm/InRelease"), 1 << 24) {
            Ok(b) => return Some(b),
            Err(e) => format!("deb.debian.org is unreachable: {e}"),
        }
    };
    assert!(!in_ci(), "network test cannot run in CI: {why}");
    eprintln!("SKIPPED (not in CI): {why}");
    None
}

fn chroot_bin() -> &'static str {
    ["/usr/sbin/chroot", "/usr/bin/chroot", "/sbin/chroot"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("chroot")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn debian_net_real_inrelease_verifies_and_tampering_fails() {
    let Some(data) = online() else { return };
    let scratch = scratch("inrelease");
    let v = verify_clearsigned(&data, Path::new(KEYRING), &scratch).unwrap();
    assert!(v.signers.iter().any(|s| s.user_id.contains("Debian")), "{:?}", v.signers);
    let rel = Release::parse(&v.text).unwrap();
    assert_eq!(rel.codename, "bookworm");
    assert!(rel.sha256.contains_key("main/binary-amd64/Packages.xz"));
    rel.check("bookworm", std::time::SystemTime::now(), true).unwrap();

    // One hex digit of the Packages.xz hash changed: every signature breaks.
    let text = String::from_utf8(data.clone()).unwrap();
    let line_start = text.find(" main/binary-amd64/Packages.xz").unwrap();
    let sha_line = text[..line_start].rfind('\n').unwrap() + 2; // first hash digit of the last such line
    let mut bad = data.clone();
    bad[sha_line] = if bad[sha_line] == b'0' { b'1' } else { b'0' };
    let err = verify_clearsigned(&bad, Path::new(KEYRING), &scratch).unwrap_err();
    assert!(matches!(err, DebianError::Signature(_)), "{err}");
    // The same file checked against a keyring without Debian's keys.
    let empty = scratch.join("empty.gpg");
    std::fs::write(&empty, b"").unwrap();
    assert!(verify_clearsigned(&data, &empty, &scratch).is_err());
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn debian_net_python3_rootfs_runs() {
    if online().is_none() {
        return;
    }
    let base = scratch("python3");
    let root = base.join("root");
    let req = BaseRequest::new("bookworm", &["python3"], &cache_dir());
    let started = std::time::Instant::now();
    let report = build_rootfs(&req, &root, |m| eprintln!("[debian] {m}")).unwrap();
    eprintln!("built in {:.1}s", started.elapsed().as_secs_f64());
    let names: Vec<&str> = report.packages.iter().map(|p| p.name.as_str()).collect();
    for want in ["python3", "python3.11", "libpython3.11-stdlib", "libssl3", "libc6"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert_eq!(report.suites.len(), 3, "bookworm, bookworm-updates, bookworm-security");
    assert!(report.suites.iter().all(|s| !s.signers.is_empty()));
    assert!(root.join("var/lib/dpkg/status.d/python3.11").is_file());
    assert!(std::fs::read_to_string(root.join("etc/passwd")).unwrap().contains(":65532:"));
    eprintln!(
        "{} packages, {:.1} MiB unpacked: {}",
        names.len(),
        report.unpacked_bytes() as f64 / 1048576.0,
        names.join(" ")
    );
    if !is_root() {
        assert!(!in_ci(), "the chroot check needs root in CI");
        eprintln!("SKIPPED chroot check: not root");
        return;
    }
    let out = Command::new(chroot_bin())
        .arg(&root)
        .args(["/usr/bin/python3", "-c", "import json, ssl; print(42)"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(out.status.success(), "python3 failed in the chroot: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    // As nonroot too (the image's intended user).
    let out = Command::new(chroot_bin())
        .args(["--userspec=65532:65532"])
        .arg(&root)
        .args(["/usr/bin/python3", "-c", "import os, ssl; print(os.getuid(), ssl.OPENSSL_VERSION.split()[0])"])
        .env_clear()
        .env("HOME", "/home/nonroot")
        .output()
        .unwrap();
    assert!(out.status.success(), "as nonroot: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "65532 OpenSSL");
    let _ = std::fs::remove_dir_all(&base);
}

/// Real netbase .deb: a byte flipped on a (local) mirror is rejected; a byte flipped in the cache is detected and
/// the file fetched again.
#[test]
fn debian_net_tampered_deb_is_rejected() {
    let Some(inrelease) = online() else { return };
    let base = scratch("tamper");
    let mut req = BaseRequest::new("bookworm", &["netbase"], &cache_dir());
    req.updates = false;
    req.security_mirror = None;
    req.arch = "amd64".into();
    let mut fetcher = Fetcher::new(&cache_dir()).unwrap();
    let (index, suites) = fetch_index(&req, &mut fetcher, &mut |_| {}).unwrap();
    let entry = index.packages.iter().filter(|p| p.name == "netbase").max_by(|a, b| a.version.cmp(&b.version)).unwrap();
    assert!(entry.depends.is_empty() && entry.pre_depends.is_empty(), "netbase grew dependencies");
    let want = Expected { sha256: entry.sha256.clone(), size: Some(entry.size) };
    let good = fetcher.get_verified(&[format!("{MIRROR}/{}", entry.filename)], &want, &mut |_| {}).unwrap();

    // A partial local mirror: the real signed InRelease and Packages.xz, and a tampered netbase .deb.
    let mirror = base.join("mirror");
    let dists = mirror.join("dists/bookworm");
    let (index_path, index_sha) = &suites[0].indices[0];
    let by_hash = dists.join(Path::new(index_path).parent().unwrap()).join("by-hash/SHA256");
    std::fs::create_dir_all(&by_hash).unwrap();
    std::fs::write(dists.join("InRelease"), &inrelease).unwrap();
    std::fs::copy(fetcher.cache_path(index_sha), by_hash.join(index_sha)).unwrap();
    let deb_on_mirror = mirror.join(&entry.filename);
    std::fs::create_dir_all(deb_on_mirror.parent().unwrap()).unwrap();
    let mut bytes = std::fs::read(&good).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&deb_on_mirror, &bytes).unwrap();
    let mut local = req.clone();
    local.mirror = format!("file://{}", mirror.display());
    local.cache_dir = base.join("cache-a");
    let err = build_rootfs(&local, &base.join("root-a"), |_| {}).unwrap_err();
    assert!(matches!(err, DebianError::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&entry.sha256), "{err}");
    assert!(!base.join("root-a/etc/services").exists());

    // A tampered copy in the cache: detected, replaced by a fresh download, and the build succeeds.
    let mut cached = req.clone();
    cached.cache_dir = base.join("cache-b");
    let sha_dir = cached.cache_dir.join("sha256");
    std::fs::create_dir_all(&sha_dir).unwrap();
    std::fs::copy(fetcher.cache_path(index_sha), sha_dir.join(index_sha)).unwrap();
    std::fs::write(sha_dir.join(&entry.sha256), &bytes).unwrap();
    let mut log = Vec::new();
    let report = build_rootfs(&cached, &base.join("root-b"), |m| log.push(m.to_string())).unwrap();
    assert!(log.iter().any(|l| l.contains("corrupt")), "{log:?}");
    assert_eq!(fetch::sha256_file(&sha_dir.join(&entry.sha256)).unwrap().0, entry.sha256);
    assert_eq!(report.packages.len(), 1);
    assert!(base.join("root-b/etc/services").is_file());
    let _ = std::fs::remove_dir_all(&base);
}
