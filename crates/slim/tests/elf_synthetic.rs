//! ELF closure on fixture rootfs trees built from the host's real loader and
//! libc plus programs and libraries compiled with gcc for each case. Where
//! the case is about ld.so's search, the real loader run in a chroot
//! (`LD_TRACE_LOADED_OBJECTS=1`, what ldd does) is the ground truth.

mod elf_support;

/// Named `elf` so `cargo nextest run -p distill-slim elf` selects these tests.
mod elf {

    use super::elf_support::{Fixture, INTERP, LIBDIR, have_gcc, our_trace};
    use distill_slim::elf::{Closure, ClosureOptions, Reason, Root, Via, closure, closure_of};

    const MAIN_USES_V: &str = "int v(void); int main(void) { return v(); }";

    fn opts() -> ClosureOptions {
        ClosureOptions { data_files: false, ..ClosureOptions::default() }
    }

    fn run(f: &Fixture, roots: &[&str], opts: &ClosureOptions) -> Closure {
        let roots: Vec<String> = roots.iter().map(|s| s.to_string()).collect();
        closure(f.root(), &roots, opts).unwrap()
    }

    fn via_of(c: &Closure, path: &str) -> Vec<Via> {
        c.explain(path)
            .into_iter()
            .filter_map(|r| match r {
                Reason::Needed { via, .. } => Some(via),
                _ => None,
            })
            .collect()
    }

    /// Two copies of libv.so.1 in /opt/a and /opt/b (returning 1 and 2).
    fn two_libvs(f: &Fixture) {
        f.lib("v", "libv.so.1", "/opt/b/libv.so.1", "int v(void) { return 2; }", &[]);
        f.lib("v", "libv.so.1", "/opt/a/libv.so.1", "int v(void) { return 1; }", &[]);
    }

    fn assert_matches_loader(f: &Fixture, c: &Closure, program: &str, real: &str, env: &[(&str, &str)]) {
        if let Some(truth) = f.ground_truth(program, env) {
            assert!(!truth.found.is_empty(), "ld.so printed nothing for {program}");
            assert_eq!(our_trace(c, real), truth, "closure of {program} differs from ld.so's");
        }
    }

    #[test]
    fn rpath_is_searched_before_ld_library_path() {
        if !have_gcc() {
            return;
        }
        let f = Fixture::glibc();
        two_libvs(&f);
        f.cc("/app/rpath", MAIN_USES_V, &["-lv", "-Wl,--disable-new-dtags,-rpath,/opt/a"]);
        let opts = ClosureOptions { ld_library_path: Some("/opt/b".into()), ..opts() };
        let c = run(&f, &["/app/rpath"], &opts);
        assert!(c.contains("/opt/a/libv.so.1") && !c.contains("/opt/b/libv.so.1"), "{:#?}", c.files);
        assert_eq!(via_of(&c, "/opt/a/libv.so.1"), vec![Via::Rpath { of: "/app/rpath".into() }]);
        assert_matches_loader(&f, &c, "/app/rpath", "/app/rpath", &[("LD_LIBRARY_PATH", "/opt/b")]);
    }

    #[test]
    fn runpath_comes_after_ld_library_path() {
        if !have_gcc() {
            return;
        }
        let f = Fixture::glibc();
        two_libvs(&f);
        f.cc("/app/runpath", MAIN_USES_V, &["-lv", "-Wl,--enable-new-dtags,-rpath,/opt/a"]);
        let with_llp = ClosureOptions { ld_library_path: Some("/opt/b".into()), ..opts() };
        let c = run(&f, &["/app/runpath"], &with_llp);
        assert!(c.contains("/opt/b/libv.so.1") && !c.contains("/opt/a/libv.so.1"));
        assert_eq!(via_of(&c, "/opt/b/libv.so.1"), vec![Via::LdLibraryPath]);
        assert_matches_loader(&f, &c, "/app/runpath", "/app/runpath", &[("LD_LIBRARY_PATH", "/opt/b")]);
        // Without LD_LIBRARY_PATH the RUNPATH applies.
        let c = run(&f, &["/app/runpath"], &opts());
        assert_eq!(via_of(&c, "/opt/a/libv.so.1"), vec![Via::Runpath]);
        assert_matches_loader(&f, &c, "/app/runpath", "/app/runpath", &[]);
    }

