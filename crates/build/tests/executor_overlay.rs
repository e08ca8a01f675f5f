//! Snapshotters without a runtime: overlayfs mounts (both kernel APIs, many
//! lower dirs, whiteouts and opaque dirs in lower layers, unmount on drop)
//! and the naive copy-and-diff fallback, which must produce the same upper
//! dir as overlayfs. Root only; skipped loudly otherwise (failing under
//! CI=true).

mod executor_support;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use distill_build::executor::*;
use executor_support::*;

fn whiteout(p: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        rustix::fs::makedev(0, 0),
    )
    .unwrap();
}

fn opaque(p: &Path) {
    rustix::fs::lsetxattr(p, OVERLAY_OPAQUE_XATTR, b"y", rustix::fs::XattrFlags::empty()).unwrap();
}

fn write(p: &Path, text: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

/// Two synthetic layers in upper-dir form. Bottom: /a/b/c, /a/keep, /d/one,
/// /d/two, /e/x, /gone, /link -> a/keep. Top: whiteout for /gone, /d opaque
/// with only /d/new, /a/keep changed, /e/x whited out.
fn layers(scratch: &Scratch) -> Vec<PathBuf> {
    let (bottom, top) = (scratch.join("layer-bottom"), scratch.join("layer-top"));
    write(&bottom.join("a/b/c"), "c");
    write(&bottom.join("a/keep"), "old");
    write(&bottom.join("d/one"), "1");
    write(&bottom.join("d/two"), "2");
    write(&bottom.join("e/x"), "x");
    write(&bottom.join("gone"), "bye");
    symlink("a/keep", bottom.join("link")).unwrap();
    fs::create_dir_all(top.join("e")).unwrap();
    write(&top.join("a/keep"), "new");
    write(&top.join("d/new"), "n");
    opaque(&top.join("d"));
    whiteout(&top.join("gone"));
    whiteout(&top.join("e/x"));
    vec![top, bottom]
}

/// The merged view of a rootfs as path → description.
fn view(root: &Path) -> Vec<(String, String)> {
    summarize(root).into_iter().filter(|(_, d)| !d.starts_with("dir")).collect()
}

#[test]
fn lower_layers_merge_with_whiteouts_and_opaque_dirs_on_both_snapshotters() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new("merge");
    let lowers = layers(&scratch);
    let expected = vec![
        ("/a/b/c".to_string(), "file 644 0:0 \"c\"".to_string()),
        ("/a/keep".into(), "file 644 0:0 \"new\"".into()),
        ("/d/new".into(), "file 644 0:0 \"n\"".into()),
        ("/link".into(), "symlink -> a/keep".into()),
    ];
    for kind in KINDS {
        let snap = ActiveSnapshot::prepare(kind, &lowers, &scratch.join(kind.name())).unwrap();
        assert_eq!(view(snap.rootfs()), expected, "{kind:?}");
        assert!(snap.rootfs().join("e").is_dir());
        assert!(snap.commit().unwrap().read_dir().unwrap().next().is_none(), "{kind:?}: untouched diff not empty");
    }
}

#[test]
fn direct_changes_give_the_same_upper_dir_on_both_snapshotters() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new("direct");
    let lowers = layers(&scratch);
    let mut diffs = Vec::new();
    for kind in KINDS {
        let snap = ActiveSnapshot::prepare(kind, &lowers, &scratch.join(kind.name())).unwrap();
        let r = snap.rootfs();
        fs::write(r.join("a/keep"), "changed").unwrap(); // modify a lower file
        fs::remove_file(r.join("link")).unwrap(); // delete → whiteout
        fs::remove_dir_all(r.join("a/b")).unwrap(); // delete a dir → one whiteout
        fs::remove_dir_all(r.join("d")).unwrap(); // delete and make again → opaque
        write(&r.join("d/again"), "again");
        fs::create_dir(r.join("fresh")).unwrap(); // a new dir: not opaque
        write(&r.join("fresh/f"), "f");
        fs::set_permissions(r.join("e"), fs::Permissions::from_mode(0o700)).unwrap(); // metadata only
        fs::remove_file(r.join("a/keep")).unwrap(); // replace a file by a dir
        fs::create_dir(r.join("a/keep")).unwrap();
        let upper = snap.commit().unwrap();
        diffs.push(summarize(&upper));
    }
    let d = &diffs[0];
    let get = |p: &str| d.get(p).map(String::as_str).unwrap_or("<absent>");
    assert_eq!(get("/link"), "whiteout");
    assert_eq!(get("/a/b"), "whiteout");
    assert_eq!(get("/a/b/c"), "<absent>");
    assert_eq!(get("/d"), "dir 755 0:0 opaque");
    assert_eq!(get("/d/again"), "file 644 0:0 \"again\"");
    assert_eq!(get("/fresh"), "dir 755 0:0");
    assert_eq!(get("/e"), "dir 700 0:0");
    assert_eq!(get("/a/keep"), "dir 755 0:0 opaque");
    assert_eq!(d.len(), 9, "{d:#?}");
    assert_eq!(diffs[0], diffs[1], "overlayfs and naive diffs differ");
}

#[test]
fn zero_lower_dirs_is_an_empty_base() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new("zero");
    for kind in KINDS {
        let snap = ActiveSnapshot::prepare(kind, &[], &scratch.join(kind.name())).unwrap();
        assert!(snap.rootfs().read_dir().unwrap().next().is_none());
        write(&snap.rootfs().join("etc/os-release"), "x");
        let upper = snap.commit().unwrap();
        assert_eq!(summarize(&upper).len(), 2, "{kind:?}");
    }
    // The empty lower dir made for overlayfs is gone again.
    let left: Vec<_> = fs::read_dir(scratch.join("overlayfs")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["upper"]);
}

