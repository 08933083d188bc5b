//! Benchmark of `check` and `plan` on generated pipelines.
//!
//! `cargo bench -p weir-compiler --bench compile` runs 1,000 and 10,000
//! steps, each size in a fresh child process so that peak memory (VmHWM) is
//! the size's own, and prints the median of several runs.

use std::collections::BTreeMap;

/// The allocator the `weir` and `weir-lsp` binaries ship with, so the
/// figures are the ones a user of `weir check` sees.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::{Duration, Instant};
use weir_compiler::eval::EvalInput;
use weir_compiler::plan::Context;

fn vm_hwm_kib() -> u64 {
    weir_compiler::generated::proc_status_kib(None, "VmHWM:").unwrap_or(0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn run_size(n: usize) {
    let src = weir_compiler::generated::pipeline(n);
    let mut files = BTreeMap::new();
    files.insert("gen.weir".to_owned(), src.clone());
    let input = EvalInput {
        context: Context {
            git_branch: "main".into(),
            git_sha: "abc".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let runs = if n >= 10_000 { 9 } else { 15 };
    let mut check_t = Vec::new();
    let mut plan_t = Vec::new();
    let mut plan = None;
    let mut first_peak = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let d = weir_compiler::check(&files);
        check_t.push(t.elapsed());
        assert!(d.is_empty(), "{d:?}");
        // The last run's plan is freed before this one is made.
        drop(plan.take());
        let t = Instant::now();
        let (p, d) = weir_compiler::compile(&files, &input);
        plan_t.push(t.elapsed());
        assert!(d.is_empty());
        plan = p;
        if first_peak == 0 {
            first_peak = vm_hwm_kib();
        }
    }
    let plan = plan.expect("plan");
    // Peak memory of checking and planning, before any JSON is written.
    let peak = vm_hwm_kib();
    let mut json_t = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let json = plan.to_json();
        json_t.push(t.elapsed());
        assert!(json.len() > n);
    }
    let ms = |v: &[Duration]| v.iter().min().map_or(0.0, |d| d.as_secs_f64() * 1e3);
    println!(
        "{n:>6} steps  {:>4.1} MB source  check {:>6.1} ms (min {:>6.1})  check+plan {:>6.1} ms (min {:>6.1})  peak RSS {:>5.1} MB after the first check and plan, {:>5.1} MB after all  |  plan to JSON {:>5.1} ms, peak RSS {:>5.1} MB",
        src.len() as f64 / 1e6,
        median(check_t.clone()).as_secs_f64() * 1e3,
        ms(&check_t),
        median(plan_t.clone()).as_secs_f64() * 1e3,
        ms(&plan_t),
        first_peak as f64 / 1024.0,
        peak as f64 / 1024.0,
        median(json_t).as_secs_f64() * 1e3,
        vm_hwm_kib() as f64 / 1024.0
    );
}

/// One check and plan of `n` steps in a fresh process, as `weir plan`
/// does: its peak memory is the cost of one compile, without what earlier
/// runs left to the allocator.
fn once(n: usize) {
    let mut files = BTreeMap::new();
    files.insert("gen.weir".to_owned(), weir_compiler::generated::pipeline(n));
    let before = vm_hwm_kib();
    let t = Instant::now();
    let (plan, d) = weir_compiler::compile(&files, &EvalInput::default());
    let took = t.elapsed();
    assert!(d.is_empty() && plan.is_some_and(|p| p.nodes.len() == n));
    println!(
        "{n:>6} steps, one check+plan in a fresh process: {:.1} ms, peak RSS {:.1} MB ({:.1} MB before compiling)",
        took.as_secs_f64() * 1e3,
        vm_hwm_kib() as f64 / 1024.0,
        before as f64 / 1024.0
    );
}

/// Times each phase once on `n` steps, to see where the time goes.
fn phases(n: usize) {
    use weir_compiler::{resolve, syntax, typeck};
    let src = weir_compiler::generated::pipeline(n);
    let rss_src = weir_compiler::generated::proc_status_kib(None, "VmRSS:").unwrap_or(0) / 1024;
    let t = Instant::now();
    let lexed = syntax::lexer::lex("gen.weir", &src);
    let lex = t.elapsed();
    drop(lexed);
    let t = Instant::now();
    let parsed = syntax::parse("gen.weir", &src);
    let parse = t.elapsed();
    let rss_parsed = weir_compiler::generated::proc_status_kib(None, "VmRSS:").unwrap_or(0) / 1024;
    let mut files = BTreeMap::new();
    files.insert("gen.weir".to_owned(), std::sync::Arc::new(parsed));
    let mut diags = Vec::new();
    let t = Instant::now();
    let program = resolve::resolve(&files, &mut diags);
    let res = t.elapsed();
    let t = Instant::now();
    let refs = typeck::check_program(&program, &mut diags, true);
    let ty_refs = t.elapsed();
    drop(refs);
    let t = Instant::now();
    typeck::check_program(&program, &mut diags, false);
    let ty = t.elapsed();
    let t = Instant::now();
    let plan = weir_compiler::eval::evaluate(&program, &EvalInput::default(), &mut diags);
    let ev = t.elapsed();
    let rss_plan = weir_compiler::generated::proc_status_kib(None, "VmRSS:").unwrap_or(0) / 1024;
    let t = Instant::now();
    let json = plan.expect("plan").to_json();
    let js = t.elapsed();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let rss_json = weir_compiler::generated::proc_status_kib(None, "VmRSS:").unwrap_or(0) / 1024;
    println!(
        "  memory (MB, current): source {rss_src}, parsed {rss_parsed}, + plan {rss_plan}, + json {rss_json}"
    );
    println!(
        "{n} steps: lex {:.1} ms (in parse), parse {:.1} ms, resolve {:.1} ms, typeck {:.1} ms (with references for editors {:.1} ms), eval {:.1} ms, json {:.1} ms ({} bytes)",
        ms(lex),
        ms(parse),
        ms(res),
        ms(ty),
        ms(ty_refs),
        ms(ev),
        ms(js),
        json.len()
    );
}

/// An editor's session on `n` steps: a one-digit edit inside a step in the
/// middle, then its diagnostics, timed apart (taking the new text, then
/// checking it), as the language server does between an edit and
/// publishing.
fn edits(n: usize) {
    let src = weir_compiler::generated::pipeline(n);
    let mut s = weir_compiler::Session::for_editor();
    let mut files = BTreeMap::new();
    files.insert("gen.weir".to_owned(), src.clone());
    s.set_files(&files);
    assert!(s.check().is_empty());
    let at = src.find(&format!("echo {} > out", n / 2)).expect("step") + 5;
    let (mut set_t, mut check_t) = (Vec::new(), Vec::new());
    for round in 0..30 {
        let mut text = src.clone();
        text.replace_range(at..=at, ["7", "8"][round % 2]);
        files.insert("gen.weir".to_owned(), text);
        let t = Instant::now();
        s.set_files(&files);
        set_t.push(t.elapsed());
        let t = Instant::now();
        assert!(s.check().is_empty());
        check_t.push(t.elapsed());
    }
    let ms = |v: Vec<Duration>| median(v).as_secs_f64() * 1e3;
    println!(
        "{n} steps, one-digit edits in an editor's session: take the text {:.1} ms, check {:.1} ms (medians)",
        ms(set_t),
        ms(check_t)
    );
}

/// `--binaries N WEIR...`: `weir check`, `weir plan` and `weir plan
/// --json` of each given binary on an `N`-step pipeline, taking turns run
/// by run (the order reversed every round) so that every binary sees the
/// same phases of a machine whose speed drifts. Prints the median and the
/// 10th and 90th percentiles of the wall time, process start included.
fn binaries(n: usize, exes: &[String]) {
    const ROUNDS: usize = 40;
    let dir = std::env::temp_dir().join(format!("weir-bench-binaries-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("gen.weir"), weir_compiler::generated::pipeline(n)).expect("write");
    let commands: [&[&str]; 3] = [&["check"], &["plan"], &["plan", "--json"]];
    let runs: Vec<(&String, &[&str])> = exes
        .iter()
        .flat_map(|e| commands.iter().map(move |c| (e, *c)))
        .collect();
    let time = |(exe, args): &(&String, &[&str])| {
        let t = Instant::now();
        let status = std::process::Command::new(exe)
            .args(args.iter())
            .current_dir(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run weir");
        assert!(status.success(), "{exe} {args:?}: {status}");
        t.elapsed()
    };
    let mut times = vec![Vec::new(); runs.len()];
    for r in &runs {
        time(r);
    }
    for round in 0..ROUNDS {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..runs.len()).collect()
        } else {
            (0..runs.len()).rev().collect()
        };
        for i in order {
            times[i].push(time(&runs[i]));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    for ((exe, args), mut t) in runs.iter().zip(times) {
        t.sort();
        let at = |q: f64| t[((t.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
        println!(
            "{n} steps, {exe} {}: median {:.1} ms, p10 {:.1} ms, p90 {:.1} ms ({ROUNDS} runs)",
            args.join(" "),
            at(0.5),
            at(0.1),
            at(0.9)
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--binaries") {
        let n: usize = args[pos + 1].parse().expect("size");
        let exes: Vec<String> = args[pos + 2..]
            .iter()
            .filter(|a| !a.starts_with("--"))
            .cloned()
            .collect();
        assert!(!exes.is_empty(), "give the weir binaries to compare");
        binaries(n, &exes);
        return;
    }
    if let Some(pos) = args.iter().position(|a| a == "--edit") {
        let n: usize = args[pos + 1].parse().expect("size");
        weir_compiler::with_large_stack(move || edits(n));
        return;
    }
    if let Some(pos) = args.iter().position(|a| a == "--phases") {
        let n: usize = args[pos + 1].parse().expect("size");
        for _ in 0..5 {
            weir_compiler::with_large_stack(move || phases(n));
        }
        return;
    }
    if let Some(pos) = args.iter().position(|a| a == "--once") {
        let n: usize = args[pos + 1].parse().expect("size");
        weir_compiler::with_large_stack(move || once(n));
        return;
    }
    if let Some(pos) = args.iter().position(|a| a == "--size") {
        let n: usize = args[pos + 1].parse().expect("size");
        weir_compiler::with_large_stack(move || run_size(n));
        return;
    }
    if args.iter().any(|a| a == "--test") {
        // `cargo test --benches` smoke run: small and quick.
        weir_compiler::with_large_stack(|| run_size(100));
        return;
    }
    let exe = std::env::current_exe().expect("exe");
    for n in [1_000usize, 10_000] {
        for mode in ["--size", "--once"] {
            let status = std::process::Command::new(&exe)
                .args([mode, &n.to_string()])
                .status()
                .expect("child");
            assert!(status.success());
        }
    }
}
