//! Active snapshots: a writable rootfs over read-only layer dirs whose
//! changes come out as an overlayfs-style upper dir, with overlayfs or with
//! the naive copy-and-diff fallback (`DISTILL_SNAPSHOTTER=naive`).

use std::fs;
use std::path::{Path, PathBuf};

use super::error::{ExecError, ctx};
use super::fsutil::{Kind, is_opaque, lstat, xattrs};
use super::naive::{self, NaiveBase};
use super::overlay::OverlayMount;

/// Which snapshotter turns a RUN step's file system changes into a diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotterKind {
    /// overlayfs: lower layers read-only, changes in a fresh upper dir.
    #[default]
    Overlay,
    /// Copy the layers into a directory, run there, diff against the copy.
    Naive,
}

impl SnapshotterKind {
    /// The environment variable that selects the snapshotter.
    pub const ENV: &'static str = "DISTILL_SNAPSHOTTER";

    /// From `DISTILL_SNAPSHOTTER` (unset or empty: overlayfs).
    pub fn from_env() -> Result<Self, ExecError> {
        Self::parse(&std::env::var(Self::ENV).unwrap_or_default())
    }

    /// `""`, `overlay`, `overlayfs` → overlayfs; `naive` → naive.
    pub fn parse(name: &str) -> Result<Self, ExecError> {
        match name.trim() {
            "" | "overlay" | "overlayfs" => Ok(SnapshotterKind::Overlay),
            "naive" => Ok(SnapshotterKind::Naive),
            other => Err(ExecError::UnknownSnapshotter(other.to_string())),
        }
    }

    /// The name `parse` accepts.
    pub fn name(self) -> &'static str {
        match self {
            SnapshotterKind::Overlay => "overlayfs",
            SnapshotterKind::Naive => "naive",
        }
    }
}

#[derive(Debug)]
enum State {
    Overlay(OverlayMount),
    Naive(NaiveBase),
    Done,
}

/// A writable rootfs over read-only lower layers, laid out in a scratch
/// directory:
/// - overlayfs: `upper/`, `work/`, `merged/` (the rootfs; `work/` and
///   `merged/` are removed after unmounting);
/// - naive: `rootfs/` (a copy of the layers) and `upper/` (the diff, written
///   by [`ActiveSnapshot::commit`]).
///
/// [`ActiveSnapshot::commit`] returns the upper dir in overlayfs form. Drop
/// without commit unmounts (overlayfs) or removes the copy (naive); the
/// scratch dir itself belongs to the caller.
#[derive(Debug)]
pub struct ActiveSnapshot {
    kind: SnapshotterKind,
    lowers: Vec<PathBuf>,
    scratch: PathBuf,
    rootfs: PathBuf,
    upper: PathBuf,
    state: State,
}

impl ActiveSnapshot {
    /// Prepares a rootfs over `lowerdirs` (top-most first; none means an
    /// empty base) in `scratch`, which must be empty or missing.
    pub fn prepare(kind: SnapshotterKind, lowerdirs: &[PathBuf], scratch: &Path) -> Result<Self, ExecError> {
        Self::prepare_inner(kind, lowerdirs, scratch, false)
    }

    /// [`ActiveSnapshot::prepare`] with overlayfs over an upper dir that
    /// already holds the start of the diff: `scratch/upper`, in overlay form
    /// and on the same file system as `scratch` (an incremental COPY seeds
    /// it with the previous result's unchanged files).
    pub fn prepare_seeded(lowerdirs: &[PathBuf], scratch: &Path) -> Result<Self, ExecError> {
        Self::prepare_inner(SnapshotterKind::Overlay, lowerdirs, scratch, true)
    }

    fn prepare_inner(
        kind: SnapshotterKind,
        lowerdirs: &[PathBuf],
        scratch: &Path,
        seeded: bool,
    ) -> Result<Self, ExecError> {
        fs::create_dir_all(scratch).map_err(ctx(|| format!("creating {scratch:?}")))?;
        let scratch = fs::canonicalize(scratch).map_err(ctx(|| format!("resolving {scratch:?}")))?;
        let upper = scratch.join("upper");
        if !seeded {
            fs::create_dir(&upper).map_err(ctx(|| format!("creating {upper:?}")))?;
        }
        let (rootfs, state) = match kind {
            SnapshotterKind::Overlay => {
                let merged = scratch.join("merged");
                let m = OverlayMount::mount(lowerdirs, &upper, &scratch.join("work"), &merged)?;
                (merged, State::Overlay(m))
            }
            SnapshotterKind::Naive => {
                let rootfs = scratch.join("rootfs");
                let base = naive::populate(lowerdirs, &rootfs).inspect_err(|_| {
                    let _ = fs::remove_dir_all(&rootfs);
                })?;
                (rootfs, State::Naive(base))
            }
        };
        Ok(ActiveSnapshot { kind, lowers: lowerdirs.to_vec(), scratch, rootfs, upper, state })
    }

