//! Small file system helpers shared by the snapshotters and the runner:
//! `statx` metadata, xattrs, overlay whiteout/opaque markers, copying one
//! entry with its metadata, and resolving a path inside a rootfs the way the
//! container will see it (symlinks clamped to the rootfs).

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, lchown};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, StatxFlags, Timespec, Timestamps};

/// The xattr overlayfs uses to mark an opaque directory (rootful mounts).
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Kind of a file system entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    CharDev,
    BlockDev,
    Fifo,
    Socket,
}

impl Kind {
    fn from_mode(mode: u32) -> Kind {
        match FileType::from_raw_mode(mode) {
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            FileType::CharacterDevice => Kind::CharDev,
            FileType::BlockDevice => Kind::BlockDev,
            FileType::Fifo => Kind::Fifo,
            FileType::Socket => Kind::Socket,
            _ => Kind::File,
        }
    }
}

/// A timestamp as (seconds, nanoseconds).
pub(crate) type Time = (i64, u32);

/// What `statx` says about one entry (never following a final symlink).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meta {
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky (`mode & 0o7777`).
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub nlink: u32,
    pub ino: u64,
    pub dev: (u32, u32),
    pub rdev: (u32, u32),
    pub atime: Time,
    pub mtime: Time,
    pub ctime: Time,
    /// Birth time, when the file system reports one.
    pub btime: Option<Time>,
}

impl Meta {
    /// An overlayfs whiteout: a character device 0:0.
    pub fn is_whiteout(&self) -> bool {
        self.kind == Kind::CharDev && self.rdev == (0, 0)
    }

    /// Same object (not merely same content): inode, and birth time when known.
    pub fn same_identity(&self, other: &Meta) -> bool {
        self.ino == other.ino && self.dev == other.dev && self.btime == other.btime
    }

    /// Same type, permissions and owner.
    pub fn same_mode_owner(&self, other: &Meta) -> bool {
        self.kind == other.kind && self.perm == other.perm && self.uid == other.uid && self.gid == other.gid
    }
}

/// `lstat` via `statx`; `Ok(None)` when the path does not exist.
pub(crate) fn lstat(path: &Path) -> io::Result<Option<Meta>> {
    let mask = StatxFlags::BASIC_STATS | StatxFlags::BTIME;
    match rustix::fs::statx(CWD, path, AtFlags::SYMLINK_NOFOLLOW, mask) {
        Ok(s) => {
            let t = |ts: rustix::fs::StatxTimestamp| (ts.tv_sec, ts.tv_nsec);
            let mode = u32::from(s.stx_mode);
            Ok(Some(Meta {
                kind: Kind::from_mode(mode),
                perm: mode & 0o7777,
                uid: s.stx_uid,
                gid: s.stx_gid,
                size: s.stx_size,
                nlink: s.stx_nlink,
                ino: s.stx_ino,
                dev: (s.stx_dev_major, s.stx_dev_minor),
                rdev: (s.stx_rdev_major, s.stx_rdev_minor),
                atime: t(s.stx_atime),
                mtime: t(s.stx_mtime),
                ctime: t(s.stx_ctime),
                btime: (s.stx_mask & StatxFlags::BTIME.bits() != 0).then(|| t(s.stx_btime)),
            }))
        }
        Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Like [`lstat`] but a missing path is an error.
pub(crate) fn lstat_existing(path: &Path) -> io::Result<Meta> {
    lstat(path)?.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
}

/// Whether an xattr belongs to overlayfs itself (never copied, never compared).
pub(crate) fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// All xattrs of `path` (not following symlinks), sorted by name, without
/// overlayfs' own. File systems without xattr support give an empty list.
pub(crate) fn xattrs(path: &Path) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut names = Vec::new();
    loop {
        let n = match rustix::fs::llistxattr_query(path) {
            Ok(n) => n,
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Ok(Vec::new());
        }
        names.resize(n, 0u8);
        match rustix::fs::llistxattr(path, &mut names[..]) {
            Ok(got) => {
                names.truncate(got);
                break;
            }
            Err(rustix::io::Errno::RANGE) => continue, // grew meanwhile
            Err(e) => return Err(e.into()),
        }
    }
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if is_overlay_xattr(name) {
            continue;
        }
        let name_os = OsStr::from_bytes(name);
        if let Some(v) = get_xattr(path, name_os)? {
            out.push((name.to_vec(), v));
        }
    }
    out.sort();
    Ok(out)
}

