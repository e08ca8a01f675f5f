//! `--chmod`: an octal mode (`0755`, `755`, at most `07777`, as BuildKit's
//! `strconv.ParseUint(s, 8, 32)`), or a symbolic one as chmod(1) writes it
//! (`u+x,g-w`, `a=rX`, `go=u-w`), which BuildKit accepts since Dockerfile
//! 1.14 (labs earlier) and evaluates with BSD `setmode`/`getmode` semantics
//! (the `dchapes-mode` package fsutil uses) with a umask of 0: a clause
//! without "who" means `a`.

use super::error::{CopyError, Result};

/// A parsed `--chmod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    /// Octal: every copied file and directory gets exactly these bits.
    Absolute(u32),
    /// Symbolic: applied to each entry's own mode.
    Symbolic(Vec<Clause>),
}

/// One comma-separated clause of a symbolic mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// Bits the clause may touch (from its "who" letters).
    who: u32,
    /// Whether "who" was empty or `a` (sticky bit allowed with `t`).
    all: bool,
    actions: Vec<Action>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Action {
    op: u8,
    perms: Vec<u8>,
}

const USER: u32 = 0o4700;
const GROUP: u32 = 0o2070;
const OTHER: u32 = 0o0007;

impl Chmod {
    /// Parses a `--chmod` value.
    pub fn parse(spec: &str) -> Result<Chmod> {
        let err = |reason: &str| CopyError::InvalidChmod { spec: spec.to_string(), reason: reason.to_string() };
        if !spec.is_empty() && spec.bytes().all(|b| b.is_ascii_digit()) {
            return match u32::from_str_radix(spec, 8) {
                Ok(m) if m <= 0o7777 => Ok(Chmod::Absolute(m)),
                _ => Err(err("it should be octal string and between 0 and 07777")),
            };
        }
        let mut clauses = Vec::new();
        for part in spec.split(',') {
            let b = part.as_bytes();
            let mut i = 0;
            let mut who = 0;
            let mut all = false;
            while i < b.len() {
                match b[i] {
                    b'u' => who |= USER,
                    b'g' => who |= GROUP,
                    b'o' => who |= OTHER,
                    b'a' => {
                        who |= 0o7777;
                        all = true;
                    }
                    _ => break,
                }
                i += 1;
            }
            if who == 0 {
                who = 0o7777;
                all = true;
            }
            let mut actions: Vec<Action> = Vec::new();
            while i < b.len() {
                match b[i] {
                    op @ (b'+' | b'-' | b'=') => actions.push(Action { op, perms: Vec::new() }),
                    p @ (b'r' | b'w' | b'x' | b'X' | b's' | b't' | b'u' | b'g' | b'o') => match actions.last_mut() {
                        Some(a) => a.perms.push(p),
                        None => return Err(err("a symbolic mode needs an operator (+, - or =) after who")),
                    },
                    other => {
                        return Err(err(&format!(
                            "unexpected {:?} in symbolic mode (expected [ugoa]*[+-=][rwxXstugo]*, comma-separated)",
                            char::from(other)
                        )));
                    }
                }
                i += 1;
            }
            if actions.is_empty() {
                return Err(err("it should be octal string and between 0 and 07777, or a symbolic mode like u+x,g-w"));
            }
            clauses.push(Clause { who, all, actions });
        }
        Ok(Chmod::Symbolic(clauses))
    }

    /// The mode (`& 0o7777`) an entry with mode `mode` gets.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let clauses = match self {
            Chmod::Absolute(m) => return *m,
            Chmod::Symbolic(c) => c,
        };
        let orig = mode & 0o7777;
        let mut cur = orig;
        for c in clauses {
            for a in &c.actions {
                let mut perm = 0;
                for &p in &a.perms {
                    perm |= match p {
                        b'r' => 0o444,
                        b'w' => 0o222,
                        b'x' => 0o111,
                        b'X' if is_dir || orig & 0o111 != 0 => 0o111,
                        b'X' => 0,
                        b's' => 0o6000,
                        b't' if c.all || c.who & (USER | GROUP) != 0 => 0o1000,
                        b't' => 0,
                        b'u' => ((cur >> 6) & 7) * 0o111,
                        b'g' => ((cur >> 3) & 7) * 0o111,
                        b'o' => (cur & 7) * 0o111,
                        _ => 0,
                    };
                }
                let mask = if c.all { 0o7777 } else { c.who | if perm & 0o1000 != 0 { 0o1000 } else { 0 } };
                match a.op {
                    b'+' => cur |= perm & mask,
                    b'-' => cur &= !(perm & mask),
                    _ => cur = (cur & !c.who) | (perm & mask),
                }
            }
        }
        cur & 0o7777
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str, mode: u32, dir: bool) -> u32 {
        Chmod::parse(s).unwrap().apply(mode, dir)
    }

    #[test]
    fn octal() {
        assert_eq!(Chmod::parse("0755").unwrap(), Chmod::Absolute(0o755));
        assert_eq!(Chmod::parse("755").unwrap(), Chmod::Absolute(0o755));
        assert_eq!(Chmod::parse("4755").unwrap(), Chmod::Absolute(0o4755));
        assert!(Chmod::parse("10000").is_err());
        assert!(Chmod::parse("789").is_err());
    }

    #[test]
    fn symbolic_like_chmod() {
        assert_eq!(sym("u+x", 0o644, false), 0o744);
        assert_eq!(sym("g-w", 0o664, false), 0o644);
        assert_eq!(sym("u+x,g-w", 0o664, false), 0o744);
        assert_eq!(sym("a=rX", 0o600, false), 0o444);
        assert_eq!(sym("a=rX", 0o700, false), 0o555);
        assert_eq!(sym("a=rX", 0o700, true), 0o555);
        assert_eq!(sym("a=rX", 0o600, true), 0o555);
        assert_eq!(sym("go=u-w", 0o700, false), 0o755);
        assert_eq!(sym("go=", 0o777, false), 0o700);
        assert_eq!(sym("=rw,+X", 0o744, false), 0o777);
        assert_eq!(sym("+x", 0o644, false), 0o755);
        assert_eq!(sym("u+s", 0o755, false), 0o4755);
        assert_eq!(sym("g+s", 0o755, true), 0o2755);
        assert_eq!(sym("+t", 0o777, true), 0o1777);
        assert_eq!(sym("o+t", 0o777, true), 0o777);
        assert_eq!(sym("u=rwx,g=rx,o=", 0o000, false), 0o750);
    }

    #[test]
    fn symbolic_errors() {
        for bad in ["", "u", "x+r", "u+q", "u+x,", "rwx"] {
            assert!(Chmod::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
