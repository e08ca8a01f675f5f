//! Differential tests: every Dockerfile under `tests/build_fixtures/<NN-name>/`
//! is built by `distill build` and by buildah (`--runtime runc`, Docker
//! image format, one layer per instruction like `docker build`), from the
//! same `debian:bookworm` base (distill's image, saved as an OCI archive and
//! pulled into buildah's storage: the same image ID on both sides). Then:
//!
//! - the image configs must agree on Env, Cmd, Entrypoint, WorkingDir, User,
//!   Labels, ExposedPorts, Volumes, StopSignal, Healthcheck, OnBuild, Shell,
//!   author (MAINTAINER), architecture and os;
//! - the flattened root file systems must agree on every path: type, mode
//!   (with setuid/setgid/sticky), uid/gid, symlink target, hard-link
//!   grouping, content; not mtimes. Both images are read the same way, by
//!   an independent reader: distill's image is pulled into buildah's
//!   storage, and `podman image mount` shows each as overlayfs merges it.
//!
//! buildah's storage is `<cache>/buildah-diff` (not the system's); its images
//! are named `localhost/distill-diff/<fixture>`. `DISTILL_TEST_KEEP=1` keeps
//! the scratch directories. Before `distill build` exists, each test still
//! builds its fixture with buildah (checking the fixture and the docker
//! expectations), then skips loudly (fails under `CI=true`).
//! `DISTILL_DIFF_SELF=1` compares buildah with a second buildah build
//! instead of distill (a check of the comparator and of the fixups).
//!
//! # Where buildah (1.28) departs from Docker (we follow Docker)
//!
//! Each case is undone on buildah's side before comparing: by a [`Fixup`]
//! in the fixture that shows it, or (1, 2) for every fixture in
//! [`apply_fixups`]. Quotes are from the Dockerfile reference,
//! <https://docs.docker.com/reference/dockerfile/>, and where the reference
//! says nothing, from BuildKit's source (Docker's builder).
//!
//! 1. Every image: buildah stamps an `io.buildah.version` label. Docker adds
//!    none of its own: "The LABEL instruction adds metadata to an image";
//!    an image's labels are the base image's and the Dockerfile's. Removed.
//! 2. Every image with a RUN: buildah leaves the empty `/etc/hosts` it bind
//!    mounts over (mode 0755) in the layer when the base has none (Debian
//!    minbase has none). BuildKit removes such mount stubs after each RUN
//!    (`executor/stubs.go`, `MountStubsCleaner`), so Docker's image has no
//!    `/etc/hosts`. Removed when it is an empty file.
//! 3. 08-env, order of Env: buildah moves a redefined variable (PATH) to the
//!    end of the list; Docker replaces it where it is (BuildKit
//!    `dispatchers.go` `addEnv`: `env[i] = k + "=" + v`, append only when
//!    new), so PATH stays first. The values agree; per the reference,
//!    "Environment variable substitution will use the same value for each
//!    variable throughout the entire instruction" (so `C=${A}-x` in the
//!    instruction that sets A gives `-x`).
//! 4. 13-expose-volume-stopsignal, port ranges: buildah records
//!    `8000-8002/tcp` as one key; Docker records one key per port
//!    (`8000/tcp`, `8001/tcp`, `8002/tcp`): BuildKit `convert_expose.go`
//!    `parsePort` expands `startPort..=endPort`. The reference: "EXPOSE
//!    <port> [<port>/<protocol>...]".
//! 5. 16-cmd-shell-form, SHELL and the shell form of CMD: buildah wraps a
//!    shell-form CMD in `/bin/sh -c` whatever SHELL says. The reference:
//!    "The following instructions can be affected by the SHELL instruction
//!    when the shell form of them is used in a Dockerfile: RUN, CMD and
//!    ENTRYPOINT."
//! 6. 21-dockerfile-dockerignore: buildah 1.28 reads only the context's
//!    `.dockerignore`. The reference: "the Dockerfile-specific ignore-file
//!    takes precedence over the .dockerignore file at the root of the build
//!    context". Undone by handing buildah that file with `--ignorefile`.
//!
//! 7. 09-arg-build-arg, 11-workdir, a WORKDIR no later instruction uses:
//!    buildah creates the directory only when something runs in it. The
//!    reference: "If the WORKDIR doesn't exist, it will be created even if
//!    it's not used in any subsequent Dockerfile instruction." Added to
//!    buildah's tree (0755, root: the stage's user there is root).
//! 8. 20-dockerignore, an exception below an excluded directory
//!    (`build/**` then `!build/**/*.keep`): buildah leaves out
//!    `build/out/b.keep` and `build/out/sub/c.keep`. The reference: "Lines
//!    starting with ! (exclamation mark) can be used to make exceptions to
//!    exclusions", and "the last line of the .dockerignore that matches a
//!    particular file determines whether it's included or excluded";
//!    `build/**/*.keep` matches both ("** matches any number of
//!    directories (including zero)"), and BuildKit's walker only skips an
//!    excluded directory when no exception pattern with wildcards could
//!    match below it. Added to buildah's tree from the context (with the
//!    directories that hold them, as COPY creates them).
//!
//! Checked and *not* deviations (buildah agrees with Docker): `--chown=user`
//! without a group takes the user's primary group from /etc/passwd (BuildKit
//! `readUser`: `us.GID = users[0].Gid`; a bare UID gives GID = UID);
//! directories COPY creates on the way to its destination get the `--chown`
//! owner (fsutil `MkdirAll` with the chown); VOLUME creates no directory;
//! WORKDIR after USER creates the directory owned by that user.

