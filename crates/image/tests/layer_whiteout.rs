//! Whiteouts both ways: overlayfs upper dir → `.wh.` entries → overlay
//! snapshot (char devices, opaque xattr) or flattened rootfs (deletions);
//! and end to end through a real overlayfs mount when we may mount.

mod layer_common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use distill_image::layer::{
    ApplyOptions, Compression, EntryKind, TarReader, WhiteoutMode, WriteOptions, apply_layer, decompress,
    write_layer_from_dir,
};
use layer_common::*;

type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

fn entries(blob: &[u8]) -> Vec<(String, EntryKind, Xattrs)> {
    let mut tr = TarReader::new(decompress(blob).unwrap());
    let mut v = Vec::new();
    while let Some(e) = tr.next_entry().unwrap() {
        v.push((e.display_path(), e.kind, e.xattrs.clone()));
    }
    v
}

/// An upper dir as overlayfs leaves it: whiteout devices (two sharing an
/// inode, as the kernel makes them), an opaque directory, plain changes.
fn make_upper(upper: &Path) {
    fs::create_dir_all(upper.join("etc")).unwrap();
    mknod(&upper.join("etc/gone"), rustix::fs::FileType::CharacterDevice, 0, 0, 0);
    fs::create_dir_all(upper.join("var")).unwrap();
    mknod(&upper.join("var/w1"), rustix::fs::FileType::CharacterDevice, 0, 0, 0);
    fs::hard_link(upper.join("var/w1"), upper.join("var/w2")).unwrap();
    fs::create_dir_all(upper.join("opq/sub")).unwrap();
    write(&upper.join("opq/new"), b"new\n", 0o644);
    set_xattr(&upper.join("opq"), "trusted.overlay.opaque", b"y");
    set_xattr(&upper.join("opq"), "user.keep", b"kept");
    write(&upper.join("etc/added"), b"added\n", 0o644);
}

#[test]
fn overlay_upper_dir_becomes_whiteout_entries() {
    if !is_root() {
        eprintln!("skipped: needs root (mknod, trusted xattrs)");
        return;
    }
    let t = TempDir::new("wh");
    let upper = t.sub("upper");
    make_upper(&upper);
    let opts = WriteOptions { compression: Compression::None, overlay_upper: true, ..Default::default() };
    let mut blob = Vec::new();
    write_layer_from_dir(&upper, &opts, &mut blob).unwrap();
    let ents = entries(&blob);
    let names: Vec<&str> = ents.iter().map(|e| e.0.as_str()).collect();
    assert!(names.contains(&"etc/.wh.gone"), "{names:?}");
    // Whiteouts sharing an inode are not written as hard links.
    for n in ["var/.wh.w1", "var/.wh.w2"] {
        let e = ents.iter().find(|e| e.0 == n).unwrap_or_else(|| panic!("{n} in {names:?}"));
        assert_eq!(e.1, EntryKind::Regular, "{n}");
    }
    // The opaque marker right after its directory; the overlay xattr gone.
    let i = names.iter().position(|n| *n == "opq").unwrap();
    assert_eq!(names[i + 1], "opq/.wh..wh..opq");
    let opq_x: Vec<&[u8]> = ents[i].2.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(opq_x, vec![&b"user.keep"[..]]);
    assert!(!names.iter().any(|n| n.ends_with("gone") && !n.contains(".wh.")));

    // Without overlay mode a 0:0 char device is just a device.
    let mut plain = Vec::new();
    write_layer_from_dir(&upper, &WriteOptions { overlay_upper: false, ..opts.clone() }, &mut plain).unwrap();
    let p = entries(&plain);
    assert!(p.iter().any(|e| e.0 == "etc/gone" && e.1 == EntryKind::CharDevice));
    assert!(!p.iter().any(|e| e.0.contains(".wh.")));

    // Overlay mode: back to devices and the opaque xattr.
    let snap = t.sub("snap");
    let stats =
        apply_layer(&blob[..], &snap, &ApplyOptions { whiteouts: WhiteoutMode::Overlay, same_owner: true }).unwrap();
    assert_eq!(stats.whiteouts, 4);
    for n in ["etc/gone", "var/w1", "var/w2"] {
        let m = fs::symlink_metadata(snap.join(n)).unwrap();
        assert!(m.file_type().is_char_device() && m.rdev() == 0, "{n}");
    }
    assert_eq!(get_xattr(&snap.join("opq"), "trusted.overlay.opaque").as_deref(), Some(&b"y"[..]));
    assert_eq!(get_xattr(&snap.join("opq"), "user.keep").as_deref(), Some(&b"kept"[..]));
    assert!(snap.join("opq/new").exists());

    // Writing the snapshot again gives the same layer (round trip).
    let mut again = Vec::new();
    write_layer_from_dir(&snap, &opts, &mut again).unwrap();
    assert_eq!(entries(&again).iter().map(|e| e.0.clone()).collect::<Vec<_>>(), names);

    // Apply mode: deletions on a lower rootfs.
    let root = t.sub("rootfs");
    write(&root.join("etc/gone"), b"old", 0o644);
    write(&root.join("etc/keep"), b"keep", 0o644);
    write(&root.join("var/w1"), b"old", 0o644);
    write(&root.join("opq/old1"), b"old", 0o644);
    write(&root.join("opq/sub/old2"), b"old", 0o644);
    fs::create_dir_all(root.join("opq/olddir/deeper")).unwrap();
    apply_layer(&blob[..], &root, &ApplyOptions { whiteouts: WhiteoutMode::Apply, same_owner: true }).unwrap();
    assert!(!root.join("etc/gone").exists());
    assert!(root.join("etc/keep").exists());
    assert!(root.join("etc/added").exists());
    assert!(!root.join("var/w1").exists() && !root.join("var/w2").exists());
    assert!(!root.join("opq/old1").exists());
    assert!(!root.join("opq/olddir").exists());
    assert!(root.join("opq/sub").is_dir(), "opq/sub is in this layer");
    assert!(!root.join("opq/sub/old2").exists(), "but its old content is not");
    assert_eq!(fs::read(root.join("opq/new")).unwrap(), b"new\n");
    assert!(list(&root).iter().all(|p| !p.to_string_lossy().contains(".wh.")));
}

