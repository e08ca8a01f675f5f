//! Instruction flags, as BuildKit's `BFlags` parses them.
//!
//! A flag is `--name=value`. A boolean flag also accepts a bare `--name`
//! (true) and `=true`/`=false` in any case. An unknown flag is an error, and
//! so is a repeated one unless it is repeatable (`--mount`, `--exclude`,
//! `--device`). A string flag needs `=value` (which may be empty). A bare `--`
//! ends the flags.

use super::error::InstructionError;
use super::values::suggest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagKind {
    Bool,
    String,
    /// Repeatable string.
    Strings,
}

/// The flags one instruction accepts: `names[i]` has kind `kinds[i]`.
pub(crate) struct FlagTable {
    pub instruction: &'static str,
    pub names: &'static [&'static str],
    pub kinds: &'static [FlagKind],
}

use FlagKind::{Bool, String as Str, Strings};

pub(crate) const FROM: FlagTable = FlagTable { instruction: "FROM", names: &["platform"], kinds: &[Str] };
pub(crate) const RUN: FlagTable = FlagTable {
    instruction: "RUN",
    names: &["mount", "network", "security", "device"],
    kinds: &[Strings, Str, Str, Strings],
};
pub(crate) const COPY: FlagTable = FlagTable {
    instruction: "COPY",
    names: &["from", "chown", "chmod", "link", "parents", "exclude"],
    kinds: &[Str, Str, Str, Bool, Bool, Strings],
};
pub(crate) const ADD: FlagTable = FlagTable {
    instruction: "ADD",
    names: &["chown", "chmod", "link", "keep-git-dir", "checksum", "unpack", "exclude"],
    kinds: &[Str, Str, Bool, Bool, Str, Bool, Strings],
};
pub(crate) const HEALTHCHECK: FlagTable = FlagTable {
    instruction: "HEALTHCHECK",
    names: &["interval", "timeout", "start-period", "start-interval", "retries"],
    kinds: &[Str, Str, Str, Str, Str],
};

/// The table of an instruction that takes no flags.
pub(crate) const fn none(instruction: &'static str) -> FlagTable {
    FlagTable { instruction, names: &[], kinds: &[] }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Bool(bool),
    Str(String),
    Strs(Vec<String>),
}

/// The flags given, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    given: Vec<(&'static str, Value)>,
}

