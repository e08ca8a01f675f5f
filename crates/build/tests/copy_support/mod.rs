//! Shared fixtures for the COPY/ADD tests: a build context and a
//! destination root side by side (with an `outside` directory next to them
//! that nothing may touch), and a tiny tar writer for hand-made (also
//! hostile) archives.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use distill_build::context::{Context, IgnoreMatcher};
use distill_build::copy::{CopyError, CopyRequest, CopyStats, SourceItem, copy_into};
use distill_image::layer::{CompressWriter, Compression};

pub struct Fixture {
    _dir: tempfile::TempDir,
    pub ctx: PathBuf,
    pub root: PathBuf,
    pub outside: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        let root = dir.path().join("rootfs");
        let outside = dir.path().join("outside");
        for d in [&ctx, &root, &outside] {
            fs::create_dir(d).unwrap();
        }
        fs::write(outside.join("keep"), "outside").unwrap();
        Fixture { _dir: dir, ctx, root, outside }
    }

    pub fn context(&self) -> Context {
        Context::open(&self.ctx, IgnoreMatcher::empty()).unwrap()
    }

    /// Writes `content` at `rel` in the context (parents created), mode 0644.
    pub fn file(&self, rel: &str, content: &str) -> PathBuf {
        write_file(&self.ctx, rel, content.as_bytes(), 0o644)
    }

    pub fn file_mode(&self, rel: &str, content: &str, mode: u32) -> PathBuf {
        write_file(&self.ctx, rel, content.as_bytes(), mode)
    }

    pub fn bytes(&self, rel: &str, content: &[u8]) -> PathBuf {
        write_file(&self.ctx, rel, content, 0o644)
    }

    /// Writes `content` at `rel` in the destination root.
    pub fn root_file(&self, rel: &str, content: &str) -> PathBuf {
        write_file(&self.root, rel, content.as_bytes(), 0o644)
    }

    /// Path of `rel` in the destination root.
    pub fn at(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.at(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
    }

    pub fn exists(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.at(rel)).is_ok()
    }

    pub fn mode(&self, rel: &str) -> u32 {
        fs::symlink_metadata(self.at(rel)).unwrap().permissions().mode() & 0o7777
    }

    pub fn owner(&self, rel: &str) -> (u32, u32) {
        let m = fs::symlink_metadata(self.at(rel)).unwrap();
        (m.uid(), m.gid())
    }

    pub fn run(&self, req: &CopyRequest) -> Result<CopyStats, CopyError> {
        copy_into(&self.context(), req, &self.root)
    }

    /// The `outside` directory still holds exactly its `keep` file.
    pub fn assert_outside_untouched(&self) {
        let names: Vec<_> = fs::read_dir(&self.outside).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("keep")], "something was written outside the root");
        assert_eq!(fs::read_to_string(self.outside.join("keep")).unwrap(), "outside");
    }

    /// A passwd and group file in the destination root.
    pub fn users(&self) {
        self.root_file(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\n# comment\napp:x:1000:1001:App:/home/app:/bin/sh\nweb:x:33:33::/var/www:/usr/sbin/nologin\n",
        );
        self.root_file("etc/group", "root:x:0:\napp:x:1001:\nstaff:x:50:app\n");
    }
}

pub fn write_file(base: &Path, rel: &str, content: &[u8], mode: u32) -> PathBuf {
    let p = base.join(rel);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(&p, content).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    p
}

/// A COPY of `sources` (patterns) to `dest` with workdir `/`.
pub fn copy<'a>(sources: &[&str], dest: &'a str) -> CopyRequest<'a> {
    CopyRequest {
        sources: sources.iter().map(|s| SourceItem::Pattern(s.to_string())).collect(),
        dest,
        workdir: "/",
        chown: None,
        chmod: None,
        add: false,
        keep_owner: false,
        exclude: &[],
        parents: false,
    }
}

/// An ADD of `sources` to `dest` with workdir `/`.
pub fn add<'a>(sources: &[&str], dest: &'a str) -> CopyRequest<'a> {
    CopyRequest { add: true, ..copy(sources, dest) }
}

/// One entry of a hand-made tar.
pub struct TarItem {
    pub name: String,
    pub typeflag: u8,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    pub link: String,
    pub data: Vec<u8>,
}

impl TarItem {
    pub fn file(name: &str, data: &str) -> TarItem {
        TarItem {
            name: name.to_string(),
            typeflag: b'0',
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            link: String::new(),
            data: data.as_bytes().to_vec(),
        }
    }

    pub fn dir(name: &str) -> TarItem {
        TarItem { typeflag: b'5', mode: 0o755, data: Vec::new(), ..TarItem::file(name, "") }
    }

    pub fn symlink(name: &str, target: &str) -> TarItem {
        TarItem { typeflag: b'2', mode: 0o777, link: target.to_string(), ..TarItem::file(name, "") }
    }

    pub fn hardlink(name: &str, target: &str) -> TarItem {
        TarItem { typeflag: b'1', link: target.to_string(), ..TarItem::file(name, "") }
    }

    pub fn owned(mut self, uid: u32, gid: u32) -> TarItem {
        self.uid = uid;
        self.gid = gid;
        self
    }

    pub fn mode(mut self, mode: u32) -> TarItem {
        self.mode = mode;
        self
    }
}

fn octal(field: &mut [u8], value: u64) {
    let s = format!("{:0width$o}", value, width = field.len() - 1);
    field[..s.len()].copy_from_slice(s.as_bytes());
}

/// A ustar archive (names up to 100 bytes) with its end marker.
pub fn tar(items: &[TarItem]) -> Vec<u8> {
    let mut out = Vec::new();
    for it in items {
        let mut h = [0u8; 512];
        h[..it.name.len()].copy_from_slice(it.name.as_bytes());
        octal(&mut h[100..108], it.mode as u64);
        octal(&mut h[108..116], it.uid as u64);
        octal(&mut h[116..124], it.gid as u64);
        octal(&mut h[124..136], it.data.len() as u64);
        octal(&mut h[136..148], it.mtime);
        h[148..156].copy_from_slice(b"        ");
        h[156] = it.typeflag;
        h[157..157 + it.link.len()].copy_from_slice(it.link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(&it.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut w = CompressWriter::new(Vec::new(), Compression::gzip(), 1).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    let mut w = CompressWriter::new(Vec::new(), Compression::zstd(), 1).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

pub fn bzip2(data: &[u8]) -> Vec<u8> {
    let mut w = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

pub fn xz(data: &[u8]) -> Vec<u8> {
    let mut w = liblzma::write::XzEncoder::new(Vec::new(), 6);
    w.write_all(data).unwrap();
    w.finish().unwrap()
}
