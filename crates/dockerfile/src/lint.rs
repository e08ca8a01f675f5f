//! BuildKit's build checks.
//!
//! STUB: being written.
