//! The content-addressed store.
//!
//! Layout under the cache root (`$XDG_CACHE_HOME/weir` by default):
//! `index.db` (SQLite, WAL) maps action keys to the [`ActionResult`] of a
//! step and holds small blobs inline; `cas/ab/abcdef…` holds larger blobs
//! named by the SHA-256 of their bytes; `tmp/` holds writes in progress.
//! A large blob is written to `tmp/` and renamed into place, so a reader
//! never sees half of one; index rows are written in SQLite transactions.
//! Concurrent processes share both safely. Every read re-hashes the blob: a
//! corrupt blob is removed and reported as a miss, never served.
//!
//! Index rows (small blobs, action results) are appended to this process's
//! journal first and committed once, when the run ends (or when 32 MiB of
//! them are waiting) ([`crate::journal`]); a process killed before that
//! leaves them to the next opener, who commits them.
//!
//! Durability: nothing is fsynced (that costs a disk flush per step). A
//! machine crash can leave a torn blob behind a complete name, which the
//! read-time digest check turns into a miss, so integrity never depends on
//! a flush.

use crate::journal::Journal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// Path relative to the output's root (empty for a single file).
    pub path: String,
    pub digest: String,
    pub size: u64,
    pub executable: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutputRecord {
    pub name: String,
    /// `file` or `dir`.
    pub kind: String,
    /// Where the output lives, relative to the project.
    pub path: String,
    pub files: Vec<FileEntry>,
}

impl OutputRecord {
    /// A digest of the whole output, for keys of downstream steps.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for f in &self.files {
            h.update(f.path.as_bytes());
            h.update([0]);
            h.update(f.digest.as_bytes());
            h.update([u8::from(f.executable)]);
        }
        hex(&h.finalize())
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct ActionResult {
    pub outputs: Vec<OutputRecord>,
    pub values: BTreeMap<String, String>,
    /// The step's log, already redacted.
    pub log_digest: String,
    pub exit_code: i32,
    pub reports: BTreeMap<String, serde_json::Value>,
    pub duration_ms: u64,
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Whether `dest` already holds exactly the recorded file.
fn in_place(dest: &Path, f: &FileEntry) -> bool {
    std::fs::metadata(dest)
        .is_ok_and(|m| m.is_file() && m.len() == f.size && is_executable(&m) == f.executable)
        && std::fs::read(dest).is_ok_and(|b| sha256(&b) == f.digest)
}

pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The SHA-256 of no bytes: never stored, always present.
pub const EMPTY_DIGEST: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Blobs up to this size live in the index database instead of one file
/// each: a small file costs an inode, and creating inodes is what a cold run
/// of many trivial steps spends its time on.
pub const INLINE_MAX: usize = 64 * 1024;

pub struct Cache {
    root: PathBuf,
    index: std::sync::Mutex<rusqlite::Connection>,
    inline_max: usize,
    /// Index rows written by this process and not yet committed, kept safe
    /// by a journal until they are (see [`crate::journal`]).
    pending: std::sync::Mutex<Pending>,
}

struct Pending {
    journal: Journal,
    blobs: HashMap<String, Vec<u8>>,
    actions: HashMap<String, String>,
    /// Bytes held in `blobs` and `actions`.
    bytes: usize,
    /// The action keys in the index when this process first looked one up:
    /// a key outside it (and not written since) is a miss without a query.
    /// Entries another process adds later are missed, which a cache may do.
    known: Option<std::collections::HashSet<String>>,
    known_too_big: bool,
}

/// Above this many action rows, misses are decided by a query per key.
const KNOWN_KEYS_MAX: i64 = 200_000;

/// How many bytes of index rows a run keeps in memory before applying them.
const APPLY_BYTES: usize = 32 * 1024 * 1024;

/// Journal records: a tag byte, the key's length (u32 LE), the key, the value.
const REC_BLOB: u8 = 0;
const REC_ACTION: u8 = 1;

fn encode_rec(tag: u8, key: &str, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + key.len() + value.len());
    out.push(tag);
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(value);
    out
}

