//! The ELF closure of real Debian bookworm rootfs trees (the cached
//! `/var/tmp/distill-test/*.tar`) against the real dynamic loader run in a
//! chroot: `ld.so --list /usr/bin/python3`, and every ELF executable of
//! `/usr/bin` and `/usr/sbin` traced as `ldd` does. Then a slim tree holding
//! only the closure of `ls` runs `ls`.

mod elf_support;

/// Named `elf` so `cargo nextest run -p distill-slim elf` selects these tests.
mod elf {
    use std::collections::BTreeSet;
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::path::Path;
    use std::process::Command;

    use distill_slim::elf::{Closure, ClosureOptions, Reason, Root, Via, closure, closure_of};

    use super::elf_support::{Trace, debian_rootfs, is_root, our_trace, skip, trace_in};

    fn chroot_bin() -> &'static str {
        ["/usr/sbin/chroot", "/usr/bin/chroot", "/sbin/chroot"].into_iter().find(|p| Path::new(p).exists()).unwrap()
    }

    fn ld_so_list(root: &Path, target: &str) -> Trace {
        let o = Command::new(chroot_bin())
            .arg(root)
            .args(["/usr/lib64/ld-linux-x86-64.so.2", "--list", target])
            .env_clear()
            .output()
            .unwrap();
        assert!(o.status.success(), "ld.so --list {target}: {}", String::from_utf8_lossy(&o.stderr));
        let mut t = Trace::parse(&String::from_utf8_lossy(&o.stdout));
        // Invoked explicitly, the loader names itself by the path it was run as.
        t.found =
            t.found.into_iter().map(|(n, p)| if n.contains("ld-linux") { (n.clone(), n) } else { (n, p) }).collect();
        t
    }

    fn setup(tar: &str) -> Option<std::path::PathBuf> {
        if !is_root() {
            skip("not root: no chroot for the ld.so ground truth");
            return None;
        }
        debian_rootfs(tar)
    }

    #[test]
    fn python3_closure_matches_ld_so_list() {
        let Some(root) = setup("bookworm-python3.tar") else { return };
        let c = closure(&root, &["python3".to_string()], &ClosureOptions::default()).unwrap();
        assert!(c.unresolved().next().is_none(), "{:?}", c.missing);
        let ours = our_trace(&c, "/usr/bin/python3.11");
        let truth = ld_so_list(&root, "/usr/bin/python3");
        assert_eq!(ours, truth);
        // The files: symlink chains kept as links.
        for (path, first) in [
            ("/usr/bin/python3", Reason::Symlink { target: "/usr/bin/python3.11".into() }),
            ("/usr/bin/python3.11", Reason::Root { given: "python3".into() }),
            ("/lib64", Reason::Symlink { target: "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2".into() }),
            (
                "/usr/lib64/ld-linux-x86-64.so.2",
                Reason::Symlink { target: "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2".into() },
            ),
            (
                "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                Reason::Interpreter { of: "/usr/bin/python3.11".into() },
            ),
        ] {
            assert_eq!(c.explain(path).first(), Some(&first), "{path}");
        }
        assert!(c.contains("/lib"), "the /lib -> usr/lib link is on the way to every library");
        let libm = c.explain("/usr/lib/x86_64-linux-gnu/libm.so.6");
        assert!(libm.contains(&Reason::Needed {
            name: "libm.so.6".into(),
            by: "/usr/bin/python3.11".into(),
            via: Via::LdSoCache
        }));
        // Every real file of the ELF closure is one ld.so maps (or a rule's).
        for (path, reasons) in &c.files {
            let ok = reasons.iter().all(|r| !matches!(r, Reason::HwcapsVariant { .. }));
            assert!(ok, "{path}: {reasons:?}");
        }
        // Knowledge rules on a real glibc 2.36: python3.11 imports pthread_exit.
        assert!(c.contains("/usr/lib/x86_64-linux-gnu/libgcc_s.so.1"));
        for data in ["/etc/ld.so.cache", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group"] {
            assert!(c.contains(data), "{data}");
        }
        assert!(!c.contains("/usr/lib/x86_64-linux-gnu/libnss_files.so.2"), "built into glibc 2.36");
    }

    fn elf_programs(root: &Path, dirs: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for d in dirs {
            let Ok(entries) = std::fs::read_dir(root.join(d.trim_start_matches('/'))) else { continue };
            for e in entries {
                let e = e.unwrap();
                let meta = e.metadata().unwrap();
                if !e.file_type().unwrap().is_file() || meta.permissions().mode() & 0o111 == 0 {
                    continue;
                }
                let mut head = [0u8; 4];
                use std::io::Read;
                if std::fs::File::open(e.path()).and_then(|mut f| f.read_exact(&mut head)).is_ok()
                    && head == *b"\x7fELF"
                {
                    out.push(format!("{d}/{}", e.file_name().to_string_lossy()));
                }
            }
        }
        out.sort();
        out
    }

    fn trace_program(root: &Path, program: &str) -> Trace {
        // The helper's static tracer chroots and execs with LD_TRACE_LOADED_OBJECTS=1.
        trace_in(root, program)
    }

    #[test]
    fn every_debian_program_matches_the_loader() {
        for tar in ["bookworm-python3.tar", "bookworm-gcc.tar"] {
            let Some(root) = setup(tar) else { return };
            let programs = elf_programs(&root, &["/usr/bin", "/usr/sbin", "/usr/lib/gcc/x86_64-linux-gnu/12"]);
            assert!(programs.len() > 20, "{tar}: {programs:?}");
            let c = closure(&root, &programs, &ClosureOptions::default()).unwrap();
            let mut compared = 0;
            for p in &programs {
                // Set-id programs run in secure mode (no tracing): ask ld.so directly.
                let mode = std::fs::metadata(root.join(p.trim_start_matches('/'))).unwrap().permissions().mode();
                let truth = if mode & 0o6000 != 0 { ld_so_list(&root, p) } else { trace_program(&root, p) };
                if truth.found.is_empty() {
                    // Static programs: ld.so prints "statically linked".
                    assert!(c.ldd[p].is_empty(), "{p}: {:?}", c.ldd[p]);
                    continue;
                }
                let mut ours = Trace::default();
                for e in &c.ldd[p] {
                    ours.found.insert((e.name.clone(), e.path.clone()));
                }
                assert_eq!(ours.found, truth.found, "{tar}: {p}");
                compared += 1;
            }
            assert!(compared > 20);
            assert!(c.unresolved().next().is_none(), "{:?}", c.unresolved().collect::<Vec<_>>());
        }
    }

    #[test]
    fn python_extension_modules_match_ld_so_list() {
        let Some(root) = setup("bookworm-python3.tar") else { return };
        let dir = root.join("usr/lib/python3.11/lib-dynload");
        let mut libs: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| format!("/usr/lib/python3.11/lib-dynload/{}", e.unwrap().file_name().to_string_lossy()))
            .filter(|p| p.ends_with(".so"))
            .collect();
        libs.sort();
        assert!(libs.len() > 10);
        let roots: Vec<Root> = libs.iter().map(|l| Root::Library { path: l.clone(), loaded_by: None }).collect();
        let c = closure_of(&root, &roots, &ClosureOptions::default()).unwrap();
        for l in &libs {
            let mut truth = ld_so_list(&root, l);
            truth.found.retain(|(n, _)| !n.contains("ld-linux"));
            let ours: BTreeSet<_> = c.ldd[l]
                .iter()
                .filter(|e| !e.name.contains("ld-linux"))
                .map(|e| (e.name.clone(), e.path.clone()))
                .collect();
            assert_eq!(ours, truth.found, "{l}");
        }
        // Loaded by python3 instead: the interpreter's libraries are reused.
        let ssl = "/usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so";
        let roots = [Root::Library { path: ssl.into(), loaded_by: Some("/usr/bin/python3".into()) }];
        let c = closure_of(&root, &roots, &ClosureOptions::default()).unwrap();
        assert!(c.contains("/usr/lib/x86_64-linux-gnu/libssl.so.3"));
        assert!(c.contains("/usr/bin/python3.11"));
        assert!(c.unresolved().next().is_none());
    }

    /// Copies the closure into a new tree, keeping symlinks as links.
    fn materialize(root: &Path, c: &Closure, to: &Path) {
        for path in c.files.keys() {
            let src = root.join(path.trim_start_matches('/'));
            let dst = to.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            let meta = std::fs::symlink_metadata(&src).unwrap();
            if meta.file_type().is_symlink() {
                symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
            } else if meta.is_dir() {
                std::fs::create_dir_all(&dst).unwrap();
            } else {
                std::fs::copy(&src, &dst).unwrap();
            }
        }
    }

    #[test]
    fn slim_tree_of_the_closure_runs() {
        let Some(root) = setup("bookworm-python3.tar") else { return };
        let c = closure(&root, &["ls".to_string(), "/usr/bin/id".to_string()], &ClosureOptions::default()).unwrap();
        let slim = tempfile::tempdir().unwrap();
        materialize(&root, &c, slim.path());
        let run = |args: &[&str]| {
            let o = Command::new(chroot_bin()).arg(slim.path()).args(args).env_clear().output().unwrap();
            (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned())
        };
        let (code, out) = run(&["/usr/bin/ls", "/usr/bin"]);
        assert_eq!(code, Some(0));
        assert_eq!(out.split_whitespace().collect::<BTreeSet<_>>(), BTreeSet::from(["id", "ls"]));
        // `id` resolves names through NSS (files, built in) and /etc/passwd.
        let (code, out) = run(&["/usr/bin/id", "-un"]);
        assert_eq!((code, out.trim()), (Some(0), "root"));
        let size: u64 = c
            .files
            .keys()
            .map(|p| std::fs::symlink_metadata(slim.path().join(p.trim_start_matches('/'))).unwrap().len())
            .sum();
        assert!(size < 8 << 20, "slim tree of ls + id is {size} bytes");
    }
}
