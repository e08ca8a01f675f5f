//! The tty printer: BuildKit's live `[+] Building` view, redrawn in place.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::common::{LineBuffer, Ring, write_error_block};
use super::time::{log_offset, since};
use super::{Clock, Event, Options, Progress, VertexId};

/// Redraw period of the live view (BuildKit: 100–150 ms).
const REFRESH: Duration = Duration::from_millis(100);
/// Output lines shown under a running vertex (BuildKit's initial terminal height).
const TAIL_LINES: usize = 6;
/// Output lines kept per vertex for the error report.
const ERROR_LINES: usize = 200;
/// Fallback terminal size.
const DEFAULT_WIDTH: usize = 80;
const DEFAULT_HEIGHT: usize = 24;

const BLUE: &str = "\x1b[34m";
const RED: &str = "\x1b[31m";
const FAINT: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// The live view. With [`Options::live`] a background thread redraws it at most
/// 10 times a second; `finish` stops the thread and draws the final frame.
pub struct TtyPrinter {
    shared: Arc<Shared>,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    wake: Condvar,
}

struct StatusLine {
    text: String,
    start: SystemTime,
    end: Option<SystemTime>,
}

struct Vertex {
    name: String,
    started: SystemTime,
    completed: Option<SystemTime>,
    cached: bool,
    error: Option<String>,
    statuses: Vec<StatusLine>,
    lines: LineBuffer,
    tail: VecDeque<String>,
    recent: Ring,
}

struct State {
    out: Box<dyn Write + Send>,
    vertices: HashMap<VertexId, Vertex>,
    order: Vec<VertexId>,
    first: Option<SystemTime>,
    width: Option<usize>,
    height: Option<usize>,
    color: bool,
    /// Something changed since the last frame.
    dirty: bool,
    /// Lines of the frame on screen, to move back over.
    drawn: usize,
    stop: bool,
    finished: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TtyPrinter {
    /// Uses `options.clock`, `width`, `height`, `color` and `live`.
    pub fn new(out: Box<dyn Write + Send>, options: Options) -> Self {
        let color = options.color.unwrap_or_else(|| std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()));
        let shared = Arc::new(Shared {
            clock: options.clock,
            state: Mutex::new(State {
                out,
                vertices: HashMap::new(),
                order: Vec::new(),
                first: None,
                width: options.width,
                height: options.height,
                color,
                dirty: false,
                drawn: 0,
                stop: false,
                finished: false,
            }),
            wake: Condvar::new(),
        });
        let ticker = options.live.then(|| {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("progress-tty".into())
                .spawn(move || shared.run())
                .expect("spawning the progress thread")
        });
        TtyPrinter { shared, ticker: Mutex::new(ticker) }
    }
}

