//! BuildKit's shell-word lexer (`frontend/dockerfile/shell/lex.go`): variable
//! expansion, quote removal and escapes. It never runs commands, globs or
//! does arithmetic.
//!
//! The semantics follow BuildKit exactly, quirks included:
//!
//! - Unquoted text: the escape character (`\` or `` ` ``) makes the next
//!   character literal; an escape at the very end of the input is dropped.
//! - `'...'` is literal. In `"..."` the escape character only escapes `"`,
//!   `$` and itself; before anything else it is kept.
//! - `$name` / `${name}`: a name is a letter or `_` followed by letters,
//!   digits and `_` (Unicode letters and decimal digits, as Go's
//!   `unicode.IsLetter`/`IsDigit`), or all of a run of digits (a positional
//!   parameter), or one of `@ * # ? - $ ! 0`. `$` followed by anything else
//!   is a literal `$`.
//! - `${N-w}` `${N:-w}` `${N+w}` `${N:+w}` `${N?w}` `${N:?w}`, the pattern
//!   trims `${N#p}` `${N##p}` `${N%p}` `${N%%p}` and the replacements
//!   `${N/p/r}` `${N//p/r}`. Patterns are globs where `*` and `?` match
//!   anything but a newline (they are Go regular expressions upstream), and
//!   `\*`, `\?`, `\\` are literal.
//! - The word of `${N<op>word}` is always expanded, even when it is not
//!   used, so its variables are reported as matched or unmatched.
//! - Word splitting ([`Lexer::process_words`]) splits on whitespace that
//!   comes from unquoted text or unquoted expansions; empty words are dropped.
//!
//! Expansion is linear in the input apart from the glob operators, whose
//! matcher is a Pike VM (no backtracking blow-up). `${...}` nesting deeper
//! than [`MAX_NESTING`] is refused with [`ShellError::TooDeep`].

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use thiserror::Error;

/// The deepest `${...}` nesting accepted, e.g. `${a:-${b:-...}}`.
pub const MAX_NESTING: usize = 64;

/// Errors from expanding a word. Each carries the whole input `word`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ShellError {
    /// A `'` without its closing `'`.
    #[error(
        "failed to process `{word}`: unterminated single quote: a `'` string must be closed by another `'` (nothing can be escaped inside it)"
    )]
    UnterminatedSingleQuote { word: String },
    /// A `"` without its closing `"`.
    #[error("failed to process `{word}`: unterminated double quote: a `\"` string must be closed by an unescaped `\"`")]
    UnterminatedDoubleQuote { word: String },
    /// A `${` without its closing `}`.
    #[error("failed to process `{word}`: missing `}}`: every `${{` must be closed by a `}}`")]
    MissingBrace { word: String },
    /// `${name/pattern` with no `/` after the pattern.
    #[error(
        "failed to process `{word}`: missing `/` in `${{name/pattern/replacement}}`: the pattern must be followed by `/` (write `\\/` for a literal slash)"
    )]
    MissingSlash { word: String },
    /// `${` followed by `{`, `}` or `:`.
    #[error(
        "failed to process `{word}`: bad substitution: `{expr}`: a name must follow `${{` (letters, digits and `_`, or one of `@ * # ? - $ ! 0`)"
    )]
    BadSubstitution { word: String, expr: String },
    /// `${name<modifier>...}` with a modifier BuildKit does not support.
    #[error(
        "failed to process `{word}`: unsupported modifier `{modifier}` in `{expr}`: allowed are `}}` `-` `:-` `+` `:+` `?` `:?` `#` `##` `%` `%%` `/` `//`"
    )]
    UnsupportedModifier { word: String, expr: String, modifier: String },
    /// `${name?message}` with `name` unset, or `${name:?message}` with `name`
    /// unset or empty. `message` is the user's text or BuildKit's default.
    #[error("failed to process `{word}`: {name}: {message}")]
    Required { word: String, name: String, message: String },
    /// A glob pattern with a bad escape.
    #[error("failed to process `{word}`: invalid pattern `{pattern}` in substitution: {reason}")]
    InvalidPattern { word: String, pattern: String, reason: String },
    /// `${...}` nested deeper than [`MAX_NESTING`].
    #[error(
        "failed to process `{word}`: `${{...}}` nested more than {limit} levels deep: at most {limit} levels are allowed"
    )]
    TooDeep { word: String, limit: usize },
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

/// Same as for `[String]`.
impl Env for Vec<String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

impl<T: Env + ?Sized> Env for &T {
    fn lookup(&self, name: &str) -> Option<&str> {
        (**self).lookup(name)
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

/// The result of [`Lexer::process_words_with_matches`]: the split words and
/// the variable names they referred to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WordsExpansion {
    pub words: Vec<String>,
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
        if self.is_plain(word) {
            return Ok(word.to_owned());
        }
        let mut out = String::with_capacity(word.len());
        self.run(word, env, false, &mut out)?;
        Ok(out)
    }

    /// Like [`Lexer::process_word`], also reporting which names were used
    /// (`ProcessWordWithMatches`).
    pub fn process_word_with_matches(&self, word: &str, env: &dyn Env) -> Result<Expansion, ShellError> {
        if self.is_plain(word) {
            return Ok(Expansion { value: word.to_owned(), ..Default::default() });
        }
        let mut value = String::with_capacity(word.len());
        let lookups = self.run(word, env, true, &mut value)?;
        let (matched, unmatched) = into_sets(lookups);
        Ok(Expansion { value, matched, unmatched })
    }

    /// [`Lexer::process_word_with_matches`] without building sets: borrows
    /// `word` when there is nothing to expand, and passes each name looked up
    /// (a slice of `word`, repeated when looked up again) to `on_lookup`,
    /// with whether it was set.
    pub fn process_word_with_lookups<'w>(
        &self,
        word: &'w str,
        env: &dyn Env,
        on_lookup: &mut dyn FnMut(&'w str, bool),
    ) -> Result<Cow<'w, str>, ShellError> {
        if self.is_plain(word) {
            return Ok(Cow::Borrowed(word));
        }
        let mut value = String::with_capacity(word.len());
        for (name, found) in self.run(word, env, true, &mut value)? {
            on_lookup(name, found);
        }
        Ok(Cow::Owned(value))
    }

    /// Expands and splits into words (`ProcessWords`).
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, ShellError> {
        self.words(word, env, false).map(|e| e.words)
    }

    /// Like [`Lexer::process_words`], also reporting which names were used.
    pub fn process_words_with_matches(&self, word: &str, env: &dyn Env) -> Result<WordsExpansion, ShellError> {
        self.words(word, env, true)
    }

    fn words(&self, word: &str, env: &dyn Env, capture: bool) -> Result<WordsExpansion, ShellError> {
        if self.is_plain(word) {
            let words = word.split_whitespace().map(str::to_owned).collect();
            return Ok(WordsExpansion { words, ..Default::default() });
        }
        let mut sink = WordSink { words: Vec::new(), cur: String::with_capacity(word.len()) };
        let (matched, unmatched) = into_sets(self.run(word, env, capture, &mut sink)?);
        Ok(WordsExpansion { words: sink.finish(), matched, unmatched })
    }

    /// True when `word` has nothing to expand: no `$`, no quote, no escape
    /// character and no leading byte order mark.
    fn is_plain(&self, word: &str) -> bool {
        if word.starts_with('\u{FEFF}') {
            return false;
        }
        if self.escape.is_ascii() {
            let esc = self.escape as u8;
            !word.bytes().any(|b| b == b'$' || b == b'\'' || b == b'"' || b == esc)
        } else {
            !word.chars().any(|c| c == '$' || c == '\'' || c == '"' || c == self.escape)
        }
    }

    /// Expands `word` into `out`. With `capture`, returns every name looked
    /// up (slices of `word`) and whether it was set, in lookup order.
    fn run<'w, S: Sink>(
        &self,
        word: &'w str,
        env: &dyn Env,
        capture: bool,
        out: &mut S,
    ) -> Result<Vec<(&'w str, bool)>, ShellError> {
        // Go's text/scanner drops a byte order mark at the very start.
        let src = word.strip_prefix('\u{FEFF}').unwrap_or(word);
        let mut p = Processor { lex: self, word, src, pos: 0, env, capture, lookups: Vec::new(), depth: 0 };
        p.process_stop_on(None, self.raw_escapes, out)?;
        Ok(p.lookups)
    }
}

/// Splits recorded lookups into the (matched, unmatched) name sets.
fn into_sets(lookups: Vec<(&str, bool)>) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut matched, mut unmatched) = (BTreeSet::new(), BTreeSet::new());
    for (name, found) in lookups {
        let set = if found { &mut matched } else { &mut unmatched };
        if !set.contains(name) {
            set.insert(name.to_owned());
        }
    }
    (matched, unmatched)
}

/// Where processed text goes: one string, or words split on whitespace.
/// `split_*` is text that may split (unquoted text and expansions); `raw_*`
/// never splits (quoted text and escaped characters).
trait Sink {
    fn raw_char(&mut self, c: char);
    fn raw_str(&mut self, s: &str);
    fn split_char(&mut self, c: char);
    fn split_str(&mut self, s: &str);
}

impl Sink for String {
    fn raw_char(&mut self, c: char) {
        self.push(c);
    }
    fn raw_str(&mut self, s: &str) {
        self.push_str(s);
    }
    fn split_char(&mut self, c: char) {
        self.push(c);
    }
    fn split_str(&mut self, s: &str) {
        self.push_str(s);
    }
}

#[derive(Default)]
struct WordSink {
    words: Vec<String>,
    cur: String,
}

impl WordSink {
    fn flush(&mut self) {
        if !self.cur.is_empty() {
            // An exact-size copy; `cur` keeps its buffer for the next word.
            self.words.push(self.cur.as_str().to_owned());
            self.cur.clear();
        }
    }

    fn finish(mut self) -> Vec<String> {
        self.flush();
        self.words
    }
}

impl Sink for WordSink {
    fn raw_char(&mut self, c: char) {
        self.cur.push(c);
    }
    fn raw_str(&mut self, s: &str) {
        self.cur.push_str(s);
    }
    fn split_char(&mut self, c: char) {
        if c.is_whitespace() {
            self.flush();
        } else {
            self.cur.push(c);
        }
    }
    fn split_str(&mut self, s: &str) {
        // `char::is_whitespace` is Unicode White_Space, as Go's unicode.IsSpace.
        if s.is_ascii() {
            let mut start = 0;
            for (i, b) in s.bytes().enumerate() {
                if matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
                    self.cur.push_str(&s[start..i]);
                    self.flush();
                    start = i + 1;
                }
            }
            self.cur.push_str(&s[start..]);
        } else {
            for (i, piece) in s.split(char::is_whitespace).enumerate() {
                if i > 0 {
                    self.flush();
                }
                self.cur.push_str(piece);
            }
        }
    }
}

