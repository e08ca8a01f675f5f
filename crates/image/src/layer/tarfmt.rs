//! Deterministic tar header encoding: ustar headers, with a PAX extended
//! header (sorted records, Go's `PaxHeaders.0` naming) when a value does not
//! fit: names or link names over 100 bytes or not ASCII, sizes of 8 GiB and
//! more, large ids, out-of-range mtimes, and xattrs (`SCHILY.xattr.*`).
//! uname/gname are empty, atime/ctime are never written.

pub(crate) const BLOCK: usize = 512;
const MAX_OCTAL_8: u64 = 0o7777777;
const MAX_OCTAL_12: u64 = 0o77777777777;

pub(crate) struct Header<'a> {
    /// Name as stored (directories end with `/`).
    pub name: &'a [u8],
    pub typeflag: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    pub size: u64,
    pub link: &'a [u8],
    pub dev: (u32, u32),
    pub xattrs: &'a [(Vec<u8>, Vec<u8>)],
}

/// Appends the header block(s) for `h` to `out`: an optional PAX header
/// (block + payload + padding) and the ustar block.
pub(crate) fn encode(h: &Header<'_>, out: &mut Vec<u8>) {
    let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    if h.name.len() > 100 || !h.name.is_ascii() {
        records.push((b"path".to_vec(), h.name.to_vec()));
    }
    if h.link.len() > 100 || !h.link.is_ascii() {
        records.push((b"linkpath".to_vec(), h.link.to_vec()));
    }
    if h.size > MAX_OCTAL_12 {
        records.push((b"size".to_vec(), h.size.to_string().into_bytes()));
    }
    if h.uid > MAX_OCTAL_8 {
        records.push((b"uid".to_vec(), h.uid.to_string().into_bytes()));
    }
    if h.gid > MAX_OCTAL_8 {
        records.push((b"gid".to_vec(), h.gid.to_string().into_bytes()));
    }
    if h.mtime < 0 || h.mtime as u64 > MAX_OCTAL_12 {
        records.push((b"mtime".to_vec(), h.mtime.to_string().into_bytes()));
    }
    for (k, v) in h.xattrs {
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(k);
        records.push((key, v.clone()));
    }
    if !records.is_empty() {
        records.sort();
        let mut payload = Vec::new();
        for (k, v) in &records {
            pax_record(&mut payload, k, v);
        }
        let trimmed = trim_slash(h.name);
        let (dir, base) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
            None => (&b""[..], trimmed),
        };
        let mut pax_name = dir.to_vec();
        pax_name.extend_from_slice(b"PaxHeaders.0/");
        pax_name.extend_from_slice(base);
        let mut block = [0u8; BLOCK];
        put_str(&mut block[0..100], &ascii(&pax_name));
        put_num(&mut block[100..108], 0);
        put_num(&mut block[108..116], 0);
        put_num(&mut block[116..124], 0);
        put_num(&mut block[124..136], payload.len() as u64);
        put_num(&mut block[136..148], 0);
        block[156] = b'x';
        finish_block(&mut block);
        out.extend_from_slice(&block);
        out.extend_from_slice(&payload);
        out.resize(out.len() + pad(payload.len() as u64) as usize, 0);
    }

    let mut block = [0u8; BLOCK];
    put_str(&mut block[0..100], &ascii(h.name));
    put_num(&mut block[100..108], u64::from(h.mode & 0o7777));
    put_num(&mut block[108..116], h.uid);
    put_num(&mut block[116..124], h.gid);
    put_num(&mut block[124..136], h.size);
    put_signed(&mut block[136..148], h.mtime);
    block[156] = h.typeflag;
    put_str(&mut block[157..257], &ascii(h.link));
    if matches!(h.typeflag, b'3' | b'4') {
        put_num(&mut block[329..337], u64::from(h.dev.0));
        put_num(&mut block[337..345], u64::from(h.dev.1));
    }
    finish_block(&mut block);
    out.extend_from_slice(&block);
}

/// Zero padding after `size` bytes of data.
pub(crate) fn pad(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn trim_slash(mut s: &[u8]) -> &[u8] {
    while s.len() > 1 && s.ends_with(b"/") {
        s = &s[..s.len() - 1];
    }
    s
}

/// `"%d %s=%s\n"` where the length counts itself.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let base = key.len() + value.len() + 3;
    let mut len = base + 1;
    loop {
        let total = base + len.to_string().len();
        if total == len {
            break;
        }
        len = total;
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// The ASCII fallback of a name for the ustar field (the PAX record holds
/// the real one): non-ASCII bytes dropped, cut to 100 bytes.
fn ascii(s: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = s.iter().copied().filter(|b| b.is_ascii() && *b != 0).collect();
    v.truncate(100);
    v
}

fn put_str(field: &mut [u8], s: &[u8]) {
    let n = s.len().min(field.len());
    field[..n].copy_from_slice(&s[..n]);
}

/// Octal with a trailing NUL when it fits, else GNU base-256 (the PAX
/// record, written too, is what PAX readers use).
fn put_num(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    if digits < 22 && v < (1u64 << (3 * digits)) {
        let s = format!("{v:0digits$o}");
        field[..digits].copy_from_slice(s.as_bytes());
        field[digits] = 0;
    } else {
        put_base256(field, i128::from(v));
    }
}

fn put_signed(field: &mut [u8], v: i64) {
    if v >= 0 {
        put_num(field, v as u64);
    } else {
        put_base256(field, i128::from(v));
    }
}

fn put_base256(field: &mut [u8], v: i128) {
    let n = field.len();
    for (i, b) in field.iter_mut().enumerate() {
        let shift = 8 * (n - 1 - i);
        *b = if shift < 128 {
            (v >> shift) as u8
        } else if v < 0 {
            0xff
        } else {
            0
        };
    }
    field[0] = if v < 0 { 0xff } else { 0x80 };
}

/// Sets magic, version and checksum.
fn finish_block(block: &mut [u8; BLOCK]) {
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}");
    block[148..154].copy_from_slice(s.as_bytes());
    block[154] = 0;
    block[155] = b' ';
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_lengths() {
        let mut v = Vec::new();
        pax_record(&mut v, b"path", b"abc");
        assert_eq!(v, b"12 path=abc\n");
        let mut v = Vec::new();
        let long = vec![b'x'; 95];
        pax_record(&mut v, b"path", &long);
        // 4 + 95 + 3 = 102 plus 3 digits = 105.
        assert!(v.starts_with(b"105 path="));
        assert_eq!(v.len(), 105);
        let mut v = Vec::new();
        pax_record(&mut v, b"k", b"1234");
        // 1 + 4 + 3 = 8, plus 1 digit = 9 ... but 9 is one digit: "9 k=1234\n".
        assert_eq!(v, b"9 k=1234\n");
        let mut v = Vec::new();
        pax_record(&mut v, b"k", b"12345");
        assert_eq!(v, b"11 k=12345\n");
    }

    #[test]
    fn numbers() {
        let mut f = [0u8; 12];
        put_num(&mut f, 0o755);
        assert_eq!(&f, b"00000000755\0");
        put_num(&mut f, 9 << 30);
        assert_eq!(f[0], 0x80);
        assert_eq!(u64::from_be_bytes(f[4..].try_into().unwrap()), 9 << 30);
        put_signed(&mut f, -2);
        assert_eq!(f[0], 0xff);
        assert_eq!(f[11], 0xfe);
    }
}
