//! Running a [`RunSpec`] with an OCI runtime binary (runc): bundle, mount
//! stubs, `runc run`, output streaming, cancellation, and cleanup that always
//! runs (`runc delete --force`, stub removal).

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::event::{PollFd, PollFlags, poll};

use super::error::{ExecError, ctx};
use super::spec::{RunSpec, oci_config_with_mounts, oci_mounts};
use super::stubs;

/// Where distill keeps runc's state unless told otherwise (runc's own
/// default, /run/runc, stays untouched).
pub const DEFAULT_STATE_ROOT: &str = "/run/distill/runc";

/// Directories searched after `PATH` (Debian installs runc in /usr/sbin,
/// which a user's `PATH` often lacks).
const SBIN_FALLBACK: [&str; 3] = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// How many trailing output lines [`RunOutcome::output_tail`] keeps.
const TAIL_LINES: usize = 20;

/// An OCI runtime binary and the state dir it is run with (`--root`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    path: PathBuf,
    name: String,
    root: PathBuf,
}

impl Runtime {
    /// `None`: `runc` from `PATH`. A name without `/` is looked up in
    /// `PATH`; a path must be an executable file. The state root is
    /// [`DEFAULT_STATE_ROOT`].
    pub fn resolve(runtime: Option<&str>) -> Result<Self, ExecError> {
        let given = runtime.unwrap_or("runc");
        let path = if given.contains('/') {
            let p = PathBuf::from(given);
            if !is_executable(&p) {
                return Err(ExecError::RuntimeNotExecutable { path: p });
            }
            p
        } else {
            let path_var = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path_var)
                .chain(SBIN_FALLBACK.iter().map(PathBuf::from))
                .map(|d| d.join(given))
                .find(|p| is_executable(p))
                .ok_or_else(|| ExecError::RuntimeNotFound { name: given.to_string() })?
        };
        let name = path.file_name().map_or_else(|| given.to_string(), |n| n.to_string_lossy().into_owned());
        Ok(Runtime { path, name, root: PathBuf::from(DEFAULT_STATE_ROOT) })
    }

    /// The same runtime with another state dir (`--root`).
    pub fn with_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = root.into();
        self
    }

    /// The runtime binary.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The binary's file name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The state dir passed as `--root`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.path);
        c.arg("--root").arg(&self.root);
        c
    }

    /// `runc kill <id> KILL`; whether the runtime accepted it.
    fn kill(&self, id: &str) -> bool {
        self.command()
            .args(["kill", id, "KILL"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `runc delete --force <id>`; a container that is already gone is fine.
    fn delete(&self, id: &str) {
        let _ = self
            .command()
            .args(["delete", "--force", id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A flag that stops a running step: set it (from any thread, or from a
/// signal handler via [`CancelToken::cancel_on_signals`]) and [`run`] kills
/// the container, deletes it, and returns [`ExecError::Cancelled`].
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// The shared flag itself.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }

    /// Makes SIGINT (Ctrl-C), SIGTERM and SIGHUP set this token instead of
    /// killing the process, so running containers are killed and deleted; a
    /// second such signal exits at once (status 130/143/129). The CLI calls
    /// this once at start-up and checks the token between steps. (runc runs
    /// in its own process group, so a terminal's Ctrl-C reaches only distill,
    /// which then stops the container.)
    pub fn cancel_on_signals(&self) -> io::Result<()> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        for (sig, code) in [(SIGINT, 130), (SIGTERM, 143), (SIGHUP, 129)] {
            signal_hook::flag::register_conditional_shutdown(sig, code, self.flag())?;
            signal_hook::flag::register(sig, self.flag())?;
        }
        Ok(())
    }
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The process's exit code; 128 + signal number when killed by one.
    pub exit_code: i32,
    /// The last output lines (stdout and stderr interleaved), for messages.
    pub output_tail: Vec<String>,
    /// The container id used with the runtime.
    pub container_id: String,
}

impl RunOutcome {
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn container_id() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("distill-{}-{}-{:08x}", std::process::id(), NEXT_ID.fetch_add(1, Ordering::Relaxed), nanos)
}

/// Runs `spec` over `rootfs` with the runtime and returns its exit code.
///
/// Writes `config.json` into `bundle_dir` (created if missing), creates the
/// mount points the rootfs lacks, and runs `runc --root R run --bundle B ID`
/// with stdin from /dev/null and stdout+stderr through one pipe, streamed to
/// `output` as they come. (runc itself relays the container's stdout and
/// stderr through two pipes of its own, so each stream keeps its order but
/// their interleaving is best effort, as with BuildKit.) A non-zero exit code is an `Ok` outcome; the
/// runtime failing to start the container is [`ExecError::Runtime`].
///
/// When `cancel` is set (or was set before), the container is killed
/// (`runc kill ID KILL`, retried until the runtime knows the container; the
/// runtime process itself after 10 s) and the result is
/// [`ExecError::Cancelled`]. In every case `runc delete --force ID` runs
/// afterwards, so the state root keeps nothing, and the mount-point stubs
/// are removed again.
pub fn run(
    runtime: &Runtime,
    bundle_dir: &Path,
    spec: &RunSpec,
    rootfs: &Path,
    cancel: &CancelToken,
    mut output: impl FnMut(&[u8]),
) -> Result<RunOutcome, ExecError> {
    run_with(runtime, bundle_dir, spec, rootfs, cancel, false, &mut |_, bytes| output(bytes))
}

/// Which stream a piece of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Like [`run`], with stdout and stderr kept apart (two pipes), for callers
/// that compare what a program prints (slim's verification probes).
pub fn run_split(
    runtime: &Runtime,
    bundle_dir: &Path,
    spec: &RunSpec,
    rootfs: &Path,
    cancel: &CancelToken,
    mut output: impl FnMut(Stream, &[u8]),
) -> Result<RunOutcome, ExecError> {
    run_with(runtime, bundle_dir, spec, rootfs, cancel, true, &mut output)
}

fn run_with(
    runtime: &Runtime,
    bundle_dir: &Path,
    spec: &RunSpec,
    rootfs: &Path,
    cancel: &CancelToken,
    split: bool,
    output: &mut dyn FnMut(Stream, &[u8]),
) -> Result<RunOutcome, ExecError> {
    spec.validate()?;
    if cancel.is_cancelled() {
        return Err(ExecError::Cancelled);
    }
    let rootfs = fs::canonicalize(rootfs).map_err(ctx(|| format!("resolving rootfs {rootfs:?}")))?;
    fs::create_dir_all(bundle_dir).map_err(ctx(|| format!("creating bundle dir {bundle_dir:?}")))?;
    let bundle = fs::canonicalize(bundle_dir).map_err(ctx(|| format!("resolving {bundle_dir:?}")))?;

    let id = container_id();
    let mut mounts = oci_mounts(spec);
    let mut stubs = stubs::create(&rootfs, &mut mounts)?;
    let config = oci_config_with_mounts(spec, &rootfs, &format!("/distill/{id}"), &mounts)?;
    let config_path = bundle.join("config.json");
    fs::write(&config_path, config).map_err(ctx(|| format!("writing {config_path:?}")))?;
    let log_path = bundle.join("runtime.log");
    let _ = fs::remove_file(&log_path);

    // From here on, whatever happens (errors, a panicking callback), the
    // container is deleted (`delete --force` also kills it) and then the
    // stubs are removed: drops run in reverse order.
    let container = Container { runtime, id: &id };
    let result = run_container(runtime, &bundle, &log_path, &id, cancel, split, output);
    drop(container);
    stubs.cleanup();

    let (status, tail) = result?;
    if cancel.is_cancelled() {
        return Err(ExecError::Cancelled);
    }
    let exit_code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    if exit_code != 0
        && let Some(message) = runtime_error(&log_path)
    {
        return Err(ExecError::Runtime { runtime: runtime.name.clone(), message, output_tail: tail });
    }
    Ok(RunOutcome { exit_code, output_tail: tail, container_id: id })
}

/// Deletes the container when dropped.
struct Container<'a> {
    runtime: &'a Runtime,
    id: &'a str,
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        self.runtime.delete(self.id);
    }
}

fn run_container(
    runtime: &Runtime,
    bundle: &Path,
    log_path: &Path,
    id: &str,
    cancel: &CancelToken,
    split: bool,
    output: &mut dyn FnMut(Stream, &[u8]),
) -> Result<(ExitStatus, Vec<String>), ExecError> {
    let (out_reader, out_writer) = io::pipe().map_err(ctx(|| "creating the output pipe".to_string()))?;
    let (err_reader, err_writer) = if split {
        let (r, w) = io::pipe().map_err(ctx(|| "creating the error pipe".to_string()))?;
        (Some(r), w)
    } else {
        (None, out_writer.try_clone().map_err(ctx(|| "duplicating the output pipe".to_string()))?)
    };
    let mut child = {
        let mut cmd = runtime.command();
        cmd.arg("--log")
            .arg(log_path)
            .args(["--log-format", "json", "run", "--bundle"])
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(out_writer)
            .stderr(err_writer)
            // Its own process group: a terminal's Ctrl-C reaches distill,
            // which kills the container properly, and not runc halfway.
            .process_group(0);
        cmd.spawn().map_err(ctx(|| format!("starting {:?}", runtime.path)))?
        // `cmd` (holding our copies of the write end) drops here, so the
        // pipe ends when the runtime and the container close it.
    };

    let mut readers: Vec<(Stream, io::PipeReader)> = vec![(Stream::Stdout, out_reader)];
    readers.extend(err_reader.map(|r| (Stream::Stderr, r)));
    let mut tail = Tail::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut cancelled_at: Option<Instant> = None;
    let mut last_kill: Option<Instant> = None;
    let mut runtime_killed = false;
    loop {
        if cancel.is_cancelled() {
            let now = Instant::now();
            let since = *cancelled_at.get_or_insert(now);
            if last_kill.is_none_or(|t| now - t >= Duration::from_millis(100)) {
                last_kill = Some(now);
                let _ = runtime.kill(id);
            }
            if now - since >= Duration::from_secs(10) && !runtime_killed {
                // The runtime does not react: kill it; `delete --force`
                // (always run afterwards) removes the container.
                let _ = rustix::process::kill_process_group(
                    rustix::process::Pid::from_child(&child),
                    rustix::process::Signal::KILL,
                );
                runtime_killed = true;
            }
            if now - since >= Duration::from_secs(12) {
                break;
            }
        }
        if readers.is_empty() {
            break;
        }
        let mut fds: Vec<PollFd> = readers.iter().map(|(_, r)| PollFd::new(r, PollFlags::IN)).collect();
        let timeout = rustix::event::Timespec { tv_sec: 0, tv_nsec: 50_000_000 };
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                kill_child(&mut child);
                return Err(ExecError::io("waiting for container output", e.into()));
            }
        }
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        let mut closed = Vec::new();
        for (i, (stream, reader)) in readers.iter_mut().enumerate() {
            if !ready[i] {
                continue;
            }
            match reader.read(&mut buf) {
                Ok(0) => closed.push(i),
                Ok(n) => {
                    tail.push(&buf[..n]);
                    output(*stream, &buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    kill_child(&mut child);
                    return Err(ExecError::io("reading container output", e));
                }
            }
        }
        for i in closed.into_iter().rev() {
            readers.remove(i);
        }
    }
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {
                if cancel.is_cancelled() && last_kill.is_none_or(|t| t.elapsed() >= Duration::from_millis(100)) {
                    last_kill = Some(Instant::now());
                    let _ = runtime.kill(id);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(ExecError::io(format!("waiting for {}", runtime.name), e)),
        }
    };
    Ok((status, tail.lines()))
}

fn kill_child(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The runtime's own error messages (level error or fatal) from its JSON log.
fn runtime_error(log_path: &Path) -> Option<String> {
    let text = fs::read_to_string(log_path).ok()?;
    let msgs: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| matches!(v["level"].as_str(), Some("error" | "fatal")))
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .collect();
    if msgs.is_empty() { None } else { Some(msgs.join("; ")) }
}

/// The last [`TAIL_LINES`] lines of a byte stream.
#[derive(Default)]
struct Tail {
    lines: VecDeque<String>,
    partial: Vec<u8>,
}

impl Tail {
    fn push(&mut self, mut bytes: &[u8]) {
        while let Some(i) = bytes.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&bytes[..i]);
            self.finish_line();
            bytes = &bytes[i + 1..];
        }
        // Cap a runaway line; what matters is its end.
        self.partial.extend_from_slice(bytes);
        if self.partial.len() > 4096 {
            self.partial.drain(..self.partial.len() - 4096);
        }
    }

    fn finish_line(&mut self) {
        let line = String::from_utf8_lossy(&self.partial).trim_end_matches('\r').to_string();
        self.partial.clear();
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    fn lines(mut self) -> Vec<String> {
        if !self.partial.is_empty() {
            self.finish_line();
        }
        self.lines.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_lines() {
        let mut t = Tail::default();
        for i in 0..30 {
            t.push(format!("line {i}\n").as_bytes());
        }
        t.push(b"partial");
        let lines = t.lines();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines.last().unwrap(), "partial");
        assert_eq!(lines[0], "line 11");
    }

    #[test]
    fn missing_runtime_message() {
        let e = Runtime::resolve(Some("distill-no-such-runtime")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "distill-no-such-runtime not found in PATH: install it (apt-get install runc) or pass --runtime"
        );
        assert!(matches!(Runtime::resolve(Some("/nonexistent/runc")), Err(ExecError::RuntimeNotExecutable { .. })));
    }

    #[test]
    fn runtime_errors_from_the_json_log() {
        let dir = std::env::temp_dir().join(format!("distill-rtlog-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        fs::write(&log, "{\"level\":\"warning\",\"msg\":\"w\"}\n{\"level\":\"error\",\"msg\":\"exec: not found\"}\n")
            .unwrap();
        assert_eq!(runtime_error(&log).as_deref(), Some("exec: not found"));
        fs::write(&log, "{\"level\":\"warning\",\"msg\":\"w\"}\n").unwrap();
        assert_eq!(runtime_error(&log), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
