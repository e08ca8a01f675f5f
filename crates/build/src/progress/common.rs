//! Pieces shared by the text printers: per-vertex line buffering, the ring of
//! recent lines kept for error reports, and the error block.

use std::collections::VecDeque;
use std::io::Write;
use std::time::SystemTime;

/// A partial line longer than this is emitted as a line of its own, so a step
/// printing without newlines cannot grow memory without bound.
pub(crate) const PARTIAL_LIMIT: usize = 64 * 1024;

/// Output lines kept per vertex for the error report of plain and quiet (BuildKit keeps 10).
pub(crate) const ERROR_LINES: usize = 10;

/// Splits arbitrary byte chunks into lines, remembering when each line's first
/// byte arrived (BuildKit stamps a line with the time of the chunk that began it).
#[derive(Debug, Default)]
pub(crate) struct LineBuffer {
    partial: Vec<u8>,
    since: Option<SystemTime>,
}

impl LineBuffer {
    /// Feed a chunk received at `now`; returns the lines it completes (without
    /// their newline), each with the time its first byte arrived.
    pub(crate) fn push(&mut self, mut data: &[u8], now: SystemTime) -> Vec<(SystemTime, String)> {
        let mut lines = Vec::new();
        while !data.is_empty() {
            let since = *self.since.get_or_insert(now);
            match data.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.partial.extend_from_slice(&data[..i]);
                    lines.push((since, String::from_utf8_lossy(&self.partial).into_owned()));
                    self.partial.clear();
                    self.since = None;
                    data = &data[i + 1..];
                }
                None => {
                    self.partial.extend_from_slice(data);
                    data = &[];
                    if self.partial.len() >= PARTIAL_LIMIT
                        && let Some(line) = self.take_partial()
                    {
                        lines.push(line);
                    }
                }
            }
        }
        lines
    }

    /// The unterminated rest, if any, as a line.
    pub(crate) fn take_partial(&mut self) -> Option<(SystemTime, String)> {
        let since = self.since.take()?;
        let line = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        Some((since, line))
    }

    /// The unterminated rest, as received so far.
    pub(crate) fn partial(&self) -> &[u8] {
        &self.partial
    }
}

/// The last `cap` lines of something.
#[derive(Debug)]
pub(crate) struct Ring {
    lines: VecDeque<String>,
    cap: usize,
}

impl Ring {
    pub(crate) fn new(cap: usize) -> Self {
        Ring { lines: VecDeque::new(), cap }
    }

    pub(crate) fn push(&mut self, line: String) {
        if self.cap == 0 {
            return;
        }
        if self.lines.len() == self.cap {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.lines.iter()
    }
}

/// BuildKit's report for a failed vertex, printed after the progress output.
pub(crate) fn write_error_block(out: &mut dyn Write, name: &str, lines: &Ring) {
    let mut s = String::from("------\n > ");
    s.push_str(name);
    s.push_str(":\n");
    for l in lines.iter() {
        s.push_str(l);
        s.push('\n');
    }
    s.push_str("------\n");
    let _ = out.write_all(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn lines_keep_the_time_of_their_first_byte() {
        let t = |ms| UNIX_EPOCH + Duration::from_millis(ms);
        let mut b = LineBuffer::default();
        assert!(b.push(b"ab", t(1)).is_empty());
        assert_eq!(b.push(b"c\nd", t(2)), vec![(t(1), "abc".to_string())]);
        assert_eq!(b.push(b"\n\nx\n", t(3)), vec![(t(2), "d".into()), (t(3), String::new()), (t(3), "x".into())]);
        assert!(b.take_partial().is_none());
        b.push(b"tail", t(4));
        assert_eq!(b.partial(), b"tail");
        assert_eq!(b.take_partial(), Some((t(4), "tail".into())));
        assert!(b.push(b"", t(5)).is_empty());
        assert!(b.take_partial().is_none());
    }

    #[test]
    fn huge_partial_lines_are_cut() {
        let mut b = LineBuffer::default();
        let lines = b.push(&vec![b'a'; PARTIAL_LIMIT + 1], UNIX_EPOCH);
        assert_eq!(lines.len(), 1);
        assert!(b.partial().is_empty());
    }

    #[test]
    fn ring_keeps_the_last() {
        let mut r = Ring::new(2);
        for l in ["a", "b", "c"] {
            r.push(l.into());
        }
        assert_eq!(r.iter().cloned().collect::<Vec<_>>(), ["b", "c"]);
    }
}
