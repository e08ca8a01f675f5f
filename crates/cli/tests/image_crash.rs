//! Crash safety: `distill import` (and `distill load`) SIGKILLed at random
//! moments, many times over one store. Afterwards the store opens, `distill
//! images` works, `distill fsck` finds nothing corrupt or dangling (leftovers
//! are reported as reclaimable), `distill prune` reclaims them and the store
//! checks clean. Set DISTILL_CRASH_SEED to replay a run.

mod image_support;

use std::fs;
use std::time::{Duration, Instant};

use image_support::{TempDir, distill, distill_cmd, distill_ok, make_rootfs, stderr};
use serde_json::Value;

/// Two imports (gzip, zstd) for every load: 20 killed imports, 10 loads.
const RUNS: usize = 30;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, max).
    fn below(&mut self, max: u64) -> u64 {
        self.next() % max.max(1)
    }
}

fn fsck_json(root: &std::path::Path) -> Value {
    let out = distill(root, &["fsck", "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("fsck output is not JSON ({e}): {}", stderr(&out)));
    assert_eq!(out.status.success(), v["healthy"].as_bool().unwrap(), "fsck exit status and verdict disagree");
    v
}

#[test]
fn killed_imports_and_loads_leave_a_consistent_store() {
    let seed = std::env::var("DISTILL_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("crash test seed: {seed} (DISTILL_CRASH_SEED={seed} replays it)");
    let mut rng = Rng(seed | 1);

    let t = TempDir::new("crash");
    let root = t.join("store");
    // Big enough that the layer write takes a while, small enough for 24 runs.
    let tar = make_rootfs(t.path(), "big", 7, 8 << 20);
    distill_ok(&root, &["import", tar.to_str().unwrap(), "complete:0"]);
    let archive = t.join("archive.tar");
    distill_ok(&root, &["save", "--format", "oci", "-o", archive.to_str().unwrap(), "complete:0"]);

    // The three kinds of run, each timed once uninterrupted.
    let command = |kind: usize, run: usize| {
        let mut cmd = distill_cmd(&root);
        let name = format!("run:{run}");
        // A label per run: every import writes a new config and manifest.
        let label = format!("LABEL run={run}");
        match kind {
            0 => cmd.args(["import", tar.to_str().unwrap(), &name, "-c", &label]),
            1 => cmd.args(["import", "--compression", "zstd", tar.to_str().unwrap(), &name, "-c", &label]),
            _ => cmd.args(["load", "-q", "-i", archive.to_str().unwrap()]),
        };
        cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        cmd
    };
    let durations: Vec<Duration> = (0..3)
        .map(|kind| {
            let started = Instant::now();
            assert!(command(kind, 1000 + kind).status().unwrap().success());
            started.elapsed()
        })
        .collect();
    eprintln!("uninterrupted runs take {durations:?} (import gzip, import zstd, load)");

    let mut killed = 0;
    for run in 0..RUNS {
        // Kill anywhere from the start to a little past the usual end, so
        // that the commit phase gets hit too.
        let kind = run % 3;
        let delay = Duration::from_micros(rng.below(durations[kind].as_micros() as u64 * 11 / 10));
        let mut child = command(kind, run).spawn().unwrap();
        std::thread::sleep(delay);
        let finished = child.try_wait().unwrap().is_some();
        child.kill().ok(); // SIGKILL
        let status = child.wait().unwrap();
        if !finished && !status.success() {
            killed += 1;
        }
        // After every crash the store opens and lists its images.
        let out = distill(&root, &["images"]);
        assert!(out.status.success(), "run {run}: images failed: {}", stderr(&out));
    }
    eprintln!("{killed} of {RUNS} runs were killed before they finished");
    assert!(killed >= RUNS / 2, "too few runs were interrupted ({killed}) for the test to mean anything");

    let v = fsck_json(&root);
    assert_eq!(v["healthy"], true, "fsck after crashes: {v:#}");
    for issue in v["issues"].as_array().unwrap() {
        let sev = issue["severity"].as_str().unwrap();
        assert!(sev == "reclaimable" || sev == "stale", "unexpected issue after crashes: {issue}");
    }
    eprintln!("fsck after the crashes: {} findings, all reclaimable", v["issues"].as_array().unwrap().len());

    // Every image that made it is complete and readable.
    let ids = distill_ok(&root, &["images", "-q", "--no-trunc"]);
    for id in ids.lines() {
        distill_ok(&root, &["inspect", id]);
    }
    assert!(distill_ok(&root, &["images"]).contains("complete"));

    distill_ok(&root, &["prune", "--keep-dangling"]);
    let v = fsck_json(&root);
    assert_eq!(v["clean"], true, "fsck after prune: {v:#}");
    assert_eq!(fs::read_dir(root.join("tmp")).unwrap().count(), 0);
    // And the store still works.
    distill_ok(&root, &["import", tar.to_str().unwrap(), "after:1"]);
    assert_eq!(fsck_json(&root)["clean"], true);
}
