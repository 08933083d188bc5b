//! Embedding Weir in a host program.
//!
//! 1. Compile sources held in memory, with params and a run context.
//! 2. Run the plan with an executor of the host's own (here: the local
//!    executor, wrapped to record every job it starts) and an event sink.
//! 3. Read the run record.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use weir_compiler::eval::EvalInput;
use weir_compiler::plan::Context;
use weir_runtime::exec::BoxFuture;
use weir_runtime::{CollectSink, Event, Executor, Job, JobIo, LocalExecutor, Outcome, RunOptions};

/// An executor that records what it runs and delegates to local processes.
struct RecordingExecutor {
    inner: LocalExecutor,
    jobs: Mutex<Vec<String>>,
}

impl Executor for RecordingExecutor {
    fn execute(&self, job: Job, io: JobIo) -> BoxFuture<'_, Outcome> {
        if let Ok(mut j) = self.jobs.lock() {
            j.push(format!("{}: {:?}", job.node, job.launch));
        }
        self.inner.execute(job, io)
    }
}

const PIPELINE: &str = r#"
param greeting: str = "hello"

pipeline demo {
  let make = step "make" {
    run: "mkdir -p out && echo ${greeting} > out/msg.txt"
    outputs: { msg: file("out/msg.txt") }
  }
  step "show" { run: "cat ${make.msg}" }
}
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. Compile from memory.
    let mut files = BTreeMap::new();
    files.insert("demo.weir".to_owned(), PIPELINE.to_owned());
    let input = EvalInput {
        pipeline: None,
        params: vec![("greeting".into(), "hi from the host".into())],
        context: Context {
            git_branch: "main".into(),
            git_sha: "0000000".into(),
            event_kind: "manual".into(),
            ..Default::default()
        },
    };
    let (plan, diagnostics) = weir_compiler::compile(&files, &input);
    for d in &diagnostics {
        eprintln!("{}: {}", d.code, d.message);
    }
    let plan = plan.ok_or("the pipeline did not compile")?;

    // 2. Run it in a scratch folder with our executor and sink.
    let dir = std::env::temp_dir().join(format!("weir-embed-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut opts = RunOptions::for_project(&dir);
    opts.cache_dir = dir.join(".weir").join("cache");
    let executor = Arc::new(RecordingExecutor {
        inner: LocalExecutor::default(),
        jobs: Mutex::new(Vec::new()),
    });
    let sink = Arc::new(CollectSink::default());
    let record = weir_runtime::run(&plan, &opts, executor.clone(), sink.clone())?;

    // 3. Read the record and what the host saw.
    println!("run {} {}", record.run_id, record.status);
    for s in &record.steps {
        println!("  {} {} in {} ms", s.name, s.status, s.duration_ms);
    }
    for j in executor.jobs.lock().map(|j| j.clone()).unwrap_or_default() {
        println!("  started {j}");
    }
    let events = sink.events.lock().map(|e| e.clone()).unwrap_or_default();
    for e in events {
        if let Event::Log { step, line, .. } = e {
            println!("  [{step}] {line}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    if record.status == "succeeded" {
        Ok(())
    } else {
        Err("the run failed".into())
    }
}
