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
        Registry::start_with(auth, None)
    }

    /// With TLS: `tls` is (certificate chain PEM, key PEM).
    pub fn start_with(auth: Auth, tls: Option<(PathBuf, PathBuf)>) -> Registry {
        let mut dir = TempDir::new("registry");
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
        let tls_yaml = match &tls {
            Some((cert, key)) => format!("  tls:\n    certificate: {}\n    key: {}\n", cert.display(), key.display()),
            None => String::new(),
        };
        // Tests run in parallel: a port found free may be taken before the
        // registry binds it; then try another.
        for _ in 0..5 {
            let port = free_port();
            let config = format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{tls_yaml}{auth_yaml}",
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
            if reg.wait_ready() {
                return reg;
            }
            assert!(reg.log().contains("address already in use"), "docker-registry exited:\n{}", reg.log());
            dir = std::mem::replace(&mut reg.dir, TempDir::new("registry-spare"));
        }
        panic!("docker-registry found no free port");
    }

    /// Waits until the registry answers; false if it exited.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut buf = [0u8; 12];
                if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                    // The answer may have come from another test's server on
                    // this port: ours would be exiting with "address in use".
                    std::thread::sleep(Duration::from_millis(200));
                    return self.child.try_wait().unwrap().is_none();
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

/// An OCI image layout at `dir` holding one index with a single-layer image
/// per `(arch, variant)`, each with a distinct file `/platform` naming it.
/// Returns the index's digest.
pub fn multiplatform_layout(dir: &Path, platforms: &[(&str, Option<&str>)]) -> Digest {
    use distill_image::manifest::{Descriptor, Index, Manifest, Platform, media_type};
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| -> Digest {
        let d = Digest::of(data);
        fs::write(blobs.join(d.hex()), data).unwrap();
        d
    };
    let mut entries = Vec::new();
    for (i, (arch, variant)) in platforms.iter().enumerate() {
        let tree = dir.join(format!("tree{i}"));
        fs::create_dir_all(&tree).unwrap();
        fs::write(tree.join("platform"), format!("{arch}{}\n", variant.map(|v| format!("/{v}")).unwrap_or_default()))
            .unwrap();
        let tar = dir.join(format!("layer{i}.tar"));
        run(Command::new("tar")
            .args(["--sort=name", "--mtime=@1700000000", "--owner=0", "--group=0", "--numeric-owner", "-C"])
            .arg(&tree)
            .arg("-cf")
            .arg(&tar)
            .arg("."));
        let layer = fs::read(&tar).unwrap();
        fs::remove_file(&tar).unwrap();
        fs::remove_dir_all(&tree).unwrap();
        let layer_digest = put(&layer);
        let mut config = serde_json::json!({
            "architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer_digest.to_string()]},
        });
        if let Some(v) = variant {
            config["variant"] = serde_json::json!(v);
        }
        let config_bytes = serde_json::to_vec(&config).unwrap();
        let config_digest = put(&config_bytes);
        let manifest = Manifest::new_oci(
            Descriptor::new(media_type::OCI_CONFIG, config_digest, config_bytes.len() as u64),
            vec![Descriptor::new("application/vnd.oci.image.layer.v1.tar", layer_digest, layer.len() as u64)],
        );
        let bytes = manifest.to_canonical_vec().unwrap();
        let mut desc = Descriptor::new(media_type::OCI_MANIFEST, put(&bytes), bytes.len() as u64);
        desc.platform = Some(Platform {
            architecture: arch.to_string(),
            os: "linux".into(),
            variant: variant.map(str::to_string),
            ..Default::default()
        });
        entries.push(desc);
    }
    let index_bytes = Index::new_oci(entries).to_canonical_vec().unwrap();
    let index_digest = put(&index_bytes);
    let mut top = Descriptor::new(media_type::OCI_INDEX, index_digest, index_bytes.len() as u64);
    top.annotations = Some([("org.opencontainers.image.ref.name".to_string(), "multi".to_string())].into());
    fs::write(dir.join("index.json"), Index::new_oci(vec![top]).to_canonical_vec().unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    index_digest
}

/// What the fault proxy does to one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Pass,
    /// Answer with this status and no body (429 comes with `Retry-After: 0`).
    Status(u16),
    /// Send the head and this many body bytes, then drop the connection.
    Cut(usize),
    /// Flip one byte in the middle of the body.
    Flip,
}

/// A request as the proxy's rule sees it.
#[derive(Debug, Clone)]
pub struct ProxyRequest {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    /// How many requests with this method and path came before.
    pub seen: usize,
}

type Rule = Box<dyn Fn(&ProxyRequest) -> Fault + Send + Sync>;

