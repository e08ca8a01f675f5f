//! `distill base debian`: a base image from Debian's signed archive (network
//! to deb.debian.org, allowed here), run with `distill run`.

mod build_support;

use build_support::{TestStore, cache_dir, gate, require_root, require_tools};

fn archive_reachable() -> bool {
    use std::net::{TcpStream, ToSocketAddrs};
    let Ok(mut addrs) = ("deb.debian.org", 80).to_socket_addrs() else { return false };
    addrs.any(|a| TcpStream::connect_timeout(&a, std::time::Duration::from_secs(10)).is_ok())
}

#[test]
fn python3_base_from_debian_packages_runs_json_and_ssl() {
    let test = "python3_base_from_debian_packages_runs_json_and_ssl";
    if !require_root(test) || !require_tools(test, &["runc", "gpgv"]) {
        return;
    }
    if !gate(archive_reachable(), test, "HTTP access to deb.debian.org") {
        return;
    }
    let store = TestStore::empty();
    let cache = cache_dir().join("debian-cache");
    let id = store.distill_ok(&[
        "base",
        "debian",
        "--suite",
        "bookworm",
        "--packages",
        "python3",
        "-t",
        "py:base",
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let out = store.distill_ok(&["run", "py:base", "python3", "-c", "import json, ssl; print(6 * 7)"]);
    assert_eq!(out.trim(), "42");
    // Distroless: no shell, no apt; the nonroot user exists.
    let out = store.distill(&["run", "py:base", "/bin/sh", "-c", "true"]);
    assert!(!out.success(), "the base has a shell: {out}");
    let out =
        store.distill_ok(&["run", "--user", "nonroot", "py:base", "python3", "-c", "import os; print(os.getuid())"]);
    assert_eq!(out.trim(), "65532");
}
