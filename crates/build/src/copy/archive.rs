//! ADD's local archives: detection by content and safe extraction.
//!
//! Follows BuildKit (`solver/llbsolver/file/unpack.go`, `unpack_root.go`):
//! - a source is an archive when it is a regular file whose content, after
//!   an optional gzip, bzip2, xz or zstd layer (detected by magic bytes,
//!   never by the name), starts with a valid tar header. An empty tar or a
//!   compressed non-tar file is copied as a plain file;
//! - it is extracted into the destination as written (created like a
//!   directory, owned by the `--chown` owner), whether or not it ends in `/`;
//! - entry names are cleaned; a name that climbs out of the extraction
//!   directory, a relative symlink that leads out of it when followed, and a
//!   hard link to something outside it are errors; absolute symlink targets
//!   are resolved from the extraction directory when followed;
//! - `.wh.*` names are ordinary files: ADD does not apply whiteouts;
//! - owners come from the archive unless `--chown` is given (BuildKit
//!   v0.23+ applies `--chown` to extracted entries); directories created
//!   implicitly for an entry are 0755 root:root; modes and mtimes come from
//!   the archive (`--chmod` is not applied to extracted entries, as in
//!   BuildKit, which passes no mode to the unpacker);
//! - xattrs (`SCHILY.xattr.*`) are restored best effort (overlayfs' own
//!   `trusted.overlay.*`/`user.overlay.*` never);
//! - an existing non-directory is replaced, an existing directory is kept
//!   (merged) when the entry is a directory and removed otherwise.
//!
//! Devices and fifos are created (we run as root); BuildKit's newest
//! unpacker rejects devices, its older one (and the classic builder)
//! created them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use distill_image::layer::{EntryKind, TarEntry, TarReader, decompress};

use super::CopyStats;
use super::error::{CopyError, Result};
use super::root::{Escape, Root};
use super::sys;

/// Opens `path` and wraps it in the decompressor its magic bytes call for.
fn open_decompressed(path: &Path) -> io::Result<Box<dyn Read>> {
    let mut f = File::open(path)?;
    let mut magic = [0u8; 6];
    let mut n = 0;
    while n < magic.len() {
        match f.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = io::Cursor::new(magic[..n].to_vec()).chain(f);
    let m = &magic[..n];
    Ok(if m.starts_with(b"BZh") {
        Box::new(bzip2::read::MultiBzDecoder::new(BufReader::with_capacity(256 * 1024, head)))
    } else if m.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Box::new(liblzma::read::XzDecoder::new_multi_decoder(BufReader::with_capacity(256 * 1024, head)))
    } else {
        // gzip, zstd or plain.
        Box::new(decompress(head).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?)
    })
}

/// Whether `path` (a regular file) is a tar archive, possibly compressed.
pub(crate) fn is_archive(path: &Path) -> bool {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => {}
        _ => return false,
    }
    let Ok(r) = open_decompressed(path) else {
        return false;
    };
    matches!(TarReader::new(r).next_entry(), Ok(Some(_)))
}

/// Extracts the archive at `src` into the directory `into` (resolved,
/// existing). `owner` overrides the archive's owners.
pub(crate) fn extract(src: &Path, into: &Root, owner: Option<(u32, u32)>, stats: &mut CopyStats) -> Result<()> {
    let r = open_decompressed(src).map_err(|e| CopyError::io("open", src.display().to_string(), e))?;
    let mut tr = TarReader::new(r);
    let mut ex = Extractor { root: into.clone(), owner, dirs: Vec::new(), buf: vec![0u8; 256 * 1024] };
    while let Some(e) = tr.next_entry().map_err(|e| CopyError::Archive { reason: e.to_string() })? {
        ex.entry(&e, &mut tr, stats)?;
    }
    // Directory times last, deepest (latest) first, after their contents.
    for (path, shown, mtime) in ex.dirs.iter().rev() {
        if let Ok(m) = fs::symlink_metadata(path)
            && m.is_dir()
        {
            sys::set_times(path, *mtime).map_err(|e| CopyError::io("utimensat", shown.clone(), e))?;
        }
    }
    Ok(())
}

