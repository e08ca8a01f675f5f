//! Helpers shared by the `layer_*` integration tests: scratch dirs, a tree
//! builder with every file type, tree snapshots for comparison, and a
//! hand-rolled tar header writer (independent of the crate's) for hostile
//! archives.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A scratch directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let p = std::env::temp_dir().join(format!(
            "distill-layer-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A new subdirectory.
    pub fn sub(&self, name: &str) -> PathBuf {
        let p = self.0.join(name);
        fs::create_dir_all(&p).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

pub fn set_mtime(p: &Path, secs: i64) {
    let t = rustix::fs::Timespec { tv_sec: secs, tv_nsec: 0 };
    let ts = rustix::fs::Timestamps { last_access: t, last_modification: t };
    rustix::fs::utimensat(rustix::fs::CWD, p, &ts, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

pub fn set_xattr(p: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(p, name, value, rustix::fs::XattrFlags::empty())
        .unwrap_or_else(|e| panic!("setxattr {} {name}: {e}", p.display()));
}

pub fn get_xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    match rustix::fs::lgetxattr(p, name, &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(_) => None,
    }
}

pub fn list_xattrs(p: &Path) -> Vec<(String, Vec<u8>)> {
    let mut buf = vec![0u8; 65536];
    let n = rustix::fs::llistxattr(p, &mut buf[..]).unwrap_or(0);
    let mut out: Vec<(String, Vec<u8>)> = buf[..n]
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .filter_map(|name| get_xattr(p, &name).map(|v| (name, v)))
        .collect();
    out.sort();
    out
}

pub fn mknod(p: &Path, kind: rustix::fs::FileType, perm: u32, major: u32, minor: u32) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        kind,
        rustix::fs::Mode::from_raw_mode(perm),
        rustix::fs::makedev(major, minor),
    )
    .unwrap_or_else(|e| panic!("mknod {}: {e}", p.display()));
}

pub fn write(p: &Path, data: &[u8], mode: u32) {
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(p, data).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

pub fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
}

/// Pseudo-random bytes (xorshift), compressible enough to be realistic.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        // Half text-like, half random.
        if x.is_multiple_of(3) {
            v.extend_from_slice(b"lorem ipsum dolor ");
        } else {
            v.extend_from_slice(&b);
        }
    }
    v.truncate(n);
    v
}

type Step = Box<dyn Fn(&Path)>;

/// Names used by [`build_full_tree`] that need explaining in assertions.
pub const LONG_COMPONENT_LEN: usize = 150;

