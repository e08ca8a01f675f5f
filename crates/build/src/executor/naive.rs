//! The naive snapshotter: for hosts without overlayfs. The lower layers
//! (overlay upper-dir form: whiteouts as char devices 0:0, opaque dirs marked
//! with `trusted.overlay.opaque=y`) are copied into one plain directory, the
//! step runs there, and the diff against the copied base is written in the
//! same upper-dir form overlayfs produces, so the layer writer reads both
//! the same way.
//!
//! What counts as changed, per path:
//! - new path, or a different type → the entry (a directory that replaced a
//!   non-directory, or a directory that was deleted and made again, is
//!   marked opaque, as overlayfs does for a directory made over a whiteout);
//! - directory: identity (inode + birth time), mode, owner, mtime, xattrs;
//! - other entries: inode (replaced), mode, owner, size, mtime, link target,
//!   device number; if the ctime moved but all of those are equal, xattrs and
//!   then the bytes against the base's source file decide;
//! - base path gone → a whiteout.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use super::error::{ExecError, ctx};
use super::fsutil::{
    Kind, Meta, copy_metadata, copy_node, is_opaque, lstat, lstat_existing, make_whiteout, read_dir_sorted, remove_all,
    same_content, set_opaque, xattrs,
};

/// What the copied base looked like, to diff against.
#[derive(Debug, Default)]
pub(crate) struct NaiveBase {
    /// Relative path ("" for the root) → what it was.
    entries: HashMap<PathBuf, BaseEntry>,
    /// Relative dir path → its sorted entry names.
    children: HashMap<PathBuf, Vec<OsString>>,
}

#[derive(Debug)]
struct BaseEntry {
    meta: Meta,
    /// xattrs (without overlayfs' own), sorted.
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Where a regular file's bytes came from (a file in a lower layer).
    source: Option<PathBuf>,
}

/// Copies the layers (top-most first) into `rootfs` and records the result.
pub(crate) fn populate(lowers: &[PathBuf], rootfs: &Path) -> Result<NaiveBase, ExecError> {
    fs::create_dir_all(rootfs).map_err(ctx(|| format!("creating {rootfs:?}")))?;
    let mut sources = HashMap::new();
    for layer in lowers.iter().rev() {
        let mut links = HashMap::new();
        apply_dir(layer, rootfs, Path::new(""), &mut sources, &mut links)?;
    }
    let mut base = NaiveBase::default();
    record(rootfs, Path::new(""), &sources, &mut base)?;
    Ok(base)
}

fn apply_dir(
    layer_dir: &Path,
    dst_dir: &Path,
    rel: &Path,
    sources: &mut HashMap<PathBuf, PathBuf>,
    links: &mut HashMap<(u64, (u32, u32)), PathBuf>,
) -> Result<(), ExecError> {
    let names = read_dir_sorted(layer_dir).map_err(ctx(|| format!("reading layer dir {layer_dir:?}")))?;
    for name in names {
        let (src, dst, r) = (layer_dir.join(&name), dst_dir.join(&name), rel.join(&name));
        let rr = &r;
        let e = |what: &'static str| ctx(move || format!("{what} {:?}", Path::new("/").join(rr)));
        let m = lstat_existing(&src).map_err(ctx(|| format!("reading {src:?}")))?;
        let existing = lstat(&dst).map_err(e("inspecting"))?;
        if m.is_whiteout() {
            remove_all(&dst).map_err(e("removing whited-out"))?;
            continue;
        }
        if m.kind == Kind::Dir {
            match existing {
                Some(x) if x.kind == Kind::Dir => {
                    if is_opaque(&src).map_err(e("reading xattrs of"))? {
                        for child in read_dir_sorted(&dst).map_err(e("reading"))? {
                            remove_all(&dst.join(child)).map_err(e("clearing opaque dir"))?;
                        }
                    }
                }
                Some(_) => {
                    remove_all(&dst).map_err(e("replacing"))?;
                    fs::create_dir(&dst).map_err(e("creating"))?;
                }
                None => fs::create_dir(&dst).map_err(e("creating"))?,
            }
            apply_dir(&src, &dst, &r, sources, links)?;
            copy_metadata(&src, &m, &dst).map_err(e("setting metadata of"))?;
        } else {
            if existing.is_some() {
                remove_all(&dst).map_err(e("replacing"))?;
            }
            if m.kind == Kind::File && m.nlink > 1 {
                if let Some(first) = links.get(&(m.ino, m.dev)) {
                    fs::hard_link(first, &dst).map_err(e("hard-linking"))?;
                    sources.insert(r.clone(), src.clone());
                    continue;
                }
                links.insert((m.ino, m.dev), dst.clone());
            }
            copy_node(&src, &m, &dst).map_err(e("copying"))?;
            copy_metadata(&src, &m, &dst).map_err(e("setting metadata of"))?;
            if m.kind == Kind::File {
                sources.insert(r.clone(), src.clone());
            }
        }
    }
    Ok(())
}

