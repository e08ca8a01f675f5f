//! Text to [`Ast`], following BuildKit's `frontend/dockerfile/parser`
//! (`parser.go`, `line_parsers.go`, `split_command.go`) rule for rule, so
//! that the AST dump is byte-identical to BuildKit's on its own test data.
//!
//! The rules are written down in `conformance/FORMAT.md` §1.3; the comments
//! here only say where we deliberately differ (we keep non-ASCII bytes in
//! flags intact, where BuildKit garbles them).

use std::borrow::Cow;
use std::sync::Arc;

use thiserror::Error;

use crate::ast::{Ast, Directive, Directives, Heredoc, Node, ParseWarning};
use crate::error::Error;

/// The longest physical line BuildKit's scanner accepts, in bytes.
pub const MAX_LINE_LEN: usize = 65535;

/// What can go wrong while parsing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseErrorKind {
    #[error("file with no instructions: a Dockerfile needs at least one instruction, such as FROM")]
    Empty,
    #[error("dockerfile line greater than max allowed size of {MAX_LINE_LEN} bytes")]
    LineTooLong,
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    #[error("invalid escape token '{0}' does not match ` or \\: the escape directive takes a backslash or a backtick")]
    InvalidEscape(String),
    #[error("{0} must have two arguments: use `{0} key=value` (or the legacy `{0} key value`)")]
    KeyValueNeedsTwoArgs(&'static str),
    #[error("Syntax error - can't find = in {word:?}. Must be of the form: name=value")]
    MissingEquals { word: String },
    #[error("when using JSON array syntax, arrays must be comprised of strings only (like [\"executable\", \"arg\"])")]
    NotStringArray,
    #[error("unterminated heredoc {0:?}: no line consisting of exactly {0:?} follows")]
    UnterminatedHeredoc(String),
    #[error("invalid heredoc word {word:?}: {reason}")]
    InvalidHeredoc { word: String, reason: &'static str },
}

/// Parses Dockerfile text (UTF-8; invalid bytes are replaced) into an [`Ast`].
pub fn parse(input: &[u8]) -> Result<Ast, Error> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    // `from_utf8` validates valid text much faster than `from_utf8_lossy`.
    let text = match std::str::from_utf8(input) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(input),
    };
    Parser::new(&text).run()
}

/// BuildKit keywords whose instructions may carry heredocs.
fn keyword_takes_heredocs(keyword: &str) -> bool {
    matches!(keyword, "run" | "copy" | "add")
}

/// Go's `unicode.IsSpace`.
fn is_go_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}')
        || (c > '\u{ff}' && c.is_whitespace())
}

/// The separator set of BuildKit's `reWhitespace`: `[\t\v\f\r ]`.
fn is_sep(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

fn trim_go_space_start(s: &str) -> &str {
    s.trim_start_matches(is_go_space)
}

fn trim_go_space(s: &str) -> &str {
    s.trim_matches(is_go_space)
}

/// A line is a comment when its first non-space character is `#`.
fn is_comment(line: &str) -> bool {
    trim_go_space_start(line).starts_with('#')
}

struct DirectiveScanner {
    done: bool,
    escape: char,
    found: Directives,
}

impl DirectiveScanner {
    /// Looks at a line (leading whitespace already trimmed) while directives
    /// may still appear.
    fn observe(&mut self, line: &str, line_no: usize) -> Result<(), ParseErrorKind> {
        if self.done {
            return Ok(());
        }
        let Some((key, value)) = match_directive(line) else {
            self.done = true;
            return Ok(());
        };
        let key = key.to_ascii_lowercase();
        let slot = match key.as_str() {
            "syntax" => &mut self.found.syntax,
            "escape" => &mut self.found.escape,
            "check" => &mut self.found.check,
            _ => {
                self.done = true;
                return Ok(());
            }
        };
        if slot.is_some() {
            return Err(ParseErrorKind::DuplicateDirective(key));
        }
        *slot = Some(Directive { value: value.to_string(), line: line_no });
        if key == "escape" {
            self.escape = match value {
                "\\" => '\\',
                "`" => '`',
                other => return Err(ParseErrorKind::InvalidEscape(other.to_string())),
            };
        }
        Ok(())
    }
}

/// `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` (Go's `\s` is ASCII space).
fn match_directive(line: &str) -> Option<(&str, &str)> {
    let is_s = |c: char| matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ');
    let rest = line.strip_prefix('#')?.trim_start_matches(is_s);
    let key_len = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
    let key = &rest[..key_len];
    if !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let rest = rest[key_len..].trim_start_matches(is_s).strip_prefix('=')?;
    let value = rest.trim_matches(is_s);
    if value.is_empty() {
        return None;
    }
    Some((key, value))
}

/// Removes a trailing line-continuation escape. Returns the line without it
/// and whether the line was complete (no continuation).
/// BuildKit: `([^E])E[ \t]*$|^E[ \t]*$` replaced by `$1`.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    if let Some(before) = trimmed.strip_suffix(escape)
        && (before.is_empty() || !before.ends_with(escape))
    {
        return (before, false);
    }
    (line, true)
}

