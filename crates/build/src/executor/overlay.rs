//! overlayfs mounts: read-only lower layers + a fresh upper dir = a
//! writable rootfs whose changes land in the upper dir, which then *is* the
//! layer diff (whiteouts as char devices 0:0, opaque dirs marked with
//! `trusted.overlay.opaque=y`).
//!
//! ## Many lower layers
//! The legacy `mount(2)` call takes its options as one string of at most one
//! page (4096 bytes), which a few dozen long snapshot paths overflow. This
//! module therefore prefers the new mount API: `fsopen("overlay")`, then one
//! `fsconfig(FSCONFIG_SET_STRING, "lowerdir+", dir)` per layer (Linux ≥ 6.8;
//! each path alone may be up to 4095 bytes), `fsmount` and `move_mount`. On
//! older kernels (`lowerdir+` rejected with EINVAL, or no `fsopen`) it falls
//! back to `mount(2)`; when that option string would not fit in a page, every
//! lower dir is opened with `O_PATH` and named `/proc/self/fd/N` (about 18
//! bytes a layer, so roughly 200 layers fit). That avoids `chdir`, which
//! would be process-wide and race with other threads.
//!
//! ## Options
//! `index=off`, `redirect_dir=off` and `metacopy=off` are passed whenever the
//! kernel knows them: with them on, renamed directories and metadata-only
//! copy-ups would be recorded as overlay-private xattrs that no layer format
//! can carry. With `redirect_dir=off`, renaming a lower directory fails with
//! EXDEV and tools (`mv`) fall back to copy + delete, which gives a plain diff.
//!
//! `volatile` (Linux ≥ 5.10) is passed too: without it, unmounting syncs the
//! whole upper file system, which for a `COPY` of a 350 MB context cost ~2 s
//! of writeback the build never needs. An upper dir is not durable state:
//! the layer blob made from it is written and fsynced on its own, and the
//! snapshot adopted from the upper dir is a cache of that blob (see the
//! store's `place_snapshot`).

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{CWD, Mode, OFlags};
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags, fsconfig_create,
    fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount,
};

use super::error::{ExecError, ctx};

/// Which kernel interface mounts the overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlayApi {
    /// The new mount API with `lowerdir+` if the kernel has it, else legacy.
    Auto,
    /// `fsopen`/`fsconfig("lowerdir+")`/`fsmount`/`move_mount` (Linux ≥ 6.8).
    FsConfig,
    /// `mount(2)` with an option string (`/proc/self/fd/N` lower paths when
    /// plain paths would overflow a page).
    Legacy,
}

/// The longest option string the legacy `mount(2)` accepts (one page, minus
/// the terminating NUL; 4096 is the smallest page size Linux runs with).
const LEGACY_DATA_MAX: usize = 4095;

/// An overlayfs mount. Unmounted by [`OverlayMount::unmount`] or on drop
/// (falling back to a lazy detach when the mount is busy).
#[derive(Debug)]
pub struct OverlayMount {
    lowerdirs: Vec<PathBuf>,
    upper: PathBuf,
    work: PathBuf,
    merged: PathBuf,
    /// Created for a mount with zero lower dirs; removed on unmount.
    empty_lower: Option<PathBuf>,
    api: OverlayApi,
    mounted: bool,
}

impl OverlayMount {
    /// Mounts `lowerdirs` (read-only layer directories, top-most first; none
    /// means an empty base) with `upper` and `work` at `merged`. `upper`,
    /// `work` and `merged` are created when missing; `upper` and `work` must
    /// be on the same file system and `work` must be empty.
    pub fn mount(lowerdirs: &[PathBuf], upper: &Path, work: &Path, merged: &Path) -> Result<Self, ExecError> {
        Self::mount_with(lowerdirs, upper, work, merged, OverlayApi::Auto)
    }

