//! Import discovery over the token stream of one Python source file.

use std::collections::BTreeSet;

use super::tokenize::{Line, Tok, tokenize};

/// Where in a file something happens: which function must run for it to
/// happen, and whether it only happens when the file runs as `__main__`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Where {
    /// Innermost enclosing `def` (`None`: module level or class body).
    pub function: Option<String>,
    /// Under `if __name__ == "__main__":`.
    pub main_guard: bool,
}

/// One import the file may perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRef {
    /// Dotted module name, without the leading dots of a relative import.
    pub module: String,
    /// Leading dots: 0 for absolute imports.
    pub level: usize,
    /// `from m import a, b`: the names, which may be submodules. `*` for a
    /// star import. Empty for `import m`.
    pub names: Vec<String>,
    pub at: Where,
    /// The `try` block this import sits in (an id unique within the file).
    pub in_try: Option<usize>,
    /// The `try` whose `except ImportError`-catching handler holds this import.
    pub fallback_of: Option<usize>,
    /// `__import__`/`importlib.import_module` with a literal name.
    pub dynamic: bool,
    /// 1-based line number.
    pub lineno: usize,
}

/// What a scan learns about a file.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub imports: Vec<ImportRef>,
    /// Identifiers used (read, called), except the names being defined by
    /// `def`/`class` and keyword-argument names; `true` for attribute names
    /// (after a `.`), `false` for bare names (this module's scope).
    pub uses: BTreeSet<(Where, bool, String)>,
    /// String literals used where a codec name goes: arguments of
    /// `encode`/`decode`/`lookup`/`open`/`str`/`bytes`…, values given to a
    /// name containing `encoding`/`charset`/`codec`.
    pub codec_literals: BTreeSet<(Where, String)>,
    /// String literals assigned to `__all__` (for `from pkg import *`).
    pub all: Vec<String>,
    /// Imports skipped because they sit under `if TYPE_CHECKING:`.
    pub type_checking_only: usize,
}

impl Scan {
    /// Every identifier used, wherever.
    pub fn names(&self) -> BTreeSet<&str> {
        self.uses.iter().map(|(_, _, n)| n.as_str()).collect()
    }
}

#[derive(Debug, Clone)]
enum Block {
    Def(String),
    Try(usize),
    /// An `except` handler of the given try; `true` if it catches ImportError.
    Except(usize, bool),
    TypeChecking,
    MainGuard,
    Other,
}

const CATCHES_IMPORT_ERROR: &[&str] = &["ImportError", "ModuleNotFoundError", "Exception", "BaseException"];

/// Calls whose string arguments may be codec names.
const CODEC_CALLS: &[&str] = &[
    "encode",
    "decode",
    "lookup",
    "open",
    "str",
    "bytes",
    "bytearray",
    "TextIOWrapper",
    "getencoder",
    "getdecoder",
    "getincrementalencoder",
    "getincrementaldecoder",
    "getreader",
    "getwriter",
    "iterencode",
    "iterdecode",
    "EncodedFile",
    "read_text",
    "write_text",
    "fdopen",
    "StreamReaderWriter",
    "StreamRecoder",
];

/// Scans Python source for imports. Never panics.
pub fn scan(src: &[u8]) -> Scan {
    scan_lines(&tokenize(src))
}

fn name(t: Option<&Tok>) -> Option<&str> {
    match t {
        Some(Tok::Name(n)) => Some(n),
        _ => None,
    }
}

fn is_op(t: Option<&Tok>, op: &str) -> bool {
    matches!(t, Some(Tok::Op(o)) if o == op)
}

