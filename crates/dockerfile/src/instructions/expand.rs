//! Variable expansion of instruction fields (BuildKit's `Expand` methods),
//! checks that can only run after expansion, and helpers for planning.

use thiserror::Error;

use super::error::InstructionError;
use super::mount::{MountOption, build_mount};
use super::values::{parse_port_spec, validate_chmod};
use super::{
    AddInstruction, CopyInstruction, FromInstruction, Healthcheck, Instruction, KeyValue, RunInstruction, Source,
};
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

type Expander<'a> = dyn FnMut(&str) -> Result<String, ShellError> + 'a;

fn opt(ex: &mut Expander<'_>, value: &Option<String>) -> Result<Option<String>, ShellError> {
    match value {
        Some(v) => ex(v).map(|e| (!e.is_empty()).then_some(e)),
        None => Ok(None),
    }
}

fn all(ex: &mut Expander<'_>, values: &[String]) -> Result<Vec<String>, ShellError> {
    values.iter().map(|v| ex(v)).collect()
}

fn pairs(ex: &mut Expander<'_>, kvs: &[KeyValue]) -> Result<Vec<KeyValue>, ShellError> {
    kvs.iter().map(|kv| Ok(KeyValue { key: ex(&kv.key)?, value: ex(&kv.value)?, legacy: kv.legacy })).collect()
}

/// Expands path sources; heredoc sources are left alone (their bodies are
/// expanded, if at all, with the raw-quote lexer when the file is written).
fn sources(ex: &mut Expander<'_>, srcs: &[Source]) -> Result<Vec<Source>, ShellError> {
    srcs.iter()
        .map(|s| match s {
            Source::Path(p) => ex(p).map(Source::Path),
            other => Ok(other.clone()),
        })
        .collect()
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
        Ok(match self {
            Instruction::From(f) => Instruction::From(FromInstruction {
                base_name: ex(&f.base_name)?,
                platform: opt(ex, &f.platform)?,
                ..f.clone()
            }),
            Instruction::Run(run) => {
                let mut mounts = Vec::with_capacity(run.mounts.len());
                for m in &run.mounts {
                    let options = m
                        .options
                        .iter()
                        .map(|o| match (&o.value, o.key.as_str()) {
                            (Some(v), key) if key != "from" => {
                                Ok(MountOption { key: o.key.clone(), value: Some(ex(v)?) })
                            }
                            _ => Ok(o.clone()),
                        })
                        .collect::<Result<Vec<_>, ShellError>>()?;
                    mounts.push(build_mount(&m.raw, options, false).0);
                }
                Instruction::Run(RunInstruction { mounts, ..run.clone() })
            }
            Instruction::Env { pairs: p } => Instruction::Env { pairs: pairs(ex, p)? },
            Instruction::Label { pairs: p } => Instruction::Label { pairs: pairs(ex, p)? },
            Instruction::Copy(c) => Instruction::Copy(CopyInstruction {
                sources: sources(ex, &c.sources)?,
                dest: ex(&c.dest)?,
                chown: opt(ex, &c.chown)?,
                chmod: opt(ex, &c.chmod)?,
                ..c.clone()
            }),
            Instruction::Add(a) => Instruction::Add(AddInstruction {
                sources: sources(ex, &a.sources)?,
                dest: ex(&a.dest)?,
                chown: opt(ex, &a.chown)?,
                chmod: opt(ex, &a.chmod)?,
                checksum: opt(ex, &a.checksum)?,
                ..a.clone()
            }),
            Instruction::Workdir { path } => Instruction::Workdir { path: ex(path)? },
            Instruction::User { user } => Instruction::User { user: ex(user)? },
            Instruction::StopSignal { signal } => Instruction::StopSignal { signal: ex(signal)? },
            Instruction::Expose { ports } => {
                let mut out = Vec::with_capacity(ports.len());
                for p in ports {
                    out.extend(ex(p)?.split_ascii_whitespace().map(str::to_string));
                }
                Instruction::Expose { ports: out }
            }
            Instruction::Volume { paths } => Instruction::Volume { paths: all(ex, paths)? },
            Instruction::Cmd { .. }
            | Instruction::Entrypoint { .. }
            | Instruction::Shell { .. }
            | Instruction::Arg { .. }
            | Instruction::Healthcheck(_)
            | Instruction::Onbuild { .. }
            | Instruction::Maintainer { .. } => self.clone(),
        })
    }

    /// Checks the values that can only be checked once expanded: `--chmod`,
    /// RUN mount options, EXPOSE ports, empty VOLUME paths. Meant for the
    /// result of [`Instruction::expand`]; on a raw instruction a `$` in such
    /// a value is reported as invalid.
    pub fn validate(&self) -> Result<(), InstructionError> {
        match self {
            Instruction::Run(run) => {
                for m in &run.mounts {
                    if let (_, Some(reason)) = build_mount(&m.raw, m.options.clone(), false) {
                        return Err(InstructionError::InvalidMount { spec: m.raw.clone(), reason });
                    }
                }
                Ok(())
            }
            Instruction::Copy(CopyInstruction { chmod: Some(mode), .. })
            | Instruction::Add(AddInstruction { chmod: Some(mode), .. }) => validate_chmod(mode),
            Instruction::Expose { ports } => ports.iter().try_for_each(|p| parse_port_spec(p).map(|_| ())),
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