/// One xattr value; `Ok(None)` when absent or unsupported.
pub(crate) fn get_xattr(path: &Path, name: &OsStr) -> io::Result<Option<Vec<u8>>> {
    loop {
        let n = match rustix::fs::lgetxattr_query(path, name) {
            Ok(n) => n,
            Err(rustix::io::Errno::NODATA) | Err(rustix::io::Errno::NOTSUP) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut v = vec![0u8; n];
        if n == 0 {
            return Ok(Some(v));
        }
        match rustix::fs::lgetxattr(path, name, &mut v[..]) {
            Ok(got) => {
                v.truncate(got);
                return Ok(Some(v));
            }
            Err(rustix::io::Errno::RANGE) => continue,
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether `path` is a directory marked opaque (`trusted.overlay.opaque=y`).
pub(crate) fn is_opaque(path: &Path) -> io::Result<bool> {
    Ok(get_xattr(path, OsStr::new(OVERLAY_OPAQUE_XATTR))?.as_deref() == Some(b"y"))
}

/// Marks a directory opaque, the way overlayfs does.
pub(crate) fn set_opaque(path: &Path) -> io::Result<()> {
    rustix::fs::lsetxattr(path, OVERLAY_OPAQUE_XATTR, b"y", rustix::fs::XattrFlags::empty())?;
    Ok(())
}

/// Creates an overlayfs whiteout (character device 0:0, mode 0) at `path`.
pub(crate) fn make_whiteout(path: &Path) -> io::Result<()> {
    rustix::fs::mknodat(CWD, path, FileType::CharacterDevice, Mode::empty(), rustix::fs::makedev(0, 0))?;
    Ok(())
}

fn timespec(t: Time) -> Timespec {
    Timespec { tv_sec: t.0, tv_nsec: i64::from(t.1) }
}

/// Sets atime and mtime without following a final symlink.
pub(crate) fn set_times(path: &Path, atime: Time, mtime: Time) -> io::Result<()> {
    let ts = Timestamps { last_access: timespec(atime), last_modification: timespec(mtime) };
    rustix::fs::utimensat(CWD, path, &ts, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// Copies owner, permissions, xattrs (not overlayfs' own) and times from
/// `meta`/`src` onto `dst`. Times last, since the others touch ctime only.
pub(crate) fn copy_metadata(src: &Path, meta: &Meta, dst: &Path) -> io::Result<()> {
    lchown(dst, Some(meta.uid), Some(meta.gid))?;
    if meta.kind != Kind::Symlink {
        // chown clears setuid/setgid bits: set the mode after it.
        rustix::fs::chmodat(CWD, dst, Mode::from_raw_mode(meta.perm), AtFlags::empty())?;
    }
    for (name, value) in xattrs(src)? {
        match rustix::fs::lsetxattr(dst, OsStr::from_bytes(&name), &value, rustix::fs::XattrFlags::empty()) {
            Ok(()) => {}
            // user.* xattrs cannot be set on symlinks; skip what the target refuses.
            Err(rustix::io::Errno::PERM) | Err(rustix::io::Errno::NOTSUP) if meta.kind == Kind::Symlink => {}
            Err(e) => return Err(e.into()),
        }
    }
    set_times(dst, meta.atime, meta.mtime)
}

/// Creates `dst` as a copy of the non-directory entry `src` (content, link
/// target or device number), without metadata. `dst` must not exist.
pub(crate) fn copy_node(src: &Path, meta: &Meta, dst: &Path) -> io::Result<()> {
    match meta.kind {
        Kind::File => {
            fs::copy(src, dst)?;
        }
        Kind::Symlink => {
            let target = fs::read_link(src)?;
            std::os::unix::fs::symlink(target, dst)?;
        }
        Kind::CharDev | Kind::BlockDev | Kind::Fifo | Kind::Socket => {
            let ft = match meta.kind {
                Kind::CharDev => FileType::CharacterDevice,
                Kind::BlockDev => FileType::BlockDevice,
                Kind::Fifo => FileType::Fifo,
                _ => FileType::Socket,
            };
            let dev = rustix::fs::makedev(meta.rdev.0, meta.rdev.1);
            rustix::fs::mknodat(CWD, dst, ft, Mode::from_raw_mode(meta.perm), dev)?;
        }
        Kind::Dir => return Err(io::Error::other("copy_node called on a directory")),
    }
    Ok(())
}

/// Removes whatever is at `path` (recursively for directories); a missing
/// path is fine.
pub(crate) fn remove_all(path: &Path) -> io::Result<()> {
    match lstat(path)? {
        None => Ok(()),
        Some(m) if m.kind == Kind::Dir => fs::remove_dir_all(path),
        Some(_) => fs::remove_file(path),
    }
}

/// Sorted names of the entries of a directory.
pub(crate) fn read_dir_sorted(dir: &Path) -> io::Result<Vec<std::ffi::OsString>> {
    let mut names = Vec::new();
    for e in fs::read_dir(dir)? {
        names.push(e?.file_name());
    }
    names.sort();
    Ok(names)
}

/// Whether two regular files have the same bytes.
pub(crate) fn same_content(a: &Path, b: &Path) -> io::Result<bool> {
    use std::io::Read;
    let (fa, fb) = (fs::File::open(a)?, fs::File::open(b)?);
    if fa.metadata()?.size() != fb.metadata()?.size() {
        return Ok(false);
    }
    let (mut ra, mut rb) = (io::BufReader::with_capacity(1 << 16, fa), io::BufReader::with_capacity(1 << 16, fb));
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let na = read_full(&mut ra, &mut ba)?;
        let nb = read_full(&mut rb, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }

    fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
}

/// Resolves `path` (absolute as the container sees it) inside `root` the way
/// the container would: `..` never leaves the root, and symlinks (absolute
/// ones relative to the root) are followed, at most 255 of them. Missing
/// components are appended as they are. Returns the path relative to the
/// root, without a leading `/` (empty for the root itself).
pub(crate) fn resolve_in_root(root: &Path, path: &str) -> io::Result<PathBuf> {
    let mut resolved = PathBuf::new();
    // Components still to walk, in reverse order (a stack).
    let mut todo: Vec<PathBuf> = Vec::new();
    push_components(&mut todo, Path::new(path));
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c.as_os_str() == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&c);
        match lstat(&root.join(&candidate))? {
            Some(m) if m.kind == Kind::Symlink => {
                links += 1;
                if links > 255 {
                    return Err(io::Error::other(format!("too many levels of symbolic links resolving {path}")));
                }
                let target = fs::read_link(root.join(&candidate))?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                push_components(&mut todo, &target);
            }
            _ => resolved = candidate,
        }
    }
    Ok(resolved)
}

fn push_components(stack: &mut Vec<PathBuf>, p: &Path) {
    let comps: Vec<PathBuf> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(PathBuf::from(n)),
            Component::ParentDir => Some(PathBuf::from("..")),
            _ => None,
        })
        .collect();
    stack.extend(comps.into_iter().rev());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_clamps_to_root() {
        let dir = std::env::temp_dir().join(format!("distill-resolve-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("etc")).unwrap();
        fs::create_dir_all(dir.join("run/systemd")).unwrap();
        std::os::unix::fs::symlink("/run/systemd/stub", dir.join("etc/resolv.conf")).unwrap();
        std::os::unix::fs::symlink("../../../../..", dir.join("etc/up")).unwrap();
        std::os::unix::fs::symlink("loop", dir.join("etc/loop")).unwrap();
        assert_eq!(resolve_in_root(&dir, "/etc/resolv.conf").unwrap(), PathBuf::from("run/systemd/stub"));
        assert_eq!(resolve_in_root(&dir, "/etc/up/passwd").unwrap(), PathBuf::from("passwd"));
        assert_eq!(resolve_in_root(&dir, "/../../etc/hosts").unwrap(), PathBuf::from("etc/hosts"));
        assert_eq!(resolve_in_root(&dir, "/").unwrap(), PathBuf::new());
        assert!(resolve_in_root(&dir, "/etc/loop").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
