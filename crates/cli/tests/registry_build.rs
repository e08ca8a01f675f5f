//! Builds and registries: `FROM` an image missing from the store pulls it,
//! `--pull` refreshes it even when present, `--push` and
//! `--output type=registry` send the result; skopeo reads what was pushed.

mod image_support;
mod registry_support;

use std::process::Command;

use distill_image::store::Store;
use image_support::*;
use registry_support::*;

#[test]
fn build_pulls_missing_bases_and_pushes_results() {
    let test = "build_pulls_missing_bases_and_pushes_results";
    if !require_root(test) || !require_tools(test, &["docker-registry", "skopeo", "tar", "gzip"]) {
        return;
    }
    let reg = Registry::start(Auth::None);
    let tmp = TempDir::new("reg-build");
    let a = tmp.join("store-a");
    let archive = multilayer_archive(tmp.path(), "base:v1", 2, 100_000, 21);
    distill_ok(&a, &["load", "-i", archive.to_str().unwrap()]);
    let base = format!("{}/lib/base:v1", reg.host());
    distill_ok(&a, &["push", "base:v1", &base]);

    let ctx = tmp.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("hello.txt"), "hello from the build\n").unwrap();
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {base}\nCOPY hello.txt /hello.txt\nENV GREETING=hi\n"))
        .unwrap();

    // A fresh store: FROM pulls the base, --push sends the result to its -t name.
    let b = tmp.join("store-b");
    let app = format!("{}/apps/app:1", reg.host());
    let out = distill(&b, &["build", "--progress", "plain", "--push", "-t", &app, ctx.to_str().unwrap()]);
    let err = stderr(&out);
    assert!(out.status.success(), "{}{err}", stdout(&out));
    let base_digest = Store::open(&a).unwrap().resolve("base:v1").unwrap().digest;
    assert!(err.contains(&format!("resolved {base} to {base_digest}")), "{err}");
    let built = Store::open(&b).unwrap().resolve(&app).unwrap().digest;
    let inspect = run(Command::new("skopeo").args(["inspect", "--tls-verify=false", &format!("docker://{app}")]));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Digest"], built.to_string());
    assert_eq!(v["Layers"].as_array().unwrap().len(), 3, "{inspect}");
    distill_ok(&b, &["fsck"]);

    // The base moves on in the registry: without --pull the stored one is used, with it the new one.
    let archive2 = multilayer_archive(tmp.path(), "base:v2", 1, 50_000, 22);
    distill_ok(&a, &["load", "-i", archive2.to_str().unwrap()]);
    distill_ok(&a, &["push", "base:v2", &base]);
    let out = distill(&b, &["build", "--progress", "plain", "-t", "local:1", ctx.to_str().unwrap()]);
    assert!(out.status.success() && !stderr(&out).contains("resolved"), "{}", stderr(&out));
    let out = distill(
        &b,
        &[
            "build",
            "--pull",
            "--progress",
            "plain",
            "--output",
            &format!("type=registry,name={}/apps/app:2", reg.host()),
            ctx.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let inspect = run(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{}/apps/app:2", reg.host()),
    ]));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 2, "built on the new one-layer base: {inspect}");
}

#[test]
fn missing_base_that_cannot_be_pulled_names_the_line() {
    let test = "missing_base_that_cannot_be_pulled_names_the_line";
    if !require_root(test) || !require_tools(test, &["docker-registry"]) {
        return;
    }
    let reg = Registry::start(Auth::None);
    let tmp = TempDir::new("reg-build-missing");
    let ctx = tmp.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {}/no/such:1\n", reg.host())).unwrap();
    let out = distill(&tmp.join("store"), &["build", "--progress", "plain", ctx.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("MANIFEST_UNKNOWN") || err.contains("not found"), "{err}");
    assert!(err.contains("Dockerfile:1") && err.contains("could not be pulled"), "{err}");
}

/// What only ONBUILD triggers or named contexts read is pulled too: a base
/// image's trigger `COPY --from=<stage>` reaches a stage whose FROM image is
/// missing, and a `docker-image://` context names a missing image.
#[test]
fn images_read_through_triggers_and_named_contexts_are_pulled() {
    let test = "images_read_through_triggers_and_named_contexts_are_pulled";
    if !require_root(test) || !require_tools(test, &["docker-registry", "tar", "gzip"]) {
        return;
    }
    let reg = Registry::start(Auth::None);
    let tmp = TempDir::new("reg-build-triggers");
    let a = tmp.join("store-a");
    let archive = multilayer_archive(tmp.path(), "base:v1", 1, 10_000, 23);
    distill_ok(&a, &["load", "-i", archive.to_str().unwrap()]);
    let base = format!("{}/lib/base:v1", reg.host());
    distill_ok(&a, &["push", "base:v1", &base]);
    let parent_ctx = tmp.join("parent");
    std::fs::create_dir_all(&parent_ctx).unwrap();
    std::fs::write(parent_ctx.join("Dockerfile"), "FROM scratch\nONBUILD COPY --from=fromreg / /fromreg/\n").unwrap();
    let parent = format!("{}/lib/ob-parent:1", reg.host());
    distill_ok(&a, &["build", "--progress", "plain", "--push", "-t", &parent, parent_ctx.to_str().unwrap()]);

    // `fromreg` is pruned until the parent's trigger is known.
    let ctx = tmp.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {base} AS fromreg\n\nFROM {parent}\n")).unwrap();
    let out = distill(&tmp.join("store-b"), &["build", "--progress", "plain", "-t", "child", ctx.to_str().unwrap()]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("resolved {parent} to")) && err.contains(&format!("resolved {base} to")), "{err}");
    assert!(err.contains("ONBUILD COPY --from=fromreg / /fromreg/"), "{err}");

    // A docker-image:// context is pulled when used, ignored when not.
    std::fs::write(ctx.join("Dockerfile"), "FROM ctximg\n").unwrap();
    let unused = format!("unused=docker-image://{}/no/such:1", reg.host());
    let args = ["build", "--progress", "plain", "--build-context", &format!("ctximg=docker-image://{base}")];
    let out =
        distill(&tmp.join("store-c"), &[&args[..], &["--build-context", &unused, ctx.to_str().unwrap()]].concat());
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("resolved {base} to")) && !err.contains("no/such"), "{err}");
}
