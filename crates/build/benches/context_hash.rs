//! Build-context hashing on a 30,000-file, ~350 MB tree: cold (no hash
//! cache), warm (persistent cache, nothing changed) and one changed file.
//! Each warm run is a fresh process-like start: load the cache file, open the
//! context, select `.`, digest.
//!
//! Run: `cargo bench -p distill-build --bench context_hash`.
//! The tree is generated once under `/var/tmp/distill-bench-context` (or
//! `$DISTILL_BENCH_DIR`) and reused. Set `DISTILL_BENCH_DROP_CACHES=1` (as
//! root) to also time a cold run with the page cache dropped.
//! Targets: warm unchanged ≤ 100 ms, one changed file ≤ 2 s.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use distill_build::context::{Context, HashCache, IgnoreMatcher};

const FILES: usize = 30_000;
const TOP_DIRS: usize = 30;
const SUB_DIRS: usize = 10;
const PER_DIR: usize = FILES / (TOP_DIRS * SUB_DIRS);
/// Every 300th file is large (~1.1 MB); the rest are 0–16 KiB.
const LARGE_EVERY: usize = 300;
const LARGE_SIZE: usize = 1_100_000;
const TREE_VERSION: &str = "v1 30000 files";

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn file_path(root: &Path, i: usize) -> PathBuf {
    let top = i / (SUB_DIRS * PER_DIR);
    let sub = (i / PER_DIR) % SUB_DIRS;
    root.join(format!("pkg{top:02}/mod{sub}/file{i:05}.dat"))
}

fn ensure_tree(root: &Path) -> u64 {
    let marker = root.join(".complete");
    if fs::read_to_string(&marker).ok().as_deref() == Some(TREE_VERSION) {
        return fs::read_dir(root).map(|_| dir_size(root)).unwrap_or(0);
    }
    eprintln!("generating {FILES} files under {} (once) ...", root.display());
    let _ = fs::remove_dir_all(root);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut total = 0u64;
    let mut buf = Vec::new();
    for i in 0..FILES {
        let path = file_path(root, i);
        if i % PER_DIR == 0 {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
        }
        let size = if i % LARGE_EVERY == 0 { LARGE_SIZE } else { (rng.next() % 16_384) as usize };
        buf.clear();
        while buf.len() < size {
            buf.extend_from_slice(&rng.next().to_le_bytes());
        }
        buf.truncate(size);
        fs::File::create(&path).unwrap().write_all(&buf).unwrap();
        total += size as u64;
    }
    fs::write(&marker, TREE_VERSION).unwrap();
    // Let the newest files age past the "racily clean" window.
    std::thread::sleep(Duration::from_millis(200));
    total
}

fn dir_size(root: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}

/// CPU time consumed so far by all threads of this process (from
/// `/proc/self/task/*/schedstat`): unlike wall time, it does not grow when
/// other processes compete for the two cores.
fn cpu_time() -> Duration {
    let mut ns = 0u64;
    if let Ok(tasks) = fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            if let Ok(s) = fs::read_to_string(t.path().join("schedstat")) {
                ns += s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            }
        }
    }
    Duration::from_nanos(ns)
}

struct Run {
    total: Duration,
    cpu: Duration,
    load: Duration,
    walk: Duration,
    digest: Duration,
    hits: u64,
    misses: u64,
    entries: usize,
    digest_value: String,
}

