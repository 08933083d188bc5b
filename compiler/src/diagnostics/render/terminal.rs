//! Terminal rendering with ariadne, in byte offsets (the index type is set
//! once, here).

use super::{SourceLookup, floor_char_boundary};
use crate::diagnostics::{Diagnostic, Severity};
use ariadne::{CharSet, Config, IndexType, Label, Report, ReportKind};

#[derive(Clone, Copy, Debug, Default)]
pub struct TerminalOptions {
    pub color: bool,
}

/// Renders diagnostics as a person reads them in a terminal.
pub fn render_terminal(
    diags: &[Diagnostic],
    sources: &dyn SourceLookup,
    opts: TerminalOptions,
) -> String {
    let mut out = Vec::new();
    for d in diags {
        render_one(d, sources, opts, &mut out);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn clamp(src: &str, span: crate::diagnostics::Span) -> std::ops::Range<usize> {
    let start = floor_char_boundary(src, span.start as usize);
    let end = floor_char_boundary(src, span.end as usize).max(start);
    start..end
}

fn render_one(
    d: &Diagnostic,
    sources: &dyn SourceLookup,
    opts: TerminalOptions,
    out: &mut Vec<u8>,
) {
    let kind = match d.severity {
        Severity::Error => ReportKind::Error,
        Severity::Warning => ReportKind::Warning,
    };
    let Some(primary_src) = sources.source(&d.primary.file) else {
        // No source to show (a file that could not be read): message only.
        out.extend_from_slice(
            format!(
                "{}[{}]: {}\n",
                if d.is_error() { "error" } else { "warning" },
                d.code,
                d.message
            )
            .as_bytes(),
        );
        for n in &d.notes {
            out.extend_from_slice(format!("  = note: {n}\n").as_bytes());
        }
        if let Some(h) = &d.help {
            out.extend_from_slice(format!("  = help: {h}\n").as_bytes());
        }
        return;
    };
    let file = d.primary.file.clone();
    let range = clamp(primary_src, d.primary.span);
    let mut report = Report::build(kind, (file.clone(), range.clone()))
        .with_config(
            Config::default()
                .with_color(opts.color)
                .with_index_type(IndexType::Byte)
                .with_char_set(CharSet::Unicode),
        )
        .with_code(format!("{} {}", d.code, d.code.name()))
        .with_message(&d.message)
        .with_label(
            Label::new((file.clone(), range))
                .with_message(&d.primary.message)
                .with_order(0),
        );
    let mut files = vec![(file.clone(), primary_src.to_owned())];
    for (i, l) in d.labels.iter().enumerate() {
        let Some(src) = sources.source(&l.file) else {
            continue;
        };
        if !files.iter().any(|(f, _)| f == &l.file) {
            files.push((l.file.clone(), src.to_owned()));
        }
        report = report.with_label(
            Label::new((l.file.clone(), clamp(src, l.span)))
                .with_message(&l.message)
                .with_order(i as i32 + 1),
        );
    }
    for n in &d.notes {
        report = report.with_note(n);
    }
    if let Some(h) = &d.help {
        report = report.with_help(h);
    }
    let _ = report.finish().write(ariadne::sources(files), &mut *out);
}
