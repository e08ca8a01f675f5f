//! Stage planning: typed stages + build options → a resolved [`BuildPlan`].
//!
//! This is the part of BuildKit's `dockerfile2llb` that needs no I/O: global
//! and stage ARG scoping, the automatic platform args, `--build-arg`,
//! expansion of every instruction with the environment it sees, the stage
//! graph through FROM / `COPY --from` / `RUN --mount from=`, the target, and
//! pruning of stages the target does not reach. Build checks that depend on
//! expansion are reported here, into the [`Linter`].

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use thiserror::Error;

use crate::ast::Ast;
use crate::error::{Error, ErrorKind};
use crate::instructions::{self, Command, Instruction, Stage};
use crate::lint::{self, CheckConfig, Linter, Rule, Warning};
use crate::shell::{Env, Lexer, ShellError};

/// Errors only planning can find.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlanErrorKind {
    #[error("dockerfile contains no stages to build: add a FROM instruction")]
    NoStages,
    #[error("target stage {target:?} could not be found{}", did_you_mean(suggestion.as_deref()))]
    UnknownTarget { target: String, suggestion: Option<String> },
    #[error("base name ({0}) should not be blank: the FROM image expands to an empty string")]
    BlankBaseName(String),
    #[error("empty platform value from expression {0}")]
    BlankPlatform(String),
    #[error("invalid platform {value:?}: {reason} (expected os/arch[/variant], like linux/amd64)")]
    InvalidPlatform { value: String, reason: &'static str },
    #[error("invalid stage index {index} in --from: this Dockerfile has stages 0 to {}", count.saturating_sub(1))]
    InvalidStageIndex { index: usize, count: usize },
    #[error("circular dependency detected on stage: {0}")]
    CircularDependency(String),
    #[error("invalid build-arg {0:?}: expected KEY=VALUE")]
    InvalidBuildArg(String),
    #[error("invalid check configuration: {0}")]
    InvalidCheckConfig(String),
    #[error("{count} build check{} failed and the check directive sets error=true", if *count == 1 { "" } else { "s" })]
    ChecksFailed { count: usize },
    /// An ONBUILD trigger of a stage's base that does not parse or plan.
    #[error("ONBUILD trigger from {origin}: {message}")]
    OnbuildTrigger { origin: String, message: String },
}

fn did_you_mean(s: Option<&str>) -> String {
    s.map(|s| format!(" (did you mean {s}?)")).unwrap_or_default()
}

/// An OS/architecture pair, as in `linux/amd64` or `linux/arm/v7`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this binary runs on.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        let variant = (architecture == "arm").then(|| "v7".to_string());
        Platform { os: std::env::consts::OS.to_string(), architecture: architecture.to_string(), variant }
    }

    /// Parses `os/arch[/variant]` (also a bare `arch`, meaning linux), normalising
    /// common aliases like containerd does (`x86_64` → `amd64`, `aarch64` → `arm64`).
    pub fn parse(value: &str) -> Result<Platform, PlanErrorKind> {
        let invalid = |reason| PlanErrorKind::InvalidPlatform { value: value.to_string(), reason };
        let parts: Vec<&str> = value.split('/').collect();
        let (os, arch, variant) = match parts.as_slice() {
            [arch] => ("linux", *arch, None),
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(*variant)),
            _ => return Err(invalid("too many parts")),
        };
        let ok =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        if !ok(os) || !ok(arch) || variant.is_some_and(|v| !ok(v)) {
            return Err(invalid("parts must be non-empty and use letters, digits, '_', '-' or '.'"));
        }
        let (arch, variant) = match (arch.to_ascii_lowercase().as_str(), variant) {
            ("x86_64" | "x86-64", v) => ("amd64".to_string(), v.map(str::to_string)),
            ("aarch64", v) => ("arm64".to_string(), v.map(str::to_string)),
            ("armhf", _) => ("arm".to_string(), Some("v7".to_string())),
            ("armel", _) => ("arm".to_string(), Some("v6".to_string())),
            ("arm", None) => ("arm".to_string(), Some("v7".to_string())),
            (a, v) => (a.to_string(), v.map(str::to_string)),
        };
        Ok(Platform { os: os.to_ascii_lowercase(), architecture: arch, variant })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// What planning needs besides the Dockerfile.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// `--build-arg KEY=VALUE` values.
    pub build_args: BTreeMap<String, String>,
    /// `--target`; the last stage when None.
    pub target: Option<String>,
    pub target_platform: Platform,
    pub build_platform: Platform,
    /// Environments of base images the caller knows (image reference as
    /// written in FROM after expansion → `K=V` list). Variables used in a
    /// stage whose base image is unknown are not reported as undefined.
    pub image_env: BTreeMap<String, Vec<String>>,
    /// ONBUILD triggers of base images the caller knows (same keys as
    /// `image_env`): they run as the first instructions of the stages built
    /// on the image, as Docker runs them.
    pub image_onbuild: BTreeMap<String, Vec<String>>,
    /// Names of the named contexts (`--build-context NAME=…`): a stage of
    /// that name is replaced by the context and never built (as in BuildKit).
    pub named_contexts: BTreeSet<String>,
    /// Check and report on every stage, not only those the target reaches
    /// (what `docker build --check` does).
    pub all_stages: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            build_args: BTreeMap::new(),
            target: None,
            target_platform: Platform::host(),
            build_platform: Platform::host(),
            image_env: BTreeMap::new(),
            image_onbuild: BTreeMap::new(),
            named_contexts: BTreeSet::new(),
            all_stages: false,
        }
    }
}

impl PlanOptions {
    /// Parses `KEY=VALUE` (or `KEY`, which takes the value from `lookup`,
    /// like `docker build --build-arg KEY` reads the client environment).
    pub fn add_build_arg(&mut self, spec: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<(), Error> {
        let (key, value) = match spec.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (spec, lookup(spec)),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(Error::new(PlanErrorKind::InvalidBuildArg(spec.to_string()), 0, 0));
        }
        if let Some(value) = value {
            self.build_args.insert(key.to_string(), value);
        }
        Ok(())
    }
}

