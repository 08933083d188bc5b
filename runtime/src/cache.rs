//! The content-addressed store.
//!
//! Layout under the cache root (`$XDG_CACHE_HOME/weir` by default):
//! `cas/ab/abcdef…` holds blobs named by the SHA-256 of their bytes,
//! `ac/<key>.json` maps an action key to the [`ActionResult`] of a step, and
//! `tmp/` holds writes in progress. Every write goes to `tmp/`, is fsynced
//! and renamed into place, so a reader never sees half an entry and two
//! processes writing the same entry both succeed. Every read re-hashes the
//! blob: a corrupt blob is removed and reported as a miss, never served.
//!
//! Durability: blobs and entries are not fsynced one by one (that costs a
//! disk flush per step); the scheduler calls [`Cache::sync`] once at the end
//! of a run. A crash before that can leave a torn file behind a complete
//! name, which the read-time digest check turns into a miss, so integrity
//! never depends on the flush.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
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
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The SHA-256 of no bytes: never stored, always present.
pub const EMPTY_DIGEST: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Debug)]
pub struct Cache {
    root: PathBuf,
}

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub actions: u64,
    pub blobs: u64,
    pub bytes: u64,
}

impl Cache {
    /// Opens (creating) a store. Fails with a clear error when the folder
    /// cannot be created or written.
    pub fn open(root: &Path) -> io::Result<Cache> {
        for sub in ["cas", "ac", "tmp"] {
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
        Ok(Cache {
            root: root.to_owned(),
        })
    }

    /// Flushes everything written to the store's file system to disk.
    pub fn sync(&self) {
        if let Ok(f) = std::fs::File::open(&self.root) {
            use std::os::fd::AsRawFd;
            // SAFETY: syncfs(2) only reads the descriptor, which `f` keeps open.
            unsafe {
                libc::syncfs(f.as_raw_fd());
            }
        }
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

    /// Writes `bytes` to `dest` atomically: temp file, fsync, rename.
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

    pub fn put_blob(&self, bytes: &[u8]) -> io::Result<String> {
        let digest = sha256(bytes);
        if digest == EMPTY_DIGEST {
            return Ok(digest);
        }
        // Always replace: renaming identical bytes over a good blob is
        // harmless, and it repairs a blob that was corrupted on disk.
        self.write_atomic(&self.blob_path(&digest), bytes)?;
        Ok(digest)
    }

    /// Stores a file, hashing while copying.
    pub fn put_file(&self, path: &Path) -> io::Result<FileEntry> {
        let mut src = std::fs::File::open(path)?;
        let meta = src.metadata()?;
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
                executable: is_executable(&meta),
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
        let bytes = std::fs::read(self.root.join("ac").join(format!("{key}.json"))).ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(a) => Some(a),
            Err(_) => {
                let _ = std::fs::remove_file(self.root.join("ac").join(format!("{key}.json")));
                None
            }
        }
    }

    pub fn put_action(&self, key: &str, result: &ActionResult) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(result).map_err(io::Error::other)?;
        self.write_atomic(&self.root.join("ac").join(format!("{key}.json")), &bytes)
    }

    /// Restores an action's outputs under `project`. Every blob is verified
    /// before anything is written; on a corrupt or missing blob nothing is
    /// restored and `Ok(false)` is returned (a miss).
    pub fn restore(&self, result: &ActionResult, project: &Path) -> io::Result<bool> {
        let mut blobs: Vec<(PathBuf, Vec<u8>, bool)> = Vec::new();
        for o in &result.outputs {
            for f in &o.files {
                let Some(bytes) = self.read_blob(&f.digest) else {
                    return Ok(false);
                };
                let dest = if f.path.is_empty() {
                    project.join(&o.path)
                } else {
                    project.join(&o.path).join(&f.path)
                };
                blobs.push((dest, bytes, f.executable));
            }
        }
        if self.read_blob(&result.log_digest).is_none() {
            return Ok(false);
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
            if std::fs::metadata(&dest)
                .is_ok_and(|m| m.len() == bytes.len() as u64 && is_executable(&m) == exec)
                && std::fs::read(&dest).is_ok_and(|b| b == bytes)
            {
                continue;
            }
            if let Some(dir) = dest.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = dest.with_extension(format!("weir-restore-{}", std::process::id()));
            std::fs::write(&tmp, &bytes)?;
            set_executable(&tmp, exec)?;
            std::fs::rename(&tmp, &dest)?;
        }
        Ok(true)
    }

    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        if let Ok(rd) = std::fs::read_dir(self.root.join("ac")) {
            s.actions = rd.filter_map(Result::ok).count() as u64;
        }
        for (_, size, _) in self.blobs() {
            s.blobs += 1;
            s.bytes += size;
        }
        s
    }

    fn blobs(&self) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
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

    /// Deletes the least recently written action entries and then every
    /// blob no remaining entry references, until the store is under
    /// `max_bytes`. Entries written in the last `keep_recent` are kept, so a
    /// run in progress never loses what it just stored.
    pub fn gc(&self, max_bytes: u64, keep_recent: std::time::Duration) -> io::Result<Stats> {
        let now = std::time::SystemTime::now();
        let mut actions: Vec<(PathBuf, std::time::SystemTime)> =
            std::fs::read_dir(self.root.join("ac"))?
                .filter_map(Result::ok)
                .filter_map(|e| {
                    e.metadata()
                        .ok()
                        .map(|m| (e.path(), m.modified().unwrap_or(std::time::UNIX_EPOCH)))
                })
                .collect();
        actions.sort_by_key(|(_, t)| *t);
        let total: u64 = self.blobs().iter().map(|(_, s, _)| s).sum();
        let mut excess = total.saturating_sub(max_bytes);
        let mut i = 0;
        while excess > 0 && i < actions.len() {
            let (path, t) = &actions[i];
            if now.duration_since(*t).unwrap_or_default() < keep_recent {
                break;
            }
            let freed = std::fs::read(path)
                .ok()
                .and_then(|b| serde_json::from_slice::<ActionResult>(&b).ok())
                .map_or(0, |a| {
                    a.outputs
                        .iter()
                        .flat_map(|o| &o.files)
                        .map(|f| f.size)
                        .sum::<u64>()
                });
            std::fs::remove_file(path)?;
            excess = excess.saturating_sub(freed.max(1));
            i += 1;
        }
        // Sweep blobs no remaining action references (and old temp files).
        let mut live = std::collections::HashSet::new();
        for e in std::fs::read_dir(self.root.join("ac"))?.filter_map(Result::ok) {
            if let Some(a) = std::fs::read(e.path())
                .ok()
                .and_then(|b| serde_json::from_slice::<ActionResult>(&b).ok())
            {
                live.insert(a.log_digest.clone());
                for o in &a.outputs {
                    for f in &o.files {
                        live.insert(f.digest.clone());
                    }
                }
            }
        }
        for (path, _, t) in self.blobs() {
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
