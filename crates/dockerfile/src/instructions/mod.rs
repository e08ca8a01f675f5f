//! Typed instructions with validation (BuildKit's
//! `frontend/dockerfile/instructions`).
//!
//! Input: the untyped [`Node`]s of an [`Ast`]. Output: [`Stage`]s holding
//! [`Command`]s, each an [`Instruction`] whose fields hold RAW text: nothing
//! is expanded here. Expansion happens in planning, through
//! [`Instruction::expand`], which knows which fields BuildKit expands.
//!
//! Validation happens here for everything that does not depend on a variable:
//! flag names and kinds, argument counts, stage names, mount options, modes,
//! ports and durations. A value that contains `$` and is expanded later is
//! checked after expansion by [`Instruction::validate`] (or in one step with
//! [`Instruction::expand_and_validate`]).
//!
//! Where we are stricter than BuildKit (on purpose, to report mistakes before
//! a build starts): flags on instructions BuildKit silently ignores them for
//! (ARG, STOPSIGNAL, HEALTHCHECK NONE) are errors; ONBUILD triggers are
//! parsed and validated at once rather than in the downstream build; RUN
//! bind, cache and tmpfs mounts need a target; `from=` is refused for SSH
//! mounts as for secrets.

mod error;
mod expand;
mod flags;
mod mount;
mod values;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use error::{CsvError, DeviceError, DurationError, InstructionError, MountError};
pub use expand::ExpandError;
pub use mount::{Device, MOUNT_KEYS, Mount, MountKind, MountOption, Sharing, parse_device, parse_mount};
pub use values::{PortRange, parse_go_duration, parse_port_spec, validate_chmod};

use crate::ast::{Ast, Heredoc, Node};
use crate::error::Error;
use flags::{FlagTable, parse_flags};
use values::{check_port_spec, heredoc_word, suggest};

/// Every instruction keyword, uppercase, alphabetically.
pub const ALL_KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// A Dockerfile split into build stages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Parsed {
    /// ARG instructions before the first FROM (global build args).
    pub meta_args: Vec<Command>,
    pub stages: Vec<Stage>,
}

/// One build stage: a FROM and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// 0-based position in the file (what `COPY --from=<n>` refers to).
    pub index: usize,
    /// The `AS` name, lowercased.
    pub name: Option<String>,
    /// The `AS` name as written.
    pub name_original: Option<String>,
    /// The `AS` keyword as written (`AS`, `as`), for the FromAsCasing check.
    pub as_keyword: Option<String>,
    /// The base image or stage, as written (unexpanded).
    pub base_name: String,
    /// `--platform`, as written (unexpanded).
    pub platform: Option<String>,
    pub commands: Vec<Command>,
    /// First and last line of the FROM instruction (1-based).
    pub start_line: usize,
    pub end_line: usize,
    /// The `FROM` keyword as written.
    pub keyword_original: Cow<'static, str>,
    /// The FROM line as written.
    pub original: Arc<str>,
    /// Comment lines directly above the FROM.
    pub comments: Vec<String>,
}

impl Stage {
    /// The description given by a `# <name> <description>` comment above the
    /// FROM, as BuildKit reads it for `--call=outline`.
    pub fn description(&self) -> Option<String> {
        definition_description(&self.comments, self.name.as_deref()?)
    }
}

/// BuildKit's `getComment`: the first comment line starting with `name `,
/// without that prefix.
pub fn definition_description(comments: &[String], name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    let prefix = format!("{name} ");
    comments.iter().find_map(|line| line.strip_prefix(&prefix).map(str::to_string))
}

/// An instruction together with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Command {
    pub instruction: Instruction,
    /// First and last line (1-based).
    pub start_line: usize,
    pub end_line: usize,
    /// The keyword as written.
    pub keyword_original: Cow<'static, str>,
    /// The logical line as written (continuations joined).
    pub original: Arc<str>,
    /// Comment lines directly above the instruction.
    pub comments: Vec<String>,
}

impl Command {
    fn new(node: &Node, instruction: Instruction) -> Command {
        Command {
            instruction,
            start_line: node.start_line,
            end_line: node.end_line,
            keyword_original: node.keyword_original.clone(),
            original: node.original.clone(),
            comments: node.comments.clone(),
        }
    }
}

