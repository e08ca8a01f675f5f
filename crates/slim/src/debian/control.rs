//! deb822 control paragraphs: the syntax of `Packages`, `Release`, `DEBIAN/control` and dpkg's status file.
//!
//! A paragraph is a run of `Field: value` lines; continuation lines start with a space or a tab; paragraphs are
//! separated by blank lines. Parsing borrows from the input so a 50 MB `Packages` index costs no copies.

/// One control paragraph; field names keep their spelling and order, lookups ignore case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paragraph<'a> {
    /// `(name, value)` in file order. A value runs from after the colon (leading blanks dropped) to the end of its
    /// last continuation line (trailing whitespace dropped), so multi-line values keep their `\n ` folds.
    pub fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Paragraph<'a> {
    /// The value of a field (case-insensitive name), if present.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }

    /// Writes the paragraph back in deb822 syntax (one trailing newline, no blank line).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (name, value) in &self.fields {
            out.push_str(name);
            out.push(':');
            if !value.is_empty() && !value.starts_with('\n') {
                out.push(' ');
            }
            out.push_str(value);
            out.push('\n');
        }
        out
    }
}

/// A syntax error with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("control syntax error at line {line}: {reason}")]
pub struct ControlError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Parses every paragraph of `text`.
pub fn parse_paragraphs(text: &str) -> Result<Vec<Paragraph<'_>>, ControlError> {
    Paragraphs::new(text).collect()
}

/// Parses a text that must hold exactly one paragraph (a `DEBIAN/control` file, a `Release` file).
pub fn parse_single(text: &str) -> Result<Paragraph<'_>, ControlError> {
    let mut all = parse_paragraphs(text)?;
    match all.len() {
        1 => Ok(all.remove(0)),
        0 => Err(ControlError { line: 1, reason: "no paragraph".into() }),
        n => Err(ControlError { line: 1, reason: format!("expected one paragraph, found {n}") }),
    }
}

/// Streaming iterator over the paragraphs of a text.
pub struct Paragraphs<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Paragraphs<'a> {
    /// Starts at the beginning of `text`.
    pub fn new(text: &'a str) -> Self {
        Paragraphs { text, pos: 0, line: 0 }
    }

    /// Next line (without its `\n`) and its start offset.
    fn next_line(&mut self) -> Option<(usize, &'a str)> {
        if self.pos >= self.text.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.text[start..];
        let (line, adv) = match rest.find('\n') {
            Some(n) => (&rest[..n], n + 1),
            None => (rest, rest.len()),
        };
        self.pos += adv;
        self.line += 1;
        Some((start, line.strip_suffix('\r').unwrap_or(line)))
    }

    fn peek_is_continuation(&self) -> bool {
        matches!(self.text.as_bytes().get(self.pos), Some(b' ' | b'\t'))
            && !self.text[self.pos..].split('\n').next().unwrap_or("").trim().is_empty()
    }
}

impl<'a> Iterator for Paragraphs<'a> {
    type Item = Result<Paragraph<'a>, ControlError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut fields: Vec<(&'a str, &'a str)> = Vec::new();
        while let Some((start, line)) = self.next_line() {
            if line.trim().is_empty() {
                if fields.is_empty() {
                    continue;
                }
                break;
            }
            if line.starts_with('#') {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                return Some(Err(ControlError { line: self.line, reason: "continuation line without a field".into() }));
            }
            let Some(colon) = line.find(':') else {
                return Some(Err(ControlError { line: self.line, reason: format!("no colon in {line:?}") }));
            };
            let name = &line[..colon];
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Some(Err(ControlError { line: self.line, reason: format!("bad field name {name:?}") }));
            }
            // The value spans from after the colon to the end of the last continuation line.
            let value_start = start + colon + 1;
            let mut value_end = start + line.len();
            while self.peek_is_continuation() {
                let (s, l) = self.next_line().expect("peeked");
                value_end = s + l.len();
            }
            let value = self.text[value_start..value_end].trim_start_matches([' ', '\t']).trim_end();
            fields.push((name, value));
        }
        if fields.is_empty() { None } else { Some(Ok(Paragraph { fields })) }
    }
}
