//! Build progress: one event stream, several printers on top (BuildKit's
//! `--progress=auto|plain|tty|quiet|rawjson`).
//!
//! The solver reports what happens through [`Progress::event`]; events may come
//! from several threads at once (stages build concurrently). Printers take all
//! timestamps themselves, on receipt (durations are `Completed − Started`), and
//! serialise their output internally, so a `Box<dyn Progress>` (or an
//! `Arc<dyn Progress>`) can be shared freely. Call [`Progress::finish`] once at the
//! end of the build: it flushes partial log lines, draws the final tty frame and
//! prints the logs of failed steps. It is idempotent and also runs on drop.
//!
//! ```
//! use distill_build::progress::{Event, Mode, Progress, printer};
//! let p = printer("plain".parse::<Mode>().unwrap(), Box::new(std::io::sink()));
//! p.event(Event::Started { id: 1, name: "[build 2/4] RUN make".into() });
//! p.event(Event::Log { id: 1, stream: distill_build::progress::Stream::Stdout, data: b"cc -o app\n".to_vec() });
//! p.event(Event::Completed { id: 1, error: None });
//! p.finish();
//! ```
//!
//! # Vertex lifecycle
//! A vertex (a step, or an internal action such as "exporting to image") is
//! identified by its [`VertexId`]. Accepted sequences: `Started … Completed`,
//! `Cached` alone, `Started … Cached`. Events for a vertex that is already
//! complete (e.g. a `Completed` after `Cached`) are ignored, except output (`Log`,
//! `Status`), which is still shown. A `Log`/`Status`/`Completed` for a vertex never
//! started starts it implicitly at that moment (with an empty name).
//!
//! # Formats
//! **plain** (BuildKit's `printer.go`): vertexes are numbered `#1, #2, …` in order
//! of first appearance.
//! ```text
//! #1 [internal] load build definition from Dockerfile
//! #1 DONE 0.0s
//!
//! #2 [build 1/4] FROM docker.io/library/python:3.12
//! #2 CACHED
//!
//! #3 [build 2/4] RUN python3 -m py_compile calc.py
//! #3 0.215 compiling
//! #3 ...
//!
//! #4 [build 3/4] RUN false
//! #4 ERROR: process "/bin/sh -c false" did not complete successfully: exit code: 1
//!
//! #3 [build 2/4] RUN python3 -m py_compile calc.py
//! #3 1.320 done compiling
//! #3 DONE 1.4s
//! ------
//!  > [build 3/4] RUN false:
//! ------
//! ```
//! A log line is `#N <seconds since the vertex started> <text>` (3 decimals below
//! 10 s, 2 below 100 s, else 1, as BuildKit); its time is when its first byte
//! arrived. Output is line-buffered per vertex, so concurrent vertexes never mix
//! within a line; a partial line is printed when its newline arrives, when the
//! vertex completes, or at `finish`. When the output switches to another vertex
//! while one is still running, `#N ...` closes the running block, a blank line
//! separates blocks and the header `#N name` is printed again when it resumes.
//! A status is `#N <text>`. At `finish`, each failed vertex gets a block with its
//! last 10 output lines (`------`, ` > name:`, lines, `------`).
//!
//! **tty** (BuildKit's `display.go`): a live view, redrawn in place at most 10 times
//! a second with plain ANSI escapes, of the form
//! ```text
//! [+] Building 3.2s (7/9)
//!  => [internal] load build definition from Dockerfile                     0.0s
//!  => CACHED [build 1/4] FROM docker.io/library/python:3.12                 0.0s
//!  => [build 2/4] RUN python3 -m py_compile calc.py                         1.2s
//!  => => # last lines of its output
//!  => exporting to image                                                    0.3s
//!  => => writing layer sha256:abc… 12.3MB                                   0.1s
//! ```
//! with failed steps as `=> ERROR name`. The last 6 output lines of running vertexes
//! are shown while there is room. At `finish` a final static frame (all vertexes,
//! header ending in `FINISHED` when all completed) is drawn, followed by the error
//! blocks of failed vertexes (as in plain, up to 200 lines each). The terminal size
//! is read from stderr (`TIOCGWINSZ`), else `$COLUMNS`/`$LINES`, else 80×24. Colours
//! (blue when done, red on error) unless `NO_COLOR` is set.
//!
//! **quiet**: nothing but the error blocks of failed vertexes, at `finish`.
//!
//! # Testing
//! [`capture`] has a clonable in-memory writer ([`capture::SharedBuffer`]), a
//! hand-moved clock ([`capture::ManualClock`], passed in [`Options::clock`] for exact
//! times) and [`capture::Recorder`], a `Progress` that keeps the events so solver
//! tests can assert which steps started or were cached without parsing output.
//!
//! **rawjson**: one JSON object per event and line, shaped like BuildKit's
//! `client.SolveStatus` (as `buildx build --progress=rawjson` prints it):
//! ```text
//! {"vertexes":[{"digest":"sha256:…01","name":"[build 2/4] RUN make","started":"2024-05-01T10:00:00.123456789Z"}]}
//! {"logs":[{"vertex":"sha256:…01","stream":1,"data":"Y2MgLW8gYXBwCg==","timestamp":"…"}]}
//! {"statuses":[{"id":"writing layer sha256:abc 12.3MB","vertex":"sha256:…01","current":0,"timestamp":"…"}]}
//! {"vertexes":[{"digest":"sha256:…01","name":"[build 2/4] RUN make","started":"…","completed":"…"}]}
//! ```
//! Mapping from events:
//! - `digest` = [`vertex_digest`]`(id)`: `"sha256:"` + the id as 64 lower-case hex
//!   digits, zero-padded (id 1 → `sha256:000…0001`); [`vertex_id`] reverses it.
//! - `Started` → a vertex with `name` and `started`.
//! - `Cached` → a vertex with `started` (the earlier start, else now), `completed`
//!   (now) and `"cached":true`.
//! - `Completed` → a vertex with `started`, `completed` and, on failure, `error`.
//!   Every vertex object carries the vertex's full state (as BuildKit resends it), so
//!   the last object for a digest is its final state. Fields follow Go's
//!   `omitempty`: `cached` only when true, `error` only when set, `name` when
//!   non-empty. Times are RFC 3339 in UTC with nanoseconds (Go's `RFC3339Nano`).
//! - `Log` → `logs[0]` with `stream` 1 (stdout) or 2 (stderr) and `data` the chunk
//!   exactly as received (not line-split), standard base64 with padding.
//! - `Status` → `statuses[0]` with `id` = the text, `vertex`, `current` 0 and
//!   `timestamp`.
//!
//! So "which steps ran vs. were cached": take the last vertex object per digest;
//! `cached == true` → cache hit, else `completed` set and no `error` → ran.

