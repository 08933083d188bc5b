//! `weir run`, `weir runs` and `weir cache`.

use crate::{PlanArgs, io_error};
use clap::{Args, Subcommand, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use weir_runtime::history::History;
use weir_runtime::{
    Cache, EventSink, JsonSink, LocalExecutor, PlainSink, RunError, RunOptions, TtySink,
};

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Args, Clone)]
pub struct RunArgs {
    /// Run only this step and what it needs; repeatable.
    #[arg(long = "step", value_name = "NAME")]
    steps: Vec<String>,
    /// How many steps run at once (default: the number of cores).
    #[arg(short = 'j', long)]
    jobs: Option<usize>,
    /// Keep running independent steps after a failure.
    #[arg(long)]
    keep_going: bool,
    /// Neither read nor reuse cached results.
    #[arg(long)]
    no_cache: bool,
    /// Print what would run, and what is cached, without running anything.
    #[arg(long)]
    dry_run: bool,
    /// Grant the named approval; repeatable.
    #[arg(long = "approve", value_name = "NAME")]
    approve: Vec<String>,
    /// Grant every approval.
    #[arg(long)]
    approve_all: bool,
    /// Who approves (default: `git config user.email`, else $USER).
    #[arg(long)]
    approver: Option<String>,
    /// The change's author, for `not_author` approvals (default: the last commit's author email).
    #[arg(long)]
    author: Option<String>,
    /// Continue the last failed or interrupted run of this pipeline.
    #[arg(long)]
    resume: bool,
    /// A command that prints a secret's value; `{name}` is replaced by the secret's name.
    #[arg(long, value_name = "CMD")]
    secret_command: Option<String>,
    /// `human` (progress lines and a summary) or `json` (one event per line).
    #[arg(long, value_enum, default_value = "human")]
    log_format: LogFormat,
}

#[derive(Subcommand)]
pub enum RunsCmd {
    /// Show one run: its steps, gates and approvals.
    Show { id: String },
}

#[derive(Subcommand)]
pub enum CacheCmd {
    /// How much the cache holds.
    Stats,
    /// Delete the oldest entries until the cache is under a size.
    Gc {
        /// Such as `2GiB` or `500MB`.
        #[arg(long)]
        max_size: String,
    },
}

/// Where a plan is kept in `.weir/plans/`, named by the digest of
/// everything compiling reads; `None` when the project has load problems.
pub fn plan_path(args: &PlanArgs, project: &weir_compiler::project::Project) -> Option<PathBuf> {
    use std::fmt::Write as _;
    if !project.diagnostics.is_empty() {
        return None;
    }
    let ctx = crate::context(args);
    let mut material = format!(
        "weir {}\n{:?}\n{:?}\n{:?}\n",
        env!("CARGO_PKG_VERSION"),
        args.pipeline,
        args.params,
        ctx
    );
    for (name, text) in &project.files {
        let _ = write!(material, "{}\n{}\n{}\n", name, text.len(), text);
    }
    let key = weir_runtime::cache::sha256(material.as_bytes());
    Some(
        project_dir(args)
            .join(".weir")
            .join("plans")
            .join(format!("{key}.json")),
    )
}

/// A plan compiled earlier from exactly the same sources, params and
/// context. Only clean compilations are stored, so no diagnostic is lost.
/// With the digest of its JSON, which the run history records.
pub fn cached_plan(path: &Path) -> Option<(weir_compiler::plan::Plan, String)> {
    let bytes = std::fs::read(path).ok()?;
    let plan = serde_json::from_slice(&bytes).ok()?;
    Some((plan, weir_runtime::cache::sha256(&bytes)))
}

