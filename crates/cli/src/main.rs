//! The `distill` command: wires the library crates to a docker-like CLI.
//! Each subcommand lives in its own module under `commands/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod render;

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
    /// Run BuildKit's build checks on a Dockerfile (like `docker build --check`).
    Check(commands::check::CheckArgs),
    /// Print the resolved build plan: stages, bases, expanded instructions, dependencies.
    Plan(commands::plan::PlanArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => commands::check::run(args),
        Command::Plan(args) => commands::plan::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            render::print_error(&err);
            ExitCode::from(1)
        }
    }
}
