//! `distill slim --report`: sizes before and after, and the slim image by
//! category (what kind of file takes the space).

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;

/// File counts and bytes of a tree (regular files; hard links once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub files: u64,
    pub bytes: u64,
}

impl Tally {
    fn add(&mut self, bytes: u64) {
        self.files += 1;
        self.bytes += bytes;
    }
}

/// Before/after sizes and the slim tree by category.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub before: Tally,
    pub after: Tally,
    pub categories: BTreeMap<String, Tally>,
}

impl Report {
    /// Measures the fat rootfs `fat` and the slim tree `slim`.
    pub fn measure(fat: &Path, slim: &Path) -> Report {
        let mut r = Report::default();
        walk(fat, &mut |_, meta| r.before.add(meta.len()));
        walk(slim, &mut |path, meta| {
            r.after.add(meta.len());
            let rel = format!("/{}", path.strip_prefix(slim).unwrap_or(path).to_string_lossy());
            r.categories.entry(category(&rel, path).to_string()).or_default().add(meta.len());
        });
        r
    }

    /// One line: `before → after (-N %)`.
    pub fn summary(&self) -> String {
        let saved = if self.before.bytes == 0 {
            0.0
        } else {
            100.0 * (1.0 - self.after.bytes as f64 / self.before.bytes as f64)
        };
        format!(
            "{} in {} files → {} in {} files ({saved:.1} % smaller)",
            human(self.before.bytes),
            self.before.files,
            human(self.after.bytes),
            self.after.files
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<22} {:>8} {:>12}", "", "files", "size")?;
        writeln!(f, "{:<22} {:>8} {:>12}", "before (fat image)", self.before.files, human(self.before.bytes))?;
        writeln!(f, "{:<22} {:>8} {:>12}", "after (slim image)", self.after.files, human(self.after.bytes))?;
        for (name, t) in &self.categories {
            writeln!(f, "  {:<20} {:>8} {:>12}", name, t.files, human(t.bytes))?;
        }
        write!(f, "{}", self.summary())
    }
}

/// What kind of file `rel` (container path; `host` its file) is.
fn category(rel: &str, host: &Path) -> &'static str {
    let python = rel.contains("/python3") || rel.contains("/python2");
    if python && (rel.contains("/site-packages/") || rel.contains("/dist-packages/")) {
        return "python packages";
    }
    if python && rel.starts_with("/usr/lib/python") {
        return "python stdlib";
    }
    let mut magic = [0u8; 18];
    let is_elf = fs::File::open(host).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && magic[..4] == *b"\x7fELF";
    if is_elf {
        // e_type: 2 executable, 3 shared object (PIE executables too; the
        // name tells them apart).
        let so = rel.contains(".so") || rel.contains("/gconv/");
        return if so { "shared libraries" } else { "executables" };
    }
    if rel.starts_with("/etc/") || rel.starts_with("/usr/share/") || rel.starts_with("/var/") {
        return "config and data";
    }
    "application"
}

/// Calls `f` for each regular file under `root` (hard links once).
fn walk(root: &Path, f: &mut dyn FnMut(&Path, &fs::Metadata)) {
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(meta) = fs::symlink_metadata(&p) else { continue };
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() && (meta.nlink() == 1 || seen.insert((meta.dev(), meta.ino()))) {
                f(&p, &meta);
            }
        }
    }
}

/// Bytes as `12.3 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{bytes} B") } else { format!("{v:.2} {}", UNITS[u]) }
}
