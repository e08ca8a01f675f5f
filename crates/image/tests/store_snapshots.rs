//! Snapshots: layers extracted once per chain ID, shared between images,
//! reference-counted, usable as overlayfs lower directories; and export,
//! which flattens the layers.

#[path = "layer_common/mod.rs"]
mod layer_common;
mod store_common;

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;

use distill_image::config::{ImageConfig, RootFs, chain_ids};
use distill_image::export::export_rootfs;
use distill_image::layer::{Compression, EntryKind, TarReader, WriteOptions, write_layer_from_tar};
use distill_image::reference::Reference;
use distill_image::store::{FsckOptions, Image, LayerInfo, Severity, Writer, image_holder};
use layer_common::{RawTar, is_root};
use store_common::Fixture;

fn add_layer(w: &Writer<'_>, tar: &[u8]) -> LayerInfo {
    let mut sink = w.blob_sink().unwrap();
    let d =
        write_layer_from_tar(tar, &WriteOptions { compression: Compression::gzip(), ..Default::default() }, &mut sink)
            .unwrap();
    w.commit_blob(sink.finish().unwrap(), Some(&d.digest)).unwrap();
    LayerInfo {
        digest: d.digest,
        diff_id: d.diff_id,
        media_type: d.media_type,
        size: d.size,
        uncompressed_size: d.uncompressed_size,
    }
}

fn commit(w: &Writer<'_>, layers: &[LayerInfo], name: &str) -> Image {
    let config = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        rootfs: RootFs { kind: "layers".into(), diff_ids: layers.iter().map(|l| l.diff_id).collect() },
        ..Default::default()
    };
    let tag = Reference::parse_normalized(name).unwrap();
    let rec = w.commit_image(&config, layers, Some(&tag)).unwrap().image;
    w.store().image(&rec).unwrap()
}

fn base_tar() -> Vec<u8> {
    RawTar::default()
        .dir("etc/")
        .file("etc/os-release", b"ID=test\n")
        .file("etc/motd", b"hello\n")
        .dir("var/")
        .dir("var/cache/")
        .file("var/cache/a", b"a")
        .file("var/cache/b", b"b")
        .finish()
}

fn top_tar() -> Vec<u8> {
    RawTar::default()
        .dir("etc/")
        .file("etc/.wh.motd", b"")
        .dir("var/cache/")
        .file("var/cache/.wh..wh..opq", b"")
        .file("var/cache/c", b"c")
        .file("app", b"#!/bin/sh\n")
        .finish()
}

/// Two images share the base layer: one snapshot for it, two references.
#[test]
fn snapshots_are_shared_and_reference_counted() {
    let f = Fixture::new("snap-share");
    let w = f.store.writer().unwrap();
    let base = add_layer(&w, &base_tar());
    let top = add_layer(&w, &top_tar());
    let small = commit(&w, std::slice::from_ref(&base), "small");
    let big = commit(&w, &[base.clone(), top.clone()], "big");

    let dirs_small = w.prepare_image_snapshots(&small).unwrap();
    let dirs_big = w.prepare_image_snapshots(&big).unwrap();
    assert_eq!(dirs_small[0], dirs_big[0], "the base snapshot is shared");
    let chain = chain_ids(&[base.diff_id, top.diff_id]);
    assert_eq!(dirs_big, chain.iter().map(|c| f.store.snapshot_path(c)).collect::<Vec<PathBuf>>());
    assert_eq!(f.store.snapshot(&chain[0]).unwrap().unwrap().refcount, 2);
    let top_rec = f.store.snapshot(&chain[1]).unwrap().unwrap();
    assert_eq!((top_rec.refcount, top_rec.parent), (1, Some(chain[0])));

    // Overlay form: each snapshot holds only its own layer.
    assert_eq!(fs::read(dirs_big[0].join("etc/motd")).unwrap(), b"hello\n");
    assert_eq!(fs::read(dirs_big[1].join("var/cache/c")).unwrap(), b"c");
    assert!(!dirs_big[1].join("etc/os-release").exists());
    if is_root() {
        let wh = fs::symlink_metadata(dirs_big[1].join("etc/motd")).unwrap();
        assert!(wh.file_type().is_char_device(), "a whiteout is a 0:0 char device");
    }
    // Preparing again is idempotent; a build can hold them too.
    assert_eq!(w.prepare_snapshots(&big, "build:1").unwrap(), dirs_big);
    assert_eq!(f.store.snapshot(&chain[1]).unwrap().unwrap().refcount, 2);
    assert_eq!(w.release_snapshots("build:1").unwrap(), 2);
    assert_eq!(w.release_snapshots("build:1").unwrap(), 0);

    // Removing `big` frees its top snapshot; the base stays for `small`.
    w.remove("big", false).unwrap();
    let report = w.prune(true).unwrap();
    assert_eq!(report.snapshots, 1, "{report:?}");
    assert!(dirs_big[0].is_dir() && !dirs_big[1].exists());
    assert_eq!(f.store.snapshot(&chain[0]).unwrap().unwrap().refcount, 1);
    w.remove("small", false).unwrap();
    assert_eq!(w.prune(true).unwrap().snapshots, 1);
    assert!(f.store.snapshots().unwrap().is_empty());
    drop(w);
    let r = f.store.fsck(FsckOptions::default()).unwrap();
    assert!(r.is_clean(), "{:?}", r.issues);
    let _ = image_holder(&small.record.digest);
}

