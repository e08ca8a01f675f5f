//! The few system calls std lacks: times without following links, xattrs,
//! mknod.

use std::fs::{self, Metadata};
use std::io;
use std::path::Path;

use rustix::fs::{AtFlags, CWD, FileType, Mode, Timespec, Timestamps, XattrFlags};

fn errno(e: rustix::io::Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

pub(crate) fn lstat(p: &Path) -> io::Result<Option<Metadata>> {
    match fs::symlink_metadata(p) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes `p` (described by `m`), a whole tree for a directory.
pub(crate) fn remove_all(p: &Path, m: &Metadata) -> io::Result<()> {
    if m.is_dir() { fs::remove_dir_all(p) } else { fs::remove_file(p) }
}

/// Sets atime and mtime to `mtime_ns` (nanoseconds since the epoch)
/// without following a final symlink.
pub(crate) fn set_times(p: &Path, mtime_ns: i64) -> io::Result<()> {
    let t = Timespec { tv_sec: mtime_ns.div_euclid(1_000_000_000), tv_nsec: mtime_ns.rem_euclid(1_000_000_000) as _ };
    let ts = Timestamps { last_access: t, last_modification: t };
    rustix::fs::utimensat(CWD, p, &ts, AtFlags::SYMLINK_NOFOLLOW).map_err(errno)
}

/// `mknod` for devices and fifos (`perm` is masked with 0o7777; the caller
/// sets the final mode after `chown`).
pub(crate) fn mknod(p: &Path, kind: FileType, perm: u32, dev: u64) -> io::Result<()> {
    rustix::fs::mknodat(CWD, p, kind, Mode::from_raw_mode(perm & 0o7777), dev).map_err(errno)
}

/// Whether an xattr is overlayfs' own bookkeeping, never copied.
fn overlay_private(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// All xattrs of `p` (not following a final symlink). A filesystem
/// without xattrs, or one we may not read, gives an empty list.
pub(crate) fn list_xattrs(p: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut names = vec![0u8; 4096];
    let n = loop {
        match rustix::fs::llistxattr(p, &mut names[..]) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) if names.len() < (1 << 20) => {
                let len = names.len() * 4;
                names.resize(len, 0);
            }
            Err(_) => return Vec::new(),
        }
    };
    names.truncate(n);
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if overlay_private(name) {
            continue;
        }
        let mut value = vec![0u8; 256];
        loop {
            match rustix::fs::lgetxattr(p, name, &mut value[..]) {
                Ok(n) => {
                    value.truncate(n);
                    out.push((name.to_vec(), value));
                    break;
                }
                Err(rustix::io::Errno::RANGE) if value.len() < (1 << 20) => {
                    let len = value.len() * 4;
                    value.resize(len, 0);
                }
                Err(_) => break,
            }
        }
    }
    out
}

/// Sets `xattrs` on `p`, skipping overlayfs' own and ignoring failures
/// (unsupported filesystem, not permitted), as BuildKit does for COPY (its
/// xattr error handler only logs).
pub(crate) fn set_xattrs_best_effort(p: &Path, xattrs: &[(Vec<u8>, Vec<u8>)]) {
    for (k, v) in xattrs {
        if overlay_private(k) {
            continue;
        }
        let _ = rustix::fs::lsetxattr(p, k.as_slice(), v, XattrFlags::empty());
    }
}
