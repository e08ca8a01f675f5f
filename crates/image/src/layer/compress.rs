//! Layer codecs: media types, a block-parallel deterministic gzip encoder,
//! multithreaded zstd, and a decompressing reader that sniffs magic bytes.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufReader, Read, Write};
use std::str::FromStr;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

use flate2::{Compress, Crc, FlushCompress, Status};

use super::LayerError;

pub const MEDIA_TYPE_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_TYPE_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TYPE_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MEDIA_TYPE_OCI_NONDISTRIBUTABLE_LAYER: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const MEDIA_TYPE_OCI_NONDISTRIBUTABLE_LAYER_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const MEDIA_TYPE_OCI_NONDISTRIBUTABLE_LAYER_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
pub const MEDIA_TYPE_DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const MEDIA_TYPE_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const MEDIA_TYPE_DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
pub const MEDIA_TYPE_DOCKER_FOREIGN_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// Size of the input blocks the parallel gzip encoder compresses
/// independently (as pigz does). Output depends on it: never change it
/// casually, or layer digests change.
const GZIP_BLOCK: usize = 128 * 1024;
/// Deflate window: each block is primed with this much of the input before it.
const GZIP_DICT: usize = 32 * 1024;

/// A layer compression with its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    /// gzip, level 0..=9.
    Gzip {
        level: u32,
    },
    /// zstd, level -7..=22 (0 means zstd's default, 3).
    Zstd {
        level: i32,
    },
}

/// A codec without level: what a blob is compressed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    None,
    Gzip,
    Zstd,
}

impl Default for Compression {
    fn default() -> Self {
        Compression::gzip()
    }
}

impl Compression {
    /// Docker's (and Go's) default gzip level.
    pub const DEFAULT_GZIP_LEVEL: u32 = 6;
    pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

    pub fn gzip() -> Self {
        Compression::Gzip { level: Self::DEFAULT_GZIP_LEVEL }
    }

    pub fn zstd() -> Self {
        Compression::Zstd { level: Self::DEFAULT_ZSTD_LEVEL }
    }

    /// `none`/`gzip`/`zstd` (also `uncompressed`, `gz`, `zst`) with an
    /// optional level; the default level when `None`.
    pub fn from_name(name: &str, level: Option<i32>) -> Result<Self, LayerError> {
        let codec: Codec = name.parse().map_err(LayerError::Options)?;
        Compression::new(codec, level)
    }

    /// The codec with the given level (or its default), checked.
    pub fn new(codec: Codec, level: Option<i32>) -> Result<Self, LayerError> {
        let c = match (codec, level) {
            (Codec::None, _) => Compression::None,
            (Codec::Gzip, None) => Compression::gzip(),
            (Codec::Gzip, Some(l)) => {
                Compression::Gzip { level: u32::try_from(l).map_err(|_| bad_level("gzip", i64::from(l)))? }
            }
            (Codec::Zstd, None) => Compression::zstd(),
            (Codec::Zstd, Some(l)) => Compression::Zstd { level: l },
        };
        c.validate()?;
        Ok(c)
    }

    /// Checks the level range.
    pub fn validate(&self) -> Result<(), LayerError> {
        match *self {
            Compression::None => Ok(()),
            Compression::Gzip { level } if level <= 9 => Ok(()),
            Compression::Gzip { level } => Err(bad_level("gzip", i64::from(level))),
            Compression::Zstd { level } if (-7..=22).contains(&level) => Ok(()),
            Compression::Zstd { level } => Err(bad_level("zstd", i64::from(level))),
        }
    }

    pub fn codec(&self) -> Codec {
        match self {
            Compression::None => Codec::None,
            Compression::Gzip { .. } => Codec::Gzip,
            Compression::Zstd { .. } => Codec::Zstd,
        }
    }

    /// The OCI layer media type for this compression.
    pub fn media_type(&self) -> &'static str {
        self.codec().media_type()
    }

    /// The compression a layer media type implies (OCI, OCI
    /// non-distributable and Docker types), at the default level.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        Codec::from_media_type(media_type).map(|c| match c {
            Codec::None => Compression::None,
            Codec::Gzip => Compression::gzip(),
            Codec::Zstd => Compression::zstd(),
        })
    }
}