/// An HTTP proxy in front of a registry that injects faults chosen by a
/// rule. One request per connection (it answers `Connection: close`). It
/// serves until dropped.
pub struct FaultProxy {
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub log: std::sync::Arc<std::sync::Mutex<Vec<(ProxyRequest, Fault)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    pub fn start(upstream: u16, rule: impl Fn(&ProxyRequest) -> Fault + Send + Sync + 'static) -> FaultProxy {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let rule: Arc<Rule> = Arc::new(Box::new(rule));
        let counts = Arc::new(Mutex::new(std::collections::HashMap::<(String, String), usize>::new()));
        let (stop2, log2) = (stop.clone(), log.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: the proxy never outlives its test by more than this.
            let deadline = Instant::now() + Duration::from_secs(600);
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (rule, log, counts) = (rule.clone(), log2.clone(), counts.clone());
                        std::thread::spawn(move || {
                            let _ = proxy_one(conn, upstream, &rule, &log, &counts);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultProxy { port, stop, log, thread: Some(thread) }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn faults(&self) -> Vec<(ProxyRequest, Fault)> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn proxy_one(
    mut conn: TcpStream,
    upstream: u16,
    rule: &Rule,
    log: &std::sync::Mutex<Vec<(ProxyRequest, Fault)>>,
    counts: &std::sync::Mutex<std::collections::HashMap<(String, String), usize>>,
) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk)?;
        if n == 0 || buf.len() > 1 << 20 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        // Not HTTP (a TLS probe): hang up at once, as a plain-http server's error would.
        if !buf[0].is_ascii_uppercase() {
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    if !path.starts_with('/') {
        return Ok(()); // not HTTP (e.g. a TLS probe)
    }
    let mut headers = Vec::new();
    let mut content_length = 0usize;
    let mut range = None;
    for l in lines.filter(|l| !l.is_empty()) {
        let (k, v) = l.split_once(':').unwrap_or((l, ""));
        let key = k.trim().to_ascii_lowercase();
        match key.as_str() {
            "content-length" => content_length = v.trim().parse().unwrap_or(0),
            "range" => range = Some(v.trim().to_string()),
            "connection" => continue,
            _ => {}
        }
        headers.push(l.to_string());
    }
    let mut body = buf[head_end..].to_vec();
    while body.len() < content_length {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let seen = {
        let mut c = counts.lock().unwrap();
        let e = c.entry((method.clone(), path.clone())).or_insert(0);
        *e += 1;
        *e - 1
    };
    let req = ProxyRequest { method: method.clone(), path, range, seen };
    let fault = rule(&req);
    log.lock().unwrap().push((req, fault));
    if let Fault::Status(code) = fault {
        let extra = if code == 429 { "Retry-After: 0\r\n" } else { "" };
        conn.write_all(
            format!("HTTP/1.1 {code} Injected\r\nContent-Length: 0\r\n{extra}Connection: close\r\n\r\n").as_bytes(),
        )?;
        return Ok(());
    }
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    let mut out = format!("{request_line}\r\n");
    for h in &headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    up.write_all(out.as_bytes())?;
    up.write_all(&body)?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp)?;
    let Some(i) = find(&resp, b"\r\n\r\n") else { return Ok(()) };
    let resp_head = String::from_utf8_lossy(&resp[..i]).into_owned();
    let mut new_head = String::new();
    for l in resp_head.split("\r\n") {
        if !l.to_ascii_lowercase().starts_with("connection:") {
            new_head.push_str(l);
            new_head.push_str("\r\n");
        }
    }
    new_head.push_str("Connection: close\r\n\r\n");
    let mut resp_body = resp[i + 4..].to_vec();
    conn.write_all(new_head.as_bytes())?;
    match fault {
        Fault::Cut(n) => {
            conn.write_all(&resp_body[..n.min(resp_body.len())])?;
            conn.flush()?;
            let _ = conn.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }
        Fault::Flip if !resp_body.is_empty() => {
            let mid = resp_body.len() / 2;
            resp_body[mid] ^= 0x55;
        }
        _ => {}
    }
    conn.write_all(&resp_body)?;
    conn.flush()
}

/// base64 (standard alphabet, padded) or base64url (unpadded).
pub fn base64(data: &[u8], url: bool) -> String {
    let alphabet: &[u8] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if !url {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        _ => 63,
    };
    let bytes: Vec<u8> = s.bytes().filter(|c| *c != b'=').collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= (val(*c) as u32) << (18 - 6 * i);
        }
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

/// A token server for the registry's `auth: token`: issues RS256 JWTs
/// signed by a self-signed certificate (made with openssl) that the
/// registry trusts. Anonymous callers get pull access only; `users` get
/// what they ask for; wrong passwords get 401. Every request's scopes are
/// logged.
pub struct TokenServer {
    pub port: u16,
    pub cert: PathBuf,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<TokenRequest>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: TempDir,
}

/// (user, or None for anonymous; the scopes asked for).
pub type TokenRequest = (Option<String>, Vec<String>);

pub const TOKEN_SERVICE: &str = "distill-test-registry";
pub const TOKEN_ISSUER: &str = "distill-test-issuer";

impl TokenServer {
    pub fn start(users: Vec<(String, String)>) -> TokenServer {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let dir = TempDir::new("token");
        let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
        run(Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=distill-test-issuer"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        let der = Command::new("openssl").args(["x509", "-outform", "DER", "-in"]).arg(&cert).output().unwrap().stdout;
        let x5c = base64(&der, false);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (stop2, requests2, key2) = (stop.clone(), requests.clone(), key.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(600);
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let _ = serve_token(conn, &users, &key2, &x5c, &requests2);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TokenServer { port, cert, requests, stop, thread: Some(thread), _dir: dir }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn serve_token(
    mut conn: TcpStream,
    users: &[(String, String)],
    key: &Path,
    x5c: &str,
    log: &std::sync::Mutex<Vec<TokenRequest>>,
) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    while find(&buf, b"\r\n\r\n").is_none() {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let path = head.split(' ').nth(1).unwrap_or("");
    let query = path.split_once('?').map_or("", |(_, q)| q);
    let mut scopes = Vec::new();
    for pair in query.split('&') {
        if let Some(v) = pair.strip_prefix("scope=") {
            scopes.push(url_decode(v));
        }
    }
    let auth = head
        .split("\r\n")
        .find_map(|l| l.strip_prefix("Authorization: ").or_else(|| l.strip_prefix("authorization: ")))
        .and_then(|v| v.strip_prefix("Basic "))
        .map(|b| String::from_utf8_lossy(&base64_decode(b.trim())).into_owned());
    let user = match &auth {
        None => None,
        Some(pair) => {
            let (u, p) = pair.split_once(':').unwrap_or((pair, ""));
            if !users.iter().any(|(uu, pp)| uu == u && pp == p) {
                log.lock().unwrap().push((Some(format!("{u} (refused)")), scopes));
                let body = r#"{"details":"wrong user name or password"}"#;
                conn.write_all(
                    format!(
                        "HTTP/1.1 401 Unauthorized\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )?;
                return Ok(());
            }
            Some(u.to_string())
        }
    };
    log.lock().unwrap().push((user.clone(), scopes.clone()));
    // Repositories under forbidden/ are refused outright, as a token server denies access.
    if user.is_some() && scopes.iter().any(|s| s.starts_with("repository:forbidden/")) {
        let body = r#"{"details":"access to forbidden/ is denied"}"#;
        conn.write_all(
            format!("HTTP/1.1 403 Forbidden\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                .as_bytes(),
        )?;
        return Ok(());
    }
    let mut access = Vec::new();
    for scope in scopes.iter().flat_map(|s| s.split(' ')) {
        let mut parts = scope.splitn(3, ':');
        let (kind, name, actions) =
            (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let granted: Vec<&str> = actions.split(',').filter(|a| user.is_some() || *a == "pull").collect();
        access.push(serde_json::json!({"type": kind, "name": name, "actions": granted}));
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": TOKEN_ISSUER, "sub": user.clone().unwrap_or_default(), "aud": TOKEN_SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now - 10, "jti": format!("{now}-{}", access.len()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        base64(&serde_json::to_vec(&header).unwrap(), true),
        base64(&serde_json::to_vec(&claims).unwrap(), true)
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    child.stdin.take().unwrap().write_all(signing_input.as_bytes())?;
    let sig = child.wait_with_output()?.stdout;
    let token = format!("{signing_input}.{}", base64(&sig, true));
    let body = serde_json::json!({"token": token, "expires_in": 300}).to_string();
    conn.write_all(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

/// A test CA and a server certificate it signed for IP 127.0.0.1, made
/// with openssl in `dir`: (CA PEM, server certificate PEM, server key PEM).
pub fn test_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (ca, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let (cert, key, csr) = (dir.join("server.pem"), dir.join("server.key"), dir.join("server.csr"));
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=distill test CA"])
        .arg("-keyout")
        .arg(&ca_key)
        .arg("-out")
        .arg(&ca));
    run(Command::new("openssl")
        .args(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr));
    let ext = dir.join("server.ext");
    fs::write(&ext, "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n").unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .arg("-in")
        .arg(&csr)
        .arg("-CA")
        .arg(&ca)
        .arg("-CAkey")
        .arg(&ca_key)
        .arg("-extfile")
        .arg(&ext)
        .arg("-out")
        .arg(&cert));
    (ca, cert, key)
}
