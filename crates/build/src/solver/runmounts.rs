//! What a RUN step gets besides its rootfs (BuildKit's extensions): the
//! command of a heredoc RUN, and `--mount` targets: tmpfs, cache
//! directories kept in the store across builds (empty, or seeded from a
//! stage, image or the context), secrets from `--secret`, SSH agents from
//! `--ssh`, and bind mounts of the context, another stage or an image. None of them
//! is part of the step's upper directory, so none ends up in a layer.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::path::{Path, PathBuf};

use distill_dockerfile::instructions::{Mount, RunInstruction, Sharing, ShellOrExec};
use distill_image::digest::Digest;

use super::config::shell;
use super::error::BuildError;
use super::ssh::SshRelay;
use crate::executor::{ActiveSnapshot, ExtraMount};
use distill_image::config::ContainerConfig;

/// A secret's value, as `--secret` gives it.
pub type Secrets = BTreeMap<String, Vec<u8>>;

/// Mounts set up for one RUN, released (snapshots unmounted, cache locks
/// dropped) when this is dropped, after the run.
#[derive(Default)]
pub(crate) struct PreparedMounts {
    pub mounts: Vec<ExtraMount>,
    /// `KEY=value` for `type=secret,env=KEY`.
    pub env: Vec<String>,
    pub snapshots: Vec<ActiveSnapshot>,
    pub locks: Vec<File>,
    pub relays: Vec<SshRelay>,
    /// Where the first SSH mount is, for `SSH_AUTH_SOCK` (as BuildKit).
    pub ssh_auth_sock: Option<String>,
}

/// argv of a RUN whose command uses heredocs, as BuildKit runs it: a lone
/// `<<EOF` with a `#!` body is written to a file and executed; a lone one
/// without is the shell's script; otherwise the command line and the bodies
/// go to the shell together (the shell reads the heredocs itself).
pub(crate) fn heredoc_argv(
    cc: Option<&ContainerConfig>,
    run: &RunInstruction,
    scratch: &Path,
    mounts: &mut Vec<ExtraMount>,
) -> Result<Vec<String>, BuildError> {
    let ShellOrExec::Shell(cmd) = &run.command else {
        return Err(BuildError::Internal("a heredoc RUN in exec form".into()));
    };
    let lone = run.heredocs.len() == 1 && is_lone_heredoc(cmd, &run.heredocs[0].name);
    if lone {
        let doc = &run.heredocs[0];
        if doc.content.starts_with("#!") {
            let file = scratch.join(format!("heredoc-{}", sanitize(&doc.name)));
            fs::write(&file, &doc.content).map_err(|e| io_err(&file, e))?;
            fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).map_err(|e| io_err(&file, e))?;
            let target = format!("/dev/pipes/{}", sanitize(&doc.name));
            mounts.push(ExtraMount::Bind { source: file, target: target.clone(), readonly: true });
            return Ok(vec![target]);
        }
        let mut argv = shell(cc);
        argv.push(doc.content.clone());
        return Ok(argv);
    }
    let mut script = cmd.clone();
    for doc in &run.heredocs {
        script.push('\n');
        script.push_str(&doc.content);
        script.push_str(&doc.name);
    }
    let mut argv = shell(cc);
    argv.push(script);
    Ok(argv)
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'` and nothing else.
fn is_lone_heredoc(cmd: &str, name: &str) -> bool {
    let Some(rest) = cmd.trim().strip_prefix("<<") else { return false };
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let unquoted: String = rest.chars().filter(|c| *c != '"' && *c != '\'').collect();
    unquoted == name
}

fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}

fn io_err(path: &Path, e: std::io::Error) -> BuildError {
    BuildError::Internal(format!("{}: {e}", path.display()))
}

/// A tmpfs mount.
pub(crate) fn tmpfs(m: &Mount) -> Result<ExtraMount, BuildError> {
    let target = m.target.clone().ok_or_else(|| BuildError::Internal("tmpfs mount without a target".into()))?;
    Ok(ExtraMount::Tmpfs { target, size: m.size })
}

/// Where cache mounts live in a store.
pub fn cache_mounts_dir(store_root: &Path) -> PathBuf {
    store_root.join("cache-mounts")
}

/// Cache mount directories: (count, bytes of their files).
pub fn cache_mounts_usage(store_root: &Path) -> (u64, u64) {
    let Ok(rd) = fs::read_dir(cache_mounts_dir(store_root)) else { return (0, 0) };
    let dirs: Vec<PathBuf> = rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    (dirs.len() as u64, dirs.iter().map(|d| tree_usage(d).1).sum())
}

