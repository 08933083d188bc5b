//! Append-only journals in front of the SQLite databases.
//!
//! A commit to an SQLite database in WAL mode writes whole pages (a step's
//! record touches four or five of them) and, every thousand pages, a
//! checkpoint that syncs the disk. Doing that for every step cost a cold run
//! of trivial steps a quarter of the scheduler's time. Instead, records are
//! appended to this process's journal, and the ones that must survive (a
//! step's result) are written with a single `write(2)` together with those
//! buffered before them; once that call returns the bytes are in the kernel
//! and survive the process being killed with SIGKILL. The records are
//! applied to the database in one transaction at most every
//! [`APPLY_EVERY`], at the end of the run, and whenever something must be
//! read back. Applying rarely matters: the keys of the cache index are
//! digests, so a batch of new rows lands all over the tree and rewrites
//! most of its pages whatever its size.
//!
//! A journal lives in a `journal/` folder beside its database and is locked
//! by its writer (`flock`) for as long as the writer lives. Whoever opens
//! the database next applies every journal whose lock it can take (its
//! writer is gone) and deletes it, so the records of a killed run reach
//! the database before anyone reads it.
//!
//! Frame: payload length (u32, little-endian), FNV-1a 64 of the payload,
//! payload. A frame cut short or failing its check ends the journal (the
//! writer died within that write): it and anything after it is ignored.
//! Applying a journal twice must be harmless, so the statements journalled
//! are idempotent upserts.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How stale a database may be behind its journal while a run is going.
pub const APPLY_EVERY: Duration = Duration::from_secs(2);

/// The largest record accepted on replay; anything larger is corruption.
const MAX_RECORD: usize = 256 * 1024 * 1024;

/// This process's journal in one folder. The file is created on the first
/// record; when it cannot be (a read-only folder), [`Journal::append`] says
/// so and the caller commits its records at once.
pub struct Journal {
    dir: PathBuf,
    /// `None` until the first record; `Some(Err)` once creating it failed.
    file: Option<Result<(File, PathBuf), ()>>,
    /// Frames not yet written, waiting for the next durable record.
    buffered: Vec<u8>,
    /// Records appended since the last [`Journal::clear`].
    pending: usize,
    last_apply: Instant,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Creates a journal file in `dir`, locked.
fn create(dir: &Path) -> io::Result<(File, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = format!("{}-{nanos}", std::process::id());
    let path = dir.join(format!("{name}.journal"));
    // Created and locked under another name, then renamed: a journal under
    // its real name is always locked by its writer, so a recovering process
    // never takes a fresh one for a dead one's.
    let making = dir.join(format!("{name}.new"));
    let file = std::fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .read(true)
        .open(&making)?;
    let ready = file
        .try_lock()
        .map_err(|e| io::Error::other(format!("cannot lock `{}`: {e}", making.display())))
        .and_then(|()| std::fs::rename(&making, &path));
    if let Err(e) = ready {
        let _ = std::fs::remove_file(&making);
        return Err(e);
    }
    Ok((file, path))
}

impl Journal {
    /// A journal in `dir`; nothing is created until the first record.
    pub fn new(dir: &Path) -> Journal {
        Journal {
            dir: dir.to_owned(),
            file: None,
            buffered: Vec::new(),
            pending: 0,
            last_apply: Instant::now(),
        }
    }

    /// Appends one record. A `durable` record is written at once, with the
    /// records buffered before it, in one `write(2)`; the others wait for
    /// the next durable one (losing them in a crash must be harmless).
    /// `Ok(false)`: there is no journal file, commit the record at once.
    pub fn append(&mut self, payload: &[u8], durable: bool) -> io::Result<bool> {
        let Ok((file, path)) = self
            .file
            .get_or_insert_with(|| create(&self.dir).map_err(drop))
        else {
            return Ok(false);
        };
        let len = u32::try_from(payload.len())
            .map_err(|_| io::Error::other("journal record larger than 4 GiB"))?;
        self.buffered.extend_from_slice(&len.to_le_bytes());
        self.buffered
            .extend_from_slice(&fnv1a(payload).to_le_bytes());
        self.buffered.extend_from_slice(payload);
        self.pending += 1;
        if durable {
            if let Err(e) = file.write_all(&self.buffered) {
                // A partial frame would hide every later one: cut it off.
                let _ = truncate_to_records(file, path);
                return Err(e);
            }
            self.buffered.clear();
        }
        Ok(true)
    }

    /// Whether records are waiting and the database has not been brought up
    /// to date for [`APPLY_EVERY`].
    pub fn due(&self) -> bool {
        self.pending > 0 && self.last_apply.elapsed() >= APPLY_EVERY
    }

