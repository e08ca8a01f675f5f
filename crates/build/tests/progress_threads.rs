//! Printers shared by many threads at once stay line-coherent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use distill_build::progress::capture::{Recorder, SharedBuffer};
use distill_build::progress::{Event, Mode, Options, Progress, Stream, printer, printer_with, vertex_id};

const THREADS: u64 = 8;
const LINES: usize = 200;

/// Each thread runs one vertex, writing numbered lines in odd-sized chunks.
fn emit(p: Arc<dyn Progress>) {
    let handles: Vec<_> = (1..=THREADS)
        .map(|id| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                p.event(Event::Started { id, name: format!("[stage{id} 2/2] RUN work") });
                let text: String = (0..LINES).map(|i| format!("stage{id} line {i} {}\n", "x".repeat(i % 17))).collect();
                let bytes = text.as_bytes();
                let mut at = 0;
                let mut n = 1;
                while at < bytes.len() {
                    let end = (at + n).min(bytes.len());
                    let stream = if n % 2 == 0 { Stream::Stdout } else { Stream::Stderr };
                    p.event(Event::Log { id, stream, data: bytes[at..end].to_vec() });
                    at = end;
                    n = n % 23 + 1;
                    if n == 7 {
                        std::thread::yield_now();
                    }
                }
                if id == 3 {
                    p.event(Event::Completed { id, error: Some("boom".into()) });
                } else {
                    p.event(Event::Completed { id, error: None });
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    p.finish();
}

#[test]
fn plain_output_stays_line_coherent() {
    let buf = SharedBuffer::new();
    let p: Arc<dyn Progress> = Arc::from(printer(Mode::Plain, buf.boxed()));
    emit(p);
    let text = buf.text();
    let (progress, errors) = text.split_once("------\n").expect("error block for stage 3");
    // #N → stage, from the headers.
    let mut stage_of: HashMap<String, u64> = HashMap::new();
    let mut next_line: HashMap<u64, usize> = HashMap::new();
    let mut finished = 0;
    for line in progress.lines() {
        if line.is_empty() {
            continue;
        }
        let (tag, rest) = line.split_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        assert!(tag.starts_with('#'), "{line:?}");
        if let Some(stage) = rest.strip_prefix("[stage").and_then(|r| r.strip_suffix(" 2/2] RUN work")) {
            let stage: u64 = stage.parse().unwrap();
            assert_eq!(*stage_of.entry(tag.to_string()).or_insert(stage), stage, "stable numbering");
            continue;
        }
        let stage = stage_of[tag];
        if rest == "..." {
            continue;
        }
        if rest.starts_with("DONE ") || rest == "ERROR: boom" {
            assert_eq!(next_line.get(&stage).copied().unwrap_or(0), LINES, "completion after all output");
            finished += 1;
            continue;
        }
        let (time, body) = rest.split_once(' ').unwrap();
        time.parse::<f64>().unwrap_or_else(|_| panic!("{line:?}"));
        let i = next_line.entry(stage).or_insert(0);
        assert_eq!(body, format!("stage{stage} line {i} {}", "x".repeat(*i % 17)), "{line:?}");
        *i += 1;
    }
    assert_eq!(finished, THREADS);
    assert_eq!(stage_of.len(), THREADS as usize);
    assert!(errors.starts_with(" > [stage3 2/2] RUN work:\n"));
    assert_eq!(errors.lines().count(), 1 + 10 + 1);
}

#[test]
fn rawjson_lines_stay_whole_and_carry_every_byte() {
    let buf = SharedBuffer::new();
    let p: Arc<dyn Progress> = Arc::from(printer(Mode::RawJson, buf.boxed()));
    emit(p);
    let mut bytes: HashMap<u64, usize> = HashMap::new();
    let mut completed = 0;
    for line in buf.text().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for l in v["logs"].as_array().into_iter().flatten() {
            let id = vertex_id(l["vertex"].as_str().unwrap()).unwrap();
            let data = l["data"].as_str().unwrap();
            let padding = data.bytes().rev().take_while(|&b| b == b'=').count();
            *bytes.entry(id).or_default() += data.len() / 4 * 3 - padding;
        }
        for vx in v["vertexes"].as_array().into_iter().flatten() {
            if vx.get("completed").is_some() {
                completed += 1;
                assert_eq!(vx.get("error").is_some(), vx["digest"] == distill_build::progress::vertex_digest(3));
            }
        }
    }
    assert_eq!(completed, THREADS);
    for id in 1..=THREADS {
        let expected: usize = (0..LINES).map(|i| format!("stage{id} line {i} {}\n", "x".repeat(i % 17)).len()).sum();
        assert_eq!(bytes[&id], expected);
    }
}

#[test]
fn tty_and_quiet_survive_concurrent_events() {
    let buf = SharedBuffer::new();
    let opts = Options { width: Some(100), height: Some(20), color: Some(false), ..Options::default() };
    let p: Arc<dyn Progress> = Arc::from(printer_with(Mode::Tty, buf.boxed(), opts));
    emit(p);
    let text = buf.text();
    let last = &text[text.rfind("[+] Building").unwrap()..];
    for id in 1..=THREADS {
        assert!(last.contains(&format!("[stage{id} 2/2] RUN work")), "{last}");
    }
    assert!(last.contains(" > [stage3 2/2] RUN work:\n"));

    let buf = SharedBuffer::new();
    let p: Arc<dyn Progress> = Arc::from(printer(Mode::Quiet, buf.boxed()));
    emit(p);
    let text = buf.text();
    assert!(text.starts_with("------\n > [stage3 2/2] RUN work:\n"), "{text}");
    assert_eq!(text.lines().count(), 2 + 10 + 1);
}

#[test]
fn recorder_sees_every_event() {
    let rec = Recorder::new();
    emit(rec.clone());
    let events = rec.events();
    assert_eq!(rec.started().len(), THREADS as usize);
    assert!(rec.cached().is_empty());
    assert_eq!(rec.finish_count(), 1);
    assert_eq!(events.iter().filter(|e| matches!(e, Event::Completed { .. })).count(), THREADS as usize);
    std::thread::sleep(Duration::from_millis(1));
}

#[test]
fn modes_parse() {
    for (s, m) in [
        ("auto", Mode::Auto),
        ("plain", Mode::Plain),
        ("tty", Mode::Tty),
        ("quiet", Mode::Quiet),
        ("rawjson", Mode::RawJson),
        ("PLAIN", Mode::Plain),
    ] {
        assert_eq!(s.parse::<Mode>().unwrap(), m);
    }
    assert_eq!(Mode::RawJson.to_string(), "rawjson");
    let err = "fancy".parse::<Mode>().unwrap_err();
    assert!(err.to_string().contains("fancy"));
    assert!(matches!(Mode::Auto.resolve(), Mode::Plain | Mode::Tty));
}
