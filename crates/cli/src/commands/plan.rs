//! `distill plan`: the resolved build for people (`text`) and tools (`json`).

use std::process::ExitCode;

use distill_dockerfile::plan::{Base, BuildPlan};

use super::check::DockerfileArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub dockerfile: DockerfileArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: PlanFormat,
}

pub fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let (dockerfile, plan) = args.dockerfile.plan()?;
    match args.format {
        PlanFormat::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
        PlanFormat::Text => print!("{}", render_text(&dockerfile.label, &plan)),
    }
    Ok(ExitCode::SUCCESS)
}

fn render_text(label: &str, plan: &BuildPlan) -> String {
    let mut out = String::new();
    let target = &plan.stages[plan.target];
    out.push_str(&format!("{label}: {} stages, target {}\n", plan.stages.len(), target.display_name()));
    let globals: Vec<String> = plan
        .global_args
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect();
    out.push_str(&format!("global args: {}\n", globals.join(" ")));
    let order: Vec<String> = plan.build_order().iter().map(|&i| plan.stages[i].display_name()).collect();
    out.push_str(&format!("build order: {}\n", order.join(" -> ")));
    for stage in &plan.stages {
        let base = match &stage.base {
            Base::Scratch => "scratch".to_string(),
            Base::Stage(i) => format!("stage {}", plan.stages[*i].display_name()),
            Base::Image(r) => format!("image {r}"),
            Base::Context(n) => format!("named context {n}"),
        };
        let status = if stage.pruned { " (pruned: not reached by the target)" } else { "" };
        out.push_str(&format!("\n[{}] {} FROM {base}{status}\n", stage.index, stage.display_name()));
        if let Some(p) = &stage.platform {
            out.push_str(&format!("  platform: {p}\n"));
        }
        if !stage.dependencies.is_empty() {
            let deps: Vec<String> = stage.dependencies.iter().map(|&d| plan.stages[d].display_name()).collect();
            out.push_str(&format!("  depends on: {}\n", deps.join(", ")));
        }
        if !stage.external_images.is_empty() {
            out.push_str(&format!("  reads images: {}\n", stage.external_images.join(", ")));
        }
        for (n, instr) in stage.instructions.iter().enumerate() {
            out.push_str(&format!("  {:>3}. {:>4}: {}\n", n + 1, instr.start_line, instr.text()));
        }
    }
    if !plan.warnings.is_empty() {
        out.push_str(&format!("\n{} build check warning(s); run `distill check` for details\n", plan.warnings.len()));
    }
    out
}
