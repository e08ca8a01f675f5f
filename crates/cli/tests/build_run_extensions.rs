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
    build_support::write_files(dir, files)
}

fn rootfs(store: &TestStore, image: &str) -> TempDir {
    store.rootfs(image)
}

#[test]
fn cache_mount_persists_across_builds_and_stays_out_of_the_image() {
    let Some(store) = store("cache_mount_persists_across_builds_and_stays_out_of_the_image") else { return };
    let ctx = TempDir::new("ctx");
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM debian:bookworm AS seed\nRUN mkdir /s && echo seeded > /s/f\n\
             FROM debian:bookworm\nARG ROUND\nRUN echo $ROUND > /round\n\
             RUN --mount=type=cache,target=/var/cache/app,sharing=locked \
             sh -c 'ls /var/cache/app > /seen; touch /var/cache/app/from-$(cat /round)'\n\
             RUN --mount=type=cache,id=seeded,target=/c,from=seed,source=/s \
             sh -c 'ls /c > /seeded; touch /c/from-$(cat /round)'\n",
        )],
    );
    store.build_ok(ctx.path(), &["-t", "c1", "--build-arg", "ROUND=1"]);
    let root = rootfs(&store, "c1");
    assert_eq!(fs::read_to_string(root.join("seen")).unwrap(), "");
    // A cache with from= starts as a copy of the stage's directory.
    assert_eq!(fs::read_to_string(root.join("seeded")).unwrap(), "f\n");
    // A changed earlier step: the RUN runs again and finds what round 1 left.
    store.build_ok(ctx.path(), &["-t", "c2", "--build-arg", "ROUND=2"]);
    let root = rootfs(&store, "c2");
    assert_eq!(fs::read_to_string(root.join("seen")).unwrap(), "from-1\n");
    assert_eq!(fs::read_to_string(root.join("seeded")).unwrap(), "f\nfrom-1\n");
    let dir = root.join("var/cache/app");
    assert!(!dir.exists() || fs::read_dir(&dir).unwrap().next().is_none(), "the cache's content is not in the image");
    assert!(!root.join("c/f").exists() && !root.join("s").exists(), "the seed stage is not in the image");
    // `du` reports them, `prune --cache` empties them.
    let du = store.distill_ok(&["du"]);
    let line = du.lines().find(|l| l.starts_with("cache mounts")).unwrap_or_default().to_string();
    assert!(line.split_whitespace().nth(2) == Some("2"), "{du}");
    let pruned = store.distill_ok(&["prune", "--cache"]);
    assert!(pruned.contains("Removed 2 cache mounts"), "{pruned}");
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

/// Asks an SSH agent for its identities (SSH2_AGENTC_REQUEST_IDENTITIES) and
/// prints the socket, its mode and owner, and the keys' comments.
const AGENT_PY: &str = r#"import os, socket, struct, sys
path = sys.argv[1] if len(sys.argv) > 1 else os.environ["SSH_AUTH_SOCK"]
st = os.stat(path)
s = socket.socket(socket.AF_UNIX)
s.connect(path)
s.sendall(struct.pack(">IB", 1, 11))
def read(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        assert c, "agent closed the connection"
        b += c
    return b
(n,) = struct.unpack(">I", read(4))
body = read(n)
assert body[0] == 12, body[0]
(count,) = struct.unpack(">I", body[1:5])
off, names = 5, []
for _ in range(count):
    (l,) = struct.unpack(">I", body[off:off + 4]); off += 4 + l
    (l,) = struct.unpack(">I", body[off:off + 4]); names.append(body[off + 4:off + 4 + l].decode()); off += 4 + l
print(path, oct(st.st_mode & 0o777), st.st_uid, ",".join(sorted(names)))
"#;

#[test]
fn ssh_mounts_reach_the_agent_and_leave_nothing_behind() {
    let test = "ssh_mounts_reach_the_agent_and_leave_nothing_behind";
    if !build_support::require_tools(test, &["ssh-agent", "ssh-add", "ssh-keygen"]) {
        return;
    }
    let Some(store) = store(test) else { return };
    let keys = store.scratch("keys");
    let keygen = |name: &str, comment: &str| {
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(keys.join(name))
            .status()
            .unwrap();
        assert!(status.success());
    };
    keygen("agent_key", "host-agent-key");
    keygen("file_key", "file-key");
    // A running agent, as a user would have one ($SSH_AUTH_SOCK).
    let sock = keys.join("agent.sock");
    let mut agent = std::process::Command::new("ssh-agent").arg("-D").arg("-a").arg(&sock).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(std::time::Instant::now() < deadline, "ssh-agent did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let added = std::process::Command::new("ssh-add").arg(keys.join("agent_key")).env("SSH_AUTH_SOCK", &sock).output();
    let ctx = TempDir::new("ctx");
    write(
        ctx.path(),
        &[
            ("agent.py", AGENT_PY),
            (
                "Dockerfile",
                "FROM debian-python:bookworm\nCOPY agent.py /agent.py\n\
                 RUN --mount=type=ssh python3 /agent.py > /default.txt\n\
                 RUN --mount=type=ssh,id=keys,target=/tmp/keys.sock,mode=0640,uid=1000 python3 /agent.py /tmp/keys.sock > /keys.txt\n\
                 RUN --mount=type=ssh,id=absent sh -c 'test ! -e /run/buildkit/ssh_agent.0 && echo skipped > /absent.txt'\n",
            ),
        ],
    );
    let file_key = format!("keys={}", keys.join("file_key").display());
    let out = store.build_env(
        ctx.path(),
        &["-t", "ssh", "--ssh", "default", "--ssh", &file_key],
        &[("SSH_AUTH_SOCK", sock.to_str().unwrap())],
    );
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(added.unwrap().status.success());
    out.assert_success();
    let root = rootfs(&store, "ssh");
    assert_eq!(
        fs::read_to_string(root.join("default.txt")).unwrap(),
        "/run/buildkit/ssh_agent.0 0o600 0 host-agent-key\n"
    );
    assert_eq!(fs::read_to_string(root.join("keys.txt")).unwrap(), "/tmp/keys.sock 0o640 1000 file-key\n");
    assert_eq!(fs::read_to_string(root.join("absent.txt")).unwrap(), "skipped\n");
    assert!(!root.join("run/buildkit").exists() && !root.join("tmp/keys.sock").exists(), "no socket in the image");
    // A required agent that is not given fails the step, naming it.
    write(ctx.path(), &[("Dockerfile", "FROM debian:bookworm\nRUN --mount=type=ssh,id=deploy,required true\n")]);
    let out = store.build(ctx.path(), &["-t", "ssh2"]).assert_failure();
    assert!(out.stderr.contains("\"deploy\" is required"), "{out}");
}
