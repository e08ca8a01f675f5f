//! Registry authentication: the `WWW-Authenticate` challenge (RFC 7235 with
//! Docker's bearer-token parameters), basic credentials, and tokens cached
//! per registry and scope until they expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// A user name and secret for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets, not even in debug output.
        write!(f, "Credentials({:?}, ***)", self.username)
    }
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials { username: username.into(), password: password.into() }
    }

    /// The value of an `Authorization: Basic …` header.
    pub fn basic_header(&self) -> String {
        format!("Basic {}", STANDARD.encode(format!("{}:{}", self.username, self.password)))
    }
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
}

/// Parses a `WWW-Authenticate` value; the first Bearer or Basic challenge wins.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let realm = params.get("realm")?.clone();
    Some(Challenge::Bearer { realm, service: params.get("service").cloned(), scope: params.get("scope").cloned() })
}

/// `key="quoted, value", key2=token` pairs; keys lowercased.
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            return out;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek() != Some(&'=') {
            continue;
        }
        chars.next();
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        out.insert(key.to_ascii_lowercase(), value);
    }
}

/// What a registry host asked for last: later requests send credentials
/// or a cached token up front instead of collecting a 401 each time.
#[derive(Debug, Clone)]
pub(crate) enum HostAuth {
    Basic,
    Bearer { realm: String, service: Option<String> },
}

/// Tokens by (host, scope), and what each host's challenge was.
#[derive(Default)]
pub(crate) struct TokenCache {
    tokens: Mutex<HashMap<(String, String), (String, Instant)>>,
    hosts: Mutex<HashMap<String, HostAuth>>,
}

/// Tokens are used until shortly before they expire (clock skew, slow requests).
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

impl TokenCache {
    pub(crate) fn token(&self, host: &str, scope: &str) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let (token, until) = tokens.get(&(host.to_string(), scope.to_string()))?;
        (Instant::now() + EXPIRY_MARGIN < *until).then(|| token.clone())
    }

    pub(crate) fn put_token(&self, host: &str, scope: &str, token: String, lifetime: Duration) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.insert((host.to_string(), scope.to_string()), (token, Instant::now() + lifetime));
    }

    pub(crate) fn forget_token(&self, host: &str, scope: &str) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.remove(&(host.to_string(), scope.to_string()));
    }

    pub(crate) fn host(&self, host: &str) -> Option<HostAuth> {
        self.hosts.lock().unwrap_or_else(|e| e.into_inner()).get(host).cloned()
    }

    pub(crate) fn set_host(&self, host: &str, auth: HostAuth) {
        self.hosts.lock().unwrap_or_else(|e| e.into_inner()).insert(host.to_string(), auth);
    }
}

/// The token endpoint's answer (Docker's `token`, OAuth2's `access_token`).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    /// Seconds; the spec's default is 60.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_hub_challenge() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/python:pull""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/python:pull".into()),
            }
        );
    }

    #[test]
    fn parses_basic_and_unknown() {
        assert_eq!(parse_challenge(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }

    #[test]
    fn scope_with_commas_and_escapes() {
        let c = parse_challenge(r#"bearer realm="http://a/t", scope="repository:a/b:pull,push", error="x\"y""#);
        let Some(Challenge::Bearer { scope, .. }) = c else { panic!() };
        assert_eq!(scope.as_deref(), Some("repository:a/b:pull,push"));
    }

    #[test]
    fn basic_header_and_debug_hide_the_secret() {
        let c = Credentials::new("user", "pa:ss");
        assert_eq!(c.basic_header(), "Basic dXNlcjpwYTpzcw==");
        assert!(!format!("{c:?}").contains("pa:ss"));
    }
}