impl Flags {
    fn get(&self, name: &str) -> Option<&Value> {
        self.given.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// A boolean flag's value, None when the flag was not given.
    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.get(name) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// A string flag's value, None when it was not given or given empty
    /// (BuildKit treats `--from=` like no `--from`).
    pub fn string(&self, name: &str) -> Option<String> {
        match self.get(name) {
            Some(Value::Str(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        }
    }

    /// A string flag's value as given, empty included.
    pub fn raw_string(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// All values of a repeatable flag, in order.
    pub fn strings(&self, name: &str) -> Vec<String> {
        match self.get(name) {
            Some(Value::Strs(v)) => v.clone(),
            _ => Vec::new(),
        }
    }

    /// Names of the flags given, in order of first use.
    pub fn used(&self) -> Vec<&'static str> {
        self.given.iter().map(|(n, _)| *n).collect()
    }
}

/// Parses `flags` (as the parser keeps them: `--name=value`, quotes removed)
/// against `table`.
pub(crate) fn parse_flags(table: &FlagTable, flags: &[String]) -> Result<Flags, InstructionError> {
    let instruction = table.instruction;
    let mut out = Flags::default();
    for arg in flags {
        let Some(body) = arg.strip_prefix("--") else {
            return Err(InstructionError::MalformedFlag { instruction, arg: arg.clone() });
        };
        if body.is_empty() {
            break;
        }
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(index) = table.names.iter().position(|n| *n == name) else {
            return Err(InstructionError::UnknownFlag {
                instruction,
                flag: name.to_string(),
                allowed: table.names,
                suggestion: suggest(name, table.names, true),
            });
        };
        let static_name = table.names[index];
        let kind = table.kinds.get(index).copied().unwrap_or(Str);
        let slot = out.given.iter().position(|(n, _)| *n == static_name);
        if slot.is_some() && kind != Strings {
            return Err(InstructionError::DuplicateFlag { instruction, flag: name.to_string() });
        }
        let value = match (kind, value) {
            (Bool, None) => Value::Bool(true),
            (Bool, Some("")) => {
                return Err(InstructionError::MissingBoolFlagValue { instruction, flag: name.to_string() });
            }
            (Bool, Some(v)) => match v.to_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => {
                    return Err(InstructionError::InvalidBoolFlag {
                        instruction,
                        flag: name.to_string(),
                        value: v.to_string(),
                    });
                }
            },
            (Str | Strings, None) => {
                return Err(InstructionError::MissingFlagValue { instruction, flag: name.to_string() });
            }
            (Str, Some(v)) => Value::Str(v.to_string()),
            (Strings, Some(v)) => Value::Strs(vec![v.to_string()]),
        };
        match (slot, value) {
            (Some(i), Value::Strs(mut more)) => {
                if let Some((_, Value::Strs(existing))) = out.given.get_mut(i) {
                    existing.append(&mut more);
                }
            }
            (_, value) => out.given.push((static_name, value)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn values() {
        let f =
            parse_flags(&COPY, &flags(&["--from=build", "--link", "--parents=FALSE", "--exclude=a", "--exclude=b"]))
                .unwrap();
        assert_eq!(f.string("from").as_deref(), Some("build"));
        assert_eq!(f.bool("link"), Some(true));
        assert_eq!(f.bool("parents"), Some(false));
        assert_eq!(f.bool("chown"), None);
        assert_eq!(f.string("chown"), None);
        assert_eq!(f.strings("exclude"), vec!["a", "b"]);
        assert_eq!(f.used(), vec!["from", "link", "parents", "exclude"]);
    }

    #[test]
    fn empty_string_value_is_unset() {
        let f = parse_flags(&COPY, &flags(&["--from="])).unwrap();
        assert_eq!(f.string("from"), None);
        assert_eq!(f.raw_string("from"), Some(""));
    }

    #[test]
    fn value_may_contain_equals() {
        let f = parse_flags(&RUN, &flags(&["--mount=type=cache,target=/x", "--mount=type=tmpfs,target=/t"])).unwrap();
        assert_eq!(f.strings("mount"), vec!["type=cache,target=/x", "type=tmpfs,target=/t"]);
    }

    #[test]
    fn double_dash_ends_flags() {
        let f = parse_flags(&COPY, &flags(&["--link", "--", "--bogus"])).unwrap();
        assert_eq!(f.bool("link"), Some(true));
    }

    #[test]
    fn errors() {
        let e = parse_flags(&COPY, &flags(&["--bogus"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown flag: --bogus for COPY (allowed: --from, --chown, --chmod, --link, --parents, --exclude)"
        );
        let e = parse_flags(&COPY, &flags(&["--form=x"])).unwrap_err();
        assert!(e.to_string().contains("did you mean --from?"), "{e}");
        let e = parse_flags(&none("ENV"), &flags(&["--x=1"])).unwrap_err();
        assert_eq!(e.to_string(), "unknown flag: --x for ENV (ENV takes no flags)");
        assert!(matches!(
            parse_flags(&COPY, &flags(&["--from=a", "--from=b"])),
            Err(InstructionError::DuplicateFlag { .. })
        ));
        assert!(matches!(
            parse_flags(&COPY, &flags(&["--link", "--link"])),
            Err(InstructionError::DuplicateFlag { .. })
        ));
        assert!(matches!(parse_flags(&COPY, &flags(&["--from"])), Err(InstructionError::MissingFlagValue { .. })));
        assert!(matches!(parse_flags(&RUN, &flags(&["--mount"])), Err(InstructionError::MissingFlagValue { .. })));
        assert!(matches!(parse_flags(&COPY, &flags(&["--link="])), Err(InstructionError::MissingBoolFlagValue { .. })));
        assert!(matches!(parse_flags(&COPY, &flags(&["--link=yes"])), Err(InstructionError::InvalidBoolFlag { .. })));
        assert!(matches!(parse_flags(&COPY, &flags(&["-x"])), Err(InstructionError::MalformedFlag { .. })));
        assert!(matches!(parse_flags(&COPY, &flags(&["--FROM=x"])), Err(InstructionError::UnknownFlag { .. })));
    }
}
