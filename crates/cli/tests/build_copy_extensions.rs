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

/// A tiny HTTP/1.1 server on 127.0.0.1 serving fixed files (path → body),
/// each with a fixed `Last-Modified`; anything else is a 404. It answers
/// until the test process ends.
fn serve(files: Vec<(&'static str, Vec<u8>)>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                match reader.read_line(&mut header) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if header == "\r\n" || header == "\n" => break,
                    Ok(_) => {}
                }
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let _ = match files.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => conn
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .and_then(|()| conn.write_all(body)),
                None => conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
            };
        }
    });
    format!("http://{addr}")
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", distill_image::digest::Digest::of(bytes).hex())
}

#[test]
fn add_from_http_urls_like_buildkit() {
    use std::os::unix::fs::MetadataExt;
    let Some(store) = store("add_from_http_urls_like_buildkit") else { return };
    // A tar archive, to see that remote archives stay archives unless --unpack=true.
    let tar_src = TempDir::new("tarsrc");
    write(tar_src.path(), &[("inner.txt", "inside the tar")]);
    let tar_path = tar_src.join("a.tar");
    build_support::run_ok(
        std::process::Command::new("tar").arg("-cf").arg(&tar_path).arg("-C").arg(tar_src.path()).arg("inner.txt"),
    );
    let tool = b"hello from http\n".to_vec();
    let base = serve(vec![("/files/tool.txt", tool.clone()), ("/a.tar", fs::read(&tar_path).unwrap())]);

    let ctx = TempDir::new("ctx");
    let good = sha256(&tool);
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM scratch\n\
                 ADD {base}/files/tool.txt /dl/\n\
                 ADD --checksum={good} --chmod=644 --chown=1000:1001 {base}/files/tool.txt /named.txt\n\
                 ADD {base}/a.tar /tar-kept/\n\
                 ADD --unpack=true {base}/a.tar /tar-unpacked/\n"
            ),
        )],
    );
    store.build_ok(ctx.path(), &["-t", "urls"]);
    let root = rootfs(&store, "urls");
    let dl = fs::metadata(root.join("dl/tool.txt")).unwrap();
    assert_eq!(fs::read(root.join("dl/tool.txt")).unwrap(), tool);
    assert_eq!(dl.mode() & 0o7777, 0o600, "URL downloads are 0600");
    assert_eq!(dl.mtime(), 784_111_777, "mtime from Last-Modified");
    assert_eq!((dl.uid(), dl.gid()), (0, 0));
    let named = fs::metadata(root.join("named.txt")).unwrap();
    assert_eq!(fs::read(root.join("named.txt")).unwrap(), tool);
    assert_eq!(named.mode() & 0o7777, 0o644);
    assert_eq!((named.uid(), named.gid()), (1000, 1001));
    assert!(fs::metadata(root.join("tar-kept/a.tar")).unwrap().is_file(), "remote archives are not extracted");
    assert_eq!(fs::read_to_string(root.join("tar-unpacked/inner.txt")).unwrap(), "inside the tar");

    // The same build again: every step from the cache (the key is the URL
    // with the checksum, or the downloaded content's digest).
    let out = store.build_ok(ctx.path(), &["-t", "urls2", "--progress", "plain"]);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(text.lines().filter(|l| l.ends_with("CACHED")).count(), 4, "{text}");

    // A wrong checksum fails the step, naming both digests.
    let bad = format!("sha256:{}", "0".repeat(64));
    let ctx = TempDir::new("ctx-bad");
    write(ctx.path(), &[("Dockerfile", &format!("FROM scratch\nADD --checksum={bad} {base}/files/tool.txt /x\n"))]);
    let out = store.build(ctx.path(), &["-t", "bad"]).assert_failure();
    assert!(out.stderr.contains("checksum mismatch"), "{}", out.stderr);
    assert!(out.stderr.contains(&bad) && out.stderr.contains(&good), "{}", out.stderr);

    // A missing file is a clear error too.
    write(ctx.path(), &[("Dockerfile", &format!("FROM scratch\nADD {base}/missing /x\n"))]);
    let out = store.build(ctx.path(), &["-t", "bad"]).assert_failure();
    assert!(out.stderr.contains("failed to download") && out.stderr.contains("404"), "{}", out.stderr);
}

#[test]
fn syntax_directive_is_accepted_or_warned_about() {
    let Some(store) = store("syntax_directive_is_accepted_or_warned_about") else { return };
    let ctx = TempDir::new("ctx");
    write(ctx.path(), &[("f", "x"), ("Dockerfile", "# syntax=docker/dockerfile:1.7-labs\nFROM scratch\nCOPY f /f\n")]);
    let out = store.build_ok(ctx.path(), &["-t", "official"]);
    assert!(!out.stderr.contains("syntax="), "{}", out.stderr);
    write(ctx.path(), &[("Dockerfile", "# syntax=example.com/my/frontend:2\nFROM scratch\nCOPY f /f\n")]);
    let out = store.build_ok(ctx.path(), &["-t", "other"]);
    assert!(
        out.stderr.contains("WARNING: # syntax=example.com/my/frontend:2: distill cannot run BuildKit frontend images"),
        "{}",
        out.stderr
    );
}
