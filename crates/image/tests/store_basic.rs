//! The store as an OCI layout with a metadata database: import, names,
//! resolution, index.json derivation and repair, prune, fsck.

#[path = "layer_common/mod.rs"]
mod layer_common;
mod store_common;

use std::fs;

use distill_image::Error;
use distill_image::manifest::{ANNOTATION_REF_NAME, Index, OCI_LAYOUT_FILE};
use distill_image::reference::Reference;
use distill_image::store::{FsckOptions, Severity, Store};
use store_common::{Fixture, rootfs};

fn tag(s: &str) -> Reference {
    Reference::parse_normalized(s).unwrap().with_default_tag()
}

#[test]
fn a_new_store_is_an_oci_layout() {
    let f = Fixture::new("layout");
    assert_eq!(fs::read(f.root().join("oci-layout")).unwrap(), OCI_LAYOUT_FILE);
    let index = Index::from_slice(&fs::read(f.root().join("index.json")).unwrap()).unwrap();
    assert_eq!(index.schema_version, 2);
    assert!(index.manifests.is_empty());
    assert!(f.root().join("blobs/sha256").is_dir());
    // Reopening is harmless.
    drop(Store::open(f.root()).unwrap());
    assert!(f.store.fsck(FsckOptions::default()).unwrap().is_clean());

    // On ext4, the directories that receive whole trees spread them over
    // the block groups (`chattr +T`).
    const EXT4_SUPER_MAGIC: i64 = 0xEF53;
    if rustix::fs::statfs(f.root()).unwrap().f_type as i64 == EXT4_SUPER_MAGIC {
        for dir in ["tmp", "snapshots"] {
            let fd = fs::File::open(f.root().join(dir)).unwrap();
            let flags = rustix::fs::ioctl_getflags(&fd).unwrap();
            assert!(flags.contains(rustix::fs::IFlags::TOPDIR), "{dir}: {flags:?}");
        }
    }
}

#[test]
fn import_records_blobs_names_and_index() {
    let f = Fixture::new("import");
    let done = f.import(&rootfs("a"), Some("app:1.0"));
    let img = f.store.find_image("app:1.0").unwrap();
    assert_eq!(img.record.digest, done.image.digest);
    assert_eq!(img.record.tags, vec![tag("app:1.0")]);
    assert_eq!(img.config.rootfs.diff_ids.len(), 1);
    assert_eq!(img.config.os, "linux");
    assert_eq!(img.config.created.as_deref(), Some("2023-11-14T22:13:20Z"));
    assert_eq!(img.config.history[0].comment.as_deref(), Some("Imported from test.tar"));
    for d in [img.record.digest, img.manifest.config.digest, img.manifest.layers[0].digest] {
        assert!(f.store.has_blob(&d), "{d}");
    }
    let info = f.store.layer_info(&img.manifest.layers[0].digest).unwrap().unwrap();
    assert_eq!(info.diff_id, img.config.rootfs.diff_ids[0]);
    assert_eq!(info.uncompressed_size, rootfs("a").len() as u64);

    let index = Index::from_slice(&fs::read(f.root().join("index.json")).unwrap()).unwrap();
    assert_eq!(index.manifests.len(), 1);
    assert_eq!(index.manifests[0].digest, done.image.digest);
    assert_eq!(index.manifests[0].annotation(ANNOTATION_REF_NAME), Some("app:1.0"));
    assert!(f.store.fsck(FsckOptions { verify_diff_ids: true, ..Default::default() }).unwrap().is_clean());
}

#[test]
fn same_rootfs_and_time_give_the_same_digest() {
    let a = Fixture::new("repro-a");
    let b = Fixture::new("repro-b");
    let da = a.import(&rootfs("x"), Some("x")).image;
    let db = b.import(&rootfs("x"), Some("x")).image;
    assert_eq!(da.digest, db.digest);
    assert_eq!(da.config, db.config);
    let dc = b.import(&rootfs("y"), Some("y")).image;
    assert_ne!(da.digest, dc.digest);
}