/// A tree with every kind of entry a layer carries. Devices, owners and
/// `trusted.*` xattrs only when root. `reverse` creates things in the
/// opposite order (different inodes and readdir order, same content).
pub fn build_full_tree(root: &Path, reverse: bool) {
    let root_user = is_root();
    let long_component = "L".repeat(LONG_COMPONENT_LEN);
    let deep: PathBuf = ["d".repeat(60), "e".repeat(60), "f".repeat(60), "g".repeat(60)].iter().collect();
    let mut steps: Vec<Step> = vec![
        Box::new(|r| write(&r.join("etc/passwd"), b"root:x:0:0:root:/root:/bin/sh\n", 0o644)),
        Box::new(|r| write(&r.join("bin/su"), &noise(20_000, 1), 0o4755)),
        Box::new(|r| write(&r.join("bin/sg"), b"#!/bin/sh\n", 0o2755)),
        Box::new(|r| write(&r.join("bin/ping"), &noise(3000, 2), 0o755)),
        Box::new(|r| write(&r.join("data/big.bin"), &noise(1 << 20, 3), 0o600)),
        Box::new(|r| write(&r.join("data/empty"), b"", 0o644)),
        Box::new(|r| write(&r.join("data/block512"), &[b'x'; 512], 0o644)),
        Box::new(|r| write(&r.join("data/ünïcødé-名前.txt"), "unicode ✓\n".as_bytes(), 0o644)),
        Box::new(move |r| write(&r.join("data").join(&long_component), b"long name\n", 0o644)),
        Box::new(move |r| write(&r.join(&deep).join("h".repeat(100)), b"deep\n", 0o640)),
        Box::new(|r| {
            fs::create_dir_all(r.join("tmp")).unwrap();
            fs::set_permissions(r.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        }),
        Box::new(|r| {
            fs::create_dir_all(r.join("srv/shared")).unwrap();
            fs::set_permissions(r.join("srv/shared"), fs::Permissions::from_mode(0o2775)).unwrap();
        }),
        Box::new(|r| {
            fs::create_dir_all(r.join("empty")).unwrap();
            fs::set_permissions(r.join("empty"), fs::Permissions::from_mode(0o700)).unwrap();
        }),
        Box::new(|r| fs::create_dir_all(r.join("usr/lib")).unwrap()),
        Box::new(|r| std::os::unix::fs::symlink("usr/lib", r.join("lib")).unwrap()),
        Box::new(|r| std::os::unix::fs::symlink("/etc/passwd", r.join("abs-link")).unwrap()),
        Box::new(|r| std::os::unix::fs::symlink("nowhere/x", r.join("dangling")).unwrap()),
        Box::new(|r| std::os::unix::fs::symlink("t".repeat(200), r.join("long-target")).unwrap()),
        Box::new(|r| {
            fs::create_dir_all(r.join("run")).unwrap();
            mknod(&r.join("run/fifo"), rustix::fs::FileType::Fifo, 0o620, 0, 0);
        }),
        Box::new(|r| {
            fs::create_dir_all(r.join("run")).unwrap();
            // Sockets are skipped by the writer.
            let _ = std::os::unix::net::UnixListener::bind(r.join("run/sock")).unwrap();
        }),
    ];
    let links: Step = Box::new(|r| {
        fs::hard_link(r.join("bin/su"), r.join("bin/su-hard")).unwrap();
        fs::hard_link(r.join("data/block512"), r.join("data/h1")).unwrap();
        fs::hard_link(r.join("data/block512"), r.join("etc/h2")).unwrap();
    });
    if root_user {
        steps.push(Box::new(|r| {
            fs::create_dir_all(r.join("dev")).unwrap();
            mknod(&r.join("dev/null"), rustix::fs::FileType::CharacterDevice, 0o666, 1, 3);
            mknod(&r.join("dev/loop9"), rustix::fs::FileType::BlockDevice, 0o660, 7, 9);
        }));
    }
    if reverse {
        steps.reverse();
    }
    for s in &steps {
        s(root);
    }
    links(root);

    // Xattrs.
    set_xattr(&root.join("etc/passwd"), "user.comment", b"hello world");
    set_xattr(&root.join("data"), "user.dir", b"\x00\x01binary\xff");
    if root_user {
        // cap_net_raw+ep, VFS_CAP_REVISION_2.
        let cap = [1u8, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        set_xattr(&root.join("bin/ping"), "security.capability", &cap);
        set_xattr(&root.join("abs-link"), "trusted.note", b"on a symlink");
    }
    // Owners.
    if root_user {
        chown(&root.join("etc/passwd"), 0, 42);
        chown(&root.join("data/big.bin"), 1000, 1000);
        chown(&root.join("srv/shared"), 65534, 65534);
        chown(&root.join("dangling"), 1000, 1001);
        // Over the 7-digit octal limit: PAX uid/gid.
        chown(&root.join("data/empty"), 3_000_000, 3_000_001);
        // chown clears setuid: restore.
        fs::set_permissions(root.join("bin/su"), fs::Permissions::from_mode(0o4755)).unwrap();
    }
    set_times(root);
}

/// Fixed mtimes on everything, one negative; directories last.
pub fn set_times(root: &Path) {
    let mut all = Vec::new();
    collect(root, &mut all);
    all.sort();
    // Children before parents.
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, p) in all.iter().enumerate() {
        let t = if p.ends_with("data/empty") { -3600 } else { 1_600_000_000 + (i as i64 % 7) * 1000 };
        set_mtime(p, t);
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let m = fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            collect(&p, out);
        }
        out.push(p);
    }
}

/// What a comparison looks at for one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub kind: char,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub content: Option<Vec<u8>>,
    pub link: Option<Vec<u8>>,
    pub rdev: Option<(u32, u32)>,
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// First path (sorted) of the inode, for hard links.
    pub inode_group: Option<Vec<u8>>,
}

