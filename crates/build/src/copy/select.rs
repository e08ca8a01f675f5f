//! Selecting a COPY/ADD source with BuildKit's `--exclude` and `--parents`.
//!
//! BuildKit (`dockerfile2llb` `dispatchCopy` + fsutil `copy`):
//! - `--exclude=PATTERN` (repeatable) uses `.dockerignore` pattern rules
//!   (patternmatcher: `*`, `?`, `[..]`, `**`, `!` exceptions, the last
//!   match winning) on paths relative to each matched source: `COPY
//!   --exclude=*.txt dir /d/` leaves out `dir/a.txt`, not `dir/sub/b.txt`
//!   (that takes `**/*.txt`). An excluded directory is left out with
//!   everything below it, unless a `!` exception re-includes something
//!   inside. A wildcard source's matches themselves are tested too, by
//!   their path below the pattern's literal directory, so that the
//!   reference's `COPY --exclude=*.txt hom* /mydir/` skips `home.txt`.
//! - `--parents` keeps the source's parent directories under the
//!   destination. The source is split at its first `/./`: what is in front
//!   is the directory copied from (the context root when there is no
//!   pivot), what follows is an include pattern with the same
//!   patternmatcher rules (so `**` matches any depth), relative to it.
//!   Directories on the way are recreated with their own metadata; a
//!   matched directory brings its whole subtree. Excludes are then relative
//!   to that directory.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::error::{CopyError, Result};
use crate::context::gomatch::{clean, contains_wildcards};
use crate::context::{Context, Entry, EntryKind, IgnoreMatcher, SelectOptions};

/// `--exclude` and `--parents` of one COPY/ADD.
#[derive(Debug, Clone, Default)]
pub struct SourceFilter {
    exclude: IgnoreMatcher,
    parents: bool,
}

impl SourceFilter {
    /// Parses the `--exclude` patterns (errors name the bad pattern).
    pub fn new(exclude: &[String], parents: bool) -> Result<SourceFilter> {
        // Checked one by one first, so that the error names the bad pattern.
        for p in exclude {
            IgnoreMatcher::from_patterns([p])
                .map_err(|e| CopyError::InvalidExclude { pattern: p.clone(), reason: e.to_string() })?;
        }
        let exclude = IgnoreMatcher::from_patterns(exclude)
            .map_err(|e| CopyError::InvalidExclude { pattern: exclude.join(" "), reason: e.to_string() })?;
        Ok(SourceFilter { exclude, parents })
    }

    /// True when the filter changes nothing (plain COPY/ADD selection).
    pub fn is_plain(&self) -> bool {
        self.exclude.is_empty() && !self.parents
    }
}

