//! Shared by the registry commands (pull, push, login, logout, build
//! --push): TLS and credential options, and docker-like progress lines.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;
use distill_image::digest::Digest;
use distill_registry::{
    Client, ClientOptions, Credentials, DockerConfig, PullEvent, PullProgress, PushEvent, PushProgress,
};

use super::image_common::short_id;

#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArgs {
    /// Verify the registry's TLS certificate; `--tls-verify=false` also allows plain http
    /// (loopback registries are always allowed both).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub tls_verify: bool,
    /// Trust the CA certificates in this PEM file too; may be repeated.
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub ca_certs: Vec<PathBuf>,
    /// Credentials to use instead of the stored logins (`USER:PASSWORD`).
    #[arg(long, value_name = "USER:PASSWORD")]
    pub creds: Option<String>,
}

impl RegistryArgs {
    pub fn client(&self) -> anyhow::Result<Client> {
        let credentials = match &self.creds {
            Some(c) => {
                let (u, p) = c.split_once(':').context("--creds: expected USER:PASSWORD")?;
                Some(Credentials::new(u, p))
            }
            None => None,
        };
        let docker_config = DockerConfig::load_default()?;
        let opts = ClientOptions {
            tls_verify: self.tls_verify,
            ca_certs: self.ca_certs.clone(),
            credentials,
            docker_config: Some(docker_config),
            ..ClientOptions::default()
        };
        Ok(Client::new(opts)?)
    }
}

/// Docker-style pull lines (`abc123: Pull complete`), one per state change.
pub struct PullLines {
    out: Mutex<Box<dyn Write + Send>>,
    quiet: bool,
    /// Print download percentages (a terminal).
    live: bool,
    last_pct: Mutex<std::collections::HashMap<Digest, u64>>,
}

impl PullLines {
    pub fn new(quiet: bool) -> PullLines {
        PullLines {
            out: Mutex::new(Box::new(std::io::stdout())),
            quiet,
            live: std::io::stdout().is_terminal(),
            last_pct: Mutex::new(Default::default()),
        }
    }

    /// Lines on standard error (a build's standard output may be an archive or the image ID).
    pub fn to_stderr(quiet: bool) -> PullLines {
        PullLines {
            out: Mutex::new(Box::new(std::io::stderr())),
            quiet,
            live: false,
            last_pct: Mutex::new(Default::default()),
        }
    }

    pub fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
}

impl PullProgress for PullLines {
    fn event(&self, event: PullEvent) {
        match event {
            PullEvent::Resolved { .. } => {}
            PullEvent::LayerExists { digest } => self.line(&format!("{}: Already exists", short_id(&digest))),
            PullEvent::LayerWaiting { digest, .. } => self.line(&format!("{}: Pulling fs layer", short_id(&digest))),
            PullEvent::LayerProgress { digest, done, size } => {
                if !self.live || size == 0 {
                    return;
                }
                // Every 25 %: enough to see it move without flooding a log.
                let pct = done * 100 / size / 25 * 25;
                let mut last = self.last_pct.lock().unwrap_or_else(|e| e.into_inner());
                if last.get(&digest).is_none_or(|p| *p < pct) && pct < 100 {
                    last.insert(digest, pct);
                    drop(last);
                    self.line(&format!("{}: Downloading {pct}% of {size} bytes", short_id(&digest)));
                }
            }
            PullEvent::LayerRetry { digest, offset, reason } => {
                eprintln!("{}: retrying from byte {offset}: {reason}", short_id(&digest));
            }
            PullEvent::LayerVerified { digest } => self.line(&format!("{}: Pull complete", short_id(&digest))),
        }
    }
}

/// Docker-style push lines (`abc123: Pushed`).
pub struct PushLines {
    pub quiet: bool,
}

impl PushProgress for PushLines {
    fn event(&self, event: PushEvent) {
        if self.quiet {
            return;
        }
        match event {
            PushEvent::BlobExists { digest } => println!("{}: Layer already exists", short_id(&digest)),
            PushEvent::BlobMounted { digest, from } => println!("{}: Mounted from {from}", short_id(&digest)),
            PushEvent::BlobUploading { digest, .. } => println!("{}: Preparing", short_id(&digest)),
            PushEvent::BlobRetry { digest, reason } => eprintln!("{}: retrying: {reason}", short_id(&digest)),
            PushEvent::BlobPushed { digest } => println!("{}: Pushed", short_id(&digest)),
            PushEvent::ManifestPushed { .. } => {}
        }
    }
}
