//! The executor's error type.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong preparing a snapshot, resolving a user or
/// running a container. Messages are meant to be shown as they are, after
/// "error: ".
#[derive(Debug, Error)]
pub enum ExecError {
    /// The OCI runtime binary is not in `PATH`.
    #[error("{name} not found in PATH: install it (apt-get install runc) or pass --runtime")]
    RuntimeNotFound { name: String },
    /// An explicit runtime path that is not an executable file.
    #[error("OCI runtime {path:?} is not an executable file: install runc (apt-get install runc) or fix --runtime")]
    RuntimeNotExecutable { path: PathBuf },
    /// `USER name` with no such name in the rootfs's /etc/passwd.
    #[error("unable to find user {user}: no matching entries in passwd file")]
    UserNotFound { user: String },
    /// `USER x:group` with no such group name in the rootfs's /etc/group.
    #[error("unable to find group {group}: no matching entries in group file")]
    GroupNotFound { group: String },
    /// A `USER` value that cannot be a user (empty name, uid out of range, ...).
    #[error("invalid user {user:?}: {reason}")]
    InvalidUser { user: String, reason: String },
    /// A [`RunSpec`](super::RunSpec) the runtime could not run (relative cwd, no args, ...).
    #[error("invalid run spec: {0}")]
    InvalidSpec(String),
    /// `DISTILL_SNAPSHOTTER` holds an unknown name.
    #[error("unknown snapshotter {0:?} in DISTILL_SNAPSHOTTER: use \"overlayfs\" or \"naive\"")]
    UnknownSnapshotter(String),
    /// Mounting overlayfs failed. `detail` carries the kernel's own message
    /// when the new mount API gave one.
    #[error(
        "mounting overlayfs at {target:?} failed: {source}{detail} (set DISTILL_SNAPSHOTTER=naive to run without overlayfs)"
    )]
    Mount {
        target: PathBuf,
        detail: String,
        #[source]
        source: io::Error,
    },
    /// A file system operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// The runtime itself failed (the container did not start, or runc
    /// crashed); `output_tail` is the last output lines seen.
    #[error("{}{}", runtime_message(.runtime, .message), tail_suffix(.output_tail))]
    Runtime { runtime: String, message: String, output_tail: Vec<String> },
    /// A RUN for another architecture, and no qemu-user handler for it in
    /// binfmt_misc (see [`check_emulation`](super::check_emulation)).
    #[error("cannot run {platform} binaries on this {host} machine: {reason}")]
    NoEmulation { platform: String, host: String, reason: String },
    /// The run was cancelled (Ctrl-C, SIGTERM or [`CancelToken::cancel`](super::CancelToken::cancel));
    /// the container was killed and deleted.
    #[error("cancelled: the container was killed")]
    Cancelled,
}

/// runc's own messages start with "runc run failed: ..."; others get the
/// runtime's name in front.
fn runtime_message(runtime: &str, message: &str) -> String {
    if message.starts_with(runtime) { message.to_string() } else { format!("{runtime} failed: {message}") }
}

fn tail_suffix(tail: &[String]) -> String {
    if tail.is_empty() { String::new() } else { format!("\noutput:\n{}", tail.join("\n")) }
}

impl ExecError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        ExecError::Io { context: context.into(), source }
    }
}

/// `map_err` helper: `.map_err(ctx(|| format!("reading {path:?}")))`.
pub(crate) fn ctx<F: FnOnce() -> String>(f: F) -> impl FnOnce(io::Error) -> ExecError {
    move |e| ExecError::io(f(), e)
}