struct Extractor {
    root: Root,
    owner: Option<(u32, u32)>,
    /// Directories extracted: (path, shown, mtime ns).
    dirs: Vec<(PathBuf, String, i64)>,
    buf: Vec<u8>,
}

/// Go's `path.Clean` of `name` with leading slashes dropped; `None` for
/// the extraction directory itself, an error when it climbs out.
fn clean_name(name: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut out: Vec<&[u8]> = Vec::new();
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err(CopyError::UnsafeArchiveEntry {
                        entry: String::from_utf8_lossy(name).into_owned(),
                        reason: "the path is outside the extraction directory".to_string(),
                    });
                }
            }
            _ => out.push(c),
        }
    }
    Ok(if out.is_empty() { None } else { Some(out.join(&b'/')) })
}

impl Extractor {
    fn ids(&self, e: &TarEntry) -> Result<(u32, u32)> {
        if let Some(o) = self.owner {
            return Ok(o);
        }
        match (u32::try_from(e.uid), u32::try_from(e.gid)) {
            (Ok(u), Ok(g)) => Ok((u, g)),
            _ => Err(CopyError::UnsafeArchiveEntry {
                entry: e.display_path(),
                reason: format!("uid/gid {}:{} out of range", e.uid, e.gid),
            }),
        }
    }

