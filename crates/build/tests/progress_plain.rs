//! The plain printer: exact BuildKit-style `#N` output.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use distill_build::progress::capture::{ManualClock, SharedBuffer};
use distill_build::progress::{Event, PlainPrinter, Progress, Stream};

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn started(id: u64, name: &str) -> Event {
    Event::Started { id, name: name.into() }
}

fn cached(id: u64, name: &str) -> Event {
    Event::Cached { id, name: name.into() }
}

fn out(id: u64, data: &str) -> Event {
    Event::Log { id, stream: Stream::Stdout, data: data.as_bytes().to_vec() }
}

fn err(id: u64, data: &str) -> Event {
    Event::Log { id, stream: Stream::Stderr, data: data.as_bytes().to_vec() }
}

fn status(id: u64, text: &str) -> Event {
    Event::Status { id, text: text.into() }
}

fn done(id: u64) -> Event {
    Event::Completed { id, error: None }
}

fn failed(id: u64, error: &str) -> Event {
    Event::Completed { id, error: Some(error.into()) }
}

/// Runs `script` (events, and clock advances as `None`-event steps) through a plain printer.
fn run(script: Vec<(u64, Option<Event>)>) -> String {
    let buf = SharedBuffer::new();
    let clock = ManualClock::new(t0());
    let p = PlainPrinter::with_clock(buf.boxed(), clock.clone());
    for (advance, event) in script {
        clock.advance(ms(advance));
        if let Some(e) = event {
            p.event(e);
        }
    }
    p.finish();
    buf.text()
}

#[test]
fn sequential_build() {
    let text = run(vec![
        (0, Some(started(1, "[internal] load build definition from Dockerfile"))),
        (30, Some(status(1, "transferring dockerfile: 123B done"))),
        (10, Some(done(1))),
        (0, Some(cached(2, "[build 1/3] FROM docker.io/library/python:3.12"))),
        (0, Some(started(3, "[build 2/3] RUN python3 -m py_compile calc.py"))),
        (215, Some(out(3, "compil"))),
        (100, Some(out(3, "ing\nsecond line\npart"))),
        (1000, Some(err(3, "ial\n"))),
        (85, Some(done(3))),
        (0, Some(started(4, "exporting to image"))),
        (0, Some(status(4, "exporting layers"))),
        (300, Some(status(4, "writing image sha256:abc done"))),
        (0, Some(status(4, "naming to docker.io/library/app:latest done"))),
        (0, Some(done(4))),
    ]);
    assert_eq!(
        text,
        "\
#1 [internal] load build definition from Dockerfile
#1 transferring dockerfile: 123B done
#1 DONE 0.0s

#2 [build 1/3] FROM docker.io/library/python:3.12
#2 CACHED

#3 [build 2/3] RUN python3 -m py_compile calc.py
#3 0.215 compiling
#3 0.315 second line
#3 0.315 partial
#3 DONE 1.4s

#4 exporting to image
#4 exporting layers
#4 writing image sha256:abc done
#4 naming to docker.io/library/app:latest done
#4 DONE 0.3s
"
    );
}

#[test]
fn interleaved_vertexes_get_separate_blocks() {
    let text = run(vec![
        (0, Some(started(1, "[a 2/2] RUN make"))),
        (0, Some(started(2, "[b 2/2] RUN cargo build"))),
        (100, Some(out(1, "a1\n"))),
        (100, Some(out(2, "b1\nb2"))),
        (100, Some(out(1, "a2\n"))),
        (100, Some(done(1))),
        (100, Some(out(2, "\n"))),
        (0, Some(failed(2, "process \"/bin/sh -c cargo build\" did not complete successfully: exit code: 101"))),
    ]);
    assert_eq!(
        text,
        "\
#1 [a 2/2] RUN make
#1 ...

#2 [b 2/2] RUN cargo build
#2 ...

#1 [a 2/2] RUN make
#1 0.100 a1
#1 ...

#2 [b 2/2] RUN cargo build
#2 0.200 b1
#2 ...

#1 [a 2/2] RUN make
#1 0.300 a2
#1 DONE 0.4s

#2 [b 2/2] RUN cargo build
#2 0.200 b2
#2 ERROR: process \"/bin/sh -c cargo build\" did not complete successfully: exit code: 101
------
 > [b 2/2] RUN cargo build:
0.200 b1
0.200 b2
------
"
    );
}

#[test]
fn partial_lines_of_concurrent_vertexes_never_mix() {
    let text = run(vec![
        (0, Some(started(1, "one"))),
        (0, Some(started(2, "two"))),
        (10, Some(out(1, "hello "))),
        (10, Some(out(2, "bonjour "))),
        (10, Some(out(1, "world"))),
        (10, Some(out(2, "le monde\n"))),
        (10, Some(out(1, "\n"))),
        (10, Some(out(2, "unterminated"))),
        (10, Some(done(2))),
        (10, Some(done(1))),
    ]);
    assert_eq!(
        text,
        "\
#1 one
#1 ...

#2 two
#2 0.020 bonjour le monde
#2 ...

#1 one
#1 0.010 hello world
#1 ...

#2 two
#2 0.060 unterminated
#2 DONE 0.1s

#1 one
#1 DONE 0.1s
"
    );
}

