//! COPY on real files: sources, destinations, replacing and merging,
//! symlinks in the destination root. Expected behaviour from the
//! Dockerfile reference (https://docs.docker.com/reference/dockerfile/#copy)
//! and BuildKit (fsutil `copy.Copy` with `CopyDirContents`, `FollowLinks`,
//! `AllowEmptyWildcard`, `CreateDestPath`).

mod copy_support;

/// Named `copy` so that `cargo nextest run -p distill-build copy` selects these tests.
mod copy {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, symlink};
    use std::time::{Duration, SystemTime};

    use crate::copy_support::{Fixture, copy};
    use distill_build::copy::{CopyError, CopyRequest, SourceItem};

    #[test]
    fn file_to_file_path() {
        let f = Fixture::new();
        let src = f.file_mode("a.txt", "hello", 0o640);
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_500_000_000, 123_456_789);
        fs::File::options().write(true).open(&src).unwrap().set_modified(t).unwrap();
        std::os::unix::fs::chown(&src, Some(1234), Some(4321)).unwrap();

        let stats = f.run(&copy(&["a.txt"], "/opt/b.txt")).unwrap();
        assert_eq!(f.read("opt/b.txt"), "hello");
        // Mode and mtime from the source; owner 0:0 for the build context.
        assert_eq!(f.mode("opt/b.txt"), 0o640);
        assert_eq!(f.owner("opt/b.txt"), (0, 0));
        assert_eq!(fs::metadata(f.at("opt/b.txt")).unwrap().modified().unwrap(), t);
        // The missing parent is created 0755 root:root.
        assert_eq!(f.mode("opt"), 0o755);
        assert_eq!(f.owner("opt"), (0, 0));
        assert_eq!((stats.files, stats.bytes), (1, 5));
    }

    #[test]
    fn file_to_directory_written_with_slash() {
        let f = Fixture::new();
        f.file("a.txt", "A");
        f.run(&copy(&["a.txt"], "/app/")).unwrap();
        assert_eq!(f.read("app/a.txt"), "A");
        assert!(fs::metadata(f.at("app")).unwrap().is_dir());
    }

    #[test]
    fn file_into_existing_directory_without_slash() {
        let f = Fixture::new();
        f.file("a.txt", "A");
        fs::create_dir(f.at("app")).unwrap();
        f.run(&copy(&["a.txt"], "/app")).unwrap();
        assert_eq!(f.read("app/a.txt"), "A");
    }

    #[test]
    fn relative_destination_is_relative_to_workdir() {
        let f = Fixture::new();
        f.file("a.txt", "A");
        let mut req = copy(&["a.txt"], "sub/");
        req.workdir = "/src";
        f.run(&req).unwrap();
        assert_eq!(f.read("src/sub/a.txt"), "A");

        // `.` is the working directory itself, as a directory.
        let mut req = copy(&["a.txt"], ".");
        req.workdir = "/w";
        f.run(&req).unwrap();
        assert_eq!(f.read("w/a.txt"), "A");

        // `..` never climbs above `/`.
        let mut req = copy(&["a.txt"], "../../../../top.txt");
        req.workdir = "/w";
        f.run(&req).unwrap();
        assert_eq!(f.read("top.txt"), "A");
        f.assert_outside_untouched();
    }

    #[test]
    fn relative_workdir_is_rejected() {
        let f = Fixture::new();
        f.file("a.txt", "A");
        let mut req = copy(&["a.txt"], "x");
        req.workdir = "src";
        assert!(matches!(f.run(&req), Err(CopyError::RelativeWorkdir { .. })));
    }

    #[test]
    fn directory_source_copies_its_contents() {
        let f = Fixture::new();
        f.file("src/x.txt", "X");
        f.file_mode("src/sub/y.sh", "Y", 0o755);
        fs::set_permissions(f.ctx.join("src/sub"), fs::Permissions::from_mode(0o750)).unwrap();
        symlink("../x.txt", f.ctx.join("src/sub/link")).unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_400_000_000);
        fs::File::open(f.ctx.join("src/sub")).unwrap().set_modified(t).unwrap();

        let stats = f.run(&copy(&["src"], "/app")).unwrap();
        assert_eq!(f.read("app/x.txt"), "X");
        assert_eq!(f.read("app/sub/y.sh"), "Y");
        assert!(!f.exists("app/src"), "the directory itself is not copied, only its contents");
        assert_eq!(f.mode("app/sub/y.sh"), 0o755);
        assert_eq!(f.mode("app/sub"), 0o750);
        // The destination directory is created 0755, not with the source dir's mode.
        assert_eq!(f.mode("app"), 0o755);
        // Symlinks inside a copied directory stay symlinks, target as stored.
        assert_eq!(fs::read_link(f.at("app/sub/link")).unwrap().to_str().unwrap(), "../x.txt");
        // Directory mtimes are set after their contents.
        assert_eq!(fs::metadata(f.at("app/sub")).unwrap().modified().unwrap(), t);
        assert_eq!((stats.files, stats.dirs, stats.symlinks), (2, 1, 1));
    }

    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn top_level_symlink_source_is_followed() {
        let f = Fixture::new();
        f.file("real.txt", "R");
        symlink("real.txt", f.ctx.join("link.txt")).unwrap();
        f.run(&copy(&["link.txt"], "/d/")).unwrap();
        let m = fs::symlink_metadata(f.at("d/link.txt")).unwrap();
        assert!(m.is_file(), "a top-level symlink source is copied as the file it points to");
        assert_eq!(f.read("d/link.txt"), "R");
    }

    #[test]
    fn wildcards_select_matching_files() {
        let f = Fixture::new();
        f.file("a.txt", "a");
        f.file("b.txt", "b");
        f.file("c.md", "c");
        f.file("dir1/inner.txt", "i");
        f.run(&copy(&["*.txt", "dir?"], "/out/")).unwrap();
        assert_eq!(f.read("out/a.txt"), "a");
        assert_eq!(f.read("out/b.txt"), "b");
        assert!(!f.exists("out/c.md"));
        // A matched directory copies its contents too.
        assert_eq!(f.read("out/inner.txt"), "i");
    }

    #[test]
    fn wildcard_matching_nothing_copies_nothing() {
        // BuildKit sets AllowEmptyWildcard for COPY: `COPY requirements*.txt ./`
        // is a no-op when nothing matches (dockerfile2llb/convert.go).
        let f = Fixture::new();
        f.file("a.txt", "a");
        let stats = f.run(&copy(&["nothing*.txt"], "/out/")).unwrap();
        assert_eq!(stats.files, 0);
        assert!(!f.exists("out"), "nothing is created when nothing matched");
    }

    #[test]
    fn multiple_sources_into_directory() {
        let f = Fixture::new();
        f.file("a", "A");
        f.file("b", "B");
        f.run(&copy(&["a", "b"], "/d/")).unwrap();
        assert_eq!(f.read("d/a"), "A");
        assert_eq!(f.read("d/b"), "B");
    }

    #[test]
    fn missing_source_is_an_error_naming_it() {
        let f = Fixture::new();
        f.file("a", "A");
        let err = f.run(&copy(&["a", "missing.txt"], "/d/")).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, CopyError::Source { .. }), "{err:?}");
        assert!(msg.contains("missing.txt") && msg.contains("not found"), "{msg}");
        // Sources are resolved before anything is written.
        assert!(!f.exists("d"));
    }

    #[test]
    fn multiple_sources_to_non_directory_is_an_error() {
        let f = Fixture::new();
        f.file("a", "A");
        f.file("b", "B");
        let err = f.run(&copy(&["a", "b"], "/dest")).unwrap_err();
        assert!(
            err.to_string().contains(
                "When using COPY with more than one source file, the destination must be a directory and end with a /"
            ),
            "{err}"
        );
        // A wildcard that expands to several files counts as several sources.
        let err = f.run(&copy(&["*"], "/dest")).unwrap_err();
        assert!(matches!(err, CopyError::MultipleSourcesNeedDirectory { count: 2, .. }), "{err:?}");
        assert!(!f.exists("dest"));
        // A wildcard matching one file is one source: file to file.
        f.run(&copy(&["a*"], "/single")).unwrap();
        assert_eq!(f.read("single"), "A");
        // An existing directory is a directory even without the slash (BuildKit
        // copies into it; the classic builder refused).
        fs::create_dir(f.at("existing")).unwrap();
        f.run(&copy(&["a", "b"], "/existing")).unwrap();
        assert_eq!(f.read("existing/b"), "B");
    }

    #[test]
    fn destination_symlinks_resolve_inside_the_root() {
        // Debian's merged /usr: /bin -> usr/bin.
        let f = Fixture::new();
        f.file("tool", "T");
        fs::create_dir_all(f.at("usr/bin")).unwrap();
        symlink("usr/bin", f.at("bin")).unwrap();
        f.run(&copy(&["tool"], "/bin/")).unwrap();
        assert_eq!(f.read("usr/bin/tool"), "T");
        assert!(fs::symlink_metadata(f.at("bin")).unwrap().file_type().is_symlink(), "the link is kept");
        // Without the slash too (the link resolves to an existing directory).
        f.file("tool2", "T2");
        f.run(&copy(&["tool2"], "/bin")).unwrap();
        assert_eq!(f.read("usr/bin/tool2"), "T2");
    }

    #[test]
    fn symlink_escapes_stay_inside_the_root() {
        let f = Fixture::new();
        f.file("x", "X");
        // An absolute link to the real `outside` directory, and a relative one
        // climbing far above the root: both are taken from the root's `/`.
        symlink(&f.outside, f.at("abs")).unwrap();
        symlink("../../../../../..", f.at("rel")).unwrap();
        f.run(&copy(&["x"], "/abs/")).unwrap();
        f.run(&copy(&["x"], "/rel/x-through-rel")).unwrap();
        f.assert_outside_untouched();
        let inside = f.root.join(f.outside.strip_prefix("/").unwrap()).join("x");
        assert_eq!(fs::read_to_string(inside).unwrap(), "X");
        assert_eq!(f.read("x-through-rel"), "X");

        // A destination file that is a symlink pointing outside: the copy
        // replaces the link's target *inside* the root.
        symlink(f.outside.join("keep"), f.at("victim")).unwrap();
        f.run(&copy(&["x"], "/victim")).unwrap();
        f.assert_outside_untouched();
    }

    #[test]
    fn existing_directories_are_merged() {
        let f = Fixture::new();
        f.file("src/new.txt", "new");
        f.file("src/sub/deep.txt", "deep");
        f.root_file("app/old.txt", "old");
        f.root_file("app/sub/old2.txt", "old2");
        fs::set_permissions(f.at("app"), fs::Permissions::from_mode(0o700)).unwrap();
        f.run(&copy(&["src"], "/app/")).unwrap();
        assert_eq!(f.read("app/old.txt"), "old");
        assert_eq!(f.read("app/sub/old2.txt"), "old2");
        assert_eq!(f.read("app/new.txt"), "new");
        assert_eq!(f.read("app/sub/deep.txt"), "deep");
        // The existing top destination keeps its own metadata.
        assert_eq!(f.mode("app"), 0o700);
    }

    #[test]
    fn files_replace_files_and_symlinks() {
        let f = Fixture::new();
        f.file_mode("src/conf", "new", 0o600);
        f.file("src/link", "now a file");
        f.root_file("etc/conf", "old content that is longer");
        symlink("conf", f.at("etc/link")).unwrap();
        f.run(&copy(&["src"], "/etc")).unwrap();
        assert_eq!(f.read("etc/conf"), "new");
        assert_eq!(f.mode("etc/conf"), 0o600);
        assert!(fs::symlink_metadata(f.at("etc/link")).unwrap().is_file());
        assert_eq!(f.read("etc/link"), "now a file");
    }

    #[test]
    fn file_over_directory_and_directory_over_file_are_errors() {
        let f = Fixture::new();
        f.file("src/thing", "file");
        fs::create_dir_all(f.at("app/thing")).unwrap();
        let err = f.run(&copy(&["src"], "/app/")).unwrap_err();
        assert!(err.to_string().contains("cannot replace to directory /app/thing with file"), "{err}");
        assert!(err.to_string().contains("COPY src to /app/"), "{err}");

        let f = Fixture::new();
        f.file("src/thing/inner", "x");
        f.root_file("app/thing", "a file");
        let err = f.run(&copy(&["src"], "/app/")).unwrap_err();
        assert!(err.to_string().contains("cannot copy to non-directory: /app/thing"), "{err}");

        // A directory source onto an existing file.
        let f = Fixture::new();
        f.file("src/inner", "x");
        f.root_file("app", "a file");
        let err = f.run(&copy(&["src"], "/app")).unwrap_err();
        assert!(err.to_string().contains("non-directory"), "{err}");
    }

    #[test]
    fn hard_links_within_one_copy_are_kept() {
        let f = Fixture::new();
        let a = f.file("src/a", "shared");
        fs::hard_link(&a, f.ctx.join("src/b")).unwrap();
        f.run(&copy(&["src"], "/d/")).unwrap();
        let ma = fs::metadata(f.at("d/a")).unwrap();
        let mb = fs::metadata(f.at("d/b")).unwrap();
        assert_eq!(ma.ino(), mb.ino());
        assert_eq!(ma.nlink(), 2);
    }

    #[test]
    fn xattrs_are_copied_including_file_capabilities() {
        let f = Fixture::new();
        let p = f.file_mode("bin/ping", "elf", 0o755);
        // VFS_CAP_REVISION_2 with the effective flag, permitted CAP_NET_RAW (13).
        let mut cap = Vec::new();
        for v in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
            cap.extend_from_slice(&v.to_le_bytes());
        }
        rustix::fs::setxattr(&p, "security.capability", &cap, rustix::fs::XattrFlags::empty()).unwrap();
        rustix::fs::setxattr(&p, "user.note", b"hi", rustix::fs::XattrFlags::empty()).unwrap();
        let mut req = copy(&["bin"], "/usr/bin/");
        req.chown = Some("5:5"); // chown clears capabilities: they must be set after it
        f.run(&req).unwrap();
        let mut buf = vec![0u8; 64];
        let n = rustix::fs::getxattr(f.at("usr/bin/ping"), "security.capability", &mut buf).unwrap();
        assert_eq!(&buf[..n], &cap[..]);
        let n = rustix::fs::getxattr(f.at("usr/bin/ping"), "user.note", &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hi");
    }

    #[test]
    fn keep_owner_preserves_source_owners() {
        // COPY --from=stage keeps owners (moby/moby#38599; BuildKit copies with
        // no chowner); the build context does not.
        let f = Fixture::new();
        let p = f.file("etc/app.conf", "c");
        std::os::unix::fs::chown(&p, Some(101), Some(102)).unwrap();
        std::os::unix::fs::chown(f.ctx.join("etc"), Some(103), Some(104)).unwrap();
        let mut req = copy(&["/"], "/stage/");
        req.keep_owner = true;
        f.run(&req).unwrap();
        assert_eq!(f.owner("stage/etc/app.conf"), (101, 102));
        assert_eq!(f.owner("stage/etc"), (103, 104));
        f.run(&copy(&["/"], "/ctx/")).unwrap();
        assert_eq!(f.owner("ctx/etc/app.conf"), (0, 0));
        assert_eq!(f.owner("ctx/etc"), (0, 0));
    }

    #[test]
    fn heredoc_is_a_0644_file() {
        let f = Fixture::new();
        let req = CopyRequest {
            sources: vec![SourceItem::Heredoc { name: "run.sh".to_string(), content: "echo hi\n".to_string() }],
            ..copy(&[], "/scripts/")
        };
        f.run(&req).unwrap();
        assert_eq!(f.read("scripts/run.sh"), "echo hi\n");
        assert_eq!(f.mode("scripts/run.sh"), 0o644);
        assert_eq!(f.owner("scripts/run.sh"), (0, 0));

        // To a file path, with --chmod and --chown.
        let req = CopyRequest {
            sources: vec![SourceItem::Heredoc { name: "EOF".to_string(), content: "x".to_string() }],
            chmod: Some("755"),
            chown: Some("7:8"),
            ..copy(&[], "/usr/local/bin/tool")
        };
        f.run(&req).unwrap();
        assert_eq!(f.read("usr/local/bin/tool"), "x");
        assert_eq!(f.mode("usr/local/bin/tool"), 0o755);
        assert_eq!(f.owner("usr/local/bin/tool"), (7, 8));
    }

    #[test]
    fn dockerignore_excluded_source_is_not_found() {
        let f = Fixture::new();
        f.file("secret.key", "s");
        f.file("ok", "o");
        let ctx = distill_build::context::Context::open(
            &f.ctx,
            distill_build::context::IgnoreMatcher::parse("secret.key\n").unwrap(),
        )
        .unwrap();
        let err = distill_build::copy::copy_into(&ctx, &copy(&["secret.key"], "/d/"), &f.root).unwrap_err();
        assert!(err.to_string().contains("secret.key"), "{err}");
        distill_build::copy::copy_into(&ctx, &copy(&["."], "/all/"), &f.root).unwrap();
        assert!(f.exists("all/ok"));
        assert!(!f.exists("all/secret.key"));
    }

    #[test]
    fn heredoc_names_that_are_not_file_names_are_errors() {
        let f = Fixture::new();
        for name in ["", ".", ".."] {
            let req = CopyRequest {
                sources: vec![SourceItem::Heredoc { name: name.to_string(), content: "x".to_string() }],
                ..copy(&[], "/d/")
            };
            assert!(matches!(f.run(&req), Err(CopyError::InvalidHeredocName { .. })), "{name:?}");
        }
        f.assert_outside_untouched();
    }

    #[test]
    fn odd_inputs_neither_panic_nor_escape() {
        let f = Fixture::new();
        f.file("a", "A");
        f.file("d/b", "B");
        for dest in ["", "//", "/.", "./", "..", "/../..", "a/./b/../c", "/x//y/"] {
            for src in ["a", "../../a", "/d/../a", "d", "*", "[", "d/*/nothing", "\\*"] {
                let mut req = copy(&[src], dest);
                req.workdir = "/w";
                let _ = f.run(&req);
            }
        }
        f.assert_outside_untouched();
        // `..` in a source is clamped at the context root.
        f.run(&copy(&["../../a"], "/clamped")).unwrap();
        assert_eq!(f.read("clamped"), "A");
        // `/.` at the end means a directory.
        f.run(&copy(&["a"], "/dotdir/.")).unwrap();
        assert_eq!(f.read("dotdir/a"), "A");
    }
}
