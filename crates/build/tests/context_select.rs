//! Resolving COPY/ADD sources in a real context directory.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use distill_build::context::{Context, ContextError, EntryKind, IgnoreMatcher, SelectOptions};

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

/// A context with files, dirs and an ignore file:
/// a.txt b.txt c.log [x] src/{main.rs,lib.rs,mod/inner.rs} docs/{guide.md,api/x.md}
/// build/{out.bin,keep.txt,sub/deep.txt} secret/{key,pub/id.pub}
fn fixture(ignore: &str) -> (tempfile::TempDir, Context) {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    for f in [
        "a.txt",
        "b.txt",
        "c.log",
        "[x]",
        "src/main.rs",
        "src/lib.rs",
        "src/mod/inner.rs",
        "docs/guide.md",
        "docs/api/x.md",
        "build/out.bin",
        "build/keep.txt",
        "build/sub/deep.txt",
        "secret/key",
        "secret/pub/id.pub",
    ] {
        write(r, f, f);
    }
    let ctx = Context::open(r, IgnoreMatcher::parse(ignore).unwrap()).unwrap();
    (dir, ctx)
}

fn paths(entries: &[distill_build::context::Entry]) -> Vec<String> {
    entries.iter().map(|e| e.rel_path.display().to_string()).collect()
}

fn subs(entries: &[distill_build::context::Entry]) -> Vec<String> {
    entries.iter().map(|e| e.sub_path.display().to_string()).collect()
}

#[test]
fn single_file() {
    let (dir, ctx) = fixture("");
    let e = ctx.select("a.txt").unwrap();
    assert_eq!(paths(&e), ["a.txt"]);
    assert_eq!(e[0].kind, EntryKind::File);
    assert!(e[0].is_match_root());
    assert_eq!(e[0].size, 5);
    assert_eq!(e[0].disk_path, fs::canonicalize(dir.path()).unwrap().join("a.txt"));
}

#[test]
fn directory_yields_subtree_parent_first() {
    let (_dir, ctx) = fixture("");
    let e = ctx.select("src").unwrap();
    assert_eq!(paths(&e), ["src", "src/lib.rs", "src/main.rs", "src/mod", "src/mod/inner.rs"]);
    assert_eq!(subs(&e), ["", "lib.rs", "main.rs", "mod", "mod/inner.rs"]);
    assert_eq!(e[0].kind, EntryKind::Dir);
    // Trailing slashes and dots are cleaned away.
    assert_eq!(paths(&ctx.select("src/").unwrap()), paths(&e));
    assert_eq!(paths(&ctx.select("./src/.").unwrap()), paths(&e));
}

#[test]
fn root_is_the_whole_context() {
    let (_dir, ctx) = fixture("");
    let all = ctx.select(".").unwrap();
    assert_eq!(all[0].rel_path, PathBuf::from("."));
    assert_eq!(all[0].kind, EntryKind::Dir);
    assert_eq!(all.len(), 1 + 14 + 8, "root, 14 files, 8 directories");
    assert_eq!(paths(&ctx.select("/").unwrap()), paths(&all));
    assert_eq!(paths(&ctx.walk().unwrap()), paths(&all));
    // Parent first, path order.
    let mut sorted = all.clone();
    sorted.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    assert_eq!(paths(&sorted), paths(&all));
}

#[test]
fn globs_follow_filepath_match() {
    let (_dir, ctx) = fixture("");
    assert_eq!(paths(&ctx.select("*.txt").unwrap()), ["a.txt", "b.txt"]);
    assert_eq!(paths(&ctx.select("?.txt").unwrap()), ["a.txt", "b.txt"]);
    assert_eq!(paths(&ctx.select("[ab].txt").unwrap()), ["a.txt", "b.txt"]);
    assert_eq!(paths(&ctx.select("[^a].txt").unwrap()), ["b.txt"]);
    assert_eq!(paths(&ctx.select("src/*.rs").unwrap()), ["src/lib.rs", "src/main.rs"]);
    // `*` does not cross `/`.
    assert_eq!(paths(&ctx.select("s*/inner.rs").unwrap_or_default()), Vec::<String>::new());
    assert_eq!(paths(&ctx.select("src/*/inner.rs").unwrap()), ["src/mod/inner.rs"]);
    assert_eq!(paths(&ctx.select("*/*/x.md").unwrap()), ["docs/api/x.md"]);
    // A glob matching a directory yields the directory's subtree.
    assert_eq!(paths(&ctx.select("d*").unwrap()), ["docs", "docs/api", "docs/api/x.md", "docs/guide.md"]);
    // `[[]` is a literal bracket; so is `\[` in a component with wildcards.
    assert_eq!(paths(&ctx.select("[[]x]").unwrap()), ["[x]"]);
    assert_eq!(paths(&ctx.select("\\[x]*").unwrap()), ["[x]"]);
    // A component whose only special characters are escaped is no glob: like
    // BuildKit, it names a file with a backslash in it.
    assert!(matches!(ctx.select("\\[x]").unwrap_err(), ContextError::NotFound { .. }));
    // `[x]` is a class: it names a file `x`, not `[x]`.
    assert!(matches!(ctx.select("[x]").unwrap_err(), ContextError::NoMatch { .. }));
}