fn bad_level(codec: &str, level: i64) -> LayerError {
    let range = if codec == "gzip" { "0..=9" } else { "-7..=22" };
    LayerError::Options(format!("{codec} level {level} is out of range {range}"))
}

impl Codec {
    pub fn name(&self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
        }
    }

    /// The OCI layer media type.
    pub fn media_type(&self) -> &'static str {
        match self {
            Codec::None => MEDIA_TYPE_OCI_LAYER,
            Codec::Gzip => MEDIA_TYPE_OCI_LAYER_GZIP,
            Codec::Zstd => MEDIA_TYPE_OCI_LAYER_ZSTD,
        }
    }

    /// The codec of a layer media type; `None` for a media type that is not
    /// a layer.
    pub fn from_media_type(media_type: &str) -> Option<Codec> {
        // Parameters (`; charset=...`) are not part of the type.
        let mt = media_type.split(';').next().unwrap_or("").trim();
        match mt {
            MEDIA_TYPE_OCI_LAYER | MEDIA_TYPE_OCI_NONDISTRIBUTABLE_LAYER | MEDIA_TYPE_DOCKER_LAYER => Some(Codec::None),
            MEDIA_TYPE_OCI_LAYER_GZIP
            | MEDIA_TYPE_OCI_NONDISTRIBUTABLE_LAYER_GZIP
            | MEDIA_TYPE_DOCKER_LAYER_GZIP
            | MEDIA_TYPE_DOCKER_FOREIGN_LAYER_GZIP => Some(Codec::Gzip),
            MEDIA_TYPE_OCI_LAYER_ZSTD | MEDIA_TYPE_OCI_NONDISTRIBUTABLE_LAYER_ZSTD | MEDIA_TYPE_DOCKER_LAYER_ZSTD => {
                Some(Codec::Zstd)
            }
            _ => None,
        }
    }

    /// The codec whose magic bytes start `prefix` (gzip `1f 8b`, zstd
    /// `28 b5 2f fd`); anything else is taken as plain tar.
    pub fn detect(prefix: &[u8]) -> Codec {
        if prefix.starts_with(&[0x1f, 0x8b]) {
            Codec::Gzip
        } else if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Codec::Zstd
        } else {
            Codec::None
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Codec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "uncompressed" | "tar" => Ok(Codec::None),
            "gzip" | "gz" => Ok(Codec::Gzip),
            "zstd" | "zst" => Ok(Codec::Zstd),
            _ => Err(format!("unknown compression {s:?} (expected gzip, zstd or none)")),
        }
    }
}

fn default_threads(threads: usize) -> usize {
    if threads > 0 { threads } else { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) }
}

/// A writer that compresses what it is given. The output depends only on
/// the bytes written and the level, never on the thread count or on how
/// the writes are split: gzip is cut into fixed blocks compressed in
/// parallel (like pigz), zstd always runs libzstd's multithreaded mode.
pub struct CompressWriter<W: Write> {
    inner: Enc<W>,
}

enum Enc<W: Write> {
    None(W),
    Gzip(Box<ParGzEncoder<W>>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> CompressWriter<W> {
    /// `threads == 0` uses all cores.
    pub fn new(out: W, compression: Compression, threads: usize) -> Result<Self, LayerError> {
        compression.validate()?;
        let threads = default_threads(threads);
        let inner = match compression {
            Compression::None => Enc::None(out),
            Compression::Gzip { level } => Enc::Gzip(Box::new(ParGzEncoder::new(out, level, threads))),
            Compression::Zstd { level } => {
                let mut enc = zstd::stream::write::Encoder::new(out, level)
                    .map_err(|e| LayerError::io("starting zstd encoder", e))?;
                // Multithreaded mode even with one worker: its output differs
                // from single-threaded mode, and must not depend on the core count.
                let workers = u32::try_from(threads.max(1)).unwrap_or(1);
                enc.multithread(workers).map_err(|e| LayerError::io("starting zstd workers", e))?;
                // A content checksum per frame, as the zstd CLI and Go's
                // klauspost/compress write by default: corruption is detected
                // even before the blob digest is checked.
                enc.include_checksum(true).map_err(|e| LayerError::io("configuring zstd", e))?;
                Enc::Zstd(enc)
            }
        };
        Ok(CompressWriter { inner })
    }

    /// Ends the stream and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self.inner {
            Enc::None(mut w) => {
                w.flush()?;
                Ok(w)
            }
            Enc::Gzip(g) => g.finish(),
            Enc::Zstd(z) => {
                let mut w = z.finish()?;
                w.flush()?;
                Ok(w)
            }
        }
    }
}

