//! The crate's error type: what went wrong, and where in the Dockerfile.
//!
//! The library knows lines and columns but not file names; the CLI adds the
//! file name and the source excerpt when it renders an [`Error`].

use thiserror::Error;

use crate::instructions::InstructionError;
use crate::parser::ParseErrorKind;
use crate::plan::PlanErrorKind;
use crate::shell::ShellError;

/// A Dockerfile error with its location.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind}")]
pub struct Error {
    pub kind: ErrorKind,
    /// First line (1-based) the error is about; 0 when it concerns no line
    /// (an empty file, a bad `--build-arg`).
    pub line: usize,
    /// Last line of the instruction the error is about (equal to `line` for
    /// single-line instructions).
    pub end_line: usize,
    /// 1-based column within `line`, when known and useful.
    pub column: Option<usize>,
}

impl Error {
    pub fn new(kind: impl Into<ErrorKind>, line: usize, end_line: usize) -> Self {
        Error { kind: kind.into(), line, end_line, column: None }
    }

    pub fn with_column(mut self, column: usize) -> Self {
        self.column = Some(column);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ErrorKind {
    #[error(transparent)]
    Parse(#[from] ParseErrorKind),
    #[error(transparent)]
    Shell(#[from] ShellError),
    #[error(transparent)]
    Instruction(#[from] InstructionError),
    #[error(transparent)]
    Plan(#[from] PlanErrorKind),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
