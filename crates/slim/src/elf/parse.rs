//! Reading what the dynamic loader reads from an ELF file: the identification
//! bytes, the program headers (PT_INTERP, PT_DYNAMIC) and the dynamic section
//! (DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME, DT_FLAGS_1, DT_VERDEF), plus
//! the undefined dynamic symbols the knowledge rules look for.
//!
//! Parsing goes through `goblin` in permissive mode (ld.so ignores section
//! headers, so broken ones must not hide a dependency), behind a magic check
//! and `catch_unwind`: no file content can panic the analysis.

use std::collections::BTreeSet;
use std::panic;

use goblin::elf::Elf;
use goblin::elf::header::{EI_CLASS, EI_DATA, ELFCLASS32, ELFCLASS64, ELFDATA2LSB, ELFDATA2MSB, ELFMAG};

/// Undefined dynamic symbols that trigger knowledge rules.
pub(crate) const WATCHED_IMPORTS: &[&str] = &["pthread_cancel", "pthread_exit", "iconv_open"];

/// `DF_1_NODEFLIB`: do not search ld.so.cache or the default directories.
const DF_1_NODEFLIB: u64 = 0x800;

/// What decides whether ld.so accepts a file as a dependency of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ident {
    /// `EI_CLASS`: 1 = 32-bit, 2 = 64-bit.
    pub class: u8,
    /// `EI_DATA`: 1 = little endian, 2 = big endian.
    pub data: u8,
    /// `e_machine`.
    pub machine: u16,
    /// `e_flags` (ABI bits such as ARM hard-float or RISC-V float ABI).
    pub flags: u32,
}

impl Ident {
    /// Reads the identification from the first bytes of a file; `None` when
    /// the bytes are not an ELF header of a known class and byte order.
    pub fn from_header(bytes: &[u8]) -> Option<Ident> {
        if bytes.len() < 52 || bytes[..4] != ELFMAG[..] {
            return None;
        }
        let class = bytes[EI_CLASS];
        let data = bytes[EI_DATA];
        if !(class == ELFCLASS32 || class == ELFCLASS64) || !(data == ELFDATA2LSB || data == ELFDATA2MSB) {
            return None;
        }
        let u16_at = |o: usize| {
            let b = [bytes[o], bytes[o + 1]];
            if data == ELFDATA2LSB { u16::from_le_bytes(b) } else { u16::from_be_bytes(b) }
        };
        let u32_at = |o: usize| {
            let b = [bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]];
            if data == ELFDATA2LSB { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) }
        };
        let machine = u16_at(18);
        // e_flags follows e_entry, e_phoff, e_shoff (4 or 8 bytes each).
        let flags_off = if class == ELFCLASS64 { 48 } else { 36 };
        if bytes.len() < flags_off + 4 {
            return None;
        }
        Some(Ident { class, data, machine, flags: u32_at(flags_off) })
    }

    /// Whether ld.so running for `self` would load an object with `other`.
    /// Class, byte order and machine must match (as in glibc's
    /// `elf_machine_matches_host` and `VALID_ELF_HEADER`), and on ARM the
    /// float ABI too.
    pub fn accepts(&self, other: &Ident) -> bool {
        if self.class != other.class || self.data != other.data || self.machine != other.machine {
            return false;
        }
        match self.machine {
            // EM_ARM: EF_ARM_ABI_FLOAT_HARD / SOFT must agree.
            40 => (self.flags & 0x600) == (other.flags & 0x600) || (other.flags & 0x600) == 0,
            // EM_RISCV: EF_RISCV_FLOAT_ABI.
            243 => (self.flags & 0x6) == (other.flags & 0x6),
            _ => true,
        }
    }
}

/// The loader-relevant contents of an ELF file.
#[derive(Debug, Clone, Default)]
pub struct ElfInfo {
    /// Class, byte order, machine.
    pub ident: Option<Ident>,
    /// `e_type` (2 = ET_EXEC, 3 = ET_DYN).
    pub e_type: u16,
    /// `PT_INTERP`.
    pub interp: Option<String>,
    /// Whether the file has a `PT_DYNAMIC` segment.
    pub dynamic: bool,
    /// `DT_NEEDED`, in order.
    pub needed: Vec<String>,
    /// `DT_RPATH` (already ignored, i.e. empty, when `DT_RUNPATH` exists, as
    /// glibc's `get-dynamic-info.h` does).
    pub rpath: Option<String>,
    /// `DT_RUNPATH`.
    pub runpath: Option<String>,
    /// `DT_SONAME`.
    pub soname: Option<String>,
    /// `DF_1_NODEFLIB` in `DT_FLAGS_1`.
    pub nodeflib: bool,
    /// Version names this object defines (`DT_VERDEF`), e.g. `GLIBC_2.34`.
    pub verdefs: Vec<String>,
    /// The [`WATCHED_IMPORTS`] this object imports (undefined dynamic symbols).
    pub imports: BTreeSet<String>,
}

impl ElfInfo {
    /// Whether this object defines symbol version `name` (e.g. `GLIBC_2.34`).
    pub fn defines_version(&self, name: &str) -> bool {
        self.verdefs.iter().any(|v| v == name)
    }
}

/// Parses an ELF file. `Ok(None)`: not an ELF file; `Err`: an ELF file that
/// cannot be parsed (truncated, hostile), with a message.
pub fn parse(bytes: &[u8]) -> Result<Option<ElfInfo>, String> {
    if bytes.len() < 4 || bytes[..4] != ELFMAG[..] {
        return Ok(None);
    }
    let Some(ident) = Ident::from_header(bytes) else {
        return Err("invalid ELF header".to_string());
    };
    let result = panic::catch_unwind(|| parse_inner(bytes, ident));
    match result {
        Ok(r) => r.map(Some),
        Err(_) => Err("the ELF parser gave up on malformed data".to_string()),
    }
}

fn parse_inner(bytes: &[u8], ident: Ident) -> Result<ElfInfo, String> {
    let opts = goblin::options::ParseOptions::permissive();
    let elf = Elf::parse_with_opts(bytes, &opts).map_err(|e| format!("malformed ELF: {e}"))?;
    let mut info = ElfInfo {
        ident: Some(ident),
        e_type: elf.header.e_type,
        interp: elf.interpreter.map(str::to_string),
        dynamic: elf.dynamic.is_some(),
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        soname: elf.soname.map(str::to_string),
        ..ElfInfo::default()
    };
    if !elf.runpaths.is_empty() {
        info.runpath = Some(elf.runpaths.join(":"));
    } else if !elf.rpaths.is_empty() {
        info.rpath = Some(elf.rpaths.join(":"));
    }
    if let Some(d) = &elf.dynamic {
        info.nodeflib = d.info.flags_1 & DF_1_NODEFLIB != 0;
    }
    if let Some(verdef) = &elf.verdef {
        for def in verdef.iter() {
            // The first auxiliary entry names the version itself.
            if let Some(aux) = def.iter().next()
                && let Some(name) = elf.dynstrtab.get_at(aux.vda_name)
            {
                info.verdefs.push(name.to_string());
            }
        }
    }
    for sym in elf.dynsyms.iter() {
        if sym.st_shndx == 0
            && sym.st_name != 0
            && let Some(name) = elf.dynstrtab.get_at(sym.st_name)
        {
            // Versioned imports are stored without the @VERSION suffix.
            if WATCHED_IMPORTS.contains(&name) {
                info.imports.insert(name.to_string());
            }
        }
    }
    Ok(info)
}
