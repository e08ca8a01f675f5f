//! Errors of the registry client. Each names what was asked for (the
//! reference, and for auth failures the scope), so the CLI can print it as is.

use std::io;

use distill_image::digest::Digest;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RegistryError {
    /// 401 after the auth flow: no or wrong credentials.
    #[error("unauthorized: {registry} refused access to {reference} (scope {scope}){}: {detail}", login_hint(.registry))]
    Unauthorized { registry: String, reference: String, scope: String, detail: String },
    /// 403: the credentials are valid but do not grant the scope.
    #[error("denied: {registry} does not allow {scope} for {reference}: {detail}")]
    Denied { registry: String, reference: String, scope: String, detail: String },
    /// 404 on a manifest or blob.
    #[error("not found: {what} ({reference}): {detail}")]
    NotFound { what: String, reference: String, detail: String },
    /// Any other unexpected HTTP status (after retries for 429/5xx).
    #[error("{method} {url}: HTTP {status}: {detail}")]
    Status { method: String, url: String, status: u16, detail: String },
    /// Connection-level failure (after retries).
    #[error("{method} {url}: {message}")]
    Transport { method: String, url: String, message: String },
    /// Content that does not match the digest (or size) the registry promised.
    #[error("{what}: content does not match its digest (expected {expected}, got {actual})")]
    DigestMismatch { what: String, expected: Digest, actual: Digest },
    #[error("{what}: expected {expected} bytes, got {actual}")]
    SizeMismatch { what: String, expected: u64, actual: u64 },
    #[error("{reference}: no image for platform {platform} (available: {available})")]
    NoPlatform { reference: String, platform: String, available: String },
    /// Registry data that is not what the distribution spec says.
    #[error("invalid {what}: {message}")]
    Invalid { what: String, message: String },
    #[error("credentials: {0}")]
    Credentials(String),
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Store(#[from] distill_image::Error),
}

fn login_hint(registry: &str) -> String {
    format!(" (check `distill login {registry}`)")
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

impl RegistryError {
    pub(crate) fn invalid(what: impl Into<String>, message: impl Into<String>) -> RegistryError {
        RegistryError::Invalid { what: what.into(), message: message.into() }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> RegistryError {
        RegistryError::Io { context: context.into(), source }
    }

    /// Whether retrying the same transfer could help (bad bytes on the wire,
    /// a dropped connection), as opposed to a definite answer.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self,
            RegistryError::Transport { .. }
                | RegistryError::DigestMismatch { .. }
                | RegistryError::SizeMismatch { .. }
                | RegistryError::Status { status: 429 | 500..=599, .. }
        )
    }
}
