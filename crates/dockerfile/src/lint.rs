//! BuildKit's build checks (the linter behind `docker build --check`).
//!
//! Rules that only need the syntax tree run here over the [`Ast`]; rules that
//! need expansion (UndefinedVar, UndefinedArgInFrom, WorkdirRelativePath…)
//! are raised by the planner through [`Linter::report`], so every check sees
//! exactly what the build sees. The `# check=skip=…;error=true` directive and
//! the `BUILDKIT_DOCKERFILE_CHECK` build arg configure the rules.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::ast::Ast;

/// A build-check rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Rule {
    StageNameCasing,
    FromAsCasing,
    NoEmptyContinuation,
    ConsistentInstructionCasing,
    DuplicateStageName,
    ReservedStageName,
    JSONArgsRecommended,
    MaintainerDeprecated,
    UndefinedArgInFrom,
    WorkdirRelativePath,
    UndefinedVar,
    MultipleInstructionsDisallowed,
    LegacyKeyValueFormat,
    RedundantTargetPlatform,
    SecretsUsedInArgOrEnv,
    InvalidDefaultArgInFrom,
    FromPlatformFlagConstDisallowed,
    ExposeProtoCasing,
    ExposeInvalidFormat,
}

impl Rule {
    pub const ALL: [Rule; 19] = [
        Rule::StageNameCasing,
        Rule::FromAsCasing,
        Rule::NoEmptyContinuation,
        Rule::ConsistentInstructionCasing,
        Rule::DuplicateStageName,
        Rule::ReservedStageName,
        Rule::JSONArgsRecommended,
        Rule::MaintainerDeprecated,
        Rule::UndefinedArgInFrom,
        Rule::WorkdirRelativePath,
        Rule::UndefinedVar,
        Rule::MultipleInstructionsDisallowed,
        Rule::LegacyKeyValueFormat,
        Rule::RedundantTargetPlatform,
        Rule::SecretsUsedInArgOrEnv,
        Rule::InvalidDefaultArgInFrom,
        Rule::FromPlatformFlagConstDisallowed,
        Rule::ExposeProtoCasing,
        Rule::ExposeInvalidFormat,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rule::StageNameCasing => "StageNameCasing",
            Rule::FromAsCasing => "FromAsCasing",
            Rule::NoEmptyContinuation => "NoEmptyContinuation",
            Rule::ConsistentInstructionCasing => "ConsistentInstructionCasing",
            Rule::DuplicateStageName => "DuplicateStageName",
            Rule::ReservedStageName => "ReservedStageName",
            Rule::JSONArgsRecommended => "JSONArgsRecommended",
            Rule::MaintainerDeprecated => "MaintainerDeprecated",
            Rule::UndefinedArgInFrom => "UndefinedArgInFrom",
            Rule::WorkdirRelativePath => "WorkdirRelativePath",
            Rule::UndefinedVar => "UndefinedVar",
            Rule::MultipleInstructionsDisallowed => "MultipleInstructionsDisallowed",
            Rule::LegacyKeyValueFormat => "LegacyKeyValueFormat",
            Rule::RedundantTargetPlatform => "RedundantTargetPlatform",
            Rule::SecretsUsedInArgOrEnv => "SecretsUsedInArgOrEnv",
            Rule::InvalidDefaultArgInFrom => "InvalidDefaultArgInFrom",
            Rule::FromPlatformFlagConstDisallowed => "FromPlatformFlagConstDisallowed",
            Rule::ExposeProtoCasing => "ExposeProtoCasing",
            Rule::ExposeInvalidFormat => "ExposeInvalidFormat",
        }
    }

    /// One-line description, as in BuildKit's rule table.
    pub fn description(self) -> &'static str {
        match self {
            Rule::StageNameCasing => "Stage names should be lowercase",
            Rule::FromAsCasing => "The 'as' keyword should match the case of the 'from' keyword",
            Rule::NoEmptyContinuation => "Empty continuation lines will become errors in a future release",
            Rule::ConsistentInstructionCasing => {
                "All commands within the Dockerfile should use the same casing (either upper or lower)"
            }
            Rule::DuplicateStageName => "Stage names should be unique",
            Rule::ReservedStageName => "Reserved words should not be used as stage names",
            Rule::JSONArgsRecommended => {
                "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals"
            }
            Rule::MaintainerDeprecated => {
                "The MAINTAINER instruction is deprecated, use a label instead to define an image author"
            }
            Rule::UndefinedArgInFrom => "FROM command must use declared ARGs",
            Rule::WorkdirRelativePath => {
                "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes"
            }
            Rule::UndefinedVar => "Variables should be defined before their use",
            Rule::MultipleInstructionsDisallowed => {
                "Multiple instructions of the same type should not be used in the same stage"
            }
            Rule::LegacyKeyValueFormat => "Legacy key/value format with whitespace separator should not be used",
            Rule::RedundantTargetPlatform => {
                "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior"
            }
            Rule::SecretsUsedInArgOrEnv => "Sensitive data should not be used in the ARG or ENV commands",
            Rule::InvalidDefaultArgInFrom => {
                "Default value for global ARG results in an empty or invalid base image name"
            }
            Rule::FromPlatformFlagConstDisallowed => "FROM --platform flag should not use a constant value",
            Rule::ExposeProtoCasing => "Protocol in EXPOSE instruction should be lowercase",
            Rule::ExposeInvalidFormat => {
                "IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release"
            }
        }
    }

    /// The documentation page for the rule.
    pub fn url(self) -> String {
        let mut slug = String::new();
        for (i, c) in self.name().chars().enumerate() {
            let prev_lower = i > 0 && self.name().as_bytes()[i - 1].is_ascii_lowercase();
            if c.is_ascii_uppercase() && prev_lower {
                slug.push('-');
            }
            slug.push(c.to_ascii_lowercase());
        }
        // BuildKit spells these two slugs by hand.
        let slug = match self {
            Rule::JSONArgsRecommended => "json-args-recommended".to_string(),
            _ => slug,
        };
        format!("https://docs.docker.com/go/dockerfile/rule/{slug}/")
    }

    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name().eq_ignore_ascii_case(name))
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub rule: Rule,
    pub message: String,
    /// 1-based lines of the instruction the finding is about.
    pub line: usize,
    pub end_line: usize,
}

