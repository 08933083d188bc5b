//! The `weir` command line: parses arguments, calls the libraries, renders,
//! sets the exit code. Exit codes: 0 success, 1 diagnostics with errors,
//! 2 usage or IO problems.

/// mimalloc: the language server answers from several threads, and with
/// glibc's per-thread arenas it kept 610 MB on a 10,000-step file against
/// 275 MB with mimalloc (`cargo bench -p weir-lsp --bench latency`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod fs;
mod run;

use clap::{Parser, Subcommand, ValueEnum};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use weir_compiler::diagnostics::render::{TerminalOptions, render_terminal, to_json};
use weir_compiler::diagnostics::{Code, Diagnostic};
use weir_compiler::eval::EvalInput;
use weir_compiler::plan::Context;
use weir_compiler::project::{self, LoadError};

#[derive(Parser)]
#[command(
    name = "weir",
    version,
    about = "Typed pipelines you can run anywhere",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Human,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Dot,
    Mermaid,
}

#[derive(clap::Args, Clone)]
pub(crate) struct PlanArgs {
    /// Files or directories (default: the project in the current directory).
    pub(crate) paths: Vec<PathBuf>,
    /// The pipeline to plan (default: the only one, or the one marked `default`).
    #[arg(long, short)]
    pipeline: Option<String>,
    /// A pipeline param, `key=value`; repeatable.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// The git branch the run is for (default: read from git).
    #[arg(long)]
    git_branch: Option<String>,
    /// The commit the run is for (default: read from git).
    #[arg(long)]
    git_sha: Option<String>,
    /// The tag the run is for, if any.
    #[arg(long)]
    git_tag: Option<String>,
    /// The event that triggered the run: push, pull_request, tag, schedule, manual.
    #[arg(long, default_value = "manual")]
    event: String,
    /// Who triggered the run.
    #[arg(long, default_value = "")]
    actor: String,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

#[derive(Subcommand)]
enum Cmd {
    /// Type-check a project without running anything.
    Check {
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Evaluate a pipeline to its plan (the DAG).
    Plan {
        #[command(flatten)]
        args: PlanArgs,
        /// Print the plan as JSON (schema `weir.plan/v1`).
        #[arg(long)]
        json: bool,
    },
    /// Render a pipeline's DAG.
    Graph {
        #[command(flatten)]
        args: PlanArgs,
        #[arg(long = "graph-format", value_enum, default_value = "dot")]
        graph_format: GraphFormat,
    },
    /// Format source files in place (or check that they are formatted).
    Fmt {
        paths: Vec<PathBuf>,
        /// Report files that would change, and exit 1 if any would.
        #[arg(long)]
        check: bool,
    },
    /// Print the documentation of a diagnostic code, such as `E0101`.
    Explain { code: String },
    /// Create a starter pipeline in the current (or given) directory.
    Init { dir: Option<PathBuf> },
    /// Run a pipeline on this machine.
    Run {
        #[command(flatten)]
        args: PlanArgs,
        #[command(flatten)]
        run: run::RunArgs,
    },
    /// List recent runs, or show one.
    Runs {
        #[command(subcommand)]
        cmd: Option<run::RunsCmd>,
        /// How many runs to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Serve the language server on standard input and output.
    Lsp,
    /// Inspect or trim the local cache.
    Cache {
        #[command(subcommand)]
        cmd: run::CacheCmd,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    weir_compiler::with_large_stack(move || run(cli))
}

/// What becomes of a compiler session or a plan once a command is done
/// with it. A 10,000-step project's syntax trees and plan are about 100 MB
/// in hundreds of thousands of allocations, and freeing them one by one
/// costs about 20 ms of CPU (`weir plan` on 10,000 steps went from a median
/// of 143 ms to 125 ms without it).
#[derive(Clone, Copy)]
enum Dispose {
    /// The command is about to exit: the operating system takes the whole
    /// address space back at once, so the value is never freed.
    AtExit,
    /// The command goes on (`weir run`): the value is freed on another
    /// thread, or right away when no thread can be started.
    Background,
}

fn dispose<T: Send + 'static>(value: T, how: Dispose) {
    match how {
        Dispose::AtExit => std::mem::forget(value),
        Dispose::Background => {
            let _detached = std::thread::Builder::new().spawn(move || drop(value));
        }
    }
}

pub(crate) fn io_error(msg: impl std::fmt::Display, help: Option<&str>) -> ExitCode {
    let report = match help {
        Some(h) => miette::miette!(help = h.to_owned(), "{msg}"),
        None => miette::miette!("{msg}"),
    };
    eprintln!("{report:?}");
    ExitCode::from(2)
}

pub(crate) fn load(paths: &[PathBuf]) -> Result<project::Project, ExitCode> {
    let cwd = std::env::current_dir().unwrap_or_default();
    project::load(&fs::OsSystem, paths, &cwd).map_err(|e| match e {
        LoadError::NotFound(p) => io_error(format!("`{}` does not exist", p.display()), Some("check the path; with no path, weir uses the project in the current directory")),
        LoadError::NoSources(p) => io_error(format!("error[{}]: no `.weir` files in `{}`", Code::NoSourceFiles, p.display()), Some("run `weir init` to create a starter pipeline, or pass the directory that holds your .weir files")),
        LoadError::Io(p, err) => io_error(format!("cannot read `{}`: {err}", p.display()), None),
    })
}

/// Prints diagnostics: as JSON on standard output, or rendered on standard
/// error. Returns the exit code of a failed write of the JSON.
fn print_diags(
    diags: &[Diagnostic],
    sources: &BTreeMap<String, String>,
    format: Format,
) -> Option<ExitCode> {
    match format {
        Format::Json => write_stdout(|out| writeln!(out, "{}", to_json(diags, sources))).err(),
        Format::Human => {
            let color = std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none();
            eprint!(
                "{}",
                render_terminal(diags, sources, TerminalOptions { color })
            );
            let errors = diags.iter().filter(|d| d.is_error()).count();
            let warnings = diags.len() - errors;
            if errors > 0 {
                eprintln!(
                    "weir: {errors} error{}{}",
                    if errors == 1 { "" } else { "s" },
                    if warnings > 0 {
                        format!(
                            ", {warnings} warning{}",
                            if warnings == 1 { "" } else { "s" }
                        )
                    } else {
                        String::new()
                    }
                );
            }
            None
        }
    }
}

fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Cmd::Check { paths, format } => {
            let project = match load(&paths) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let mut diags = project.diagnostics.clone();
            let mut session = weir_compiler::Session::new();
            session.set_files(&project.files);
            diags.extend(session.check());
            dispose(session, Dispose::AtExit);
            weir_compiler::diagnostics::sort(&mut diags);
            if let Some(code) = print_diags(&diags, &project.files, format) {
                return code;
            }
            if diags.iter().any(Diagnostic::is_error) {
                ExitCode::from(1)
            } else {
                if format == Format::Human {
                    eprintln!(
                        "weir: {} file{} checked, no errors",
                        project.files.len(),
                        if project.files.len() == 1 { "" } else { "s" }
                    );
                }
                ExitCode::SUCCESS
            }
        }
        Cmd::Plan { args, json } => match make_plan(&args) {
            Ok(plan) => {
                let code = if json {
                    to_stdout(|out| plan.write_json(out))
                } else {
                    to_stdout(|out| write_summary(&plan, out))
                };
                dispose(plan, Dispose::AtExit);
                code
            }
            Err(code) => code,
        },
        Cmd::Graph { args, graph_format } => match make_plan(&args) {
            Ok(plan) => {
                let code = to_stdout(|out| {
                    out.write_all(
                        match graph_format {
                            GraphFormat::Dot => plan.to_dot(),
                            GraphFormat::Mermaid => plan.to_mermaid(),
                        }
                        .as_bytes(),
                    )
                });
                dispose(plan, Dispose::AtExit);
                code
            }
            Err(code) => code,
        },
        Cmd::Fmt { paths, check } => fmt_cmd(&paths, check),
        Cmd::Explain { code } => match Code::parse(&code) {
            Some(c) => to_stdout(|out| out.write_all(c.docs().as_bytes())),
            None => {
                let all: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
                let hint =
                    weir_compiler::diagnostics::suggest(&code.to_uppercase(), all.iter().copied())
                        .map(|s| format!("did you mean `{s}`?"));
                io_error(
                    format!("unknown diagnostic code `{code}`"),
                    Some(
                        hint.as_deref()
                            .unwrap_or("codes look like E0101; every diagnostic prints its code"),
                    ),
                )
            }
        },
        Cmd::Init { dir } => init(dir),
        Cmd::Run { args, run } => {
            // The sources are read once: for the plan's key, and for
            // compiling when no plan is kept under it.
            let project = match load(&args.paths) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let kept = run::plan_path(&args, &project);
            let compiled = match kept.as_deref().and_then(run::cached_plan) {
                Some((plan, digest)) => Ok((plan, Some(digest))),
                None => plan_from(&args, &project, Dispose::Background).map(|plan| {
                    let digest = kept
                        .as_deref()
                        .and_then(|path| run::store_plan(path, &plan));
                    (plan, digest)
                }),
            };
            match compiled {
                Ok((plan, digest)) => run::run(&plan, digest, &args, &run),
                Err(code) => code,
            }
        }
        Cmd::Runs { cmd, limit } => run::runs(cmd, limit),
        Cmd::Cache { cmd } => run::cache(cmd),
        Cmd::Lsp => {
            weir_lsp::serve_stdio();
            ExitCode::SUCCESS
        }
    }
}

pub(crate) fn context(args: &PlanArgs) -> Context {
    // Asked once per process: `weir run` needs it for the plan key and the plan.
    static CONTEXT: std::sync::OnceLock<Context> = std::sync::OnceLock::new();
    CONTEXT.get_or_init(|| read_context(args)).clone()
}

fn read_context(args: &PlanArgs) -> Context {
    // One `git` process for both: the commit, then the branch.
    let asked = if args.git_branch.is_none() || args.git_sha.is_none() {
        run::git(&["rev-parse", "HEAD", "--abbrev-ref", "HEAD"])
    } else {
        None
    };
    let mut lines = asked.as_deref().unwrap_or_default().lines();
    let (sha, branch) = (lines.next(), lines.next());
    Context {
        git_branch: args
            .git_branch
            .clone()
            .or_else(|| branch.map(str::to_owned))
            .unwrap_or_default(),
        git_sha: args
            .git_sha
            .clone()
            .or_else(|| sha.map(str::to_owned))
            .unwrap_or_default(),
        git_tag: args.git_tag.clone(),
        event_kind: args.event.clone(),
        event_actor: args.actor.clone(),
    }
}

/// Set when the last compilation printed diagnostics (then its plan is not
/// stored for reuse, so the warnings show again next time).
pub(crate) static HAD_DIAGNOSTICS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// The plan of a one-shot command (`plan`, `graph`), which exits after it.
fn make_plan(args: &PlanArgs) -> Result<weir_compiler::plan::Plan, ExitCode> {
    plan_from(args, &load(&args.paths)?, Dispose::AtExit)
}

fn plan_from(
    args: &PlanArgs,
    project: &project::Project,
    session_after: Dispose,
) -> Result<weir_compiler::plan::Plan, ExitCode> {
    let mut params = Vec::new();
    for p in &args.params {
        match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                params.push((k.trim().to_owned(), v.to_owned()));
            }
            _ => {
                return Err(io_error(
                    format!("invalid `--param {p}`"),
                    Some("write params as `--param key=value`"),
                ));
            }
        }
    }
    let mut session = weir_compiler::Session::new();
    session.set_files(&project.files);
    // Asking git for the run's context takes a process; the files are
    // parsed meanwhile.
    let context = std::thread::scope(|s| {
        let asking = std::thread::Builder::new().spawn_scoped(s, || context(args));
        for name in project.files.keys() {
            let _ = session.parsed(name);
        }
        // No thread to be had: ask here.
        asking
            .ok()
            .and_then(|h| h.join().ok())
            .unwrap_or_else(|| context(args))
    });
    let input = EvalInput {
        pipeline: args.pipeline.clone(),
        params,
        context,
    };
    let (plan, mut diags) = session.plan(&input);
    dispose(session, session_after);
    let mut all = project.diagnostics.clone();
    all.append(&mut diags);
    if !all.is_empty() {
        HAD_DIAGNOSTICS.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(code) = print_diags(&all, &project.files, args.format) {
            return Err(code);
        }
    }
    match plan {
        Some(p) if !all.iter().any(Diagnostic::is_error) => Ok(p),
        _ => Err(ExitCode::from(1)),
    }
}