/// A command line: shell form (run through the SHELL) or exec form (a JSON array).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShellOrExec {
    Shell(String),
    Exec(Vec<String>),
}

impl ShellOrExec {
    pub fn is_exec(&self) -> bool {
        matches!(self, ShellOrExec::Exec(_))
    }
}

/// One ENV or LABEL pair, raw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// Written in the legacy `KEY value` form (LegacyKeyValueFormat).
    pub legacy: bool,
}

/// One ARG declaration. The default keeps its quotes: it is expanded by planning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDef {
    pub name: String,
    pub default: Option<String>,
}

/// `FROM [--platform=<p>] <image> [AS <name>]`, raw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FromInstruction {
    pub base_name: String,
    pub platform: Option<String>,
    /// Lowercased.
    pub stage_name: Option<String>,
    pub stage_name_original: Option<String>,
    pub as_keyword: Option<String>,
}

/// `RUN --network=`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    #[default]
    Default,
    None,
    Host,
}

/// `RUN --security=`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityMode {
    #[default]
    Sandbox,
    Insecure,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunInstruction {
    /// The command; `RUN <<EOF` is `Shell("<<EOF")` with the body in `heredocs`.
    pub command: ShellOrExec,
    pub heredocs: Vec<Heredoc>,
    pub mounts: Vec<Mount>,
    pub network: NetworkMode,
    pub security: SecurityMode,
    pub devices: Vec<Device>,
    /// Names of the flags given, in order (BuildKit's `FlagsUsed`).
    pub flags_used: Vec<&'static str>,
}