/// The resolved build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildPlan {
    pub stages: Vec<PlannedStage>,
    /// Index of the stage the build produces.
    pub target: usize,
    /// Global ARGs (automatic platform args, then those declared before the
    /// first FROM) with their values; None when declared without a value.
    pub global_args: Vec<(String, Option<String>)>,
    /// `--build-arg`s no reachable ARG declared (docker warns about these).
    pub unused_build_args: Vec<String>,
    /// Build-check findings, in source order.
    pub warnings: Vec<Warning>,
    /// `# check=error=true`: findings must fail the build (see [`BuildPlan::check_error`]).
    pub checks_are_errors: bool,
    /// The `# syntax=` directive, if any.
    pub syntax: Option<String>,
}

impl BuildPlan {
    /// The error a build must stop with when checks are configured as errors
    /// and some were found.
    pub fn check_error(&self) -> Option<Error> {
        let first = self.warnings.first().filter(|_| self.checks_are_errors)?;
        Some(Error::new(PlanErrorKind::ChecksFailed { count: self.warnings.len() }, first.line, first.end_line))
    }

    /// Stages in an order where every stage comes after the stages it
    /// depends on (only stages that are not pruned).
    pub fn build_order(&self) -> Vec<usize> {
        topological_order(&self.stages).into_iter().filter(|&i| !self.stages[i].pruned).collect()
    }
}

/// What a stage is built on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum Base {
    Scratch,
    /// An earlier stage, by index.
    Stage(usize),
    /// An image reference (expanded); a named context of that name, if the
    /// builder has one, takes its place.
    Image(String),
    /// The stage is replaced by the named context of its own name
    /// (`--build-context`): its instructions are not run.
    Context(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedStage {
    pub index: usize,
    /// The stage name (lowercased), if it has one.
    pub name: Option<String>,
    pub base: Base,
    /// `--platform`, expanded.
    pub platform: Option<String>,
    pub instructions: Vec<PlannedInstruction>,
    /// Stages this one needs (its base, `COPY --from`, `RUN --mount from=`), sorted.
    pub dependencies: Vec<usize>,
    /// Images read by `COPY --from` or `RUN --mount from=` that are not stages.
    pub external_images: Vec<String>,
    /// True when the target does not reach this stage: it is never built.
    pub pruned: bool,
    /// Lines of the FROM instruction.
    pub start_line: usize,
    pub end_line: usize,
}

impl PlannedStage {
    /// `name` or `stage-N`, as BuildKit names stages in progress output.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| format!("stage-{}", self.index))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedInstruction {
    /// Expanded the way BuildKit expands it (RUN/CMD/ENTRYPOINT stay as
    /// written: the shell expands them at run time).
    pub instruction: Instruction,
    pub start_line: usize,
    pub end_line: usize,
    /// Build args in scope with a value (what RUN sees in its environment,
    /// under ENV, plus the predefined proxy args for RUN). Shared between
    /// instructions until an ARG changes it.
    pub args: Arc<Vec<(String, String)>>,
    /// The stage's ENV before this instruction (base image env included when
    /// known). Shared between instructions until an ENV changes it.
    pub env: Arc<Vec<(String, String)>>,
    /// Working directory before this instruction (None when the base image's
    /// is unknown). Shared between instructions until a WORKDIR changes it.
    pub workdir: Option<Arc<str>>,
    /// For an ONBUILD trigger of the stage's base: where it comes from
    /// (`base image NAME` or `stage NAME`). Triggers carry the FROM's lines.
    pub onbuild: Option<Arc<str>>,
}

impl PlannedInstruction {
    /// The instruction rendered back to Dockerfile syntax, expanded. Rendered
    /// on demand: planning itself never needs the text.
    pub fn text(&self) -> String {
        render(&self.instruction)
    }
}

/// Serialized with its rendered text, for tools reading `distill plan --format json`.
impl Serialize for PlannedInstruction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("PlannedInstruction", 8)?;
        st.serialize_field("text", &self.text())?;
        st.serialize_field("instruction", &self.instruction)?;
        st.serialize_field("start_line", &self.start_line)?;
        st.serialize_field("end_line", &self.end_line)?;
        st.serialize_field("args", &self.args)?;
        st.serialize_field("env", &self.env)?;
        st.serialize_field("workdir", &self.workdir)?;
        st.serialize_field("onbuild", &self.onbuild)?;
        st.end()
    }
}

/// Build args that are always accepted without an ARG declaration.
const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

const BUILDKIT_ARGS: &[&str] = &[
    "BUILDKIT_CACHE_MOUNT_NS",
    "BUILDKIT_CONTEXT_KEEP_GIT_DIR",
    "BUILDKIT_INLINE_CACHE",
    "BUILDKIT_MULTI_PLATFORM",
    "BUILDKIT_SANDBOX_HOSTNAME",
    "BUILDKIT_SYNTAX",
    "BUILDKIT_BUILD_NAME",
    "BUILDKIT_DOCKERFILE_CHECK",
    "SOURCE_DATE_EPOCH",
];

/// Docker's default PATH for Linux containers.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Parses, types and plans `dockerfile` in one call.
pub fn plan_dockerfile(dockerfile: &[u8], options: &PlanOptions) -> Result<BuildPlan, Error> {
    let ast = crate::parser::parse(dockerfile)?;
    plan(&ast, options)
}

