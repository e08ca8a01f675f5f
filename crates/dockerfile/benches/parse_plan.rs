//! Parse + plan throughput on a generated 5,000-line multi-stage Dockerfile
//! (ARGs, ENV, continuations, heredocs, COPY --from, mounts, labels).
//! Run: `cargo bench -p distill-dockerfile --bench parse_plan` (bench/frontend.sh).

use std::hint::black_box;
use std::time::{Duration, Instant};

use distill_dockerfile::plan::{PlanOptions, plan};

// The `distill` binary runs on mimalloc (glibc malloc spends most of the time
// of an allocation-heavy parse in malloc_consolidate); measure the same setup.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn generate(lines_wanted: usize) -> String {
    let mut out = String::from("# syntax=docker/dockerfile:1\nARG BASE=debian:bookworm\nARG VERSION=1.2.3\n");
    let mut stage = 0;
    while out.lines().count() < lines_wanted {
        out.push_str(&format!("\n# stage {stage}: builds part {stage}\nFROM ${{BASE}} AS stage{stage}\n"));
        out.push_str("ARG VERSION\nARG TARGETARCH\n");
        out.push_str(&format!("ENV APP_HOME=/opt/app{stage} PATH=/opt/app{stage}/bin:$PATH VERSION=${{VERSION}}\n"));
        out.push_str("WORKDIR ${APP_HOME}\n");
        out.push_str(&format!(
            "LABEL org.opencontainers.image.version=\"${{VERSION}}\" stage=\"{stage}\" arch=$TARGETARCH\n"
        ));
        out.push_str("RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\\n    apt-get update && \\\n    # comment inside a continuation\n    apt-get install -y --no-install-recommends ca-certificates curl && \\\n    rm -rf /var/lib/apt/lists/*\n");
        out.push_str(&format!("COPY --chown=1000:1000 --chmod=0755 src/part{stage}/ ${{APP_HOME}}/src/\n"));
        if stage > 0 {
            out.push_str(&format!("COPY --from=stage{} /opt/app{}/bin/ /opt/shared/bin/\n", stage - 1, stage - 1));
        }
        out.push_str("RUN <<EOF\nset -e\necho building ${VERSION%.*} for $TARGETARCH\nmake -j2 install\nEOF\n");
        out.push_str("EXPOSE 8080/tcp 9090/udp\nUSER 1000:1000\nHEALTHCHECK --interval=30s --timeout=5s CMD [\"/opt/app/bin/health\"]\n");
        out.push_str("ENTRYPOINT [\"/opt/app/bin/server\"]\nCMD [\"--port\", \"8080\"]\n");
        stage += 1;
    }
    out
}

/// CPU time of this thread: unlike wall time, it does not grow when other
/// processes compete for the core, so runs on a busy machine stay comparable.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we pass and nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn main() {
    let text = generate(5000);
    let lines = text.lines().count();
    let bytes = text.len();
    let options = PlanOptions { all_stages: true, ..PlanOptions::default() };
    // Sanity: it parses and plans.
    let ast = distill_dockerfile::parse(text.as_bytes()).expect("parses");
    let p = plan(&ast, &options).expect("plans");
    assert!(p.stages.len() > 100);

    let run = || {
        let ast = distill_dockerfile::parse(black_box(text.as_bytes())).expect("parses");
        black_box(plan(&ast, &options).expect("plans"));
    };
    // PROFILE_ITERS=N: just run N times (for callgrind/perf), no timing.
    if let Some(n) = std::env::var("PROFILE_ITERS").ok().and_then(|v| v.parse::<usize>().ok()) {
        for _ in 0..n {
            run();
        }
        return;
    }
    for _ in 0..20 {
        run();
    }
    let mut wall: Vec<Duration> = Vec::new();
    let mut cpu: Vec<Duration> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline || wall.len() < 50 {
        let (start, start_cpu) = (Instant::now(), thread_cpu_time());
        run();
        cpu.push(thread_cpu_time() - start_cpu);
        wall.push(start.elapsed());
    }
    wall.sort();
    cpu.sort();
    let mbps = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e6;
    println!("parse+plan: {lines} lines, {bytes} bytes, {} stages, {} runs", p.stages.len(), wall.len());
    for (what, samples) in [("wall", &wall), ("cpu ", &cpu)] {
        let (best, median) = (samples[0], samples[samples.len() / 2]);
        println!(
            "{what}: best {:>7.3} ms {:>6.1} MB/s   median {:>7.3} ms {:>6.1} MB/s",
            best.as_secs_f64() * 1e3,
            mbps(best),
            median.as_secs_f64() * 1e3,
            mbps(median)
        );
    }
    // Parser alone, for reference.
    let n = 200;
    let start = thread_cpu_time();
    for _ in 0..n {
        black_box(distill_dockerfile::parse(black_box(text.as_bytes())).expect("parses"));
    }
    let per = (thread_cpu_time() - start) / n;
    println!("parse only (cpu): {:>7.3} ms {:>6.1} MB/s", per.as_secs_f64() * 1e3, mbps(per));
    let start = thread_cpu_time();
    for _ in 0..n {
        black_box(distill_dockerfile::instructions::parse_stages(black_box(&ast)).expect("typed"));
    }
    let per = (thread_cpu_time() - start) / n;
    println!("typed instructions only (cpu): {:>7.3} ms", per.as_secs_f64() * 1e3);
    let start = thread_cpu_time();
    for _ in 0..n {
        black_box(plan(black_box(&ast), &options).expect("plans"));
    }
    let per = (thread_cpu_time() - start) / n;
    println!("plan (typed + plan, cpu): {:>7.3} ms", per.as_secs_f64() * 1e3);
}
