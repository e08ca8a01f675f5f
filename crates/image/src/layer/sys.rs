//! Thin wrappers over the syscalls std does not have (xattrs, mknod,
//! utimensat without following links).

use std::io;
use std::path::Path;

use rustix::fs::{AtFlags, CWD, FileType, Mode, Timespec, Timestamps, XattrFlags};

fn errno(e: rustix::io::Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

pub(crate) fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Whether an xattr error means "this filesystem or this caller cannot".
pub(crate) fn xattr_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(code) if code == rustix::io::Errno::OPNOTSUPP.raw_os_error()
            || code == rustix::io::Errno::PERM.raw_os_error()
            || code == rustix::io::Errno::ACCESS.raw_os_error()
    )
}

/// All xattrs of `path` (not following a final symlink), sorted by name.
/// A filesystem without xattr support gives an empty list.
pub(crate) fn list_xattrs(path: &Path) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut names = Vec::new();
    for _ in 0..8 {
        let size = match rustix::fs::llistxattr_query(path) {
            Ok(s) => s,
            Err(e) if e == rustix::io::Errno::OPNOTSUPP => return Ok(Vec::new()),
            Err(e) => return Err(errno(e)),
        };
        if size == 0 {
            return Ok(Vec::new());
        }
        names.resize(size, 0u8);
        match rustix::fs::llistxattr(path, &mut names[..]) {
            Ok(n) => {
                names.truncate(n);
                break;
            }
            Err(e) if e == rustix::io::Errno::RANGE => continue,
            Err(e) => return Err(errno(e)),
        }
    }
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if let Some(value) = get_xattr(path, name)? {
            out.push((name.to_vec(), value));
        }
    }
    out.sort();
    Ok(out)
}

/// One xattr; `None` when absent.
pub(crate) fn get_xattr(path: &Path, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let mut value = Vec::new();
    for _ in 0..8 {
        let size = match rustix::fs::lgetxattr_query(path, name) {
            Ok(s) => s,
            Err(e) if e == rustix::io::Errno::NODATA || e == rustix::io::Errno::OPNOTSUPP => return Ok(None),
            Err(e) => return Err(errno(e)),
        };
        if size == 0 {
            return Ok(Some(Vec::new()));
        }
        value.resize(size, 0u8);
        match rustix::fs::lgetxattr(path, name, &mut value[..]) {
            Ok(n) => {
                value.truncate(n);
                return Ok(Some(value));
            }
            Err(e) if e == rustix::io::Errno::RANGE => continue,
            Err(e) if e == rustix::io::Errno::NODATA => return Ok(None),
            Err(e) => return Err(errno(e)),
        }
    }
    Err(io::Error::other("xattr keeps changing size"))
}

pub(crate) fn set_xattr(path: &Path, name: &[u8], value: &[u8]) -> io::Result<()> {
    rustix::fs::lsetxattr(path, name, value, XattrFlags::empty()).map_err(errno)
}

/// `mknod` for character/block devices and fifos.
pub(crate) fn mknod(path: &Path, kind: FileType, perm: u32, major: u32, minor: u32) -> io::Result<()> {
    rustix::fs::mknodat(CWD, path, kind, Mode::from_raw_mode(perm & 0o7777), rustix::fs::makedev(major, minor))
        .map_err(errno)
}

pub(crate) fn char_device() -> FileType {
    FileType::CharacterDevice
}

pub(crate) fn block_device() -> FileType {
    FileType::BlockDevice
}

pub(crate) fn fifo() -> FileType {
    FileType::Fifo
}

/// Sets atime and mtime to `mtime` without following a final symlink.
pub(crate) fn set_mtime_nofollow(path: &Path, mtime: i64) -> io::Result<()> {
    let t = Timespec { tv_sec: mtime, tv_nsec: 0 };
    let ts = Timestamps { last_access: t, last_modification: t };
    rustix::fs::utimensat(CWD, path, &ts, AtFlags::SYMLINK_NOFOLLOW).map_err(errno)
}

pub(crate) fn dev_major(dev: u64) -> u32 {
    rustix::fs::major(dev)
}

pub(crate) fn dev_minor(dev: u64) -> u32 {
    rustix::fs::minor(dev)
}