/// How checks are configured: `# check=skip=A,B;error=true`, or the
/// `BUILDKIT_DOCKERFILE_CHECK` build arg (which takes precedence).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConfig {
    pub skip_all: bool,
    pub skip: BTreeSet<Rule>,
    /// Treat findings as errors (the build fails).
    pub error: bool,
    /// Names in `skip=` that are not rules (reported to the user, not fatal).
    pub unknown: Vec<String>,
}

impl CheckConfig {
    /// Parses `skip=A,B;error=true`. Unknown keys and unparsable booleans are errors.
    pub fn parse(value: &str) -> Result<CheckConfig, String> {
        let mut config = CheckConfig::default();
        for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, val) = part.split_once('=').ok_or_else(|| {
                format!("invalid check option {part:?}: expected key=value (skip=Rule,... or error=true|false)")
            })?;
            match key.trim().to_ascii_lowercase().as_str() {
                "skip" => {
                    for name in val.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                        if name.eq_ignore_ascii_case("all") {
                            config.skip_all = true;
                        } else if let Some(rule) = Rule::from_name(name) {
                            config.skip.insert(rule);
                        } else {
                            config.unknown.push(name.to_string());
                        }
                    }
                }
                "error" => {
                    config.error = match val.trim().to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        other => return Err(format!("invalid check error value {other:?}: expected true or false")),
                    }
                }
                // BuildKit accepts experimental=; we have no experimental rules, so it selects nothing.
                "experimental" => {}
                other => return Err(format!("invalid check option {other:?}: the options are skip and error")),
            }
        }
        Ok(config)
    }

    pub fn enabled(&self, rule: Rule) -> bool {
        !self.skip_all && !self.skip.contains(&rule)
    }
}

/// Collects findings, dropping skipped rules and duplicates.
#[derive(Debug, Default)]
pub struct Linter {
    config: CheckConfig,
    warnings: Vec<Warning>,
}

impl Linter {
    pub fn new(config: CheckConfig) -> Self {
        Linter { config, warnings: Vec::new() }
    }

    pub fn report(&mut self, rule: Rule, message: impl Into<String>, line: usize, end_line: usize) {
        if !self.config.enabled(rule) {
            return;
        }
        let warning = Warning { rule, message: message.into(), line, end_line };
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }

    pub fn config(&self) -> &CheckConfig {
        &self.config
    }

    /// The findings in source order.
    pub fn finish(mut self) -> Vec<Warning> {
        self.warnings.sort_by_key(|w| (w.line, w.rule));
        self.warnings
    }

