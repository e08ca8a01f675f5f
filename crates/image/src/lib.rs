//! distill's image crate: digests, layers, the content-addressed store and
//! the import/export formats.
//!
//! - [`reference`]: Docker image references (`app:1.0` → `docker.io/library/app:1.0`).
//! - [`manifest`], [`config`]: the OCI / Docker image model, unknown fields kept.
//! - [`store`]: the local store, an OCI image layout plus a metadata database.
//! - [`archive`]: docker-archive and OCI archive, load and save.
//! - [`import`], [`export`]: root file system tars in and out.

pub mod digest;
pub mod layer;

pub mod archive;
pub mod change;
pub mod config;
pub mod error;
pub mod export;
pub mod hash_reader;
pub mod import;
pub mod json;
pub mod manifest;
pub mod reference;
pub mod store;
pub mod timestamp;

pub use error::{Error, Result};
