//! Where stages come from, end to end: ONBUILD triggers of a base image
//! (built by distill in an earlier build) run as the child's first
//! instructions, with their `COPY --from` resolved against the child's
//! stages; named contexts (`--build-context`: a directory, `docker-image://`,
//! `oci-layout://`) replace `FROM NAME`, `COPY --from=NAME` and a stage of
//! that name.

mod build_support;

use std::fs;
use std::path::Path;
use std::process::Command;

use build_support::{TempDir, TestStore, run_ok};

fn write(dir: &Path, files: &[(&str, &str)]) {
    build_support::write_files(dir, files)
}

fn rootfs(store: &TestStore, image: &str) -> TempDir {
    store.rootfs(image)
}

fn read(root: &TempDir, path: &str) -> String {
    fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("reading {path} in the exported rootfs: {e}"))
}

/// Whether the step whose plain-progress title contains `title` was answered from the cache.
fn cached(stderr: &str, title: &str) -> bool {
    let vertex = stderr
        .lines()
        .find(|l| l.contains(title))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no step {title:?} in:\n{stderr}"));
    stderr.lines().any(|l| l == format!("{vertex} CACHED"))
}

#[test]
fn onbuild_triggers_run_in_the_child_build() {
    let test = "onbuild_triggers_run_in_the_child_build";
    if !build_support::require_build(test) {
        return;
    }
    let Some(store) = TestStore::with_base_images(test) else { return };

    let parent = TempDir::new("ctx-parent");
    write(
        parent.path(),
        &[(
            "Dockerfile",
            &format!(
                // The first trigger does not read the context: it stays
                // cached when app.txt changes below.
                "FROM {}\n\
                 ONBUILD RUN --mount=from=helper,target=/h mkdir /app && cat /h/x > /app/mounted\n\
                 ONBUILD COPY app.txt /app/\n\
                 ONBUILD RUN cat /app/app.txt > /app/seen\n\
                 ONBUILD COPY --from=helper /x /x\n",
                build_support::DEBIAN
            ),
        )],
    );
    store.build_ok(parent.path(), &["-t", "base-ob"]);
    let triggers = store.image_config("base-ob")["config"]["OnBuild"].clone();
    assert_eq!(triggers.as_array().map(Vec::len), Some(4), "triggers stored: {triggers}");

    // `helper` is read by a trigger only: without the trigger's dependency
    // edge it would be pruned and the COPY --from would fail. The last stage
    // keeps what the triggers wrote (exporting a Debian rootfs is slow).
    let child = TempDir::new("ctx-child");
    write(
        child.path(),
        &[
            (
                "Dockerfile",
                "FROM scratch AS helper\nCOPY x.txt /x\n\nFROM base-ob AS child\nLABEL child=yes\n\n\
                 FROM scratch\nCOPY --from=child /app /app\nCOPY --from=child /x /x\n",
            ),
            ("app.txt", "hello from the context\n"),
            ("x.txt", "helped\n"),
        ],
    );
    let out = store.build_ok(child.path(), &["-t", "child", "--target", "child", "--progress", "plain"]);
    for step in
        ["ONBUILD COPY app.txt /app/", "ONBUILD RUN cat /app/app.txt > /app/seen", "ONBUILD COPY --from=helper /x /x"]
    {
        assert!(out.stderr.contains(step), "progress shows {step:?}:\n{}", out.stderr);
    }
    let config = store.image_config("child");
    assert!(config["config"]["OnBuild"].is_null(), "triggers are not inherited: {}", config["config"]);
    assert_eq!(config["config"]["Labels"]["child"], "yes");
    store.build_ok(child.path(), &["-t", "files"]);
    let root = rootfs(&store, "files");
    assert_eq!(read(&root, "app/app.txt"), "hello from the context\n");
    assert_eq!(read(&root, "app/seen"), "hello from the context\n");
    assert_eq!(read(&root, "x"), "helped\n");
    assert_eq!(read(&root, "app/mounted"), "helped\n");

    // The trigger's COPY is keyed on the context content: a change reruns
    // it, and only what follows it.
    fs::write(child.join("app.txt"), "changed\n").unwrap();
    let out = store.build_ok(child.path(), &["-t", "files", "--progress", "plain"]);
    assert_eq!(read(&rootfs(&store, "files"), "app/seen"), "changed\n");
    assert!(cached(&out.stderr, "ONBUILD RUN --mount=from=helper"), "the mount trigger is cached:\n{}", out.stderr);
    assert!(!cached(&out.stderr, "ONBUILD RUN cat /app/app.txt"), "the cat trigger reruns:\n{}", out.stderr);

    // A failing trigger names where it comes from.
    fs::remove_file(child.join("app.txt")).unwrap();
    let failed = store.build(child.path(), &["-t", "files"]).assert_failure();
    assert!(
        failed.stderr.contains("ONBUILD trigger from base image base-ob:"),
        "the error names the trigger's image:\n{}",
        failed.stderr
    );
}

