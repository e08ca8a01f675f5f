//! What to run ([`RunSpec`]) and the OCI runtime `config.json` made from it.
//!
//! The config follows what Docker and BuildKit give a RUN step: mount, pid,
//! ipc and uts namespaces (plus an empty network namespace for
//! `--network=none`), Docker's default capabilities, masked and read-only
//! /proc paths, /proc + /dev (tmpfs, devpts, shm, mqueue) + read-only /sys,
//! the host's /etc/resolv.conf and /etc/hosts read-only, no seccomp profile.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::ExecError;
use super::user::UserSpec;

/// The `PATH` a step gets when its environment has none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capability set.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Host files bind-mounted read-only into every container, when present.
pub const HOST_FILES: [&str; 2] = ["/etc/resolv.conf", "/etc/hosts"];

/// The network a step sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// The host's network namespace (Docker build's default).
    #[default]
    Host,
    /// A new network namespace with only a loopback interface.
    None,
}

/// A mount on top of the standard ones (`RUN --mount` targets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtraMount {
    /// A bind mount of a host file or directory.
    Bind { source: PathBuf, target: String, readonly: bool },
    /// A fresh tmpfs; `size` in bytes (unlimited when `None`).
    Tmpfs { target: String, size: Option<u64> },
}

impl ExtraMount {
    /// Where it appears in the container.
    pub fn target(&self) -> &str {
        match self {
            ExtraMount::Bind { target, .. } | ExtraMount::Tmpfs { target, .. } => target,
        }
    }
}

/// One process to run in a container over a rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    /// argv; `args[0]` is looked up in the container's `PATH`.
    pub args: Vec<String>,
    /// `KEY=value` pairs. `PATH` and `HOME` are added when missing.
    pub env: Vec<String>,
    /// Absolute working directory (created by the runtime when missing).
    pub cwd: String,
    pub user: UserSpec,
    pub hostname: String,
    pub network: Network,
    pub mounts: Vec<ExtraMount>,
    pub readonly_rootfs: bool,
}

impl RunSpec {
    /// `args` as root in `/`, host network, hostname `buildkitsandbox`
    /// (what `docker build` shows), no extra mounts.
    pub fn new(args: Vec<String>) -> Self {
        RunSpec {
            args,
            env: Vec::new(),
            cwd: "/".into(),
            user: UserSpec::root(),
            hostname: "buildkitsandbox".into(),
            network: Network::Host,
            mounts: Vec::new(),
            readonly_rootfs: false,
        }
    }

    /// `/bin/sh -c <script>`, the shell form of RUN.
    pub fn shell(script: &str) -> Self {
        Self::new(vec!["/bin/sh".into(), "-c".into(), script.into()])
    }

    /// The environment as the process gets it: `PATH` and `HOME` added when
    /// missing.
    pub fn effective_env(&self) -> Vec<String> {
        let mut env = self.env.clone();
        let has = |k: &str| self.env.iter().any(|e| e.split_once('=').is_some_and(|(n, _)| n == k));
        if !has("PATH") {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }
        if !has("HOME") {
            env.push(format!("HOME={}", self.user.home.as_deref().unwrap_or("/")));
        }
        env
    }

    pub(crate) fn validate(&self) -> Result<(), ExecError> {
        if self.args.is_empty() {
            return Err(ExecError::InvalidSpec("no command to run".into()));
        }
        if !self.cwd.starts_with('/') {
            return Err(ExecError::InvalidSpec(format!("working directory {:?} is not absolute", self.cwd)));
        }
        for m in &self.mounts {
            if !m.target().starts_with('/') {
                return Err(ExecError::InvalidSpec(format!("mount target {:?} is not absolute", m.target())));
            }
        }
        Ok(())
    }
}

/// One mount of the OCI config; `is_file` says whether a missing mount point
/// must be created as a file (bind mount of a file) rather than a directory.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OciMount {
    pub destination: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
    #[serde(skip)]
    pub is_file: bool,
}

fn mount(dest: &str, kind: &str, source: &str, options: &[&str]) -> OciMount {
    OciMount {
        destination: dest.into(),
        kind: kind.into(),
        source: source.into(),
        options: options.iter().map(|s| s.to_string()).collect(),
        is_file: false,
    }
}

