//! The metadata database (SQLite, WAL mode): images, tags, layer facts,
//! snapshots with their holders, and GC roots. It is the source of truth for
//! names; `index.json` is derived from it (see `index.rs`). Every change
//! runs in one transaction, so a crash leaves either all of it or none.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::timestamp::Timestamp;

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- One row per image manifest in the store. Untagged (dangling) images stay
-- until `prune`, as in Docker.
CREATE TABLE IF NOT EXISTS images (
    digest TEXT PRIMARY KEY,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    config TEXT NOT NULL,
    added INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS images_config ON images(config);
-- Full normalised references with tag (docker.io/library/app:1.0).
CREATE TABLE IF NOT EXISTS tags (
    name TEXT PRIMARY KEY,
    image TEXT NOT NULL REFERENCES images(digest),
    updated INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tags_image ON tags(image);
-- What we learnt about a layer blob when it came in: its diff_id and
-- uncompressed size (a cache; a missing row is recomputed).
CREATE TABLE IF NOT EXISTS layers (
    digest TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    uncompressed_size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS layers_diff_id ON layers(diff_id);
-- Extracted layers under snapshots/<chain id hex>/.
CREATE TABLE IF NOT EXISTS snapshots (
    chain_id TEXT PRIMARY KEY,
    parent TEXT,
    diff_id TEXT NOT NULL,
    created INTEGER NOT NULL
);
-- Who holds a snapshot (an image, a build); the reference count is the
-- number of rows. Rows per holder make release idempotent.
CREATE TABLE IF NOT EXISTS snapshot_refs (
    chain_id TEXT NOT NULL REFERENCES snapshots(chain_id),
    holder TEXT NOT NULL,
    PRIMARY KEY (chain_id, holder)
);
-- Named pins that keep a blob (and, for a manifest, its image) alive.
CREATE TABLE IF NOT EXISTS gc_roots (
    name TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    created INTEGER NOT NULL
);
-- The builder's step cache: cache key -> what the step produced (JSON,
-- owned by the build crate).
CREATE TABLE IF NOT EXISTS build_cache (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created INTEGER NOT NULL
);
";

/// An image manifest known to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// The manifest digest.
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// The config digest: the image ID.
    pub config: Digest,
    /// When the image entered this store.
    pub added: Timestamp,
    /// Its tags, sorted.
    pub tags: Vec<Reference>,
}

impl ImageRecord {
    /// The image ID (`sha256:` + config digest), as Docker shows it.
    pub fn id(&self) -> Digest {
        self.config
    }
}

/// Facts about one layer blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    pub digest: Digest,
    pub diff_id: Digest,
    pub media_type: String,
    pub size: u64,
    pub uncompressed_size: u64,
}

impl From<&crate::layer::LayerDescriptor> for LayerInfo {
    fn from(l: &crate::layer::LayerDescriptor) -> Self {
        LayerInfo {
            digest: l.digest,
            diff_id: l.diff_id,
            media_type: l.media_type.clone(),
            size: l.size,
            uncompressed_size: l.uncompressed_size,
        }
    }
}

/// A snapshot row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub chain_id: Digest,
    pub parent: Option<Digest>,
    pub diff_id: Digest,
    pub refcount: u64,
}

pub(crate) fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(60))?;
    // WAL: readers never block the writer. synchronous=FULL: a committed
    // transaction survives power loss, not only a process crash.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let version: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
        .optional()
        .or_else(|e| match e {
            // No meta table yet: a new database.
            rusqlite::Error::SqliteFailure(..) => Ok(None),
            e => Err(e),
        })?;
    match version.as_deref() {
        Some(v) if v == SCHEMA_VERSION.to_string() => {}
        Some(v) => {
            return Err(Error::Unsupported(format!(
                "metadata database schema version {v} (this distill knows version {SCHEMA_VERSION})"
            )));
        }
        None => {
            let tx = rusqlite::Transaction::new_unchecked(&conn, rusqlite::TransactionBehavior::Immediate)?;
            tx.execute_batch(SCHEMA)?;
            tx.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?1)",
                [SCHEMA_VERSION.to_string()],
            )?;
            tx.commit()?;
        }
    }
    Ok(conn)
}