/// 150 lower dirs with long paths: far more than one page of legacy mount
/// options. Each kernel API must mount them all, in order.
#[test]
fn many_lower_dirs_mount_with_both_kernel_apis() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new("many");
    let long = "a-rather-long-snapshot-directory-name-like-a-chain-id-0123456789abcdef";
    let lowers: Vec<PathBuf> = (0..150)
        .map(|i| {
            let d = scratch.join(&format!("snapshots/{long}-{i:03}"));
            write(&d.join(format!("f{i}")), &i.to_string());
            write(&d.join("common"), &i.to_string());
            d
        })
        .collect();
    let joined: usize = lowers.iter().map(|p| p.as_os_str().len() + 1).sum();
    assert!(joined > 4096, "the test must overflow one page ({joined} bytes)");
    whiteout(&lowers[0].join("f5")); // the top layer hides f5
    for api in [OverlayApi::FsConfig, OverlayApi::Legacy, OverlayApi::Auto] {
        let dir = scratch.join(&format!("{api:?}"));
        let m = OverlayMount::mount_with(&lowers, &dir.join("upper"), &dir.join("work"), &dir.join("merged"), api);
        let m = match (api, m) {
            (_, Ok(m)) => m,
            (OverlayApi::FsConfig, Err(e)) if e.to_string().contains("Linux 6.8") => {
                eprintln!("!!! kernel without lowerdir+, FsConfig not tested: {e}");
                continue;
            }
            (_, Err(e)) => panic!("{api:?}: {e}"),
        };
        if api != OverlayApi::Auto {
            assert_eq!(m.api(), api);
        }
        let merged = m.merged().to_path_buf();
        assert_eq!(fs::read_to_string(merged.join("common")).unwrap(), "0", "{api:?}: top-most layer wins");
        assert_eq!(fs::read_to_string(merged.join("f149")).unwrap(), "149");
        assert!(!merged.join("f5").exists(), "{api:?}: whiteout in a lower layer");
        assert_eq!(fs::read_dir(&merged).unwrap().count(), 150, "{api:?}");
        assert_eq!(mounts_under(&dir), std::slice::from_ref(&merged));
        drop(m);
        assert!(mounts_under(&dir).is_empty(), "{api:?}: drop must unmount");
    }
}

#[test]
fn a_busy_mount_is_detached_on_drop() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new("busy");
    let lowers = layers(&scratch);
    let m =
        OverlayMount::mount(&lowers, &scratch.join("upper"), &scratch.join("work"), &scratch.join("merged")).unwrap();
    let held = fs::File::open(m.merged().join("a/keep")).unwrap();
    let cwd_holder = fs::read_dir(m.merged()).unwrap();
    drop(m);
    assert!(mounts_under(scratch.path()).is_empty());
    drop((held, cwd_holder));
}

#[test]
fn unknown_snapshotter_names_are_rejected() {
    assert_eq!(SnapshotterKind::parse("naive").unwrap(), SnapshotterKind::Naive);
    assert_eq!(SnapshotterKind::parse("").unwrap(), SnapshotterKind::Overlay);
    assert_eq!(SnapshotterKind::parse("overlayfs").unwrap(), SnapshotterKind::Overlay);
    let e = SnapshotterKind::parse("zfs").unwrap_err().to_string();
    assert!(e.contains("DISTILL_SNAPSHOTTER"), "{e}");
    // The variable as the environment sets it for this process.
    let from_env = SnapshotterKind::from_env();
    match std::env::var(SnapshotterKind::ENV).as_deref() {
        Ok("naive") => assert_eq!(from_env.unwrap(), SnapshotterKind::Naive),
        Err(_) => assert_eq!(from_env.unwrap(), SnapshotterKind::Overlay),
        Ok(_) => {}
    }
}

/// The layer writer (`distill_image::layer`, `overlay_upper: true`) reads
/// both snapshotters' upper dirs into the same tar: `.wh.` whiteouts and
/// `.wh..wh..opq` markers, no overlayfs internals.
#[test]
fn the_layer_writer_reads_both_upper_dirs_alike() {
    use distill_image::layer::{Compression, TarReader, WriteOptions, write_layer_from_dir};
    if !require_root() {
        return;
    }
    let scratch = Scratch::new("layer");
    let lowers = layers(&scratch);
    let mut listings = Vec::new();
    for kind in KINDS {
        let snap = ActiveSnapshot::prepare(kind, &lowers, &scratch.join(kind.name())).unwrap();
        let r = snap.rootfs();
        fs::remove_file(r.join("link")).unwrap();
        fs::remove_dir_all(r.join("d")).unwrap();
        write(&r.join("d/again"), "again");
        write(&r.join("a/b/new"), "new");
        let upper = snap.commit().unwrap();
        let opts = WriteOptions {
            compression: Compression::None,
            overlay_upper: true,
            source_date_epoch: Some(0),
            threads: 1,
        };
        let mut tar = Vec::new();
        write_layer_from_dir(&upper, &opts, &mut tar).unwrap();
        let mut reader = TarReader::new(&tar[..]);
        let mut names = Vec::new();
        while let Some(e) = reader.next_entry().unwrap() {
            names.push(String::from_utf8_lossy(&e.path).into_owned());
        }
        listings.push(names);
    }
    let names = &listings[0];
    assert!(names.iter().any(|n| n.trim_start_matches("./") == ".wh.link"), "{names:?}");
    assert!(names.iter().any(|n| n.trim_start_matches("./") == "d/.wh..wh..opq"), "{names:?}");
    assert!(names.iter().any(|n| n.trim_start_matches("./") == "a/b/new"), "{names:?}");
    assert_eq!(listings[0], listings[1], "the two snapshotters' layers differ");
}
