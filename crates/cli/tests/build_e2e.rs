//! `distill build` end to end, as root with real runc and overlayfs: the
//! example programs build and run, stages fan in, the cache answers what it
//! should (asserted from `--progress rawjson` events), failures keep
//! completed steps, Ctrl-C leaves nothing mounted or running, and
//! SOURCE_DATE_EPOCH builds are reproducible.

mod build_support;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use build_support::{TempDir, TestStore, repo_root};
use serde_json::Value;

fn store(test: &str) -> Option<TestStore> {
    if !build_support::require_build(test) || !build_support::require_tools(test, &["umoci"]) {
        return None;
    }
    TestStore::with_base_images(test)
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    build_support::write_files(dir, files)
}

/// The final state of every vertex in `--progress rawjson` output, by name.
fn vertexes(stderr: &str) -> BTreeMap<String, Value> {
    let mut by_digest: BTreeMap<String, Value> = BTreeMap::new();
    for line in stderr.lines() {
        let Ok(status) = serde_json::from_str::<Value>(line) else { continue };
        for v in status["vertexes"].as_array().into_iter().flatten() {
            by_digest.insert(v["digest"].as_str().unwrap_or_default().to_string(), v.clone());
        }
    }
    by_digest.into_values().map(|v| (v["name"].as_str().unwrap_or_default().to_string(), v)).collect()
}

/// Steps (RUN, COPY, ADD, WORKDIR) that ran, and those answered from the cache.
fn steps(stderr: &str) -> (Vec<String>, Vec<String>) {
    let (mut ran, mut cached) = (Vec::new(), Vec::new());
    for (name, v) in vertexes(stderr) {
        let Some((_, instruction)) = name.split_once("] ") else { continue };
        if !["RUN ", "COPY ", "ADD ", "WORKDIR "].iter().any(|k| instruction.starts_with(k)) {
            continue;
        }
        if v["cached"].as_bool() == Some(true) {
            cached.push(instruction.to_string());
        } else {
            ran.push(instruction.to_string());
        }
    }
    (ran, cached)
}

fn image_id(store: &TestStore, image: &str) -> String {
    store.inspect(image)["Id"].as_str().unwrap().to_string()
}

#[test]
fn calculator_example_builds_and_runs() {
    let Some(store) = store("calculator_example_builds_and_runs") else { return };
    let ctx = repo_root().join("examples/calculator");
    store.build_ok(&ctx, &["-t", "calc", "--progress", "plain"]);
    let out = store.run_image("calc", None).assert_success();
    assert_eq!(out.stdout.trim(), "42", "{out}");
    let out = store.run_image("calc", Some(&["python3", "/app/calc.py", "2", "+", "3"])).assert_success();
    assert_eq!(out.stdout.trim(), "5", "{out}");
    // The runtime stage copied only the script, not the builder's /src.
    let config = store.image_config("calc");
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["python3", "/app/calc.py"]));
    let root = TempDir::new("calc-rootfs");
    store.export_rootfs("calc", root.path());
    assert!(root.join("app/calc.py").is_file());
    assert!(!root.join("src").exists(), "the builder stage's files leaked into the runtime image");
}

#[test]
fn c_program_compiled_in_a_builder_runs_from_scratch() {
    let Some(store) = store("c_program_compiled_in_a_builder_runs_from_scratch") else { return };
    let ctx = TempDir::new("gcc-ctx");
    write(
        ctx.path(),
        &[
            ("hello.c", "#include <stdio.h>\nint main(void) { puts(\"hello from scratch\"); return 0; }\n"),
            (
                "Dockerfile",
                "FROM debian-gcc:bookworm AS build\nWORKDIR /src\nCOPY hello.c .\n\
                 RUN gcc -static -O2 -o /hello hello.c\n\
                 FROM scratch\nCOPY --from=build /hello /hello\nENTRYPOINT [\"/hello\"]\n",
            ),
        ],
    );
    store.build_ok(ctx.path(), &["-t", "hello", "--progress", "plain"]);
    let out = store.run_image("hello", None).assert_success();
    assert_eq!(out.stdout.trim(), "hello from scratch", "{out}");
    let config = store.image_config("hello");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 1, "{config}");
    let root = TempDir::new("hello-rootfs");
    store.export_rootfs("hello", root.path());
    let names: Vec<_> = fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["hello"], "FROM scratch must hold only the binary");
}