fn decode_rec(rec: &[u8]) -> Option<(u8, &str, &[u8])> {
    let (&tag, rest) = rec.split_first()?;
    let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let key = std::str::from_utf8(rest.get(4..4 + len)?).ok()?;
    Some((tag, key, rest.get(4 + len..)?))
}

fn insert_blob(c: &rusqlite::Connection, digest: &str, bytes: &[u8]) -> rusqlite::Result<()> {
    c.prepare_cached("INSERT OR REPLACE INTO blobs (digest, bytes, at) VALUES (?1, ?2, ?3)")?
        .execute(rusqlite::params![digest, bytes, now_secs()])
        .map(|_| ())
}

fn insert_action(c: &rusqlite::Connection, key: &str, json: &str) -> rusqlite::Result<()> {
    c.prepare_cached("INSERT OR REPLACE INTO actions (key, json, at) VALUES (?1, ?2, ?3)")?
        .execute(rusqlite::params![key, json, now_secs()])
        .map(|_| ())
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        let _ = self.apply();
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub actions: u64,
    pub blobs: u64,
    pub bytes: u64,
}

fn db_err(e: rusqlite::Error) -> io::Error {
    io::Error::other(format!("cache index: {e}"))
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Cache {
    /// Opens (creating) a store. Fails with a clear error when the folder
    /// cannot be created or written.
    pub fn open(root: &Path) -> io::Result<Cache> {
        for sub in ["cas", "tmp"] {
            std::fs::create_dir_all(root.join(sub)).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot create the cache folder `{}`: {e}",
                        root.join(sub).display()
                    ),
                )
            })?;
        }
        let probe = root
            .join("tmp")
            .join(format!(".probe-{}", std::process::id()));
        std::fs::write(&probe, b"ok").map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("the cache folder `{}` is not writable: {e}", root.display()),
            )
        })?;
        let _ = std::fs::remove_file(&probe);
        let conn = rusqlite::Connection::open(root.join("index.db")).map_err(db_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(db_err)?;
        let _ = conn.pragma_update(None, "journal_mode", "WAL");
        let _ = conn.pragma_update(None, "synchronous", "NORMAL");
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS actions (key TEXT PRIMARY KEY, json TEXT NOT NULL, at INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS blobs (digest TEXT PRIMARY KEY, bytes BLOB NOT NULL, at INTEGER NOT NULL);",
        )
        .map_err(db_err)?;
        // Rows journalled by a `weir` that was killed before committing them.
        crate::journal::recover(&root.join("journal"), |records| {
            let tx = conn.unchecked_transaction()?;
            for (tag, key, value) in records.iter().filter_map(|r| decode_rec(r)) {
                match tag {
                    REC_BLOB => insert_blob(&conn, key, value)?,
                    REC_ACTION => insert_action(&conn, key, &String::from_utf8_lossy(value))?,
                    _ => {}
                }
            }
            tx.commit()
        })
        .map_err(db_err)?;
        let inline_max = std::env::var("WEIR_CACHE_INLINE_MAX")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(INLINE_MAX);
        Ok(Cache {
            root: root.to_owned(),
            index: std::sync::Mutex::new(conn),
            inline_max,
            pending: std::sync::Mutex::new(Pending {
                journal: Journal::new(&root.join("journal")),
                blobs: HashMap::new(),
                actions: HashMap::new(),
                bytes: 0,
                known: None,
                known_too_big: false,
            }),
        })
    }

    fn db<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>) -> io::Result<T> {
        let conn = self
            .index
            .lock()
            .map_err(|_| io::Error::other("cache index lock poisoned"))?;
        f(&conn).map_err(db_err)
    }

    fn pending(&self) -> io::Result<std::sync::MutexGuard<'_, Pending>> {
        self.pending
            .lock()
            .map_err(|_| io::Error::other("cache journal lock poisoned"))
    }

    /// Journals an index row and keeps it for this process's reads; the
    /// index itself follows when the run ends ([`Cache::apply`]).
    fn put_row(&self, tag: u8, key: &str, value: &[u8]) -> io::Result<()> {
        let mut p = self.pending()?;
        // A blob waits for the action that refers to it: an action whose
        // blob was lost is a miss, never a wrong hit.
        let journalled = p
            .journal
            .append(&encode_rec(tag, key, value), tag == REC_ACTION)?;
        // Rows are keyed by digests, so any batch lands all over the index
        // and rewrites most of its pages: apply once, at the end of the run,
        // unless the rows held in memory grow large.
        let due = !journalled || p.bytes + value.len() > APPLY_BYTES;
        p.bytes += value.len();
        if tag == REC_BLOB {
            p.blobs.insert(key.to_owned(), value.to_vec());
        } else {
            p.actions
                .insert(key.to_owned(), String::from_utf8_lossy(value).into_owned());
        }
        drop(p);
        if due { self.apply() } else { Ok(()) }
    }

    /// Commits the journalled rows to the index in one transaction and
    /// empties the journal.
    pub fn apply(&self) -> io::Result<()> {
        let mut p = self.pending()?;
        if p.blobs.is_empty() && p.actions.is_empty() {
            return Ok(());
        }
        self.db(|c| {
            let tx = c.unchecked_transaction()?;
            for (d, b) in &p.blobs {
                insert_blob(c, d, b)?;
            }
            for (k, j) in &p.actions {
                insert_action(c, k, j)?;
            }
            tx.commit()
        })?;
        p.blobs.clear();
        p.actions.clear();
        p.bytes = 0;
        p.journal.clear()?;
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        let prefix = digest.get(..2).unwrap_or("00");
        self.root.join("cas").join(prefix).join(digest)
    }

    fn tmp_path(&self) -> PathBuf {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.root
            .join("tmp")
            .join(format!("{}-{n}", std::process::id()))
    }

    /// Writes `bytes` to `dest` atomically: temp file, then rename.
    fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> io::Result<()> {
        let tmp = self.tmp_path();
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            if let Some(dir) = dest.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::rename(&tmp, dest)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn put_inline(&self, digest: &str, bytes: &[u8]) -> io::Result<()> {
        self.put_row(REC_BLOB, digest, bytes)
    }

    pub fn put_blob(&self, bytes: &[u8]) -> io::Result<String> {
        let digest = sha256(bytes);
        if digest == EMPTY_DIGEST {
            return Ok(digest);
        }
        if bytes.len() <= self.inline_max {
            self.put_inline(&digest, bytes)?;
        } else {
            // Always replace: renaming identical bytes over a good blob is
            // harmless, and it repairs a blob that was corrupted on disk.
            self.write_atomic(&self.blob_path(&digest), bytes)?;
        }
        Ok(digest)
    }

    /// Stores a file, hashing while copying.
    pub fn put_file(&self, path: &Path) -> io::Result<FileEntry> {
        let mut src = std::fs::File::open(path)?;
        let meta = src.metadata()?;
        let executable = is_executable(&meta);
        if meta.len() as usize <= self.inline_max {
            let mut bytes = Vec::with_capacity(meta.len() as usize);
            // Through `Take`: `File::read_to_end` would ask the size and the
            // position again (two more system calls per step output).
            (&mut src).take(u64::MAX).read_to_end(&mut bytes)?;
            let digest = self.put_blob(&bytes)?;
            return Ok(FileEntry {
                path: String::new(),
                digest,
                size: bytes.len() as u64,
                executable,
            });
        }
        let tmp = self.tmp_path();
        let result = (|| {
            let mut out = std::fs::File::create(&tmp)?;
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            let mut size = 0u64;
            loop {
                let n = src.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                out.write_all(&buf[..n])?;
                size += n as u64;
            }
            let digest = hex(&h.finalize());
            let dest = self.blob_path(&digest);
            if let Some(dir) = dest.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::rename(&tmp, &dest)?;
            Ok(FileEntry {
                path: String::new(),
                digest,
                size,
                executable,
            })
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// A blob's bytes, verified; a corrupt or truncated blob is deleted and
    /// reported as missing.
    pub fn read_blob(&self, digest: &str) -> Option<Vec<u8>> {
        if digest == EMPTY_DIGEST {
            return Some(Vec::new());
        }
        if let Some(b) = self.pending().ok()?.blobs.get(digest) {
            return Some(b.clone());
        }
        let inline: Option<Vec<u8>> = self
            .db(|c| {
                use rusqlite::OptionalExtension;
                c.prepare_cached("SELECT bytes FROM blobs WHERE digest = ?1")?
                    .query_row([digest], |r| r.get(0))
                    .optional()
            })
            .ok()
            .flatten();
        if let Some(bytes) = inline {
            if sha256(&bytes) == digest {
                return Some(bytes);
            }
            let _ = self.db(|c| c.execute("DELETE FROM blobs WHERE digest = ?1", [digest]));
            return None;
        }
        let path = self.blob_path(digest);
        let bytes = std::fs::read(&path).ok()?;
        if sha256(&bytes) == digest {
            Some(bytes)
        } else {
            let _ = std::fs::remove_file(&path);
            None
        }
    }

    pub fn get_action(&self, key: &str) -> Option<ActionResult> {
        {
            let mut p = self.pending().ok()?;
            if let Some(json) = p.actions.get(key) {
                return serde_json::from_str(json).ok();
            }
            if p.known.is_none() && !p.known_too_big {
                // Worth it for the caches of a project or a few; a huge
                // index is queried per key instead of held in memory.
                let rows: i64 = self
                    .db(|c| {
                        c.query_row("SELECT COALESCE(MAX(rowid), 0) FROM actions", [], |r| {
                            r.get(0)
                        })
                    })
                    .unwrap_or(i64::MAX);
                if rows > KNOWN_KEYS_MAX {
                    p.known_too_big = true;
                } else {
                    p.known = self
                        .db(|c| {
                            let mut st = c.prepare("SELECT key FROM actions")?;
                            st.query_map([], |r| r.get::<_, String>(0))?.collect()
                        })
                        .ok();
                }
            }
            if p.known.as_ref().is_some_and(|k| !k.contains(key)) {
                return None;
            }
        }
        let json: Option<String> = self
            .db(|c| {
                use rusqlite::OptionalExtension;
                c.prepare_cached("SELECT json FROM actions WHERE key = ?1")?
                    .query_row([key], |r| r.get(0))
                    .optional()
            })
            .ok()
            .flatten();
        match serde_json::from_str(&json?) {
            Ok(a) => Some(a),
            Err(_) => {
                let _ = self.db(|c| c.execute("DELETE FROM actions WHERE key = ?1", [key]));
                None
            }
        }
    }

    pub fn put_action(&self, key: &str, result: &ActionResult) -> io::Result<()> {
        let json = serde_json::to_string(result).map_err(io::Error::other)?;
        self.put_row(REC_ACTION, key, json.as_bytes())
    }

    /// Restores an action's outputs under `project`. Every blob is verified
    /// before anything is written; on a corrupt or missing blob nothing is
    /// restored and `Ok(false)` is returned (a miss).
    /// Puts a result's outputs in place in the project and returns its
    /// log; `None` when a blob it needs is missing or corrupt (a miss).
    /// Files already in place with the recorded content are left alone
    /// without reading their blobs, which keeps a no-op rerun cheap.
    pub fn restore(&self, result: &ActionResult, project: &Path) -> io::Result<Option<Vec<u8>>> {
        let Some(log) = self.read_blob(&result.log_digest) else {
            return Ok(None);
        };
        let mut blobs: Vec<(PathBuf, Vec<u8>, bool)> = Vec::new();
        for o in &result.outputs {
            for f in &o.files {
                let dest = if f.path.is_empty() {
                    project.join(&o.path)
                } else {
                    project.join(&o.path).join(&f.path)
                };
                // A directory output is rebuilt whole below, so every one
                // of its files is written.
                if o.kind != "dir" && in_place(&dest, f) {
                    continue;
                }
                let Some(bytes) = self.read_blob(&f.digest) else {
                    return Ok(None);
                };
                blobs.push((dest, bytes, f.executable));
            }
        }
        for o in &result.outputs {
            if o.kind == "dir" {
                let dir = project.join(&o.path);
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)?;
                }
                std::fs::create_dir_all(&dir)?;
            }
        }
        for (dest, bytes, exec) in blobs {
            if let Some(dir) = dest.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = dest.with_extension(format!("weir-restore-{}", std::process::id()));
            std::fs::write(&tmp, &bytes)?;
            set_executable(&tmp, exec)?;
            std::fs::rename(&tmp, &dest)?;
        }
        Ok(Some(log))
    }

    pub fn stats(&self) -> Stats {
        let _ = self.apply();
        let mut s = Stats::default();
        if let Ok((a, b, bytes)) = self.db(|c| {
            let a: i64 = c.query_row("SELECT COUNT(*) FROM actions", [], |r| r.get(0))?;
            let (b, bytes): (i64, i64) = c.query_row(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(bytes)), 0) FROM blobs",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok((a, b, bytes))
        }) {
            s.actions = a as u64;
            s.blobs = b as u64;
            s.bytes = bytes as u64;
        }
        for (_, size, _) in self.file_blobs() {
            s.blobs += 1;
            s.bytes += size;
        }
        s
    }

    fn file_blobs(&self) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
        let mut out = Vec::new();
        let Ok(prefixes) = std::fs::read_dir(self.root.join("cas")) else {
            return out;
        };
        for p in prefixes.filter_map(Result::ok) {
            let Ok(files) = std::fs::read_dir(p.path()) else {
                continue;
            };
            for f in files.filter_map(Result::ok) {
                if let Ok(m) = f.metadata() {
                    out.push((
                        f.path(),
                        m.len(),
                        m.modified().unwrap_or(std::time::UNIX_EPOCH),
                    ));
                }
            }
        }
        out
    }

    /// Deletes the least recently written action entries, then every blob no
    /// remaining entry references, until the store is under `max_bytes`.
    /// Anything written in the last `keep_recent` is kept, so a run in
    /// progress never loses what it just stored.
    pub fn gc(&self, max_bytes: u64, keep_recent: std::time::Duration) -> io::Result<Stats> {
        self.apply()?;
        let cutoff = now_secs() - keep_recent.as_secs() as i64;
        let mut excess = self.stats().bytes.saturating_sub(max_bytes);
        let actions: Vec<(String, String, i64)> = self.db(|c| {
            let mut st = c.prepare("SELECT key, json, at FROM actions ORDER BY at, key")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect()
        })?;
        for (key, json, at) in &actions {
            if excess == 0 || *at > cutoff {
                break;
            }
            let freed = serde_json::from_str::<ActionResult>(json).map_or(1, |a| {
                a.outputs
                    .iter()
                    .flat_map(|o| &o.files)
                    .map(|f| f.size)
                    .sum::<u64>()
                    .max(1)
            });
            self.db(|c| c.execute("DELETE FROM actions WHERE key = ?1", [key]))?;
            excess = excess.saturating_sub(freed);
        }
        // Sweep blobs no remaining action references.
        let mut live = std::collections::HashSet::new();
        let remaining: Vec<String> = self.db(|c| {
            let mut st = c.prepare("SELECT json FROM actions")?;
            let rows = st.query_map([], |r| r.get(0))?;
            rows.collect()
        })?;
        for json in remaining {
            if let Ok(a) = serde_json::from_str::<ActionResult>(&json) {
                live.insert(a.log_digest.clone());
                for o in &a.outputs {
                    for f in &o.files {
                        live.insert(f.digest.clone());
                    }
                }
            }
        }
        let inline: Vec<(String, i64)> = self.db(|c| {
            let mut st = c.prepare("SELECT digest, at FROM blobs")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })?;
        for (d, at) in inline {
            if !live.contains(&d) && at <= cutoff {
                self.db(|c| c.execute("DELETE FROM blobs WHERE digest = ?1", [&d]))?;
            }
        }
        let now = std::time::SystemTime::now();
        for (path, _, t) in self.file_blobs() {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !live.contains(&name) && now.duration_since(t).unwrap_or_default() >= keep_recent {
                let _ = std::fs::remove_file(&path);
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.root.join("tmp")) {
            for e in rd.filter_map(Result::ok) {
                let old = e
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .is_some_and(|t| {
                        now.duration_since(t).unwrap_or_default()
                            > std::time::Duration::from_secs(3600)
                    });
                if old {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let _ = self.db(|c| c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)"));
        Ok(self.stats())
    }
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(unix)]
fn set_executable(path: &Path, exec: bool) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if exec { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn store(name: &str) -> (Cache, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("weir-cache-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (Cache::open(&dir.join("store")).unwrap(), dir)
    }

    #[test]
    fn inline_blobs_round_trip_and_corruption_is_a_miss() {
        let (c, _dir) = store("inline");
        let d = c.put_blob(b"hello").unwrap();
        assert_eq!(c.read_blob(&d).unwrap(), b"hello");
        c.apply().unwrap();
        c.db(|x| {
            x.execute(
                "UPDATE blobs SET bytes = ?1 WHERE digest = ?2",
                rusqlite::params![b"hellp".to_vec(), d],
            )
        })
        .unwrap();
        assert!(
            c.read_blob(&d).is_none(),
            "a corrupt inline blob must not be served"
        );
        assert!(c.read_blob(&d).is_none(), "and it is gone");
        assert_eq!(c.put_blob(b"hello").unwrap(), d);
        assert_eq!(c.read_blob(&d).unwrap(), b"hello");
    }

    #[test]
    fn large_blobs_are_files_and_restore_is_byte_identical() {
        let (c, dir) = store("large");
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let src = dir.join("big.bin");
        std::fs::write(&src, &big).unwrap();
        let e = c.put_file(&src).unwrap();
        assert!(c.blob_path(&e.digest).exists());
        let out = OutputRecord {
            name: "b".into(),
            kind: "file".into(),
            path: "restored.bin".into(),
            files: vec![e],
        };
        let a = ActionResult {
            outputs: vec![out],
            log_digest: EMPTY_DIGEST.into(),
            ..Default::default()
        };
        c.put_action("k", &a).unwrap();
        let got = c.get_action("k").unwrap();
        assert!(c.restore(&got, &dir).unwrap().is_some());
        assert_eq!(std::fs::read(dir.join("restored.bin")).unwrap(), big);
    }

    #[test]
    fn actions_are_found_across_processes_once_applied_and_before_in_their_own() {
        let (c, dir) = store("known");
        let r = ActionResult {
            exit_code: 0,
            log_digest: c.put_blob(b"log").unwrap(),
            ..Default::default()
        };
        c.put_action("k1", &r).unwrap();
        // Not yet in the index: this process still sees it.
        assert_eq!(c.get_action("k1"), Some(r.clone()));
        let other = Cache::open(&dir.join("store")).unwrap();
        assert_eq!(other.get_action("k1"), None, "not applied yet");
        drop(other);
        c.apply().unwrap();
        let later = Cache::open(&dir.join("store")).unwrap();
        assert_eq!(later.get_action("k1"), Some(r.clone()));
        assert_eq!(later.read_blob(&r.log_digest).unwrap(), b"log");
        assert_eq!(later.get_action("k2"), None);
    }

    #[test]
    fn gc_keeps_recent_entries_and_drops_old_unreferenced_blobs() {
        let (c, _dir) = store("gc");
        let d = c.put_blob(b"orphan blob").unwrap();
        let s = c.gc(0, std::time::Duration::from_secs(3600)).unwrap();
        assert_eq!(s.blobs, 1, "recent blobs are kept");
        let s = c.gc(0, std::time::Duration::ZERO).unwrap();
        assert_eq!(s.blobs, 0);
        assert!(c.read_blob(&d).is_none());
    }
}