#[test]
fn resolve_by_name_id_prefix_and_digest() {
    let f = Fixture::new("resolve");
    let a = f.import(&rootfs("a"), Some("quay.io/org/app:2")).image;
    let b = f.import(&rootfs("b"), Some("app")).image;
    assert_eq!(f.store.resolve("app").unwrap().digest, b.digest);
    assert_eq!(f.store.resolve("docker.io/library/app:latest").unwrap().digest, b.digest);
    assert_eq!(f.store.resolve("quay.io/org/app:2").unwrap().digest, a.digest);
    assert_eq!(f.store.resolve(&a.config.hex()).unwrap().digest, a.digest);
    assert_eq!(f.store.resolve(&a.config.hex()[..12]).unwrap().digest, a.digest);
    assert_eq!(f.store.resolve(&format!("sha256:{}", &a.config.hex()[..8])).unwrap().digest, a.digest);
    assert_eq!(f.store.resolve(&a.digest.to_string()).unwrap().digest, a.digest);
    assert_eq!(f.store.resolve(&format!("whatever@{}", a.digest)).unwrap().digest, a.digest);
    assert!(matches!(f.store.resolve("app:nope"), Err(Error::ImageNotFound(_))));
    assert!(matches!(f.store.resolve("sha256:zz"), Err(Error::ImageNotFound(_))));
    // A one-character prefix shared by both IDs is ambiguous, if they share it.
    let (ha, hb) = (a.config.hex(), b.config.hex());
    let common: usize = ha.chars().zip(hb.chars()).take_while(|(x, y)| x == y).count();
    if common > 0 {
        assert!(matches!(f.store.resolve(&ha[..common]), Err(Error::Ambiguous(_))));
    }
}

#[test]
fn tags_move_and_rmi_follows_docker_rules() {
    let f = Fixture::new("rmi");
    let a = f.import(&rootfs("a"), Some("app:1")).image;
    let w = f.store.writer().unwrap();
    w.tag(&a, &tag("app:2")).unwrap();
    w.tag(&a, &tag("other")).unwrap();
    assert_eq!(f.store.resolve("app:2").unwrap().tags.len(), 3);

    // Re-importing under app:1 moves the tag; the old image keeps its others.
    drop(w);
    let b = f.import(&rootfs("b"), Some("app:1"));
    assert_eq!(b.replaced, Some(a.digest));
    let w = f.store.writer().unwrap();

    // By ID with two names left: refused unless forced.
    let err = w.remove(&a.config.hex()[..12], false).unwrap_err();
    assert!(err.to_string().contains("must be forced"), "{err}");
    // By name: untag only.
    let r = w.remove("app:2", false).unwrap();
    assert_eq!(r.untagged, vec![tag("app:2")]);
    assert!(r.deleted.is_empty());
    // Last name: untag and delete.
    let r = w.remove("other", false).unwrap();
    assert_eq!(r.deleted, vec![a.config]);
    assert!(f.store.resolve(&a.digest.to_string()).is_err());
    // Forced removal by ID.
    w.tag(&b.image, &tag("x")).unwrap();
    let r = w.remove(&b.image.config.to_string(), true).unwrap();
    assert_eq!(r.untagged.len(), 2);
    assert!(f.store.images().unwrap().is_empty());
    // Blobs stay until prune.
    assert!(f.store.has_blob(&b.image.digest));
    let report = w.prune(true).unwrap();
    assert_eq!(report.blobs, 6, "{report:?}"); // 2 × (manifest, config, layer)
    drop(w);
    let fsck = f.store.fsck(FsckOptions::default()).unwrap();
    assert!(fsck.is_clean(), "{:?}", fsck.issues);
    assert_eq!(fs::read_dir(f.root().join("blobs/sha256")).unwrap().count(), 0);
}

#[test]
fn prune_keeps_tagged_and_pinned_images_and_drops_dangling_ones() {
    let f = Fixture::new("prune");
    let kept = f.import(&rootfs("kept"), Some("kept")).image;
    let dangling = f.import(&rootfs("dangling"), None).image;
    let pinned = f.import(&rootfs("pinned"), None).image;
    let w = f.store.writer().unwrap();
    w.update(|tx| tx.set_gc_root("build-cache", &pinned.digest)).unwrap();
    let report = w.prune(true).unwrap();
    assert_eq!(report.images, vec![dangling.digest]);
    assert_eq!(report.blobs, 3);
    drop(w);
    assert!(f.store.find_image("kept").is_ok());
    assert!(f.store.find_image(&pinned.digest.to_string()).is_ok());
    assert!(!f.store.has_blob(&dangling.digest));
    assert!(f.store.has_blob(&kept.digest));
    assert!(f.store.fsck(FsckOptions::default()).unwrap().is_clean());
}