    /// [`OverlayMount::mount`] with an explicit kernel interface.
    pub fn mount_with(
        lowerdirs: &[PathBuf],
        upper: &Path,
        work: &Path,
        merged: &Path,
        api: OverlayApi,
    ) -> Result<Self, ExecError> {
        for d in [upper, work, merged] {
            fs::create_dir_all(d).map_err(ctx(|| format!("creating {d:?}")))?;
        }
        let canon = |p: &Path| fs::canonicalize(p).map_err(ctx(|| format!("resolving {p:?}")));
        let (upper, work, merged) = (canon(upper)?, canon(work)?, canon(merged)?);
        let mut lowers = lowerdirs.iter().map(|p| canon(p)).collect::<Result<Vec<_>, _>>()?;
        let mut empty_lower = None;
        if lowers.is_empty() {
            // overlayfs needs at least one lower dir: use an empty one beside
            // the work dir (not inside it: the kernel rejects overlapping dirs).
            let name = format!("{}.empty-lower", work.file_name().unwrap_or_default().to_string_lossy());
            let empty = work.with_file_name(name);
            fs::create_dir_all(&empty).map_err(ctx(|| format!("creating {empty:?}")))?;
            lowers.push(empty.clone());
            empty_lower = Some(empty);
        }
        let mut m =
            OverlayMount { lowerdirs: lowerdirs.to_vec(), upper, work, merged, empty_lower, api, mounted: false };
        let used = match api {
            OverlayApi::FsConfig => {
                m.mount_fsconfig(&lowers)?.map_err(|e| m.mount_error(e, " (fsconfig lowerdir+ needs Linux 6.8)"))?;
                OverlayApi::FsConfig
            }
            OverlayApi::Legacy => {
                m.mount_legacy(&lowers)?;
                OverlayApi::Legacy
            }
            OverlayApi::Auto => match m.mount_fsconfig(&lowers)? {
                Ok(()) => OverlayApi::FsConfig,
                Err(_) => {
                    m.mount_legacy(&lowers)?;
                    OverlayApi::Legacy
                }
            },
        };
        m.api = used;
        m.mounted = true;
        Ok(m)
    }

    fn mount_error(&self, source: io::Error, detail: &str) -> ExecError {
        ExecError::Mount { target: self.merged.clone(), detail: detail.to_string(), source }
    }

    /// The new mount API. The outer `Err` is a real failure; the inner one
    /// means "this kernel cannot do it this way" (no fsopen, no lowerdir+).
    fn mount_fsconfig(&self, lowers: &[PathBuf]) -> Result<Result<(), io::Error>, ExecError> {
        let fs_fd = match fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC) {
            Ok(fd) => fd,
            Err(e @ rustix::io::Errno::NOSYS) => return Ok(Err(e.into())),
            Err(e) => return Err(self.mount_error(e.into(), "")),
        };
        let fail = |e: rustix::io::Errno, what: &str| {
            let log = kernel_log(&fs_fd);
            self.mount_error(e.into(), &format!(" ({what}{}{log})", if log.is_empty() { "" } else { ": " }))
        };
        for (i, lower) in lowers.iter().enumerate() {
            match fsconfig_set_string(&fs_fd, "lowerdir+", lower) {
                Ok(()) => {}
                Err(e @ rustix::io::Errno::INVAL) if i == 0 => return Ok(Err(e.into())),
                Err(e) => return Err(fail(e, &format!("lower dir {lower:?}"))),
            }
        }
        fsconfig_set_string(&fs_fd, "upperdir", &self.upper).map_err(|e| fail(e, "upper dir"))?;
        fsconfig_set_string(&fs_fd, "workdir", &self.work).map_err(|e| fail(e, "work dir"))?;
        for (key, value) in diff_friendly_options() {
            fsconfig_set_string(&fs_fd, key, value).map_err(|e| fail(e, key))?;
        }
        if volatile_supported() {
            fsconfig_set_flag(&fs_fd, "volatile").map_err(|e| fail(e, "volatile"))?;
        }
        fsconfig_create(&fs_fd).map_err(|e| fail(e, "creating the overlay"))?;
        let mnt =
            fsmount(&fs_fd, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty()).map_err(|e| fail(e, "fsmount"))?;
        move_mount(&mnt, "", CWD, &self.merged, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
            .map_err(|e| fail(e, "move_mount"))?;
        Ok(Ok(()))
    }

