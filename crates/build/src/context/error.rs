//! Errors of the build-context module.

use std::io;
use std::path::PathBuf;

/// What went wrong while reading the build context, its `.dockerignore`, or
/// the hash cache. Every message names the file or pattern concerned.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A `.dockerignore` line is not a valid pattern.
    #[error("{file}:{line}: invalid .dockerignore pattern {pattern:?}: {reason}")]
    InvalidIgnorePattern {
        /// The ignore file (`.dockerignore` when parsed from text).
        file: String,
        /// 1-based line number.
        line: usize,
        /// The line as written, trimmed.
        pattern: String,
        /// Why it is invalid.
        reason: String,
    },

    /// A COPY/ADD source pattern is malformed (Go `filepath.Match` syntax).
    #[error("invalid source pattern {pattern:?}: {reason}")]
    InvalidSourcePattern {
        /// The source as given.
        pattern: String,
        /// Why it is invalid.
        reason: String,
    },

    /// A COPY/ADD source without wildcards does not exist in the context.
    #[error("failed to compute cache key: {path:?}: not found")]
    NotFound {
        /// The source, cleaned and rooted at the context (`/x`).
        path: String,
    },

    /// A COPY/ADD source exists on disk but `.dockerignore` excludes it (or a
    /// directory on the way to it), so it is not part of the context.
    #[error("failed to compute cache key: {path:?}: not found: excluded by .dockerignore")]
    Excluded {
        /// The source, cleaned and rooted at the context (`/x`).
        path: String,
    },

    /// The non-wildcard directory in front of a wildcard source is missing
    /// (BuildKit: `lstat /dir: no such file or directory`).
    #[error("lstat {path}: no such file or directory (parent of source {pattern:?})")]
    WildcardParentNotFound {
        /// The missing directory, rooted at the context (`/dir`).
        path: String,
        /// The source as given.
        pattern: String,
    },

    /// A wildcard source matched nothing, and empty matches were not allowed.
    #[error("no source files were specified: {pattern:?} matched no files in the build context")]
    NoMatch {
        /// The source as given.
        pattern: String,
    },

    /// Resolving a source followed too many symbolic links.
    #[error("{path}: too many levels of symbolic links")]
    SymlinkLoop {
        /// The source, rooted at the context.
        path: String,
    },

    /// The context root is not a directory.
    #[error("build context {path} is not a directory")]
    NotADirectory {
        /// The path given as context.
        path: PathBuf,
    },

    /// A system call on a context file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation (`lstat`, `open`, `read`, `readlink`, `write`, ...).
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl ContextError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        ContextError::Io { op, path: path.into(), source }
    }
}

/// `Result` with [`ContextError`].
pub type Result<T, E = ContextError> = std::result::Result<T, E>;
