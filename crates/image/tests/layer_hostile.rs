//! Hostile archives built by hand: each is rejected with a clear error (or
//! neutralised inside the root), and nothing is ever written outside the
//! root: a sentinel directory next to it stays empty.

mod layer_common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Instant;

use distill_image::layer::{
    ApplyOptions, ApplyStats, CompressWriter, Compression, LayerError, WhiteoutMode, WriteOptions, apply_layer,
    scan_tar, write_layer_from_tar,
};
use layer_common::*;

struct Scene {
    _t: TempDir,
    root: PathBuf,
    sentinel: PathBuf,
    /// A directory outside the root with a file that must survive.
    outside: PathBuf,
}

impl Scene {
    fn new(tag: &str) -> Scene {
        let t = TempDir::new(tag);
        let root = t.sub("root");
        let sentinel = t.sub("sentinel");
        let outside = t.sub("outside");
        write(&outside.join("keep"), b"keep", 0o644);
        Scene { root, sentinel, outside, _t: t }
    }

    fn apply(&self, tar: &[u8], mode: WhiteoutMode) -> Result<ApplyStats, LayerError> {
        apply_layer(tar, &self.root, &ApplyOptions { whiteouts: mode, same_owner: is_root() })
    }

    fn assert_untouched(&self) {
        assert!(list(&self.sentinel).is_empty(), "sentinel written: {:?}", list(&self.sentinel));
        assert_eq!(list(&self.outside), vec![self.outside.join("keep")]);
        assert_eq!(fs::read(self.outside.join("keep")).unwrap(), b"keep");
        let m = fs::metadata(&self.sentinel).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o755, "sentinel mode changed");
    }

    /// `..` from the root up to `/`, then down to the sentinel.
    fn up_to_sentinel(&self) -> String {
        format!("../../../../../../../../../..{}", self.sentinel.display())
    }
}

fn expect_unsafe(r: Result<ApplyStats, LayerError>, needle: &str) -> String {
    match r {
        Err(e @ LayerError::Unsafe { .. }) => {
            let m = e.to_string();
            assert!(m.contains(needle), "{m:?} does not mention {needle:?}");
            m
        }
        other => panic!("expected an unsafe-entry error mentioning {needle:?}, got {other:?}"),
    }
}

/// scan_tar and write_layer_from_tar reject it too.
fn rejected_by_validation(tar: &[u8]) -> String {
    let e1 = scan_tar(tar).unwrap_err();
    let e2 = write_layer_from_tar(tar, &WriteOptions::default(), std::io::sink()).unwrap_err();
    assert_eq!(e1.to_string(), e2.to_string());
    e1.to_string()
}

#[test]
fn dotdot_traversal_is_rejected() {
    let s = Scene::new("dotdot");
    for name in ["../sentinel/x".to_string(), format!("{}/x", s.up_to_sentinel()), "a/../../sentinel/x".to_string()] {
        let tar = RawTar::default().file(&name, b"pwned").finish();
        for mode in [WhiteoutMode::Apply, WhiteoutMode::Overlay] {
            let m = expect_unsafe(s.apply(&tar, mode), "climbs out of the root");
            assert!(m.contains("sentinel/x"), "names the entry: {m}");
        }
        assert!(rejected_by_validation(&tar).contains("climbs out"));
        s.assert_untouched();
    }
    // `..` inside the root is harmless and resolved lexically.
    let tar = RawTar::default().file("a/../b", b"ok").finish();
    s.apply(&tar, WhiteoutMode::Apply).unwrap();
    assert_eq!(fs::read(s.root.join("b")).unwrap(), b"ok");
    scan_tar(&tar[..]).unwrap();
}

#[test]
fn absolute_names_stay_inside_the_root() {
    let s = Scene::new("abs");
    let name = format!("{}/x", s.sentinel.display());
    let tar = RawTar::default().file("/etc/x", b"etc").file(&name, b"inside").finish();
    s.apply(&tar, WhiteoutMode::Apply).unwrap();
    assert_eq!(fs::read(s.root.join("etc/x")).unwrap(), b"etc");
    let inner = s.root.join(s.sentinel.strip_prefix("/").unwrap()).join("x");
    assert_eq!(fs::read(inner).unwrap(), b"inside");
    scan_tar(&tar[..]).unwrap();
    s.assert_untouched();
}

