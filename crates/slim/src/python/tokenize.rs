//! A small, forgiving Python tokenizer: enough to find imports, never a parser.
//!
//! It understands comments, every string form (prefixes, triple quotes,
//! escapes, f-strings with nested expressions and nested strings as in 3.12),
//! explicit (`\`) and implicit (brackets) line continuations, and reports each
//! logical line with its indentation column. Anything it does not understand
//! becomes an `Op` token; it never panics and always advances, whatever the
//! input (invalid UTF-8 is read lossily).

/// One token of a logical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// An identifier or keyword.
    Name(String),
    /// A string literal. `value` is its text when it is a plain literal whose
    /// value is known exactly (no f-string, no bytes, no escape sequences).
    Str { value: Option<String> },
    /// A number literal.
    Number,
    /// Punctuation: one character, except `:=`, `->`, `**`, `//`, `==`, `!=`,
    /// `<=`, `>=`, `...` which are kept whole.
    Op(String),
}

/// A logical line: its tokens (never empty) and the column of its first token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub indent: usize,
    pub tokens: Vec<Tok>,
    /// 1-based physical line number of the first token.
    pub lineno: usize,
}

/// Splits source into logical lines of tokens.
pub fn tokenize(src: &[u8]) -> Vec<Line> {
    let text = String::from_utf8_lossy(src);
    let chars: Vec<char> = text.chars().collect();
    Lexer {
        c: &chars,
        i: 0,
        lineno: 1,
        depth: 0,
        lines: Vec::new(),
        cur: Vec::new(),
        indent: 0,
        line_start: 1,
        tok_start: 0,
        tok_line: 1,
    }
    .run()
}

struct Lexer<'a> {
    c: &'a [char],
    i: usize,
    lineno: usize,
    depth: usize,
    lines: Vec<Line>,
    cur: Vec<Tok>,
    indent: usize,
    line_start: usize,
    /// Where the token being lexed began (for the indentation column).
    tok_start: usize,
    tok_line: usize,
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic() || (!c.is_ascii() && !c.is_whitespace() && !c.is_control())
}

fn is_ident_char(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c.is_numeric()
}

