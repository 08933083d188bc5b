//! Statement-level reuse of the type check, for an editor's session.
//!
//! After an edit inside one step of a large pipeline, every other statement
//! of its body checks exactly as before. What a statement's check depends
//! on is its own text, what it reads from the pipeline's scope, and the
//! rest of the project (module items, types, enums, other files). So the
//! check of each clean statement is kept with the names it read (and the
//! types they had) and the names it bound; the next check replays a
//! statement whose text is unchanged, whose reads still find the same types
//! and whose project outside the body is unchanged, and checks the others.
//! Statements are matched to the kept ones by text, in order from both
//! ends of the body and by lookup in between ([`crate::syntax::align`]).
//!
//! Only statements that reported nothing are kept: a statement with a
//! diagnostic is checked again every time, so every diagnostic comes from a
//! real check. Module-level items are all checked before any pipeline (in
//! every session, not only here), so a module `let` or `fn` is never
//! first computed from inside a statement that might be replayed.
//!
//! Tested equal to a fresh check over random edits
//! (`tests/incremental.rs`).

use crate::diagnostics::Span;
use crate::types::Typed;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bodies with fewer statements are checked whole: the bookkeeping would
/// cost more than it saves.
pub const MIN_STATEMENTS: usize = 200;

/// The kept checks, by file and pipeline name.
#[derive(Default)]
pub struct CheckMemo {
    bodies: Mutex<FxHashMap<(String, String), Body>>,
    replayed: AtomicUsize,
}

impl CheckMemo {
    /// How many statements were replayed rather than checked, in total.
    pub fn replayed(&self) -> usize {
        self.replayed.load(Ordering::Relaxed)
    }

    /// Takes a pipeline body's kept checks if they were made in the same
    /// `context`.
    pub(super) fn take(&self, key: &(String, String), context: u64) -> Option<Body> {
        self.lock().remove(key).filter(|b| b.context == context)
    }

    pub(super) fn keep(&self, key: (String, String), body: Body, replayed: usize) {
        self.replayed.fetch_add(replayed, Ordering::Relaxed);
        self.lock().insert(key, body);
    }

    /// Drops the kept checks of `file`'s pipelines.
    pub fn forget(&self, file: &str) {
        self.drop_where(|k| k.0 == file);
    }

    /// Drops the kept checks of every pipeline but `keys`.
    pub(super) fn retain(&self, keys: &[(String, String)]) {
        self.drop_where(|k| !keys.contains(k));
    }

    fn drop_where(&self, gone: impl Fn(&(String, String)) -> bool) {
        let dropped: Vec<_> = self.lock().extract_if(|k, _| gone(k)).collect();
        // Freed outside the lock.
        drop(dropped);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FxHashMap<(String, String), Body>> {
        self.bodies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One pipeline body's kept statement checks, in order.
pub(super) struct Body {
    pub context: u64,
    /// The source the statements' texts are in.
    pub src: std::sync::Arc<str>,
    /// Each statement's text (a range of `src`) and its kept check, if it
    /// was clean.
    pub stmts: Vec<(std::ops::Range<u32>, Option<Stmt>)>,
}

impl Body {
    /// For each of `texts` (the body's statements now), the kept statement
    /// with the same text.
    pub fn align(&self, texts: &[&str]) -> Vec<Option<usize>> {
        let old: Vec<&str> = self
            .stmts
            .iter()
            .map(|(r, _)| self.src.get(r.start as usize..r.end as usize).unwrap_or(""))
            .collect();
        crate::syntax::align(texts, &old)
    }
}

/// What checking one clean statement read and bound.
#[derive(Default)]
pub(super) struct Stmt {
    /// Names looked up outside the statement, with the type found in the
    /// pipeline's scope (`None`: not there, so a module item or builtin).
    pub reads: Vec<(Box<str>, Option<Typed>)>,
    /// Names bound in the pipeline's scope, in order, with their
    /// definitions' spans (relative to the statement's start once kept).
    pub binds: Vec<(Box<str>, Typed, Span)>,
}

impl Stmt {
    pub fn read(&mut self, name: &str, found: Option<&Typed>) {
        if !self
            .reads
            .iter()
            .any(|(n, t)| &**n == name && t.as_ref() == found)
        {
            self.reads.push((name.into(), found.cloned()));
        }
    }

    /// Whether the statement bound `name` itself.
    pub fn binds(&self, name: &str) -> bool {
        self.binds.iter().any(|(b, ..)| &**b == name)
    }

    /// The record to keep for a statement starting at `start`: its
    /// bindings' spans made relative to it (`None` if one is before it).
    pub fn relative_to(mut self, start: u32) -> Option<Stmt> {
        for (_, _, def) in &mut self.binds {
            def.start = def.start.checked_sub(start)?;
            def.end -= start;
        }
        Some(self)
    }
}

/// A statement's check in progress.
pub(super) struct Recording {
    /// The number of scopes when the statement started: lookups that find
    /// a name below it (or nowhere) read from outside the statement.
    pub base: usize,
    pub stmt: Stmt,
}

/// The project as a body's statements see it: every file's text except
/// the body's own statements (`body` in `file`). Positions are left out:
/// a kept check moves with its statement.
pub(super) fn context(
    texts: &BTreeMap<&str, &str>,
    file: &str,
    body: std::ops::Range<usize>,
) -> u64 {
    // SipHash, not Fx: a collision here would replay a stale check.
    let mut h = std::hash::DefaultHasher::new();
    for (path, text) in texts {
        path.hash(&mut h);
        if *path == file {
            text.get(..body.start).hash(&mut h);
            text.get(body.end..).hash(&mut h);
        } else {
            text.hash(&mut h);
        }
    }
    h.finish()
}
