//! `.dockerignore` with Docker's semantics (moby/patternmatcher and its
//! `ignorefile` reader), not gitignore's:
//!
//! - patterns are anchored at the context root (`foo` is only `./foo`);
//! - each line is trimmed and cleaned like Go's `filepath.Clean`; a leading
//!   `/` is dropped (trailing ones vanish in the cleaning); lines starting
//!   with `#` are comments and blank lines are ignored;
//! - `!` marks an exception; the last matching line wins;
//! - `*` and `?` never cross `/`, `**` matches any number of directories,
//!   `[...]` classes follow Go's `filepath.Match` (negated with `^`), `\`
//!   escapes the next character; there are no `{a,b}` braces;
//! - a pattern that matches a parent directory matches everything below it
//!   (`MatchesOrParentMatches`).
//!
//! patternmatcher translates each pattern to a Go regular expression; this
//! module compiles the same translation to a small NFA over code points, so
//! `**`, `*`, `?` and `.` behave exactly as the regex does (Go's `.` does not
//! match `\n`), and the exact/prefix/suffix fast paths compare bytes as Go
//! does. Deliberate differences, all on patterns Docker mishandles: inside a
//! `[...]` class, `*`, `?` and escaped letters are literal characters (as
//! `filepath.Match` documents; the regex translation garbles them), an
//! escaped letter outside a class is the letter itself (not a regex escape
//! such as `\d`), and a class whose range is reversed (`[z-a]`) is rejected
//! when the file is parsed instead of failing the build at the first match.

use std::fs;
use std::io;
use std::path::Path;

use super::error::{ContextError, Result};
use super::gomatch::{self, decode_rune};

/// How a pattern is matched, as patternmatcher classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MatchKind {
    /// The path equals the pattern.
    Exact,
    /// The path starts with the pattern minus its trailing `**`.
    Prefix,
    /// The pattern starts with `**`: the path ends with the rest.
    Suffix,
    /// Anything else: the regex translation.
    Regexp,
}

/// One element of the regex translation of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// One code point.
    Lit(u32),
    /// `?` → `[^/]`.
    Any,
    /// `[...]`, as `filepath.Match` reads it.
    Class { negated: bool, ranges: Vec<(u32, u32)> },
    /// `*` → `[^/]*`.
    Star,
    /// Trailing `**` → `.*` (`.` stops at `\n`).
    DotStar,
    /// `**` (and `**/`) elsewhere → `(.*/)?`.
    OptDirs,
}

#[derive(Debug, Clone)]
struct Pattern {
    /// The cleaned pattern, without its `!`.
    cleaned: String,
    exclusion: bool,
    kind: MatchKind,
    toks: Vec<Tok>,
}

