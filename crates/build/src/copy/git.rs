//! ADD's Git sources: which sources are Git repositories, resolving the
//! ref to a commit, and checking that commit out for the copy.
//!
//! As BuildKit's `dfgitutil.ParseGitRef` and its git source:
//! - **Which sources**: `http(s)://` URLs whose path ends in `.git`,
//!   every `git://` and `ssh://` URL, and SCP-like `user@host:path`
//!   addresses. distill also takes `file://` URLs whose path ends in `.git`
//!   (a local repository, bare or not; BuildKit refuses the scheme), and
//!   refuses other `file://` sources with a clear error.
//! - **Fragment**: `#ref:subdir` (either part optional), or the CSV form
//!   `##ref=…,commit=…,subdir=…`; query parameters `ref`, `tag`, `branch`,
//!   `subdir`, `checksum`/`commit`, `keep-git-dir`, `submodules` as in
//!   BuildKit's newer URL form. The ref is a branch, a tag or a commit
//!   (full, or a prefix of at least one hex digit when no ref of that
//!   name exists); empty means the remote's `HEAD`.
//! - **Resolution**: `git ls-remote` turns the ref into a commit before the
//!   step's cache lookup (a full commit id needs no lookup), so the key is
//!   the commit and a moved branch invalidates the step. Names are tried
//!   as git does (`refs/<ref>`, `refs/tags/<ref>`, `refs/heads/<ref>`);
//!   annotated tags are peeled to their commit.
//! - **Checkout**: the commit alone is fetched (`--depth=1`; everything
//!   when the server refuses a bare commit id), checked out detached, with
//!   submodules when `.gitmodules` exists (unless `submodules=false`).
//!   `.git` is removed unless `--keep-git-dir=true`; when kept, a branch ref
//!   is checked out as that local branch and a tag ref exists locally.
//! - **Files**: modes 0644, or 0755 when any executable bit is set;
//!   directories 0755; owner 0:0 (before `--chown`). mtimes are the
//!   checkout time, or the commit time when `SOURCE_DATE_EPOCH` is set
//!   (BuildKit's `git.mtime=commit` for reproducible builds).
//! - **`--checksum`**: a commit id or a prefix of one (hex); a resolved
//!   commit that does not start with it fails the step.
//!
//! Git runs with prompts off (`GIT_TERMINAL_PROMPT=0`, ssh in batch mode)
//! so a missing credential is an error naming the URL, never a hang on a
//! terminal.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::{CopyError, Result};
use super::sys;

/// A Git source as written in ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRef {
    /// What git fetches from: the URL without fragment and query.
    pub remote: String,
    /// Branch, tag, commit (or prefix), full ref name, or empty for `HEAD`.
    pub reference: String,
    /// Directory inside the repository to copy (empty: all of it).
    pub subdir: String,
    /// `checksum=`/`commit=` from the URL.
    pub checksum: Option<String>,
    /// `keep-git-dir=` from the URL.
    pub keep_git_dir: Option<bool>,
    /// Fetch submodules (`submodules=false` turns it off).
    pub submodules: bool,
}

/// True when `scheme://` starts `source` (letters and digits only, as
/// BuildKit's `protoRegexp`).
fn scheme(source: &str) -> Option<String> {
    let (proto, _) = source.split_once("://")?;
    (!proto.is_empty() && proto.bytes().all(|b| b.is_ascii_alphanumeric())).then(|| proto.to_ascii_lowercase())
}