impl Shared {
    fn run(&self) {
        let mut state = lock(&self.state);
        while !state.stop {
            if state.dirty || state.any_running() {
                let now = self.clock.now();
                state.draw(now, false);
            }
            state = self.wake.wait_timeout(state, REFRESH).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

impl Progress for TtyPrinter {
    fn event(&self, event: Event) {
        let mut state = lock(&self.shared.state);
        let now = self.shared.clock.now();
        state.handle(event, now);
    }

    fn finish(&self) {
        {
            let mut state = lock(&self.shared.state);
            if state.finished {
                return;
            }
            state.stop = true;
        }
        self.shared.wake.notify_all();
        if let Some(handle) = lock(&self.ticker).take() {
            let _ = handle.join();
        }
        let mut state = lock(&self.shared.state);
        if state.finished {
            return;
        }
        state.finished = true;
        let now = self.shared.clock.now();
        state.finish(now);
    }
}

impl Drop for TtyPrinter {
    fn drop(&mut self) {
        self.finish();
    }
}

impl State {
    fn any_running(&self) -> bool {
        self.vertices.values().any(|v| v.completed.is_none())
    }

    fn handle(&mut self, event: Event, now: SystemTime) {
        self.dirty = true;
        self.first.get_or_insert(now);
        let id = event.id();
        let order = &mut self.order;
        let v = self.vertices.entry(id).or_insert_with(|| {
            order.push(id);
            Vertex {
                name: String::new(),
                started: now,
                completed: None,
                cached: false,
                error: None,
                statuses: Vec::new(),
                lines: LineBuffer::default(),
                tail: VecDeque::new(),
                recent: Ring::new(ERROR_LINES),
            }
        });
        match event {
            Event::Started { name, .. } => {
                if v.completed.is_some() {
                    v.completed = None;
                    v.cached = false;
                    v.error = None;
                    v.started = now;
                    v.statuses.clear();
                }
                if v.name.is_empty() {
                    v.name = name;
                }
            }
            Event::Cached { name, .. } => {
                if v.name.is_empty() {
                    v.name = name;
                }
                if v.completed.is_none() {
                    v.cached = true;
                    v.complete(now);
                }
            }
            Event::Log { data, .. } => {
                let lines = v.lines.push(&data, now);
                v.record(lines);
            }
            Event::Status { text, .. } => {
                if let Some(last) = v.statuses.last_mut() {
                    last.end.get_or_insert(now);
                }
                let end = v.completed.map(|_| now);
                v.statuses.push(StatusLine { text, start: now, end });
            }
            Event::Completed { error, .. } => {
                if v.completed.is_none() {
                    v.error = error;
                    v.complete(now);
                }
            }
        }
    }

    fn size(&self) -> (usize, usize) {
        let ws = rustix::termios::tcgetwinsize(std::io::stderr()).ok();
        let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<usize>().ok()).filter(|&n| n > 0);
        let width = self
            .width
            .or_else(|| ws.map(|w| usize::from(w.ws_col)).filter(|&n| n > 0))
            .or_else(|| env("COLUMNS"))
            .unwrap_or(DEFAULT_WIDTH);
        let height = self
            .height
            .or_else(|| ws.map(|w| usize::from(w.ws_row)).filter(|&n| n > 0))
            .or_else(|| env("LINES"))
            .unwrap_or(DEFAULT_HEIGHT);
        (width, height)
    }

    /// Draws a frame over the previous one.
    fn draw(&mut self, now: SystemTime, all: bool) {
        self.dirty = false;
        let (width, height) = self.size();
        let lines = render(self, now, width, height, all);
        let mut frame = String::from("\x1b[?25l");
        if self.drawn > 0 {
            frame.push_str(&format!("\x1b[{}A\r", self.drawn));
        }
        for line in &lines {
            frame.push_str(line);
            frame.push_str("\x1b[K\n");
        }
        frame.push_str("\x1b[J\x1b[?25h");
        self.drawn = lines.len();
        let _ = self.out.write_all(frame.as_bytes());
        let _ = self.out.flush();
    }

    fn finish(&mut self, now: SystemTime) {
        for v in self.vertices.values_mut() {
            let partial = v.lines.take_partial();
            v.record(partial);
        }
        self.draw(now, true);
        for id in &self.order {
            let v = &self.vertices[id];
            if v.error.is_some() {
                write_error_block(&mut *self.out, &v.name, &v.recent);
            }
        }
        let _ = self.out.flush();
    }
}

impl Vertex {
    fn complete(&mut self, now: SystemTime) {
        self.completed = Some(now);
        let partial = self.lines.take_partial();
        self.record(partial);
        for s in &mut self.statuses {
            s.end.get_or_insert(now);
        }
    }

    fn record(&mut self, lines: impl IntoIterator<Item = (SystemTime, String)>) {
        for (at, text) in lines {
            self.recent.push(format!("{} {}", log_offset(since(at, self.started)), text));
            if self.tail.len() == TAIL_LINES {
                self.tail.pop_front();
            }
            self.tail.push_back(text);
        }
    }

    /// The last output lines, as the terminal would show them.
    fn tail_lines(&self) -> Vec<String> {
        let partial = self.lines.partial();
        let partial = (!partial.is_empty()).then(|| String::from_utf8_lossy(partial).into_owned());
        let mut lines: Vec<String> = self.tail.iter().chain(partial.iter()).map(|l| sanitize(l)).collect();
        lines.retain(|l| !l.trim().is_empty());
        let skip = lines.len().saturating_sub(TAIL_LINES);
        lines.drain(..skip);
        lines
    }
}

/// One line of text with no control characters: what follows the last carriage
/// return (the terminal overwrites the rest), escape sequences dropped, tabs expanded.
fn sanitize(line: &str) -> String {
    let line = line.rsplit('\r').find(|s| !s.trim().is_empty()).unwrap_or("");
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI: ESC [ params final-byte; other escapes: ESC + one char.
                if chars.next_if_eq(&'[').is_some() {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\t' => out.push_str("    "),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

struct Job {
    text: String,
    completed: bool,
    error: bool,
    /// Index of the running vertex whose output may follow this line.
    tail_of: Option<VertexId>,
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `prefix name … time`, the time right-aligned at `width`; `None` when too narrow.
fn job_line(prefix: &str, name: &str, secs: f64, width: usize) -> Option<String> {
    let secs = if secs < 0.05 { 0.0 } else { secs };
    let timer = format!(" {secs:.1}s");
    let left = width.checked_sub(prefix.len() + timer.len() + 1).filter(|&l| l >= 12)?;
    let head = format!("{prefix}{}", truncate(name, left));
    let pad = (width - timer.len() - 1).saturating_sub(head.chars().count());
    Some(format!("{head}{} {timer}", " ".repeat(pad)))
}

/// The frame's lines (colours included), at most `height` of them unless `all`.
fn render(state: &State, now: SystemTime, width: usize, height: usize, all: bool) -> Vec<String> {
    // Keep clear of the last column: writing there leaves terminals in a pending-wrap state.
    let width = width.saturating_sub(1).max(20);
    let total = state.order.len();
    let done = state.vertices.values().filter(|v| v.completed.is_some()).count();
    let elapsed = state.first.map(|f| since(now, f).as_secs_f64()).unwrap_or(0.0);
    let finished = if all && total > 0 && done == total { " FINISHED" } else { "" };
    let header = format!("[+] Building {elapsed:.1}s ({done}/{total}){finished}");
    let mut lines = vec![truncate(&header, width).to_string()];

    let mut jobs = Vec::new();
    for id in &state.order {
        let v = &state.vertices[id];
        let mut name = v.name.replace('\t', " ");
        if v.error.is_some() {
            name = format!("ERROR {name}");
        }
        if v.cached {
            name = format!("CACHED {name}");
        }
        let secs = since(v.completed.unwrap_or(now), v.started).as_secs_f64();
        if let Some(text) = job_line(" => ", &name, secs, width) {
            jobs.push(Job {
                text,
                completed: v.completed.is_some(),
                error: v.error.is_some(),
                tail_of: v.completed.is_none().then_some(*id),
            });
        }
        for s in &v.statuses {
            let secs = since(s.end.unwrap_or(now), s.start).as_secs_f64();
            if let Some(text) = job_line(" => => ", &s.text.replace('\t', " "), secs, width) {
                jobs.push(Job { text, completed: s.end.is_some(), error: false, tail_of: None });
            }
        }
    }

    let mut free = usize::MAX;
    if !all {
        // Room for jobs: the terminal minus the header and the cursor's line.
        let limit = height.saturating_sub(2).max(1);
        while jobs.len() > limit {
            match jobs.iter().position(|j| j.completed) {
                Some(i) => {
                    jobs.remove(i);
                }
                None => {
                    jobs.drain(..jobs.len() - limit);
                }
            }
        }
        free = limit - jobs.len();
    }

    for job in jobs {
        let text = match (state.color && job.completed, job.error) {
            (true, true) => format!("{RED}{}{RESET}", job.text),
            (true, false) => format!("{BLUE}{}{RESET}", job.text),
            _ => job.text,
        };
        lines.push(text);
        if all {
            continue;
        }
        if let Some(id) = job.tail_of {
            let tail = state.vertices[&id].tail_lines();
            if !tail.is_empty() && tail.len() < free {
                free -= tail.len();
                for l in tail {
                    let l = format!(" => => # {l}");
                    let l = truncate(&l, width);
                    lines.push(if state.color { format!("{FAINT}{l}{RESET}") } else { l.to_string() });
                }
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_keeps_what_the_terminal_shows() {
        assert_eq!(sanitize("10%\r50%\r100%"), "100%");
        assert_eq!(sanitize("done\r"), "done");
        assert_eq!(sanitize("\x1b[31mred\x1b[0m\tx\x07"), "red    x");
    }

    #[test]
    fn job_lines_right_align_the_time() {
        let l = job_line(" => ", "[build 2/4] RUN make", 1.24, 40).unwrap();
        assert_eq!(l, format!(" => [build 2/4] RUN make{}1.2s", " ".repeat(12)));
        assert_eq!(l.len(), 40);
        let l = job_line(" => ", &"x".repeat(100), 0.01, 40).unwrap();
        assert_eq!(l.len(), 40);
        assert!(l.ends_with("  0.0s"));
        assert!(job_line(" => ", "x", 1.0, 15).is_none());
    }
}

#[cfg(test)]
mod render_tests {
    use super::*;
    use crate::progress::capture::SharedBuffer;
    use std::time::UNIX_EPOCH;

    fn state() -> State {
        State {
            out: SharedBuffer::new().boxed(),
            vertices: HashMap::new(),
            order: Vec::new(),
            first: None,
            width: Some(80),
            height: Some(10),
            color: false,
            dirty: false,
            drawn: 0,
            stop: false,
            finished: false,
        }
    }

    #[test]
    fn live_frames_fit_the_terminal_and_keep_running_vertexes() {
        let mut s = state();
        let t = UNIX_EPOCH;
        for id in 1..=12 {
            s.handle(Event::Cached { id, name: format!("cached {id}") }, t);
        }
        s.handle(Event::Started { id: 20, name: "running".into() }, t);
        s.handle(Event::Log { id: 20, stream: super::super::Stream::Stdout, data: b"a\nb\nc\n".to_vec() }, t);
        let lines = render(&s, t, 80, 10, false);
        assert!(lines.len() <= 9, "{lines:#?}");
        assert!(lines[0].starts_with("[+] Building 0.0s (12/13)"));
        assert!(lines.iter().any(|l| l.starts_with(" => running")), "{lines:#?}");
        assert!(lines.iter().any(|l| l.starts_with(" => CACHED cached 12")), "{lines:#?}");
        assert!(!lines.iter().any(|l| l.starts_with(" => CACHED cached 1 ")), "{lines:#?}");
        // The final frame shows everything, no output tails.
        let all = render(&s, t, 80, 10, true);
        assert_eq!(all.len(), 14);
    }

    #[test]
    fn tails_show_only_when_there_is_room() {
        let mut s = state();
        let t = UNIX_EPOCH;
        s.handle(Event::Started { id: 1, name: "one".into() }, t);
        let data = (1..=9).map(|i| format!("line {i}\n")).collect::<String>().into_bytes();
        s.handle(Event::Log { id: 1, stream: super::super::Stream::Stdout, data }, t);
        s.handle(
            Event::Log { id: 1, stream: super::super::Stream::Stdout, data: b"progress 10%\rprogress 90%".to_vec() },
            t,
        );
        let lines = render(&s, t, 80, 24, false);
        let tail: Vec<_> = lines.iter().filter(|l| l.starts_with(" => => # ")).collect();
        assert_eq!(tail.len(), TAIL_LINES);
        assert_eq!(tail[0], " => => # line 5");
        assert_eq!(tail[5], " => => # progress 90%");
        let lines = render(&s, t, 80, 5, false);
        assert_eq!(lines.len(), 2, "{lines:#?}");
    }
}