#[test]
fn a_stale_index_is_repaired_by_the_next_writer() {
    let f = Fixture::new("stale");
    f.import(&rootfs("a"), Some("app"));
    let good = fs::read(f.root().join("index.json")).unwrap();
    // As if a crash came between the database commit and the index rewrite.
    fs::write(f.root().join("index.json"), br#"{"schemaVersion":2,"manifests":[]}"#).unwrap();
    assert!(!f.store.index_in_sync().unwrap());
    let r = f.store.fsck(FsckOptions::default()).unwrap();
    assert!(r.is_healthy());
    assert_eq!(r.count(Severity::Stale), 1, "{:?}", r.issues);
    let r = f.store.fsck(FsckOptions { repair: true, ..Default::default() }).unwrap();
    assert!(r.is_clean(), "{:?}", r.issues);
    assert_eq!(fs::read(f.root().join("index.json")).unwrap(), good);
    // Opening the store (no writer active) repairs it too.
    fs::remove_file(f.root().join("index.json")).unwrap();
    drop(Store::open(f.root()).unwrap());
    assert_eq!(fs::read(f.root().join("index.json")).unwrap(), good);
}

#[test]
fn fsck_finds_corrupt_dangling_and_leftover_content() {
    let f = Fixture::new("fsck");
    let img = f.import(&rootfs("a"), Some("app")).image;
    let image = f.store.image(&img).unwrap();
    let layer = image.manifest.layers[0].digest;

    // Leftovers: an unreferenced blob and a staging directory.
    fs::write(f.root().join("blobs/sha256").join(distill_image::digest::Digest::of(b"junk").hex()), b"junk").unwrap();
    fs::create_dir(f.root().join("tmp/staging-dead")).unwrap();
    let r = f.store.fsck(FsckOptions::default()).unwrap();
    assert!(r.is_healthy(), "{:?}", r.issues);
    assert_eq!(r.count(Severity::Reclaimable), 2, "{:?}", r.issues);

    // A flipped byte in the layer blob.
    let path = f.store.blob_path(&layer);
    let mut data = fs::read(&path).unwrap();
    let last = data.len() - 1;
    data[last] ^= 0xff;
    fs::write(&path, &data).unwrap();
    let r = f.store.fsck(FsckOptions::default()).unwrap();
    assert!(!r.is_healthy());
    assert_eq!(r.count(Severity::Corrupt), 1, "{:?}", r.issues);

    // The layer blob gone.
    fs::remove_file(&path).unwrap();
    let r = f.store.fsck(FsckOptions::default()).unwrap();
    assert_eq!(r.count(Severity::Dangling), 1, "{:?}", r.issues);
    assert!(r.issues.iter().any(|i| i.message.contains(&layer.to_string())));
}

#[test]
fn readers_do_not_wait_for_the_writer() {
    let f = Fixture::new("readers");
    f.import(&rootfs("a"), Some("app"));
    let w = f.store.writer().unwrap();
    // Another handle (as another process would have) reads freely.
    let reader = Store::open(f.root()).unwrap();
    assert_eq!(reader.images().unwrap().len(), 1);
    assert!(reader.writer_active().unwrap());
    let r = reader.fsck(FsckOptions::default()).unwrap();
    assert!(r.writer_active);
    drop(w);
    assert!(!reader.writer_active().unwrap());
}

/// Entries another tool added to index.json (`skopeo copy … oci:$ROOT:x`)
/// are adopted when complete, and dropped when their blobs are missing.
#[test]
fn complete_foreign_index_entries_are_adopted() {
    let f = Fixture::new("adopt");
    let img = f.import(&rootfs("a"), Some("app")).image;
    let path = f.root().join("index.json");
    let mut index = Index::from_slice(&fs::read(&path).unwrap()).unwrap();
    let mut foreign = distill_image::manifest::Descriptor::new(&img.media_type, img.digest, img.size);
    foreign.annotations = Some([(ANNOTATION_REF_NAME.to_string(), "copied:7".to_string())].into());
    let mut missing =
        distill_image::manifest::Descriptor::new(&img.media_type, distill_image::digest::Digest::of(b"no"), 2);
    missing.annotations = Some([(ANNOTATION_REF_NAME.to_string(), "ghost:1".to_string())].into());
    index.manifests.push(foreign);
    index.manifests.push(missing);
    fs::write(&path, index.to_canonical_vec().unwrap()).unwrap();

    let store = Store::open(f.root()).unwrap();
    assert_eq!(store.resolve("copied:7").unwrap().digest, img.digest);
    assert!(store.resolve("ghost:1").is_err());
    let index = fs::read_to_string(&path).unwrap();
    assert!(index.contains("copied:7") && !index.contains("ghost"), "{index}");
    assert!(store.fsck(FsckOptions::default()).unwrap().is_clean());
}