mod build_support;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use build_support::{
    DEBIAN, TempDir, TestStore, cache_dir, cache_lock, fixtures_dir, gate, has_build_command, require_tools, run_cmd,
};
use serde_json::{Map, Value};

/// A documented deviation of buildah from Docker, undone on buildah's side.
#[derive(Debug, Clone, Copy)]
#[allow(dead_code)] // not every kind is needed by the fixtures at all times
enum Fixup {
    /// Extra arguments for `buildah bud` that make it do what Docker does.
    BuildahArgs(&'static [&'static str]),
    /// Set a config field of buildah's result (JSON; `null` removes it).
    Config(&'static str, &'static str),
    /// Drop a path (and what is below it) from buildah's root file system.
    RemovePath(&'static str),
    /// Add a directory (0755, root) to buildah's root file system.
    AddDir(&'static str),
    /// Add what COPY makes of a context entry (its content and mode, root's)
    /// at an image path: (context path, image path).
    AddFromContext(&'static str, &'static str),
}

/// One fixture directory and how to build it.
struct Fixture {
    name: &'static str,
    /// Relative to the fixture directory (the build context).
    dockerfile: &'static str,
    target: Option<&'static str>,
    build_args: &'static [&'static str],
    fixups: &'static [Fixup],
    /// Docker's documented results, checked on both images: (config field, JSON).
    expect: &'static [(&'static str, &'static str)],
}

const fn fixture(name: &'static str) -> Fixture {
    Fixture { name, dockerfile: "Dockerfile", target: None, build_args: &[], fixups: &[], expect: &[] }
}

/// The config fields compared (Docker's `config` object), plus top-level ones.
const CONFIG_FIELDS: [&str; 12] = [
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "Labels",
    "ExposedPorts",
    "Volumes",
    "StopSignal",
    "Healthcheck",
    "OnBuild",
    "Shell",
];
const TOP_FIELDS: [&str; 3] = ["author", "architecture", "os"];

// ---------------------------------------------------------------------------
// The fixtures

/// Docker's Env for 08-env: PATH redefined in place (deviation 3).
const ENV_08: &str = r#"["PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=override",
    "B=two words", "C=-x", "D=1 and more", "E=default", "F=two words", "G=set", "H=1", "I=$A", "J=$A", "K=override"]"#;
/// Docker's ExposedPorts for 13-expose-volume-stopsignal: ranges expanded (deviation 4).
const PORTS_13: &str = r#"{"80/tcp": {}, "443/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}, "8002/tcp": {},
    "9000/udp": {}, "9001/udp": {}}"#;
/// Docker's Cmd for 16-cmd-shell-form: the shell form under SHELL (deviation 5).
const CMD_16: &str = r#"["/bin/bash", "-c", "echo \"hello $HOME\""]"#;

