//! The quiet printer: nothing but the error report.

use std::time::{Duration, UNIX_EPOCH};

use distill_build::progress::capture::{ManualClock, SharedBuffer};
use distill_build::progress::{Event, Mode, Options, Progress, Stream, printer, printer_with};

fn log(id: u64, s: &str) -> Event {
    Event::Log { id, stream: Stream::Stderr, data: s.as_bytes().to_vec() }
}

#[test]
fn successful_build_prints_nothing() {
    let buf = SharedBuffer::new();
    let p = printer(Mode::Quiet, buf.boxed());
    p.event(Event::Cached { id: 1, name: "[1/2] FROM debian".into() });
    p.event(Event::Started { id: 2, name: "[2/2] RUN echo hi".into() });
    p.event(log(2, "hi\n"));
    p.event(Event::Status { id: 2, text: "something".into() });
    p.event(Event::Completed { id: 2, error: None });
    p.finish();
    assert_eq!(buf.text(), "");
}

#[test]
fn failed_vertex_prints_its_last_lines_only() {
    let buf = SharedBuffer::new();
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let p = printer_with(Mode::Quiet, buf.boxed(), Options { clock: clock.clone(), ..Options::default() });
    p.event(Event::Started { id: 1, name: "[a 2/2] RUN make".into() });
    p.event(Event::Started { id: 2, name: "[b 2/2] RUN ./test".into() });
    p.event(log(1, "compiling\n"));
    for i in 1..=12 {
        clock.advance(Duration::from_millis(100));
        p.event(log(2, &format!("test {i} ")));
        p.event(log(2, "ok\n"));
    }
    p.event(log(2, "FAILED"));
    p.event(Event::Completed { id: 1, error: None });
    p.event(Event::Completed { id: 2, error: Some("exit code: 1".into()) });
    assert_eq!(buf.text(), "", "nothing before finish");
    p.finish();
    p.finish();
    let mut expected = String::from("------\n > [b 2/2] RUN ./test:\n");
    for i in 4..=12 {
        expected.push_str(&format!("{}.{}00 test {i} ok\n", i / 10, i % 10));
    }
    expected.push_str("1.200 FAILED\n------\n");
    assert_eq!(buf.text(), expected);
}