impl<W: Write> Write for CompressWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Enc::None(w) => w.write(buf),
            Enc::Gzip(g) => g.write(buf),
            Enc::Zstd(z) => z.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            Enc::None(w) => w.write_all(buf),
            Enc::Gzip(g) => g.write_all(buf),
            Enc::Zstd(z) => z.write_all(buf),
        }
    }

    /// Flushing does not end a compressed block (that would change the
    /// output); it only flushes what is already compressed.
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Enc::None(w) => w.flush(),
            Enc::Gzip(g) => g.flush(),
            Enc::Zstd(z) => z.get_mut().flush(),
        }
    }
}

type BlockResult = Result<(Vec<u8>, Crc), String>;

struct Job {
    data: Vec<u8>,
    dict: Vec<u8>,
    last: bool,
    reply: SyncSender<BlockResult>,
}

/// Parallel gzip: input is cut into `GZIP_BLOCK` blocks; each is deflated
/// on a worker with the previous 32 KiB as dictionary and ended with a
/// sync flush (the last with a final block), so the pieces concatenate into
/// one deflate stream in a single gzip member. Workers never touch `out`.
struct ParGzEncoder<W: Write> {
    out: W,
    level: u32,
    buf: Vec<u8>,
    dict: Vec<u8>,
    workers: Vec<(Sender<Job>, JoinHandle<()>)>,
    next_worker: usize,
    pending: VecDeque<Receiver<BlockResult>>,
    /// Compressor for the single-thread case.
    local: Option<Compress>,
    crc: Crc,
    total_in: u64,
    header_done: bool,
}

impl<W: Write> ParGzEncoder<W> {
    fn new(out: W, level: u32, threads: usize) -> Self {
        let mut workers = Vec::new();
        let mut local = None;
        if threads > 1 {
            for _ in 0..threads {
                let (tx, rx) = mpsc::channel::<Job>();
                let handle = std::thread::spawn(move || {
                    let mut c = Compress::new(flate2::Compression::new(level), false);
                    while let Ok(job) = rx.recv() {
                        let r = compress_block(&mut c, &job.dict, &job.data, job.last);
                        let _ = job.reply.send(r);
                    }
                });
                workers.push((tx, handle));
            }
        } else {
            local = Some(Compress::new(flate2::Compression::new(level), false));
        }
        ParGzEncoder {
            out,
            level,
            buf: Vec::with_capacity(GZIP_BLOCK),
            dict: Vec::new(),
            workers,
            next_worker: 0,
            pending: VecDeque::new(),
            local,
            crc: Crc::new(),
            total_in: 0,
            header_done: false,
        }
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_done {
            // Like Go's compress/gzip: no mtime, no name, OS unknown.
            let xfl = match self.level {
                9 => 2,
                1 => 4,
                _ => 0,
            };
            self.out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 0xff])?;
            self.header_done = true;
        }
        Ok(())
    }

    fn submit(&mut self, last: bool) -> io::Result<()> {
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(GZIP_BLOCK));
        let next_dict = if data.len() >= GZIP_DICT {
            data[data.len() - GZIP_DICT..].to_vec()
        } else {
            let mut d = std::mem::take(&mut self.dict);
            d.extend_from_slice(&data);
            if d.len() > GZIP_DICT {
                d.drain(..d.len() - GZIP_DICT);
            }
            d
        };
        let dict = std::mem::replace(&mut self.dict, next_dict);
        self.total_in += data.len() as u64;
        if let Some(c) = self.local.as_mut() {
            let r = compress_block(c, &dict, &data, last);
            return self.emit(r);
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let w = self.next_worker % self.workers.len();
        self.next_worker = self.next_worker.wrapping_add(1);
        self.workers[w]
            .0
            .send(Job { data, dict, last, reply: tx })
            .map_err(|_| io::Error::other("gzip worker thread exited"))?;
        self.pending.push_back(rx);
        // Keep a bounded number of blocks in flight.
        while self.pending.len() > 2 * self.workers.len() {
            self.collect_one()?;
        }
        Ok(())
    }

    fn collect_one(&mut self) -> io::Result<()> {
        if let Some(rx) = self.pending.pop_front() {
            let r = rx.recv().unwrap_or_else(|_| Err("gzip worker thread died".to_string()));
            self.emit(r)?;
        }
        Ok(())
    }

    fn emit(&mut self, r: BlockResult) -> io::Result<()> {
        let (bytes, crc) = r.map_err(io::Error::other)?;
        self.write_header()?;
        self.crc.combine(&crc);
        self.out.write_all(&bytes)
    }

    fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while !self.pending.is_empty() {
            self.collect_one()?;
        }
        self.write_header()?;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        trailer[4..].copy_from_slice(&(self.total_in as u32).to_le_bytes());
        self.out.write_all(&trailer)?;
        self.out.flush()?;
        for (tx, handle) in std::mem::take(&mut self.workers) {
            drop(tx);
            let _ = handle.join();
        }
        Ok(self.out)
    }
}