/// `user@host:path` (sshutil's SCP-style URL).
fn is_scp_like(source: &str) -> bool {
    let Some((user, rest)) = source.split_once('@') else { return false };
    let Some((host, _)) = rest.split_once(':') else { return false };
    !user.is_empty()
        && user.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Whether `source` is a Git source (see the module docs), without
/// validating its fragment.
pub fn is_git(source: &str) -> bool {
    matches!(parse(source), Ok(Some(_)) | Err(_))
}

/// Parses an ADD source: `Ok(None)` when it is not a Git source, an error
/// when it is one but malformed (or a `file://` URL that is not a Git
/// repository).
pub fn parse(source: &str) -> Result<Option<GitRef>> {
    let invalid = |reason: String| CopyError::InvalidGitSource { source_url: source.to_string(), reason };
    let (before_fragment, fragment) = match source.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (source, None),
    };
    let (remote, query) = match before_fragment.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (before_fragment, None),
    };
    let path_of = |url: &str| -> String {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        rest.find('/').map_or(String::new(), |i| rest[i..].to_string())
    };
    match scheme(source).as_deref() {
        Some("http" | "https") => {
            if !path_of(remote).ends_with(".git") {
                return Ok(None);
            }
        }
        Some("git" | "ssh") => {}
        Some("file") => {
            if !path_of(remote).trim_end_matches('/').ends_with(".git") {
                return Err(invalid(
                    "file:// sources must name a Git repository whose path ends in .git (distill reads no other local URLs)"
                        .into(),
                ));
            }
        }
        Some(_) => return Ok(None),
        None if is_scp_like(source) => {}
        None => return Ok(None),
    }
    let mut git = GitRef {
        remote: remote.to_string(),
        reference: String::new(),
        subdir: String::new(),
        checksum: None,
        keep_git_dir: None,
        submodules: true,
    };
    if let Some(fragment) = fragment {
        if let Some(csv) = fragment.strip_prefix('#') {
            for field in csv.split(',').filter(|f| !f.is_empty()) {
                let Some((key, value)) = field.split_once('=') else {
                    return Err(invalid(format!("invalid field {field:?} in the fragment: must be key=value")));
                };
                match key.to_ascii_lowercase().as_str() {
                    "ref" => git.reference = value.to_string(),
                    "commit" => git.checksum = Some(value.to_string()),
                    "subdir" => git.subdir = value.to_string(),
                    other => {
                        return Err(invalid(format!(
                            "unexpected key {other:?} in the fragment (supported keys: ref, commit, subdir)"
                        )));
                    }
                }
            }
        } else {
            let (reference, subdir) = fragment.split_once(':').unwrap_or((fragment, ""));
            git.reference = reference.to_string();
            git.subdir = subdir.to_string();
        }
    }
    if let Some(query) = query {
        load_query(&mut git, query).map_err(invalid)?;
    }
    if git.reference.is_empty()
        && let Some(c) = &git.checksum
    {
        git.reference = c.clone();
    }
    if git.reference.starts_with('-') {
        return Err(invalid(format!("invalid ref {:?}", git.reference)));
    }
    Ok(Some(git))
}

/// BuildKit's query form (`?tag=v1&subdir=docs`).
fn load_query(git: &mut GitRef, query: &str) -> std::result::Result<(), String> {
    let (mut tag, mut branch) = (None, None);
    let mut seen = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').map_or((pair, None), |(k, v)| (k, Some(v)));
        if seen.contains(&key) {
            return Err(format!("query {key:?} has multiple values"));
        }
        seen.push(key);
        let flag = |name: &str| -> std::result::Result<bool, String> {
            match value {
                None | Some("") => Ok(true),
                Some(v) => parse_bool(v).ok_or_else(|| format!("invalid {name} value: {v:?}")),
            }
        };
        let value_of = || value.filter(|v| !v.is_empty()).ok_or_else(|| format!("query {key:?} has no value"));
        match key {
            "ref" => {
                let v = value_of()?;
                if !git.reference.is_empty() && git.reference != v {
                    return Err(format!("ref conflicts: {:?} vs {v:?}", git.reference));
                }
                git.reference = v.to_string();
            }
            "tag" => tag = Some(value_of()?.to_string()),
            "branch" => branch = Some(value_of()?.to_string()),
            "subdir" => {
                let v = value_of()?;
                if !git.subdir.is_empty() && git.subdir != v {
                    return Err(format!("subdir conflicts: {:?} vs {v:?}", git.subdir));
                }
                git.subdir = v.to_string();
            }
            "checksum" | "commit" => git.checksum = Some(value_of()?.to_string()),
            "keep-git-dir" => git.keep_git_dir = Some(flag("keep-git-dir")?),
            "submodules" => git.submodules = flag("submodules")?,
            other => return Err(format!("unexpected query {other:?}")),
        }
    }
    if tag.is_some() && branch.is_some() {
        return Err("branch conflicts with tag".into());
    }
    for (value, prefix) in [(tag, "refs/tags/"), (branch, "refs/heads/")] {
        let Some(value) = value else { continue };
        let full = if value.starts_with(prefix) { value } else { format!("{prefix}{value}") };
        if !git.reference.is_empty() && git.reference != full {
            return Err(format!("ref conflicts: {:?} vs {full:?}", git.reference));
        }
        git.reference = full;
    }
    Ok(())
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A `--checksum` for a Git source: a commit id or a prefix of one.
pub fn check_checksum(spec: &str) -> Result<String> {
    if spec.is_empty() || spec.len() > 64 || !spec.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CopyError::InvalidChecksum {
            spec: spec.to_string(),
            reason: "a Git source's checksum is a commit id or a prefix of one (hex digits)".into(),
        });
    }
    Ok(spec.to_ascii_lowercase())
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A full commit id (SHA-1 or SHA-256).
fn is_full_commit(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && is_hex(s)
}