/// Physical lines with their 1-based numbers; `\r` and `\n` stripped from the end.
struct Lines<'a> {
    rest: &'a str,
    number: usize,
}

impl<'a> Lines<'a> {
    fn next_line(&mut self) -> Option<Result<&'a str, Error>> {
        if self.rest.is_empty() {
            return None;
        }
        let (line, rest) = match find_newline(self.rest.as_bytes()) {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, ""),
        };
        self.rest = rest;
        self.number += 1;
        if line.len() > MAX_LINE_LEN {
            return Some(Err(Error::new(ParseErrorKind::LineTooLong, self.number, self.number)));
        }
        Some(Ok(line.trim_end_matches(['\r', '\n'])))
    }
}

/// The position of the first `\n`, eight bytes at a time (the classic
/// zero-byte test on `word ^ 0x0a0a…`): `str::find` has a high fixed cost on
/// lines this short.
fn find_newline(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ (ONES * u64::from(b'\n'));
        // The lowest set bit marks the first zero byte (higher ones may be false).
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return Some(offset + zero.trailing_zeros() as usize / 8);
        }
        offset += 8;
    }
    chunks.remainder().iter().position(|&b| b == b'\n').map(|i| offset + i)
}

struct Parser<'a> {
    lines: Lines<'a>,
    directives: DirectiveScanner,
    warnings: Vec<ParseWarning>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            lines: Lines { rest: text, number: 0 },
            directives: DirectiveScanner { done: false, escape: '\\', found: Directives::default() },
            warnings: Vec::new(),
        }
    }

    fn run(mut self) -> Result<Ast, Error> {
        // At most one instruction per line: one allocation instead of
        // repeatedly copying a growing vector of large nodes.
        let lines = self.lines.rest.bytes().filter(|&b| b == b'\n').count() + 1;
        let mut children = Vec::with_capacity(lines);
        let mut comments: Vec<String> = Vec::new();
        while let Some(raw) = self.lines.next_line() {
            let raw = raw?;
            let line_no = self.lines.number;
            let first = trim_go_space_start(raw);
            self.directives.observe(first, line_no).map_err(|k| Error::new(k, line_no, line_no))?;
            if let Some(comment) = first.strip_prefix('#') {
                let comment = trim_go_space(comment);
                if comment.is_empty() {
                    comments.clear();
                } else {
                    comments.push(comment.to_string());
                }
                continue;
            }
            if first.is_empty() {
                comments.clear();
                continue;
            }
            let start_line = line_no;
            let escape = self.directives.escape;
            let (head, mut complete) = trim_continuation(first, escape);
            // Most instructions are one line: borrow it until a continuation.
            let mut logical = Cow::Borrowed(head);
            let mut empty_continuation = None;
            while !complete {
                let Some(next) = self.lines.next_line() else { break };
                let next = next?;
                let n = self.lines.number;
                self.directives.observe(next, n).map_err(|k| Error::new(k, n, n))?;
                if is_comment(next) {
                    continue;
                }
                if trim_go_space_start(next).is_empty() {
                    empty_continuation.get_or_insert(n);
                    continue;
                }
                let (part, done) = trim_continuation(next, escape);
                logical.to_mut().push_str(part);
                complete = done;
            }
            if let Some(n) = empty_continuation {
                self.warnings.push(ParseWarning {
                    rule: "NoEmptyContinuation",
                    message: "Empty continuation lines will become errors in a future release".to_string(),
                    line: n,
                });
            }
            let end_so_far = self.lines.number;
            let mut node = node_from_line(&logical, escape, std::mem::take(&mut comments))
                .map_err(|k| Error::new(k, start_line, end_so_far))?;
            self.read_heredocs(&mut node, &logical, start_line)?;
            node.original = Arc::from(logical.as_ref());
            node.start_line = start_line;
            node.end_line = self.lines.number;
            if let Some(child) = node.child.as_mut() {
                child.start_line = start_line;
                child.end_line = node.end_line;
            }
            children.push(node);
        }
        if children.is_empty() {
            let n = self.lines.number;
            return Err(Error::new(ParseErrorKind::Empty, n, n));
        }
        let escape = self.directives.escape;
        Ok(Ast { directives: self.directives.found, escape, children, warnings: self.warnings })
    }

    /// Reads the bodies of the heredocs `logical` introduces, if the
    /// instruction can carry heredocs. Bodies go to the node that owns them
    /// (the ONBUILD trigger, for ONBUILD).
    fn read_heredocs(&mut self, node: &mut Node, logical: &str, start_line: usize) -> Result<(), Error> {
        let target = match node.child.as_deref_mut() {
            Some(child) if node.keyword == "onbuild" => child,
            _ => node,
        };
        if !keyword_takes_heredocs(&target.keyword) || target.json || !logical.contains("<<") {
            return Ok(());
        }
        let docs = heredocs_from_line(logical).map_err(|k| Error::new(k, start_line, self.lines.number))?;
        for mut doc in docs {
            let mut terminated = false;
            while let Some(line) = self.lines.next_line() {
                let line = line?;
                let candidate = if doc.chomp { line.trim_start_matches('\t') } else { line };
                if candidate == doc.name {
                    terminated = true;
                    break;
                }
                doc.content.push_str(if doc.chomp { candidate } else { line });
                doc.content.push('\n');
            }
            if !terminated {
                let n = self.lines.number;
                return Err(Error::new(ParseErrorKind::UnterminatedHeredoc(doc.name), start_line, n));
            }
            target.heredocs.push(doc);
        }
        Ok(())
    }
}