impl<W: Write> Write for ParGzEncoder<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        while !data.is_empty() {
            let room = GZIP_BLOCK - self.buf.len();
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == GZIP_BLOCK {
                self.submit(false)?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Deflates one block. Not the last: ends with a sync flush (byte aligned,
/// not final). The last: ends the deflate stream.
fn compress_block(c: &mut Compress, dict: &[u8], data: &[u8], last: bool) -> BlockResult {
    c.reset();
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(|e| format!("deflate dictionary: {e}"))?;
    }
    let mut crc = Crc::new();
    crc.update(data);
    let mut out: Vec<u8> = Vec::with_capacity(data.len() / 2 + 4096);
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Sync };
    let start = c.total_in();
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let consumed = (c.total_in() - start) as usize;
        let status = c.compress_vec(&data[consumed..], &mut out, flush).map_err(|e| format!("deflate: {e}"))?;
        let consumed = (c.total_in() - start) as usize;
        match status {
            Status::StreamEnd => break,
            _ if !last && consumed == data.len() && out.len() < out.capacity() => break,
            _ => {}
        }
    }
    Ok((out, crc))
}

/// Marks errors of the reader under a [`Decompressor`] so they are not
/// reported as corrupt compressed data.
#[derive(Debug)]
pub(crate) struct SourceError(pub io::Error);

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SourceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// An error of the gzip or zstd decoder.
#[derive(Debug)]
pub(crate) struct CodecError {
    pub codec: Codec,
    pub error: io::Error,
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.codec, self.error)
    }
}

impl std::error::Error for CodecError {}

/// The reader under the decoder: replays the sniffed prefix, then reads on.
struct Sniffed<R> {
    prefix: [u8; 4],
    len: usize,
    pos: usize,
    inner: R,
}

impl<R: Read> Read for Sniffed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.len {
            let n = (self.len - self.pos).min(buf.len());
            buf[..n].copy_from_slice(&self.prefix[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        self.inner.read(buf).map_err(|e| if is_marked(&e) { e } else { io::Error::new(e.kind(), SourceError(e)) })
    }
}

fn is_marked(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|r| r.is::<SourceError>() || r.is::<CodecError>())
}

type Buffered<R> = BufReader<Sniffed<R>>;

/// A reader of plain, gzip or zstd data, chosen by the magic bytes.
pub struct Decompressor<R: Read> {
    codec: Codec,
    inner: Dec<R>,
}

enum Dec<R: Read> {
    Plain(Buffered<R>),
    Gzip(Box<flate2::bufread::MultiGzDecoder<Buffered<R>>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, Buffered<R>>>),
}