    #[test]
    fn rpath_is_inherited_runpath_is_not() {
        if !have_gcc() {
            return;
        }
        let f = Fixture::glibc();
        // libleaf only in /opt/dep; libmid (no search path of its own) needs it.
        f.lib("leaf", "libleaf.so.1", "/opt/dep/libleaf.so.1", "int leaf(void) { return 0; }", &[]);
        f.lib(
            "mid",
            "libmid.so.1",
            "/opt/mid/libmid.so.1",
            "int leaf(void); int v(void) { return leaf(); }",
            &["-lleaf"],
        );
        f.cc("/app/inherit", MAIN_USES_V, &["-lmid", "-Wl,--disable-new-dtags,-rpath,/opt/mid:/opt/dep"]);
        f.cc("/app/noinherit", MAIN_USES_V, &["-lmid", "-Wl,--enable-new-dtags,-rpath,/opt/mid:/opt/dep"]);

        let c = run(&f, &["/app/inherit"], &opts());
        assert_eq!(via_of(&c, "/opt/dep/libleaf.so.1"), vec![Via::Rpath { of: "/app/inherit".into() }]);
        assert!(c.unresolved().next().is_none());
        assert_matches_loader(&f, &c, "/app/inherit", "/app/inherit", &[]);

        let c = run(&f, &["/app/noinherit"], &opts());
        assert!(c.contains("/opt/mid/libmid.so.1"));
        assert!(!c.contains("/opt/dep/libleaf.so.1"));
        let missing: Vec<_> = c.unresolved().collect();
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert_eq!(missing[0].name, "libleaf.so.1");
        assert_eq!(missing[0].needed_by, "/opt/mid/libmid.so.1");
        assert_matches_loader(&f, &c, "/app/noinherit", "/app/noinherit", &[]);
    }

