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
    build_support::write_files(dir, files)
}

fn rootfs(store: &TestStore, image: &str) -> TempDir {
    store.rootfs(image)
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

/// The lines of a plain-progress build that name a step answered from the cache.
fn cached_steps(out: &build_support::CmdOutput) -> Vec<String> {
    let text = format!("{}{}", out.stdout, out.stderr);
    let lines: Vec<&str> = text.lines().collect();
    let mut cached = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(id) = line.strip_suffix(" CACHED") {
            // The step's title is the line `#N [stage i/n] ...` above.
            if let Some(title) = lines[..i].iter().rev().find(|l| l.starts_with(&format!("{id} ["))) {
                cached.push(title.trim_start_matches(id).trim().to_string());
            }
        }
    }
    cached
}

#[test]
fn copy_link_layers_are_independent_of_the_previous_state() {
    let test = "copy_link_layers_are_independent_of_the_previous_state";
    if !build_support::require_build(test) {
        return;
    }
    let Some(store) = TestStore::with_base_images(test) else { return };
    let ctx = TempDir::new("ctx");
    // The last RUN checks the result inside the build (cheaper than
    // exporting a Debian root file system): contents, owners and modes,
    // and that the destination was not resolved through the previous
    // state: /lnk, a symlink to /tmp before, is a directory of the linked
    // layer, and nothing went to /tmp.
    let dockerfile = |round: u32| {
        format!(
            "FROM debian:bookworm\n\
             RUN echo {round} > /a && ln -s /tmp /lnk\n\
             COPY --link f /f\n\
             COPY --link --chown=1000:1001 --chmod=640 g /lnk/owned/\n\
             RUN test \"$(cat /f /a /lnk/owned/g)\" = \"$(printf 'linked\\n{round}\\ng{round}')\" \
                 && test -d /lnk && ! test -L /lnk && ! test -e /tmp/owned \
                 && test \"$(stat -c '%u:%g %a' /f /lnk/owned /lnk/owned/g)\" = \
                         \"$(printf '0:0 644\\n1000:1001 755\\n1000:1001 640')\"\n"
        )
    };
    write(ctx.path(), &[("f", "linked\n"), ("g", "g1\n"), ("Dockerfile", &dockerfile(1))]);
    store.build_ok(ctx.path(), &["-t", "link1"]);
    // The base changes (the first RUN), and so does g.
    write(ctx.path(), &[("g", "g2\n"), ("Dockerfile", &dockerfile(2))]);
    let out = store.build_ok(ctx.path(), &["-t", "link2", "--progress", "plain"]);

    // The --link step of the unchanged f comes from the cache with the very
    // same layer; g's step (its source changed) and the RUNs run again.
    let cached = cached_steps(&out);
    assert_eq!(cached.len(), 1, "{cached:?}\n{out}");
    assert!(cached[0].ends_with("COPY --link f /f"), "{cached:?}");
    let base = store.image_config("debian:bookworm")["rootfs"]["diff_ids"].as_array().unwrap().len();
    let layers = |image: &str| store.image_config(image)["rootfs"]["diff_ids"].as_array().unwrap().clone();
    let (one, two) = (layers("link1"), layers("link2"));
    assert_eq!((one.len(), two.len()), (base + 3, base + 3), "the checking RUN changes nothing");
    assert_ne!(one[base], two[base], "the changed RUN");
    assert_eq!(one[base + 1], two[base + 1], "the linked layer is reused");
    assert_ne!(one[base + 2], two[base + 2], "a changed source invalidates its linked step");
}

/// `git` with a fixed identity and no user configuration.
fn git(dir: &Path, args: &[&str]) -> String {
    let mut cmd = std::process::Command::new("git");
    cmd.arg("-C").arg(dir).args(args);
    cmd.env("GIT_CONFIG_GLOBAL", "/dev/null").env("GIT_CONFIG_NOSYSTEM", "1");
    for (k, v) in [("GIT_AUTHOR_NAME", "t"), ("GIT_COMMITTER_NAME", "t")] {
        cmd.env(k, v);
    }
    for k in ["GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"] {
        cmd.env(k, "t@example.com");
    }
    build_support::run_ok(&mut cmd).trim().to_string()
}