/// One expansion in progress (BuildKit's `shellWord`).
struct Processor<'l, 'a, 'e> {
    lex: &'l Lexer,
    /// The input as given, for error messages.
    word: &'a str,
    /// The input being scanned (without a leading byte order mark).
    src: &'a str,
    pos: usize,
    env: &'e dyn Env,
    /// Record looked-up names in `lookups`.
    capture: bool,
    /// Names looked up (slices of the input), and whether each was set.
    lookups: Vec<(&'a str, bool)>,
    depth: usize,
}

impl<'a, 'e> Processor<'_, 'a, 'e> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Length of the run of ordinary characters at the current position:
    /// up to the first `$`, quote, escape character or `stop`.
    fn plain_run(&self, stop: Option<u8>, quotes: bool) -> usize {
        let rest = &self.src[self.pos..];
        let esc = self.lex.escape;
        if esc.is_ascii() {
            let esc = esc as u8;
            let stop = stop.unwrap_or(b'$');
            rest.bytes()
                .position(|b| b == b'$' || b == b'"' || (quotes && b == b'\'') || b == esc || b == stop)
                .unwrap_or(rest.len())
        } else {
            let stop = stop.map_or('$', char::from);
            rest.char_indices()
                .find(|&(_, c)| c == '$' || c == '"' || (quotes && c == '\'') || c == esc || c == stop)
                .map_or(rest.len(), |(i, _)| i)
        }
    }

    fn err_word(&self) -> String {
        self.word.to_owned()
    }

    /// The text of the `${...}` starting at byte `start`, for messages: up to
    /// and including the next `}`, shortened when long.
    fn expr_at(&self, start: usize) -> String {
        let rest = &self.src[start..];
        let end = rest.find('}').map_or(rest.len(), |i| i + 1);
        let text = &rest[..end];
        const MAX: usize = 60;
        match text.char_indices().nth(MAX) {
            Some((i, _)) => format!("{}…", &text[..i]),
            None => text.to_owned(),
        }
    }

    fn get_env(&mut self, name: &'a str) -> Option<&'e str> {
        let value = self.env.lookup(name);
        if self.capture {
            self.lookups.push((name, value.is_some()));
        }
        value
    }

    /// `processStopOn`: processes up to `stop` (consumed) or the end of the
    /// input. Returns false when `stop` was given but not found.
    fn process_stop_on<S: Sink>(
        &mut self,
        stop: Option<u8>,
        raw_escapes: bool,
        out: &mut S,
    ) -> Result<bool, ShellError> {
        let esc = self.lex.escape;
        loop {
            let run = self.plain_run(stop, true);
            if run > 0 {
                out.split_str(&self.src[self.pos..self.pos + run]);
                self.pos += run;
            }
            let Some(c) = self.peek() else { break };
            if stop.is_some_and(|s| c == char::from(s)) {
                self.pos += 1;
                return Ok(true);
            }
            match c {
                '$' => {
                    let value = self.process_dollar()?;
                    out.split_str(&value);
                }
                '\'' => self.process_single_quote(out)?,
                '"' => self.process_double_quote(raw_escapes, out)?,
                _ if c == esc => {
                    self.pos += c.len_utf8();
                    if raw_escapes {
                        out.raw_char(c);
                    }
                    match self.bump() {
                        Some(next) => out.raw_char(next),
                        // An escape at the end of the input is dropped.
                        None => break,
                    }
                }
                // Unreachable: plain_run stops only at the characters above.
                _ => {
                    self.pos += c.len_utf8();
                    out.split_char(c);
                }
            }
        }
        Ok(stop.is_none())
    }

    fn process_single_quote<S: Sink>(&mut self, out: &mut S) -> Result<(), ShellError> {
        self.pos += 1;
        let raw_quotes = self.lex.raw_quotes;
        if raw_quotes {
            out.raw_char('\'');
        }
        let rest = &self.src[self.pos..];
        let Some(end) = rest.find('\'') else {
            return Err(ShellError::UnterminatedSingleQuote { word: self.err_word() });
        };
        out.raw_str(&rest[..end]);
        if raw_quotes {
            out.raw_char('\'');
        }
        self.pos += end + 1;
        Ok(())
    }

    fn process_double_quote<S: Sink>(&mut self, raw_escapes: bool, out: &mut S) -> Result<(), ShellError> {
        self.pos += 1;
        let raw_quotes = self.lex.raw_quotes;
        if raw_quotes {
            out.raw_char('"');
        }
        let esc = self.lex.escape;
        loop {
            let run = self.plain_run(None, false);
            if run > 0 {
                out.raw_str(&self.src[self.pos..self.pos + run]);
                self.pos += run;
            }
            match self.peek() {
                None => {
                    return Err(ShellError::UnterminatedDoubleQuote { word: self.err_word() });
                }
                Some('"') => {
                    self.pos += 1;
                    if raw_quotes {
                        out.raw_char('"');
                    }
                    return Ok(());
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    out.raw_str(&value);
                }
                Some(c) => {
                    self.pos += c.len_utf8();
                    if c == esc {
                        if raw_escapes {
                            out.raw_char(c);
                        }
                        match self.peek() {
                            // Ends up as an unterminated quote.
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == esc => {
                                self.pos += n.len_utf8();
                                out.raw_char(n);
                                continue;
                            }
                            Some(_) => {}
                        }
                    }
                    out.raw_char(c);
                }
            }
        }
    }

    /// `processName`: a run of digits, one special parameter character, or a
    /// letter/`_` followed by letters, digits and `_`. Empty when none.
    fn process_name(&mut self) -> &'a str {
        let start = self.pos;
        let src = self.src;
        let bytes = src.as_bytes();
        match self.peek() {
            None => {}
            Some(c) if is_special_param(c) && c != '0' => self.pos += 1,
            Some(c) => {
                // Digits first: a run of digits only; otherwise a name.
                let digits = is_go_digit(c);
                let accept = |c: char| {
                    if digits { is_go_digit(c) } else { is_name_char(c) }
                };
                loop {
                    // ASCII fast path.
                    while let Some(&b) = bytes.get(self.pos) {
                        let ok = if digits { b.is_ascii_digit() } else { b.is_ascii_alphanumeric() || b == b'_' };
                        if !ok {
                            break;
                        }
                        self.pos += 1;
                    }
                    match self.peek() {
                        Some(c) if !c.is_ascii() && accept(c) => self.pos += c.len_utf8(),
                        _ => break,
                    }
                }
            }
        }
        &src[start..self.pos]
    }

    /// `processDollar`, at a `$`.
    fn process_dollar(&mut self) -> Result<Cow<'e, str>, ShellError> {
        let start = self.pos;
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok(Cow::Borrowed("$"));
            }
            return Ok(match self.get_env(name) {
                Some(v) => Cow::Borrowed(v),
                None if self.lex.skip_unset_env => Cow::Owned(format!("${name}")),
                None => Cow::Borrowed(""),
            });
        }
        self.pos += 1;
        match self.peek() {
            None => {
                return Err(ShellError::MissingBrace { word: self.err_word() });
            }
            Some('{' | '}' | ':') => {
                return Err(ShellError::BadSubstitution { word: self.err_word(), expr: self.expr_at(start) });
            }
            Some(_) => {}
        }
        let name = self.process_name();
        let Some(ch) = self.bump() else {
            return Err(ShellError::MissingBrace { word: self.err_word() });
        };
        match ch {
            '}' => Ok(match self.get_env(name) {
                Some(v) => Cow::Borrowed(v),
                None if self.lex.skip_unset_env => Cow::Owned(format!("${{{name}}}")),
                None => Cow::Borrowed(""),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let null_is_unset = ch == ':';
                let op = if null_is_unset {
                    match self.bump() {
                        Some(op) => op,
                        None => {
                            return Err(ShellError::MissingBrace { word: self.err_word() });
                        }
                    }
                } else {
                    ch
                };
                let modifier = if null_is_unset { format!(":{op}") } else { op.to_string() };
                let trim = op == '#' || op == '%';
                if null_is_unset && trim {
                    return Err(self.unsupported(start, modifier));
                }
                let mut word = String::new();
                if !self.nested(b'}', trim, &mut word)? {
                    return Err(ShellError::MissingBrace { word: self.err_word() });
                }
                let value = self.get_env(name);
                if self.lex.skip_unset_env && value.is_none() {
                    return Ok(Cow::Owned(format!("${{{name}{modifier}{word}}}")));
                }
                // With `:`, an empty value counts as unset.
                let unset = match value {
                    None => true,
                    Some(v) => null_is_unset && v.is_empty(),
                };
                match op {
                    '-' => Ok(match value {
                        Some(v) if !unset => Cow::Borrowed(v),
                        _ => Cow::Owned(word),
                    }),
                    '+' => Ok(if unset { Cow::Borrowed("") } else { Cow::Owned(word) }),
                    '?' => match value {
                        None => Err(self.required(name, word, "is not allowed to be unset")),
                        Some("") if null_is_unset => Err(self.required(name, word, "is not allowed to be empty")),
                        Some(v) => Ok(Cow::Borrowed(v)),
                    },
                    '#' | '%' => {
                        let (greedy, pattern) = match word.strip_prefix(op) {
                            Some(p) => (true, p),
                            None => (false, word.as_str()),
                        };
                        let value = value.unwrap_or("");
                        let trimmed = if op == '%' {
                            trim_suffix(pattern, value, greedy)
                        } else {
                            trim_prefix(pattern, value, greedy)
                        };
                        trimmed.map(Cow::Owned).map_err(|reason| self.invalid_pattern(pattern, reason))
                    }
                    _ => Err(self.unsupported(start, modifier)),
                }
            }
            '/' => {
                let replace_all = self.peek() == Some('/');
                if replace_all {
                    self.pos += 1;
                }
                let mut pattern = String::new();
                if !self.nested(b'/', true, &mut pattern)? {
                    return Err(ShellError::MissingSlash { word: self.err_word() });
                }
                let mut replacement = String::new();
                if !self.nested(b'}', true, &mut replacement)? {
                    return Err(ShellError::MissingBrace { word: self.err_word() });
                }
                let value = self.get_env(name);
                if self.lex.skip_unset_env && value.is_none() {
                    // Upstream prints one `/` even for `//`.
                    return Ok(Cow::Owned(format!("${{{name}/{pattern}/{replacement}}}")));
                }
                let value = value.unwrap_or("");
                let glob = Glob::compile(&pattern, true).map_err(|reason| self.invalid_pattern(&pattern, reason))?;
                let mut matcher = Matcher::new(&glob);
                if replace_all {
                    Ok(Cow::Owned(matcher.replace_all(value, &replacement)))
                } else {
                    Ok(match matcher.find_at(value, 0, false) {
                        Some((s, e)) => Cow::Owned(format!("{}{}{}", &value[..s], replacement, &value[e..])),
                        None => Cow::Borrowed(value),
                    })
                }
            }
            _ => Err(self.unsupported(start, ch.to_string())),
        }
    }

    /// Runs `processStopOn` for the word of a `${...}`, one nesting level
    /// deeper. Returns false when `stop` was not found.
    fn nested(&mut self, stop: u8, raw_escapes: bool, out: &mut String) -> Result<bool, ShellError> {
        if self.depth >= MAX_NESTING {
            return Err(ShellError::TooDeep { word: self.err_word(), limit: MAX_NESTING });
        }
        self.depth += 1;
        let found = self.process_stop_on(Some(stop), raw_escapes, out);
        self.depth -= 1;
        found
    }

    fn unsupported(&self, start: usize, modifier: String) -> ShellError {
        ShellError::UnsupportedModifier { word: self.err_word(), expr: self.expr_at(start), modifier }
    }

    fn required(&self, name: &str, word: String, default: &str) -> ShellError {
        let message = if word.is_empty() { default.to_owned() } else { word };
        ShellError::Required { word: self.err_word(), name: name.to_owned(), message }
    }

    fn invalid_pattern(&self, pattern: &str, reason: String) -> ShellError {
        ShellError::InvalidPattern { word: self.err_word(), pattern: pattern.to_owned(), reason }
    }
}

fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

fn is_name_char(c: char) -> bool {
    c == '_' || is_go_letter(c) || is_go_digit(c)
}

/// Go's `unicode.IsLetter`: general category L.
fn is_go_letter(c: char) -> bool {
    if c.is_ascii() { c.is_ascii_alphabetic() } else { in_ranges(LETTER_RANGES, c) }
}

/// Go's `unicode.IsDigit`: general category Nd.
fn is_go_digit(c: char) -> bool {
    if c.is_ascii() { c.is_ascii_digit() } else { in_ranges(DIGIT_RANGES, c) }
}

/// Whether `c` is in `ranges`, sorted inclusive `[lo, hi]` pairs laid flat.
fn in_ranges(ranges: &[u32], c: char) -> bool {
    let c = u32::from(c);
    let pairs = ranges.len() / 2;
    // The first pair whose upper bound is >= c.
    let (mut lo, mut hi) = (0, pairs);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if ranges[2 * mid + 1] < c {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo < pairs && ranges[2 * lo] <= c
}

// ---------------------------------------------------------------------------
// Glob patterns of `${N#p}` `${N%p}` `${N/p/r}`.
//
// Upstream turns the pattern into a Go regular expression (`*` → `.*` or
// `.*?`, `?` → `.`, everything else literal) and uses Go's leftmost-first
// matching. The matcher below is a Pike VM over the same three kinds of
// token, so it picks exactly the match Go picks, in O(pattern × text).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `?`: any one character but a newline.
    Any,
    /// `*`: any run of characters without a newline.
    Star,
}

struct Glob {
    toks: Vec<Tok>,
    /// `*` prefers the longest run (`.*`) instead of the shortest (`.*?`).
    greedy: bool,
    /// The pattern when it has no wildcard.
    literal: Option<String>,
}

impl Glob {
    /// `convertShellPatternToRegex`. A `\` before `}` or `/` is dropped;
    /// before `*`, `?` or `\` it makes that character literal; anything else
    /// after it is an error.
    fn compile(pattern: &str, greedy: bool) -> Result<Glob, String> {
        let pattern = pattern.strip_prefix('\u{FEFF}').unwrap_or(pattern);
        let mut toks = Vec::with_capacity(pattern.len());
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            toks.push(match c {
                '*' => Tok::Star,
                '?' => Tok::Any,
                '\\' => match chars.peek() {
                    Some('}' | '/') => continue,
                    _ => match chars.next() {
                        Some(e @ ('*' | '?' | '\\')) => Tok::Lit(e),
                        Some(e) => {
                            return Err(format!(
                                "invalid escape `\\{e}`: in a pattern `\\` may only escape `*`, `?`, `\\`, `}}` and `/`"
                            ));
                        }
                        None => {
                            return Err(
                                "the pattern ends with a lone `\\`: write `\\\\` for a literal backslash".to_owned()
                            );
                        }
                    },
                },
                c => Tok::Lit(c),
            });
        }
        let literal = toks
            .iter()
            .map(|t| match t {
                Tok::Lit(c) => Some(*c),
                _ => None,
            })
            .collect::<Option<String>>();
        Ok(Glob { toks, greedy, literal })
    }
}

#[derive(Clone, Copy)]
enum Step {
    Expand(usize),
    Emit(usize),
}

/// Reusable state for matching one [`Glob`].
struct Matcher<'g> {
    glob: &'g Glob,
    /// Threads (token index, start offset) in priority order; index
    /// `toks.len()` is the match state.
    clist: Vec<(usize, usize)>,
    nlist: Vec<(usize, usize)>,
    /// `seen[pc] == generation` when `pc` is already in the list being built.
    seen: Vec<u32>,
    generation: u32,
    stack: Vec<Step>,
}

impl<'g> Matcher<'g> {
    fn new(glob: &'g Glob) -> Self {
        Matcher {
            glob,
            clist: Vec::new(),
            nlist: Vec::new(),
            // The literal fast path needs no thread state.
            seen: if glob.literal.is_some() { Vec::new() } else { vec![0; glob.toks.len() + 1] },
            generation: 0,
            stack: Vec::new(),
        }
    }

    /// Adds the threads reachable from `pc` without consuming a character,
    /// in priority order, to `list` (the list of `self.generation`).
    fn add(&mut self, into_next: bool, pc: usize, start: usize) {
        let toks = &self.glob.toks;
        let list = if into_next { &mut self.nlist } else { &mut self.clist };
        self.stack.push(Step::Expand(pc));
        while let Some(step) = self.stack.pop() {
            match step {
                Step::Emit(pc) => list.push((pc, start)),
                Step::Expand(pc) => {
                    if self.seen[pc] == self.generation {
                        continue;
                    }
                    self.seen[pc] = self.generation;
                    if toks.get(pc) != Some(&Tok::Star) {
                        list.push((pc, start));
                    } else if self.glob.greedy {
                        list.push((pc, start));
                        self.stack.push(Step::Expand(pc + 1));
                    } else {
                        self.stack.push(Step::Emit(pc));
                        self.stack.push(Step::Expand(pc + 1));
                    }
                }
            }
        }
    }

    /// Go's leftmost-first match in `text[from..]`: `(start, end)` byte
    /// offsets. Anchored matches only start at `from`.
    fn find_at(&mut self, text: &str, from: usize, anchored: bool) -> Option<(usize, usize)> {
        if let Some(lit) = &self.glob.literal {
            let rest = &text[from..];
            return if anchored {
                rest.starts_with(lit.as_str()).then_some((from, from + lit.len()))
            } else {
                rest.find(lit.as_str()).map(|i| (from + i, from + i + lit.len()))
            };
        }
        let n = self.glob.toks.len();
        self.clist.clear();
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.seen.fill(0);
            self.generation = 1;
        }
        let mut found = None;
        let mut pos = from;
        loop {
            if found.is_none() && (!anchored || pos == from) {
                self.add(false, 0, pos);
            }
            if self.clist.is_empty() && (found.is_some() || anchored) {
                break;
            }
            let ch = text[pos..].chars().next();
            self.generation = self.generation.wrapping_add(1);
            if self.generation == 0 {
                self.seen.fill(0);
                self.generation = 1;
            }
            self.nlist.clear();
            let clist = std::mem::take(&mut self.clist);
            for &(pc, start) in &clist {
                if pc == n {
                    // Lower-priority threads lose to this match.
                    found = Some((start, pos));
                    break;
                }
                let next = match (self.glob.toks[pc], ch) {
                    (Tok::Lit(l), Some(c)) if l == c => pc + 1,
                    (Tok::Any, Some(c)) if c != '\n' => pc + 1,
                    (Tok::Star, Some(c)) if c != '\n' => pc,
                    _ => continue,
                };
                self.add(true, next, start);
            }
            self.clist = clist;
            std::mem::swap(&mut self.clist, &mut self.nlist);
            match ch {
                Some(c) => pos += c.len_utf8(),
                None => break,
            }
        }
        found
    }

    /// Go's `Regexp.ReplaceAllString`, including its `$` expansion of the
    /// replacement (only `$0` / `${0}`, the whole match, is non-empty).
    fn replace_all(&mut self, value: &str, replacement: &str) -> String {
        let mut out = String::with_capacity(value.len());
        let (mut last_end, mut search) = (0, 0);
        while search <= value.len() {
            let Some((start, end)) = self.find_at(value, search, false) else {
                break;
            };
            out.push_str(&value[last_end..start]);
            // No replacement for an empty match right after the previous one.
            if end > last_end || start == 0 {
                expand_template(&mut out, replacement, &value[start..end]);
            }
            last_end = end;
            let width = value[search..].chars().next().map_or(0, char::len_utf8);
            if search + width > end {
                search += width;
            } else if search + 1 > end {
                search += 1;
            } else {
                search = end;
            }
        }
        out.push_str(&value[last_end..]);
        out
    }
}

/// Go's `Regexp.Expand` for a pattern without groups: `$$` is `$`, `$0` and
/// `${0}` the whole match, any other `$name`/`${name}` empty, and a `$` not
/// followed by a name literal.
fn expand_template(out: &mut String, template: &str, whole: &str) {
    let mut t = template;
    while let Some(i) = t.find('$') {
        out.push_str(&t[..i]);
        t = &t[i + 1..];
        if let Some(rest) = t.strip_prefix('$') {
            out.push('$');
            t = rest;
            continue;
        }
        let (brace, body) = match t.strip_prefix('{') {
            Some(b) => (true, b),
            None => (false, t),
        };
        let len = body.find(|c: char| !is_name_char(c)).unwrap_or(body.len());
        let name = &body[..len];
        let rest = if name.is_empty() {
            None
        } else if brace {
            body[len..].strip_prefix('}')
        } else {
            Some(&body[len..])
        };
        match rest {
            Some(rest) => {
                if name == "0" {
                    out.push_str(whole);
                }
                t = rest;
            }
            None => out.push('$'),
        }
    }
    out.push_str(t);
}