/// A parsed `.dockerignore`: decides which context paths are excluded.
#[derive(Debug, Clone, Default)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl IgnoreMatcher {
    /// A matcher that excludes nothing.
    pub fn empty() -> IgnoreMatcher {
        IgnoreMatcher::default()
    }

    /// Parses the text of a `.dockerignore` file. Errors name the line.
    pub fn parse(text: &str) -> Result<IgnoreMatcher> {
        IgnoreMatcher::parse_named(text, ".dockerignore")
    }

    /// Like [`IgnoreMatcher::parse`], naming the file `file` in errors.
    pub fn parse_named(text: &str, file: &str) -> Result<IgnoreMatcher> {
        let mut lines = Vec::new();
        for (idx, raw) in text.split('\n').enumerate() {
            // bufio.ScanLines drops a trailing \r.
            let mut line = raw.strip_suffix('\r').unwrap_or(raw);
            if idx == 0 {
                line = line.strip_prefix('\u{feff}').unwrap_or(line);
            }
            // Comments are recognised before trimming, as Docker does.
            if line.starts_with('#') {
                continue;
            }
            let mut pattern = line.trim();
            if pattern.is_empty() {
                continue;
            }
            let invert = pattern.starts_with('!');
            if invert {
                pattern = pattern[1..].trim();
            }
            let mut cleaned = String::new();
            if !pattern.is_empty() {
                cleaned = clean_str(pattern);
                if cleaned.len() > 1 && cleaned.starts_with('/') {
                    cleaned.remove(0);
                }
            }
            if invert {
                cleaned.insert(0, '!');
            }
            lines.push((idx + 1, line.trim().to_string(), cleaned));
        }
        let mut matcher = IgnoreMatcher::default();
        for (line, written, pattern) in lines {
            matcher.push(&pattern).map_err(|reason| ContextError::InvalidIgnorePattern {
                file: file.to_string(),
                line,
                pattern: written,
                reason,
            })?;
        }
        Ok(matcher)
    }

    /// Builds a matcher from patterns as patternmatcher's `New` takes them
    /// (already read from a file: no comments, no leading-`/` stripping).
    pub fn from_patterns<I, S>(patterns: I) -> Result<IgnoreMatcher>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut matcher = IgnoreMatcher::default();
        for (idx, p) in patterns.into_iter().enumerate() {
            let p = p.as_ref();
            matcher.push(p).map_err(|reason| ContextError::InvalidIgnorePattern {
                file: "patterns".to_string(),
                line: idx + 1,
                pattern: p.trim().to_string(),
                reason,
            })?;
        }
        Ok(matcher)
    }

    /// patternmatcher's `New` for one pattern.
    fn push(&mut self, p: &str) -> Result<(), String> {
        let p = p.trim();
        if p.is_empty() {
            return Ok(());
        }
        let mut p = clean_str(p);
        let exclusion = p.starts_with('!');
        if exclusion {
            if p.len() == 1 {
                return Err("illegal exclusion pattern: \"!\"".to_string());
            }
            p.remove(0);
            self.exclusions = true;
        }
        gomatch::go_match(p.as_bytes(), b".").map_err(|e| e.to_string())?;
        let (kind, toks) = compile(&p)?;
        self.patterns.push(Pattern { cleaned: p, exclusion, kind, toks });
        Ok(())
    }

    /// Number of patterns.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// True when there are no patterns (nothing is excluded).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// True when some pattern is a `!` exception.
    pub fn has_exceptions(&self) -> bool {
        self.exclusions
    }

    /// The patterns as cleaned, each with whether it is a `!` exception.
    pub fn patterns(&self) -> impl Iterator<Item = (&str, bool)> {
        self.patterns.iter().map(|p| (p.cleaned.as_str(), p.exclusion))
    }

    /// Whether `rel_path` (relative to the context root, `/`-separated) is
    /// excluded from the context: patternmatcher's `MatchesOrParentMatches`.
    /// Docker's rules do not depend on whether the path is a directory;
    /// `is_dir` is accepted for callers' clarity and does not change the
    /// answer. The root itself (`.`, ``) is never excluded.
    pub fn is_excluded(&self, rel_path: &str, is_dir: bool) -> bool {
        let _ = is_dir;
        self.is_excluded_bytes(rel_path.as_bytes())
    }

    /// [`IgnoreMatcher::is_excluded`] on raw bytes (non-UTF-8 names).
    pub fn is_excluded_bytes(&self, rel_path: &[u8]) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let file = normalize(rel_path);
        if file == b"." {
            return false;
        }
        let parent_end = file.iter().rposition(|&b| b == b'/');
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let mut m = p.matches(&file);
            if !m && let Some(end) = parent_end {
                // The parent directories, shortest first.
                let parent = &file[..end];
                m = parent
                    .iter()
                    .enumerate()
                    .filter(|&(_, &b)| b == b'/')
                    .map(|(i, _)| &parent[..i])
                    .chain(std::iter::once(parent))
                    .any(|dir| p.matches(dir));
            }
            if m {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// Whether a walk can skip directory `rel_dir` entirely: it is excluded
    /// and no `!` exception can match anything below it, so nothing inside
    /// can be re-included.
    pub fn can_skip_dir(&self, rel_dir: &str) -> bool {
        self.can_skip_dir_bytes(rel_dir.as_bytes())
    }

    /// [`IgnoreMatcher::can_skip_dir`] on raw bytes.
    pub fn can_skip_dir_bytes(&self, rel_dir: &[u8]) -> bool {
        self.is_excluded_bytes(rel_dir) && !self.exception_may_match_under(&normalize(rel_dir))
    }

    /// Whether some `!` pattern could match a path strictly below `dir`
    /// (a cleaned relative path). Conservative: may say yes needlessly.
    pub(crate) fn exception_may_match_under(&self, dir: &[u8]) -> bool {
        if !self.exclusions {
            return false;
        }
        let mut prefix = dir.to_vec();
        prefix.push(b'/');
        self.patterns.iter().any(|p| p.exclusion && p.may_match_with_prefix(&prefix))
    }

    /// Per-pattern state of the context root for [`IgnoreMatcher::eval_child`].
    pub(crate) fn root_state(&self) -> MatchState {
        if self.patterns.len() <= 128 {
            MatchState::Small(0)
        } else {
            MatchState::Large(vec![false; self.patterns.len()].into_boxed_slice())
        }
    }

    /// Incremental `MatchesOrParentMatches` for walks: `path` is a cleaned
    /// relative path whose parent directory has state `parent` (pattern `i`
    /// matches the parent or one of its ancestors). Returns whether `path`
    /// is excluded and its own state.
    pub(crate) fn eval_child(&self, path: &[u8], parent: &MatchState) -> (bool, MatchState) {
        let mut state = parent.clone();
        let mut matched = false;
        for (i, p) in self.patterns.iter().enumerate() {
            let m = state.get(i) || p.matches(path);
            if m {
                state.set(i);
                matched = !p.exclusion;
            }
        }
        (matched, state)
    }
}

/// Which patterns match a directory or one of its ancestors (bit `i` for
/// pattern `i`); inline for up to 128 patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MatchState {
    Small(u128),
    Large(Box<[bool]>),
}

