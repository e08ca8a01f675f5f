//! What can be wrong with an instruction, once the parser has split it.
//!
//! Every message says what is wrong and what would be accepted instead. The
//! wording keeps BuildKit's phrase where one exists (so that people searching
//! for BuildKit's message find ours), followed by the explanation.

use std::fmt;

use thiserror::Error;

use super::mount::MountKind;

/// An invalid instruction. The location is carried by [`crate::Error`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InstructionError {
    #[error("unknown instruction: {name}{}", UnknownSuffix(suggestion.as_deref()))]
    UnknownInstruction { name: String, suggestion: Option<&'static str> },

    #[error(
        "{instruction} cannot come before the first FROM: only ARG instructions may precede FROM \
         (no build stage in current context)"
    )]
    NoStage { instruction: String },

    #[error("unknown flag: --{flag} for {instruction} ({})", FlagHelp { allowed, suggestion: *suggestion, instruction })]
    UnknownFlag {
        instruction: &'static str,
        flag: String,
        allowed: &'static [&'static str],
        suggestion: Option<&'static str>,
    },

    #[error("duplicate flag: --{flag} for {instruction}: this flag may be given only once")]
    DuplicateFlag { instruction: &'static str, flag: String },

    #[error("missing a value on flag --{flag} of {instruction}: write --{flag}=<value>")]
    MissingFlagValue { instruction: &'static str, flag: String },

    #[error("missing a value on flag --{flag} of {instruction}: write --{flag}, --{flag}=true or --{flag}=false")]
    MissingBoolFlagValue { instruction: &'static str, flag: String },

    #[error("invalid value {value:?} for flag --{flag} of {instruction}: expected true or false")]
    InvalidBoolFlag { instruction: &'static str, flag: String, value: String },

    #[error("invalid flag {arg:?} for {instruction}: flags must start with --")]
    MalformedFlag { instruction: &'static str, arg: String },

    #[error("{instruction} requires at least one argument (usage: {usage})")]
    MissingArgument { instruction: &'static str, usage: &'static str },

    #[error("{instruction} requires exactly one argument (usage: {usage})")]
    ExactlyOneArgument { instruction: &'static str, usage: &'static str },

    #[error(
        "{instruction} requires at least two arguments, but only one was provided: \
         the destination could not be determined (usage: {instruction} [flags] <src>... <dest>)"
    )]
    MissingDestination { instruction: &'static str },

    #[error(
        "FROM requires either one or three arguments (usage: FROM [--platform=<platform>] <image> [AS <name>]), \
         got {found}: {args:?}"
    )]
    FromArguments { found: usize, args: Vec<String> },

    #[error(
        "invalid name for build stage: {name:?}: a stage name must start with a letter and contain only \
         letters, digits, '-', '_' and '.'"
    )]
    InvalidStageName { name: String },

    #[error("{instruction} names can not be blank (usage: {usage})")]
    BlankName { instruction: &'static str, usage: &'static str },

    #[error("bad input to {instruction}: expected key/value pairs (usage: {instruction} <key>=<value> ...)")]
    MalformedKeyValues { instruction: &'static str },

    #[error("{instruction} requires the arguments to be in JSON form, e.g. {instruction} [\"/bin/sh\", \"-c\"]")]
    NotJson { instruction: &'static str },

    #[error("{instruction} cannot accept a heredoc as a destination: the last argument must be a path")]
    HeredocDestination { instruction: &'static str },

    #[error(
        "invalid --chmod value {value:?}: expected an octal mode like 0755 (at most 07777) \
         or a symbolic mode like u+x,go=rX"
    )]
    InvalidChmod { value: String },

    #[error(
        "invalid port {value:?} in EXPOSE: {reason} (expected <port>[-<port>][/tcp|/udp|/sctp], \
         e.g. 80, 80/tcp, 8000-8010/udp)"
    )]
    InvalidPort { value: String, reason: String },

    #[error(
        "invalid duration {value:?} for HEALTHCHECK --{flag}: {reason} (expected a duration like 30s, 1m30s or 500ms)"
    )]
    InvalidDuration { flag: &'static str, value: String, reason: DurationError },

    #[error("HEALTHCHECK --{flag}={value} cannot be less than 1ms: give 0 (the default) or a duration of at least 1ms")]
    DurationTooShort { flag: &'static str, value: String },

    #[error("invalid HEALTHCHECK --retries value {value:?}: expected a whole number, 0 or more")]
    InvalidRetries { value: String },

    #[error("HEALTHCHECK --retries cannot be negative ({value}): expected a whole number, 0 or more")]
    NegativeRetries { value: i64 },

    #[error("unknown type {value:?} in HEALTHCHECK: expected CMD or NONE")]
    HealthcheckType { value: String },

    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArguments,

    #[error("HEALTHCHECK NONE takes no flags (found {flag:?}): flags apply only to HEALTHCHECK CMD")]
    HealthcheckNoneFlags { flag: String },

    #[error("missing command after HEALTHCHECK CMD (usage: HEALTHCHECK [flags] CMD <command>)")]
    HealthcheckMissingCommand,

    #[error("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildChained,

    #[error(
        "{trigger} isn't allowed as an ONBUILD trigger (any instruction except ONBUILD, FROM and MAINTAINER may be)"
    )]
    OnbuildTrigger { trigger: String },

    #[error("VOLUME specified can not be an empty string: give one or more paths, e.g. VOLUME /data")]
    EmptyVolume,

    #[error("invalid network mode {value:?} for RUN --network: expected default, none or host")]
    InvalidNetwork { value: String },

    #[error("invalid security mode {value:?} for RUN --security: expected sandbox or insecure")]
    InvalidSecurity { value: String },

    #[error("invalid RUN --mount={spec}: {reason}")]
    InvalidMount { spec: String, reason: MountError },

    #[error("invalid RUN --device={spec}: {reason}")]
    InvalidDevice { spec: String, reason: DeviceError },
}