const FIXTURES: &[Fixture] = &[
    Fixture {
        expect: &[("Shell", r#"["/bin/sh", "-c"]"#), ("Cmd", "null"), ("Entrypoint", "null")],
        ..fixture("01-run-forms")
    },
    fixture("02-copy-globs"),
    fixture("03-copy-dest-rules"),
    Fixture { expect: &[("WorkingDir", r#""/app/sub""#)], ..fixture("04-copy-workdir-relative") },
    fixture("05-copy-from-stages"),
    fixture("06-copy-chown-chmod"),
    fixture("07-add-local-tar"),
    Fixture { fixups: &[Fixup::Config("Env", ENV_08)], expect: &[("Env", ENV_08)], ..fixture("08-env") },
    Fixture {
        build_args: &["WHO=world", "LATE=overridden"],
        fixups: &[Fixup::AddDir("/w-overridden")],
        expect: &[
            ("Env", r#"["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "FROM_ARG=hello-world"]"#),
            ("Labels", r#"{"who": "world"}"#),
            ("WorkingDir", r#""/w-overridden""#),
        ],
        ..fixture("09-arg-build-arg")
    },
    Fixture {
        expect: &[
            (
                "Labels",
                r#"{"a": "override", "b c": "d e", "multi": "line continued", "org.example.version": "1.0", "empty": ""}"#,
            ),
            ("author", r#""Jane Doe <jane@example.com>""#),
        ],
        ..fixture("10-label-maintainer")
    },
    Fixture {
        fixups: &[Fixup::AddDir("/created"), Fixup::AddDir("/created/by"), Fixup::AddDir("/created/by/workdir")],
        expect: &[("WorkingDir", r#""/created/by/workdir""#)],
        ..fixture("11-workdir")
    },
    Fixture { expect: &[("User", r#""3000:3001""#), ("WorkingDir", r#""/home/app/work""#)], ..fixture("12-user") },
    Fixture {
        fixups: &[Fixup::Config("ExposedPorts", PORTS_13)],
        expect: &[
            ("ExposedPorts", PORTS_13),
            ("Volumes", r#"{"/data": {}, "/var/lib/app": {}, "/logs": {}, "/vol-a": {}, "/vol-b": {}}"#),
            ("StopSignal", r#""SIGUSR1""#),
        ],
        ..fixture("13-expose-volume-stopsignal")
    },
    Fixture {
        expect: &[("Cmd", "null"), ("Entrypoint", r#"["/bin/echo", "entry"]"#)],
        ..fixture("14-entrypoint-resets-base-cmd")
    },
    Fixture {
        expect: &[("Cmd", r#"["kept"]"#), ("Entrypoint", r#"["/bin/sh", "-c", "echo shell-form entrypoint"]"#)],
        ..fixture("15-cmd-before-entrypoint")
    },
    Fixture {
        fixups: &[Fixup::Config("Cmd", CMD_16)],
        expect: &[("Cmd", CMD_16), ("Entrypoint", r#"["/bin/echo"]"#), ("Shell", r#"["/bin/bash", "-c"]"#)],
        ..fixture("16-cmd-shell-form")
    },
    Fixture {
        expect: &[
            (
                "Healthcheck",
                r#"{"Test": ["CMD-SHELL", "test -e /tmp/healthy || exit 1"], "Interval": 30000000000,
                    "Timeout": 5000000000, "StartPeriod": 10000000000, "Retries": 4}"#,
            ),
            ("StopSignal", r#""9""#),
        ],
        ..fixture("17-healthcheck-flags")
    },
    Fixture { expect: &[("Healthcheck", r#"{"Test": ["NONE"]}"#)], ..fixture("18-healthcheck-none") },
    Fixture {
        expect: &[("OnBuild", r#"["RUN echo triggered > /triggered", "COPY a.txt /onbuild/", "ENV FROM_ONBUILD=1"]"#)],
        ..fixture("19-onbuild")
    },
    Fixture {
        fixups: &[
            Fixup::AddFromContext("build/out", "/ctx/build/out"),
            Fixup::AddFromContext("build/out/b.keep", "/ctx/build/out/b.keep"),
            Fixup::AddFromContext("build/out/sub", "/ctx/build/out/sub"),
            Fixup::AddFromContext("build/out/sub/c.keep", "/ctx/build/out/sub/c.keep"),
        ],
        ..fixture("20-dockerignore")
    },
    Fixture {
        dockerfile: "app.Dockerfile",
        fixups: &[Fixup::BuildahArgs(&["--ignorefile", "app.Dockerfile.dockerignore"])],
        ..fixture("21-dockerfile-dockerignore")
    },
    Fixture {
        target: Some("dev"),
        expect: &[("Labels", r#"{"stage": "dev"}"#), ("Cmd", r#"["dev"]"#)],
        ..fixture("22-multistage-target")
    },
    fixture("23-whiteouts-opaque"),
    fixture("24-links"),
    fixture("25-setuid-modes"),
    fixture("26-copy-chown-parents"),
    fixture("27-copy-context-links-modes"),
];

macro_rules! fixture_tests {
    ($($test:ident => $name:literal,)*) => {
        $(
            #[test]
            fn $test() {
                check(stringify!($test), $name);
            }
        )*

        /// Every fixture has a test, and every test a fixture.
        #[test]
        fn every_fixture_has_a_test() {
            let tested: Vec<&str> = vec![$($name),*];
            let listed: Vec<&str> = FIXTURES.iter().map(|f| f.name).collect();
            assert_eq!(tested, listed, "the fixture_tests! list and FIXTURES differ");
            let mut on_disk: Vec<String> = fs::read_dir(fixtures_dir())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            on_disk.sort();
            assert_eq!(on_disk, listed, "build_fixtures/ and FIXTURES differ");
            assert!(listed.len() >= 20);
        }
    };
}

fixture_tests! {
    run_forms => "01-run-forms",
    copy_globs => "02-copy-globs",
    copy_dest_rules => "03-copy-dest-rules",
    copy_workdir_relative => "04-copy-workdir-relative",
    copy_from_stages => "05-copy-from-stages",
    copy_chown_chmod => "06-copy-chown-chmod",
    add_local_tar => "07-add-local-tar",
    env => "08-env",
    arg_build_arg => "09-arg-build-arg",
    label_maintainer => "10-label-maintainer",
    workdir => "11-workdir",
    user => "12-user",
    expose_volume_stopsignal => "13-expose-volume-stopsignal",
    entrypoint_resets_base_cmd => "14-entrypoint-resets-base-cmd",
    cmd_before_entrypoint => "15-cmd-before-entrypoint",
    cmd_shell_form => "16-cmd-shell-form",
    healthcheck_flags => "17-healthcheck-flags",
    healthcheck_none => "18-healthcheck-none",
    onbuild => "19-onbuild",
    dockerignore => "20-dockerignore",
    dockerfile_dockerignore => "21-dockerfile-dockerignore",
    multistage_target => "22-multistage-target",
    whiteouts_opaque => "23-whiteouts-opaque",
    links => "24-links",
    setuid_modes => "25-setuid-modes",
    copy_chown_parents => "26-copy-chown-parents",
    copy_context_links_modes => "27-copy-context-links-modes",
}

// ---------------------------------------------------------------------------
// The check

fn check(test: &str, name: &str) {
    let fx = FIXTURES.iter().find(|f| f.name == name).unwrap();
    if !require_tools(test, &["buildah", "podman", "runc"]) {
        return;
    }
    let Some(store) = TestStore::with_base_images(test) else { return };
    let ctx = fixtures_dir().join(fx.name);
    let bh = Buildah::new();
    bh.ensure_base(&store);
    let scratch = TempDir::new(&format!("diff-{}", fx.name));

    let buildah_ref = format!("localhost/distill-diff/{}:buildah", fx.name);
    let buildah_id = bh.build(fx, &ctx, &buildah_ref);
    let mut theirs = bh.image(&buildah_id, "buildah");
    apply_fixups(fx, &mut theirs);
    let mut problems = expectation_problems(fx, "buildah (after fixups)", &theirs.config);
    // A wrong expectation or fixture is a test bug, whatever distill does.
    assert!(problems.is_empty(), "{}: buildah's image contradicts the expectations:\n{}", fx.name, problems.join("\n"));

    let self_check = std::env::var_os("DISTILL_DIFF_SELF").is_some();
    if !self_check && !gate(has_build_command(), test, "`distill build`") {
        return;
    }
    // Declared before the views so that it runs after they unmount.
    let _cleanup = Cleanup(vec![
        bh.buildah(&["rmi", "-f", &format!("localhost/distill-diff/{}:distill", fx.name)]),
        bh.buildah(&["rmi", "-f", &format!("localhost/distill-diff/{}:buildah-again", fx.name)]),
    ]);
    let ours = if self_check {
        // Validates the comparator: buildah against a second buildah build.
        let again = bh.build(fx, &ctx, &format!("localhost/distill-diff/{}:buildah-again", fx.name));
        let mut again = bh.image(&again, "buildah, again");
        apply_fixups(fx, &mut again);
        again
    } else {
        let distill_ref = format!("distill-diff/{}:latest", fx.name);
        let mut args = vec!["--progress", "plain", "-t", &distill_ref];
        let dockerfile = ctx.join(fx.dockerfile);
        let dockerfile = dockerfile.to_str().unwrap();
        args.extend(["-f", dockerfile]);
        if let Some(target) = fx.target {
            args.extend(["--target", target]);
        }
        for a in fx.build_args {
            args.extend(["--build-arg", a]);
        }
        let out = store.build(&ctx, &args);
        assert!(out.success(), "{}: distill build failed:\n{out}", fx.name);
        let config = store.image_config(&distill_ref);
        // Into buildah's storage, read as buildah reads its own images.
        let archive = scratch.join("distill.tar");
        store.distill_ok(&["save", "--format", "oci", "-o", archive.to_str().unwrap(), &distill_ref]);
        let id = bh.pull(&archive, &format!("localhost/distill-diff/{}:distill", fx.name));
        let mut img = bh.image(&id, "distill");
        img.config = normalize_config(&config);
        img
    };
    problems.extend(expectation_problems(fx, "distill", &ours.config));
    problems.extend(config_diff(&ours.config, &theirs.config));
    problems.extend(fs_diff(&ours, &theirs));
    if !problems.is_empty() {
        let shown = problems.len().min(200);
        panic!(
            "{}: distill's image differs from buildah's in {} way(s) (left: distill, right: buildah){}:\n{}",
            fx.name,
            problems.len(),
            if shown < problems.len() { format!(", the first {shown}") } else { String::new() },
            problems[..shown].join("\n")
        );
    }
}

// ---------------------------------------------------------------------------
// buildah, with its own storage

struct Buildah {
    root: PathBuf,
    runroot: PathBuf,
}

impl Buildah {
    fn new() -> Buildah {
        let dir = cache_dir().join("buildah-diff");
        Buildah { root: dir.join("root"), runroot: dir.join("run") }
    }

    fn storage_args(&self, cmd: &mut Command) {
        cmd.arg("--root").arg(&self.root).arg("--runroot").arg(&self.runroot).args(["--storage-driver", "overlay"]);
    }

    fn buildah(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("buildah");
        self.storage_args(&mut cmd);
        cmd.args(args);
        cmd
    }

    fn podman(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("podman");
        self.storage_args(&mut cmd);
        cmd.args(args);
        cmd
    }

    fn ok(&self, mut cmd: Command) -> String {
        let out = run_cmd(&mut cmd);
        assert!(out.success(), "{out}");
        out.stdout
    }

    /// Puts the store's `debian:bookworm` (same image ID) into buildah's
    /// storage as `docker.io/library/debian:bookworm`, once per base.
    fn ensure_base(&self, store: &TestStore) {
        let id = store.distill_ok(&["inspect", "--format", "{{.Id}}", DEBIAN]);
        let id = id.trim().trim_start_matches("sha256:");
        let _lock = cache_lock("buildah-diff");
        let present = run_cmd(&mut self.buildah(&["inspect", "--type", "image", id])).success();
        if !present {
            let archive = store.scratch("base").join("base.tar");
            store.distill_ok(&["save", "--format", "oci", "-o", archive.to_str().unwrap(), DEBIAN]);
            let pulled = self.pull(&archive, "docker.io/library/debian:bookworm");
            assert_eq!(pulled, id, "buildah sees another image ID for the base");
        }
        self.ok(self.buildah(&["tag", id, "docker.io/library/debian:bookworm"]));
    }

    /// Pulls an OCI archive, names it `name`; returns the image ID (hex).
    fn pull(&self, archive: &Path, name: &str) -> String {
        let id = self.ok(self.buildah(&["pull", "-q", &format!("oci-archive:{}", archive.display())]));
        let id = id.trim().to_string();
        self.ok(self.buildah(&["tag", &id, name]));
        id
    }

    /// `buildah bud` like `docker build`: one layer per instruction.
    fn build(&self, fx: &Fixture, ctx: &Path, name: &str) -> String {
        let dockerfile = ctx.join(fx.dockerfile);
        let mut cmd = self.buildah(&["bud", "--runtime", "runc", "--pull=never", "--format", "docker", "--layers"]);
        cmd.args(["-q", "-t", name, "-f"]).arg(&dockerfile);
        if let Some(target) = fx.target {
            cmd.args(["--target", target]);
        }
        for a in fx.build_args {
            cmd.args(["--build-arg", a]);
        }
        for f in fx.fixups {
            if let Fixup::BuildahArgs(args) = f {
                cmd.args(args.iter());
            }
        }
        cmd.arg(ctx).current_dir(ctx);
        let out = run_cmd(&mut cmd);
        assert!(out.success(), "{}: buildah bud failed:\n{out}", fx.name);
        let id = self.ok(self.buildah(&["inspect", "--type", "image", "--format", "{{.FromImageID}}", name]));
        id.trim().to_string()
    }

    /// The image's config (normalized) and root file system listing.
    fn image(&self, id: &str, label: &str) -> ImageView {
        let inspect: Value = serde_json::from_str(&self.ok(self.buildah(&["inspect", "--type", "image", id]))).unwrap();
        let config = &inspect["Docker"];
        let path = self.ok(self.podman(&["image", "mount", id]));
        let mount = Mount { unmount: self.podman(&["image", "unmount", id]) };
        let listing = Listing::read(Path::new(path.trim()));
        ImageView { label: label.to_string(), config: normalize_config(config), listing, _mount: mount }
    }
}

/// Commands run on drop, whatever happened (removing the compared copy of
/// distill's image from buildah's storage; buildah's own stay as its cache).
struct Cleanup(Vec<Command>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for cmd in &mut self.0 {
            let _ = cmd.stdin(std::process::Stdio::null()).output();
        }
    }
}

/// An image mounted by `podman image mount` (its listing reads the files
/// there), unmounted on drop.
struct Mount {
    unmount: Command,
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = run_cmd(&mut self.unmount);
    }
}

// ---------------------------------------------------------------------------
// Configs

/// `{"config": {the compared fields}, top-level fields…}` with empty values
/// (missing, null, "", [], {}, zero durations) all as absent.
fn normalize_config(raw: &Value) -> Value {
    let mut out = Map::new();
    let mut config = Map::new();
    for field in CONFIG_FIELDS {
        if let Some(v) = normalize_value(field, &raw["config"][field]) {
            config.insert(field.to_string(), v);
        }
    }
    out.insert("config".into(), Value::Object(config));
    for field in TOP_FIELDS {
        if let Some(v) = normalize_value(field, &raw[field]) {
            out.insert(field.to_string(), v);
        }
    }
    Value::Object(out)
}

fn normalize_value(field: &str, v: &Value) -> Option<Value> {
    let v = match v {
        Value::Object(m) if field == "Healthcheck" => {
            Value::Object(m.iter().filter(|(_, x)| !is_empty(x)).map(|(k, x)| (k.clone(), x.clone())).collect())
        }
        other => other.clone(),
    };
    (!is_empty(&v)).then_some(v)
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Bool(_) => false,
    }
}

fn field<'a>(config: &'a Value, name: &str) -> &'a Value {
    if TOP_FIELDS.contains(&name) { &config[name] } else { &config["config"][name] }
}

fn field_mut<'a>(config: &'a mut Value, name: &str) -> &'a mut Map<String, Value> {
    let obj = if TOP_FIELDS.contains(&name) { config } else { &mut config["config"] };
    obj.as_object_mut().unwrap()
}

fn set_field(config: &mut Value, name: &str, json: &str) {
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("bad JSON for {name}: {e}: {json}"));
    let obj = field_mut(config, name);
    match normalize_value(name, &v) {
        Some(v) => obj.insert(name.to_string(), v),
        None => obj.remove(name),
    };
}

fn apply_fixups(fx: &Fixture, img: &mut ImageView) {
    let ctx = fixtures_dir().join(fx.name);
    // Deviation 2: the /etc/hosts mount stub.
    if img.listing.0.get("/etc/hosts").is_some_and(|e| e.kind == (Kind::File { size: 0 })) {
        img.listing.0.remove("/etc/hosts");
    }
    // Deviation 1: buildah's own label.
    if let Some(labels) = img.config["config"].get_mut("Labels").and_then(Value::as_object_mut) {
        labels.remove("io.buildah.version");
        if labels.is_empty() {
            img.config["config"].as_object_mut().unwrap().remove("Labels");
        }
    }
    for f in fx.fixups {
        match *f {
            Fixup::BuildahArgs(_) => {}
            Fixup::Config(name, json) => set_field(&mut img.config, name, json),
            Fixup::RemovePath(path) => {
                let below = format!("{path}/");
                img.listing.0.retain(|p, _| p != path && !p.starts_with(&below));
            }
            Fixup::AddDir(path) => {
                let entry =
                    Entry { kind: Kind::Dir, mode: 0o755, uid: 0, gid: 0, link_group: None, host_path: PathBuf::new() };
                assert!(img.listing.0.insert(path.to_string(), entry).is_none(), "{}: {path} is there", fx.name);
            }
            Fixup::AddFromContext(from, path) => {
                let host_path = ctx.join(from);
                let m = fs::symlink_metadata(&host_path).unwrap_or_else(|e| panic!("{}: {from}: {e}", fx.name));
                let kind = if m.is_dir() { Kind::Dir } else { Kind::File { size: m.len() } };
                let entry = Entry { kind, mode: m.mode() & 0o7777, uid: 0, gid: 0, link_group: None, host_path };
                assert!(img.listing.0.insert(path.to_string(), entry).is_none(), "{}: {path} is there", fx.name);
            }
        }
    }
}

fn expectation_problems(fx: &Fixture, who: &str, config: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (name, json) in fx.expect {
        let want: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("bad JSON for {name}: {e}: {json}"));
        let want = normalize_value(name, &want).unwrap_or(Value::Null);
        let got = field(config, name);
        if *got != want {
            out.push(format!("config {name}: {who} has {got}, Docker gives {want}"));
        }
    }
    out
}

fn config_diff(ours: &Value, theirs: &Value) -> Vec<String> {
    CONFIG_FIELDS
        .iter()
        .chain(TOP_FIELDS.iter())
        .filter_map(|name| {
            let (a, b) = (field(ours, name), field(theirs, name));
            (a != b).then(|| format!("config {name}:\n    distill: {a}\n    buildah: {b}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Root file systems

struct ImageView {
    label: String,
    /// As [`normalize_config`] returns.
    config: Value,
    listing: Listing,
    _mount: Mount,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    File { size: u64 },
    Symlink(String),
    Char(u64),
    Block(u64),
    Fifo,
    Socket,
}

#[derive(Debug, Clone)]
struct Entry {
    kind: Kind,
    /// Permission bits with setuid, setgid and sticky.
    mode: u32,
    uid: u32,
    gid: u32,
    /// For a file with other names in the tree: the first of them (sorted).
    link_group: Option<String>,
    /// Where to read the content.
    host_path: PathBuf,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Dir => write!(f, "dir")?,
            Kind::File { size } => write!(f, "file ({size} bytes)")?,
            Kind::Symlink(t) => write!(f, "symlink -> {t}")?,
            Kind::Char(r) => write!(f, "char device {}:{}", r >> 8, r & 0xff)?,
            Kind::Block(r) => write!(f, "block device {}:{}", r >> 8, r & 0xff)?,
            Kind::Fifo => write!(f, "fifo")?,
            Kind::Socket => write!(f, "socket")?,
        }
        write!(f, " {:04o} {}:{}", self.mode, self.uid, self.gid)?;
        if let Some(g) = &self.link_group {
            write!(f, " hard link of {g}")?;
        }
        Ok(())
    }
}

/// Every path of a root file system ("/etc/passwd" …), the root excluded.
struct Listing(BTreeMap<String, Entry>);

impl Listing {
    fn read(root: &Path) -> Listing {
        let mut entries = BTreeMap::new();
        let mut inodes: HashMap<(u64, u64), Vec<String>> = HashMap::new();
        let mut stack = vec![(root.to_path_buf(), String::new())];
        while let Some((dir, prefix)) = stack.pop() {
            for e in fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
                let e = e.unwrap();
                let host_path = e.path();
                let path = format!("{prefix}/{}", e.file_name().to_string_lossy());
                let m = fs::symlink_metadata(&host_path).unwrap();
                let ft = m.file_type();
                use std::os::unix::fs::FileTypeExt;
                let kind = if ft.is_dir() {
                    stack.push((host_path.clone(), path.clone()));
                    Kind::Dir
                } else if ft.is_file() {
                    Kind::File { size: m.len() }
                } else if ft.is_symlink() {
                    Kind::Symlink(fs::read_link(&host_path).unwrap().to_string_lossy().into_owned())
                } else if ft.is_char_device() {
                    Kind::Char(m.rdev())
                } else if ft.is_block_device() {
                    Kind::Block(m.rdev())
                } else if ft.is_fifo() {
                    Kind::Fifo
                } else {
                    Kind::Socket
                };
                if !ft.is_dir() && m.nlink() > 1 {
                    inodes.entry((m.dev(), m.ino())).or_default().push(path.clone());
                }
                let entry =
                    Entry { kind, mode: m.mode() & 0o7777, uid: m.uid(), gid: m.gid(), link_group: None, host_path };
                entries.insert(path, entry);
            }
        }
        for mut group in inodes.into_values().filter(|g| g.len() > 1) {
            group.sort();
            for p in &group[1..] {
                entries.get_mut(p).unwrap().link_group = Some(group[0].clone());
            }
        }
        Listing(entries)
    }
}

fn sha256_hex(path: &Path) -> String {
    distill_image::digest::Digest::of(&fs::read(path).unwrap()).hex()
}

fn fs_diff(ours: &ImageView, theirs: &ImageView) -> Vec<String> {
    let (a, b) = (&ours.listing.0, &theirs.listing.0);
    let mut out = Vec::new();
    for (path, x) in a {
        let Some(y) = b.get(path) else {
            out.push(format!("{path}: only in {}: {x}", ours.label));
            continue;
        };
        let mut what = Vec::new();
        if x.kind != y.kind {
            what.push("type");
        }
        if x.mode != y.mode {
            what.push("mode");
        }
        if (x.uid, x.gid) != (y.uid, y.gid) {
            what.push("owner");
        }
        if x.link_group != y.link_group {
            what.push("hard links");
        }
        let mut content = String::new();
        if let (Kind::File { .. }, Kind::File { .. }) = (&x.kind, &y.kind) {
            let (ca, cb) = (fs::read(&x.host_path).unwrap(), fs::read(&y.host_path).unwrap());
            if comparable_content(path, &ca) != comparable_content(path, &cb) {
                what.push("content");
                content = format!(
                    "\n    {} sha256 {}\n    {} sha256 {}{}",
                    ours.label,
                    sha256_hex(&x.host_path),
                    theirs.label,
                    sha256_hex(&y.host_path),
                    short_text_diff(&ca, &cb, &ours.label, &theirs.label)
                );
            }
        }
        if !what.is_empty() {
            out.push(format!(
                "{path}: {} differ\n    {}: {x}\n    {}: {y}{content}",
                what.join(", "),
                ours.label,
                theirs.label
            ));
        }
    }
    for (path, y) in b {
        if !a.contains_key(path) {
            out.push(format!("{path}: only in {}: {y}", theirs.label));
        }
    }
    out
}

/// File content as the comparison sees it. The third field of each
/// /etc/shadow line is the day of the last password change, so `useradd` in
/// two builds that straddle midnight (UTC) writes different days; that field
/// is the clock, not the build, and is blanked.
fn comparable_content(path: &str, content: &[u8]) -> Vec<u8> {
    if !matches!(path, "/etc/shadow" | "/etc/shadow-") {
        return content.to_vec();
    }
    let Ok(text) = std::str::from_utf8(content) else { return content.to_vec() };
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let mut fields: Vec<&str> = line.split(':').collect();
        if fields.len() > 2 {
            fields[2] = "";
        }
        out.push_str(&fields.join(":"));
    }
    out.into_bytes()
}

/// Both contents when they are short text.
fn short_text_diff(a: &[u8], b: &[u8], la: &str, lb: &str) -> String {
    match (std::str::from_utf8(a), std::str::from_utf8(b)) {
        (Ok(x), Ok(y)) if x.len() <= 400 && y.len() <= 400 => format!("\n    {la} text: {x:?}\n    {lb} text: {y:?}"),
        _ => String::new(),
    }
}
