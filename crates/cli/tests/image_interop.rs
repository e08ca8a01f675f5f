//! What distill writes is read by independent tools, and what they write is
//! read by distill: skopeo, umoci + runc, podman. These run as root with the
//! tools installed; locally they skip loudly without them, in CI they fail.

mod image_support;

use std::fs;
use std::path::Path;
use std::process::Command;

use image_support::{
    TempDir, bookworm_python_rootfs, distill_ok, make_rootfs, require_root, require_tools, run, sha256_file,
};
use serde_json::Value;

/// A Debian root file system made by mmdebstrap, imported and saved as an
/// OCI archive, runs `python3 -c 'print(6*7)'` under runc after `umoci
/// unpack`; saved as a docker-archive it loads into podman.
#[test]
fn mmdebstrap_rootfs_runs_under_runc_and_loads_into_podman() {
    let test = "mmdebstrap_rootfs_runs_under_runc_and_loads_into_podman";
    if !require_tools(test, &["skopeo", "umoci", "runc", "podman"]) {
        return;
    }
    let Some(rootfs) = bookworm_python_rootfs(test) else { return };
    let t = TempDir::new("interop-runc");
    let root = t.join("store");
    distill_ok(
        &root,
        &[
            "import",
            rootfs.to_str().unwrap(),
            "bookworm-python:1",
            "-c",
            r#"CMD ["/usr/bin/python3", "-c", "print(6*7)"]"#,
        ],
    );

    // The store itself is an OCI layout skopeo reads.
    let inspect = run(Command::new("skopeo").arg("inspect").arg(format!("oci:{}:bookworm-python:1", root.display())));
    let v: Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Os"], "linux");

    let oci = t.join("image-oci.tar");
    distill_ok(&root, &["save", "--format", "oci", "-o", oci.to_str().unwrap(), "bookworm-python:1"]);
    let v: Value =
        serde_json::from_str(&run(Command::new("skopeo").arg("inspect").arg(format!("oci-archive:{}", oci.display()))))
            .unwrap();
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1);

    // umoci unpack + runc run.
    let layout = t.join("layout");
    fs::create_dir_all(&layout).unwrap();
    run(Command::new("tar").arg("-xf").arg(&oci).arg("-C").arg(&layout));
    let bundle = t.join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:bookworm-python:1", layout.display()))
        .arg(&bundle));
    let config_path = bundle.join("config.json");
    let mut config: Value = serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
    assert_eq!(config["process"]["args"], serde_json::json!(["/usr/bin/python3", "-c", "print(6*7)"]));
    // No terminal here; and no rlimits above what this host allows.
    config["process"]["terminal"] = Value::Bool(false);
    config["process"].as_object_mut().unwrap().remove("rlimits");
    fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let id = format!("distill-test-{}", std::process::id());
    let out = Command::new("runc").arg("run").arg("-b").arg(&bundle).arg(&id).output().unwrap();
    let _ = Command::new("runc").args(["delete", "-f", &id]).output();
    assert!(out.status.success(), "runc failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");

    // docker-archive: skopeo reads it and podman loads it (scratch storage).
    let docker = t.join("image-docker.tar");
    distill_ok(&root, &["save", "--format", "docker", "-o", docker.to_str().unwrap(), "bookworm-python:1"]);
    let v: Value = serde_json::from_str(&run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("docker-archive:{}", docker.display()))))
    .unwrap();
    assert_eq!(v["Os"], "linux");
    let p = TempDir::short("pm");
    let podman = |args: &[&str]| {
        let mut cmd = Command::new("podman");
        cmd.arg("--root").arg(p.join("root")).arg("--runroot").arg(p.join("run"));
        cmd.args(["--storage-driver", "vfs"]).args(args);
        cmd
    };
    let out = run(&mut podman(&["load", "-i", docker.to_str().unwrap()]));
    assert!(out.contains("bookworm-python:1"), "{out}");
    let images = run(&mut podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert!(images.contains("bookworm-python:1"), "{images}");
    let _ = podman(&["rmi", "-a", "-f"]).output();
}

/// sha256 of every layer file a docker-archive's manifest.json lists.
fn docker_archive_layers(archive: &Path, scratch: &Path) -> Vec<String> {
    fs::create_dir_all(scratch).unwrap();
    run(Command::new("tar").arg("-xf").arg(archive).arg("-C").arg(scratch));
    let manifest: Value = serde_json::from_slice(&fs::read(scratch.join("manifest.json")).unwrap()).unwrap();
    manifest[0]["Layers"].as_array().unwrap().iter().map(|l| sha256_file(&scratch.join(l.as_str().unwrap()))).collect()
}

