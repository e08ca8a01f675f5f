//! Dynamic string tokens (`$ORIGIN`, `$LIB`, `$PLATFORM`) and the loader's
//! compiled-in layout (default directories, what `$LIB` means).

use super::parse::Ident;
use super::rootfs::RootFs;

/// The values ld.so substitutes and the directories it searches last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The system search path.
    pub default_dirs: Vec<String>,
    /// `$LIB`.
    pub lib: String,
    /// `$PLATFORM`.
    pub platform: String,
}

/// The Debian multiarch triplet of an ABI.
pub(crate) fn triplet(ident: &Ident) -> Option<&'static str> {
    Some(match (ident.machine, ident.class) {
        (62, 2) => "x86_64-linux-gnu",
        (62, 1) => "x86_64-linux-gnux32",
        (3, _) => "i386-linux-gnu",
        (183, 2) => "aarch64-linux-gnu",
        (40, _) if ident.flags & 0x400 != 0 => "arm-linux-gnueabihf",
        (40, _) => "arm-linux-gnueabi",
        (243, 2) => "riscv64-linux-gnu",
        (21, 2) if ident.data == 1 => "powerpc64le-linux-gnu",
        (21, 2) => "powerpc64-linux-gnu",
        (22, 2) => "s390x-linux-gnu",
        (8, 1) if ident.data == 1 => "mipsel-linux-gnu",
        (8, 2) if ident.data == 1 => "mips64el-linux-gnuabi64",
        _ => return None,
    })
}

fn default_platform(ident: &Ident) -> &'static str {
    match ident.machine {
        62 => "x86_64",
        3 => "i686",
        183 => "aarch64",
        40 => "v7l",
        243 => "riscv64",
        21 => "power8",
        22 => "z13",
        _ => "",
    }
}

impl Layout {
    /// The layout of the loader in `fs` for processes of `ident`: Debian's
    /// multiarch directories when the rootfs has them, else the upstream
    /// `slibdir`/`libdir` (`/lib64` for 64-bit ABIs, `/lib` otherwise).
    pub(crate) fn detect(fs: &RootFs, ident: &Ident, lib: Option<&str>, platform: Option<&str>) -> Layout {
        let multiarch = triplet(ident).filter(|t| {
            [format!("/lib/{t}"), format!("/usr/lib/{t}")]
                .iter()
                .any(|d| fs.resolve(d, "/").is_ok_and(|r| fs.lstat(&r.real).is_ok_and(|m| m.is_dir())))
        });
        let (default_dirs, lib_default) = match multiarch {
            Some(t) => (
                vec![format!("/lib/{t}"), format!("/usr/lib/{t}"), "/lib".to_string(), "/usr/lib".to_string()],
                format!("lib/{t}"),
            ),
            None if ident.class == 2 && ![8, 243].contains(&ident.machine) => {
                (vec!["/lib64".to_string(), "/usr/lib64".to_string()], "lib64".to_string())
            }
            None => (vec!["/lib".to_string(), "/usr/lib".to_string()], "lib".to_string()),
        };
        Layout {
            default_dirs,
            lib: lib.map(str::to_string).unwrap_or(lib_default),
            platform: platform.map(str::to_string).unwrap_or_else(|| default_platform(ident).to_string()),
        }
    }
}

/// Substitutes `$ORIGIN`, `$LIB`, `$PLATFORM` (and their `${…}` forms) the
/// way glibc's `_dl_dst_substitute` does: an unbraced token must end at `/`
/// or the end of the string; anything else starting with `$` is kept as is.
pub(crate) fn expand(input: &str, origin: &str, layout: &Layout) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let mut matched = None;
        for (token, value) in [("ORIGIN", origin), ("LIB", layout.lib.as_str()), ("PLATFORM", layout.platform.as_str())]
        {
            if let Some(tail) =
                after.strip_prefix('{').and_then(|a| a.strip_prefix(token)).and_then(|a| a.strip_prefix('}'))
            {
                matched = Some((value, tail));
                break;
            }
            if let Some(tail) = after.strip_prefix(token)
                && (tail.is_empty() || tail.starts_with('/'))
            {
                matched = Some((value, tail));
                break;
            }
        }
        match matched {
            Some((value, tail)) => {
                out.push_str(value);
                rest = tail;
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Splits a search path (`DT_RPATH`, `DT_RUNPATH`, `LD_LIBRARY_PATH`) into
/// directories after DST substitution; empty elements are ignored (glibc's
/// `fillin_rpath`), relative ones are relative to `cwd`. `seps` are the
/// separator characters (`:` for DT_RPATH/DT_RUNPATH, `:;` for the variable).
pub(crate) fn split_path(path: &str, seps: &[char], origin: &str, layout: &Layout, cwd: &str) -> Vec<String> {
    path.split(|c| seps.contains(&c))
        .filter(|d| !d.is_empty())
        .map(|d| expand(d, origin, layout))
        .filter(|d| !d.is_empty())
        .map(|d| if d.starts_with('/') { d } else { super::rootfs::join_path(cwd, &d) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout { default_dirs: vec![], lib: "lib/x86_64-linux-gnu".into(), platform: "x86_64".into() }
    }

    #[test]
    fn expands_tokens_like_glibc() {
        let l = layout();
        assert_eq!(expand("$ORIGIN/../lib", "/opt/app/bin", &l), "/opt/app/bin/../lib");
        assert_eq!(expand("${ORIGIN}/x", "/o", &l), "/o/x");
        assert_eq!(expand("/usr/$LIB/foo", "/o", &l), "/usr/lib/x86_64-linux-gnu/foo");
        assert_eq!(expand("/p/${PLATFORM}", "/o", &l), "/p/x86_64");
        assert_eq!(expand("$ORIGIN", "/o", &l), "/o");
        // Not tokens: kept verbatim.
        assert_eq!(expand("$ORIGINX/a", "/o", &l), "$ORIGINX/a");
        assert_eq!(expand("$FOO/a", "/o", &l), "$FOO/a");
        assert_eq!(expand("a$", "/o", &l), "a$");
    }

    #[test]
    fn splits_search_paths() {
        let l = layout();
        let dirs = split_path("$ORIGIN/../lib::rel;x", &[':', ';'], "/bin", &l, "/work");
        assert_eq!(dirs, vec!["/bin/../lib", "/work/rel", "/work/x"]);
    }
}
