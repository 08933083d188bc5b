//! Positions and shapes at the edge: byte offsets to LSP's UTF-16
//! positions and back, and compiler data to LSP types.

use tower_lsp_server::ls_types::{
    Diagnostic, DiagnosticRelatedInformation, DiagnosticSeverity, DocumentSymbol, Location,
    NumberOrString, Position, Range, SymbolKind,
};
use weir_compiler::diagnostics::{Diagnostic as WDiag, Severity, Span, floor_char_boundary};

use crate::state::View;

/// Line starts of a text, for converting many offsets without rescanning.
pub struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { text, starts }
    }

    /// UTF-16 position of a byte offset (clamped, and moved back onto a
    /// character boundary).
    pub fn position(&self, offset: usize) -> Position {
        let offset = floor_char_boundary(self.text, offset);
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        position_in_line(self.text, line, self.starts[line], offset)
    }

    /// Byte offset of a UTF-16 position; positions past a line's end (or
    /// past the last line) clamp to it.
    pub fn offset(&self, pos: Position) -> usize {
        let Some(&start) = self.starts.get(pos.line as usize) else {
            return self.text.len();
        };
        let end = self
            .starts
            .get(pos.line as usize + 1)
            .map_or(self.text.len(), |e| e - 1);
        in_line(self.text, start, end, pos.character)
    }

    pub fn range(&self, span: Span) -> Range {
        Range {
            start: self.position(span.start as usize),
            end: self.position(span.end as usize),
        }
    }

    /// The start of each line a span covers, split at line ends: LSP's
    /// semantic tokens may not cross lines.
    pub fn line_pieces(&self, span: Span) -> Vec<(Position, u32)> {
        let (a, b) = (
            span.start as usize,
            (span.end as usize).min(self.text.len()),
        );
        let mut out = Vec::new();
        let mut start = a;
        while start < b {
            let end = self.text[start..b].find('\n').map_or(b, |i| start + i);
            let piece = self.text[start..end].trim_end_matches('\r');
            if !piece.is_empty() {
                out.push((self.position(start), utf16_len(piece)));
            }
            start = end + 1;
        }
        out
    }
}

pub fn utf16_len(s: &str) -> u32 {
    s.encode_utf16().count() as u32
}

/// UTF-16 position of a byte offset (clamped, and moved back onto a
/// character boundary). Counts only the lines before it, without indexing
/// the whole text: a request on a large file converts one or two offsets.
pub fn position(text: &str, offset: usize) -> Position {
    let offset = floor_char_boundary(text, offset);
    let before = &text.as_bytes()[..offset];
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    position_in_line(text, bytecount::count(before, b'\n'), start, offset)
}

/// The position of `offset` on line `line`, which starts at `start`.
fn position_in_line(text: &str, line: usize, start: usize, offset: usize) -> Position {
    Position {
        line: line as u32,
        character: utf16_len(&text[start..offset]),
    }
}

/// Byte offset of a UTF-16 position; positions past a line's end (or past
/// the last line) clamp to it. Finds only the position's line, without
/// indexing the whole text: an edit of a large file converts one or two
/// positions.
pub fn offset(text: &str, pos: Position) -> usize {
    offset_on_line(text, line_start(text, pos.line as usize), pos.character)
}

/// Byte offsets of a range's two ends (see [`offset`]), finding the line
/// once when both ends are on it.
pub fn offsets(text: &str, r: Range) -> (usize, usize) {
    let start = line_start(text, r.start.line as usize);
    let end = if r.end.line == r.start.line {
        start
    } else {
        line_start(text, r.end.line as usize)
    };
    (
        offset_on_line(text, start, r.start.character),
        offset_on_line(text, end, r.end.character),
    )
}

/// The offset `character` UTF-16 units into the line starting at `start`
/// (past the last line: the end of the text).
fn offset_on_line(text: &str, start: Option<usize>, character: u32) -> usize {
    let Some(start) = start else {
        return text.len();
    };
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    in_line(text, start, end, character)
}

/// Where line `line` starts, if the text has it: whole blocks of text
/// are skipped by counting their newlines.
fn line_start(text: &str, line: usize) -> Option<usize> {
    if line == 0 {
        return Some(0);
    }
    const BLOCK: usize = 4096;
    let (mut seen, mut at) = (0, 0);
    for block in text.as_bytes().chunks(BLOCK) {
        let here = bytecount::count(block, b'\n');
        if seen + here >= line {
            let (i, _) = block
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .nth(line - seen - 1)?;
            return Some(at + i + 1);
        }
        seen += here;
        at += block.len();
    }
    None
}

/// The offset `character` UTF-16 units into the line `start..end`.
fn in_line(text: &str, start: usize, end: usize, character: u32) -> usize {
    let mut units = 0u32;
    for (i, c) in text[start..end].char_indices() {
        if units >= character {
            return start + i;
        }
        units += c.len_utf16() as u32;
    }
    end
}

/// The range of a span (see [`position`]). The end is found from the
/// start, counting only the span's own lines: a file's diagnostics are
/// converted one by one after each edit.
pub fn range(text: &str, span: Span) -> Range {
    let start = position(text, span.start as usize);
    let from = floor_char_boundary(text, span.start as usize);
    let to = floor_char_boundary(text, span.end as usize);
    if to < from {
        return Range::new(start, position(text, to));
    }
    let inside = &text.as_bytes()[from..to];
    let end = match inside.iter().rposition(|&b| b == b'\n') {
        None => Position::new(start.line, start.character + utf16_len(&text[from..to])),
        Some(i) => position_in_line(
            text,
            start.line as usize + bytecount::count(inside, b'\n'),
            from + i + 1,
            to,
        ),
    };
    Range::new(start, end)
}

