//! `.deb` files: an `ar` archive holding `debian-binary`, `control.tar.*` and `data.tar.*`. The data tarball is
//! unpacked into a root directory with chroot semantics: every path, symlink and hard-link target is resolved
//! inside the root (`..` stops at the root, absolute symlinks restart at the root), entries naming `..` are
//! rejected, and nothing is ever created or followed outside it. Maintainer scripts are never run.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use super::DebianError;

/// One member of an `ar` archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArMember {
    /// Member name (trailing `/` stripped).
    pub name: String,
    /// Byte offset of the data in the archive.
    pub offset: u64,
    /// Data size.
    pub size: u64,
}

/// Lists the members of an `ar` archive (the common format dpkg writes; no GNU/BSD long-name tables needed).
pub fn ar_members(data: &mut (impl Read + io::Seek)) -> Result<Vec<ArMember>, DebianError> {
    let bad = |why: String| DebianError::Deb(why);
    let mut magic = [0u8; 8];
    data.read_exact(&mut magic).map_err(|e| bad(format!("reading ar magic: {e}")))?;
    if &magic != b"!<arch>\n" {
        return Err(bad("not an ar archive".into()));
    }
    let mut out = Vec::new();
    let mut pos = 8u64;
    loop {
        let mut hdr = [0u8; 60];
        match read_full(data, &mut hdr) {
            Ok(0) => break,
            Ok(60) => {}
            Ok(_) => return Err(bad("truncated ar header".into())),
            Err(e) => return Err(bad(format!("reading ar header: {e}"))),
        }
        if &hdr[58..60] != b"`\n" {
            return Err(bad(format!("bad ar member header at offset {pos}")));
        }
        let name = String::from_utf8_lossy(&hdr[0..16]).trim_end().trim_end_matches('/').to_string();
        let size: u64 = std::str::from_utf8(&hdr[48..58])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| bad(format!("bad ar member size for {name:?}")))?;
        let offset = pos + 60;
        out.push(ArMember { name, offset, size });
        let next = offset + size + (size & 1);
        data.seek(io::SeekFrom::Start(next)).map_err(|e| bad(e.to_string()))?;
        pos = next;
    }
    Ok(out)
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

/// A reader for the member `prefix.*` (e.g. `data.tar`), decompressed by its extension.
fn open_member(path: &Path, prefix: &str) -> Result<Box<dyn Read>, DebianError> {
    let mut f = File::open(path).map_err(|e| DebianError::io(path, e))?;
    let members = ar_members(&mut f)?;
    let Some(first) = members.first().filter(|m| m.name == "debian-binary") else {
        return Err(DebianError::Deb(format!("{}: first member is not debian-binary", path.display())));
    };
    let mut format = [0u8; 2];
    io::Seek::seek(&mut f, io::SeekFrom::Start(first.offset)).map_err(|e| DebianError::io(path, e))?;
    if first.size < 2 || f.read_exact(&mut format).is_err() || &format != b"2." {
        return Err(DebianError::Deb(format!("{}: not a format 2.x .deb", path.display())));
    }
    let m = members
        .iter()
        .find(|m| m.name == prefix || m.name.starts_with(&format!("{prefix}.")))
        .ok_or_else(|| DebianError::Deb(format!("{}: no {prefix} member", path.display())))?
        .clone();
    io::Seek::seek(&mut f, io::SeekFrom::Start(m.offset)).map_err(|e| DebianError::io(path, e))?;
    let raw = BufReader::new(f.take(m.size));
    let ext = m.name[prefix.len()..].trim_start_matches('.');
    Ok(match ext {
        "" => Box::new(raw),
        "xz" => Box::new(liblzma::read::XzDecoder::new(raw)),
        "gz" => Box::new(flate2::read::GzDecoder::new(raw)),
        "zst" => Box::new(zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| DebianError::io(path, e))?),
        other => return Err(DebianError::Deb(format!("{}: unsupported compression {other:?}", m.name))),
    })
}

