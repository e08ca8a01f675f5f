//! docker-archive and OCI archive: save, load, round trips, reproducible
//! output, and hostile archives that must leave the store untouched.

#[path = "layer_common/mod.rs"]
mod layer_common;
mod store_common;

use std::collections::BTreeSet;

use distill_image::archive::{ArchiveFormat, SaveItem, load_archive, save_archive};
use distill_image::config::ImageConfig;
use distill_image::digest::Digest;
use distill_image::layer::{EntryKind, TarReader};
use distill_image::reference::Reference;
use distill_image::store::{FsckOptions, Store};
use layer_common::{RawTar, raw_header};
use store_common::{Fixture, gzip, rootfs};

fn tag(s: &str) -> Reference {
    Reference::parse_normalized(s).unwrap().with_default_tag()
}

fn save(store: &Store, specs: &[&str], format: ArchiveFormat) -> Vec<u8> {
    let items: Vec<SaveItem> = specs
        .iter()
        .map(|s| {
            let image = store.find_image(s).unwrap();
            let names = if s.starts_with("sha256:") { vec![] } else { vec![tag(s)] };
            SaveItem { image, names }
        })
        .collect();
    let mut out = Vec::new();
    save_archive(store, &items, format, &mut out).unwrap();
    out
}

fn load(f: &Fixture, archive: &[u8]) -> distill_image::Result<Vec<distill_image::archive::LoadedImage>> {
    let w = f.store.writer().unwrap();
    load_archive(&w, archive)
}

/// (member name, sha256 of its content) for every regular file.
fn members(archive: &[u8]) -> Vec<(String, Digest)> {
    let mut r = TarReader::new(archive);
    let mut out = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        if e.kind == EntryKind::Regular {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut r.data(), &mut data).unwrap();
            out.push((e.display_path(), Digest::of(&data)));
        }
    }
    out
}

#[test]
fn oci_round_trip_keeps_every_digest() {
    let a = Fixture::new("oci-a");
    let img = a.import(&rootfs("a"), Some("app:1")).image;
    let archive = save(&a.store, &["app:1"], ArchiveFormat::Oci);
    let names: Vec<String> = members(&archive).into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"oci-layout".to_string()) && names.contains(&"index.json".to_string()));

    let b = Fixture::new("oci-b");
    let loaded = load(&b, &archive).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].image.digest, img.digest);
    assert_eq!(loaded[0].image.tags, vec![tag("app:1")]);
    // Saving again from the other store gives the very same bytes.
    assert_eq!(save(&b.store, &["app:1"], ArchiveFormat::Oci), archive);
    assert!(b.store.fsck(FsckOptions { verify_diff_ids: true, ..Default::default() }).unwrap().is_clean());
}

