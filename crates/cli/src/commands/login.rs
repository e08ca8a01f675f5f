//! `distill login` / `distill logout`: credentials in Docker's config.json
//! (or its credential helper), checked against the registry first.

use std::io::{self, BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{Context, bail};
use distill_registry::{Client, ClientOptions, Credentials, DockerConfig};

use super::registry_common::RegistryArgs;

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The registry host (`127.0.0.1:5000`, `ghcr.io`) [default: docker.io].
    #[arg(value_name = "REGISTRY")]
    pub registry: Option<String>,
    #[arg(short, long)]
    pub username: Option<String>,
    /// The password (prefer --password-stdin: command lines are visible to other users).
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub registry_opts: RegistryArgs,
}

#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// The registry host [default: docker.io].
    #[arg(value_name = "REGISTRY")]
    pub registry: Option<String>,
}

/// `https://host/v2/` or `host` → `host`; Docker Hub's names → `docker.io`.
fn registry_host(arg: Option<&str>) -> String {
    let r = arg.unwrap_or("docker.io");
    let r = r.strip_prefix("https://").or_else(|| r.strip_prefix("http://")).unwrap_or(r);
    let host = r.split('/').next().unwrap_or(r).to_string();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io".to_string(),
        _ => host,
    }
}

pub fn run_login(args: LoginArgs) -> anyhow::Result<ExitCode> {
    let registry = registry_host(args.registry.as_deref());
    let username = match args.username {
        Some(u) => u,
        None => bail!("--username is required (distill login does not prompt)"),
    };
    let password = if args.password_stdin {
        if args.password.is_some() {
            bail!("--password and --password-stdin are mutually exclusive");
        }
        let mut line = String::new();
        io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        match args.password {
            Some(p) => {
                eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
                p
            }
            None if io::stdin().is_terminal() => bail!("give the password with --password-stdin"),
            None => bail!("--password or --password-stdin is required"),
        }
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    let creds = Credentials::new(username, password);
    // Exactly these credentials are checked, never a stored login.
    let client_opts = ClientOptions { credentials: Some(creds.clone()), ..args.registry_opts.options()? };
    let client = Client::new(client_opts)?;
    client.check_login(&registry).with_context(|| format!("logging in to {registry}"))?;
    let mut config = DockerConfig::load_default()?;
    config.store(&registry, &creds)?;
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

pub fn run_logout(args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let registry = registry_host(args.registry.as_deref());
    let mut config = DockerConfig::load_default()?;
    if config.erase(&registry)? {
        println!("Removing login credentials for {registry}");
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(ExitCode::SUCCESS)
}
