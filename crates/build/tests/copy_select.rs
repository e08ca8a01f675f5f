//! COPY/ADD `--exclude` and `--parents` on directories, edge cases the
//! end-to-end test does not cover: `!` exceptions, parents' metadata, a
//! pivot at the start, literal files, patterns matching nothing, bad
//! patterns, and the key's selection (`select_source`).

mod copy_support;

/// Named `copy` so that `cargo nextest run -p distill-build copy` selects these tests.
mod copy {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use crate::copy_support::{Fixture, copy};
    use distill_build::copy::{CopyError, CopyRequest, SourceFilter, select_source};

    fn fixture() -> Fixture {
        let f = Fixture::new();
        for p in ["a/one.txt", "a/two.log", "a/logs/x.log", "a/logs/keep.log", "b/c/d/e.txt", "top.txt"] {
            f.file(p, p);
        }
        fs::set_permissions(f.ctx.join("b/c"), fs::Permissions::from_mode(0o750)).unwrap();
        f
    }

    fn exclude<'a>(req: CopyRequest<'a>, patterns: &'a [String]) -> CopyRequest<'a> {
        CopyRequest { exclude: patterns, ..req }
    }

    #[test]
    fn exclusions_with_exceptions_reinclude_inside_excluded_dirs() {
        let f = fixture();
        let pats = ["*.log".to_string(), "logs".to_string(), "!logs/keep.log".to_string()];
        f.run(&exclude(copy(&["a"], "/d/"), &pats)).unwrap();
        assert!(f.exists("d/one.txt"));
        assert!(!f.exists("d/two.log"));
        assert!(!f.exists("d/logs/x.log"));
        assert_eq!(f.read("d/logs/keep.log"), "a/logs/keep.log");
    }

    #[test]
    fn parents_keep_directories_with_their_metadata() {
        let f = fixture();
        f.run(&CopyRequest { parents: true, ..copy(&["b/c/d/e.txt", "top.txt"], "/p/") }).unwrap();
        assert_eq!(f.read("p/b/c/d/e.txt"), "b/c/d/e.txt");
        assert_eq!(f.read("p/top.txt"), "top.txt");
        assert_eq!(f.mode("p/b/c"), 0o750, "parent directories come with their own mode");

        // A pivot at the start keeps everything after it; `**` any depth.
        f.run(&CopyRequest { parents: true, ..copy(&["./b/./c/**/*.txt"], "/q/") }).unwrap();
        assert_eq!(f.read("q/c/d/e.txt"), "b/c/d/e.txt");
        assert!(!f.exists("q/b"));

        // A whole directory.
        f.run(&CopyRequest { parents: true, ..copy(&["a/logs"], "/r") }).unwrap();
        assert!(f.exists("r/a/logs/x.log") && f.exists("r/a/logs/keep.log") && !f.exists("r/a/one.txt"));
    }

    #[test]
    fn parents_patterns_that_match_nothing_copy_nothing_and_bad_ones_fail() {
        let f = fixture();
        f.run(&CopyRequest { parents: true, ..copy(&["a/*.none", "nodir/*.txt"], "/n/") }).unwrap();
        assert!(!f.exists("n/a"));
        let err = f.run(&CopyRequest { parents: true, ..copy(&["missing.txt"], "/n/") }).unwrap_err();
        assert!(err.to_string().contains("missing.txt"), "{err}");
        let err = f.run(&CopyRequest { parents: true, ..copy(&["a*/./x"], "/n/") }).unwrap_err();
        assert!(matches!(err, CopyError::ParentsWildcardPivot { .. }), "{err}");
        let pats = ["[".to_string()];
        assert!(matches!(f.run(&exclude(copy(&["a"], "/d/"), &pats)), Err(CopyError::InvalidExclude { .. })));
        f.assert_outside_untouched();
    }

    #[test]
    fn the_key_sees_only_what_is_copied() {
        let f = fixture();
        let ctx = f.context();
        let filter = SourceFilter::new(&["*.log".to_string(), "logs".to_string()], false).unwrap();
        let names: Vec<String> =
            select_source(&ctx, "a", &filter).unwrap().iter().map(|e| e.rel_path.display().to_string()).collect();
        assert_eq!(names, ["a", "a/one.txt"]);
        let parents = SourceFilter::new(&[], true).unwrap();
        let subs: Vec<String> = select_source(&ctx, "b/c/**/*.txt", &parents)
            .unwrap()
            .iter()
            .map(|e| e.sub_path.display().to_string())
            .collect();
        assert_eq!(subs, ["", "b", "b/c", "b/c/d", "b/c/d/e.txt"]);
    }
}
