//! ADD with local archives. Docker reference (#add): "If <src> is a local
//! tar archive in a recognized compression format (identity, gzip, bzip2 or
//! xz) then it is unpacked as a directory ... Whether a file is identified
//! as a recognized compression format or not is done solely based on the
//! contents of the file, not the name of the file." BuildKit details
//! (`llbsolver/file/unpack.go`, `unpack_root.go`): extraction into the
//! destination as a directory, archive owners unless --chown (v0.23+), no
//! whiteout processing, escapes rejected.

mod copy_support;

/// Named `copy` so that `cargo nextest run -p distill-build copy` selects these tests.
mod copy {
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    use crate::copy_support::{Fixture, TarItem, add, bzip2, copy, gzip, tar, xz, zstd};
    use distill_build::copy::CopyError;

    fn sample() -> Vec<u8> {
        tar(&[
            TarItem::dir("pkg/").owned(1000, 1000).mode(0o750),
            TarItem::file("pkg/bin/tool", "#!/bin/sh\n").owned(1000, 1000).mode(0o755),
            TarItem::symlink("pkg/current", "bin/tool"),
            TarItem::hardlink("pkg/tool-again", "pkg/bin/tool"),
        ])
    }

    fn check_sample(f: &Fixture, dir: &str) {
        assert_eq!(f.read(&format!("{dir}/pkg/bin/tool")), "#!/bin/sh\n");
        assert_eq!(f.mode(&format!("{dir}/pkg/bin/tool")), 0o755);
        assert_eq!(f.owner(&format!("{dir}/pkg/bin/tool")), (1000, 1000), "archive owners are kept");
        assert_eq!(f.mode(&format!("{dir}/pkg")), 0o750);
        assert_eq!(fs::read_link(f.at(&format!("{dir}/pkg/current"))).unwrap().to_str().unwrap(), "bin/tool");
        let a = fs::metadata(f.at(&format!("{dir}/pkg/bin/tool"))).unwrap();
        let b = fs::metadata(f.at(&format!("{dir}/pkg/tool-again"))).unwrap();
        assert_eq!(a.ino(), b.ino());
        assert_eq!(a.mtime(), 1_600_000_000);
        // Implicit parents (pkg/bin has no entry) are 0755 root:root.
        assert_eq!(f.mode(&format!("{dir}/pkg/bin")), 0o755);
        assert_eq!(f.owner(&format!("{dir}/pkg/bin")), (0, 0));
    }

    #[test]
    fn add_unpacks_every_compression_detected_by_content() {
        let plain = sample();
        // Names deliberately say nothing (or lie): detection is by content.
        let cases: [(&str, Vec<u8>); 5] = [
            ("plain.bin", plain.clone()),
            ("gz.data", gzip(&plain)),
            ("bz.txt", bzip2(&plain)),
            ("xz", xz(&plain)),
            ("zst.tar.gz", zstd(&plain)),
        ];
        for (name, bytes) in cases {
            let f = Fixture::new();
            f.bytes(name, &bytes);
            let stats = f.run(&add(&[name], "/opt/")).unwrap_or_else(|e| panic!("{name}: {e}"));
            check_sample(&f, "opt");
            assert_eq!(stats.archives, 1, "{name}");
            assert!(!f.exists(&format!("opt/{name}")), "{name}: the archive itself is not copied");
        }
    }

    #[test]
    fn add_extracts_into_destination_even_without_slash() {
        let f = Fixture::new();
        f.bytes("a.tar", &sample());
        f.run(&add(&["a.tar"], "/srv")).unwrap();
        check_sample(&f, "srv");
    }

    #[test]
    fn copy_does_not_unpack() {
        let f = Fixture::new();
        f.bytes("a.tar", &sample());
        f.run(&copy(&["a.tar"], "/d/")).unwrap();
        assert!(f.exists("d/a.tar"));
        assert!(!f.exists("d/pkg"));
    }

    #[test]
    fn add_copies_files_that_are_not_archives() {
        let f = Fixture::new();
        f.file("notes.tar", "not a tar at all, just text");
        f.bytes("data.gz", &gzip(b"compressed, but not a tar"));
        f.bytes("empty.tar", &tar(&[]));
        f.run(&add(&["notes.tar", "data.gz", "empty.tar"], "/d/")).unwrap();
        assert_eq!(f.read("d/notes.tar"), "not a tar at all, just text");
        assert_eq!(fs::read(f.at("d/data.gz")).unwrap(), gzip(b"compressed, but not a tar"));
        assert!(f.exists("d/empty.tar"), "an empty tar is copied as a file, as Go's tar.Reader sees no header");
    }

    #[test]
    fn add_does_not_unpack_archives_inside_directories() {
        let f = Fixture::new();
        f.bytes("dir/inner.tar", &sample());
        f.run(&add(&["dir"], "/d/")).unwrap();
        assert!(f.exists("d/inner.tar"));
        assert!(!f.exists("d/pkg"));
    }

