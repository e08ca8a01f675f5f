//! Writing layers: a directory tree (or overlayfs upper dir) to a
//! deterministic tar, or an existing tar stream validated and recompressed;
//! either way in one pass through sha256 (diff_id), the compressor and
//! sha256 again (blob digest).

use std::collections::HashMap;
use std::fs::{self, Metadata, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::compress::{Codec, CompressWriter, Compression, decompress};
use super::reader::TarReader;
use super::scan::Validator;
use super::tarfmt::{self, Header};
use super::{
    LayerError, OVERLAY_OPAQUE_XATTR, OVERLAY_USER_OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX, lossy, sys,
};
use crate::digest::{Digest, Hasher, HashingWriter};

/// How to write a layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    pub compression: Compression,
    /// The source is an overlayfs upper dir: char devices 0:0 become
    /// `.wh.<name>` whiteouts, opaque directories get `.wh..wh..opq`, and
    /// `user.overlay.*` xattrs are dropped (`trusted.overlay.*` always are).
    pub overlay_upper: bool,
    /// Clamp every mtime to at most this (SOURCE_DATE_EPOCH).
    pub source_date_epoch: Option<i64>,
    /// Compression threads; 0 means all cores. Output does not depend on it.
    pub threads: usize,
}

/// What a written layer is: the descriptor fields an image manifest and
/// config need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerDescriptor {
    /// sha256 of the uncompressed tar (goes into the image config's rootfs).
    pub diff_id: Digest,
    /// sha256 of the blob as written (goes into the manifest).
    pub digest: Digest,
    /// Size of the blob as written.
    pub size: u64,
    /// Size of the uncompressed tar.
    pub uncompressed_size: u64,
    pub media_type: String,
}

type Chain<W> = BufWriter<HashingWriter<CompressWriter<BlobHash<W>>>>;

/// `tar → sha256 → compressor → sha256 + count → out`.
struct Pipeline<W: Write> {
    w: Chain<W>,
    media_type: &'static str,
}

/// Counts the blob's bytes and hashes them, unless the blob is the tar
/// itself (no compression): then its digest is the diff_id, and a second
/// sha256 over the same bytes would only cost time (~0.2 s per 350 MB).
struct BlobHash<W> {
    inner: W,
    hasher: Option<Hasher>,
    len: u64,
}

impl<W: Write> Write for BlobHash<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> Pipeline<W> {
    fn new(out: W, opts: &WriteOptions) -> Result<Self, LayerError> {
        let hasher = (opts.compression != Compression::None).then(Hasher::new);
        let blob = BlobHash { inner: out, hasher, len: 0 };
        let enc = CompressWriter::new(blob, opts.compression, opts.threads)?;
        let w = BufWriter::with_capacity(256 * 1024, HashingWriter::new(enc));
        Ok(Pipeline { w, media_type: opts.compression.media_type() })
    }

    fn finish(self) -> Result<LayerDescriptor, LayerError> {
        let out_err = |e: io::Error| LayerError::io("writing the layer", e);
        let diff = self.w.into_inner().map_err(|e| out_err(e.into_error()))?;
        let (enc, diff_id, uncompressed_size) = diff.finish();
        let blob = enc.finish().map_err(out_err)?;
        let digest = blob.hasher.map_or(diff_id, Hasher::finish);
        Ok(LayerDescriptor {
            diff_id,
            digest,
            size: blob.len,
            uncompressed_size,
            media_type: self.media_type.to_string(),
        })
    }
}

struct Node {
    /// Tar name without a trailing slash.
    name: Vec<u8>,
    src: PathBuf,
    meta: Metadata,
    whiteout: bool,
}