    fn entry<R: Read>(&mut self, e: &TarEntry, tr: &mut TarReader<R>, stats: &mut CopyStats) -> Result<()> {
        let Some(name) = clean_name(&e.path)? else {
            // `./`: the extraction directory's own metadata is left alone.
            return Ok(());
        };
        let unsafe_entry = |reason: String| CopyError::UnsafeArchiveEntry { entry: e.display_path(), reason };
        // Where the entry goes: its parent resolved inside the extraction
        // directory (created 0755 as needed), the last name kept.
        let Some((parent, base)) =
            self.root.resolve_parent(&name, Some(Default::default())).map_err(|err| match err {
                CopyError::UnsafeArchiveEntry { reason, .. } => unsafe_entry(reason),
                other => other,
            })?
        else {
            return Ok(());
        };
        let (target, rel) = self.root.join(&parent.rel, &base);
        let shown = self.root.show(&rel);
        let existing = sys::lstat(&target).map_err(|err| CopyError::io("lstat", shown.clone(), err))?;
        // A hard link's target is resolved before anything is removed.
        let link_src = if e.kind == EntryKind::HardLink {
            let Some(lname) = clean_name(&e.link_name)? else {
                return Err(unsafe_entry("a hard link to the extraction directory itself".to_string()));
            };
            let r = self.root.resolve(&lname, false, None).map_err(|err| match err {
                CopyError::UnsafeArchiveEntry { reason, .. } => unsafe_entry(format!("hard link target: {reason}")),
                other => other,
            })?;
            match &r.meta {
                None => {
                    return Err(unsafe_entry(format!(
                        "hard link target {:?} does not exist in the extraction directory",
                        String::from_utf8_lossy(&e.link_name)
                    )));
                }
                Some(m) if m.is_dir() => {
                    return Err(unsafe_entry(format!(
                        "hard link target {:?} is a directory",
                        String::from_utf8_lossy(&e.link_name)
                    )));
                }
                Some(_) => Some(r.path),
            }
        } else {
            None
        };
        if let Some(m) = &existing
            && !(m.is_dir() && e.kind == EntryKind::Directory)
        {
            sys::remove_all(&target, m).map_err(|err| CopyError::io("remove", shown.clone(), err))?;
        }
        let (uid, gid) = self.ids(e)?;
        let mtime = e.mtime.saturating_mul(1_000_000_000);
        match e.kind {
            EntryKind::Regular => {
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                    .open(&target)
                    .map_err(|err| CopyError::io("create", shown.clone(), err))?;
                let mut data = tr.data();
                loop {
                    let n = match data.read(&mut self.buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                        Err(err) => {
                            return Err(CopyError::Archive { reason: format!("entry {:?}: {err}", e.display_path()) });
                        }
                    };
                    f.write_all(&self.buf[..n]).map_err(|err| CopyError::io("write", shown.clone(), err))?;
                    stats.bytes += n as u64;
                }
                std::os::unix::fs::fchown(&f, Some(uid), Some(gid))
                    .map_err(|err| CopyError::io("fchown", shown.clone(), err))?;
                f.set_permissions(fs::Permissions::from_mode(e.mode))
                    .map_err(|err| CopyError::io("chmod", shown.clone(), err))?;
                drop(f);
                sys::set_xattrs_best_effort(&target, &e.xattrs);
                sys::set_times(&target, mtime).map_err(|err| CopyError::io("utimensat", shown.clone(), err))?;
                stats.files += 1;
            }
            EntryKind::Directory => {
                if existing.as_ref().is_none_or(|m| !m.is_dir()) {
                    fs::create_dir(&target).map_err(|err| CopyError::io("mkdir", shown.clone(), err))?;
                }
                std::os::unix::fs::lchown(&target, Some(uid), Some(gid))
                    .map_err(|err| CopyError::io("lchown", shown.clone(), err))?;
                fs::set_permissions(&target, fs::Permissions::from_mode(e.mode))
                    .map_err(|err| CopyError::io("chmod", shown.clone(), err))?;
                sys::set_xattrs_best_effort(&target, &e.xattrs);
                self.dirs.push((target, shown, mtime));
                stats.dirs += 1;
            }
            EntryKind::Symlink => {
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&e.link_name), &target)
                    .map_err(|err| CopyError::io("symlink", shown.clone(), err))?;
                std::os::unix::fs::lchown(&target, Some(uid), Some(gid))
                    .map_err(|err| CopyError::io("lchown", shown.clone(), err))?;
                sys::set_times(&target, mtime).map_err(|err| CopyError::io("utimensat", shown.clone(), err))?;
                stats.symlinks += 1;
            }
            EntryKind::HardLink => {
                let src = link_src.unwrap_or_default();
                fs::hard_link(&src, &target).map_err(|err| CopyError::io("link", shown.clone(), err))?;
                stats.files += 1;
            }
            EntryKind::CharDevice | EntryKind::BlockDevice | EntryKind::Fifo => {
                let kind = match e.kind {
                    EntryKind::CharDevice => rustix::fs::FileType::CharacterDevice,
                    EntryKind::BlockDevice => rustix::fs::FileType::BlockDevice,
                    _ => rustix::fs::FileType::Fifo,
                };
                sys::mknod(&target, kind, e.mode, rustix::fs::makedev(e.dev_major, e.dev_minor))
                    .map_err(|err| CopyError::io("mknod", shown.clone(), err))?;
                std::os::unix::fs::lchown(&target, Some(uid), Some(gid))
                    .map_err(|err| CopyError::io("lchown", shown.clone(), err))?;
                fs::set_permissions(&target, fs::Permissions::from_mode(e.mode))
                    .map_err(|err| CopyError::io("chmod", shown.clone(), err))?;
                sys::set_times(&target, mtime).map_err(|err| CopyError::io("utimensat", shown.clone(), err))?;
                stats.other += 1;
            }
            EntryKind::Other(t) => {
                return Err(unsafe_entry(format!("unsupported tar entry type {:?}", char::from(t))));
            }
        }
        Ok(())
    }
}

/// The extraction directory as a [`Root`] whose escapes are errors.
pub(crate) fn extraction_root(dir: PathBuf, shown: String) -> Root {
    Root::new(dir, Escape::Error, shown)
}