    /// Empties the journal once its records are committed to the database.
    pub fn clear(&mut self) -> io::Result<()> {
        if let Some(Ok((file, _))) = &self.file {
            file.set_len(0)?;
        }
        self.buffered.clear();
        self.pending = 0;
        self.last_apply = Instant::now();
        Ok(())
    }
}

/// Drops a torn tail left by a failed write, keeping whole frames.
fn truncate_to_records(file: &File, path: &Path) -> io::Result<()> {
    let bytes = std::fs::read(path)?;
    file.set_len(frames(&bytes).1 as u64)
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Only an empty journal is removed: records not yet applied stay
        // for the next opener.
        if let Some(Ok((_, path))) = &self.file
            && self.pending == 0
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The whole frames at the start of `bytes`, and how many bytes they span.
fn frames(bytes: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(header) = bytes.get(at..at + 12) {
        let mut len = [0u8; 4];
        len.copy_from_slice(&header[..4]);
        let len = u32::from_le_bytes(len) as usize;
        let mut sum = [0u8; 8];
        sum.copy_from_slice(&header[4..]);
        if len > MAX_RECORD {
            break;
        }
        let Some(payload) = bytes.get(at + 12..at + 12 + len) else {
            break;
        };
        if fnv1a(payload) != u64::from_le_bytes(sum) {
            break;
        }
        out.push(payload);
        at += 12 + len;
    }
    (out, at)
}

/// Applies the journals in `dir` left by writers that are gone: `apply`
/// gets each journal's records in order, and the journal is deleted once
/// it returns `Ok`. Journals of live writers (locked) are left alone.
pub fn recover<E>(dir: &Path, mut apply: impl FnMut(&[&[u8]]) -> Result<(), E>) -> Result<(), E> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    for path in entries.filter_map(Result::ok).map(|e| e.path()) {
        match path.extension().and_then(|x| x.to_str()) {
            Some("journal") => paths.push(path),
            // One whose writer died before naming it holds no records.
            Some("new") => {
                if let Ok(f) = File::open(&path)
                    && f.try_lock().is_ok()
                {
                    let _ = std::fs::remove_file(&path);
                }
            }
            _ => {}
        }
    }
    paths.sort();
    for path in paths {
        let Ok(mut file) = std::fs::OpenOptions::new().read(true).open(&path) else {
            continue;
        };
        if file.try_lock().is_err() {
            continue;
        }
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).is_err() {
            continue;
        }
        let (records, _) = frames(&bytes);
        apply(&records)?;
        let _ = std::fs::remove_file(&path);
    }
    Ok(())
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("weir-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn records_of_a_dead_writer_are_recovered_and_a_torn_tail_is_dropped() {
        let d = dir("torn");
        let mut j = Journal::new(&d);
        assert!(j.append(b"one", true).unwrap());
        j.append(b"lost", false).unwrap();
        j.append(b"two", true).unwrap();
        j.append(b"never written", false).unwrap();
        let path = j.file.as_ref().unwrap().as_ref().unwrap().1.clone();
        // A live writer's journal is left alone.
        let mut seen = Vec::new();
        recover::<()>(&d, |r| {
            seen.extend(r.iter().map(|x| x.to_vec()));
            Ok(())
        })
        .unwrap();
        assert!(seen.is_empty());
        // The writer dies in the middle of a third record.
        std::mem::forget(j);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        // Forgetting the journal leaked its descriptor and so its lock;
        // take the lock over as a new process would find it released.
        let lock_holder = std::fs::File::open(&path).unwrap();
        assert!(
            lock_holder.try_lock().is_err(),
            "still locked by the leaked fd"
        );
        drop(lock_holder);
        // Release the leaked lock by copying the file to a fresh inode.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, bytes).unwrap();
        recover::<()>(&d, |r| {
            seen.extend(r.iter().map(|x| x.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![b"one".to_vec(), b"lost".to_vec(), b"two".to_vec()],
            "buffered records go out with the next durable one; the rest is lost"
        );
        assert!(!path.exists(), "an applied journal is deleted");
    }

    #[test]
    fn a_failed_apply_keeps_the_journal() {
        let d = dir("keep");
        std::fs::create_dir_all(&d).unwrap();
        let path = d.join("1-1.journal");
        let mut frame = Vec::new();
        frame.extend_from_slice(&3u32.to_le_bytes());
        frame.extend_from_slice(&fnv1a(b"abc").to_le_bytes());
        frame.extend_from_slice(b"abc");
        std::fs::write(&path, &frame).unwrap();
        assert_eq!(
            recover(&d, |_| Err("database locked")),
            Err("database locked")
        );
        assert!(path.exists());
        let mut n = 0;
        recover::<()>(&d, |r| {
            n = r.len();
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 1);
        assert!(!path.exists());
    }

    #[test]
    fn a_cleared_journal_is_removed_when_dropped() {
        let d = dir("clear");
        let mut j = Journal::new(&d);
        j.append(b"x", true).unwrap();
        assert_eq!(j.pending, 1);
        j.clear().unwrap();
        let path = j.file.as_ref().unwrap().as_ref().unwrap().1.clone();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        drop(j);
        assert!(!path.exists());
    }
}
