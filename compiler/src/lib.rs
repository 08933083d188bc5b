//! Weir's compiler: sources in, a plan and diagnostics out.
//!
//! The compiler is pure: it reads sources only through [`system::System`],
//! spawns nothing and looks at no clock. Phases, each a module:
//! [`syntax`] (lexer, parser), [`resolve`] (modules and names), [`typeck`]
//! (types and phases), [`eval`] (the pure interpreter producing the [`plan`]),
//! [`fmt`] (the formatter), [`diagnostics`], and [`db`] (salsa queries).
//!
//! Compiling a pipeline held in memory:
//!
//! ```
//! use std::collections::BTreeMap;
//! use weir_compiler::{compile, eval::EvalInput};
//!
//! let mut files = BTreeMap::new();
//! files.insert("ci.weir".to_owned(), r#"
//!     pipeline ci {
//!       let build = step "build" { run: "make", outputs: { bin: file("app") } }
//!       step "test" { run: "./app --self-test", inputs: [build.bin] }
//!     }
//! "#.to_owned());
//! let (plan, diagnostics) = compile(&files, &EvalInput::default());
//! assert!(diagnostics.is_empty());
//! let plan = plan.unwrap();
//! assert_eq!(plan.nodes[1].needs, vec!["build".to_owned()]);
//! ```

pub mod db;
pub mod diagnostics;
pub mod eval;
pub mod fmt;
pub mod generated;
pub mod ide;
pub mod plan;
pub mod project;
pub mod resolve;
pub mod syntax;
pub mod system;
pub mod typeck;
pub mod types;
pub mod validate;

use diagnostics::Diagnostic;
use salsa::Setter;
use std::collections::BTreeMap;

/// A compiler session over a set of files, reusing work between edits.
pub struct Session {
    db: db::Database,
    workspace: Option<db::Workspace>,
    files: BTreeMap<String, db::SourceFile>,
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    pub fn new() -> Self {
        Session {
            db: db::Database::default(),
            workspace: None,
            files: BTreeMap::new(),
        }
    }

    /// A session for an editor, where each version of a file differs a
    /// little from the last: parsing and checking reuse the unchanged
    /// statements of large pipelines (at the cost of keeping their trees a
    /// second time).
    pub fn for_editor() -> Self {
        Session {
            db: db::Database::for_editor(),
            ..Session::new()
        }
    }

    /// Sets the project's files (module name to text). Unchanged texts keep
    /// their parse.
    pub fn set_files<T: AsRef<str>>(&mut self, files: &BTreeMap<String, T>) {
        let mut changed_set = self.files.len() != files.len() || self.workspace.is_none();
        for (path, text) in files {
            let text = text.as_ref();
            match self.files.get(path) {
                Some(f) => {
                    if f.text(&self.db) != text {
                        f.set_text(&mut self.db).to(text.to_owned());
                    }
                }
                None => {
                    let f = db::SourceFile::new(&self.db, path.clone(), text.to_owned());
                    self.files.insert(path.clone(), f);
                    changed_set = true;
                }
            }
        }
        let gone: Vec<String> = self
            .files
            .keys()
            .filter(|k| !files.contains_key(*k))
            .cloned()
            .collect();
        for path in gone {
            self.files.remove(&path);
            self.db.forget(&path);
        }
        if changed_set {
            let list: Vec<db::SourceFile> = self.files.values().copied().collect();
            match self.workspace {
                Some(ws) => {
                    ws.set_files(&mut self.db).to(list);
                }
                None => self.workspace = Some(db::Workspace::new(&self.db, list)),
            }
        }
    }

    fn workspace(&mut self) -> db::Workspace {
        match self.workspace {
            Some(w) => w,
            None => {
                let w = db::Workspace::new(&self.db, Vec::new());
                self.workspace = Some(w);
                w
            }
        }
    }

    /// The parse of one file, if it is part of the session.
    pub fn parsed(&self, path: &str) -> Option<std::sync::Arc<syntax::Parsed>> {
        self.files
            .get(path)
            .map(|f| db::parse_file(&self.db, *f).clone())
    }

    /// How many statements an editor's session has replayed the kept check
    /// of, rather than checking them again (see [`typeck::memo`]).
    pub fn replayed_checks(&self) -> usize {
        use db::Db as _;
        self.db
            .check_memo()
            .map_or(0, typeck::memo::CheckMemo::replayed)
    }

    /// The checked project: program, diagnostics and name references.
    pub fn checked(&mut self) -> std::sync::Arc<db::Checked> {
        let ws = self.workspace();
        db::check_with_references(&self.db, ws).clone()
    }

