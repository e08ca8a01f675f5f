//! The rawjson printer: BuildKit `SolveStatus` JSON lines.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use distill_build::progress::capture::{ManualClock, SharedBuffer};
use distill_build::progress::{Event, Mode, Options, Progress, Stream, printer_with, vertex_digest, vertex_id};
use serde_json::Value;

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    assert_eq!(s.len() % 4, 0, "padded");
    let mut out = Vec::new();
    for quad in s.as_bytes().chunks(4) {
        let n = quad.iter().filter(|&&c| c != b'=').count();
        let mut acc = 0u32;
        for (i, &c) in quad.iter().enumerate() {
            let v = if c == b'=' { 0 } else { u32::from(val(c)) };
            acc |= v << (18 - 6 * i);
        }
        let bytes = [(acc >> 16) as u8, (acc >> 8) as u8, acc as u8];
        out.extend_from_slice(&bytes[..n - 1]);
    }
    out
}

fn lines(buf: &SharedBuffer) -> Vec<Value> {
    let text = buf.text();
    assert!(text.ends_with('\n'));
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect()
}

/// The last vertex object per digest: each carries the vertex's whole state.
fn final_vertexes(lines: &[Value]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for l in lines {
        for v in l["vertexes"].as_array().into_iter().flatten() {
            out.insert(v["digest"].as_str().unwrap().to_string(), v.clone());
        }
    }
    out
}

#[test]
fn solve_status_lines() {
    let buf = SharedBuffer::new();
    let clock = ManualClock::new(t0());
    let opts = Options { clock: clock.clone(), ..Options::default() };
    let p = printer_with(Mode::RawJson, buf.boxed(), opts);
    p.event(Event::Started { id: 1, name: "[build 2/3] RUN make".into() });
    clock.advance(Duration::from_millis(500));
    p.event(Event::Log { id: 1, stream: Stream::Stdout, data: b"hello\nwor".to_vec() });
    p.event(Event::Log { id: 1, stream: Stream::Stderr, data: b"ld\n\xff".to_vec() });
    p.event(Event::Status { id: 1, text: "writing layer sha256:abc 12.3MB".into() });
    clock.advance(Duration::from_nanos(1_000_000_123));
    p.event(Event::Completed { id: 1, error: None });
    p.event(Event::Cached { id: 2, name: "[build 1/3] FROM docker.io/library/debian:bookworm".into() });
    p.event(Event::Completed { id: 2, error: None }); // ignored: already complete
    p.event(Event::Started { id: 3, name: "[build 3/3] RUN false".into() });
    p.event(Event::Completed { id: 3, error: Some("exit code: 1".into()) });
    p.finish();

    let lines = lines(&buf);
    assert_eq!(lines.len(), 8);
    let d1 = vertex_digest(1);
    assert_eq!(d1, format!("sha256:{}1", "0".repeat(63)));
    assert_eq!(vertex_id(&d1), Some(1));

    assert_eq!(
        lines[0],
        serde_json::json!({"vertexes": [{"digest": d1, "name": "[build 2/3] RUN make", "started": "2023-11-14T22:13:20Z"}]})
    );
    assert_eq!(lines[1]["logs"][0]["vertex"], d1.as_str());
    assert_eq!(lines[1]["logs"][0]["stream"], 1);
    assert_eq!(lines[1]["logs"][0]["timestamp"], "2023-11-14T22:13:20.5Z");
    assert_eq!(decode_base64(lines[1]["logs"][0]["data"].as_str().unwrap()), b"hello\nwor");
    assert_eq!(lines[2]["logs"][0]["stream"], 2);
    assert_eq!(decode_base64(lines[2]["logs"][0]["data"].as_str().unwrap()), b"ld\n\xff");
    assert_eq!(
        lines[3],
        serde_json::json!({"statuses": [{"id": "writing layer sha256:abc 12.3MB", "vertex": d1, "current": 0,
            "timestamp": "2023-11-14T22:13:20.5Z"}]})
    );
    assert_eq!(
        lines[4],
        serde_json::json!({"vertexes": [{"digest": d1, "name": "[build 2/3] RUN make",
            "started": "2023-11-14T22:13:20Z", "completed": "2023-11-14T22:13:21.500000123Z"}]})
    );
    for l in &lines {
        let obj = l.as_object().unwrap();
        assert_eq!(obj.len(), 1, "one kind of record per line: {l}");
    }

    let vertexes = final_vertexes(&lines);
    assert_eq!(vertexes.len(), 3);
    let cached = &vertexes[&vertex_digest(2)];
    assert_eq!(cached["cached"], true);
    assert_eq!(cached["started"], cached["completed"]);
    assert!(cached.get("error").is_none());
    let ran = &vertexes[&d1];
    assert!(ran.get("cached").is_none() && ran.get("error").is_none() && ran.get("completed").is_some());
    let failed = &vertexes[&vertex_digest(3)];
    assert_eq!(failed["error"], "exit code: 1");
    assert!(failed.get("cached").is_none());
    assert_eq!(failed["name"], "[build 3/3] RUN false");
}

#[test]
fn started_then_cached_keeps_the_start() {
    let buf = SharedBuffer::new();
    let clock = ManualClock::new(t0());
    let p = printer_with(Mode::RawJson, buf.boxed(), Options { clock: clock.clone(), ..Options::default() });
    p.event(Event::Started { id: 42, name: "[2/2] COPY . /app".into() });
    clock.advance(Duration::from_millis(250));
    p.event(Event::Cached { id: 42, name: "[2/2] COPY . /app".into() });
    p.event(Event::Log { id: 42, stream: Stream::Stdout, data: Vec::new() }); // empty: no line
    drop(p);
    let lines = lines(&buf);
    assert_eq!(lines.len(), 2);
    let v = &lines[1]["vertexes"][0];
    assert_eq!(v["digest"], vertex_digest(42));
    assert_eq!(v["started"], "2023-11-14T22:13:20Z");
    assert_eq!(v["completed"], "2023-11-14T22:13:20.25Z");
    assert_eq!(v["cached"], true);
    assert_eq!(vertex_id(v["digest"].as_str().unwrap()), Some(42));
}

#[test]
fn digests_round_trip() {
    for id in [0, 1, 255, 1 << 40, u64::MAX] {
        let d = vertex_digest(id);
        assert_eq!(d.len(), 7 + 64);
        assert_eq!(vertex_id(&d), Some(id));
    }
    assert_eq!(vertex_id("sha256:abc"), None);
    assert_eq!(vertex_id(&format!("sha256:1{}", "0".repeat(63))), None);
    assert_eq!(vertex_id(&format!("sha512:{}", "0".repeat(64))), None);
}

#[test]
fn real_clock_timestamps_are_rfc3339_and_ordered() {
    let buf = SharedBuffer::new();
    let p = distill_build::progress::printer(Mode::RawJson, buf.boxed());
    p.event(Event::Started { id: 1, name: "x".into() });
    std::thread::sleep(Duration::from_millis(5));
    p.event(Event::Completed { id: 1, error: None });
    let lines = lines(&buf);
    let v = &lines[1]["vertexes"][0];
    let (s, c) = (v["started"].as_str().unwrap(), v["completed"].as_str().unwrap());
    for t in [s, c] {
        assert!(t.len() >= 20 && t.ends_with('Z') && &t[4..5] == "-" && &t[10..11] == "T", "{t}");
    }
    assert!(s < c || s.len() != c.len(), "{s} < {c}");
}
