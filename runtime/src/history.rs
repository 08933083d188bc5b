//! The run history: an SQLite database in the project's `.weir/` folder.
//!
//! Every state change is durable as it happens, so a `weir` process killed
//! with SIGKILL leaves a consistent record: the steps that finished are
//! recorded as finished, the run stays `running` until a later `--resume`
//! marks it `interrupted`. Run-level changes are committed at once; the
//! records of each step go through a journal first and reach the database
//! in batches ([`crate::journal`]), applied by whoever opens it next if this
//! process is killed. WAL mode and a busy timeout let concurrent runs share
//! the file.

use crate::journal::{self, Journal};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::cell::RefCell;
use std::path::Path;
use std::time::Duration;

pub struct History {
    conn: Connection,
    /// Step records not yet in the database, in order, and the journal
    /// that keeps them safe until they are (see [`crate::journal`]).
    pending: RefCell<Vec<Rec>>,
    journal: RefCell<Journal>,
}

/// The statements a run writes per step, journalled before they reach the
/// database. Each is an upsert, so applying a journal twice is harmless.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stmt {
    StepStarted,
    StepFinished,
    CachedStep,
    Attempt,
}

type Rec = (Stmt, Vec<Value>);

impl Stmt {
    const ALL: [Stmt; 4] = [
        Stmt::StepStarted,
        Stmt::StepFinished,
        Stmt::CachedStep,
        Stmt::Attempt,
    ];

    fn sql(self) -> &'static str {
        match self {
            // A `running` row is only information: resuming trusts finished
            // steps alone.
            Stmt::StepStarted => {
                "INSERT INTO steps (run_id, node, name, status, started_at) VALUES (?1, ?2, ?3, 'running', ?4)
                 ON CONFLICT(run_id, node) DO UPDATE SET status = 'running', started_at = ?4"
            }
            Stmt::StepFinished => {
                "INSERT INTO steps (run_id, node, name, status, cached, attempts, duration_ms, exit_code, action_key, message, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT(run_id, node) DO UPDATE SET status = ?4, cached = ?5, attempts = ?6, duration_ms = ?7,
                   exit_code = ?8, action_key = ?9, message = ?10, finished_at = ?11"
            }
            Stmt::CachedStep => {
                "INSERT INTO steps (run_id, node, name, status, cached, attempts, duration_ms, exit_code, action_key, finished_at)
                 VALUES (?1, ?2, ?3, 'succeeded', 1, 0, ?4, ?5, ?6, ?7)
                 ON CONFLICT(run_id, node) DO UPDATE SET status = 'succeeded', cached = 1, duration_ms = ?4, exit_code = ?5, action_key = ?6, finished_at = ?7"
            }
            Stmt::Attempt => {
                "INSERT OR REPLACE INTO attempts (run_id, node, attempt, status, exit_code, duration_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            }
        }
    }

    fn encode(self, values: &[Value]) -> Vec<u8> {
        let tag = Stmt::ALL.iter().position(|s| *s == self).unwrap_or(0);
        let mut row = vec![serde_json::Value::from(tag)];
        row.extend(values.iter().map(|v| match v {
            Value::Integer(i) => serde_json::Value::from(*i),
            Value::Real(f) => serde_json::Value::from(*f),
            Value::Text(t) => serde_json::Value::from(t.as_str()),
            Value::Null | Value::Blob(_) => serde_json::Value::Null,
        }));
        serde_json::to_vec(&row).unwrap_or_default()
    }