/// The mounts of a step, in mount order: the standard ones, the host files
/// that exist on this host, then the caller's.
pub(crate) fn oci_mounts(spec: &RunSpec) -> Vec<OciMount> {
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"]),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        ),
        mount("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
        mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
    ];
    for f in HOST_FILES {
        if Path::new(f).exists() {
            let mut m = mount(f, "bind", f, &["rbind", "ro", "nosuid", "nodev", "noexec"]);
            m.is_file = true;
            mounts.push(m);
        }
    }
    for m in &spec.mounts {
        match m {
            ExtraMount::Bind { source, target, readonly } => {
                let mut om =
                    mount(target, "bind", &source.to_string_lossy(), &["rbind", if *readonly { "ro" } else { "rw" }]);
                om.is_file = !source.is_dir();
                mounts.push(om);
            }
            ExtraMount::Tmpfs { target, size } => {
                let mut opts = vec!["nosuid".to_string(), "nodev".to_string()];
                if let Some(s) = size {
                    opts.push(format!("size={s}"));
                }
                mounts.push(OciMount {
                    destination: target.clone(),
                    kind: "tmpfs".into(),
                    source: "tmpfs".into(),
                    options: opts,
                    is_file: false,
                });
            }
        }
    }
    mounts
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Config<'a> {
    oci_version: &'static str,
    process: Process,
    root: Root,
    hostname: &'a str,
    mounts: &'a [OciMount],
    linux: Linux,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Process {
    terminal: bool,
    user: User,
    args: Vec<String>,
    env: Vec<String>,
    cwd: String,
    capabilities: Capabilities,
    rlimits: Vec<Rlimit>,
    no_new_privileges: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct User {
    uid: u32,
    gid: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    additional_gids: Vec<u32>,
}

#[derive(Serialize)]
struct Capabilities {
    bounding: Vec<&'static str>,
    effective: Vec<&'static str>,
    permitted: Vec<&'static str>,
}

#[derive(Serialize)]
struct Rlimit {
    #[serde(rename = "type")]
    kind: &'static str,
    hard: u64,
    soft: u64,
}

#[derive(Serialize)]
struct Root {
    path: String,
    readonly: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Linux {
    namespaces: Vec<Namespace>,
    cgroups_path: String,
    resources: Resources,
    masked_paths: Vec<&'static str>,
    readonly_paths: Vec<&'static str>,
}

#[derive(Serialize)]
struct Namespace {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct Resources {
    devices: Vec<DeviceRule>,
}

#[derive(Serialize)]
struct DeviceRule {
    allow: bool,
    access: &'static str,
}

/// The soft and hard `RLIMIT_NOFILE` a step gets: Docker's 1048576, but
/// never above this process's hard limit nor the kernel's `fs.nr_open`
/// (raising past either is refused, and the container would fail to start).
pub fn nofile_limit() -> u64 {
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum.unwrap_or(u64::MAX);
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    1_048_576.min(hard).min(nr_open)
}

/// The OCI runtime config (`config.json`) for `spec` over `rootfs`, as JSON
/// text. `cgroups_path` is where runc makes the container's cgroup.
pub fn oci_config(spec: &RunSpec, rootfs: &Path, cgroups_path: &str) -> Result<String, ExecError> {
    oci_config_with_mounts(spec, rootfs, cgroups_path, &oci_mounts(spec))
}

pub(crate) fn oci_config_with_mounts(
    spec: &RunSpec,
    rootfs: &Path,
    cgroups_path: &str,
    mounts: &[OciMount],
) -> Result<String, ExecError> {
    spec.validate()?;
    let caps = DEFAULT_CAPABILITIES.to_vec();
    let nofile = nofile_limit();
    let mut namespaces = vec![
        Namespace { kind: "pid" },
        Namespace { kind: "ipc" },
        Namespace { kind: "uts" },
        Namespace { kind: "mount" },
    ];
    if spec.network == Network::None {
        namespaces.push(Namespace { kind: "network" });
    }
    let config = Config {
        oci_version: "1.0.2",
        process: Process {
            terminal: false,
            user: User { uid: spec.user.uid, gid: spec.user.gid, additional_gids: spec.user.additional_gids.clone() },
            args: spec.args.clone(),
            env: spec.effective_env(),
            cwd: spec.cwd.clone(),
            capabilities: Capabilities { bounding: caps.clone(), effective: caps.clone(), permitted: caps },
            rlimits: vec![Rlimit { kind: "RLIMIT_NOFILE", hard: nofile, soft: nofile }],
            no_new_privileges: false,
        },
        root: Root { path: rootfs.to_string_lossy().into_owned(), readonly: spec.readonly_rootfs },
        hostname: &spec.hostname,
        mounts,
        linux: Linux {
            namespaces,
            cgroups_path: cgroups_path.to_string(),
            resources: Resources { devices: vec![DeviceRule { allow: false, access: "rwm" }] },
            masked_paths: vec![
                "/proc/asound",
                "/proc/acpi",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/proc/scsi",
                "/sys/firmware",
                "/sys/devices/virtual/powercap",
            ],
            readonly_paths: vec!["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    };
    serde_json::to_string_pretty(&config).map_err(|e| ExecError::InvalidSpec(format!("encoding config.json: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(spec: &RunSpec) -> serde_json::Value {
        serde_json::from_str(&oci_config(spec, Path::new("/r"), "/distill/x").unwrap()).unwrap()
    }

    #[test]
    fn defaults_match_docker() {
        let mut spec = RunSpec::shell("echo hi");
        spec.user = UserSpec { uid: 65534, gid: 65534, additional_gids: vec![4], home: None };
        spec.env = vec!["FOO=bar".into()];
        let c = config(&spec);
        assert_eq!(c["process"]["terminal"], false);
        assert_eq!(c["process"]["args"], serde_json::json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(c["process"]["user"], serde_json::json!({"uid": 65534, "gid": 65534, "additionalGids": [4]}));
        assert_eq!(c["process"]["env"], serde_json::json!(["FOO=bar", format!("PATH={DEFAULT_PATH}"), "HOME=/"]));
        assert_eq!(c["process"]["capabilities"]["bounding"].as_array().unwrap().len(), 14);
        assert_eq!(c["root"], serde_json::json!({"path": "/r", "readonly": false}));
        assert_eq!(c["hostname"], "buildkitsandbox");
        let ns: Vec<_> = c["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].clone()).collect();
        assert_eq!(ns, ["pid", "ipc", "uts", "mount"]);
        let sys = c["mounts"].as_array().unwrap().iter().find(|m| m["destination"] == "/sys").unwrap();
        assert!(sys["options"].as_array().unwrap().contains(&"ro".into()));
        let nofile = c["process"]["rlimits"][0]["hard"].as_u64().unwrap();
        assert!(nofile <= 1_048_576);
        assert_eq!(c["linux"]["cgroupsPath"], "/distill/x");
    }

    #[test]
    fn network_none_adds_a_netns_and_mounts_follow() {
        let mut spec = RunSpec::shell("true");
        spec.network = Network::None;
        spec.env = vec!["PATH=/bin".into(), "HOME=/h".into()];
        spec.mounts = vec![
            ExtraMount::Tmpfs { target: "/tmp/t".into(), size: Some(1 << 20) },
            ExtraMount::Bind { source: "/".into(), target: "/host".into(), readonly: true },
        ];
        let c = config(&spec);
        let ns = c["linux"]["namespaces"].as_array().unwrap();
        assert_eq!(ns.last().unwrap()["type"], "network");
        assert_eq!(c["process"]["env"], serde_json::json!(["PATH=/bin", "HOME=/h"]));
        let mounts = c["mounts"].as_array().unwrap();
        let n = mounts.len();
        assert_eq!(mounts[n - 2]["destination"], "/tmp/t");
        assert_eq!(mounts[n - 2]["options"], serde_json::json!(["nosuid", "nodev", "size=1048576"]));
        assert_eq!(mounts[n - 1]["options"], serde_json::json!(["rbind", "ro"]));
    }

    #[test]
    fn invalid_specs() {
        let mut spec = RunSpec::new(vec![]);
        assert!(oci_config(&spec, Path::new("/r"), "/x").is_err());
        spec.args = vec!["true".into()];
        spec.cwd = "rel".into();
        assert!(oci_config(&spec, Path::new("/r"), "/x").unwrap_err().to_string().contains("not absolute"));
    }
}
