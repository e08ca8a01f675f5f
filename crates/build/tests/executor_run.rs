//! RUN steps end to end: real runc over real overlayfs (and over the naive
//! snapshotter) in a Debian bookworm minbase rootfs, as root. Without root or
//! runc these tests skip loudly, except under CI=true where they fail.

mod executor_support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use distill_build::executor::*;
use executor_support::*;

/// Runs `spec` over a fresh snapshot of the base, commits, and returns the
/// outcome, the output and the upper-dir summary.
fn step(
    rt: &Runtime,
    kind: SnapshotterKind,
    scratch: &Scratch,
    spec: impl FnOnce(&ActiveSnapshot) -> RunSpec,
) -> (RunOutcome, String, BTreeMap<String, String>) {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let snap = ActiveSnapshot::prepare(kind, &[base_lower()], &scratch.join(&format!("{}-{n}", kind.name()))).unwrap();
    let spec = spec(&snap);
    let mut out = Vec::new();
    let bundle = scratch.join(&format!("bundle-{n}"));
    let outcome = run(rt, &bundle, &spec, snap.rootfs(), &CancelToken::new(), |b| out.extend_from_slice(b)).unwrap();
    let upper = snap.commit().unwrap();
    (outcome, String::from_utf8_lossy(&out).into_owned(), summarize(&upper))
}

fn runtime_in(scratch: &Scratch) -> Option<Runtime> {
    Some(require_runc()?.with_root(scratch.join("runc-root")))
}

fn assert_no_runtime_state(rt: &Runtime) {
    let left: Vec<_> = fs::read_dir(rt.root()).map(|d| d.map(|e| e.unwrap().file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "runc state left in {:?}: {left:?}", rt.root());
}

#[test]
fn echo_as_root_and_as_a_passwd_user_leaves_an_empty_diff() {
    let Some(_) = require_runc() else { return };
    let scratch = Scratch::new("echo");
    let rt = runtime_in(&scratch).unwrap();
    for kind in KINDS {
        let (outcome, out, diff) = step(&rt, kind, &scratch, |_| RunSpec::shell("echo hello; id -u"));
        assert_eq!((outcome.exit_code, out.as_str()), (0, "hello\n0\n"), "{kind:?}");
        // /etc/hosts and /etc/resolv.conf were mount points created for the
        // run (minbase has neither): nothing of that, nor of /etc, is left.
        assert!(diff.is_empty(), "{kind:?}: a read-only step left changes: {diff:#?}");
        // No cgroup left behind.
        for ctl in ["pids", "memory", "cpu", "devices"] {
            let cg = Path::new("/sys/fs/cgroup").join(ctl).join("distill").join(&outcome.container_id);
            assert!(!cg.exists(), "{cg:?} left behind");
        }
    }
    // As a user from the image's /etc/passwd (overlayfs only: the user
    // changes nothing the snapshotter sees).
    let (outcome, out, diff) = step(&rt, SnapshotterKind::Overlay, &scratch, |snap| {
        let mut spec = RunSpec::shell("echo hello; id -u; id -g; echo $HOME");
        spec.user = resolve_user(snap.rootfs(), "nobody").unwrap();
        spec
    });
    assert_eq!((outcome.exit_code, out.as_str()), (0, "hello\n65534\n65534\n/nonexistent\n"));
    assert!(diff.is_empty(), "{diff:#?}");
    assert_no_runtime_state(&rt);
}

#[test]
fn non_zero_exit_codes_are_reported_with_the_output_tail() {
    let Some(_) = require_runc() else { return };
    let scratch = Scratch::new("exit");
    let rt = runtime_in(&scratch).unwrap();
    let (outcome, out, _) =
        step(&rt, SnapshotterKind::Overlay, &scratch, |_| RunSpec::shell("echo to-stdout; echo to-stderr >&2; exit 3"));
    assert_eq!(outcome.exit_code, 3);
    assert!(!outcome.success());
    // runc copies stdout and stderr through separate pipes: each stream
    // keeps its order, their interleaving is best effort.
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(lines, ["to-stderr", "to-stdout"]);
    let mut tail = outcome.output_tail.clone();
    tail.sort();
    assert_eq!(tail, ["to-stderr", "to-stdout"]);

    // A command killed by a signal: 128 + signal number, as shells report it.
    let (outcome, _, _) = step(&rt, SnapshotterKind::Overlay, &scratch, |_| RunSpec::shell("sh -c 'kill -9 $$'"));
    assert_eq!(outcome.exit_code, 137);
    assert_no_runtime_state(&rt);
}

#[test]
fn a_missing_executable_is_a_runtime_error() {
    let Some(_) = require_runc() else { return };
    let scratch = Scratch::new("noexec");
    let rt = runtime_in(&scratch).unwrap();
    let snap = ActiveSnapshot::prepare(SnapshotterKind::Overlay, &[base_lower()], &scratch.join("snap")).unwrap();
    let spec = RunSpec::new(vec!["/no/such/binary".into()]);
    let err = run(&rt, &scratch.join("bundle"), &spec, snap.rootfs(), &CancelToken::new(), |_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ExecError::Runtime { .. }), "{err:?}");
    assert!(msg.starts_with("runc run failed: ") && msg.contains("/no/such/binary"), "{msg}");
    assert!(snap.commit().unwrap().read_dir().unwrap().next().is_none());
    assert_no_runtime_state(&rt);
}