impl MatchState {
    fn get(&self, i: usize) -> bool {
        match self {
            MatchState::Small(bits) => bits & (1u128 << i) != 0,
            MatchState::Large(v) => v[i],
        }
    }

    fn set(&mut self, i: usize) {
        match self {
            MatchState::Small(bits) => *bits |= 1u128 << i,
            MatchState::Large(v) => v[i] = true,
        }
    }
}

/// Cleans a relative path for matching: Go `Clean`, leading `/` removed.
fn normalize(path: &[u8]) -> Vec<u8> {
    let mut cleaned = gomatch::clean(path);
    while cleaned.len() > 1 && cleaned[0] == b'/' {
        cleaned.remove(0);
    }
    if cleaned == b"/" {
        cleaned = b".".to_vec();
    }
    cleaned
}

fn clean_str(s: &str) -> String {
    // Cleaning only removes whole components and separators, so valid UTF-8
    // stays valid.
    String::from_utf8(gomatch::clean(s.as_bytes())).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into())
}

/// patternmatcher's `compile`: classifies the pattern and translates it.
fn compile(pattern: &str) -> Result<(MatchKind, Vec<Tok>), String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut kind = MatchKind::Exact;
    let mut toks = Vec::new();
    let mut i = 0;
    let mut iteration = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                // Treat **/ as ** so eat the "/".
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    // "**" at the end: accept everything that follows.
                    kind = if kind == MatchKind::Exact { MatchKind::Prefix } else { MatchKind::Regexp };
                    toks.push(Tok::DotStar);
                } else {
                    toks.push(Tok::OptDirs);
                    kind = MatchKind::Regexp;
                }
                if iteration == 0 {
                    kind = MatchKind::Suffix;
                }
            }
            '*' => {
                toks.push(Tok::Star);
                kind = MatchKind::Regexp;
            }
            '?' => {
                toks.push(Tok::Any);
                kind = MatchKind::Regexp;
            }
            '\\' => {
                if let Some(&next) = chars.get(i) {
                    i += 1;
                    toks.push(Tok::Lit(u32::from(next)));
                    kind = MatchKind::Regexp;
                } else {
                    toks.push(Tok::Lit(u32::from('\\')));
                }
            }
            '[' => {
                let (tok, used) = parse_class(&chars[i..])?;
                i += used;
                toks.push(tok);
                kind = MatchKind::Regexp;
            }
            ']' => {
                toks.push(Tok::Lit(u32::from(']')));
                kind = MatchKind::Regexp;
            }
            c => toks.push(Tok::Lit(u32::from(c))),
        }
        iteration += 1;
    }
    Ok((kind, toks))
}

/// Parses a `filepath.Match` character class after its `[`; returns the
/// token and the number of chars used (including the closing `]`).
fn parse_class(chars: &[char]) -> Result<(Tok, usize), String> {
    let bad = || "syntax error in pattern".to_string();
    let mut i = 0;
    let negated = chars.first() == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let get_esc = |i: &mut usize| -> Result<char, String> {
        let mut c = *chars.get(*i).ok_or_else(bad)?;
        if c == '-' || c == ']' {
            return Err(bad());
        }
        if c == '\\' {
            *i += 1;
            c = *chars.get(*i).ok_or_else(bad)?;
        }
        *i += 1;
        Ok(c)
    };
    loop {
        if chars.get(i) == Some(&']') && !ranges.is_empty() {
            i += 1;
            break;
        }
        let lo = get_esc(&mut i)?;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            i += 1;
            hi = get_esc(&mut i)?;
        }
        if lo > hi {
            return Err(format!("invalid character class range: {lo}-{hi}"));
        }
        ranges.push((u32::from(lo), u32::from(hi)));
    }
    Ok((Tok::Class { negated, ranges }, i))
}

impl Pattern {
    /// patternmatcher's `Pattern.match` on a cleaned relative path.
    fn matches(&self, path: &[u8]) -> bool {
        let pat = self.cleaned.as_bytes();
        match self.kind {
            MatchKind::Exact => path == pat,
            MatchKind::Prefix => path.starts_with(&pat[..pat.len() - 2]),
            MatchKind::Suffix => {
                let suffix = &pat[2..];
                path.ends_with(suffix) || (suffix.first() == Some(&b'/') && path == &suffix[1..])
            }
            MatchKind::Regexp => {
                let mut nfa = Nfa::new(&self.toks);
                let mut rest = path;
                while !rest.is_empty() {
                    let (c, n) = decode_rune(rest);
                    rest = &rest[n..];
                    if !nfa.step(c) {
                        return false;
                    }
                }
                nfa.accepts()
            }
        }
    }

