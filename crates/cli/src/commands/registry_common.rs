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

use super::image_common::{human_size, short_id};

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
        Ok(Client::new(self.options()?)?)
    }

    /// The client settings these options ask for, with stored logins from Docker's config.
    pub fn options(&self) -> anyhow::Result<ClientOptions> {
        let credentials = match &self.creds {
            Some(c) => {
                let (u, p) = c.split_once(':').context("--creds: expected USER:PASSWORD")?;
                Some(Credentials::new(u, p))
            }
            None => None,
        };
        let docker_config = DockerConfig::load_default()?;
        Ok(ClientOptions {
            tls_verify: self.tls_verify,
            ca_certs: self.ca_certs.clone(),
            credentials,
            docker_config: Some(docker_config),
            ..ClientOptions::default()
        })
    }
}

/// Docker-style pull progress. On a terminal, one line per layer redrawn in
/// place (`abc123: Downloading [====>   ] 12.3MB/40MB`); elsewhere one line
/// per state change (`abc123: Pull complete`), which reads well in logs.
pub struct PullLines {
    out: Mutex<Box<dyn Write + Send>>,
    quiet: bool,
    live: bool,
    board: Mutex<Board>,
}

/// The layers shown on a terminal, in order, and how many lines were drawn last.
#[derive(Default)]
struct Board {
    rows: Vec<(Digest, String)>,
    drawn: usize,
    last_draw: Option<std::time::Instant>,
}

impl PullLines {
    pub fn new(quiet: bool) -> PullLines {
        let live = !quiet && std::io::stdout().is_terminal() && std::env::var_os("TERM").is_some_and(|t| t != "dumb");
        PullLines { out: Mutex::new(Box::new(std::io::stdout())), quiet, live, board: Mutex::new(Board::default()) }
    }

    /// Lines on standard error (a build's standard output may be an archive or the image ID).
    pub fn to_stderr(quiet: bool) -> PullLines {
        PullLines {
            out: Mutex::new(Box::new(std::io::stderr())),
            quiet,
            live: false,
            board: Mutex::new(Board::default()),
        }
    }

    pub fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
        // Text printed below the board: the next redraw starts under it.
        self.board.lock().unwrap_or_else(|e| e.into_inner()).drawn = 0;
    }

    /// Sets a layer's status; on a terminal redraws (at most ten times a
    /// second for progress, always for state changes), else prints a line.
    fn status(&self, digest: Digest, text: String, progress_only: bool) {
        if self.quiet {
            return;
        }
        if !self.live {
            if !progress_only {
                self.line(&format!("{}: {text}", short_id(&digest)));
            }
            return;
        }
        let mut board = self.board.lock().unwrap_or_else(|e| e.into_inner());
        match board.rows.iter_mut().find(|(d, _)| *d == digest) {
            Some(row) => row.1 = text,
            None => board.rows.push((digest, text)),
        }
        let now = std::time::Instant::now();
        if progress_only && board.last_draw.is_some_and(|t| now.duration_since(t).as_millis() < 100) {
            return;
        }
        board.last_draw = Some(now);
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let mut frame = String::new();
        if board.drawn > 0 {
            frame.push_str(&format!("\x1b[{}A", board.drawn));
        }
        for (d, t) in &board.rows {
            frame.push_str(&format!("\x1b[2K{}: {t}\n", short_id(d)));
        }
        board.drawn = board.rows.len();
        let _ = out.write_all(frame.as_bytes());
        let _ = out.flush();
    }
}

/// `[=====>      ] 12.3MB/40MB`, as docker draws it.
fn bar(done: u64, size: u64) -> String {
    const WIDTH: u64 = 40;
    let filled = (done.min(size) * WIDTH).checked_div(size).unwrap_or(WIDTH);
    let mut b = "=".repeat(filled as usize);
    if filled < WIDTH {
        b.push('>');
        b.push_str(&" ".repeat((WIDTH - filled - 1) as usize));
    }
    format!("[{b}] {}/{}", human_size(done), human_size(size))
}

impl PullProgress for PullLines {
    fn event(&self, event: PullEvent) {
        match event {
            PullEvent::Resolved { .. } => {}
            PullEvent::LayerExists { digest } => self.status(digest, "Already exists".into(), false),
            PullEvent::LayerWaiting { digest, .. } => self.status(digest, "Pulling fs layer".into(), false),
            PullEvent::LayerProgress { digest, done, size } => {
                self.status(digest, format!("Downloading {}", bar(done, size)), true)
            }
            PullEvent::LayerRetry { digest, offset, reason } => {
                if self.live {
                    self.status(digest, format!("Retrying from byte {offset}: {reason}"), false);
                } else if !self.quiet {
                    eprintln!("{}: retrying from byte {offset}: {reason}", short_id(&digest));
                }
            }
            PullEvent::LayerVerified { digest } => self.status(digest, "Pull complete".into(), false),
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