/// Writes the tree under `root` (not `root` itself) as a layer into `out`.
///
/// Entries are sorted by name bytes (so parents come before children);
/// headers keep mode (with setuid/setgid/sticky), uid, gid and mtime
/// (clamped to `source_date_epoch`), with empty uname/gname and no
/// atime/ctime; hard links are found by (dev, inode); xattrs go into
/// `SCHILY.xattr.*` records (except `trusted.overlay.*`, and
/// `security.selinux`, a host label); sockets are skipped. The same tree
/// always gives the same bytes.
pub fn write_layer_from_dir(root: &Path, opts: &WriteOptions, out: impl Write) -> Result<LayerDescriptor, LayerError> {
    let meta = fs::symlink_metadata(root).map_err(|e| LayerError::io(format!("{}", root.display()), e))?;
    if !meta.is_dir() {
        return Err(LayerError::Options(format!("{} is not a directory", root.display())));
    }
    let nodes = collect(root, opts.overlay_upper)?;
    let mut pipe = Pipeline::new(out, opts)?;
    write_nodes(&nodes, opts, &mut pipe.w)?;
    // End of archive: two zero blocks.
    pipe.w.write_all(&[0u8; 1024]).map_err(|e| LayerError::io("writing the layer", e))?;
    pipe.finish()
}

/// The tar [`write_layer_from_dir`] writes, neither hashed nor compressed,
/// for an output that hashes what it stores anyway (the store's blob sink):
/// an uncompressed layer's diff_id and digest are both the sha256 of these
/// bytes, and a second pass over 350 MB costs ~0.2 s. Returns the tar's
/// size. `opts.compression` must be `None`.
pub fn write_tar_from_dir(root: &Path, opts: &WriteOptions, out: impl Write) -> Result<u64, LayerError> {
    if opts.compression != Compression::None {
        return Err(LayerError::Options("write_tar_from_dir writes uncompressed tars only".into()));
    }
    let meta = fs::symlink_metadata(root).map_err(|e| LayerError::io(format!("{}", root.display()), e))?;
    if !meta.is_dir() {
        return Err(LayerError::Options(format!("{} is not a directory", root.display())));
    }
    let nodes = collect(root, opts.overlay_upper)?;
    let mut w = BufWriter::with_capacity(256 * 1024, Counter { inner: out, len: 0 });
    write_nodes(&nodes, opts, &mut w)?;
    let out_err = |e: io::Error| LayerError::io("writing the layer", e);
    w.write_all(&[0u8; 1024]).map_err(out_err)?;
    let counter = w.into_inner().map_err(|e| out_err(e.into_error()))?;
    Ok(counter.len)
}