impl Lexer<'_> {
    fn peek(&self, off: usize) -> Option<char> {
        self.c.get(self.i + off).copied()
    }

    fn push(&mut self, t: Tok) {
        if self.cur.is_empty() {
            // Column of the first token of the logical line.
            let mut j = self.tok_start.min(self.c.len());
            let mut col = 0;
            while j > 0 && self.c[j - 1] != '\n' && self.c[j - 1] != '\r' {
                j -= 1;
            }
            while j < self.c.len() && (self.c[j] == ' ' || self.c[j] == '\t' || self.c[j] == '\x0c') {
                col = if self.c[j] == '\t' { (col / 8 + 1) * 8 } else { col + 1 };
                j += 1;
            }
            self.indent = col;
            self.line_start = self.tok_line;
        }
        self.cur.push(t);
    }

    fn end_line(&mut self) {
        if !self.cur.is_empty() {
            self.lines.push(Line {
                indent: self.indent,
                tokens: std::mem::take(&mut self.cur),
                lineno: self.line_start,
            });
        }
        self.depth = 0;
    }

    fn run(mut self) -> Vec<Line> {
        while let Some(c) = self.peek(0) {
            self.tok_start = self.i;
            self.tok_line = self.lineno;
            match c {
                '\n' | '\r' => {
                    if c == '\r' && self.peek(1) == Some('\n') {
                        self.i += 1;
                    }
                    self.i += 1;
                    self.lineno += 1;
                    if self.depth == 0 {
                        self.end_line();
                    }
                }
                ' ' | '\t' | '\x0c' => self.i += 1,
                '#' => {
                    while let Some(c) = self.peek(0) {
                        if c == '\n' || c == '\r' {
                            break;
                        }
                        self.i += 1;
                    }
                }
                '\\' if matches!(self.peek(1), Some('\n') | Some('\r')) => {
                    // Explicit continuation: swallow the newline.
                    self.i += 1;
                    if self.peek(0) == Some('\r') && self.peek(1) == Some('\n') {
                        self.i += 1;
                    }
                    self.i += 1;
                    self.lineno += 1;
                }
                '"' | '\'' => {
                    let t = self.string("");
                    self.push(t);
                }
                c if c.is_ascii_digit() || (c == '.' && self.peek(1).is_some_and(|d| d.is_ascii_digit())) => {
                    self.i += 1;
                    while let Some(d) = self.peek(0) {
                        let exponent_sign = (d == '+' || d == '-') && matches!(self.c[self.i - 1], 'e' | 'E');
                        if d.is_ascii_alphanumeric() || d == '_' || d == '.' || exponent_sign {
                            self.i += 1;
                        } else {
                            break;
                        }
                    }
                    self.push(Tok::Number);
                }
                c if is_ident_start(c) => {
                    let start = self.i;
                    while self.peek(0).is_some_and(is_ident_char) {
                        self.i += 1;
                    }
                    let word: String = self.c[start..self.i].iter().collect();
                    if matches!(self.peek(0), Some('"') | Some('\''))
                        && word.len() <= 2
                        && word.chars().all(|p| matches!(p.to_ascii_lowercase(), 'r' | 'b' | 'u' | 'f'))
                    {
                        let t = self.string(&word.to_ascii_lowercase());
                        self.push(t);
                    } else {
                        self.push(Tok::Name(word));
                    }
                }
                _ => {
                    let two: String = self.c[self.i..(self.i + 2).min(self.c.len())].iter().collect();
                    let three: String = self.c[self.i..(self.i + 3).min(self.c.len())].iter().collect();
                    let op = if three == "..." {
                        three
                    } else if matches!(two.as_str(), ":=" | "->" | "**" | "//" | "==" | "!=" | "<=" | ">=") {
                        two
                    } else {
                        c.to_string()
                    };
                    self.i += op.chars().count();
                    match c {
                        '(' | '[' | '{' => self.depth += 1,
                        ')' | ']' | '}' => self.depth = self.depth.saturating_sub(1),
                        _ => {}
                    }
                    self.push(Tok::Op(op));
                }
            }
        }
        self.end_line();
        self.lines
    }

    /// Lexes a string starting at the quote at `self.i` (the prefix, if any,
    /// was already consumed).
    fn string(&mut self, prefix: &str) -> Tok {
        let raw = prefix.contains('r');
        let fstr = prefix.contains('f');
        let bytes = prefix.contains('b');
        let (value, clean) = self.string_body(raw, fstr);
        let value = if clean && !fstr && !bytes { Some(value) } else { None };
        Tok::Str { value }
    }

    /// Consumes a quoted body at `self.i`. Returns the literal text and whether
    /// it held no escape sequence.
    fn string_body(&mut self, raw: bool, fstr: bool) -> (String, bool) {
        let q = match self.peek(0) {
            Some(q) => q,
            None => return (String::new(), false),
        };
        let triple = self.peek(1) == Some(q) && self.peek(2) == Some(q);
        self.i += if triple { 3 } else { 1 };
        let mut out = String::new();
        let mut clean = true;
        loop {
            let Some(c) = self.peek(0) else { return (out, false) };
            if c == '\\' {
                clean = clean && raw;
                if let Some(n) = self.peek(1) {
                    if n == '\n' {
                        self.lineno += 1;
                    }
                    out.push(c);
                    out.push(n);
                    self.i += 2;
                } else {
                    self.i += 1;
                }
                continue;
            }
            if c == q && (!triple || (self.peek(1) == Some(q) && self.peek(2) == Some(q))) {
                self.i += if triple { 3 } else { 1 };
                return (out, clean);
            }
            if (c == '\n' || c == '\r') && !triple {
                // Unterminated single-quoted string: stop at the line end.
                return (out, false);
            }
            if c == '\n' {
                self.lineno += 1;
            }
            if fstr && c == '{' {
                if self.peek(1) == Some('{') {
                    out.push_str("{{");
                    self.i += 2;
                    continue;
                }
                self.i += 1;
                self.fstring_expr(q, triple);
                out.push_str("{}");
                continue;
            }
            out.push(c);
            self.i += 1;
        }
    }

    /// Skips an f-string replacement field after its `{`, through the
    /// matching `}`; nested strings (any quote, as Python 3.12 allows) and
    /// nested fields in the format spec are skipped too. Stops early at the
    /// enclosing string's own closing quote if the field is unterminated.
    fn fstring_expr(&mut self, q: char, triple: bool) {
        let mut depth = 0usize;
        let mut spec = false;
        while let Some(c) = self.peek(0) {
            match c {
                '}' if depth == 0 => {
                    self.i += 1;
                    return;
                }
                '{' if spec => {
                    self.i += 1;
                    self.fstring_expr(q, triple);
                }
                '(' | '[' | '{' => {
                    depth += 1;
                    self.i += 1;
                }
                ')' | ']' | '}' => {
                    depth = depth.saturating_sub(1);
                    self.i += 1;
                }
                ':' if depth == 0 && !spec => {
                    spec = true;
                    self.i += 1;
                }
                '\n' | '\r' if !triple => return,
                '\n' => {
                    self.lineno += 1;
                    self.i += 1;
                }
                '"' | '\'' if !spec => {
                    // Same quote as the enclosing single-quoted f-string ends
                    // it before 3.12 unless a nested string really follows;
                    // treat a lone closing quote followed by the line end or
                    // nothing as the end of the enclosing string.
                    if c == q && !triple {
                        let nxt = self.peek(1);
                        if nxt.is_none() || matches!(nxt, Some('\n') | Some('\r') | Some(')') | Some(',')) {
                            return;
                        }
                    }
                    if c == q && triple && self.peek(1) == Some(q) && self.peek(2) == Some(q) {
                        return;
                    }
                    let prefix_f = self.i > 0 && matches!(self.c[self.i - 1], 'f' | 'F');
                    self.string_body(false, prefix_f);
                }
                '\\' => self.i += 2.min(self.c.len() - self.i),
                _ => {
                    if spec && c == q && (!triple || (self.peek(1) == Some(q) && self.peek(2) == Some(q))) {
                        return;
                    }
                    self.i += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(src: &str) -> Vec<Vec<String>> {
        tokenize(src.as_bytes())
            .into_iter()
            .map(|l| {
                l.tokens
                    .into_iter()
                    .map(|t| match t {
                        Tok::Name(n) => n,
                        Tok::Str { value } => format!("S{value:?}"),
                        Tok::Number => "N".into(),
                        Tok::Op(o) => o,
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn strings_and_lines() {
        let l = names("x = '''import a\nimport b'''\nimport c\n");
        assert_eq!(l.len(), 2);
        assert_eq!(l[1], vec!["import", "c"]);
        let l = names("f(a,\n  b)\\\n + 1\ny");
        assert_eq!(l.len(), 2);
        let l = names("s = f\"{x[\"a\"]}\" ; import q");
        assert_eq!(l[0].last().unwrap(), "q");
        let l = names("s = f'{x!r:>{w}}' + rb'\\'' ; import q");
        assert_eq!(l[0].last().unwrap(), "q");
    }

    #[test]
    fn docstring_closing_at_column_zero() {
        let l = tokenize(b"def f():\n    \"\"\"doc\nmore\"\"\"\n    import x\n");
        assert_eq!(l.iter().map(|l| (l.indent, l.lineno)).collect::<Vec<_>>(), vec![(0, 1), (4, 2), (4, 4)]);
    }

    #[test]
    fn indent_columns() {
        let l = tokenize(b"def f():\n    import x\n\timport y\n");
        assert_eq!(l.iter().map(|l| l.indent).collect::<Vec<_>>(), vec![0, 4, 8]);
    }
}
