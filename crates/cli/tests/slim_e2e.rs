//! `distill slim` / `build --slim` end to end, as root with real runc and
//! overlayfs: every example of `examples/` is built fat, slimmed (verified
//! by distill: the image's command runs in both and must print the same),
//! then run independently (`distill save` → umoci → runc) and compared with
//! the fat image; sizes are held to the targets; a computed dlopen
//! fails verification naming the library and passes with --trace or --keep;
//! explain, the SBOM, the accounts and /tmp are checked.

mod build_support;

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use build_support::{TempDir, TestStore, repo_root};
use serde_json::Value;

const MIB: u64 = 1 << 20;

fn store(test: &str) -> Option<TestStore> {
    if !build_support::require_build(test) || !build_support::require_tools(test, &["umoci"]) {
        return None;
    }
    TestStore::with_base_images(test)
}

/// Regular files of an exported rootfs: (container path, size, is ELF).
fn files(root: &Path) -> Vec<(String, u64, bool)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                let mut magic = [0u8; 4];
                let elf = fs::File::open(&p).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == b"\x7fELF";
                out.push((format!("/{}", p.strip_prefix(root).unwrap().display()), m.len(), elf));
            }
        }
    }
    out.sort();
    out
}

/// Builds `examples/<name>` fat, slims it (verified), and checks the slim
/// image prints what the fat one prints when run by umoci + runc. Returns
/// the exported slim rootfs.
fn fat_and_slim(store: &TestStore, name: &str) -> (TempDir, String) {
    let ctx = repo_root().join("examples").join(name);
    let fat = format!("{name}-fat");
    let slim = format!("{name}-slim");
    store.build_ok(&ctx, &["-t", &fat, "--progress", "plain"]);
    let fat_out = store.run_image(&fat, None).assert_success();
    let out = store.distill(&["slim", &fat, "-t", &slim, "--report"]).assert_success();
    assert!(out.stderr.contains("1 probe verified"), "the image's command was not verified:\n{out}");
    let slim_out = store.run_image(&slim, None).assert_success();
    assert_eq!(slim_out.stdout, fat_out.stdout, "slim and fat print differently\nfat: {fat_out}\nslim: {slim_out}");
    let root = TempDir::new(&format!("{name}-slim-rootfs"));
    store.export_rootfs(&slim, root.path());
    (root, fat_out.stdout)
}

/// The target for compiled programs: nothing beyond the app and the shared
/// objects it loads, plus at most 1 MiB of config and data files.
fn assert_only_elf_plus_one_mib(root: &Path, name: &str) {
    let all = files(root);
    let data: u64 = all.iter().filter(|f| !f.2).map(|f| f.1).sum();
    let elf: u64 = all.iter().filter(|f| f.2).map(|f| f.1).sum();
    assert!(data <= MIB, "{name}: {data} bytes of non-ELF files (> 1 MiB): {all:#?}");
    eprintln!("{name}: slim = {elf} bytes of ELF objects + {data} bytes of other files, {} files", all.len());
}

#[test]
fn calculator_build_slim_verifies_runs_and_explains() {
    let Some(store) = store("calculator_build_slim_verifies_runs_and_explains") else { return };
    let ctx = repo_root().join("examples/calculator");
    let out = store.build_ok(
        &ctx,
        &["--slim", "-t", "calc", "--probe", "2 + 3", "--report", "--debug-variant", "--progress", "plain"],
    );
    assert!(out.stderr.contains("2 probes verified"), "{out}");
    assert!(out.stdout.contains("python stdlib"), "--report prints the categories: {out}");
    assert_eq!(store.run_image("calc", None).assert_success().stdout.trim(), "42");
    let five = store.run_image("calc", Some(&["python3", "/app/calc.py", "2", "+", "3"])).assert_success();
    assert_eq!(five.stdout.trim(), "5");

    let root = TempDir::new("calc-slim-rootfs");
    store.export_rootfs("calc", root.path());
    let total: u64 = files(root.path()).iter().map(|f| f.1).sum();
    assert!(total <= 20 * MIB, "the slim calculator is {total} bytes (> 20 MiB)");
    assert!(!root.join("bin/sh").exists() && !root.join("usr/bin/dash").exists(), "a shell was kept");
    assert!(!root.join("usr/bin/apt").exists());
    let tmp = fs::symlink_metadata(root.join("tmp")).unwrap();
    assert_eq!(tmp.mode() & 0o7777, 0o1777);
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.lines().any(|l| l.starts_with("root:x:0:0:")), "{passwd}");
    assert!(passwd.lines().any(|l| l.starts_with("nonroot:x:65532:65532:")), "{passwd}");
    let group = fs::read_to_string(root.join("etc/group")).unwrap();
    assert!(group.lines().any(|l| l.starts_with("nonroot:x:65532:")), "{group}");
    let config = store.image_config("calc");
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["python3", "/app/calc.py"]));
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);

    // explain: the interpreter, a DT_NEEDED library through links, an import.
    let why = store.distill_ok(&["explain", "calc", "/usr/bin/python3.11"]);
    assert!(why.contains("the Python interpreter"), "{why}");
    let why = store.distill_ok(&["explain", "calc", "/lib64/ld-linux-x86-64.so.2"]);
    assert!(why.contains("PT_INTERP of /usr/bin/python3.11"), "{why}");
    let libz = files(root.path()).into_iter().find(|f| f.0.contains("/libz.so.")).expect("libz is kept").0;
    let why = store.distill_ok(&["explain", "calc", &libz]);
    assert!(why.contains("DT_NEEDED libz.so.1 of /usr/bin/python3.11"), "{why}");
    let why = store.distill_ok(&["explain", "calc", "/usr/lib/python3.11/operator.py"]);
    assert!(why.contains("imported by /app/calc.py"), "{why}");
    let not = store.distill(&["explain", "calc", "/usr/bin/apt"]).assert_failure();
    assert!(not.stderr.contains("not in the slim image"), "{not}");

    // The SBOM lists the packages that still have files, and only those.
    let sbom: Value = serde_json::from_str(&store.distill_ok(&["sbom", "calc"])).unwrap();
    assert_eq!(sbom["spdxVersion"], "SPDX-2.3");
    let names: Vec<&str> = sbom["packages"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    for want in ["libc6", "libpython3.11-minimal", "python3.11-minimal", "zlib1g"] {
        assert!(names.contains(&want), "{want} missing from the SBOM: {names:?}");
    }
    for unwanted in ["apt", "bash", "coreutils", "dpkg"] {
        assert!(!names.contains(&unwanted), "{unwanted} has no file in the slim image: {names:?}");
    }

    // The debug variant has a shell.
    let sh = store.run_image("calc:latest-debug", Some(&["/bin/sh", "-c", "echo debug shell"])).assert_success();
    assert_eq!(sh.stdout.trim(), "debug shell");
}

