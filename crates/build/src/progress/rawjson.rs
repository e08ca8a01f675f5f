//! The rawjson printer: JSON lines shaped like BuildKit's `client.SolveStatus`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

use super::time::rfc3339;
use super::{Clock, Event, Progress, SystemClock, VertexId, vertex_digest};

/// Writes one `SolveStatus` JSON object per event, one per line (see the module
/// docs for the mapping).
pub struct RawJsonPrinter {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

#[derive(Default)]
struct Vertex {
    name: String,
    started: Option<SystemTime>,
    completed: Option<SystemTime>,
    cached: bool,
    error: Option<String>,
}

struct State {
    out: Box<dyn Write + Send>,
    vertices: HashMap<VertexId, Vertex>,
}

#[derive(Serialize, Default)]
struct SolveStatus {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    vertexes: Vec<JsonVertex>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    statuses: Vec<JsonStatus>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    logs: Vec<JsonLog>,
}

#[derive(Serialize)]
struct JsonVertex {
    digest: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    started: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    completed: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cached: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct JsonStatus {
    id: String,
    vertex: String,
    current: i64,
    timestamp: String,
}

#[derive(Serialize)]
struct JsonLog {
    vertex: String,
    stream: u8,
    data: String,
    timestamp: String,
}

impl RawJsonPrinter {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self::with_clock(out, Arc::new(SystemClock::new()))
    }

    pub fn with_clock(out: Box<dyn Write + Send>, clock: Arc<dyn Clock>) -> Self {
        RawJsonPrinter { clock, state: Mutex::new(State { out, vertices: HashMap::new() }) }
    }
}

impl Vertex {
    fn to_json(&self, id: VertexId) -> JsonVertex {
        JsonVertex {
            digest: vertex_digest(id),
            name: self.name.clone(),
            started: self.started.map(rfc3339),
            completed: self.completed.map(rfc3339),
            cached: self.cached,
            error: self.error.clone(),
        }
    }
}

impl State {
    /// The status to print for `event`, if any.
    fn handle(&mut self, event: Event, now: SystemTime) -> Option<SolveStatus> {
        let id = event.id();
        let v = self.vertices.entry(id).or_default();
        let mut status = SolveStatus::default();
        match event {
            Event::Started { name, .. } => {
                if v.completed.is_some() {
                    *v = Vertex::default();
                } else if v.started.is_some() && !v.name.is_empty() {
                    return None;
                }
                v.name = name;
                v.started = Some(now);
                status.vertexes.push(v.to_json(id));
            }
            Event::Cached { name, .. } => {
                if v.completed.is_some() {
                    return None;
                }
                if v.name.is_empty() {
                    v.name = name;
                }
                v.started.get_or_insert(now);
                v.completed = Some(now);
                v.cached = true;
                status.vertexes.push(v.to_json(id));
            }
            Event::Completed { error, .. } => {
                if v.completed.is_some() {
                    return None;
                }
                v.started.get_or_insert(now);
                v.completed = Some(now);
                v.error = error;
                status.vertexes.push(v.to_json(id));
            }
            Event::Log { stream, data, .. } => {
                if data.is_empty() {
                    return None;
                }
                status.logs.push(JsonLog {
                    vertex: vertex_digest(id),
                    stream: stream.number(),
                    data: base64(&data),
                    timestamp: rfc3339(now),
                });
            }
            Event::Status { text, .. } => {
                status.statuses.push(JsonStatus {
                    id: text,
                    vertex: vertex_digest(id),
                    current: 0,
                    timestamp: rfc3339(now),
                });
            }
        }
        Some(status)
    }
}

impl Progress for RawJsonPrinter {
    fn event(&self, event: Event) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.clock.now();
        if let Some(status) = state.handle(event, now) {
            let mut line = serde_json::to_vec(&status).expect("plain structs serialise");
            line.push(b'\n');
            let _ = state.out.write_all(&line);
            let _ = state.out.flush();
        }
    }

    fn finish(&self) {
        let _ = self.state.lock().unwrap_or_else(|e| e.into_inner()).out.flush();
    }
}

/// Standard base64 with padding (RFC 4648 §4), as Go's `encoding/json` writes `[]byte`.
pub(crate) fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")];
        for (plain, enc) in cases {
            assert_eq!(base64(plain.as_bytes()), enc);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }
}