fn scan_lines(lines: &[Line]) -> Scan {
    let mut out = Scan::default();
    let mut stack: Vec<(usize, Block)> = Vec::new();
    let mut next_try = 0usize;
    // The last try opened at each indentation, so `except` can find it.
    let mut last_try_at: Vec<(usize, usize)> = Vec::new();
    for line in lines {
        while stack.last().is_some_and(|(ind, _)| *ind >= line.indent) {
            stack.pop();
        }
        last_try_at.retain(|(ind, _)| *ind <= line.indent);
        let toks = &line.tokens;
        // Statement starts: the line start, after `;`, after a `:` at depth 0.
        let mut depth = 0usize;
        let mut starts = vec![0usize];
        for (k, t) in toks.iter().enumerate() {
            if let Tok::Op(o) = t {
                match o.as_str() {
                    "(" | "[" | "{" => depth += 1,
                    ")" | "]" | "}" => depth = depth.saturating_sub(1),
                    ";" | ":" if depth == 0 => starts.push(k + 1),
                    _ => {}
                }
            }
        }
        let mut pushed_header = false;
        // Callee names of the open brackets, across the whole line.
        let mut calls: Vec<Option<String>> = Vec::new();
        for (si, &s) in starts.iter().enumerate() {
            let end = starts.get(si + 1).copied().unwrap_or(toks.len()).max(s);
            let stmt = &toks[s..end];
            let first = name(stmt.first());
            // Compound headers open a block for the statements after them.
            if si == 0 || (s > 0 && is_op(toks.get(s - 1), ":")) {
                let mut f = first;
                let mut off = 0;
                if f == Some("async") {
                    f = name(stmt.get(1));
                    off = 1;
                }
                let block = match f {
                    Some("def") => Some(Block::Def(name(stmt.get(off + 1)).unwrap_or("").to_string())),
                    Some("try") => {
                        next_try += 1;
                        Some(Block::Try(next_try))
                    }
                    Some("except") => {
                        let tid = last_try_at.iter().rev().find(|(ind, _)| *ind == line.indent).map(|(_, t)| *t);
                        let mut catches = stmt.len() <= 2; // bare `except:`
                        for t in stmt.iter().skip(1) {
                            match t {
                                Tok::Name(n) if n == "as" => break,
                                Tok::Name(n) if CATCHES_IMPORT_ERROR.contains(&n.as_str()) => catches = true,
                                _ => {}
                            }
                        }
                        Some(Block::Except(tid.unwrap_or(0), catches && tid.is_some()))
                    }
                    Some("if") => Some(if_block(stmt)),
                    Some("class" | "elif" | "else" | "finally" | "for" | "while" | "with" | "match" | "case") => {
                        Some(Block::Other)
                    }
                    _ => None,
                };
                if let Some(b) = block {
                    if let Block::Try(t) = b {
                        last_try_at.retain(|(ind, _)| *ind != line.indent);
                        last_try_at.push((line.indent, t));
                    }
                    // The header's own line indent; nested one-liners stack.
                    let ind = if pushed_header { line.indent + si } else { line.indent };
                    stack.push((ind, b));
                    pushed_header = true;
                }
            }
            let ctx = Context::of(&stack);
            match first {
                Some("import") => parse_import(stmt, line.lineno, &ctx, &mut out),
                Some("from") => parse_from(stmt, line.lineno, &ctx, &mut out),
                _ => {}
            }
            // Names, codec literals, dynamic imports.
            for k in s..end {
                let t = &toks[k];
                let prev = k.checked_sub(1).and_then(|p| toks.get(p));
                match t {
                    Tok::Op(o) if matches!(o.as_str(), "(" | "[" | "{") => {
                        calls.push(if o == "(" { name(prev).map(str::to_string) } else { None });
                    }
                    Tok::Op(o) if matches!(o.as_str(), ")" | "]" | "}") => {
                        calls.pop();
                    }
                    Tok::Name(n) => {
                        let defining = matches!(name(prev), Some("def") | Some("class"));
                        let kwarg = !calls.is_empty() && is_op(toks.get(k + 1), "=");
                        if !defining && !kwarg && !ctx.type_checking {
                            out.uses.insert((ctx.at.clone(), is_op(prev, "."), n.clone()));
                        }
                        if (n == "__import__" || n == "import_module") && is_op(toks.get(k + 1), "(") {
                            dynamic_import(toks, k, line.lineno, &ctx, &mut out);
                        }
                    }
                    Tok::Str { value: Some(v) } if v.len() <= 40 => {
                        let in_call = (is_op(prev, "(") || is_op(prev, ","))
                            && calls.last().and_then(|c| c.as_deref()).is_some_and(|c| CODEC_CALLS.contains(&c));
                        let named = is_op(prev, "=")
                            && k >= 2
                            && name(toks.get(k - 2)).is_some_and(|n| {
                                let n = n.to_ascii_lowercase();
                                n.contains("encoding") || n.contains("charset") || n.contains("codec")
                            });
                        if in_call || named {
                            out.codec_literals.insert((ctx.at.clone(), v.clone()));
                        }
                    }
                    _ => {}
                }
            }
        }
        if name(toks.first()) == Some("__all__") {
            for t in toks {
                if let Tok::Str { value: Some(v) } = t {
                    out.all.push(v.clone());
                }
            }
        }
    }
    out
}

/// `if TYPE_CHECKING:` / `if typing.TYPE_CHECKING:` / `if __name__ == "__main__":`.
fn if_block(stmt: &[Tok]) -> Block {
    let cond: Vec<&Tok> = stmt.iter().skip(1).filter(|t| !is_op(Some(t), ":")).collect();
    let names: Vec<&str> = cond.iter().filter_map(|t| name(Some(t))).collect();
    if names.last() == Some(&"TYPE_CHECKING") && cond.len() <= 3 && !names.contains(&"not") {
        return Block::TypeChecking;
    }
    let main = cond.iter().any(|t| matches!(t, Tok::Str { value: Some(v) } if v == "__main__"));
    if main && names == ["__name__"] && cond.iter().any(|t| is_op(Some(t), "==")) && cond.len() == 3 {
        return Block::MainGuard;
    }
    Block::Other
}

struct Context {
    at: Where,
    in_try: Option<usize>,
    fallback_of: Option<usize>,
    type_checking: bool,
}