/// One build's worth of work: load the cache, walk, digest, save.
fn run(root: &Path, cache_path: Option<&Path>) -> Run {
    let c0 = cpu_time();
    let t0 = Instant::now();
    let cache = match cache_path {
        Some(p) => HashCache::load(p).unwrap(),
        None => HashCache::new(),
    };
    let load = t0.elapsed();
    let ctx = Context::open(root, IgnoreMatcher::parse(".complete\n").unwrap()).unwrap().with_hash_cache(cache);
    let t1 = Instant::now();
    let entries = ctx.select(".").unwrap();
    let walk = t1.elapsed();
    let t2 = Instant::now();
    let digest_value = ctx.content_digest(&entries).unwrap();
    let digest = t2.elapsed();
    let total = t0.elapsed();
    let cpu = cpu_time().saturating_sub(c0);
    let (hits, misses) = (ctx.hash_cache().hits(), ctx.hash_cache().misses());
    if cache_path.is_some() {
        ctx.hash_cache().save().unwrap();
    }
    Run { total, cpu, load, walk, digest, hits, misses, entries: entries.len(), digest_value }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn report(label: &str, r: &Run) {
    println!(
        "{label:<30} wall {:>9} cpu {:>9} (cache load {:>8}, walk {:>8}, digest {:>8}) entries {} hits {} misses {}",
        ms(r.total),
        ms(r.cpu),
        ms(r.load),
        ms(r.walk),
        ms(r.digest),
        r.entries,
        r.hits,
        r.misses
    );
}

fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by_key(|r| r.total);
    let mid = runs.len() / 2;
    runs.swap_remove(mid)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("context_hash: run with `cargo bench -p distill-build --bench context_hash`");
        return;
    }
    let base = std::env::var_os("DISTILL_BENCH_DIR").map_or_else(|| PathBuf::from("/var/tmp"), PathBuf::from);
    let root = base.join("distill-bench-context");
    let bytes = ensure_tree(&root);
    let cache_path = base.join("distill-bench-context.hashcache");
    println!(
        "tree: {} ({FILES} files, {:.0} MB), {} threads",
        root.display(),
        bytes as f64 / 1e6,
        rayon::current_num_threads()
    );

    // Profiling aid: only repeat warm runs.
    if let Some(n) = std::env::var_os("DISTILL_BENCH_WARM_ONLY") {
        let n: usize = n.to_string_lossy().parse().unwrap_or(20);
        if !cache_path.exists() {
            run(&root, Some(&cache_path));
        }
        for _ in 0..n {
            report("warm", &run(&root, Some(&cache_path)));
        }
        return;
    }

    if std::env::var_os("DISTILL_BENCH_DROP_CACHES").is_some() {
        let dropped = fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok();
        if dropped {
            let r = run(&root, None);
            report("cold, page cache dropped", &r);
            println!("  throughput {:.0} MB/s", bytes as f64 / 1e6 / r.digest.as_secs_f64());
        } else {
            println!("cold, page cache dropped: skipped (cannot write /proc/sys/vm/drop_caches)");
        }
    }

    // Cold: no hash cache (page cache warm).
    let _ = run(&root, None);
    let cold = median((0..3).map(|_| run(&root, None)).collect());
    report("cold (no hash cache)", &cold);
    println!("  throughput {:.0} MB/s", bytes as f64 / 1e6 / cold.digest.as_secs_f64());

    // Fill the persistent cache, then warm runs.
    let _ = fs::remove_file(&cache_path);
    let first = run(&root, Some(&cache_path));
    assert_eq!(first.digest_value, cold.digest_value);
    let cache_bytes = fs::metadata(&cache_path).map(|m| m.len()).unwrap_or(0);
    println!("cache file: {} ({:.1} MB)", cache_path.display(), cache_bytes as f64 / 1e6);
    let warm_runs: Vec<Run> = (0..7).map(|_| run(&root, Some(&cache_path))).collect();
    let best = warm_runs.iter().map(|r| r.total).min().unwrap();
    let warm = median(warm_runs);
    assert_eq!(warm.misses, 0, "an unchanged tree must rehash nothing");
    assert_eq!(warm.digest_value, cold.digest_value);
    report("warm, unchanged (median of 7)", &warm);
    println!(
        "  best {}  target ≤ 100 ms: {}",
        ms(best),
        if warm.total <= Duration::from_millis(100) { "met" } else { "MISSED" }
    );

    // One changed file (a large one, the worst case), then restore.
    let victim = file_path(&root, LARGE_EVERY * 7);
    let original = fs::read(&victim).unwrap();
    let mut changed = original.clone();
    changed[0] ^= 0xff;
    fs::write(&victim, &changed).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let one = run(&root, Some(&cache_path));
    fs::write(&victim, &original).unwrap();
    assert_eq!(one.misses, 1);
    assert_ne!(one.digest_value, cold.digest_value);
    report("one changed file (1.1 MB)", &one);
    println!("  target ≤ 2 s: {}", if one.total <= Duration::from_secs(2) { "met" } else { "MISSED" });
    let restored = run(&root, Some(&cache_path));
    assert_eq!(restored.digest_value, cold.digest_value);
}