/// Plans a parsed Dockerfile.
pub fn plan(ast: &Ast, options: &PlanOptions) -> Result<BuildPlan, Error> {
    let check = check_config(ast, options)?;
    let mut linter = Linter::new(check);
    linter.check_syntax(ast);
    let mut parsed = instructions::parse_stages(ast)?;
    if parsed.stages.is_empty() {
        return Err(Error::new(PlanErrorKind::NoStages, ast.end_line(), ast.end_line()));
    }
    // Planning consumes the commands (expanding them in place); the stages
    // keep the rest.
    let mut commands: Vec<Vec<Command>> = parsed.stages.iter_mut().map(|s| std::mem::take(&mut s.commands)).collect();
    let lexer = Lexer::new(ast.escape);
    let mut planner = Planner { lexer, options, linter, stages: &parsed.stages, declared_args: BTreeSet::new() };
    planner.check_stage_names();
    let target = planner.find_target()?;
    let globals = planner.global_args(&parsed.meta_args, target)?;
    let mut planned = Vec::with_capacity(parsed.stages.len());
    let mut bases = Vec::with_capacity(parsed.stages.len());
    let names: Vec<Option<&str>> = parsed.stages.iter().map(|s| s.name.as_deref()).collect();
    let global_env = globals.env();
    for stage in &parsed.stages {
        let (mut base, platform) = planner.resolve_base(stage, &globals, &global_env, &names)?;
        if let Some(name) = stage.name.as_ref().filter(|n| options.named_contexts.contains(*n)) {
            // BuildKit replaces the whole stage by a context of its name.
            base = Base::Context(name.clone());
            commands[stage.index].clear();
        }
        bases.push(base.clone());
        planned.push(PlannedStage {
            index: stage.index,
            name: stage.name.clone(),
            base,
            platform,
            instructions: Vec::new(),
            dependencies: Vec::new(),
            external_images: Vec::new(),
            pruned: true,
            start_line: stage.start_line,
            end_line: stage.end_line,
        });
    }
    // ONBUILD triggers of each base become the stage's first commands before
    // the graph is made: a trigger's `COPY --from` is a dependency too.
    let mut triggers: Vec<(usize, Option<Arc<str>>)> = vec![(0, None); parsed.stages.len()];
    for (i, stage) in parsed.stages.iter().enumerate() {
        let (origin, texts): (String, Vec<String>) = match &bases[i] {
            Base::Image(name) => match options.image_onbuild.get(name) {
                Some(t) if !t.is_empty() => (format!("base image {name}"), t.clone()),
                _ => continue,
            },
            // BuildKit runs the ONBUILD instructions of a base stage too.
            Base::Stage(b) => {
                let t: Vec<String> = commands[*b]
                    .iter()
                    .filter_map(|c| match &c.instruction {
                        Instruction::Onbuild { expression, .. } => Some(expression.clone()),
                        _ => None,
                    })
                    .collect();
                if t.is_empty() {
                    continue;
                }
                (format!("stage {}", planned[*b].display_name()), t)
            }
            Base::Scratch | Base::Context(_) => continue,
        };
        let mut parsed_triggers = Vec::with_capacity(texts.len() + commands[i].len());
        for text in &texts {
            let cmd = parse_trigger(text, stage.start_line, stage.end_line).map_err(|message| {
                Error::new(
                    PlanErrorKind::OnbuildTrigger { origin: origin.clone(), message },
                    stage.start_line,
                    stage.end_line,
                )
            })?;
            parsed_triggers.push(cmd);
        }
        triggers[i] = (parsed_triggers.len(), Some(Arc::from(origin)));
        parsed_triggers.append(&mut commands[i]);
        commands[i] = parsed_triggers;
    }
    // The graph first, so only reachable stages are expanded and linted (as BuildKit does).
    for (i, commands) in commands.iter().enumerate() {
        let (deps, images) = planner.stage_references(commands, &bases[i])?;
        planned[i].dependencies = deps;
        planned[i].external_images = images;
    }
    detect_cycles(&planned)?;
    mark_reachable(&mut planned, target);
    let mut finals: Vec<StageState> = vec![StageState::default(); planned.len()];
    for i in topological_order(&planned) {
        let initial = match &planned[i].base {
            Base::Stage(b) => finals[*b].clone(),
            Base::Scratch => StageState::with_env(Vec::new()),
            Base::Image(image) | Base::Context(image) => match options.image_env.get(image) {
                Some(env) => StageState::with_env(env.iter().map(|kv| split_kv(kv)).collect()),
                None => StageState::unknown_image(),
            },
        };
        let commands = std::mem::take(&mut commands[i]);
        if planned[i].pruned && !options.all_stages {
            // Never built: expand for display only, with findings and errors muted
            // (BuildKit does not look at unreachable stages at all).
            let real = std::mem::take(&mut planner.linter);
            let declared = planner.declared_args.clone();
            let raw: Vec<PlannedInstruction> = commands.iter().map(|c| raw_instruction(c, &initial)).collect();
            let result = planner.plan_stage(commands, initial.clone(), &globals);
            planner.linter = real;
            planner.declared_args = declared;
            match result {
                Ok((instructions, state)) => {
                    planned[i].instructions = instructions;
                    finals[i] = state;
                }
                Err(_) => {
                    planned[i].instructions = raw;
                    finals[i] = initial;
                }
            }
            mark_triggers(&mut planned[i].instructions, &triggers[i]);
            continue;
        }
        let (start, origin) = (planned[i].start_line, triggers[i].1.clone());
        let (instructions, state) = planner.plan_stage(commands, initial, &globals).map_err(|e| match &origin {
            // Only triggers carry the FROM's lines.
            Some(origin) if e.line == start => Error {
                kind: PlanErrorKind::OnbuildTrigger { origin: origin.to_string(), message: e.kind.to_string() }.into(),
                ..e
            },
            _ => e,
        })?;
        planned[i].instructions = instructions;
        mark_triggers(&mut planned[i].instructions, &triggers[i]);
        finals[i] = state;
    }
    let unused_build_args = options
        .build_args
        .keys()
        .filter(|k| !planner.declared_args.contains(*k))
        .filter(|k| !PREDEFINED_ARGS.contains(&k.as_str()) && !BUILDKIT_ARGS.contains(&k.as_str()))
        .cloned()
        .collect();
    let checks_are_errors = planner.linter.config().error;
    let warnings = planner.linter.finish();
    Ok(BuildPlan {
        checks_are_errors,
        stages: planned,
        target,
        global_args: globals.ordered,
        unused_build_args,
        warnings,
        syntax: ast.directives.syntax.as_ref().map(|d| d.value.clone()),
    })
}

