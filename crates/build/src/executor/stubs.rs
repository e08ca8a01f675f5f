//! Mount-point stubs. The runtime needs every mount target to exist in the
//! rootfs; targets the image lacks (/etc/resolv.conf and /etc/hosts in
//! minimal images, `RUN --mount` targets) are created before the run and
//! removed after it, and the parent directory gets its times back when the
//! run did not touch it, so none of this shows up in the layer diff (as
//! BuildKit's `MountStubsCleaner` does).

use std::fs;
use std::path::{Component, Path, PathBuf};

use super::error::{ExecError, ctx};
use super::fsutil::{Kind, Time, lstat, resolve_in_root, set_times};
use super::spec::OciMount;

/// What [`create`] made, to undo with [`MountStubs::cleanup`].
#[derive(Debug, Default)]
pub(crate) struct MountStubs {
    /// Created paths in creation order (parents before children).
    created: Vec<PathBuf>,
    /// Existing directories we created entries in.
    parents: Vec<Parent>,
}

#[derive(Debug)]
struct Parent {
    path: PathBuf,
    /// Times before the first stub went in.
    atime: Time,
    mtime: Time,
    /// mtime right after the last stub went in.
    mtime_after: Time,
}

/// Resolves each mount destination inside `rootfs` (symlinks clamped to the
/// rootfs, as the runtime does; the destination is rewritten to the resolved
/// path) and creates the missing ones: a file for bind mounts of files, a
/// directory otherwise. Mounts nested in an earlier mount (/dev/pts in /dev)
/// are left to the runtime: they live in that mount, not in the rootfs.
pub(crate) fn create(rootfs: &Path, mounts: &mut [OciMount]) -> Result<MountStubs, ExecError> {
    let mut stubs = MountStubs::default();
    let mut earlier: Vec<PathBuf> = Vec::new();
    for m in mounts.iter_mut() {
        let dest = PathBuf::from(&m.destination);
        if earlier.iter().any(|e| dest.starts_with(e) && dest != *e) {
            continue;
        }
        earlier.push(dest);
        let rel = resolve_in_root(rootfs, &m.destination)
            .map_err(ctx(|| format!("resolving mount target {} in the rootfs", m.destination)))?;
        m.destination = Path::new("/").join(&rel).to_string_lossy().into_owned();
        if let Err(e) = stubs.make(rootfs, &rel, m.is_file) {
            stubs.cleanup();
            return Err(e);
        }
    }
    Ok(stubs)
}

impl MountStubs {
    fn make(&mut self, rootfs: &Path, rel: &Path, is_file: bool) -> Result<(), ExecError> {
        let comps: Vec<_> = rel.components().filter(|c| matches!(c, Component::Normal(_))).collect();
        let mut cur = rootfs.to_path_buf();
        for (i, c) in comps.iter().enumerate() {
            let next = cur.join(c);
            let e = |what: &'static str| {
                let shown = Path::new("/").join(next.strip_prefix(rootfs).unwrap_or(&next));
                ctx(move || format!("{what} mount point {shown:?}"))
            };
            match lstat(&next).map_err(e("inspecting"))? {
                Some(_) => {}
                None => {
                    let parent_is_stub = self.created.last() == Some(&cur);
                    let before = if parent_is_stub { None } else { lstat(&cur).map_err(e("inspecting parent of"))? };
                    if i + 1 == comps.len() && is_file {
                        fs::OpenOptions::new().write(true).create_new(true).open(&next).map_err(e("creating"))?;
                    } else {
                        fs::create_dir(&next).map_err(e("creating"))?;
                    }
                    self.created.push(next.clone());
                    if let Some(b) = before {
                        let after = lstat(&cur).map_err(e("inspecting parent of"))?.map_or(b.mtime, |m| m.mtime);
                        match self.parents.iter_mut().find(|p| p.path == cur) {
                            Some(p) => p.mtime_after = after,
                            None => self.parents.push(Parent {
                                path: cur.clone(),
                                atime: b.atime,
                                mtime: b.mtime,
                                mtime_after: after,
                            }),
                        }
                    }
                }
            }
            cur = next;
        }
        Ok(())
    }

    /// Removes the stubs that are still empty (deepest first) and gives the
    /// parent directories their times back unless the run changed them.
    /// Best effort: a stub that is no longer empty is left alone.
    pub(crate) fn cleanup(&mut self) {
        let touched: Vec<bool> = self
            .parents
            .iter()
            .map(|p| lstat(&p.path).ok().flatten().is_none_or(|m| m.mtime != p.mtime_after))
            .collect();
        for path in self.created.drain(..).rev() {
            match lstat(&path) {
                Ok(Some(m)) if m.kind == Kind::Dir => {
                    let _ = fs::remove_dir(&path);
                }
                Ok(Some(m)) if m.kind == Kind::File && m.size == 0 => {
                    let _ = fs::remove_file(&path);
                }
                _ => {}
            }
        }
        for (p, touched) in self.parents.drain(..).zip(touched) {
            if !touched {
                let _ = set_times(&p.path, p.atime, p.mtime);
            }
        }
    }
}

impl Drop for MountStubs {
    fn drop(&mut self) {
        self.cleanup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::fsutil::lstat_existing;

    fn m(dest: &str, is_file: bool) -> OciMount {
        OciMount { destination: dest.into(), kind: "bind".into(), source: "/x".into(), options: vec![], is_file }
    }

    #[test]
    fn stubs_are_created_resolved_and_removed_with_parent_times_restored() {
        let root = std::env::temp_dir().join(format!("distill-stubs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for d in ["etc", "run", "mnt", "dev", "tmp"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        std::os::unix::fs::symlink("../run/systemd/resolve/stub-resolv.conf", root.join("etc/resolv.conf")).unwrap();
        let old = (1_000_000_000, 0);
        for d in ["etc", "run", "mnt", "tmp"] {
            set_times(&root.join(d), old, old).unwrap();
        }
        let mut mounts = vec![
            m("/dev", false),
            m("/dev/pts", false),
            m("/etc/resolv.conf", true),
            m("/etc/hosts", true),
            m("/mnt/a/b", false),
            m("/tmp/t", false),
        ];
        let mut stubs = create(&root, &mut mounts).unwrap();
        let dests: Vec<_> = mounts.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(
            dests,
            ["/dev", "/dev/pts", "/run/systemd/resolve/stub-resolv.conf", "/etc/hosts", "/mnt/a/b", "/tmp/t"]
        );
        assert!(root.join("run/systemd/resolve/stub-resolv.conf").is_file());
        assert!(root.join("etc/hosts").is_file());
        assert!(root.join("mnt/a/b").is_dir());
        assert!(!root.join("dev/pts").exists(), "nested in /dev: the runtime's business");
        // The "run" writes into /tmp: that directory keeps its new times.
        fs::write(root.join("tmp/written"), "x").unwrap();
        stubs.cleanup();
        for gone in ["run/systemd", "etc/hosts", "mnt/a", "tmp/t"] {
            assert!(!root.join(gone).exists(), "{gone} left behind");
        }
        assert!(fs::symlink_metadata(root.join("etc/resolv.conf")).unwrap().file_type().is_symlink());
        for d in ["etc", "run", "mnt"] {
            assert_eq!(lstat_existing(&root.join(d)).unwrap().mtime, old, "{d}");
        }
        assert_ne!(lstat_existing(&root.join("tmp")).unwrap().mtime, old);
        fs::remove_dir_all(&root).unwrap();
    }
}
