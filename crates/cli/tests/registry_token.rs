//! Token auth: the registry's `auth: token` with a token server in the
//! test. Proves the bearer flow (challenge → token with the right scopes →
//! retry), anonymous pull, push needing a login, and that tokens are cached.

mod image_support;
mod registry_support;

use std::io::Write;
use std::process::Stdio;

use image_support::*;
use registry_support::*;

#[test]
fn bearer_token_flow_with_scopes() {
    let test = "bearer_token_flow_with_scopes";
    if !require_tools(test, &["docker-registry", "openssl", "tar", "gzip"]) {
        return;
    }
    let tokens = TokenServer::start(vec![("bob".into(), "pw".into())]);
    let reg = Registry::start(Auth::Token {
        realm: tokens.realm(),
        service: TOKEN_SERVICE.into(),
        issuer: TOKEN_ISSUER.into(),
        cert: tokens.cert.clone(),
    });
    let tmp = TempDir::new("reg-token");
    let config = tmp.join("docker");
    let (a, b) = (tmp.join("store-a"), tmp.join("store-b"));
    let archive = multilayer_archive(tmp.path(), "app:v1", 3, 100_000, 11);
    distill_ok(&a, &["load", "-i", archive.to_str().unwrap()]);
    let target = format!("{}/tok/app:v1", reg.host());

    // Anonymous: the token grants pull only, so the push is refused, naming the scope.
    let out = distill_cmd(&a).env("DOCKER_CONFIG", &config).args(["push", "app:v1", &target]).output().unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("unauthorized") && err.contains("repository:tok/app:pull,push"), "{err}");

    // A wrong password: the token server's 401 comes through, nothing is saved.
    let login = |password: &str| {
        let mut child = distill_cmd(&a)
            .env("DOCKER_CONFIG", &config)
            .args(["login", "-u", "bob", "--password-stdin", &reg.host()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(password.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = login("nope");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unauthorized"), "{}", stderr(&out));
    let out = login("pw");
    assert!(out.status.success(), "{}", stderr(&out));

    let before = tokens.requests.lock().unwrap().len();
    let push = distill_cmd(&a).env("DOCKER_CONFIG", &config).args(["push", "app:v1", &target]).output().unwrap();
    assert!(push.status.success(), "{}", stderr(&push));
    let log = tokens.requests.lock().unwrap().clone();
    let push_requests = &log[before..];
    assert!(
        push_requests
            .iter()
            .any(|(u, s)| u.as_deref() == Some("bob") && s.iter().any(|s| s == "repository:tok/app:pull,push")),
        "{push_requests:?}"
    );
    // Four blobs and a manifest, each several requests: the token is reused, not fetched per request.
    assert!(push_requests.len() <= 4, "{push_requests:?}");

    // Anonymous pull works, with a pull-only scope.
    let before = tokens.requests.lock().unwrap().len();
    let empty = tmp.join("empty-docker");
    let pull = distill_cmd(&b).env("DOCKER_CONFIG", &empty).args(["pull", &target]).output().unwrap();
    assert!(pull.status.success(), "{}", stderr(&pull));
    let log = tokens.requests.lock().unwrap().clone();
    assert!(
        log[before..].iter().all(|(u, s)| u.is_none() && s.iter().all(|s| s == "repository:tok/app:pull")),
        "{log:?}"
    );
    distill_ok(&b, &["fsck"]);

    // The token server refuses the scope: a clear "denied" naming the reference and scope.
    let out = distill_cmd(&a)
        .env("DOCKER_CONFIG", &config)
        .args(["push", "app:v1", &format!("{}/forbidden/app:v1", reg.host())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("denied") && err.contains("repository:forbidden/app:pull,push"), "{err}");
}