#[test]
fn c_program_with_libssl_slims_to_its_closure() {
    let Some(store) = store("c_program_with_libssl_slims_to_its_closure") else { return };
    let (root, out) = fat_and_slim(&store, "c-sha256");
    // sha256("distill"), as sha256sum prints it.
    assert!(
        out.starts_with("8fc7c369e975ce040f8e211015c641b6e4087e1bdc93f87df00476b4e35403a9  distill (openssl)"),
        "{out}"
    );
    let names: Vec<String> = files(root.path()).into_iter().map(|f| f.0).collect();
    assert!(names.iter().any(|n| n.contains("libssl.so.3")), "{names:?}");
    assert!(names.iter().any(|n| n.contains("libcrypto.so.3")), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("/gcc") || n.contains("/cc1")), "the compiler was kept: {names:?}");
    assert_only_elf_plus_one_mib(root.path(), "c-sha256");
}

#[test]
fn rust_program_with_threads_slims_to_its_closure() {
    let Some(store) = store("rust_program_with_threads_slims_to_its_closure") else { return };
    let (root, out) = fat_and_slim(&store, "rust-threads");
    assert_eq!(out.trim(), "4 threads, sum 1..=1000000 = 500000500000");
    let names: Vec<String> = files(root.path()).into_iter().map(|f| f.0).collect();
    assert!(names.iter().any(|n| n.contains("libgcc_s.so.1")), "{names:?}");
    assert_only_elf_plus_one_mib(root.path(), "rust-threads");
}

#[test]
fn getpwnam_program_keeps_what_nss_needs() {
    let Some(store) = store("getpwnam_program_keeps_what_nss_needs") else { return };
    let (root, out) = fat_and_slim(&store, "getpwnam");
    assert_eq!(out, "root uid=0 gid=0 home=/root\napp uid=1234 gid=1234 home=/srv/app\n");
    assert!(root.join("etc/nsswitch.conf").is_file());
    assert_only_elf_plus_one_mib(root.path(), "getpwnam");
}

#[test]
fn static_binary_keeps_only_itself() {
    let Some(store) = store("static_binary_keeps_only_itself") else { return };
    let (root, out) = fat_and_slim(&store, "static");
    assert_eq!(out.trim(), "hello from a static binary");
    let all = files(root.path());
    let elf: Vec<&(String, u64, bool)> = all.iter().filter(|f| f.2).collect();
    assert_eq!(elf.len(), 1, "only the binary is ELF: {all:#?}");
    assert_eq!(elf[0].0, "/hello");
    assert!(!root.join("usr/lib/x86_64-linux-gnu/libc.so.6").exists());
    assert_only_elf_plus_one_mib(root.path(), "static");
}

#[test]
fn computed_dlopen_fails_verification_until_traced_or_kept() {
    let Some(store) = store("computed_dlopen_fails_verification_until_traced_or_kept") else { return };
    let ctx = repo_root().join("examples/dlopen");
    store.build_ok(&ctx, &["-t", "plugin-fat", "--progress", "plain"]);
    let fat = store.run_image("plugin-fat", None).assert_success();
    assert!(fat.stdout.starts_with("loaded libz.so.1: zlib "), "{fat}");

    let failed = store.distill(&["slim", "plugin-fat", "-t", "plugin"]).assert_failure();
    assert!(failed.stderr.contains("does not behave like plugin-fat"), "{failed}");
    assert!(failed.stderr.contains("libz.so.1"), "the missing library is named: {failed}");
    let images = store.distill_ok(&["images"]);
    assert!(!images.lines().any(|l| l.starts_with("plugin ")), "a failed slim is not tagged: {images}");

    let traced = store.distill(&["slim", "plugin-fat", "-t", "plugin", "--trace"]).assert_success();
    assert!(traced.stderr.contains("1 probe verified"), "{traced}");
    assert_eq!(store.run_image("plugin", None).assert_success().stdout, fat.stdout);
    let lib = store.distill_ok(&["explain", "plugin", "/usr/lib/x86_64-linux-gnu/libz.so.1"]);
    assert!(lib.contains("--trace"), "{lib}");

    store
        .distill(&["slim", "plugin-fat", "-t", "plugin-kept", "--keep", "/usr/lib/x86_64-linux-gnu/libz.so.1"])
        .assert_success();
    assert_eq!(store.run_image("plugin-kept", None).assert_success().stdout, fat.stdout);
}