/// Resolves one source pattern into entries grouped as
/// [`Context::select_with`] returns them (each match root, `sub_path`
/// empty, followed by its subtree), with `filter` applied. With
/// `--parents` the result is one group: the directory copied from, then
/// everything kept below it, `sub_path` being the path kept under the
/// destination.
pub fn select_source(src: &Context, pattern: &str, filter: &SourceFilter) -> Result<Vec<Entry>> {
    let source_err = |e| CopyError::Source { pattern: pattern.to_string(), source: e };
    let opts = SelectOptions { allow_empty_wildcard: true };
    if !filter.parents {
        let entries = src.select_with(pattern, &opts).map_err(source_err)?;
        if filter.exclude.is_empty() {
            return Ok(entries);
        }
        let base = literal_prefix(pattern);
        let wildcard = contains_wildcards(pattern.as_bytes());
        let mut out = Vec::with_capacity(entries.len());
        let mut group: Vec<Entry> = Vec::new();
        let mut skip_group = false;
        for e in entries {
            if e.is_match_root() {
                out.extend(exclude_in_group(std::mem::take(&mut group), &filter.exclude));
                skip_group = wildcard && filter.exclude.is_excluded_bytes(&below(&e.rel_path, &base));
            }
            if !skip_group {
                group.push(e);
            }
        }
        out.extend(exclude_in_group(group, &filter.exclude));
        return Ok(out);
    }

    // --parents: "<from>/./<include>" or the whole source under the root.
    let (from, include) = match pattern.split_once("/./") {
        Some((from, include)) => (if from.is_empty() { "/" } else { from }, include),
        None => ("/", pattern),
    };
    if contains_wildcards(from.as_bytes()) {
        return Err(CopyError::ParentsWildcardPivot { source_path: pattern.to_string() });
    }
    let include = clean(format!("/{include}").as_bytes());
    let comps: Vec<&[u8]> = include[1..].split(|&b| b == b'/').filter(|c| !c.is_empty()).collect();
    let first_wild = comps.iter().position(|c| contains_wildcards(c)).unwrap_or(comps.len());
    let literal = comps[..first_wild].join(&b'/');
    let rest = comps[first_wild..].join(&b'/');

    let root = src.entry(from).map_err(source_err)?;
    if root.kind != EntryKind::Dir {
        return Err(CopyError::NotADirectory { path: root.rel_path.display().to_string() });
    }
    let mut out = vec![root];
    // The directories between the pivot and the literal part, recreated
    // with their own metadata.
    let mut prefix = PathBuf::new();
    let literal_dirs = if rest.is_empty() { comps.len().saturating_sub(1) } else { first_wild };
    for c in &comps[..literal_dirs] {
        prefix.push(OsStr::from_bytes(c));
        let mut e = match src.entry(&join(from, &prefix)) {
            Ok(e) => e,
            // A pattern below a missing directory matches nothing.
            Err(crate::context::ContextError::NotFound { .. }) if !rest.is_empty() => return Ok(Vec::new()),
            Err(e) => return Err(source_err(e)),
        };
        if e.kind != EntryKind::Dir {
            // `a/b/c` where `a/b` is a file: nothing can match below it.
            return Ok(Vec::new());
        }
        e.sub_path = prefix.clone();
        out.push(e);
    }
    let start = join(from, Path::new(OsStr::from_bytes(&literal)));
    let selected = match src.select_with(&start, &opts) {
        Ok(s) => s,
        // A pattern whose literal directory is missing matches nothing.
        Err(crate::context::ContextError::NotFound { .. }) if !rest.is_empty() => return Ok(Vec::new()),
        Err(e) => return Err(source_err(e)),
    };
    let include = if rest.is_empty() {
        None
    } else {
        Some(
            IgnoreMatcher::from_patterns([String::from_utf8_lossy(&rest)])
                .map_err(|e| CopyError::InvalidExclude { pattern: pattern.to_string(), reason: e.to_string() })?,
        )
    };
    let literal_path = PathBuf::from(OsStr::from_bytes(&literal));
    let mut kept: Vec<(Entry, bool)> = Vec::new();
    for mut e in selected {
        if e.is_match_root() && (literal.is_empty() || include.is_some()) {
            // Already in `out` (the pivot or a literal directory).
            continue;
        }
        let matched = include.as_ref().is_none_or(|m| m.is_excluded_bytes(e.sub_path.as_os_str().as_bytes()));
        e.sub_path = if e.is_match_root() { literal_path.clone() } else { literal_path.join(&e.sub_path) };
        // Excludes are relative to the directory copied from.
        let excluded = filter.exclude.is_excluded_bytes(e.sub_path.as_os_str().as_bytes());
        if matched && !excluded {
            kept.push((e, false));
        } else if e.kind == EntryKind::Dir && (!matched || filter.exclude.has_exceptions()) {
            // Kept only if something below it is.
            kept.push((e, true));
        }
    }
    out.extend(drop_empty_tentative(kept));
    if out.len() == 1 + literal_dirs {
        // Nothing matched (or all of it is excluded): BuildKit copies
        // nothing (AllowEmptyWildcard), not even the parents.
        return Ok(Vec::new());
    }
    Ok(out)
}

/// `from/rel` as a source path.
fn join(from: &str, rel: &Path) -> String {
    let rel = rel.to_string_lossy();
    if rel.is_empty() { from.to_string() } else { format!("{}/{rel}", from.trim_end_matches('/')) }
}

/// The directory part of `pattern` in front of its first wildcard
/// component, cleaned and relative (empty for the context root).
fn literal_prefix(pattern: &str) -> Vec<u8> {
    let cleaned = clean(format!("/{pattern}").as_bytes());
    let comps: Vec<&[u8]> = cleaned[1..].split(|&b| b == b'/').filter(|c| !c.is_empty()).collect();
    let first = comps.iter().position(|c| contains_wildcards(c)).unwrap_or(comps.len());
    comps[..first].join(&b'/')
}

/// `path` below `base` (both relative), or its file name when it is not
/// (the shown path went through a symlink).
fn below(path: &Path, base: &[u8]) -> Vec<u8> {
    let p = path.as_os_str().as_bytes();
    if base.is_empty() {
        return p.to_vec();
    }
    if p.len() > base.len() && p.starts_with(base) && p[base.len()] == b'/' {
        return p[base.len() + 1..].to_vec();
    }
    path.file_name().map(|n| n.as_bytes().to_vec()).unwrap_or_default()
}

/// Applies the excludes inside one match group (paths below the match).
fn exclude_in_group(group: Vec<Entry>, exclude: &IgnoreMatcher) -> Vec<Entry> {
    let marked = group
        .into_iter()
        .filter_map(|e| {
            if e.is_match_root() || !exclude.is_excluded_bytes(e.sub_path.as_os_str().as_bytes()) {
                return Some((e, false));
            }
            // An excluded directory stays only to hold a re-included entry.
            (e.kind == EntryKind::Dir && exclude.has_exceptions()).then_some((e, true))
        })
        .collect();
    drop_empty_tentative(marked)
}

/// Drops the tentative directories (the `true` ones) that hold nothing kept.
fn drop_empty_tentative(entries: Vec<(Entry, bool)>) -> Vec<Entry> {
    let mut needed: HashSet<PathBuf> = HashSet::new();
    for (e, _) in entries.iter().filter(|(_, tentative)| !tentative) {
        let mut p = e.sub_path.parent();
        while let Some(dir) = p {
            if dir.as_os_str().is_empty() || !needed.insert(dir.to_path_buf()) {
                break;
            }
            p = dir.parent();
        }
    }
    entries.into_iter().filter(|(e, tentative)| !tentative || needed.contains(&e.sub_path)).map(|(e, _)| e).collect()
}