fn record(
    rootfs: &Path,
    rel: &Path,
    sources: &HashMap<PathBuf, PathBuf>,
    base: &mut NaiveBase,
) -> Result<(), ExecError> {
    let path = rootfs.join(rel);
    let meta = lstat_existing(&path).map_err(ctx(|| format!("reading {path:?}")))?;
    let is_dir = meta.kind == Kind::Dir;
    let source = if meta.kind == Kind::File { sources.get(rel).cloned() } else { None };
    let xattrs = xattrs(&path).map_err(ctx(|| format!("reading xattrs of {path:?}")))?;
    base.entries.insert(rel.to_path_buf(), BaseEntry { meta, xattrs, source });
    if is_dir {
        let names = read_dir_sorted(&path).map_err(ctx(|| format!("reading {path:?}")))?;
        for n in &names {
            record(rootfs, &rel.join(n), sources, base)?;
        }
        base.children.insert(rel.to_path_buf(), names);
    }
    Ok(())
}

/// Writes the changes of `rootfs` against `base` into `upper` (which must
/// exist and be empty), in overlayfs upper-dir form.
pub(crate) fn diff(base: &NaiveBase, rootfs: &Path, upper: &Path) -> Result<(), ExecError> {
    let mut d = Differ { base, rootfs, upper, links: HashMap::new(), made_dirs: Vec::new() };
    // The root itself: only its metadata can change.
    if let Some(b) = base.entries.get(Path::new("")) {
        let cur = lstat_existing(rootfs).map_err(ctx(|| format!("reading {rootfs:?}")))?;
        if d.dir_changed(&b.meta, &cur, Path::new(""))? {
            d.made_dirs.push((PathBuf::new(), cur));
        }
    }
    d.walk(Path::new(""), true)?;
    // Directory metadata last, deepest first, so adding entries does not
    // disturb the mtimes already set.
    for (rel, meta) in d.made_dirs.iter().rev() {
        copy_metadata(&rootfs.join(rel), meta, &upper.join(rel))
            .map_err(ctx(|| format!("setting metadata of {:?} in the diff", Path::new("/").join(rel))))?;
    }
    Ok(())
}

struct Differ<'a> {
    base: &'a NaiveBase,
    rootfs: &'a Path,
    upper: &'a Path,
    /// Hard links among emitted files: (ino, dev) → path in the upper dir.
    links: HashMap<(u64, (u32, u32)), PathBuf>,
    /// Directories created in the upper dir, in creation order, with the
    /// metadata they get at the end.
    made_dirs: Vec<(PathBuf, Meta)>,
}