#[test]
fn six_stages_fan_in_and_build_concurrently() {
    let Some(store) = store("six_stages_fan_in_and_build_concurrently") else { return };
    let ctx = TempDir::new("fan-ctx");
    let mut dockerfile = String::new();
    for i in 1..=6 {
        dockerfile.push_str(&format!("FROM debian:bookworm AS s{i}\nRUN sleep 1 && echo part{i} > /part{i}\n\n"));
    }
    dockerfile.push_str("FROM debian:bookworm\n");
    for i in 1..=6 {
        dockerfile.push_str(&format!("COPY --from=s{i} /part{i} /parts/\n"));
    }
    dockerfile.push_str("CMD [\"sh\", \"-c\", \"cat /parts/*\"]\n");
    write(ctx.path(), &[("Dockerfile", &dockerfile)]);
    // Extract the base image's snapshot first: the timing is about the stages.
    let warm = TempDir::new("fan-warm");
    write(warm.path(), &[("Dockerfile", "FROM debian:bookworm\nRUN true\n")]);
    store.build_ok(warm.path(), &["--progress", "plain"]);
    let started = Instant::now();
    store.build_ok(ctx.path(), &["-t", "fan", "--progress", "plain"]);
    let elapsed = started.elapsed();
    // Six one-second sleeps one after another would take six seconds.
    assert!(elapsed < Duration::from_secs(5), "stages did not run concurrently: {elapsed:?}");
    let out = store.run_image("fan", None).assert_success();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["part1", "part2", "part3", "part4", "part5", "part6"]
    );
}

#[test]
fn cache_reruns_exactly_what_changed() {
    let Some(store) = store("cache_reruns_exactly_what_changed") else { return };
    let ctx = TempDir::new("cache-ctx");
    write(
        ctx.path(),
        &[
            ("app/main.txt", "version 1\n"),
            ("other.txt", "unrelated\n"),
            (
                "Dockerfile",
                "FROM debian:bookworm\nRUN echo base > /base\nCOPY other.txt /other.txt\n\
                 COPY app/ /app/\nRUN cat /app/main.txt > /derived\nRUN echo tail > /tail\n",
            ),
        ],
    );
    let build = || store.build_ok(ctx.path(), &["-t", "cached", "--progress", "rawjson"]);
    let first = build();
    let (ran, cached) = steps(&first.stderr);
    assert_eq!(ran.len(), 5, "cold build runs every step: {ran:?}");
    assert!(cached.is_empty());
    let id1 = image_id(&store, "cached");

    // Unchanged: nothing runs, same image.
    let (ran, cached) = steps(&build().stderr);
    assert!(ran.is_empty(), "unchanged rebuild ran {ran:?}");
    assert_eq!(cached.len(), 5);
    assert_eq!(image_id(&store, "cached"), id1);

    // Only an mtime changes: still nothing runs.
    let file = ctx.join("app/main.txt");
    let f = fs::File::options().write(true).open(&file).unwrap();
    f.set_modified(std::time::SystemTime::now() + Duration::from_secs(3600)).unwrap();
    drop(f);
    let (ran, _) = steps(&build().stderr);
    assert!(ran.is_empty(), "touching a file invalidated {ran:?}");
    assert_eq!(image_id(&store, "cached"), id1);

    // Its content changes: the COPY that reads it and every step after it run, nothing before.
    fs::write(&file, "version 2\n").unwrap();
    let (ran, cached) = steps(&build().stderr);
    assert_eq!(ran, ["COPY app/ /app/", "RUN cat /app/main.txt > /derived", "RUN echo tail > /tail"]);
    assert_eq!(cached, ["RUN echo base > /base", "COPY other.txt /other.txt"]);
    assert_ne!(image_id(&store, "cached"), id1);

    // --no-cache runs everything again.
    let out = store.build_ok(ctx.path(), &["-t", "cached", "--progress", "rawjson", "--no-cache"]);
    assert_eq!(steps(&out.stderr).0.len(), 5);

    // A plain prune keeps the build cache; `--build-cache` drops it and reclaims its layers.
    store.distill_ok(&["prune"]);
    assert!(steps(&build().stderr).0.is_empty(), "prune dropped the build cache");
    store.distill_ok(&["prune", "--build-cache"]);
    assert_eq!(steps(&build().stderr).0.len(), 5, "the build cache survived prune --build-cache");
    let out = store.distill(&["fsck"]).assert_success();
    assert!(out.stdout.contains(" 0 corrupt, 0 dangling"), "{out}");
}