/// The control files of a package (`control`, `md5sums`, `conffiles` …) by name.
pub fn read_control_files(deb: &Path) -> Result<Vec<(String, Vec<u8>)>, DebianError> {
    let reader = open_member(deb, "control.tar")?;
    let mut ar = tar::Archive::new(reader);
    let mut out = Vec::new();
    let tar_err = |e: io::Error| DebianError::Deb(format!("{}: control.tar: {e}", deb.display()));
    for entry in ar.entries().map_err(tar_err)? {
        let mut entry = entry.map_err(tar_err)?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).trim_start_matches("./").to_string();
        if name.contains('/') || entry.size() > 64 << 20 {
            continue;
        }
        let mut buf = Vec::new();
        entry.read_to_end(&mut buf).map_err(tar_err)?;
        out.push((name, buf));
    }
    Ok(out)
}

/// What unpacking wrote.
#[derive(Debug, Default, Clone)]
pub struct UnpackStats {
    /// Regular files written.
    pub files: u64,
    /// Bytes of regular file content.
    pub bytes: u64,
    /// Paths inside the root, as in the archive (`usr/bin/python3.11`), of every non-directory entry.
    pub paths: Vec<String>,
    /// Entries skipped (device nodes, FIFOs) with the reason.
    pub skipped: Vec<String>,
}

/// Unpacks the `data.tar.*` member of `deb` into `root`.
pub fn unpack_data(deb: &Path, root: &Path) -> Result<UnpackStats, DebianError> {
    let reader = open_member(deb, "data.tar")?;
    unpack_tar(reader, root).map_err(|e| match e {
        DebianError::Deb(m) => DebianError::Deb(format!("{}: {m}", deb.display())),
        other => other,
    })
}

/// Unpacks a (decompressed) tar stream into `root` with chroot semantics; see the module docs.
pub fn unpack_tar(reader: impl Read, root: &Path) -> Result<UnpackStats, DebianError> {
    let euid_root = is_root();
    let mut ar = tar::Archive::new(reader);
    let mut stats = UnpackStats::default();
    let tar_err = |e: io::Error| DebianError::Deb(format!("reading data.tar: {e}"));
    for entry in ar.entries().map_err(tar_err)? {
        let mut entry = entry.map_err(tar_err)?;
        let raw = entry.path_bytes().into_owned();
        let comps = archive_components(&raw)?;
        let kind = entry.header().entry_type();
        let header = entry.header();
        let mode = header.mode().map_err(tar_err)? & 0o7777;
        let (uid, gid) = (header.uid().map_err(tar_err)?, header.gid().map_err(tar_err)?);
        let mtime = header.mtime().unwrap_or(0);
        let Some((last, parents)) = comps.split_last() else {
            // "./" itself: the root directory.
            continue;
        };
        let display = String::from_utf8_lossy(&raw).trim_start_matches("./").to_string();
        if kind == tar::EntryType::Directory {
            let dir = resolve_in_root(root, &comps, true)?;
            set_owner(&dir, uid, gid, euid_root)?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).map_err(|e| DebianError::io(&dir, e))?;
            continue;
        }
        let parent = resolve_in_root(root, parents, true)?;
        let target = parent.join(last);
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                remove_existing(&target)?;
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&target)
                    .map_err(|e| DebianError::io(&target, e))?;
                let n = io::copy(&mut entry, &mut f).map_err(tar_err)?;
                set_owner(&target, uid, gid, euid_root)?;
                f.set_permissions(fs::Permissions::from_mode(mode)).map_err(|e| DebianError::io(&target, e))?;
                let _ = f.set_modified(UNIX_EPOCH + Duration::from_secs(mtime));
                stats.files += 1;
                stats.bytes += n;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| DebianError::Deb(format!("symlink {display} has no target")))?
                    .into_owned();
                remove_existing(&target)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&link), &target)
                    .map_err(|e| DebianError::io(&target, e))?;
                if euid_root {
                    std::os::unix::fs::lchown(&target, Some(uid as u32), Some(gid as u32))
                        .map_err(|e| DebianError::io(&target, e))?;
                }
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| DebianError::Deb(format!("hard link {display} has no target")))?
                    .into_owned();
                let lcomps = archive_components(&link)?;
                let Some((llast, lparents)) = lcomps.split_last() else {
                    return Err(DebianError::Deb(format!("hard link {display} points at the root")));
                };
                let src = resolve_in_root(root, lparents, false)?.join(llast);
                let meta = fs::symlink_metadata(&src).map_err(|e| DebianError::io(&src, e))?;
                if !meta.file_type().is_file() {
                    return Err(DebianError::Deb(format!("hard link {display} to non-file {}", src.display())));
                }
                remove_existing(&target)?;
                fs::hard_link(&src, &target).map_err(|e| DebianError::io(&target, e))?;
            }
            other => {
                stats.skipped.push(format!("{display}: {other:?} entries are not created"));
                continue;
            }
        }
        stats.paths.push(display);
    }
    Ok(stats)
}