/// Splits a logical line into keyword, flags and arguments, and builds the
/// node. The caller sets `original` (it owns the line).
fn node_from_line(line: &str, escape: char, comments: Vec<String>) -> Result<Node, ParseErrorKind> {
    let trimmed = trim_go_space(line);
    let (keyword_original, rest) = match trimmed.find(is_sep) {
        Some(i) => (&trimmed[..i], trimmed[i..].trim_start_matches(is_sep)),
        None => (trimmed, ""),
    };
    let (args, flags) = extract_flags(rest, escape);
    let args = trim_go_space(args);
    let (keyword, keyword_original) = keyword_names(keyword_original);
    let mut node = Node {
        keyword,
        keyword_original,
        flags,
        args: Vec::new(),
        json: false,
        child: None,
        heredocs: Vec::new(),
        original: Arc::default(),
        start_line: 0,
        end_line: 0,
        comments,
    };
    match node.keyword.as_ref() {
        "add" | "copy" | "volume" => (node.args, node.json) = parse_maybe_json_to_list(args)?,
        "run" | "cmd" | "entrypoint" | "shell" => (node.args, node.json) = parse_maybe_json(args)?,
        "from" | "expose" => node.args = split_whitespace(args),
        "maintainer" | "stopsignal" | "user" | "workdir" => {
            if !args.is_empty() {
                node.args.push(args.to_string());
            }
        }
        "arg" => node.args = parse_words(args, escape).into_iter().map(str::to_string).collect(),
        "env" => node.args = parse_name_val(args, "ENV", escape)?,
        "label" => node.args = parse_name_val(args, "LABEL", escape)?,
        "healthcheck" => (node.args, node.json) = parse_healthcheck(args)?,
        "onbuild" => {
            if !args.is_empty() {
                let mut child = node_from_line(args, escape, Vec::new())?;
                child.original = Arc::from(args);
                node.child = Some(Box::new(child));
            }
        }
        // BuildKit's parser accepts unknown instructions (typed parsing rejects them).
        _ => node.args.push(String::new()),
    }
    Ok(node)
}

