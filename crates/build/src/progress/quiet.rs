//! The quiet printer: silent, except for the error report of failed vertexes.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::common::{ERROR_LINES, LineBuffer, Ring, write_error_block};
use super::time::{log_offset, since};
use super::{Clock, Event, Progress, SystemClock, VertexId};

/// Keeps the last output lines of each vertex; at `finish`, prints the error
/// block (as plain does) of every vertex that failed, and nothing else.
pub struct QuietPrinter {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

struct Vertex {
    name: String,
    started: SystemTime,
    completed: bool,
    failed: bool,
    lines: LineBuffer,
    recent: Ring,
}

struct State {
    out: Box<dyn Write + Send>,
    vertices: HashMap<VertexId, Vertex>,
    order: Vec<VertexId>,
    finished: bool,
}

impl QuietPrinter {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self::with_clock(out, Arc::new(SystemClock::new()))
    }

    pub fn with_clock(out: Box<dyn Write + Send>, clock: Arc<dyn Clock>) -> Self {
        QuietPrinter {
            clock,
            state: Mutex::new(State { out, vertices: HashMap::new(), order: Vec::new(), finished: false }),
        }
    }
}

impl Vertex {
    fn record(&mut self, lines: impl IntoIterator<Item = (SystemTime, String)>) {
        for (at, text) in lines {
            self.recent.push(format!("{} {}", log_offset(since(at, self.started)), text));
        }
    }
}

impl Progress for QuietPrinter {
    fn event(&self, event: Event) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.clock.now();
        let id = event.id();
        let State { vertices, order, .. } = &mut *state;
        let v = vertices.entry(id).or_insert_with(|| {
            order.push(id);
            Vertex {
                name: String::new(),
                started: now,
                completed: false,
                failed: false,
                lines: LineBuffer::default(),
                recent: Ring::new(ERROR_LINES),
            }
        });
        match event {
            Event::Started { name, .. } => {
                if v.completed {
                    v.completed = false;
                    v.failed = false;
                    v.started = now;
                }
                v.name = name;
            }
            Event::Cached { name, .. } => {
                if v.name.is_empty() {
                    v.name = name;
                }
                v.completed = true;
            }
            Event::Log { data, .. } => {
                let lines = v.lines.push(&data, now);
                v.record(lines);
            }
            Event::Status { .. } => {}
            Event::Completed { error, .. } => {
                if !v.completed {
                    v.completed = true;
                    v.failed = error.is_some();
                    let partial = v.lines.take_partial();
                    v.record(partial);
                }
            }
        }
    }

    fn finish(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.finished {
            return;
        }
        state.finished = true;
        let State { out, vertices, order, .. } = &mut *state;
        for id in order.iter() {
            let v = &vertices[id];
            if v.failed {
                write_error_block(&mut **out, &v.name, &v.recent);
            }
        }
        let _ = out.flush();
    }
}

impl Drop for QuietPrinter {
    fn drop(&mut self) {
        self.finish();
    }
}