fn is_root() -> bool {
    // The uid of the process, from /proc (avoids a libc dependency); creation works unprivileged, ownership not.
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

fn set_owner(path: &Path, uid: u64, gid: u64, root: bool) -> Result<(), DebianError> {
    if !root {
        return Ok(());
    }
    std::os::unix::fs::lchown(path, Some(uid as u32), Some(gid as u32)).map_err(|e| DebianError::io(path, e))
}

/// Removes whatever is at `path` (not following a symlink) unless it is a directory; a non-empty directory in the
/// way of a file is an error, as in dpkg.
fn remove_existing(path: &Path) -> Result<(), DebianError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir(path).map_err(|e| DebianError::io(path, e)),
        Ok(_) => fs::remove_file(path).map_err(|e| DebianError::io(path, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DebianError::io(path, e)),
    }
}

/// Splits an archive path into normal components; a leading `/` or `./` is dropped, `..` is rejected.
pub fn archive_components(raw: &[u8]) -> Result<Vec<OsString>, DebianError> {
    let mut out = Vec::new();
    if raw.contains(&0) {
        return Err(DebianError::UnsafePath(String::from_utf8_lossy(raw).into_owned()));
    }
    for c in Path::new(OsStr::from_bytes(raw)).components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(DebianError::UnsafePath(String::from_utf8_lossy(raw).into_owned()));
            }
        }
    }
    Ok(out)
}

/// Resolves `comps` as a directory path inside `root` the way the kernel would after `chroot(root)`: symlinks are
/// followed with absolute targets restarting at `root` and `..` never rising above it (at most 40 links).
/// Missing directories are created (mode 0755) when `create` is set. The result is a real directory under `root`
/// reached without crossing any symlink.
pub fn resolve_in_root(root: &Path, comps: &[OsString], create: bool) -> Result<PathBuf, DebianError> {
    let mut pending: Vec<OsString> = comps.iter().rev().cloned().collect();
    let mut stack: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c.is_empty() || c == "." {
            continue;
        }
        if c == ".." {
            stack.pop();
            continue;
        }
        let mut here = root.to_path_buf();
        here.extend(&stack);
        here.push(&c);
        match fs::symlink_metadata(&here) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    return Err(DebianError::UnsafePath(format!("too many symlinks resolving {}", here.display())));
                }
                let target = fs::read_link(&here).map_err(|e| DebianError::io(&here, e))?;
                if target.is_absolute() {
                    stack.clear();
                }
                for t in target.components().rev() {
                    match t {
                        Component::Normal(n) => pending.push(n.to_os_string()),
                        Component::ParentDir => pending.push(OsString::from("..")),
                        _ => {}
                    }
                }
            }
            Ok(m) if m.is_dir() => stack.push(c),
            Ok(_) => {
                return Err(DebianError::Deb(format!("{} is not a directory", here.display())));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                fs::create_dir(&here).map_err(|e| DebianError::io(&here, e))?;
                fs::set_permissions(&here, fs::Permissions::from_mode(0o755)).map_err(|e| DebianError::io(&here, e))?;
                stack.push(c);
            }
            Err(e) => return Err(DebianError::io(&here, e)),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&stack);
    Ok(out)
}