/// Known keywords, upper and lower case.
const KEYWORDS: &[(&str, &str)] = &[
    ("ADD", "add"),
    ("ARG", "arg"),
    ("CMD", "cmd"),
    ("COPY", "copy"),
    ("ENTRYPOINT", "entrypoint"),
    ("ENV", "env"),
    ("EXPOSE", "expose"),
    ("FROM", "from"),
    ("HEALTHCHECK", "healthcheck"),
    ("LABEL", "label"),
    ("MAINTAINER", "maintainer"),
    ("ONBUILD", "onbuild"),
    ("RUN", "run"),
    ("SHELL", "shell"),
    ("STOPSIGNAL", "stopsignal"),
    ("USER", "user"),
    ("VOLUME", "volume"),
    ("WORKDIR", "workdir"),
];

/// The lowercased keyword and the keyword as written. Known keywords (in
/// the usual spellings) are static, so nodes and the commands made from
/// them share them instead of allocating.
fn keyword_names(written: &str) -> (Cow<'static, str>, Cow<'static, str>) {
    match KEYWORDS.iter().find(|(upper, _)| upper.eq_ignore_ascii_case(written)) {
        Some(&(upper, lower)) => {
            let original = match written {
                w if w == upper => Cow::Borrowed(upper),
                w if w == lower => Cow::Borrowed(lower),
                w => Cow::Owned(w.to_string()),
            };
            (Cow::Borrowed(lower), original)
        }
        None => (Cow::Owned(written.to_ascii_lowercase()), Cow::Owned(written.to_string())),
    }
}

/// BuildKit's `extractBuilderFlags`: leading `--flag` words, quotes removed,
/// escapes applied; a bare `--` ends the flags. Returns (rest, flags).
fn extract_flags(line: &str, escape: char) -> (&str, Vec<String>) {
    // Separators, quotes and the escape character are all ASCII: scan bytes
    // and copy the runs between them.
    let is_space = |b: u8| b.is_ascii_whitespace() || b == b'\x0b';
    let esc = ascii_escape(escape);
    let bytes = line.as_bytes();
    let mut flags = Vec::new();
    let mut i = 0;
    loop {
        while bytes.get(i).is_some_and(|&b| is_space(b)) {
            i += 1;
        }
        if !line[i..].starts_with("--") {
            return (&line[i..], flags);
        }
        let mut word = String::new();
        let mut blank_ok = false;
        let mut quote = None;
        let mut run = i;
        while let Some(&b) = bytes.get(i) {
            match quote {
                None if is_space(b) => break,
                None if b == b'\'' || b == b'"' => {
                    word.push_str(&line[run..i]);
                    quote = Some(b);
                    blank_ok = true;
                    i += 1;
                    run = i;
                }
                Some(q) if b == q => {
                    word.push_str(&line[run..i]);
                    quote = None;
                    i += 1;
                    run = i;
                }
                // The escape is dropped and the next character kept as is.
                _ if b == esc => {
                    word.push_str(&line[run..i]);
                    run = i + 1;
                    i = bytes.get(i + 1).map_or(i + 1, |&next| i + 1 + utf8_width(next));
                }
                _ => i += 1,
            }
        }
        word.push_str(&line[run..i]);
        let at_end = i >= bytes.len();
        if word == "--" {
            // A bare `--` ends the flags.
            return (&line[i..], flags);
        }
        if blank_ok || !word.is_empty() {
            flags.push(word);
        }
        if at_end {
            return ("", flags);
        }
    }
}

/// The escape character as a byte. The escape directive allows only `\`
/// and `` ` ``; 0xff (never in UTF-8) stands for anything else.
fn ascii_escape(escape: char) -> u8 {
    debug_assert!(escape.is_ascii());
    if escape.is_ascii() { escape as u8 } else { 0xff }
}

/// Splits on runs of `[\t\v\f\r ]`.
fn split_whitespace(s: &str) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    s.split(is_sep).filter(|w| !w.is_empty()).map(str::to_string).collect()
}