/// A Git source resolved to a commit, with the working directory it is
/// (or will be) fetched into.
#[derive(Debug)]
pub struct Resolved {
    /// The source.
    pub git: GitRef,
    /// The commit id (lowercase hex).
    pub commit: String,
    /// The full ref name the commit came from (`refs/heads/main`), if any.
    pub full_ref: Option<String>,
    /// The work tree (`<dir>/tree`); holds the fetched objects once fetched.
    tree: PathBuf,
    fetched: bool,
}

/// Resolves `git`'s ref to a commit (`git ls-remote`; a commit prefix
/// fetches the repository into `dir` to expand it). `dir` must not exist
/// or be empty; it is the source's working area until [`checkout`].
pub fn resolve(git: GitRef, dir: &Path) -> Result<Resolved> {
    let tree = dir.join("tree");
    let mut r = Resolved { git, commit: String::new(), full_ref: None, tree, fetched: false };
    let reference = r.git.reference.clone();
    if is_full_commit(&reference) {
        r.commit = reference.to_ascii_lowercase();
        return Ok(r);
    }
    let remote = r.git.remote.clone();
    let listed = if reference.is_empty() {
        run_git(&remote, None, &["ls-remote", "--symref", "--", &remote, "HEAD"])?
    } else {
        run_git(&remote, None, &["ls-remote", "--", &remote, &reference, &format!("{reference}^{{}}")])?
    };
    let refs: Vec<(&str, &str)> = listed
        .lines()
        .filter_map(|l| {
            let (sha, name) = l.split_once('\t')?;
            Some((sha.trim(), name.trim()))
        })
        .collect();
    if reference.is_empty() {
        let Some((sha, _)) = refs.iter().find(|(sha, name)| *name == "HEAD" && !sha.starts_with("ref:")) else {
            return Err(CopyError::Git { url: remote, reason: "the remote has no HEAD to check out".into() });
        };
        r.commit = sha.to_ascii_lowercase();
        r.full_ref = refs.iter().find_map(|(sha, name)| {
            (*name == "HEAD").then(|| sha.strip_prefix("ref:").map(|s| s.trim().to_string())).flatten()
        });
        return Ok(r);
    }
    let candidates = if reference.starts_with("refs/") {
        vec![reference.clone()]
    } else {
        vec![format!("refs/{reference}"), format!("refs/tags/{reference}"), format!("refs/heads/{reference}")]
    };
    for candidate in candidates {
        let direct = refs.iter().find(|(_, name)| *name == candidate);
        let peeled = refs.iter().find(|(_, name)| *name == format!("{candidate}^{{}}"));
        if let Some((sha, _)) = peeled.or(direct) {
            r.commit = sha.to_ascii_lowercase();
            r.full_ref = Some(candidate);
            return Ok(r);
        }
    }
    if is_hex(&reference) && reference.len() < 64 {
        // A commit prefix: only the repository's objects can expand it.
        fetch_all(&r)?;
        r.fetched = true;
        let full = run_git(&remote, Some(&r.tree), &["rev-parse", "--verify", &format!("{reference}^{{commit}}")])
            .map_err(|_| CopyError::Git {
                url: remote.clone(),
                reason: format!("{reference:?} is neither a ref nor a commit of the repository"),
            })?;
        r.commit = full.trim().to_ascii_lowercase();
        return Ok(r);
    }
    Err(CopyError::Git { url: remote, reason: format!("ref {reference:?} not found") })
}

/// `git init` of the work tree, with `origin` the remote.
fn init(r: &Resolved) -> Result<()> {
    let remote = &r.git.remote;
    fs::create_dir_all(&r.tree).map_err(|e| CopyError::io("mkdir", r.tree.display().to_string(), e))?;
    run_git(remote, Some(&r.tree), &["init", "-q"])?;
    run_git(remote, Some(&r.tree), &["remote", "add", "origin", remote])?;
    Ok(())
}

