//! A strict streaming tar parser: ustar, v7, GNU (long names `L`/`K`) and
//! PAX (`x` records; `g` global headers are read and ignored, as Docker and
//! containerd do). It follows Go's archive/tar where readers disagree (the
//! data size of header-only types is zero). Sizes claimed by the archive are
//! never used to allocate: extended headers are capped at 1 MiB and entry
//! data is read in chunks, so a header claiming 1 TB in a short stream fails
//! as soon as the stream ends.

use std::io::{self, Read};

use super::compress::{Codec, classify_read_error};
use super::{LayerError, lossy};

const BLOCK: usize = 512;
/// Largest PAX or GNU long-name payload accepted (Go uses the same limit).
const MAX_META: u64 = 1 << 20;

/// The type of a tar entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    Regular,
    HardLink,
    Symlink,
    CharDevice,
    BlockDevice,
    Directory,
    Fifo,
    /// Any other type flag (the byte as stored).
    Other(u8),
}

impl EntryKind {
    /// The tar type flag.
    pub fn typeflag(&self) -> u8 {
        match self {
            EntryKind::Regular => b'0',
            EntryKind::HardLink => b'1',
            EntryKind::Symlink => b'2',
            EntryKind::CharDevice => b'3',
            EntryKind::BlockDevice => b'4',
            EntryKind::Directory => b'5',
            EntryKind::Fifo => b'6',
            EntryKind::Other(b) => *b,
        }
    }
}