enum JsonArgs {
    Strings(Vec<String>),
    NotStrings,
    NotJson,
}

/// A JSON array of strings, when `s` (leading whitespace ignored) is one.
fn parse_json_array(s: &str) -> JsonArgs {
    let s = trim_go_space_start(s);
    if !s.starts_with('[') {
        return JsonArgs::NotJson;
    }
    // Fast paths: the usual array of strings, without serde_json when no
    // string has escapes, else without building JSON values.
    if let Some(strings) = plain_json_strings(s) {
        return JsonArgs::Strings(strings);
    }
    if let Ok(strings) = serde_json::from_str::<Vec<String>>(s) {
        return JsonArgs::Strings(strings);
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(s) {
        Ok(values) => {
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                match v {
                    serde_json::Value::String(s) => out.push(s),
                    _ => return JsonArgs::NotStrings,
                }
            }
            JsonArgs::Strings(out)
        }
        Err(_) => JsonArgs::NotJson,
    }
}

/// `s` (starting with `[`) as a JSON array of strings without escapes or
/// control characters; None for anything else, valid JSON or not.
fn plain_json_strings(s: &str) -> Option<Vec<String>> {
    let bytes = s.as_bytes();
    let skip_ws = |mut i: usize| {
        while bytes.get(i).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
            i += 1;
        }
        i
    };
    let mut out = Vec::new();
    let mut i = skip_ws(1);
    if bytes.get(i) == Some(&b']') {
        i += 1;
    } else {
        loop {
            if bytes.get(i) != Some(&b'"') {
                return None;
            }
            let start = i + 1;
            let len = bytes[start..].iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
            if bytes[start + len] != b'"' {
                return None;
            }
            out.push(s[start..start + len].to_string());
            i = skip_ws(start + len + 1);
            match bytes.get(i) {
                Some(b',') => i = skip_ws(i + 1),
                Some(b']') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_ws(i) == bytes.len()).then_some(out)
}

/// RUN, CMD, ENTRYPOINT, SHELL: JSON array of strings, else the text verbatim.
fn parse_maybe_json(args: &str) -> Result<(Vec<String>, bool), ParseErrorKind> {
    if args.is_empty() {
        return Ok((Vec::new(), false));
    }
    match parse_json_array(args) {
        JsonArgs::Strings(v) => Ok((v, true)),
        JsonArgs::NotStrings => Err(ParseErrorKind::NotStringArray),
        JsonArgs::NotJson => Ok((vec![args.to_string()], false)),
    }
}

/// ADD, COPY, VOLUME: JSON array of strings, else whitespace-split words.
fn parse_maybe_json_to_list(args: &str) -> Result<(Vec<String>, bool), ParseErrorKind> {
    match parse_json_array(args) {
        JsonArgs::Strings(v) => Ok((v, true)),
        JsonArgs::NotStrings => Err(ParseErrorKind::NotStringArray),
        JsonArgs::NotJson => Ok((split_whitespace(args), false)),
    }
}

/// HEALTHCHECK: the type word (`CMD`, `NONE`) verbatim, then the command like CMD.
fn parse_healthcheck(args: &str) -> Result<(Vec<String>, bool), ParseErrorKind> {
    let sep = args.find(is_go_space).unwrap_or(args.len());
    if sep == 0 {
        return Ok((Vec::new(), false));
    }
    let (kind, rest) = args.split_at(sep);
    let (mut cmd, json) = parse_maybe_json(trim_go_space_start(rest))?;
    cmd.insert(0, kind.to_string());
    Ok((cmd, json))
}

/// ENV and LABEL: `k=v k2=v2` (three nodes per pair: key, value, `=`), or the
/// legacy `k value with spaces` (key, value, empty).
fn parse_name_val(args: &str, keyword: &'static str, escape: char) -> Result<Vec<String>, ParseErrorKind> {
    let words = parse_words(args, escape);
    let Some(first) = words.first() else { return Ok(Vec::new()) };
    if !first.contains('=') {
        return match args.find(is_sep) {
            Some(i) => {
                let value = args[i..].trim_start_matches(is_sep);
                Ok(vec![args[..i].to_string(), value.to_string(), String::new()])
            }
            None => Err(ParseErrorKind::KeyValueNeedsTwoArgs(keyword)),
        };
    }
    let mut out = Vec::with_capacity(words.len() * 3);
    for word in words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(ParseErrorKind::MissingEquals { word: word.to_string() });
        };
        out.push(k.to_string());
        out.push(v.to_string());
        out.push("=".to_string());
    }
    Ok(out)
}

