//! Content digests and the persistent file hash cache.

use std::fs::{self, File};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, SystemTime};

use distill_build::context::{Context, HashCache, IgnoreMatcher};

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "app/main.py", "print('hi')\n");
    write(r, "app/util.py", "X = 1\n");
    write(r, "app/data/table.csv", "a,b\n1,2\n");
    write(r, "README.md", "readme\n");
    write(r, "notes.log", "ignored\n");
    symlink("main.py", r.join("app/entry")).unwrap();
    dir
}

fn ctx(dir: &Path) -> Context {
    Context::open(dir, IgnoreMatcher::parse("*.log\n").unwrap()).unwrap()
}

fn digest_of(ctx: &Context, pattern: &str) -> String {
    let entries = ctx.select(pattern).unwrap();
    ctx.content_digest(&entries).unwrap()
}

#[test]
fn digest_format_and_stability() {
    let dir = tree();
    let c = ctx(dir.path());
    let d = digest_of(&c, ".");
    assert!(d.starts_with("sha256:") && d.len() == 71, "{d}");
    assert_eq!(d, digest_of(&c, "."));
    // A fresh context (fresh cache) agrees.
    assert_eq!(d, digest_of(&ctx(dir.path()), "."));
    // The order entries are given in does not matter.
    let mut entries = c.select(".").unwrap();
    entries.reverse();
    assert_eq!(d, c.content_digest(&entries).unwrap());
}

#[test]
fn mtime_changes_do_not_change_the_digest() {
    let dir = tree();
    let c = ctx(dir.path());
    let before = digest_of(&c, "app");
    let past = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    for f in ["app/main.py", "app/data/table.csv"] {
        File::options().write(true).open(dir.path().join(f)).unwrap().set_modified(past).unwrap();
    }
    File::open(dir.path().join("app")).unwrap().set_modified(past).unwrap();
    assert_eq!(before, digest_of(&c, "app"));
    assert_eq!(before, digest_of(&ctx(dir.path()), "app"));
}

#[test]
fn content_changes_change_the_digest() {
    let dir = tree();
    let c = ctx(dir.path());
    let before = digest_of(&c, "app");
    // Same size, different bytes.
    write(dir.path(), "app/util.py", "X = 2\n");
    let after = digest_of(&c, "app");
    assert_ne!(before, after);
    write(dir.path(), "app/util.py", "X = 1\n");
    assert_eq!(before, digest_of(&c, "app"), "restoring the content restores the digest");
}

