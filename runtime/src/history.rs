//! The run history: an SQLite database in the project's `.weir/` folder.
//!
//! Every state change is committed as it happens, so a `weir` process killed
//! with SIGKILL leaves a consistent record: the steps that finished are
//! recorded as finished, the run stays `running` until a later `--resume`
//! marks it `interrupted`. WAL mode and a busy timeout let concurrent runs
//! share the file.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

pub struct History {
    conn: Connection,
    /// When the open batch of cache-hit records began, if one is open.
    batch: std::cell::Cell<Option<std::time::Instant>>,
}

/// Cache-hit records are written in batches committed at least this often;
/// everything else commits at once.
const BATCH_WINDOW: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub id: String,
    pub pipeline: String,
    pub status: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub resumed_from: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepRow {
    pub node: String,
    pub name: String,
    pub status: String,
    pub cached: bool,
    pub attempts: i64,
    pub duration_ms: i64,
    pub exit_code: Option<i64>,
    pub action_key: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRow {
    pub node: String,
    pub approver: String,
    pub approved: bool,
    pub at: i64,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateRow {
    pub node: String,
    pub passed: bool,
    pub message: Option<String>,
    pub values: String,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl History {
    pub fn open(path: &Path) -> Result<History, String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
        }
        let conn = Connection::open(path)
            .map_err(|e| format!("cannot open the run history `{}`: {e}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(|e| e.to_string())?;
        let _ = conn.pragma_update(None, "journal_mode", "WAL");
        let _ = conn.pragma_update(None, "synchronous", "NORMAL");
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS runs (
                id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, status TEXT NOT NULL,
                started_at INTEGER NOT NULL, finished_at INTEGER, resumed_from TEXT, plan_digest TEXT);
             CREATE TABLE IF NOT EXISTS steps (
                run_id TEXT NOT NULL, node TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,
                cached INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
                duration_ms INTEGER NOT NULL DEFAULT 0, exit_code INTEGER, action_key TEXT, message TEXT,
                started_at INTEGER, finished_at INTEGER, PRIMARY KEY (run_id, node));
             CREATE TABLE IF NOT EXISTS attempts (
                run_id TEXT NOT NULL, node TEXT NOT NULL, attempt INTEGER NOT NULL, status TEXT NOT NULL,
                exit_code INTEGER, duration_ms INTEGER NOT NULL, PRIMARY KEY (run_id, node, attempt));
             CREATE TABLE IF NOT EXISTS approvals (
                run_id TEXT NOT NULL, node TEXT NOT NULL, approver TEXT NOT NULL, approved INTEGER NOT NULL,
                at INTEGER NOT NULL, message TEXT);
             CREATE TABLE IF NOT EXISTS gates (
                run_id TEXT NOT NULL, node TEXT NOT NULL, passed INTEGER NOT NULL, message TEXT, vals TEXT NOT NULL);",
        )
        .map_err(|e| format!("cannot prepare the run history `{}`: {e}", path.display()))?;
        Ok(History {
            conn,
            batch: std::cell::Cell::new(None),
        })
    }

    /// Commits the open batch, if any.
    pub fn flush(&self) -> Result<(), String> {
        if self.batch.take().is_some() {
            self.conn
                .execute_batch("COMMIT")
                .map_err(|e| format!("cannot write the run history: {e}"))?;
        }
        Ok(())
    }

    /// Records a step restored from the cache. A kill before the batch
    /// commits loses at most [`BATCH_WINDOW`] of such records, and a resumed
    /// run finds those steps in the cache again, so nothing is re-executed.
    #[allow(clippy::too_many_arguments)]
    pub fn cached_step(
        &self,
        run: &str,
        node: &str,
        name: &str,
        duration_ms: u64,
        exit_code: Option<i32>,
        action_key: Option<&str>,
    ) -> Result<(), String> {
        self.begin_batch()?;
        self.write(
            "INSERT INTO steps (run_id, node, name, status, cached, attempts, duration_ms, exit_code, action_key, finished_at)
             VALUES (?1, ?2, ?3, 'succeeded', 1, 0, ?4, ?5, ?6, ?7)
             ON CONFLICT(run_id, node) DO UPDATE SET status = 'succeeded', cached = 1, duration_ms = ?4, exit_code = ?5, action_key = ?6, finished_at = ?7",
            params![run, node, name, duration_ms as i64, exit_code, action_key, now_ms()],
        )
    }

    fn begin_batch(&self) -> Result<(), String> {
        match self.batch.get() {
            Some(t) if t.elapsed() <= BATCH_WINDOW => return Ok(()),
            Some(_) => self.flush()?,
            None => {}
        }
        self.conn
            .execute_batch("BEGIN")
            .map_err(|e| e.to_string())?;
        self.batch.set(Some(std::time::Instant::now()));
        Ok(())
    }

    /// Writes and commits at once, together with the open batch: one
    /// commit (one set of WAL frames) rather than one for the batch and one
    /// for this row.
    fn exec(&self, sql: &str, p: impl rusqlite::Params) -> Result<(), String> {
        self.begin_batch()?;
        let written = self.write(sql, p);
        self.flush()?;
        written
    }

    fn write(&self, sql: &str, p: impl rusqlite::Params) -> Result<(), String> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut st| st.execute(p))
            .map(|_| ())
            .map_err(|e| format!("cannot write the run history: {e}"))
    }

    pub fn start_run(
        &self,
        id: &str,
        pipeline: &str,
        plan_digest: &str,
        resumed_from: Option<&str>,
    ) -> Result<(), String> {
        self.exec("INSERT INTO runs (id, pipeline, status, started_at, resumed_from, plan_digest) VALUES (?1, ?2, 'running', ?3, ?4, ?5)", params![id, pipeline, now_ms(), resumed_from, plan_digest])
    }

    pub fn finish_run(&self, id: &str, status: &str) -> Result<(), String> {
        self.exec(
            "UPDATE runs SET status = ?2, finished_at = ?3 WHERE id = ?1",
            params![id, status, now_ms()],
        )
    }

    pub fn step_started(&self, run: &str, node: &str, name: &str) -> Result<(), String> {
        // Batched like cache hits: a `running` row lost in a crash changes
        // nothing, since resuming trusts only finished steps.
        self.begin_batch()?;
        self.write(
            "INSERT INTO steps (run_id, node, name, status, started_at) VALUES (?1, ?2, ?3, 'running', ?4)
             ON CONFLICT(run_id, node) DO UPDATE SET status = 'running', started_at = ?4",
            params![run, node, name, now_ms()],
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub fn step_finished(
        &self,
        run: &str,
        node: &str,
        name: &str,
        status: &str,
        cached: bool,
        attempts: u32,
        duration_ms: u64,
        exit_code: Option<i32>,
        action_key: Option<&str>,
        message: Option<&str>,
    ) -> Result<(), String> {
        self.exec(
            "INSERT INTO steps (run_id, node, name, status, cached, attempts, duration_ms, exit_code, action_key, message, finished_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT(run_id, node) DO UPDATE SET status = ?4, cached = ?5, attempts = ?6, duration_ms = ?7,
               exit_code = ?8, action_key = ?9, message = ?10, finished_at = ?11",
            params![run, node, name, status, cached, attempts, duration_ms as i64, exit_code, action_key, message, now_ms()],
        )
    }

    pub fn attempt(
        &self,
        run: &str,
        node: &str,
        attempt: u32,
        status: &str,
        exit_code: Option<i32>,
        duration_ms: u64,
    ) -> Result<(), String> {
        // Committed with the step's finished row, which always follows: a
        // step's attempts and its result land together or not at all.
        self.begin_batch()?;
        self.write(
            "INSERT OR REPLACE INTO attempts (run_id, node, attempt, status, exit_code, duration_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![run, node, attempt, status, exit_code, duration_ms as i64],
        )
    }

    pub fn approval(
        &self,
        run: &str,
        node: &str,
        approver: &str,
        approved: bool,
        message: Option<&str>,
    ) -> Result<(), String> {
        self.exec("INSERT INTO approvals (run_id, node, approver, approved, at, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", params![run, node, approver, approved, now_ms(), message])
    }

    pub fn gate(
        &self,
        run: &str,
        node: &str,
        passed: bool,
        message: Option<&str>,
        values: &str,
    ) -> Result<(), String> {
        self.exec(
            "INSERT INTO gates (run_id, node, passed, message, vals) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![run, node, passed, message, values],
        )
    }

    pub fn runs(&self, limit: usize) -> Result<Vec<RunRow>, String> {
        let mut st = self.conn.prepare("SELECT id, pipeline, status, started_at, finished_at, resumed_from FROM runs ORDER BY started_at DESC, id DESC LIMIT ?1").map_err(|e| e.to_string())?;
        let rows = st
            .query_map(params![limit as i64], |r| {
                Ok(RunRow {
                    id: r.get(0)?,
                    pipeline: r.get(1)?,
                    status: r.get(2)?,
                    started_at: r.get(3)?,
                    finished_at: r.get(4)?,
                    resumed_from: r.get(5)?,
                })
            })
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())
    }

    pub fn run(&self, id: &str) -> Result<Option<RunRow>, String> {
        self.conn
            .query_row("SELECT id, pipeline, status, started_at, finished_at, resumed_from FROM runs WHERE id = ?1 OR id LIKE ?1 || '%' ORDER BY started_at DESC LIMIT 1", params![id], |r| {
                Ok(RunRow { id: r.get(0)?, pipeline: r.get(1)?, status: r.get(2)?, started_at: r.get(3)?, finished_at: r.get(4)?, resumed_from: r.get(5)? })
            })
            .optional()
            .map_err(|e| e.to_string())
    }

    pub fn steps(&self, run: &str) -> Result<Vec<StepRow>, String> {
        let mut st = self.conn.prepare("SELECT node, name, status, cached, attempts, duration_ms, exit_code, action_key, message FROM steps WHERE run_id = ?1 ORDER BY started_at, node").map_err(|e| e.to_string())?;
        let rows = st
            .query_map(params![run], |r| {
                Ok(StepRow {
                    node: r.get(0)?,
                    name: r.get(1)?,
                    status: r.get(2)?,
                    cached: r.get(3)?,
                    attempts: r.get(4)?,
                    duration_ms: r.get(5)?,
                    exit_code: r.get(6)?,
                    action_key: r.get(7)?,
                    message: r.get(8)?,
                })
            })
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())
    }

    pub fn approvals(&self, run: &str) -> Result<Vec<ApprovalRow>, String> {
        let mut st = self.conn.prepare("SELECT node, approver, approved, at, message FROM approvals WHERE run_id = ?1 ORDER BY at").map_err(|e| e.to_string())?;
        let rows = st
            .query_map(params![run], |r| {
                Ok(ApprovalRow {
                    node: r.get(0)?,
                    approver: r.get(1)?,
                    approved: r.get(2)?,
                    at: r.get(3)?,
                    message: r.get(4)?,
                })
            })
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())
    }

    pub fn gates(&self, run: &str) -> Result<Vec<GateRow>, String> {
        let mut st = self
            .conn
            .prepare("SELECT node, passed, message, vals FROM gates WHERE run_id = ?1")
            .map_err(|e| e.to_string())?;
        let rows = st
            .query_map(params![run], |r| {
                Ok(GateRow {
                    node: r.get(0)?,
                    passed: r.get(1)?,
                    message: r.get(2)?,
                    values: r.get(3)?,
                })
            })
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())
    }

    /// The most recent run of `pipeline` that did not succeed.
    pub fn last_unfinished(&self, pipeline: &str) -> Result<Option<RunRow>, String> {
        self.conn
            .query_row(
                "SELECT id, pipeline, status, started_at, finished_at, resumed_from FROM runs WHERE pipeline = ?1 ORDER BY started_at DESC, rowid DESC LIMIT 1",
                params![pipeline],
                |r| Ok(RunRow { id: r.get(0)?, pipeline: r.get(1)?, status: r.get(2)?, started_at: r.get(3)?, finished_at: r.get(4)?, resumed_from: r.get(5)? }),
            )
            .optional()
            .map_err(|e| e.to_string())
            .map(|r| r.filter(|r| r.status != "succeeded"))
    }

    /// Marks runs left `running` by a killed process, and their running steps.
    pub fn mark_interrupted(&self, run: &str) -> Result<(), String> {
        self.exec(
            "UPDATE steps SET status = 'interrupted' WHERE run_id = ?1 AND status = 'running'",
            params![run],
        )?;
        self.exec("UPDATE runs SET status = 'interrupted', finished_at = COALESCE(finished_at, ?2) WHERE id = ?1 AND status = 'running'", params![run, now_ms()])
    }
}
