//! Package relationship fields (`Depends`, `Pre-Depends`, `Provides`, `Conflicts`, `Breaks`): a comma-separated
//! list of alternatives (`a | b`), each `name[:archqual] [(op version)] [[arch list]] [<profiles>]`.

use std::fmt;

use super::version::{Version, VersionError};

/// A version relation operator. The obsolete `<` and `>` mean `<=` and `>=`, as in dpkg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<<`
    Lt,
    /// `<=` (or the obsolete `<`)
    Le,
    /// `=`
    Eq,
    /// `>=` (or the obsolete `>`)
    Ge,
    /// `>>`
    Gt,
}

impl Op {
    /// Whether `have <op> want` holds.
    pub fn holds(self, have: &Version, want: &Version) -> bool {
        let ord = have.cmp(want);
        match self {
            Op::Lt => ord.is_lt(),
            Op::Le => ord.is_le(),
            Op::Eq => ord.is_eq(),
            Op::Ge => ord.is_ge(),
            Op::Gt => ord.is_gt(),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }
}

/// `(op version)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    /// The operator.
    pub op: Op,
    /// The version on the right-hand side.
    pub version: Version,
}

impl Constraint {
    /// Whether a package at `version` satisfies the constraint.
    pub fn matches(&self, version: &Version) -> bool {
        self.op.holds(version, &self.version)
    }
}

/// One relation: a package name with optional architecture qualifier, version constraint and architecture
/// restriction list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// Package (or virtual package) name.
    pub name: String,
    /// `:any`, `:native` or an architecture name.
    pub arch_qualifier: Option<String>,
    /// `(op version)`.
    pub constraint: Option<Constraint>,
    /// `[amd64 !i386]`: entries as written, `!` kept.
    pub arch_restriction: Vec<String>,
}

impl Relation {
    /// Whether the relation applies on `arch` given its `[…]` restriction list (no list: always).
    pub fn applies_to(&self, arch: &str) -> bool {
        if self.arch_restriction.is_empty() {
            return true;
        }
        let negated = self.arch_restriction.iter().all(|a| a.starts_with('!'));
        if negated {
            !self.arch_restriction.iter().any(|a| a.trim_start_matches('!') == arch || a == "!any")
        } else {
            self.arch_restriction.iter().any(|a| a == arch || a == "any")
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(q) = &self.arch_qualifier {
            write!(f, ":{q}")?;
        }
        if let Some(c) = &self.constraint {
            write!(f, " ({} {})", c.op.as_str(), c.version)?;
        }
        if !self.arch_restriction.is_empty() {
            write!(f, " [{}]", self.arch_restriction.join(" "))?;
        }
        Ok(())
    }
}

/// `a | b | c`: satisfied by any one of them (tried in order).
pub type Alternatives = Vec<Relation>;

/// Why a relationship field could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepError {
    /// Bad syntax.
    #[error("invalid relation {text:?}: {reason}")]
    Syntax {
        /// The relation as written.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// A bad version inside `( )`.
    #[error(transparent)]
    Version(#[from] VersionError),
}

/// Parses a whole field: `a (>= 1) | b, c:any`. Empty entries (a trailing comma) are skipped.
pub fn parse_relations(field: &str) -> Result<Vec<Alternatives>, DepError> {
    let mut out = Vec::new();
    for group in field.split(',') {
        if group.trim().is_empty() {
            continue;
        }
        let alts = group.split('|').map(parse_relation).collect::<Result<Vec<_>, _>>()?;
        out.push(alts);
    }
    Ok(out)
}

/// Parses a `Provides`-style field where alternatives are not allowed.
pub fn parse_provides(field: &str) -> Result<Vec<Relation>, DepError> {
    let mut out = Vec::new();
    for group in parse_relations(field)? {
        if group.len() != 1 {
            return Err(DepError::Syntax { text: field.to_string(), reason: "alternatives in Provides".into() });
        }
        out.extend(group);
    }
    Ok(out)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | '_')
}

/// Parses one relation (no `|`, no `,`).
pub fn parse_relation(text: &str) -> Result<Relation, DepError> {
    let syntax = |reason: &str| DepError::Syntax { text: text.trim().to_string(), reason: reason.to_string() };
    let s = text.trim();
    let name_end = s.find(|c: char| !is_name_char(c)).unwrap_or(s.len());
    let name = &s[..name_end];
    if name.is_empty() {
        return Err(syntax("missing package name"));
    }
    let mut rest = &s[name_end..];
    let mut arch_qualifier = None;
    if let Some(r) = rest.strip_prefix(':') {
        let end = r.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).unwrap_or(r.len());
        if end == 0 {
            return Err(syntax("empty architecture qualifier"));
        }
        arch_qualifier = Some(r[..end].to_string());
        rest = &r[end..];
    }
    rest = rest.trim_start();
    let mut constraint = None;
    if let Some(r) = rest.strip_prefix('(') {
        let close = r.find(')').ok_or_else(|| syntax("unclosed '('"))?;
        let inner = r[..close].trim();
        let op_len = inner.find(|c: char| !matches!(c, '<' | '>' | '=')).unwrap_or(inner.len());
        let op = match &inner[..op_len] {
            "<<" => Op::Lt,
            "<=" | "<" => Op::Le,
            "=" => Op::Eq,
            ">=" | ">" => Op::Ge,
            ">>" => Op::Gt,
            "" => return Err(syntax("missing version operator")),
            _ => return Err(syntax("unknown version operator")),
        };
        let version = Version::parse(inner[op_len..].trim())?;
        constraint = Some(Constraint { op, version });
        rest = r[close + 1..].trim_start();
    }
    let mut arch_restriction = Vec::new();
    if let Some(r) = rest.strip_prefix('[') {
        let close = r.find(']').ok_or_else(|| syntax("unclosed '['"))?;
        arch_restriction = r[..close].split_whitespace().map(str::to_string).collect();
        if arch_restriction.is_empty() {
            return Err(syntax("empty architecture list"));
        }
        let negs = arch_restriction.iter().filter(|a| a.starts_with('!')).count();
        if negs != 0 && negs != arch_restriction.len() {
            return Err(syntax("mixed negated and plain architectures"));
        }
        rest = r[close + 1..].trim_start();
    }
    // Build profiles (`<!nocheck> <stage1>`) only matter for Build-Depends; accept and drop them.
    while let Some(r) = rest.strip_prefix('<') {
        let close = r.find('>').ok_or_else(|| syntax("unclosed '<'"))?;
        rest = r[close + 1..].trim_start();
    }
    if !rest.is_empty() {
        return Err(syntax("trailing characters"));
    }
    Ok(Relation { name: name.to_string(), arch_qualifier, constraint, arch_restriction })
}
