//! The untyped syntax tree the parser produces: one [`Node`] per instruction.
//!
//! This mirrors BuildKit's `parser.Node`: the keyword, its flags, its argument
//! words (already split per keyword the way BuildKit splits them), heredoc
//! bodies and exact source lines. Nothing here is expanded or validated beyond
//! what the parser itself must check; typed instructions come from
//! [`crate::instructions`].

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ast {
    /// Parser directives found at the top of the file.
    pub directives: Directives,
    /// The escape character in effect (`\` unless `# escape=` changed it).
    pub escape: char,
    /// Top-level instructions, in file order.
    pub children: Vec<Node>,
    /// Non-fatal observations made while parsing (for example, empty
    /// continuation lines), reported by the linter.
    pub warnings: Vec<ParseWarning>,
}

impl Ast {
    /// First line of the first instruction (1-based), 0 when there is none.
    pub fn start_line(&self) -> usize {
        self.children.first().map_or(0, |n| n.start_line)
    }

    /// Last line of the last instruction (1-based), 0 when there is none.
    pub fn end_line(&self) -> usize {
        self.children.last().map_or(0, |n| n.end_line)
    }

    /// The BuildKit s-expression dump of the whole tree (one line per
    /// instruction, each ending in `\n`), as in BuildKit's parser test data.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for child in &self.children {
            out.push('(');
            child.dump_into(&mut out);
            out.push_str(")\n");
        }
        out
    }
}

/// Parser directives (`# syntax=`, `# escape=`, `# check=`), with the line each was on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Directives {
    pub syntax: Option<Directive>,
    pub escape: Option<Directive>,
    pub check: Option<Directive>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directive {
    pub value: String,
    /// 1-based line number.
    pub line: usize,
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// The keyword, lowercased (`run`, `from`, …; unknown keywords are kept).
    /// Known keywords are static strings.
    pub keyword: Cow<'static, str>,
    /// The keyword exactly as written (for casing checks and messages);
    /// static when written all upper or all lower case.
    pub keyword_original: Cow<'static, str>,
    /// Flags in the order written, quotes and escapes already removed
    /// (`--from=build`, `--mount=type=cache,target=/x`, `--link`).
    pub flags: Vec<String>,
    /// Argument words, split the way BuildKit splits them for this keyword
    /// (see `conformance/FORMAT.md` §1.3). For ONBUILD this is empty and
    /// [`Node::child`] holds the trigger.
    pub args: Vec<String>,
    /// True when the arguments were written as a JSON array (exec form).
    pub json: bool,
    /// The ONBUILD trigger instruction.
    pub child: Option<Box<Node>>,
    /// Heredoc bodies introduced on this instruction's line, in order.
    pub heredocs: Vec<Heredoc>,
    /// The logical line after joining continuations (comment lines dropped),
    /// with the leading whitespace of the first line removed. Shared with the
    /// typed commands made from the node.
    pub original: Arc<str>,
    /// First physical line (1-based).
    pub start_line: usize,
    /// Last physical line consumed, including skipped comment or blank lines
    /// inside a continuation and heredoc bodies with their terminator.
    pub end_line: usize,
    /// Comment lines directly above the instruction (without the `#` and one
    /// following space), nearest last; used for definition descriptions.
    pub comments: Vec<String>,
}

impl Node {
    /// The dump of this node without the surrounding parentheses.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        self.dump_into(&mut out);
        out
    }

    fn dump_into(&self, out: &mut String) {
        out.push_str(&self.keyword);
        if !self.flags.is_empty() {
            out.push_str(" [");
            for (i, flag) in self.flags.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                go_quote_into(flag.as_bytes(), out);
            }
            out.push(']');
        }
        if let Some(child) = &self.child {
            out.push_str(" (");
            child.dump_into(out);
            out.push(')');
        }
        for arg in &self.args {
            out.push(' ');
            go_quote_into(arg.as_bytes(), out);
        }
    }
}

/// A here-document body attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The delimiter word with quotes removed (`EOF`).
    pub name: String,
    /// The body: every line between the introducing line and the terminator,
    /// each ending in `\n`. With `<<-`, leading tabs are already removed.
    pub content: String,
    /// False when any part of the delimiter was quoted: the body is then not
    /// subject to variable expansion.
    pub expand: bool,
    /// True for `<<-`.
    pub chomp: bool,
    /// The file descriptor prefix (`3<<EOF` gives 3); 0 when absent.
    pub file_descriptor: u32,
}

/// A non-fatal observation of the parser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParseWarning {
    /// Rule name as BuildKit's linter calls it (`NoEmptyContinuation`).
    pub rule: &'static str,
    pub message: String,
    /// 1-based line the warning points at.
    pub line: usize,
}

/// Go's `strconv.Quote`, byte for byte (see `conformance/FORMAT.md` §1.2).
pub fn go_quote(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len() + 2);
    go_quote_into(input, &mut out);
    out
}

fn go_quote_into(input: &[u8], out: &mut String) {
    use std::fmt::Write;
    out.push('"');
    let mut rest = input;
    while !rest.is_empty() {
        let (ch, len) = match decode_utf8(rest) {
            Some(v) => v,
            None => {
                let _ = write!(out, "\\x{:02x}", rest[0]);
                rest = &rest[1..];
                continue;
            }
        };
        rest = &rest[len..];
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
}

/// Decodes one UTF-8 scalar at the start of `bytes`, or None when the first
/// bytes are not a valid encoding (Go then quotes a single byte as `\xNN`).
fn decode_utf8(bytes: &[u8]) -> Option<(char, usize)> {
    let width = match bytes[0] {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    let s = std::str::from_utf8(bytes.get(..width)?).ok()?;
    s.chars().next().map(|c| (c, width))
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and
/// the ASCII space. Rust's std has no general-category tables, so this uses
/// the complement: control, format, separator, private-use and unassigned
/// code points are not printable. For the ranges that matter in Dockerfiles
/// (ASCII, Latin-1, common scripts) this agrees with Go.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let cp = c as u32;
    !matches!(cp,
        0x00ad                      // soft hyphen (Cf)
        | 0x0600..=0x0605 | 0x061c | 0x06dd | 0x070f | 0x08e2
        | 0x180e
        | 0x200b..=0x200f           // zero-width and direction marks (Cf)
        | 0x2028..=0x202e
        | 0x2060..=0x206f
        | 0xd800..=0xdfff
        | 0xe000..=0xf8ff           // private use
        | 0xfeff                    // BOM (Cf)
        | 0xfff0..=0xfffb
        | 0xfffe | 0xffff
        | 0x110bd | 0x110cd
        | 0x1bca0..=0x1bca3
        | 0x1d173..=0x1d17a
        | 0xe0001 | 0xe0020..=0xe007f
        | 0xf0000..=0x10ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_quote_matches_strconv_quote() {
        assert_eq!(go_quote(b"abc"), "\"abc\"");
        assert_eq!(go_quote(b"a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(go_quote(b"\x00\x07\x08\x0c\n\r\t\x0b\x7f"), "\"\\x00\\a\\b\\f\\n\\r\\t\\v\\x7f\"");
        assert_eq!(go_quote("♥ 한".as_bytes()), "\"♥ 한\"");
        assert_eq!(go_quote("\u{a0}".as_bytes()), "\"\\u00a0\"");
        assert_eq!(go_quote(b"\xff\xfe"), "\"\\xff\\xfe\"");
        assert_eq!(go_quote("\u{feff}".as_bytes()), "\"\\ufeff\"");
    }
}