    /// Rules that need only the syntax tree: instruction casing, MAINTAINER,
    /// empty continuation lines, legacy key/value forms, CMD/ENTRYPOINT form.
    pub fn check_syntax(&mut self, ast: &Ast) {
        for warning in &ast.warnings {
            if warning.rule == "NoEmptyContinuation" {
                self.report(Rule::NoEmptyContinuation, "Empty continuation line", warning.line, warning.line);
            }
        }
        let (mut upper, mut lower) = (0usize, 0usize);
        for node in &ast.children {
            let kw = &node.keyword_original;
            if kw.chars().any(|c| c.is_ascii_lowercase()) {
                lower += 1;
            } else {
                upper += 1;
            }
        }
        let majority_lower = lower > upper;
        for node in &ast.children {
            let kw = &node.keyword_original;
            let (line, end) = (node.start_line, node.end_line);
            let is_upper = !kw.chars().any(|c| c.is_ascii_lowercase());
            let is_lower = !kw.chars().any(|c| c.is_ascii_uppercase());
            if majority_lower && !is_lower {
                self.report(
                    Rule::ConsistentInstructionCasing,
                    format!("Command '{kw}' should match the case of the command majority (lowercase)"),
                    line,
                    end,
                );
            } else if !majority_lower && !is_upper {
                self.report(
                    Rule::ConsistentInstructionCasing,
                    format!("Command '{kw}' should match the case of the command majority (uppercase)"),
                    line,
                    end,
                );
            }
            let instruction = node.child.as_deref().unwrap_or(node);
            match instruction.keyword.as_ref() {
                "maintainer" => self.report(
                    Rule::MaintainerDeprecated,
                    "Maintainer instruction is deprecated in favor of using label",
                    line,
                    end,
                ),
                "env" | "label" if instruction.args.len() == 3 && instruction.args[2].is_empty() => {
                    let k = instruction.keyword.to_ascii_uppercase();
                    self.report(
                        Rule::LegacyKeyValueFormat,
                        format!("\"{k} key=value\" should be used instead of legacy \"{k} key value\" format"),
                        line,
                        end,
                    );
                }
                "cmd" | "entrypoint" if !instruction.json && !instruction.args.is_empty() => {
                    let k = instruction.keyword.to_ascii_uppercase();
                    self.report(
                        Rule::JSONArgsRecommended,
                        format!(
                            "JSON arguments recommended for {k} to prevent unintended behavior related to OS signals"
                        ),
                        line,
                        end,
                    );
                }
                _ => {}
            }
        }
    }
}

/// BuildKit's secret-name heuristic: a name part (split on `_`, `-`, `.`)
/// that is a secret word, unless a part says the value is public.
pub fn looks_like_secret(name: &str) -> bool {
    const SECRET: [&str; 11] = [
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pass",
        "pword",
        "passwd",
        "secret",
        "token",
    ];
    let parts = || name.split(['_', '-', '.']);
    if parts().any(|p| p.eq_ignore_ascii_case("public")) {
        return false;
    }
    parts().any(|p| SECRET.iter().any(|s| p.eq_ignore_ascii_case(s)))
}

/// Edit distance, for "did you mean" suggestions.
pub(crate) fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest candidate within a small edit distance.
pub(crate) fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (levenshtein(&name.to_ascii_lowercase(), &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_directive() {
        let c = CheckConfig::parse("skip=JSONArgsRecommended,StageNameCasing;error=true").unwrap();
        assert!(c.error);
        assert!(!c.enabled(Rule::JSONArgsRecommended));
        assert!(c.enabled(Rule::UndefinedVar));
        let c = CheckConfig::parse("skip=all").unwrap();
        assert!(!c.enabled(Rule::UndefinedVar));
        assert!(CheckConfig::parse("error=maybe").is_err());
        assert!(CheckConfig::parse("bogus=1").is_err());
        assert_eq!(CheckConfig::parse("skip=NoSuchRule").unwrap().unknown, vec!["NoSuchRule"]);
    }

    #[test]
    fn secrets() {
        for yes in ["API_TOKEN", "password", "AWS_SECRET_ACCESS_KEY", "github-auth", "db.pass"] {
            assert!(looks_like_secret(yes), "{yes}");
        }
        for no in ["TOKENIZER", "PUBLIC_KEY", "keyboard", "PATH", "VERSION"] {
            assert!(!looks_like_secret(no), "{no}");
        }
    }

    #[test]
    fn urls() {
        assert_eq!(Rule::FromAsCasing.url(), "https://docs.docker.com/go/dockerfile/rule/from-as-casing/");
        assert_eq!(
            Rule::JSONArgsRecommended.url(),
            "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/"
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("VERSON", ["VERSION", "PATH"]), Some("VERSION"));
        assert_eq!(suggest("X", ["VERSION"]), None);
    }
}