#[test]
fn cached_in_either_order_and_late_events() {
    let text = run(vec![
        (0, Some(started(1, "[2/3] COPY . ."))),
        (50, Some(cached(1, "[2/3] COPY . ."))),
        (0, Some(done(1))),
        (0, Some(cached(2, "[3/3] RUN make"))),
        (0, Some(done(2))),
        (0, Some(failed(2, "ignored: already complete"))),
        // Output before the start: the vertex appears with an empty name, then gets it.
        (0, Some(out(3, "early\n"))),
        (20, Some(started(3, "exporting to image"))),
        (0, Some(done(3))),
        // Completed for a vertex never started.
        (0, Some(done(4))),
    ]);
    assert_eq!(
        text,
        "\
#1 [2/3] COPY . .
#1 CACHED

#2 [3/3] RUN make
#2 CACHED

#3 \n#3 0.000 early
#3 exporting to image
#3 DONE 0.0s

#4 \n#4 DONE 0.0s
"
    );
}

#[test]
fn error_block_keeps_the_last_ten_lines() {
    let mut script = vec![(0, Some(started(7, "[build 3/3] RUN ./configure && make")))];
    for i in 1..=15 {
        script.push((100, Some(err(7, &format!("line {i}\n")))));
    }
    script.push((0, Some(err(7, "no newline at the end"))));
    script.push((500, Some(failed(7, "exit code: 2"))));
    let text = run(script);
    let (progress, block) = text.split_once("------\n").expect("an error block");
    assert!(progress.starts_with("#1 [build 3/3] RUN ./configure && make\n#1 0.100 line 1\n"));
    assert!(progress.ends_with("#1 1.500 line 15\n#1 1.500 no newline at the end\n#1 ERROR: exit code: 2\n"));
    let mut expected = String::from(" > [build 3/3] RUN ./configure && make:\n");
    for i in 7..=15 {
        expected.push_str(&format!("{}.{}00 line {i}\n", i / 10, i % 10));
    }
    expected.push_str("1.500 no newline at the end\n------\n");
    assert_eq!(block, expected);
}

#[test]
fn unfinished_vertexes_flush_at_finish_and_finish_is_idempotent() {
    let buf = SharedBuffer::new();
    let clock = ManualClock::new(t0());
    let p = PlainPrinter::with_clock(buf.boxed(), clock.clone());
    p.event(started(1, "[1/1] RUN sleep 100"));
    clock.advance(ms(12_345));
    p.event(out(1, "waiting"));
    p.finish();
    p.finish();
    drop(p);
    assert_eq!(buf.text(), "#1 [1/1] RUN sleep 100\n#1 12.35 waiting\n");
}

#[test]
fn long_steps_use_fewer_decimals() {
    let text = run(vec![
        (0, Some(started(1, "slow"))),
        (9_999, Some(out(1, "a\n"))),
        (1, Some(out(1, "b\n"))),
        (90_000, Some(out(1, "c\n"))),
        (0, Some(done(1))),
    ]);
    assert_eq!(text, "#1 slow\n#1 9.999 a\n#1 10.00 b\n#1 100.0 c\n#1 DONE 100.0s\n");
}

/// Replaces the times in plain output by `T`, for output made with the real clock.
fn normalise(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut words: Vec<String> = line.split(' ').map(str::to_string).collect();
        if words.len() >= 2 && words[0].starts_with('#') && words[1].parse::<f64>().is_ok() {
            words[1] = "T".into();
        }
        if words.len() == 3 && words[1] == "DONE" && words[2].ends_with('s') {
            words[2] = "T".into();
        }
        out.push_str(&words.join(" "));
        out.push('\n');
    }
    out
}

#[test]
fn real_clock_output_normalised() {
    let buf = SharedBuffer::new();
    let p = distill_build::progress::printer(distill_build::progress::Mode::Plain, buf.boxed());
    p.event(started(1, "[1/2] FROM scratch"));
    p.event(done(1));
    p.event(started(2, "[2/2] RUN echo hi"));
    p.event(out(2, "hi\n"));
    std::thread::sleep(ms(20));
    p.event(out(2, "there\n"));
    p.event(done(2));
    p.finish();
    assert_eq!(
        normalise(&buf.text()),
        "#1 [1/2] FROM scratch\n#1 DONE T\n\n#2 [2/2] RUN echo hi\n#2 T hi\n#2 T there\n#2 DONE T\n"
    );
}
