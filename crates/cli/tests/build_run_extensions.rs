//! BuildKit's RUN extensions end to end, as root with real runc and
//! overlayfs: cache mounts persist across builds, secrets reach the step
//! and nothing else, bind mounts read another stage without copying it,
//! tmpfs mounts leave nothing behind, heredocs run as BuildKit runs them,
//! and `--network=none` gets only a loopback interface.

mod build_support;

use std::fs;
use std::path::Path;

use build_support::{TempDir, TestStore};

fn store(test: &str) -> Option<TestStore> {
    if !build_support::require_build(test) {
        return None;
    }
    TestStore::with_base_images(test)
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
}

fn rootfs(store: &TestStore, image: &str) -> TempDir {
    let root = TempDir::new("rootfs");
    store.export_rootfs(image, root.path());
    root
}

#[test]
fn cache_mount_persists_across_builds_and_stays_out_of_the_image() {
    let Some(store) = store("cache_mount_persists_across_builds_and_stays_out_of_the_image") else { return };
    let ctx = TempDir::new("ctx");
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM debian:bookworm\nARG ROUND\nRUN echo $ROUND > /round\n\
             RUN --mount=type=cache,target=/var/cache/app,sharing=locked \
             sh -c 'ls /var/cache/app > /seen; touch /var/cache/app/from-$(cat /round)'\n",
        )],
    );
    store.build_ok(ctx.path(), &["-t", "c1", "--build-arg", "ROUND=1"]);
    assert_eq!(fs::read_to_string(rootfs(&store, "c1").join("seen")).unwrap(), "");
    // A changed earlier step: the RUN runs again and finds what round 1 left.
    store.build_ok(ctx.path(), &["-t", "c2", "--build-arg", "ROUND=2"]);
    let root = rootfs(&store, "c2");
    assert_eq!(fs::read_to_string(root.join("seen")).unwrap(), "from-1\n");
    let dir = root.join("var/cache/app");
    assert!(!dir.exists() || fs::read_dir(&dir).unwrap().next().is_none(), "the cache's content is not in the image");
    // `du` reports it, `prune --cache` empties it.
    let du = store.distill_ok(&["du"]);
    let line = du.lines().find(|l| l.starts_with("cache mounts")).unwrap_or_default().to_string();
    assert!(line.split_whitespace().nth(2) == Some("1"), "{du}");
    let pruned = store.distill_ok(&["prune", "--cache"]);
    assert!(pruned.contains("Removed 1 cache mounts"), "{pruned}");
    let du = store.distill_ok(&["du"]);
    assert!(du.lines().any(|l| l.starts_with("cache mounts") && l.split_whitespace().nth(2) == Some("0")), "{du}");
}

#[test]
fn secrets_reach_the_step_and_nothing_else() {
    let Some(store) = store("secrets_reach_the_step_and_nothing_else") else { return };
    let ctx = TempDir::new("ctx");
    let secret = "s3cret-value-9f1c";
    // The Dockerfile names the secret only by its SHA-256.
    let hash = distill_image::digest::Digest::of(secret.as_bytes()).hex();
    let dockerfile = format!(
        "FROM debian:bookworm\n\
         RUN --mount=type=secret,id=token test \"$(sha256sum < /run/secrets/token | cut -c1-64)\" = {hash} && echo file-ok > /ok\n\
         RUN --mount=type=secret,id=token,env=TOKEN sh -c 'test \"$(printf %s \"$TOKEN\" | sha256sum | cut -c1-64)\" = {hash} && echo env-ok >> /ok'\n\
         RUN --mount=type=secret,id=absent echo optional-secret-skipped >> /ok\n"
    );
    write(ctx.path(), &[("Dockerfile", &dockerfile)]);
    let secret_file = store.scratch("secret").join("token.txt");
    fs::write(&secret_file, secret).unwrap();
    let spec = format!("id=token,src={}", secret_file.display());
    store.build_ok(ctx.path(), &["-t", "sec", "--secret", &spec]);
    let root = rootfs(&store, "sec");
    assert_eq!(fs::read_to_string(root.join("ok")).unwrap(), "file-ok\nenv-ok\noptional-secret-skipped\n");
    assert!(!root.join("run/secrets/token").exists());
    // Not in any layer, the config or the history.
    let archive = store.scratch("save").join("sec.tar");
    store.distill_ok(&["save", "-o", archive.to_str().unwrap(), "sec"]);
    let bytes = fs::read(&archive).unwrap();
    assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "the secret leaked into the archive");
    let history = store.distill_ok(&["history", "--no-trunc", "sec"]);
    assert!(!history.contains(secret), "{history}");
    // A required secret that is not given fails the step, naming it.
    write(ctx.path(), &[("Dockerfile", "FROM debian:bookworm\nRUN --mount=type=secret,id=need,required true\n")]);
    let out = store.build(ctx.path(), &["-t", "sec2"]).assert_failure();
    assert!(out.stderr.contains("need"), "{out}");
}

