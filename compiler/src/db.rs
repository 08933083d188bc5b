//! The incremental database: thin salsa wrappers around the phases.
//!
//! Invariant: editing one file re-parses only that file; the project-wide
//! check re-runs, but every unchanged file's parse is reused (tested in
//! `tests/incremental.rs`).

use crate::diagnostics::Diagnostic;
use crate::resolve::Program;
use crate::syntax::Parsed;
use std::collections::BTreeMap;
use std::sync::Arc;

#[salsa::input]
pub struct SourceFile {
    #[returns(ref)]
    pub path: String,
    #[returns(ref)]
    pub text: String,
}

#[salsa::input]
pub struct Workspace {
    #[returns(ref)]
    pub files: Vec<SourceFile>,
}

#[salsa::tracked(returns(ref))]
pub fn parse_file(db: &dyn salsa::Database, file: SourceFile) -> Arc<Parsed> {
    Arc::new(crate::syntax::parse(file.path(db), file.text(db)))
}

/// The resolved program and the diagnostics of parsing and resolution.
#[derive(Debug)]
pub struct Resolved {
    pub program: Arc<Program>,
    pub diagnostics: Vec<Diagnostic>,
}

#[salsa::tracked(returns(ref), no_eq)]
pub fn resolve_workspace(db: &dyn salsa::Database, ws: Workspace) -> Arc<Resolved> {
    let mut diagnostics = Vec::new();
    let mut parsed = BTreeMap::new();
    for f in ws.files(db) {
        let p = parse_file(db, *f).clone();
        diagnostics.extend(p.diagnostics.iter().cloned());
        parsed.insert(f.path(db).clone(), p);
    }
    let program = crate::resolve::resolve(&parsed, &mut diagnostics);
    Arc::new(Resolved {
        program: Arc::new(program),
        diagnostics,
    })
}

/// The checked program and all diagnostics of parsing, resolution and typing.
#[derive(Debug)]
pub struct Checked {
    pub program: Arc<Program>,
    pub diagnostics: Vec<Diagnostic>,
    /// Every name use and definition, sorted by file and position (empty
    /// from [`check_workspace`], filled by [`check_with_references`]).
    pub references: Vec<crate::typeck::Reference>,
}

fn check(db: &dyn salsa::Database, ws: Workspace, references: bool) -> Arc<Checked> {
    let resolved = resolve_workspace(db, ws);
    let mut diagnostics = resolved.diagnostics.clone();
    let references = crate::typeck::check_program(&resolved.program, &mut diagnostics, references);
    crate::diagnostics::sort(&mut diagnostics);
    Arc::new(Checked {
        program: Arc::clone(&resolved.program),
        diagnostics,
        references,
    })
}

/// The diagnostics of the whole project: what `check`, `plan` and an
/// editor's diagnostics need.
#[salsa::tracked(returns(ref), no_eq)]
pub fn check_workspace(db: &dyn salsa::Database, ws: Workspace) -> Arc<Checked> {
    check(db, ws, false)
}

/// The same check, also recording every name reference for hover,
/// navigation, rename and semantic tokens. Separate so that diagnostics
/// after an edit do not wait for (or pay for) the references.
#[salsa::tracked(returns(ref), no_eq)]
pub fn check_with_references(db: &dyn salsa::Database, ws: Workspace) -> Arc<Checked> {
    check(db, ws, true)
}

#[salsa::db]
#[derive(Default, Clone)]
pub struct Database {
    storage: salsa::Storage<Self>,
}

#[salsa::db]
impl salsa::Database for Database {}
