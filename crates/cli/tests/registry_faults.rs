//! Pulls through a proxy that injects faults between distill and a real
//! registry: connections cut mid-blob, 500 and 429 answers, flipped bytes.
//! Transient faults are retried or resumed (with Range) and the pull
//! finishes with the right digests; corrupt data is never stored.

mod image_support;
mod registry_support;

use distill_image::store::Store;
use image_support::*;
use registry_support::*;

fn ready(test: &str) -> bool {
    require_tools(test, &["docker-registry", "tar", "gzip"])
}

/// A registry holding a 3-layer image pushed by distill; returns the
/// registry, the scratch dir, and the layer and config digests.
fn setup(tag: &str) -> (Registry, TempDir, Vec<String>, String, String) {
    let reg = Registry::start(Auth::None);
    let tmp = TempDir::new(tag);
    let a = tmp.join("store-a");
    let archive = multilayer_archive(tmp.path(), "app:v1", 3, 3_000_000, 7);
    distill_ok(&a, &["load", "-i", archive.to_str().unwrap()]);
    distill_ok(&a, &["push", "app:v1", &format!("{}/faults/app:v1", reg.host())]);
    let store = Store::open(&a).unwrap();
    let image = store.find_image("app:v1").unwrap();
    let layers = image.manifest.layers.iter().map(|l| l.digest.to_string()).collect();
    let config = image.manifest.config.digest.to_string();
    (reg, tmp, layers, config, image.record.digest.to_string())
}

#[test]
fn pull_resumes_and_retries_through_faults() {
    if !ready("pull_resumes_and_retries_through_faults") {
        return;
    }
    let (reg, tmp, layers, config, manifest) = setup("faults-ok");
    let (big, flipped, third) = (layers[0].clone(), layers[1].clone(), layers[2].clone());
    let proxy = FaultProxy::start(reg.port, move |r| {
        let blob = |d: &str| r.method == "GET" && r.path.ends_with(&format!("/blobs/{d}"));
        if r.method == "GET" && r.path.contains("/manifests/") && r.seen == 0 {
            Fault::Status(500)
        } else if blob(&config) && r.seen == 0 {
            Fault::Status(429)
        } else if blob(&big) && r.seen < 2 {
            Fault::Cut(700_000)
        } else if blob(&flipped) && r.seen == 0 {
            Fault::Flip
        } else if blob(&third) && r.seen == 0 {
            Fault::Status(503)
        } else {
            Fault::Pass
        }
    });
    let b = tmp.join("store-b");
    let target = format!("{}/faults/app:v1", proxy.host());
    let out = distill(&b, &["pull", &target]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("retrying"), "{err}");
    let store = Store::open(&b).unwrap();
    assert_eq!(store.resolve(&target).unwrap().digest.to_string(), manifest);
    distill_ok(&b, &["fsck"]);
    // The cut downloads were resumed where they stopped, not restarted.
    let faults = proxy.faults();
    let ranges: Vec<String> = faults
        .iter()
        .filter(|(r, _)| r.path.ends_with(&format!("/blobs/{}", layers[0])))
        .filter_map(|(r, _)| r.range.clone())
        .collect();
    assert_eq!(ranges.first().map(String::as_str), Some("bytes=700000-"), "{faults:?}");
    assert!(ranges.len() >= 2, "{faults:?}");
    assert!(faults.iter().any(|(_, f)| *f == Fault::Flip));
}

#[test]
fn corrupt_blobs_are_rejected_and_the_store_stays_clean() {
    if !ready("corrupt_blobs_are_rejected_and_the_store_stays_clean") {
        return;
    }
    let (reg, tmp, layers, _config, _manifest) = setup("faults-bad");
    let bad = layers[1].clone();
    let proxy = FaultProxy::start(reg.port, move |r| {
        if r.method == "GET" && r.path.ends_with(&format!("/blobs/{bad}")) { Fault::Flip } else { Fault::Pass }
    });
    let b = tmp.join("store-b");
    let out = distill(&b, &["pull", &format!("{}/faults/app:v1", proxy.host())]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("does not match its digest") && err.contains(&layers[1]), "{err}");
    assert_eq!(distill_ok(&b, &["images", "-q"]).trim(), "");
    distill_ok(&b, &["fsck"]);
    let store = Store::open(&b).unwrap();
    for l in &layers {
        assert!(!store.has_blob(&l.parse().unwrap()), "{l} was stored");
    }
    let leftovers: Vec<_> = std::fs::read_dir(b.join("tmp")).unwrap().collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
}

#[test]
fn push_retries_through_faults() {
    use distill_image::reference::Reference;
    use distill_registry::{Client, ClientOptions, NoPushProgress};
    if !ready("push_retries_through_faults") {
        return;
    }
    let reg = Registry::start(Auth::None);
    let tmp = TempDir::new("faults-push");
    let a = tmp.join("store-a");
    let archive = multilayer_archive(tmp.path(), "app:v1", 2, 300_000, 9);
    distill_ok(&a, &["load", "-i", archive.to_str().unwrap()]);
    // Upload URLs are unique per session: count PATCHes and final PUTs over all of them.
    let patches = std::sync::atomic::AtomicUsize::new(0);
    let finals = std::sync::atomic::AtomicUsize::new(0);
    let proxy = FaultProxy::start(reg.port, move |r| {
        let first = |n: &std::sync::atomic::AtomicUsize| n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        match r.method.as_str() {
            "HEAD" if r.seen == 0 => Fault::Status(429),
            // The first chunk fails, so does the first final PUT: each time
            // the upload session starts over.
            "PATCH" if first(&patches) => Fault::Status(500),
            "PUT" if r.path.contains("digest=") && first(&finals) => Fault::Status(503),
            "PUT" if r.path.contains("/manifests/") && r.seen == 0 => Fault::Status(502),
            _ => Fault::Pass,
        }
    });
    let store = Store::open(&a).unwrap();
    let image = store.resolve("app:v1").unwrap();
    let client = Client::new(ClientOptions {
        monolithic_max: 100_000,
        chunk_size: 100_000,
        backoff: std::time::Duration::from_millis(20),
        ..ClientOptions::default()
    })
    .unwrap();
    let target = Reference::parse_normalized(&format!("{}/faults/pushed:v1", proxy.host())).unwrap();
    let pushed = client.push_image(&store, &image, &target, &NoPushProgress).unwrap();
    assert_eq!(pushed.digest, image.digest);
    let faults = proxy.faults();
    for kind in ["PATCH", "PUT", "HEAD"] {
        assert!(faults.iter().any(|(r, f)| r.method == kind && *f != Fault::Pass), "no {kind} fault: {faults:?}");
    }
    // What arrived is intact: pull it back directly from the registry.
    let b = tmp.join("store-b");
    distill_ok(&b, &["pull", &format!("{}/faults/pushed:v1", reg.host())]);
    assert_eq!(
        Store::open(&b).unwrap().resolve(&format!("{}/faults/pushed:v1", reg.host())).unwrap().digest,
        image.digest
    );
    distill_ok(&b, &["fsck"]);
}
