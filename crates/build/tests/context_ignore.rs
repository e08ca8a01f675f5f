//! `.dockerignore` loading and matching through the public API.

use std::fs;
use std::path::Path;

use distill_build::context::{Context, ContextError, IgnoreMatcher, load_ignore};

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

#[test]
fn context_dockerignore_is_used_without_dockerfile() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".dockerignore", "*.log\n");
    let m = load_ignore(dir.path(), None).unwrap();
    assert!(m.is_excluded("x.log", false));
    assert!(!m.is_excluded("x.txt", false));
}

#[test]
fn dockerfile_specific_ignore_takes_precedence() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".dockerignore", "*.log\n");
    write(dir.path(), "build/app.Dockerfile", "FROM scratch\n");
    write(dir.path(), "build/app.Dockerfile.dockerignore", "*.txt\n");
    let df = dir.path().join("build/app.Dockerfile");
    let m = load_ignore(dir.path(), Some(&df)).unwrap();
    assert!(m.is_excluded("x.txt", false), "the Dockerfile's own ignore file applies");
    assert!(!m.is_excluded("x.log", false), "the context's .dockerignore is not merged in");
}

#[test]
fn falls_back_to_context_ignore_when_dockerfile_has_none() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".dockerignore", "*.log\n");
    write(dir.path(), "Dockerfile", "FROM scratch\n");
    let m = load_ignore(dir.path(), Some(&dir.path().join("Dockerfile"))).unwrap();
    assert!(m.is_excluded("x.log", false));
}

#[test]
fn no_ignore_file_excludes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let m = load_ignore(dir.path(), Some(&dir.path().join("Dockerfile"))).unwrap();
    assert!(m.is_empty());
    assert!(!m.is_excluded("anything", false));
}

#[test]
fn invalid_pattern_error_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".dockerignore", "# comment\nok\n\nbad[\n");
    let err = load_ignore(dir.path(), None).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ContextError::InvalidIgnorePattern { line: 4, .. }), "{msg}");
    assert!(msg.contains(".dockerignore:4"), "{msg}");
    assert!(msg.contains("bad["), "{msg}");
}

#[test]
fn open_with_dockerignore_applies_rules() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".dockerignore", "secret\n");
    write(dir.path(), "secret", "x");
    write(dir.path(), "public", "y");
    let ctx = Context::open_with_dockerignore(dir.path(), None).unwrap();
    let names: Vec<String> = ctx.walk().unwrap().iter().map(|e| e.rel_path.display().to_string()).collect();
    assert_eq!(names, [".", ".dockerignore", "public"]);
}

#[test]
fn docker_documentation_examples() {
    // https://docs.docker.com/build/concepts/context/#dockerignore-files
    let m = IgnoreMatcher::parse("# comment\n*/temp*\n*/*/temp*\ntemp?\n").unwrap();
    assert!(m.is_excluded("somedir/temporary.txt", false));
    assert!(m.is_excluded("somedir/temp", true));
    assert!(m.is_excluded("somedir/subdir/temporary.txt", false));
    assert!(m.is_excluded("tempa", false));
    assert!(m.is_excluded("tempb", false));
    assert!(!m.is_excluded("temp", false));
    assert!(!m.is_excluded("a/b/c/temp", false));

    let m = IgnoreMatcher::parse("*.md\n!README*.md\nREADME-secret.md\n").unwrap();
    assert!(m.is_excluded("CHANGES.md", false));
    assert!(!m.is_excluded("README.md", false));
    assert!(!m.is_excluded("README-public.md", false));
    assert!(m.is_excluded("README-secret.md", false));

    let m = IgnoreMatcher::parse("*.md\nREADME-secret.md\n!README*.md\n").unwrap();
    assert!(!m.is_excluded("README-secret.md", false), "the exception comes last and wins");
}

#[test]
fn double_star_cases() {
    let m = IgnoreMatcher::parse("**/*.go\n").unwrap();
    assert!(m.is_excluded("main.go", false));
    assert!(m.is_excluded("a/b/c/main.go", false));
    assert!(!m.is_excluded("a/b/c/main.rs", false));

    let m = IgnoreMatcher::parse("a/**/z\n").unwrap();
    assert!(m.is_excluded("a/z", false));
    assert!(m.is_excluded("a/b/z", false));
    assert!(m.is_excluded("a/b/c/z", false));
    assert!(m.is_excluded("a/b/c/z/inside", false));
    assert!(!m.is_excluded("b/a/z", false));

    let m = IgnoreMatcher::parse("**\n!keep/**\n").unwrap();
    assert!(m.is_excluded("anything", false));
    assert!(m.is_excluded("keep", true), "keep/** does not match keep itself");
    assert!(!m.is_excluded("keep/file", false));
    assert!(!m.is_excluded("keep/deep/file", false));
}

#[test]
fn exceptions_below_excluded_directories() {
    let m = IgnoreMatcher::parse("vendor\n!vendor/keep.txt\n").unwrap();
    assert!(m.is_excluded("vendor", true));
    assert!(!m.can_skip_dir("vendor"), "an exception reaches inside");
    assert!(!m.is_excluded("vendor/keep.txt", false));
    assert!(m.is_excluded("vendor/other.txt", false));

    let m = IgnoreMatcher::parse("vendor\n!docs/keep.txt\n").unwrap();
    assert!(m.can_skip_dir("vendor"));
    assert!(!m.can_skip_dir("docs"), "not excluded at all");

    let m = IgnoreMatcher::parse("*\n!*/keep\n").unwrap();
    assert!(!m.can_skip_dir("anydir"));
    assert!(!m.is_excluded("anydir/keep", false));
    assert!(m.is_excluded("anydir/other", false));
}

#[test]
fn escapes_and_classes() {
    let m = IgnoreMatcher::parse("a\\*b\nfile\\[1\\]\n[0-9]*.tmp\n").unwrap();
    assert!(m.is_excluded("a*b", false));
    assert!(!m.is_excluded("axb", false));
    assert!(m.is_excluded("file[1]", false));
    assert!(m.is_excluded("1abc.tmp", false));
    assert!(!m.is_excluded("abc.tmp", false));
}
