//! `distill run`: runs a command in a throwaway container from an image, with
//! runc over an overlayfs snapshot of its layers (like `docker run --rm`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use distill_build::executor::{
    ActiveSnapshot, CancelToken, Network, RunSpec, Runtime, SnapshotterKind, resolve_user, run as run_container,
};

use super::image_common::StoreArgs;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The image (name, ID or digest).
    pub image: String,
    /// Arguments replacing the image's CMD (the ENTRYPOINT stays).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Replace the image's ENTRYPOINT (with `""`, clear it).
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Set an environment variable (`KEY=VALUE`); may be repeated.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Run as this user (`name`, `uid`, `uid:gid`) instead of the image's USER.
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory instead of the image's WORKDIR.
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Network: host (default) or none.
    #[arg(long, default_value = "host")]
    pub network: String,
    /// OCI runtime: a name looked up in PATH or a path [default: runc].
    #[arg(long)]
    pub runtime: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let network = match args.network.as_str() {
        "host" | "default" => Network::Host,
        "none" => Network::None,
        other => bail!("--network {other:?}: expected host or none"),
    };
    let store = args.store.open()?;
    let image = store.find_image(&args.image)?;
    let cc = image.config.config.clone().unwrap_or_default();
    let entrypoint = match &args.entrypoint {
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.clone()],
        None => cc.entrypoint.clone().unwrap_or_default(),
    };
    // As Docker: new arguments replace CMD; a new entrypoint drops the image's CMD.
    let cmd = if !args.args.is_empty() {
        args.args.clone()
    } else if args.entrypoint.is_some() {
        Vec::new()
    } else {
        cc.cmd.clone().unwrap_or_default()
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        bail!("no command: the image has no ENTRYPOINT or CMD, and none was given");
    }
    let runtime = Runtime::resolve(args.runtime.as_deref())?;
    let cancel = CancelToken::new();
    cancel.cancel_on_signals().context("installing signal handlers")?;

    let writer = store.writer()?;
    let holder = format!("run:{}", std::process::id());
    let mut lowers = writer.prepare_snapshots(&image, &holder)?;
    lowers.reverse();
    let scratch: PathBuf = writer.staging_path("run-")?;
    let outcome = (|| -> anyhow::Result<i32> {
        let snap = ActiveSnapshot::prepare(SnapshotterKind::from_env()?, &lowers, &scratch)?;
        let mut spec = RunSpec::new(argv);
        spec.env = cc.env.clone().unwrap_or_default();
        spec.env.extend(args.env.iter().cloned());
        spec.cwd =
            args.workdir.clone().or(cc.working_dir.clone()).filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into());
        let user = args.user.clone().or(cc.user.clone()).filter(|u| !u.is_empty()).unwrap_or_else(|| "0".into());
        spec.user = resolve_user(snap.rootfs(), &user)?;
        spec.hostname = "distill".into();
        spec.network = network;
        let mut stdout = std::io::stdout();
        let outcome = run_container(&runtime, &scratch.join("bundle"), &spec, snap.rootfs(), &cancel, |bytes| {
            let _ = stdout.write_all(bytes);
            let _ = stdout.flush();
        })?;
        Ok(outcome.exit_code)
    })();
    let _ = writer.release_snapshots(&holder);
    let code = outcome?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
