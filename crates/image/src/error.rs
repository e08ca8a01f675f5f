//! Errors of the store, the archive formats and import/export.

use std::io;

use thiserror::Error;

use crate::digest::{Digest, DigestError};
use crate::layer::LayerError;
use crate::reference::ReferenceError;

#[derive(Debug, Error)]
pub enum Error {
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("metadata database")]
    Db(#[from] rusqlite::Error),
    #[error("{what} is not valid JSON")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error("blob {0} is not in the store")]
    BlobNotFound(Digest),
    #[error("{what}: content does not match its digest (expected {expected}, got {actual})")]
    DigestMismatch { what: String, expected: Digest, actual: Digest },
    #[error("no such image: {0}")]
    ImageNotFound(String),
    #[error("{0:?} matches more than one image; use a longer ID or a name")]
    Ambiguous(String),
    #[error("invalid archive: {0}")]
    Archive(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("{0}")]
    Conflict(String),
    #[error("invalid {what}: {message}")]
    Invalid { what: String, message: String },
    /// The name exists, but not for the platform asked for.
    #[error("image {reference} has no {wanted} variant (it is for {found})")]
    WrongPlatform { reference: String, wanted: String, found: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds a description of what was being done to I/O errors.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io { context: context(), source })
    }
}

impl Error {
    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Error {
        Error::Json { what: what.into(), source }
    }

    pub(crate) fn invalid(what: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Invalid { what: what.into(), message: message.into() }
    }
}