    /// Whether some path starting with `prefix` could match.
    fn may_match_with_prefix(&self, prefix: &[u8]) -> bool {
        let pat = self.cleaned.as_bytes();
        match self.kind {
            MatchKind::Exact => pat.starts_with(prefix),
            MatchKind::Prefix => {
                let lit = &pat[..pat.len() - 2];
                lit.starts_with(prefix) || prefix.starts_with(lit)
            }
            MatchKind::Suffix => true,
            MatchKind::Regexp => {
                let mut nfa = Nfa::new(&self.toks);
                let mut rest = prefix;
                while !rest.is_empty() {
                    let (c, n) = decode_rune(rest);
                    rest = &rest[n..];
                    if !nfa.step(c) {
                        return false;
                    }
                }
                true
            }
        }
    }
}

/// Thompson simulation of a translated pattern. States `0..=n` are "before
/// token i" (`n` accepts); state `n + 1 + i` is "inside the `.*` of the
/// `(.*/)?` at token i".
struct Nfa<'a> {
    toks: &'a [Tok],
    cur: Vec<u64>,
    next: Vec<u64>,
    stack: Vec<usize>,
}

impl<'a> Nfa<'a> {
    fn new(toks: &'a [Tok]) -> Nfa<'a> {
        let states = 2 * toks.len() + 1;
        let words = states.div_ceil(64);
        let mut nfa = Nfa { toks, cur: vec![0; words], next: vec![0; words], stack: Vec::new() };
        let mut cur = std::mem::take(&mut nfa.cur);
        nfa.add(&mut cur, 0);
        nfa.cur = cur;
        nfa
    }

    fn add(&mut self, set: &mut [u64], state: usize) {
        let n = self.toks.len();
        self.stack.push(state);
        while let Some(s) = self.stack.pop() {
            let (w, b) = (s / 64, 1u64 << (s % 64));
            if set[w] & b != 0 {
                continue;
            }
            set[w] |= b;
            if s < n {
                match self.toks[s] {
                    Tok::Star | Tok::DotStar => self.stack.push(s + 1),
                    Tok::OptDirs => {
                        self.stack.push(s + 1);
                        self.stack.push(n + 1 + s);
                    }
                    _ => {}
                }
            }
        }
    }

    /// Consumes one code point; false when no state is left.
    fn step(&mut self, c: u32) -> bool {
        let n = self.toks.len();
        let slash = u32::from(b'/');
        let newline = u32::from(b'\n');
        let mut next = std::mem::take(&mut self.next);
        next.iter_mut().for_each(|w| *w = 0);
        let mut any = false;
        for w in 0..self.cur.len() {
            let mut bits = self.cur[w];
            while bits != 0 {
                let s = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if s < n {
                    let target = match &self.toks[s] {
                        Tok::Lit(l) => (c == *l).then_some(s + 1),
                        Tok::Any => (c != slash).then_some(s + 1),
                        Tok::Class { negated, ranges } => {
                            let inside = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                            (inside != *negated).then_some(s + 1)
                        }
                        Tok::Star => (c != slash).then_some(s),
                        Tok::DotStar => (c != newline).then_some(s),
                        Tok::OptDirs => None,
                    };
                    if let Some(t) = target {
                        self.add(&mut next, t);
                        any = true;
                    }
                } else if s > n {
                    let i = s - n - 1;
                    if c != newline {
                        self.add(&mut next, s);
                        any = true;
                    }
                    if c == slash {
                        self.add(&mut next, i + 1);
                        any = true;
                    }
                }
            }
        }
        self.next = std::mem::replace(&mut self.cur, next);
        any
    }

    fn accepts(&self) -> bool {
        let n = self.toks.len();
        self.cur[n / 64] & (1u64 << (n % 64)) != 0
    }
}

/// Loads the ignore rules for a build: `<Dockerfile>.dockerignore` next to
/// the Dockerfile when it exists, else `<context>/.dockerignore`, else none.
pub fn load_ignore(context: &Path, dockerfile: Option<&Path>) -> Result<IgnoreMatcher> {
    let mut candidates = Vec::new();
    if let Some(df) = dockerfile
        && let Some(name) = df.file_name()
    {
        let mut ignore_name = name.to_os_string();
        ignore_name.push(".dockerignore");
        candidates.push(df.with_file_name(ignore_name));
    }
    candidates.push(context.join(".dockerignore"));
    for path in candidates {
        match fs::read(&path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                return IgnoreMatcher::parse_named(&text, &path.display().to_string());
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(ContextError::io("read", path, e)),
        }
    }
    Ok(IgnoreMatcher::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Want {
        Fail,
        Exact,
        Inexact,
    }
    use Want::*;

    fn single(pattern: &str) -> IgnoreMatcher {
        IgnoreMatcher::from_patterns([pattern]).unwrap_or_else(|e| panic!("{pattern:?}: {e}"))
    }

    /// `MatchesOrParentMatches` without the top-level cleaning, as the
    /// patternmatcher tests call the method.
    fn or_parent(m: &IgnoreMatcher, file: &str) -> bool {
        let file = file.as_bytes();
        let parent = gomatch::dir(file);
        let mut matched = false;
        for p in &m.patterns {
            if p.exclusion != matched {
                continue;
            }
            let mut hit = p.matches(file);
            if !hit && parent != b"." {
                let dirs: Vec<&[u8]> = parent.split(|&b| b == b'/').collect();
                for i in 0..dirs.len() {
                    if p.matches(&dirs[..=i].join(&b'/')) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }

    fn exact(m: &IgnoreMatcher, file: &str) -> bool {
        let mut matched = false;
        for p in &m.patterns {
            if p.exclusion != matched {
                continue;
            }
            if p.matches(file.as_bytes()) {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// patternmatcher_test.go `TestMatches`.
    const MATCHES: &[(&str, &str, Want)] = &[
        ("**", "file", Exact),
        ("**", "file/", Exact),
        ("**/", "file", Exact),
        ("**/", "file/", Exact),
        ("**", "/", Exact),
        ("**/", "/", Exact),
        ("**", "dir/file", Exact),
        ("**/", "dir/file", Exact),
        ("**", "dir/file/", Exact),
        ("**/", "dir/file/", Exact),
        ("**/**", "dir/file", Exact),
        ("**/**", "dir/file/", Exact),
        ("dir/**", "dir/file", Exact),
        ("dir/**", "dir/file/", Exact),
        ("dir/**", "dir/dir2/file", Exact),
        ("dir/**", "dir/dir2/file/", Exact),
        ("**/dir", "dir", Exact),
        ("**/dir", "dir/file", Inexact),
        ("**/dir2/*", "dir/dir2/file", Exact),
        ("**/dir2/*", "dir/dir2/file/", Inexact),
        ("**/dir2/**", "dir/dir2/dir3/file", Exact),
        ("**/dir2/**", "dir/dir2/dir3/file/", Exact),
        ("**file", "file", Exact),
        ("**file", "dir/file", Exact),
        ("**/file", "dir/file", Exact),
        ("**file", "dir/dir/file", Exact),
        ("**/file", "dir/dir/file", Exact),
        ("**/file*", "dir/dir/file", Exact),
        ("**/file*", "dir/dir/file.txt", Exact),
        ("**/file*txt", "dir/dir/file.txt", Exact),
        ("**/file*.txt", "dir/dir/file.txt", Exact),
        ("**/file*.txt*", "dir/dir/file.txt", Exact),
        ("**/**/*.txt", "dir/dir/file.txt", Exact),
        ("**/**/*.txt2", "dir/dir/file.txt", Fail),
        ("**/*.txt", "file.txt", Exact),
        ("**/**/*.txt", "file.txt", Exact),
        ("a**/*.txt", "a/file.txt", Exact),
        ("a**/*.txt", "a/dir/file.txt", Exact),
        ("a**/*.txt", "a/dir/dir/file.txt", Exact),
        ("a/*.txt", "a/dir/file.txt", Fail),
        ("a/*.txt", "a/file.txt", Exact),
        ("a/*.txt**", "a/file.txt", Exact),
        ("a[b-d]e", "ae", Fail),
        ("a[b-d]e", "ace", Exact),
        ("a[b-d]e", "aae", Fail),
        ("a[^b-d]e", "aze", Exact),
        (".*", ".foo", Exact),
        (".*", "foo", Fail),
        ("abc.def", "abcdef", Fail),
        ("abc.def", "abc.def", Exact),
        ("abc.def", "abcZdef", Fail),
        ("abc?def", "abcZdef", Exact),
        ("abc?def", "abcdef", Fail),
        ("**/foo/bar", "foo/bar", Exact),
        ("**/foo/bar", "dir/foo/bar", Exact),
        ("**/foo/bar", "dir/dir2/foo/bar", Exact),
        ("abc/**", "abc", Fail),
        ("abc/**", "abc/def", Exact),
        ("abc/**", "abc/def/ghi", Exact),
        ("**/.foo", ".foo", Exact),
        ("**/.foo", "bar.foo", Fail),
        ("a(b)c/def", "a(b)c/def", Exact),
        ("a(b)c/def", "a(b)c/xyz", Fail),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", Exact),
        (
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            Exact,
        ),
        ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", Exact),
        ("a\\\\", "a\\", Exact),
        ("a\\*b", "a*b", Exact),
    ];

    const MULTI: &[(&[&str], &str, Want)] = &[
        (&["**", "!util/docker/web"], "util/docker/web/foo", Fail),
        (&["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", Exact),
        (
            &["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            Fail,
        ),
        (&["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", Fail),
    ];

    #[test]
    fn matches_exact_table() {
        for &(pattern, text, want) in MATCHES {
            let m = single(pattern);
            assert_eq!(exact(&m, text), want == Exact, "MatchesExact(pattern={pattern:?} text={text:?})");
        }
    }

    #[test]
    fn matches_or_parent_matches_table() {
        for &(pattern, text, want) in MATCHES {
            let m = single(pattern);
            assert_eq!(or_parent(&m, text), want != Fail, "MatchesOrParentMatches(pattern={pattern:?} text={text:?})");
        }
        for &(patterns, text, want) in MULTI {
            let m = IgnoreMatcher::from_patterns(patterns).unwrap();
            assert_eq!(or_parent(&m, text), want != Fail, "patterns={patterns:?} text={text:?}");
        }
    }

    #[test]
    fn public_is_excluded_agrees_with_table() {
        for &(pattern, text, want) in MATCHES {
            let m = single(pattern);
            // The public entry point cleans the path first (trailing slashes go).
            let cleaned = String::from_utf8(normalize(text.as_bytes())).unwrap();
            if cleaned == "." {
                assert!(!m.is_excluded(text, false));
                continue;
            }
            assert_eq!(m.is_excluded(text, false), or_parent(&m, &cleaned), "pattern={pattern:?} text={text:?}");
            let _ = want;
        }
    }

    #[test]
    fn incremental_eval_agrees_with_or_parent() {
        let sets: &[&[&str]] = &[
            &["**", "!util/docker/web"],
            &["**", "!util/docker/web", "util/docker/web/foo"],
            &["docs", "!docs/README.md"],
            &["*/b", "!a/b/keep*", "a/b/keep2"],
            &["a/**/c", "!a/x/**"],
        ];
        let paths = [
            "util",
            "util/docker",
            "util/docker/web",
            "util/docker/web/foo",
            "docs",
            "docs/README.md",
            "docs/x",
            "a",
            "a/b",
            "a/b/keep1",
            "a/b/keep2",
            "a/b/other",
            "a/x",
            "a/x/c",
            "a/y/c",
            "a/y/c/d",
        ];
        for patterns in sets {
            let m = IgnoreMatcher::from_patterns(*patterns).unwrap();
            for path in paths {
                let mut state = m.root_state();
                let mut excluded = false;
                let comps: Vec<&str> = path.split('/').collect();
                for i in 0..comps.len() {
                    let prefix = comps[..=i].join("/");
                    (excluded, state) = m.eval_child(prefix.as_bytes(), &state);
                }
                assert_eq!(excluded, m.is_excluded(path, false), "patterns={patterns:?} path={path:?}");
            }
        }
    }

    /// patternmatcher_test.go `TestMatch`: Go's filepath.Match table run
    /// through the (deprecated) `Matches`, which for these cases agrees with
    /// `MatchesOrParentMatches`.
    #[test]
    fn go_match_table_through_matcher() {
        let cases: &[(&str, &str, Result<bool, ()>)] = &[
            ("abc", "abc", Ok(true)),
            ("*", "abc", Ok(true)),
            ("*c", "abc", Ok(true)),
            ("a*", "a", Ok(true)),
            ("a*", "abc", Ok(true)),
            ("a*", "ab/c", Ok(true)),
            ("a*/b", "abc/b", Ok(true)),
            ("a*/b", "a/c/b", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Ok(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Ok(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Ok(false)),
            ("ab[c]", "abc", Ok(true)),
            ("ab[b-d]", "abc", Ok(true)),
            ("ab[e-g]", "abc", Ok(false)),
            ("ab[^c]", "abc", Ok(false)),
            ("ab[^b-d]", "abc", Ok(false)),
            ("ab[^e-g]", "abc", Ok(true)),
            ("a\\*b", "a*b", Ok(true)),
            ("a\\*b", "ab", Ok(false)),
            ("a?b", "a☺b", Ok(true)),
            ("a[^a]b", "a☺b", Ok(true)),
            ("a???b", "a☺b", Ok(false)),
            ("a[^a][^a][^a]b", "a☺b", Ok(false)),
            ("[a-ζ]*", "α", Ok(true)),
            ("*[a-ζ]", "A", Ok(false)),
            ("a?b", "a/b", Ok(false)),
            ("a*b", "a/b", Ok(false)),
            ("[\\]a]", "]", Ok(true)),
            ("[\\-]", "-", Ok(true)),
            ("[x\\-]", "x", Ok(true)),
            ("[x\\-]", "-", Ok(true)),
            ("[x\\-]", "z", Ok(false)),
            ("[\\-x]", "x", Ok(true)),
            ("[\\-x]", "-", Ok(true)),
            ("[\\-x]", "a", Ok(false)),
            ("[]a]", "]", Err(())),
            ("[-]", "-", Err(())),
            ("[x-]", "x", Err(())),
            ("[x-]", "-", Err(())),
            ("[x-]", "z", Err(())),
            ("[-x]", "x", Err(())),
            ("[-x]", "-", Err(())),
            ("[-x]", "a", Err(())),
            ("\\", "a", Err(())),
            ("[a-b-c]", "a", Err(())),
            ("[", "a", Err(())),
            ("[^", "a", Err(())),
            ("[^bc", "a", Err(())),
            ("a[", "a", Err(())),
            ("a[", "ab", Err(())),
            ("*x", "xxx", Ok(true)),
        ];
        for &(pattern, s, want) in cases {
            let got = IgnoreMatcher::from_patterns([pattern]).map(|m| m.is_excluded(s, false)).map_err(|_| ());
            assert_eq!(got, want, "Match({pattern:?}, {s:?})");
        }
    }

    /// patternmatcher_test.go `TestCompile`: the match type of each pattern.
    #[test]
    fn compile_kinds() {
        use MatchKind::*;
        let cases = [
            ("*", Regexp),
            ("file*", Regexp),
            ("*file", Regexp),
            ("a*/b", Regexp),
            ("**", Suffix),
            ("**/**", Regexp),
            ("dir/**", Prefix),
            ("**/dir", Suffix),
            ("**/dir2/*", Regexp),
            ("**/dir2/**", Regexp),
            ("**file", Suffix),
            ("**/file*txt", Regexp),
            ("**/**/*.txt", Regexp),
            ("a[b-d]e", Regexp),
            (".*", Regexp),
            ("abc.def", Exact),
            ("abc?def", Regexp),
            ("**/foo/bar", Suffix),
            ("a(b)c/def", Exact),
            ("a.|)$(}+{bc", Exact),
            ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", Exact),
        ];
        for (pattern, kind) in cases {
            let m = single(pattern);
            assert_eq!(m.patterns[0].kind, kind, "{pattern:?}");
        }
    }

    #[test]
    fn compile_tokens_follow_regex_translation() {
        // `**/**/*.txt` → ^(.*/)?(.*/)?[^/]*\.txt$
        let m = single("**/**/*.txt");
        let mut want = vec![Tok::OptDirs, Tok::OptDirs, Tok::Star];
        want.extend(".txt".chars().map(|c| Tok::Lit(u32::from(c))));
        assert_eq!(m.patterns[0].toks, want);
        // `**/dir2/**` → ^(.*/)?dir2/.*$
        let m = single("**/dir2/**");
        let mut want = vec![Tok::OptDirs];
        want.extend("dir2/".chars().map(|c| Tok::Lit(u32::from(c))));
        want.push(Tok::DotStar);
        assert_eq!(m.patterns[0].toks, want);
    }

    #[test]
    fn regex_dot_does_not_match_newline_but_classes_do() {
        // Regexp kind: `(.*/)?` stops at a newline, `[^/]*` does not.
        let m = single("**/x*");
        assert!(m.is_excluded("a/xy", false));
        assert!(!m.is_excluded("a\nb/xy", false));
        assert!(m.is_excluded("a/x\ny", false));
        // Suffix kind compares bytes: newlines are fine.
        let m = single("**/x");
        assert!(m.is_excluded("a\nb/x", false));
    }

    #[test]
    fn exclusions_flag_and_single_bang() {
        let m = IgnoreMatcher::from_patterns(["docs", "!docs/README.md"]).unwrap();
        assert!(m.has_exceptions());
        let m = IgnoreMatcher::from_patterns(["docs", "  !docs/README.md"]).unwrap();
        assert!(m.has_exceptions());
        let m = IgnoreMatcher::from_patterns(["docs", "!docs/README.md  "]).unwrap();
        assert!(m.has_exceptions());
        let m = IgnoreMatcher::from_patterns(["docs", "config", ""]).unwrap();
        assert_eq!(m.len(), 2);
        let err = IgnoreMatcher::from_patterns(["!"]).unwrap_err();
        assert!(err.to_string().contains("illegal exclusion pattern"), "{err}");
    }

    #[test]
    fn simple_cases_from_patternmatcher() {
        let m =
            |patterns: &[&str], file: &str| IgnoreMatcher::from_patterns(patterns).unwrap().is_excluded(file, false);
        assert!(m(&["*"], "fileutils.go"));
        assert!(m(&["*.go"], "fileutils.go"));
        assert!(m(&["!fileutils.go", "*.go"], "fileutils.go"));
        assert!(!m(&["docs", "!docs/README.md"], "docs/README.md"));
        assert!(!m(&["docs/", "!docs/README.md"], "docs/README.md"));
        assert!(!m(&["docs/*", "!docs/README.md"], "docs/README.md"));
        assert!(!m(&["*.go", "!fileutils.go"], "fileutils.go"));
        assert!(!m(&["*.go"], "."));
        assert!(!m(&[], "/any/path/there"));
        assert!(IgnoreMatcher::from_patterns(["["]).is_err());
    }

    /// ignorefile_test.go `TestReadAll`, through the file parser.
    #[test]
    fn read_all_normalisation() {
        let text = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n";
        let m = IgnoreMatcher::parse(text).unwrap();
        let got: Vec<(&str, bool)> = m.patterns().collect();
        assert_eq!(
            got,
            vec![
                ("test1", false),
                ("test2", false),
                ("a/file/here", false),
                ("lastfile", false),
                ("inverted/abs/path", true)
            ]
        );
        // A lone `!` is kept by the reader and rejected by the matcher.
        let err = IgnoreMatcher::parse("ok\n!\n").unwrap_err();
        assert!(matches!(err, ContextError::InvalidIgnorePattern { line: 2, .. }), "{err}");
        let err = IgnoreMatcher::parse("ok\n! ").unwrap_err();
        assert!(matches!(err, ContextError::InvalidIgnorePattern { line: 2, .. }), "{err}");
    }

    #[test]
    fn reader_details() {
        // BOM, CRLF, comment only at column 0, cleaning of dots and slashes.
        let text = "\u{feff}a\r\n  # not a comment\r\n./b/../c/\r\n#x\r\n!/d/";
        let m = IgnoreMatcher::parse(text).unwrap();
        let got: Vec<(&str, bool)> = m.patterns().collect();
        assert_eq!(got, vec![("a", false), ("# not a comment", false), ("c", false), ("d", true)]);
        // "/" alone stays "/" and matches nothing.
        let m = IgnoreMatcher::parse("/\n").unwrap();
        assert!(!m.is_excluded("a", false));
    }

    #[test]
    fn errors_name_the_line() {
        let err = IgnoreMatcher::parse("a\n# c\n\nfoo[\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(":4:"), "{msg}");
        assert!(msg.contains("foo["), "{msg}");
        assert!(msg.contains("syntax error in pattern"), "{msg}");
        // Reversed ranges fail Go's regexp compilation: rejected up front.
        let err = IgnoreMatcher::parse("[Local-Only]/\n").unwrap_err();
        assert!(err.to_string().contains("invalid character class range"), "{err}");
    }

    #[test]
    fn anchored_at_root_not_gitignore() {
        let m = IgnoreMatcher::parse("foo\n*.log\n").unwrap();
        assert!(m.is_excluded("foo", true));
        assert!(m.is_excluded("foo/bar", false));
        assert!(!m.is_excluded("a/foo", false));
        assert!(m.is_excluded("x.log", false));
        assert!(!m.is_excluded("dir/x.log", false));
        let m = IgnoreMatcher::parse("**/*.log\n").unwrap();
        assert!(m.is_excluded("dir/sub/x.log", false));
        assert!(m.is_excluded("x.log", false));
    }

    #[test]
    fn no_braces() {
        let m = IgnoreMatcher::parse("{a,b}\n").unwrap();
        assert!(!m.is_excluded("a", false));
        assert!(m.is_excluded("{a,b}", false));
    }

    #[test]
    fn bracket_classes() {
        let m = IgnoreMatcher::parse("[!a]x\n").unwrap();
        // `!` is a plain member of the class in Go, not a negation.
        assert!(m.is_excluded("!x", false));
        assert!(m.is_excluded("ax", false));
        assert!(!m.is_excluded("bx", false));
        let m = IgnoreMatcher::parse("[^a]x\n").unwrap();
        assert!(m.is_excluded("bx", false));
        assert!(!m.is_excluded("ax", false));
        let m = IgnoreMatcher::parse("[[]x]\n").unwrap();
        assert!(m.is_excluded("[x]", false));
    }

    #[test]
    fn last_match_wins_and_reinclusion() {
        let m = IgnoreMatcher::parse("*.md\n!README*.md\nREADME-secret.md\n").unwrap();
        assert!(m.is_excluded("CHANGES.md", false));
        assert!(!m.is_excluded("README.md", false));
        assert!(m.is_excluded("README-secret.md", false));
        let m = IgnoreMatcher::parse("dir\n!dir/keep\n").unwrap();
        assert!(m.is_excluded("dir", true));
        assert!(m.is_excluded("dir/other", false));
        assert!(!m.is_excluded("dir/keep", false));
        assert!(!m.is_excluded("dir/keep/deeper", false));
    }

    #[test]
    fn skip_dir_decisions() {
        let m = IgnoreMatcher::parse("node_modules\n").unwrap();
        assert!(m.can_skip_dir("node_modules"));
        assert!(!m.can_skip_dir("src"));
        let m = IgnoreMatcher::parse("dir\n!dir/keep\n").unwrap();
        assert!(!m.can_skip_dir("dir"));
        let m = IgnoreMatcher::parse("dir\nother\n!dir/keep\n").unwrap();
        assert!(m.can_skip_dir("other"));
        // Glob exceptions: only directories they could reach are walked.
        let m = IgnoreMatcher::parse("*\n!**/*.go\n").unwrap();
        assert!(!m.can_skip_dir("vendor"));
        let m = IgnoreMatcher::parse("*\n!src/*/main.go\n").unwrap();
        assert!(!m.can_skip_dir("src"));
        assert!(m.can_skip_dir("docs"));
        let m = IgnoreMatcher::parse("*\n!src/**\n").unwrap();
        assert!(!m.can_skip_dir("src"));
        assert!(m.can_skip_dir("lib"));
        let m = IgnoreMatcher::parse("**\n!a[bc]/x\n").unwrap();
        assert!(!m.can_skip_dir("ab"));
        assert!(m.can_skip_dir("ad"));
    }
}