/// A hand-made layer whose opaque marker comes after the directory's new
/// content (not Docker's order): Apply mode must keep that content.
#[test]
fn opaque_marker_after_content_keeps_the_layers_files() {
    let t = TempDir::new("opq-order");
    let root = t.sub("root");
    write(&root.join("d/old"), b"old", 0o644);
    let tar = RawTar::default().dir("d/").file("d/a-new", b"new").file("d/.wh..wh..opq", b"").finish();
    apply_layer(&tar[..], &root, &ApplyOptions { whiteouts: WhiteoutMode::Apply, same_owner: false }).unwrap();
    assert!(!root.join("d/old").exists());
    assert_eq!(fs::read(root.join("d/a-new")).unwrap(), b"new");
}

/// Real overlayfs: change a merged view, turn the upper dir into a layer,
/// apply it onto a copy of the lower dir: the result is the merged view.
#[test]
fn real_overlayfs_diff_applies_to_the_merged_view() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = TempDir::new("ovl");
    let lower = t.sub("lower");
    let upper = t.sub("upper");
    let work = t.sub("work");
    let merged = t.sub("merged");
    write(&lower.join("etc/a"), b"a\n", 0o644);
    write(&lower.join("etc/b"), b"b\n", 0o644);
    write(&lower.join("dir/x"), b"x\n", 0o644);
    write(&lower.join("dir/sub/y"), b"y\n", 0o644);
    write(&lower.join("bin/tool"), b"tool\n", 0o755);
    let opts = format!("lowerdir={},upperdir={},workdir={}", lower.display(), upper.display(), work.display());
    let ok = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(&merged)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("skipped: cannot mount overlayfs here");
        return;
    }
    let result = std::panic::catch_unwind(|| {
        fs::remove_file(merged.join("etc/a")).unwrap();
        fs::remove_dir_all(merged.join("dir")).unwrap();
        fs::create_dir(merged.join("dir")).unwrap();
        write(&merged.join("dir/new"), b"new\n", 0o600);
        write(&merged.join("etc/c"), b"c\n", 0o644);
        fs::set_permissions(merged.join("bin/tool"), std::os::unix::fs::PermissionsExt::from_mode(0o4711)).unwrap();
        fs::hard_link(merged.join("etc/c"), merged.join("etc/c2")).unwrap();
        set_times(&merged);
        snapshot(&merged)
    });
    let _ = Command::new("umount").arg(&merged).status();
    let want = result.unwrap();

    let mut blob = Vec::new();
    let opts = WriteOptions { overlay_upper: true, ..Default::default() };
    write_layer_from_dir(&upper, &opts, &mut blob).unwrap();
    let names: Vec<String> = entries(&blob).into_iter().map(|e| e.0).collect();
    assert!(names.contains(&"etc/.wh.a".to_string()), "{names:?}");
    assert!(names.contains(&"dir/.wh..wh..opq".to_string()), "{names:?}");

    // Flattened: lower copy + layer == merged view.
    let flat = t.sub("flat");
    run(Command::new("cp").arg("-a").arg(format!("{}/.", lower.display())).arg(&flat));
    apply_layer(&blob[..], &flat, &ApplyOptions { whiteouts: WhiteoutMode::Apply, same_owner: true }).unwrap();
    let mut got = snapshot(&flat);
    let mut want = want;
    // Directory mtimes of the lower copy are not part of the diff.
    for m in [&mut got, &mut want] {
        for v in m.values_mut() {
            if v.kind == 'd' {
                v.mtime = 0;
            }
        }
    }
    assert_same_tree(&want, &got);

    // As a snapshot: mounting lower + extracted layer gives the merged view.
    let snap = t.sub("snap");
    apply_layer(&blob[..], &snap, &ApplyOptions { whiteouts: WhiteoutMode::Overlay, same_owner: true }).unwrap();
    let merged2 = t.sub("merged2");
    let ro = format!("lowerdir={}:{}", snap.display(), lower.display());
    run(Command::new("mount").args(["-t", "overlay", "overlay", "-o", &ro]).arg(&merged2));
    let view = std::panic::catch_unwind(|| snapshot(&merged2));
    let _ = Command::new("umount").arg(&merged2).status();
    let mut view = view.unwrap();
    for v in view.values_mut() {
        if v.kind == 'd' {
            v.mtime = 0;
        }
    }
    assert_same_tree(&want, &view);
}
