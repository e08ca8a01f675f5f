//! `RUN --mount=type=ssh`: SSH agent forwarding as BuildKit does it.
//!
//! `distill build --ssh ID[=SOCKET|KEY[,KEY…]]` names agents: an existing
//! agent's socket (`default` is `$SSH_AUTH_SOCK`), or private key files,
//! which an `ssh-agent` started for the build serves (OpenSSH's, so that
//! every key type it knows works). A RUN never sees the host socket itself:
//! each mount gets a fresh socket with the mount's owner and mode whose
//! connections are relayed to the agent, so the host socket's permissions
//! are never touched and nothing of it ends up in a layer.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt, chown};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What can go wrong setting up SSH forwarding.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("--ssh {spec:?}: the id is empty (expected default|ID[=SOCKET|KEY[,KEY…]])")]
    EmptyId { spec: String },
    #[error("--ssh {id}: no socket or key given and SSH_AUTH_SOCK is not set (start an ssh-agent or name a key file)")]
    NoAgent { id: String },
    #[error("--ssh {id} is given twice")]
    Duplicate { id: String },
    #[error("--ssh {id}: {path}: {source}")]
    Path { id: String, path: PathBuf, source: io::Error },
    #[error("--ssh {id}: {path} is a socket; a socket cannot be combined with other sockets or keys")]
    MixedSocket { id: String, path: PathBuf },
    #[error(
        "--ssh {id}: starting ssh-agent for key files: {detail} (key files need OpenSSH's ssh-agent and ssh-add: apt-get install openssh-client)"
    )]
    Agent { id: String, detail: String },
    #[error("--ssh {id}: ssh-add refused {keys}: {detail}")]
    AddKeys { id: String, keys: String, detail: String },
}

/// The SSH agents of a build by id, alive as long as this is: agents
/// started for key files are stopped when it is dropped.
#[derive(Default)]
pub struct SshAgents {
    sockets: BTreeMap<String, PathBuf>,
    started: Vec<StartedAgent>,
}

impl SshAgents {
    /// Reads `--ssh` values like `docker build` does.
    pub fn start(specs: &[String]) -> Result<Self, SshError> {
        let mut agents = SshAgents::default();
        for spec in specs {
            let (id, paths) = match spec.split_once('=') {
                Some((id, paths)) => (id, paths.split(',').filter(|p| !p.is_empty()).map(PathBuf::from).collect()),
                None => (spec.as_str(), Vec::new()),
            };
            if id.is_empty() {
                return Err(SshError::EmptyId { spec: spec.clone() });
            }
            if agents.sockets.contains_key(id) {
                return Err(SshError::Duplicate { id: id.into() });
            }
            let paths: Vec<PathBuf> = if paths.is_empty() {
                match std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()) {
                    Some(sock) => vec![PathBuf::from(sock)],
                    None => return Err(SshError::NoAgent { id: id.into() }),
                }
            } else {
                paths
            };
            let socket = agents.agent_for(id, &paths)?;
            agents.sockets.insert(id.to_string(), socket);
        }
        Ok(agents)
    }

    /// Agent sockets by id, for [`super::BuildOptions::ssh`].
    pub fn sockets(&self) -> BTreeMap<String, PathBuf> {
        self.sockets.clone()
    }

    fn agent_for(&mut self, id: &str, paths: &[PathBuf]) -> Result<PathBuf, SshError> {
        let mut keys = Vec::new();
        for path in paths {
            let meta =
                fs::metadata(path).map_err(|source| SshError::Path { id: id.into(), path: path.clone(), source })?;
            if meta.file_type().is_socket() {
                if paths.len() > 1 {
                    return Err(SshError::MixedSocket { id: id.into(), path: path.clone() });
                }
                return Ok(path.clone());
            }
            keys.push(path.clone());
        }
        let agent = StartedAgent::start(id, &keys)?;
        let socket = agent.socket.clone();
        self.started.push(agent);
        Ok(socket)
    }
}

/// A short private directory for sockets (sun_path holds 108 bytes, so
/// not under the store, whose path may be long).
fn socket_dir(kind: &str) -> io::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "distill-{kind}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir(&dir)?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    Ok(dir)
}

/// `ssh-agent -D` serving key files for the build.
struct StartedAgent {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
}