    /// Diagnostics of parsing, resolution and type checking, sorted.
    pub fn check(&mut self) -> Vec<Diagnostic> {
        let ws = self.workspace();
        db::check_workspace(&self.db, ws).diagnostics.clone()
    }

    /// Checks the project and evaluates a pipeline to a plan (the two at
    /// once, on two threads), then checks policies. Returns no plan when
    /// any error was found.
    pub fn plan(&mut self, input: &eval::EvalInput) -> (Option<plan::Plan>, Vec<Diagnostic>) {
        let ws = self.workspace();
        let resolved = db::resolve_workspace(&self.db, ws).clone();
        if resolved.diagnostics.iter().any(Diagnostic::is_error) {
            return (None, db::check_workspace(&self.db, ws).diagnostics.clone());
        }
        // Evaluation reads the resolved program, not the types, so it runs
        // beside the type check on another core; its result is used only
        // if the check finds no error.
        let program = std::sync::Arc::clone(&resolved.program);
        let stop = std::sync::atomic::AtomicBool::new(false);
        let evaluate = || {
            let mut diags = Vec::new();
            let plan = eval::evaluate_unless(&program, input, &mut diags, &stop);
            (plan, diags)
        };
        let (checked, evaluated) = std::thread::scope(|scope| {
            let evaluation = std::thread::Builder::new()
                .stack_size(LARGE_STACK)
                .spawn_scoped(scope, evaluate);
            let checked = db::check_workspace(&self.db, ws).clone();
            if checked.diagnostics.iter().any(Diagnostic::is_error) {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            (checked, evaluation.map(std::thread::ScopedJoinHandle::join))
        });
        let mut diags = checked.diagnostics.clone();
        if diags.iter().any(Diagnostic::is_error) {
            return (None, diags);
        }
        let (plan, eval_diags) = match evaluated {
            Ok(Ok(done)) => done,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            // No thread to be had: evaluate here.
            Err(_) => evaluate(),
        };
        diags.extend(eval_diags);
        if let Some(p) = &plan {
            eval::check_policies(&checked.program, p, &mut diags);
        }
        diagnostics::sort(&mut diags);
        let ok = !diags.iter().any(Diagnostic::is_error);
        (plan.filter(|_| ok), diags)
    }
}

impl Session {
    /// A read-only view of the session as it is now, for another thread.
    /// The next edit to the session cancels queries running on snapshots
    /// (they unwind with a payload [`is_cancelled`] recognises) and waits
    /// for the snapshots to be dropped.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            db: self.db.clone(),
            workspace: self.workspace,
            files: self.files.clone(),
        }
    }
}

/// See [`Session::snapshot`].
pub struct Snapshot {
    db: db::Database,
    workspace: Option<db::Workspace>,
    files: BTreeMap<String, db::SourceFile>,
}

impl Snapshot {
    /// The parse of one file, if it is part of the session.
    pub fn parsed(&self, path: &str) -> Option<std::sync::Arc<syntax::Parsed>> {
        self.files
            .get(path)
            .map(|f| db::parse_file(&self.db, *f).clone())
    }

    /// The checked project with its name references, if the session has
    /// files.
    pub fn checked(&self) -> Option<std::sync::Arc<db::Checked>> {
        self.workspace
            .map(|ws| db::check_with_references(&self.db, ws).clone())
    }

    /// The checked project without name references (quicker to get after
    /// an edit), if the session has files.
    pub fn diagnostics(&self) -> Option<std::sync::Arc<db::Checked>> {
        self.workspace
            .map(|ws| db::check_workspace(&self.db, ws).clone())
    }
}

/// Whether a panic payload is a query cancelled by a newer edit.
pub fn is_cancelled(payload: &(dyn std::any::Any + Send)) -> bool {
    payload.is::<salsa::Cancelled>()
}

/// Checks sources held in memory (module name to text).
pub fn check(files: &BTreeMap<String, String>) -> Vec<Diagnostic> {
    let mut s = Session::new();
    s.set_files(files);
    s.check()
}

/// Compiles sources held in memory to a plan.
pub fn compile(
    files: &BTreeMap<String, String>,
    input: &eval::EvalInput,
) -> (Option<plan::Plan>, Vec<Diagnostic>) {
    let mut s = Session::new();
    s.set_files(files);
    s.plan(input)
}

/// The stack of the compiler's threads: address space only, touched as
/// deep inputs need it.
pub(crate) const LARGE_STACK: usize = 1 << 30;

/// Runs `f` on a thread with a large stack. Pathological inputs (thousands
/// of nested expressions) recurse deeply in every phase; this keeps them
/// from overflowing the caller's stack.
pub fn with_large_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(LARGE_STACK)
        .spawn(f)
        .expect("spawn compiler thread")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}