impl Differ<'_> {
    fn walk(&mut self, rel: &Path, base_visible: bool) -> Result<(), ExecError> {
        let dir = self.rootfs.join(rel);
        let names = read_dir_sorted(&dir).map_err(ctx(|| format!("reading {dir:?}")))?;
        for name in &names {
            let r = rel.join(name);
            let path = self.rootfs.join(&r);
            let cur = lstat_existing(&path).map_err(ctx(|| format!("reading {path:?}")))?;
            let b = if base_visible { self.base.entries.get(&r) } else { None };
            match b {
                None => self.emit(&r, &cur, false)?,
                Some(b) if b.meta.kind != cur.kind => self.emit(&r, &cur, true)?,
                Some(b) if cur.kind == Kind::Dir => {
                    if !b.meta.same_identity(&cur) {
                        self.emit(&r, &cur, true)?;
                    } else {
                        if self.dir_changed(&b.meta, &cur, &r)? {
                            self.ensure_parents(&r)?;
                            self.make_dir(&r, &cur, false)?;
                        }
                        self.walk(&r, true)?;
                    }
                }
                Some(b) => {
                    if self.node_changed(b, &cur, &r)? {
                        self.emit(&r, &cur, false)?;
                    }
                }
            }
        }
        if base_visible && let Some(before) = self.base.children.get(rel) {
            for gone in before.iter().filter(|n| names.binary_search(n).is_err()) {
                let r = rel.join(gone);
                self.ensure_parents(&r)?;
                make_whiteout(&self.upper.join(&r))
                    .map_err(ctx(|| format!("creating whiteout for {:?}", Path::new("/").join(&r))))?;
            }
        }
        Ok(())
    }

    /// Copies a new or changed entry (a whole subtree for directories).
    fn emit(&mut self, rel: &Path, cur: &Meta, opaque: bool) -> Result<(), ExecError> {
        self.ensure_parents(rel)?;
        if cur.kind == Kind::Dir {
            self.make_dir(rel, cur, opaque)?;
            return self.walk(rel, false);
        }
        let (src, dst) = (self.rootfs.join(rel), self.upper.join(rel));
        let e = |what: &'static str| ctx(move || format!("{what} {:?} into the diff", Path::new("/").join(rel)));
        if let Some(existing) = lstat(&dst).map_err(e("inspecting"))? {
            // Only a whiteout can be there already; a new entry replaces it.
            debug_assert!(existing.is_whiteout());
            fs::remove_file(&dst).map_err(e("replacing"))?;
        }
        if cur.kind == Kind::File && cur.nlink > 1 {
            if let Some(first) = self.links.get(&(cur.ino, cur.dev)) {
                return fs::hard_link(first, &dst).map_err(e("hard-linking"));
            }
            self.links.insert((cur.ino, cur.dev), dst.clone());
        }
        copy_node(&src, cur, &dst).map_err(e("copying"))?;
        copy_metadata(&src, cur, &dst).map_err(e("copying metadata of"))
    }

    fn make_dir(&mut self, rel: &Path, cur: &Meta, opaque: bool) -> Result<(), ExecError> {
        let dst = self.upper.join(rel);
        let e = |what: &'static str| ctx(move || format!("{what} {:?} in the diff", Path::new("/").join(rel)));
        if lstat(&dst).map_err(e("inspecting"))?.is_none() {
            fs::create_dir(&dst).map_err(e("creating"))?;
            self.made_dirs.push((rel.to_path_buf(), cur.clone()));
        }
        if opaque {
            set_opaque(&dst).map_err(e("marking opaque"))?;
        }
        Ok(())
    }

    /// Creates the missing ancestors of `rel` in the upper dir, with the
    /// rootfs's metadata (applied at the end).
    fn ensure_parents(&mut self, rel: &Path) -> Result<(), ExecError> {
        let mut ancestors: Vec<&Path> = rel.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()).collect();
        ancestors.reverse();
        for a in ancestors {
            if lstat(&self.upper.join(a)).map_err(ctx(|| format!("inspecting {a:?} in the diff")))?.is_none() {
                let cur = lstat_existing(&self.rootfs.join(a)).map_err(ctx(|| format!("reading {a:?}")))?;
                self.make_dir(a, &cur, false)?;
            }
        }
        Ok(())
    }

    fn dir_changed(&self, b: &Meta, cur: &Meta, rel: &Path) -> Result<bool, ExecError> {
        if !b.same_mode_owner(cur) || b.mtime != cur.mtime {
            return Ok(true);
        }
        if b.ctime == cur.ctime {
            return Ok(false);
        }
        self.xattrs_changed(rel)
    }

    fn xattrs_changed(&self, rel: &Path) -> Result<bool, ExecError> {
        let cur = xattrs(&self.rootfs.join(rel)).map_err(ctx(|| format!("reading xattrs of {rel:?}")))?;
        Ok(self.base.entries.get(rel).is_none_or(|b| b.xattrs != cur))
    }

    fn node_changed(&self, b: &BaseEntry, cur: &Meta, rel: &Path) -> Result<bool, ExecError> {
        let m = &b.meta;
        if !m.same_mode_owner(cur) || !m.same_identity(cur) || m.size != cur.size || m.mtime != cur.mtime {
            return Ok(true);
        }
        if m.rdev != cur.rdev {
            return Ok(true);
        }
        if m.ctime == cur.ctime {
            return Ok(false);
        }
        if self.xattrs_changed(rel)? {
            return Ok(true);
        }
        match (&b.source, cur.kind) {
            (Some(src), Kind::File) => {
                let path = self.rootfs.join(rel);
                Ok(!same_content(&path, src).map_err(ctx(|| format!("comparing {path:?} with {src:?}")))?)
            }
            // A symlink's target cannot change in place (only by replacing
            // it, which changes the inode); devices are compared above.
            _ => Ok(false),
        }
    }
}