/// A compiler diagnostic as LSP shows it: message with its label, notes
/// and help; the other labels as related information; the help (where a
/// quick fix can be read from it) as data.
pub fn diagnostic(d: &WDiag, text: &str, view: &View) -> Diagnostic {
    let mut message = d.message.clone();
    if !d.primary.message.is_empty() {
        message.push_str(&format!("\n{}", d.primary.message));
    }
    for n in &d.notes {
        message.push_str(&format!("\nnote: {n}"));
    }
    if let Some(h) = &d.help {
        message.push_str(&format!("\nhelp: {h}"));
    }
    let related: Vec<DiagnosticRelatedInformation> = d
        .labels
        .iter()
        .filter_map(|l| {
            let t = view.text(&l.file)?;
            Some(DiagnosticRelatedInformation {
                location: Location {
                    uri: view.uri_of(&l.file)?,
                    range: range(t, l.span),
                },
                message: l.message.clone(),
            })
        })
        .collect();
    Diagnostic {
        range: range(text, d.primary.span),
        severity: Some(if d.severity == Severity::Error {
            DiagnosticSeverity::ERROR
        } else {
            DiagnosticSeverity::WARNING
        }),
        code: Some(NumberOrString::String(d.code.as_str().to_owned())),
        source: Some("weir".into()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        data: d
            .help
            .as_ref()
            .map(|h| serde_json::Value::String(h.clone())),
        ..Default::default()
    }
}

pub fn symbol_kind(k: &str) -> SymbolKind {
    match k {
        "pipeline" => SymbolKind::MODULE,
        "stage" => SymbolKind::NAMESPACE,
        "step" | "gate" | "approval" => SymbolKind::EVENT,
        "fn" => SymbolKind::FUNCTION,
        "enum" => SymbolKind::ENUM,
        "type" => SymbolKind::STRUCT,
        "param" => SymbolKind::PROPERTY,
        "policy" => SymbolKind::INTERFACE,
        _ => SymbolKind::VARIABLE,
    }
}

#[allow(deprecated)]
pub fn document_symbol(s: &weir_compiler::ide::Symbol, lines: &LineIndex) -> DocumentSymbol {
    DocumentSymbol {
        name: if s.name.is_empty() {
            "…".into()
        } else {
            s.name.clone()
        },
        detail: Some(s.kind.to_owned()),
        kind: symbol_kind(s.kind),
        tags: None,
        deprecated: None,
        range: lines.range(s.span),
        selection_range: lines.range(s.selection),
        children: Some(
            s.children
                .iter()
                .map(|c| document_symbol(c, lines))
                .collect(),
        ),
    }
}

/// The replacement a diagnostic's "did you mean `x`?" help suggests.
pub fn suggested(help: &str) -> Option<String> {
    let start = help.find("did you mean `")? + "did you mean `".len();
    let rest = &help[start..];
    let s = &rest[..rest.find('`')?];
    Some(s.rsplit('.').next().unwrap_or(s).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_positions_round_trip() {
        let text = "a\n\"é🎉\" x\r\nlast";
        let lines = LineIndex::new(text);
        let x = text.find('x').unwrap_or(0);
        let p = lines.position(x);
        assert_eq!((p.line, p.character), (1, 6));
        assert_eq!(lines.offset(p), x);
        // Past the end of a line or of the text: clamped.
        assert_eq!(lines.offset(Position::new(0, 99)), 1);
        assert_eq!(lines.offset(Position::new(9, 0)), text.len());
        // Inside a multi-byte character: moved back to its start.
        let e = text.find('é').unwrap_or(0);
        assert_eq!(lines.position(e + 1), lines.position(e));
        let pieces = lines.line_pieces(Span::new(0, text.len()));
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces[1].1, 7);
    }

    #[test]
    fn one_position_converts_as_the_whole_index_does() {
        let long = "ab\ncd é\n".repeat(3000);
        for text in ["", "\n", "a\n\"é🎉\" x\r\nlast", "x\n\n🎉y\n", &long] {
            let lines = LineIndex::new(text);
            for line in (0..6).chain([1365, 1366, 2999, 5999, 6000, 6001]) {
                for character in 0..8 {
                    let pos = Position::new(line, character);
                    assert_eq!(offset(text, pos), lines.offset(pos), "{text:?} {pos:?}");
                    let same_line = Range::new(Position::new(line, 0), pos);
                    let both = (lines.offset(same_line.start), lines.offset(pos));
                    assert_eq!(offsets(text, same_line), both, "{text:?} {pos:?}");
                }
            }
            for at in 0..=text.len() + 1 {
                assert_eq!(position(text, at), lines.position(at), "{text:?} {at}");
                for to in [
                    0,
                    at / 2,
                    at,
                    at + 1,
                    at + 9,
                    text.len() / 2,
                    text.len() + 2,
                ] {
                    let span = Span::new(at, to);
                    assert_eq!(range(text, span), lines.range(span), "{text:?} {at}..{to}");
                }
            }
        }
    }
}