#[test]
fn add_from_git_repositories_like_buildkit() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let test = "add_from_git_repositories_like_buildkit";
    let Some(store) = store(test) else { return };
    if !build_support::require_tools(test, &["git"]) {
        return;
    }
    // A bare repository with two commits on main and an annotated tag on the first.
    let repos = TempDir::new("git");
    let bare = repos.join("repo.git");
    let work = repos.join("work");
    fs::create_dir_all(&work).unwrap();
    git(repos.path(), &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()]);
    git(&work, &["init", "-q", "-b", "main"]);
    write(&work, &[("sub/a.txt", "one\n"), ("sub/run.sh", "#!/bin/sh\n"), ("top.txt", "top\n")]);
    fs::set_permissions(work.join("sub/run.sh"), fs::Permissions::from_mode(0o700)).unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "one"]);
    let first = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["tag", "-a", "v1", "-m", "v1"]);
    write(&work, &[("sub/a.txt", "two\n")]);
    git(&work, &["commit", "-q", "-am", "two"]);
    git(&work, &["push", "-q", bare.to_str().unwrap(), "main", "v1"]);
    let url = format!("file://{}", bare.display());

    let ctx = TempDir::new("ctx");
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM scratch\n\
                 ADD {url}#v1:sub /at-tag\n\
                 ADD {url}#main /head/\n\
                 ADD --keep-git-dir=true {url} /kept\n\
                 ADD --link --checksum={} {url}#v1 /checked\n",
                &first[..10]
            ),
        )],
    );
    store.build_ok(ctx.path(), &["-t", "g1"]);
    let root = rootfs(&store, "g1");
    assert_eq!(tree(&root.join("at-tag")), ["a.txt", "run.sh"], "the subdir at the tag, no .git");
    assert_eq!(fs::read_to_string(root.join("at-tag/a.txt")).unwrap(), "one\n");
    let mode = |p: &str| fs::metadata(root.join(p)).unwrap().mode() & 0o7777;
    assert_eq!((mode("at-tag/a.txt"), mode("at-tag/run.sh"), mode("head/sub")), (0o644, 0o755, 0o755));
    assert_eq!(fs::metadata(root.join("at-tag/a.txt")).unwrap().uid(), 0);
    assert_eq!(tree(&root.join("head")), ["sub/", "sub/a.txt", "sub/run.sh", "top.txt"]);
    assert_eq!(fs::read_to_string(root.join("head/sub/a.txt")).unwrap(), "two\n");
    assert_eq!(fs::read_to_string(root.join("kept/.git/HEAD")).unwrap(), "ref: refs/heads/main\n");
    assert_eq!(git(&root.join("kept"), &["rev-parse", "HEAD"]), git(&work, &["rev-parse", "HEAD"]));
    assert_eq!(fs::read_to_string(root.join("checked/sub/a.txt")).unwrap(), "one\n");

    // Unchanged: every step cached (the refs are resolved, nothing fetched).
    let out = store.build_ok(ctx.path(), &["-t", "g2", "--progress", "plain"]);
    assert_eq!(cached_steps(&out).len(), 4, "{out}");
    // A new commit on main: the steps reading main run again, the tag's do
    // not (the last one is linked, so the steps before it do not matter).
    write(&work, &[("sub/a.txt", "three\n")]);
    git(&work, &["commit", "-q", "-am", "three"]);
    git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    let out = store.build_ok(ctx.path(), &["-t", "g3", "--progress", "plain"]);
    let cached = cached_steps(&out);
    assert_eq!(cached.len(), 2, "{cached:?}");
    assert!(cached.iter().all(|c| c.contains("#v1")), "{cached:?}");
    assert_eq!(fs::read_to_string(rootfs(&store, "g3").join("head/sub/a.txt")).unwrap(), "three\n");

    // A wrong commit checksum and a missing ref fail clearly.
    write(ctx.path(), &[("Dockerfile", &format!("FROM scratch\nADD --checksum=0000000 {url}#v1 /x\n"))]);
    let out = store.build(ctx.path(), &[]).assert_failure();
    assert!(out.stderr.contains("checksum mismatch") && out.stderr.contains(&first), "{}", out.stderr);
    write(ctx.path(), &[("Dockerfile", &format!("FROM scratch\nADD {url}#nope /x\n"))]);
    let out = store.build(ctx.path(), &[]).assert_failure();
    assert!(out.stderr.contains("ref \"nope\" not found"), "{}", out.stderr);
}
