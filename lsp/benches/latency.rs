//! Latency of the language server on a generated 10,000-step file, measured
//! over stdio as an editor sees it: a one-character edit inside one step
//! until its diagnostics are published, then hover and completion.
//!
//! `cargo bench -p weir-lsp --bench latency [-- STEPS ROUNDS]` prints p50
//! and p95 of each, and the server's peak and current memory.
#![allow(
    clippy::unwrap_used,
    clippy::many_single_char_names,
    reason = "a benchmark: failures should panic loudly"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::{Client, pos_of};
use serde_json::json;
use std::time::{Duration, Instant};

fn percentile(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e3
}

fn proc_kib(pid: u32, key: &str) -> u64 {
    weir_compiler::generated::proc_status_kib(Some(pid), key).unwrap_or(0)
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let steps = args.first().copied().unwrap_or(10_000);
    let rounds = args.get(1).copied().unwrap_or(100);
    let text = weir_compiler::generated::pipeline(steps);
    let mut c = Client::start("bench", &[("gen.weir", &text)]);
    let t = Instant::now();
    c.open("gen.weir", &text);
    let d = c.diagnostics("gen.weir", 1);
    assert!(d.is_empty(), "{d:?}");
    let first = t.elapsed();

    // Edits: flip one digit inside the run command of a step in the middle.
    let mid = steps / 2;
    let needle = format!("echo {mid} > out");
    let (line, col) = pos_of(&text, &needle);
    let digit_col = col + 5;
    let uri = c.uri("gen.weir");
    let mut edit_t = Vec::new();
    for v in 2..(2 + rounds as i64) {
        let ch = ["7", "8"][(v % 2) as usize];
        let t = Instant::now();
        c.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": v }, "contentChanges": [{ "range": { "start": { "line": line, "character": digit_col }, "end": { "line": line, "character": digit_col + 1 } }, "text": ch }] }),
        );
        let d = c.diagnostics("gen.weir", v);
        edit_t.push(t.elapsed());
        assert!(d.is_empty(), "{d:?}");
        c.notes.clear();
    }

    // Hover on a step reference and completion after `.` in the middle.
    let reference = format!("s{}.out", mid - 50);
    let (hl, hc) = pos_of(&text, &reference);
    let mut hover_t = Vec::new();
    let mut complete_t = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let h = c.at("textDocument/hover", "gen.weir", hl, hc);
        hover_t.push(t.elapsed());
        assert!(h["result"]["contents"]["value"].is_string(), "{h}");
        let t = Instant::now();
        let r = c.at(
            "textDocument/completion",
            "gen.weir",
            hl,
            hc + reference.find('.').unwrap() as u32 + 1,
        );
        complete_t.push(t.elapsed());
        assert!(r["result"].as_array().is_some_and(|a| !a.is_empty()), "{r}");
    }
    let pid = c.child.id();
    println!(
        "{steps} steps ({:.1} MB), {rounds} rounds; first diagnostics {:.0} ms",
        text.len() as f64 / 1e6,
        first.as_secs_f64() * 1e3
    );
    for (what, v) in [
        ("edit -> diagnostics", &mut edit_t),
        ("hover", &mut hover_t),
        ("completion", &mut complete_t),
    ] {
        println!(
            "  {what:<20} p50 {:>7.1} ms  p95 {:>7.1} ms",
            percentile(v, 0.5),
            percentile(v, 0.95)
        );
    }
    println!(
        "  server memory: peak {:.0} MB, now {:.0} MB",
        proc_kib(pid, "VmHWM:") as f64 / 1024.0,
        proc_kib(pid, "VmRSS:") as f64 / 1024.0
    );
}
