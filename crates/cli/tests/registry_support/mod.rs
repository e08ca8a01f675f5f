//! Helpers for the `registry_*` tests: a real `docker-registry` (Debian's
//! distribution 2.x) on a free 127.0.0.1 port with a scratch storage
//! directory, killed when dropped; and small multi-layer test images made
//! as docker-archives (no network: nothing but 127.0.0.1 is reachable).
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use distill_image::digest::Digest;

use crate::image_support::{TempDir, noise, run};

/// How the registry authenticates.
pub enum Auth {
    None,
    /// htpasswd file (bcrypt) with these users.
    Basic(Vec<(String, String)>),
    /// `auth: token` with this realm, service, issuer and root certificate bundle.
    Token {
        realm: String,
        service: String,
        issuer: String,
        cert: PathBuf,
    },
}

pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: TempDir,
}

impl Registry {
    pub fn start(auth: Auth) -> Registry {
        let dir = TempDir::new("registry");
        let port = free_port();
        let auth_yaml = match &auth {
            Auth::None => String::new(),
            Auth::Basic(users) => {
                let mut file = String::new();
                for (u, p) in users {
                    file.push_str(run(Command::new("htpasswd").args(["-Bbn", u, p])).trim());
                    file.push('\n');
                }
                fs::write(dir.join("htpasswd"), file).unwrap();
                format!("auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n", dir.join("htpasswd").display())
            }
            Auth::Token { realm, service, issuer, cert } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                cert.display()
            ),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth_yaml}",
            dir.join("storage").display()
        );
        fs::write(dir.join("config.yml"), config).unwrap();
        let log = fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starts docker-registry");
        let mut reg = Registry { child, port, dir };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("docker-registry exited ({status}):\n{}", self.log());
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut buf = [0u8; 12];
                if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not come up:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A docker-archive with `layers` layers (each a tar of `layer_bytes` of
/// noise under `/layerN/`; every other one gzip-compressed), tagged `tag`,
/// for `arch`. Returns the archive's path.
pub fn multilayer_archive(dir: &Path, tag: &str, layers: usize, layer_bytes: usize, seed: u64) -> PathBuf {
    let work = dir.join(format!("archive-{seed}"));
    fs::create_dir_all(&work).unwrap();
    let mut diff_ids = Vec::new();
    let mut members = Vec::new();
    for i in 0..layers {
        let tree = work.join(format!("tree{i}"));
        fs::create_dir_all(tree.join(format!("layer{i}"))).unwrap();
        fs::write(tree.join(format!("layer{i}/data")), noise(layer_bytes, seed * 100 + i as u64)).unwrap();
        fs::write(tree.join(format!("layer{i}/hello")), format!("layer {i} of {tag}\n")).unwrap();
        let tar = work.join(format!("layer{i}.tar"));
        run(Command::new("tar")
            .args(["--sort=name", "--mtime=@1700000000", "--owner=0", "--group=0", "--numeric-owner", "-C"])
            .arg(&tree)
            .arg("-cf")
            .arg(&tar)
            .arg("."));
        diff_ids.push(Digest::of(&fs::read(&tar).unwrap()).to_string());
        let member = if i % 2 == 1 {
            run(Command::new("gzip").args(["-n", "-1"]).arg(&tar));
            format!("layer{i}.tar.gz")
        } else {
            format!("layer{i}.tar")
        };
        members.push(member);
        fs::remove_dir_all(&tree).unwrap();
    }
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": (0..layers).map(|i| serde_json::json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("layer {i}")})).collect::<Vec<_>>(),
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_name = format!("{}.json", Digest::of(&config_bytes).hex());
    fs::write(work.join(&config_name), &config_bytes).unwrap();
    let manifest = serde_json::json!([{"Config": config_name, "RepoTags": [tag], "Layers": members}]);
    fs::write(work.join("manifest.json"), serde_json::to_vec(&manifest).unwrap()).unwrap();
    let archive = dir.join(format!("image-{seed}.tar"));
    let mut cmd = Command::new("tar");
    cmd.arg("-C").arg(&work).arg("-cf").arg(&archive).arg("manifest.json").arg(&config_name);
    for m in &members {
        cmd.arg(m);
    }
    run(&mut cmd);
    fs::remove_dir_all(&work).unwrap();
    archive
}