/// Layer digests of the single image of an OCI archive, each checked
/// against the blob's content.
fn oci_archive_layers(archive: &Path, scratch: &Path) -> Vec<String> {
    fs::create_dir_all(scratch).unwrap();
    run(Command::new("tar").arg("-xf").arg(archive).arg("-C").arg(scratch));
    let index: Value = serde_json::from_slice(&fs::read(scratch.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let manifest: Value =
        serde_json::from_slice(&fs::read(scratch.join("blobs/sha256").join(&digest)).unwrap()).unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let hex = l["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
            assert_eq!(sha256_file(&scratch.join("blobs/sha256").join(&hex)), hex);
            hex
        })
        .collect()
}

/// Archives written by `skopeo copy` load into distill and save back with
/// byte-identical layer blobs.
#[test]
fn skopeo_archives_load_and_save_back_with_the_same_layers() {
    let test = "skopeo_archives_load_and_save_back_with_the_same_layers";
    if !require_tools(test, &["skopeo"]) {
        return;
    }
    let t = TempDir::new("interop-skopeo");
    let src = t.join("src-store");
    // Two layers' worth of content in two images, one gzip and one zstd layer.
    let rootfs = make_rootfs(t.path(), "rootfs", 11, 3 << 20);
    distill_ok(&src, &["import", rootfs.to_str().unwrap(), "src:gz"]);
    distill_ok(&src, &["import", "--compression", "zstd", rootfs.to_str().unwrap(), "src:zst"]);

    // skopeo cannot write zstd layers to a docker-archive: OCI only for those.
    for (tag, sk_tag, docker_too) in [("src:gz", "copied/app:gz", true), ("src:zst", "copied/app:zst", false)] {
        let from = format!("oci:{}:{tag}", src.display());
        let sk_docker = t.join(&format!("skopeo-docker-{}.tar", &tag[4..]));
        let sk_oci = t.join(&format!("skopeo-oci-{}.tar", &tag[4..]));
        run(Command::new("skopeo")
            .args(["copy", "-q", &from])
            .arg(format!("oci-archive:{}:{sk_tag}", sk_oci.display())));

        // docker-archive in, docker-archive out.
        if docker_too {
            run(Command::new("skopeo")
                .args(["copy", "-q", &from])
                .arg(format!("docker-archive:{}:{sk_tag}", sk_docker.display())));
            let store = t.join(&format!("docker-store-{}", &tag[4..]));
            let out = distill_ok(&store, &["load", "-i", sk_docker.to_str().unwrap()]);
            assert!(out.contains(&format!("Loaded image: {sk_tag}")), "{out}");
            let back = t.join(&format!("back-docker-{}.tar", &tag[4..]));
            distill_ok(&store, &["save", "--format", "docker", "-o", back.to_str().unwrap(), sk_tag]);
            let theirs = docker_archive_layers(&sk_docker, &t.join(&format!("x-sk-docker-{}", &tag[4..])));
            let ours = docker_archive_layers(&back, &t.join(&format!("x-back-docker-{}", &tag[4..])));
            assert_eq!(theirs, ours, "docker-archive layers changed on the way through distill");
            run(Command::new("skopeo").arg("inspect").arg(format!("docker-archive:{}", back.display())));
        }

        // OCI archive in, OCI archive out.
        let store = t.join(&format!("oci-store-{}", &tag[4..]));
        let out = distill_ok(&store, &["load", "-i", sk_oci.to_str().unwrap()]);
        assert!(out.contains(&format!("Loaded image: {sk_tag}")), "{out}");
        let back = t.join(&format!("back-oci-{}.tar", &tag[4..]));
        distill_ok(&store, &["save", "--format", "oci", "-o", back.to_str().unwrap(), sk_tag]);
        let theirs = oci_archive_layers(&sk_oci, &t.join(&format!("x-sk-oci-{}", &tag[4..])));
        let ours = oci_archive_layers(&back, &t.join(&format!("x-back-oci-{}", &tag[4..])));
        assert_eq!(theirs, ours, "OCI layers changed on the way through distill");
        let v: Value = serde_json::from_str(&run(Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci-archive:{}:{sk_tag}", back.display()))))
        .unwrap();
        assert_eq!(v["Layers"].as_array().unwrap().len(), 1);
        // And the store holding it is itself readable by skopeo.
        run(Command::new("skopeo").arg("inspect").arg(format!("oci:{}:{sk_tag}", store.display())));
        let fsck = distill_ok(&store, &["fsck", "--verify-layers"]);
        assert!(fsck.contains("0 corrupt, 0 dangling"), "{fsck}");

        // skopeo can also write into the store; distill adopts the image.
        let into = format!("oci:{}:written/by-skopeo:{}", store.display(), &tag[4..]);
        run(Command::new("skopeo").args(["copy", "-q"]).arg(format!("oci-archive:{}", sk_oci.display())).arg(&into));
        let listed = distill_ok(&store, &["images"]);
        assert!(listed.contains("written/by-skopeo"), "{listed}");
        let fsck = distill_ok(&store, &["fsck"]);
        assert!(fsck.contains("0 corrupt, 0 dangling, 0 stale, 0 reclaimable"), "{fsck}");
    }
}

/// Nothing here needs root, but the runc test does: make its absence loud.
#[test]
fn interop_runs_as_root() {
    require_root("interop_runs_as_root");
}