#[test]
fn dot_dot_and_absolute_are_clamped_to_the_root() {
    let (_dir, ctx) = fixture("");
    for p in ["../a.txt", "../../../a.txt", "/a.txt", "src/../a.txt", "/../src/../../a.txt"] {
        assert_eq!(paths(&ctx.select(p).unwrap()), ["a.txt"], "{p}");
    }
    assert_eq!(ctx.select("..").unwrap()[0].rel_path, PathBuf::from("."));
}

#[test]
fn missing_sources_are_clear_errors() {
    let (_dir, ctx) = fixture("");
    let err = ctx.select("nope.txt").unwrap_err();
    assert!(matches!(err, ContextError::NotFound { .. }), "{err}");
    assert_eq!(err.to_string(), "failed to compute cache key: \"/nope.txt\": not found");

    let err = ctx.select("a.txt/inside").unwrap_err();
    assert!(matches!(err, ContextError::NotFound { .. }), "{err}");

    let err = ctx.select("*.none").unwrap_err();
    assert!(matches!(err, ContextError::NoMatch { .. }), "{err}");
    assert!(err.to_string().contains("no source files were specified"), "{err}");
    assert!(err.to_string().contains("*.none"), "{err}");
    let lenient = SelectOptions { allow_empty_wildcard: true };
    assert!(ctx.select_with("*.none", &lenient).unwrap().is_empty());

    let err = ctx.select_with("missing/*.txt", &lenient).unwrap_err();
    assert!(matches!(err, ContextError::WildcardParentNotFound { .. }), "{err}");
    assert!(err.to_string().starts_with("lstat /missing: no such file or directory"), "{err}");

    let err = ctx.select("src/[").unwrap_err();
    assert!(matches!(err, ContextError::InvalidSourcePattern { .. }), "{err}");
}

#[test]
fn ignored_files_are_never_selected() {
    let (_dir, ctx) = fixture("*.log\nsecret\ndocs/api\n");
    let all = paths(&ctx.walk().unwrap());
    assert!(
        !all.iter().any(|p| p.ends_with(".log") || p.starts_with("secret") || p.starts_with("docs/api")),
        "{all:?}"
    );
    assert!(all.contains(&"docs/guide.md".to_string()));

    let err = ctx.select("c.log").unwrap_err();
    assert!(matches!(err, ContextError::Excluded { .. }), "{err}");
    assert!(err.to_string().contains("excluded by .dockerignore"), "{err}");
    let err = ctx.select("secret/pub/id.pub").unwrap_err();
    assert!(matches!(err, ContextError::Excluded { .. }), "{err}");
    assert!(matches!(ctx.select("*.log").unwrap_err(), ContextError::NoMatch { .. }));
    assert_eq!(paths(&ctx.select("*").unwrap()).iter().filter(|p| !p.contains('/')).count(), 6);
    assert_eq!(paths(&ctx.select("docs").unwrap()), ["docs", "docs/guide.md"]);
    let err = ctx.select_with("secret/*", &SelectOptions { allow_empty_wildcard: true }).unwrap_err();
    assert!(matches!(err, ContextError::WildcardParentNotFound { .. }), "{err}");
}

#[test]
fn exceptions_reinclude_files_under_excluded_directories() {
    let (_dir, ctx) = fixture("build\n!build/keep.txt\n!build/sub\n");
    let all = paths(&ctx.walk().unwrap());
    let build: Vec<&String> = all.iter().filter(|p| p.starts_with("build")).collect();
    assert_eq!(build, ["build", "build/keep.txt", "build/sub", "build/sub/deep.txt"]);
    assert_eq!(paths(&ctx.select("build").unwrap()), ["build", "build/keep.txt", "build/sub", "build/sub/deep.txt"]);
    assert_eq!(paths(&ctx.select("build/keep.txt").unwrap()), ["build/keep.txt"]);
    assert_eq!(paths(&ctx.select("build/*.txt").unwrap()), ["build/keep.txt"]);
    assert!(matches!(ctx.select("build/out.bin").unwrap_err(), ContextError::Excluded { .. }));

    // Glob exceptions reach into any directory.
    let (_dir, ctx) = fixture("*\n!**/*.rs\n");
    let all = paths(&ctx.walk().unwrap());
    assert_eq!(all, [".", "src", "src/lib.rs", "src/main.rs", "src/mod", "src/mod/inner.rs"]);

    // An excluded directory with nothing re-included inside is absent.
    let (_dir, ctx) = fixture("docs\n!docs/none.md\n");
    assert!(!paths(&ctx.walk().unwrap()).iter().any(|p| p.starts_with("docs")));
    assert!(matches!(ctx.select("docs").unwrap_err(), ContextError::Excluded { .. }));
}