/// `trimPrefix`: removes the shortest (or, when greedy, longest) prefix of
/// `value` matching `pattern`.
fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let glob = Glob::compile(pattern, greedy)?;
    Ok(match Matcher::new(&glob).find_at(value, 0, true) {
        Some((_, end)) => value[end..].to_owned(),
        None => value.to_owned(),
    })
}

/// `trimSuffix`: as upstream, reverses the pattern (keeping `\x` pairs
/// together) and the value, trims a prefix, and reverses back.
fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let glob = Glob::compile(&reverse_pattern(pattern), greedy)?;
    if let Some(literal) = &glob.literal {
        // Same result without reversing the value.
        let suffix: String = literal.chars().rev().collect();
        return Ok(value.strip_suffix(suffix.as_str()).unwrap_or(value).to_owned());
    }
    let reversed: String = value.chars().rev().collect();
    let kept = match Matcher::new(&glob).find_at(&reversed, 0, true) {
        Some((_, end)) => &reversed[end..],
        None => &reversed,
    };
    Ok(kept.chars().rev().collect())
}

/// `reversePattern`: reverses `pattern`, keeping each `\x` pair in order.
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = vec!['\0'; chars.len()];
    let last = chars.len().wrapping_sub(1);
    let mut i = 0;
    while i < chars.len() {
        let o = last - i;
        if chars[i] == '\\' && i != last {
            out[o - 1] = '\\';
            out[o] = chars[i + 1];
            i += 2;
        } else {
            out[o] = chars[i];
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// Non-ASCII `L` (letter) ranges, inclusive pairs, Unicode 15.0.0.
const LETTER_RANGES: &[u32] = &[
    0xAA, 0xAA, 0xB5, 0xB5, 0xBA, 0xBA, 0xC0, 0xD6, 0xD8, 0xF6, 0xF8, 0x2C1, 0x2C6, 0x2D1, 0x2E0, 0x2E4, 0x2EC, 0x2EC,
    0x2EE, 0x2EE, 0x370, 0x374, 0x376, 0x377, 0x37A, 0x37D, 0x37F, 0x37F, 0x386, 0x386, 0x388, 0x38A, 0x38C, 0x38C,
    0x38E, 0x3A1, 0x3A3, 0x3F5, 0x3F7, 0x481, 0x48A, 0x52F, 0x531, 0x556, 0x559, 0x559, 0x560, 0x588, 0x5D0, 0x5EA,
    0x5EF, 0x5F2, 0x620, 0x64A, 0x66E, 0x66F, 0x671, 0x6D3, 0x6D5, 0x6D5, 0x6E5, 0x6E6, 0x6EE, 0x6EF, 0x6FA, 0x6FC,
    0x6FF, 0x6FF, 0x710, 0x710, 0x712, 0x72F, 0x74D, 0x7A5, 0x7B1, 0x7B1, 0x7CA, 0x7EA, 0x7F4, 0x7F5, 0x7FA, 0x7FA,
    0x800, 0x815, 0x81A, 0x81A, 0x824, 0x824, 0x828, 0x828, 0x840, 0x858, 0x860, 0x86A, 0x870, 0x887, 0x889, 0x88E,
    0x8A0, 0x8C9, 0x904, 0x939, 0x93D, 0x93D, 0x950, 0x950, 0x958, 0x961, 0x971, 0x980, 0x985, 0x98C, 0x98F, 0x990,
    0x993, 0x9A8, 0x9AA, 0x9B0, 0x9B2, 0x9B2, 0x9B6, 0x9B9, 0x9BD, 0x9BD, 0x9CE, 0x9CE, 0x9DC, 0x9DD, 0x9DF, 0x9E1,
    0x9F0, 0x9F1, 0x9FC, 0x9FC, 0xA05, 0xA0A, 0xA0F, 0xA10, 0xA13, 0xA28, 0xA2A, 0xA30, 0xA32, 0xA33, 0xA35, 0xA36,
    0xA38, 0xA39, 0xA59, 0xA5C, 0xA5E, 0xA5E, 0xA72, 0xA74, 0xA85, 0xA8D, 0xA8F, 0xA91, 0xA93, 0xAA8, 0xAAA, 0xAB0,
    0xAB2, 0xAB3, 0xAB5, 0xAB9, 0xABD, 0xABD, 0xAD0, 0xAD0, 0xAE0, 0xAE1, 0xAF9, 0xAF9, 0xB05, 0xB0C, 0xB0F, 0xB10,
    0xB13, 0xB28, 0xB2A, 0xB30, 0xB32, 0xB33, 0xB35, 0xB39, 0xB3D, 0xB3D, 0xB5C, 0xB5D, 0xB5F, 0xB61, 0xB71, 0xB71,
    0xB83, 0xB83, 0xB85, 0xB8A, 0xB8E, 0xB90, 0xB92, 0xB95, 0xB99, 0xB9A, 0xB9C, 0xB9C, 0xB9E, 0xB9F, 0xBA3, 0xBA4,
    0xBA8, 0xBAA, 0xBAE, 0xBB9, 0xBD0, 0xBD0, 0xC05, 0xC0C, 0xC0E, 0xC10, 0xC12, 0xC28, 0xC2A, 0xC39, 0xC3D, 0xC3D,
    0xC58, 0xC5A, 0xC5D, 0xC5D, 0xC60, 0xC61, 0xC80, 0xC80, 0xC85, 0xC8C, 0xC8E, 0xC90, 0xC92, 0xCA8, 0xCAA, 0xCB3,
    0xCB5, 0xCB9, 0xCBD, 0xCBD, 0xCDD, 0xCDE, 0xCE0, 0xCE1, 0xCF1, 0xCF2, 0xD04, 0xD0C, 0xD0E, 0xD10, 0xD12, 0xD3A,
    0xD3D, 0xD3D, 0xD4E, 0xD4E, 0xD54, 0xD56, 0xD5F, 0xD61, 0xD7A, 0xD7F, 0xD85, 0xD96, 0xD9A, 0xDB1, 0xDB3, 0xDBB,
    0xDBD, 0xDBD, 0xDC0, 0xDC6, 0xE01, 0xE30, 0xE32, 0xE33, 0xE40, 0xE46, 0xE81, 0xE82, 0xE84, 0xE84, 0xE86, 0xE8A,
    0xE8C, 0xEA3, 0xEA5, 0xEA5, 0xEA7, 0xEB0, 0xEB2, 0xEB3, 0xEBD, 0xEBD, 0xEC0, 0xEC4, 0xEC6, 0xEC6, 0xEDC, 0xEDF,
    0xF00, 0xF00, 0xF40, 0xF47, 0xF49, 0xF6C, 0xF88, 0xF8C, 0x1000, 0x102A, 0x103F, 0x103F, 0x1050, 0x1055, 0x105A,
    0x105D, 0x1061, 0x1061, 0x1065, 0x1066, 0x106E, 0x1070, 0x1075, 0x1081, 0x108E, 0x108E, 0x10A0, 0x10C5, 0x10C7,
    0x10C7, 0x10CD, 0x10CD, 0x10D0, 0x10FA, 0x10FC, 0x1248, 0x124A, 0x124D, 0x1250, 0x1256, 0x1258, 0x1258, 0x125A,
    0x125D, 0x1260, 0x1288, 0x128A, 0x128D, 0x1290, 0x12B0, 0x12B2, 0x12B5, 0x12B8, 0x12BE, 0x12C0, 0x12C0, 0x12C2,
    0x12C5, 0x12C8, 0x12D6, 0x12D8, 0x1310, 0x1312, 0x1315, 0x1318, 0x135A, 0x1380, 0x138F, 0x13A0, 0x13F5, 0x13F8,
    0x13FD, 0x1401, 0x166C, 0x166F, 0x167F, 0x1681, 0x169A, 0x16A0, 0x16EA, 0x16F1, 0x16F8, 0x1700, 0x1711, 0x171F,
    0x1731, 0x1740, 0x1751, 0x1760, 0x176C, 0x176E, 0x1770, 0x1780, 0x17B3, 0x17D7, 0x17D7, 0x17DC, 0x17DC, 0x1820,
    0x1878, 0x1880, 0x1884, 0x1887, 0x18A8, 0x18AA, 0x18AA, 0x18B0, 0x18F5, 0x1900, 0x191E, 0x1950, 0x196D, 0x1970,
    0x1974, 0x1980, 0x19AB, 0x19B0, 0x19C9, 0x1A00, 0x1A16, 0x1A20, 0x1A54, 0x1AA7, 0x1AA7, 0x1B05, 0x1B33, 0x1B45,
    0x1B4C, 0x1B83, 0x1BA0, 0x1BAE, 0x1BAF, 0x1BBA, 0x1BE5, 0x1C00, 0x1C23, 0x1C4D, 0x1C4F, 0x1C5A, 0x1C7D, 0x1C80,
    0x1C88, 0x1C90, 0x1CBA, 0x1CBD, 0x1CBF, 0x1CE9, 0x1CEC, 0x1CEE, 0x1CF3, 0x1CF5, 0x1CF6, 0x1CFA, 0x1CFA, 0x1D00,
    0x1DBF, 0x1E00, 0x1F15, 0x1F18, 0x1F1D, 0x1F20, 0x1F45, 0x1F48, 0x1F4D, 0x1F50, 0x1F57, 0x1F59, 0x1F59, 0x1F5B,
    0x1F5B, 0x1F5D, 0x1F5D, 0x1F5F, 0x1F7D, 0x1F80, 0x1FB4, 0x1FB6, 0x1FBC, 0x1FBE, 0x1FBE, 0x1FC2, 0x1FC4, 0x1FC6,
    0x1FCC, 0x1FD0, 0x1FD3, 0x1FD6, 0x1FDB, 0x1FE0, 0x1FEC, 0x1FF2, 0x1FF4, 0x1FF6, 0x1FFC, 0x2071, 0x2071, 0x207F,
    0x207F, 0x2090, 0x209C, 0x2102, 0x2102, 0x2107, 0x2107, 0x210A, 0x2113, 0x2115, 0x2115, 0x2119, 0x211D, 0x2124,
    0x2124, 0x2126, 0x2126, 0x2128, 0x2128, 0x212A, 0x212D, 0x212F, 0x2139, 0x213C, 0x213F, 0x2145, 0x2149, 0x214E,
    0x214E, 0x2183, 0x2184, 0x2C00, 0x2CE4, 0x2CEB, 0x2CEE, 0x2CF2, 0x2CF3, 0x2D00, 0x2D25, 0x2D27, 0x2D27, 0x2D2D,
    0x2D2D, 0x2D30, 0x2D67, 0x2D6F, 0x2D6F, 0x2D80, 0x2D96, 0x2DA0, 0x2DA6, 0x2DA8, 0x2DAE, 0x2DB0, 0x2DB6, 0x2DB8,
    0x2DBE, 0x2DC0, 0x2DC6, 0x2DC8, 0x2DCE, 0x2DD0, 0x2DD6, 0x2DD8, 0x2DDE, 0x2E2F, 0x2E2F, 0x3005, 0x3006, 0x3031,
    0x3035, 0x303B, 0x303C, 0x3041, 0x3096, 0x309D, 0x309F, 0x30A1, 0x30FA, 0x30FC, 0x30FF, 0x3105, 0x312F, 0x3131,
    0x318E, 0x31A0, 0x31BF, 0x31F0, 0x31FF, 0x3400, 0x4DBF, 0x4E00, 0xA48C, 0xA4D0, 0xA4FD, 0xA500, 0xA60C, 0xA610,
    0xA61F, 0xA62A, 0xA62B, 0xA640, 0xA66E, 0xA67F, 0xA69D, 0xA6A0, 0xA6E5, 0xA717, 0xA71F, 0xA722, 0xA788, 0xA78B,
    0xA7CA, 0xA7D0, 0xA7D1, 0xA7D3, 0xA7D3, 0xA7D5, 0xA7D9, 0xA7F2, 0xA801, 0xA803, 0xA805, 0xA807, 0xA80A, 0xA80C,
    0xA822, 0xA840, 0xA873, 0xA882, 0xA8B3, 0xA8F2, 0xA8F7, 0xA8FB, 0xA8FB, 0xA8FD, 0xA8FE, 0xA90A, 0xA925, 0xA930,
    0xA946, 0xA960, 0xA97C, 0xA984, 0xA9B2, 0xA9CF, 0xA9CF, 0xA9E0, 0xA9E4, 0xA9E6, 0xA9EF, 0xA9FA, 0xA9FE, 0xAA00,
    0xAA28, 0xAA40, 0xAA42, 0xAA44, 0xAA4B, 0xAA60, 0xAA76, 0xAA7A, 0xAA7A, 0xAA7E, 0xAAAF, 0xAAB1, 0xAAB1, 0xAAB5,
    0xAAB6, 0xAAB9, 0xAABD, 0xAAC0, 0xAAC0, 0xAAC2, 0xAAC2, 0xAADB, 0xAADD, 0xAAE0, 0xAAEA, 0xAAF2, 0xAAF4, 0xAB01,
    0xAB06, 0xAB09, 0xAB0E, 0xAB11, 0xAB16, 0xAB20, 0xAB26, 0xAB28, 0xAB2E, 0xAB30, 0xAB5A, 0xAB5C, 0xAB69, 0xAB70,
    0xABE2, 0xAC00, 0xD7A3, 0xD7B0, 0xD7C6, 0xD7CB, 0xD7FB, 0xF900, 0xFA6D, 0xFA70, 0xFAD9, 0xFB00, 0xFB06, 0xFB13,
    0xFB17, 0xFB1D, 0xFB1D, 0xFB1F, 0xFB28, 0xFB2A, 0xFB36, 0xFB38, 0xFB3C, 0xFB3E, 0xFB3E, 0xFB40, 0xFB41, 0xFB43,
    0xFB44, 0xFB46, 0xFBB1, 0xFBD3, 0xFD3D, 0xFD50, 0xFD8F, 0xFD92, 0xFDC7, 0xFDF0, 0xFDFB, 0xFE70, 0xFE74, 0xFE76,
    0xFEFC, 0xFF21, 0xFF3A, 0xFF41, 0xFF5A, 0xFF66, 0xFFBE, 0xFFC2, 0xFFC7, 0xFFCA, 0xFFCF, 0xFFD2, 0xFFD7, 0xFFDA,
    0xFFDC, 0x10000, 0x1000B, 0x1000D, 0x10026, 0x10028, 0x1003A, 0x1003C, 0x1003D, 0x1003F, 0x1004D, 0x10050, 0x1005D,
    0x10080, 0x100FA, 0x10280, 0x1029C, 0x102A0, 0x102D0, 0x10300, 0x1031F, 0x1032D, 0x10340, 0x10342, 0x10349,
    0x10350, 0x10375, 0x10380, 0x1039D, 0x103A0, 0x103C3, 0x103C8, 0x103CF, 0x10400, 0x1049D, 0x104B0, 0x104D3,
    0x104D8, 0x104FB, 0x10500, 0x10527, 0x10530, 0x10563, 0x10570, 0x1057A, 0x1057C, 0x1058A, 0x1058C, 0x10592,
    0x10594, 0x10595, 0x10597, 0x105A1, 0x105A3, 0x105B1, 0x105B3, 0x105B9, 0x105BB, 0x105BC, 0x10600, 0x10736,
    0x10740, 0x10755, 0x10760, 0x10767, 0x10780, 0x10785, 0x10787, 0x107B0, 0x107B2, 0x107BA, 0x10800, 0x10805,
    0x10808, 0x10808, 0x1080A, 0x10835, 0x10837, 0x10838, 0x1083C, 0x1083C, 0x1083F, 0x10855, 0x10860, 0x10876,
    0x10880, 0x1089E, 0x108E0, 0x108F2, 0x108F4, 0x108F5, 0x10900, 0x10915, 0x10920, 0x10939, 0x10980, 0x109B7,
    0x109BE, 0x109BF, 0x10A00, 0x10A00, 0x10A10, 0x10A13, 0x10A15, 0x10A17, 0x10A19, 0x10A35, 0x10A60, 0x10A7C,
    0x10A80, 0x10A9C, 0x10AC0, 0x10AC7, 0x10AC9, 0x10AE4, 0x10B00, 0x10B35, 0x10B40, 0x10B55, 0x10B60, 0x10B72,
    0x10B80, 0x10B91, 0x10C00, 0x10C48, 0x10C80, 0x10CB2, 0x10CC0, 0x10CF2, 0x10D00, 0x10D23, 0x10E80, 0x10EA9,
    0x10EB0, 0x10EB1, 0x10F00, 0x10F1C, 0x10F27, 0x10F27, 0x10F30, 0x10F45, 0x10F70, 0x10F81, 0x10FB0, 0x10FC4,
    0x10FE0, 0x10FF6, 0x11003, 0x11037, 0x11071, 0x11072, 0x11075, 0x11075, 0x11083, 0x110AF, 0x110D0, 0x110E8,
    0x11103, 0x11126, 0x11144, 0x11144, 0x11147, 0x11147, 0x11150, 0x11172, 0x11176, 0x11176, 0x11183, 0x111B2,
    0x111C1, 0x111C4, 0x111DA, 0x111DA, 0x111DC, 0x111DC, 0x11200, 0x11211, 0x11213, 0x1122B, 0x1123F, 0x11240,
    0x11280, 0x11286, 0x11288, 0x11288, 0x1128A, 0x1128D, 0x1128F, 0x1129D, 0x1129F, 0x112A8, 0x112B0, 0x112DE,
    0x11305, 0x1130C, 0x1130F, 0x11310, 0x11313, 0x11328, 0x1132A, 0x11330, 0x11332, 0x11333, 0x11335, 0x11339,
    0x1133D, 0x1133D, 0x11350, 0x11350, 0x1135D, 0x11361, 0x11400, 0x11434, 0x11447, 0x1144A, 0x1145F, 0x11461,
    0x11480, 0x114AF, 0x114C4, 0x114C5, 0x114C7, 0x114C7, 0x11580, 0x115AE, 0x115D8, 0x115DB, 0x11600, 0x1162F,
    0x11644, 0x11644, 0x11680, 0x116AA, 0x116B8, 0x116B8, 0x11700, 0x1171A, 0x11740, 0x11746, 0x11800, 0x1182B,
    0x118A0, 0x118DF, 0x118FF, 0x11906, 0x11909, 0x11909, 0x1190C, 0x11913, 0x11915, 0x11916, 0x11918, 0x1192F,
    0x1193F, 0x1193F, 0x11941, 0x11941, 0x119A0, 0x119A7, 0x119AA, 0x119D0, 0x119E1, 0x119E1, 0x119E3, 0x119E3,
    0x11A00, 0x11A00, 0x11A0B, 0x11A32, 0x11A3A, 0x11A3A, 0x11A50, 0x11A50, 0x11A5C, 0x11A89, 0x11A9D, 0x11A9D,
    0x11AB0, 0x11AF8, 0x11C00, 0x11C08, 0x11C0A, 0x11C2E, 0x11C40, 0x11C40, 0x11C72, 0x11C8F, 0x11D00, 0x11D06,
    0x11D08, 0x11D09, 0x11D0B, 0x11D30, 0x11D46, 0x11D46, 0x11D60, 0x11D65, 0x11D67, 0x11D68, 0x11D6A, 0x11D89,
    0x11D98, 0x11D98, 0x11EE0, 0x11EF2, 0x11F02, 0x11F02, 0x11F04, 0x11F10, 0x11F12, 0x11F33, 0x11FB0, 0x11FB0,
    0x12000, 0x12399, 0x12480, 0x12543, 0x12F90, 0x12FF0, 0x13000, 0x1342F, 0x13441, 0x13446, 0x14400, 0x14646,
    0x16800, 0x16A38, 0x16A40, 0x16A5E, 0x16A70, 0x16ABE, 0x16AD0, 0x16AED, 0x16B00, 0x16B2F, 0x16B40, 0x16B43,
    0x16B63, 0x16B77, 0x16B7D, 0x16B8F, 0x16E40, 0x16E7F, 0x16F00, 0x16F4A, 0x16F50, 0x16F50, 0x16F93, 0x16F9F,
    0x16FE0, 0x16FE1, 0x16FE3, 0x16FE3, 0x17000, 0x187F7, 0x18800, 0x18CD5, 0x18D00, 0x18D08, 0x1AFF0, 0x1AFF3,
    0x1AFF5, 0x1AFFB, 0x1AFFD, 0x1AFFE, 0x1B000, 0x1B122, 0x1B132, 0x1B132, 0x1B150, 0x1B152, 0x1B155, 0x1B155,
    0x1B164, 0x1B167, 0x1B170, 0x1B2FB, 0x1BC00, 0x1BC6A, 0x1BC70, 0x1BC7C, 0x1BC80, 0x1BC88, 0x1BC90, 0x1BC99,
    0x1D400, 0x1D454, 0x1D456, 0x1D49C, 0x1D49E, 0x1D49F, 0x1D4A2, 0x1D4A2, 0x1D4A5, 0x1D4A6, 0x1D4A9, 0x1D4AC,
    0x1D4AE, 0x1D4B9, 0x1D4BB, 0x1D4BB, 0x1D4BD, 0x1D4C3, 0x1D4C5, 0x1D505, 0x1D507, 0x1D50A, 0x1D50D, 0x1D514,
    0x1D516, 0x1D51C, 0x1D51E, 0x1D539, 0x1D53B, 0x1D53E, 0x1D540, 0x1D544, 0x1D546, 0x1D546, 0x1D54A, 0x1D550,
    0x1D552, 0x1D6A5, 0x1D6A8, 0x1D6C0, 0x1D6C2, 0x1D6DA, 0x1D6DC, 0x1D6FA, 0x1D6FC, 0x1D714, 0x1D716, 0x1D734,
    0x1D736, 0x1D74E, 0x1D750, 0x1D76E, 0x1D770, 0x1D788, 0x1D78A, 0x1D7A8, 0x1D7AA, 0x1D7C2, 0x1D7C4, 0x1D7CB,
    0x1DF00, 0x1DF1E, 0x1DF25, 0x1DF2A, 0x1E030, 0x1E06D, 0x1E100, 0x1E12C, 0x1E137, 0x1E13D, 0x1E14E, 0x1E14E,
    0x1E290, 0x1E2AD, 0x1E2C0, 0x1E2EB, 0x1E4D0, 0x1E4EB, 0x1E7E0, 0x1E7E6, 0x1E7E8, 0x1E7EB, 0x1E7ED, 0x1E7EE,
    0x1E7F0, 0x1E7FE, 0x1E800, 0x1E8C4, 0x1E900, 0x1E943, 0x1E94B, 0x1E94B, 0x1EE00, 0x1EE03, 0x1EE05, 0x1EE1F,
    0x1EE21, 0x1EE22, 0x1EE24, 0x1EE24, 0x1EE27, 0x1EE27, 0x1EE29, 0x1EE32, 0x1EE34, 0x1EE37, 0x1EE39, 0x1EE39,
    0x1EE3B, 0x1EE3B, 0x1EE42, 0x1EE42, 0x1EE47, 0x1EE47, 0x1EE49, 0x1EE49, 0x1EE4B, 0x1EE4B, 0x1EE4D, 0x1EE4F,
    0x1EE51, 0x1EE52, 0x1EE54, 0x1EE54, 0x1EE57, 0x1EE57, 0x1EE59, 0x1EE59, 0x1EE5B, 0x1EE5B, 0x1EE5D, 0x1EE5D,
    0x1EE5F, 0x1EE5F, 0x1EE61, 0x1EE62, 0x1EE64, 0x1EE64, 0x1EE67, 0x1EE6A, 0x1EE6C, 0x1EE72, 0x1EE74, 0x1EE77,
    0x1EE79, 0x1EE7C, 0x1EE7E, 0x1EE7E, 0x1EE80, 0x1EE89, 0x1EE8B, 0x1EE9B, 0x1EEA1, 0x1EEA3, 0x1EEA5, 0x1EEA9,
    0x1EEAB, 0x1EEBB, 0x20000, 0x2A6DF, 0x2A700, 0x2B739, 0x2B740, 0x2B81D, 0x2B820, 0x2CEA1, 0x2CEB0, 0x2EBE0,
    0x2F800, 0x2FA1D, 0x30000, 0x3134A, 0x31350, 0x323AF,
];

/// Non-ASCII `Nd` (decimal digit) ranges, inclusive pairs, Unicode 15.0.0.
const DIGIT_RANGES: &[u32] = &[
    0x660, 0x669, 0x6F0, 0x6F9, 0x7C0, 0x7C9, 0x966, 0x96F, 0x9E6, 0x9EF, 0xA66, 0xA6F, 0xAE6, 0xAEF, 0xB66, 0xB6F,
    0xBE6, 0xBEF, 0xC66, 0xC6F, 0xCE6, 0xCEF, 0xD66, 0xD6F, 0xDE6, 0xDEF, 0xE50, 0xE59, 0xED0, 0xED9, 0xF20, 0xF29,
    0x1040, 0x1049, 0x1090, 0x1099, 0x17E0, 0x17E9, 0x1810, 0x1819, 0x1946, 0x194F, 0x19D0, 0x19D9, 0x1A80, 0x1A89,
    0x1A90, 0x1A99, 0x1B50, 0x1B59, 0x1BB0, 0x1BB9, 0x1C40, 0x1C49, 0x1C50, 0x1C59, 0xA620, 0xA629, 0xA8D0, 0xA8D9,
    0xA900, 0xA909, 0xA9D0, 0xA9D9, 0xA9F0, 0xA9F9, 0xAA50, 0xAA59, 0xABF0, 0xABF9, 0xFF10, 0xFF19, 0x104A0, 0x104A9,
    0x10D30, 0x10D39, 0x11066, 0x1106F, 0x110F0, 0x110F9, 0x11136, 0x1113F, 0x111D0, 0x111D9, 0x112F0, 0x112F9,
    0x11450, 0x11459, 0x114D0, 0x114D9, 0x11650, 0x11659, 0x116C0, 0x116C9, 0x11730, 0x11739, 0x118E0, 0x118E9,
    0x11950, 0x11959, 0x11C50, 0x11C59, 0x11D50, 0x11D59, 0x11DA0, 0x11DA9, 0x11F50, 0x11F59, 0x16A60, 0x16A69,
    0x16AC0, 0x16AC9, 0x16B50, 0x16B59, 0x1D7CE, 0x1D7FF, 0x1E140, 0x1E149, 0x1E2F0, 0x1E2F9, 0x1E4F0, 0x1E4F9,
    0x1E950, 0x1E959, 0x1FBF0, 0x1FBF9,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn word(input: &str, pairs: &[(&str, &str)]) -> Result<String, ShellError> {
        Lexer::new('\\').process_word(input, &env(pairs))
    }

    fn ok(input: &str, pairs: &[(&str, &str)]) -> String {
        word(input, pairs).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    fn words(input: &str, pairs: &[(&str, &str)]) -> Vec<String> {
        Lexer::new('\\').process_words(input, &env(pairs)).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    #[test]
    fn plain_and_simple_variables() {
        assert_eq!(ok("hello world", &[]), "hello world");
        assert_eq!(ok("$A-$B", &[("A", "1"), ("B", "2")]), "1-2");
        assert_eq!(ok("${A}x", &[("A", "1")]), "1x");
        assert_eq!(ok("$A_B", &[("A", "1"), ("A_B", "2")]), "2");
        assert_eq!(ok("$UNSET|", &[]), "|");
        assert_eq!(ok("$", &[]), "$");
        assert_eq!(ok("a$.b", &[]), "a$.b");
        assert_eq!(ok("$1x $999aaa $@@@ $$ $0", &[]), "x aaa @@  ");
        assert_eq!(ok("$é", &[("é", "e")]), "e");
        assert_eq!(ok("${변수}", &[("변수", "v")]), "v");
        // Superscript two is a number but not a decimal digit (Nd).
        assert_eq!(ok("$A²", &[("A", "1")]), "1²");
        // Arabic-Indic digits are Nd: a positional parameter.
        assert_eq!(ok("$١٢x", &[]), "x");
    }

    #[test]
    fn default_and_alternate() {
        let e = [("SET", "v"), ("EMPTY", "")];
        assert_eq!(ok("${SET:-d} ${EMPTY:-d} ${NO:-d}", &e), "v d d");
        assert_eq!(ok("${SET-d} ${EMPTY-d} ${NO-d}", &e), "v  d");
        assert_eq!(ok("${SET:+a} ${EMPTY:+a} ${NO:+a}", &e), "a  ");
        assert_eq!(ok("${SET+a} ${EMPTY+a} ${NO+a}", &e), "a a ");
        assert_eq!(ok("${NO:-${ALSO:-deep}}", &e), "deep");
        assert_eq!(ok("${NO:-a b 'c}' \"d}\"}", &e), "a b c} d}");
        assert_eq!(ok("${NO:-\\}}", &e), "}");
        assert_eq!(ok("${aaa}}", &e), "}");
    }

    #[test]
    fn required() {
        let e = [("VAR", "plain"), ("EMPTY", ""), ("ARG", "x")];
        assert_eq!(ok("${VAR:?msg}", &e), "plain");
        assert_eq!(ok("${VAR?msg}", &e), "plain");
        assert_eq!(ok("${EMPTY?msg}", &e), "");
        let err = word("${EMPTY:?message here$ARG}", &e).unwrap_err();
        assert!(err.to_string().contains("EMPTY: message herex"), "{err}");
        let err = word("${NO?message here$ARG}", &e).unwrap_err();
        assert!(
            matches!(&err, ShellError::Required { name, message, .. } if name == "NO" && message == "message herex")
        );
        let err = word("${NO?}", &e).unwrap_err();
        assert!(err.to_string().ends_with("NO: is not allowed to be unset"), "{err}");
        let err = word("${EMPTY:?}", &e).unwrap_err();
        assert!(err.to_string().ends_with("EMPTY: is not allowed to be empty"), "{err}");
    }

    #[test]
    fn trim_prefix_and_suffix() {
        let foo = |v: &str, input: &str| ok(input, &[("FOO", v), ("BAR", "x"), ("EMPTY", "")]);
        assert_eq!(foo("()[]{}^$.*?|\\x", "${FOO#()[]{\\}^$.\\*\\?|\\\\}"), "x");
        assert_eq!(foo("xx**", "${FOO%%\\**}"), "xx");
        assert_eq!(foo("xxyy", "${FOO#*x*y}"), "y");
        assert_eq!(foo("xxyy", "${FOO#*}"), "xxyy");
        assert_eq!(foo("xxyy", "${FOO##*}"), "");
        assert_eq!(foo("xxyy", "${FOO#$BAR}"), "xyy");
        assert_eq!(foo("xxyy", "${FOO#$EMPTY}"), "xxyy");
        assert_eq!(foo("xxyy", "${FOO#}"), "xxyy");
        assert_eq!(foo("xxyy", "${FOO##*x}"), "yy");
        assert_eq!(foo("xxyy", "${FOO##}"), "xxyy");
        assert_eq!(foo("???y", "${FOO#?\\?}"), "?y");
        assert_eq!(foo("xxyy", "${ABC:-.}${FOO%x}${ABC:-.}"), ".xxyy.");
        assert_eq!(foo("a***yy*", "${FOO%%\\**\\*}"), "a");
        assert_eq!(foo("xxyy", "${FOO%}"), "xxyy");
        assert_eq!(foo("xxyy", "${FOO%%$EMPTY}"), "xxyy");
        assert_eq!(foo("file.tar.gz", "${FOO%.*}"), "file.tar");
        assert_eq!(foo("file.tar.gz", "${FOO%%.*}"), "file");
        assert_eq!(foo("/a/b/c", "${FOO#*/}"), "a/b/c");
        assert_eq!(foo("/a/b/c", "${FOO##*/}"), "c");
        assert_eq!(foo("안녕하세요", "${FOO#안?}"), "하세요");
        assert_eq!(foo("안녕하세요", "${FOO%?요}"), "안녕하");
        // Wildcards do not match a newline, as Go's `.`.
        assert_eq!(foo("a\nb", "${FOO##*}"), "\nb");
        assert_eq!(foo("a\nb", "${FOO#?}"), "\nb");
        assert_eq!(ok("${NO#x}", &[]), "");
        // `${N:#p}` and `${N:%p}` are rejected.
        assert!(matches!(word("${FOO:#x}", &[("FOO", "x")]), Err(ShellError::UnsupportedModifier { .. })));
        assert!(matches!(word("${FOO:%x}", &[("FOO", "x")]), Err(ShellError::UnsupportedModifier { .. })));
        // Bad escapes in a pattern.
        let err = word("${FOO#\\x}", &[("FOO", "x")]).unwrap_err();
        assert!(matches!(&err, ShellError::InvalidPattern { pattern, .. } if pattern == "\\x"), "{err}");
        assert!(word("${FOO#$P}", &[("FOO", "x"), ("P", "a\\")]).is_err());
        // Upstream reverses `*\` to `\*` for `%`, so it trims a literal `*`.
        assert_eq!(ok("${FOO%$P}", &[("FOO", "ab*"), ("P", "*\\")]), "ab");
    }

    #[test]
    fn replace() {
        let e = |pairs: &[(&str, &str)], input: &str| ok(input, pairs);
        assert_eq!(
            e(&[("FOO", "/foo*/*/*.txt"), ("NEEDLE", "\\*/")], "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}"),
            "/foo.*/*.txt - /foo..*.txt"
        );
        assert_eq!(
            e(&[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")], "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}"),
            "/tmp/bar.txt - /bar.txt"
        );
        assert_eq!(
            e(&[("FOO", "/a/foo/b/c.txt"), ("NEEDLE", "/?/"), ("R", "/")], "${FOO/$NEEDLE/$R} - ${FOO//$NEEDLE/$R}"),
            "/foo/b/c.txt - /foo/c.txt"
        );
        assert_eq!(
            e(&[("FOO", "http://google.de"), ("NEEDLE", "http://"), ("R", "https://")], "${FOO/$NEEDLE/$R}"),
            "https://google.de"
        );
        assert_eq!(e(&[("FOO", "/tmp/foo.txt")], "${FOO//\\//\\/}"), "\\/tmp\\/foo.txt");
        assert_eq!(e(&[("FOO", "xxyy"), ("BAR", "")], "${FOO/$BAR/ww}"), "wwxxyy");
        assert_eq!(e(&[("FOO", "xxyy"), ("BAR", "")], "${FOO//$BAR/-}"), "-x-x-y-y-");
        assert_eq!(e(&[("FOO", "xxyy")], "${FOO///}"), "xxyy");
        assert_eq!(e(&[], "${FOO///}"), "");
        assert_eq!(e(&[("FOO", "aXbXc")], "${FOO//X/_}"), "a_b_c");
        assert_eq!(e(&[("FOO", "aXbXc")], "${FOO/X*/_}"), "a_");
        assert_eq!(e(&[("FOO", "ab\ncd")], "${FOO//?/.}"), "..\n..");
        // `//` expands `$` in the replacement as Go's ReplaceAllString does.
        assert_eq!(e(&[("FOO", "abc")], "${FOO//b/'[$0]'}"), "a[b]c");
        assert_eq!(e(&[("FOO", "abc")], "${FOO//b/'[${0}|$1|$$|$.|$x]'}"), "a[b||$|$.|]c");
        // `/` uses the replacement as is.
        assert_eq!(e(&[("FOO", "abc")], "${FOO/b/'$0'}"), "a$0c");
        assert!(matches!(word("${FOO//ww}", &[("FOO", "x")]), Err(ShellError::MissingSlash { .. })));
        assert!(matches!(word("${FOO//}", &[("FOO", "x")]), Err(ShellError::MissingSlash { .. })));
        assert!(matches!(word("${FOO/a/b", &[("FOO", "x")]), Err(ShellError::MissingBrace { .. })));
    }

    #[test]
    fn glob_matcher_follows_leftmost_first() {
        let find = |pattern: &str, greedy: bool, text: &str, anchored: bool| {
            let glob = Glob::compile(pattern, greedy).unwrap();
            Matcher::new(&glob).find_at(text, 0, anchored)
        };
        assert_eq!(find("a*b", true, "xxaybzb", false), Some((2, 7)));
        assert_eq!(find("a*b", false, "xxaybzb", false), Some((2, 5)));
        assert_eq!(find("*", false, "abc", true), Some((0, 0)));
        assert_eq!(find("*", true, "abc", true), Some((0, 3)));
        assert_eq!(find("**?", false, "abc", true), Some((0, 1)));
        assert_eq!(find("?*?", true, "abc\nd", false), Some((0, 3)));
        assert_eq!(find("b?", true, "abc", true), None);
        assert_eq!(find("*c*", false, "abcabc", true), Some((0, 3)));
        assert_eq!(find("*c*", true, "abcabc", true), Some((0, 6)));
        assert_eq!(reverse_pattern("a\\*c"), "c\\*a");
        assert_eq!(reverse_pattern("\\\\\\ab"), "b\\a\\\\");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
        assert_eq!(reverse_pattern("👽\\🚀🖖"), "🖖\\🚀👽");
        assert_eq!(reverse_pattern("\\\\b"), "b\\\\");
        for invalid in ["\\", "\\x", "\\\\\\"] {
            assert!(Glob::compile(invalid, true).is_err(), "{invalid:?}");
        }
    }

    #[test]
    fn quotes() {
        assert_eq!(ok("'$A \\x'", &[("A", "1")]), "$A \\x");
        assert_eq!(ok("\"$A \\x \\\" \\$ \\\\\"", &[("A", "1")]), "1 \\x \" $ \\");
        assert_eq!(ok("a'b'\"c\"d", &[]), "abcd");
        assert!(matches!(word("'abc", &[]), Err(ShellError::UnterminatedSingleQuote { .. })));
        assert!(matches!(word("\"abc", &[]), Err(ShellError::UnterminatedDoubleQuote { .. })));
        assert!(matches!(word("\"abc\\", &[]), Err(ShellError::UnterminatedDoubleQuote { .. })));
        assert!(matches!(word("\"abc\\\"", &[]), Err(ShellError::UnterminatedDoubleQuote { .. })));
        let raw = Lexer { raw_quotes: true, ..Lexer::new('\\') };
        assert_eq!(raw.process_word("a'b'\"c$A\"", &env(&[("A", "1")])).unwrap(), "a'b'\"c1\"");
    }

    #[test]
    fn escapes() {
        assert_eq!(ok("a\\ b\\$A\\\\", &[("A", "1")]), "a b$A\\");
        assert_eq!(ok("abc\\", &[]), "abc");
        let raw = Lexer { raw_escapes: true, ..Lexer::new('\\') };
        assert_eq!(raw.process_word("a\\ b\\$A", &env(&[("A", "1")])).unwrap(), "a\\ b\\$A");
        // Upstream keeps the escape twice here with raw escapes.
        assert_eq!(raw.process_word("\"a\\tb\"", &env(&[])).unwrap(), "a\\\\tb");
    }

    #[test]
    fn backtick_escape() {
        let lex = Lexer::new('`');
        let e = env(&[("A", "1")]);
        assert_eq!(lex.process_word("C:\\path\\$A", &e).unwrap(), "C:\\path\\1");
        assert_eq!(lex.process_word("a`$A `\"x", &e).unwrap(), "a$A \"x");
        assert_eq!(lex.process_word("\"a`\"b`$A`c\\\"", &e).unwrap(), "a\"b$A`c\\");
        assert_eq!(lex.process_word("${NO:-`}}", &e).unwrap(), "}");
        assert_eq!(lex.process_words("a` b c", &e).unwrap(), ["a b", "c"]);
        assert_eq!(lex.process_word("end`", &e).unwrap(), "end");
        // A non-ASCII escape character works too.
        let lex = Lexer::new('§');
        assert_eq!(lex.process_word("a§$A \"§\"\"", &e).unwrap(), "a$A \"");
    }

    #[test]
    fn word_splitting() {
        let e = [("S", " a  b "), ("E", "")];
        assert_eq!(words("x${S}y", &e), ["x", "a", "b", "y"]);
        assert_eq!(words("x${T}y", &[("T", "a b")]), ["xa", "by"]);
        assert_eq!(words("x\"${S}\"y", &e), ["x a  b y"]);
        assert_eq!(words("a \"\" b", &e), ["a", "b"]);
        assert_eq!(words("a\\ b '' $E c", &e), ["a b", "c"]);
        assert_eq!(words("  lead  trail  ", &e), ["lead", "trail"]);
        assert_eq!(words("${NO:-\"p q\"}", &e), ["p", "q"]);
        assert_eq!(words("a\u{3000}b\u{a0}c", &e), ["a", "b", "c"]);
        assert!(words("", &e).is_empty());
        let lex = Lexer::new('\\');
        let got = lex.process_words_with_matches("$S ${NO}", &env(&e)).unwrap();
        assert_eq!(got.words, ["a", "b"]);
        assert_eq!(got.matched.iter().collect::<Vec<_>>(), ["S"]);
        assert_eq!(got.unmatched.iter().collect::<Vec<_>>(), ["NO"]);
    }

    #[test]
    fn matched_and_unmatched() {
        let lex = Lexer::new('\\');
        let check = |input: &str, pairs: &[(&str, &str)], value: &str, matched: &[&str], unmatched: &[&str]| {
            let got = lex.process_word_with_matches(input, &env(pairs)).unwrap();
            assert_eq!(got.value, value, "{input}");
            assert_eq!(got.matched.iter().collect::<Vec<_>>(), matched, "{input}");
            assert_eq!(got.unmatched.iter().collect::<Vec<_>>(), unmatched, "{input}");
        };
        check("x", &[("DUMMY", "d")], "x", &[], &[]);
        check("x ${UNUSED}", &[("DUMMY", "d")], "x ", &[], &["UNUSED"]);
        check("x ${FOO}", &[("FOO", "y")], "x y", &["FOO"], &[]);
        let fb = [("FOO", "xxx"), ("BAR", "")];
        check("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", &fb, "xxx  ccc", &["BAR", "FOO"], &["BAZ"]);
        check("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", &fb, "xxx bbb ccc", &["BAR", "FOO"], &["BAZ"]);
        check("${FOO:-}", &fb, "xxx", &["FOO"], &[]);
        check("${FOO:-}", &[], "", &[], &["FOO"]);
        check("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", &fb, "aaa bbb ", &["BAR", "FOO"], &["BAZ"]);
        check("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", &fb, "aaa  ", &["BAR", "FOO"], &["BAZ"]);
        check("${FOO?aaa}", &fb, "xxx", &["FOO"], &[]);
        check("${BAR?bbb}", &fb, "", &["BAR"], &[]);
        // The word is expanded even when it is not used.
        check("${FOO:-$OTHER}", &fb, "xxx", &["FOO"], &["OTHER"]);
        check("$1 ${@}", &[], " ", &[], &["1", "@"]);
        check(
            "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz",
            &[("VERSION", "v1.2.3"), ("TARGETOS", "linux"), ("TARGETARCH", "arm"), ("TARGETVARIANT", "v7")],
            "something-v1.2.3.linux-arm-v7.tar.gz",
            &["TARGETARCH", "TARGETOS", "TARGETVARIANT", "VERSION"],
            &[],
        );
        check(
            "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz",
            &[("VERSION", "v1.2.3"), ("TARGETOS", "linux"), ("TARGETARCH", "amd64")],
            "something-v1.2.3.linux-amd64.tar.gz",
            &["TARGETARCH", "TARGETOS", "VERSION"],
            &["TARGETVARIANT"],
        );
    }

    #[test]
    fn skip_unset_env() {
        let lex = Lexer { skip_unset_env: true, ..Lexer::new('\\') };
        let e = env(&[("A", "1")]);
        assert_eq!(lex.process_word("$A $B ${B} ${B:-x} ${B//a/b}", &e).unwrap(), "1 $B ${B} ${B:-x} ${B/a/b}");
        assert_eq!(lex.process_word("${B:=x}", &e).unwrap(), "${B:=x}");
    }

    #[test]
    fn syntax_errors() {
        let bad = |input: &str| word(input, &[("PWD", "/home")]).unwrap_err();
        assert!(matches!(bad("${}"), ShellError::BadSubstitution { .. }));
        assert!(matches!(bad("${:}"), ShellError::BadSubstitution { .. }));
        assert!(matches!(bad("${{a}"), ShellError::BadSubstitution { .. }));
        assert!(matches!(bad("${"), ShellError::MissingBrace { .. }));
        assert!(matches!(bad("${a"), ShellError::MissingBrace { .. }));
        assert!(matches!(bad("${a:"), ShellError::MissingBrace { .. }));
        assert!(matches!(bad("${a:-b"), ShellError::MissingBrace { .. }));
        assert!(matches!(bad("${.}"), ShellError::UnsupportedModifier { .. }));
        assert!(matches!(bad("${PWD:=000}"), ShellError::UnsupportedModifier { .. }));
        assert!(matches!(bad("${PWD:YYY}"), ShellError::UnsupportedModifier { .. }));
        assert!(matches!(bad("${PWD=x}"), ShellError::UnsupportedModifier { .. }));
        assert_eq!(
            bad("${:}").to_string(),
            "failed to process `${:}`: bad substitution: `${:}`: a name must follow `${` \
             (letters, digits and `_`, or one of `@ * # ? - $ ! 0`)"
        );
        let err = bad("x${PWD:=000}y");
        assert!(err.to_string().contains("unsupported modifier `:=` in `${PWD:=000}`"), "{err}");
    }

    #[test]
    fn byte_order_mark_at_start_is_ignored() {
        assert_eq!(ok("\u{FEFF}$A", &[("A", "1")]), "1");
        assert_eq!(ok("x\u{FEFF}", &[]), "x\u{FEFF}");
    }

    #[test]
    fn nesting_cap() {
        let nest = |n: usize| format!("{}x{}", "${a:-".repeat(n), "}".repeat(n));
        assert_eq!(ok(&nest(MAX_NESTING), &[]), "x");
        let err = word(&nest(MAX_NESTING + 1), &[]).unwrap_err();
        assert!(matches!(err, ShellError::TooDeep { limit: MAX_NESTING, .. }));
        // Far deeper input fails cleanly instead of overflowing the stack.
        let deep = "${a:-\"".repeat(100_000);
        assert!(matches!(word(&deep, &[]), Err(ShellError::TooDeep { .. })));
        let deep = "${a/".repeat(100_000);
        assert!(matches!(word(&deep, &[]), Err(ShellError::TooDeep { .. })));
    }

    #[test]
    fn env_impls() {
        let list: Vec<String> = vec!["A=1".into(), "B".into(), "A=2".into()];
        let lex = Lexer::new('\\');
        assert_eq!(lex.process_word("$A|${B-unset}|${C-unset}", &list).unwrap(), "2||unset");
        assert_eq!(lex.process_word("$A", &list.as_slice()).unwrap(), "2");
        let map: HashMap<String, String> = [("A".to_string(), "h".to_string())].into();
        assert_eq!(lex.process_word("$A", &map).unwrap(), "h");
    }

    /// A small deterministic generator for the property loops.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[(self.next() % items.len() as u64) as usize]
        }
    }

    const PIECES: &[&str] = &[
        "$", "{", "}", "${", "$A", "${A", ":", "-", "+", "?", "#", "##", "%", "%%", "/", "//", "*", "\\", "`", "'",
        "\"", " ", "\n", "\t", "a", "Z", "_", "0", "9", "@", "!", "한", "국", "é", "👽", "\u{FEFF}", "\u{3000}",
        "\u{a0}", ".", "=", "${A:-", "${B//", "${A#", "${A%%", "\\}", "\\/", "\\*", "$0", "$$",
    ];

    #[test]
    fn never_panics_on_random_inputs() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let e = env(&[("A", "a*b?c\\d/e}f 한국 👽"), ("B", ""), ("SP", " x  y ")]);
        let lexers = [
            Lexer::new('\\'),
            Lexer::new('`'),
            Lexer { raw_quotes: true, raw_escapes: true, skip_unset_env: true, ..Lexer::new('\\') },
            Lexer::new('한'),
        ];
        for _ in 0..20_000 {
            let len = (rng.next() % 24) as usize;
            let input: String = (0..len).map(|_| rng.pick(PIECES)).collect();
            for lex in &lexers {
                let one = lex.process_word_with_matches(&input, &e);
                let many = lex.process_words(&input, &e);
                assert_eq!(one.is_ok(), many.is_ok(), "{input:?}");
                if let Ok(one) = one {
                    assert_eq!(lex.process_word(&input, &e).unwrap(), one.value);
                }
            }
        }
    }

    #[test]
    fn never_panics_on_every_prefix_and_char_boundary() {
        let samples = [
            "he${XXX:-${PWD:-yyy}}xx",
            "안녕${KOREAN:+'한'\"국\"\\어}",
            "${A//\\//👽}${A%%\\**}${A#?\\?}",
            "\"a\\$b`c\" 'd\\e' f\\ g",
        ];
        let e = env(&[("A", "/x/한*?"), ("KOREAN", "한국어"), ("PWD", "/home")]);
        for s in samples {
            for (i, _) in s.char_indices() {
                for lex in [Lexer::new('\\'), Lexer::new('`')] {
                    let _ = lex.process_word(&s[..i], &e);
                    let _ = lex.process_words(&s[i..], &e);
                }
            }
        }
    }

    #[test]
    fn glob_matcher_agrees_with_a_backtracking_reference() {
        // Leftmost-first semantics, computed the slow way.
        fn reference(toks: &[Tok], greedy: bool, text: &[char], at: usize) -> Option<usize> {
            match toks.first() {
                None => Some(at),
                Some(Tok::Lit(l)) => (text.get(at) == Some(l)).then(|| reference(&toks[1..], greedy, text, at + 1))?,
                Some(Tok::Any) => {
                    (text.get(at).is_some_and(|&c| c != '\n')).then(|| reference(&toks[1..], greedy, text, at + 1))?
                }
                Some(Tok::Star) => {
                    let mut max = at;
                    while text.get(max).is_some_and(|&c| c != '\n') {
                        max += 1;
                    }
                    let mut ends: Vec<usize> = (at..=max).collect();
                    if greedy {
                        ends.reverse();
                    }
                    ends.into_iter().find_map(|e| reference(&toks[1..], greedy, text, e))
                }
            }
        }
        let mut rng = Rng(12345);
        let pat_pieces = ["a", "b", "*", "?", "\\*"];
        let text_pieces = ["a", "b", "*", "\n", "é"];
        for _ in 0..5_000 {
            let pattern: String = (0..rng.next() % 6).map(|_| rng.pick(&pat_pieces)).collect();
            let text: String = (0..rng.next() % 8).map(|_| rng.pick(&text_pieces)).collect();
            let chars: Vec<char> = text.chars().collect();
            let offset = |i: usize| chars[..i].iter().map(|c| c.len_utf8()).sum::<usize>();
            for greedy in [false, true] {
                let glob = Glob::compile(&pattern, greedy).unwrap();
                for anchored in [false, true] {
                    let starts = if anchored { 0..1 } else { 0..chars.len() + 1 };
                    let want = starts
                        .into_iter()
                        .find_map(|s| reference(&glob.toks, greedy, &chars, s).map(|e| (offset(s), offset(e))));
                    let got = Matcher::new(&glob).find_at(&text, 0, anchored);
                    assert_eq!(got, want, "{pattern:?} {text:?} greedy={greedy} anchored={anchored}");
                }
            }
        }
    }
}
