//! BuildKit's COPY/ADD extensions end to end (real store, overlayfs,
//! exported root filesystems): `--exclude`, `--parents` with `/./` pivots
//! and `**`, and ADD from http URLs served by a server inside the test.

mod build_support;

use std::fs;
use std::path::Path;

use build_support::{TempDir, TestStore};

fn store(test: &str) -> Option<TestStore> {
    if !build_support::require_build(test) {
        return None;
    }
    Some(TestStore::empty())
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

/// Every path below `root`, relative, sorted (directories with a `/`).
fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &e.path(), out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out.sort();
    out
}

const SOURCES: &[(&str, &str)] = &[
    ("app/main.rs", "fn main() {}"),
    ("app/notes.txt", "notes"),
    ("app/sub/deep.txt", "deep"),
    ("app/sub/keep.rs", "keep"),
    ("app/target/big.bin", "big"),
    ("app/target/keep.me", "re-included"),
    ("home1.md", "h1"),
    ("home2.txt", "h2"),
    ("src/a/x.txt", "ax"),
    ("src/a/b/y.txt", "aby"),
    ("src/a/b/z.rs", "abz"),
    ("src/c/w.txt", "cw"),
];

#[test]
fn copy_exclude_and_parents_select_like_buildkit() {
    let Some(store) = store("copy_exclude_and_parents_select_like_buildkit") else { return };
    let ctx = TempDir::new("ctx");
    write(ctx.path(), SOURCES);
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM scratch\n\
             COPY --exclude=*.txt --exclude=target --exclude=!target/keep.me app /ex/\n\
             COPY --exclude=**/*.txt app /ex-deep/\n\
             COPY --exclude=*.txt home* /homes/\n\
             ADD --exclude=sub app /add/\n\
             COPY --parents src/a/b/y.txt src/c/w.txt /par/\n\
             COPY --parents src/./a/**/*.txt /pivot/\n\
             COPY --parents --exclude=src/a/b src/**/*.txt /both/\n",
        )],
    );
    store.build_ok(ctx.path(), &["-t", "sel"]);
    let root = rootfs(&store, "sel");
    assert_eq!(
        tree(&root.join("ex")),
        ["main.rs", "sub/", "sub/deep.txt", "sub/keep.rs", "target/", "target/keep.me"],
        "*.txt excludes at the top only; an excluded dir comes back for its ! exception"
    );
    assert_eq!(
        tree(&root.join("ex-deep")),
        ["main.rs", "sub/", "sub/keep.rs", "target/", "target/big.bin", "target/keep.me"]
    );
    assert_eq!(tree(&root.join("homes")), ["home1.md"], "a wildcard's matches are excluded too");
    assert_eq!(tree(&root.join("add")), ["main.rs", "notes.txt", "target/", "target/big.bin", "target/keep.me"]);
    assert_eq!(tree(&root.join("par")), ["src/", "src/a/", "src/a/b/", "src/a/b/y.txt", "src/c/", "src/c/w.txt"]);
    assert_eq!(tree(&root.join("pivot")), ["a/", "a/b/", "a/b/y.txt", "a/x.txt"], "/./ keeps what follows it");
    assert_eq!(
        tree(&root.join("both")),
        ["src/", "src/a/", "src/a/x.txt", "src/c/", "src/c/w.txt"],
        "excludes are relative to the directory copied from (the context root)"
    );
    assert_eq!(fs::read_to_string(root.join("par/src/a/b/y.txt")).unwrap(), "aby");

    // Changes to files that every step leaves out keep every step cached.
    fs::write(ctx.join("src/a/b/z.rs"), "changed").unwrap();
    fs::write(ctx.join("home2.txt"), "changed").unwrap();
    let out = store.build_ok(ctx.path(), &["-t", "sel2", "--progress", "plain"]);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(text.lines().filter(|l| l.ends_with("CACHED")).count(), 7, "{text}");
    // ...and a change to a copied one does not.
    fs::write(ctx.join("src/c/w.txt"), "changed").unwrap();
    store.build_ok(ctx.path(), &["-t", "sel3"]);
    assert_eq!(fs::read_to_string(rootfs(&store, "sel3").join("par/src/c/w.txt")).unwrap(), "changed");
}