#[test]
fn symlinks_are_followed_within_the_context() {
    let (dir, ctx) = fixture("secret\n");
    let r = dir.path();
    symlink("src", r.join("link")).unwrap();
    symlink("/src/main.rs", r.join("abs")).unwrap();
    symlink("../../../../a.txt", r.join("src/mod/up")).unwrap();
    symlink("secret/key", r.join("to-secret")).unwrap();
    symlink("nowhere", r.join("dangling")).unwrap();
    symlink("loop2", r.join("loop1")).unwrap();
    symlink("loop1", r.join("loop2")).unwrap();

    // Through a link in the middle of the path.
    let e = ctx.select("link/main.rs").unwrap();
    assert_eq!(paths(&e), ["link/main.rs"]);
    assert_eq!(e[0].kind, EntryKind::File);
    assert!(e[0].disk_path.ends_with("src/main.rs"));

    // A matched link is followed: the directory behind it, named as the link.
    let e = ctx.select("link").unwrap();
    assert_eq!(e[0].kind, EntryKind::Dir);
    assert_eq!(paths(&e)[..3], ["link", "link/lib.rs", "link/main.rs"]);

    // Absolute targets are rooted at the context; `..` cannot climb out.
    let e = ctx.select("abs").unwrap();
    assert_eq!(fs::read_to_string(&e[0].disk_path).unwrap(), "src/main.rs");
    let e = ctx.select("src/mod/up").unwrap();
    assert_eq!(fs::read_to_string(&e[0].disk_path).unwrap(), "a.txt");

    // Links inside a copied directory stay links.
    let e = ctx.select("src/mod").unwrap();
    let up = e.iter().find(|e| e.rel_path.ends_with("up")).unwrap();
    assert_eq!(up.kind, EntryKind::Symlink);
    assert_eq!(up.link_target.as_deref(), Some(Path::new("../../../../a.txt")));

    // Excluded targets, dangling links and loops.
    assert!(matches!(ctx.select("to-secret").unwrap_err(), ContextError::Excluded { .. }));
    assert!(matches!(ctx.select("dangling").unwrap_err(), ContextError::NotFound { .. }));
    assert!(matches!(ctx.select("loop1").unwrap_err(), ContextError::SymlinkLoop { .. }));
}

#[test]
fn entry_metadata() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, ctx) = fixture("");
    fs::set_permissions(dir.path().join("b.txt"), fs::Permissions::from_mode(0o4751)).unwrap();
    let e = &ctx.select("b.txt").unwrap()[0];
    assert_eq!(e.mode, 0o4751);
    let meta = fs::metadata(dir.path().join("b.txt")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((e.uid, e.gid, e.ino, e.dev), (meta.uid(), meta.gid(), meta.ino(), meta.dev()));
    assert!(e.mtime_ns > 0 && e.ctime_ns > 0);
}

