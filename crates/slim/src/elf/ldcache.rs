//! glibc's `/etc/ld.so.cache`, both formats (glibc `elf/cache.c`,
//! `sysdeps/generic/dl-cache.h`):
//!
//! - old: `"ld.so-1.7.0"`, `u32 nlibs`, entries `{i32 flags; u32 key; u32 value}`,
//!   string offsets relative to the end of the entry table; it may be followed
//!   (8-byte aligned) by a new-format cache, which ld.so then prefers;
//! - new: `"glibc-ld.so.cache1.1"`, `u32 nlibs`, `u32 len_strings`, `u8 flags`,
//!   3 pad bytes, `u32 extension_offset`, 3 unused `u32`s, then entries
//!   `{i32 flags; u32 key; u32 value; u32 osversion; u64 hwcap}`, string offsets
//!   relative to the start of the new header. Byte order is the writer's.
//!
//! Only the lookup ld.so does is implemented: entries whose key equals the
//! requested name and whose flags match the process' ABI, in cache order.

use super::parse::Ident;

const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const OLD_HEADER: usize = 16;
const OLD_ENTRY: usize = 12;
const NEW_HEADER: usize = 48;
const NEW_ENTRY: usize = 24;
/// `DL_CACHE_HWCAP_EXTENSION`: the hwcap field names a glibc-hwcaps subdirectory.
const HWCAP_EXTENSION: u64 = 1 << 62;

/// Which of the two formats an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheFormat {
    /// `ld.so-1.7.0`.
    Old,
    /// `glibc-ld.so.cache1.1`.
    New,
}

/// One cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// `FLAG_ELF_LIBC6` in the low byte, the ABI in the high byte.
    pub flags: i32,
    /// The SONAME (what DT_NEEDED asks for).
    pub key: String,
    /// The path ld.so opens.
    pub value: String,
    /// The hwcap field (new format only): non-zero for hwcaps variants.
    pub hwcap: u64,
}

impl CacheEntry {
    /// Whether the entry is a glibc-hwcaps or legacy-hwcap variant rather
    /// than the baseline library.
    pub fn is_hwcap_variant(&self) -> bool {
        self.hwcap != 0
    }

    /// Whether the entry names a glibc-hwcaps subdirectory (glibc ≥ 2.33).
    pub fn is_glibc_hwcaps(&self) -> bool {
        self.hwcap & HWCAP_EXTENSION != 0
    }
}

/// A parsed `ld.so.cache`.
#[derive(Debug, Clone)]
pub struct LdCache {
    /// The format ld.so would use (the new one when both are present).
    pub format: CacheFormat,
    /// Entries in file order.
    pub entries: Vec<CacheEntry>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    le: bool,
}

