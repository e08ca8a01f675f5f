//! `distill check`: BuildKit's build checks, like `docker build --check`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use distill_dockerfile::plan::{BuildPlan, PlanOptions, Platform};
use distill_dockerfile::{lint, plan};

use crate::render;

/// Which Dockerfile to read and how to plan it (shared by `check` and `plan`).
#[derive(Debug, clap::Args)]
pub struct DockerfileArgs {
    /// Name of the Dockerfile (default: CONTEXT/Dockerfile; `-` reads standard input).
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Set a build-time variable (`KEY=VALUE`, or `KEY` to take it from the environment).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// The stage to build (default: the last one).
    #[arg(long)]
    pub target: Option<String>,
    /// Target platform (os/arch[/variant]); default: this machine's.
    #[arg(long)]
    pub platform: Option<String>,
    /// The build context directory.
    #[arg(default_value = ".")]
    pub context: PathBuf,
    /// Set by `check`: lint every stage, not only those the target reaches.
    #[arg(skip)]
    pub all_stages: bool,
}

/// A Dockerfile read from disk or stdin, with the name used in messages.
pub struct LoadedDockerfile {
    pub label: String,
    pub bytes: Vec<u8>,
}

impl LoadedDockerfile {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

impl DockerfileArgs {
    pub fn load(&self) -> anyhow::Result<LoadedDockerfile> {
        let path = match &self.file {
            Some(p) if p.as_os_str() == "-" => {
                let mut bytes = Vec::new();
                std::io::stdin().read_to_end(&mut bytes).context("reading the Dockerfile from standard input")?;
                return Ok(LoadedDockerfile { label: "Dockerfile".to_string(), bytes });
            }
            Some(p) if p.is_relative() && !p.exists() => self.context.join(p),
            Some(p) => p.clone(),
            None => self.context.join("Dockerfile"),
        };
        if !self.context.is_dir() {
            bail!("build context {} is not a directory", self.context.display());
        }
        let bytes = std::fs::read(&path).with_context(|| format!("reading Dockerfile {}", path.display()))?;
        Ok(LoadedDockerfile { label: display_label(&path), bytes })
    }

    pub fn plan_options(&self) -> anyhow::Result<PlanOptions> {
        let mut options = PlanOptions { target: self.target.clone(), ..PlanOptions::default() };
        options.all_stages = self.all_stages;
        if let Some(p) = &self.platform {
            options.target_platform = Platform::parse(p).map_err(|e| anyhow::anyhow!("--platform: {e}"))?;
        }
        for spec in &self.build_args {
            options.add_build_arg(spec, |k| std::env::var(k).ok()).map_err(|e| anyhow::anyhow!("--build-arg: {e}"))?;
        }
        Ok(options)
    }

    /// Parses and plans; a Dockerfile error is rendered with its source lines.
    pub fn plan(&self) -> anyhow::Result<(LoadedDockerfile, BuildPlan)> {
        let dockerfile = self.load()?;
        let options = self.plan_options()?;
        match plan::plan_dockerfile(&dockerfile.bytes, &options) {
            Ok(p) => Ok((dockerfile, p)),
            Err(e) => bail!("{}", render::dockerfile_error(&dockerfile.label, &dockerfile.text(), &e).trim_end()),
        }
    }
}

fn display_label(path: &Path) -> String {
    path.strip_prefix("./").unwrap_or(path).display().to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub dockerfile: DockerfileArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: CheckFormat,
}

pub fn run(mut args: CheckArgs) -> anyhow::Result<ExitCode> {
    args.dockerfile.all_stages = true;
    let (dockerfile, plan) = args.dockerfile.plan()?;
    let source = dockerfile.text();
    match args.format {
        CheckFormat::Json => {
            let findings: Vec<_> = plan
                .warnings
                .iter()
                .map(|w| {
                    serde_json::json!({
                        "rule": w.rule.name(),
                        "description": w.rule.description(),
                        "url": w.rule.url(),
                        "message": w.message,
                        "file": dockerfile.label,
                        "line": w.line,
                        "endLine": w.end_line,
                    })
                })
                .collect();
            let out = serde_json::json!({ "warnings": findings, "error": plan.check_error().map(|e| e.to_string()) });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        CheckFormat::Text => print_findings(&dockerfile.label, &source, &plan.warnings, &plan),
    }
    for arg in &plan.unused_build_args {
        eprintln!("[Warning] The build-arg {arg:?} was not consumed by any reachable stage");
    }
    Ok(if plan.check_error().is_some() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn print_findings(label: &str, source: &str, warnings: &[lint::Warning], plan: &BuildPlan) {
    if warnings.is_empty() {
        println!("Check complete, no warnings found.");
        return;
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for w in warnings {
        *counts.entry(w.rule.name()).or_default() += 1;
        let level = if plan.checks_are_errors { "ERROR" } else { "WARNING" };
        println!("{level}: {} - {}", w.rule.name(), w.rule.url());
        println!("{label}:{}: {}", w.line, w.message);
        print!("{}", render::excerpt(source, w.line, w.end_line));
        println!();
    }
    let n = warnings.len();
    println!("Check complete, {n} {} found!", if n == 1 { "warning has been" } else { "warnings have been" });
    if let Some(err) = plan.check_error() {
        println!("error: {err}");
    }
}