    /// Rewrites the dynamic entry with tag `from` into tag `to` (64-bit little endian).
    fn retag_dynamic(path: &std::path::Path, from: u64, to: u64) {
        let mut b = std::fs::read(path).unwrap();
        let elf = goblin::elf::Elf::parse(&b).unwrap();
        let ph = elf.program_headers.iter().find(|p| p.p_type == goblin::elf::program_header::PT_DYNAMIC).unwrap();
        let (start, end) = (ph.p_offset as usize, (ph.p_offset + ph.p_filesz) as usize);
        drop(elf);
        let at =
            (start..end).step_by(16).find(|&o| u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) == from).unwrap();
        b[at..at + 8].copy_from_slice(&to.to_le_bytes());
        std::fs::write(path, b).unwrap();
    }

    #[test]
    fn object_with_both_rpath_and_runpath_ignores_rpath() {
        if !have_gcc() {
            return;
        }
        let f = Fixture::glibc();
        two_libvs(&f);
        // DT_RPATH=/opt/a, and DT_SONAME=/opt/b turned into DT_RUNPATH=/opt/b.
        f.cc("/app/both", MAIN_USES_V, &["-lv", "-Wl,--disable-new-dtags,-rpath,/opt/a", "-Wl,-soname,/opt/b"]);
        retag_dynamic(&f.host("/app/both"), 14, 29);
        let info = distill_slim::elf::parse_elf(&std::fs::read(f.host("/app/both")).unwrap()).unwrap().unwrap();
        assert_eq!((info.rpath.as_deref(), info.runpath.as_deref()), (None, Some("/opt/b")));
        let c = run(&f, &["/app/both"], &opts());
        assert!(c.contains("/opt/b/libv.so.1") && !c.contains("/opt/a/libv.so.1"), "{:#?}", c.files);
        assert_matches_loader(&f, &c, "/app/both", "/app/both", &[]);
    }

    #[test]
    fn origin_is_the_real_directory_of_the_executable() {
        if !have_gcc() {
            return;
        }
        let f = Fixture::glibc();
        f.lib("v", "libv.so.1", "/app/lib/libv.so.1", "int v(void) { return 0; }", &[]);
        f.cc("/app/bin/prog", MAIN_USES_V, &["-lv", "-Wl,-rpath,$ORIGIN/../lib"]);
        // Reached through a symlink from another directory: $ORIGIN is /app/bin.
        f.symlink("/usr/bin/prog", "../../app/bin/prog");
        let c = run(&f, &["/usr/bin/prog"], &opts());
        assert!(c.contains("/app/lib/libv.so.1"), "{:#?}", c.files);
        assert!(matches!(c.explain("/usr/bin/prog")[0], Reason::Symlink { .. }));
        assert!(matches!(c.explain("/app/bin/prog")[0], Reason::Root { .. }));
        assert_matches_loader(&f, &c, "/usr/bin/prog", "/app/bin/prog", &[]);
    }

    #[test]
    fn origin_in_ld_library_path_and_in_libraries() {
        if !have_gcc() {
            return;
        }
        let f = Fixture::glibc();
        // libmid's own RUNPATH uses $ORIGIN (its directory, as found).
        f.lib("leaf", "libleaf.so.1", "/opt/pkg/libs/libleaf.so.1", "int leaf(void) { return 0; }", &[]);
        f.lib(
            "mid",
            "libmid.so.1",
            "/opt/pkg/libmid.so.1",
            "int leaf(void); int v(void) { return leaf(); }",
            &["-lleaf", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/libs"],
        );
        f.cc("/opt/pkg/bin/tool", MAIN_USES_V, &["-lmid"]);
        let env = "$ORIGIN/..;/nonexistent";
        let o = ClosureOptions { ld_library_path: Some(env.into()), ..opts() };
        let c = run(&f, &["/opt/pkg/bin/tool"], &o);
        assert_eq!(via_of(&c, "/opt/pkg/libmid.so.1"), vec![Via::LdLibraryPath]);
        assert_eq!(via_of(&c, "/opt/pkg/libs/libleaf.so.1"), vec![Via::Runpath]);
        assert_matches_loader(&f, &c, "/opt/pkg/bin/tool", "/opt/pkg/bin/tool", &[("LD_LIBRARY_PATH", env)]);
    }

    #[test]
    fn lib_and_platform_tokens() {
        if !have_gcc() {
            return;
        }
        let f = Fixture::glibc();
        f.lib(
            "v",
            "libv.so.1",
            "/opt/x86_64-linux-gnu/lib/x86_64-linux-gnu/libv.so.1",
            "int v(void) { return 0; }",
            &[],
        );
        f.cc("/app/tokens", MAIN_USES_V, &["-lv", "-Wl,-rpath,/opt/${PLATFORM}-linux-gnu/$LIB"]);
        let c = run(&f, &["/app/tokens"], &opts());
        assert!(c.contains("/opt/x86_64-linux-gnu/lib/x86_64-linux-gnu/libv.so.1"), "{:#?}", c.missing);
        assert_matches_loader(&f, &c, "/app/tokens", "/app/tokens", &[]);
    }

    fn cache_fixture(format: &str) -> Fixture {
        let f = Fixture::glibc();
        f.lib("v", "libv.so.1", "/opt/cached/libv.so.1", "int v(void) { return 0; }", &[]);
        f.write("/etc/ld.so.conf", b"/opt/cached\n");
        f.cc("/app/cached", MAIN_USES_V, &["-lv"]);
        f.ldconfig(format);
        f
    }

    #[test]
    fn ld_so_cache_new_old_and_compat_formats() {
        if !have_gcc() {
            return;
        }
        for format in ["new", "old", "compat"] {
            let f = cache_fixture(format);
            let bytes = std::fs::read(f.host("/etc/ld.so.cache")).unwrap();
            let cache = distill_slim::elf::LdCache::parse(&bytes).unwrap();
            let want =
                if format == "old" { distill_slim::elf::CacheFormat::Old } else { distill_slim::elf::CacheFormat::New };
            assert_eq!(cache.format, want, "{format}");
            assert!(cache.entries.iter().any(|e| e.key == "libv.so.1" && e.value == "/opt/cached/libv.so.1"));
            let c = run(&f, &["/app/cached"], &opts());
            assert_eq!(via_of(&c, "/opt/cached/libv.so.1"), vec![Via::LdSoCache], "{format}");
            assert_matches_loader(&f, &c, "/app/cached", "/app/cached", &[]);
        }
        // Without the cache the library is not found (ld.so.conf alone does nothing at run time).
        let f = cache_fixture("new");
        std::fs::remove_file(f.host("/etc/ld.so.cache")).unwrap();
        let c = run(&f, &["/app/cached"], &opts());
        assert_eq!(c.unresolved().map(|m| m.name.as_str()).collect::<Vec<_>>(), vec!["libv.so.1"]);
        assert_matches_loader(&f, &c, "/app/cached", "/app/cached", &[]);
    }

    #[test]
    fn host_ld_so_cache_matches_ldconfig_print() {
        let Ok(bytes) = std::fs::read("/etc/ld.so.cache") else {
            super::elf_support::skip("no /etc/ld.so.cache on the host");
            return;
        };
        let cache = distill_slim::elf::LdCache::parse(&bytes).unwrap();
        let out = std::process::Command::new("ldconfig").arg("-p").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut printed = std::collections::BTreeSet::new();
        for line in text.lines().skip(1) {
            if let Some((lhs, path)) = line.trim().split_once(" => ") {
                printed.insert((lhs.split(" (").next().unwrap().to_string(), path.to_string()));
            }
        }
        let ours: std::collections::BTreeSet<_> =
            cache.entries.iter().map(|e| (e.key.clone(), e.value.clone())).collect();
        assert!(!ours.is_empty());
        assert_eq!(ours, printed);
    }

    #[test]
    fn symlink_chains_are_kept_link_by_link() {
        if !have_gcc() {
            return;
        }
        let f = Fixture::glibc();
        f.lib("v", "libv.so.1", "/opt/real/libv.so.1.2.3", "int v(void) { return 0; }", &[]);
        // /opt/lib -> real (directory link), libv.so.1 -> libv.so.1.2 -> /opt/lib/libv.so.1.2.3
        f.symlink("/opt/lib", "real");
        f.symlink("/opt/real/libv.so.1.2", "/opt/lib/libv.so.1.2.3");
        f.symlink("/opt/real/libv.so.1", "libv.so.1.2");
        f.cc("/app/chain", MAIN_USES_V, &["-lv", "-Wl,-rpath,/opt/lib"]);
        let c = run(&f, &["/app/chain"], &opts());
        for link in ["/opt/lib", "/opt/real/libv.so.1", "/opt/real/libv.so.1.2"] {
            assert_eq!(c.explain(link), vec![Reason::Symlink { target: "/opt/real/libv.so.1.2.3".into() }], "{link}");
        }
        assert!(matches!(&c.explain("/opt/real/libv.so.1.2.3")[0], Reason::Needed { name, .. } if name == "libv.so.1"));
        // The loader at /lib64 and libc are there with their reasons.
        assert_eq!(c.explain(INTERP)[0], Reason::Interpreter { of: "/app/chain".into() });
        assert!(c.contains(&format!("{LIBDIR}/libc.so.6")));
        assert_matches_loader(&f, &c, "/app/chain", "/app/chain", &[]);
    }

    #[test]
    fn absolute_symlinks_and_dotdot_stay_inside_the_rootfs() {
        if !have_gcc() {
            return;
        }
        let f = Fixture::glibc();
        f.lib("v", "libv.so.1", "/opt/lib/libv.so.1", "int v(void) { return 0; }", &[]);
        f.cc("/app/escape", MAIN_USES_V, &["-lv", "-Wl,-rpath,/../../../opt/esc"]);
        // /opt/esc -> /../../etc/../opt/lib: resolved in the rootfs, never the host's.
        f.mkdir("/etc");
        f.symlink("/opt/esc", "/../../etc/../opt/lib");
        let c = run(&f, &["/app/escape"], &opts());
        assert!(c.contains("/opt/lib/libv.so.1"), "{:#?}", c.missing);
        assert_eq!(c.explain("/opt/esc"), vec![Reason::Symlink { target: "/opt/lib/libv.so.1".into() }]);
        assert!(c.files.keys().all(|k| k.starts_with('/') && !k.contains("..")));
        // A link to a host file that does not exist in the rootfs is not followed out.
        f.symlink("/app/hostlink", "/etc/hostname");
        let err = closure(f.root(), &["/app/hostlink".to_string()], &opts());
        assert!(matches!(err, Err(distill_slim::elf::ElfError::RootNotFound { .. })), "{err:?}");
    }

    /// Overwrites e_machine (bytes 18-19) with EM_AARCH64: a valid header of another machine.
    fn make_foreign(f: &Fixture, path: &str, class32: bool) {
        let mut b = std::fs::read(f.host(path)).unwrap();
        if class32 {
            b[4] = 1;
        } else {
            b[18] = 183;
            b[19] = 0;
        }
        std::fs::write(f.host(path), b).unwrap();
    }

    #[test]
    fn libraries_of_the_wrong_class_or_machine_are_skipped() {
        if !have_gcc() {
            return;
        }
        for class32 in [false, true] {
            let f = Fixture::glibc();
            two_libvs(&f);
            make_foreign(&f, "/opt/a/libv.so.1", class32);
            f.cc("/app/foreign", MAIN_USES_V, &["-lv", "-Wl,-rpath,/opt/a:/opt/b"]);
            let c = run(&f, &["/app/foreign"], &opts());
            assert!(c.contains("/opt/b/libv.so.1") && !c.contains("/opt/a/libv.so.1"), "{:#?}", c.files);
            assert_matches_loader(&f, &c, "/app/foreign", "/app/foreign", &[]);
            // Only the foreign one: missing, and the detail says why.
            std::fs::remove_file(f.host("/opt/b/libv.so.1")).unwrap();
            let c = run(&f, &["/app/foreign"], &opts());
            let m: Vec<_> = c.unresolved().collect();
            assert_eq!(m.len(), 1);
            assert!(m[0].detail.contains("wrong ELF class/machine"), "{}", m[0]);
        }
    }

    #[test]
    fn missing_library_is_reported_with_its_requester() {
        if !have_gcc() {
            return;
        }
        let f = Fixture::glibc();
        f.lib("gone", "libgone.so.7", "/opt/x/libgone.so.7", "int v(void) { return 0; }", &[]);
        f.cc("/app/needy", MAIN_USES_V, &["-lgone"]);
        std::fs::remove_file(f.host("/opt/x/libgone.so.7")).unwrap();
        let c = run(&f, &["/app/needy"], &opts());
        let m: Vec<_> = c.unresolved().collect();
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].name.as_str(), m[0].needed_by.as_str()), ("libgone.so.7", "/app/needy"));
        assert!(m[0].to_string().contains("libgone.so.7 needed by /app/needy"));
        assert_matches_loader(&f, &c, "/app/needy", "/app/needy", &[]);
    }

    #[test]
    fn static_binary_has_no_dependencies() {
        if !have_gcc() {
            return;
        }
        let f = Fixture::empty();
        f.cc("/app/static", "int main(void) { return 0; }", &["-static"]);
        let c = run(&f, &["/app/static"], &ClosureOptions::default());
        assert_eq!(c.files.keys().collect::<Vec<_>>(), vec!["/app/static"]);
        assert!(c.ldd["/app/static"].is_empty());
        assert!(c.missing.is_empty());
    }

    #[test]
    fn needed_path_names_and_preload() {
        if !have_gcc() {
            return;
        }
        let f = Fixture::glibc();
        f.lib("v", "/opt/abs/libv.so", "/opt/abs/libv.so", "int v(void) { return 0; }", &[]);
        f.lib("pre", "libpre.so", "/opt/pre/libpre.so", "int pre(void) { return 0; }", &[]);
        f.cc("/app/abs", MAIN_USES_V, &["-lv"]);
        let o = ClosureOptions { ld_preload: Some("/opt/pre/libpre.so".into()), ..opts() };
        let c = run(&f, &["/app/abs"], &o);
        assert_eq!(via_of(&c, "/opt/abs/libv.so"), vec![Via::Path]);
        assert!(
            matches!(&c.explain("/opt/pre/libpre.so")[0], Reason::Preload { source, .. } if source == "LD_PRELOAD")
        );
        assert_matches_loader(&f, &c, "/app/abs", "/app/abs", &[("LD_PRELOAD", "/opt/pre/libpre.so")]);
    }

    #[test]
    fn shebang_scripts_and_env() {
        if !have_gcc() {
            return;
        }
        let f = Fixture::glibc();
        f.cc("/usr/bin/interp", "int main(void) { return 0; }", &[]);
        f.copy_host("/usr/bin/env", "/usr/bin/env");
        f.write_exec("/app/direct.sh", b"#!/usr/bin/interp -x\necho\n");
        f.write_exec("/app/viaenv", b"#!/usr/bin/env -S interp --flag\n");
        f.write_exec("/app/nested", b"#!/app/direct.sh\n");
        f.write_exec("/app/broken", b"#!/usr/bin/env nosuchprog\n");
        let o = ClosureOptions { env_path: "/usr/local/bin:/usr/bin".into(), ..opts() };

        let c = run(&f, &["/app/direct.sh"], &o);
        assert_eq!(c.explain("/usr/bin/interp"), vec![Reason::Shebang { script: "/app/direct.sh".into() }]);
        assert!(c.contains(INTERP));

        let c = run(&f, &["/app/viaenv"], &o);
        assert_eq!(c.explain("/usr/bin/env"), vec![Reason::Shebang { script: "/app/viaenv".into() }]);
        assert_eq!(
            c.explain("/usr/bin/interp"),
            vec![Reason::EnvProgram { program: "interp".into(), script: "/app/viaenv".into() }]
        );
        assert_eq!(
            c.explain("/usr/bin/interp")[0].to_string(),
            "program `interp` run by env in the #! line of /app/viaenv"
        );

        let c = run(&f, &["/app/nested"], &o);
        assert!(c.contains("/app/direct.sh") && c.contains("/usr/bin/interp"));

        let c = run(&f, &["/app/broken"], &o);
        assert_eq!(c.unresolved().map(|m| m.name.as_str()).collect::<Vec<_>>(), vec!["nosuchprog"]);

        // A bare root name is looked up in PATH.
        let c = run(&f, &["interp"], &o);
        assert_eq!(c.explain("/usr/bin/interp"), vec![Reason::Root { given: "interp".into() }]);
        assert!(matches!(
            closure(f.root(), &["nosuch".to_string()], &o),
            Err(distill_slim::elf::ElfError::RootNotFound { .. })
        ));
    }

    #[test]
    fn libgcc_s_only_for_thread_cancellation() {
        if !have_gcc() {
            return;
        }
        let f = Fixture::glibc();
        f.copy_host("/lib/x86_64-linux-gnu/libgcc_s.so.1", "/lib/x86_64-linux-gnu/libgcc_s.so.1");
        f.cc(
            "/app/cancel",
            "#include <pthread.h>\nint main(int c, char **v) { if (c > 5) pthread_cancel(pthread_self()); return 0; }",
            &["-pthread"],
        );
        f.cc("/app/plain", "int main(void) { return 0; }", &[]);
        let c = run(&f, &["/app/cancel"], &opts());
        let r = c.explain("/lib/x86_64-linux-gnu/libgcc_s.so.1");
        assert!(matches!(&r[0], Reason::Dlopen { name, .. } if name == "libgcc_s.so.1"), "{r:?}");
        assert!(r[0].to_string().contains("pthread_cancel"), "{}", r[0]);
        let c = run(&f, &["/app/plain"], &opts());
        assert!(!c.contains("/lib/x86_64-linux-gnu/libgcc_s.so.1"));
        // Rules off: nothing added.
        let c = run(&f, &["/app/cancel"], &ClosureOptions { dlopen_rules: false, ..opts() });
        assert!(!c.contains("/lib/x86_64-linux-gnu/libgcc_s.so.1"));
    }

    #[test]
    fn nss_modules_from_nsswitch_conf() {
        if !have_gcc() {
            return;
        }
        let f = Fixture::glibc();
        for m in ["libnss_compat.so.2", "libnss_files.so.2"] {
            f.copy_host(&format!("/lib/x86_64-linux-gnu/{m}"), &format!("/lib/x86_64-linux-gnu/{m}"));
        }
        f.write(
            "/etc/nsswitch.conf",
            b"passwd: compat files\ngroup: compat\nhosts: files [NOTFOUND=return] mdnsx dns\n",
        );
        f.write("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n");
        f.write("/etc/group", b"root:x:0:\n");
        f.cc("/app/who", "#include <pwd.h>\nint main(void) { return getpwnam(\"root\") == 0; }", &[]);
        let c = run(&f, &["/app/who"], &ClosureOptions::default());
        let compat = c.explain("/lib/x86_64-linux-gnu/libnss_compat.so.2");
        assert!(compat.contains(&Reason::Nss { database: "passwd".into(), service: "compat".into() }), "{compat:?}");
        assert!(compat.contains(&Reason::Nss { database: "group".into(), service: "compat".into() }));
        assert_eq!(compat[0].to_string(), "NSS module for 'passwd: compat' in /etc/nsswitch.conf");
        // glibc >= 2.34 (the host's) has files and dns built in.
        assert!(!c.contains("/lib/x86_64-linux-gnu/libnss_files.so.2"));
        // An absent module is reported, not required.
        let m: Vec<_> = c.missing.iter().filter(|m| m.name == "libnss_mdnsx.so.2").collect();
        assert_eq!(m.len(), 1);
        assert!(!m[0].required);
        // Data files for glibc programs.
        for p in ["/etc/nsswitch.conf", "/etc/passwd", "/etc/group"] {
            assert!(matches!(c.explain(p)[0], Reason::Data { .. }), "{p}");
        }
        // The real thing: the program resolves root in the slim tree.
        if super::elf_support::is_root() {
            let st = std::process::Command::new("chroot").arg(f.root()).arg("/app/who").status().unwrap();
            assert!(st.success());
        }
    }

    #[test]
    fn gconv_only_when_iconv_is_used() {
        if !have_gcc() {
            return;
        }
        let f = Fixture::glibc();
        let gconv = "/usr/lib/x86_64-linux-gnu/gconv";
        if !std::path::Path::new(gconv).join("UTF-16.so").exists() {
            super::elf_support::skip("the host has no gconv modules");
            return;
        }
        // libc lives in /lib/x86_64-linux-gnu in the fixture: gconv is next to it.
        for m in ["UTF-16.so", "gconv-modules.cache"] {
            f.copy_host(&format!("{gconv}/{m}"), &format!("{LIBDIR}/gconv/{m}"));
        }
        f.cc(
            "/app/iconv",
            "#include <iconv.h>\nint main(void) { return iconv_open(\"UTF-16\", \"UTF-8\") == (iconv_t)-1; }",
            &[],
        );
        f.cc("/app/noiconv", "int main(void) { return 0; }", &[]);
        let c = run(&f, &["/app/iconv"], &opts());
        for m in ["UTF-16.so", "gconv-modules.cache"] {
            let r = c.explain(&format!("{LIBDIR}/gconv/{m}"));
            assert_eq!(r, vec![Reason::Gconv { importer: "/app/iconv".into() }], "{m}");
        }
        let c = run(&f, &["/app/noiconv"], &opts());
        assert!(!c.files.keys().any(|k| k.contains("gconv")));
    }

    #[test]
    fn ca_bundle_when_tls_libraries_are_in_the_closure() {
        if !have_gcc() {
            return;
        }
        if !std::path::Path::new("/usr/lib/x86_64-linux-gnu/libssl.so.3").exists() {
            super::elf_support::skip("the host has no libssl.so.3");
            return;
        }
        let f = Fixture::glibc();
        for l in ["libssl.so.3", "libcrypto.so.3"] {
            f.copy_host(&format!("/usr/lib/x86_64-linux-gnu/{l}"), &format!("/usr/lib/x86_64-linux-gnu/{l}"));
        }
        f.write("/usr/share/ca-certificates/bundle.crt", b"-----BEGIN CERTIFICATE-----\n");
        f.symlink("/etc/ssl/certs/ca-certificates.crt", "/usr/share/ca-certificates/bundle.crt");
        f.write("/etc/ssl/openssl.cnf", b"# config\n");
        f.symlink("/usr/lib/ssl/openssl.cnf", "/etc/ssl/openssl.cnf");
        f.symlink("/usr/lib/ssl/certs", "/etc/ssl/certs");
        // Linked against the host's libssl (declared by hand: no headers needed).
        let link = super::elf_support::host_real("/usr/lib/x86_64-linux-gnu/libssl.so.3").display().to_string();
        f.cc(
            "/app/tls",
            "int OPENSSL_init_ssl(unsigned long, void *); int main(void) { return OPENSSL_init_ssl(0, 0); }",
            &[&link],
        );
        let c = run(&f, &["/app/tls"], &ClosureOptions::default());
        assert!(c.contains("/usr/lib/x86_64-linux-gnu/libcrypto.so.3"), "{:#?}", c.missing);
        assert!(
            matches!(&c.explain("/usr/share/ca-certificates/bundle.crt")[0], Reason::Data { why } if why.contains("CA bundle"))
        );
        assert!(matches!(&c.explain("/etc/ssl/certs/ca-certificates.crt")[0], Reason::Symlink { .. }));
        assert!(
            c.contains("/etc/ssl/openssl.cnf")
                && c.contains("/usr/lib/ssl/openssl.cnf")
                && c.contains("/usr/lib/ssl/certs")
        );
        assert_matches_loader(&f, &c, "/app/tls", "/app/tls", &[]);
        // Without libssl, no CA bundle.
        f.cc("/app/notls", "int main(void) { return 0; }", &[]);
        let c = run(&f, &["/app/notls"], &ClosureOptions::default());
        assert!(!c.contains("/usr/share/ca-certificates/bundle.crt"));
    }

    #[test]
    fn tzdata_only_on_request_and_directory_roots() {
        let f = Fixture::empty();
        f.write("/usr/share/zoneinfo/Etc/UTC", b"TZif2");
        f.symlink("/usr/share/zoneinfo/UTC", "Etc/UTC");
        f.symlink("/etc/localtime", "/usr/share/zoneinfo/Etc/UTC");
        f.write("/srv/data/a.txt", b"a");
        f.write("/srv/data/sub/b.txt", b"b");
        f.mkdir("/srv/data/empty");
        let c = run(&f, &["/srv/data"], &ClosureOptions::default());
        assert!(!c.contains("/usr/share/zoneinfo/Etc/UTC"));
        for p in ["/srv/data", "/srv/data/a.txt", "/srv/data/sub", "/srv/data/sub/b.txt", "/srv/data/empty"] {
            assert!(c.contains(p), "{p}");
        }
        let o = ClosureOptions { include_tzdata: true, ..ClosureOptions::default() };
        let c = run(&f, &["/srv/data"], &o);
        for p in ["/usr/share/zoneinfo/Etc/UTC", "/usr/share/zoneinfo/UTC", "/etc/localtime"] {
            assert!(c.contains(p), "{p}");
        }
        assert_eq!(c.explain("/usr/share/zoneinfo/UTC")[0].to_string(), "time zone data (requested)");
    }

    #[test]
    fn library_roots_loaded_by_a_program_use_its_rpath() {
        if !have_gcc() {
            return;
        }
        let f = Fixture::glibc();
        f.lib("leaf", "libleaf.so.1", "/opt/dep/libleaf.so.1", "int leaf(void) { return 0; }", &[]);
        f.lib("plug", "plug.so", "/opt/plugins/plug.so", "int leaf(void); int v(void) { return leaf(); }", &["-lleaf"]);
        f.cc("/app/host", "int main(void) { return 0; }", &["-Wl,--disable-new-dtags,-rpath,/opt/dep"]);
        let roots = [Root::Library { path: "/opt/plugins/plug.so".into(), loaded_by: Some("/app/host".into()) }];
        let c = closure_of(f.root(), &roots, &opts()).unwrap();
        assert_eq!(via_of(&c, "/opt/dep/libleaf.so.1"), vec![Via::Rpath { of: "/app/host".into() }]);
        assert_eq!(c.explain("/opt/plugins/plug.so"), vec![Reason::Library { loaded_by: Some("/app/host".into()) }]);
        // Standalone, the library's dependency is not found.
        let roots = [Root::Library { path: "/opt/plugins/plug.so".into(), loaded_by: None }];
        let c = closure_of(f.root(), &roots, &opts()).unwrap();
        assert_eq!(c.unresolved().map(|m| m.name.as_str()).collect::<Vec<_>>(), vec!["libleaf.so.1"]);
    }

    #[test]
    fn union_and_explain() {
        if !have_gcc() {
            return;
        }
        let f = Fixture::glibc();
        f.cc("/app/one", "int main(void) { return 0; }", &[]);
        f.cc("/app/two", "int main(void) { return 0; }", &[]);
        let mut a = run(&f, &["/app/one"], &opts());
        let b = run(&f, &["/app/two"], &opts());
        a.add(b);
        let both = run(&f, &["/app/one", "/app/two"], &opts());
        assert_eq!(a.files, both.files);
        let libc = a.explain("//lib/x86_64-linux-gnu/./libc.so.6");
        assert_eq!(libc.len(), 2, "{libc:?}");
        assert_eq!(libc[0].to_string(), "DT_NEEDED libc.so.6 of /app/one (found in a default directory)");
        assert!(a.explain("/nope").is_empty());
    }
}
