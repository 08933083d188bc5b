//! Syntax: lexer, parser and syntax tree.
//!
//! `parse` never fails: it returns a [`Module`] (with error nodes where it
//! recovered) together with every diagnostic found on the way.

pub mod ast;
pub mod lexer;
pub mod parser;
pub(crate) mod shift;

pub use ast::*;
use lexer::{Comment, Kw, P, Tok};

use crate::diagnostics::{Code, Diagnostic, Span};

/// The longest run of tokens without a separator (`,` `;` `:` `=` `{` `}` or a
/// keyword). Longer runs are one huge expression, whose tree would be deeper
/// than later phases can walk safely.
pub const MAX_EXPR_TOKENS: usize = 4000;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Parsed {
    pub module: Module,
    pub comments: Vec<Comment>,
    pub diagnostics: Vec<Diagnostic>,
    /// An editor's parse gives its statements back to the cache it was
    /// made with when it is dropped (see [`parser::PieceCache`]).
    recycle: parser::Recycle,
}

impl Parsed {
    /// The source of an editor's reusing parse, shared.
    pub(crate) fn source(&self) -> Option<&std::sync::Arc<str>> {
        self.recycle.source()
    }
}

impl Drop for Parsed {
    fn drop(&mut self) {
        self.recycle.give_back(&mut self.module);
    }
}

pub fn parse(file: &str, src: &str) -> Parsed {
    parse_reusing(file, src, None)
}

/// [`parse`], reusing the statements of the last parse made with the same
/// `cache` that the text still has (an editor's next version of a file).
/// The result is the same as [`parse`]'s.
pub fn parse_reusing(
    file: &str,
    src: &str,
    cache: Option<&std::sync::Arc<parser::PieceCache>>,
) -> Parsed {
    // An editor's next version is lexed again only around the change.
    let mut lexed = cache
        .and_then(|c| c.relex(file, src))
        .unwrap_or_else(|| lexer::lex(file, src));
    let mut diagnostics = std::mem::take(&mut lexed.diagnostics);
    let mut too_deep = lexed.too_deep;
    if !too_deep && let Some(span) = overlong_expression(&lexed.tokens) {
        too_deep = true;
        diagnostics.push(
            Diagnostic::error(
                Code::NestingTooDeep,
                file,
                span,
                format!("an expression longer than {MAX_EXPR_TOKENS} tokens"),
            )
            .with_label("this expression is too long to check")
            .with_help("split it into `let` bindings"),
        );
    }
    if too_deep {
        return Parsed {
            module: Module::default(),
            comments: lexed.comments,
            diagnostics,
            recycle: parser::Recycle::default(),
        };
    }
    let lexed_clean = diagnostics.is_empty();
    let (mut module, parse_diags, mut recycle) =
        parser::parse_tokens(file, &lexed.tokens, &lexed.strings, src, cache);
    // A syntax error at the position of a lexer error is a consequence of it.
    for d in parse_diags {
        let overlaps = diagnostics.iter().any(|l| {
            l.primary.span.start <= d.primary.span.end && d.primary.span.start <= l.primary.span.end
        });
        if !overlaps {
            diagnostics.push(d);
        }
    }
    attach_docs(&mut module, &lexed.comments, src);
    // A clean reusing parse keeps its tokens for the next version.
    let comments = match (cache, recycle.take_restarts()) {
        (Some(cache), Some((restarts, kept_src))) if lexed_clean => {
            let comments = lexed.comments.clone();
            cache.keep_lexed(file, kept_src, lexed, restarts);
            comments
        }
        _ => lexed.comments,
    };
    Parsed {
        module,
        comments,
        diagnostics,
        recycle,
    }
}

/// For each of `new` (a version's statement texts, in order), the index of
/// the text in `old` (the last version's) that is the same, each used at
/// most once. An edit changes a run in the middle: texts are matched from
/// the front and from the back by comparing them in order, and only the
/// rest by looking them up.
pub(crate) fn align(new: &[&str], old: &[&str]) -> Vec<Option<usize>> {
    let (n, m) = (new.len(), old.len());
    let mut found = vec![None; n];
    let mut front = 0;
    while front < n.min(m) && new[front] == old[front] {
        found[front] = Some(front);
        front += 1;
    }
    let mut back = 0;
    while back < (n - front).min(m - front) && new[n - 1 - back] == old[m - 1 - back] {
        found[n - 1 - back] = Some(m - 1 - back);
        back += 1;
    }
    if front + back < n && front + back < m {
        let mut rest: rustc_hash::FxHashMap<&str, usize> = rustc_hash::FxHashMap::default();
        for (j, text) in old.iter().enumerate().take(m - back).skip(front) {
            rest.entry(text).or_insert(j);
        }
        for i in front..n - back {
            found[i] = rest.remove(new[i]);
        }
    }
    found
}

fn overlong_expression(tokens: &[(Tok, Span)]) -> Option<Span> {
    let mut run = 0usize;
    let mut run_start = 0usize;
    for (i, (t, s)) in tokens.iter().enumerate() {
        let reset = matches!(
            t,
            Tok::Kw(_)
                | Tok::P(
                    P::Comma | P::Semi | P::Colon | P::Eq | P::LBrace | P::RBrace | P::FatArrow
                )
        );
        if reset {
            run = 0;
            continue;
        }
        if run == 0 {
            run_start = i;
        }
        run += 1;
        if run > MAX_EXPR_TOKENS {
            return Some(tokens[run_start].1.to(*s));
        }
    }
    None
}

/// The `///` lines directly above `offset`, joined.
pub fn doc_before(comments: &[Comment], src: &str, offset: u32) -> Option<String> {
    let idx = comments.partition_point(|c| c.span.end <= offset);
    let mut lines = Vec::new();
    let mut cursor = offset as usize;
    for c in comments[..idx].iter().rev() {
        let between = src.get(c.span.end as usize..cursor).unwrap_or("x");
        if !c.doc || c.trailing || !between.trim().is_empty() || between.matches('\n').count() > 1 {
            break;
        }
        lines.push(c.text.strip_prefix(' ').unwrap_or(&c.text).to_owned());
        cursor = c.span.start as usize;
    }
    if lines.is_empty() {
        return None;
    }
    lines.reverse();
    Some(lines.join("\n"))
}

fn attach_docs(module: &mut Module, comments: &[Comment], src: &str) {
    if !comments.iter().any(|c| c.doc) {
        return;
    }
    for item in &mut module.items {
        item.doc = doc_before(comments, src, item.span.start);
        match &mut item.kind {
            ItemKind::Enum(e) => {
                for v in &mut e.variants {
                    v.doc = doc_before(comments, src, v.name.span.start);
                }
            }
            ItemKind::Type(t) => {
                for f in &mut t.fields {
                    f.doc = doc_before(comments, src, f.name.span.start);
                }
            }
            ItemKind::Fn(f) => {
                for p in &mut f.params {
                    p.doc = doc_before(comments, src, p.name.span.start);
                }
                attach_block(&mut f.body, comments, src);
            }
            ItemKind::Pipeline(p) => attach_block(&mut p.body, comments, src),
            _ => {}
        }
    }
}

fn attach_block(block: &mut Block, comments: &[Comment], src: &str) {
    for s in &mut block.stmts {
        if let Stmt::Stage(st) = s {
            st.doc = doc_before(comments, src, st.span.start);
            attach_block(&mut st.body, comments, src);
        }
    }
}

/// Whether `word` is a keyword (and so cannot name anything).
pub fn is_keyword(word: &str) -> bool {
    Kw::ALL.iter().any(|k| k.as_str() == word)
}