/// Every branch and tag (for commit prefixes, and servers that refuse
/// fetching a commit by id).
fn fetch_all(r: &Resolved) -> Result<()> {
    if !r.tree.join(".git").is_dir() {
        init(r)?;
    }
    run_git(
        &r.git.remote,
        Some(&r.tree),
        &["fetch", "-q", "--no-tags", "origin", "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"],
    )?;
    Ok(())
}

/// What [`checkout`] produced.
#[derive(Debug)]
pub struct CheckedOut {
    /// The work tree root (the repository's top directory).
    pub root: PathBuf,
    /// The directory (or file) to copy, relative to `root` (`.` for all).
    pub source: String,
}

/// Fetches and checks out the resolved commit, applying the module's file
/// rules. `keep_git_dir` keeps `.git`; `commit_mtime` sets every mtime to
/// the commit time.
pub fn checkout(mut r: Resolved, keep_git_dir: bool, commit_mtime: bool) -> Result<CheckedOut> {
    let remote = r.git.remote.clone();
    if !r.fetched {
        init(&r)?;
        let by_id = run_git(&remote, Some(&r.tree), &["fetch", "-q", "--depth=1", "--no-tags", "origin", &r.commit]);
        if by_id.is_err() {
            // Some servers only serve advertised refs.
            fetch_all(&r)?;
        }
        r.fetched = true;
    }
    let tree = r.tree.clone();
    let commit = r.commit.clone();
    run_git(&remote, Some(&tree), &["-c", "advice.detachedHead=false", "checkout", "-q", "--detach", &commit])
        .map_err(|_| CopyError::Git {
            url: remote.clone(),
            reason: format!("commit {commit} is not in the repository"),
        })?;
    if keep_git_dir && let Some(full) = &r.full_ref {
        if let Some(branch) = full.strip_prefix("refs/heads/") {
            run_git(&remote, Some(&tree), &["checkout", "-q", "-B", branch, &commit])?;
        } else if full.starts_with("refs/tags/") {
            run_git(&remote, Some(&tree), &["update-ref", full, &commit])?;
        }
    }
    if r.git.submodules && tree.join(".gitmodules").exists() {
        run_git(&remote, Some(&tree), &["submodule", "update", "-q", "--init", "--recursive", "--depth=1"])?;
    }
    let mtime = if commit_mtime {
        let out = run_git(&remote, Some(&tree), &["show", "-s", "--format=%ct", &commit])?;
        let secs: i64 = out
            .trim()
            .parse()
            .map_err(|_| CopyError::Git { url: remote.clone(), reason: format!("unreadable commit time {out:?}") })?;
        Some(secs.saturating_mul(1_000_000_000))
    } else {
        None
    };
    if !keep_git_dir {
        let git_dir = tree.join(".git");
        fs::remove_dir_all(&git_dir).map_err(|e| CopyError::io("remove", git_dir.display().to_string(), e))?;
    }
    normalize(&tree, true, mtime).map_err(|e| CopyError::io("normalize checkout", tree.display().to_string(), e))?;
    let subdir = r.git.subdir.trim_matches('/');
    let source = if subdir.is_empty() { ".".to_string() } else { subdir.to_string() };
    Ok(CheckedOut { root: tree, source })
}

/// Git's modes (0644/0755 files, 0755 directories) whatever the umask,
/// and the given mtime. `.git` at the top is left as git wrote it, apart
/// from the mtime.
fn normalize(dir: &Path, top: bool, mtime: Option<i64>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let ft = entry.file_type()?;
        let is_git_dir = top && entry.file_name() == ".git";
        if ft.is_dir() {
            if is_git_dir {
                if let Some(t) = mtime {
                    set_tree_times(&path, t)?;
                }
                continue;
            }
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
            normalize(&path, false, mtime)?;
        } else if ft.is_file() {
            let mode = entry.metadata()?.permissions().mode();
            let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
        }
        if let Some(t) = mtime {
            sys::set_times(&path, t)?;
        }
    }
    if let Some(t) = mtime {
        sys::set_times(dir, t)?;
    }
    Ok(())
}

