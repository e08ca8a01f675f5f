//! The `distill` command: wires the library crates to a docker-like CLI.
//! Each subcommand lives in its own module under `commands/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod render;

// mimalloc, not glibc malloc: a 30,000-file context walk allocates per file on
// every core, and glibc's arenas made an unchanged rebuild ~25 % and a
// one-file rebuild ~30 % slower (BENCHMARKS.md, bench d).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "distill",
    version,
    about = "Daemonless container image builder: multi-stage Dockerfiles to distroless images"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build an image from a Dockerfile (like `docker build`), with no daemon.
    Build(Box<commands::build::BuildArgs>),
    /// Make a distroless-style base image from distribution packages (`base debian --packages …`).
    Base(commands::base::BaseArgs),
    /// Run BuildKit's build checks on a Dockerfile (like `docker build --check`).
    Check(commands::check::CheckArgs),
    /// Print the resolved build plan: stages, bases, expanded instructions, dependencies.
    Plan(commands::plan::PlanArgs),
    /// Create an image from a root file system tar (like `docker import`).
    Import(commands::import::ImportArgs),
    /// Load images from a docker-archive or OCI archive (like `docker load`).
    Load(commands::load::LoadArgs),
    /// Save images to a docker-archive or OCI archive (like `docker save`).
    Save(commands::save::SaveArgs),
    /// List images (like `docker images`).
    Images(commands::images::ImagesArgs),
    /// Show an image's details as JSON (like `docker image inspect`).
    Inspect(commands::inspect::InspectArgs),
    /// Show an image's history (like `docker history`).
    History(commands::history::HistoryArgs),
    /// Download an image from a registry (like `docker pull`).
    Pull(commands::pull::PullArgs),
    /// Upload an image to a registry (like `docker push`).
    Push(commands::push::PushArgs),
    /// Store credentials for a registry in Docker's config.json (like `docker login`).
    Login(commands::login::LoginArgs),
    /// Remove stored credentials for a registry (like `docker logout`).
    Logout(commands::login::LogoutArgs),
    /// Give an image another name (like `docker tag`).
    Tag(commands::tag::TagArgs),
    /// Run a command in a throwaway container from an image (like `docker run --rm`).
    Run(commands::run::RunArgs),
    /// Remove images (like `docker rmi`).
    Rmi(commands::rmi::RmiArgs),
    /// Remove untagged images and unreferenced data (like `docker image prune`).
    Prune(commands::prune::PruneArgs),
    /// Write an image's flattened root file system as a tar.
    Export(commands::export::ExportArgs),
    /// Verify every digest and reference in the store.
    Fsck(commands::fsck::FsckArgs),
    /// Show what the store holds: images, blobs, snapshots, cache mounts (like `docker system df`).
    Du(commands::du::DuArgs),
    /// Make a distroless image holding only the runtime closure of an image's command, verified.
    Slim(commands::slim::SlimArgs),
    /// Say why a slim image holds a file (which binary, DT_NEEDED entry, import or rule).
    Explain(commands::slim::ExplainArgs),
    /// Print the SPDX 2.3 SBOM stored with a slim image (the Debian packages it still holds files of).
    Sbom(commands::slim::SbomArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Build(args) => commands::build::run(*args),
        Command::Base(args) => commands::base::run(args),
        Command::Check(args) => commands::check::run(args),
        Command::Plan(args) => commands::plan::run(args),
        Command::Import(args) => commands::import::run(args),
        Command::Load(args) => commands::load::run(args),
        Command::Save(args) => commands::save::run(args),
        Command::Images(args) => commands::images::run(args),
        Command::Inspect(args) => commands::inspect::run(args),
        Command::History(args) => commands::history::run(args),
        Command::Pull(args) => commands::pull::run(args),
        Command::Push(args) => commands::push::run(args),
        Command::Login(args) => commands::login::run_login(args),
        Command::Logout(args) => commands::login::run_logout(args),
        Command::Tag(args) => commands::tag::run(args),
        Command::Rmi(args) => commands::rmi::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Prune(args) => commands::prune::run(args),
        Command::Export(args) => commands::export::run(args),
        Command::Fsck(args) => commands::fsck::run(args),
        Command::Du(args) => commands::du::run(args),
        Command::Slim(args) => commands::slim::run(args),
        Command::Explain(args) => commands::slim::explain(args),
        Command::Sbom(args) => commands::slim::sbom(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            render::print_error(&err);
            ExitCode::from(1)
        }
    }
}
