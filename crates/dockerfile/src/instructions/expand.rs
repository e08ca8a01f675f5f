//! Variable expansion of instruction fields (BuildKit's `Expand` methods),
//! checks that can only run after expansion, and helpers for planning.

use thiserror::Error;

use super::error::InstructionError;
use super::mount::{Mount, build_mount, mount_problem};
use super::values::{check_port_spec, validate_chmod};
use super::{AddInstruction, CopyInstruction, Healthcheck, Instruction, KeyValue, Source};
use crate::error::ErrorKind;
use crate::shell::ShellError;

/// An expansion failed, or its result is not a valid value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExpandError {
    #[error(transparent)]
    Shell(#[from] ShellError),
    #[error(transparent)]
    Instruction(#[from] InstructionError),
}

impl From<ExpandError> for ErrorKind {
    fn from(e: ExpandError) -> ErrorKind {
        match e {
            ExpandError::Shell(e) => ErrorKind::Shell(e),
            ExpandError::Instruction(e) => ErrorKind::Instruction(e),
        }
    }
}

/// Expands one word; `Ok(None)` when the word is unchanged.
type Expander<'a> = dyn FnMut(&str) -> Result<Option<String>, ShellError> + 'a;

fn one(ex: &mut Expander<'_>, value: &mut String) -> Result<(), ShellError> {
    if let Some(expanded) = ex(value)? {
        *value = expanded;
    }
    Ok(())
}

/// An optional value; one that expands to the empty string becomes None.
fn opt(ex: &mut Expander<'_>, value: &mut Option<String>) -> Result<(), ShellError> {
    if let Some(v) = value {
        let expanded = ex(v)?;
        if let Some(e) = expanded {
            *v = e;
        }
        if v.is_empty() {
            *value = None;
        }
    }
    Ok(())
}

fn all(ex: &mut Expander<'_>, values: &mut [String]) -> Result<(), ShellError> {
    values.iter_mut().try_for_each(|v| one(ex, v))
}

fn pairs(ex: &mut Expander<'_>, kvs: &mut [KeyValue]) -> Result<(), ShellError> {
    kvs.iter_mut().try_for_each(|kv| {
        one(ex, &mut kv.key)?;
        one(ex, &mut kv.value)
    })
}

/// Expands path sources; heredoc sources are left alone (their bodies are
/// expanded, if at all, with the raw-quote lexer when the file is written).
fn sources(ex: &mut Expander<'_>, srcs: &mut [Source]) -> Result<(), ShellError> {
    srcs.iter_mut().try_for_each(|s| match s {
        Source::Path(p) => one(ex, p),
        Source::Heredoc { .. } => Ok(()),
    })
}

/// Expands the option values of a mount (all but `from`) and rebuilds its
/// typed fields when a value changed or was deferred (contains `$`).
fn mount(ex: &mut Expander<'_>, m: &mut Mount) -> Result<(), ShellError> {
    let mut rebuild = false;
    for o in &mut m.options {
        if let Some(v) = &mut o.value
            && o.key != "from"
        {
            match ex(v)? {
                Some(expanded) => {
                    *v = expanded;
                    rebuild = true;
                }
                None => rebuild |= v.contains('$'),
            }
        }
    }
    if rebuild {
        let raw = std::mem::take(&mut m.raw);
        *m = build_mount(raw, std::mem::take(&mut m.options), false).0;
    }
    Ok(())
}

/// EXPOSE ports: each expanded value split on whitespace, as BuildKit's
/// word splitting would.
fn ports(ex: &mut Expander<'_>, ports: &mut Vec<String>) -> Result<(), ShellError> {
    let is_one_word = |p: &str| !p.is_empty() && !p.bytes().any(|b| b.is_ascii_whitespace());
    let mut out = Vec::with_capacity(ports.len());
    for p in std::mem::take(ports) {
        match ex(&p)? {
            Some(expanded) => out.extend(expanded.split_ascii_whitespace().map(str::to_string)),
            None if is_one_word(&p) => out.push(p),
            None => out.extend(p.split_ascii_whitespace().map(str::to_string)),
        }
    }
    *ports = out;
    Ok(())
}

impl Instruction {
    /// The keyword, uppercase (`RUN`, `STOPSIGNAL`).
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::From(_) => "FROM",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd { .. } => "CMD",
            Instruction::Entrypoint { .. } => "ENTRYPOINT",
            Instruction::Shell { .. } => "SHELL",
            Instruction::Env { .. } => "ENV",
            Instruction::Label { .. } => "LABEL",
            Instruction::Arg { .. } => "ARG",
            Instruction::Copy(_) => "COPY",
            Instruction::Add(_) => "ADD",
            Instruction::Workdir { .. } => "WORKDIR",
            Instruction::User { .. } => "USER",
            Instruction::Expose { .. } => "EXPOSE",
            Instruction::Volume { .. } => "VOLUME",
            Instruction::StopSignal { .. } => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Onbuild { .. } => "ONBUILD",
            Instruction::Maintainer { .. } => "MAINTAINER",
        }
    }

    /// A copy with every field BuildKit expands passed through `ex` (one
    /// word in, one word out):
    /// FROM image and `--platform`; ENV and LABEL keys and values; COPY/ADD
    /// path sources, destination, `--chown`, `--chmod` (and ADD
    /// `--checksum`); WORKDIR; USER; STOPSIGNAL; EXPOSE ports (each result
    /// split on whitespace, as BuildKit's word splitting would); VOLUME
    /// paths; RUN `--mount` option values except `from`.
    ///
    /// Not expanded: RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK commands (the
    /// shell does it), COPY `--from`, `--exclude`, ARG (planning handles
    /// defaults), heredoc bodies, MAINTAINER, ONBUILD triggers (they expand
    /// in the downstream build).
    ///
    /// An expanded value that is invalid (a bad `--chmod`, mount option or
    /// port) is not reported here: the typed mount fields are best effort.
    /// Call [`Instruction::validate`] on the result, or use
    /// [`Instruction::expand_and_validate`].
    pub fn expand(&self, ex: &mut dyn FnMut(&str) -> Result<String, ShellError>) -> Result<Instruction, ShellError> {
        let mut expanded = self.clone();
        expanded.expand_in_place(&mut |word| ex(word).map(Some))?;
        Ok(expanded)
    }

    /// [`Instruction::expand`] without a copy: the fields are replaced in
    /// place. `ex` returns None for a word that has nothing to expand, which
    /// then keeps its text (and allocation). On error, the fields expanded
    /// so far stay expanded.
    pub fn expand_in_place(
        &mut self,
        ex: &mut dyn FnMut(&str) -> Result<Option<String>, ShellError>,
    ) -> Result<(), ShellError> {
        match self {
            Instruction::From(f) => {
                one(ex, &mut f.base_name)?;
                opt(ex, &mut f.platform)
            }
            Instruction::Run(run) => run.mounts.iter_mut().try_for_each(|m| mount(ex, m)),
            Instruction::Env { pairs: p } | Instruction::Label { pairs: p } => pairs(ex, p),
            Instruction::Copy(c) => {
                sources(ex, &mut c.sources)?;
                one(ex, &mut c.dest)?;
                opt(ex, &mut c.chown)?;
                opt(ex, &mut c.chmod)
            }
            Instruction::Add(a) => {
                sources(ex, &mut a.sources)?;
                one(ex, &mut a.dest)?;
                opt(ex, &mut a.chown)?;
                opt(ex, &mut a.chmod)?;
                opt(ex, &mut a.checksum)
            }
            Instruction::Workdir { path } => one(ex, path),
            Instruction::User { user } => one(ex, user),
            Instruction::StopSignal { signal } => one(ex, signal),
            Instruction::Expose { ports: p } => ports(ex, p),
            Instruction::Volume { paths } => all(ex, paths),
            Instruction::Cmd { .. }
            | Instruction::Entrypoint { .. }
            | Instruction::Shell { .. }
            | Instruction::Arg { .. }
            | Instruction::Healthcheck(_)
            | Instruction::Onbuild { .. }
            | Instruction::Maintainer { .. } => Ok(()),
        }
    }

    /// Checks the values that can only be checked once expanded: `--chmod`,
    /// RUN mount options, EXPOSE ports, empty VOLUME paths. Meant for the
    /// result of [`Instruction::expand`]; on a raw instruction a `$` in such
    /// a value is reported as invalid.
    pub fn validate(&self) -> Result<(), InstructionError> {
        match self {
            Instruction::Run(run) => {
                for m in &run.mounts {
                    if let Some(reason) = mount_problem(&m.options) {
                        return Err(InstructionError::InvalidMount { spec: m.raw.clone(), reason });
                    }
                }
                Ok(())
            }
            Instruction::Copy(CopyInstruction { chmod: Some(mode), .. })
            | Instruction::Add(AddInstruction { chmod: Some(mode), .. }) => validate_chmod(mode),
            Instruction::Expose { ports } => ports.iter().try_for_each(|p| check_port_spec(p)),
            Instruction::Volume { paths } if paths.iter().any(|p| p.trim().is_empty()) => {
                Err(InstructionError::EmptyVolume)
            }
            _ => Ok(()),
        }
    }

    /// [`Instruction::expand`] followed by [`Instruction::validate`].
    pub fn expand_and_validate(
        &self,
        ex: &mut dyn FnMut(&str) -> Result<String, ShellError>,
    ) -> Result<Instruction, ExpandError> {
        let expanded = self.expand(ex)?;
        expanded.validate()?;
        Ok(expanded)
    }

    /// The stages (or images, or named contexts) this instruction reads
    /// from in the current build: `COPY --from` and each `RUN --mount`
    /// `from=`. Values are as written (never expanded). ONBUILD triggers are
    /// not included: they run in downstream builds.
    pub fn stage_references(&self) -> Vec<&str> {
        match self {
            Instruction::Copy(c) => c.from.as_deref().into_iter().collect(),
            Instruction::Run(run) => run.mounts.iter().filter_map(|m| m.from.as_deref()).collect(),
            _ => Vec::new(),
        }
    }

    /// The healthcheck test as stored in an image config
    /// (`["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`), for HEALTHCHECK.
    pub fn healthcheck_test(&self) -> Option<Vec<String>> {
        let Instruction::Healthcheck(h) = self else {
            return None;
        };
        Some(match h {
            Healthcheck::None => vec!["NONE".to_string()],
            Healthcheck::Check { test: super::ShellOrExec::Exec(args), .. } => {
                std::iter::once("CMD".to_string()).chain(args.iter().cloned()).collect()
            }
            Healthcheck::Check { test: super::ShellOrExec::Shell(cmd), .. } => {
                vec!["CMD-SHELL".to_string(), cmd.clone()]
            }
        })
    }
}

impl CopyInstruction {
    /// The path sources (not heredocs).
    pub fn source_paths(&self) -> impl Iterator<Item = &str> {
        self.sources.iter().filter_map(|s| match s {
            Source::Path(p) => Some(p.as_str()),
            Source::Heredoc { .. } => None,
        })
    }
}

impl AddInstruction {
    /// The path sources (not heredocs).
    pub fn source_paths(&self) -> impl Iterator<Item = &str> {
        self.sources.iter().filter_map(|s| match s {
            Source::Path(p) => Some(p.as_str()),
            Source::Heredoc { .. } => None,
        })
    }
}