/// What is wrong with one `RUN --mount` value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MountError {
    #[error("failed to parse CSV: {0}")]
    Csv(CsvError),

    #[error("field {field:?} must be a key=value pair (only ro, readonly, rw, readwrite and required may stand alone)")]
    NotKeyValue { field: String },

    #[error("unexpected key {key:?} in {field:?} ({})", KeyHelp { suggestion: *suggestion })]
    UnknownKey { key: String, field: String, suggestion: Option<&'static str> },

    #[error("unsupported mount type {value:?}{} (allowed: bind, cache, tmpfs, secret, ssh)", Suggest(*suggestion))]
    UnsupportedType { value: String, suggestion: Option<&'static str> },

    #[error("{key} is not allowed for type={kind} mounts ({key} is only for {})", only_for(key))]
    KeyNotAllowed { key: &'static str, kind: MountKind },

    #[error("invalid value {value:?} for {key}: expected true or false")]
    InvalidBool { key: String, value: String },

    #[error("unsupported sharing value {value:?}{} (allowed: shared, private, locked)", Suggest(*suggestion))]
    InvalidSharing { value: String, suggestion: Option<&'static str> },

    #[error("invalid value {value:?} for mode: expected an octal number like 0755")]
    InvalidMode { value: String },

    #[error("invalid value {value:?} for {key}: expected a whole number from 0 to 4294967295")]
    InvalidId { key: &'static str, value: String },

    #[error("invalid value {value:?} for size: expected a size like 64m, 1g or 1048576")]
    InvalidSize { value: String },

    #[error(
        "from={value:?} doesn't support variable expansion: define an alias stage instead \
         (FROM {value} AS <name>, then from=<name>)"
    )]
    FromExpansion { value: String },

    #[error("type={kind} mounts require a target (target=, dst= or destination=)")]
    MissingTarget { kind: MountKind },

    #[error("type={kind} mounts should not have a from (from= is for bind and cache mounts)")]
    FromNotAllowed { kind: MountKind },

    #[error("invalid secret mount: one of id, source or target is required")]
    SecretWithoutId,

    #[error("invalid secret mount: both source and id can't be set (source is an alias of id)")]
    SecretSourceAndId,

    #[error("ssh mounts do not support source (use id= to choose the SSH agent)")]
    SshSource,
}

/// What is wrong with one `RUN --device` value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeviceError {
    #[error("failed to parse CSV: {0}")]
    Csv(CsvError),
    #[error("field {field:?} must be a key=value pair (the device name may stand alone once)")]
    NotKeyValue { field: String },
    #[error("device name already set to {name:?}")]
    NameAlreadySet { name: String },
    #[error("invalid value {value:?} for required: expected true or false")]
    InvalidBool { value: String },
    #[error("unexpected key {key:?} in {field:?} (allowed: name, required)")]
    UnknownKey { key: String, field: String },
}

/// A CSV syntax error (Go's `encoding/csv` rules, one record).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CsvError {
    #[error("bare \" in non-quoted field {field:?}: quote the whole field, as in \"a,b\"")]
    BareQuote { field: String },
    #[error("extraneous or missing \" in quoted field")]
    QuotedField,
}

/// Why a Go duration string did not parse (`time.ParseDuration`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DurationError {
    #[error("not a duration")]
    Invalid,
    #[error("missing unit (one of ns, us, µs, ms, s, m, h)")]
    MissingUnit,
    #[error("unknown unit {0:?} (expected one of ns, us, µs, ms, s, m, h)")]
    UnknownUnit(String),
    #[error("too large")]
    Overflow,
}

struct UnknownSuffix<'a>(Option<&'a str>);

impl fmt::Display for UnknownSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, " (did you mean {s}?)"),
            None => write!(f, " (instructions are {})", super::ALL_KEYWORDS.join(", ")),
        }
    }
}

struct FlagHelp<'a> {
    allowed: &'a [&'static str],
    suggestion: Option<&'static str>,
    instruction: &'a str,
}

impl fmt::Display for FlagHelp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.allowed.is_empty() {
            return write!(f, "{} takes no flags", self.instruction);
        }
        if let Some(s) = self.suggestion {
            write!(f, "did you mean --{s}? ")?;
        }
        f.write_str("allowed: ")?;
        for (i, name) in self.allowed.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "--{name}")?;
        }
        Ok(())
    }
}

struct KeyHelp {
    suggestion: Option<&'static str>,
}

impl fmt::Display for KeyHelp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.suggestion {
            write!(f, "did you mean {s}? ")?;
        }
        write!(f, "allowed: {}", super::mount::MOUNT_KEYS.join(", "))
    }
}

struct Suggest(Option<&'static str>);

impl fmt::Display for Suggest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, ", did you mean {s:?}?"),
            None => Ok(()),
        }
    }
}

fn only_for(key: &str) -> &'static str {
    match key {
        "mode" | "uid" | "gid" => "cache, secret and ssh mounts",
        "required" => "secret and ssh mounts",
        "size" => "tmpfs mounts",
        "sharing" => "cache mounts",
        _ => "other mount types",
    }
}
