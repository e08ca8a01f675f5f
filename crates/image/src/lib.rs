//! distill's image crate: digests, layers, the content-addressed store and
//! the import/export formats.

pub mod digest;
pub mod layer;