/// One entry, with extended headers merged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    /// The name as stored (PAX `path`, GNU long name, or ustar prefix/name).
    pub path: Vec<u8>,
    /// Hard or symbolic link target as stored.
    pub link_name: Vec<u8>,
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky (`& 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the epoch (PAX fractions are dropped).
    pub mtime: i64,
    /// Bytes of data that follow (zero for header-only types).
    pub size: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// `SCHILY.xattr.*` records, in archive order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Offset of the entry's own header in the tar stream.
    pub header_offset: u64,
}

impl TarEntry {
    /// The path for messages.
    pub fn display_path(&self) -> String {
        lossy(&self.path)
    }
}

#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<i64>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    sparse: bool,
}

/// Streaming tar parser over any reader.
pub struct TarReader<R: Read> {
    inner: R,
    offset: u64,
    /// Data bytes of the current entry not read yet.
    remaining: u64,
    /// Padding after the current entry's data.
    padding: u64,
    /// Path of the current entry, for messages.
    current: Vec<u8>,
    current_size: u64,
    done: bool,
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R) -> Self {
        TarReader { inner, offset: 0, remaining: 0, padding: 0, current: Vec::new(), current_size: 0, done: false }
    }

    /// Bytes consumed from the underlying reader.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Whether the end-of-archive marker has been read.
    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Fills `buf` unless the stream ends; returns how much was read.
    fn read_full(&mut self, buf: &mut [u8], context: &str) -> Result<usize, LayerError> {
        let mut n = 0;
        while n < buf.len() {
            match self.read_some(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) => return Err(classify_read_error(e, context)),
            }
        }
        Ok(n)
    }

    /// Skips `n` bytes; returns how many could be skipped before the end.
    fn skip(&mut self, mut n: u64, context: &str) -> Result<u64, LayerError> {
        let mut buf = [0u8; 16 * 1024];
        let mut skipped = 0;
        while n > 0 {
            let want = n.min(buf.len() as u64) as usize;
            match self.read_some(&mut buf[..want]) {
                Ok(0) => break,
                Ok(k) => {
                    n -= k as u64;
                    skipped += k as u64;
                }
                Err(e) => return Err(classify_read_error(e, context)),
            }
        }
        Ok(skipped)
    }

    fn skip_rest(&mut self) -> Result<(), LayerError> {
        if self.remaining == 0 && self.padding == 0 {
            return Ok(());
        }
        let ctx = format!("entry {:?}", lossy(&self.current));
        let want = self.remaining;
        let got = self.skip(want, &ctx)?;
        if got < want {
            let read = self.current_size - want + got;
            return Err(LayerError::Truncated {
                detail: format!(
                    "entry {:?} declares {} bytes of data but the stream ends after {read}",
                    lossy(&self.current),
                    self.current_size
                ),
            });
        }
        self.remaining = 0;
        let pad = self.padding;
        let got = self.skip(pad, &ctx)?;
        if got < pad {
            return Err(LayerError::Truncated {
                detail: format!("the stream ends inside the padding after entry {:?}", lossy(&self.current)),
            });
        }
        self.padding = 0;
        Ok(())
    }

    /// Reads the current entry's data; `Ok(0)` at its end. A stream that
    /// ends early gives `Truncated`.
    pub fn read_data(&mut self, buf: &mut [u8]) -> Result<usize, LayerError> {
        self.data().read(buf).map_err(|e| classify_read_error(e, &format!("entry {:?}", lossy(&self.current))))
    }

    /// The current entry's data as a reader (errors are `io::Error`s; a
    /// short stream is `UnexpectedEof`).
    pub fn data(&mut self) -> EntryData<'_, R> {
        EntryData { r: self }
    }

    /// Reads the rest of the underlying stream (after the end-of-archive
    /// marker). With `require_zeros`, anything but zero bytes there is an
    /// error: entries hidden after the end marker would be seen by readers
    /// that ignore zero blocks (`tar -i`) and by nobody else.
    pub fn drain(&mut self, require_zeros: bool) -> Result<u64, LayerError> {
        self.skip_rest()?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let at = self.offset;
            let n = match self.read_some(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) => return Err(classify_read_error(e, "reading the end of the tar stream")),
            };
            if require_zeros && let Some(i) = buf[..n].iter().position(|&b| b != 0) {
                return Err(LayerError::Malformed {
                    offset: at + i as u64,
                    reason: "data after the end-of-archive marker".to_string(),
                });
            }
            total += n as u64;
        }
    }

    /// The better error for a failure while reading a compressed stream:
    /// corrupt compressed data often decodes to garbage that the tar parser
    /// trips over before the decoder notices (gzip checks its CRC only at
    /// the end). If reading on to the end shows a decoder error, that is
    /// the root cause and is returned instead of `err`.
    pub(crate) fn root_cause(&mut self, err: LayerError, compressed: bool) -> LayerError {
        if !compressed
            || !matches!(err, LayerError::Malformed { .. } | LayerError::Unsafe { .. } | LayerError::Unsupported { .. })
        {
            return err;
        }
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match self.read_some(&mut buf) {
                Ok(0) => return err,
                Ok(_) => {}
                Err(e) => {
                    return match classify_read_error(e, "reading on after an invalid entry") {
                        e @ (LayerError::Decompress { .. } | LayerError::Truncated { .. }) => e,
                        _ => err,
                    };
                }
            }
        }
    }

    /// Reads a PAX or GNU extended header payload (at most 1 MiB).
    fn read_meta(&mut self, size: u64, at: u64, what: &str) -> Result<Vec<u8>, LayerError> {
        if size > MAX_META {
            return Err(LayerError::Malformed {
                offset: at,
                reason: format!("{what} of {size} bytes is larger than the 1 MiB limit"),
            });
        }
        let mut data = vec![0u8; size as usize];
        let n = self.read_full(&mut data, what)?;
        if n < data.len() {
            return Err(LayerError::Truncated { detail: format!("the stream ends inside the {what} at byte {at}") });
        }
        let pad = padding(size);
        if self.skip(pad, what)? < pad {
            return Err(LayerError::Truncated { detail: format!("the stream ends inside the {what} at byte {at}") });
        }
        Ok(data)
    }

    /// The next entry, skipping whatever data of the previous one was not
    /// read. `Ok(None)` at the end-of-archive marker.
    pub fn next_entry(&mut self) -> Result<Option<TarEntry>, LayerError> {
        if self.done {
            return Ok(None);
        }
        self.skip_rest()?;
        let mut pax = Pax::default();
        let mut have_meta = false;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        loop {
            let at = self.offset;
            let mut block = [0u8; BLOCK];
            let n = self.read_full(&mut block, "reading a tar header")?;
            if n == 0 {
                let after = if self.current.is_empty() && at == 0 {
                    "the stream is empty".to_string()
                } else if have_meta {
                    format!("an extended header at byte {at} is not followed by an entry")
                } else {
                    format!(
                        "the stream ends at byte {at} without the end-of-archive marker{}",
                        if self.current.is_empty() {
                            String::new()
                        } else {
                            format!(" (last entry {:?})", lossy(&self.current))
                        }
                    )
                };
                return Err(LayerError::Truncated { detail: after });
            }
            if n < BLOCK {
                return Err(LayerError::Truncated {
                    detail: format!(
                        "the stream ends inside the tar header at byte {at} ({n} of 512 bytes){}",
                        compressed_hint(&block[..n], at)
                    ),
                });
            }
            if block.iter().all(|&b| b == 0) {
                if have_meta {
                    return Err(LayerError::Malformed {
                        offset: at,
                        reason: "an extended header is followed by the end-of-archive marker".to_string(),
                    });
                }
                self.done = true;
                return Ok(None);
            }
            verify_checksum(&block, at)?;
            let typeflag = block[156];
            let header_size = parse_u64(&block[124..136]).ok_or_else(|| bad_field(at, "size"))?;
            match typeflag {
                b'x' | b'g' => {
                    let data = self.read_meta(header_size, at, "PAX extended header")?;
                    if typeflag == b'x' {
                        parse_pax(&data, &mut pax, at)?;
                        have_meta = true;
                    } else {
                        // Global headers: validated, then ignored (as Go and
                        // Docker do).
                        parse_pax(&data, &mut Pax::default(), at)?;
                    }
                    continue;
                }
                b'L' => {
                    long_name = Some(trim_nul(self.read_meta(header_size, at, "GNU long name")?));
                    have_meta = true;
                    continue;
                }
                b'K' => {
                    long_link = Some(trim_nul(self.read_meta(header_size, at, "GNU long link name")?));
                    have_meta = true;
                    continue;
                }
                _ => {}
            }

            let magic = &block[257..265];
            let is_ustar = &magic[..6] == b"ustar\0";
            let mut path = if let Some(p) = pax.path.take() {
                p
            } else if let Some(p) = long_name.take() {
                p
            } else {
                let name = cstr(&block[0..100]);
                let prefix = if is_ustar { cstr(&block[345..500]) } else { &[] };
                if prefix.is_empty() {
                    name.to_vec()
                } else {
                    let mut p = prefix.to_vec();
                    p.push(b'/');
                    p.extend_from_slice(name);
                    p
                }
            };
            let link_name = pax.linkpath.take().or(long_link.take()).unwrap_or_else(|| cstr(&block[157..257]).to_vec());
            if path.is_empty() {
                return Err(LayerError::Malformed { offset: at, reason: "an entry has an empty name".to_string() });
            }
            let mut kind = match typeflag {
                b'0' | b'7' => EntryKind::Regular,
                b'\0' if path.ends_with(b"/") => EntryKind::Directory,
                b'\0' => EntryKind::Regular,
                b'1' => EntryKind::HardLink,
                b'2' => EntryKind::Symlink,
                b'3' => EntryKind::CharDevice,
                b'4' => EntryKind::BlockDevice,
                b'5' => EntryKind::Directory,
                b'6' => EntryKind::Fifo,
                other => EntryKind::Other(other),
            };
            if typeflag == b'S' || pax.sparse {
                return Err(LayerError::unsupported(&path, "GNU sparse files"));
            }
            // Header-only types carry no data whatever the size field says
            // (Go's archive/tar, which Docker and containerd use).
            let header_only = matches!(typeflag, b'1'..=b'6');
            let size = if header_only { 0 } else { pax.size.unwrap_or(header_size) };
            let mode = parse_u64(&block[100..108]).ok_or_else(|| bad_field(at, "mode"))?;
            let uid = match pax.uid {
                Some(u) => u,
                None => parse_u64(&block[108..116]).ok_or_else(|| bad_field(at, "uid"))?,
            };
            let gid = match pax.gid {
                Some(g) => g,
                None => parse_u64(&block[116..124]).ok_or_else(|| bad_field(at, "gid"))?,
            };
            let mtime = match pax.mtime {
                Some(m) => m,
                None => parse_i64(&block[136..148]).ok_or_else(|| bad_field(at, "mtime"))?,
            };
            let (dev_major, dev_minor) = if matches!(kind, EntryKind::CharDevice | EntryKind::BlockDevice) {
                let ma = parse_u64(&block[329..337]).ok_or_else(|| bad_field(at, "devmajor"))?;
                let mi = parse_u64(&block[337..345]).ok_or_else(|| bad_field(at, "devminor"))?;
                (
                    u32::try_from(ma).map_err(|_| bad_field(at, "devmajor"))?,
                    u32::try_from(mi).map_err(|_| bad_field(at, "devminor"))?,
                )
            } else {
                (0, 0)
            };
            if kind == EntryKind::Regular && typeflag == b'\0' && path.ends_with(b"/") {
                kind = EntryKind::Directory;
            }
            // Trailing slashes are not part of the name.
            while path.len() > 1 && path.ends_with(b"/") {
                path.pop();
            }
            self.current = path.clone();
            self.current_size = size;
            self.remaining = size;
            self.padding = padding(size);
            return Ok(Some(TarEntry {
                path,
                link_name,
                kind,
                mode: (mode & 0o7777) as u32,
                uid,
                gid,
                mtime,
                size,
                dev_major,
                dev_minor,
                xattrs: std::mem::take(&mut pax.xattrs),
                header_offset: at,
            }));
        }
    }
}

/// Reader over the current entry's data.
pub struct EntryData<'a, R: Read> {
    r: &'a mut TarReader<R>,
}

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = &mut *self.r;
        if r.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = r.remaining.min(buf.len() as u64) as usize;
        let n = r.read_some(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "entry {:?} declares {} bytes of data but the stream ends after {}",
                    lossy(&r.current),
                    r.current_size,
                    r.current_size - r.remaining
                ),
            ));
        }
        r.remaining -= n as u64;
        Ok(n)
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn bad_field(at: u64, field: &str) -> LayerError {
    LayerError::Malformed { offset: at, reason: format!("invalid {field} field in the tar header") }
}

fn cstr(field: &[u8]) -> &[u8] {
    match field.iter().position(|&b| b == 0) {
        Some(i) => &field[..i],
        None => field,
    }
}

fn trim_nul(mut v: Vec<u8>) -> Vec<u8> {
    if let Some(i) = v.iter().position(|&b| b == 0) {
        v.truncate(i);
    }
    v
}

fn verify_checksum(block: &[u8; BLOCK], at: u64) -> Result<(), LayerError> {
    let stored = parse_u64(&block[148..156]);
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    match stored {
        Some(s) if s == unsigned || i64::try_from(s).is_ok_and(|s| s == signed) => Ok(()),
        _ => Err(LayerError::Malformed {
            offset: at,
            reason: format!("tar header checksum mismatch{}", compressed_hint(block, at)),
        }),
    }
}

/// A hint when the first header looks like compressed data.
fn compressed_hint(block: &[u8], at: u64) -> String {
    match Codec::detect(block) {
        Codec::None => String::new(),
        _ if at != 0 => String::new(),
        c => format!(" (the data is {c}-compressed: decompress it first)"),
    }
}

/// A numeric header field: octal (with optional spaces/NULs around it) or
/// GNU base-256 (high bit set; sign in the next bit).
fn parse_numeric(field: &[u8]) -> Option<i128> {
    let first = *field.first()?;
    if first & 0x80 != 0 {
        if field.len() > 15 {
            return None;
        }
        let negative = first & 0x40 != 0;
        let mut v: i128 = if negative { -1 } else { 0 };
        for (i, &b) in field.iter().enumerate() {
            let b = if i == 0 { if negative { b | 0x80 } else { b & 0x7f } } else { b };
            v = (v << 8) | i128::from(b);
        }
        return Some(v);
    }
    let start = field.iter().position(|&b| b != b' ' && b != 0).unwrap_or(field.len());
    let end = field.iter().rposition(|&b| b != b' ' && b != 0).map_or(start, |i| i + 1);
    if start >= end {
        return Some(0);
    }
    let mut v: i128 = 0;
    for &b in &field[start..end] {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        v = v.checked_mul(8)?.checked_add(i128::from(b - b'0'))?;
    }
    Some(v)
}

fn parse_u64(field: &[u8]) -> Option<u64> {
    parse_numeric(field).and_then(|v| u64::try_from(v).ok())
}

fn parse_i64(field: &[u8]) -> Option<i64> {
    parse_numeric(field).and_then(|v| i64::try_from(v).ok())
}

fn parse_pax(data: &[u8], pax: &mut Pax, at: u64) -> Result<(), LayerError> {
    let bad = |why: &str| LayerError::Malformed { offset: at, reason: format!("invalid PAX record: {why}") };
    let mut rest = data;
    while !rest.is_empty() {
        // Trailing NUL padding inside the payload is tolerated (GNU tar).
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let sp = rest.iter().position(|&b| b == b' ').ok_or_else(|| bad("no length"))?;
        let len_str = std::str::from_utf8(&rest[..sp]).map_err(|_| bad("bad length"))?;
        if len_str.is_empty() || !len_str.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("bad length"));
        }
        let len: usize = len_str.parse().map_err(|_| bad("bad length"))?;
        if len <= sp + 1 || len > rest.len() {
            return Err(bad("length out of range"));
        }
        let record = &rest[sp + 1..len];
        rest = &rest[len..];
        let record = record.strip_suffix(b"\n").ok_or_else(|| bad("missing newline"))?;
        let eq = record.iter().position(|&b| b == b'=').ok_or_else(|| bad("missing '='"))?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        if key.is_empty() {
            return Err(bad("empty key"));
        }
        let num = |what: &str| -> Result<Option<u64>, LayerError> {
            if value.is_empty() {
                return Ok(None);
            }
            std::str::from_utf8(value)
                .ok()
                .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .map(Some)
                .ok_or_else(|| bad(&format!("bad {what} {:?}", lossy(value))))
        };
        match key {
            b"path" => {
                if value.contains(&0) {
                    return Err(bad("NUL in path"));
                }
                pax.path = (!value.is_empty()).then(|| value.to_vec());
            }
            b"linkpath" => {
                if value.contains(&0) {
                    return Err(bad("NUL in linkpath"));
                }
                pax.linkpath = (!value.is_empty()).then(|| value.to_vec());
            }
            b"size" => pax.size = num("size")?,
            b"uid" => pax.uid = num("uid")?,
            b"gid" => pax.gid = num("gid")?,
            b"mtime" => pax.mtime = parse_pax_time(value).map_err(|_| bad("bad mtime"))?,
            _ if key.starts_with(b"SCHILY.xattr.") => {
                let name = &key[b"SCHILY.xattr.".len()..];
                if name.is_empty() || name.contains(&0) {
                    return Err(bad("bad xattr name"));
                }
                pax.xattrs.retain(|(k, _)| k != name);
                pax.xattrs.push((name.to_vec(), value.to_vec()));
            }
            _ if key.starts_with(b"GNU.sparse.") => pax.sparse = true,
            _ => {}
        }
    }
    Ok(())
}

/// `[-]seconds[.fraction]`; the fraction is dropped (rounding toward
/// negative infinity, like Go's time.Unix).
fn parse_pax_time(v: &[u8]) -> Result<Option<i64>, ()> {
    if v.is_empty() {
        return Ok(None);
    }
    let s = std::str::from_utf8(v).map_err(|_| ())?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    let secs: i64 = int.parse().map_err(|_| ())?;
    let has_frac = frac.bytes().any(|b| b != b'0');
    Ok(Some(if neg { -secs - i64::from(has_frac) } else { secs }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_fields() {
        assert_eq!(parse_numeric(b"0000644\0"), Some(0o644));
        assert_eq!(parse_numeric(b"   644 \0"), Some(0o644));
        assert_eq!(parse_numeric(b"\0\0\0\0\0\0\0\0"), Some(0));
        assert_eq!(parse_numeric(b"0000z44\0"), None);
        let mut f = [0u8; 12];
        f[0] = 0x80;
        f[11] = 5;
        assert_eq!(parse_numeric(&f), Some(5));
        let f = [0xffu8; 12];
        assert_eq!(parse_numeric(&f), Some(-1));
        assert_eq!(parse_pax_time(b"123.5"), Ok(Some(123)));
        assert_eq!(parse_pax_time(b"-123.5"), Ok(Some(-124)));
        assert_eq!(parse_pax_time(b"1x"), Err(()));
    }

    #[test]
    fn pax_records() {
        let mut p = Pax::default();
        parse_pax(b"15 path=a/b/cc\n21 SCHILY.xattr.a=\0b\n", &mut p, 0).unwrap();
        assert_eq!(p.path.as_deref(), Some(&b"a/b/cc"[..]));
        assert_eq!(p.xattrs, vec![(b"a".to_vec(), b"\0b".to_vec())]);
        assert!(parse_pax(b"99 path=x\n", &mut Pax::default(), 0).is_err());
        assert!(parse_pax(b"3 \n", &mut Pax::default(), 0).is_err());
        assert!(parse_pax(b"x path=y\n", &mut Pax::default(), 0).is_err());
    }
}
