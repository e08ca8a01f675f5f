//! Stage planning: ARG scoping, expansion, the stage graph and pruning.
//!
//! STUB: being written.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlanErrorKind {
    #[error("{0}")]
    Other(String),
}
