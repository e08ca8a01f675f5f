//! The builder's error type. Errors tied to a Dockerfile instruction carry
//! its lines, so the CLI can show the source like BuildKit does.

use thiserror::Error;

use crate::context::ContextError;
use crate::copy::CopyError;
use crate::executor::ExecError;

#[derive(Debug, Error)]
pub enum BuildError {
    /// Parsing or planning the Dockerfile failed.
    #[error(transparent)]
    Dockerfile(#[from] distill_dockerfile::Error),
    /// The image store failed (I/O, a corrupt blob, a digest mismatch...).
    #[error(transparent)]
    Store(#[from] distill_image::Error),
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error(transparent)]
    Copy(#[from] CopyError),
    /// A base image (or `COPY --from` image) that is not in the local store.
    #[error(
        "image {reference:?} is not in the local store and could not be pulled: \
         log in with `distill login`, or load it with `distill load -i IMAGE.tar` (from `docker save` or `skopeo copy … docker-archive:IMAGE.tar`) \
         or create it with `distill import ROOTFS.tar {reference}`"
    )]
    ImageNotFound { reference: String },
    /// A step failed; `start_line..=end_line` is its instruction.
    #[error("{message}")]
    Step {
        start_line: usize,
        end_line: usize,
        message: String,
        /// The last output lines of a failed RUN.
        output_tail: Vec<String>,
    },
    /// A stage this one needs failed (its own error is reported separately).
    #[error("stage {stage} was not built because a stage it needs failed")]
    DependencyFailed { stage: String },
    #[error("build cancelled")]
    Cancelled,
    /// A feature distill refuses or does not have (yet), said plainly.
    #[error("{0}")]
    Unsupported(String),
    /// An invariant of the builder broke (a bug, not bad input).
    #[error("internal error: {0}")]
    Internal(String),
}

impl BuildError {
    /// The Dockerfile lines the error is about, if any.
    pub fn lines(&self) -> Option<(usize, usize)> {
        match self {
            BuildError::Step { start_line, end_line, .. } => Some((*start_line, *end_line)),
            BuildError::Dockerfile(e) if e.line > 0 => Some((e.line, e.end_line.max(e.line))),
            _ => None,
        }
    }

    /// Whether this is a cancellation (Ctrl-C) rather than a failure.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, BuildError::Cancelled | BuildError::Exec(ExecError::Cancelled))
    }

    pub(crate) fn step(start_line: usize, end_line: usize, message: impl Into<String>) -> BuildError {
        BuildError::Step { start_line, end_line, message: message.into(), output_tail: Vec::new() }
    }

    /// Attaches an instruction's lines to an error that has none.
    pub(crate) fn at(self, start_line: usize, end_line: usize) -> BuildError {
        match self {
            e @ (BuildError::Step { .. } | BuildError::Cancelled | BuildError::DependencyFailed { .. }) => e,
            BuildError::Exec(ExecError::Cancelled) => BuildError::Cancelled,
            e => BuildError::step(start_line, end_line, e.to_string()),
        }
    }
}

impl From<distill_image::layer::LayerError> for BuildError {
    fn from(e: distill_image::layer::LayerError) -> Self {
        BuildError::Store(e.into())
    }
}
