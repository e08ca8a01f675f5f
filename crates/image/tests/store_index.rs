//! Multi-platform images in the store: an index recorded with
//! `Writer::commit_index` and tagged; names resolve to the host's entry or
//! to a given platform's; `prune` keeps what a named index lists; `rmi`
//! of the name drops the index; the OCI archive holds the index.

#[path = "layer_common/mod.rs"]
mod layer_common;
mod store_common;

use distill_image::archive::save_oci_index;
use distill_image::config::{ImageConfig, RootFs};
use distill_image::layer::{EntryKind, TarReader};
use distill_image::manifest::{Index, Platform, media_type};
use distill_image::reference::Reference;
use distill_image::store::ImageRecord;
use layer_common::RawTar;
use store_common::Fixture;

/// An image of one empty-ish layer whose config says `arch`.
fn image(f: &Fixture, arch: &str) -> ImageRecord {
    let tar = RawTar::default().file("platform", arch.as_bytes()).finish();
    let imported = f.import(&tar, None).image;
    let w = f.store.writer().unwrap();
    let base = f.store.image(&imported).unwrap();
    let layer = f.store.layer_info(&base.manifest.layers[0].digest).unwrap().unwrap();
    let config = ImageConfig {
        architecture: arch.into(),
        os: "linux".into(),
        rootfs: RootFs { kind: "layers".into(), diff_ids: vec![layer.diff_id] },
        ..Default::default()
    };
    w.commit_image(&config, &[layer], None).unwrap().image
}

fn platform(arch: &str) -> Platform {
    Platform { architecture: arch.into(), os: "linux".into(), ..Default::default() }
}

/// The regular files of a tar.
fn names(archive: &[u8]) -> Vec<String> {
    let mut r = TarReader::new(archive);
    let mut out = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        if e.kind == EntryKind::Regular {
            out.push(e.display_path());
        }
    }
    out
}

#[test]
fn an_index_is_tagged_resolved_per_platform_kept_by_prune_and_removed_by_rmi() {
    let f = Fixture::new("store-index");
    let host = distill_image::config::host_platform().0;
    let other = if host == "arm64" { "amd64" } else { "arm64" };
    let (a, b) = (image(&f, host), image(&f, other));
    let name = Reference::parse_normalized("multi:1").unwrap();
    let index = {
        let w = f.store.writer().unwrap();
        w.commit_index(&[(a.clone(), platform(host)), (b.clone(), platform(other))], Some(&name)).unwrap().image
    };
    assert_eq!(index.media_type, media_type::OCI_INDEX);
    assert!(f.store.images().unwrap().iter().all(|i| i.digest != index.digest), "images() lists manifests only");
    assert_eq!(f.store.indexes().unwrap().iter().map(|i| i.digest).collect::<Vec<_>>(), [index.digest]);
    // index.json names the index, so other tools find it.
    let top = Index::from_slice(&std::fs::read(f.root().join("index.json")).unwrap()).unwrap();
    assert!(top.manifests.iter().any(|d| d.digest == index.digest && d.media_type == media_type::OCI_INDEX));

    assert_eq!(f.store.resolve("multi:1").unwrap().digest, a.digest, "the host's entry");
    let found = f.store.find_image_for_platform("multi:1", "linux", other, None).unwrap();
    assert_eq!(found.record.digest, b.digest);
    let err = f.store.find_image_for_platform("multi:1", "linux", "s390x", None).unwrap_err();
    assert!(matches!(err, distill_image::Error::WrongPlatform { .. }), "{err}");
    // A single-platform image matches its own platform only.
    let single = format!("{}", b.digest);
    assert!(f.store.find_image_for_platform(&single, "linux", other, None).is_ok());
    let err = f.store.find_image_for_platform(&single, "linux", "s390x", None).unwrap_err().to_string();
    assert!(err.contains(&format!("linux/{other}")) && err.contains("linux/s390x"), "{err}");

    let mut archive = Vec::new();
    save_oci_index(&f.store, &index.digest, std::slice::from_ref(&name), &mut archive).unwrap();
    let listing = names(&archive);
    for d in [index.digest, a.digest, b.digest] {
        assert!(listing.contains(&format!("blobs/sha256/{}", d.hex())), "{listing:?}");
    }

    let w = f.store.writer().unwrap();
    let report = w.prune(true).unwrap();
    // (The untagged imports the images were made from go.)
    assert!(!report.images.iter().any(|d| *d == a.digest || *d == b.digest), "the index keeps them: {report:?}");
    assert!(f.store.has_blob(&index.digest));
    w.remove("multi:1", false).unwrap();
    assert!(f.store.indexes().unwrap().is_empty());
    assert!(matches!(f.store.resolve("multi:1"), Err(distill_image::Error::ImageNotFound(_))));
    let report = w.prune(true).unwrap();
    assert_eq!(report.images.len(), 2, "{report:?}");
    assert!(report.images.contains(&a.digest) && report.images.contains(&b.digest), "{report:?}");
    assert!(!f.store.has_blob(&index.digest));
}
