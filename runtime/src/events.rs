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
