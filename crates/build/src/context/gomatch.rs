//! Faithful ports of the Go standard-library path helpers that Docker's
//! semantics are defined by: `path/filepath.Match` (Go ≥ 1.16, which checks
//! the whole pattern for syntax errors), `filepath.Clean` and `filepath.Dir`
//! (Unix flavour: `/` separator, `\` escapes).
//!
//! Everything works on bytes, like Go strings: file names need not be UTF-8.

/// `filepath.ErrBadPattern`: the pattern is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadPattern;

impl std::fmt::Display for BadPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("syntax error in pattern")
    }
}

const SEP: u8 = b'/';
const RUNE_ERROR: u32 = 0xFFFD;

/// `utf8.DecodeRune`: the first code point of `s` and its length in bytes.
/// Invalid or truncated sequences decode as U+FFFD of width 1; an empty
/// input gives (U+FFFD, 0).
pub(crate) fn decode_rune(s: &[u8]) -> (u32, usize) {
    let Some(&b0) = s.first() else {
        return (RUNE_ERROR, 0);
    };
    if b0 < 0x80 {
        return (u32::from(b0), 1);
    }
    let n = match b0 {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return (RUNE_ERROR, 1),
    };
    if s.len() < n {
        return (RUNE_ERROR, 1);
    }
    match std::str::from_utf8(&s[..n]) {
        Ok(text) => (text.chars().next().map_or(RUNE_ERROR, u32::from), n),
        Err(_) => (RUNE_ERROR, 1),
    }
}

/// `filepath.Match(pattern, name)`.
pub(crate) fn go_match(mut pattern: &[u8], mut name: &[u8]) -> Result<bool, BadPattern> {
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // Trailing * matches rest of string unless it has a /.
            return Ok(!name.contains(&SEP));
        }
        // Look for match at current position.
        let (matched, err) = match match_chunk(chunk, name) {
            Ok(m) => (m, None),
            Err(e) => (None, Some(e)),
        };
        if let Some(t) = matched
            && (t.is_empty() || !pattern.is_empty())
        {
            name = t;
            continue;
        }
        if let Some(e) = err {
            return Err(e);
        }
        if star {
            // Look for match skipping i+1 bytes. Cannot skip /.
            let mut i = 0;
            while i < name.len() && name[i] != SEP {
                match match_chunk(chunk, &name[i + 1..])? {
                    Some(t) => {
                        // If we're the last chunk, make sure we exhausted the name.
                        if pattern.is_empty() && !t.is_empty() {
                            i += 1;
                            continue;
                        }
                        name = t;
                        continue 'pattern;
                    }
                    None => i += 1,
                }
            }
        }
        // Before returning false with no error, check that the remainder of
        // the pattern is syntactically valid.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Gets the next segment of pattern: a non-star string possibly preceded by stars.
fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while let Some((&b'*', rest)) = pattern.split_first() {
        pattern = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            // Error check of a trailing `\` is handled in match_chunk.
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// Checks whether `chunk` matches the beginning of `s`; on success returns
/// the rest of `s`. After a mismatch the chunk is still parsed to the end so
/// that syntax errors are always reported.
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> Result<Option<&'a [u8]>, BadPattern> {
    let mut failed = false;
    while let Some(&c0) = chunk.first() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match c0 {
            b'[' => {
                let mut r = 0;
                if !failed {
                    let (rune, n) = decode_rune(s);
                    r = rune;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let mut negated = false;
                if chunk.first() == Some(&b'^') {
                    negated = true;
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut nrange = 0;
                loop {
                    if chunk.first() == Some(&b']') && nrange > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk[0] == b'-' {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    nrange += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == SEP {
                        failed = true;
                    }
                    let (_, n) = decode_rune(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if c0 == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err(BadPattern);
                    }
                }
                if !failed {
                    if chunk[0] != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    if failed { Ok(None) } else { Ok(Some(s)) }
}

/// Gets a possibly-escaped character from a character class.
fn get_esc(mut chunk: &[u8]) -> Result<(u32, &[u8]), BadPattern> {
    match chunk.first() {
        None | Some(b'-') | Some(b']') => return Err(BadPattern),
        Some(b'\\') => {
            chunk = &chunk[1..];
            if chunk.is_empty() {
                return Err(BadPattern);
            }
        }
        _ => {}
    }
    let (r, n) = decode_rune(chunk);
    if r == RUNE_ERROR && n == 1 {
        return Err(BadPattern);
    }
    let rest = &chunk[n..];
    if rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((r, rest))
}

/// Whether a path component holds an unescaped `*`, `?` or `[`
/// (fsutil's `containsWildcards`).
pub(crate) fn contains_wildcards(name: &[u8]) -> bool {
    let mut i = 0;
    while i < name.len() {
        match name[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// `filepath.Clean`: the shortest path equivalent to `path` by purely
/// lexical processing.
pub(crate) fn clean(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let rooted = path[0] == SEP;
    let mut parts: Vec<&[u8]> = Vec::new();
    // Number of leading ".." components that cannot be popped.
    let mut dotdot = 0;
    for comp in path.split(|&b| b == SEP) {
        match comp {
            b"" | b"." => {}
            b".." => {
                if parts.len() > dotdot {
                    parts.pop();
                } else if !rooted {
                    parts.push(b"..");
                    dotdot += 1;
                }
            }
            _ => parts.push(comp),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    if rooted {
        out.push(SEP);
    }
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

/// `filepath.Dir`: all but the last element of `path`, cleaned.
#[cfg(test)]
pub(crate) fn dir(path: &[u8]) -> Vec<u8> {
    match path.iter().rposition(|&b| b == SEP) {
        Some(i) => clean(&path[..=i]),
        None => b".".to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> Result<bool, BadPattern> {
        go_match(p.as_bytes(), s.as_bytes())
    }

    /// Go's own `filepath.Match` table (path/filepath/match_test.go).
    #[test]
    fn go_match_table() {
        let bad = Err(BadPattern);
        let cases: &[(&str, &str, Result<bool, BadPattern>)] = &[
            ("abc", "abc", Ok(true)),
            ("*", "abc", Ok(true)),
            ("*c", "abc", Ok(true)),
            ("a*", "a", Ok(true)),
            ("a*", "abc", Ok(true)),
            ("a*", "ab/c", Ok(false)),
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
            ("[]a]", "]", bad),
            ("[-]", "-", bad),
            ("[x-]", "x", bad),
            ("[x-]", "-", bad),
            ("[x-]", "z", bad),
            ("[-x]", "x", bad),
            ("[-x]", "-", bad),
            ("[-x]", "a", bad),
            ("\\", "a", bad),
            ("[a-b-c]", "a", bad),
            ("[", "a", bad),
            ("[^", "a", bad),
            ("[^bc", "a", bad),
            ("a[", "a", bad),
            ("a[", "ab", bad),
            ("a[", "x", bad),
            ("a/b[", "x", bad),
            ("*x", "xxx", Ok(true)),
        ];
        for (p, s, want) in cases {
            assert_eq!(m(p, s), *want, "Match({p:?}, {s:?})");
        }
    }

    #[test]
    fn bracket_escapes_select_literal_brackets() {
        assert_eq!(m("[[]a]", "[a]"), Ok(true));
        assert_eq!(m("\\[a]", "[a]"), Ok(true));
        assert_eq!(m("[[]a]", "a"), Ok(false));
    }

    #[test]
    fn clean_like_go() {
        let cases = [
            ("", "."),
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            ("a/b/c", "a/b/c"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("a/b/c/", "a/b/c"),
            ("./", "."),
            ("../", ".."),
            ("../../", "../.."),
            ("/abc/", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("//abc//", "/abc"),
            ("abc//", "abc"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/.", "abc"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("/../abc", "/abc"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
        ];
        for (input, want) in cases {
            assert_eq!(String::from_utf8(clean(input.as_bytes())).unwrap(), want, "Clean({input:?})");
        }
    }

    #[test]
    fn dir_like_go() {
        let cases = [("", "."), (".", "."), ("/.", "/"), ("/", "/"), ("a/b/", "a/b"), ("a/b", "a"), ("a", ".")];
        for (input, want) in cases {
            assert_eq!(String::from_utf8(dir(input.as_bytes())).unwrap(), want, "Dir({input:?})");
        }
    }

    #[test]
    fn wildcard_detection_skips_escapes() {
        assert!(contains_wildcards(b"a*"));
        assert!(contains_wildcards(b"[ab]"));
        assert!(contains_wildcards(b"a?"));
        assert!(!contains_wildcards(b"a\\*"));
        assert!(!contains_wildcards(b"plain"));
    }

    #[test]
    fn decode_rune_like_go() {
        assert_eq!(decode_rune(b"a"), (97, 1));
        assert_eq!(decode_rune("☺".as_bytes()), (0x263A, 3));
        assert_eq!(decode_rune(&[0xff, b'a']), (RUNE_ERROR, 1));
        assert_eq!(decode_rune(&[0xe2, 0x98]), (RUNE_ERROR, 1));
        assert_eq!(decode_rune(b""), (RUNE_ERROR, 0));
    }
}