#[test]
fn a_failing_run_keeps_completed_steps_cached() {
    let Some(store) = store("a_failing_run_keeps_completed_steps_cached") else { return };
    let ctx = TempDir::new("fail-ctx");
    let dockerfile =
        |last: &str| format!("FROM debian:bookworm\nRUN echo one > /one\nRUN echo two > /two\nRUN {last}\n");
    write(ctx.path(), &[("Dockerfile", &dockerfile("echo failing now; exit 3"))]);
    let out = store.build(ctx.path(), &["--progress", "plain"]).assert_failure();
    assert_eq!(out.code, Some(1), "{out}");
    // BuildKit's report: the Dockerfile line, the exit code, the step's output.
    assert!(out.stderr.contains("Dockerfile:4"), "{out}");
    assert!(out.stderr.contains(">>> RUN echo failing now; exit 3"), "{out}");
    assert!(out.stderr.contains("did not complete successfully: exit code: 3"), "{out}");
    assert!(out.stderr.contains("failing now"), "{out}");

    write(ctx.path(), &[("Dockerfile", &dockerfile("echo fixed > /three"))]);
    let out = store.build_ok(ctx.path(), &["-t", "fixed", "--progress", "rawjson"]);
    let (ran, cached) = steps(&out.stderr);
    assert_eq!(ran, ["RUN echo fixed > /three"]);
    assert_eq!(cached, ["RUN echo one > /one", "RUN echo two > /two"]);
    let out = store.distill(&["fsck"]).assert_success();
    assert!(out.stdout.contains(" 0 corrupt, 0 dangling"), "{out}");
}

#[test]
fn ctrl_c_during_run_stops_the_container_and_unmounts_everything() {
    let Some(store) = store("ctrl_c_during_run_stops_the_container_and_unmounts_everything") else { return };
    let ctx = TempDir::new("sigint-ctx");
    // A sleep only this test runs (other builds on the machine may sleep too).
    let sleep = format!("sleep {}", 1000 + std::process::id() % 8000);
    write(ctx.path(), &[("Dockerfile", &format!("FROM debian:bookworm\nRUN echo ready; {sleep}\n"))]);
    let mut child = store
        .command()
        .args(["build", "--progress", "plain"])
        .arg(ctx.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !seen.contains("ready") {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0 && Instant::now() < deadline, "no output:\n{seen}");
        seen.push_str(&line);
    }
    std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{rest}");
    let root = store.root();
    let mounts = fs::read_to_string("/proc/mounts").unwrap();
    let leftovers: Vec<_> = mounts.lines().filter(|l| l.contains(root.to_str().unwrap())).collect();
    assert!(leftovers.is_empty(), "mounts left behind: {leftovers:?}");
    let prefix = format!("distill-{pid}-");
    let containers: Vec<_> = fs::read_dir("/run/distill/runc")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_else(|_| Vec::new());
    let ours: Vec<_> = containers.iter().filter(|c| c.starts_with(&prefix)).collect();
    assert!(ours.is_empty(), "runc state left behind: {ours:?}");
    let ps = std::process::Command::new("ps").args(["-eo", "args"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&ps.stdout).lines().any(|l| l.trim() == sleep),
        "the container's process survived"
    );
}