/// BuildKit's `parseWords`: whitespace-separated words; quotes and escapes
/// are kept in the words but group characters (a quoted space does not split).
/// Words are therefore slices of the input, except that an escape character
/// at the very end of the input is dropped.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<&str> {
    // Quotes and the escape character are ASCII, so the scan is over bytes;
    // only whitespace needs a decoded character.
    let esc = ascii_escape(escape);
    let bytes = rest.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let (c, width) = char_at(rest, i);
        if is_go_space(c) {
            i += width;
            continue;
        }
        let start = i;
        let mut quote = None;
        loop {
            let Some(&b) = bytes.get(i) else {
                words.push(&rest[start..]);
                return words;
            };
            let escapes = b == esc && quote != Some(b'\'');
            if escapes {
                // The escape and the next character stay in the word; a
                // trailing escape is dropped.
                let Some(&next) = bytes.get(i + 1) else {
                    push_nonempty(&mut words, &rest[start..i]);
                    return words;
                };
                i += 1 + utf8_width(next);
                continue;
            }
            match quote {
                Some(q) => {
                    if b == q {
                        quote = None;
                    }
                    i += utf8_width(b);
                }
                None => {
                    let (c, width) = char_at(rest, i);
                    if is_go_space(c) {
                        words.push(&rest[start..i]);
                        i += width;
                        break;
                    }
                    if b == b'\'' || b == b'"' {
                        quote = Some(b);
                    }
                    i += width;
                }
            }
        }
    }
    words
}

/// The character starting at byte `i` of `s` (a character boundary) and its length.
fn char_at(s: &str, i: usize) -> (char, usize) {
    match s.as_bytes()[i] {
        b @ 0..=0x7f => (char::from(b), 1),
        _ => s[i..].chars().next().map_or(('\0', 1), |c| (c, c.len_utf8())),
    }
}

/// The length of the UTF-8 sequence a leading byte starts.
fn utf8_width(lead: u8) -> usize {
    match lead {
        0..=0xbf => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

fn push_nonempty<'a>(words: &mut Vec<&'a str>, word: &'a str) {
    if !word.is_empty() {
        words.push(word);
    }
}

/// Finds the heredocs a RUN/COPY/ADD line introduces (`<<EOF`, `<<-EOF`,
/// `3<<"EOF"`). Words are split the way BuildKit's raw-mode shell lexer
/// splits them: quotes and escapes kept, quoted whitespace does not split.
fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, ParseErrorKind> {
    let mut docs = Vec::new();
    for word in raw_shell_words(line) {
        if let Some(doc) = parse_heredoc_word(&word)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// `^(\d*)<<(-?)([^<]*)$`, then the delimiter with quotes removed.
fn parse_heredoc_word(word: &str) -> Result<Option<Heredoc>, ParseErrorKind> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let Some(rest) = word[digits..].strip_prefix("<<") else { return Ok(None) };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let file_descriptor = word[..digits].parse::<u32>().unwrap_or(0);
    let (name, quoted) = unquote_heredoc_name(rest)
        .map_err(|reason| ParseErrorKind::InvalidHeredoc { word: word.to_string(), reason })?;
    if name.is_empty() {
        return Ok(None);
    }
    Ok(Some(Heredoc { name, content: String::new(), expand: !quoted, chomp, file_descriptor }))
}

/// Removes shell quoting from a heredoc delimiter. Returns the name and
/// whether any part was quoted (which turns off expansion of the body).
fn unquote_heredoc_name(s: &str) -> Result<(String, bool), &'static str> {
    let mut out = String::with_capacity(s.len());
    let mut quoted = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => out.push(c),
                        None => return Err("unterminated single quote"),
                    }
                }
            }
            '"' => {
                quoted = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '$' | '\\')) => out.push(c),
                            Some(c) => {
                                out.push('\\');
                                out.push(c);
                            }
                            None => return Err("unterminated double quote"),
                        },
                        Some(c) => out.push(c),
                        None => return Err("unterminated double quote"),
                    }
                }
            }
            '\\' => {
                if let Some(c) = chars.next() {
                    out.push(c);
                }
            }
            c => out.push(c),
        }
    }
    Ok((out, quoted))
}

