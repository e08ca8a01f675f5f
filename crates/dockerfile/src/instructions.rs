//! Typed instructions with validation (BuildKit's `frontend/dockerfile/instructions`).
//!
//! STUB: being written.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InstructionError {
    #[error("{0}")]
    Other(String),
}
