//! `USER` resolution against the rootfs's own /etc/passwd and /etc/group,
//! with the semantics of runc's `GetExecUser` (which Docker and BuildKit use).

use std::fs;
use std::io;
use std::path::Path;

use super::error::ExecError;
use super::fsutil::resolve_in_root;

/// Who the process runs as.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserSpec {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// Home directory from /etc/passwd, used for `HOME` when the step's
    /// environment has none (`/` when unknown).
    pub home: Option<String>,
}

impl UserSpec {
    /// uid 0, gid 0, no supplementary groups, home `/root`.
    pub fn root() -> Self {
        UserSpec { uid: 0, gid: 0, additional_gids: Vec::new(), home: Some("/root".into()) }
    }
}

/// The largest uid/gid accepted (as runc: 2^31 - 1).
const MAX_ID: u64 = i32::MAX as u64;

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolves a Dockerfile `USER` value (`name`, `uid`, `name:group`,
/// `uid:gid`, `name:gid`, `uid:group`; empty means root) against the
/// rootfs's /etc/passwd and /etc/group (never the host's; symlinks are
/// resolved inside the rootfs).
///
/// - A name not in passwd is an error ("unable to find user x: no matching
///   entries in passwd file"); a numeric uid not in passwd is fine (gid 0).
/// - Without an explicit group, the supplementary groups are the groups that
///   list the user's name as a member; with one, there are none.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<UserSpec, ExecError> {
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, g),
        None => (user, ""),
    };
    let invalid = |reason: &str| ExecError::InvalidUser { user: user.to_string(), reason: reason.to_string() };
    let passwd = read_db(rootfs, "/etc/passwd")?.map(|t| parse_passwd(&t)).unwrap_or_default();
    let groups = read_db(rootfs, "/etc/group")?.map(|t| parse_group(&t)).unwrap_or_default();

    let numeric_uid = parse_id(user_part);
    let found = passwd.iter().find(|p| match (user_part, numeric_uid) {
        ("", _) => p.uid == 0,
        (_, Some(uid)) => p.uid == uid,
        (name, None) => p.name == name,
    });
    let mut spec = UserSpec { uid: 0, gid: 0, additional_gids: Vec::new(), home: None };
    let mut matched_name = None;
    match (found, numeric_uid) {
        (Some(p), _) => {
            spec.uid = p.uid;
            spec.gid = p.gid;
            spec.home = Some(p.home.clone()).filter(|h| !h.is_empty());
            matched_name = Some(p.name.clone());
        }
        (None, _) if user_part.is_empty() => {}
        (None, Some(uid)) => spec.uid = uid,
        (None, None) => {
            if user_part.chars().all(|c| c.is_ascii_digit() || c == '-') {
                return Err(invalid("uid out of range (0 to 2147483647)"));
            }
            return Err(ExecError::UserNotFound { user: user_part.to_string() });
        }
    }
    if spec.uid == 0 && spec.home.is_none() && found.is_none() {
        spec.home = Some("/root".into()).filter(|_| user_part.is_empty());
    }

    if !group_part.is_empty() {
        let numeric_gid = parse_id(group_part);
        let g = groups.iter().find(|g| match numeric_gid {
            Some(gid) => g.gid == gid,
            None => g.name == group_part,
        });
        spec.gid = match (g, numeric_gid) {
            (Some(g), _) => g.gid,
            (None, Some(gid)) => gid,
            (None, None) => {
                if group_part.chars().all(|c| c.is_ascii_digit() || c == '-') {
                    return Err(invalid("gid out of range (0 to 2147483647)"));
                }
                return Err(ExecError::GroupNotFound { group: group_part.to_string() });
            }
        };
    } else if let Some(name) = &matched_name {
        spec.additional_gids = groups.iter().filter(|g| g.members.iter().any(|m| m == name)).map(|g| g.gid).collect();
    }
    Ok(spec)
}

fn parse_id(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().filter(|&n| n <= MAX_ID).map(|n| n as u32)
}