#[test]
fn symlink_escape_then_write_through_stays_inside() {
    let s = Scene::new("symesc");
    let sentinel = s.sentinel.display().to_string();
    let cases: Vec<(String, String)> = vec![
        (sentinel.clone(), "absolute target".into()),
        (s.up_to_sentinel(), "relative target climbing out".into()),
        ("..".into(), "target `..`".into()),
    ];
    for (i, (target, what)) in cases.iter().enumerate() {
        let link = format!("link{i}");
        let mut raw = RawTar::default();
        raw.symlink(&link, target).file(&format!("{link}/pwned"), b"pwned");
        if target == ".." {
            raw.file(&format!("{link}/sentinel/pwned"), b"pwned");
        }
        let tar = raw.finish();
        s.apply(&tar, WhiteoutMode::Apply).unwrap_or_else(|e| panic!("{what}: {e}"));
        s.assert_untouched();
        let m = rejected_by_validation(&tar);
        assert!(m.contains("symlink earlier in the archive"), "{what}: {m}");
    }
    // The writes landed inside the root, where the link points when the
    // root is `/`.
    assert!(s.root.join(s.sentinel.strip_prefix("/").unwrap()).join("pwned").exists());
    assert!(s.root.join("pwned").exists(), "`..` at the root stays at the root");
}

#[test]
fn existing_symlinks_are_replaced_not_followed() {
    let s = Scene::new("replace");
    // A lower layer left links pointing outside (as a hostile base could).
    std::os::unix::fs::symlink(s.sentinel.join("file"), s.root.join("victim")).unwrap();
    std::os::unix::fs::symlink(&s.sentinel, s.root.join("vdir")).unwrap();
    std::os::unix::fs::symlink(&s.outside, s.root.join("vout")).unwrap();
    let mut raw = RawTar::default();
    raw.file("victim", b"data").entry("vdir/", b'5', b"", "");
    let mut tar = raw.0.clone();
    // A directory entry with mode 0777 over the link.
    let mut h = raw_header(b"vdir2/", b'5', 0, b"");
    h[100..108].copy_from_slice(b"0000777\0");
    fix_checksum(&mut h);
    std::os::unix::fs::symlink(&s.sentinel, s.root.join("vdir2")).unwrap();
    tar.extend_from_slice(&h);
    // Whiteouts and an opaque marker through a link to the outside.
    tar.extend_from_slice(&raw_header(b"vout/.wh.keep", b'0', 0, b""));
    tar.extend_from_slice(&raw_header(b"vout/.wh..wh..opq", b'0', 0, b""));
    tar.extend_from_slice(&[0u8; 1024]);
    s.apply(&tar, WhiteoutMode::Apply).unwrap();
    assert!(fs::symlink_metadata(s.root.join("victim")).unwrap().is_file());
    assert!(fs::symlink_metadata(s.root.join("vdir")).unwrap().is_dir());
    assert!(fs::symlink_metadata(s.root.join("vdir2")).unwrap().is_dir());
    s.assert_untouched();
    // Overlay mode: whiteout devices and the opaque xattr stay inside too.
    if is_root() {
        s.apply(&tar, WhiteoutMode::Overlay).unwrap();
        s.assert_untouched();
        assert!(get_xattr(&s.outside, "trusted.overlay.opaque").is_none());
    }
}

