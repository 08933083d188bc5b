//! Renderers: one file per output format.

mod json;
mod terminal;

pub use json::{to_json, to_json_value};
pub use terminal::{TerminalOptions, render_terminal};

/// Looks up source text by file name for the renderers.
pub trait SourceLookup {
    fn source(&self, file: &str) -> Option<&str>;
}

impl SourceLookup for std::collections::BTreeMap<String, String> {
    fn source(&self, file: &str) -> Option<&str> {
        self.get(file).map(String::as_str)
    }
}

impl SourceLookup for std::collections::BTreeMap<String, std::sync::Arc<str>> {
    fn source(&self, file: &str) -> Option<&str> {
        self.get(file).map(AsRef::as_ref)
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(src, offset);
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

pub(crate) use super::floor_char_boundary;
