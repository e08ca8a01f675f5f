//! The registry client against a real registry (Debian's `docker-registry`
//! on 127.0.0.1) with skopeo as the independent client: push and pull back
//! keep digests, skopeo reads what distill pushed and distill pulls what
//! skopeo pushed, basic auth with `distill login`.

mod image_support;
mod registry_support;

use std::io::Write;
use std::process::{Command, Stdio};

use image_support::*;
use registry_support::*;

fn ready(test: &str) -> bool {
    require_tools(test, &["docker-registry", "skopeo", "htpasswd", "tar", "gzip"])
}

fn manifest_digest(root: &std::path::Path, image: &str) -> String {
    let store = distill_image::store::Store::open(root).unwrap();
    store.resolve(image).unwrap().digest.to_string()
}

#[test]
fn push_and_pull_back_keep_digests_and_skopeo_agrees() {
    if !ready("push_and_pull_back_keep_digests_and_skopeo_agrees") {
        return;
    }
    let reg = Registry::start(Auth::None);
    let tmp = TempDir::new("reg-roundtrip");
    let (a, b) = (tmp.join("store-a"), tmp.join("store-b"));
    let archive = multilayer_archive(tmp.path(), "app:v1", 3, 300_000, 1);
    distill_ok(&a, &["load", "-i", archive.to_str().unwrap()]);
    let local = manifest_digest(&a, "app:v1");
    let target = format!("{}/test/app:v1", reg.host());
    let out = distill_ok(&a, &["push", "app:v1", &target]);
    assert!(out.contains("Pushed"), "{out}");
    let pushed = out.lines().last().unwrap().split_whitespace().nth(2).unwrap().to_string();
    assert_eq!(local, pushed, "the pushed digest is not the stored one");

    // skopeo reads it: same digest, same layers.
    let inspect = run(Command::new("skopeo").args(["inspect", "--tls-verify=false", &format!("docker://{target}")]));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Digest"], pushed.as_str());
    assert_eq!(v["Layers"].as_array().unwrap().len(), 3);
    run(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{target}"),
        &format!("oci:{}:copied", tmp.join("oci").display()),
    ]));

    // A second push finds every blob there.
    let again = distill_ok(&a, &["push", "app:v1", &target]);
    assert!(again.matches("Layer already exists").count() >= 3, "{again}");

    // Pull into another store: identical manifest digest, a clean store.
    let out = distill_ok(&b, &["pull", &target]);
    assert!(out.contains("Pull complete"), "{out}");
    assert!(out.contains(&format!("Digest: {pushed}")), "{out}");
    assert_eq!(manifest_digest(&b, &target), pushed);
    distill_ok(&b, &["fsck"]);
    let up = distill_ok(&b, &["pull", &target]);
    assert!(up.contains("Image is up to date"), "{up}");
    // By digest too.
    distill_ok(&b, &["pull", &format!("{}/test/app@{pushed}", reg.host())]);

    // An unknown tag: a clear 404.
    let out = distill(&b, &["pull", &format!("{}/test/app:nope", reg.host())]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
}

#[test]
fn pulls_what_skopeo_pushed() {
    if !ready("pulls_what_skopeo_pushed") {
        return;
    }
    let reg = Registry::start(Auth::None);
    let tmp = TempDir::new("reg-skopeo");
    let archive = multilayer_archive(tmp.path(), "other:1", 2, 100_000, 2);
    // skopeo pushes a docker-archive as Docker schema 2.
    let target = format!("{}/from/skopeo:1", reg.host());
    run(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        &format!("docker-archive:{}", archive.display()),
        &format!("docker://{target}"),
    ]));
    let root = tmp.join("store");
    distill_ok(&root, &["pull", &target]);
    let inspect = run(Command::new("skopeo").args(["inspect", "--tls-verify=false", &format!("docker://{target}")]));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(manifest_digest(&root, &target), v["Digest"].as_str().unwrap());
    distill_ok(&root, &["fsck"]);
}