/// Removes every cache mount no build is using; returns (removed, bytes).
/// Callers hold the store's writer lock, so no build starts meanwhile.
pub fn clear_cache_mounts(store_root: &Path) -> std::io::Result<(u64, u64)> {
    let dir = cache_mounts_dir(store_root);
    let Ok(rd) = fs::read_dir(&dir) else { return Ok((0, 0)) };
    let (mut removed, mut bytes) = (0, 0);
    for entry in rd.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let lock_path = path.with_extension("lock");
        let lock = File::options().create(true).truncate(false).write(true).open(&lock_path)?;
        if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
            continue; // in use
        }
        bytes += tree_usage(&path).1;
        fs::remove_dir_all(&path)?;
        let _ = fs::remove_file(&lock_path);
        removed += 1;
    }
    Ok((removed, bytes))
}

/// Files under `dir` (hard links counted once) and their bytes, as
/// `distill du` reports them.
pub fn tree_usage(dir: &Path) -> (u64, u64) {
    let (mut n, mut bytes) = (0, 0);
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(m) = e.path().symlink_metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.nlink() == 1 || seen.insert((m.dev(), m.ino())) {
                n += 1;
                bytes += m.len();
            }
        }
    }
    (n, bytes)
}

/// A cache mount: a directory under `<store>/cache-mounts/`, named after the
/// id, created with the mount's mode and owner, kept across builds.
/// `sharing=locked` waits for other users; `private` gets a fresh directory
/// while another build holds the cache. With `from=`, `seed` is the
/// directory a new cache starts as a copy of, and `seed_key` identifies its
/// content: as in BuildKit, a cache seeded from other content is another
/// cache.
pub(crate) fn cache(
    m: &Mount,
    root: &Path,
    scratch: &Path,
    seed: Option<(&Path, &Digest)>,
    out: &mut PreparedMounts,
) -> Result<(), BuildError> {
    let target = m.target.clone().ok_or_else(|| BuildError::Internal("cache mount without a target".into()))?;
    let id = m.effective_id().unwrap_or_else(|| target.clone());
    let dir_root = cache_mounts_dir(root);
    fs::create_dir_all(&dir_root).map_err(|e| io_err(&dir_root, e))?;
    let name = match seed {
        None => Digest::of(id.as_bytes()).hex(),
        Some((_, key)) => Digest::of(format!("{id}\0{key}").as_bytes()).hex(),
    };
    let lock_path = dir_root.join(format!("{name}.lock"));
    let lock =
        File::options().create(true).truncate(false).write(true).open(&lock_path).map_err(|e| io_err(&lock_path, e))?;
    let mut dir = dir_root.join(&name);
    match m.sharing.unwrap_or(Sharing::Shared) {
        Sharing::Shared => {
            rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockShared)
                .map_err(|e| io_err(&lock_path, e.into()))?;
        }
        Sharing::Locked => {
            rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
                .map_err(|e| io_err(&lock_path, e.into()))?;
        }
        Sharing::Private => {
            if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
                dir = scratch.join(format!("cache-{name}"));
            }
        }
    }
    if !dir.exists() {
        let tmp = dir.with_extension(format!("new-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        match seed {
            Some((from, _)) => copy_seed(from, &tmp)?,
            None => {
                fs::create_dir_all(&tmp).map_err(|e| io_err(&tmp, e))?;
                chown(&tmp, Some(m.uid.unwrap_or(0)), Some(m.gid.unwrap_or(0))).map_err(|e| io_err(&tmp, e))?;
                fs::set_permissions(&tmp, fs::Permissions::from_mode(m.mode.unwrap_or(0o755)))
                    .map_err(|e| io_err(&tmp, e))?;
            }
        }
        if fs::rename(&tmp, &dir).is_err() {
            // Another build made it first.
            let _ = fs::remove_dir_all(&tmp);
        }
    }
    out.mounts.push(ExtraMount::Bind { source: dir, target, readonly: m.readonly });
    out.locks.push(lock);
    Ok(())
}

