//! Errors of COPY/ADD.

use std::io;

use crate::context::ContextError;

/// What went wrong in a COPY or ADD. Every message names the source, the
/// destination or the flag concerned (paths inside the destination root
/// filesystem are shown from its `/`).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A source could not be resolved in the build context or stage
    /// (missing, excluded by `.dockerignore`, malformed pattern, ...).
    #[error("source {pattern:?}: {source}")]
    Source {
        /// The source as written (expanded).
        pattern: String,
        /// What the context reported.
        #[source]
        source: ContextError,
    },

    /// Several sources, and the destination is neither written as a
    /// directory (`/` at the end) nor an existing directory.
    #[error(
        "When using {instruction} with more than one source file, the destination must be a directory and end with a / (destination {dest:?}, {count} sources)"
    )]
    MultipleSourcesNeedDirectory {
        /// `COPY` or `ADD`.
        instruction: &'static str,
        /// The destination as written.
        dest: String,
        /// How many sources were found.
        count: usize,
    },

    /// An `--exclude` pattern (or a `--parents` pattern) is malformed.
    #[error("invalid pattern {pattern:?}: {reason}")]
    InvalidExclude {
        /// The pattern as written.
        pattern: String,
        /// Why.
        reason: String,
    },

    /// `COPY --parents` with a wildcard in front of the `/./` pivot.
    #[error("COPY --parents {source_path:?}: wildcards in front of the /./ pivot are not supported yet")]
    ParentsWildcardPivot {
        /// The source as written.
        source_path: String,
    },

    /// `--checksum` is malformed.
    #[error("invalid --checksum={spec:?}: {reason}")]
    InvalidChecksum {
        /// The flag value.
        spec: String,
        /// Why.
        reason: String,
    },

    /// An ADD URL could not be downloaded.
    #[error("failed to download {url}: {reason}")]
    Download {
        /// The URL.
        url: String,
        /// What went wrong (status, connection, body).
        reason: String,
    },

    /// The downloaded content does not have the `--checksum` digest.
    #[error("ADD {url}: checksum mismatch: expected {expected}, got {actual}")]
    ChecksumMismatch {
        /// The URL.
        url: String,
        /// The `--checksum` value.
        expected: String,
        /// The digest of what was downloaded.
        actual: String,
    },

    /// An ADD source that is a Git repository address, malformed.
    #[error("invalid Git source {source_url}: {reason}")]
    InvalidGitSource {
        /// The source as written.
        source_url: String,
        /// Why.
        reason: String,
    },

    /// Resolving, fetching or checking out a Git source failed.
    #[error("Git source {url}: {reason}")]
    Git {
        /// The repository URL.
        url: String,
        /// What went wrong (git's own message when git failed).
        reason: String,
    },

    /// The resolved commit does not match `--checksum` (a commit prefix).
    #[error("ADD {url}: checksum mismatch: expected commit {expected}, got {actual}")]
    GitChecksumMismatch {
        /// The repository URL.
        url: String,
        /// The `--checksum` value.
        expected: String,
        /// The resolved commit.
        actual: String,
    },

    /// `--link` with user or group names in `--chown`: the copy is made
    /// into an empty file system, which has no `/etc/passwd` to read.
    #[error(
        "--chown={spec} with --link: files are copied into an empty file system, so names can't be resolved; use numeric IDs"
    )]
    LinkChownName {
        /// The flag value.
        spec: String,
    },

    /// The working directory is not absolute.
    #[error("working directory {workdir:?} is not an absolute path")]
    RelativeWorkdir {
        /// The working directory given.
        workdir: String,
    },

    /// A heredoc whose name cannot be a file name (empty, `.`, `..`).
    #[error("heredoc <<{name}: the name cannot be used as a file name")]
    InvalidHeredocName {
        /// The heredoc's name.
        name: String,
    },

    /// `--chown` is malformed.
    #[error("invalid --chown={spec:?}: {reason}")]
    InvalidChown {
        /// The flag value.
        spec: String,
        /// Why.
        reason: String,
    },

    /// `--chown` names a user that the destination's `/etc/passwd` lacks.
    #[error("--chown={spec}: unable to find user {name}: no matching entries in passwd file /etc/passwd")]
    UnknownUser {
        /// The flag value.
        spec: String,
        /// The user name.
        name: String,
    },

    /// `--chown` names a group that the destination's `/etc/group` lacks.
    #[error("--chown={spec}: unable to find group {name}: no matching entries in group file /etc/group")]
    UnknownGroup {
        /// The flag value.
        spec: String,
        /// The group name.
        name: String,
    },

    /// `--chmod` is malformed.
    #[error("invalid chmod parameter: '{spec}'. {reason}")]
    InvalidChmod {
        /// The flag value.
        spec: String,
        /// Why.
        reason: String,
    },

    /// A directory was to be copied over (or created through) something
    /// that is not a directory.
    #[error("cannot copy to non-directory: {path}")]
    NotADirectory {
        /// The path in the destination root.
        path: String,
    },

    /// A file was to replace an existing directory.
    #[error("cannot replace to directory {path} with file")]
    ReplaceDirectory {
        /// The path in the destination root.
        path: String,
    },

    /// Resolving a destination path followed too many symbolic links.
    #[error("{path}: too many levels of symbolic links")]
    SymlinkLoop {
        /// The path in the destination root.
        path: String,
    },

    /// An ADD archive entry that would land outside the extraction
    /// directory, or is otherwise not acceptable.
    #[error("archive entry {entry:?}: {reason}")]
    UnsafeArchiveEntry {
        /// The entry name as stored.
        entry: String,
        /// Why.
        reason: String,
    },

    /// Reading an ADD archive failed (corrupt tar or compressed stream).
    #[error("reading archive: {reason}")]
    Archive {
        /// What the reader reported.
        reason: String,
    },

    /// A system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation (`open`, `mkdir`, `write`, `lchown`, ...).
        op: &'static str,
        /// The path concerned (destination paths from the root's `/`).
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// An error while copying one source: says which source, to where.
    #[error("{instruction} {src} to {dest}: {source}")]
    Item {
        /// `COPY` or `ADD` (`ADD` extraction says "ADD (extract)").
        instruction: &'static str,
        /// The source (path in the context or stage, or `<<NAME` for a heredoc).
        src: String,
        /// The destination as written.
        dest: String,
        /// What went wrong.
        #[source]
        source: Box<CopyError>,
    },
}

impl CopyError {
    pub(crate) fn io(op: &'static str, path: impl Into<String>, source: io::Error) -> Self {
        CopyError::Io { op, path: path.into(), source }
    }
}

/// `Result` with [`CopyError`].
pub type Result<T, E = CopyError> = std::result::Result<T, E>;