fn fix_checksum(h: &mut [u8; 512]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&x| u32::from(x)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// A directory whose mode and mtime are deferred, then a parent replaced
/// by a symlink to the outside: the deferred chmod must not follow it.
#[test]
fn deferred_directory_metadata_does_not_follow_a_replaced_parent() {
    let s = Scene::new("deferred");
    fs::create_dir(s.sentinel.join("b")).unwrap();
    let before = fs::metadata(s.sentinel.join("b")).unwrap();
    let mut raw = RawTar::default();
    raw.dir("a/");
    let mut h = raw_header(b"a/b/", b'5', 0, b"");
    h[100..108].copy_from_slice(b"0000777\0");
    fix_checksum(&mut h);
    raw.0.extend_from_slice(&h);
    raw.symlink("a", s.sentinel.to_str().unwrap());
    let tar = raw.finish();
    s.apply(&tar, WhiteoutMode::Apply).unwrap();
    let after = fs::metadata(s.sentinel.join("b")).unwrap();
    assert_eq!(after.mode(), before.mode(), "mode changed outside the root");
    assert_eq!(after.mtime(), before.mtime(), "mtime changed outside the root");
    assert!(fs::symlink_metadata(s.root.join("a")).unwrap().file_type().is_symlink());
    fs::remove_dir(s.sentinel.join("b")).unwrap();
    s.assert_untouched();
}

#[test]
fn hard_link_escapes_are_rejected() {
    let s = Scene::new("hardesc");
    let outside_keep = s.outside.join("keep");
    let nlink = fs::metadata(&outside_keep).unwrap().nlink();
    let escape = format!("../../../../../../../..{}", outside_keep.display());
    let cases = [
        (escape.as_str(), "climbs out of the root"),
        (outside_keep.to_str().unwrap(), "does not exist in the root"),
        ("missing", "does not exist in the root"),
    ];
    for (target, msg) in cases {
        let tar = RawTar::default().hardlink("h", target).finish();
        expect_unsafe(s.apply(&tar, WhiteoutMode::Apply), msg);
        assert!(!s.root.join("h").exists());
        let m = rejected_by_validation(&tar);
        assert!(m.contains("hard link target"), "{m}");
    }
    // Through a symlink the archive made: resolved inside the root, where
    // there is nothing to link to.
    let tar = RawTar::default().symlink("link", s.outside.to_str().unwrap()).hardlink("h", "link/keep").finish();
    expect_unsafe(s.apply(&tar, WhiteoutMode::Apply), "does not exist in the root");
    // To a directory.
    let tar = RawTar::default().dir("d/").hardlink("h2", "d").finish();
    expect_unsafe(s.apply(&tar, WhiteoutMode::Apply), "is a directory");
    assert_eq!(fs::metadata(&outside_keep).unwrap().nlink(), nlink, "no link to the outside file");
    s.assert_untouched();
}

#[test]
fn symlink_loops_and_file_parents_are_errors() {
    let s = Scene::new("loops");
    let tar = RawTar::default().symlink("a", "b").symlink("b", "a").file("a/x", b"x").finish();
    let start = Instant::now();
    let err = s.apply(&tar, WhiteoutMode::Apply).unwrap_err();
    assert!(err.to_string().contains("too many levels of symlinks"), "{err}");
    assert!(start.elapsed().as_secs() < 5);
    let tar = RawTar::default().file("f", b"x").file("f/x", b"y").finish();
    let err = s.apply(&tar, WhiteoutMode::Apply).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
    assert!(err.to_string().contains("f/x"), "{err}");
    s.assert_untouched();
}

#[test]
fn bad_whiteouts_are_rejected() {
    let s = Scene::new("badwh");
    for name in ["a/.wh.", "a/.wh...", "a/.wh.."] {
        let tar = RawTar::default().file(name, b"").finish();
        expect_unsafe(s.apply(&tar, WhiteoutMode::Apply), "whiteout");
        assert!(rejected_by_validation(&tar).contains("whiteout"));
    }
    s.assert_untouched();
}

#[test]
fn truncated_streams_fail_with_the_entry_name() {
    let s = Scene::new("trunc");
    let data = noise(5000, 9);
    let tar = RawTar::default().dir("d/").file("d/file.bin", &data).file("d/after", b"x").finish();
    for cut in [100, 512 * 2 + 10, 512 * 2 + 4000, tar.len() - 1024 - 512, tar.len() - 700] {
        let short = &tar[..cut];
        let err = s.apply(short, WhiteoutMode::Apply).unwrap_err();
        assert!(matches!(err, LayerError::Truncated { .. }), "cut {cut}: {err}");
        let m = err.to_string();
        if (1024..1024 + 512 + 5000).contains(&cut) {
            assert!(m.contains("d/file.bin"), "cut {cut}: {m}");
        }
        assert!(matches!(scan_tar(short).unwrap_err(), LayerError::Truncated { .. }));
        assert!(matches!(
            write_layer_from_tar(short, &WriteOptions::default(), std::io::sink()).unwrap_err(),
            LayerError::Truncated { .. }
        ));
    }
    s.assert_untouched();
}

#[test]
fn corrupt_compression_is_a_clear_error() {
    let s = Scene::new("codec");
    let tar = RawTar::default().file("a", &noise(300_000, 4)).finish();
    for c in [Compression::gzip(), Compression::zstd()] {
        let mut w = CompressWriter::new(Vec::new(), c, 2).unwrap();
        std::io::Write::write_all(&mut w, &tar).unwrap();
        let blob = w.finish().unwrap();
        let name = c.codec().name();
        // Bit flips in the middle.
        let mut bad = blob.clone();
        let mid = bad.len() / 2;
        for b in &mut bad[mid..mid + 64] {
            *b = !*b;
        }
        let err = scan_tar(&bad[..]).unwrap_err();
        assert!(matches!(err, LayerError::Decompress { .. } | LayerError::Truncated { .. }), "{name}: {err}");
        assert!(err.to_string().contains(name), "{name}: {err}");
        assert!(s.apply(&bad, WhiteoutMode::Apply).is_err());
        assert!(write_layer_from_tar(&bad[..], &WriteOptions::default(), std::io::sink()).is_err());
        // Truncated compressed stream, even after the whole tar: the
        // trailer is checked.
        for cut in [blob.len() / 2, blob.len() - 4] {
            let err = scan_tar(&blob[..cut]).unwrap_err();
            assert!(
                matches!(err, LayerError::Truncated { .. } | LayerError::Decompress { .. }),
                "{name} cut {cut}: {err}"
            );
        }
    }
    // Garbage after the magic.
    let err = scan_tar(&[0x1f, 0x8b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10][..]).unwrap_err();
    assert!(err.to_string().contains("gzip"), "{err}");
    let err = scan_tar(&[0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff, 0xff, 0xff, 1, 2, 3][..]).unwrap_err();
    assert!(err.to_string().contains("zstd"), "{err}");
    s.assert_untouched();
}

#[test]
fn terabyte_header_in_a_short_stream_fails_fast() {
    let s = Scene::new("tb");
    let tb: u64 = 1 << 40;
    // Base-256 size field.
    let mut a = raw_header(b"huge", b'0', tb, b"").to_vec();
    a.extend_from_slice(&[0xabu8; 8192]);
    // PAX size record.
    let mut raw = RawTar::default();
    raw.pax(&[("size", &tb.to_string())]);
    raw.0.extend_from_slice(&raw_header(b"huge2", b'0', 0, b""));
    raw.0.extend_from_slice(&[0xcdu8; 8192]);
    for tar in [a, raw.0.clone()] {
        let start = Instant::now();
        let err = s.apply(&tar, WhiteoutMode::Apply).unwrap_err();
        assert!(matches!(err, LayerError::Truncated { .. }), "{err}");
        assert!(err.to_string().contains("1099511627776"), "{err}");
        let err = scan_tar(&tar[..]).unwrap_err();
        assert!(matches!(err, LayerError::Truncated { .. }), "{err}");
        assert!(start.elapsed().as_secs() < 3);
    }
    s.assert_untouched();
}

#[test]
fn trailing_data_after_the_end_marker_is_rejected_on_import() {
    let mut tar = RawTar::default().file("a", b"a").finish();
    // An entry hidden after the end marker (seen by `tar -i` only).
    tar.extend_from_slice(&raw_header(b"hidden", b'0', 0, b""));
    let m = rejected_by_validation(&tar);
    assert!(m.contains("after the end-of-archive marker"), "{m}");
}

/// Random corruption of a small archive with links and symlinks: errors,
/// never a panic, never a write outside.
#[test]
fn mutated_archives_never_escape_or_panic() {
    let s = Scene::new("fuzz");
    let mut raw = RawTar::default();
    raw.dir("d/")
        .file("d/f", b"content")
        .symlink("d/l", "../../x")
        .hardlink("d/h", "d/f")
        .pax(&[("path", "d/long-name"), ("SCHILY.xattr.user.a", "b")])
        .file("ignored", b"x")
        .file("d/.wh.f", b"");
    let tar = raw.finish();
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for i in 0..300 {
        let mut m = tar.clone();
        for _ in 0..(1 + i % 4) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pos = (x as usize) % m.len();
            m[pos] = (x >> 32) as u8;
        }
        let _ = scan_tar(&m[..]);
        let _ = write_layer_from_tar(&m[..], &WriteOptions::default(), std::io::sink());
        let root = s.root.join(format!("r{i}"));
        fs::create_dir_all(&root).unwrap();
        for mode in [WhiteoutMode::Apply, WhiteoutMode::Overlay] {
            let _ = apply_layer(&m[..], &root, &ApplyOptions { whiteouts: mode, same_owner: false });
        }
    }
    s.assert_untouched();
}