/// Parses an ONBUILD trigger as stored in an image config (or written after
/// ONBUILD) into a command placed at the FROM's lines, as BuildKit does.
fn parse_trigger(text: &str, start_line: usize, end_line: usize) -> Result<Command, String> {
    let ast = crate::parser::parse(text.as_bytes()).map_err(|e| e.kind.to_string())?;
    let [node] = ast.children.as_slice() else {
        return Err(format!("{text:?}: a trigger must be a single instruction"));
    };
    let instruction = instructions::parse_instruction(node).map_err(|e| e.kind.to_string())?;
    match &instruction {
        Instruction::Onbuild { .. } => return Err(instructions::InstructionError::OnbuildChained.to_string()),
        Instruction::From(_) | Instruction::Maintainer { .. } => {
            let trigger = instruction.keyword().to_string();
            return Err(instructions::InstructionError::OnbuildTrigger { trigger }.to_string());
        }
        _ => {}
    }
    Ok(Command {
        instruction,
        start_line,
        end_line,
        keyword_original: node.keyword_original.clone(),
        original: node.original.clone(),
        comments: Vec::new(),
    })
}

/// Marks the first `count` instructions as triggers from `origin`.
fn mark_triggers(instructions: &mut [PlannedInstruction], (count, origin): &(usize, Option<Arc<str>>)) {
    for ins in instructions.iter_mut().take(*count) {
        ins.onbuild = origin.clone();
    }
}

/// The linter configuration: `BUILDKIT_DOCKERFILE_CHECK` overrides `# check=`.
fn check_config(ast: &Ast, options: &PlanOptions) -> Result<CheckConfig, Error> {
    let (value, line) = match (options.build_args.get("BUILDKIT_DOCKERFILE_CHECK"), &ast.directives.check) {
        (Some(v), _) => (v.as_str(), 0),
        (None, Some(d)) => (d.value.as_str(), d.line),
        (None, None) => return Ok(CheckConfig::default()),
    };
    CheckConfig::parse(value).map_err(|e| Error::new(PlanErrorKind::InvalidCheckConfig(e), line, line))
}

fn split_kv(kv: &str) -> (String, String) {
    match kv.split_once('=') {
        Some((k, v)) => (k.to_string(), v.to_string()),
        None => (kv.to_string(), String::new()),
    }
}

/// Global (meta) args: automatic platform args, then the ARGs before FROM.
struct Globals {
    ordered: Vec<(String, Option<String>)>,
}

impl Globals {
    fn get(&self, name: &str) -> Option<&Option<String>> {
        self.ordered.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    fn set(&mut self, name: &str, value: Option<String>) {
        match self.ordered.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.ordered.push((name.to_string(), value)),
        }
    }

    /// Only the args that have a value: what expansion in FROM sees.
    fn env(&self) -> BTreeMap<String, String> {
        self.ordered.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect()
    }
}

/// ENV, ARG values and working directory of a stage while it is planned.
#[derive(Debug, Clone, Default)]
struct StageState {
    env: Arc<Vec<(String, String)>>,
    /// Declared ARGs in scope (a declaration without value still counts as defined).
    args: Vec<(String, Option<String>)>,
    /// `args` with values, as handed to instructions.
    arg_values: Arc<Vec<(String, String)>>,
    workdir: Option<Arc<str>>,
    workdir_set: bool,
    /// The base image's environment is not known.
    env_unknown: bool,
}

impl StageState {
    fn with_env(mut env: Vec<(String, String)>) -> Self {
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.push(("PATH".to_string(), DEFAULT_PATH.to_string()));
        }
        StageState {
            env: Arc::new(env),
            args: Vec::new(),
            arg_values: Arc::default(),
            workdir: Some(Arc::from("/")),
            workdir_set: false,
            env_unknown: false,
        }
    }

    fn unknown_image() -> Self {
        StageState { env_unknown: true, workdir: None, ..StageState::with_env(Vec::new()) }
    }

    fn set_env(&mut self, key: &str, value: String) {
        let env = Arc::make_mut(&mut self.env);
        match env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => env.push((key.to_string(), value)),
        }
    }

    fn set_arg(&mut self, key: &str, value: Option<String>) {
        match self.args.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.args.push((key.to_string(), value)),
        }
        self.arg_values = Arc::new(self.args.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect());
    }

    fn is_defined(&self, name: &str) -> bool {
        self.env.iter().any(|(k, _)| k == name) || self.args.iter().any(|(k, _)| k == name)
    }

    fn arg_values(&self) -> Arc<Vec<(String, String)>> {
        Arc::clone(&self.arg_values)
    }
}

/// What expansion sees: ARG values, overridden by ENV (ENV always wins).
impl Env for StageState {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .or_else(|| self.arg_values.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()))
    }
}

struct Planner<'a> {
    lexer: Lexer,
    options: &'a PlanOptions,
    linter: Linter,
    stages: &'a [Stage],
    /// Every ARG name declared by a reachable stage or globally.
    declared_args: BTreeSet<String>,
}