pub mod capture;
mod common;
mod plain;
mod quiet;
mod rawjson;
mod time;
mod tty;

use std::fmt;
use std::io::{IsTerminal, Write};
use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

pub use plain::PlainPrinter;
pub use quiet::QuietPrinter;
pub use rawjson::RawJsonPrinter;
pub use time::{SystemClock, rfc3339};
pub use tty::TtyPrinter;

/// Identifies a vertex (a build step or an internal action) within one build.
pub type VertexId = u64;

/// Which output stream of a step a log chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// BuildKit's stream number: 1 for stdout, 2 for stderr.
    pub fn number(self) -> u8 {
        match self {
            Stream::Stdout => 1,
            Stream::Stderr => 2,
        }
    }
}

/// One progress event, reported by the solver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A step or internal action began. `name` is the BuildKit-style title, e.g.
    /// `"[build 2/4] RUN python3 -m py_compile calc.py"`, `"[internal] load build definition from Dockerfile"`,
    /// `"exporting to image"`.
    Started { id: VertexId, name: String },
    /// The step was a cache hit (no Started/Completed needed before it; printers handle either order).
    Cached { id: VertexId, name: String },
    /// Output of a running step (container stdout/stderr), arbitrary byte chunks (not line-aligned).
    Log { id: VertexId, stream: Stream, data: Vec<u8> },
    /// A status line for a vertex, e.g. "writing layer sha256:abc… 12.3MB" or
    /// "naming to docker.io/library/app:latest done".
    Status { id: VertexId, text: String },
    /// Finished; `error` set when it failed.
    Completed { id: VertexId, error: Option<String> },
}

impl Event {
    /// The vertex this event is about.
    pub fn id(&self) -> VertexId {
        match self {
            Event::Started { id, .. }
            | Event::Cached { id, .. }
            | Event::Log { id, .. }
            | Event::Status { id, .. }
            | Event::Completed { id, .. } => *id,
        }
    }
}