impl Reader<'_> {
    fn u32(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    }
    fn u64(&self, at: usize) -> Option<u64> {
        let b: [u8; 8] = self.bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(if self.le { u64::from_le_bytes(b) } else { u64::from_be_bytes(b) })
    }
    fn cstr(&self, at: usize) -> Option<String> {
        let rest = self.bytes.get(at..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
}

impl LdCache {
    /// Parses a cache file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<LdCache, String> {
        if bytes.starts_with(OLD_MAGIC) {
            let r = Reader { bytes, le: cfg!(target_endian = "little") };
            let nlibs = r.u32(12).ok_or("truncated old-format header")? as usize;
            let table_end = nlibs
                .checked_mul(OLD_ENTRY)
                .and_then(|n| n.checked_add(OLD_HEADER))
                .filter(|&end| end <= bytes.len())
                .ok_or("old-format entry table runs past the end of the file")?;
            // A new-format cache may follow, aligned like `struct cache_file_new`.
            let new_at = table_end.next_multiple_of(8);
            if bytes.get(new_at..).is_some_and(|b| b.starts_with(NEW_MAGIC)) {
                return Self::parse_new(&bytes[new_at..]);
            }
            let mut entries = Vec::with_capacity(nlibs);
            for i in 0..nlibs {
                let at = OLD_HEADER + i * OLD_ENTRY;
                let flags = r.u32(at).ok_or("truncated entry")? as i32;
                let key = r.u32(at + 4).ok_or("truncated entry")? as usize;
                let value = r.u32(at + 8).ok_or("truncated entry")? as usize;
                let key = r.cstr(table_end.saturating_add(key)).ok_or("key string out of bounds")?;
                let value = r.cstr(table_end.saturating_add(value)).ok_or("value string out of bounds")?;
                entries.push(CacheEntry { flags, key, value, hwcap: 0 });
            }
            Ok(LdCache { format: CacheFormat::Old, entries })
        } else if bytes.starts_with(NEW_MAGIC) {
            Self::parse_new(bytes)
        } else {
            Err("not an ld.so.cache (unknown magic)".to_string())
        }
    }

    fn parse_new(bytes: &[u8]) -> Result<LdCache, String> {
        // The writer's byte order: glibc checks it through the flags byte
        // (bits 0-1: 0 unknown, 2 little, 3 big); fall back to a plausibility test.
        let flags = *bytes.get(28).ok_or("truncated new-format header")?;
        let le = match flags & 3 {
            2 => true,
            3 => false,
            _ => {
                let n_le = Reader { bytes, le: true }.u32(20).unwrap_or(u32::MAX);
                (n_le as usize).saturating_mul(NEW_ENTRY) <= bytes.len()
            }
        };
        let r = Reader { bytes, le };
        let nlibs = r.u32(20).ok_or("truncated new-format header")? as usize;
        nlibs
            .checked_mul(NEW_ENTRY)
            .and_then(|n| n.checked_add(NEW_HEADER))
            .filter(|&end| end <= bytes.len())
            .ok_or("new-format entry table runs past the end of the file")?;
        let mut entries = Vec::with_capacity(nlibs);
        for i in 0..nlibs {
            let at = NEW_HEADER + i * NEW_ENTRY;
            let flags = r.u32(at).ok_or("truncated entry")? as i32;
            let key = r.u32(at + 4).ok_or("truncated entry")? as usize;
            let value = r.u32(at + 8).ok_or("truncated entry")? as usize;
            let hwcap = r.u64(at + 16).ok_or("truncated entry")?;
            let key = r.cstr(key).ok_or("key string out of bounds")?;
            let value = r.cstr(value).ok_or("value string out of bounds")?;
            entries.push(CacheEntry { flags, key, value, hwcap });
        }
        Ok(LdCache { format: CacheFormat::New, entries })
    }

    /// Entries for `name` that a process of `ident` accepts, in cache order.
    pub fn lookup<'a>(&'a self, name: &'a str, ident: &'a Ident) -> impl Iterator<Item = &'a CacheEntry> + 'a {
        self.entries.iter().filter(move |e| e.key == name && flags_match(e.flags, ident))
    }
}

/// glibc's `_dl_cache_check_flags` for the ABI of `ident`
/// (`sysdeps/*/dl-cache.h`): `FLAG_ELF_LIBC6` (3) plus the ABI's high byte.
pub fn flags_match(flags: i32, ident: &Ident) -> bool {
    let want: &[i32] = match (ident.machine, ident.class) {
        // EM_X86_64: x86-64 (FLAG_X8664_LIB64) or x32 (FLAG_X8664_LIBX32).
        (62, 2) => &[0x0303],
        (62, 1) => &[0x0803],
        // EM_386.
        (3, _) => &[0x0003, 0x0001],
        // EM_AARCH64: FLAG_AARCH64_LIB64.
        (183, 2) => &[0x0a03],
        // EM_ARM: FLAG_ARM_LIBHF or FLAG_ARM_LIBSF (soft float uses the plain id).
        (40, _) => {
            if ident.flags & 0x400 != 0 {
                &[0x0903]
            } else {
                &[0x0003, 0x0001]
            }
        }
        // EM_RISCV: FLAG_RISCV_FLOAT_ABI_DOUBLE / _SOFT.
        (243, _) => {
            if ident.flags & 0x6 == 0x4 {
                &[0x1003]
            } else {
                &[0x0f03]
            }
        }
        // EM_PPC64 (FLAG_POWERPC_LIB64), EM_S390 (FLAG_S390_LIB64 when 64-bit).
        (21, _) => &[0x0503],
        (22, 2) => &[0x0403],
        // Anything else: the generic check (libc6 entries of any ABI).
        _ => return flags & 0xff == 3 || flags == 1,
    };
    want.contains(&flags)
}