impl Planner<'_> {
    fn check_stage_names(&mut self) {
        let mut seen = BTreeSet::new();
        for stage in self.stages {
            let (line, end) = (stage.start_line, stage.end_line);
            if let (Some(as_kw), kw) = (&stage.as_keyword, &stage.keyword_original) {
                let from_upper = kw.chars().all(|c| !c.is_ascii_lowercase());
                let from_lower = kw.chars().all(|c| !c.is_ascii_uppercase());
                let as_upper = as_kw.chars().all(|c| !c.is_ascii_lowercase());
                let as_lower = as_kw.chars().all(|c| !c.is_ascii_uppercase());
                if (from_upper && !as_upper) || (from_lower && !as_lower) {
                    self.linter.report(
                        Rule::FromAsCasing,
                        format!("'{as_kw}' and '{kw}' keywords' casing do not match"),
                        line,
                        end,
                    );
                }
            }
            let (Some(name), Some(original)) = (&stage.name, &stage.name_original) else { continue };
            if original != name {
                self.linter.report(
                    Rule::StageNameCasing,
                    format!("Stage name '{original}' should be lowercase"),
                    line,
                    end,
                );
            }
            if name == "scratch" || name == "context" {
                self.linter.report(
                    Rule::ReservedStageName,
                    format!("Stage name should not use the same name as reserved stage \"{name}\""),
                    line,
                    end,
                );
            }
            if !seen.insert(name.clone()) {
                self.linter.report(
                    Rule::DuplicateStageName,
                    format!("Duplicate stage name \"{name}\", stage names should be unique"),
                    line,
                    end,
                );
            }
        }
    }

    fn find_target(&self) -> Result<usize, Error> {
        let Some(target) = &self.options.target else { return Ok(self.stages.len() - 1) };
        let wanted = target.to_ascii_lowercase();
        // With duplicate names the last stage of that name wins, as in BuildKit.
        if let Some(stage) = self.stages.iter().rev().find(|s| s.name.as_deref() == Some(wanted.as_str())) {
            return Ok(stage.index);
        }
        let suggestion =
            lint::suggest(target, self.stages.iter().filter_map(|s| s.name.as_deref())).map(str::to_string);
        Err(Error::new(PlanErrorKind::UnknownTarget { target: target.clone(), suggestion }, 0, 0))
    }

    fn global_args(&mut self, meta_args: &[Command], target: usize) -> Result<Globals, Error> {
        let opts = self.options;
        let (tp, bp) = (&opts.target_platform, &opts.build_platform);
        let mut globals = Globals { ordered: Vec::new() };
        let target_stage = self.stages[target].name.clone().unwrap_or_else(|| "default".to_string());
        for (k, v) in [
            ("BUILDPLATFORM", bp.to_string()),
            ("BUILDOS", bp.os.clone()),
            ("BUILDARCH", bp.architecture.clone()),
            ("BUILDVARIANT", bp.variant.clone().unwrap_or_default()),
            ("TARGETPLATFORM", tp.to_string()),
            ("TARGETOS", tp.os.clone()),
            ("TARGETARCH", tp.architecture.clone()),
            ("TARGETVARIANT", tp.variant.clone().unwrap_or_default()),
            ("TARGETSTAGE", target_stage),
        ] {
            globals.set(k, Some(v));
        }
        // InvalidDefaultArgInFrom: base names must make sense with defaults alone.
        self.check_defaults_in_from(meta_args, &globals);
        for cmd in meta_args {
            let Instruction::Arg { args } = &cmd.instruction else { continue };
            for def in args {
                self.declared_args.insert(def.name.clone());
                self.check_secret("ARG", &def.name, Lines::of(cmd));
                let value = if let Some(v) = opts.build_args.get(&def.name) {
                    Some(v.clone())
                } else if let Some(default) = &def.default {
                    let env = globals.env();
                    Some(self.lexer.process_word(default, &env).map_err(|e| locate(e, Lines::of(cmd)))?)
                } else {
                    globals.get(&def.name).cloned().flatten()
                };
                globals.set(&def.name, value);
            }
        }
        Ok(globals)
    }

    fn check_defaults_in_from(&mut self, meta_args: &[Command], automatic: &Globals) {
        let mut env = automatic.env();
        let mut declared: BTreeSet<&str> = BTreeSet::new();
        for cmd in meta_args {
            let Instruction::Arg { args } = &cmd.instruction else { continue };
            for def in args {
                declared.insert(&def.name);
                match &def.default {
                    Some(d) => {
                        if let Ok(v) = self.lexer.process_word(d, &env) {
                            env.insert(def.name.clone(), v);
                        }
                    }
                    None => {
                        env.remove(&def.name);
                    }
                }
            }
        }
        for stage in self.stages {
            let mut uses_declared = false;
            let Ok(value) = self.lexer.process_word_with_lookups(&stage.base_name, &env, &mut |name, _| {
                uses_declared |= declared.contains(name);
            }) else {
                continue;
            };
            if uses_declared && !is_plausible_image_name(&value) {
                // Rare: expand again for the names, in the order BuildKit lists them.
                let Ok(expansion) = self.lexer.process_word_with_matches(&stage.base_name, &env) else { continue };
                let names: Vec<&str> = expansion
                    .unmatched
                    .iter()
                    .chain(expansion.matched.iter())
                    .map(String::as_str)
                    .filter(|n| declared.contains(n))
                    .collect();
                self.linter.report(
                    Rule::InvalidDefaultArgInFrom,
                    format!("Default value for ARG {} results in empty or invalid base image name", names.join(", ")),
                    stage.start_line,
                    stage.end_line,
                );
            }
        }
    }

    /// Expands FROM's image and platform with the global args.
    fn resolve_base(
        &mut self,
        stage: &Stage,
        globals: &Globals,
        env: &BTreeMap<String, String>,
        names: &[Option<&str>],
    ) -> Result<(Base, Option<String>), Error> {
        let (line, end) = (stage.start_line, stage.end_line);
        let at = |kind: ErrorKind| Error { kind, line, end_line: end, column: None };
        let mut unmatched = BTreeSet::new();
        let value = self
            .lexer
            .process_word_with_lookups(&stage.base_name, env, &mut |name, set| unset_name(&mut unmatched, name, set))
            .map_err(|e| at(ErrorKind::Shell(e)))?;
        self.report_undeclared_in_from(&unmatched, globals, line, end);
        if value.is_empty() {
            return Err(at(PlanErrorKind::BlankBaseName(stage.base_name.clone()).into()));
        }
        let platform = match &stage.platform {
            None => None,
            Some(raw) => {
                let p = self.lexer.process_word_with_matches(raw, env).map_err(|e| at(ErrorKind::Shell(e)))?;
                self.report_undeclared_in_from(&p.unmatched, globals, line, end);
                if raw.contains("TARGETPLATFORM") && p.matched.len() == 1 && p.matched.contains("TARGETPLATFORM") {
                    self.linter.report(
                        Rule::RedundantTargetPlatform,
                        format!(
                            "Setting platform to predefined {raw} in FROM is redundant as this is the default behavior"
                        ),
                        line,
                        end,
                    );
                }
                if p.matched.is_empty() && p.unmatched.is_empty() {
                    self.linter.report(
                        Rule::FromPlatformFlagConstDisallowed,
                        format!("FROM --platform flag should not use constant value \"{raw}\""),
                        line,
                        end,
                    );
                }
                if p.value.is_empty() {
                    return Err(at(PlanErrorKind::BlankPlatform(raw.clone()).into()));
                }
                Platform::parse(&p.value).map_err(|k| at(k.into()))?;
                Some(p.value)
            }
        };
        let lowered = value.to_ascii_lowercase();
        let base = if lowered == "scratch" {
            Base::Scratch
        } else if let Some(i) = names[..stage.index].iter().rposition(|n| *n == Some(lowered.as_str())) {
            Base::Stage(i)
        } else {
            Base::Image(value.into_owned())
        };
        Ok((base, platform))
    }

    fn report_undeclared_in_from(&mut self, unmatched: &BTreeSet<String>, globals: &Globals, line: usize, end: usize) {
        for name in unmatched {
            if globals.get(name).is_some() {
                continue; // declared without a value: defined, just empty
            }
            let keys: Vec<&str> = globals.ordered.iter().map(|(k, _)| k.as_str()).collect();
            let hint = lint::suggest(name, keys).map(|s| format!(" (did you mean {s}?)")).unwrap_or_default();
            self.linter.report(
                Rule::UndefinedArgInFrom,
                format!("FROM argument '{name}' is not declared{hint}"),
                line,
                end,
            );
        }
    }

    /// Stages and images a stage reads: its base, `COPY --from`, `RUN --mount from=`.
    fn stage_references(&self, commands: &[Command], base: &Base) -> Result<(Vec<usize>, Vec<String>), Error> {
        let mut deps = BTreeSet::new();
        let mut images = BTreeSet::new();
        if let Base::Stage(b) = base {
            deps.insert(*b);
        }
        for cmd in commands {
            for reference in cmd.instruction.stage_references() {
                match self.resolve_reference(reference) {
                    Ok(Some(i)) => {
                        deps.insert(i);
                    }
                    Ok(None) => {
                        images.insert(reference.to_string());
                    }
                    Err(kind) => return Err(Error::new(kind, cmd.start_line, cmd.end_line)),
                }
            }
        }
        Ok((deps.into_iter().collect(), images.into_iter().collect()))
    }

    /// A `--from` value: a stage name (any stage, case-insensitive), a stage
    /// index, or else an image / named context (None).
    fn resolve_reference(&self, reference: &str) -> Result<Option<usize>, PlanErrorKind> {
        if let Ok(index) = reference.parse::<usize>() {
            if index >= self.stages.len() {
                return Err(PlanErrorKind::InvalidStageIndex { index, count: self.stages.len() });
            }
            return Ok(Some(index));
        }
        let lowered = reference.to_ascii_lowercase();
        Ok(self.stages.iter().rev().find(|s| s.name.as_deref() == Some(lowered.as_str())).map(|s| s.index))
    }

    fn check_secret(&mut self, keyword: &str, name: &str, cmd: Lines) {
        if lint::looks_like_secret(name) {
            self.linter.report(
                Rule::SecretsUsedInArgOrEnv,
                format!("Do not use ARG or ENV instructions for sensitive data ({keyword} \"{name}\")"),
                cmd.start_line,
                cmd.end_line,
            );
        }
    }

    /// Walks a reachable stage's instructions, expanding each with the
    /// environment it sees.
    fn plan_stage(
        &mut self,
        commands: Vec<Command>,
        mut state: StageState,
        globals: &Globals,
    ) -> Result<(Vec<PlannedInstruction>, StageState), Error> {
        let mut out = Vec::with_capacity(commands.len());
        let mut seen_once: BTreeMap<&'static str, usize> = BTreeMap::new();
        for cmd in commands {
            let before_env = state.env.clone();
            let before_workdir = state.workdir.clone();
            let mut expanded = cmd.instruction;
            let cmd = Lines { start_line: cmd.start_line, end_line: cmd.end_line };
            match &mut expanded {
                Instruction::Arg { args } => {
                    for def in args {
                        if !self.declared_args.contains(&def.name) {
                            self.declared_args.insert(def.name.clone());
                        }
                        self.check_secret("ARG", &def.name, cmd);
                        let value = if let Some(v) = self.options.build_args.get(&def.name) {
                            Some(v.clone())
                        } else if let Some(default) = &def.default {
                            Some(self.expand_word(default, &state, cmd)?)
                        } else {
                            globals.get(&def.name).cloned().flatten()
                        };
                        state.set_arg(&def.name, value);
                    }
                }
                Instruction::Onbuild { .. } | Instruction::Maintainer { .. } => {}
                instruction => {
                    let env = &state;
                    let mut unmatched = BTreeSet::new();
                    let lexer = &self.lexer;
                    instruction
                        .expand_in_place(&mut |word| {
                            let expanded = lexer.process_word_with_lookups(word, env, &mut |name, set| {
                                unset_name(&mut unmatched, name, set)
                            })?;
                            Ok(match expanded {
                                Cow::Borrowed(_) => None,
                                Cow::Owned(value) => Some(value),
                            })
                        })
                        .map_err(|e| locate(e, cmd))?;
                    instruction.validate().map_err(|e| locate_kind(e.into(), cmd))?;
                    self.report_undefined(&unmatched, &state, cmd);
                }
            };
            match &expanded {
                Instruction::Env { pairs } => {
                    for kv in pairs {
                        self.check_secret("ENV", &kv.key, cmd);
                        state.set_env(&kv.key, kv.value.clone());
                    }
                }
                Instruction::Workdir { path } => {
                    if !path.starts_with('/') && !state.workdir_set {
                        self.linter.report(
                            Rule::WorkdirRelativePath,
                            format!(
                                "Relative workdir \"{path}\" can have unexpected results if the base image changes"
                            ),
                            cmd.start_line,
                            cmd.end_line,
                        );
                    }
                    state.workdir = state
                        .workdir
                        .as_deref()
                        .map(|wd| join_path(wd, path))
                        .or_else(|| path.starts_with('/').then(|| clean_path(path)))
                        .map(Arc::from);
                    state.workdir_set = true;
                }
                Instruction::Expose { ports } => self.check_expose(ports, cmd),
                Instruction::Cmd { .. } | Instruction::Entrypoint { .. } | Instruction::Healthcheck(_) => {
                    let kw = expanded.keyword();
                    let count = seen_once.entry(kw).or_insert(0);
                    *count += 1;
                    if *count > 1 {
                        self.linter.report(
                            Rule::MultipleInstructionsDisallowed,
                            format!("Multiple {kw} instructions should not be used in the same stage because only the last one will be used"),
                            cmd.start_line,
                            cmd.end_line,
                        );
                    }
                }
                _ => {}
            }
            let mut args = state.arg_values();
            if matches!(expanded, Instruction::Run(_)) {
                for name in PREDEFINED_ARGS {
                    if let Some(v) = self.options.build_args.get(*name)
                        && !args.iter().any(|(k, _)| k == name)
                    {
                        Arc::make_mut(&mut args).push((name.to_string(), v.clone()));
                    }
                }
            }
            out.push(PlannedInstruction {
                instruction: expanded,
                start_line: cmd.start_line,
                end_line: cmd.end_line,
                args,
                env: before_env,
                workdir: before_workdir,
                onbuild: None,
            });
        }
        Ok((out, state))
    }

    fn expand_word(&mut self, word: &str, state: &StageState, cmd: Lines) -> Result<String, Error> {
        let mut unmatched = BTreeSet::new();
        let value = self
            .lexer
            .process_word_with_lookups(word, state, &mut |name, set| unset_name(&mut unmatched, name, set))
            .map_err(|e| locate(e, cmd))?;
        self.report_undefined(&unmatched, state, cmd);
        Ok(value.into_owned())
    }

    fn report_undefined(&mut self, unmatched: &BTreeSet<String>, state: &StageState, cmd: Lines) {
        if state.env_unknown {
            return; // the base image may define it
        }
        for name in unmatched {
            if state.is_defined(name) || PREDEFINED_ARGS.contains(&name.as_str()) {
                continue;
            }
            let candidates: Vec<&str> =
                state.env.iter().map(|(k, _)| k.as_str()).chain(state.args.iter().map(|(k, _)| k.as_str())).collect();
            let hint = lint::suggest(name, candidates).map(|s| format!(" (did you mean ${s}?)")).unwrap_or_default();
            self.linter.report(
                Rule::UndefinedVar,
                format!("Usage of undefined variable '${name}'{hint}"),
                cmd.start_line,
                cmd.end_line,
            );
        }
    }

    fn check_expose(&mut self, ports: &[String], cmd: Lines) {
        for port in ports {
            if let Some((_, proto)) = port.rsplit_once('/')
                && proto != proto.to_ascii_lowercase()
            {
                self.linter.report(
                    Rule::ExposeProtoCasing,
                    format!("Defined protocol '{port}' in EXPOSE instruction should be lowercase"),
                    cmd.start_line,
                    cmd.end_line,
                );
            }
            if port.split('/').next().is_some_and(|p| p.contains(':')) {
                self.linter.report(
                    Rule::ExposeInvalidFormat,
                    format!("EXPOSE instruction should not define an IP address or host-port mapping, found '{port}'"),
                    cmd.start_line,
                    cmd.end_line,
                );
            }
        }
    }
}

