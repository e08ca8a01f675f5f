//! Build context: `.dockerignore` matching, selecting COPY/ADD sources,
//! walking and content hashing.
//!
//! - [`IgnoreMatcher`] implements Docker's `.dockerignore` rules exactly
//!   (moby/patternmatcher), and [`load_ignore`] finds the file the way
//!   BuildKit does (`<Dockerfile>.dockerignore` first).
//! - [`Context`] is a context directory with its rules: [`Context::select`]
//!   resolves a COPY/ADD source like BuildKit (Go `filepath.Match` globs,
//!   `..` clamped at the root, symlinks followed within the context,
//!   directories expanded, excluded files absent).
//! - [`Context::content_digest`] hashes selected entries for cache keys
//!   (path, type, mode, owner, content or link target; never timestamps),
//!   reading only files that a [`HashCache`] does not already know.

mod error;
pub(crate) mod gomatch;
mod hash;
mod ignore;
mod walk;

pub use error::{ContextError, Result};
pub use hash::{HashCache, content_digest};
pub use ignore::{IgnoreMatcher, load_ignore};
pub use walk::{Context, Entry, EntryKind, SelectOptions};
