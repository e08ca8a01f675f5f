//! Offline tests of the Debian base builder's parts: dpkg version ordering, relationship parsing, deb822, the
//! resolver on a synthetic index, Release parsing, and confined .deb/tar unpacking.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::process::Command;

use distill_slim::debian::control::{self, parse_paragraphs, parse_single};
use distill_slim::debian::deb;
use distill_slim::debian::deps::{Op, parse_provides, parse_relation, parse_relations};
use distill_slim::debian::index::Index;
use distill_slim::debian::release::{Release, format_unix, parse_rfc2822};
use distill_slim::debian::resolve::resolve;
use distill_slim::debian::version::{Version, compare_versions};
use distill_slim::debian::{DebianError, fetch};

fn scratch(name: &str) -> PathBuf {
    let p = PathBuf::from(format!("/var/tmp/distill-test/debian-unit/{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

// ---------------------------------------------------------------- versions

#[test]
fn debian_version_comparison_table() {
    use Ordering::*;
    let table: &[(&str, &str, Ordering)] = &[
        ("1.0", "1.0", Equal),
        ("1.0", "2.0", Less),
        ("2.0", "1.0", Greater),
        ("1:1.0", "2.0", Greater),
        ("0:1.0", "1.0", Equal),
        ("1:0.1", "0:9.9", Greater),
        ("1.0~rc1", "1.0", Less),
        ("1.0~~", "1.0~", Less),
        ("1.0~~a", "1.0~~", Greater),
        ("1.0~", "1.0", Less),
        ("1.0", "1.0-0", Equal),
        ("1.0a", "1.0", Greater),
        ("1.0a", "1.0+", Less),
        ("1.0+dfsg", "1.0", Greater),
        ("1.01", "1.1", Equal),
        ("1.10", "1.9", Greater),
        ("10", "9", Greater),
        ("1.0-1", "1.0-1.1", Less),
        ("1.0-1", "1.0-2", Less),
        ("1.0-10", "1.0-9", Greater),
        ("2.36-9+deb12u4", "2.36-9+deb12u10", Less),
        ("3.11.2-6+deb12u6", "3.11.2-6+deb12u5", Greater),
        ("1.2.3-1+b1", "1.2.3-1+deb12u1", Less),
        ("1.2.3-1", "1.2.3-1+b1", Less),
        ("1.0~beta1~", "1.0~beta1", Less),
        ("1.0-1~bpo12+1", "1.0-1", Less),
        ("7.88.1-10+deb12u8", "7.88.1-10", Greater),
        ("1.2-3-4", "1.2-3-5", Less),
        ("2:1.0", "1:9.0", Greater),
        ("0.0", "0", Greater),
        ("a", "b", Less),
        ("1.0.0", "1.0", Greater),
    ];
    for (a, b, want) in table {
        assert_eq!(compare_versions(a, b).unwrap(), *want, "{a} vs {b}");
        assert_eq!(compare_versions(b, a).unwrap(), want.reverse(), "{b} vs {a}");
    }
    let v = Version::parse("1:2.3-4-5").unwrap();
    assert_eq!((v.epoch, v.upstream.as_str(), v.revision.as_str()), (1, "2.3-4", "5"));
    assert_eq!(v.to_string(), "1:2.3-4-5");
    for bad in ["", "a:1.0", "1.0-", ":1.0", "1 0", "1:", "1.0_1", "1.0-a_b"] {
        assert!(Version::parse(bad).is_err(), "{bad:?} should be rejected");
    }
}

/// Differential test against the real `dpkg --compare-versions` when dpkg is installed.
#[test]
fn debian_version_matches_dpkg_binary() {
    if Command::new("dpkg").arg("--version").output().is_err() {
        eprintln!("SKIPPED: dpkg not installed; the comparison table above still ran");
        return;
    }
    let parts = ["0", "1", "9", "10", "01", "~", "+", ".", "a", "z", "~a", "+b1", "-1", "-0"];
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let gen_version = |next: &mut dyn FnMut() -> u64| {
        let mut s = String::from(["1", "2", "1:1", "0:2", "10"][(next() % 5) as usize]);
        for _ in 0..(next() % 4) {
            s.push_str(parts[(next() % parts.len() as u64) as usize]);
        }
        s
    };
    let mut checked = 0;
    for _ in 0..120 {
        let a = gen_version(&mut next);
        let b = gen_version(&mut next);
        let (Ok(va), Ok(vb)) = (Version::parse(&a), Version::parse(&b)) else { continue };
        let dpkg = |op: &str| Command::new("dpkg").args(["--compare-versions", &a, op, &b]).status().unwrap().success();
        let want = if dpkg("lt") {
            Ordering::Less
        } else if dpkg("gt") {
            Ordering::Greater
        } else {
            Ordering::Equal
        };
        assert_eq!(va.cmp(&vb), want, "{a} vs {b}: dpkg says {want:?}");
        checked += 1;
    }
    assert!(checked > 60, "only {checked} pairs were valid");
}

// ---------------------------------------------------------------- relationships

#[test]
fn debian_dependency_parsing() {
    let rels = parse_relations(
        "libc6 (>= 2.34), python3.11 (>= 3.11.2-1~) | foo,\n python3:any, bar [amd64 arm64] <!nocheck>, baz [!i386], \
         qux (<< 2:1.0), old (< 1), older (> 1), ,",
    )
    .unwrap();
    assert_eq!(rels.len(), 8);
    assert_eq!(rels[0][0].name, "libc6");
    let c = rels[0][0].constraint.as_ref().unwrap();
    assert_eq!((c.op, c.version.to_string()), (Op::Ge, "2.34".to_string()));
    assert_eq!(rels[1].len(), 2);
    assert_eq!(rels[1][1].name, "foo");
    assert!(rels[1][1].constraint.is_none());
    assert_eq!(rels[2][0].arch_qualifier.as_deref(), Some("any"));
    assert_eq!(rels[3][0].arch_restriction, vec!["amd64", "arm64"]);
    assert!(rels[3][0].applies_to("amd64") && !rels[3][0].applies_to("i386"));
    assert!(rels[4][0].applies_to("amd64") && !rels[4][0].applies_to("i386"));
    assert_eq!(rels[5][0].constraint.as_ref().unwrap().op, Op::Lt);
    assert_eq!(rels[5][0].constraint.as_ref().unwrap().version.epoch, 2);
    assert_eq!(rels[6][0].constraint.as_ref().unwrap().op, Op::Le, "obsolete '<' means '<='");
    assert_eq!(rels[7][0].constraint.as_ref().unwrap().op, Op::Ge, "obsolete '>' means '>='");
    assert_eq!(rels[1][0].to_string(), "python3.11 (>= 3.11.2-1~)");

    let r = parse_relation("libfoo:amd64 ( = 1.0-1 )").unwrap();
    assert_eq!(r.arch_qualifier.as_deref(), Some("amd64"));
    assert!(r.constraint.as_ref().unwrap().matches(&Version::parse("1.0-1").unwrap()));
    assert!(!r.constraint.as_ref().unwrap().matches(&Version::parse("1.0-2").unwrap()));

    for bad in ["(>= 1)", "foo (>> )", "foo (~ 1)", "foo (>= 1", "foo [amd64", "foo [amd64 !i386]", "foo bar", "foo:"] {
        assert!(parse_relation(bad).is_err(), "{bad:?} should be rejected");
    }
    assert!(parse_relations("").unwrap().is_empty());
    let prov = parse_provides("mail-transport-agent, libfoo-abi (= 3), python3-foo").unwrap();
    assert_eq!(prov.len(), 3);
    assert!(parse_provides("a | b").is_err());
}

// ---------------------------------------------------------------- deb822

#[test]
fn debian_control_parsing() {
    let text = "# comment\nPackage: foo\nVersion: 1.0\nDescription: short\n long line\n .\n more\nDepends: a,\n b\r\n\n\n\
                Package: bar\nversion:1\n";
    let paras = parse_paragraphs(text).unwrap();
    assert_eq!(paras.len(), 2);
    assert_eq!(paras[0].get("package"), Some("foo"));
    assert_eq!(paras[0].get("Description"), Some("short\n long line\n .\n more"));
    assert_eq!(paras[0].get("Depends"), Some("a,\n b"));
    assert_eq!(parse_relations(paras[0].get("Depends").unwrap()).unwrap().len(), 2);
    assert_eq!(paras[1].get("Version"), Some("1"));
    assert_eq!(paras[1].get("Missing"), None);
    // Round trip through to_text.
    let text1 = paras[1].to_text();
    assert_eq!(parse_single(&text1).unwrap(), paras[1]);
    let multi = control::Paragraph { fields: vec![("SHA256", "\n aa 1 x\n bb 2 y"), ("A", "b")] };
    assert_eq!(multi.to_text(), "SHA256:\n aa 1 x\n bb 2 y\nA: b\n");

    assert!(parse_paragraphs(" continuation first\n").is_err());
    assert!(parse_paragraphs("NoColonHere\n").is_err());
    assert!(parse_paragraphs("Bad Name: x\n").is_err());
    assert!(parse_single("A: 1\n\nB: 2\n").is_err());
    assert!(parse_single("\n\n").is_err());
}

// ---------------------------------------------------------------- resolver

const SYNTHETIC: &str = "\
Package: app
Version: 1.0
Architecture: amd64
Pre-Depends: libc6 (>= 2.30)
Depends: libfoo (>= 2), mta-real | mail-transport-agent, python3:any, www-browser | lynx, winonly [!amd64]
Filename: pool/main/a/app/app_1.0_amd64.deb
Size: 100
SHA256: 0000000000000000000000000000000000000000000000000000000000000001

Package: libc6
Version: 2.36-9+deb12u4
Architecture: amd64
Multi-Arch: same
Filename: pool/main/g/glibc/libc6_2.36-9+deb12u4_amd64.deb
Size: 100
SHA256: 0000000000000000000000000000000000000000000000000000000000000002

Package: libfoo
Version: 1.5
Architecture: amd64
Filename: pool/main/f/foo/libfoo_1.5_amd64.deb
Size: 100
SHA256: 0000000000000000000000000000000000000000000000000000000000000003

Package: libfoo
Version: 2.1
Architecture: amd64
Depends: libc6
Filename: pool/main/f/foo/libfoo_2.1_amd64.deb
Size: 100
SHA256: 0000000000000000000000000000000000000000000000000000000000000004

Package: libfoo
Version: 9.0
Architecture: i386
Filename: pool/main/f/foo/libfoo_9.0_i386.deb
Size: 100
SHA256: 0000000000000000000000000000000000000000000000000000000000000005

Package: postfix
Version: 3.0
Architecture: amd64
Priority: optional
Provides: mail-transport-agent
Filename: pool/main/p/postfix/postfix_3.0_amd64.deb
Size: 100
SHA256: 0000000000000000000000000000000000000000000000000000000000000006

Package: exim4
Version: 4.0
Architecture: amd64
Priority: standard
Provides: mail-transport-agent
Conflicts: mail-transport-agent
Filename: pool/main/e/exim4/exim4_4.0_amd64.deb
Size: 100
SHA256: 0000000000000000000000000000000000000000000000000000000000000007

Package: python3
Version: 3.11.2-1+b1
Architecture: amd64
Multi-Arch: allowed
Filename: pool/main/p/python3/python3_3.11.2-1+b1_amd64.deb
Size: 100
SHA256: 0000000000000000000000000000000000000000000000000000000000000008

Package: lynx
Version: 2.9
Architecture: amd64
Filename: pool/main/l/lynx/lynx_2.9_amd64.deb
Size: 100
SHA256: 0000000000000000000000000000000000000000000000000000000000000009

Package: winonly
Version: 1
Architecture: amd64
Filename: pool/main/w/winonly/winonly_1_amd64.deb
Size: 100
SHA256: 000000000000000000000000000000000000000000000000000000000000000a

Package: base-files
Version: 12.4
Architecture: amd64
Essential: yes
Priority: required
Filename: pool/main/b/base-files/base-files_12.4_amd64.deb
Size: 100
SHA256: 000000000000000000000000000000000000000000000000000000000000000b

Package: abi-old
Version: 1
Architecture: all
Provides: virt-abi (= 1)
Filename: pool/main/a/abi-old/abi-old_1_all.deb
Size: 100
SHA256: 000000000000000000000000000000000000000000000000000000000000000c

Package: abi-new
Version: 1
Architecture: all
Provides: virt-abi (= 3)
Filename: pool/main/a/abi-new/abi-new_1_all.deb
Size: 100
SHA256: 000000000000000000000000000000000000000000000000000000000000000d

Package: wants-abi
Version: 1
Architecture: all
Depends: virt-abi (>= 2)
Filename: pool/main/w/wants-abi/wants-abi_1_all.deb
Size: 100
SHA256: 000000000000000000000000000000000000000000000000000000000000000e

Package: plain-lib
Version: 1
Architecture: amd64
Filename: pool/main/p/plain-lib/plain-lib_1_amd64.deb
Size: 100
SHA256: 000000000000000000000000000000000000000000000000000000000000000f

Package: wants-any
Version: 1
Architecture: amd64
Depends: plain-lib:any
Filename: pool/main/w/wants-any/wants-any_1_amd64.deb
Size: 100
SHA256: 0000000000000000000000000000000000000000000000000000000000000010

Package: clash
Version: 1
Architecture: amd64
Depends: lynx, breaker
Filename: pool/main/c/clash/clash_1_amd64.deb
Size: 100
SHA256: 0000000000000000000000000000000000000000000000000000000000000011

Package: breaker
Version: 1
Architecture: amd64
Breaks: lynx (<< 3)
Filename: pool/main/b/breaker/breaker_1_amd64.deb
Size: 100
SHA256: 0000000000000000000000000000000000000000000000000000000000000012
";

fn synthetic_index() -> Index {
    let mut index = Index::new();
    let n = index.add_packages_text(SYNTHETIC, "amd64", 0).unwrap();
    assert_eq!(n, 17, "the i386 stanza is skipped");
    index
}

fn resolved(index: &Index, req: &[&str]) -> Result<Vec<String>, DebianError> {
    let reqs: Vec<String> = req.iter().map(|s| s.to_string()).collect();
    Ok(resolve(index, "amd64", &reqs)?.iter().map(|s| index.packages[s.index].id()).collect())
}

#[test]
fn debian_resolver_on_synthetic_index() {
    let index = synthetic_index();
    let got = resolved(&index, &["app"]).unwrap();
    assert_eq!(
        got,
        vec![
            "app 1.0",
            "libc6 2.36-9+deb12u4",
            "libfoo 2.1",          // >= 2 skips 1.5; the i386 9.0 is not for this architecture
            "exim4 4.0", // virtual mail-transport-agent: Priority standard beats optional; self-conflict ignored
            "python3 3.11.2-1+b1", // :any accepted because Multi-Arch: allowed
            "lynx 2.9",  // www-browser has no provider: next alternative
        ]
    );
    assert!(!got.iter().any(|p| p.starts_with("winonly")), "[!amd64] dependency does not apply");
    assert!(!got.iter().any(|p| p.starts_with("base-files")), "Essential packages are not added implicitly");

    let sel = resolve(&index, "amd64", &["app".to_string()]).unwrap();
    assert_eq!(sel[0].reason, "requested");
    assert!(sel[2].reason.contains("app depends on libfoo (>= 2)"), "{}", sel[2].reason);

    // Versioned Provides: only abi-new provides virt-abi (= 3) >= 2.
    assert_eq!(resolved(&index, &["wants-abi"]).unwrap(), vec!["wants-abi 1", "abi-new 1"]);
    // An already selected package satisfies an alternative: lynx requested first, no second browser.
    assert_eq!(resolved(&index, &["lynx", "app"]).unwrap().iter().filter(|p| p.starts_with("lynx")).count(), 1);
    // Pinned request.
    assert_eq!(resolved(&index, &["libfoo=1.5"]).unwrap(), vec!["libfoo 1.5"]);
    // A pinned old version then conflicts with a later >= 2 requirement.
    let err = resolved(&index, &["libfoo=1.5", "app"]).unwrap_err().to_string();
    assert!(err.contains("libfoo (>= 2)") && err.contains("libfoo 1.5 is selected"), "{err}");
    // :any on a package without Multi-Arch: allowed is not satisfiable.
    let err = resolved(&index, &["wants-any"]).unwrap_err().to_string();
    assert!(err.contains("plain-lib:any"), "{err}");
    // Breaks between selected packages.
    let err = resolved(&index, &["clash"]).unwrap_err().to_string();
    assert!(err.contains("breaker 1") && err.contains("lynx"), "{err}");
    // Unknown package.
    let err = resolved(&index, &["nope"]).unwrap_err().to_string();
    assert!(err.contains("nope"), "{err}");
    // A purely virtual request picks a provider.
    assert_eq!(resolved(&index, &["mail-transport-agent"]).unwrap(), vec!["exim4 4.0"]);
}

#[test]
fn debian_resolver_prefers_highest_version_across_sources() {
    let mut index = Index::new();
    index.add_packages_text(SYNTHETIC, "amd64", 0).unwrap();
    let update = SYNTHETIC
        .split("\n\n")
        .find(|p| p.starts_with("Package: libc6"))
        .unwrap()
        .replace("2.36-9+deb12u4", "2.36-9+deb12u10");
    index.add_packages_text(&update, "amd64", 1).unwrap();
    let sel = resolve(&index, "amd64", &["libc6".to_string()]).unwrap();
    let p = &index.packages[sel[0].index];
    assert_eq!((p.version.to_string(), p.origin), ("2.36-9+deb12u10".to_string(), 1));
}

// ---------------------------------------------------------------- Release

const RELEASE: &str = "Origin: Debian
Suite: oldstable
Codename: bookworm
Date: Sat, 11 Jul 2026 10:16:37 UTC
Valid-Until: Sat, 18 Jul 2026 10:16:37 +0000
Acquire-By-Hash: yes
Architectures: all amd64
Components: main contrib
SHA256:
 515e692f2c4121c6fcec444ef100cc18f79a991910615f3a88c8b7becfc94d2f 50060337 main/binary-amd64/Packages
 9e0b5aabb2465b3d2e7a7fe27f9913846277833f7a2826e7767acccff5b588c5  8790396 main/binary-amd64/Packages.xz
";

#[test]
fn debian_release_parsing_and_checks() {
    use std::time::{Duration, UNIX_EPOCH};
    let rel = Release::parse(RELEASE).unwrap();
    assert_eq!((rel.suite.as_str(), rel.codename.as_str(), rel.by_hash), ("oldstable", "bookworm", true));
    assert_eq!(rel.components, vec!["main", "contrib"]);
    assert_eq!(rel.sha256["main/binary-amd64/Packages.xz"].size, 8790396);
    let date = rel.date.unwrap();
    assert_eq!(format_unix(date), "2026-07-11 10:16:37 UTC");
    assert_eq!(rel.valid_until.unwrap() - date, 7 * 86400);
    let at = |t: i64| UNIX_EPOCH + Duration::from_secs(t as u64);
    rel.check("bookworm", at(date + 3600), true).unwrap();
    rel.check("oldstable", at(date + 3600), true).unwrap();
    let err = rel.check("bookworm", at(date + 8 * 86400), true).unwrap_err().to_string();
    assert!(err.contains("expired"), "{err}");
    rel.check("bookworm", at(date + 8 * 86400), false).unwrap();
    let err = rel.check("trixie", at(date), true).unwrap_err().to_string();
    assert!(err.contains("trixie"), "{err}");

    assert!(Release::parse("Suite: x\n").is_err(), "no SHA256 list");
    assert!(Release::parse("Suite: x\nSHA256:\n zz 1 a\n").is_err());
    assert!(Release::parse("Suite: x\nDate: yesterday\nSHA256:\n").is_err());

    assert_eq!(parse_rfc2822("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
    assert_eq!(parse_rfc2822("1 Jan 1970 01:00:00 +0100"), Some(0));
    assert_eq!(parse_rfc2822("Tue, 29 Feb 2028 12:00:00 GMT"), Some(1835438400));
    assert_eq!(parse_rfc2822("31 Foo 2026 00:00:00 UTC"), None);
}

// ---------------------------------------------------------------- .deb and tar unpacking

/// A minimal ustar entry (typeflag '0' file, '2' symlink, '1' hard link, '5' directory).
fn tar_entry(out: &mut Vec<u8>, name: &str, typeflag: u8, link: &str, data: &[u8], mode: u32) {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |h: &mut [u8; 512], off: usize, len: usize, v: u64| {
        let s = format!("{v:0w$o}\0", w = len - 1);
        h[off..off + len].copy_from_slice(s.as_bytes());
    };
    octal(&mut h, 100, 8, u64::from(mode));
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, data.len() as u64);
    octal(&mut h, 136, 12, 1_700_000_000);
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn tar_end(mut out: Vec<u8>) -> Vec<u8> {
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[test]
fn debian_unpack_stays_inside_root() {
    let base = scratch("unpack");
    let root = base.join("root");
    let outside = base.join("outside");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("sentinel"), "original").unwrap();
    let outside_abs = outside.to_str().unwrap().to_string();

    // 1. `..` in an entry name is rejected outright.
    for name in ["../evil", "./a/../../evil", "a/../../../evil"] {
        let mut t = Vec::new();
        tar_entry(&mut t, name, b'0', "", b"x", 0o644);
        let err = deb::unpack_tar(&tar_end(t)[..], &root).unwrap_err();
        assert!(matches!(err, DebianError::UnsafePath(_)), "{name}: {err}");
    }
    assert!(!base.join("evil").exists());

    // 2. Symlinks are resolved inside the root: absolute targets restart at the root, `..` stops there.
    let mut t = Vec::new();
    tar_entry(&mut t, "./escape", b'2', "/", b"", 0o777);
    tar_entry(&mut t, "./escape/etc/pwned", b'0', "", b"in root", 0o644);
    tar_entry(&mut t, "./up", b'2', "../../../../..", b"", 0o777);
    tar_entry(&mut t, "./up/up-file", b'0', "", b"in root", 0o644);
    tar_entry(&mut t, "./out", b'2', &outside_abs, b"", 0o777);
    tar_entry(&mut t, "./out/sentinel", b'0', "", b"overwritten?", 0o644);
    tar_entry(&mut t, "./victim", b'2', &format!("{outside_abs}/sentinel"), b"", 0o777);
    tar_entry(&mut t, "./victim", b'0', "", b"replaces the link", 0o600);
    tar_entry(&mut t, "/abs/file", b'0', "", b"abs", 0o755);
    tar_entry(&mut t, "./usr/", b'5', "", b"", 0o755);
    tar_entry(&mut t, "./usr/bin/", b'5', "", b"", 0o755);
    tar_entry(&mut t, "./usr/bin/tool", b'0', "", b"#!/bin/true\n", 0o4755);
    tar_entry(&mut t, "./usr/bin/tool-link", b'1', "./usr/bin/tool", b"", 0o755);
    let stats = deb::unpack_tar(&tar_end(t)[..], &root).unwrap();
    assert_eq!(std::fs::read_to_string(outside.join("sentinel")).unwrap(), "original");
    assert_eq!(std::fs::read_to_string(root.join("etc/pwned")).unwrap(), "in root");
    assert_eq!(std::fs::read_to_string(root.join("up-file")).unwrap(), "in root");
    assert_eq!(
        std::fs::read_to_string(root.join(outside_abs.trim_start_matches('/')).join("sentinel")).unwrap(),
        "overwritten?"
    );
    let victim = std::fs::symlink_metadata(root.join("victim")).unwrap();
    assert!(victim.is_file(), "the symlink was replaced, not followed");
    assert_eq!(std::fs::read_to_string(root.join("abs/file")).unwrap(), "abs");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let tool = std::fs::metadata(root.join("usr/bin/tool")).unwrap();
    assert_eq!(tool.permissions().mode() & 0o7777, 0o4755, "setuid bit kept");
    assert_eq!(tool.ino(), std::fs::metadata(root.join("usr/bin/tool-link")).unwrap().ino());
    assert_eq!(stats.files, 6);
    assert!(stats.paths.contains(&"usr/bin/tool".to_string()));

    // 3. Hard links to paths outside the root cannot be made: the target is looked up inside it.
    let mut t = Vec::new();
    tar_entry(&mut t, "./hl", b'1', &format!("{outside_abs}/sentinel"), b"", 0o644);
    deb::unpack_tar(&tar_end(t)[..], &root).unwrap();
    let in_root_copy = root.join(outside_abs.trim_start_matches('/')).join("sentinel");
    assert_eq!(std::fs::metadata(root.join("hl")).unwrap().ino(), std::fs::metadata(&in_root_copy).unwrap().ino());
    let mut t = Vec::new();
    tar_entry(&mut t, "./hl2", b'1', "/etc/passwd", b"", 0o644);
    assert!(deb::unpack_tar(&tar_end(t)[..], &root).is_err(), "no /etc/passwd inside the root to link to");
    let mut t = Vec::new();
    tar_entry(&mut t, "./hl", b'1', "../outside/sentinel", b"", 0o644);
    assert!(matches!(deb::unpack_tar(&tar_end(t)[..], &root).unwrap_err(), DebianError::UnsafePath(_)));
    assert_eq!(std::fs::read_to_string(outside.join("sentinel")).unwrap(), "original");
    assert_eq!(std::fs::metadata(outside.join("sentinel")).unwrap().nlink(), 1);

    // 4. Writing through a symlinked parent (merged /usr) lands in the link's target inside the root.
    std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
    let mut t = Vec::new();
    tar_entry(&mut t, "./lib/", b'5', "", b"", 0o755);
    tar_entry(&mut t, "./lib/x86_64-linux-gnu/libz.so.1", b'0', "", b"elf", 0o644);
    deb::unpack_tar(&tar_end(t)[..], &root).unwrap();
    assert!(std::fs::symlink_metadata(root.join("lib")).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(root.join("usr/lib/x86_64-linux-gnu/libz.so.1")).unwrap(), b"elf");
    let _ = std::fs::remove_dir_all(&base);
}

fn whole_deb(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

/// Builds a .deb (ar: debian-binary, control.tar.gz, data.tar.xz) in memory.
pub fn make_deb(control: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut ctl = Vec::new();
    tar_entry(&mut ctl, "./control", b'0', "", control.as_bytes(), 0o644);
    tar_entry(&mut ctl, "./md5sums", b'0', "", b"d41d8cd98f00b204e9800998ecf8427e  usr/share/x\n", 0o644);
    let ctl = tar_end(ctl);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&ctl).unwrap();
    let ctl_gz = gz.finish().unwrap();
    let mut data = Vec::new();
    tar_entry(&mut data, "./", b'5', "", b"", 0o755);
    for (name, content) in files {
        tar_entry(&mut data, name, b'0', "", content, 0o644);
    }
    let data = tar_end(data);
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(&data).unwrap();
    let data_xz = xz.finish().unwrap();
    let mut ar = b"!<arch>\n".to_vec();
    for (name, body) in [("debian-binary", &b"2.0\n"[..]), ("control.tar.gz", &ctl_gz), ("data.tar.xz", &data_xz)] {
        ar.extend_from_slice(
            format!("{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n", 0, 0, 0, "100644", body.len()).as_bytes(),
        );
        ar.extend_from_slice(body);
        if body.len() % 2 == 1 {
            ar.push(b'\n');
        }
    }
    ar
}

#[test]
fn debian_deb_members_control_and_data() {
    let base = scratch("deb");
    let control = "Package: hello\nVersion: 1.0-1\nArchitecture: amd64\nDescription: hi\n there\n";
    let debfile = base.join("hello.deb");
    std::fs::write(&debfile, make_deb(control, &[("./usr/share/hello/greeting", b"hello\n")])).unwrap();
    let members = deb::ar_members(&mut std::fs::File::open(&debfile).unwrap()).unwrap();
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, vec!["debian-binary", "control.tar.gz", "data.tar.xz"]);
    let ctl = deb::read_control_files(&debfile).unwrap();
    assert_eq!(ctl[0], ("control".to_string(), control.as_bytes().to_vec()));
    assert_eq!(ctl[1].0, "md5sums");
    let root = base.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let stats = deb::unpack_data(&debfile, &root).unwrap();
    assert_eq!(stats.files, 1);
    assert_eq!(std::fs::read(root.join("usr/share/hello/greeting")).unwrap(), b"hello\n");

    // Garbage and truncation are errors, not panics.
    std::fs::write(base.join("bad.deb"), b"!<arch>\ndebian-binary   garbage").unwrap();
    assert!(deb::unpack_data(&base.join("bad.deb"), &root).is_err());
    let mut wrong_format = whole_deb(&debfile);
    let at = wrong_format.windows(4).position(|w| w == b"2.0\n").unwrap();
    wrong_format[at] = b'3';
    std::fs::write(base.join("v3.deb"), wrong_format).unwrap();
    assert!(deb::unpack_data(&base.join("v3.deb"), &root).unwrap_err().to_string().contains("format 2.x"));
    std::fs::write(base.join("notar.deb"), b"not an archive at all").unwrap();
    assert!(deb::unpack_data(&base.join("notar.deb"), &root).is_err());
    let whole = std::fs::read(&debfile).unwrap();
    std::fs::write(base.join("trunc.deb"), &whole[..whole.len() - 40]).unwrap();
    assert!(deb::unpack_data(&base.join("trunc.deb"), &base.join("root2")).is_err());
    let _ = std::fs::remove_dir_all(&base);
}

// ---------------------------------------------------------------- download cache

#[test]
fn debian_cache_rechecks_digests() {
    let base = scratch("cache");
    let mirror = base.join("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    std::fs::write(mirror.join("blob"), b"payload").unwrap();
    let want = fetch::Expected { sha256: fetch::sha256_hex(b"payload"), size: Some(7) };
    let url = format!("file://{}", mirror.join("blob").display());
    let mut f = fetch::Fetcher::new(&base.join("cache")).unwrap();
    let mut notes = Vec::new();
    let p = f.get_verified(std::slice::from_ref(&url), &want, &mut |m| notes.push(m.to_string())).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"payload");
    // Corrupt the cached copy: it is detected, dropped and fetched again.
    std::fs::write(&p, b"pAyload").unwrap();
    let p2 = f.get_verified(std::slice::from_ref(&url), &want, &mut |m| notes.push(m.to_string())).unwrap();
    assert_eq!(std::fs::read(&p2).unwrap(), b"payload");
    assert!(notes.iter().any(|n| n.contains("corrupt")), "{notes:?}");
    // Corrupt cache and corrupt source: a hard error naming both digests.
    std::fs::write(&p, b"pAyload").unwrap();
    std::fs::write(mirror.join("blob"), b"tampered").unwrap();
    let err = f.get_verified(std::slice::from_ref(&url), &want, &mut |_| {}).unwrap_err();
    assert!(matches!(err, DebianError::DigestMismatch { .. }), "{err}");
    assert!(!p.exists(), "a corrupt file is never left in the cache");
    let _ = std::fs::remove_dir_all(&base);
}

// ---------------------------------------------------------------- a signed local archive, end to end

/// A throwaway archive under `file://`, signed by a throwaway OpenPGP key (gpg), with a second, untrusted key.
struct TestArchive {
    base: PathBuf,
    gnupg: PathBuf,
    keyring: PathBuf,
}

impl Drop for TestArchive {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf").env("GNUPGHOME", &self.gnupg).args(["--kill", "gpg-agent"]).status();
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn gpg(home: &Path, args: &[&str]) {
    let out = Command::new("gpg")
        .env("GNUPGHOME", home)
        .args(["--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""])
        .args(args)
        .output()
        .expect("run gpg");
    assert!(out.status.success(), "gpg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

const TRUSTED: &str = "Distill Test Archive <archive@example.invalid>";
const UNTRUSTED: &str = "Someone Else <else@example.invalid>";

/// `None` (and a loud message) when gpg/gpgv are missing outside CI.
fn test_archive(name: &str) -> Option<TestArchive> {
    let have = |b: &str| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success());
    if !have("gpg") || !have("gpgv") {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "gpg and gpgv are required in CI");
        eprintln!("SKIPPED: gpg or gpgv is not installed; cannot make a signed test archive");
        return None;
    }
    let base = scratch(name);
    let gnupg = base.join("gnupg");
    std::fs::create_dir_all(&gnupg).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&gnupg, std::fs::Permissions::from_mode(0o700)).unwrap();
    gpg(&gnupg, &["--quick-gen-key", TRUSTED, "ed25519", "sign", "never"]);
    gpg(&gnupg, &["--quick-gen-key", UNTRUSTED, "ed25519", "sign", "never"]);
    let keyring = base.join("archive-keyring.gpg");
    gpg(&gnupg, &["--output", keyring.to_str().unwrap(), "--export", TRUSTED]);
    Some(TestArchive { base, gnupg, keyring })
}

struct Pkg<'a> {
    control: &'a str,
    files: &'a [(&'a str, &'a [u8])],
}

const CA_PEM: &[u8] = b"-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n";

fn test_packages() -> Vec<Pkg<'static>> {
    vec![
        Pkg {
            control: "Package: hello\nVersion: 2.10-3\nArchitecture: amd64\nMaintainer: t <t@example.invalid>\n\
                      Depends: libgreet (>= 1.0) | libgreet-ng, shell-virtual\nDescription: greeter\n",
            files: &[("./usr/bin/hello", b"#!/bin/sh\necho hello\n")],
        },
        Pkg {
            control: "Package: libgreet\nVersion: 1.1\nArchitecture: amd64\nMulti-Arch: same\nDescription: lib\n",
            files: &[("./usr/lib/x86_64-linux-gnu/libgreet.so.1", b"\x7fELF fake")],
        },
        Pkg {
            control: "Package: tinysh\nVersion: 0.5\nArchitecture: amd64\nProvides: shell-virtual\n\
                      Depends: ca-certificates\nDescription: shell\n",
            files: &[("./bin/tinysh", b"fake shell")],
        },
        Pkg {
            control: "Package: ca-certificates\nVersion: 20230311\nArchitecture: all\nDescription: CAs\n",
            files: &[("./usr/share/ca-certificates/mozilla/Test_Root.crt", CA_PEM)],
        },
        Pkg {
            control: "Package: unwanted\nVersion: 1\nArchitecture: amd64\nEssential: yes\nDescription: no\n",
            files: &[("./usr/bin/unwanted", b"x")],
        },
    ]
}

#[derive(Clone, Copy)]
struct Publish<'a> {
    suite: &'a str,
    valid_for: i64,
    digest: &'a str,
    signer: &'a str,
}

const PUBLISH: Publish<'static> = Publish { suite: "distilltest", valid_for: 86400, digest: "SHA512", signer: TRUSTED };

/// Writes pool/, Packages(.xz), by-hash copies and a clearsigned InRelease under `mirror`.
fn publish(arch: &TestArchive, mirror: &Path, p: Publish<'_>) {
    use std::io::Write;
    let mut packages = String::new();
    for pkg in test_packages() {
        let name = pkg.control.lines().next().unwrap().trim_start_matches("Package: ");
        let debb = make_deb(pkg.control, pkg.files);
        let rel = format!("pool/main/{}/{name}/{name}.deb", &name[..1]);
        std::fs::create_dir_all(mirror.join(&rel).parent().unwrap()).unwrap();
        std::fs::write(mirror.join(&rel), &debb).unwrap();
        packages.push_str(pkg.control.trim_end());
        packages.push_str(&format!(
            "\nFilename: {rel}\nSize: {}\nSHA256: {}\nInstalled-Size: 1\n\n",
            debb.len(),
            fetch::sha256_hex(&debb)
        ));
    }
    let dists = mirror.join("dists").join(p.suite);
    let bin = dists.join("main/binary-amd64");
    std::fs::create_dir_all(bin.join("by-hash/SHA256")).unwrap();
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(packages.as_bytes()).unwrap();
    let packages_xz = xz.finish().unwrap();
    for (file, data) in [("Packages", packages.as_bytes()), ("Packages.xz", &packages_xz[..])] {
        std::fs::write(bin.join(file), data).unwrap();
        std::fs::write(bin.join("by-hash/SHA256").join(fetch::sha256_hex(data)), data).unwrap();
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let rfc = |t: i64| {
        let s = format_unix(t); // "YYYY-MM-DD HH:MM:SS UTC"
        let (d, rest) = s.split_once(' ').unwrap();
        let v: Vec<&str> = d.split('-').collect();
        let mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        format!("{} {} {} {}", v[2], mon[v[1].parse::<usize>().unwrap() - 1], v[0], rest)
    };
    let release = format!(
        "Origin: Distill\nSuite: {s}\nCodename: {s}\nDate: {}\nValid-Until: {}\nAcquire-By-Hash: yes\n\
         Architectures: amd64 all\nComponents: main\nSHA256:\n {} {} main/binary-amd64/Packages\n {} {} \
         main/binary-amd64/Packages.xz\n",
        rfc(now - 60),
        rfc(now + p.valid_for),
        fetch::sha256_hex(packages.as_bytes()),
        packages.len(),
        fetch::sha256_hex(&packages_xz),
        packages_xz.len(),
        s = p.suite,
    );
    std::fs::write(dists.join("Release"), &release).unwrap();
    let inrelease = dists.join("InRelease");
    gpg(
        &arch.gnupg,
        &[
            "--local-user",
            p.signer,
            "--digest-algo",
            p.digest,
            "--output",
            inrelease.to_str().unwrap(),
            "--clearsign",
            dists.join("Release").to_str().unwrap(),
        ],
    );
}

fn local_request(arch: &TestArchive, mirror: &Path, cache: &str) -> distill_slim::debian::BaseRequest {
    let mut req = distill_slim::debian::BaseRequest::new("distilltest", &["hello"], &arch.base.join(cache));
    req.mirror = format!("file://{}", mirror.display());
    req.updates = false;
    req.security_mirror = None;
    req.arch = "amd64".into();
    req.keyring = arch.keyring.clone();
    req
}

#[test]
fn debian_build_from_signed_local_archive() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Some(arch) = test_archive("archive-ok") else { return };
    let mirror = arch.base.join("mirror");
    publish(&arch, &mirror, PUBLISH);
    let req = local_request(&arch, &mirror, "cache");
    let root = arch.base.join("root");
    let mut log = Vec::new();
    let report = distill_slim::debian::build_rootfs(&req, &root, |m| log.push(m.to_string())).unwrap();
    let names: Vec<(&str, &str)> = report.packages.iter().map(|p| (p.name.as_str(), p.version.as_str())).collect();
    assert_eq!(
        names,
        vec![("hello", "2.10-3"), ("libgreet", "1.1"), ("tinysh", "0.5"), ("ca-certificates", "20230311")]
    );
    assert_eq!(report.packages[2].reason, "hello depends on shell-virtual");
    assert_eq!(report.suites[0].signers.len(), 1);
    assert!(report.suites[0].signers[0].user_id.contains("Distill Test Archive"));
    assert!(log.iter().any(|l| l.contains("signed by")), "{log:?}");

    assert_eq!(std::fs::read(root.join("usr/bin/hello")).unwrap(), b"#!/bin/sh\necho hello\n");
    assert_eq!(std::fs::read_link(root.join("bin")).unwrap(), PathBuf::from("usr/bin"));
    assert_eq!(std::fs::read(root.join("usr/bin/tinysh")).unwrap(), b"fake shell", "/bin is merged into /usr/bin");
    assert!(!root.join("usr/bin/unwanted").exists(), "Essential but unrequested packages stay out");
    let status = std::fs::read_to_string(root.join("var/lib/dpkg/status.d/hello")).unwrap();
    assert!(status.starts_with("Package: hello\nStatus: install ok installed\nVersion: 2.10-3\n"), "{status}");
    assert!(root.join("var/lib/dpkg/status.d/hello.md5sums").is_file());
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.contains("root:x:0:0:") && passwd.contains("nonroot:x:65532:65532:nonroot:/home/nonroot:"));
    assert!(std::fs::read_to_string(root.join("etc/group")).unwrap().contains("nonroot:x:65532:"));
    let tmp = std::fs::metadata(root.join("tmp")).unwrap();
    assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
    let home = std::fs::metadata(root.join("home/nonroot")).unwrap();
    assert_eq!(home.permissions().mode() & 0o777, 0o700);
    if home.uid() != 65532 {
        eprintln!("note: not running as root, /home/nonroot is not owned by 65532");
    }
    assert_eq!(std::fs::read(root.join("etc/ssl/certs/ca-certificates.crt")).unwrap(), CA_PEM);
    assert!(root.join("etc/nsswitch.conf").is_file());

    // Second build: everything comes from the verified cache.
    let root2 = arch.base.join("root2");
    let again = distill_slim::debian::build_rootfs(&req, &root2, |_| {}).unwrap();
    assert_eq!(again.packages.len(), 4);
    // Only InRelease is fetched again (the index and the .debs are cache hits).
    let inrelease_len = std::fs::metadata(mirror.join("dists/distilltest/InRelease")).unwrap().len();
    assert_eq!(again.downloaded_bytes, inrelease_len);
}

#[test]
fn debian_tampered_archive_is_rejected() {
    let Some(arch) = test_archive("archive-bad") else { return };
    let fresh = |n: &str| arch.base.join(format!("root-{n}"));
    let build = |mirror: &Path, cache: &str, f: &dyn Fn(&mut distill_slim::debian::BaseRequest)| {
        let mut req = local_request(&arch, mirror, cache);
        f(&mut req);
        distill_slim::debian::build_rootfs(&req, &fresh(cache), |_| {})
    };
    let flip = |path: &Path, at: usize| {
        let mut d = std::fs::read(path).unwrap();
        let i = at.min(d.len() - 1);
        d[i] ^= 0x01;
        std::fs::write(path, d).unwrap();
    };

    // A .deb changed on the mirror: its SHA-256 no longer matches the signed Packages index.
    let m = arch.base.join("m-deb");
    publish(&arch, &m, PUBLISH);
    flip(&m.join("pool/main/l/libgreet/libgreet.deb"), 200);
    let err = build(&m, "c-deb", &|_| {}).unwrap_err();
    assert!(matches!(err, DebianError::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains("libgreet.deb"), "{err}");

    // The Packages index changed (both the canonical path and by-hash copy): does not match Release.
    let m = arch.base.join("m-idx");
    publish(&arch, &m, PUBLISH);
    let bin = m.join("dists/distilltest/main/binary-amd64");
    for e in std::fs::read_dir(bin.join("by-hash/SHA256")).unwrap() {
        flip(&e.unwrap().path(), 30);
    }
    flip(&bin.join("Packages.xz"), 30);
    let err = build(&m, "c-idx", &|_| {}).unwrap_err();
    assert!(matches!(err, DebianError::DigestMismatch { .. }), "{err}");

    // InRelease edited inside the signed text (one hex digit of a hash).
    let m = arch.base.join("m-sig");
    publish(&arch, &m, PUBLISH);
    let inrel = m.join("dists/distilltest/InRelease");
    let text = std::fs::read_to_string(&inrel).unwrap();
    let pos = text.find("main/binary-amd64/Packages.xz").unwrap() - 20;
    let mut bytes = text.into_bytes();
    bytes[pos] = if bytes[pos] == b'0' { b'1' } else { b'0' };
    std::fs::write(&inrel, &bytes).unwrap();
    let err = build(&m, "c-sig", &|_| {}).unwrap_err();
    assert!(matches!(err, DebianError::Signature(_)), "{err}");

    // Text added after the signature block is refused before gpgv runs.
    publish(&arch, &m, PUBLISH);
    let mut d = std::fs::read(&inrel).unwrap();
    d.extend_from_slice(b"\nSHA256:\n 00 1 main/binary-amd64/Packages.xz\n");
    std::fs::write(&inrel, d).unwrap();
    let err = build(&m, "c-trail", &|_| {}).unwrap_err();
    assert!(err.to_string().contains("after the signature"), "{err}");

    // Signed by a key that is not in the keyring.
    let m = arch.base.join("m-key");
    publish(&arch, &m, Publish { signer: UNTRUSTED, ..PUBLISH });
    let err = build(&m, "c-key", &|_| {}).unwrap_err();
    assert!(matches!(err, DebianError::Signature(_)), "{err}");

    // A SHA-1 signature does not count.
    let m = arch.base.join("m-sha1");
    publish(&arch, &m, Publish { digest: "SHA1", ..PUBLISH });
    let err = build(&m, "c-sha1", &|_| {}).unwrap_err();
    assert!(err.to_string().contains("SHA-2"), "{err}");

    // An expired Release (Valid-Until in the past), accepted only when the check is turned off.
    let m = arch.base.join("m-old");
    publish(&arch, &m, Publish { valid_for: -3600, ..PUBLISH });
    let err = build(&m, "c-old", &|_| {}).unwrap_err();
    assert!(matches!(err, DebianError::Release(_)) && err.to_string().contains("expired"), "{err}");
    build(&m, "c-old2", &|r| r.check_valid_until = false).unwrap();

    // A correctly signed Release for another suite, served under the requested suite's name.
    let m = arch.base.join("m-suite");
    publish(&arch, &m, Publish { suite: "othersuite", ..PUBLISH });
    std::fs::rename(m.join("dists/othersuite"), m.join("dists/distilltest")).unwrap();
    let err = build(&m, "c-suite", &|_| {}).unwrap_err();
    assert!(err.to_string().contains("othersuite"), "{err}");

    // An architecture the suite does not have.
    let m = arch.base.join("m-arch");
    publish(&arch, &m, PUBLISH);
    let err = build(&m, "c-arch", &|r| r.arch = "arm64".into()).unwrap_err();
    assert!(err.to_string().contains("no architecture arm64"), "{err}");

    // Untouched archive still builds (the failures above were not environmental).
    let m = arch.base.join("m-good");
    publish(&arch, &m, PUBLISH);
    build(&m, "c-good", &|_| {}).unwrap();
}
