//! `distill check` and `distill plan` end to end, through the real binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

fn distill(args: &[&str], dir: &Path, stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_distill"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs distill");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("distill finishes")
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "distill-cli-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn context(dockerfile: &str) -> TempDir {
    let dir = TempDir::new();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    dir
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_reports_rule_file_line_and_source() {
    let dir = context("FROM alpine as build\nMAINTAINER me\nCMD [\"true\"]\n");
    let out = distill(&["check"], dir.path(), None);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "warnings alone do not fail: {stdout}");
    assert!(
        stdout.contains("WARNING: FromAsCasing - https://docs.docker.com/go/dockerfile/rule/from-as-casing/"),
        "{stdout}"
    );
    assert!(stdout.contains("Dockerfile:1: 'as' and 'FROM' keywords' casing do not match"), "{stdout}");
    assert!(stdout.contains("Dockerfile:2: Maintainer instruction is deprecated"), "{stdout}");
    assert!(stdout.contains("   2 | >>> MAINTAINER me"), "{stdout}");
    assert!(stdout.contains("Check complete, 2 warnings have been found!"), "{stdout}");
}

#[test]
fn check_fails_when_the_directive_makes_checks_errors() {
    let dir = context("# check=error=true\nFROM alpine\nMAINTAINER me\n");
    let out = distill(&["check"], dir.path(), None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("ERROR: MaintainerDeprecated"));
    let dir = context("# check=error=true\nFROM alpine\nLABEL a=b\n");
    assert!(distill(&["check"], dir.path(), None).status.success());
}

#[test]
fn check_json_format() {
    let dir = context("FROM alpine\nENV A b\n");
    let out = distill(&["check", "--format", "json"], dir.path(), None);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["warnings"][0]["rule"], "LegacyKeyValueFormat");
    assert_eq!(v["warnings"][0]["line"], 2);
    assert_eq!(v["warnings"][0]["file"], "Dockerfile");
}

#[test]
fn parse_errors_name_file_line_and_show_the_source() {
    let dir = context("FROM alpine\nRUN ok\nCOPY --chmod=99x a b\n");
    let out = distill(&["check"], dir.path(), None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("Dockerfile:3: invalid --chmod value \"99x\""), "{stderr}");
    assert!(stderr.contains("   3 | >>> COPY --chmod=99x a b"), "{stderr}");
    let out = distill(&["plan", "-f", "-"], dir.path(), Some("FROM a\nFOMR b\n"));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Dockerfile:2: unknown instruction: FOMR (did you mean FROM?)"), "{stderr}");
}

#[test]
fn plan_json_shows_stages_dependencies_and_pruning() {
    let dir = context("FROM scratch AS a\nFROM scratch AS unused\nFROM scratch\nARG V=1\nCOPY --from=a /x /y$V\n");
    let out = distill(&["plan", "--format", "json"], dir.path(), None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["target"], 2);
    assert_eq!(v["stages"][1]["pruned"], true);
    assert_eq!(v["stages"][0]["pruned"], false);
    assert_eq!(v["stages"][2]["dependencies"], serde_json::json!([0]));
    assert_eq!(v["stages"][2]["instructions"][1]["text"], "COPY --from=a /x /y1");
}

#[test]
fn plan_text_with_target_and_build_args() {
    let dir = context("ARG TAG=1\nFROM debian:$TAG AS base\nFROM base AS app\nRUN make\nFROM scratch\n");
    let out = distill(&["plan", "--target", "APP", "--build-arg", "TAG=2"], dir.path(), None);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("[0] base FROM image debian:2"), "{stdout}");
    assert!(stdout.contains("build order: base -> app"), "{stdout}");
    assert!(stdout.contains("[2] stage-2 FROM scratch (pruned: not reached by the target)"), "{stdout}");
    let out = distill(&["plan", "--target", "nope"], dir.path(), None);
    assert!(text(&out.stderr).contains("target stage \"nope\" could not be found"));
}

#[test]
fn missing_dockerfile_is_a_clear_error() {
    let dir = TempDir::new();
    let out = distill(&["check"], dir.path(), None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("reading Dockerfile"), "{}", text(&out.stderr));
}