fn digest_col(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Digest> {
    let s: String = row.get(idx)?;
    s.parse().map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e)))
}

fn opt_digest_col(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Option<Digest>> {
    let s: Option<String> = row.get(idx)?;
    s.map(|s| {
        s.parse().map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e)))
    })
    .transpose()
}

fn u64_col(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(idx)?;
    Ok(v.max(0) as u64)
}

fn now_secs() -> i64 {
    Timestamp::now().secs
}

// ---- images and tags ----

pub(crate) fn images(conn: &Connection) -> Result<Vec<ImageRecord>> {
    let mut stmt =
        conn.prepare("SELECT digest, media_type, size, config, added FROM images ORDER BY added DESC, digest")?;
    let mut out = stmt
        .query_map([], |r| {
            Ok(ImageRecord {
                digest: digest_col(r, 0)?,
                media_type: r.get(1)?,
                size: u64_col(r, 2)?,
                config: digest_col(r, 3)?,
                added: Timestamp::from_secs(r.get(4)?),
                tags: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let tags = all_tags(conn)?;
    for img in &mut out {
        img.tags = tags.iter().filter(|(_, d)| *d == img.digest).map(|(r, _)| r.clone()).collect();
    }
    Ok(out)
}

pub(crate) fn image(conn: &Connection, digest: &Digest) -> Result<Option<ImageRecord>> {
    Ok(images(conn)?.into_iter().find(|i| i.digest == *digest))
}

/// All tags, sorted by name.
pub(crate) fn all_tags(conn: &Connection) -> Result<Vec<(Reference, Digest)>> {
    let mut stmt = conn.prepare("SELECT name, image FROM tags ORDER BY name")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, digest_col(r, 1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (name, digest) = row?;
        let reference = Reference::parse_normalized(&name)
            .map_err(|e| Error::invalid("tag in the metadata database", format!("{name:?}: {e}")))?;
        out.push((reference, digest));
    }
    Ok(out)
}

pub(crate) fn tag_target(conn: &Connection, reference: &Reference) -> Result<Option<Digest>> {
    let row = conn
        .query_row("SELECT image FROM tags WHERE name = ?1", [reference.to_string()], |r| digest_col(r, 0))
        .optional()?;
    Ok(row)
}

pub(crate) fn insert_image(conn: &Connection, img: &ImageRecord) -> Result<bool> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO images(digest, media_type, size, config, added) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![img.digest.to_string(), img.media_type, img.size as i64, img.config.to_string(), img.added.secs],
    )?;
    Ok(n > 0)
}

/// Points `reference` at `image`; returns the image it pointed at before, if
/// that was another one.
pub(crate) fn set_tag(conn: &Connection, reference: &Reference, image: &Digest) -> Result<Option<Digest>> {
    let previous = tag_target(conn, reference)?;
    conn.execute(
        "INSERT INTO tags(name, image, updated) VALUES (?1, ?2, ?3)
         ON CONFLICT(name) DO UPDATE SET image = excluded.image, updated = excluded.updated",
        params![reference.to_string(), image.to_string(), now_secs()],
    )?;
    Ok(previous.filter(|p| p != image))
}

pub(crate) fn remove_tag(conn: &Connection, reference: &Reference) -> Result<bool> {
    Ok(conn.execute("DELETE FROM tags WHERE name = ?1", [reference.to_string()])? > 0)
}

/// Deletes the image row, its tags and the snapshot references it holds.
pub(crate) fn remove_image(conn: &Connection, digest: &Digest) -> Result<bool> {
    let d = digest.to_string();
    conn.execute("DELETE FROM tags WHERE image = ?1", [&d])?;
    conn.execute("DELETE FROM snapshot_refs WHERE holder = ?1", [image_holder(digest)])?;
    Ok(conn.execute("DELETE FROM images WHERE digest = ?1", [&d])? > 0)
}

/// The snapshot holder name of an image.
pub(crate) fn image_holder(digest: &Digest) -> String {
    format!("image:{digest}")
}

// ---- layers ----

pub(crate) fn put_layer(conn: &Connection, l: &LayerInfo) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO layers(digest, diff_id, media_type, size, uncompressed_size) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![l.digest.to_string(), l.diff_id.to_string(), l.media_type, l.size as i64, l.uncompressed_size as i64],
    )?;
    Ok(())
}