#[test]
fn source_date_epoch_builds_are_reproducible() {
    let Some(first) = store("source_date_epoch_builds_are_reproducible") else { return };
    let Some(second) = TestStore::with_base_images("source_date_epoch_builds_are_reproducible") else { return };
    let ctx = TempDir::new("sde-ctx");
    write(
        ctx.path(),
        &[
            ("data.txt", "payload\n"),
            (
                "Dockerfile",
                "FROM debian:bookworm AS build\nRUN mkdir /out && date > /out/when && echo x > /out/x\n\
                 FROM debian:bookworm\nCOPY data.txt /data.txt\nCOPY --from=build /out/x /x\nLABEL a=b\n",
            ),
        ],
    );
    let env = [("SOURCE_DATE_EPOCH", "1700000000")];
    first.build_env(ctx.path(), &["-t", "repro", "--progress", "plain"], &env).assert_success();
    second.build_env(ctx.path(), &["-t", "repro", "--progress", "plain"], &env).assert_success();
    let (a, b) = (first.inspect("repro"), second.inspect("repro"));
    assert_eq!(a["Id"], b["Id"], "image IDs differ");
    assert_eq!(a["RepoDigests"], b["RepoDigests"], "manifest digests differ");
    assert_eq!(a["Created"], "2023-11-14T22:13:20Z");
}

#[test]
fn context_and_dockerfile_from_stdin_and_outputs() {
    let Some(store) = store("context_and_dockerfile_from_stdin_and_outputs") else { return };
    let ctx = TempDir::new("stdin-ctx");
    write(ctx.path(), &[("msg.txt", "from a tar\n"), ("Dockerfile", "FROM debian:bookworm\nCOPY msg.txt /msg.txt\n")]);
    // `-` as the context: a tar on standard input (Dockerfile inside it).
    let tar = ctx.join("../stdin-ctx.tar");
    build_support::run_ok(std::process::Command::new("tar").arg("-C").arg(ctx.path()).arg("-cf").arg(&tar).arg("."));
    let out = store
        .command()
        .args(["build", "-t", "from-stdin", "--progress", "plain", "-"])
        .stdin(fs::File::open(&tar).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let root = TempDir::new("stdin-rootfs");
    store.export_rootfs("from-stdin", root.path());
    assert_eq!(fs::read_to_string(root.join("msg.txt")).unwrap(), "from a tar\n");
    fs::remove_file(&tar).unwrap();

    // `-f -`: the Dockerfile on standard input, the context a directory; exporters.
    let oci = ctx.join("image.oci.tar");
    let local = ctx.join("local-out");
    let iid = ctx.join("iid");
    let mut child = store
        .command()
        .args(["build", "-t", "df-stdin", "--progress", "quiet", "-f", "-", "--iidfile"])
        .arg(&iid)
        .arg("--output")
        .arg(format!("type=oci,dest={}", oci.display()))
        .arg("--output")
        .arg(format!("type=local,dest={}", local.display()))
        .arg(ctx.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"FROM scratch\nCOPY msg.txt /m\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fs::read_to_string(&iid).unwrap(), image_id(&store, "df-stdin"));
    assert_eq!(fs::read_to_string(local.join("m")).unwrap(), "from a tar\n");
    build_support::run_ok(
        std::process::Command::new("skopeo").arg("inspect").arg(format!("oci-archive:{}", oci.display())),
    );
}

#[test]
fn naive_snapshotter_builds_the_same_image() {
    let Some(store) = store("naive_snapshotter_builds_the_same_image") else { return };
    let Some(other) = TestStore::with_base_images("naive_snapshotter_builds_the_same_image") else { return };
    let ctx = TempDir::new("naive-ctx");
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM debian:bookworm\nRUN rm -rf /var/lib/apt && echo hi > /hi && mkdir -p /d && ln -s /hi /d/link\n\
             WORKDIR /w\nRUN chmod 4755 /hi\n",
        )],
    );
    let env = [("SOURCE_DATE_EPOCH", "1700000000")];
    store.build_env(ctx.path(), &["-t", "snap", "--progress", "plain"], &env).assert_success();
    let mut naive = other.command();
    naive.env("DISTILL_SNAPSHOTTER", "naive").env("SOURCE_DATE_EPOCH", "1700000000");
    naive.args(["build", "-t", "snap", "--progress", "plain"]).arg(ctx.path());
    build_support::run_ok(&mut naive);
    // The same diffs: whiteouts, an opaque-free delete, a symlink, a mode change.
    assert_eq!(store.image_config("snap")["rootfs"], other.image_config("snap")["rootfs"]);
}

