//! Interoperability with independent tar implementations: GNU tar lists and
//! extracts our layers to the same tree; we extract GNU tar's archives (GNU
//! and POSIX formats) to the same tree; Python's tarfile parses our layers
//! the way our reader does.

mod layer_common;

use std::fs;
use std::process::Command;

use distill_image::layer::{
    ApplyOptions, Compression, TarReader, WhiteoutMode, WriteOptions, apply_layer, scan_tar, write_layer_from_dir,
};
use layer_common::*;

#[test]
fn gnu_tar_lists_and_extracts_our_layers() {
    if !have("tar") {
        eprintln!("skipped: no tar");
        return;
    }
    let t = TempDir::new("gnu-read");
    let src = t.sub("src");
    build_full_tree(&src, false);
    let want = snapshot(&src);
    for (ext, compression, flag) in [
        ("tar", Compression::None, None),
        ("tar.gz", Compression::gzip(), Some("-z")),
        ("tar.zst", Compression::zstd(), Some("--zstd")),
    ] {
        if compression == Compression::zstd() && !have("zstd") {
            continue;
        }
        let layer = t.path().join(format!("layer.{ext}"));
        write_layer_from_dir(
            &src,
            &WriteOptions { compression, ..Default::default() },
            fs::File::create(&layer).unwrap(),
        )
        .unwrap();
        let mut list = Command::new("tar");
        list.args(flag).arg("-tvf").arg(&layer);
        let listing = run(&mut list);
        assert!(listing.contains(&"L".repeat(LONG_COMPONENT_LEN)), "{listing}");
        assert!(listing.contains("ünïcødé-名前.txt"), "{listing}");
        assert!(listing.contains("bin/su-hard link to bin/su"), "{listing}");
        assert!(listing.contains("-rwsr-xr-x"), "setuid shown: {listing}");
        assert!(listing.contains("drwxrwxrwt"), "sticky shown: {listing}");
        assert!(listing.contains(&"t".repeat(200)), "long symlink target: {listing}");
        assert!(!listing.contains("PaxHeaders"), "PAX headers are not entries: {listing}");
        if is_root() {
            assert!(listing.contains("3000000/3000001"), "PAX uid/gid: {listing}");
        }

        let dst = t.sub(&format!("dst-{ext}"));
        let mut x = Command::new("tar");
        x.args(flag)
            .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf"])
            .arg(&layer)
            .arg("-C")
            .arg(&dst);
        if is_root() {
            x.arg("--same-owner");
        }
        run(&mut x);
        assert_same_tree(&want, &snapshot(&dst));
    }
}

#[test]
fn we_extract_gnu_tar_archives() {
    if !have("tar") {
        eprintln!("skipped: no tar");
        return;
    }
    let t = TempDir::new("gnu-write");
    let src = t.sub("src");
    build_full_tree(&src, false);
    let want = snapshot(&src);
    for format in ["gnu", "posix"] {
        let archive = t.path().join(format!("{format}.tar"));
        let mut c = Command::new("tar");
        c.arg(format!("--format={format}"))
            .args(["--xattrs", "--xattrs-include=*", "-C"])
            .arg(&src)
            .arg("-cf")
            .arg(&archive)
            .arg(".");
        run(&mut c);
        let summary = scan_tar(fs::File::open(&archive).unwrap()).unwrap();
        assert!(summary.entries as usize >= want.len(), "{format}: {summary:?}");
        let dst = t.sub(&format!("dst-{format}"));
        apply_layer(
            fs::File::open(&archive).unwrap(),
            &dst,
            &ApplyOptions { whiteouts: WhiteoutMode::Apply, same_owner: is_root() },
        )
        .unwrap();
        let mut got = snapshot(&dst);
        let mut want = want.clone();
        if format == "gnu" {
            // The GNU format has no xattrs.
            for v in want.values_mut() {
                v.xattrs.clear();
            }
            for v in got.values_mut() {
                v.xattrs.clear();
            }
        }
        assert_same_tree(&want, &got);
    }
}

/// Python's tarfile is another independent reader (with PAX support).
#[test]
fn python_tarfile_agrees_with_our_reader() {
    if !have("python3") {
        eprintln!("skipped: no python3");
        return;
    }
    let t = TempDir::new("py");
    let src = t.sub("src");
    build_full_tree(&src, false);
    let layer = t.path().join("layer.tar.gz");
    write_layer_from_dir(&src, &WriteOptions::default(), fs::File::create(&layer).unwrap()).unwrap();
    let script = r#"
import sys, tarfile
with tarfile.open(sys.argv[1], "r:*") as tf:
    for m in tf:
        x = sorted(k[len("SCHILY.xattr."):] for k in m.pax_headers if k.startswith("SCHILY.xattr."))
        name = m.name.encode("utf-8", "surrogateescape").hex()
        link = m.linkname.encode("utf-8", "surrogateescape").hex()
        print(name, m.type.decode(), m.size, link, m.uid, m.gid, int(m.mtime), oct(m.mode), m.devmajor, m.devminor, ",".join(x))
"#;
    let out = run(Command::new("python3").arg("-c").arg(script).arg(&layer));
    let mut ours = Vec::new();
    let mut tr = TarReader::new(distill_image::layer::decompress(fs::File::open(&layer).unwrap()).unwrap());
    while let Some(e) = tr.next_entry().unwrap() {
        let mut names: Vec<String> = e.xattrs.iter().map(|(k, _)| String::from_utf8_lossy(k).into_owned()).collect();
        names.sort();
        ours.push(format!(
            "{} {} {} {} {} {} {} {:#o} {} {} {}",
            hex(&e.path),
            char::from(e.kind.typeflag()),
            e.size,
            hex(&e.link_name),
            e.uid,
            e.gid,
            e.mtime,
            e.mode,
            e.dev_major,
            e.dev_minor,
            names.join(",")
        ));
    }
    let theirs: Vec<&str> = out.lines().collect();
    assert_eq!(theirs.len(), ours.len());
    for (a, b) in theirs.iter().zip(&ours) {
        assert_eq!(a, b);
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
