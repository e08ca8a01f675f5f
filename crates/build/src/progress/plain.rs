//! The plain printer: BuildKit's `--progress=plain` text.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::common::{ERROR_LINES, LineBuffer, Ring, write_error_block};
use super::time::{log_offset, since};
use super::{Clock, Event, Progress, SystemClock, VertexId};

/// Prints `#N …` lines as events arrive (see the module docs for the format).
pub struct PlainPrinter {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

struct Vertex {
    index: usize,
    name: String,
    started: SystemTime,
    completed: bool,
    error: Option<String>,
    lines: LineBuffer,
    recent: Ring,
}

struct State {
    out: Box<dyn Write + Send>,
    vertices: HashMap<VertexId, Vertex>,
    /// Ids in order of first appearance.
    order: Vec<VertexId>,
    /// The vertex whose block is open (header printed, not completed).
    current: Option<VertexId>,
    printed_any: bool,
    finished: bool,
}

impl PlainPrinter {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self::with_clock(out, Arc::new(SystemClock::new()))
    }

    pub fn with_clock(out: Box<dyn Write + Send>, clock: Arc<dyn Clock>) -> Self {
        PlainPrinter {
            clock,
            state: Mutex::new(State {
                out,
                vertices: HashMap::new(),
                order: Vec::new(),
                current: None,
                printed_any: false,
                finished: false,
            }),
        }
    }
}

impl State {
    fn vertex(&mut self, id: VertexId, now: SystemTime) -> &mut Vertex {
        let next = self.order.len() + 1;
        let order = &mut self.order;
        self.vertices.entry(id).or_insert_with(|| {
            order.push(id);
            Vertex {
                index: next,
                name: String::new(),
                started: now,
                completed: false,
                error: None,
                lines: LineBuffer::default(),
                recent: Ring::new(ERROR_LINES),
            }
        })
    }

    /// Makes `id`'s block the open one, closing another with `#N ...`.
    fn switch_to(&mut self, id: VertexId, buf: &mut String) {
        if self.current == Some(id) {
            return;
        }
        if let Some(old) = self.current.take()
            && let Some(v) = self.vertices.get(&old)
        {
            buf.push_str(&format!("#{} ...\n", v.index));
        }
        if self.printed_any {
            buf.push('\n');
        }
        self.printed_any = true;
        let v = &self.vertices[&id];
        buf.push_str(&format!("#{} {}\n", v.index, v.name));
        self.current = Some(id);
    }

    fn print_lines(&mut self, id: VertexId, lines: Vec<(SystemTime, String)>, buf: &mut String) {
        if lines.is_empty() {
            return;
        }
        self.switch_to(id, buf);
        let v = self.vertices.get_mut(&id).expect("vertex exists");
        for (at, text) in lines {
            let line = format!("{} {}", log_offset(since(at, v.started)), text);
            buf.push_str(&format!("#{} {}\n", v.index, line));
            v.recent.push(line);
        }
    }

    fn handle(&mut self, event: Event, now: SystemTime) -> String {
        let mut buf = String::new();
        let id = event.id();
        let known = self.vertices.contains_key(&id);
        let v = self.vertex(id, now);
        match event {
            Event::Started { name, .. } => {
                if known && v.completed {
                    // Restarted: a fresh run of the same vertex.
                    v.completed = false;
                    v.error = None;
                    v.started = now;
                } else if known && !v.name.is_empty() {
                    return buf;
                }
                v.name = name;
                if self.current == Some(id) {
                    // Its block is open under an empty header (output came first): name it now.
                    let v = &self.vertices[&id];
                    buf.push_str(&format!("#{} {}\n", v.index, v.name));
                }
                self.switch_to(id, &mut buf);
            }
            Event::Cached { name, .. } => {
                if v.completed {
                    return buf;
                }
                if v.name.is_empty() {
                    v.name = name;
                }
                v.completed = true;
                let partial = v.lines.take_partial();
                self.print_lines(id, partial.into_iter().collect(), &mut buf);
                self.switch_to(id, &mut buf);
                buf.push_str(&format!("#{} CACHED\n", self.vertices[&id].index));
                self.current = None;
            }
            Event::Log { data, .. } => {
                let lines = v.lines.push(&data, now);
                self.print_lines(id, lines, &mut buf);
            }
            Event::Status { text, .. } => {
                self.switch_to(id, &mut buf);
                buf.push_str(&format!("#{} {}\n", self.vertices[&id].index, text));
                if self.vertices[&id].completed {
                    self.current = None;
                }
            }
            Event::Completed { error, .. } => {
                if v.completed {
                    return buf;
                }
                v.completed = true;
                let partial = v.lines.take_partial();
                self.print_lines(id, partial.into_iter().collect(), &mut buf);
                self.switch_to(id, &mut buf);
                let v = self.vertices.get_mut(&id).expect("vertex exists");
                match &error {
                    Some(e) => buf.push_str(&format!("#{} ERROR: {}\n", v.index, e)),
                    None => buf.push_str(&format!("#{} DONE {:.1}s\n", v.index, since(now, v.started).as_secs_f64())),
                }
                v.error = error;
                self.current = None;
            }
        }
        buf
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        // Unterminated output of vertexes that never completed.
        let mut buf = String::new();
        for id in self.order.clone() {
            let partial = self.vertices.get_mut(&id).and_then(|v| v.lines.take_partial());
            self.print_lines(id, partial.into_iter().collect(), &mut buf);
        }
        let _ = self.out.write_all(buf.as_bytes());
        for id in &self.order {
            let v = &self.vertices[id];
            if v.error.is_some() {
                write_error_block(&mut *self.out, &v.name, &v.recent);
            }
        }
        let _ = self.out.flush();
    }
}

impl Progress for PlainPrinter {
    fn event(&self, event: Event) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.clock.now();
        let buf = state.handle(event, now);
        if !buf.is_empty() {
            let _ = state.out.write_all(buf.as_bytes());
            let _ = state.out.flush();
        }
    }

    fn finish(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).finish();
    }
}

impl Drop for PlainPrinter {
    fn drop(&mut self) {
        self.finish();
    }
}
