//! Validating a tar stream without writing anything; the same checks run
//! inside [`write_layer_from_tar`](super::write_layer_from_tar).

use std::collections::HashMap;
use std::io::Read;

use serde::Serialize;

use super::compress::{Codec, decompress};
use super::path::{clean_components, join};
use super::reader::{EntryKind, TarEntry, TarReader};
use super::{LayerError, WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE, WHITEOUT_PREFIX, lossy};

/// What [`scan_tar`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TarSummary {
    /// The compression of the input.
    #[serde(serialize_with = "ser_codec")]
    pub codec: Codec,
    /// Entries (extended headers not counted).
    pub entries: u64,
    /// Sum of the entries' data sizes.
    pub total_size: u64,
    /// Bytes of the (uncompressed) tar stream.
    pub tar_size: u64,
    pub regular_files: u64,
    pub directories: u64,
    pub symlinks: u64,
    pub hard_links: u64,
    pub devices: u64,
    pub fifos: u64,
    pub whiteouts: u64,
}

fn ser_codec<S: serde::Serializer>(c: &Codec, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(c.name())
}

/// Reads a whole tar stream (plain, gzip or zstd) and checks that it is
/// safe and complete: no name or hard-link target climbs out of the root
/// with `..`; no entry is written through a symlink that the archive itself
/// created; hard links point to non-directory entries seen earlier; only
/// regular files, directories, links, devices and fifos; the stream is not
/// truncated, its compression is valid, no entry claims more data than
/// there is, and nothing but zeros follows the end-of-archive marker.
pub fn scan_tar(reader: impl Read) -> Result<TarSummary, LayerError> {
    let dec = decompress(reader)?;
    let codec = dec.codec();
    let mut tr = TarReader::new(dec);
    match scan_entries(&mut tr, codec) {
        Ok(s) => Ok(s),
        Err(e) => Err(tr.root_cause(e, codec != Codec::None)),
    }
}

fn scan_entries<R: Read>(tr: &mut TarReader<R>, codec: Codec) -> Result<TarSummary, LayerError> {
    let mut v = Validator::default();
    let mut s = TarSummary {
        codec,
        entries: 0,
        total_size: 0,
        tar_size: 0,
        regular_files: 0,
        directories: 0,
        symlinks: 0,
        hard_links: 0,
        devices: 0,
        fifos: 0,
        whiteouts: 0,
    };
    while let Some(e) = tr.next_entry()? {
        if v.check(&e)? {
            s.whiteouts += 1;
        } else {
            match e.kind {
                EntryKind::Regular => s.regular_files += 1,
                EntryKind::Directory => s.directories += 1,
                EntryKind::Symlink => s.symlinks += 1,
                EntryKind::HardLink => s.hard_links += 1,
                EntryKind::CharDevice | EntryKind::BlockDevice => s.devices += 1,
                EntryKind::Fifo => s.fifos += 1,
                EntryKind::Other(_) => {}
            }
        }
        s.entries += 1;
        s.total_size += e.size;
    }
    tr.drain(true)?;
    s.tar_size = tr.offset();
    Ok(s)
}

/// Per-archive safety checks, fed one entry at a time.
#[derive(Default)]
pub(crate) struct Validator {
    /// Clean names seen so far, with the kind of their latest entry.
    seen: HashMap<Vec<u8>, EntryKind>,
}

impl Validator {
    /// Checks one entry; `Ok(true)` for a whiteout.
    pub(crate) fn check(&mut self, e: &TarEntry) -> Result<bool, LayerError> {
        let comps = clean_components(&e.path).map_err(|why| LayerError::unsafe_entry(&e.path, why))?;
        if comps.is_empty() && e.kind != EntryKind::Directory {
            return Err(LayerError::unsafe_entry(&e.path, "it names the root but is not a directory"));
        }
        self.check_parents(&comps, &e.path, "")?;
        if let Some(base) = comps.last()
            && base.starts_with(WHITEOUT_PREFIX.as_bytes())
        {
            if *base != WHITEOUT_OPAQUE.as_bytes() && !base.starts_with(WHITEOUT_META_PREFIX.as_bytes()) {
                let target = &base[WHITEOUT_PREFIX.len()..];
                if target.is_empty() || target == b"." || target == b".." {
                    return Err(LayerError::unsafe_entry(&e.path, "a whiteout must name a file"));
                }
            }
            return Ok(true);
        }
        let mut kind = e.kind;
        match e.kind {
            EntryKind::HardLink => {
                let t = clean_components(&e.link_name).map_err(|why| {
                    LayerError::unsafe_entry(&e.path, format!("hard link target {:?}: {why}", lossy(&e.link_name)))
                })?;
                if t.is_empty() {
                    return Err(LayerError::unsafe_entry(&e.path, "a hard link to the root"));
                }
                self.check_parents(&t, &e.path, "hard link target ")?;
                let tj = join(&t);
                match self.seen.get(&tj) {
                    None => {
                        return Err(LayerError::unsafe_entry(
                            &e.path,
                            format!("hard link target {:?} does not appear earlier in the archive", lossy(&tj)),
                        ));
                    }
                    Some(EntryKind::Directory) => {
                        return Err(LayerError::unsafe_entry(
                            &e.path,
                            format!("hard link target {:?} is a directory", lossy(&tj)),
                        ));
                    }
                    Some(k) => kind = *k,
                }
            }
            EntryKind::Other(t) => {
                return Err(LayerError::unsupported(&e.path, format!("entry type {:?}", char::from(t))));
            }
            _ => {}
        }
        self.seen.insert(join(&comps), kind);
        Ok(false)
    }

    /// No proper prefix of `comps` may be a symlink the archive created:
    /// extracting through it could leave the root.
    fn check_parents(&self, comps: &[&[u8]], path: &[u8], what: &str) -> Result<(), LayerError> {
        if self.seen.is_empty() {
            return Ok(());
        }
        let mut prefix = Vec::new();
        for (i, c) in comps.iter().enumerate().take(comps.len().saturating_sub(1)) {
            if i > 0 {
                prefix.push(b'/');
            }
            prefix.extend_from_slice(c);
            if self.seen.get(&prefix) == Some(&EntryKind::Symlink) {
                return Err(LayerError::unsafe_entry(
                    path,
                    format!("{what}goes through {:?}, a symlink earlier in the archive", lossy(&prefix)),
                ));
            }
        }
        Ok(())
    }
}
