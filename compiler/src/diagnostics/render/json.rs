//! JSON rendering: the diagnostic data plus 1-based line and column, for
//! tools and CI annotations.

use super::{SourceLookup, line_col};
use crate::diagnostics::{Diagnostic, Label};
use serde_json::{Value, json};

fn label_json(l: &Label, sources: &dyn SourceLookup) -> Value {
    let (line, column) = sources
        .source(&l.file)
        .map_or((0, 0), |s| line_col(s, l.span.start as usize));
    let (end_line, end_column) = sources
        .source(&l.file)
        .map_or((0, 0), |s| line_col(s, l.span.end as usize));
    json!({
        "file": l.file,
        "start": l.span.start,
        "end": l.span.end,
        "line": line,
        "column": column,
        "end_line": end_line,
        "end_column": end_column,
        "message": l.message,
    })
}

pub fn to_json_value(diags: &[Diagnostic], sources: &dyn SourceLookup) -> Value {
    Value::Array(
        diags
            .iter()
            .map(|d| {
                json!({
                    "code": d.code.as_str(),
                    "name": d.code.name(),
                    "severity": d.severity,
                    "message": d.message,
                    "primary": label_json(&d.primary, sources),
                    "labels": d.labels.iter().map(|l| label_json(l, sources)).collect::<Vec<_>>(),
                    "notes": d.notes,
                    "help": d.help,
                })
            })
            .collect(),
    )
}

pub fn to_json(diags: &[Diagnostic], sources: &dyn SourceLookup) -> String {
    serde_json::to_string_pretty(&to_json_value(diags, sources)).unwrap_or_else(|_| "[]".to_owned())
}