#[test]
fn unsupported_features_fail_clearly_never_silently() {
    let Some(store) = store("unsupported_features_fail_clearly_never_silently") else { return };
    let ctx = TempDir::new("unsupported-ctx");
    let cases = [
        ("FROM debian:bookworm\nRUN --device=vendor.com/gpu=all true\n", 2, "RUN --device is not supported yet"),
        (
            "FROM debian:bookworm\nADD https://example.invalid/repo.git /x\n",
            2,
            "Git source https://example.invalid/repo.git: git ls-remote failed",
        ),
        ("FROM debian:bookworm\nCOPY --link --chown=nobody Dockerfile /x\n", 2, "names can't be resolved"),
        ("FROM no-such-image:1\n", 1, "is not in the local store"),
    ];
    for (dockerfile, line, message) in cases {
        write(ctx.path(), &[("Dockerfile", dockerfile)]);
        let out = store.build(ctx.path(), &["--progress", "plain"]).assert_failure();
        assert!(out.stderr.contains(&format!("Dockerfile:{line}\n")), "{out}");
        assert!(out.stderr.contains(message), "{out}");
    }
}

/// A COPY whose sources changed starts from its previous result (keeping
/// the unchanged files instead of copying them again) and must give exactly
/// the layers a `--no-cache` build of the same context gives: both when
/// the previous result is taken over (nothing is built on it) and when it
/// is hard-linked (a RUN is built on it), over several rounds of changes
/// (content, mode, mtime, removed and added files and directories, a file
/// becoming a directory and the other way round, a symlink's target).
#[test]
fn incremental_copy_gives_the_layers_of_a_full_copy() {
    let test = "incremental_copy_gives_the_layers_of_a_full_copy";
    let Some(store) = store(test) else { return };
    let ctx = TempDir::new("incremental-ctx");
    let mut files: Vec<(String, String)> = Vec::new();
    for d in 0..4 {
        for f in 0..25 {
            files.push((format!("src/d{d}/sub/f{f}.txt"), format!("file {d}/{f}\n").repeat(f + 1)));
        }
    }
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, c)| (n.as_str(), c.as_str())).collect();
    write(ctx.path(), &refs);
    write(
        ctx.path(),
        &[
            ("src/top.txt", "top\n"),
            ("src/gone/a.txt", "this directory goes away\n"),
            (
                "Dockerfile",
                // `linked`: a RUN is built on the COPY, so its result stays
                // in the store and the next one hard-links to it. The final
                // stage's COPY is its last step: its result is taken over.
                "FROM debian:bookworm AS linked\nCOPY src /src\nRUN cat /src/top.txt > /seen\n\
                 FROM debian:bookworm\nCOPY src /data/\n",
            ),
        ],
    );
    std::os::unix::fs::symlink("d0/sub/f1.txt", ctx.join("src/link")).unwrap();
    let env = [("SOURCE_DATE_EPOCH", "1700000000")];
    let build = |store: &TestStore, target: &[&str], extra: &[&str]| {
        let mut args = vec!["-t", "inc", "--progress", "plain"];
        args.extend_from_slice(target);
        args.extend_from_slice(extra);
        let out = store.build_env(ctx.path(), &args, &env).assert_success();
        (store.inspect("inc"), out.stderr)
    };
    let targets: [&[&str]; 2] = [&[], &["--target", "linked"]];
    for target in targets {
        build(&store, target, &[]);
    }

    let set_mode = |p: &str, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(ctx.join(p), fs::Permissions::from_mode(mode)).unwrap();
    };
    let changes: [&dyn Fn(); 3] = [
        &|| {
            fs::write(ctx.join("src/d1/sub/f3.txt"), "changed content\n").unwrap();
            fs::remove_file(ctx.join("src/d2/sub/f4.txt")).unwrap();
            fs::remove_dir_all(ctx.join("src/gone")).unwrap();
            write(ctx.path(), &[("src/new/dir/n.txt", "new\n")]);
            set_mode("src/d3/sub/f5.txt", 0o755);
            // Only its mtime moves (and content elsewhere changes).
            let f = fs::File::options().write(true).open(ctx.join("src/d0/sub/f6.txt")).unwrap();
            f.set_modified(std::time::SystemTime::now() + Duration::from_secs(60)).unwrap();
        },
        &|| {
            fs::write(ctx.join("src/top.txt"), "top, second version\n").unwrap();
            fs::remove_file(ctx.join("src/link")).unwrap();
            std::os::unix::fs::symlink("d1/sub/f2.txt", ctx.join("src/link")).unwrap();
            set_mode("src/d3", 0o700);
        },
        &|| {
            // A file becomes a directory and a directory a file.
            fs::remove_file(ctx.join("src/d0/sub/f7.txt")).unwrap();
            write(ctx.path(), &[("src/d0/sub/f7.txt/inner.txt", "now a directory\n")]);
            fs::remove_dir_all(ctx.join("src/new")).unwrap();
            fs::write(ctx.join("src/new"), "now a file\n").unwrap();
        },
    ];
    for (round, change) in changes.iter().enumerate() {
        change();
        for target in targets {
            let (incremental, log) = build(&store, target, &[]);
            let how = if target.is_empty() { "(taken over)" } else { "(hard-linked)" };
            assert!(
                log.lines().any(|l| l.contains("incremental: ") && l.ends_with(how)),
                "round {round} {target:?}: the COPY should start from its previous result {how}:\n{log}"
            );
            let Some(fresh) = TestStore::with_base_images(test) else { return };
            let (full, _) = build(&fresh, target, &["--no-cache"]);
            assert_eq!(incremental["Id"], full["Id"], "round {round} {target:?}: image IDs (diff_ids) differ");
            assert_eq!(incremental["RepoDigests"], full["RepoDigests"], "round {round} {target:?}: manifests differ");
            // `--no-cache` in the same store copies in full and agrees too.
            let (again, log) = build(&store, target, &["--no-cache"]);
            assert!(!log.contains("incremental: "), "--no-cache must copy in full:\n{log}");
            assert_eq!(again["Id"], full["Id"], "round {round} {target:?}");
        }
    }
    let out = store.distill(&["fsck"]).assert_success();
    assert!(out.stdout.contains(" 0 corrupt, 0 dangling"), "{out}");
    // The files are really there, with the last content.
    build(&store, &[], &[]);
    let out = store.distill_ok(&["run", "inc", "cat", "/data/top.txt", "/data/new", "/data/d0/sub/f7.txt/inner.txt"]);
    assert_eq!(out, "top, second version\nnow a file\nnow a directory\n");
}