    /// The snapshotter in use.
    pub fn kind(&self) -> SnapshotterKind {
        self.kind
    }

    /// The writable rootfs to run in.
    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    /// Where the diff is (complete only after [`ActiveSnapshot::commit`]).
    pub fn upper(&self) -> &Path {
        &self.upper
    }

    /// The scratch dir holding everything.
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// Finishes the snapshot and returns the upper dir: the diff in overlayfs
    /// form (whiteouts as char devices 0:0, opaque dirs with
    /// `trusted.overlay.opaque=y`), ready for the layer writer
    /// (`WriteOptions { overlay_upper: true, .. }`). overlayfs: unmounts,
    /// removes the work dir and drops directories that were copied up
    /// without any change (empty, not opaque, same mode/owner/mtime/xattrs as
    /// below). Naive: writes the diff and removes the copy.
    pub fn commit(mut self) -> Result<PathBuf, ExecError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Overlay(m) => {
                m.unmount()?;
                remove_work(&self.scratch);
                prune_noop_dirs(&self.upper, Path::new(""), &self.lowers)?;
            }
            State::Naive(base) => {
                naive::diff(&base, &self.rootfs, &self.upper)?;
                fs::remove_dir_all(&self.rootfs).map_err(ctx(|| format!("removing {:?}", self.rootfs)))?;
            }
            State::Done => {}
        }
        Ok(self.upper.clone())
    }
}

impl Drop for ActiveSnapshot {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Overlay(m) => {
                drop(m);
                remove_work(&self.scratch);
            }
            State::Naive(_) => {
                let _ = fs::remove_dir_all(&self.rootfs);
            }
            State::Done => {}
        }
    }
}

/// After unmounting: removes overlayfs' work dir and the (now empty) mount
/// point.
fn remove_work(scratch: &Path) {
    let work = scratch.join("work");
    if work.exists() {
        let _ = fs::remove_dir_all(&work);
    }
    let _ = fs::remove_dir(scratch.join("merged"));
}

/// Removes, bottom-up, directories of the upper dir that change nothing:
/// empty, not opaque, and equal (mode, owner, mtime, xattrs) to the
/// directory the lower layers show at that path. Returns whether `rel` is
/// now gone.
fn prune_noop_dirs(upper: &Path, rel: &Path, lowers: &[PathBuf]) -> Result<bool, ExecError> {
    let dir = upper.join(rel);
    // The entry type from readdir (no stat per entry: a COPY's upper dir can
    // hold tens of thousands of files, and only directories matter here).
    let mut subdirs = Vec::new();
    let mut left = 0usize;
    for entry in fs::read_dir(&dir).map_err(ctx(|| format!("reading {dir:?}")))? {
        let entry = entry.map_err(ctx(|| format!("reading {dir:?}")))?;
        left += 1;
        if entry.file_type().map_err(ctx(|| format!("reading {dir:?}")))?.is_dir() {
            subdirs.push(entry.file_name());
        }
    }
    subdirs.sort();
    for name in subdirs {
        if prune_noop_dirs(upper, &rel.join(&name), lowers)? {
            left -= 1;
        }
    }
    if left > 0 || rel.as_os_str().is_empty() {
        return Ok(false);
    }
    let Some(lower) = lower_lookup(lowers, rel) else { return Ok(false) };
    let e = |what: &'static str| ctx(move || format!("{what} {:?}", Path::new("/").join(rel)));
    let (Some(u), Some(l)) = (lstat(&dir).map_err(e("reading"))?, lstat(&lower).map_err(e("reading"))?) else {
        return Ok(false);
    };
    if l.kind != Kind::Dir
        || !u.same_mode_owner(&l)
        || u.mtime != l.mtime
        || is_opaque(&dir).map_err(e("reading xattrs of"))?
        || xattrs(&dir).map_err(e("reading xattrs of"))? != xattrs(&lower).map_err(e("reading xattrs of"))?
    {
        return Ok(false);
    }
    fs::remove_dir(&dir).map_err(e("removing unchanged copy-up"))?;
    Ok(true)
}

/// The path in the lower layers (top-most first) that overlayfs would show
/// at `rel`, honouring whiteouts and opaque directories.
pub(crate) fn lower_lookup(lowers: &[PathBuf], rel: &Path) -> Option<PathBuf> {
    for lower in lowers {
        let full = lower.join(rel);
        match lstat(&full).ok()? {
            Some(m) if m.is_whiteout() => return None,
            Some(_) => return Some(full),
            None => {}
        }
        // Absent here: does this layer hide it from the layers below?
        let mut prefix = lower.clone();
        for comp in rel.components() {
            prefix.push(comp);
            if prefix == full {
                break;
            }
            match lstat(&prefix).ok()? {
                None => break,
                Some(m) if m.kind != Kind::Dir => return None,
                Some(_) if is_opaque(&prefix).unwrap_or(false) => return None,
                Some(_) => {}
            }
        }
    }
    None
}