/// A snapshot directory without a database row (a crash between rename and
/// commit) is reclaimable, and is redone rather than trusted.
#[test]
fn unrecorded_snapshot_dirs_are_garbage() {
    let f = Fixture::new("snap-orphan");
    let w = f.store.writer().unwrap();
    let base = add_layer(&w, &base_tar());
    let img = commit(&w, std::slice::from_ref(&base), "img");
    let path = f.store.snapshot_path(&base.diff_id);
    fs::create_dir_all(path.join("junk")).unwrap();
    drop(w);
    let r = f.store.fsck(FsckOptions::default()).unwrap();
    assert!(r.is_healthy());
    assert_eq!(r.count(Severity::Reclaimable), 1, "{:?}", r.issues);

    let w = f.store.writer().unwrap();
    let dirs = w.prepare_image_snapshots(&img).unwrap();
    assert!(!dirs[0].join("junk").exists());
    assert!(dirs[0].join("etc/os-release").is_file());
    drop(w);
    assert!(f.store.fsck(FsckOptions::default()).unwrap().is_clean());
}

/// A layer blob whose content does not match the config's diff_id is not
/// turned into a snapshot.
#[test]
fn a_layer_with_the_wrong_diff_id_is_refused() {
    let f = Fixture::new("snap-bad");
    let w = f.store.writer().unwrap();
    let base = add_layer(&w, &base_tar());
    let mut img = commit(&w, std::slice::from_ref(&base), "img");
    img.config.rootfs.diff_ids[0] = distill_image::digest::Digest::of(b"something else");
    let err = w.prepare_image_snapshots(&img).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    drop(w);
    assert!(f.store.snapshots().unwrap().is_empty());
    assert_eq!(fs::read_dir(f.root().join("snapshots")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(f.root().join("tmp")).unwrap().count(), 0);
}

/// Export applies whiteouts: the flattened tree is what a container sees.
#[test]
fn export_flattens_the_layers() {
    let f = Fixture::new("export");
    let w = f.store.writer().unwrap();
    let base = add_layer(&w, &base_tar());
    let top = add_layer(&w, &top_tar());
    let img = commit(&w, &[base, top], "img");
    let mut out = Vec::new();
    export_rootfs(&w, &img, &mut out).unwrap();
    let mut r = TarReader::new(&out[..]);
    let mut names = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        if e.kind != EntryKind::Directory {
            names.push(e.display_path());
        }
    }
    names.sort();
    assert_eq!(names, ["app", "etc/os-release", "var/cache/c"]);
}

/// The snapshots, top first, are an overlayfs lowerdir stack.
#[test]
fn snapshots_mount_as_overlayfs_lower_dirs() {
    if !is_root() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "overlayfs test needs root in CI");
        eprintln!("SKIPPED snapshots_mount_as_overlayfs_lower_dirs: needs root");
        return;
    }
    let f = Fixture::new("overlay");
    let w = f.store.writer().unwrap();
    let base = add_layer(&w, &base_tar());
    let top = add_layer(&w, &top_tar());
    let img = commit(&w, &[base, top], "img");
    let mut dirs = w.prepare_image_snapshots(&img).unwrap();
    drop(w);
    dirs.reverse();
    let lower = dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(":");
    let merged = f.dir.sub("merged");
    let status = std::process::Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &format!("lowerdir={lower}")])
        .arg(&merged)
        .status()
        .unwrap();
    assert!(status.success(), "mount -t overlay failed");
    let listing = |p: &str| {
        let mut v: Vec<String> = fs::read_dir(merged.join(p))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let etc = listing("etc");
    let cache = listing("var/cache");
    let app = merged.join("app").is_file();
    let _ = std::process::Command::new("umount").arg(&merged).status();
    assert_eq!(etc, ["os-release"]);
    assert_eq!(cache, ["c"]);
    assert!(app);
}
