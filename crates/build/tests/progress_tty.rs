//! The tty printer: live frames and the final static render.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use distill_build::progress::capture::{ManualClock, SharedBuffer};
use distill_build::progress::{Event, Mode, Options, Progress, Stream, TtyPrinter, printer_with};

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// Drops ANSI escape sequences.
fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.next_if_eq(&'[').is_some() {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn log(id: u64, s: &str) -> Event {
    Event::Log { id, stream: Stream::Stdout, data: s.as_bytes().to_vec() }
}

fn scripted(width: usize, color: bool) -> (SharedBuffer, TtyPrinter, std::sync::Arc<ManualClock>) {
    let buf = SharedBuffer::new();
    let clock = ManualClock::new(t0());
    let opts = Options { clock: clock.clone(), width: Some(width), height: Some(24), color: Some(color), live: false };
    let p = TtyPrinter::new(buf.boxed(), opts);
    (buf, p, clock)
}

#[test]
fn final_render_lists_every_vertex() {
    let (buf, p, clock) = scripted(80, false);
    p.event(Event::Started { id: 1, name: "[internal] load build definition from Dockerfile".into() });
    clock.advance(Duration::from_millis(40));
    p.event(Event::Completed { id: 1, error: None });
    p.event(Event::Cached { id: 2, name: "[build 1/3] FROM docker.io/library/python:3.12".into() });
    p.event(Event::Started { id: 3, name: "[build 2/3] RUN python3 -m py_compile calc.py".into() });
    p.event(log(3, "compiling\n"));
    clock.advance(Duration::from_millis(1400));
    p.event(Event::Completed { id: 3, error: None });
    p.event(Event::Started { id: 4, name: "exporting to image".into() });
    p.event(Event::Status { id: 4, text: "exporting layers".into() });
    clock.advance(Duration::from_millis(300));
    p.event(Event::Status { id: 4, text: "naming to docker.io/library/app:latest done".into() });
    p.event(Event::Completed { id: 4, error: None });
    p.finish();
    let raw = buf.text();
    assert!(raw.starts_with("\x1b[?25l"), "hides the cursor while drawing");
    assert!(raw.ends_with("\x1b[?25h"), "and shows it again");
    let text = strip_ansi(&raw);
    let lines: Vec<&str> = text.lines().collect();
    let expect = [
        ("[+] Building 1.7s (4/4) FINISHED", ""),
        (" => [internal] load build definition from Dockerfile", " 0.0s"),
        (" => CACHED [build 1/3] FROM docker.io/library/python:3.12", " 0.0s"),
        (" => [build 2/3] RUN python3 -m py_compile calc.py", " 1.4s"),
        (" => exporting to image", " 0.3s"),
        (" => => exporting layers", " 0.3s"),
        (" => => naming to docker.io/library/app:latest done", " 0.0s"),
    ];
    assert_eq!(lines.len(), expect.len(), "{text}");
    for (line, (start, end)) in lines.iter().zip(expect) {
        assert!(line.starts_with(start) && line.ends_with(end), "{line:?}");
        assert!(line.len() <= 79, "{line:?}");
        if !end.is_empty() {
            assert_eq!(line.len(), 79, "time right-aligned: {line:?}");
        }
    }
    assert!(!text.contains("compiling"), "no output of completed vertexes in the final frame");
}

#[test]
fn errors_are_marked_and_reported_and_colours_apply() {
    let (buf, p, clock) = scripted(60, true);
    p.event(Event::Started { id: 1, name: "[2/2] RUN make".into() });
    p.event(Event::Started { id: 2, name: "[internal] load metadata".into() });
    clock.advance(Duration::from_millis(200));
    p.event(log(1, "cc main.c\nmain.c:1: error"));
    p.event(Event::Completed { id: 1, error: Some("exit code: 2".into()) });
    p.finish();
    let raw = buf.text();
    assert!(raw.contains("\x1b[31m => ERROR [2/2] RUN make"), "failed vertexes in red: {raw:?}");
    let text = strip_ansi(&raw);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "[+] Building 0.2s (1/2)", "not FINISHED while a vertex is open");
    assert!(lines[1].starts_with(" => ERROR [2/2] RUN make") && lines[1].ends_with(" 0.2s"));
    assert!(lines[2].starts_with(" => [internal] load metadata") && lines[2].ends_with(" 0.2s"));
    assert_eq!(lines[3..].join("\n"), "------\n > [2/2] RUN make:\n0.200 cc main.c\n0.200 main.c:1: error\n------");
}

#[test]
fn narrow_terminals_truncate_names() {
    let (buf, p, _clock) = scripted(30, false);
    p.event(Event::Cached { id: 1, name: "[build 1/9] FROM a-very-long-image-name:with-a-long-tag".into() });
    p.finish();
    let text = strip_ansi(&buf.text());
    for line in text.lines() {
        assert!(line.chars().count() <= 29, "{line:?}");
    }
    assert!(text.contains(" => CACHED [build 1/9]"), "{text}");
}

#[test]
fn live_view_redraws_in_place_with_output_tails() {
    let buf = SharedBuffer::new();
    let opts = Options { width: Some(80), height: Some(30), color: Some(false), ..Options::default() };
    let begin = std::time::Instant::now();
    let p = printer_with(Mode::Tty, buf.boxed(), opts);
    p.event(Event::Started { id: 1, name: "[1/1] RUN ./build.sh".into() });
    p.event(log(1, "step one\nstep two\n"));
    std::thread::sleep(Duration::from_millis(350));
    let live = buf.text();
    p.event(Event::Completed { id: 1, error: None });
    p.finish();
    let elapsed = begin.elapsed();
    let all = buf.text();
    // Several frames, each after the first moving the cursor back up over the previous one.
    assert!(live.matches("[+] Building").count() >= 2, "{live:?}");
    assert!(live.contains("\x1b[4A\r"), "{live:?}");
    let text = strip_ansi(&live);
    assert!(text.contains(" => => # step one\n => => # step two\n"), "{text:?}");
    // Frames come at most every 100 ms (plus the final one).
    let max_frames = (elapsed.as_millis() / 100) as usize + 2;
    assert!(all.matches("[+] Building").count() <= max_frames, "{elapsed:?}: {all:?}");
    let last = strip_ansi(&all[all.rfind("[+] Building").unwrap()..]);
    assert!(last.contains("(1/1) FINISHED"), "{last:?}");
    assert!(!last.contains("step one"), "{last:?}");
}

#[test]
fn live_view_survives_drop_without_finish() {
    let buf = SharedBuffer::new();
    let p = printer_with(Mode::Tty, buf.boxed(), Options { width: Some(80), color: Some(false), ..Options::default() });
    p.event(Event::Cached { id: 1, name: "[1/1] FROM scratch".into() });
    drop(p);
    assert!(strip_ansi(&buf.text()).contains(" => CACHED [1/1] FROM scratch"));
}