    fn mount_legacy(&self, lowers: &[PathBuf]) -> Result<(), ExecError> {
        let mut tail = format!(",upperdir={},workdir={}", escape(&self.upper), escape(&self.work));
        for (key, value) in diff_friendly_options() {
            tail.push_str(&format!(",{key}={value}"));
        }
        if volatile_supported() {
            tail.push_str(",volatile");
        }
        let plain = lowers.iter().map(|p| escape(p)).collect::<Vec<_>>().join(":");
        let mut data = format!("lowerdir={plain}{tail}");
        // Keeps the O_PATH fds open until the mount call has resolved them.
        let mut fds: Vec<OwnedFd> = Vec::new();
        if data.len() > LEGACY_DATA_MAX {
            for p in lowers {
                let fd = rustix::fs::open(p, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                    .map_err(|e| ExecError::io(format!("opening lower dir {p:?}"), e.into()))?;
                fds.push(fd);
            }
            let short = fds.iter().map(|fd| format!("/proc/self/fd/{}", fd.as_raw_fd())).collect::<Vec<_>>();
            data = format!("lowerdir={}{tail}", short.join(":"));
            if data.len() > LEGACY_DATA_MAX {
                return Err(self.mount_error(
                    io::Error::from(io::ErrorKind::InvalidInput),
                    &format!(
                        " ({} lower dirs do not fit in one page of mount options; Linux 6.8's lowerdir+ has no such limit)",
                        lowers.len()
                    ),
                ));
            }
        }
        let data = std::ffi::CString::new(data).map_err(|e| self.mount_error(io::Error::other(e), ""))?;
        rustix::mount::mount("overlay", &self.merged, "overlay", MountFlags::empty(), data.as_c_str())
            .map_err(|e| self.mount_error(e.into(), ""))?;
        drop(fds);
        Ok(())
    }

    /// The mount point: the writable rootfs.
    pub fn merged(&self) -> &Path {
        &self.merged
    }

    /// The upper dir, where every change lands (the layer diff).
    pub fn upper(&self) -> &Path {
        &self.upper
    }

    /// overlayfs' scratch dir.
    pub fn work(&self) -> &Path {
        &self.work
    }

    /// The lower dirs as given (top-most first).
    pub fn lowerdirs(&self) -> &[PathBuf] {
        &self.lowerdirs
    }

    /// The kernel interface that performed the mount (never `Auto`).
    pub fn api(&self) -> OverlayApi {
        self.api
    }

    /// Unmounts (lazily detaching when busy) and removes the empty lower dir
    /// made for a zero-layer mount. The upper and work dirs stay.
    pub fn unmount(mut self) -> Result<(), ExecError> {
        self.do_unmount()
    }

    fn do_unmount(&mut self) -> Result<(), ExecError> {
        if self.mounted {
            match rustix::mount::unmount(&self.merged, UnmountFlags::NOFOLLOW) {
                Ok(()) | Err(rustix::io::Errno::INVAL) => {}
                Err(rustix::io::Errno::BUSY) => rustix::mount::unmount(&self.merged, UnmountFlags::DETACH)
                    .map_err(|e| ExecError::io(format!("unmounting {:?}", self.merged), e.into()))?,
                Err(e) => return Err(ExecError::io(format!("unmounting {:?}", self.merged), e.into())),
            }
            self.mounted = false;
        }
        if let Some(empty) = self.empty_lower.take() {
            let _ = fs::remove_dir(&empty);
        }
        Ok(())
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        let _ = self.do_unmount();
    }
}

/// `index=off,redirect_dir=off,metacopy=off`, each only when this kernel's
/// overlayfs knows the option (older ones reject unknown options, and lack
/// the feature anyway).
fn diff_friendly_options() -> Vec<(&'static str, &'static str)> {
    let params = Path::new("/sys/module/overlay/parameters");
    ["index", "redirect_dir", "metacopy"]
        .into_iter()
        .filter(|name| params.join(name).exists())
        .map(|name| (name, "off"))
        .collect()
}

/// Whether this kernel's overlayfs takes `volatile` (Linux 5.10 and later;
/// older ones reject unknown options, so it is only passed when known).
fn volatile_supported() -> bool {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse::<u32>().ok());
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (5, 10)
}

/// Escapes `\`, `,` and `:` for overlayfs' legacy option parser.
fn escape(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | ':') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The messages the kernel queued on an fs context fd ("e overlay: ...").
fn kernel_log(fs_fd: &OwnedFd) -> String {
    let mut lines = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = rustix::io::read(fs_fd, &mut buf) {
        if n == 0 || lines.len() > 16 {
            break;
        }
        lines.push(String::from_utf8_lossy(&buf[..n]).trim_end().to_string());
    }
    lines.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_separators() {
        assert_eq!(escape(Path::new("/a:b,c\\d")), "/a\\:b\\,c\\\\d");
    }
}