/// Counts what passes through.
struct Counter<W> {
    inner: W,
    len: u64,
}

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn collect(root: &Path, overlay: bool) -> Result<Vec<Node>, LayerError> {
    let mut nodes = Vec::new();
    let mut stack: Vec<(PathBuf, Vec<u8>)> = vec![(root.to_path_buf(), Vec::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let rd = fs::read_dir(&dir).map_err(|e| LayerError::entry(&display_rel(&prefix), "reading directory", e))?;
        for ent in rd {
            let ent = ent.map_err(|e| LayerError::entry(&display_rel(&prefix), "reading directory", e))?;
            let fname = ent.file_name();
            let fname = fname.as_bytes();
            let src = ent.path();
            let mut name = prefix.clone();
            if !name.is_empty() {
                name.push(b'/');
            }
            name.extend_from_slice(fname);
            // Relative to the open directory: no walk of the whole path.
            let meta = ent.metadata().map_err(|e| LayerError::entry(&name, "reading metadata", e))?;
            let ft = meta.file_type();
            if ft.is_socket() {
                continue;
            }
            if overlay && ft.is_char_device() && meta.rdev() == 0 {
                let mut wname = prefix.clone();
                if !wname.is_empty() {
                    wname.push(b'/');
                }
                wname.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
                wname.extend_from_slice(fname);
                nodes.push(Node { name: wname, src, meta, whiteout: true });
                continue;
            }
            if fname.starts_with(WHITEOUT_PREFIX.as_bytes()) {
                return Err(LayerError::unsupported(
                    &name,
                    "names starting with .wh. are reserved for whiteouts and would delete files when applied",
                ));
            }
            if ft.is_dir() {
                stack.push((src.clone(), name.clone()));
            }
            nodes.push(Node { name, src, meta, whiteout: false });
        }
    }
    nodes.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    Ok(nodes)
}

fn display_rel(prefix: &[u8]) -> Vec<u8> {
    if prefix.is_empty() { b".".to_vec() } else { prefix.to_vec() }
}

/// Xattrs that never go into a layer.
fn keep_xattr(name: &[u8], overlay: bool) -> bool {
    !(name.starts_with(b"trusted.overlay.")
        || (overlay && name.starts_with(b"user.overlay."))
        || name == b"security.selinux")
}

fn write_nodes(nodes: &[Node], opts: &WriteOptions, w: &mut impl Write) -> Result<(), LayerError> {
    let clamp = |t: i64| match opts.source_date_epoch {
        Some(e) => t.min(e),
        None => t,
    };
    let out_err = |e: io::Error| LayerError::io("writing the layer", e);
    let mut links: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    let mut hdr = Vec::with_capacity(4096);
    let mut buf = vec![0u8; 256 * 1024];
    for node in nodes {
        let m = &node.meta;
        let ft = m.file_type();
        let mtime = clamp(m.mtime());
        hdr.clear();
        if node.whiteout {
            // As Docker writes them: an empty regular file, mode 0600.
            let h = Header {
                name: &node.name,
                typeflag: b'0',
                mode: 0o600,
                uid: u64::from(m.uid()),
                gid: u64::from(m.gid()),
                mtime,
                size: 0,
                link: b"",
                dev: (0, 0),
                xattrs: &[],
            };
            tarfmt::encode(&h, &mut hdr);
            w.write_all(&hdr).map_err(out_err)?;
            continue;
        }
        // A regular file is opened first: most have no xattrs, which its
        // descriptor tells without another walk of the path.
        let mut file = None;
        if ft.is_file() {
            let f = OpenOptions::new()
                .read(true)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(&node.src)
                .map_err(|e| LayerError::entry(&node.name, "opening file", e))?;
            file = Some(f);
        }
        let no_xattrs = file.as_ref().is_some_and(|f| rustix::fs::flistxattr_query(f) == Ok(0));
        let all_xattrs = if no_xattrs {
            Vec::new()
        } else {
            sys::list_xattrs(&node.src).map_err(|e| LayerError::entry(&node.name, "reading xattrs", e))?
        };
        let opaque = opts.overlay_upper
            && ft.is_dir()
            && all_xattrs.iter().any(|(k, v)| {
                (k == OVERLAY_OPAQUE_XATTR.as_bytes() || k == OVERLAY_USER_OPAQUE_XATTR.as_bytes()) && v == b"y"
            });
        let xattrs: Vec<(Vec<u8>, Vec<u8>)> =
            all_xattrs.into_iter().filter(|(k, _)| keep_xattr(k, opts.overlay_upper)).collect();
        let mut h = Header {
            name: &node.name,
            typeflag: b'0',
            mode: m.mode() & 0o7777,
            uid: u64::from(m.uid()),
            gid: u64::from(m.gid()),
            mtime,
            size: 0,
            link: b"",
            dev: (0, 0),
            xattrs: &xattrs,
        };
        if !ft.is_dir() && m.nlink() > 1 {
            let key = (m.dev(), m.ino());
            if let Some(first) = links.get(&key) {
                let lh = Header { typeflag: b'1', link: first, xattrs: &[], ..h };
                tarfmt::encode(&lh, &mut hdr);
                w.write_all(&hdr).map_err(out_err)?;
                continue;
            }
            links.insert(key, node.name.clone());
        }
        let dir_name;
        let target;
        let mut file_size = 0;
        if ft.is_dir() {
            let mut n = node.name.clone();
            n.push(b'/');
            dir_name = n;
            h.name = &dir_name;
            h.typeflag = b'5';
        } else if ft.is_file() {
            file_size = m.len();
            h.size = file_size;
        } else if ft.is_symlink() {
            target = fs::read_link(&node.src).map_err(|e| LayerError::entry(&node.name, "reading symlink", e))?;
            h.typeflag = b'2';
            h.link = target.as_os_str().as_bytes();
        } else if ft.is_char_device() || ft.is_block_device() {
            h.typeflag = if ft.is_char_device() { b'3' } else { b'4' };
            h.dev = (sys::dev_major(m.rdev()), sys::dev_minor(m.rdev()));
        } else if ft.is_fifo() {
            h.typeflag = b'6';
        } else {
            continue;
        }
        tarfmt::encode(&h, &mut hdr);
        w.write_all(&hdr).map_err(out_err)?;
        if let Some(f) = file {
            copy_file(f, &node.name, file_size, w, &mut buf)?;
        }
        if opaque {
            let mut oname = node.name.clone();
            oname.push(b'/');
            oname.extend_from_slice(WHITEOUT_OPAQUE.as_bytes());
            let oh = Header {
                name: &oname,
                typeflag: b'0',
                mode: m.mode() & 0o777,
                uid: u64::from(m.uid()),
                gid: u64::from(m.gid()),
                mtime,
                size: 0,
                link: b"",
                dev: (0, 0),
                xattrs: &[],
            };
            hdr.clear();
            tarfmt::encode(&oh, &mut hdr);
            w.write_all(&hdr).map_err(out_err)?;
        }
    }
    Ok(())
}

/// Copies exactly `size` bytes of the file plus padding; a file that
/// shrank since it was listed is an error (the header is already out).
fn copy_file(mut f: fs::File, name: &[u8], size: u64, w: &mut impl Write, buf: &mut [u8]) -> Result<(), LayerError> {
    let mut remaining = size;
    while remaining > 0 {
        let want = remaining.min(buf.len() as u64) as usize;
        let n = match f.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(LayerError::Changed {
                    path: lossy(name),
                    detail: format!("it shrank from {size} to {} bytes", size - remaining),
                });
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(LayerError::entry(name, "reading file", e)),
        };
        w.write_all(&buf[..n]).map_err(|e| LayerError::io("writing the layer", e))?;
        remaining -= n as u64;
    }
    let pad = tarfmt::pad(size) as usize;
    w.write_all(&[0u8; tarfmt::BLOCK][..pad]).map_err(|e| LayerError::io("writing the layer", e))?;
    Ok(())
}

