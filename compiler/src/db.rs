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

/// The database as the queries see it.
#[salsa::db]
pub trait Db: salsa::Database {
    /// Parsed statements kept between versions of a file (an editor's
    /// session), if any.
    fn pieces(&self) -> Option<&Arc<crate::syntax::parser::PieceCache>>;
    /// Statement checks kept between versions (an editor's session), if
    /// any.
    fn check_memo(&self) -> Option<&crate::typeck::memo::CheckMemo>;
}

/// Not compared with the last version's parse (`no_eq`): an edit changes
/// the parse almost always, and comparing two large trees costs
/// milliseconds for nothing.
#[salsa::tracked(returns(ref), no_eq)]
pub fn parse_file(db: &dyn Db, file: SourceFile) -> Arc<Parsed> {
    let parsed = Arc::new(crate::syntax::parse_reusing(
        file.path(db),
        file.text(db),
        db.pieces(),
    ));
    if let Some(cache) = db.pieces() {
        cache.note_live(file.path(db), &parsed);
    }
    parsed
}

/// The resolved program and the diagnostics of parsing and resolution.
#[derive(Debug)]
pub struct Resolved {
    pub program: Arc<Program>,
    pub diagnostics: Vec<Diagnostic>,
}

#[salsa::tracked(returns(ref), no_eq)]
pub fn resolve_workspace(db: &dyn Db, ws: Workspace) -> Arc<Resolved> {
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

fn check(db: &dyn Db, ws: Workspace, references: bool) -> Arc<Checked> {
    let resolved = resolve_workspace(db, ws);
    let mut diagnostics = resolved.diagnostics.clone();
    let references = match db.check_memo() {
        Some(memo) if !references => {
            let texts = ws
                .files(db)
                .iter()
                .map(|f| (f.path(db).as_str(), f.text(db).as_str()))
                .collect();
            let reuse = crate::typeck::Reuse {
                memo,
                texts: &texts,
            };
            crate::typeck::check_program_reusing(&resolved.program, &mut diagnostics, reuse);
            Vec::new()
        }
        _ => crate::typeck::check_program(&resolved.program, &mut diagnostics, references),
    };
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
pub fn check_workspace(db: &dyn Db, ws: Workspace) -> Arc<Checked> {
    check(db, ws, false)
}

/// The same check, also recording every name reference for hover,
/// navigation, rename and semantic tokens. Separate so that diagnostics
/// after an edit do not wait for (or pay for) the references.
#[salsa::tracked(returns(ref), no_eq)]
pub fn check_with_references(db: &dyn Db, ws: Workspace) -> Arc<Checked> {
    check(db, ws, true)
}

#[salsa::db]
#[derive(Default, Clone)]
pub struct Database {
    storage: salsa::Storage<Self>,
    pieces: Option<Arc<crate::syntax::parser::PieceCache>>,
    check_memo: Option<Arc<crate::typeck::memo::CheckMemo>>,
}

impl Database {
    /// Drops what is kept between versions of a file no longer in the
    /// project.
    pub fn forget(&self, file: &str) {
        if let Some(p) = &self.pieces {
            p.forget(file);
        }
        if let Some(m) = &self.check_memo {
            m.forget(file);
        }
    }

    /// A database whose parses and checks reuse the unchanged statements
    /// of the last version of each file.
    pub fn for_editor() -> Self {
        Database {
            pieces: Some(Arc::default()),
            check_memo: Some(Arc::default()),
            ..Database::default()
        }
    }
}

#[salsa::db]
impl salsa::Database for Database {}

#[salsa::db]
impl Db for Database {
    fn pieces(&self) -> Option<&Arc<crate::syntax::parser::PieceCache>> {
        self.pieces.as_ref()
    }
    fn check_memo(&self) -> Option<&crate::typeck::memo::CheckMemo> {
        self.check_memo.as_deref()
    }
}