/// Wraps `reader` in a decompressor for whatever it holds: gzip (`1f 8b`),
/// zstd (`28 b5 2f fd`), else plain (tar). The result is buffered.
pub fn decompress<R: Read>(mut reader: R) -> Result<Decompressor<R>, LayerError> {
    let mut prefix = [0u8; 4];
    let mut len = 0;
    while len < prefix.len() {
        match reader.read(&mut prefix[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(LayerError::io("reading layer stream", e)),
        }
    }
    let codec = Codec::detect(&prefix[..len]);
    let src = BufReader::with_capacity(256 * 1024, Sniffed { prefix, len, pos: 0, inner: reader });
    let inner = match codec {
        Codec::None => Dec::Plain(src),
        Codec::Gzip => Dec::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(src))),
        Codec::Zstd => Dec::Zstd(Box::new(
            zstd::stream::read::Decoder::with_buffer(src).map_err(|e| LayerError::io("starting zstd decoder", e))?,
        )),
    };
    Ok(Decompressor { codec, inner })
}

impl<R: Read> Decompressor<R> {
    /// The codec found in the stream.
    pub fn codec(&self) -> Codec {
        self.codec
    }
}

impl<R: Read> Read for Decompressor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = match &mut self.inner {
            Dec::Plain(r) => return r.read(buf),
            Dec::Gzip(d) => d.read(buf),
            Dec::Zstd(d) => d.read(buf),
        };
        r.map_err(
            |e| {
                if is_marked(&e) { e } else { io::Error::new(e.kind(), CodecError { codec: self.codec, error: e }) }
            },
        )
    }
}

/// Turns an I/O error from a read of layer data into a [`LayerError`]:
/// decoder errors become `Decompress` (or `Truncated` when the compressed
/// stream ended early), a short stream `Truncated`, others `Io`.
pub(crate) fn classify_read_error(e: io::Error, context: &str) -> LayerError {
    let kind = e.kind();
    let tag = e.get_ref().map(|r| (r.is::<CodecError>(), r.is::<SourceError>()));
    match tag {
        Some((true, _)) => {
            let inner = e.into_inner().and_then(|b| b.downcast::<CodecError>().ok());
            match inner {
                Some(ce) if ce.error.kind() == io::ErrorKind::UnexpectedEof => LayerError::Truncated {
                    detail: format!("{context}: the {} stream ended early ({})", ce.codec, ce.error),
                },
                Some(ce) => LayerError::Decompress { codec: ce.codec.name(), source: ce.error },
                None => LayerError::io(context, io::Error::new(kind, "decoder error")),
            }
        }
        Some((false, true)) => {
            let inner = e.into_inner().and_then(|b| b.downcast::<SourceError>().ok());
            match inner {
                Some(se) if se.0.kind() == io::ErrorKind::UnexpectedEof => {
                    LayerError::Truncated { detail: format!("{context}: {}", se.0) }
                }
                Some(se) => LayerError::io(context, se.0),
                None => LayerError::io(context, io::Error::new(kind, "read error")),
            }
        }
        _ if kind == io::ErrorKind::UnexpectedEof => LayerError::Truncated { detail: format!("{context}: {e}") },
        _ => LayerError::io(context, e),
    }
}