fn login(
    root: &std::path::Path,
    docker_config: &std::path::Path,
    host: &str,
    user: &str,
    password: &str,
) -> std::process::Output {
    let mut child = distill_cmd(root)
        .env("DOCKER_CONFIG", docker_config)
        .args(["login", "--username", user, "--password-stdin", host])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn basic_auth_login_push_pull_and_wrong_password() {
    if !ready("basic_auth_login_push_pull_and_wrong_password") {
        return;
    }
    let reg = Registry::start(Auth::Basic(vec![("alice".into(), "s3cret".into())]));
    let tmp = TempDir::new("reg-basic");
    let config = tmp.join("docker");
    let (a, b) = (tmp.join("store-a"), tmp.join("store-b"));
    let archive = multilayer_archive(tmp.path(), "app:v1", 2, 50_000, 3);
    distill_ok(&a, &["load", "-i", archive.to_str().unwrap()]);
    let target = format!("{}/private/app:v1", reg.host());

    // No credentials: a clear 401 naming the reference and the scope.
    let out = distill_cmd(&a).env("DOCKER_CONFIG", &config).args(["push", "app:v1", &target]).output().unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("unauthorized") && err.contains("private/app"), "{err}");

    // A wrong password is refused and nothing is stored.
    let out = login(&a, &config, &reg.host(), "alice", "wrong");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unauthorized"), "{}", stderr(&out));
    assert!(!config.join("config.json").exists());

    let out = login(&a, &config, &reg.host(), "alice", "s3cret");
    assert!(out.status.success(), "{}", stderr(&out));
    let saved = std::fs::read_to_string(config.join("config.json")).unwrap();
    assert!(saved.contains(&reg.host()), "{saved}");

    let push = distill_cmd(&a).env("DOCKER_CONFIG", &config).args(["push", "app:v1", &target]).output().unwrap();
    assert!(push.status.success(), "{}", stderr(&push));
    let pull = distill_cmd(&b).env("DOCKER_CONFIG", &config).args(["pull", &target]).output().unwrap();
    assert!(pull.status.success(), "{}", stderr(&pull));
    assert_eq!(manifest_digest(&a, "app:v1"), manifest_digest(&b, &target));

    // Wrong credentials on pull: 401, and the store gains nothing.
    let c = tmp.join("store-c");
    let out = distill_cmd(&c).args(["pull", "--creds", "alice:nope", &target]).output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unauthorized"), "{}", stderr(&out));
    assert_eq!(distill_ok(&c, &["images", "-q"]).trim(), "");
    distill_ok(&c, &["fsck"]);
    assert_eq!(std::fs::read_dir(c.join("blobs/sha256")).unwrap().count(), 0);

    let out = distill_cmd(&a).env("DOCKER_CONFIG", &config).args(["logout", &reg.host()]).output().unwrap();
    assert!(out.status.success());
    let out = distill_cmd(&c).env("DOCKER_CONFIG", &config).args(["pull", &target]).output().unwrap();
    assert!(!out.status.success());

    // A credential helper named by credHelpers supplies the login.
    let helper_dir = tmp.join("helpers");
    std::fs::create_dir_all(&helper_dir).unwrap();
    let helper = helper_dir.join("docker-credential-fake");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\n[ \"$1\" = get ] && [ \"$server\" = {} ] && echo '{{\"Username\":\"alice\",\"Secret\":\"s3cret\"}}' && exit 0\necho 'credentials not found in native keychain'; exit 1\n",
            reg.host()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let helper_config = tmp.join("docker-helper");
    std::fs::create_dir_all(&helper_config).unwrap();
    std::fs::write(helper_config.join("config.json"), format!(r#"{{"credHelpers":{{"{}":"fake"}}}}"#, reg.host()))
        .unwrap();
    let path = format!("{}:{}", helper_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = distill_cmd(&tmp.join("store-d"))
        .env("DOCKER_CONFIG", &helper_config)
        .env("PATH", path)
        .args(["pull", &target])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn pulls_each_platform_of_an_index_skopeo_pushed() {
    if !ready("pulls_each_platform_of_an_index_skopeo_pushed") {
        return;
    }
    let reg = Registry::start(Auth::None);
    let tmp = TempDir::new("reg-index");
    let layout = tmp.join("layout");
    multiplatform_layout(&layout, &[("amd64", None), ("arm64", Some("v8"))]);
    let target = format!("{}/multi/app:1", reg.host());
    run(Command::new("skopeo").args([
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", layout.display()),
        &format!("docker://{target}"),
    ]));
    // skopeo compresses the layers on the way, so the index it pushed is its own.
    let raw =
        run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{target}")]));
    assert!(raw.contains("application/vnd.oci.image.index.v1+json"), "{raw}");
    let index = distill_image::digest::Digest::of(raw.as_bytes());
    for (platform, arch) in [("linux/amd64", "amd64"), ("linux/arm64/v8", "arm64"), ("linux/arm64", "arm64")] {
        let root = tmp.join(&format!("store-{}", platform.replace('/', "-")));
        let out = distill_ok(&root, &["pull", "--platform", platform, &target]);
        assert!(out.contains(&format!("Digest: {index}")), "{out}");
        let arch_seen = distill_ok(&root, &["inspect", "--format", "{{.Architecture}}", &target]);
        assert_eq!(arch_seen.trim(), arch, "{platform}");
        // Pinned by the index's digest: pulled again (nothing new) and found by that digest.
        let pinned = format!("{}/multi/app@{index}", reg.host());
        let out = distill_ok(&root, &["pull", "--platform", platform, &pinned]);
        assert!(out.contains("Image is up to date"), "{out}");
        let arch_seen = distill_ok(&root, &["inspect", "--format", "{{.Architecture}}", &pinned]);
        assert_eq!(arch_seen.trim(), arch, "{platform} by index digest");
        let rootfs = tmp.join(&format!("rootfs-{arch}.tar"));
        distill_ok(&root, &["export", "-o", rootfs.to_str().unwrap(), &target]);
        let listing = run(Command::new("tar").arg("-xOf").arg(&rootfs).arg("--wildcards").arg("*platform"));
        assert!(listing.starts_with(arch), "{platform}: {listing}");
        distill_ok(&root, &["fsck"]);
    }
    // The same as a Docker manifest list with schema 2 manifests.
    let docker = format!("{}/multi/docker:1", reg.host());
    run(Command::new("skopeo").args([
        "copy",
        "--all",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", layout.display()),
        &format!("docker://{docker}"),
    ]));
    let raw =
        run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{docker}")]));
    assert!(raw.contains("application/vnd.docker.distribution.manifest.list.v2+json"), "{raw}");
    let root = tmp.join("store-docker");
    for (platform, arch) in [("linux/arm64", "arm64"), ("linux/amd64", "amd64")] {
        distill_ok(&root, &["pull", "--platform", platform, &docker]);
        let arch_seen = distill_ok(&root, &["inspect", "--format", "{{.Architecture}}", &docker]);
        assert_eq!(arch_seen.trim(), arch, "{platform} from a manifest list");
        let store = distill_image::store::Store::open(&root).unwrap();
        let record = store.resolve(&docker).unwrap();
        assert_eq!(record.media_type, "application/vnd.docker.distribution.manifest.v2+json");
    }
    distill_ok(&root, &["fsck"]);

    // A platform the index lacks: a clear error listing what there is.
    let out = distill(&tmp.join("store-x"), &["pull", "--platform", "linux/s390x", &target]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("linux/s390x") && err.contains("linux/amd64") && err.contains("linux/arm64/v8"), "{err}");
}

#[test]
fn chunked_uploads_and_cross_repository_mounts() {
    use distill_image::reference::Reference;
    use distill_image::store::Store;
    use distill_registry::{Client, ClientOptions, NoPushProgress, Platform};
    if !ready("chunked_uploads_and_cross_repository_mounts") {
        return;
    }
    let reg = Registry::start(Auth::None);
    let tmp = TempDir::new("reg-chunked");
    let a = tmp.join("store-a");
    let archive = multilayer_archive(tmp.path(), "app:v1", 3, 400_000, 5);
    distill_ok(&a, &["load", "-i", archive.to_str().unwrap()]);
    let store = Store::open(&a).unwrap();
    let image = store.resolve("app:v1").unwrap();
    // Small limits: every layer goes up in several PATCH chunks.
    let client =
        Client::new(ClientOptions { monolithic_max: 100_000, chunk_size: 64 * 1024, ..ClientOptions::default() })
            .unwrap();
    let first = Reference::parse_normalized(&format!("{}/chunked/one:v1", reg.host())).unwrap();
    let pushed = client.push_image(&store, &image, &first, &NoPushProgress).unwrap();
    assert_eq!(pushed.digest, image.digest);
    assert_eq!((pushed.uploaded, pushed.mounted), (4, 0));

    // Another repository on the same registry: every blob is mounted.
    let second = Reference::parse_normalized(&format!("{}/chunked/two:v1", reg.host())).unwrap();
    let pushed = client.push_image(&store, &image, &second, &NoPushProgress).unwrap();
    assert_eq!((pushed.uploaded, pushed.mounted), (0, 4));

    // A mount source that lacks the blobs: the registry answers 202 and the blobs are uploaded.
    let fresh =
        Client::new(ClientOptions { monolithic_max: 100_000, chunk_size: 64 * 1024, ..ClientOptions::default() })
            .unwrap();
    let nowhere = Reference::parse_normalized(&format!("{}/nowhere/x:1", reg.host())).unwrap();
    let manifest = store.image(&image).unwrap().manifest;
    for l in manifest.layers.iter().chain([&manifest.config]) {
        fresh.remember_blob(&nowhere, l.digest);
    }
    let third = Reference::parse_normalized(&format!("{}/chunked/three:v1", reg.host())).unwrap();
    let pushed = fresh.push_image(&store, &image, &third, &NoPushProgress).unwrap();
    assert_eq!((pushed.uploaded, pushed.mounted), (4, 0));

    // What went up in chunks comes back intact.
    let b = tmp.join("store-b");
    let store_b = Store::open(&b).unwrap();
    let writer = store_b.writer().unwrap();
    let pulled = client.pull(&writer, &third, &Platform::host(), &distill_registry::NoProgress).unwrap();
    drop(writer);
    assert_eq!(pulled.image.digest, image.digest);
    distill_ok(&b, &["fsck"]);
}

#[test]
fn tls_with_extra_ca_certificates_or_without_verification() {
    use distill_image::reference::Reference;
    use distill_image::store::Store;
    use distill_registry::{Client, ClientOptions, NoPushProgress, RegistryError};
    if !ready("tls_with_extra_ca_certificates_or_without_verification") || !require_tools("tls", &["openssl"]) {
        return;
    }
    let tmp = TempDir::new("reg-tls");
    let (ca, cert, key) = test_certificates(tmp.path());
    let reg = Registry::start_with(Auth::None, Some((cert, key)));
    let a = tmp.join("store-a");
    let archive = multilayer_archive(tmp.path(), "app:v1", 1, 10_000, 31);
    distill_ok(&a, &["load", "-i", archive.to_str().unwrap()]);
    let store = Store::open(&a).unwrap();
    let image = store.resolve("app:v1").unwrap();
    let target = Reference::parse_normalized(&format!("{}/tls/app:v1", reg.host())).unwrap();
    // Loopback is normally trusted like Docker does; here it must verify.
    let strict = ClientOptions { insecure_loopback: false, ..ClientOptions::default() };

    let no_ca = Client::new(strict.clone()).unwrap();
    let err = no_ca.push_image(&store, &image, &target, &NoPushProgress).unwrap_err();
    assert!(matches!(err, RegistryError::Transport { .. }) && err.to_string().contains("certificate"), "{err}");

    let with_ca = Client::new(ClientOptions { ca_certs: vec![ca], ..strict.clone() }).unwrap();
    let pushed = with_ca.push_image(&store, &image, &target, &NoPushProgress).unwrap();
    assert_eq!(pushed.digest, image.digest);

    let unverified = Client::new(ClientOptions { tls_verify: false, ..strict }).unwrap();
    unverified.push_image(&store, &image, &target, &NoPushProgress).unwrap();

    // The CLI over https (loopback: not verified, like docker).
    distill_ok(&tmp.join("store-b"), &["pull", &target.to_string()]);
}

#[test]
fn push_compresses_uncompressed_layers_on_request() {
    if !ready("push_compresses_uncompressed_layers_on_request") {
        return;
    }
    let reg = Registry::start(Auth::None);
    let tmp = TempDir::new("reg-compress");
    let (a, b) = (tmp.join("store-a"), tmp.join("store-b"));
    // Layers 0 and 2 are plain tars, layer 1 is gzip'd.
    let archive = multilayer_archive(tmp.path(), "app:v1", 3, 200_000, 41);
    distill_ok(&a, &["load", "-i", archive.to_str().unwrap()]);
    let target = format!("{}/compressed/app:v1", reg.host());
    let first = distill_ok(&a, &["push", "-q", "--compression", "gzip", "app:v1", &target]);
    let raw =
        run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{target}")]));
    let m: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    assert!(layers.iter().all(|l| l["mediaType"].as_str().unwrap().ends_with("gzip")), "{raw}");
    // Deterministic: the same variant again, nothing to upload.
    let again = distill_ok(&a, &["push", "--compression", "gzip", "app:v1", &target]);
    assert!(again.contains(first.trim()) && again.matches("Layer already exists").count() >= 3, "{again}");
    // The same image (config) comes back, and unpacks to the same diff_ids.
    distill_ok(&b, &["pull", &target]);
    let id =
        |root: &std::path::Path, r: &str| distill_image::store::Store::open(root).unwrap().resolve(r).unwrap().config;
    assert_eq!(id(&a, "app:v1"), id(&b, &target));
    distill_ok(&a, &["fsck"]);
    distill_ok(&b, &["fsck"]);
}
