//! `--chown`: `user`, `user:group`, `uid`, `uid:gid`, names looked up in the
//! destination root filesystem's `/etc/passwd` and `/etc/group`.
//!
//! As BuildKit (`solver/llbsolver/file/user_linux.go`): a numeric user
//! without a group gives gid = uid ("Providing a username without groupname
//! or a UID without GID will use the same numeric UID as the GID", Docker
//! reference); a user *name* without a group takes the primary gid of its
//! `/etc/passwd` entry, which is what BuildKit does (it reads both fields
//! from the entry). BuildKit silently falls back to 0 for a name it cannot
//! find; we fail instead, as the classic builder did ("can't find uid for
//! user"), since a silent root owner is never what was meant.

use std::fs;
use std::io;

use super::error::{CopyError, Result};
use super::root::Root;

/// Parses `spec` and resolves names in `root` (the destination root).
pub(crate) fn resolve_chown(spec: &str, root: &Root) -> Result<(u32, u32)> {
    let invalid = |reason: &str| CopyError::InvalidChown { spec: spec.to_string(), reason: reason.to_string() };
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() {
        return Err(invalid("the user is empty"));
    }
    if group == Some("") {
        return Err(invalid("the group after ':' is empty"));
    }
    let (uid, mut gid) = match parse_id(user) {
        Some(id) => (id, id),
        None => {
            let passwd = read_db(root, "/etc/passwd")?;
            match lookup(&passwd, user, 2, 3) {
                Some((uid, Some(gid))) => (uid, gid),
                _ => return Err(CopyError::UnknownUser { spec: spec.to_string(), name: user.to_string() }),
            }
        }
    };
    if let Some(group) = group {
        gid = match parse_id(group) {
            Some(id) => id,
            None => {
                let groups = read_db(root, "/etc/group")?;
                match lookup(&groups, group, 2, usize::MAX) {
                    Some((gid, _)) => gid,
                    None => return Err(CopyError::UnknownGroup { spec: spec.to_string(), name: group.to_string() }),
                }
            }
        };
    }
    Ok((uid, gid))
}

/// A decimal id (Go's `strconv.Atoi` accepts what fits; ids are 32-bit).
fn parse_id(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The file at `path` inside the root (symlinks followed inside it); empty
/// when it does not exist.
fn read_db(root: &Root, path: &str) -> Result<String> {
    let r = root.resolve(path.as_bytes(), true, None)?;
    match fs::read(&r.path) {
        Ok(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => Ok(String::new()),
        Err(e) => Err(CopyError::io("read", path, e)),
    }
}

/// First line of a colon-separated database whose field 0 is `name`:
/// (numeric field `id_field`, numeric field `second`). Comments, blank and
/// malformed lines are skipped, as runc's parser does.
fn lookup(db: &str, name: &str, id_field: usize, second: usize) -> Option<(u32, Option<u32>)> {
    for line in db.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(':').collect();
        if fields.first() != Some(&name) {
            continue;
        }
        let Some(id) = fields.get(id_field).and_then(|f| parse_id(f.trim())) else {
            continue;
        };
        let other = fields.get(second).and_then(|f| parse_id(f.trim()));
        return Some((id, other));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_skips_comments_and_malformed_lines() {
        let db = "# c\nbad\napp:x:notanumber:1\napp:x:1000:1001:App:/home/app:/bin/sh\n";
        assert_eq!(lookup(db, "app", 2, 3), Some((1000, Some(1001))));
        assert_eq!(lookup(db, "nobody", 2, 3), None);
    }

    #[test]
    fn ids_are_decimal_u32() {
        assert_eq!(parse_id("0"), Some(0));
        assert_eq!(parse_id("4294967295"), Some(u32::MAX));
        assert_eq!(parse_id("4294967296"), None);
        assert_eq!(parse_id("-1"), None);
        assert_eq!(parse_id("+1"), None);
    }
}