#[test]
fn named_contexts_replace_images_stages_and_copy_sources() {
    let test = "named_contexts_replace_images_stages_and_copy_sources";
    if !build_support::require_build(test) {
        return;
    }
    let store = TestStore::empty();

    // Two small images in the store: one stays (docker-image://), one is
    // saved as an OCI layout and removed (oci-layout:// loads it back).
    let images = TempDir::new("ctx-images");
    write(
        images.path(),
        &[
            ("Dockerfile", "FROM scratch\nARG M\nCOPY $M /marker\n"),
            ("image.txt", "from the store\n"),
            ("oci.txt", "from the layout\n"),
        ],
    );
    store.build_ok(images.path(), &["-t", "marker-img", "--build-arg", "M=image.txt"]);
    store.build_ok(images.path(), &["-t", "marker-oci:v1", "--build-arg", "M=oci.txt"]);
    let archive = images.join("oci.tar");
    store.distill_ok(&["save", "--format", "oci", "-o", archive.to_str().unwrap(), "marker-oci:v1"]);
    let layout = images.join("layout");
    fs::create_dir_all(&layout).unwrap();
    run_ok(Command::new("tar").arg("-xf").arg(&archive).arg("-C").arg(&layout));
    store.distill_ok(&["rmi", "marker-oci:v1"]);

    let dir = TempDir::new("ctx-dir");
    write(dir.path(), &[("a.txt", "one\n"), ("ignored.txt", "no\n"), (".dockerignore", "ignored.txt\n")]);

    let main = TempDir::new("ctx-main");
    write(
        main.path(),
        &[(
            "Dockerfile",
            // `helper` would fail if it were built: the context replaces it.
            "FROM scratch AS helper\nCOPY does-not-exist /\n\n\
             FROM dirctx AS fromdir\n\n\
             FROM alias AS viaimage\n\n\
             FROM ocictx\n\
             COPY --from=dirctx / /from-dir/\n\
             COPY --from=helper /marker /from-helper\n\
             COPY --from=fromdir /a.txt /fromdir-a.txt\n\
             COPY --from=viaimage /marker /via-image\n",
        )],
    );
    let layout_arg = format!("ocictx=oci-layout://{}:v1", layout.display());
    let dir_arg = format!("dirctx={}", dir.path().display());
    let args = [
        "-t",
        "named",
        "--build-context",
        "helper=docker-image://marker-img",
        "--build-context",
        "alias=docker-image://marker-img:latest",
        "--build-context",
        &layout_arg,
        "--build-context",
        &dir_arg,
        "--build-context",
        "unused=docker-image://not-there-at-all",
    ];
    store.build_ok(main.path(), &args);
    let root = rootfs(&store, "named");
    assert_eq!(read(&root, "marker"), "from the layout\n", "FROM an oci-layout context");
    assert_eq!(read(&root, "from-dir/a.txt"), "one\n", "COPY --from a directory context");
    assert!(!root.join("from-dir/ignored.txt").exists(), "the directory's .dockerignore applies");
    assert_eq!(read(&root, "from-helper"), "from the store\n", "a stage replaced by a docker-image context");
    assert_eq!(read(&root, "fromdir-a.txt"), "one\n", "FROM a directory context");
    assert_eq!(read(&root, "via-image"), "from the store\n", "FROM NAME replaced by a docker-image context");

    // Keys follow the directory's content.
    fs::write(dir.join("a.txt"), "two\n").unwrap();
    store.build_ok(main.path(), &args);
    let root = rootfs(&store, "named");
    assert_eq!(read(&root, "from-dir/a.txt"), "two\n");
    assert_eq!(read(&root, "fromdir-a.txt"), "two\n");
}