#[test]
fn bind_mount_reads_another_stage_without_copying_it() {
    let Some(store) = store("bind_mount_reads_another_stage_without_copying_it") else { return };
    let ctx = TempDir::new("ctx");
    write(
        ctx.path(),
        &[
            (
                "Dockerfile",
                "FROM debian:bookworm AS data\nRUN mkdir /d && echo hello-from-data > /d/f\n\
                 FROM debian:bookworm\n\
                 RUN --mount=type=bind,from=data,source=/d,target=/mnt cat /mnt/f > /copied\n\
                 RUN --mount=type=bind,source=input.txt,target=/in.txt,rw sh -c 'cat /in.txt > /ctx && echo changed > /in.txt'\n\
                 RUN --mount=type=tmpfs,target=/scratch sh -c 'echo x > /scratch/y && grep -q \" /scratch tmpfs \" /proc/mounts'\n",
            ),
            ("input.txt", "from-context\n"),
        ],
    );
    store.build_ok(ctx.path(), &["-t", "bind"]);
    let root = rootfs(&store, "bind");
    assert_eq!(fs::read_to_string(root.join("copied")).unwrap(), "hello-from-data\n");
    assert_eq!(fs::read_to_string(root.join("ctx")).unwrap(), "from-context\n");
    assert!(!root.join("mnt/f").exists() && !root.join("d").exists(), "the stage's files were not copied");
    assert!(!root.join("scratch/y").exists());
    // rw writes go to a throwaway layer, never to the context.
    assert_eq!(fs::read_to_string(ctx.join("input.txt")).unwrap(), "from-context\n");
}

#[test]
fn heredocs_and_network_none_run_like_buildkit() {
    let Some(store) = store("heredocs_and_network_none_run_like_buildkit") else { return };
    let ctx = TempDir::new("ctx");
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM debian:bookworm\n\
             RUN <<EOF\necho one > /h1\necho two >> /h1\nEOF\n\
             RUN <<EOF\n#!/bin/sh\necho \"shebang $0\" > /h2\nEOF\n\
             RUN <<A cat > /h3 && <<B cat > /h4\nfirst\nA\nsecond\nB\n\
             RUN --network=none ls /sys/class/net > /nets\n",
        )],
    );
    store.build_ok(ctx.path(), &["-t", "here"]);
    let root = rootfs(&store, "here");
    assert_eq!(fs::read_to_string(root.join("h1")).unwrap(), "one\ntwo\n");
    assert_eq!(fs::read_to_string(root.join("h2")).unwrap(), "shebang /dev/pipes/EOF\n");
    assert_eq!(fs::read_to_string(root.join("h3")).unwrap(), "first\n");
    assert_eq!(fs::read_to_string(root.join("h4")).unwrap(), "second\n");
    assert_eq!(fs::read_to_string(root.join("nets")).unwrap(), "lo\n");
    assert!(!root.join("dev/pipes").exists());
}
