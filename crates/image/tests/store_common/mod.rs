//! Helpers for the `store_*` tests: a scratch store, small root file system
//! tars (built with the layer tests' independent tar writer), and a view of
//! what is on disk to prove that failed operations leave nothing behind.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use distill_image::import::{ImportOptions, import_rootfs};
use distill_image::layer::Compression;
use distill_image::reference::Reference;
use distill_image::store::{Committed, Store};
use distill_image::timestamp::Timestamp;

use crate::layer_common::{RawTar, TempDir};

/// A store in a scratch directory.
pub struct Fixture {
    pub dir: TempDir,
    pub store: Store,
}

impl Fixture {
    pub fn new(tag: &str) -> Fixture {
        let dir = TempDir::new(tag);
        let store = Store::open(dir.path().join("store")).unwrap();
        Fixture { dir, store }
    }

    pub fn root(&self) -> &Path {
        self.store.root()
    }

    /// Imports `tar` as `name` (gzip, fixed creation time).
    pub fn import(&self, tar: &[u8], name: Option<&str>) -> Committed {
        self.try_import(tar, name).unwrap()
    }

    pub fn try_import(&self, tar: &[u8], name: Option<&str>) -> distill_image::Result<Committed> {
        let opts = ImportOptions {
            reference: name.map(|n| Reference::parse_normalized(n).unwrap().with_default_tag()),
            created: Some(Timestamp::from_secs(1_700_000_000)),
            compression: Compression::gzip(),
            source: "test.tar".to_string(),
            ..ImportOptions::default()
        };
        let writer = self.store.writer()?;
        import_rootfs(&writer, tar, &opts)
    }

    /// Names in blobs/sha256, snapshots/ and tmp/, and the tags: what a
    /// failed operation must not change.
    pub fn state(&self) -> State {
        let list = |p: &str| -> BTreeSet<String> {
            fs::read_dir(self.root().join(p))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        };
        State {
            blobs: list("blobs/sha256"),
            snapshots: list("snapshots"),
            tmp: list("tmp"),
            images: self.store.images().unwrap().iter().map(|i| i.digest.to_string()).collect(),
            index: fs::read(self.root().join("index.json")).unwrap(),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct State {
    pub blobs: BTreeSet<String>,
    pub snapshots: BTreeSet<String>,
    pub tmp: BTreeSet<String>,
    pub images: BTreeSet<String>,
    pub index: Vec<u8>,
}

/// A small root file system: a few directories, files, a symlink and a hard link.
pub fn rootfs(seed: &str) -> Vec<u8> {
    RawTar::default()
        .dir("etc/")
        .file("etc/hostname", format!("host-{seed}\n").as_bytes())
        .dir("usr/")
        .dir("usr/bin/")
        .file("usr/bin/app", format!("#!/bin/sh\necho {seed}\n").as_bytes())
        .symlink("bin", "usr/bin")
        .hardlink("usr/bin/app2", "usr/bin/app")
        .finish()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}