/// Reads `r` to its end, discarding the bytes (checks compressed trailers).
#[cfg(test)]
pub(crate) fn drain(mut r: impl Read, context: &str) -> Result<u64, LayerError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(classify_read_error(e, context)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(c: Compression, data: &[u8], threads: usize) -> Vec<u8> {
        let mut w = CompressWriter::new(Vec::new(), c, threads).unwrap();
        // Odd-sized writes must not change the output.
        for chunk in data.chunks(7777) {
            w.write_all(chunk).unwrap();
        }
        let out = w.finish().unwrap();
        let mut d = decompress(&out[..]).unwrap();
        assert_eq!(d.codec(), c.codec());
        let mut back = Vec::new();
        d.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        out
    }

    fn sample(n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n);
        let mut x: u32 = 12345;
        while v.len() < n {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            let word = ["alpha ", "beta ", "gamma ", "delta\n", "\0\0\0\0"][(x >> 16) as usize % 5];
            v.extend_from_slice(word.as_bytes());
            if x.is_multiple_of(97) {
                v.push((x >> 8) as u8);
            }
        }
        v.truncate(n);
        v
    }

    #[test]
    fn gzip_is_deterministic_across_threads_and_roundtrips() {
        let data = sample(GZIP_BLOCK * 3 + 1234);
        for level in [0, 1, 6, 9] {
            let c = Compression::Gzip { level };
            let a = roundtrip(c, &data, 1);
            let b = roundtrip(c, &data, 2);
            let d = roundtrip(c, &data, 5);
            assert_eq!(a, b, "level {level}");
            assert_eq!(a, d, "level {level}");
        }
        // Empty input and exact block multiples.
        roundtrip(Compression::gzip(), b"", 2);
        roundtrip(Compression::gzip(), &sample(GZIP_BLOCK * 2), 2);
    }

    #[test]
    fn gzip_output_is_a_plain_gzip_member() {
        let data = sample(300_000);
        let out = roundtrip(Compression::gzip(), &data, 2);
        let mut d = flate2::read::GzDecoder::new(&out[..]);
        let mut back = Vec::new();
        d.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn zstd_is_deterministic_across_threads() {
        let data = sample(3_000_000);
        let a = roundtrip(Compression::zstd(), &data, 1);
        let b = roundtrip(Compression::zstd(), &data, 2);
        let c = roundtrip(Compression::zstd(), &data, 4);
        assert_eq!(a, b);
        assert_eq!(a, c);
    }

    #[test]
    fn none_passes_through() {
        let data = sample(1000);
        assert_eq!(roundtrip(Compression::None, &data, 0), data);
    }

    #[test]
    fn media_types() {
        assert_eq!(Compression::gzip().media_type(), "application/vnd.oci.image.layer.v1.tar+gzip");
        assert_eq!(Compression::zstd().media_type(), "application/vnd.oci.image.layer.v1.tar+zstd");
        assert_eq!(Compression::None.media_type(), "application/vnd.oci.image.layer.v1.tar");
        assert_eq!(
            Compression::from_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Some(Compression::Gzip { level: 6 })
        );
        assert_eq!(
            Codec::from_media_type("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
            Some(Codec::Gzip)
        );
        assert_eq!(Codec::from_media_type("application/vnd.oci.image.layer.v1.tar+zstd"), Some(Codec::Zstd));
        assert_eq!(Codec::from_media_type("application/vnd.oci.image.config.v1+json"), None);
        assert!(Compression::from_name("gzip", Some(10)).is_err());
        assert!(Compression::from_name("zstd", Some(23)).is_err());
        assert!(Compression::from_name("brotli", None).is_err());
        assert_eq!(Compression::from_name("zstd", Some(19)).unwrap(), Compression::Zstd { level: 19 });
    }

    #[test]
    fn corrupt_and_truncated_streams_are_classified() {
        let data = sample(200_000);
        for c in [Compression::gzip(), Compression::zstd()] {
            let out = roundtrip(c, &data, 2);
            // Truncated.
            let short = &out[..out.len() / 2];
            let err = drain(decompress(short).unwrap(), "reading").unwrap_err();
            assert!(matches!(err, LayerError::Truncated { .. } | LayerError::Decompress { .. }), "{c:?}: {err}");
            // Corrupted in the middle.
            let mut bad = out.clone();
            for b in &mut bad[20..60] {
                *b ^= 0x5a;
            }
            let err = drain(decompress(&bad[..]).unwrap(), "reading").unwrap_err();
            assert!(matches!(err, LayerError::Decompress { .. } | LayerError::Truncated { .. }), "{c:?}: {err}");
        }
        // Bad gzip header after the magic.
        let err = drain(decompress(&[0x1f, 0x8b, 0, 0, 0, 0][..]).unwrap(), "reading").unwrap_err();
        assert!(err.to_string().contains("gzip"), "{err}");
    }
}