/// A new cache directory as a copy of `from` (owners, modes, links, times).
fn copy_seed(from: &Path, to: &Path) -> Result<(), BuildError> {
    let meta = fs::metadata(from).map_err(|e| io_err(from, e))?;
    if !meta.is_dir() {
        return Err(BuildError::Internal(format!("cache mount source {} is not a directory", from.display())));
    }
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg("--")
        .arg(from)
        .arg(to)
        .output()
        .map_err(|e| BuildError::Internal(format!("seeding a cache mount with cp -a: {e}")))?;
    if !out.status.success() {
        let _ = fs::remove_dir_all(to);
        return Err(BuildError::Internal(format!(
            "seeding a cache mount from {}: {}",
            from.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// A secret: a file (mode 0400 unless told, owned by uid/gid) bind-mounted
/// read-only, and/or an environment variable. A missing secret is an error
/// when `required`, else the mount is skipped, as in BuildKit.
pub(crate) fn secret(m: &Mount, secrets: &Secrets, scratch: &Path, out: &mut PreparedMounts) -> Result<(), BuildError> {
    let id = m.effective_id().unwrap_or_default();
    let Some(value) = secrets.get(&id) else {
        if m.required {
            return Err(BuildError::Internal(format!(
                "secret {id:?} is required but was not given (distill build --secret id={id},src=FILE)"
            )));
        }
        return Ok(());
    };
    if let Some(env) = &m.env {
        let name = if env.is_empty() { id.clone() } else { env.clone() };
        let text = String::from_utf8(value.clone()).map_err(|_| {
            BuildError::Internal(format!("secret {id:?} is not UTF-8 text; it cannot be an env variable"))
        })?;
        out.env.push(format!("{name}={text}"));
    }
    if let Some(target) = m.effective_target(0) {
        let dir = scratch.join("secrets");
        fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        let file = dir.join(Digest::of(target.as_bytes()).hex());
        let mut f = File::create(&file).map_err(|e| io_err(&file, e))?;
        f.write_all(value).map_err(|e| io_err(&file, e))?;
        chown(&file, Some(m.uid.unwrap_or(0)), Some(m.gid.unwrap_or(0))).map_err(|e| io_err(&file, e))?;
        fs::set_permissions(&file, fs::Permissions::from_mode(m.mode.unwrap_or(0o400)))
            .map_err(|e| io_err(&file, e))?;
        out.mounts.push(ExtraMount::Bind { source: file, target, readonly: true });
    }
    Ok(())
}

/// The bind mount of `source` (default `/`) inside a prepared view.
pub(crate) fn bind_from(m: &Mount, view: &Path) -> Result<ExtraMount, BuildError> {
    let target = m.target.clone().ok_or_else(|| BuildError::Internal("bind mount without a target".into()))?;
    let path = source_in_view(m, view)?;
    Ok(ExtraMount::Bind { source: path, target, readonly: m.readonly })
}

/// Where a mount's `source` (default `/`) is inside a prepared view of its
/// `from=`, symlinks resolved within the view.
pub(crate) fn source_in_view(m: &Mount, view: &Path) -> Result<PathBuf, BuildError> {
    let source = m.source.clone().unwrap_or_else(|| "/".into());
    let rel = crate::executor::fsutil::resolve_in_root(view, &source)
        .map_err(|e| BuildError::Internal(format!("mount source {source}: {e}")))?;
    let path: PathBuf = view.join(rel);
    if fs::symlink_metadata(&path).is_err() {
        return Err(BuildError::Internal(format!("mount source {source:?} does not exist")));
    }
    Ok(path)
}

/// An SSH agent socket: a relay socket with the mount's owner and mode
/// (default 0600), bind-mounted at the target. An agent id not given with
/// `--ssh` is an error when `required`, else the mount is skipped, as in
/// BuildKit.
pub(crate) fn ssh(
    m: &Mount,
    index: usize,
    agents: &BTreeMap<String, PathBuf>,
    out: &mut PreparedMounts,
) -> Result<(), BuildError> {
    let id = m.effective_id().unwrap_or_else(|| "default".into());
    let target = m.effective_target(index).ok_or_else(|| BuildError::Internal("ssh mount without a target".into()))?;
    if out.ssh_auth_sock.is_none() {
        out.ssh_auth_sock = Some(target.clone());
    }
    let Some(upstream) = agents.get(&id) else {
        if m.required {
            return Err(BuildError::Internal(format!(
                "SSH agent {id:?} is required but was not given (distill build --ssh {id}[=SOCKET|KEY])"
            )));
        }
        return Ok(());
    };
    let relay = SshRelay::start(upstream, m.uid.unwrap_or(0), m.gid.unwrap_or(0), m.mode.unwrap_or(0o600))
        .map_err(|e| BuildError::Internal(format!("SSH agent {id:?}: {e}")))?;
    out.mounts.push(ExtraMount::Bind { source: relay.socket().to_path_buf(), target, readonly: true });
    out.relays.push(relay);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_heredocs() {
        assert!(is_lone_heredoc("<<EOF", "EOF"));
        assert!(is_lone_heredoc(" <<-'EOT' ", "EOT"));
        assert!(is_lone_heredoc("<<\"X\"", "X"));
        assert!(!is_lone_heredoc("python3 <<EOF", "EOF"));
        assert!(!is_lone_heredoc("<<EOF cat", "EOF"));
    }
}