impl Context {
    fn of(stack: &[(usize, Block)]) -> Context {
        let mut c = Context { at: Where::default(), in_try: None, fallback_of: None, type_checking: false };
        let mut try_done = false;
        for (_, b) in stack.iter().rev() {
            match b {
                Block::Def(n) if c.at.function.is_none() => c.at.function = Some(n.clone()),
                Block::Try(t) if !try_done => {
                    c.in_try = Some(*t);
                    try_done = true;
                }
                Block::Except(t, catches) if !try_done => {
                    // A handler for something else: plain imports at this level.
                    if *catches {
                        c.fallback_of = Some(*t);
                    }
                    try_done = true;
                }
                Block::TypeChecking => c.type_checking = true,
                Block::MainGuard => c.at.main_guard = true,
                _ => {}
            }
        }
        c
    }

    fn make(&self, module: String, level: usize, names: Vec<String>, dynamic: bool, lineno: usize) -> ImportRef {
        ImportRef {
            module,
            level,
            names,
            at: self.at.clone(),
            in_try: self.in_try,
            fallback_of: self.fallback_of,
            dynamic,
            lineno,
        }
    }
}

/// Reads `a.b.c` at `toks[k..]`; returns the name and the index after it.
fn dotted(toks: &[Tok], mut k: usize) -> (String, usize) {
    let mut s = String::new();
    while let Some(n) = name(toks.get(k)).filter(|n| *n != "import") {
        s.push_str(n);
        k += 1;
        if is_op(toks.get(k), ".") && name(toks.get(k + 1)).is_some() {
            s.push('.');
            k += 1;
        } else {
            break;
        }
    }
    (s, k)
}

fn parse_import(stmt: &[Tok], lineno: usize, ctx: &Context, out: &mut Scan) {
    if ctx.type_checking {
        out.type_checking_only += 1;
        return;
    }
    let mut k = 1;
    while k < stmt.len() {
        let (m, nk) = dotted(stmt, k);
        if m.is_empty() {
            k += 1;
            continue;
        }
        out.imports.push(ctx.make(m, 0, Vec::new(), false, lineno));
        k = nk;
        if name(stmt.get(k)) == Some("as") {
            k += 2;
        }
        // Skip to the next comma.
        while k < stmt.len() && !is_op(stmt.get(k), ",") {
            k += 1;
        }
        k += 1;
    }
}

fn parse_from(stmt: &[Tok], lineno: usize, ctx: &Context, out: &mut Scan) {
    let mut k = 1;
    let mut level = 0;
    loop {
        match stmt.get(k) {
            Some(Tok::Op(o)) if o == "." => level += 1,
            Some(Tok::Op(o)) if o == "..." => level += 3,
            _ => break,
        }
        k += 1;
    }
    let (m, nk) = dotted(stmt, k);
    k = nk;
    if name(stmt.get(k)) != Some("import") || (m.is_empty() && level == 0) {
        return;
    }
    if ctx.type_checking {
        out.type_checking_only += 1;
        return;
    }
    k += 1;
    let mut names = Vec::new();
    while k < stmt.len() {
        match &stmt[k] {
            Tok::Op(o) if o == "*" => names.push("*".to_string()),
            Tok::Name(n) if n == "as" => k += 1,
            Tok::Name(n) => names.push(n.clone()),
            _ => {}
        }
        k += 1;
    }
    out.imports.push(ctx.make(m, level, names, false, lineno));
}

/// `__import__('x')`, `importlib.import_module('x')`,
/// `import_module('.x', __name__)` / `import_module('.x', package='p')`.
fn dynamic_import(toks: &[Tok], k: usize, lineno: usize, ctx: &Context, out: &mut Scan) {
    let Some(Tok::Str { value: Some(v) }) = toks.get(k + 2) else { return };
    let after = toks.get(k + 3);
    if !(is_op(after, ",") || is_op(after, ")")) || v.is_empty() || ctx.type_checking {
        return;
    }
    let level = v.chars().take_while(|c| *c == '.').count();
    let module = v[level..].to_string();
    if level == 0 {
        out.imports.push(ctx.make(module, 0, Vec::new(), true, lineno));
        return;
    }
    // Relative: the anchor package must be this module's own (`__name__`
    // for a package, `__package__`), or a literal.
    let mut j = k + 4;
    if name(toks.get(j)) == Some("package") && is_op(toks.get(j + 1), "=") {
        j += 2;
    }
    match toks.get(j) {
        Some(Tok::Name(n)) if n == "__name__" || n == "__package__" => {
            out.imports.push(ctx.make(module, level, Vec::new(), true, lineno));
        }
        Some(Tok::Str { value: Some(p) }) => {
            // Resolve against the literal package right away.
            let mut parts: Vec<&str> = p.split('.').collect();
            for _ in 1..level {
                parts.pop();
            }
            let mut abs = parts.join(".");
            if !module.is_empty() {
                if !abs.is_empty() {
                    abs.push('.');
                }
                abs.push_str(&module);
            }
            if !abs.is_empty() {
                out.imports.push(ctx.make(abs, 0, Vec::new(), true, lineno));
            }
        }
        _ => {}
    }
}
