//! Docker's client configuration (`$DOCKER_CONFIG/config.json`, default
//! `~/.docker/config.json`): credentials in `auths`, or in a credential
//! helper (`credsStore` for all registries, `credHelpers` per registry),
//! run as `docker-credential-<name> get|store|erase` with Docker's JSON
//! protocol. `distill login`/`logout` write the same format, so docker,
//! podman, skopeo and distill share logins.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::auth::Credentials;
use crate::error::{RegistryError, Result};

/// The key Docker uses for Docker Hub in `auths` and with helpers.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A docker `config.json`, kept as JSON so unknown settings survive a rewrite.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    json: Map<String, Value>,
}

/// `$DOCKER_CONFIG`, else `~/.docker`.
pub fn default_config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".docker"))
}

/// The key a registry host is stored under: Docker Hub's legacy URL, else the host.
pub fn config_key(registry: &str) -> String {
    if is_docker_hub(registry) { DOCKER_HUB_KEY.to_string() } else { registry.to_string() }
}

pub(crate) fn is_docker_hub(host: &str) -> bool {
    matches!(host, "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com")
}

/// `https://host:5000/v1/` → `host:5000`, as Docker matches `auths` keys.
fn key_host(key: &str) -> &str {
    let k = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

impl DockerConfig {
    /// Loads `dir/config.json`; a missing file is an empty configuration.
    pub fn load(dir: &Path) -> Result<DockerConfig> {
        let path = dir.join("config.json");
        let json = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return Err(RegistryError::Credentials(format!("{} is not a JSON object", path.display()))),
                Err(e) => return Err(RegistryError::Credentials(format!("{}: {e}", path.display()))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(RegistryError::io(format!("reading {}", path.display()), e)),
        };
        Ok(DockerConfig { path, json })
    }

    /// Loads from [`default_config_dir`] (empty if there is none).
    pub fn load_default() -> Result<DockerConfig> {
        match default_config_dir() {
            Some(dir) => DockerConfig::load(&dir),
            None => Ok(DockerConfig { path: PathBuf::from(".docker/config.json"), json: Map::new() }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The helper responsible for `registry`, if any (`credHelpers` first).
    fn helper(&self, registry: &str) -> Option<String> {
        let key = config_key(registry);
        let per_registry = self.json.get("credHelpers").and_then(Value::as_object).and_then(|h| {
            h.iter().find(|(k, _)| k.as_str() == key || key_host(k) == registry).and_then(|(_, v)| v.as_str())
        });
        per_registry
            .or_else(|| self.json.get("credsStore").and_then(Value::as_str))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// The `auths` entry for `registry`: the exact key, else any key naming the same host.
    fn auths_entry(&self, registry: &str) -> Option<(&String, &Value)> {
        let auths = self.json.get("auths")?.as_object()?;
        let key = config_key(registry);
        auths.get_key_value(&key).or_else(|| {
            auths.iter().find(|(k, _)| {
                let h = key_host(k);
                h == registry || (is_docker_hub(registry) && is_docker_hub(h))
            })
        })
    }

    /// Credentials for `registry` (a host, `docker.io` for Docker Hub).
    pub fn credentials(&self, registry: &str) -> Result<Option<Credentials>> {
        if let Some(helper) = self.helper(registry) {
            return helper_get(&helper, &config_key(registry));
        }
        let Some((_, entry)) = self.auths_entry(registry) else { return Ok(None) };
        if let Some(auth) = entry.get("auth").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            let decoded =
                STANDARD.decode(auth.trim()).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(|| {
                    RegistryError::Credentials(format!("{}: auth for {registry} is not base64", self.path.display()))
                })?;
            let (user, pass) = decoded.split_once(':').ok_or_else(|| {
                RegistryError::Credentials(format!("{}: auth for {registry} is not user:password", self.path.display()))
            })?;
            return Ok(Some(Credentials::new(user, pass)));
        }
        let user = entry.get("username").and_then(Value::as_str);
        let pass = entry.get("password").and_then(Value::as_str);
        Ok(match (user, pass) {
            (Some(u), Some(p)) => Some(Credentials::new(u, p)),
            _ => None,
        })
    }

    /// Stores credentials (in the helper if one is configured) and writes the file.
    pub fn store(&mut self, registry: &str, creds: &Credentials) -> Result<()> {
        let key = config_key(registry);
        let helper = self.helper(registry);
        let mut auths = match self.json.remove("auths") {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        if let Some(helper) = helper {
            helper_store(&helper, &key, creds)?;
            // Docker leaves an empty entry so `docker login` output lists the registry.
            auths.insert(key, json!({}));
        } else {
            let auth = STANDARD.encode(format!("{}:{}", creds.username, creds.password));
            auths.insert(key, json!({ "auth": auth }));
        }
        self.json.insert("auths".to_string(), Value::Object(auths));
        self.save()
    }

    /// Removes the credentials of `registry`; returns whether there were any.
    pub fn erase(&mut self, registry: &str) -> Result<bool> {
        let mut found = false;
        if let Some(helper) = self.helper(registry) {
            found |= helper_erase(&helper, &config_key(registry))?;
        }
        let keys: Vec<String> = match self.json.get("auths").and_then(Value::as_object) {
            Some(auths) => auths
                .keys()
                .filter(|k| {
                    let h = key_host(k);
                    h == registry || (is_docker_hub(registry) && is_docker_hub(h))
                })
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        if let Some(auths) = self.json.get_mut("auths").and_then(Value::as_object_mut) {
            for k in &keys {
                found |= auths.remove(k).is_some();
            }
        }
        if !keys.is_empty() {
            self.save()?;
        }
        Ok(found)
    }

    /// Writes the file atomically, readable by its owner only (it holds secrets).
    fn save(&self) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| RegistryError::io(format!("creating {}", dir.display()), e))?;
        let mut bytes = serde_json::to_vec_pretty(&Value::Object(self.json.clone()))
            .map_err(|e| RegistryError::Credentials(e.to_string()))?;
        bytes.push(b'\n');
        let tmp = dir.join(format!(".config.json.{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            RegistryError::io(format!("writing {}", self.path.display()), e)
        })
    }
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin.
fn run_helper(helper: &str, action: &str, input: &[u8]) -> Result<(bool, Vec<u8>, String)> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| RegistryError::Credentials(format!("running {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let out = child.wait_with_output().map_err(|e| RegistryError::Credentials(format!("running {program}: {e}")))?;
    let mut message = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if message.is_empty() {
        message = String::from_utf8_lossy(&out.stderr).trim().to_string();
    }
    Ok((out.status.success(), out.stdout, message))
}

fn helper_get(helper: &str, server: &str) -> Result<Option<Credentials>> {
    let (ok, stdout, message) = run_helper(helper, "get", server.as_bytes())?;
    if !ok {
        // The helper protocol's way of saying "nothing stored".
        if message.contains("credentials not found") {
            return Ok(None);
        }
        return Err(RegistryError::Credentials(format!("docker-credential-{helper} get {server}: {message}")));
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Reply {
        #[serde(default)]
        username: String,
        #[serde(default)]
        secret: String,
    }
    let reply: Reply = serde_json::from_slice(&stdout)
        .map_err(|e| RegistryError::Credentials(format!("docker-credential-{helper} get: {e}")))?;
    if reply.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials::new(reply.username, reply.secret)))
}

fn helper_store(helper: &str, server: &str, creds: &Credentials) -> Result<()> {
    let input = json!({ "ServerURL": server, "Username": creds.username, "Secret": creds.password });
    let (ok, _, message) = run_helper(helper, "store", input.to_string().as_bytes())?;
    if !ok {
        return Err(RegistryError::Credentials(format!("docker-credential-{helper} store {server}: {message}")));
    }
    Ok(())
}

fn helper_erase(helper: &str, server: &str) -> Result<bool> {
    let (ok, _, message) = run_helper(helper, "erase", server.as_bytes())?;
    if !ok && !message.contains("not found") {
        return Err(RegistryError::Credentials(format!("docker-credential-{helper} erase {server}: {message}")));
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_auths_by_host_and_docker_hub_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},"http://localhost:5000/v2/":{"auth":"YTpiOmM="}},"other":1}"#,
        )
        .unwrap();
        let c = DockerConfig::load(dir.path()).unwrap();
        assert_eq!(c.credentials("docker.io").unwrap(), Some(Credentials::new("u", "p")));
        assert_eq!(c.credentials("localhost:5000").unwrap(), Some(Credentials::new("a", "b:c")));
        assert_eq!(c.credentials("quay.io").unwrap(), None);
    }

    #[test]
    fn store_and_erase_keep_other_settings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"psFormat":"x"}"#).unwrap();
        let mut c = DockerConfig::load(dir.path()).unwrap();
        c.store("127.0.0.1:5000", &Credentials::new("me", "secret")).unwrap();
        let again = DockerConfig::load(dir.path()).unwrap();
        assert_eq!(again.credentials("127.0.0.1:5000").unwrap(), Some(Credentials::new("me", "secret")));
        assert_eq!(again.json["psFormat"], "x");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("config.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut again = again;
        assert!(again.erase("127.0.0.1:5000").unwrap());
        assert_eq!(DockerConfig::load(dir.path()).unwrap().credentials("127.0.0.1:5000").unwrap(), None);
    }

    #[test]
    fn uses_credential_helpers() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let helper = bin.join("docker-credential-fake");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\nif [ \"$1\" = get ] && [ \"$server\" = reg.example:5000 ]; then echo '{\"ServerURL\":\"x\",\"Username\":\"hu\",\"Secret\":\"hs\"}'; else echo 'credentials not found in native keychain'; exit 1; fi\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"credHelpers":{"reg.example:5000":"fake"}}"#).unwrap();
        let c = DockerConfig::load(dir.path()).unwrap();
        // Run the helper through an absolute PATH entry without touching the process environment.
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        let out = Command::new("sh")
            .arg("-c")
            .arg("echo reg.example:5000 | docker-credential-fake get")
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(c.helper("reg.example:5000").as_deref(), Some("fake"));
        assert_eq!(c.helper("other:5000"), None);
    }
}