/// Adds a name looked up and not set to `unset`, allocating only when it is new.
fn unset_name(unset: &mut BTreeSet<String>, name: &str, set: bool) {
    if !set && !unset.contains(name) {
        unset.insert(name.to_owned());
    }
}

/// The lines of an instruction, for findings and errors.
#[derive(Debug, Clone, Copy)]
struct Lines {
    start_line: usize,
    end_line: usize,
}

impl Lines {
    fn of(cmd: &Command) -> Lines {
        Lines { start_line: cmd.start_line, end_line: cmd.end_line }
    }
}

fn locate(e: ShellError, cmd: Lines) -> Error {
    locate_kind(ErrorKind::Shell(e), cmd)
}

fn locate_kind(kind: ErrorKind, cmd: Lines) -> Error {
    Error { kind, line: cmd.start_line, end_line: cmd.end_line, column: None }
}

/// A loose check of an image reference: non-empty, no whitespace, no
/// leading separator, no trailing `:` or `@`.
fn is_plausible_image_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(char::is_whitespace)
        && !name.starts_with([':', '@', '/', '.', '-'])
        && !name.ends_with([':', '@', '/'])
        && !name.contains("//")
        && !name.contains("::")
}

fn detect_cycles(stages: &[PlannedStage]) -> Result<(), Error> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut marks = vec![Mark::New; stages.len()];
    for start in 0..stages.len() {
        if marks[start] != Mark::New {
            continue;
        }
        // Iterative DFS: (stage, next dependency position).
        let mut stack = vec![(start, 0usize)];
        marks[start] = Mark::Active;
        while let Some(&mut (node, ref mut pos)) = stack.last_mut() {
            if let Some(&dep) = stages[node].dependencies.get(*pos) {
                *pos += 1;
                match marks[dep] {
                    Mark::Active => {
                        let s = &stages[dep];
                        return Err(Error::new(
                            PlanErrorKind::CircularDependency(s.display_name()),
                            s.start_line,
                            s.end_line,
                        ));
                    }
                    Mark::New => {
                        marks[dep] = Mark::Active;
                        stack.push((dep, 0));
                    }
                    Mark::Done => {}
                }
            } else {
                marks[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    Ok(())
}

/// Every stage, each after the stages it depends on (the graph has no cycles).
fn topological_order(stages: &[PlannedStage]) -> Vec<usize> {
    let mut order = Vec::with_capacity(stages.len());
    let mut seen = vec![false; stages.len()];
    for start in 0..stages.len() {
        let mut stack = vec![(start, false)];
        while let Some((i, expanded)) = stack.pop() {
            if expanded {
                order.push(i);
                continue;
            }
            if seen[i] {
                continue;
            }
            seen[i] = true;
            stack.push((i, true));
            stack.extend(stages[i].dependencies.iter().filter(|&&d| !seen[d]).map(|&d| (d, false)));
        }
    }
    order
}

/// An instruction as written, for stages that are shown but not planned.
fn raw_instruction(cmd: &Command, state: &StageState) -> PlannedInstruction {
    PlannedInstruction {
        instruction: cmd.instruction.clone(),
        start_line: cmd.start_line,
        end_line: cmd.end_line,
        args: state.arg_values(),
        env: state.env.clone(),
        workdir: state.workdir.clone(),
        onbuild: None,
    }
}

fn mark_reachable(stages: &mut [PlannedStage], target: usize) {
    let mut stack = vec![target];
    while let Some(i) = stack.pop() {
        if !stages[i].pruned {
            continue;
        }
        stages[i].pruned = false;
        stack.extend(stages[i].dependencies.iter().copied());
    }
}

/// `path.Join(base, p)` for absolute `base`, cleaned; absolute `p` wins.
pub fn join_path(base: &str, p: &str) -> String {
    if p.starts_with('/') { clean_path(p) } else { clean_path(&format!("{base}/{p}")) }
}

/// Go's `path.Clean` for absolute paths.
pub fn clean_path(p: &str) -> String {
    // Fast path: already clean (the usual absolute WORKDIR).
    if p.len() > 1 && p.starts_with('/') && p[1..].split('/').all(|s| !matches!(s, "" | "." | "..")) {
        return p.to_string();
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Renders an instruction back to Dockerfile syntax (for plans and progress).
pub fn render(instruction: &Instruction) -> String {
    use crate::instructions::{Healthcheck, ShellOrExec, Source};
    fn cmd(c: &ShellOrExec) -> String {
        match c {
            ShellOrExec::Shell(s) => s.clone(),
            ShellOrExec::Exec(v) => serde_json::to_string(v).unwrap_or_default(),
        }
    }
    fn kvs(pairs: &[crate::instructions::KeyValue]) -> String {
        pairs.iter().map(|kv| format!("{}={}", kv.key, quote_if_needed(&kv.value))).collect::<Vec<_>>().join(" ")
    }
    fn sources(srcs: &[Source]) -> Vec<String> {
        srcs.iter()
            .map(|s| match s {
                Source::Path(p) => p.clone(),
                Source::Heredoc { name, .. } => format!("<<{name}"),
            })
            .collect()
    }
    let kw = instruction.keyword();
    let mut flags: Vec<String> = Vec::new();
    let body = match instruction {
        Instruction::From(f) => {
            if let Some(p) = &f.platform {
                flags.push(format!("--platform={p}"));
            }
            match &f.stage_name {
                Some(n) => format!("{} AS {n}", f.base_name),
                None => f.base_name.clone(),
            }
        }
        Instruction::Run(r) => {
            for m in &r.mounts {
                flags.push(format!("--mount={}", m.raw));
            }
            if r.network != Default::default() {
                flags.push(format!(
                    "--network={}",
                    serde_json::to_value(r.network)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                ));
            }
            if r.security != Default::default() {
                flags.push("--security=insecure".to_string());
            }
            cmd(&r.command)
        }
        Instruction::Cmd { command } | Instruction::Entrypoint { command } => cmd(command),
        Instruction::Shell { shell } => serde_json::to_string(shell).unwrap_or_default(),
        Instruction::Env { pairs } | Instruction::Label { pairs } => kvs(pairs),
        Instruction::Arg { args } => args
            .iter()
            .map(|a| match &a.default {
                Some(d) => format!("{}={d}", a.name),
                None => a.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(" "),
        Instruction::Copy(c) => {
            if let Some(f) = &c.from {
                flags.push(format!("--from={f}"));
            }
            if let Some(o) = &c.chown {
                flags.push(format!("--chown={o}"));
            }
            if let Some(m) = &c.chmod {
                flags.push(format!("--chmod={m}"));
            }
            if c.link {
                flags.push("--link".to_string());
            }
            if c.parents {
                flags.push("--parents".to_string());
            }
            for e in &c.exclude {
                flags.push(format!("--exclude={e}"));
            }
            let mut words = sources(&c.sources);
            words.push(c.dest.clone());
            words.join(" ")
        }
        Instruction::Add(a) => {
            if let Some(o) = &a.chown {
                flags.push(format!("--chown={o}"));
            }
            if let Some(m) = &a.chmod {
                flags.push(format!("--chmod={m}"));
            }
            if a.link {
                flags.push("--link".to_string());
            }
            if a.keep_git_dir {
                flags.push("--keep-git-dir".to_string());
            }
            if let Some(c) = &a.checksum {
                flags.push(format!("--checksum={c}"));
            }
            if let Some(u) = a.unpack {
                flags.push(format!("--unpack={u}"));
            }
            for e in &a.exclude {
                flags.push(format!("--exclude={e}"));
            }
            let mut words = sources(&a.sources);
            words.push(a.dest.clone());
            words.join(" ")
        }
        Instruction::Workdir { path } => path.clone(),
        Instruction::User { user } => user.clone(),
        Instruction::Expose { ports } => ports.join(" "),
        Instruction::Volume { paths } => serde_json::to_string(paths).unwrap_or_default(),
        Instruction::StopSignal { signal } => signal.clone(),
        Instruction::Healthcheck(Healthcheck::None) => "NONE".to_string(),
        Instruction::Healthcheck(Healthcheck::Check {
            test,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        }) => {
            for (name, d) in [
                ("interval", interval),
                ("timeout", timeout),
                ("start-period", start_period),
                ("start-interval", start_interval),
            ] {
                if let Some(d) = d {
                    flags.push(format!("--{name}={d:?}"));
                }
            }
            if let Some(r) = retries {
                flags.push(format!("--retries={r}"));
            }
            format!("CMD {}", cmd(test))
        }
        Instruction::Onbuild { expression, .. } => expression.clone(),
        Instruction::Maintainer { name } => name.clone(),
    };
    let mut out = kw.to_string();
    for f in flags {
        out.push(' ');
        out.push_str(&f);
    }
    if !body.is_empty() {
        out.push(' ');
        out.push_str(&body);
    }
    out
}

fn quote_if_needed(v: &str) -> String {
    if v.is_empty() || v.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\\' || c == '$') {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('$', "\\$"))
    } else {
        v.to_string()
    }
}