/// Reads a database file of the rootfs; `Ok(None)` when it does not exist.
fn read_db(rootfs: &Path, path: &str) -> Result<Option<String>, ExecError> {
    let ctx = |e: io::Error| ExecError::io(format!("reading {path} of the image"), e);
    let rel = resolve_in_root(rootfs, path).map_err(ctx)?;
    match fs::read(rootfs.join(rel)) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => Ok(None),
        Err(e) => Err(ctx(e)),
    }
}

/// Lines of a colon-separated database, without comments and blank lines.
fn records(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(|l| l.split(':').collect())
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    records(text)
        .filter_map(|f| {
            let field = |i: usize| f.get(i).copied().unwrap_or("");
            Some(PasswdEntry {
                name: field(0).to_string(),
                uid: parse_id(field(2))?,
                gid: parse_id(field(3)).unwrap_or(0),
                home: field(5).to_string(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    records(text)
        .filter_map(|f| {
            let field = |i: usize| f.get(i).copied().unwrap_or("");
            Some(GroupEntry {
                name: field(0).to_string(),
                gid: parse_id(field(2))?,
                members: field(3).split(',').map(str::trim).filter(|m| !m.is_empty()).map(String::from).collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn rootfs(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("distill-user-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("etc")).unwrap();
        fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\n# comment\n\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
             app:x:1000:1000::/home/app:/bin/sh\nshort:x:1001\n",
        )
        .unwrap();
        fs::write(
            dir.join("etc/group"),
            "root:x:0:\nadm:x:4:app\nstaff:x:50:other, app\nnogroup:x:65534:\napp:x:1000:\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn names_and_ids() {
        let r = rootfs("ids");
        let u = resolve_user(&r, "").unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids.clone(), u.home.as_deref()), (0, 0, vec![], Some("/root")));
        let u = resolve_user(&r, "nobody").unwrap();
        assert_eq!((u.uid, u.gid), (65534, 65534));
        let u = resolve_user(&r, "app").unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids, u.home.as_deref()), (1000, 1000, vec![4, 50], Some("/home/app")));
        // A numeric uid in passwd gets the name's groups too.
        let u = resolve_user(&r, "1000").unwrap();
        assert_eq!(u.additional_gids, vec![4, 50]);
        // Explicit group: no supplementary groups.
        let u = resolve_user(&r, "app:staff").unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (1000, 50, vec![]));
        let u = resolve_user(&r, "1000:4242").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 4242));
        let u = resolve_user(&r, "4242:4").unwrap();
        assert_eq!((u.uid, u.gid, u.home), (4242, 4, None));
        let u = resolve_user(&r, "4242").unwrap();
        assert_eq!((u.uid, u.gid), (4242, 0));
        let u = resolve_user(&r, "short").unwrap();
        assert_eq!((u.uid, u.gid), (1001, 0));
        fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn errors() {
        let r = rootfs("errors");
        let e = resolve_user(&r, "x").unwrap_err();
        assert_eq!(e.to_string(), "unable to find user x: no matching entries in passwd file");
        let e = resolve_user(&r, "app:nope").unwrap_err();
        assert_eq!(e.to_string(), "unable to find group nope: no matching entries in group file");
        assert!(resolve_user(&r, "99999999999").unwrap_err().to_string().contains("out of range"));
        fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn uses_the_rootfs_never_the_host() {
        let r = rootfs("symlink");
        // An absolute symlink points inside the rootfs, not at the host's file.
        fs::rename(r.join("etc/passwd"), r.join("passwd.real")).unwrap();
        std::os::unix::fs::symlink("/passwd.real", r.join("etc/passwd")).unwrap();
        assert_eq!(resolve_user(&r, "app").unwrap().uid, 1000);
        // No passwd at all: names fail, numbers work, the default is root.
        fs::remove_file(r.join("etc/passwd")).unwrap();
        assert!(matches!(resolve_user(&r, "root"), Err(ExecError::UserNotFound { .. })));
        assert_eq!(resolve_user(&r, "123").unwrap().uid, 123);
        assert_eq!(resolve_user(&r, "").unwrap(), UserSpec::root());
        fs::remove_dir_all(&r).unwrap();
    }
}
