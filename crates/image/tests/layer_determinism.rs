//! The same tree always gives the same layer bytes: twice in a row, when
//! created in another order, with any thread count, and with
//! SOURCE_DATE_EPOCH whatever the mtimes above it.

mod layer_common;

use std::fs;
use std::path::Path;

use distill_image::layer::{Compression, LayerDescriptor, TarReader, WriteOptions, decompress, write_layer_from_dir};
use layer_common::*;

fn layer(src: &Path, opts: &WriteOptions) -> (LayerDescriptor, Vec<u8>) {
    let mut blob = Vec::new();
    let d = write_layer_from_dir(src, opts, &mut blob).unwrap();
    (d, blob)
}

fn all_codecs() -> [Compression; 4] {
    [Compression::gzip(), Compression::Gzip { level: 1 }, Compression::zstd(), Compression::None]
}

#[test]
fn same_tree_same_digests() {
    let t = TempDir::new("det");
    let a = t.sub("a");
    let b = t.sub("b");
    build_full_tree(&a, false);
    build_full_tree(&b, true);
    for compression in all_codecs() {
        let opts = WriteOptions { compression, ..Default::default() };
        let (d1, blob1) = layer(&a, &opts);
        let (d2, _) = layer(&a, &opts);
        let (d3, _) = layer(&b, &opts);
        assert_eq!(d1, d2, "{compression:?}: twice");
        assert_eq!(d1, d3, "{compression:?}: created in reverse order");
        for threads in [1, 2, 3] {
            let (d, blob) = layer(&a, &WriteOptions { compression, threads, ..Default::default() });
            assert_eq!(d, d1, "{compression:?} with {threads} threads");
            assert_eq!(blob, blob1);
        }
    }
}

#[test]
fn source_date_epoch_clamps_mtimes() {
    let t = TempDir::new("sde");
    let a = t.sub("a");
    let b = t.sub("b");
    build_full_tree(&a, false);
    build_full_tree(&b, false);
    // b: everything touched "now" (later than the epoch).
    for p in list(&b) {
        if !p.ends_with("data/empty") {
            set_mtime(&p, 1_900_000_000);
        }
    }
    let epoch = 1_500_000_000;
    for compression in [Compression::gzip(), Compression::zstd()] {
        let opts = WriteOptions { compression, source_date_epoch: Some(epoch), ..Default::default() };
        let (da, blob) = layer(&a, &opts);
        let (db, _) = layer(&b, &opts);
        assert_eq!(da, db, "{compression:?}");
        let (unclamped, _) = layer(&a, &WriteOptions { compression, ..Default::default() });
        assert_ne!(unclamped.diff_id, da.diff_id);
        // Every mtime is min(mtime, epoch): the negative one stays.
        let mut tr = TarReader::new(decompress(&blob[..]).unwrap());
        let mut saw_negative = false;
        while let Some(e) = tr.next_entry().unwrap() {
            assert!(e.mtime <= epoch, "{}: {}", e.display_path(), e.mtime);
            saw_negative |= e.mtime == -3600;
        }
        assert!(saw_negative);
    }
}

/// Layer bytes must not change between releases unless on purpose (a
/// changed digest invalidates every cache). Needs root for fixed owners.
#[test]
fn golden_digests() {
    if !is_root() {
        eprintln!("skipped: needs root to fix owners");
        return;
    }
    let t = TempDir::new("golden");
    let src = t.sub("src");
    write(&src.join("etc/hostname"), b"distill\n", 0o644);
    write(&src.join("bin/tool"), &noise(300_000, 7), 0o4755);
    std::os::unix::fs::symlink("tool", src.join("bin/alias")).unwrap();
    fs::hard_link(src.join("bin/tool"), src.join("bin/tool2")).unwrap();
    write(&src.join("n".repeat(120)), b"long\n", 0o600);
    set_xattr(&src.join("etc/hostname"), "user.k", b"v");
    for p in list(&src) {
        chown(&p, 0, 0);
    }
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(src.join("bin/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    // Independent of the umask.
    for d in ["etc", "bin"] {
        fs::set_permissions(src.join(d), fs::Permissions::from_mode(0o755)).unwrap();
    }
    for p in list(&src) {
        set_mtime(&p, 1_234_567_890);
    }
    let got: Vec<String> = [Compression::None, Compression::gzip(), Compression::zstd()]
        .iter()
        .map(|&compression| layer(&src, &WriteOptions { compression, ..Default::default() }).0.digest.to_string())
        .collect();
    let diff_id = layer(&src, &WriteOptions { compression: Compression::None, ..Default::default() }).0.diff_id;
    assert_eq!(got[0], diff_id.to_string());
    let want = [
        "sha256:7b0116bbee1ec8c009fb72de4c3d46d35b40e8a3c19225188a1a10da824d99f1",
        "sha256:c3154cd7130b7ab358f4d9e627cc85c5ee5c9f989a51c0a9cff3838687f958b3",
        "sha256:cc56c928d6f4eaa0bc60b4ab668c43974605f23cc2b0b631bcd9b9078fb27d08",
    ];
    assert_eq!(got, want, "layer bytes changed");
}
