//! Helpers for capturing progress in tests: a clonable in-memory writer, a clock
//! moved by hand, and a [`Progress`] that records events.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::{Clock, Event, Progress};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An in-memory writer whose clones share one buffer: hand one clone to a
/// printer, read the output from another.
#[derive(Debug, Clone, Default)]
pub struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything written so far.
    pub fn bytes(&self) -> Vec<u8> {
        lock(&self.0).clone()
    }

    /// Everything written so far, as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&lock(&self.0)).into_owned()
    }

    /// A boxed clone, as [`printer`](super::printer) takes it.
    pub fn boxed(&self) -> Box<dyn Write + Send> {
        Box::new(self.clone())
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        lock(&self.0).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    pub fn new(start: SystemTime) -> Arc<Self> {
        Arc::new(ManualClock(Mutex::new(start)))
    }

    pub fn advance(&self, by: Duration) {
        *lock(&self.0) += by;
    }

    pub fn set(&self, to: SystemTime) {
        *lock(&self.0) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *lock(&self.0)
    }
}

/// Records every event, for asserting what a build reported (e.g. which steps
/// were cached) without parsing printed output.
#[derive(Debug, Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
    finished: Mutex<usize>,
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The events so far, in order of receipt.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.events).clone()
    }

    /// How many times `finish` was called.
    pub fn finish_count(&self) -> usize {
        *lock(&self.finished)
    }

    /// Names of the vertexes reported as cache hits, in order.
    pub fn cached(&self) -> Vec<String> {
        lock(&self.events)
            .iter()
            .filter_map(|e| match e {
                Event::Cached { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect()
    }

    /// Names of the vertexes that were started, in order.
    pub fn started(&self) -> Vec<String> {
        lock(&self.events)
            .iter()
            .filter_map(|e| match e {
                Event::Started { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect()
    }
}

impl Progress for Recorder {
    fn event(&self, event: Event) {
        lock(&self.events).push(event);
    }

    fn finish(&self) {
        *lock(&self.finished) += 1;
    }
}
