//! Weir's runtime: executes a [`Plan`] on this machine.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//! use weir_runtime::{run, LocalExecutor, PlainSink, RunOptions};
//!
//! let mut files = BTreeMap::new();
//! files.insert("ci.weir".to_owned(), r#"pipeline ci { step "hi" { run: "echo hi" } }"#.to_owned());
//! let (plan, _diagnostics) = weir_compiler::compile(&files, &Default::default());
//! let opts = RunOptions::for_project(std::path::Path::new("."));
//! let record = run(&plan.unwrap(), &opts, Arc::new(LocalExecutor::default()), Arc::new(PlainSink { show_logs: true })).unwrap();
//! println!("{}", record.status);
//! ```
//!
//! The scheduler keeps every ready node in a queue ordered by critical path
//! (the longest chain of nodes still to run after it), starts up to `jobs` at
//! once, and reacts to each completion. A node's cache key hashes everything
//! it reads; a hit restores its outputs byte for byte and replays its log.
//! Gates and approvals are decided by the scheduler itself. When a stage
//! fails, its rollback nodes run after the rest has stopped.

pub mod cache;
pub mod cond;
pub mod events;
pub mod exec;
pub mod history;
pub mod journal;
pub mod redact;
pub mod reports;
mod scheduler;

pub use cache::Cache;
pub use events::{CollectSink, Event, EventSink, JsonSink, PlainSink, TtySink};
pub use exec::{Executor, Job, JobIo, Launch, LocalExecutor, Outcome};
pub use scheduler::run;

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where secret values come from, tried in this order: the environment
/// (`WEIR_SECRET_<NAME>`, then `<NAME>`), a file `<dir>/<NAME>`, a command
/// (`{name}` replaced by the secret's name, its stdout is the value).
#[derive(Clone, Debug, Default)]
pub struct SecretSources {
    pub env: BTreeMap<String, String>,
    pub dir: Option<PathBuf>,
    pub command: Option<String>,
}

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub project_dir: PathBuf,
    /// The project's `.weir/` folder: history, logs, outputs of value steps.
    pub state_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub jobs: usize,
    pub keep_going: bool,
    pub use_cache: bool,
    /// Run only these steps (by name or id) and what they need.
    pub steps: Vec<String>,
    pub dry_run: bool,
    pub approve: Vec<String>,
    pub approve_all: bool,
    /// Who approves, for the record and the not-author rule.
    pub approver: String,
    /// The change's author, for the not-author rule.
    pub author: Option<String>,
    /// Ask on the terminal for approvals not given by flags.
    pub interactive: bool,
    pub resume: bool,
    pub secrets: SecretSources,
    /// The environment every step starts from (PATH, HOME and the like).
    pub base_env: Vec<(String, String)>,
    /// Time between SIGTERM and SIGKILL when a step is stopped.
    pub grace: Duration,
    /// The digest of the plan's JSON, recorded in the history; computed
    /// from the plan when the caller does not already have it.
    pub plan_digest: Option<String>,
}

impl RunOptions {
    /// Defaults for a project folder: `.weir/` inside it, the cache under
    /// `$XDG_CACHE_HOME/weir` (or `~/.cache/weir`), one job per core.
    pub fn for_project(project: &Path) -> RunOptions {
        let cache_dir = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir)
            .join("weir");
        let mut base_env = Vec::new();
        for k in ["PATH", "HOME", "USER", "LANG", "TMPDIR", "TERM"] {
            if let Ok(v) = std::env::var(k) {
                base_env.push((k.to_owned(), v));
            }
        }
        RunOptions {
            project_dir: project.to_owned(),
            state_dir: project.join(".weir"),
            cache_dir,
            jobs: std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
            keep_going: false,
            use_cache: true,
            steps: Vec::new(),
            dry_run: false,
            approve: Vec::new(),
            approve_all: false,
            approver: std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
            author: None,
            interactive: false,
            resume: false,
            secrets: SecretSources {
                env: std::env::vars().collect(),
                dir: Some(project.join(".weir").join("secrets")),
                command: None,
            },
            base_env,
            grace: Duration::from_secs(5),
            plan_digest: None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct StepRecord {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub cached: bool,
    pub duration_ms: u64,
    pub attempts: u32,
    pub exit_code: Option<i32>,
    pub message: Option<String>,
    /// The last lines of the log, redacted, for failures.
    pub log_tail: Vec<String>,
    pub source: weir_compiler::plan::SourceRef,
    pub rollback_for: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    pub run_id: String,
    pub pipeline: String,
    /// `succeeded`, `failed` or `interrupted`.
    pub status: String,
    pub duration_ms: u64,
    pub steps: Vec<StepRecord>,
    /// The chain of nodes that took longest, by id.
    pub critical_path: Vec<String>,
    pub resumed_from: Option<String>,
}

/// A problem that stops a run before it starts, or an environment failure.
#[derive(Debug)]
pub enum RunError {
    UnknownStep {
        name: String,
        suggestion: Option<String>,
    },
    MissingSecret {
        name: String,
        steps: Vec<String>,
    },
    Setup(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::UnknownStep { name, suggestion } => {
                write!(f, "the pipeline has no step `{name}`")?;
                if let Some(s) = suggestion {
                    write!(f, "; did you mean `{s}`?")?;
                }
                Ok(())
            }
            RunError::MissingSecret { name, steps } => write!(
                f,
                "secret `{name}` (needed by {}) has no value: export `{name}` or `WEIR_SECRET_{name}`, put it in `.weir/secrets/{name}`, or give `--secret-command`",
                steps
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            RunError::Setup(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for RunError {}