/// What the change script below must leave in the upper dir, on either
/// snapshotter (mtimes aside).
const CHANGES: &str = "set -e
echo new > /root/new.txt
ln /root/new.txt /root/hard.txt
mkdir -p /opt/app
echo x > /opt/app/file
ln -s file /opt/app/link
rm /etc/issue.net
echo extra >> /etc/issue
rm -rf /etc/apt/apt.conf.d
mkdir /etc/apt/apt.conf.d
echo fresh > /etc/apt/apt.conf.d/99fresh
rm -rf /usr/share/doc/bash
chmod 700 /srv
chown 65534:65534 /opt/app/file
mkfifo /root/fifo
touch /tmp/t
rm /tmp/t
";

#[test]
fn changes_land_in_the_upper_dir_the_same_with_both_snapshotters() {
    let Some(_) = require_runc() else { return };
    let scratch = Scratch::new("changes");
    let rt = runtime_in(&scratch).unwrap();
    let base = base_lower();
    let issue = fs::read_to_string(base.join("etc/issue")).unwrap() + "extra\n";
    let mut diffs = Vec::new();
    for kind in KINDS {
        let (outcome, out, diff) = step(&rt, kind, &scratch, |_| RunSpec::shell(CHANGES));
        assert_eq!((outcome.exit_code, out.as_str()), (0, ""), "{kind:?}");
        let get = |p: &str| diff.get(p).map(String::as_str).unwrap_or("<absent>");
        assert_eq!(get("/root/new.txt"), "file 644 0:0 \"new\\n\"", "{kind:?}");
        assert_eq!(get("/root/hard.txt"), get("/root/new.txt"), "{kind:?}");
        assert_eq!(get("/opt/app/file"), "file 644 65534:65534 \"x\\n\"", "{kind:?}");
        assert_eq!(get("/opt/app/link"), "symlink -> file", "{kind:?}");
        assert_eq!(get("/etc/issue.net"), "whiteout", "{kind:?}");
        assert_eq!(get("/etc/issue"), format!("file 644 0:0 {issue:?}"), "{kind:?}");
        assert_eq!(get("/etc/apt/apt.conf.d"), "dir 755 0:0 opaque", "{kind:?}");
        assert_eq!(get("/etc/apt/apt.conf.d/99fresh"), "file 644 0:0 \"fresh\\n\"", "{kind:?}");
        assert_eq!(get("/usr/share/doc/bash"), "whiteout", "{kind:?}");
        assert_eq!(get("/srv"), "dir 700 0:0", "{kind:?}");
        assert!(get("/root/fifo").starts_with("special 644"), "{kind:?}: {}", get("/root/fifo"));
        assert_eq!(get("/tmp"), "dir 1777 0:0", "{kind:?}");
        // Nothing else: no mount-point stubs, no stray copy-ups.
        let expected = [
            "/etc",
            "/etc/apt",
            "/etc/apt/apt.conf.d",
            "/etc/apt/apt.conf.d/99fresh",
            "/etc/issue",
            "/etc/issue.net",
            "/opt",
            "/opt/app",
            "/opt/app/file",
            "/opt/app/link",
            "/root",
            "/root/fifo",
            "/root/hard.txt",
            "/root/new.txt",
            "/srv",
            "/tmp",
            "/usr",
            "/usr/share",
            "/usr/share/doc",
            "/usr/share/doc/bash",
        ];
        assert_eq!(diff.keys().map(String::as_str).collect::<Vec<_>>(), expected, "{kind:?}: {diff:#?}");
        diffs.push(diff);
    }
    assert_eq!(diffs[0], diffs[1], "overlayfs and naive diffs differ");
    assert_no_runtime_state(&rt);
}

