//! distill's build engine. Modules arrive with issue 4: `context` (reading the
//! build context with `.dockerignore` semantics, content hashing) and
//! `executor` (running RUN steps with an OCI runtime over overlayfs).

pub mod context;
pub mod copy;
pub mod executor;
pub mod progress;
pub mod solver;
