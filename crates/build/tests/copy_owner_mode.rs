//! `--chown` and `--chmod` on real files.
//!
//! Docker reference: "Providing a username without groupname or a UID
//! without GID will use the same numeric UID as the GID"; names are looked
//! up in the destination's /etc/passwd and /etc/group. BuildKit
//! (`llbsolver/file/user_linux.go`) takes a *name*'s gid from its passwd
//! entry (uid and gid fields together): we follow BuildKit there. BuildKit
//! silently uses 0 for an unknown name; we fail, as the classic builder did.

mod copy_support;

/// Named `copy` so that `cargo nextest run -p distill-build copy` selects these tests.
mod copy {
    use std::fs;

    use crate::copy_support::{Fixture, copy};
    use distill_build::copy::CopyError;

    #[test]
    fn chown_numeric_uid_only_uses_it_as_gid() {
        let f = Fixture::new();
        f.file("a", "A");
        let mut req = copy(&["a"], "/x/y/");
        req.chown = Some("1500");
        f.run(&req).unwrap();
        assert_eq!(f.owner("x/y/a"), (1500, 1500));
        // Parents created by the copy get the --chown owner too (fsutil MkdirAll
        // with the chowner).
        assert_eq!(f.owner("x"), (1500, 1500));
        assert_eq!(f.owner("x/y"), (1500, 1500));
    }

    #[test]
    fn chown_numeric_uid_and_gid() {
        let f = Fixture::new();
        f.file("d/a", "A");
        let mut req = copy(&["d"], "/out");
        req.chown = Some("10:20");
        f.run(&req).unwrap();
        assert_eq!(f.owner("out/a"), (10, 20));
        assert_eq!(f.owner("out"), (10, 20));
    }

    #[test]
    fn chown_user_name_takes_its_passwd_gid() {
        let f = Fixture::new();
        f.users();
        f.file("a", "A");
        let mut req = copy(&["a"], "/home/app/");
        req.chown = Some("app");
        f.run(&req).unwrap();
        assert_eq!(f.owner("home/app/a"), (1000, 1001));
    }

    #[test]
    fn chown_names_and_mixed() {
        let f = Fixture::new();
        f.users();
        f.file("a", "A");
        for (spec, want) in [("app:staff", (1000, 50)), ("web:1001", (33, 1001)), ("7:staff", (7, 50))] {
            let mut req = copy(&["a"], "/t/");
            req.chown = Some(spec);
            f.run(&req).unwrap();
            assert_eq!(f.owner("t/a"), want, "--chown={spec}");
        }
    }

    #[test]
    fn chown_names_are_read_through_symlinks_inside_the_root() {
        let f = Fixture::new();
        f.root_file("real-etc/passwd", "svc:x:900:901::/:/bin/false\n");
        std::os::unix::fs::symlink("/real-etc", f.at("etc")).unwrap();
        f.file("a", "A");
        let mut req = copy(&["a"], "/a");
        req.chown = Some("svc");
        f.run(&req).unwrap();
        assert_eq!(f.owner("a"), (900, 901));
    }

    #[test]
    fn chown_unknown_user_or_group_is_an_error() {
        let f = Fixture::new();
        f.users();
        f.file("a", "A");
        let mut req = copy(&["a"], "/a");
        req.chown = Some("nobody-here");
        let err = f.run(&req).unwrap_err();
        assert!(matches!(&err, CopyError::UnknownUser { name, .. } if name == "nobody-here"), "{err:?}");
        assert!(err.to_string().contains("unable to find user nobody-here"), "{err}");

        req.chown = Some("app:nogroup");
        let err = f.run(&req).unwrap_err();
        assert!(err.to_string().contains("unable to find group nogroup"), "{err}");

        // No /etc/passwd at all (scratch): names cannot be found, ids work.
        let f = Fixture::new();
        f.file("a", "A");
        let mut req = copy(&["a"], "/a");
        req.chown = Some("app");
        assert!(matches!(f.run(&req), Err(CopyError::UnknownUser { .. })));
        assert!(!f.exists("a"), "nothing is written when --chown cannot be resolved");
        req.chown = Some("1:");
        assert!(matches!(f.run(&req), Err(CopyError::InvalidChown { .. })));
    }

    #[test]
    fn chmod_octal_applies_to_files_and_directories() {
        let f = Fixture::new();
        f.file_mode("d/a", "A", 0o600);
        f.file_mode("d/sub/b", "B", 0o700);
        for spec in ["0755", "755"] {
            let mut req = copy(&["d"], "/o/");
            req.chmod = Some(spec);
            f.run(&req).unwrap();
            assert_eq!(f.mode("o/a"), 0o755);
            assert_eq!(f.mode("o/sub/b"), 0o755);
            assert_eq!(f.mode("o/sub"), 0o755);
        }
        let mut req = copy(&["d/a"], "/suid");
        req.chmod = Some("4750");
        req.chown = Some("3:3");
        f.run(&req).unwrap();
        // chmod after chown: the setuid bit survives.
        assert_eq!(f.mode("suid"), 0o4750);
    }

    #[test]
    fn chmod_symbolic() {
        let f = Fixture::new();
        f.file_mode("d/script", "s", 0o640);
        f.file_mode("d/data", "d", 0o600);
        fs::create_dir(f.ctx.join("d/sub")).unwrap();
        fs::set_permissions(f.ctx.join("d/sub"), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let mut req = copy(&["d"], "/o/");
        req.chmod = Some("u+x,g-w,o+r");
        f.run(&req).unwrap();
        assert_eq!(f.mode("o/script"), 0o744);
        assert_eq!(f.mode("o/data"), 0o704);

        let mut req = copy(&["d"], "/p/");
        req.chmod = Some("a=rX");
        f.run(&req).unwrap();
        assert_eq!(f.mode("p/script"), 0o444);
        assert_eq!(f.mode("p/sub"), 0o555, "X gives directories search permission");
    }

    #[test]
    fn chmod_invalid_is_an_error_before_writing() {
        let f = Fixture::new();
        f.file("a", "A");
        for spec in ["99999", "abc", "u+q", "17777"] {
            let mut req = copy(&["a"], "/a");
            req.chmod = Some(spec);
            let err = f.run(&req).unwrap_err();
            assert!(matches!(err, CopyError::InvalidChmod { .. }), "{spec}: {err:?}");
            assert!(err.to_string().contains("invalid chmod parameter"), "{err}");
        }
        assert!(!f.exists("a"));
    }
}