impl StartedAgent {
    fn start(id: &str, keys: &[PathBuf]) -> Result<Self, SshError> {
        let agent_err = |detail: String| SshError::Agent { id: id.into(), detail };
        let dir = socket_dir("ssh-agent").map_err(|e| agent_err(e.to_string()))?;
        let socket = dir.join("agent");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| agent_err(format!("ssh-agent: {e}")))?;
        let mut agent = StartedAgent { child, dir, socket };
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&agent.socket).is_err() {
            if let Ok(Some(status)) = agent.child.try_wait() {
                return Err(agent_err(format!("ssh-agent exited: {status}")));
            }
            if Instant::now() > deadline {
                return Err(agent_err("ssh-agent did not open its socket within 10 s".into()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // No stdin and no askpass: a passphrase-protected key is asked for
        // on the terminal before the build starts, and fails without one.
        let out = Command::new("ssh-add")
            .args(keys)
            .env("SSH_AUTH_SOCK", &agent.socket)
            .env_remove("SSH_ASKPASS")
            .env_remove("DISPLAY")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| agent_err(format!("ssh-add: {e}")))?;
        if !out.status.success() {
            let keys = keys.iter().map(|k| k.display().to_string()).collect::<Vec<_>>().join(", ");
            let detail = String::from_utf8_lossy(&out.stderr).trim().to_string();
            agent.stop();
            return Err(SshError::AddKeys { id: id.into(), keys, detail });
        }
        Ok(agent)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Drop for StartedAgent {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A socket for one RUN mount, relaying each connection to an agent.
/// Dropping it stops accepting and removes the socket; relays of
/// connections still open end when either side closes.
pub(crate) struct SshRelay {
    dir: PathBuf,
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl SshRelay {
    pub(crate) fn start(upstream: &Path, uid: u32, gid: u32, mode: u32) -> io::Result<Self> {
        let dir = socket_dir("ssh")?;
        let socket = dir.join("agent");
        let listener = UnixListener::bind(&socket)?;
        chown(&socket, Some(uid), Some(gid))?;
        fs::set_permissions(&socket, fs::Permissions::from_mode(mode))?;
        let stop = Arc::new(AtomicBool::new(false));
        let upstream = upstream.to_path_buf();
        let stopping = Arc::clone(&stop);
        let acceptor = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let upstream = upstream.clone();
                std::thread::spawn(move || relay(conn, &upstream));
            }
        });
        Ok(SshRelay { dir, socket, stop, acceptor: Some(acceptor) })
    }

    /// The socket to bind into the container.
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for SshRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so that it sees the flag.
        let _ = UnixStream::connect(&self.socket);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Copies bytes both ways between a container's connection and the agent.
fn relay(client: UnixStream, upstream: &Path) {
    let Ok(agent) = UnixStream::connect(upstream) else { return };
    let (Ok(client_read), Ok(agent_write)) = (client.try_clone(), agent.try_clone()) else { return };
    let up = std::thread::spawn(move || pump(client_read, agent_write));
    pump(agent, client);
    let _ = up.join();
}

fn pump(mut from: UnixStream, mut to: UnixStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
    let _ = from.shutdown(std::net::Shutdown::Read);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_forwards_both_ways_with_the_mount_mode() {
        let dir = socket_dir("ssh-test").unwrap();
        let upstream = dir.join("up");
        let listener = UnixListener::bind(&upstream).unwrap();
        let echo = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 5];
            conn.read_exact(&mut buf).unwrap();
            conn.write_all(&buf.iter().rev().copied().collect::<Vec<u8>>()).unwrap();
        });
        let relay = SshRelay::start(&upstream, 0, 0, 0o600).unwrap();
        let mode = fs::metadata(relay.socket()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mut conn = UnixStream::connect(relay.socket()).unwrap();
        conn.write_all(b"hello").unwrap();
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).unwrap();
        assert_eq!(answer, b"olleh");
        echo.join().unwrap();
        let socket = relay.socket().to_path_buf();
        drop(relay);
        assert!(!socket.exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn specs_are_checked() {
        assert!(matches!(SshAgents::start(&["=x".into()]), Err(SshError::EmptyId { .. })));
        let missing = SshAgents::start(&["k=/nonexistent/key".into()]);
        assert!(matches!(missing, Err(SshError::Path { .. })), "{:?}", missing.err());
    }
}