/// Entries found while walking a directory (read with `statx` relative to
/// the open directory) carry the same metadata as the same paths resolved
/// one by one (`lstat`), for every kind of entry.
#[test]
fn walked_entries_match_resolved_ones() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, ctx) = fixture("");
    let r = dir.path();
    fs::set_permissions(r.join("src/lib.rs"), fs::Permissions::from_mode(0o2640)).unwrap();
    symlink("../a.txt", r.join("src/link")).unwrap();
    symlink("nowhere/at/all", r.join("src/dangling")).unwrap();
    let status = std::process::Command::new("mkfifo").arg(r.join("src/pipe")).status().unwrap();
    assert!(status.success());
    fs::hard_link(r.join("src/main.rs"), r.join("src/main-again.rs")).unwrap();

    let walked = ctx.select("src").unwrap();
    let kinds: Vec<(String, EntryKind)> = walked.iter().map(|e| (e.sub_path.display().to_string(), e.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("", EntryKind::Dir),
            ("dangling", EntryKind::Symlink),
            ("lib.rs", EntryKind::File),
            ("link", EntryKind::Symlink),
            ("main-again.rs", EntryKind::File),
            ("main.rs", EntryKind::File),
            ("mod", EntryKind::Dir),
            ("mod/inner.rs", EntryKind::File),
            ("pipe", EntryKind::Fifo),
        ]
        .map(|(p, k)| (p.to_string(), k))
    );
    use std::os::unix::fs::MetadataExt;
    for e in &walked {
        let m = fs::symlink_metadata(&e.disk_path).unwrap();
        let ns = |s: i64, n: i64| s * 1_000_000_000 + n;
        assert_eq!(e.disk_path, r.canonicalize().unwrap().join(&e.rel_path), "{e:?}");
        assert_eq!(
            (e.mode, e.uid, e.gid, e.size, e.nlink, e.dev, e.ino, e.rdev),
            (m.mode() & 0o7777, m.uid(), m.gid(), m.size(), m.nlink(), m.dev(), m.ino(), m.rdev()),
            "{e:?}"
        );
        assert_eq!((e.mtime_ns, e.ctime_ns), (ns(m.mtime(), m.mtime_nsec()), ns(m.ctime(), m.ctime_nsec())));
    }
    // A walked file is the same entry as the file resolved on its own.
    let mut one = ctx.entry("src/mod/inner.rs").unwrap();
    one.sub_path = PathBuf::from("mod/inner.rs");
    assert_eq!(walked.iter().find(|e| e.sub_path == one.sub_path), Some(&one));
    let link = walked.iter().find(|e| e.sub_path == Path::new("link")).unwrap();
    assert_eq!(link.link_target.as_deref(), Some(Path::new("../a.txt")));
    let lib = walked.iter().find(|e| e.sub_path == Path::new("lib.rs")).unwrap();
    assert_eq!((lib.mode, lib.size), (0o2640, "src/lib.rs".len() as u64));
    let main = walked.iter().find(|e| e.sub_path == Path::new("main.rs")).unwrap();
    assert_eq!(main.nlink, 2);
}

#[test]
fn context_root_must_be_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "f", "x");
    let err = Context::open(dir.path().join("f"), IgnoreMatcher::empty()).unwrap_err();
    assert!(matches!(err, ContextError::NotADirectory { .. }), "{err}");
    let err = Context::open(dir.path().join("missing"), IgnoreMatcher::empty()).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

/// Every path on disk below `root` (relative, `/`-separated), with whether it is a directory.
fn all_paths(root: &Path, rel: &str, out: &mut Vec<(String, bool)>) {
    let dir = if rel.is_empty() { root.to_path_buf() } else { root.join(rel) };
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        let child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        let is_dir = e.file_type().unwrap().is_dir();
        out.push((child.clone(), is_dir));
        if is_dir {
            all_paths(root, &child, out);
        }
    }
}

#[test]
fn walk_agrees_with_brute_force_matching() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    for a in ["a", "b", "node_modules", "vendor"] {
        for b in ["x", "keep", "y.go"] {
            for c in ["f.go", "f.txt", "keep.md"] {
                write(r, &format!("{a}/{b}/{c}"), c);
            }
            write(r, &format!("{a}/{b}.log"), "log");
        }
    }
    let rule_sets = [
        "",
        "node_modules\n",
        "*\n!**/*.go\n",
        "**/keep\n!a/keep/f.txt\n",
        "*/x\n!vendor/x/keep.md\nvendor/x/keep.md\n",
        "**/*.log\n**/f.*\n!b/**/f.go\n",
        "a\nb\n!a/*/keep.md\n!b/y.go\n",
        "[ab]/*\n![b]/x/*.txt\n",
    ];
    let mut on_disk = Vec::new();
    all_paths(r, "", &mut on_disk);
    for rules in rule_sets {
        let m = IgnoreMatcher::parse(rules).unwrap();
        let ctx = Context::open(r, m.clone()).unwrap();
        let got: Vec<String> = paths(&ctx.walk().unwrap()).into_iter().filter(|p| p != ".").collect();
        // A path is in the context when it is not excluded, or when it is a
        // directory holding something that is.
        let included: Vec<&(String, bool)> = on_disk.iter().filter(|(p, _)| !m.is_excluded(p, false)).collect();
        let mut want: Vec<String> = on_disk
            .iter()
            .filter(|(p, is_dir)| {
                !m.is_excluded(p, *is_dir) || (*is_dir && included.iter().any(|(q, _)| q.starts_with(&format!("{p}/"))))
            })
            .map(|(p, _)| p.clone())
            .collect();
        want.sort_by(|a, b| Path::new(a).cmp(Path::new(b)));
        assert_eq!(got, want, "rules {rules:?}");
    }
}