pub(crate) fn layer(conn: &Connection, digest: &Digest) -> Result<Option<LayerInfo>> {
    Ok(conn
        .query_row(
            "SELECT digest, diff_id, media_type, size, uncompressed_size FROM layers WHERE digest = ?1",
            [digest.to_string()],
            layer_row,
        )
        .optional()?)
}

pub(crate) fn layers(conn: &Connection) -> Result<Vec<LayerInfo>> {
    let mut stmt = conn.prepare("SELECT digest, diff_id, media_type, size, uncompressed_size FROM layers")?;
    Ok(stmt.query_map([], layer_row)?.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// A layer blob with the given diff_id, if the store has one.
pub(crate) fn layer_by_diff_id(conn: &Connection, diff_id: &Digest) -> Result<Option<LayerInfo>> {
    Ok(conn
        .query_row(
            "SELECT digest, diff_id, media_type, size, uncompressed_size FROM layers WHERE diff_id = ?1
             ORDER BY size LIMIT 1",
            [diff_id.to_string()],
            layer_row,
        )
        .optional()?)
}

fn layer_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LayerInfo> {
    Ok(LayerInfo {
        digest: digest_col(r, 0)?,
        diff_id: digest_col(r, 1)?,
        media_type: r.get(2)?,
        size: u64_col(r, 3)?,
        uncompressed_size: u64_col(r, 4)?,
    })
}

pub(crate) fn remove_layer(conn: &Connection, digest: &Digest) -> Result<()> {
    conn.execute("DELETE FROM layers WHERE digest = ?1", [digest.to_string()])?;
    Ok(())
}

// ---- snapshots ----

pub(crate) fn snapshots(conn: &Connection) -> Result<Vec<SnapshotRecord>> {
    let mut stmt = conn.prepare(
        "SELECT s.chain_id, s.parent, s.diff_id, (SELECT COUNT(*) FROM snapshot_refs r WHERE r.chain_id = s.chain_id)
         FROM snapshots s ORDER BY s.chain_id",
    )?;
    Ok(stmt.query_map([], snapshot_row)?.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn snapshot(conn: &Connection, chain_id: &Digest) -> Result<Option<SnapshotRecord>> {
    Ok(conn
        .query_row(
            "SELECT s.chain_id, s.parent, s.diff_id,
                    (SELECT COUNT(*) FROM snapshot_refs r WHERE r.chain_id = s.chain_id)
             FROM snapshots s WHERE s.chain_id = ?1",
            [chain_id.to_string()],
            snapshot_row,
        )
        .optional()?)
}

fn snapshot_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SnapshotRecord> {
    Ok(SnapshotRecord {
        chain_id: digest_col(r, 0)?,
        parent: opt_digest_col(r, 1)?,
        diff_id: digest_col(r, 2)?,
        refcount: u64_col(r, 3)?,
    })
}

pub(crate) fn insert_snapshot(
    conn: &Connection,
    chain_id: &Digest,
    parent: Option<&Digest>,
    diff_id: &Digest,
) -> Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO snapshots(chain_id, parent, diff_id, created) VALUES (?1, ?2, ?3, ?4)",
        params![chain_id.to_string(), parent.map(|p| p.to_string()), diff_id.to_string(), now_secs()],
    )?;
    Ok(())
}

pub(crate) fn remove_snapshot(conn: &Connection, chain_id: &Digest) -> Result<()> {
    let c = chain_id.to_string();
    conn.execute("DELETE FROM snapshot_refs WHERE chain_id = ?1", [&c])?;
    conn.execute("DELETE FROM snapshots WHERE chain_id = ?1", [&c])?;
    Ok(())
}

/// Whether `holder` is the only holder of `chain_id` and no recorded
/// snapshot has it as its parent.
pub(crate) fn snapshot_solely_held(conn: &Connection, chain_id: &Digest, holder: &str) -> Result<bool> {
    let c = chain_id.to_string();
    let (held, others, children): (i64, i64, i64) = conn.query_row(
        "SELECT (SELECT COUNT(*) FROM snapshot_refs WHERE chain_id = ?1 AND holder = ?2),
                (SELECT COUNT(*) FROM snapshot_refs WHERE chain_id = ?1 AND holder != ?2),
                (SELECT COUNT(*) FROM snapshots WHERE parent = ?1)",
        params![c, holder],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok(held == 1 && others == 0 && children == 0)
}

pub(crate) fn add_snapshot_ref(conn: &Connection, chain_id: &Digest, holder: &str) -> Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO snapshot_refs(chain_id, holder) VALUES (?1, ?2)",
        params![chain_id.to_string(), holder],
    )?;
    Ok(())
}

/// Whether `holder` holds every snapshot of `chain`.
pub(crate) fn snapshots_held(conn: &Connection, chain: &[Digest], holder: &str) -> Result<bool> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM snapshot_refs WHERE chain_id = ?1 AND holder = ?2")?;
    for chain_id in chain {
        if !stmt.exists(params![chain_id.to_string(), holder])? {
            return Ok(false);
        }
    }
    Ok(true)
}