/// A sink for progress events. Implementations are internally synchronised.
pub trait Progress: Send + Sync {
    /// Report one event; the printer timestamps it on receipt.
    fn event(&self, event: Event);
    /// The build is over: flush, draw the final state, print the error logs of
    /// failed vertexes. Idempotent; printers also call it on drop.
    fn finish(&self) {}
}

impl<P: Progress + ?Sized> Progress for Arc<P> {
    fn event(&self, event: Event) {
        (**self).event(event)
    }
    fn finish(&self) {
        (**self).finish()
    }
}

impl<P: Progress + ?Sized> Progress for Box<P> {
    fn event(&self, event: Event) {
        (**self).event(event)
    }
    fn finish(&self) {
        (**self).finish()
    }
}

/// Discards every event (for library callers that want no progress).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _event: Event) {}
}

/// The `--progress` mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// `Tty` when stderr is a terminal, else `Plain`.
    #[default]
    Auto,
    Plain,
    Tty,
    Quiet,
    RawJson,
}

impl Mode {
    /// `Auto` resolved against stderr; other modes unchanged.
    pub fn resolve(self) -> Mode {
        match self {
            Mode::Auto if std::io::stderr().is_terminal() => Mode::Tty,
            Mode::Auto => Mode::Plain,
            m => m,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Plain => "plain",
            Mode::Tty => "tty",
            Mode::Quiet => "quiet",
            Mode::RawJson => "rawjson",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown `--progress` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid progress mode {0:?} (expected auto, plain, tty, quiet or rawjson)")]
pub struct ParseModeError(pub String);

impl FromStr for Mode {
    type Err = ParseModeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Mode::Auto),
            "plain" => Ok(Mode::Plain),
            "tty" => Ok(Mode::Tty),
            "quiet" => Ok(Mode::Quiet),
            "rawjson" => Ok(Mode::RawJson),
            _ => Err(ParseModeError(s.to_string())),
        }
    }
}

/// Where printers get the time from. The default reads the system clock
/// (monotonically); tests substitute a manual clock for exact output.
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

/// Knobs for [`printer_with`]; [`Options::default`] is what [`printer`] uses.
#[derive(Clone)]
pub struct Options {
    pub clock: Arc<dyn Clock>,
    /// tty: terminal columns; `None` = ask stderr, then `$COLUMNS`, else 80.
    pub width: Option<usize>,
    /// tty: terminal rows; `None` = ask stderr, then `$LINES`, else 24.
    pub height: Option<usize>,
    /// tty: ANSI colours; `None` = on unless `NO_COLOR` is set.
    pub color: Option<bool>,
    /// tty: run the background redraw thread (10 Hz). Off: frames are drawn only
    /// at `finish` (useful in tests).
    pub live: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { clock: Arc::new(SystemClock::new()), width: None, height: None, color: None, live: true }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("color", &self.color)
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

/// The printer for `mode`, writing to `out` (normally stderr). `Auto` is `Tty`
/// when stderr is a terminal, else `Plain`.
pub fn printer(mode: Mode, out: Box<dyn Write + Send>) -> Box<dyn Progress> {
    printer_with(mode, out, Options::default())
}

/// [`printer`] with explicit [`Options`].
pub fn printer_with(mode: Mode, out: Box<dyn Write + Send>, options: Options) -> Box<dyn Progress> {
    match mode.resolve() {
        Mode::Plain | Mode::Auto => Box::new(PlainPrinter::with_clock(out, options.clock)),
        Mode::Tty => Box::new(TtyPrinter::new(out, options)),
        Mode::Quiet => Box::new(QuietPrinter::with_clock(out, options.clock)),
        Mode::RawJson => Box::new(RawJsonPrinter::with_clock(out, options.clock)),
    }
}

/// The digest that stands for vertex `id` in rawjson output: `sha256:` followed by
/// `id` in hexadecimal, zero-padded to 64 digits.
pub fn vertex_digest(id: VertexId) -> String {
    format!("sha256:{id:064x}")
}

/// The inverse of [`vertex_digest`].
pub fn vertex_id(digest: &str) -> Option<VertexId> {
    let hex = digest.strip_prefix("sha256:")?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let (high, low) = hex.split_at(48);
    if high.bytes().any(|b| b != b'0') {
        return None;
    }
    u64::from_str_radix(low, 16).ok()
}