#[test]
fn mode_changes_change_the_digest() {
    let dir = tree();
    let c = ctx(dir.path());
    let before = digest_of(&c, "app");
    fs::set_permissions(dir.path().join("app/main.py"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_ne!(before, digest_of(&c, "app"));
    fs::set_permissions(dir.path().join("app/main.py"), fs::Permissions::from_mode(0o644)).unwrap();
    let dir_mode = digest_of(&c, "app");
    fs::set_permissions(dir.path().join("app/data"), fs::Permissions::from_mode(0o700)).unwrap();
    assert_ne!(dir_mode, digest_of(&c, "app"), "directory modes count too");
}

#[test]
fn owner_changes_change_the_digest() {
    let dir = tree();
    let c = ctx(dir.path());
    let before = digest_of(&c, "app");
    let path = dir.path().join("app/util.py");
    if std::os::unix::fs::chown(&path, Some(4242), Some(4243)).is_err() {
        eprintln!("skipping: chown needs root");
        return;
    }
    let e = c.select("app/util.py").unwrap();
    assert_eq!((e[0].uid, e[0].gid), (4242, 4243));
    assert_ne!(before, digest_of(&c, "app"));
}

#[test]
fn symlink_target_changes_change_the_digest() {
    let dir = tree();
    let c = ctx(dir.path());
    let before = digest_of(&c, "app");
    fs::remove_file(dir.path().join("app/entry")).unwrap();
    symlink("util.py", dir.path().join("app/entry")).unwrap();
    assert_ne!(before, digest_of(&c, "app"));
}

#[test]
fn names_and_new_files_change_the_digest() {
    let dir = tree();
    let c = ctx(dir.path());
    let before = digest_of(&c, "app");
    write(dir.path(), "app/new.py", "");
    let with_new = digest_of(&c, "app");
    assert_ne!(before, with_new);
    fs::rename(dir.path().join("app/new.py"), dir.path().join("app/renamed.py")).unwrap();
    assert_ne!(with_new, digest_of(&c, "app"));
}

#[test]
fn ignored_files_do_not_affect_the_digest() {
    let dir = tree();
    let c = ctx(dir.path());
    let before = digest_of(&c, ".");
    write(dir.path(), "notes.log", "changed a lot\n");
    write(dir.path(), "more.log", "new\n");
    assert_eq!(before, digest_of(&c, "."));
}

#[test]
fn second_digest_of_unchanged_tree_reads_nothing() {
    let dir = tree();
    let c = ctx(dir.path());
    let entries = c.select(".").unwrap();
    let files = entries.iter().filter(|e| e.kind == distill_build::context::EntryKind::File).count() as u64;
    assert_eq!(files, 4);
    c.content_digest(&entries).unwrap();
    assert_eq!((c.hash_cache().hits(), c.hash_cache().misses()), (0, files));
    c.hash_cache().reset_counters();
    let entries = c.select(".").unwrap();
    c.content_digest(&entries).unwrap();
    assert_eq!(c.hash_cache().misses(), 0);
    assert_eq!(c.hash_cache().hits(), files);
}

#[test]
fn persistent_cache_survives_reload_and_detects_changes() {
    let dir = tree();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache_path = cache_dir.path().join("sub/context.hashcache");
    // Files written within the last instants are not trusted on disk (their
    // timestamps could still hide a change), so let them age a little.
    sleep(Duration::from_millis(120));

    let c = ctx(dir.path()).with_hash_cache(HashCache::load(&cache_path).unwrap());
    let first = digest_of(&c, ".");
    assert_eq!(c.hash_cache().misses(), 4);
    c.hash_cache().save().unwrap();
    assert!(cache_path.exists());

    // As builds load it: on a thread of its own, joined by the first lookup.
    let c = ctx(dir.path()).with_hash_cache(HashCache::load_in_background(&cache_path));
    assert_eq!(c.hash_cache().len(), 4);
    assert_eq!(first, digest_of(&c, "."));
    assert_eq!((c.hash_cache().hits(), c.hash_cache().misses()), (4, 0), "unchanged rebuild rehashes nothing");

    // Touching a file (mtime only) rehashes it but keeps the digest.
    File::options()
        .write(true)
        .open(dir.path().join("README.md"))
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    c.hash_cache().reset_counters();
    assert_eq!(first, digest_of(&c, "."));
    assert_eq!(c.hash_cache().misses(), 1);

    // Changing one file rehashes exactly that file.
    write(dir.path(), "app/data/table.csv", "a,b\n1,3\n");
    c.hash_cache().reset_counters();
    assert_ne!(first, digest_of(&c, "."));
    assert_eq!((c.hash_cache().hits(), c.hash_cache().misses()), (3, 1));
    c.into_hash_cache().save().unwrap();

    // A missing or unreadable file loads in the background as an empty cache.
    let missing = HashCache::load_in_background(cache_dir.path().join("missing"));
    assert!(missing.is_empty());
    fs::write(cache_dir.path().join("garbage"), b"not a cache").unwrap();
    assert!(HashCache::load_in_background(cache_dir.path().join("garbage")).is_empty());
}

#[test]
fn files_with_untrustworthy_timestamps_are_not_persisted() {
    let dir = tree();
    // Timestamps at or after the moment hashing starts (here: in the future)
    // could hide a later change, so such hashes stay in memory only.
    let future = SystemTime::now() + Duration::from_secs(3600);
    for f in ["app/main.py", "app/util.py", "app/data/table.csv", "README.md"] {
        File::options().write(true).open(dir.path().join(f)).unwrap().set_modified(future).unwrap();
    }
    let cache_dir = tempfile::tempdir().unwrap();
    let cache_path = cache_dir.path().join("cache");
    let c = ctx(dir.path()).with_hash_cache(HashCache::load(&cache_path).unwrap());
    let first = digest_of(&c, ".");
    c.hash_cache().reset_counters();
    assert_eq!(first, digest_of(&c, "."));
    assert_eq!(c.hash_cache().misses(), 0, "still cached in memory");
    c.hash_cache().save().unwrap();
    let reloaded = HashCache::load(&cache_path).unwrap();
    assert_eq!(reloaded.len(), 0);
}

#[test]
fn corrupt_cache_file_loads_empty() {
    let cache_dir = tempfile::tempdir().unwrap();
    let cache_path = cache_dir.path().join("cache");
    fs::write(&cache_path, b"DSTLHASH garbage").unwrap();
    let cache = HashCache::load(&cache_path).unwrap();
    assert!(cache.is_empty());
    assert_eq!(cache.path(), Some(cache_path.as_path()));
}

#[test]
fn unreadable_source_is_an_error_naming_it() {
    let dir = tree();
    let c = ctx(dir.path());
    let entries = c.select("app/util.py").unwrap();
    fs::remove_file(dir.path().join("app/util.py")).unwrap();
    let err = c.content_digest(&entries).unwrap_err();
    assert!(err.to_string().contains("util.py"), "{err}");
}