/// A COPY or ADD source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A path, glob, URL or Git address, raw.
    Path(String),
    /// `<<NAME`: a file named NAME with the heredoc body as content.
    Heredoc {
        name: String,
        content: String,
        /// False when the delimiter was quoted: the body is not expanded.
        expand: bool,
        chomp: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyInstruction {
    pub sources: Vec<Source>,
    pub dest: String,
    /// `--from`: a stage name or index, named context or image; never expanded.
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddInstruction {
    pub sources: Vec<Source>,
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub keep_git_dir: bool,
    pub checksum: Option<String>,
    /// `--unpack`: None when not given (archives from the context are unpacked, URLs not).
    pub unpack: Option<bool>,
    pub exclude: Vec<String>,
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [flags] CMD ...`. Unset durations and
/// retries (absent, or 0) are None: the runtime defaults apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Healthcheck {
    None,
    Check {
        /// Shell form is stored as `CMD-SHELL` in the image config.
        test: ShellOrExec,
        interval: Option<Duration>,
        timeout: Option<Duration>,
        start_period: Option<Duration>,
        start_interval: Option<Duration>,
        retries: Option<u32>,
    },
}

/// A typed Dockerfile instruction. Text fields are raw (unexpanded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Instruction {
    From(FromInstruction),
    Run(RunInstruction),
    Cmd {
        command: ShellOrExec,
    },
    Entrypoint {
        command: ShellOrExec,
    },
    Shell {
        shell: Vec<String>,
    },
    Env {
        pairs: Vec<KeyValue>,
    },
    Label {
        pairs: Vec<KeyValue>,
    },
    Arg {
        args: Vec<ArgDef>,
    },
    Copy(CopyInstruction),
    Add(AddInstruction),
    Workdir {
        path: String,
    },
    User {
        user: String,
    },
    /// Ports as written; each may expand to several (`EXPOSE $PORTS`).
    Expose {
        ports: Vec<String>,
    },
    Volume {
        paths: Vec<String>,
    },
    StopSignal {
        signal: String,
    },
    Healthcheck(Healthcheck),
    Onbuild {
        trigger: Box<Instruction>,
        /// The trigger as stored in the image config (the line without
        /// `ONBUILD`, heredoc bodies appended).
        expression: String,
    },
    Maintainer {
        name: String,
    },
}

/// Parses a Dockerfile's nodes into stages. Only ARG may come before the
/// first FROM.
pub fn parse_stages(ast: &Ast) -> Result<Parsed, Error> {
    let mut parsed = Parsed::default();
    for node in &ast.children {
        match parse_instruction(node)? {
            Instruction::From(from) => parsed.stages.push(Stage {
                index: parsed.stages.len(),
                name: from.stage_name,
                name_original: from.stage_name_original,
                as_keyword: from.as_keyword,
                base_name: from.base_name,
                platform: from.platform,
                commands: Vec::new(),
                start_line: node.start_line,
                end_line: node.end_line,
                keyword_original: node.keyword_original.clone(),
                original: node.original.clone(),
                comments: node.comments.clone(),
            }),
            instruction => {
                let is_arg = matches!(instruction, Instruction::Arg { .. });
                let command = Command::new(node, instruction);
                if let Some(stage) = parsed.stages.last_mut() {
                    stage.commands.push(command);
                } else if is_arg {
                    parsed.meta_args.push(command);
                } else {
                    let kind = InstructionError::NoStage { instruction: node.keyword.to_uppercase() };
                    return Err(Error::new(kind, node.start_line, node.end_line));
                }
            }
        }
    }
    Ok(parsed)
}

/// Parses one node (an ONBUILD trigger included) into an instruction.
/// Errors carry the node's lines.
pub fn parse_instruction(node: &Node) -> Result<Instruction, Error> {
    parse_node(node).map_err(|kind| Error::new(kind, node.start_line, node.end_line))
}

type Result<T, E = InstructionError> = std::result::Result<T, E>;

fn parse_node(node: &Node) -> Result<Instruction> {
    // The parser lowercases keywords; a hand-built node may not have.
    let keyword = match node.keyword.bytes().any(|b| b.is_ascii_uppercase()) {
        true => Cow::Owned(node.keyword.to_ascii_lowercase()),
        false => Cow::Borrowed(node.keyword.as_ref()),
    };
    match keyword.as_ref() {
        "from" => parse_from(node),
        "run" => parse_run(node),
        "cmd" => {
            no_flags("CMD", node)?;
            Ok(Instruction::Cmd { command: shell_or_exec(node, &node.args) })
        }
        "entrypoint" => {
            no_flags("ENTRYPOINT", node)?;
            Ok(Instruction::Entrypoint { command: shell_or_exec(node, &node.args) })
        }
        "shell" => parse_shell(node),
        "env" => Ok(Instruction::Env { pairs: parse_key_values(node, "ENV", "ENV <key>=<value> ...")? }),
        "label" => Ok(Instruction::Label { pairs: parse_key_values(node, "LABEL", "LABEL <key>=<value> ...")? }),
        "arg" => parse_arg(node),
        "copy" => parse_copy(node),
        "add" => parse_add(node),
        "workdir" => Ok(Instruction::Workdir { path: single_arg(node, "WORKDIR", "WORKDIR <path>")? }),
        "user" => Ok(Instruction::User { user: single_arg(node, "USER", "USER <user>[:<group>]")? }),
        "stopsignal" => Ok(Instruction::StopSignal { signal: single_arg(node, "STOPSIGNAL", "STOPSIGNAL <signal>")? }),
        "maintainer" => Ok(Instruction::Maintainer { name: single_arg(node, "MAINTAINER", "MAINTAINER <name>")? }),
        "expose" => parse_expose(node),
        "volume" => parse_volume(node),
        "healthcheck" => parse_healthcheck(node),
        "onbuild" => parse_onbuild(node),
        _ => {
            let written = if node.keyword_original.is_empty() { &node.keyword } else { &node.keyword_original };
            Err(InstructionError::UnknownInstruction {
                name: written.to_uppercase(),
                suggestion: suggest(written, ALL_KEYWORDS, false),
            })
        }
    }
}

fn no_flags(instruction: &'static str, node: &Node) -> Result<()> {
    parse_flags(&flags::none(instruction), &node.flags).map(|_| ())
}

/// Shell form joins the words (the parser gives one); exec form keeps them.
fn shell_or_exec(node: &Node, args: &[String]) -> ShellOrExec {
    if node.json { ShellOrExec::Exec(args.to_vec()) } else { ShellOrExec::Shell(args.join(" ")) }
}

/// Whether a raw value can be checked before expansion: no variables, and
/// no quoting or escapes that expansion would remove.
fn is_literal(value: &str) -> bool {
    !value.contains(['$', '\'', '"', '\\', '`'])
}

fn is_valid_stage_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.'))
}

fn parse_from(node: &Node) -> Result<Instruction> {
    let args = &node.args;
    let (stage_name, stage_name_original, as_keyword) = match args.as_slice() {
        [_] => (None, None, None),
        [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
            let lower = name.to_lowercase();
            if !is_valid_stage_name(&lower) {
                return Err(InstructionError::InvalidStageName { name: name.clone() });
            }
            (Some(lower), Some(name.clone()), Some(as_kw.clone()))
        }
        _ => {
            return Err(InstructionError::FromArguments { found: args.len(), args: args.clone() });
        }
    };
    let flags = parse_flags(&flags::FROM, &node.flags)?;
    Ok(Instruction::From(FromInstruction {
        base_name: args.first().cloned().unwrap_or_default(),
        platform: flags.string("platform"),
        stage_name,
        stage_name_original,
        as_keyword,
    }))
}

fn parse_run(node: &Node) -> Result<Instruction> {
    let flags = parse_flags(&flags::RUN, &node.flags)?;
    let mut mounts = Vec::new();
    for spec in flags.strings("mount") {
        match parse_mount(&spec, true) {
            Ok(m) => mounts.push(m),
            Err(reason) => return Err(InstructionError::InvalidMount { spec, reason }),
        }
    }
    let network = match flags.raw_string("network") {
        None | Some("default") => NetworkMode::Default,
        Some("none") => NetworkMode::None,
        Some("host") => NetworkMode::Host,
        Some(other) => {
            return Err(InstructionError::InvalidNetwork { value: other.to_string() });
        }
    };
    let security = match flags.raw_string("security") {
        None | Some("sandbox") => SecurityMode::Sandbox,
        Some("insecure") => SecurityMode::Insecure,
        Some(other) => {
            return Err(InstructionError::InvalidSecurity { value: other.to_string() });
        }
    };
    let mut devices = Vec::new();
    for spec in flags.strings("device") {
        match parse_device(&spec) {
            Ok(d) => devices.push(d),
            Err(reason) => return Err(InstructionError::InvalidDevice { spec, reason }),
        }
    }
    Ok(Instruction::Run(RunInstruction {
        command: shell_or_exec(node, &node.args),
        heredocs: node.heredocs.clone(),
        mounts,
        network,
        security,
        devices,
        flags_used: flags.used(),
    }))
}

fn parse_shell(node: &Node) -> Result<Instruction> {
    no_flags("SHELL", node)?;
    if node.args.is_empty() {
        return Err(InstructionError::MissingArgument {
            instruction: "SHELL",
            usage: "SHELL [\"<executable>\", \"<param>\"...]",
        });
    }
    if !node.json {
        return Err(InstructionError::NotJson { instruction: "SHELL" });
    }
    Ok(Instruction::Shell { shell: node.args.clone() })
}

fn parse_key_values(node: &Node, instruction: &'static str, usage: &'static str) -> Result<Vec<KeyValue>> {
    no_flags(instruction, node)?;
    if node.args.is_empty() {
        return Err(InstructionError::MissingArgument { instruction, usage });
    }
    if !node.args.len().is_multiple_of(3) {
        return Err(InstructionError::MalformedKeyValues { instruction });
    }
    node.args
        .chunks(3)
        .map(|chunk| match chunk {
            [key, _, _] if key.is_empty() => Err(InstructionError::BlankName { instruction, usage }),
            [key, value, delim] => Ok(KeyValue { key: key.clone(), value: value.clone(), legacy: delim.is_empty() }),
            _ => Err(InstructionError::MalformedKeyValues { instruction }),
        })
        .collect()
}

fn parse_arg(node: &Node) -> Result<Instruction> {
    const USAGE: &str = "ARG <name>[=<default value>] ...";
    no_flags("ARG", node)?;
    if node.args.is_empty() {
        return Err(InstructionError::MissingArgument { instruction: "ARG", usage: USAGE });
    }
    let args = node
        .args
        .iter()
        .map(|word| match word.split_once('=') {
            Some(("", _)) => Err(InstructionError::BlankName { instruction: "ARG", usage: USAGE }),
            Some((name, default)) => Ok(ArgDef { name: name.to_string(), default: Some(default.to_string()) }),
            None => Ok(ArgDef { name: word.clone(), default: None }),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Instruction::Arg { args })
}

fn single_arg(node: &Node, instruction: &'static str, usage: &'static str) -> Result<String> {
    let [arg] = node.args.as_slice() else {
        return Err(InstructionError::ExactlyOneArgument { instruction, usage });
    };
    no_flags(instruction, node)?;
    Ok(arg.clone())
}

/// Splits COPY/ADD arguments into sources and destination, resolving
/// heredoc sources against the node's heredoc bodies.
fn sources_and_dest(
    node: &Node,
    instruction: &'static str,
    table: &FlagTable,
) -> Result<(Vec<Source>, String, flags::Flags)> {
    let [srcs @ .., dest] = node.args.as_slice() else {
        return Err(InstructionError::MissingDestination { instruction });
    };
    if srcs.is_empty() {
        return Err(InstructionError::MissingDestination { instruction });
    }
    let flags = parse_flags(table, &node.flags)?;
    if heredoc_word(dest).is_some() {
        return Err(InstructionError::HeredocDestination { instruction });
    }
    let sources = srcs
        .iter()
        .map(|src| match heredoc_word(src) {
            Some((name, chomp, expand)) => {
                let content = node.heredocs.iter().rev().find(|h| h.name == name).map(|h| h.content.clone());
                Source::Heredoc { name, content: content.unwrap_or_default(), expand, chomp }
            }
            None => Source::Path(src.clone()),
        })
        .collect();
    Ok((sources, dest.clone(), flags))
}

fn checked_chmod(flags: &flags::Flags) -> Result<Option<String>> {
    let chmod = flags.string("chmod");
    if let Some(mode) = &chmod
        && !mode.contains('$')
    {
        validate_chmod(mode)?;
    }
    Ok(chmod)
}

fn parse_copy(node: &Node) -> Result<Instruction> {
    let (sources, dest, flags) = sources_and_dest(node, "COPY", &flags::COPY)?;
    Ok(Instruction::Copy(CopyInstruction {
        sources,
        dest,
        from: flags.string("from"),
        chown: flags.string("chown"),
        chmod: checked_chmod(&flags)?,
        link: flags.bool("link").unwrap_or(false),
        parents: flags.bool("parents").unwrap_or(false),
        exclude: flags.strings("exclude"),
    }))
}

fn parse_add(node: &Node) -> Result<Instruction> {
    let (sources, dest, flags) = sources_and_dest(node, "ADD", &flags::ADD)?;
    Ok(Instruction::Add(AddInstruction {
        sources,
        dest,
        chown: flags.string("chown"),
        chmod: checked_chmod(&flags)?,
        link: flags.bool("link").unwrap_or(false),
        keep_git_dir: flags.bool("keep-git-dir").unwrap_or(false),
        checksum: flags.string("checksum"),
        unpack: flags.bool("unpack"),
        exclude: flags.strings("exclude"),
    }))
}

fn parse_expose(node: &Node) -> Result<Instruction> {
    if node.args.is_empty() {
        return Err(InstructionError::MissingArgument {
            instruction: "EXPOSE",
            usage: "EXPOSE <port>[/<protocol>] ...",
        });
    }
    no_flags("EXPOSE", node)?;
    for port in node.args.iter().filter(|p| is_literal(p)) {
        check_port_spec(port)?;
    }
    Ok(Instruction::Expose { ports: node.args.clone() })
}

/// Go's `strings.TrimSpace`.
fn trim_go_space(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || c == '\u{85}')
}

fn parse_volume(node: &Node) -> Result<Instruction> {
    if node.args.is_empty() {
        return Err(InstructionError::MissingArgument { instruction: "VOLUME", usage: "VOLUME <path> ..." });
    }
    no_flags("VOLUME", node)?;
    let mut paths = Vec::with_capacity(node.args.len());
    for path in &node.args {
        let path = trim_go_space(path);
        if path.is_empty() {
            return Err(InstructionError::EmptyVolume);
        }
        paths.push(path.to_string());
    }
    Ok(Instruction::Volume { paths })
}

const MIN_HEALTHCHECK_INTERVAL_NANOS: i64 = 1_000_000;

/// A HEALTHCHECK duration flag: absent, empty or 0 is None.
fn duration_flag(flags: &flags::Flags, flag: &'static str) -> Result<Option<Duration>> {
    let value = match flags.raw_string(flag) {
        None | Some("") => return Ok(None),
        Some(v) => v,
    };
    let nanos = parse_go_duration(value).map_err(|reason| InstructionError::InvalidDuration {
        flag,
        value: value.to_string(),
        reason,
    })?;
    if nanos == 0 {
        return Ok(None);
    }
    if nanos < MIN_HEALTHCHECK_INTERVAL_NANOS {
        return Err(InstructionError::DurationTooShort { flag, value: value.to_string() });
    }
    Ok(Some(Duration::from_nanos(nanos.unsigned_abs())))
}

/// `strconv.ParseInt(v, 10, 32)`.
fn parse_go_i32(value: &str) -> Option<i64> {
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse::<i32>().ok().map(i64::from)
}

fn parse_healthcheck(node: &Node) -> Result<Instruction> {
    let Some((kind, rest)) = node.args.split_first() else {
        return Err(InstructionError::MissingArgument {
            instruction: "HEALTHCHECK",
            usage: "HEALTHCHECK [flags] CMD <command> or HEALTHCHECK NONE",
        });
    };
    let kind_upper = kind.to_uppercase();
    if kind_upper == "NONE" {
        if !rest.is_empty() {
            return Err(InstructionError::HealthcheckNoneArguments);
        }
        if let Some(flag) = node.flags.first() {
            return Err(InstructionError::HealthcheckNoneFlags { flag: flag.clone() });
        }
        return Ok(Instruction::Healthcheck(Healthcheck::None));
    }
    let flags = parse_flags(&flags::HEALTHCHECK, &node.flags)?;
    if kind_upper != "CMD" {
        return Err(InstructionError::HealthcheckType { value: kind.clone() });
    }
    if rest.is_empty() {
        return Err(InstructionError::HealthcheckMissingCommand);
    }
    let test = shell_or_exec(node, rest);
    let interval = duration_flag(&flags, "interval")?;
    let timeout = duration_flag(&flags, "timeout")?;
    let start_period = duration_flag(&flags, "start-period")?;
    let start_interval = duration_flag(&flags, "start-interval")?;
    let retries = match flags.raw_string("retries") {
        None | Some("") => None,
        Some(v) => match parse_go_i32(v) {
            None => {
                return Err(InstructionError::InvalidRetries { value: v.to_string() });
            }
            Some(n) if n < 0 => return Err(InstructionError::NegativeRetries { value: n }),
            Some(0) => None,
            Some(n) => u32::try_from(n).ok(),
        },
    };
    Ok(Instruction::Healthcheck(Healthcheck::Check { test, interval, timeout, start_period, start_interval, retries }))
}

/// Removes `(?i)^\s*ONBUILD\s*` (Go's ASCII `\s`).
fn strip_onbuild(original: &str) -> &str {
    let is_s = |c: char| matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ');
    let s = original.trim_start_matches(is_s);
    match s.get(..7) {
        Some(word) if word.eq_ignore_ascii_case("onbuild") => s.get(7..).unwrap_or("").trim_start_matches(is_s),
        _ => original,
    }
}

fn parse_onbuild(node: &Node) -> Result<Instruction> {
    let Some(child) = node.child.as_deref() else {
        return Err(InstructionError::MissingArgument { instruction: "ONBUILD", usage: "ONBUILD <instruction>" });
    };
    no_flags("ONBUILD", node)?;
    let trigger_keyword = child.keyword.trim().to_uppercase();
    match trigger_keyword.as_str() {
        "ONBUILD" => return Err(InstructionError::OnbuildChained),
        "FROM" | "MAINTAINER" => {
            return Err(InstructionError::OnbuildTrigger { trigger: trigger_keyword });
        }
        _ => {}
    }
    // The parser keeps the bodies on the trigger; accept them on either node.
    let heredocs = if child.heredocs.is_empty() { &node.heredocs } else { &child.heredocs };
    let trigger = if child.heredocs.is_empty() && !node.heredocs.is_empty() {
        let mut with_docs = child.clone();
        with_docs.heredocs = node.heredocs.clone();
        parse_node(&with_docs)?
    } else {
        parse_node(child)?
    };
    let mut expression = strip_onbuild(&node.original).to_string();
    for doc in heredocs {
        expression.push('\n');
        expression.push_str(&doc.content);
        expression.push_str(&doc.name);
    }
    Ok(Instruction::Onbuild { trigger: Box::new(trigger), expression })
}

#[cfg(test)]
mod tests;