/// Stores a plan for reuse; the digest of its JSON when it was written.
pub fn store_plan(path: &Path, plan: &weir_compiler::plan::Plan) -> Option<String> {
    if crate::HAD_DIAGNOSTICS.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    if let Some(dir) = path.parent() {
        if std::fs::create_dir_all(dir).is_err() {
            return None;
        }
        // Keep only the newest plans.
        if let Ok(rd) = std::fs::read_dir(dir) {
            let mut old: Vec<(std::time::SystemTime, PathBuf)> = rd
                .filter_map(Result::ok)
                .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
                .collect();
            if old.len() >= 8 {
                old.sort();
                for (_, p) in &old[..old.len() - 7] {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
    }
    let bytes = serde_json::to_vec(plan).ok()?;
    let _ = crate::fs::write_atomic(path, &bytes);
    Some(weir_runtime::cache::sha256(&bytes))
}

/// What `git ARGS` prints, trimmed; `None` when it fails or prints nothing.
pub(crate) fn git(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(args)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn project_dir(args: &PlanArgs) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_default();
    match args.paths.first() {
        Some(p) if p.is_dir() => cwd.join(p),
        Some(p) => cwd.join(p).parent().map(Path::to_path_buf).unwrap_or(cwd),
        None => cwd,
    }
}

pub fn run(
    plan: &weir_compiler::plan::Plan,
    plan_digest: Option<String>,
    args: &PlanArgs,
    r: &RunArgs,
) -> ExitCode {
    let dir = project_dir(args);
    let mut opts = RunOptions::for_project(&dir);
    opts.plan_digest = plan_digest;
    if let Some(j) = r.jobs {
        opts.jobs = j.max(1);
    }
    opts.keep_going = r.keep_going;
    opts.use_cache = !r.no_cache;
    opts.steps.clone_from(&r.steps);
    opts.dry_run = r.dry_run;
    opts.approve.clone_from(&r.approve);
    opts.approve_all = r.approve_all;
    opts.resume = r.resume;
    opts.secrets.command.clone_from(&r.secret_command);
    // Identities matter only to approvals; git is asked only when there are some.
    let has_approvals = plan.nodes.iter().any(|n| n.kind == "approval");
    let ask = |a: &[&str]| if has_approvals { git(a) } else { None };
    opts.approver = r
        .approver
        .clone()
        .or_else(|| ask(&["config", "user.email"]))
        .unwrap_or(opts.approver);
    opts.author = r
        .author
        .clone()
        .or_else(|| ask(&["log", "-1", "--format=%ae"]));
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    opts.interactive = std::io::IsTerminal::is_terminal(&std::io::stdin())
        && std::io::IsTerminal::is_terminal(&std::io::stderr())
        && !ci;
    let sink: Arc<dyn EventSink> = match r.log_format {
        LogFormat::Json => Arc::new(JsonSink),
        LogFormat::Human if std::io::IsTerminal::is_terminal(&std::io::stderr()) && !ci => {
            Arc::new(TtySink::new())
        }
        LogFormat::Human => Arc::new(PlainSink { show_logs: true }),
    };
    let record = match weir_runtime::run(plan, &opts, Arc::new(LocalExecutor::default()), sink) {
        Ok(rec) => rec,
        Err(e @ RunError::UnknownStep { .. }) => {
            return io_error(e, Some("`weir plan` lists the steps"));
        }
        Err(e) => return io_error(e, None),
    };
    if r.log_format == LogFormat::Human {
        eprint!("{}", summary(&record));
    }
    if record.status == "succeeded" || record.status == "dry_run" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn summary(rec: &weir_runtime::RunRecord) -> String {
    let mut s = String::new();
    if rec.status == "dry_run" {
        s.push_str("dry run: nothing was run\n");
        for st in &rec.steps {
            s.push_str(&format!(
                "  {:<10} {}\n",
                st.status.replace('_', " "),
                st.name
            ));
        }
        return s;
    }
    let width = rec
        .steps
        .iter()
        .map(|st| st.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    s.push_str(&format!(
        "\n{:<width$}  {:<16} {:>9}  {}\n",
        "step", "status", "time", "cached"
    ));
    for st in &rec.steps {
        let name = if st.rollback_for.is_some() {
            format!("{} (rollback)", st.name)
        } else {
            st.name.clone()
        };
        s.push_str(&format!(
            "{:<width$}  {:<16} {:>9}  {}\n",
            name,
            st.status,
            weir_runtime::events::human_ms(st.duration_ms),
            if st.cached { "yes" } else { "" }
        ));
    }
    if !rec.critical_path.is_empty() {
        s.push_str(&format!(
            "critical path: {}\n",
            rec.critical_path.join(" → ")
        ));
    }
    for st in rec
        .steps
        .iter()
        .filter(|st| matches!(st.status.as_str(), "failed" | "timed_out"))
    {
        s.push_str(&format!(
            "\n{} `{}` {} ({}:{}..{})",
            st.kind, st.name, st.status, st.source.file, st.source.start, st.source.end
        ));
        if let Some(m) = &st.message {
            s.push_str(&format!(": {m}"));
        }
        s.push('\n');
        for l in &st.log_tail {
            s.push_str(&format!("  | {l}\n"));
        }
    }
    s.push_str(&format!(
        "run {} {} in {}\n",
        rec.run_id,
        rec.status,
        weir_runtime::events::human_ms(rec.duration_ms)
    ));
    s
}

fn history() -> Result<History, ExitCode> {
    let dir = std::env::current_dir().unwrap_or_default().join(".weir");
    if !dir.join("history.db").exists() {
        return Err(io_error(
            "no run history here: `.weir/history.db` does not exist",
            Some("run `weir run` in this project first"),
        ));
    }
    History::open(&dir.join("history.db")).map_err(|e| io_error(e, None))
}

pub fn runs(cmd: Option<RunsCmd>, limit: usize) -> ExitCode {
    let h = match history() {
        Ok(h) => h,
        Err(c) => return c,
    };
    match cmd {
        None => match h.runs(limit) {
            Ok(rows) => crate::to_stdout(|out| {
                for r in rows {
                    let dur = r
                        .finished_at
                        .map(|f| weir_runtime::events::human_ms((f - r.started_at).max(0) as u64))
                        .unwrap_or_default();
                    writeln!(out, "{}  {:<12} {:<12} {}", r.id, r.status, r.pipeline, dur)?;
                }
                Ok(())
            }),
            Err(e) => io_error(e, None),
        },
        Some(RunsCmd::Show { id }) => {
            let run = match h.run(&id) {
                Ok(Some(r)) => r,
                Ok(None) => {
                    return io_error(
                        format!("no run `{id}`"),
                        Some("`weir runs` lists the recent runs"),
                    );
                }
                Err(e) => return io_error(e, None),
            };
            crate::to_stdout(|out| {
                writeln!(out, "run {} of `{}`: {}", run.id, run.pipeline, run.status)?;
                if let Some(p) = &run.resumed_from {
                    writeln!(out, "resumed from {p}")?;
                }
                for st in h.steps(&run.id).unwrap_or_default() {
                    writeln!(
                        out,
                        "  {:<30} {:<14} {:>8} attempts={} {}{}",
                        st.name,
                        st.status,
                        weir_runtime::events::human_ms(st.duration_ms.max(0) as u64),
                        st.attempts,
                        if st.cached { "cached " } else { "" },
                        st.message.map(|m| format!("— {m}")).unwrap_or_default()
                    )?;
                }
                for g in h.gates(&run.id).unwrap_or_default() {
                    writeln!(
                        out,
                        "  gate {} {} {} {}",
                        g.node,
                        if g.passed { "passed" } else { "failed" },
                        g.message.unwrap_or_default(),
                        g.values
                    )?;
                }
                for a in h.approvals(&run.id).unwrap_or_default() {
                    writeln!(
                        out,
                        "  approval {} {} by {} {}",
                        a.node,
                        if a.approved { "granted" } else { "refused" },
                        a.approver,
                        a.message.unwrap_or_default()
                    )?;
                }
                Ok(())
            })
        }
    }
}

fn cache_dir() -> PathBuf {
    RunOptions::for_project(Path::new(".")).cache_dir
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

pub fn cache(cmd: CacheCmd) -> ExitCode {
    let cache = match Cache::open(&cache_dir()) {
        Ok(c) => c,
        Err(e) => return io_error(e, Some("set XDG_CACHE_HOME to a writable folder")),
    };
    match cmd {
        CacheCmd::Stats => {
            let s = cache.stats();
            crate::to_stdout(|out| {
                writeln!(
                    out,
                    "cache {}: {} actions, {} blobs, {} bytes",
                    cache.root().display(),
                    s.actions,
                    s.blobs,
                    s.bytes
                )
            })
        }
        CacheCmd::Gc { max_size } => {
            let Some(max) = parse_size(&max_size) else {
                return io_error(
                    format!("invalid size `{max_size}`"),
                    Some("write sizes like `500MB` or `2GiB`"),
                );
            };
            match cache.gc(max, std::time::Duration::from_secs(600)) {
                Ok(s) => crate::to_stdout(|out| {
                    writeln!(
                        out,
                        "cache now holds {} actions, {} blobs, {} bytes",
                        s.actions, s.blobs, s.bytes
                    )
                }),
                Err(e) => io_error(format!("cannot collect the cache: {e}"), None),
            }
        }
    }
}
