//! The HTTP core: one place where requests get credentials, answer
//! challenges, and are retried. Everything above it (pull, push, login)
//! describes a request as a [`Call`] and interprets the final response.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use ureq::http::{Response, StatusCode};
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::{Agent, Body, RequestBuilder, SendBody};

use crate::auth::{Challenge, Credentials, HostAuth, TokenCache, TokenResponse, parse_challenge};
use crate::docker_config::{self, DockerConfig};
use crate::error::{RegistryError, Result};
use distill_image::reference::Reference;

/// Settings of a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Verify TLS certificates. When false, registries are reached over
    /// https without verification, falling back to plain http (like
    /// `skopeo --tls-verify=false`). Loopback registries are always treated
    /// this way, as Docker does.
    pub tls_verify: bool,
    /// Treat loopback registries as insecure (no verification, http allowed), as Docker does.
    pub insecure_loopback: bool,
    /// Extra CA certificates (PEM files) trusted besides the built-in roots.
    pub ca_certs: Vec<PathBuf>,
    /// Credentials for every registry, overriding the docker config.
    pub credentials: Option<Credentials>,
    /// Where stored logins come from; `None` means no stored credentials.
    pub docker_config: Option<DockerConfig>,
    /// Attempts for one request or one blob transfer that fails transiently
    /// (429, 5xx, a dropped connection, bad bytes).
    pub attempts: u32,
    /// First retry delay; doubles on every attempt (capped at 10 s).
    pub backoff: Duration,
    /// Blobs transferred at once.
    pub parallel: usize,
    /// Blobs up to this size are uploaded with one PUT; bigger ones in PATCH chunks.
    pub monolithic_max: u64,
    /// Size of one PATCH chunk.
    pub chunk_size: u64,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            tls_verify: true,
            insecure_loopback: true,
            ca_certs: Vec::new(),
            credentials: None,
            docker_config: None,
            attempts: 6,
            backoff: Duration::from_millis(250),
            parallel: 3,
            monolithic_max: 32 << 20,
            chunk_size: 16 << 20,
        }
    }
}

/// A repository on a registry, as the API addresses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    /// The registry as users name it (`docker.io`, `127.0.0.1:5000`): the key for credentials.
    pub registry: String,
    /// The host the API is on (`registry-1.docker.io` for Docker Hub).
    pub host: String,
    /// The repository path (`library/python`).
    pub path: String,
}

impl Repo {
    pub fn of(reference: &Reference) -> Repo {
        let registry = reference.domain().to_string();
        let host =
            if docker_config::is_docker_hub(&registry) { "registry-1.docker.io".to_string() } else { registry.clone() };
        Repo { registry, host, path: reference.path().to_string() }
    }

    pub fn pull_scope(&self) -> String {
        format!("repository:{}:pull", self.path)
    }

    pub fn push_scope(&self) -> String {
        format!("repository:{}:pull,push", self.path)
    }

    /// `registry/path`, as error messages name it.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.path)
    }
}

/// A request body that can be sent again on a retry.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CallBody<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of a file from `offset`.
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
    },
}

/// One request, described so it can be repeated.
pub(crate) struct Call<'a> {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: CallBody<'a>,
    /// Auth scope(s), space-separated (`repository:a:pull repository:b:pull,push`).
    pub scope: String,
    /// What the request is about, for error messages.
    pub reference: String,
    /// Whether a transient failure may be retried by sending the same
    /// request again (not for PATCH: the registry may have appended).
    pub retry: bool,
}