#[test]
fn docker_round_trip_keeps_config_and_layers() {
    let a = Fixture::new("docker-a");
    let img = a.store.find_image(&a.import(&rootfs("d"), Some("user/app:2")).image.digest.to_string()).unwrap();
    let archive = save(&a.store, &["user/app:2"], ArchiveFormat::Docker);
    let m = members(&archive);
    let manifest_json = {
        let mut r = TarReader::new(&archive[..]);
        let mut found = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            if e.path == b"manifest.json" {
                std::io::Read::read_to_end(&mut r.data(), &mut found).unwrap();
            }
        }
        String::from_utf8(found).unwrap()
    };
    assert!(manifest_json.contains(r#""RepoTags":["user/app:2"]"#), "{manifest_json}");
    // Layers are saved uncompressed, named by diff_id, as docker save does.
    let diff_id = img.config.rootfs.diff_ids[0];
    assert!(m.contains(&(format!("blobs/sha256/{}", diff_id.hex()), diff_id)), "{m:?}");

    let b = Fixture::new("docker-b");
    let loaded = load(&b, &archive).unwrap();
    assert_eq!(loaded[0].image.config, img.record.config);
    assert_eq!(loaded[0].image.tags, vec![tag("user/app:2")]);
    let got = b.store.image(&loaded[0].image).unwrap();
    assert_eq!(got.manifest.layers[0].digest, diff_id);
    // Saving back as docker-archive: identical archive.
    assert_eq!(save(&b.store, &["user/app:2"], ArchiveFormat::Docker), archive);
}

#[test]
fn saving_twice_is_byte_identical_and_several_images_share_blobs() {
    let f = Fixture::new("repro");
    f.import(&rootfs("a"), Some("a"));
    f.import(&rootfs("b"), Some("b"));
    for format in [ArchiveFormat::Oci, ArchiveFormat::Docker] {
        let one = save(&f.store, &["a", "b"], format);
        let two = save(&f.store, &["a", "b"], format);
        assert_eq!(one, two);
        let g = Fixture::new("repro-load");
        let loaded = load(&g, &one).unwrap();
        let tags: BTreeSet<String> = loaded.iter().flat_map(|l| l.image.tags.iter().map(|t| t.familiar())).collect();
        assert_eq!(tags, BTreeSet::from(["a:latest".to_string(), "b:latest".to_string()]));
    }
}

#[test]
fn compressed_archives_load() {
    let a = Fixture::new("gz-a");
    a.import(&rootfs("z"), Some("z"));
    let archive = save(&a.store, &["z"], ArchiveFormat::Oci);
    let b = Fixture::new("gz-b");
    assert_eq!(load(&b, &gzip(&archive)).unwrap().len(), 1);
}

/// A classic `docker save` layout: `<id>/layer.tar`, a symlinked duplicate
/// layer, a legacy `repositories` file, a RepoTags entry without tag.
#[test]
fn classic_docker_archive_with_symlinked_layers() {
    let layer = rootfs("classic");
    let diff = Digest::of(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","docker_version":"20.10","config":{{"Cmd":["sh"]}},"rootfs":{{"type":"layers","diff_ids":["{diff}","{diff}"]}}}}"#
    );
    let config_digest = Digest::of(config.as_bytes());
    let manifest = format!(
        r#"[{{"Config":"{}.json","RepoTags":["classic"],"Layers":["aaa/layer.tar","bbb/layer.tar"]}}]"#,
        config_digest.hex()
    );
    let archive = RawTar::default()
        .dir("aaa/")
        .file("aaa/layer.tar", &layer)
        .file("aaa/VERSION", b"1.0")
        .dir("bbb/")
        .symlink("bbb/layer.tar", "../aaa/layer.tar")
        .file(&format!("{}.json", config_digest.hex()), config.as_bytes())
        .file("repositories", br#"{"classic":{"latest":"bbb"}}"#)
        .file("manifest.json", manifest.as_bytes())
        .finish();
    let f = Fixture::new("classic");
    let loaded = load(&f, &archive).unwrap();
    assert_eq!(loaded[0].image.config, config_digest);
    assert_eq!(loaded[0].image.tags, vec![tag("classic:latest")]);
    let img = f.store.find_image("classic").unwrap();
    assert_eq!(img.config_bytes, config.as_bytes());
    assert_eq!(img.config.extra["docker_version"], "20.10");
    assert_eq!(img.manifest.layers.len(), 2);
    assert!(f.store.fsck(FsckOptions { verify_diff_ids: true, ..Default::default() }).unwrap().is_clean());
    let _: ImageConfig = img.config;
}

/// Every hostile archive fails with a message naming the problem, and the
/// store is exactly as before.
#[test]
fn hostile_archives_are_rejected_and_leave_nothing_behind() {
    let good_src = Fixture::new("hostile-src");
    good_src.import(&rootfs("h"), Some("h"));
    let good = save(&good_src.store, &["h"], ArchiveFormat::Oci);

    let f = Fixture::new("hostile");
    f.import(&rootfs("existing"), Some("existing"));
    let before = f.state();

    let evil_layer = RawTar::default().file("../../etc/evil", b"x").finish();
    let evil_diff = Digest::of(&evil_layer);
    let evil_config = format!(r#"{{"os":"linux","rootfs":{{"type":"layers","diff_ids":["{evil_diff}"]}}}}"#);
    let evil_docker = RawTar::default()
        .file("layer.tar", &evil_layer)
        .file("config.json", evil_config.as_bytes())
        .file("manifest.json", br#"[{"Config":"config.json","RepoTags":["evil"],"Layers":["layer.tar"]}]"#)
        .finish();
    let symlink_escape = RawTar::default().symlink("manifest.json", "../../../../etc/passwd").finish();
    let dotdot_member = RawTar::default().file("../outside", b"x").file("index.json", b"{}").finish();
    let mut truncated = good.clone();
    truncated.truncate(good.len() / 2);
    let mut bad_gzip = gzip(&good);
    // Right after the gzip header: a deflate block of the reserved type.
    bad_gzip[10..74].fill(0xff);
    let mut terabyte = raw_header(b"blobs/sha256/huge", b'0', 1 << 40, b"").to_vec();
    terabyte.extend_from_slice(&[0u8; 4096]);
    let wrong_diff = {
        let cfg = r#"{"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}"#;
        RawTar::default()
            .file("layer.tar", &rootfs("w"))
            .file("config.json", cfg.as_bytes())
            .file("manifest.json", br#"[{"Config":"config.json","RepoTags":["w"],"Layers":["layer.tar"]}]"#)
            .finish()
    };

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("layer with ../ in a name", evil_docker, "layer.tar"),
        ("member symlink out of the archive", symlink_escape, "outside the archive"),
        ("member named ../", dotdot_member, "outside the archive"),
        ("truncated stream", truncated, "truncated"),
        ("corrupt gzip", bad_gzip, "gzip"),
        ("1 TB header", terabyte, "1099511627776"),
        ("diff_id mismatch", wrong_diff, "does not match"),
        ("not an archive", b"hello, this is not a tar".to_vec(), "invalid"),
        ("empty", Vec::new(), "empty"),
    ];
    for (what, archive, needle) in cases {
        let err = load(&f, &archive).expect_err(what);
        let mut msg = err.to_string();
        let mut src = std::error::Error::source(&err);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        assert!(msg.contains(needle), "{what}: {msg:?} should mention {needle:?}");
        assert_eq!(f.state(), before, "{what}: the store changed");
    }
    assert!(f.store.fsck(FsckOptions::default()).unwrap().is_clean());
}

/// Docker 25+ `docker save` writes both manifest.json and an OCI layout:
/// the image keeps the OCI manifest (and so its digest), and the names
/// come from RepoTags.
#[test]
fn docker25_hybrid_archives_keep_their_manifest() {
    let a = Fixture::new("hybrid-a");
    let w = a.store.writer().unwrap();
    let opts = distill_image::import::ImportOptions {
        compression: distill_image::layer::Compression::None,
        reference: Some(tag("hybrid:1")),
        ..Default::default()
    };
    let img = distill_image::import::import_rootfs(&w, &rootfs("hy")[..], &opts).unwrap().image;
    drop(w);
    let image = a.store.image(&img).unwrap();
    let oci = save(&a.store, &["hybrid:1"], ArchiveFormat::Oci);
    // Re-pack the OCI archive with a manifest.json next to it.
    let mut raw = RawTar::default();
    let mut r = TarReader::new(&oci[..]);
    while let Some(e) = r.next_entry().unwrap() {
        if e.kind == EntryKind::Regular {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut r.data(), &mut data).unwrap();
            raw.file(&e.display_path(), &data);
        }
    }
    let manifest_json = format!(
        r#"[{{"Config":"blobs/sha256/{}","RepoTags":["docker.io/library/renamed:25"],"Layers":["blobs/sha256/{}"]}}]"#,
        image.manifest.config.digest.hex(),
        image.manifest.layers[0].digest.hex()
    );
    raw.file("manifest.json", manifest_json.as_bytes());
    let archive = raw.finish();

    let b = Fixture::new("hybrid-b");
    let loaded = load(&b, &archive).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].image.digest, img.digest, "the OCI manifest is kept");
    assert_eq!(loaded[0].image.tags, vec![tag("renamed:25")]);
}