    #[test]
    fn add_chown_applies_to_extracted_entries() {
        let f = Fixture::new();
        f.bytes("a.tar", &sample());
        let mut req = add(&["a.tar"], "/x/y/");
        req.chown = Some("42:43");
        f.run(&req).unwrap();
        assert_eq!(f.owner("x/y/pkg/bin/tool"), (42, 43));
        assert_eq!(f.owner("x/y/pkg"), (42, 43));
        assert_eq!(f.owner("x/y"), (42, 43), "the destination directory is created for the --chown owner");
    }

    #[test]
    fn add_merges_into_existing_directories_and_replaces_files() {
        let f = Fixture::new();
        f.root_file("opt/pkg/old", "old");
        f.root_file("opt/pkg/current", "a file that the archive's symlink replaces");
        f.bytes("a.tar", &sample());
        f.run(&add(&["a.tar"], "/opt")).unwrap();
        assert_eq!(f.read("opt/pkg/old"), "old");
        assert!(fs::symlink_metadata(f.at("opt/pkg/current")).unwrap().file_type().is_symlink());
    }

    #[test]
    fn add_does_not_apply_whiteouts() {
        let f = Fixture::new();
        f.root_file("opt/victim", "still here");
        f.bytes("w.tar", &tar(&[TarItem::file(".wh.victim", ""), TarItem::file("d/.wh..wh..opq", "")]));
        f.run(&add(&["w.tar"], "/opt/")).unwrap();
        assert_eq!(f.read("opt/victim"), "still here");
        assert!(f.exists("opt/.wh.victim"));
        assert!(f.exists("opt/d/.wh..wh..opq"));
    }

    #[test]
    fn add_with_multiple_archives_needs_no_slash() {
        let f = Fixture::new();
        f.bytes("a.tar", &tar(&[TarItem::file("a", "A")]));
        f.bytes("b.tar", &gzip(&tar(&[TarItem::file("b", "B")])));
        f.run(&add(&["a.tar", "b.tar"], "/m")).unwrap();
        assert_eq!(f.read("m/a"), "A");
        assert_eq!(f.read("m/b"), "B");
    }

    fn hostile(items: Vec<TarItem>) -> (Fixture, Result<distill_build::copy::CopyStats, CopyError>) {
        let f = Fixture::new();
        // A link from the destination area to the real `outside` directory, as a
        // destination root may hold; extraction must not write through it.
        f.bytes("evil.tar", &tar(&items));
        let r = f.run(&add(&["evil.tar"], "/dest/"));
        f.assert_outside_untouched();
        (f, r)
    }

    #[test]
    fn add_rejects_parent_directory_names() {
        let (_f, r) = hostile(vec![TarItem::file("../../../escape", "x")]);
        let err = r.unwrap_err();
        assert!(err.to_string().contains("outside the extraction directory"), "{err}");
        assert!(err.to_string().contains("evil.tar"), "the error names the source: {err}");
    }

    #[test]
    fn add_keeps_absolute_names_inside() {
        let (f, r) = hostile(vec![TarItem::file("/etc/passwd", "x"), TarItem::file("a/../../b", "y")]);
        let err = r.unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
        // The absolute name went below the destination.
        assert_eq!(f.read("dest/etc/passwd"), "x");
    }

    #[test]
    fn add_rejects_writing_through_an_escaping_relative_symlink() {
        let (f, r) = hostile(vec![TarItem::symlink("up", "../../../.."), TarItem::file("up/evil", "x")]);
        assert!(r.is_err());
        assert!(!f.exists("evil"));
    }

    #[test]
    fn add_resolves_absolute_symlinks_from_the_extraction_directory() {
        let f = Fixture::new();
        let outside = f.outside.to_str().unwrap().to_string();
        f.bytes("t.tar", &tar(&[TarItem::symlink("o", &outside), TarItem::file("o/evil", "x")]));
        f.run(&add(&["t.tar"], "/dest/")).unwrap();
        f.assert_outside_untouched();
        // The link is kept as stored; the file went where the link points when
        // taken from the extraction directory.
        let inside = f.at("dest").join(f.outside.strip_prefix("/").unwrap()).join("evil");
        assert_eq!(fs::read_to_string(inside).unwrap(), "x");
        assert!(fs::symlink_metadata(f.at("dest/o")).unwrap().file_type().is_symlink());
    }

    #[test]
    fn add_rejects_hard_links_leaving_the_extraction_directory() {
        let (_f, r) = hostile(vec![TarItem::hardlink("h", "../../outside/keep")]);
        assert!(r.is_err());
        let (_f, r) = hostile(vec![TarItem::symlink("l", "../.."), TarItem::hardlink("h", "l/outside/keep")]);
        assert!(r.is_err());
        let (_f, r) = hostile(vec![TarItem::hardlink("h", "missing")]);
        assert!(r.unwrap_err().to_string().contains("does not exist"));
    }

    #[test]
    fn add_reports_corrupt_archives() {
        let f = Fixture::new();
        let mut gz = gzip(&sample());
        let n = gz.len();
        gz.truncate(n - 20);
        // A truncated gzip still starts with a valid tar header: it is an
        // archive, and the extraction fails naming it.
        f.bytes("broken.tgz", &gz);
        let err = f.run(&add(&["broken.tgz"], "/d/")).unwrap_err();
        assert!(err.to_string().contains("broken.tgz"), "{err}");
    }
}