    fn decode(bytes: &[u8]) -> Option<Rec> {
        let row: Vec<serde_json::Value> = serde_json::from_slice(bytes).ok()?;
        let (tag, values) = row.split_first()?;
        let stmt = *Stmt::ALL.get(usize::try_from(tag.as_u64()?).ok()?)?;
        let values = values
            .iter()
            .map(|v| match v {
                serde_json::Value::Number(n) => n
                    .as_i64()
                    .map(Value::Integer)
                    .or_else(|| n.as_f64().map(Value::Real)),
                serde_json::Value::String(s) => Some(Value::Text(s.clone())),
                serde_json::Value::Null => Some(Value::Null),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Some((stmt, values))
    }
}

fn write_rec(conn: &Connection, (stmt, values): &Rec) -> rusqlite::Result<()> {
    conn.prepare_cached(stmt.sql())?
        .execute(rusqlite::params_from_iter(values.iter()))
        .map(|_| ())
}

fn opt_int(v: Option<i64>) -> Value {
    v.map_or(Value::Null, Value::Integer)
}

fn opt_text(v: Option<&str>) -> Value {
    v.map_or(Value::Null, |s| Value::Text(s.to_owned()))
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

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
        let journal_dir = path.with_file_name("journal");
        journal::recover(&journal_dir, |records| {
            let tx = conn.unchecked_transaction()?;
            for r in records.iter().filter_map(|r| Stmt::decode(r)) {
                write_rec(&conn, &r)?;
            }
            tx.commit()
        })
        .map_err(|e| format!("cannot apply the journal of an interrupted run: {e}"))?;
        Ok(History {
            conn,
            pending: RefCell::new(Vec::new()),
            journal: RefCell::new(Journal::new(&journal_dir)),
        })
    }

    /// Applies the journalled records to the database in one transaction,
    /// together with `then` when given, and empties the journal.
    fn apply(&self, then: Option<(&str, &[&dyn rusqlite::ToSql])>) -> Result<(), String> {
        let mut pending = self.pending.borrow_mut();
        if pending.is_empty() && then.is_none() {
            return Ok(());
        }
        let done = (|| {
            let tx = self.conn.unchecked_transaction()?;
            for r in pending.iter() {
                write_rec(&self.conn, r)?;
            }
            if let Some((sql, p)) = then {
                self.conn.prepare_cached(sql)?.execute(p)?;
            }
            tx.commit()
        })();
        done.map_err(|e| format!("cannot write the run history: {e}"))?;
        pending.clear();
        self.journal
            .borrow_mut()
            .clear()
            .map_err(|e| format!("cannot empty the history journal: {e}"))?;
        Ok(())
    }

    /// Brings the database up to date with the journal.
    pub fn flush(&self) -> Result<(), String> {
        self.apply(None)
    }

    /// Journals a step record; the database follows within
    /// [`journal::APPLY_EVERY`]. Without a journal (it cannot be created),
    /// the record is committed at once.
    /// `durable`: written to the journal before returning (a step's result);
    /// otherwise it goes out with the next durable record (a step started,
    /// an attempt, which always precedes its step's result).
    fn record(&self, stmt: Stmt, values: Vec<Value>) -> Result<(), String> {
        let durable = matches!(stmt, Stmt::StepFinished | Stmt::CachedStep);
        let mut journal = self.journal.borrow_mut();
        let journalled = journal
            .append(&stmt.encode(&values), durable)
            .map_err(|e| format!("cannot write the history journal: {e}"))?;
        let due = !journalled || journal.due();
        drop(journal);
        self.pending.borrow_mut().push((stmt, values));
        if due { self.apply(None) } else { Ok(()) }
    }

    /// Records a step restored from the cache.
    pub fn cached_step(
        &self,
        run: &str,
        node: &str,
        name: &str,
        duration_ms: u64,
        exit_code: Option<i32>,
        action_key: Option<&str>,
    ) -> Result<(), String> {
        self.record(
            Stmt::CachedStep,
            vec![
                text(run),
                text(node),
                text(name),
                Value::Integer(duration_ms as i64),
                opt_int(exit_code.map(i64::from)),
                opt_text(action_key),
                Value::Integer(now_ms()),
            ],
        )
    }

    /// Commits a run-level change at once, with the journalled records
    /// before it.
    fn exec(&self, sql: &str, p: &[&dyn rusqlite::ToSql]) -> Result<(), String> {
        self.apply(Some((sql, p)))
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
        self.record(
            Stmt::StepStarted,
            vec![text(run), text(node), text(name), Value::Integer(now_ms())],
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
        self.record(
            Stmt::StepFinished,
            vec![
                text(run),
                text(node),
                text(name),
                text(status),
                Value::Integer(i64::from(cached)),
                Value::Integer(i64::from(attempts)),
                Value::Integer(duration_ms as i64),
                opt_int(exit_code.map(i64::from)),
                opt_text(action_key),
                opt_text(message),
                Value::Integer(now_ms()),
            ],
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
        self.record(
            Stmt::Attempt,
            vec![
                text(run),
                text(node),
                Value::Integer(i64::from(attempt)),
                text(status),
                opt_int(exit_code.map(i64::from)),
                Value::Integer(duration_ms as i64),
            ],
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
        self.flush()?;
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
        self.flush()?;
        self.conn
            .query_row("SELECT id, pipeline, status, started_at, finished_at, resumed_from FROM runs WHERE id = ?1 OR id LIKE ?1 || '%' ORDER BY started_at DESC LIMIT 1", params![id], |r| {
                Ok(RunRow { id: r.get(0)?, pipeline: r.get(1)?, status: r.get(2)?, started_at: r.get(3)?, finished_at: r.get(4)?, resumed_from: r.get(5)? })
            })
            .optional()
            .map_err(|e| e.to_string())
    }

    pub fn steps(&self, run: &str) -> Result<Vec<StepRow>, String> {
        self.flush()?;
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
        self.flush()?;
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
        self.flush()?;
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
        self.flush()?;
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

impl Drop for History {
    fn drop(&mut self) {
        // Leaves nothing in the journal when the database can take it.
        let _ = self.flush();
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    /// The writer half of the test below, run by it in a child process:
    /// records a run and its steps, then dies without unwinding, like a
    /// `weir` killed with SIGKILL, leaving the step records in its journal.
    fn write_then_die(db: &str) -> ! {
        let h = History::open(Path::new(db)).unwrap();
        h.start_run("r1", "ci", "digest", None).unwrap();
        h.step_started("r1", "a", "a").unwrap();
        h.attempt("r1", "a", 1, "succeeded", Some(0), 5).unwrap();
        h.step_finished(
            "r1",
            "a",
            "a",
            "succeeded",
            false,
            1,
            5,
            Some(0),
            Some("key-a"),
            None,
        )
        .unwrap();
        h.step_started("r1", "b", "b").unwrap();
        std::process::abort();
    }

    #[test]
    fn records_of_a_killed_writer_reach_the_database_on_the_next_open() {
        if let Ok(db) = std::env::var("WEIR_TEST_HISTORY_CHILD") {
            write_then_die(&db);
        }
        let dir = std::env::temp_dir().join(format!("weir-history-kill-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = dir.join("history.db");
        let st = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "history::tests::records_of_a_killed_writer_reach_the_database_on_the_next_open",
                "--nocapture",
            ])
            .env("WEIR_TEST_HISTORY_CHILD", &db)
            .stderr(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!st.success(), "the child must die, not finish");
        // The database alone does not have the steps yet: they are in the
        // journal the dead process left.
        {
            let raw = Connection::open(&db).unwrap();
            let n: i64 = raw
                .query_row("SELECT COUNT(*) FROM steps", [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 0, "steps were committed without the journal");
        }
        let journals = std::fs::read_dir(dir.join("journal")).unwrap().count();
        assert_eq!(journals, 1);
        let h = History::open(&db).unwrap();
        let steps = h.steps("r1").unwrap();
        // `b` had only started: that record waits for the next durable one
        // and died with the process, which resuming does not need.
        assert_eq!(steps.len(), 1, "{steps:?}");
        let a = &steps[0];
        assert_eq!(a.node, "a");
        assert_eq!(a.status, "succeeded");
        assert_eq!(a.attempts, 1);
        assert_eq!(a.action_key.as_deref(), Some("key-a"));
        assert_eq!(h.last_unfinished("ci").unwrap().unwrap().id, "r1");
        assert_eq!(
            std::fs::read_dir(dir.join("journal")).unwrap().count(),
            0,
            "an applied journal is deleted"
        );
        // Applying is idempotent: a second open changes nothing.
        drop(h);
        let h = History::open(&db).unwrap();
        assert_eq!(h.steps("r1").unwrap().len(), 1);
    }
}
