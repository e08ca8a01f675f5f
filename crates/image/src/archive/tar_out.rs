//! The outer tar of an image archive: ustar headers for directories and
//! regular files with fixed owner, mode and mtime, so that the same images
//! always give the same bytes. Names are short (`blobs/sha256/<hex>`), so no
//! extended headers are needed; sizes of 8 GiB and more use the base-256
//! encoding that GNU tar, Go and tar-rs read.

use std::io::{self, Read, Write};

const BLOCK: usize = 512;

pub(crate) struct TarOut<W: Write> {
    out: W,
}

impl<W: Write> TarOut<W> {
    pub(crate) fn new(out: W) -> Self {
        TarOut { out }
    }

    /// A directory entry (`name` ends with `/`).
    pub(crate) fn dir(&mut self, name: &str) -> io::Result<()> {
        let block = header(name, b'5', 0o755, 0)?;
        self.out.write_all(&block)
    }

    /// A regular file of exactly `size` bytes read from `data`.
    pub(crate) fn file(&mut self, name: &str, size: u64, data: impl Read) -> io::Result<()> {
        let block = header(name, b'0', 0o644, size)?;
        self.out.write_all(&block)?;
        let copied = io::copy(&mut data.take(size), &mut self.out)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name}: expected {size} bytes, the source gave {copied}"),
            ));
        }
        let pad = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        self.out.write_all(&vec![0u8; pad as usize])
    }

    /// Writes the end-of-archive marker and returns the writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn header(name: &str, typeflag: u8, mode: u32, size: u64) -> io::Result<[u8; BLOCK]> {
    if name.len() > 100 || !name.is_ascii() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("archive member name too long: {name}")));
    }
    let mut b = [0u8; BLOCK];
    b[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut b[100..108], u64::from(mode));
    octal(&mut b[108..116], 0); // uid
    octal(&mut b[116..124], 0); // gid
    if size < 0o77777777777 {
        octal(&mut b[124..136], size);
    } else {
        // base-256: high bit of the first byte set, big-endian value.
        b[124] = 0x80;
        b[128..136].copy_from_slice(&size.to_be_bytes());
    }
    octal(&mut b[136..148], 0); // mtime
    b[156] = typeflag;
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    b[148..156].fill(b' ');
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    let cks = format!("{sum:06o}\0 ");
    b[148..156].copy_from_slice(cks.as_bytes());
    Ok(b)
}

/// Zero-padded octal with a trailing NUL, filling the field.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{EntryKind, TarReader};

    #[test]
    fn layer_reader_reads_what_we_write() {
        let mut t = TarOut::new(Vec::new());
        t.dir("blobs/").unwrap();
        t.file("blobs/a", 5, &b"hello"[..]).unwrap();
        let bytes = t.finish().unwrap();
        assert_eq!(bytes.len() % BLOCK, 0);
        let mut r = TarReader::new(&bytes[..]);
        let d = r.next_entry().unwrap().unwrap();
        assert_eq!(d.kind, EntryKind::Directory);
        assert!(d.path.starts_with(b"blobs"));
        let f = r.next_entry().unwrap().unwrap();
        assert_eq!((f.path.as_slice(), f.size, f.mode), (&b"blobs/a"[..], 5, 0o644));
        let mut data = Vec::new();
        r.data().read_to_end(&mut data).unwrap();
        assert_eq!(data, b"hello");
        assert!(r.next_entry().unwrap().is_none());
    }

    #[test]
    fn short_source_is_an_error() {
        let mut t = TarOut::new(Vec::new());
        assert!(t.file("x", 10, &b"abc"[..]).is_err());
    }
}
