//! Building the slim root file system: the planned files copied out of the
//! fat rootfs into an empty directory, every symlink on the way recreated as
//! a link, parent directories, modes, owners, mtimes (a `.pyc` is only valid
//! while its source keeps its mtime) and hard links kept; then the accounts
//! (`root`, `nonroot` 65532) and `/tmp` every distroless image has.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, Gid, Timespec, Timestamps, Uid, chownat, utimensat};

use crate::plan::Plan;
use crate::python::layout::{RootFs, normalize, parent};

/// The non-root account of distroless images.
pub const NONROOT_UID: u32 = 65532;

#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{0} is not a regular file, directory or symlink in the image; it cannot be kept")]
    Unsupported(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> AssembleError {
    let what = what.into();
    move |source| AssembleError::Io { what, source }
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assembled {
    /// Regular files (hard links counted once) and their bytes.
    pub files: u64,
    pub bytes: u64,
    pub symlinks: u64,
    pub directories: u64,
    /// Symlinks made → their targets.
    pub links: BTreeMap<String, String>,
    /// Planned paths the image does not have (dangling links, races).
    pub skipped: Vec<String>,
}

/// Copies what `plan` keeps from the rootfs at `fat` into the empty
/// directory `out`, then adds the accounts and `/tmp`.
pub fn assemble(fat: &Path, plan: &Plan, out: &Path) -> Result<Assembled, AssembleError> {
    let mut a = Assembler {
        fs: RootFs::new(fat),
        fat: fat.to_path_buf(),
        out: out.to_path_buf(),
        done: BTreeSet::new(),
        dirs: BTreeMap::new(),
        inodes: HashMap::new(),
        stats: Assembled::default(),
    };
    fs::create_dir_all(out).map_err(io_err(format!("creating {}", out.display())))?;
    for path in plan.files.keys().chain(plan.directories.keys()) {
        a.add(path)?;
    }
    a.accounts()?;
    a.finish_dirs()?;
    Ok(a.stats)
}

struct Assembler {
    fs: RootFs,
    fat: PathBuf,
    out: PathBuf,
    /// Container paths already written.
    done: BTreeSet<String>,
    /// Directories created → the fat image's metadata to give them at the end
    /// (writing into a directory changes its mtime).
    dirs: BTreeMap<String, Option<fs::Metadata>>,
    /// (dev, ino) of copied files with several links → first container path.
    inodes: HashMap<(u64, u64), String>,
    stats: Assembled,
}

impl Assembler {
    fn host_fat(&self, path: &str) -> PathBuf {
        self.fat.join(path.trim_start_matches('/'))
    }

    fn host_out(&self, path: &str) -> PathBuf {
        self.out.join(path.trim_start_matches('/'))
    }

    /// Keeps `path`: the links crossed to reach it, then what it resolves to.
    fn add(&mut self, path: &str) -> Result<(), AssembleError> {
        let path = normalize(path);
        let Some(resolved) = self.fs.resolve(&path) else {
            self.stats.skipped.push(path);
            return Ok(());
        };
        for link in &resolved.links {
            self.add_link(link)?;
        }
        self.add_real(&resolved.real)
    }

    fn add_link(&mut self, link: &str) -> Result<(), AssembleError> {
        if !self.done.insert(link.to_string()) {
            return Ok(());
        }
        self.ensure_dir(&parent(link))?;
        let src = self.host_fat(link);
        let target = fs::read_link(&src).map_err(io_err(format!("reading link {link}")))?;
        let dst = self.host_out(link);
        std::os::unix::fs::symlink(&target, &dst).map_err(io_err(format!("creating link {link}")))?;
        self.stats.links.insert(link.to_string(), target.to_string_lossy().into_owned());
        let meta = fs::symlink_metadata(&src).map_err(io_err(format!("reading {link}")))?;
        set_owner_and_times(&dst, &meta)?;
        self.stats.symlinks += 1;
        Ok(())
    }

    /// A path without symlinks in it.
    fn add_real(&mut self, real: &str) -> Result<(), AssembleError> {
        if self.done.contains(real) {
            return Ok(());
        }
        let src = self.host_fat(real);
        let meta = fs::symlink_metadata(&src).map_err(io_err(format!("reading {real}")))?;
        if meta.is_dir() {
            return self.ensure_dir(real);
        }
        if !meta.is_file() {
            return Err(AssembleError::Unsupported(real.to_string()));
        }
        self.ensure_dir(&parent(real))?;
        self.done.insert(real.to_string());
        let dst = self.host_out(real);
        if meta.nlink() > 1 {
            if let Some(first) = self.inodes.get(&(meta.dev(), meta.ino())) {
                fs::hard_link(self.host_out(first), &dst).map_err(io_err(format!("linking {real}")))?;
                return Ok(());
            }
            self.inodes.insert((meta.dev(), meta.ino()), real.to_string());
        }
        fs::copy(&src, &dst).map_err(io_err(format!("copying {real}")))?;
        set_owner_and_times(&dst, &meta)?;
        // After chown, which clears setuid/setgid.
        fs::set_permissions(&dst, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(io_err(format!("setting the mode of {real}")))?;
        self.stats.files += 1;
        self.stats.bytes += meta.len();
        Ok(())
    }

    /// Creates `dir` (symlink-free) and its parents like the fat image's.
    fn ensure_dir(&mut self, dir: &str) -> Result<(), AssembleError> {
        if dir == "/" || self.dirs.contains_key(dir) {
            return Ok(());
        }
        self.ensure_dir(&parent(dir))?;
        let meta = fs::symlink_metadata(self.host_fat(dir)).ok().filter(fs::Metadata::is_dir);
        let dst = self.host_out(dir);
        match fs::create_dir(&dst) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(format!("creating {dir}"))(e)),
        }
        self.done.insert(dir.to_string());
        self.dirs.insert(dir.to_string(), meta);
        self.stats.directories += 1;
        Ok(())
    }

    /// `root` and `nonroot` (65532) in /etc/passwd and /etc/group (kept
    /// from the image when it has them, else made), `/home/nonroot` and
    /// `/tmp` (1777).
    fn accounts(&mut self) -> Result<(), AssembleError> {
        self.ensure_dir("/etc")?;
        let passwd = [
            ("root", "root:x:0:0:root:/root:/sbin/nologin"),
            ("nobody", "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin"),
            ("nonroot", "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin"),
        ];
        let group = [("root", "root:x:0:"), ("nogroup", "nogroup:x:65534:"), ("nonroot", "nonroot:x:65532:")];
        self.merge_accounts("/etc/passwd", &passwd, 2)?;
        self.merge_accounts("/etc/group", &group, 2)?;
        self.ensure_dir("/home")?;
        let home = self.host_out("/home/nonroot");
        if !home.exists() {
            fs::create_dir(&home).map_err(io_err("creating /home/nonroot"))?;
            fs::set_permissions(&home, fs::Permissions::from_mode(0o700))
                .map_err(io_err("setting the mode of /home/nonroot"))?;
            chown(&home, NONROOT_UID, NONROOT_UID)?;
            self.stats.directories += 1;
        }
        self.ensure_dir("/tmp")?;
        if let Some(m) = self.dirs.get_mut("/tmp") {
            // Whatever the fat image had: a distroless /tmp is world-writable and sticky.
            *m = None;
        }
        Ok(())
    }

    /// Adds the `entries` (name, line) whose name or id (field `id_field`)
    /// the file lacks; keeps everything it has.
    fn merge_accounts(&mut self, path: &str, entries: &[(&str, &str)], id_field: usize) -> Result<(), AssembleError> {
        let src = self.host_fat(path);
        let kept = self.done.contains(path);
        let mut text = if kept { fs::read_to_string(&src).unwrap_or_default() } else { String::new() };
        let names_ids: Vec<(String, String)> = text
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.first().unwrap_or(&"").to_string(), f.get(id_field).unwrap_or(&"").to_string())
            })
            .collect();
        let mut changed = !kept;
        for (name, line) in entries {
            let id = line.split(':').nth(id_field).unwrap_or("");
            if names_ids.iter().any(|(n, i)| n == name || i == id) {
                continue;
            }
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(line);
            text.push('\n');
            changed = true;
        }
        if changed {
            let dst = self.host_out(path);
            let _ = fs::remove_file(&dst);
            fs::write(&dst, text).map_err(io_err(format!("writing {path}")))?;
            fs::set_permissions(&dst, fs::Permissions::from_mode(0o644))
                .map_err(io_err(format!("setting the mode of {path}")))?;
            if let Ok(meta) = fs::metadata(&src) {
                set_owner_and_times(&dst, &meta)?;
            }
            if self.done.insert(path.to_string()) {
                self.stats.files += 1;
            }
        }
        Ok(())
    }

    /// Gives every directory its mode, owner and mtime, deepest first.
    fn finish_dirs(&mut self) -> Result<(), AssembleError> {
        for (dir, meta) in self.dirs.iter().rev() {
            let dst = self.host_out(dir);
            match meta {
                Some(meta) => {
                    set_owner_and_times(&dst, meta)?;
                    fs::set_permissions(&dst, fs::Permissions::from_mode(meta.mode() & 0o7777))
                        .map_err(io_err(format!("setting the mode of {dir}")))?;
                }
                None => {
                    let mode = if dir == "/tmp" { 0o1777 } else { 0o755 };
                    fs::set_permissions(&dst, fs::Permissions::from_mode(mode))
                        .map_err(io_err(format!("setting the mode of {dir}")))?;
                }
            }
        }
        Ok(())
    }
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), AssembleError> {
    chownat(CWD, path, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| io_err(format!("changing the owner of {}", path.display()))(e.into()))
}

/// Owner and atime/mtime of `meta` on `path` (not following a symlink).
fn set_owner_and_times(path: &Path, meta: &fs::Metadata) -> Result<(), AssembleError> {
    chown(path, meta.uid(), meta.gid())?;
    let ts = |s: i64, ns: i64| Timespec { tv_sec: s, tv_nsec: ns as _ };
    let times = Timestamps {
        last_access: ts(meta.atime(), meta.atime_nsec()),
        last_modification: ts(meta.mtime(), meta.mtime_nsec()),
    };
    utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| io_err(format!("setting the times of {}", path.display()))(e.into()))
}