impl<'a> Call<'a> {
    pub fn new(method: &'static str, url: String, scope: String, reference: &str) -> Call<'a> {
        Call {
            method,
            url,
            headers: Vec::new(),
            body: CallBody::Empty,
            scope,
            reference: reference.to_string(),
            retry: true,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: CallBody<'a>) -> Self {
        self.body = body;
        self
    }

    pub fn no_retry(mut self) -> Self {
        self.retry = false;
        self
    }
}

/// A registry client: holds the HTTP agents, credentials and token cache.
/// Shareable between threads (transfers run in parallel).
pub struct Client {
    secure: Agent,
    insecure: Agent,
    pub(crate) opts: ClientOptions,
    tokens: TokenCache,
    creds: Mutex<HashMap<String, Option<Credentials>>>,
    schemes: Mutex<HashMap<String, &'static str>>,
    pub(crate) known: crate::push::KnownBlobs,
}

impl Client {
    pub fn new(opts: ClientOptions) -> Result<Client> {
        let mut roots = Vec::new();
        for path in &opts.ca_certs {
            let pem = std::fs::read(path).map_err(|e| RegistryError::io(format!("reading {}", path.display()), e))?;
            for block in pem_blocks(&pem) {
                let cert = Certificate::from_pem(block.as_bytes())
                    .map_err(|e| RegistryError::invalid(format!("CA certificate {}", path.display()), e.to_string()))?;
                roots.push(cert);
            }
        }
        let verified = if roots.is_empty() {
            TlsConfig::builder().build()
        } else {
            TlsConfig::builder().root_certs(RootCerts::new_with_certs(&roots)).build()
        };
        let unverified = TlsConfig::builder().disable_verification(true).build();
        Ok(Client {
            secure: agent(verified),
            insecure: agent(unverified),
            opts,
            tokens: TokenCache::default(),
            creds: Mutex::new(HashMap::new()),
            schemes: Mutex::new(HashMap::new()),
            known: Default::default(),
        })
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// Whether `host` is reached without TLS verification (and maybe over http).
    fn is_insecure(&self, host: &str) -> bool {
        !self.opts.tls_verify || (self.opts.insecure_loopback && is_loopback(host))
    }

    fn agent_for(&self, host: &str) -> &Agent {
        if self.is_insecure(host) { &self.insecure } else { &self.secure }
    }

    /// `https://host`, or `http://host` for an insecure registry that does
    /// not speak TLS (found out once per host by probing `/v2/`).
    pub(crate) fn base_url(&self, host: &str) -> String {
        if !self.is_insecure(host) {
            return format!("https://{host}");
        }
        if let Some(scheme) = self.schemes.lock().unwrap_or_else(|e| e.into_inner()).get(host) {
            return format!("{scheme}://{host}");
        }
        let scheme = match self.insecure.get(&format!("https://{host}/v2/")).call() {
            Ok(_) => "https",
            Err(_) => "http",
        };
        self.schemes.lock().unwrap_or_else(|e| e.into_inner()).insert(host.to_string(), scheme);
        format!("{scheme}://{host}")
    }

    /// Credentials for a registry: the client's override, else the docker config (looked up once).
    pub(crate) fn credentials(&self, registry: &str) -> Result<Option<Credentials>> {
        if let Some(c) = &self.opts.credentials {
            return Ok(Some(c.clone()));
        }
        let Some(config) = &self.opts.docker_config else { return Ok(None) };
        if let Some(c) = self.creds.lock().unwrap_or_else(|e| e.into_inner()).get(registry) {
            return Ok(c.clone());
        }
        let found = config.credentials(registry)?;
        self.creds.lock().unwrap_or_else(|e| e.into_inner()).insert(registry.to_string(), found.clone());
        Ok(found)
    }

    /// Sends `call` to `repo`'s registry: adds credentials, answers one
    /// challenge, retries transient failures with backoff. Returns any
    /// response but 401/403 (errors) and, after the retries, 429/5xx.
    pub(crate) fn execute(&self, repo: &Repo, call: &Call<'_>) -> Result<Response<Body>> {
        let mut attempt = 0u32;
        let mut challenged = false;
        loop {
            let auth = self.auth_header(repo, &call.scope)?;
            let result = self.send(call, auth.as_deref());
            attempt += 1;
            let retry_left = call.retry && attempt < self.opts.attempts.max(1);
            let mut resp = match result {
                Ok(resp) => resp,
                Err(e) => {
                    if retry_left && !is_permanent(&e) {
                        self.sleep(attempt, None);
                        continue;
                    }
                    return Err(RegistryError::Transport {
                        method: call.method.into(),
                        url: call.url.clone(),
                        message: e.to_string(),
                    });
                }
            };
            let status = resp.status().as_u16();
            match status {
                401 if !challenged => {
                    challenged = true;
                    // Not an attempt: the first request only learns how to authenticate.
                    attempt -= 1;
                    let header = resp
                        .headers()
                        .get_all("www-authenticate")
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .find_map(parse_challenge);
                    self.tokens.forget_token(&repo.host, &call.scope);
                    match header {
                        Some(challenge) => self.authenticate(repo, &challenge, &call.scope, &call.reference)?,
                        None => return Err(self.unauthorized(repo, call, &mut resp)),
                    }
                }
                401 => return Err(self.unauthorized(repo, call, &mut resp)),
                403 => {
                    return Err(RegistryError::Denied {
                        registry: repo.registry.clone(),
                        reference: call.reference.clone(),
                        scope: call.scope.clone(),
                        detail: error_detail(&mut resp),
                    });
                }
                429 | 500 | 502 | 503 | 504 if retry_left => {
                    let after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    drain(&mut resp);
                    self.sleep(attempt, after);
                }
                _ => return Ok(resp),
            }
        }
    }

    fn unauthorized(&self, repo: &Repo, call: &Call<'_>, resp: &mut Response<Body>) -> RegistryError {
        RegistryError::Unauthorized {
            registry: repo.registry.clone(),
            reference: call.reference.clone(),
            scope: call.scope.clone(),
            detail: error_detail(resp),
        }
    }

    fn sleep(&self, attempt: u32, after: Option<Duration>) {
        let backoff = self.opts.backoff.saturating_mul(1 << attempt.min(6)).min(Duration::from_secs(10));
        std::thread::sleep(after.map_or(backoff, |a| a.min(Duration::from_secs(30))));
    }

    /// What to send up front, from what the host asked for before.
    fn auth_header(&self, repo: &Repo, scope: &str) -> Result<Option<String>> {
        match self.tokens.host(&repo.host) {
            None => Ok(None),
            Some(HostAuth::Basic) => Ok(self.credentials(&repo.registry)?.map(|c| c.basic_header())),
            Some(HostAuth::Bearer { realm, service }) => {
                if let Some(token) = self.tokens.token(&repo.host, scope) {
                    return Ok(Some(format!("Bearer {token}")));
                }
                let token = self.fetch_token(repo, &realm, service.as_deref(), scope, scope)?;
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Answers a challenge: remembers the scheme, fetches a token for `scope`.
    fn authenticate(&self, repo: &Repo, challenge: &Challenge, scope: &str, reference: &str) -> Result<()> {
        match challenge {
            Challenge::Basic => {
                if self.credentials(&repo.registry)?.is_none() {
                    return Err(RegistryError::Unauthorized {
                        registry: repo.registry.clone(),
                        reference: reference.to_string(),
                        scope: scope.to_string(),
                        detail: "the registry wants a user name and password, and none is stored".to_string(),
                    });
                }
                self.tokens.set_host(&repo.host, HostAuth::Basic);
            }
            Challenge::Bearer { realm, service, scope: asked } => {
                self.tokens.set_host(&repo.host, HostAuth::Bearer { realm: realm.clone(), service: service.clone() });
                // Our scope covers what we are about to do (e.g. push and a
                // mount source); the registry's names what this request needs.
                let mut scopes = scope.to_string();
                if let Some(asked) = asked
                    && !scope.split(' ').any(|s| s == asked)
                {
                    scopes = format!("{scope} {asked}");
                }
                let token = self.fetch_token(repo, realm, service.as_deref(), &scopes, reference)?;
                self.tokens.put_token(&repo.host, scope, token, Duration::from_secs(60));
            }
        }
        Ok(())
    }

    /// GET realm?service=…&scope=… with basic credentials if there are any.
    fn fetch_token(
        &self,
        repo: &Repo,
        realm: &str,
        service: Option<&str>,
        scopes: &str,
        reference: &str,
    ) -> Result<String> {
        let mut url = realm.to_string();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        if let Some(service) = service {
            url.push_str(&format!("{sep}service={}", urlencode(service)));
            sep = '&';
        }
        for s in scopes.split(' ').filter(|s| !s.is_empty()) {
            url.push_str(&format!("{sep}scope={}", urlencode(s)));
            sep = '&';
        }
        let realm_host = realm.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or("");
        let creds = self.credentials(&repo.registry)?;
        let mut last = String::new();
        for attempt in 1..=self.opts.attempts.max(1) {
            let mut req = self.agent_for(realm_host).get(&url);
            if let Some(c) = &creds {
                req = req.header("authorization", c.basic_header());
            }
            match req.call() {
                Ok(mut resp) if resp.status().is_success() => {
                    let body = resp.body_mut().with_config().limit(1 << 20).read_to_vec().map_err(|e| {
                        RegistryError::Transport {
                            method: "GET".into(),
                            url: realm.to_string(),
                            message: e.to_string(),
                        }
                    })?;
                    let t: TokenResponse = serde_json::from_slice(&body)
                        .map_err(|e| RegistryError::invalid(format!("token from {realm}"), e.to_string()))?;
                    let token = t.token.or(t.access_token).filter(|t| !t.is_empty()).ok_or_else(|| {
                        RegistryError::invalid(format!("token from {realm}"), "the answer holds no token")
                    })?;
                    let lifetime = Duration::from_secs(t.expires_in.unwrap_or(60).max(1));
                    self.tokens.put_token(&repo.host, scopes, token.clone(), lifetime);
                    return Ok(token);
                }
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    if matches!(status, 429 | 500..=599) && attempt < self.opts.attempts {
                        drain(&mut resp);
                        self.sleep(attempt, None);
                        continue;
                    }
                    let detail = error_detail(&mut resp);
                    return Err(if status == 403 {
                        RegistryError::Denied {
                            registry: repo.registry.clone(),
                            reference: reference.to_string(),
                            scope: scopes.to_string(),
                            detail: format!("token server {realm}: {detail}"),
                        }
                    } else {
                        RegistryError::Unauthorized {
                            registry: repo.registry.clone(),
                            reference: reference.to_string(),
                            scope: scopes.to_string(),
                            detail: format!("token server {realm} answered {status}: {detail}"),
                        }
                    });
                }
                Err(e) => {
                    last = e.to_string();
                    if attempt < self.opts.attempts {
                        self.sleep(attempt, None);
                    }
                }
            }
        }
        Err(RegistryError::Transport { method: "GET".into(), url: realm.to_string(), message: last })
    }

    fn send(&self, call: &Call<'_>, auth: Option<&str>) -> Result<Response<Body>, ureq::Error> {
        let host = call.url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or("");
        let agent = self.agent_for(host);
        fn with_headers<B>(mut rb: RequestBuilder<B>, call: &Call<'_>, auth: Option<&str>) -> RequestBuilder<B> {
            for (k, v) in &call.headers {
                rb = rb.header(*k, v);
            }
            if let Some(a) = auth {
                rb = rb.header("authorization", a);
            }
            rb
        }
        let with_body = |rb: RequestBuilder<ureq::typestate::WithBody>| match call.body {
            CallBody::Empty => rb.header("content-length", "0").send_empty(),
            CallBody::Bytes(b) => rb.send(b),
            CallBody::File { path, offset, len } => {
                let mut file = File::open(path).map_err(ureq::Error::Io)?;
                file.seek(SeekFrom::Start(offset)).map_err(ureq::Error::Io)?;
                let mut reader = file.take(len);
                rb.header("content-length", len.to_string()).send(SendBody::from_reader(&mut reader))
            }
        };
        match call.method {
            "GET" => with_headers(agent.get(&call.url), call, auth).call(),
            "HEAD" => with_headers(agent.head(&call.url), call, auth).call(),
            "DELETE" => with_headers(agent.delete(&call.url), call, auth).call(),
            "POST" => with_body(with_headers(agent.post(&call.url), call, auth)),
            "PATCH" => with_body(with_headers(agent.patch(&call.url), call, auth)),
            _ => with_body(with_headers(agent.put(&call.url), call, auth)),
        }
    }
}

fn agent(tls: TlsConfig) -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        // A stalled transfer fails (and is resumed) instead of hanging forever.
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("distill/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Failures a retry cannot fix: a name that does not resolve, a
/// certificate that does not verify, a malformed URL.
fn is_permanent(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::HostNotFound
        | ureq::Error::BadUri(_)
        | ureq::Error::Tls(_)
        | ureq::Error::Rustls(_)
        | ureq::Error::Pem(_) => true,
        ureq::Error::Io(io) => {
            let m = io.to_string();
            m.contains("failed to lookup address") || m.contains("invalid peer certificate")
        }
        _ => false,
    }
}

/// Whether a host (with optional port) is on the loopback interface.
fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name == "localhost" || name == "::1" || name.starts_with("127.")
}

/// Each `-----BEGIN CERTIFICATE-----` block of a PEM bundle.
fn pem_blocks(pem: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("-----BEGIN CERTIFICATE-----") {
            current = Some(String::new());
        }
        if let Some(c) = current.as_mut() {
            c.push_str(line);
            c.push('\n');
        }
        if line.starts_with("-----END CERTIFICATE-----")
            && let Some(c) = current.take()
        {
            out.push(c);
        }
    }
    out
}

/// Reads and discards a response body so the connection can be reused.
pub(crate) fn drain(resp: &mut Response<Body>) {
    let _ = std::io::copy(&mut resp.body_mut().as_reader().take(1 << 20), &mut std::io::sink());
}

/// The registry's error message: `CODE: message` from the distribution
/// error JSON, else the start of the body, else the status text.
pub(crate) fn error_detail(resp: &mut Response<Body>) -> String {
    let status = resp.status();
    let mut body = Vec::new();
    let _ = resp.body_mut().as_reader().take(16 << 10).read_to_end(&mut body);
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(&body)
        && !e.errors.is_empty()
    {
        return e.errors.iter().map(|i| format!("{}: {}", i.code, i.message)).collect::<Vec<_>>().join("; ");
    }
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    if text.is_empty() || text.len() > 300 {
        return status_text(status);
    }
    text.to_string()
}

fn status_text(status: StatusCode) -> String {
    format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""))
}

/// Percent-encodes a query value.
pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry.example:5000"));
    }

    #[test]
    fn docker_hub_repo() {
        let r = Repo::of(&Reference::parse_normalized("python").unwrap());
        assert_eq!(r.host, "registry-1.docker.io");
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.path, "library/python");
        assert_eq!(r.pull_scope(), "repository:library/python:pull");
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(urlencode("repository:a/b:pull,push"), "repository%3Aa%2Fb%3Apull%2Cpush");
    }
}
