//! `distill login`: checking credentials against a registry's `/v2/`
//! endpoint (answering its challenge like any request) before they are stored.

use crate::client::{Call, Client, Repo, error_detail};
use crate::error::{RegistryError, Result};

impl Client {
    /// Succeeds when the registry accepts this client's credentials for
    /// `registry` (a host, `docker.io` for Docker Hub).
    pub fn check_login(&self, registry: &str) -> Result<()> {
        let host = if crate::docker_config::is_docker_hub(registry) { "registry-1.docker.io" } else { registry };
        let repo = Repo { registry: registry.to_string(), host: host.to_string(), path: String::new() };
        let url = format!("{}/v2/", self.base_url(host));
        let call = Call::new("GET", url.clone(), String::new(), registry);
        let mut resp = self.execute(&repo, &call)?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            status => Err(RegistryError::Status { method: "GET".into(), url, status, detail: error_detail(&mut resp) }),
        }
    }
}