/// Every path under `root` (not root itself), sockets left out.
pub fn snapshot(root: &Path) -> BTreeMap<Vec<u8>, Info> {
    let mut all = Vec::new();
    collect(root, &mut all);
    let mut rels: Vec<(Vec<u8>, PathBuf)> =
        all.into_iter().map(|p| (p.strip_prefix(root).unwrap().as_os_str().as_bytes().to_vec(), p)).collect();
    rels.sort();
    let mut groups: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    let mut out = BTreeMap::new();
    for (rel, p) in rels {
        let m = fs::symlink_metadata(&p).unwrap();
        use std::os::unix::fs::FileTypeExt;
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            'd'
        } else if ft.is_file() {
            'f'
        } else if ft.is_symlink() {
            'l'
        } else if ft.is_char_device() {
            'c'
        } else if ft.is_block_device() {
            'b'
        } else if ft.is_fifo() {
            'p'
        } else {
            continue;
        };
        let inode_group = if !ft.is_dir() && m.nlink() > 1 {
            Some(groups.entry((m.dev(), m.ino())).or_insert_with(|| rel.clone()).clone())
        } else {
            None
        };
        out.insert(
            rel,
            Info {
                kind,
                mode: if kind == 'l' { 0 } else { m.mode() & 0o7777 },
                uid: m.uid(),
                gid: m.gid(),
                mtime: m.mtime(),
                content: ft.is_file().then(|| fs::read(&p).unwrap()),
                link: ft.is_symlink().then(|| fs::read_link(&p).unwrap().as_os_str().as_bytes().to_vec()),
                rdev: (kind == 'c' || kind == 'b').then(|| (rustix::fs::major(m.rdev()), rustix::fs::minor(m.rdev()))),
                xattrs: list_xattrs(&p).into_iter().filter(|(k, _)| !k.starts_with("trusted.overlay.")).collect(),
                inode_group,
            },
        );
    }
    out
}

/// Asserts two snapshots are equal, naming the first difference.
pub fn assert_same_tree(a: &BTreeMap<Vec<u8>, Info>, b: &BTreeMap<Vec<u8>, Info>) {
    for (k, va) in a {
        match b.get(k) {
            None => panic!("{:?} missing from the extracted tree", String::from_utf8_lossy(k)),
            Some(vb) => assert_eq!(va, vb, "{:?} differs", String::from_utf8_lossy(k)),
        }
    }
    for k in b.keys() {
        assert!(a.contains_key(k), "{:?} appeared in the extracted tree", String::from_utf8_lossy(k));
    }
}

/// Files and dirs under `dir` (to check a sentinel stays empty).
pub fn list(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if dir.exists() {
        collect(dir, &mut v);
    }
    v
}

// ---- hand-made tar (independent of the crate's writer) ----

/// One raw ustar header block.
pub fn raw_header(name: &[u8], typeflag: u8, size: u64, link: &[u8]) -> [u8; 512] {
    let mut b = [0u8; 512];
    let n = name.len().min(100);
    b[..n].copy_from_slice(&name[..n]);
    b[100..108].copy_from_slice(b"0000644\0");
    b[108..116].copy_from_slice(b"0000000\0");
    b[116..124].copy_from_slice(b"0000000\0");
    if size <= 0o77777777777 {
        b[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    } else {
        b[124] = 0x80;
        b[128..136].copy_from_slice(&size.to_be_bytes());
    }
    b[136..148].copy_from_slice(b"14371573020\0");
    b[156] = typeflag;
    let l = link.len().min(100);
    b[157..157 + l].copy_from_slice(&link[..l]);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    b[148..156].copy_from_slice(b"        ");
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    b
}

/// A raw archive builder.
#[derive(Default)]
pub struct RawTar(pub Vec<u8>);

impl RawTar {
    pub fn entry(&mut self, name: &str, typeflag: u8, data: &[u8], link: &str) -> &mut Self {
        self.0.extend_from_slice(&raw_header(name.as_bytes(), typeflag, data.len() as u64, link.as_bytes()));
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.resize(self.0.len() + pad, 0);
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, b'0', data, "")
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, b'5', b"", "")
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, b'2', b"", target)
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, b'1', b"", target)
    }

    /// A PAX extended header with the given records.
    pub fn pax(&mut self, records: &[(&str, &str)]) -> &mut Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let base = k.len() + v.len() + 3;
            let mut len = base + 1;
            while base + len.to_string().len() != len {
                len = base + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {k}={v}\n").as_bytes());
        }
        self.entry("PaxHeaders/x", b'x', &data.clone(), "")
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let mut v = self.0.clone();
        v.extend_from_slice(&[0u8; 1024]);
        v
    }
}

pub fn run(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn have(bin: &str) -> bool {
    std::process::Command::new(bin).arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

pub fn read_file(p: &Path) -> io::Result<Vec<u8>> {
    fs::read(p)
}
