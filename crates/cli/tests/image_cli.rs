//! The image commands end to end through the real binary, on small root
//! file systems (no external tools besides GNU tar).

mod image_support;

use std::fs;

use image_support::{TempDir, distill, distill_cmd, distill_ok, make_rootfs, run, stderr, stdout};
use serde_json::Value;

fn inspect(root: &std::path::Path, image: &str) -> Value {
    let out = distill_ok(root, &["inspect", image]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

#[test]
fn import_inspect_history_tag_rmi_prune() {
    let t = TempDir::new("cli-flow");
    let root = t.join("store");
    let tar = make_rootfs(t.path(), "rootfs", 1, 10_000);
    let id = distill_ok(
        &root,
        &[
            "import",
            tar.to_str().unwrap(),
            "app:1.0",
            "--change",
            r#"CMD ["/bin/hello"]"#,
            "-c",
            "ENV PATH=/bin LANG=C.UTF-8",
            "-c",
            "LABEL org.example=yes",
            "-c",
            "EXPOSE 8080",
            "-c",
            "WORKDIR /srv",
            "-c",
            "USER 65532",
        ],
    );
    let id = id.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

    let v = inspect(&root, "app:1.0");
    assert_eq!(v["Id"], id);
    assert_eq!(v["RepoTags"], serde_json::json!(["app:1.0"]));
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["/bin/hello"]));
    assert_eq!(v["Config"]["Env"], serde_json::json!(["PATH=/bin", "LANG=C.UTF-8"]));
    assert_eq!(v["Config"]["Labels"]["org.example"], "yes");
    assert!(v["Config"]["ExposedPorts"]["8080/tcp"].is_object());
    assert_eq!(v["Config"]["WorkingDir"], "/srv");
    assert_eq!(v["Config"]["User"], "65532");
    assert_eq!(v["RootFS"]["Type"], "layers");
    assert_eq!(v["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert!(v["Created"].as_str().unwrap().ends_with('Z'));
    assert!(v["Size"].as_u64().unwrap() > 10_000);
    assert!(v["RepoDigests"][0].as_str().unwrap().starts_with("app@sha256:"));
    let fmt = distill_ok(&root, &["inspect", "--format", "{{.Id}} {{json .Config.Cmd}}", "app:1.0"]);
    assert_eq!(fmt.trim(), format!(r#"{id} ["/bin/hello"]"#));

    let images = distill_ok(&root, &["images"]);
    let lines: Vec<&str> = images.lines().collect();
    assert!(lines[0].starts_with("REPOSITORY") && lines[0].contains("IMAGE ID"), "{images}");
    assert!(lines[1].starts_with("app ") && lines[1].contains(&id[7..19]), "{images}");
    let history = distill_ok(&root, &["history", "app:1.0"]);
    assert!(history.contains(&format!("Imported from {}", tar.display())), "{history}");

    distill_ok(&root, &["tag", "app:1.0", "localhost:5000/team/app:v2"]);
    let quiet = distill_ok(&root, &["images", "-q"]);
    assert_eq!(quiet.trim(), &id[7..19]);
    let v = inspect(&root, &id[7..15]);
    assert_eq!(v["RepoTags"], serde_json::json!(["app:1.0", "localhost:5000/team/app:v2"]));
    let index = fs::read_to_string(root.join("index.json")).unwrap();
    assert!(index.contains(r#""org.opencontainers.image.ref.name":"localhost:5000/team/app:v2""#), "{index}");

    // rmi by ID with two names is refused; by name it untags.
    let out = distill(&root, &["rmi", &id[7..19]]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("must be forced"), "{}", stderr(&out));
    let out = distill_ok(&root, &["rmi", "app:1.0"]);
    assert_eq!(out.trim(), "Untagged: app:1.0");
    let out = distill_ok(&root, &["rmi", "localhost:5000/team/app:v2"]);
    assert!(out.contains("Untagged: localhost:5000/team/app:v2") && out.contains(&format!("Deleted: {id}")), "{out}");
    assert_eq!(distill_ok(&root, &["images", "-q"]).trim(), "");
    // rmi pruned the blobs.
    assert_eq!(fs::read_dir(root.join("blobs/sha256")).unwrap().count(), 0);
    let out = distill(&root, &["inspect", "app:1.0"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no such image"), "{}", stderr(&out));

    // prune drops dangling images.
    distill_ok(&root, &["import", tar.to_str().unwrap()]);
    assert!(distill_ok(&root, &["images"]).contains("<none>"));
    let out = distill_ok(&root, &["prune"]);
    assert!(out.contains("Deleted Images:") && out.contains("Removed 3 blobs"), "{out}");
    let out = distill_ok(&root, &["fsck"]);
    assert!(out.contains("0 corrupt, 0 dangling, 0 stale, 0 reclaimable"), "{out}");
}

#[test]
fn import_is_reproducible_with_source_date_epoch() {
    let t = TempDir::new("cli-repro");
    let tar = make_rootfs(t.path(), "rootfs", 2, 300_000);
    let mut ids = Vec::new();
    for store in ["a", "b"] {
        let root = t.join(store);
        let out = distill_cmd(&root)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["import", tar.to_str().unwrap(), "repro:1"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let v = inspect(&root, "repro:1");
        assert_eq!(v["Created"], "2023-11-14T22:13:20Z");
        ids.push((v["Id"].clone(), v["Descriptor"]["digest"].clone()));
    }
    assert_eq!(ids[0], ids[1]);
    // Same store, again: the same image.
    let root = t.join("a");
    let out = distill_cmd(&root)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["import", tar.to_str().unwrap(), "repro:2"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), ids[0].0.as_str().unwrap());
    assert_eq!(distill_ok(&root, &["images", "-q"]).lines().count(), 1);
}

#[test]
fn save_twice_is_identical_and_load_round_trips() {
    let t = TempDir::new("cli-save");
    let root = t.join("store");
    let tar = make_rootfs(t.path(), "rootfs", 3, 200_000);
    distill_ok(&root, &["import", tar.to_str().unwrap(), "one:1"]);
    distill_ok(&root, &["import", tar.to_str().unwrap(), "two:2", "-c", "CMD [\"/bin/hello\"]"]);
    for format in ["oci", "docker"] {
        let a = t.join(&format!("a-{format}.tar"));
        let b = t.join(&format!("b-{format}.tar"));
        distill_ok(&root, &["save", "--format", format, "-o", a.to_str().unwrap(), "one:1", "two:2"]);
        distill_ok(&root, &["save", "--format", format, "-o", b.to_str().unwrap(), "one:1", "two:2"]);
        assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap(), "{format}: two saves differ");

        let other = t.join(&format!("other-{format}"));
        let out = distill_ok(&other, &["load", "-i", a.to_str().unwrap()]);
        assert!(out.contains("Loaded image: one:1") && out.contains("Loaded image: two:2"), "{out}");
        assert_eq!(inspect(&other, "two:2")["Id"], inspect(&root, "two:2")["Id"]);
        // Through stdin too, compressed.
        let gz = t.join(&format!("a-{format}.tar.gz"));
        run(std::process::Command::new("sh").arg("-c").arg(format!("gzip -c {} > {}", a.display(), gz.display())));
        let third = t.join(&format!("third-{format}"));
        let out = distill_cmd(&third).arg("load").stdin(fs::File::open(&gz).unwrap()).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("Loaded image: one:1"));
        let c = t.join(&format!("c-{format}.tar"));
        distill_ok(&third, &["save", "--format", format, "-o", c.to_str().unwrap(), "one:1", "two:2"]);
        assert_eq!(fs::read(&a).unwrap(), fs::read(&c).unwrap(), "{format}: save after load differs");
    }
}

#[test]
fn export_writes_the_root_file_system() {
    let t = TempDir::new("cli-export");
    let root = t.join("store");
    let tar = make_rootfs(t.path(), "rootfs", 4, 1000);
    distill_ok(&root, &["import", tar.to_str().unwrap(), "ex"]);
    let out = t.join("rootfs-out.tar");
    distill_ok(&root, &["export", "ex", "-o", out.to_str().unwrap()]);
    let listing = run(std::process::Command::new("tar").arg("-tf").arg(&out));
    assert!(listing.lines().any(|l| l.trim_start_matches("./") == "bin/hello"), "{listing}");
    let hello = run(std::process::Command::new("tar").arg("-xOf").arg(&out).arg("bin/hello"));
    assert_eq!(hello, "#!/bin/sh\necho hello 4\n");
    assert_eq!(fs::read_dir(root.join("tmp")).unwrap().count(), 0);
}

#[test]
fn hostile_input_is_rejected_with_a_clear_error() {
    let t = TempDir::new("cli-hostile");
    let root = t.join("store");
    let good = make_rootfs(t.path(), "rootfs", 5, 1000);
    distill_ok(&root, &["import", good.to_str().unwrap(), "good"]);
    // A tar whose member climbs out of the root (GNU tar keeps ../ with -P).
    let tree = t.join("evil-tree");
    fs::create_dir_all(tree.join("a")).unwrap();
    fs::write(t.join("escape"), "x").unwrap();
    let evil = t.join("evil.tar");
    run(std::process::Command::new("tar")
        .arg("-C")
        .arg(tree.join("a"))
        .arg("-P")
        .arg("-cf")
        .arg(&evil)
        .arg("../../escape"));
    let truncated = t.join("truncated.tar");
    let data = fs::read(&good).unwrap();
    fs::write(&truncated, &data[..data.len() / 3]).unwrap();
    let blobs_before = fs::read_dir(root.join("blobs/sha256")).unwrap().count();
    for (file, needle) in [(&evil, "unsafe"), (&truncated, "truncated")] {
        let out = distill(&root, &["import", file.to_str().unwrap(), "evil"]);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(err.contains(needle), "{err}");
        assert!(err.starts_with("error: importing"), "{err}");
        let out = distill(&root, &["load", "-i", file.to_str().unwrap()]);
        assert!(!out.status.success(), "load of {} succeeded", file.display());
    }
    assert_eq!(fs::read_dir(root.join("blobs/sha256")).unwrap().count(), blobs_before);
    assert_eq!(fs::read_dir(root.join("tmp")).unwrap().count(), 0);
    let out = distill_ok(&root, &["fsck"]);
    assert!(out.contains("0 corrupt, 0 dangling, 0 stale, 0 reclaimable"), "{out}");
    assert!(distill(&root, &["images"]).status.success());
    assert!(!distill_ok(&root, &["images"]).contains("evil"));
}