pub(crate) fn release_snapshot_refs(conn: &Connection, holder: &str) -> Result<u64> {
    Ok(conn.execute("DELETE FROM snapshot_refs WHERE holder = ?1", [holder])? as u64)
}

/// Snapshot references whose holder is an image that no longer exists.
pub(crate) fn orphan_image_holders(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT DISTINCT holder FROM snapshot_refs WHERE holder LIKE 'image:%'
         AND substr(holder, 7) NOT IN (SELECT digest FROM images)",
    )?;
    Ok(stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?)
}

// ---- GC roots ----

pub(crate) fn gc_roots(conn: &Connection) -> Result<Vec<(String, Digest)>> {
    let mut stmt = conn.prepare("SELECT name, digest FROM gc_roots ORDER BY name")?;
    Ok(stmt.query_map([], |r| Ok((r.get(0)?, digest_col(r, 1)?)))?.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn set_gc_root(conn: &Connection, name: &str, digest: &Digest) -> Result<()> {
    conn.execute(
        "INSERT INTO gc_roots(name, digest, created) VALUES (?1, ?2, ?3)
         ON CONFLICT(name) DO UPDATE SET digest = excluded.digest",
        params![name, digest.to_string(), now_secs()],
    )?;
    Ok(())
}

pub(crate) fn remove_gc_roots_with_prefix(conn: &Connection, prefix: &str) -> Result<u64> {
    Ok(conn.execute("DELETE FROM gc_roots WHERE substr(name, 1, length(?1)) = ?1", [prefix])? as u64)
}

pub(crate) fn remove_gc_root(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM gc_roots WHERE name = ?1", [name])? > 0)
}

// ---- build cache ----

pub(crate) fn build_cache_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn.query_row("SELECT value FROM build_cache WHERE key = ?1", [key], |r| r.get(0)).optional()?)
}

pub(crate) fn build_cache_put(conn: &Connection, key: &str, value: &str) -> Result<()> {
    build_cache_upsert(conn, key, &value)
}

/// Sets a build-cache entry: TEXT or BLOB, whatever `value` binds as.
fn build_cache_upsert(conn: &Connection, key: &str, value: &dyn rusqlite::ToSql) -> Result<()> {
    conn.execute(
        "INSERT INTO build_cache(key, value, created) VALUES (?1, ?2, ?3)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value, now_secs()],
    )?;
    Ok(())
}

/// A binary build-cache value (SQLite keeps a BLOB as a BLOB in the TEXT
/// column); `None` when missing or not binary.
pub(crate) fn build_cache_get_blob(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>> {
    let value: Option<rusqlite::types::Value> =
        conn.query_row("SELECT value FROM build_cache WHERE key = ?1", [key], |r| r.get(0)).optional()?;
    Ok(match value {
        Some(rusqlite::types::Value::Blob(b)) => Some(b),
        _ => None,
    })
}

pub(crate) fn build_cache_put_blob(conn: &Connection, key: &str, value: &[u8]) -> Result<()> {
    build_cache_upsert(conn, key, &value)
}

pub(crate) fn build_cache_clear(conn: &Connection) -> Result<u64> {
    Ok(conn.execute("DELETE FROM build_cache", [])? as u64)
}