pub(crate) type Stdout<'a> = std::io::BufWriter<std::io::StdoutLock<'a>>;

/// Writes a command's output to standard output through one buffer. A
/// reader that stops early (`weir plan --json | head`) ends the command
/// quietly, as it does for other Unix tools; any other write error is
/// reported, and is the command's exit code 2.
pub(crate) fn write_stdout(
    write: impl FnOnce(&mut Stdout<'_>) -> std::io::Result<()>,
) -> Result<(), ExitCode> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(io_error(format!("cannot write the output: {e}"), None)),
    }
}

/// [`write_stdout`] as a command's exit code.
pub(crate) fn to_stdout(write: impl FnOnce(&mut Stdout<'_>) -> std::io::Result<()>) -> ExitCode {
    write_stdout(write).err().unwrap_or(ExitCode::SUCCESS)
}

fn write_summary(plan: &weir_compiler::plan::Plan, out: &mut Stdout<'_>) -> std::io::Result<()> {
    writeln!(
        out,
        "pipeline {} ({} nodes)",
        plan.pipeline,
        plan.nodes.len()
    )?;
    for n in &plan.nodes {
        write!(out, "  {:<8} {}", n.kind, n.id)?;
        if let Some(stage) = &n.stage {
            write!(out, " [{stage}]")?;
        }
        if !n.needs.is_empty() {
            write!(out, " <- {}", n.needs.join(", "))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn fmt_cmd(paths: &[PathBuf], check: bool) -> ExitCode {
    let project = match load(paths) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut changed = Vec::new();
    let mut diags = project.diagnostics.clone();
    for (name, text) in &project.files {
        match weir_compiler::fmt::format_source(name, text) {
            Ok(out) => {
                if &out != text {
                    changed.push(name.clone());
                    if !check {
                        let path = project.root.join(name);
                        if let Err(e) = fs::write_atomic(&path, out.as_bytes()) {
                            return io_error(
                                format!("cannot write `{}`: {e}", path.display()),
                                None,
                            );
                        }
                    }
                }
            }
            Err(d) => diags.extend(d),
        }
    }
    if !diags.is_empty() {
        // Rendered on standard error: no write of it can fail the command.
        let _ = print_diags(&diags, &project.files, Format::Human);
        return ExitCode::from(1);
    }
    if let Err(code) = write_stdout(|out| {
        for c in &changed {
            if check {
                writeln!(out, "would reformat {c}")?;
            } else {
                writeln!(out, "formatted {c}")?;
            }
        }
        Ok(())
    }) {
        return code;
    }
    if check && !changed.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

const STARTER: &str = r#"/// The starter pipeline `weir init` creates. Run it with `weir run`.
default pipeline ci {
  on push(branches: ["main"])
  on pull_request()

  let greet = step "greet" {
    run: "mkdir -p out && echo 'hello from weir' > out/greeting.txt"
    outputs: { greeting: file("out/greeting.txt") }
  }

  step "show" {
    run: "cat ${greet.greeting}"
  }
}
"#;

fn init(dir: Option<PathBuf>) -> ExitCode {
    let dir = dir.unwrap_or_else(|| std::env::current_dir().unwrap_or_default());
    let path = dir.join("pipeline.weir");
    if path.exists() {
        return io_error(
            format!("`{}` already exists", path.display()),
            Some("weir init never overwrites a file; remove it or pick another directory"),
        );
    }
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return io_error(format!("cannot create `{}`: {e}", dir.display()), None);
    }
    if let Err(e) = fs::write_atomic(&path, STARTER.as_bytes()) {
        return io_error(format!("cannot write `{}`: {e}", path.display()), None);
    }
    to_stdout(|out| {
        writeln!(out, "created {}", path.display())?;
        writeln!(
            out,
            "next: `weir check` to type-check it, `weir plan` to see its DAG"
        )
    })
}
