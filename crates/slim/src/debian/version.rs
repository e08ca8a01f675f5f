//! Debian version numbers (`[epoch:]upstream[-revision]`) and dpkg's ordering.
//!
//! The comparison is a port of dpkg's `verrevcmp` (lib/dpkg/version.c): non-digit runs are compared character by
//! character with letters before non-letters and `~` before everything (even the end of the string), digit runs
//! numerically.

use std::cmp::Ordering;
use std::fmt;

/// A parsed Debian version. Equality and ordering follow dpkg, so `1.0` == `0:1.0` == `1.0-0`.
#[derive(Clone, Debug)]
pub struct Version {
    /// The epoch (0 when absent).
    pub epoch: u32,
    /// The upstream part.
    pub upstream: String,
    /// The Debian revision ("" when absent).
    pub revision: String,
}

/// Why a version string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Debian version {version:?}: {reason}")]
pub struct VersionError {
    /// The offending string.
    pub version: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Version {
    /// Parses `[epoch:]upstream[-revision]` the way dpkg does (the revision follows the last `-`).
    pub fn parse(s: &str) -> Result<Version, VersionError> {
        let err = |reason| VersionError { version: s.to_string(), reason };
        let s_trim = s.trim();
        if s_trim.is_empty() {
            return Err(err("empty version"));
        }
        if s_trim.chars().any(char::is_whitespace) {
            return Err(err("embedded whitespace"));
        }
        let (epoch, rest) = match s_trim.split_once(':') {
            Some((e, rest)) => {
                if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err("epoch is not a number"));
                }
                (e.parse::<u32>().map_err(|_| err("epoch is too big"))?, rest)
            }
            None => (0, s_trim),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => {
                if r.is_empty() {
                    return Err(err("empty revision"));
                }
                (u, r)
            }
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(err("empty upstream version"));
        }
        let ok_up = |c: char| c.is_ascii_alphanumeric() || ".+~-:".contains(c);
        if !upstream.chars().all(ok_up) {
            return Err(err("invalid character in upstream version"));
        }
        let ok_rev = |c: char| c.is_ascii_alphanumeric() || ".+~".contains(c);
        if !revision.chars().all(ok_rev) {
            return Err(err("invalid character in revision"));
        }
        Ok(Version { epoch, upstream: upstream.to_string(), revision: revision.to_string() })
    }
}

impl std::str::FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.upstream)?;
        if !self.revision.is_empty() {
            write!(f, "-{}", self.revision)?;
        }
        Ok(())
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(&self.upstream, &other.upstream))
            .then_with(|| verrevcmp(&self.revision, &other.revision))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

/// Compares two version strings with dpkg's rules (`dpkg --compare-versions`).
pub fn compare_versions(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(Version::parse(a)?.cmp(&Version::parse(b)?))
}

/// dpkg's character weight: digits 0 (never reached here), letters by ASCII, `~` below everything, other characters
/// after all letters; the end of the string weighs 0.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// Port of dpkg's `verrevcmp`.
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0usize, 0usize);
    let at = |s: &[u8], k: usize| s.get(k).copied();
    let is_digit = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_digit());
    while i < a.len() || j < b.len() {
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(at(a, i));
            let bc = order(at(b, j));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while at(a, i) == Some(b'0') {
            i += 1;
        }
        while at(b, j) == Some(b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while is_digit(at(a, i)) && is_digit(at(b, j)) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if is_digit(at(a, i)) {
            return Ordering::Greater;
        }
        if is_digit(at(b, j)) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}
