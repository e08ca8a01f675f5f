//! Archive name normalisation shared by the scanner and the extractor.

/// Splits an archive name into clean components. A leading `/` is dropped
/// (absolute names are relative to the root, as Docker treats them), `.`
/// and empty components are dropped, `..` is resolved lexically. A name
/// that climbs above the root, or holds a NUL byte, is an error.
pub(crate) fn clean_components(name: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    if name.contains(&0) {
        return Err("the name contains a NUL byte");
    }
    let mut out: Vec<&[u8]> = Vec::new();
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err("`..` climbs out of the root");
                }
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// `a/b/c` from components.
pub(crate) fn join(comps: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::with_capacity(comps.iter().map(|c| c.len() + 1).sum());
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            v.push(b'/');
        }
        v.extend_from_slice(c);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans() {
        let ok = |s: &str| join(&clean_components(s.as_bytes()).unwrap());
        assert_eq!(ok("./a/b/"), b"a/b");
        assert_eq!(ok("/etc/x"), b"etc/x");
        assert_eq!(ok("a//./b/../c"), b"a/c");
        assert_eq!(ok("./"), b"");
        assert!(clean_components(b"../x").is_err());
        assert!(clean_components(b"a/../../x").is_err());
        assert!(clean_components(b"/../../etc/passwd").is_err());
        assert!(clean_components(b"a\0b").is_err());
    }
}