#[test]
fn network_none_has_only_loopback() {
    let Some(_) = require_runc() else { return };
    let scratch = Scratch::new("netns");
    let rt = runtime_in(&scratch).unwrap();
    let ifaces = |text: &str| -> Vec<String> {
        let mut v: Vec<String> =
            text.lines().skip(2).filter_map(|l| l.split(':').next()).map(|s| s.trim().to_string()).collect();
        v.sort();
        v
    };
    let (outcome, out, _) = step(&rt, SnapshotterKind::Overlay, &scratch, |_| {
        let mut spec = RunSpec::shell("cat /proc/net/dev; echo; cat /sys/class/net/lo/flags");
        spec.network = Network::None;
        spec
    });
    assert_eq!(outcome.exit_code, 0, "{out}");
    let (dev, flags) = out.split_once("\n\n").unwrap();
    assert_eq!(ifaces(dev), ["lo"]);
    // ... and it is up (IFF_UP), as in Docker's --network=none.
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is down: {flags:#x}");

    // The default is the host's network namespace itself.
    let host_ns = fs::read_link("/proc/self/ns/net").unwrap();
    let (_, out, _) = step(&rt, SnapshotterKind::Overlay, &scratch, |_| RunSpec::shell("readlink /proc/self/ns/net"));
    assert_eq!(out.trim_end(), host_ns.to_str().unwrap());
    assert_no_runtime_state(&rt);
}

#[test]
fn extra_mounts_work_and_leave_no_mount_points_behind() {
    let Some(_) = require_runc() else { return };
    let scratch = Scratch::new("mounts");
    let rt = runtime_in(&scratch).unwrap();
    let data = scratch.join("data");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("in.txt"), "from the host\n").unwrap();
    let secret = scratch.join("secret");
    fs::write(&secret, "s3cret").unwrap();
    for kind in KINDS {
        let (outcome, out, diff) = step(&rt, kind, &scratch, |_| {
            let mut spec = RunSpec::shell(
                "cat /mnt/data/in/in.txt; cat /run/secrets/token; echo; echo cached > /cache/c; cat /cache/c; \
                 touch /mnt/data/in/x 2>/dev/null || echo read-only; grep -c . /etc/hosts >/dev/null && echo hosts",
            );
            spec.mounts = vec![
                ExtraMount::Bind { source: data.clone(), target: "/mnt/data/in".into(), readonly: true },
                ExtraMount::Bind { source: secret.clone(), target: "/run/secrets/token".into(), readonly: true },
                ExtraMount::Tmpfs { target: "/cache".into(), size: Some(1 << 20) },
            ];
            spec
        });
        assert_eq!(outcome.exit_code, 0, "{kind:?}: {out}");
        let hosts = if Path::new("/etc/hosts").exists() { "hosts\n" } else { "" };
        assert_eq!(out, format!("from the host\ns3cret\ncached\nread-only\n{hosts}"), "{kind:?}");
        assert!(diff.is_empty(), "{kind:?}: mount points left in the diff: {diff:#?}");
    }
    assert!(!data.join("x").exists());
    assert_no_runtime_state(&rt);
}