/// Splits on unquoted whitespace, keeping quote characters and escapes.
fn raw_shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if is_go_space(c) => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' | '"' => {
                in_word = true;
                word.push(c);
                while let Some(q) = chars.next() {
                    word.push(q);
                    if q == c {
                        break;
                    }
                    if q == '\\'
                        && c == '"'
                        && let Some(e) = chars.next()
                    {
                        word.push(e);
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(c);
                if let Some(e) = chars.next() {
                    word.push(e);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(src: &str) -> String {
        parse(src.as_bytes()).expect("parses").dump()
    }

    #[test]
    fn words_keep_quotes_and_escapes() {
        assert_eq!(parse_words(r#"abc="123 456" def"#, '\\'), vec![r#"abc="123 456""#, "def"]);
        assert_eq!(parse_words(r"a\ b  c", '\\'), vec![r"a\ b", "c"]);
        assert_eq!(parse_words(r#""a\"b" 'c\' d\"#, '\\'), vec![r#""a\"b""#, r"'c\'", "d"]);
        assert_eq!(parse_words("x \\", '\\'), vec!["x"]);
        assert_eq!(parse_words(r#"'unterminated x"#, '\\'), vec![r#"'unterminated x"#]);
        assert_eq!(parse_words("  ", '\\'), Vec::<&str>::new());
        assert_eq!(parse_words("a`  b`", '`'), vec!["a` ", "b"]);
    }

    #[test]
    fn newline_search() {
        for text in ["", "a", "\n", "abcdefg\n", "abcdefgh\n", "abcdefghijklmnopq\nr\n", "no newline at all here"] {
            assert_eq!(find_newline(text.as_bytes()), text.find('\n'), "{text:?}");
        }
        // A byte just above `\n` must not be taken for one.
        assert_eq!(find_newline(b"\x0b\x0b\x0b\x0b\x0b\x0b\x0b\n\x0b"), Some(7));
    }

    #[test]
    fn plain_json_fast_path() {
        let strings = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(plain_json_strings(r#"[ "a" , "b c"]  "#), strings(&["a", "b c"]));
        assert_eq!(plain_json_strings("[]"), strings(&[]));
        // Left to serde_json: escapes, non-strings, trailing text, bad syntax.
        for s in [r#"["a\"b"]"#, "[1]", r#"["a"] x"#, r#"["a",]"#, r#"["a""#, "[\"\t\"]"] {
            assert_eq!(plain_json_strings(s), None, "{s}");
        }
    }

    #[test]
    fn continuation_rules() {
        assert_eq!(trim_continuation("abc \\", '\\'), ("abc ", false));
        assert_eq!(trim_continuation("abc\\  \t", '\\'), ("abc", false));
        assert_eq!(trim_continuation("\\", '\\'), ("", false));
        assert_eq!(trim_continuation("abc\\\\", '\\'), ("abc\\\\", true));
        assert_eq!(trim_continuation("abc `", '`'), ("abc ", false));
        assert_eq!(trim_continuation("abc", '\\'), ("abc", true));
    }

    #[test]
    fn flags_and_double_dash() {
        assert_eq!(dump("COPY --a=1 -- --b c\n"), "(copy [\"--a=1\"] \"--b\" \"c\")\n");
        assert_eq!(dump("COPY --chown=\"a b\" x y\n"), "(copy [\"--chown=a b\"] \"x\" \"y\")\n");
        assert_eq!(
            dump("RUN --mount=type=cache,target=/x --network=none echo hi\n"),
            "(run [\"--mount=type=cache,target=/x\" \"--network=none\"] \"echo hi\")\n"
        );
    }

    #[test]
    fn heredocs_are_read_with_lines() {
        let src = "FROM x\nRUN <<EOF\necho $A\nEOF\nCOPY <<-'A' 3<<B /dst/\n\tone\n\tA\ntwo\nB\nRUN echo done\n";
        let ast = parse(src.as_bytes()).unwrap();
        let run = &ast.children[1];
        assert_eq!((run.start_line, run.end_line), (2, 4));
        assert_eq!(run.heredocs.len(), 1);
        assert_eq!(run.heredocs[0].content, "echo $A\n");
        assert!(run.heredocs[0].expand);
        let copy = &ast.children[2];
        assert_eq!((copy.start_line, copy.end_line), (5, 9));
        assert_eq!(copy.heredocs[0].name, "A");
        assert!(!copy.heredocs[0].expand);
        assert!(copy.heredocs[0].chomp);
        assert_eq!(copy.heredocs[0].content, "one\n");
        assert_eq!(copy.heredocs[1].file_descriptor, 3);
        assert_eq!(copy.heredocs[1].content, "two\n");
        assert_eq!(copy.args, vec!["<<-'A'", "3<<B", "/dst/"]);
        assert_eq!(ast.children[3].start_line, 10);
    }

    #[test]
    fn heredoc_in_middle_of_command_and_onbuild() {
        let src = "FROM x\nRUN python3 <<EOF > /out\nprint(1)\nEOF\nONBUILD RUN <<X\nhi\nX\n";
        let ast = parse(src.as_bytes()).unwrap();
        assert_eq!(ast.children[1].heredocs[0].content, "print(1)\n");
        let onbuild = &ast.children[2];
        assert_eq!(onbuild.child.as_ref().unwrap().heredocs[0].content, "hi\n");
        assert_eq!((onbuild.start_line, onbuild.end_line), (5, 7));
    }

    #[test]
    fn heredoc_not_in_json_or_quotes() {
        let ast = parse(b"FROM x\nRUN [\"echo\", \"<<EOF\"]\nRUN echo \"<<EOF\"\n").unwrap();
        assert!(ast.children.iter().all(|n| n.heredocs.is_empty()));
    }

    #[test]
    fn unterminated_heredoc_is_an_error() {
        let err = parse(b"FROM x\nRUN <<EOF\necho\n").unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::UnterminatedHeredoc("EOF".into()).into());
        assert_eq!(err.line, 2);
    }

    #[test]
    fn directives() {
        let ast = parse(b"# syntax=docker/dockerfile:1\n#  Escape = `\n# check=skip=all\nFROM x\n").unwrap();
        assert_eq!(ast.escape, '`');
        assert_eq!(ast.directives.syntax.as_ref().unwrap().value, "docker/dockerfile:1");
        assert_eq!(ast.directives.check.as_ref().unwrap().line, 3);
        let err = parse(b"# escape=\\\n# escape=`\nFROM x\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(parse(b"# escape=x\nFROM x\n").is_err());
        // Not a directive once an instruction or comment came first.
        let ast = parse(b"# hello\n# escape=`\nFROM x\n").unwrap();
        assert_eq!(ast.escape, '\\');
    }

    #[test]
    fn bom_and_crlf() {
        assert_eq!(dump("\u{feff}FROM x\r\nRUN a \\\r\n  b\r\n"), "(from \"x\")\n(run \"a   b\")\n");
    }

    #[test]
    fn empty_continuation_warns() {
        let ast = parse(b"FROM x\nRUN a \\\n\n  b\n").unwrap();
        assert_eq!(ast.warnings.len(), 1);
        assert_eq!(ast.warnings[0].rule, "NoEmptyContinuation");
        assert_eq!(ast.children[1].end_line, 4);
    }

    #[test]
    fn line_too_long() {
        let long = format!("FROM x\nRUN {}\n", "a".repeat(MAX_LINE_LEN));
        let err = parse(long.as_bytes()).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::LineTooLong.into());
        assert_eq!(err.line, 2);
    }

    #[test]
    fn errors_carry_lines() {
        let err = parse(b"FROM x\n\nENV A\n").unwrap_err();
        assert_eq!(err.line, 3);
        let err = parse(b"FROM x\nCMD [1]\n").unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::NotStringArray.into());
    }
}
