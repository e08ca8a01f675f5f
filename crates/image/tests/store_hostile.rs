//! `import` of hostile root file system tars: each is rejected with a
//! message that says what is wrong, and the store is exactly as before
//! (no blob, no staging leftover, no name).

#[path = "layer_common/mod.rs"]
mod layer_common;
mod store_common;

use distill_image::store::FsckOptions;
use layer_common::{RawTar, raw_header};
use store_common::{Fixture, gzip, rootfs};

fn full_message(err: &distill_image::Error) -> String {
    let mut msg = err.to_string();
    let mut src = std::error::Error::source(err);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    msg
}

#[test]
fn hostile_rootfs_tars_are_rejected_and_leave_nothing_behind() {
    let f = Fixture::new("import-hostile");
    f.import(&rootfs("ok"), Some("ok"));
    let before = f.state();

    let good = rootfs("base");
    let mut truncated = good.clone();
    truncated.truncate(700);
    let mut bad_gzip = gzip(&good);
    bad_gzip[10..40].fill(0xff);
    let mut terabyte = raw_header(b"huge", b'0', 1 << 40, b"").to_vec();
    terabyte.extend_from_slice(&[7u8; 10_000]);

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("path traversal", RawTar::default().file("../../etc/cron.d/evil", b"x").finish(), "unsafe"),
        (
            "symlink escape",
            RawTar::default().symlink("etc", "/etc").file("etc/passwd", b"root::0:0::/:/bin/sh\n").finish(),
            "symlink",
        ),
        (
            "symlink escape, relative",
            RawTar::default().dir("a/").symlink("a/up", "../../..").file("a/up/evil", b"x").finish(),
            "symlink",
        ),
        ("hard-link escape", RawTar::default().hardlink("shadow", "../../etc/shadow").finish(), "unsafe"),
        ("truncated stream", truncated, "truncated"),
        ("corrupt gzip", bad_gzip, "gzip"),
        ("1 TB header", terabyte, "1099511627776"),
    ];
    for (what, tar, needle) in cases {
        let err = f.try_import(&tar, Some("evil")).expect_err(what);
        let msg = full_message(&err);
        assert!(msg.contains(needle), "{what}: {msg:?} should mention {needle:?}");
        assert_eq!(f.state(), before, "{what}: the store changed");
    }
    assert!(f.store.fsck(FsckOptions::default()).unwrap().is_clean());
}

#[test]
fn invalid_changes_fail_before_any_work() {
    let f = Fixture::new("import-change");
    let before = f.state();
    let writer = f.store.writer().unwrap();
    let opts = distill_image::import::ImportOptions { changes: vec!["RUN rm -rf /".to_string()], ..Default::default() };
    let err = distill_image::import::import_rootfs(&writer, &rootfs("c")[..], &opts).unwrap_err();
    assert!(err.to_string().contains("--change"), "{err}");
    drop(writer);
    assert_eq!(f.state(), before);
}
