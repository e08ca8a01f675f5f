//! BuildKit's shell-word lexer (`frontend/dockerfile/shell/lex.go`): variable
//! expansion, quote removal and escapes. It never runs commands, globs or
//! does arithmetic.
//!
//! STUB: being written; the API below is fixed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use thiserror::Error;

/// Errors from expanding a word.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ShellError {
    #[error("{0}")]
    Other(String),
}

/// Looks up variables during expansion.
pub trait Env {
    /// The value of `name`, or None when it is unset. A variable set to the
    /// empty string returns `Some("")`.
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl Env for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Env for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// `K=V` strings, as in a process environment; the last entry for a name wins.
impl Env for [String] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter().rev().find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            (k == name).then_some(v)
        })
    }
}

/// The result of an expansion together with the variable names it referred to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    pub value: String,
    /// Names that were looked up and found set.
    pub matched: BTreeSet<String>,
    /// Names that were looked up and not set.
    pub unmatched: BTreeSet<String>,
}

/// The lexer. Options mirror BuildKit's `shell.Lex`.
#[derive(Debug, Clone)]
pub struct Lexer {
    pub escape: char,
    /// Keep quote characters in the output.
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Leave `$VAR` text as is when VAR is unset, instead of expanding to "".
    pub skip_unset_env: bool,
}

impl Lexer {
    pub fn new(escape: char) -> Self {
        Lexer { escape, raw_quotes: false, raw_escapes: false, skip_unset_env: false }
    }

    /// Expands one word into one string (`ProcessWord`): no word splitting.
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, ShellError> {
        self.process_word_with_matches(word, env).map(|e| e.value)
    }

    /// Like [`Lexer::process_word`], also reporting which names were used.
    pub fn process_word_with_matches(&self, word: &str, env: &dyn Env) -> Result<Expansion, ShellError> {
        let _ = env;
        Ok(Expansion { value: word.to_string(), ..Default::default() })
    }

    /// Expands and splits into words (`ProcessWords`).
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, ShellError> {
        let _ = env;
        Ok(word.split_whitespace().map(str::to_string).collect())
    }
}
