//! Cross- and multi-platform builds: `--platform linux/amd64,linux/arm64`
//! builds the target once per platform, the arm64 RUN steps under
//! qemu-user (binfmt_misc), and tags an OCI index of both; a
//! `FROM --platform=$BUILDPLATFORM` stage runs natively for both; the index
//! goes to `--output type=oci` and `distill save`, and the store's OCI
//! layout serves it to skopeo. Runs on an amd64 host (arm64 is emulated).
//! The error without emulation is unit-tested in the build crate
//! (`executor::emulation`).

mod build_support;
mod image_support;
mod registry_support;

use std::fs;
use std::path::Path;
use std::process::Command;

use build_support::{TempDir, TestStore, run_ok};
use registry_support::{Auth, Registry};
use serde_json::Value;

const TEST: &str = "multi_platform_build_makes_an_index_with_an_emulated_arm64_image";

fn read(root: &Path, file: &str) -> String {
    fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}")).trim().to_string()
}

/// `skopeo inspect --raw` of a transport reference, parsed.
fn skopeo_raw(reference: &str) -> Value {
    serde_json::from_str(&run_ok(Command::new("skopeo").args(["inspect", "--raw", reference]))).unwrap()
}

/// `(architecture, manifest digest)` of each index entry.
fn entries(index: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = index["manifests"]
        .as_array()
        .expect("an index")
        .iter()
        .map(|d| {
            assert_eq!(d["platform"]["os"], "linux", "{d}");
            (d["platform"]["architecture"].as_str().unwrap().to_string(), d["digest"].as_str().unwrap().to_string())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn multi_platform_build_makes_an_index_with_an_emulated_arm64_image() {
    if std::env::consts::ARCH != "x86_64" {
        eprintln!("*** SKIPPED {TEST}: written for an amd64 host ***");
        return;
    }
    if !build_support::require_build(TEST)
        || !build_support::require_tools(TEST, &["skopeo"])
        || !build_support::gate(build_support::have_emulation("aarch64"), TEST, "qemu-aarch64 in binfmt_misc")
    {
        return;
    }
    let (Some(amd64), Some(arm64)) =
        (build_support::busybox_rootfs(TEST, "amd64"), build_support::busybox_rootfs(TEST, "arm64"))
    else {
        return;
    };
    // No Debian base: the busybox images serve both stages, and a store
    // without the seed's snapshots is quick to make and to remove.
    let store = TestStore::empty();

    // A multi-platform base made of nothing but the two root file systems.
    let base = TempDir::new("base");
    fs::copy(&amd64, base.join("busybox-amd64.tar")).unwrap();
    fs::copy(&arm64, base.join("busybox-arm64.tar")).unwrap();
    fs::write(base.join("Dockerfile"), "FROM scratch\nARG TARGETARCH\nADD busybox-${TARGETARCH}.tar /\n").unwrap();
    store.build_ok(base.path(), &["-t", "busybox:multi", "--platform", "linux/amd64,linux/arm64"]);

    // The cross-compile pattern: a native tools stage, a per-platform target.
    let ctx = TempDir::new("ctx");
    fs::write(
        ctx.join("Dockerfile"),
        "FROM --platform=$BUILDPLATFORM busybox:multi AS tools\n\
         ARG TARGETARCH\n\
         RUN echo \"$TARGETARCH\" > /target && uname -m > /tools-machine\n\
         FROM busybox:multi\n\
         ARG TARGETARCH\n\
         COPY --from=tools /target /tools-machine /\n\
         RUN uname -m > /machine && echo \"$TARGETARCH\" > /targetarch\n",
    )
    .unwrap();
    let archive = ctx.join("app.oci.tar");
    let output = format!("type=oci,dest={}", archive.display());
    store.build_ok(ctx.path(), &["-t", "app:multi", "--platform", "linux/amd64,linux/arm64", "--output", &output]);

    // The store's layout, the archive and `distill save` hold the same index.
    let root = store.root();
    let index = skopeo_raw(&format!("oci:{}:app:multi", root.display()));
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json", "{index}");
    let platforms = entries(&index);
    assert_eq!(platforms.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(), ["amd64", "arm64"], "{index}");
    assert_eq!(entries(&skopeo_raw(&format!("oci-archive:{}:app:multi", archive.display()))), platforms);
    let saved = ctx.join("saved.oci.tar");
    store.distill_ok(&["save", "--format", "oci", "-o", saved.to_str().unwrap(), "app:multi"]);
    assert_eq!(entries(&skopeo_raw(&format!("oci-archive:{}:app:multi", saved.display()))), platforms);

    for (arch, digest) in &platforms {
        let fs_root = TempDir::new("rootfs");
        store.export_rootfs(digest, fs_root.path());
        let machine = if arch == "arm64" { "aarch64" } else { "x86_64" };
        assert_eq!(read(fs_root.path(), "machine"), machine, "{arch}: the RUN ran as {arch}");
        assert_eq!(read(fs_root.path(), "targetarch"), *arch);
        // The tools stage saw the target's TARGETARCH but ran natively.
        assert_eq!(read(fs_root.path(), "target"), *arch);
        assert_eq!(read(fs_root.path(), "tools-machine"), "x86_64", "{arch}: $BUILDPLATFORM runs natively");
        let config = store.image_config(digest);
        assert_eq!(config["architecture"], arch.as_str(), "{config}");
    }

    // The name means the host's image to run and inspect; a new name is for the whole index.
    assert_eq!(store.inspect("app:multi")["Architecture"], "amd64");
    // `images` lists the name once, on the host's image, and no platform's image as dangling.
    let images = store.distill_ok(&["images"]);
    assert_eq!(images.lines().filter(|l| l.starts_with("app ") && l.contains(" multi ")).count(), 1, "{images}");
    assert!(!images.contains("<none>"), "{images}");
    store.distill_ok(&["tag", "app:multi", "app:copy"]);
    assert_eq!(entries(&skopeo_raw(&format!("oci:{}:app:copy", root.display()))), platforms);
    store.distill_ok(&["rmi", "app:copy"]);
    store.distill_ok(&["fsck"]);
    // One platform alone: a plain arm64 image, every step from the cache.
    let single = store.build_ok(ctx.path(), &["-t", "app:arm64", "--platform", "linux/arm64", "--progress", "plain"]);
    assert!(single.stderr.contains("CACHED") && !single.stderr.contains("writing layer"), "{single}");
    assert_eq!(store.image_config("app:arm64")["architecture"], "arm64");
    let (amd, arm) = (&platforms[0].1, &platforms[1].1);
    assert_eq!(store.image_config("app:arm64"), store.image_config(arm));
    // The index keeps its untagged platforms' images through a prune; once
    // its name is gone, only what is still named stays.
    store.distill_ok(&["prune"]);
    store.distill_ok(&["inspect", amd]);
    store.distill_ok(&["rmi", "app:multi"]);
    assert!(!store.distill(&["inspect", "app:multi"]).success());
    store.distill_ok(&["prune"]);
    assert!(!store.distill(&["inspect", amd]).success(), "the amd64 image went with its index");
    store.distill_ok(&["inspect", "app:arm64"]);
}

/// No RUN, so no emulation: a multi-platform image of files alone, pushed
/// by `build --push` and by `distill push`; skopeo sees the index, and a
/// pull of one platform gets that platform's files.
#[test]
fn a_multi_platform_image_pushes_as_an_index() {
    const TEST: &str = "a_multi_platform_image_pushes_as_an_index";
    if !build_support::require_build(TEST) || !build_support::require_tools(TEST, &["docker-registry", "skopeo"]) {
        return;
    }
    let reg = Registry::start(Auth::None);
    let store = TestStore::empty();
    let ctx = TempDir::new("ctx");
    fs::write(ctx.join("Dockerfile"), "FROM scratch\nARG TARGETARCH\nCOPY $TARGETARCH.txt /platform\n").unwrap();
    fs::write(ctx.join("amd64.txt"), "amd64\n").unwrap();
    fs::write(ctx.join("arm64.txt"), "arm64\n").unwrap();
    let built = format!("{}/multi/built:1", reg.host());
    let local = ctx.join("out");
    let output = format!("type=local,dest={}", local.display());
    store.build_ok(ctx.path(), &["-t", &built, "--platform", "linux/amd64,linux/arm64", "--push", "-o", &output]);
    // type=local: one directory per platform, as BuildKit writes it.
    assert_eq!(read(&local.join("linux_amd64"), "platform"), "amd64");
    assert_eq!(read(&local.join("linux_arm64"), "platform"), "arm64");
    // A docker archive holds one platform: refused before building.
    let docker = format!("type=docker,dest={}", ctx.join("x.tar").display());
    let refused = store.build(ctx.path(), &["--platform", "linux/amd64,linux/arm64", "-o", &docker]).assert_failure();
    assert!(refused.stderr.contains("type=oci"), "{refused}");
    let copied = format!("{}/multi/copied:1", reg.host());
    store.distill_ok(&["push", &built, &copied]);
    for name in [&built, &copied] {
        let raw = run_ok(Command::new("skopeo").args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{name}"),
        ]));
        let index: Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json", "{raw}");
        let archs: Vec<String> = entries(&index).into_iter().map(|(a, _)| a).collect();
        assert_eq!(archs, ["amd64", "arm64"], "{raw}");
    }
    let puller = TestStore::empty();
    puller.distill_ok(&["pull", "--platform", "linux/arm64", &copied]);
    assert_eq!(puller.image_config(&copied)["architecture"], "arm64");
    let root = TempDir::new("rootfs");
    puller.export_rootfs(&copied, root.path());
    assert_eq!(read(root.path(), "platform"), "arm64");
    // A build for both platforms pulls the one missing and keeps both under the name.
    let from = TempDir::new("from");
    fs::write(from.join("Dockerfile"), format!("FROM {copied}\nLABEL rebuilt=1\n")).unwrap();
    puller.build_ok(from.path(), &["-t", "rebuilt", "--platform", "linux/amd64,linux/arm64"]);
    let base = skopeo_raw(&format!("oci:{}:{}", puller.root().display(), copied));
    assert_eq!(entries(&base).into_iter().map(|(a, _)| a).collect::<Vec<_>>(), ["amd64", "arm64"], "{base}");
    let rebuilt = entries(&skopeo_raw(&format!("oci:{}:rebuilt:latest", puller.root().display())));
    for (arch, digest) in rebuilt {
        let root = TempDir::new("rootfs");
        puller.export_rootfs(&digest, root.path());
        assert_eq!(read(root.path(), "platform"), arch);
    }
    puller.distill_ok(&["fsck"]);
}
