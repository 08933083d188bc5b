//! Progress events. The scheduler reports everything that happens as an
//! [`Event`]; sinks render them (plain lines, JSON lines) or collect them
//! (an embedding host, tests).

use serde::Serialize;
use std::io::Write;
use std::sync::Mutex;

#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: String,
        pipeline: String,
        steps: usize,
        resumed_from: Option<String>,
    },
    StepStarted {
        step: String,
        attempt: u32,
    },
    /// One line of a step's output, already redacted.
    Log {
        step: String,
        line: String,
        cached: bool,
    },
    StepFinished {
        step: String,
        status: String,
        cached: bool,
        duration_ms: u64,
        attempt: u32,
        exit_code: Option<i32>,
        message: Option<String>,
    },
    Gate {
        step: String,
        passed: bool,
        message: Option<String>,
        values: serde_json::Value,
    },
    Approval {
        step: String,
        approved: bool,
        approver: String,
        message: Option<String>,
    },
    RunFinished {
        run_id: String,
        status: String,
        duration_ms: u64,
    },
}

pub trait EventSink: Send + Sync {
    fn event(&self, e: &Event);
}

/// One JSON object per line on stdout.
pub struct JsonSink;

impl EventSink for JsonSink {
    fn event(&self, e: &Event) {
        if let Ok(s) = serde_json::to_string(e) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{s}");
        }
    }
}

/// Plain lines for terminals and CI logs: step output prefixed with the step
/// name, one line per state change.
pub struct PlainSink {
    pub show_logs: bool,
}

impl EventSink for PlainSink {
    fn event(&self, e: &Event) {
        let mut out = std::io::stderr().lock();
        let _ = match e {
            Event::RunStarted {
                pipeline,
                steps,
                run_id,
                resumed_from,
            } => match resumed_from {
                Some(prev) => writeln!(
                    out,
                    "weir: resuming run {prev} of `{pipeline}` as {run_id} ({steps} steps)"
                ),
                None => writeln!(
                    out,
                    "weir: running `{pipeline}` ({steps} steps), run {run_id}"
                ),
            },
            Event::StepStarted { step, attempt } if *attempt > 1 => {
                writeln!(out, "[{step}] retry, attempt {attempt}")
            }
            Event::StepStarted { .. } => Ok(()),
            Event::Log { step, line, cached } if self.show_logs => writeln!(
                out,
                "[{step}]{} {line}",
                if *cached { " (cached)" } else { "" }
            ),
            Event::Log { .. } => Ok(()),
            Event::StepFinished {
                step,
                status,
                cached,
                duration_ms,
                message,
                ..
            } => {
                let extra = message
                    .as_ref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "[{step}] {status}{} in {}{extra}",
                    if *cached { " (cached)" } else { "" },
                    human_ms(*duration_ms)
                )
            }
            Event::Gate {
                step,
                passed,
                message,
                ..
            } => writeln!(
                out,
                "[{step}] gate {}{}",
                if *passed { "passed" } else { "failed" },
                message
                    .as_ref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
            Event::Approval {
                step,
                approved,
                approver,
                message,
            } => {
                writeln!(
                    out,
                    "[{step}] approval {} by {approver}{}",
                    if *approved { "granted" } else { "refused" },
                    message
                        .as_ref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                )
            }
            Event::RunFinished {
                status,
                duration_ms,
                ..
            } => writeln!(out, "weir: run {status} in {}", human_ms(*duration_ms)),
        };
    }
}

pub fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// Keeps every event, for hosts and tests.
#[derive(Default)]
pub struct CollectSink {
    pub events: Mutex<Vec<Event>>,
}

impl EventSink for CollectSink {
    fn event(&self, e: &Event) {
        if let Ok(mut v) = self.events.lock() {
            v.push(e.clone());
        }
    }
}

/// A live display for terminals: one line per running step with its elapsed
/// time and an overall count, redrawn in place below the scrolling log.
pub struct TtySink {
    state: std::sync::Arc<Mutex<TtyState>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

struct TtyState {
    total: usize,
    done: usize,
    running: Vec<(String, std::time::Instant)>,
    drawn: usize,
}

impl TtyState {
    fn clear(&mut self, out: &mut impl Write) {
        if self.drawn > 0 {
            let _ = write!(out, "\x1b[{}F\x1b[J", self.drawn);
            self.drawn = 0;
        }
    }
    fn draw(&mut self, out: &mut impl Write) {
        self.clear(out);
        let width = 60;
        let filled = (self.done * 30)
            .checked_div(self.total)
            .unwrap_or(0)
            .min(30);
        let _ = writeln!(
            out,
            "[{}{}] {}/{} steps",
            "#".repeat(filled),
            "-".repeat(30 - filled),
            self.done,
            self.total
        );
        let mut lines = 1;
        for (name, t) in self.running.iter().take(12) {
            let mut n = name.clone();
            n.truncate(width);
            let _ = writeln!(
                out,
                "  {n:<width$} {:>7}",
                human_ms(t.elapsed().as_millis() as u64)
            );
            lines += 1;
        }
        self.drawn = lines;
        let _ = out.flush();
    }
}

impl TtySink {
    pub fn new() -> TtySink {
        let state = std::sync::Arc::new(Mutex::new(TtyState {
            total: 0,
            done: 0,
            running: Vec::new(),
            drawn: 0,
        }));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(200));
                if let Ok(mut g) = s.lock()
                    && g.drawn > 0
                {
                    g.draw(&mut std::io::stderr().lock());
                }
            }
        });
        TtySink { state, stop }
    }
}

impl Default for TtySink {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TtySink {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl EventSink for TtySink {
    fn event(&self, e: &Event) {
        let Ok(mut g) = self.state.lock() else { return };
        let mut out = std::io::stderr().lock();
        match e {
            Event::RunStarted { steps, .. } => {
                g.total = *steps;
                g.draw(&mut out);
            }
            Event::StepStarted { step, .. } => {
                if !g.running.iter().any(|(n, _)| n == step) {
                    g.running.push((step.clone(), std::time::Instant::now()));
                }
                g.draw(&mut out);
            }
            Event::Log { step, line, cached } => {
                g.clear(&mut out);
                // Terminal control sequences from steps are neutralised.
                let clean: String = line
                    .chars()
                    .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
                    .collect();
                let _ = writeln!(
                    out,
                    "[{step}]{} {clean}",
                    if *cached { " (cached)" } else { "" }
                );
                g.draw(&mut out);
            }
            Event::StepFinished {
                step,
                status,
                cached,
                duration_ms,
                message,
                ..
            } => {
                g.running.retain(|(n, _)| n != step);
                g.done += 1;
                g.clear(&mut out);
                let extra = message
                    .as_ref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "[{step}] {status}{} in {}{extra}",
                    if *cached { " (cached)" } else { "" },
                    human_ms(*duration_ms)
                );
                g.draw(&mut out);
            }
            Event::RunFinished { .. } => {
                g.clear(&mut out);
                PlainSink { show_logs: true }.event(e);
            }
            other => {
                g.clear(&mut out);
                drop(out);
                PlainSink { show_logs: true }.event(other);
                let mut out = std::io::stderr().lock();
                g.draw(&mut out);
            }
        }
    }
}
