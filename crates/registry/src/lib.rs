//! distill's registry client: the OCI distribution API over blocking HTTP.
//!
//! - [`client`]: the HTTP core (credentials, challenges, retries, TLS options).
//! - [`pull`]: references → manifests (platform choice from indexes) → verified blobs in the store.
//! - [`push`]: stored images → blobs (HEAD, mount, monolithic or chunked upload) → manifest PUT.
//! - [`variant`]: a stored image with its uncompressed layers compressed, for pushing.
//! - [`auth`], [`docker_config`]: bearer/basic auth, Docker's config.json and credential helpers.
//!
//! Transfers run on a few scoped threads; the store's writer stays on the
//! caller's thread and nothing is committed before it is verified.

pub mod auth;
pub mod client;
pub mod docker_config;
pub mod error;
pub mod login;
pub mod platform;
pub mod pull;
pub mod push;
pub mod variant;

pub use auth::Credentials;
pub use client::{Client, ClientOptions, Repo};
pub use docker_config::DockerConfig;
pub use error::{RegistryError, Result};
pub use platform::Platform;
pub use pull::{NoProgress, PullEvent, PullProgress, Pulled};
pub use push::{NoPushProgress, PushEvent, PushProgress, Pushed};
pub use variant::compressed_variant;