#[test]
fn cancellation_kills_the_container_and_cleans_up() {
    let Some(_) = require_runc() else { return };
    let scratch = Scratch::new("cancel");
    let rt = runtime_in(&scratch).unwrap();
    // Stopping does not depend on the snapshotter; overlayfs is the one
    // that could leave mounts behind.
    {
        let kind = SnapshotterKind::Overlay;
        let snap = ActiveSnapshot::prepare(kind, &[base_lower()], &scratch.join(kind.name())).unwrap();
        let cancel = CancelToken::new();
        let canceller = {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(700));
                cancel.cancel();
                Instant::now()
            })
        };
        let mut out = Vec::new();
        let spec = RunSpec::shell("echo started; sleep 60");
        let res = run(&rt, &scratch.join("bundle"), &spec, snap.rootfs(), &cancel, |b| out.extend_from_slice(b));
        let cancelled_at = canceller.join().unwrap();
        let took = cancelled_at.elapsed();
        assert!(matches!(res, Err(ExecError::Cancelled)), "{kind:?}: {res:?}");
        assert!(took < Duration::from_secs(2), "{kind:?}: stopping took {took:?}");
        assert_eq!(String::from_utf8_lossy(&out), "started\n");
        assert_no_runtime_state(&rt);
        drop(snap);
        assert_eq!(mounts_under(scratch.path()), Vec::<std::path::PathBuf>::new(), "{kind:?}");
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!info.contains(scratch.path().to_str().unwrap()), "{kind:?}: {info}");
    }
    // Cancelled before it started: nothing runs.
    let snap = ActiveSnapshot::prepare(SnapshotterKind::Overlay, &[base_lower()], &scratch.join("pre")).unwrap();
    let cancel = CancelToken::new();
    cancel.cancel();
    let res = run(&rt, &scratch.join("bundle"), &RunSpec::shell("true"), snap.rootfs(), &cancel, |_| {});
    assert!(matches!(res, Err(ExecError::Cancelled)));
}

/// Ctrl-C in the CLI: with [`CancelToken::cancel_on_signals`] installed, a
/// SIGINT to distill kills and deletes the container. The test binary
/// re-runs itself as the "CLI" (env DISTILL_EXEC_SIGNAL_CHILD) and gets the
/// signal a terminal would send.
#[test]
fn sigint_stops_the_container() {
    const CHILD: &str = "DISTILL_EXEC_SIGNAL_CHILD";
    if let Ok(dir) = std::env::var(CHILD) {
        use std::io::Write;
        let dir = std::path::PathBuf::from(dir);
        let cancel = CancelToken::new();
        cancel.cancel_on_signals().unwrap();
        let rt = Runtime::resolve(None).unwrap().with_root(dir.join("runc-root"));
        let snap = ActiveSnapshot::prepare(SnapshotterKind::Overlay, &[base_lower()], &dir.join("snap")).unwrap();
        let res =
            run(&rt, &dir.join("bundle"), &RunSpec::shell("echo started; sleep 60"), snap.rootfs(), &cancel, |b| {
                print!("{}", String::from_utf8_lossy(b));
                std::io::stdout().flush().unwrap();
            });
        println!("RESULT {:?}", res.map(|o| o.exit_code).map_err(|e| e.to_string()));
        return;
    }
    let Some(_) = require_runc() else { return };
    base_lower();
    let scratch = Scratch::new("sigint");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "sigint_stops_the_container", "--nocapture", "--test-threads=1"])
        .env(CHILD, scratch.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.ends_with("started") {
            break;
        }
    }
    assert!(seen.last().is_some_and(|l| l.ends_with("started")), "{seen:?}");
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let signalled = Instant::now();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    let took = signalled.elapsed();
    assert!(took < Duration::from_secs(2), "stopping took {took:?}");
    assert!(status.success(), "{status:?} {rest:?}");
    assert!(rest.iter().any(|l| l.starts_with("RESULT Err(\"cancelled")), "{rest:?}");
    assert_no_runtime_state(&Runtime::resolve(None).unwrap().with_root(scratch.join("runc-root")));
    assert!(mounts_under(scratch.path()).is_empty());
}