fn set_tree_times(dir: &Path, t: i64) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            set_tree_times(&entry.path(), t)?;
        } else {
            sys::set_times(&entry.path(), t)?;
        }
    }
    sys::set_times(dir, t)
}

/// Runs git (in `cwd`), returning its stdout; a failure is an error naming
/// `url` with git's last message lines.
fn run_git(url: &str, cwd: Option<&Path>, args: &[&str]) -> Result<String> {
    let mut cmd = Command::new("git");
    if let Some(cwd) = cwd {
        cmd.arg("-C").arg(cwd);
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C");
    // ssh must not ask for a password or host key on a terminal either.
    if std::env::var_os("GIT_SSH_COMMAND").is_none() && std::env::var_os("GIT_SSH").is_none() {
        cmd.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
    }
    let out = cmd.output().map_err(|e| CopyError::Git {
        url: url.to_string(),
        reason: if e.kind() == io::ErrorKind::NotFound {
            "the git command is not installed (ADD from Git repositories runs git)".to_string()
        } else {
            format!("running git: {e}")
        },
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(3)..].join("; ");
        return Err(CopyError::Git {
            url: url.to_string(),
            reason: format!("git {} failed ({}): {tail}", args.first().copied().unwrap_or_default(), out.status),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(s: &str) -> GitRef {
        parse(s).unwrap().unwrap_or_else(|| panic!("{s} is a Git source"))
    }

    #[test]
    fn which_sources_are_git() {
        assert!(parse("https://github.com/moby/buildkit").unwrap().is_none(), "https needs .git");
        assert!(parse("https://example.com/file.tar.gz").unwrap().is_none());
        assert!(parse("src/dir").unwrap().is_none());
        assert!(parse("s3://bucket/x.git").unwrap().is_none());
        assert_eq!(git("https://github.com/moby/buildkit.git").remote, "https://github.com/moby/buildkit.git");
        assert_eq!(git("git://host/repo").remote, "git://host/repo");
        assert_eq!(git("ssh://git@host/repo").remote, "ssh://git@host/repo");
        assert_eq!(git("git@github.com:moby/buildkit.git").remote, "git@github.com:moby/buildkit.git");
        assert_eq!(git("file:///srv/repo.git#main").remote, "file:///srv/repo.git");
        assert!(parse("file:///srv/notes.txt").is_err(), "file:// must be a .git repository");
        assert!(is_git("file:///srv/notes.txt") && is_git("git@h:r") && !is_git("http://h/x"));
    }

    #[test]
    fn fragments_and_queries() {
        let g = git("https://github.com/moby/buildkit.git#v0.14.1:docs");
        assert_eq!((g.reference.as_str(), g.subdir.as_str()), ("v0.14.1", "docs"));
        let g = git("git@github.com:moby/buildkit.git#main");
        assert_eq!((g.reference.as_str(), g.subdir.as_str()), ("main", ""));
        let g = git("https://h/r.git#:sub/dir");
        assert_eq!((g.reference.as_str(), g.subdir.as_str()), ("", "sub/dir"));
        let g = git("https://h/r.git##ref=v1,subdir=docs,commit=abc123");
        assert_eq!((g.reference.as_str(), g.subdir.as_str(), g.checksum.as_deref()), ("v1", "docs", Some("abc123")));
        let g = git("https://h/r.git?tag=v1&subdir=docs&keep-git-dir&submodules=false");
        assert_eq!(g.reference, "refs/tags/v1");
        assert_eq!((g.subdir.as_str(), g.keep_git_dir, g.submodules), ("docs", Some(true), false));
        assert_eq!(git("https://h/r.git?branch=dev").reference, "refs/heads/dev");
        assert_eq!(git("https://h/r.git?commit=abcdef").reference, "abcdef");
        assert!(parse("https://h/r.git?tag=a&branch=b").is_err());
        assert!(parse("https://h/r.git?bogus=1").is_err());
        assert!(parse("https://h/r.git##ref").is_err());
        assert!(parse("https://h/r.git#--upload-pack=x").is_err(), "a ref is never an option");
    }

    #[test]
    fn checksums() {
        assert_eq!(check_checksum("BE1F38E").unwrap(), "be1f38e");
        assert!(check_checksum("sha256:abc").is_err());
        assert!(check_checksum("").is_err());
        assert!(is_full_commit(&"a".repeat(40)) && !is_full_commit("abc"));
    }
}
