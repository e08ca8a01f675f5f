//! Hostile and broken inputs: truncated and mutated ELF files, non-ELF
//! libraries, symlink loops, corrupt ld.so.cache files. Nothing may panic.

mod elf_support;

/// Named `elf` so `cargo nextest run -p distill-slim elf` selects these tests.
mod elf {
    use distill_slim::elf::{ClosureOptions, ElfError, LdCache, closure, parse_elf};

    use super::elf_support::{Fixture, have_gcc, host_real};

    /// A small deterministic PRNG (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    fn host_lib(name: &str) -> Vec<u8> {
        std::fs::read(host_real(&format!("/lib/x86_64-linux-gnu/{name}"))).unwrap()
    }

    #[test]
    fn truncated_elf_never_panics() {
        let libc = host_lib("libc.so.6");
        assert!(parse_elf(&libc).unwrap().is_some());
        for len in (0..70_000).step_by(331).chain([libc.len() / 2, libc.len() - 1]) {
            let _ = parse_elf(&libc[..len.min(libc.len())]);
        }
        assert_eq!(parse_elf(b"").unwrap().map(|_| ()), None);
        assert_eq!(parse_elf(b"#!/bin/sh\n").unwrap().map(|_| ()), None);
        assert!(parse_elf(b"\x7fELF").is_err());
        assert!(parse_elf(b"\x7fELF\x09\x09\x01").is_err());
    }

    #[test]
    fn mutated_elf_never_panics() {
        let base = host_lib("libgcc_s.so.1");
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut parsed = 0;
        for round in 0..1500 {
            let mut b = base.clone();
            let flips = 1 + (rng.next() % 16) as usize;
            for _ in 0..flips {
                // Mostly the headers and the dynamic segment's neighbourhood.
                let span = if round % 3 == 0 { b.len() } else { 4096.min(b.len()) };
                let at = (rng.next() as usize) % span;
                b[at] = rng.next() as u8;
            }
            if let Ok(Some(info)) = parse_elf(&b) {
                parsed += 1;
                let _ = info.needed.len();
            }
        }
        assert!(parsed > 0, "every mutation failed to parse: the test mutates too much");
    }

    #[test]
    fn broken_dependencies_are_reported_not_fatal() {
        if !have_gcc() {
            return;
        }
        let f = Fixture::glibc();
        f.lib("v", "libv.so.1", "/opt/a/libv.so.1", "int v(void) { return 0; }", &[]);
        f.cc("/app/prog", "int v(void); int main(void) { return v(); }", &["-lv", "-Wl,-rpath,/opt/a"]);
        let opts = ClosureOptions::default();
        // A truncated library.
        let lib = std::fs::read(f.host("/opt/a/libv.so.1")).unwrap();
        f.write("/opt/a/libv.so.1", &lib[..200]);
        let c = closure(f.root(), &["/app/prog".into()], &opts).unwrap();
        let m: Vec<_> = c.unresolved().collect();
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0].name, "libv.so.1");
        // Not ELF at all: ld.so stops with "invalid ELF header".
        f.write("/opt/a/libv.so.1", b"INPUT(-lc)\n");
        let c = closure(f.root(), &["/app/prog".into()], &opts).unwrap();
        let m: Vec<_> = c.unresolved().collect();
        assert!(m[0].detail.contains("invalid ELF header"), "{}", m[0]);
        // A truncated root is an error, not a panic.
        let prog = std::fs::read(f.host("/app/prog")).unwrap();
        f.write("/app/trunc", &prog[..100]);
        match closure(f.root(), &["/app/trunc".into()], &opts) {
            Err(ElfError::Malformed { path, .. }) => assert_eq!(path, "/app/trunc"),
            other => panic!("{other:?}"),
        }
        // Mutated roots: whatever the outcome, no panic.
        let mut rng = Rng(42);
        for _ in 0..200 {
            let mut b = prog.clone();
            for _ in 0..8 {
                let at = (rng.next() as usize) % 2048;
                b[at] = rng.next() as u8;
            }
            f.write("/app/mut", &b);
            let _ = closure(f.root(), &["/app/mut".into()], &opts);
        }
    }

    #[test]
    fn symlink_loops_and_missing_roots() {
        let f = Fixture::empty();
        f.symlink("/a", "/b");
        f.symlink("/b", "a");
        f.symlink("/dir/self", ".");
        let opts = ClosureOptions::default();
        assert!(matches!(closure(f.root(), &["/a".into()], &opts), Err(ElfError::SymlinkLoop { .. })));
        assert!(matches!(closure(f.root(), &["/nope".into()], &opts), Err(ElfError::RootNotFound { .. })));
        // `self -> .` repeated 41 times is a loop too, as for the kernel.
        let deep = format!("/dir{}/x", "/self".repeat(41));
        assert!(closure(f.root(), &[deep], &opts).is_err());
        assert!(matches!(
            closure(&f.root().join("no-such-rootfs"), &["/a".into()], &opts),
            Err(ElfError::Rootfs { .. })
        ));
    }

    #[test]
    fn corrupt_ld_so_cache_never_panics() {
        let Ok(real) = std::fs::read("/etc/ld.so.cache") else {
            super::elf_support::skip("no /etc/ld.so.cache on the host");
            return;
        };
        assert!(LdCache::parse(&real).is_ok());
        for len in (0..real.len()).step_by(97) {
            let _ = LdCache::parse(&real[..len]);
        }
        let mut rng = Rng(7);
        for _ in 0..500 {
            let mut b = real.clone();
            for _ in 0..4 {
                let at = (rng.next() as usize) % b.len().min(4096);
                b[at] = rng.next() as u8;
            }
            let _ = LdCache::parse(&b);
        }
        assert!(LdCache::parse(b"ld.so-1.7.0\0\xff\xff\xff\xff").is_err());
        assert!(LdCache::parse(b"glibc-ld.so.cache1.1\xff\xff\xff\x7f").is_err());
        assert!(LdCache::parse(b"nonsense").is_err());
    }
}
