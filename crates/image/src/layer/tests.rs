//! Unit tests of the layer module: header encoding against the parser,
//! hostile headers, the validator.

use std::io::{Cursor, Read};

use super::reader::{EntryKind, TarReader};
use super::scan::Validator;
use super::tarfmt::{self, Header};
use super::*;

fn header(name: &[u8], typeflag: u8, size: u64) -> Header<'_> {
    Header {
        name,
        typeflag,
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 1_700_000_000,
        size,
        link: b"",
        dev: (0, 0),
        xattrs: &[],
    }
}

/// An archive from headers and data, with the end marker.
fn archive(entries: &[(Header<'_>, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (h, data) in entries {
        tarfmt::encode(h, &mut out);
        out.extend_from_slice(data);
        out.resize(out.len() + tarfmt::pad(data.len() as u64) as usize, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn read_all(data: &[u8]) -> Result<Vec<(TarEntry, Vec<u8>)>, LayerError> {
    let mut tr = TarReader::new(data);
    let mut out = Vec::new();
    while let Some(e) = tr.next_entry()? {
        let mut d = Vec::new();
        let mut buf = [0u8; 1000];
        loop {
            let n = tr.read_data(&mut buf)?;
            if n == 0 {
                break;
            }
            d.extend_from_slice(&buf[..n]);
        }
        out.push((e, d));
    }
    tr.drain(true)?;
    Ok(out)
}

#[test]
fn headers_round_trip_through_the_parser() {
    let long = vec![b'n'; 150];
    let mut deep = Vec::new();
    for _ in 0..30 {
        deep.extend_from_slice(b"directory/");
    }
    deep.extend_from_slice(b"file");
    let unicode = "dir/ünïcødé-名前".as_bytes();
    let long_link = vec![b'l'; 200];
    let xattrs = vec![
        (b"security.capability".to_vec(), vec![1, 0, 0, 2, 0, 0, 0, 0, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        (b"user.empty".to_vec(), Vec::new()),
    ];
    let mut big_ids = header(b"ids", b'0', 0);
    big_ids.uid = 3_000_000;
    big_ids.gid = 4_000_000_000;
    big_ids.mtime = -86_400;
    let mut sym = header(b"sym", b'2', 0);
    sym.link = &long_link;
    let mut dev = header(b"dev/null", b'3', 0);
    dev.dev = (1, 3);
    let mut xa = header(b"xa", b'0', 3);
    xa.xattrs = &xattrs;
    xa.mode = 0o4755;
    let data = archive(&[
        (header(&long, b'0', 5), b"hello"),
        (header(&deep, b'0', 0), b""),
        (header(unicode, b'0', 1), b"u"),
        (big_ids, b""),
        (sym, b""),
        (dev, b""),
        (xa, b"abc"),
        (header(b"d/", b'5', 0), b""),
    ]);
    let got = read_all(&data).unwrap();
    assert_eq!(got.len(), 8);
    assert_eq!(got[0].0.path, long);
    assert_eq!(got[0].1, b"hello");
    assert_eq!(got[1].0.path, deep);
    assert_eq!(got[2].0.path, unicode);
    assert_eq!((got[3].0.uid, got[3].0.gid, got[3].0.mtime), (3_000_000, 4_000_000_000, -86_400));
    assert_eq!(got[4].0.kind, EntryKind::Symlink);
    assert_eq!(got[4].0.link_name, long_link);
    assert_eq!((got[5].0.kind, got[5].0.dev_major, got[5].0.dev_minor), (EntryKind::CharDevice, 1, 3));
    assert_eq!(got[6].0.xattrs, xattrs);
    assert_eq!(got[6].0.mode, 0o4755);
    assert_eq!(got[6].1, b"abc");
    assert_eq!(got[7].0.kind, EntryKind::Directory);
    assert_eq!(got[7].0.path, b"d");
}

#[test]
fn size_over_8gib_uses_pax_and_reads_back() {
    let size: u64 = 9 << 30;
    let mut hdr = Vec::new();
    tarfmt::encode(&header(b"big", b'0', size), &mut hdr);
    assert!(hdr.len() > 512, "a PAX header is needed");
    let tail = [0u8; 1024];
    let stream = Cursor::new(hdr).chain(std::io::repeat(0).take(size)).chain(&tail[..]);
    let mut tr = TarReader::new(stream);
    let e = tr.next_entry().unwrap().unwrap();
    assert_eq!(e.size, size);
    assert!(tr.next_entry().unwrap().is_none());
}

#[test]
fn claimed_terabyte_in_a_short_stream_fails_fast() {
    // PAX size of 1 TB, and base-256 size field of 1 TB.
    let tb: u64 = 1 << 40;
    let mut a = Vec::new();
    tarfmt::encode(&header(b"huge", b'0', tb), &mut a);
    a.extend_from_slice(&[7u8; 4096]);
    let start = std::time::Instant::now();
    let err = read_all(&a).unwrap_err();
    assert!(matches!(err, LayerError::Truncated { .. }), "{err}");
    assert!(err.to_string().contains("huge"), "{err}");
    assert!(start.elapsed().as_secs() < 2);
    // Through the validator too.
    let err = scan_tar(&a[..]).unwrap_err();
    assert!(matches!(err, LayerError::Truncated { .. }), "{err}");
}

#[test]
fn header_only_types_carry_no_data() {
    // A directory header claiming 1024 bytes: Go reads no data for it.
    let mut a = Vec::new();
    tarfmt::encode(&header(b"d/", b'5', 1024), &mut a);
    tarfmt::encode(&header(b"f", b'0', 2), &mut a);
    a.extend_from_slice(b"hi");
    a.resize(a.len() + 510, 0);
    a.extend_from_slice(&[0u8; 1024]);
    let got = read_all(&a).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0.size, 0);
    assert_eq!(got[1].1, b"hi");
}

#[test]
fn malformed_headers_are_errors_not_panics() {
    let good = archive(&[(header(b"a", b'0', 3), b"abc")]);
    // Checksum.
    let mut bad = good.clone();
    bad[0] = b'b';
    let err = read_all(&bad).unwrap_err();
    assert!(matches!(err, LayerError::Malformed { offset: 0, .. }), "{err}");
    // Truncated in the header, in the data, before the end marker.
    for cut in [100, 514, 1024] {
        let err = read_all(&good[..cut]).unwrap_err();
        assert!(matches!(err, LayerError::Truncated { .. }), "cut {cut}: {err}");
    }
    // Empty stream.
    assert!(matches!(read_all(b"").unwrap_err(), LayerError::Truncated { .. }));
    // Garbage after the end marker.
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"junk");
    assert!(matches!(read_all(&trailing).unwrap_err(), LayerError::Malformed { .. }));
    // Oversized PAX header.
    let mut pax = Vec::new();
    tarfmt::encode(&header(b"p", b'x', 2 << 20), &mut pax);
    pax.extend_from_slice(&[b'1'; 4096]);
    assert!(matches!(read_all(&pax).unwrap_err(), LayerError::Malformed { .. }));
    // Every single-byte corruption of the header blocks: never a panic.
    let sample = archive(&[(header(&[b'q'; 120], b'0', 3), b"abc"), (header(b"l", b'1', 0), b"")]);
    for i in 0..sample.len().min(2048) {
        for v in [0u8, 0x80, 0xff, b'7', b' '] {
            let mut m = sample.clone();
            m[i] = v;
            let _ = read_all(&m);
            let _ = scan_tar(&m[..]);
        }
    }
}

#[test]
fn gzip_and_zstd_inputs_are_detected() {
    let plain = archive(&[(header(b"a", b'0', 3), b"abc")]);
    for c in [Compression::gzip(), Compression::zstd(), Compression::None] {
        let mut w = CompressWriter::new(Vec::new(), c, 2).unwrap();
        std::io::Write::write_all(&mut w, &plain).unwrap();
        let blob = w.finish().unwrap();
        let s = scan_tar(&blob[..]).unwrap();
        assert_eq!(s.codec, c.codec());
        assert_eq!((s.entries, s.total_size, s.tar_size), (1, 3, plain.len() as u64));
    }
    // A compressed stream given to the plain parser says so.
    let mut w = CompressWriter::new(Vec::new(), Compression::gzip(), 1).unwrap();
    std::io::Write::write_all(&mut w, &plain).unwrap();
    let blob = w.finish().unwrap();
    let err = read_all(&blob).unwrap_err();
    assert!(err.to_string().contains("gzip-compressed"), "{err}");
}

fn entry(path: &str, kind: EntryKind, link: &str) -> TarEntry {
    TarEntry {
        path: path.as_bytes().to_vec(),
        link_name: link.as_bytes().to_vec(),
        kind,
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 0,
        size: 0,
        dev_major: 0,
        dev_minor: 0,
        xattrs: Vec::new(),
        header_offset: 0,
    }
}

#[test]
fn validator_rules() {
    let mut v = Validator::default();
    assert!(!v.check(&entry("./", EntryKind::Directory, "")).unwrap());
    assert!(!v.check(&entry("etc/", EntryKind::Directory, "")).unwrap());
    assert!(!v.check(&entry("/etc/passwd", EntryKind::Regular, "")).unwrap());
    assert!(!v.check(&entry("etc/hard", EntryKind::HardLink, "etc/passwd")).unwrap());
    assert!(!v.check(&entry("etc/hard2", EntryKind::HardLink, "/etc/hard")).unwrap());
    assert!(v.check(&entry("etc/.wh.shadow", EntryKind::Regular, "")).unwrap());
    assert!(v.check(&entry("etc/.wh..wh..opq", EntryKind::Regular, "")).unwrap());
    let unsafe_err = |v: &mut Validator, e: TarEntry| match v.check(&e) {
        Err(LayerError::Unsafe { path, reason }) => format!("{path}: {reason}"),
        other => panic!("{}: expected an unsafe-entry error, got {other:?}", e.display_path()),
    };
    let m = unsafe_err(&mut v, entry("../../etc/x", EntryKind::Regular, ""));
    assert!(m.contains("climbs out"), "{m}");
    let m = unsafe_err(&mut v, entry("etc/h", EntryKind::HardLink, "../../etc/shadow"));
    assert!(m.contains("hard link target"), "{m}");
    let m = unsafe_err(&mut v, entry("etc/h", EntryKind::HardLink, "etc/nothere"));
    assert!(m.contains("does not appear earlier"), "{m}");
    let m = unsafe_err(&mut v, entry("etc/h", EntryKind::HardLink, "etc"));
    assert!(m.contains("directory"), "{m}");
    assert!(!v.check(&entry("link", EntryKind::Symlink, "/etc")).unwrap());
    let m = unsafe_err(&mut v, entry("link/passwd", EntryKind::Regular, ""));
    assert!(m.contains("symlink"), "{m}");
    let m = unsafe_err(&mut v, entry("x", EntryKind::HardLink, "link/passwd"));
    assert!(m.contains("symlink"), "{m}");
    // Replaced by a directory, the name is safe again.
    assert!(!v.check(&entry("link/", EntryKind::Directory, "")).unwrap());
    assert!(!v.check(&entry("link/passwd", EntryKind::Regular, "")).unwrap());
    let m = unsafe_err(&mut v, entry("a/.wh...", EntryKind::Regular, ""));
    assert!(m.contains("whiteout"), "{m}");
    assert!(matches!(v.check(&entry("s", EntryKind::Other(b'S'), "")), Err(LayerError::Unsupported { .. })));
}