/// Everything read from `inner` is also written to `out`.
struct Tee<'a, R, W> {
    inner: R,
    out: &'a mut W,
    write_err: Option<io::Error>,
}

impl<R: Read, W: Write> Read for Tee<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.out.write_all(&buf[..n]) {
            let msg = e.to_string();
            self.write_err = Some(e);
            return Err(io::Error::other(format!("writing the layer: {msg}")));
        }
        Ok(n)
    }
}

/// Turns an existing tar stream (plain, gzip or zstd) into a layer: the tar
/// bytes pass through unchanged (diff_id is their sha256) and are
/// recompressed with `opts.compression`. The stream is validated on the way
/// as [`scan_tar`](super::scan_tar) does; on error the caller discards what
/// was written to `out`.
pub fn write_layer_from_tar(
    reader: impl Read,
    opts: &WriteOptions,
    out: impl Write,
) -> Result<LayerDescriptor, LayerError> {
    let dec = decompress(reader)?;
    let compressed = dec.codec() != Codec::None;
    let mut pipe = Pipeline::new(out, opts)?;
    let result = {
        let tee = Tee { inner: dec, out: &mut pipe.w, write_err: None };
        let mut tr = TarReader::new(tee);
        let mut v = Validator::default();
        let mut run = || -> Result<(), LayerError> {
            while let Some(e) = tr.next_entry()? {
                v.check(&e)?;
            }
            tr.drain(true)?;
            Ok(())
        };
        let r = run();
        match (r, tr.get_mut().write_err.take()) {
            (Err(_), Some(we)) => Err(LayerError::io("writing the layer", we)),
            (Err(e), None) => Err(tr.root_cause(e, compressed)),
            (r, _) => r,
        }
    };
    result?;
    pipe.finish()
}
