//! The evaluator: a pure interpreter that turns a checked program, params
//! and the run context into a [`Plan`].
//!
//! It runs no command, reads no file and looks at no clock. Step, gate and
//! approval expressions register nodes as they are evaluated; a value that
//! refers to a node (an output, `ok`, a report, an `after:` entry) becomes a
//! `needs` edge. A gate or approval used as a statement is a barrier: every
//! node registered after it in the same block depends on it.
//!
//! It runs only on programs the checker accepted, but stays total: where a
//! value has an unexpected shape it yields [`V::Error`] and moves on.

use crate::diagnostics::{Code, Diagnostic, Span};
use crate::plan::{
    self, Command, Cond, Context, Input, Node, OutputRef, Plan, Segment, SourceRef, Stage,
    TriggerPlan,
};
use crate::resolve::{Import, Program};
use crate::syntax::*;
use rustc_hash::FxHashMap as HashMap;
use std::collections::{BTreeMap, BTreeSet};

const MAX_CALL_DEPTH: usize = 128;

#[derive(Clone, Debug, PartialEq)]
pub enum Seg {
    Lit(String),
    /// An interpolated plan-time value, as shell words.
    Words(Vec<String>),
    Raw(String),
    Rt(Cond, bool),
    /// Marks that the text used an upstream output (a dependency edge); renders as nothing.
    Dep(usize),
}

#[derive(Clone, Debug, PartialEq)]
pub enum V {
    Int(i64),
    Bool(bool),
    Str(Vec<Seg>),
    Duration(u64),
    Size(u64),
    Percent(i64),
    List(Vec<V>),
    Record(Vec<(String, V)>),
    Enum(String, String),
    EnumType(String),
    None,
    Secret(String),
    Dir {
        path: String,
        include: Vec<String>,
        exclude: Vec<String>,
        from: Option<(usize, String)>,
    },
    File {
        path: String,
        from: Option<(usize, String)>,
    },
    ValueDecl(String),
    Report {
        kind: String,
        path: String,
        format: Option<String>,
    },
    Node(usize),
    Fn(String, String),
    Builtin(String),
    Module(String),
    Raw(String),
    Rt(Cond),
    Unit,
    Error,
}

impl V {
    fn text(s: impl Into<String>) -> V {
        V::Str(vec![Seg::Lit(s.into())])
    }
    /// Plain text of a plan-time string.
    fn plain(&self) -> String {
        match self {
            V::Str(segs) => segs
                .iter()
                .map(|s| match s {
                    Seg::Lit(t) | Seg::Raw(t) => t.clone(),
                    Seg::Words(w) => w.join(" "),
                    Seg::Rt(..) | Seg::Dep(_) => String::new(),
                })
                .collect(),
            V::Int(i) => i.to_string(),
            V::Bool(b) => b.to_string(),
            V::Enum(_, v) => v.clone(),
            V::Duration(ms) => fmt_duration(*ms),
            V::Size(b) => fmt_size(*b),
            V::Percent(p) => fmt_percent(*p),
            V::Dir { path, .. } | V::File { path, .. } => path.clone(),
            V::Raw(s) => s.clone(),
            V::List(items) => items.iter().map(V::plain).collect::<Vec<_>>().join(" "),
            V::None => String::new(),
            _ => String::new(),
        }
    }
    fn words(&self) -> Vec<String> {
        match self {
            V::List(items) => items.iter().flat_map(V::words).collect(),
            other => vec![other.plain()],
        }
    }
    fn is_rt(&self) -> bool {
        match self {
            V::Rt(_) => true,
            V::Str(segs) => segs.iter().any(|s| matches!(s, Seg::Rt(..))),
            _ => false,
        }
    }
    fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            V::Int(i) => J::from(*i),
            V::Bool(b) => J::from(*b),
            V::Duration(ms) => J::from(*ms),
            V::Size(b) => J::from(*b),
            V::Percent(p) => J::from(*p as f64 / 100.0),
            V::None => J::Null,
            V::List(items) => J::Array(items.iter().map(V::to_json).collect()),
            V::Record(fs) => J::Object(fs.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
            other => J::from(other.plain()),
        }
    }
}

pub fn fmt_duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let mut s = ms / 1000;
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if s >= len {
            out.push_str(&format!("{}{unit}", s / len));
            s %= len;
        }
    }
    out
}

pub fn fmt_size(b: u64) -> String {
    for (unit, len) in [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ] {
        if b >= len && b.is_multiple_of(len) {
            return format!("{}{unit}", b / len);
        }
    }
    for (unit, len) in [
        ("TB", 1_000_000_000_000u64),
        ("GB", 1_000_000_000),
        ("MB", 1_000_000),
        ("KB", 1000),
    ] {
        if b >= len && b.is_multiple_of(len) {
            return format!("{}{unit}", b / len);
        }
    }
    format!("{b}B")
}

pub fn fmt_percent(p: i64) -> String {
    if p % 100 == 0 {
        format!("{}%", p / 100)
    } else {
        format!("{}.{:02}%", p / 100, (p % 100).abs())
            .trim_end_matches('0')
            .to_owned()
            + "%"
    }
    .replace("%%", "%")
}

/// Inputs of an evaluation besides the sources.
#[derive(Clone, Debug, Default)]
pub struct EvalInput {
    pub pipeline: Option<String>,
    pub params: Vec<(String, String)>,
    pub context: Context,
}

struct Eval<'a> {
    program: &'a Program,
    file: String,
    scopes: Vec<HashMap<String, V>>,
    lets: HashMap<(String, String), V>,
    params: HashMap<String, V>,
    nodes: Vec<Node>,
    node_names: HashMap<String, usize>,
    ids: rustc_hash::FxHashSet<String>,
    barriers: Vec<usize>,
    stage: Option<String>,
    rollback_for: Option<String>,
    stage_skip: bool,
    stages: Vec<Stage>,
    diags: Vec<Diagnostic>,
    depth: usize,
    failed: bool,
    context: Context,
    /// Set by another thread to stop the evaluation (see [`evaluate_unless`]).
    cancel: Option<&'a std::sync::atomic::AtomicBool>,
}

/// Evaluates the chosen pipeline to a plan. `diags` receives evaluation
/// errors (params, duplicate step names, recursion).
pub fn evaluate(program: &Program, input: &EvalInput, diags: &mut Vec<Diagnostic>) -> Option<Plan> {
    evaluate_with(program, input, diags, None)
}

/// [`evaluate`], stopping early (with no plan) once `cancel` is set: an
/// evaluation started beside the type check is stopped when the check
/// finds errors, since it is not needed then and an ill-typed program
/// need not evaluate quickly.
pub fn evaluate_unless(
    program: &Program,
    input: &EvalInput,
    diags: &mut Vec<Diagnostic>,
    cancel: &std::sync::atomic::AtomicBool,
) -> Option<Plan> {
    evaluate_with(program, input, diags, Some(cancel))
}

fn evaluate_with(
    program: &Program,
    input: &EvalInput,
    diags: &mut Vec<Diagnostic>,
    cancel: Option<&std::sync::atomic::AtomicBool>,
) -> Option<Plan> {
    // Find pipelines.
    let mut pipelines: Vec<(&str, &Item, &PipelineDecl)> = Vec::new();
    for (path, m) in &program.modules {
        for item in &m.parsed.module.items {
            if let ItemKind::Pipeline(p) = &item.kind {
                pipelines.push((path, item, p));
            }
        }
    }
    let chosen = match &input.pipeline {
        Some(name) => match pipelines.iter().find(|(_, _, p)| &p.name.name == name) {
            Some(p) => *p,
            None => {
                let names: Vec<&str> = pipelines
                    .iter()
                    .map(|(_, _, p)| p.name.name.as_str())
                    .collect();
                let mut d = Diagnostic::error(
                    Code::UnknownPipeline,
                    "",
                    Span::default(),
                    format!("no pipeline named `{name}`"),
                );
                d = match crate::diagnostics::suggest(name, names.iter().copied()) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None if names.is_empty() => d.with_note("the project declares no pipeline"),
                    None => d.with_note(format!(
                        "the pipelines are {}",
                        crate::diagnostics::code_list(names)
                    )),
                };
                diags.push(d);
                return None;
            }
        },
        None => {
            let defaults: Vec<_> = pipelines.iter().filter(|(_, _, p)| p.is_default).collect();
            if pipelines.len() == 1 {
                pipelines[0]
            } else if defaults.len() == 1 {
                *defaults[0]
            } else if pipelines.is_empty() {
                diags.push(
                    Diagnostic::error(
                        Code::NoPipeline,
                        "",
                        Span::default(),
                        "the project declares no pipeline",
                    )
                    .with_help("add one: `pipeline ci { step \"hello\" { run: \"echo hello\" } }`"),
                );
                return None;
            } else {
                let names: Vec<String> = pipelines
                    .iter()
                    .map(|(_, _, p)| format!("`{}`", p.name.name))
                    .collect();
                diags.push(
                    Diagnostic::error(
                        Code::NoPipeline,
                        "",
                        Span::default(),
                        format!(
                            "the project has {} pipelines and none is marked `default`",
                            pipelines.len()
                        ),
                    )
                    .with_note(format!("the pipelines are {}", names.join(", ")))
                    .with_help(
                        "name one with `--pipeline NAME`, or mark one `default pipeline ...`",
                    ),
                );
                return None;
            }
        }
    };
    let (file, item, decl) = chosen;
    let mut ev = Eval::new(program, file, input.context.clone());
    ev.cancel = cancel;
    // Most statements of a pipeline make a node: room for them up front,
    // rather than copying the nodes each time the list doubles.
    ev.nodes.reserve(decl.body.stmts.len());
    ev.ids.reserve(decl.body.stmts.len());
    ev.node_names.reserve(decl.body.stmts.len());
    let params_json = ev.bind_params(file, &input.params);
    if ev.failed {
        diags.append(&mut ev.diags);
        return None;
    }
    let triggers = decl
        .triggers
        .iter()
        .map(|t| {
            let mut args = BTreeMap::new();
            let names: &[&str] = match t.kind.name.as_str() {
                "push" => &["branches", "paths", "tags"],
                "pull_request" => &["branches", "paths", "forks"],
                "tag" => &["pattern"],
                "schedule" => &["cron"],
                _ => &[],
            };
            for (i, a) in t.args.iter().enumerate() {
                let key = a.name.as_ref().map_or_else(
                    || names.get(i).copied().unwrap_or("arg").to_owned(),
                    |n| n.name.clone(),
                );
                let v = ev.expr(&a.value);
                args.insert(key, v.to_json());
            }
            TriggerPlan {
                kind: t.kind.name.clone(),
                args,
            }
        })
        .collect();
    ev.block(&decl.body, false);
    let failed = ev.failed;
    diags.append(&mut ev.diags);
    if failed {
        return None;
    }
    let plan = Plan {
        schema: plan::SCHEMA_VERSION.to_owned(),
        pipeline: decl.name.name.clone(),
        source: SourceRef {
            file: file.to_owned(),
            start: item.span.start,
            end: item.span.end,
        },
        params: params_json,
        context: input.context.clone(),
        triggers,
        stages: ev.stages,
        nodes: ev.nodes,
    };
    let problems = plan.validate();
    if !problems.is_empty() {
        diags.extend(problems);
        return None;
    }
    Some(plan)
}

impl<'a> Eval<'a> {
    fn new(program: &'a Program, file: &str, context: Context) -> Self {
        Eval {
            program,
            file: file.to_owned(),
            scopes: vec![HashMap::default()],
            lets: HashMap::default(),
            params: HashMap::default(),
            nodes: Vec::new(),
            node_names: HashMap::default(),
            ids: rustc_hash::FxHashSet::default(),
            barriers: Vec::new(),
            stage: None,
            rollback_for: None,
            stage_skip: false,
            stages: Vec::new(),
            diags: Vec::new(),
            depth: 0,
            failed: false,
            cancel: None,
            context,
        }
    }
}

impl Eval<'_> {
    fn error(&mut self, d: Diagnostic) -> V {
        if d.is_error() {
            self.failed = true;
        }
        self.diags.push(d);
        V::Error
    }

    /// Adds the declared defaults of a record type's omitted fields.
    fn fill_defaults(&mut self, v: V, ty: &TypeExpr) -> V {
        match (v, ty) {
            (V::List(items), TypeExpr::List(inner, _)) => V::List(
                items
                    .into_iter()
                    .map(|i| self.fill_defaults(i, inner))
                    .collect(),
            ),
            (V::Record(mut fields), TypeExpr::Named(path, _)) => {
                let (module, name) = match path.as_slice() {
                    [n] => (self.file.clone(), n.name.clone()),
                    [m, n] => match self.program.modules[&self.file].imports.get(&m.name) {
                        Some((Import::Module(p), _)) => (p.clone(), n.name.clone()),
                        _ => return V::Record(fields),
                    },
                    _ => return V::Record(fields),
                };
                let Some(m) = self.program.modules.get(&module) else {
                    return V::Record(fields);
                };
                let Some(&idx) = m.items.get(&name) else {
                    return V::Record(fields);
                };
                let ItemKind::Type(t) = &m.parsed.module.items[idx].kind else {
                    return V::Record(fields);
                };
                for fd in &t.fields {
                    if let Some(d) = &fd.default
                        && !fields.iter().any(|(n, _)| n == &fd.name.name)
                    {
                        let dv = self.in_module(&module, |e| e.expr(d));
                        fields.push((fd.name.name.clone(), dv));
                    }
                }
                for (n, fv) in &mut fields {
                    if let Some(fd) = t.fields.iter().find(|f| &f.name.name == n) {
                        let taken = std::mem::replace(fv, V::Unit);
                        *fv = self.fill_defaults(taken, &fd.ty);
                    }
                }
                V::Record(fields)
            }
            (v, _) => v,
        }
    }

    fn runtime_at_plan_time(&mut self, span: Span, what: &str) -> V {
        let d = Diagnostic::error(Code::RuntimeValueAtPlanTime, &self.file.clone(), span, format!("{what} must be known when the plan is built, but here it depends on a value that exists only once a step has run"))
            .with_label("known only at run time")
            .with_note("a run-time value was passed into a function, which uses it to shape the plan")
            .with_help("decide at run time with the step's `when:` field, or a gate");
        self.error(d)
    }

    fn bind_params(
        &mut self,
        file: &str,
        given: &[(String, String)],
    ) -> BTreeMap<String, serde_json::Value> {
        let m = &self.program.modules[file];
        let mut decls: Vec<&ParamDecl> = Vec::new();
        for item in &m.parsed.module.items {
            if let ItemKind::Param(p) = &item.kind {
                decls.push(p);
            }
        }
        for (k, _) in given {
            if !decls.iter().any(|p| &p.name.name == k) {
                let mut d = Diagnostic::error(
                    Code::UnknownParam,
                    "",
                    Span::default(),
                    format!("unknown param `{k}`"),
                );
                d = match crate::diagnostics::suggest(k, decls.iter().map(|p| p.name.name.as_str()))
                {
                    Some(s) => d.with_help(format!("did you mean `--param {s}=...`?")),
                    None if decls.is_empty() => {
                        d.with_note("this pipeline's module declares no params")
                    }
                    None => d.with_note(format!(
                        "the params are {}",
                        decls
                            .iter()
                            .map(|p| format!("`{}`", p.name.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                };
                self.error(d);
            }
        }
        let mut out = BTreeMap::new();
        for p in decls {
            let given_v = given
                .iter()
                .rev()
                .find(|(k, _)| k == &p.name.name)
                .map(|(_, v)| v.clone());
            let v = match given_v {
                Some(text) => match self.parse_param(p, &text) {
                    Ok(v) => v,
                    Err(why) => {
                        let d = Diagnostic::error(
                            Code::InvalidParamValue,
                            &self.file.clone(),
                            p.name.span,
                            format!("invalid value `{text}` for param `{}`: {why}", p.name.name),
                        )
                        .with_label(format!("declared as `{}` here", type_expr_text(&p.ty)));
                        self.error(d)
                    }
                },
                None => match &p.default {
                    Some(d) => self.expr(d),
                    None => {
                        let d = Diagnostic::error(
                            Code::MissingParam,
                            &self.file.clone(),
                            p.name.span,
                            format!("param `{}` has no default and was not given", p.name.name),
                        )
                        .with_label("declared here")
                        .with_help(format!("pass it: `--param {}=...`", p.name.name));
                        self.error(d)
                    }
                },
            };
            out.insert(p.name.name.clone(), v.to_json());
            self.params.insert(p.name.name.clone(), v);
        }
        out
    }

    fn parse_param(&self, p: &ParamDecl, text: &str) -> Result<V, String> {
        parse_param_value(self.program, &self.file, &p.ty, text)
    }

    fn lookup(&mut self, name: &str) -> V {
        for s in self.scopes.iter().rev() {
            if let Some(v) = s.get(name) {
                return v.clone();
            }
        }
        let m = &self.program.modules[&self.file];
        if let Some(&idx) = m.items.get(name) {
            let item = &m.parsed.module.items[idx];
            return match &item.kind {
                ItemKind::Param(p) => {
                    if let Some(v) = self.params.get(name) {
                        return v.clone();
                    }
                    // A param of an imported module: its default.
                    match &p.default {
                        Some(d) => self.expr(d),
                        None => V::Error,
                    }
                }
                ItemKind::Let(l) => self.module_let(&self.file.clone(), name, l),
                ItemKind::Fn(_) => V::Fn(self.file.clone(), name.to_owned()),
                ItemKind::Enum(e) => V::EnumType(e.name.name.clone()),
                ItemKind::Use(_) => match m.imports.get(name) {
                    Some((Import::Module(p), _)) => V::Module(p.clone()),
                    _ => V::Error,
                },
                _ => V::Error,
            };
        }
        match name {
            "git" => V::Record(vec![
                ("branch".into(), V::text(self.context.git_branch.clone())),
                ("sha".into(), V::text(self.context.git_sha.clone())),
                (
                    "tag".into(),
                    self.context.git_tag.clone().map_or(V::None, V::text),
                ),
            ]),
            "event" => V::Record(vec![
                ("kind".into(), V::text(self.context.event_kind.clone())),
                ("actor".into(), V::text(self.context.event_actor.clone())),
            ]),
            n if crate::typeck::builtin(n).is_some() => V::Builtin(n.to_owned()),
            _ => V::Error,
        }
    }

    fn module_let(&mut self, module: &str, name: &str, l: &LetDecl) -> V {
        let key = (module.to_owned(), name.to_owned());
        if let Some(v) = self.lets.get(&key) {
            return v.clone();
        }
        self.lets.insert(key.clone(), V::Error);
        let v = self.in_module(module, |e| e.expr(&l.value));
        self.lets.insert(key, v.clone());
        v
    }

    fn in_module<T>(&mut self, module: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        let saved = std::mem::replace(&mut self.file, module.to_owned());
        let saved_scopes = std::mem::replace(&mut self.scopes, vec![HashMap::default()]);
        let r = f(self);
        self.file = saved;
        self.scopes = saved_scopes;
        r
    }

    /// Evaluates a block; returns the value of its last expression.
    fn block(&mut self, b: &Block, new_scope: bool) -> V {
        if new_scope {
            // Room for a binding per statement: a large pipeline's scope
            // is not rehashed as it fills.
            let room = b.stmts.len();
            self.scopes.push(HashMap::with_capacity_and_hasher(
                room,
                rustc_hash::FxBuildHasher,
            ));
        }
        let barrier_mark = self.barriers.len();
        let mut last = V::Unit;
        for s in &b.stmts {
            if self.failed {
                break;
            }
            last = V::Unit;
            match s {
                Stmt::Let(l, _) => {
                    let mut v = self.expr(&l.value);
                    if let Some(t) = &l.ty {
                        v = self.fill_defaults(v, t);
                    }
                    if let Some(scope) = self.scopes.last_mut() {
                        scope.insert(l.name.name.clone(), v);
                    }
                }
                Stmt::Expr(e) => {
                    let v = self.expr(e);
                    let mut new_barriers = Vec::new();
                    collect_barriers(&v, &self.nodes, &mut new_barriers);
                    self.barriers.extend(new_barriers);
                    last = v;
                }
                Stmt::Stage(st) => self.stage(st),
                Stmt::Require(_) => {}
            }
        }
        if new_scope {
            self.scopes.pop();
            // Barriers raised inside an `if`/`for` body reach the enclosing
            // block through the body's value; others end with the block.
            let keep: Vec<usize> = {
                let mut k = Vec::new();
                collect_barriers(&last, &self.nodes, &mut k);
                k
            };
            self.barriers.truncate(barrier_mark);
            for k in keep {
                if !self.barriers.contains(&k) {
                    self.barriers.push(k);
                }
            }
        }
        last
    }

    fn stage(&mut self, st: &StageDecl) {
        let when = st.when.as_ref().map(|w| self.expr(w));
        let skip = matches!(when, Some(V::Bool(false)));
        let cond = match &when {
            Some(V::Bool(b)) => Some(Cond::Lit(serde_json::Value::Bool(*b))),
            Some(v) if v.is_rt() => Some(to_cond(v)),
            _ => None,
        };
        let saved_stage = self.stage.replace(st.name.name.clone());
        let saved_skip = self.stage_skip;
        self.stage_skip |= skip;
        let start = self.nodes.len();
        let barrier_mark = self.barriers.len();
        self.block(&st.body, false);
        self.barriers.truncate(barrier_mark);
        let body_nodes: Vec<String> = self.nodes[start..].iter().map(|n| n.id.clone()).collect();
        let mut rollback = Vec::new();
        if let Some(f) = &st.on_failure {
            let saved_barriers = std::mem::take(&mut self.barriers);
            let saved_rb = self.rollback_for.replace(st.name.name.clone());
            let rb_start = self.nodes.len();
            self.block(f, true);
            rollback = self.nodes[rb_start..]
                .iter()
                .map(|n| n.id.clone())
                .collect();
            self.rollback_for = saved_rb;
            self.barriers = saved_barriers;
        }
        self.stage = saved_stage;
        self.stage_skip = saved_skip;
        self.stages.push(Stage {
            name: st.name.name.clone(),
            when: cond,
            nodes: body_nodes,
            rollback,
            source: SourceRef {
                file: self.file.clone(),
                start: st.span.start,
                end: st.span.end,
            },
        });
    }

    fn expr(&mut self, e: &Expr) -> V {
        if self.failed {
            return V::Error;
        }
        if self
            .cancel
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
        {
            self.failed = true;
            return V::Error;
        }
        match &e.kind {
            ExprKind::Int(i) => V::Int(*i),
            ExprKind::Bool(b) => V::Bool(*b),
            ExprKind::None => V::None,
            ExprKind::Duration(d) => V::Duration(*d),
            ExprKind::Size(s) => V::Size(*s),
            ExprKind::Percent(p) => V::Percent(*p),
            ExprKind::Error => V::Error,
            ExprKind::Paren(x) => self.expr(x),
            ExprKind::Str { parts, .. } => {
                let mut segs = Vec::with_capacity(parts.len());
                for p in parts {
                    match p {
                        StrPart::Text(t) => segs.push(Seg::Lit(t.clone())),
                        StrPart::Interp(x) => {
                            let v = self.expr(x);
                            push_interp(&mut segs, &v);
                        }
                    }
                }
                V::Str(segs)
            }
            ExprKind::Name(n) => self.lookup(n),
            ExprKind::Field(base, f) => {
                let b = self.expr(base);
                self.field(b, &f.name)
            }
            ExprKind::Call { callee, args } => self.call(callee, args, e.span),
            ExprKind::List(items) => V::List(items.iter().map(|i| self.expr(i)).collect()),
            ExprKind::Record(fields) => V::Record(
                fields
                    .iter()
                    .map(|f| (f.name.name.clone(), self.expr(&f.value)))
                    .collect(),
            ),
            ExprKind::Unary(op, x) => {
                let v = self.expr(x);
                match (op, v) {
                    (UnOp::Not, V::Bool(b)) => V::Bool(!b),
                    (UnOp::Neg, V::Int(i)) => V::Int(i.wrapping_neg()),
                    (UnOp::Neg, V::Percent(i)) => V::Percent(-i),
                    (UnOp::Not, v) if v.is_rt() => V::Rt(Cond::Not(Box::new(to_cond(&v)))),
                    (UnOp::Neg, v) if v.is_rt() => V::Rt(Cond::Neg(Box::new(to_cond(&v)))),
                    _ => V::Error,
                }
            }
            ExprKind::Binary(op, l, r) => {
                let a = self.expr(l);
                if *op == BinOp::And && a == V::Bool(false) {
                    return V::Bool(false);
                }
                if *op == BinOp::Or && a == V::Bool(true) {
                    return V::Bool(true);
                }
                if *op == BinOp::Coalesce && a != V::None && !a.is_rt() {
                    return a;
                }
                let b = self.expr(r);
                self.binary(*op, a, b, e.span)
            }
            ExprKind::If { cond, then, els } => match self.expr(cond) {
                V::Bool(true) => self.block(then, true),
                V::Bool(false) => els.as_ref().map_or(V::Unit, |b| self.block(b, true)),
                v if v.is_rt() => self.runtime_at_plan_time(cond.span, "an `if` condition"),
                _ => V::Error,
            },
            ExprKind::Match { scrutinee, arms } => {
                let v = self.expr(scrutinee);
                if v.is_rt() {
                    return self
                        .runtime_at_plan_time(scrutinee.span, "the value a `match` inspects");
                }
                for arm in arms {
                    for p in &arm.patterns {
                        let hit = match p {
                            Pattern::Wildcard(_) => true,
                            Pattern::Path(path, _) => {
                                matches!(&v, V::Enum(_, var) if path.last().is_some_and(|l| &l.name == var))
                            }
                            Pattern::Literal(lit) => {
                                let lv = self.expr(lit);
                                values_equal(&lv, &v)
                            }
                        };
                        if hit {
                            return self.expr(&arm.body);
                        }
                    }
                }
                V::Error
            }
            ExprKind::For { var, iter, body } => {
                let V::List(items) = self.expr(iter) else {
                    return V::Error;
                };
                let mut out = Vec::with_capacity(items.len());
                for it in items {
                    self.scopes
                        .push(HashMap::from_iter([(var.name.clone(), it)]));
                    let v = self.block(body, true);
                    self.scopes.pop();
                    out.push(v);
                }
                V::List(out)
            }
            ExprKind::Node(n) => self.node(n.kind, &n.name, &n.fields, &n.requires, e.span),
        }
    }

    fn field(&mut self, b: V, f: &str) -> V {
        match b {
            V::Record(fs) => fs
                .into_iter()
                .find(|(n, _)| n == f)
                .map_or(V::Error, |(_, v)| v),
            V::EnumType(en) => V::Enum(en, f.to_owned()),
            V::Module(path) => {
                let Some(m) = self.program.modules.get(&path) else {
                    return V::Error;
                };
                let Some(&idx) = m.items.get(f) else {
                    return V::Error;
                };
                match &m.parsed.module.items[idx].kind {
                    ItemKind::Fn(_) => V::Fn(path, f.to_owned()),
                    ItemKind::Let(l) => self.module_let(&path, f, l),
                    ItemKind::Enum(e) => V::EnumType(e.name.name.clone()),
                    ItemKind::Param(p) => match &p.default {
                        Some(d) => self.in_module(&path, |e| e.expr(d)),
                        None => V::Error,
                    },
                    _ => V::Error,
                }
            }
            V::Node(i) => {
                let id = self.nodes[i].id.clone();
                match f {
                    "ok" | "exit_code" => V::Rt(Cond::Status {
                        node: id,
                        field: f.to_owned(),
                    }),
                    "tests" | "coverage" | "findings" => V::Record(
                        report_fields(f)
                            .iter()
                            .map(|rf| {
                                (
                                    (*rf).to_owned(),
                                    V::Rt(Cond::Report {
                                        node: id.clone(),
                                        report: f.to_owned(),
                                        field: (*rf).to_owned(),
                                    }),
                                )
                            })
                            .collect(),
                    ),
                    _ => match self.nodes[i].outputs.iter().find(|o| o.name == f) {
                        Some(o) if o.kind == "file" => V::File {
                            path: o.path.clone().unwrap_or_default(),
                            from: Some((i, f.to_owned())),
                        },
                        Some(o) if o.kind == "dir" => V::Dir {
                            path: o.path.clone().unwrap_or_default(),
                            include: Vec::new(),
                            exclude: Vec::new(),
                            from: Some((i, f.to_owned())),
                        },
                        Some(_) => V::Rt(Cond::Output {
                            node: id,
                            name: f.to_owned(),
                        }),
                        None => V::Error,
                    },
                }
            }
            _ => V::Error,
        }
    }

    fn binary(&mut self, op: BinOp, a: V, b: V, span: Span) -> V {
        if a.is_rt() || b.is_rt() {
            return V::Rt(Cond::Binary {
                op: op.as_str().to_owned(),
                left: Box::new(to_cond(&a)),
                right: Box::new(to_cond(&b)),
            });
        }
        let overflow = |s: &mut Self| {
            let d = Diagnostic::error(
                Code::EvaluationError,
                &s.file.clone(),
                span,
                "arithmetic overflow",
            )
            .with_label("this computation overflows");
            s.error(d)
        };
        match (op, &a, &b) {
            (BinOp::Add, V::Str(x), V::Str(y)) => V::Str(x.iter().chain(y).cloned().collect()),
            (BinOp::Add, V::List(x), V::List(y)) => V::List(x.iter().chain(y).cloned().collect()),
            (BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div, _, _) => {
                let (x, y, wrap): (i128, i128, fn(i128) -> V) = match (&a, &b) {
                    (V::Int(x), V::Int(y)) => {
                        (i128::from(*x), i128::from(*y), |v| V::Int(v as i64))
                    }
                    (V::Duration(x), V::Duration(y)) => {
                        (i128::from(*x), i128::from(*y), |v| V::Duration(v as u64))
                    }
                    (V::Duration(x), V::Int(y)) => {
                        (i128::from(*x), i128::from(*y), |v| V::Duration(v as u64))
                    }
                    (V::Int(x), V::Duration(y)) => {
                        (i128::from(*x), i128::from(*y), |v| V::Duration(v as u64))
                    }
                    (V::Size(x), V::Size(y)) => {
                        (i128::from(*x), i128::from(*y), |v| V::Size(v as u64))
                    }
                    (V::Size(x), V::Int(y)) => {
                        (i128::from(*x), i128::from(*y), |v| V::Size(v as u64))
                    }
                    (V::Percent(x), V::Percent(y)) => {
                        (i128::from(*x), i128::from(*y), |v| V::Percent(v as i64))
                    }
                    (V::Percent(x), V::Int(y)) => {
                        (i128::from(*x), i128::from(*y), |v| V::Percent(v as i64))
                    }
                    _ => return V::Error,
                };
                let r = match op {
                    BinOp::Add => x + y,
                    BinOp::Sub => x - y,
                    BinOp::Mul => x * y,
                    _ => {
                        if y == 0 {
                            let d = Diagnostic::error(
                                Code::EvaluationError,
                                &self.file.clone(),
                                span,
                                "division by zero",
                            )
                            .with_label("the divisor is zero");
                            return self.error(d);
                        }
                        x / y
                    }
                };
                let limit = if matches!(a, V::Int(_) | V::Percent(_)) {
                    (i128::from(i64::MIN), i128::from(i64::MAX))
                } else {
                    (0, i128::from(u64::MAX))
                };
                if r < limit.0 || r > limit.1 {
                    return overflow(self);
                }
                wrap(r)
            }
            (BinOp::Eq, _, _) => V::Bool(values_equal(&a, &b)),
            (BinOp::Ne, _, _) => V::Bool(!values_equal(&a, &b)),
            (BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge, _, _) => {
                let ord = match (&a, &b) {
                    (V::Int(x), V::Int(y)) | (V::Percent(x), V::Percent(y)) => x.cmp(y),
                    (V::Duration(x), V::Duration(y)) | (V::Size(x), V::Size(y)) => x.cmp(y),
                    (V::Str(_), V::Str(_)) => a.plain().cmp(&b.plain()),
                    _ => return V::Error,
                };
                V::Bool(match op {
                    BinOp::Lt => ord.is_lt(),
                    BinOp::Le => ord.is_le(),
                    BinOp::Gt => ord.is_gt(),
                    _ => ord.is_ge(),
                })
            }
            (BinOp::And, V::Bool(x), V::Bool(y)) => V::Bool(*x && *y),
            (BinOp::Or, V::Bool(x), V::Bool(y)) => V::Bool(*x || *y),
            (BinOp::In, _, V::List(items)) => V::Bool(items.iter().any(|i| values_equal(i, &a))),
            (BinOp::In, V::Str(_), V::Str(_)) => V::Bool(b.plain().contains(&a.plain())),
            (BinOp::Coalesce, V::None, _) => b,
            _ => V::Error,
        }
    }

    fn call(&mut self, callee: &Expr, args: &[Arg], span: Span) -> V {
        let c = self.expr(callee);
        match c {
            V::Builtin(name) => self.builtin(&name, args),
            V::Fn(module, name) => {
                let Some(m) = self.program.modules.get(&module) else {
                    return V::Error;
                };
                let Some(&idx) = m.items.get(&name) else {
                    return V::Error;
                };
                let ItemKind::Fn(f) = &m.parsed.module.items[idx].kind else {
                    return V::Error;
                };
                if self.depth >= MAX_CALL_DEPTH {
                    let d = Diagnostic::error(Code::RecursionLimit, &self.file.clone(), span, format!("calls nest deeper than {MAX_CALL_DEPTH} levels"))
                        .with_label(format!("this call to `{name}` is {MAX_CALL_DEPTH} calls deep"))
                        .with_secondary(&module, f.name.span, "in this function")
                        .with_note("evaluation is finite by design: a function that calls itself must stop on a plan-time condition")
                        .with_help("check the condition that should end the recursion");
                    return self.error(d);
                }
                // Bind arguments in the caller's scope, then evaluate the body in the callee's module.
                let mut bound: Vec<Option<V>> = vec![None; f.params.len()];
                let mut pos = 0;
                for a in args {
                    let idx = match &a.name {
                        Some(n) => f.params.iter().position(|p| p.name.name == n.name),
                        None => {
                            pos += 1;
                            Some(pos - 1)
                        }
                    };
                    let v = self.expr(&a.value);
                    if let Some(i) = idx.filter(|i| *i < bound.len()) {
                        bound[i] = Some(v);
                    }
                }
                self.depth += 1;
                let r = self.in_module(&module, |ev| {
                    let mut scope = HashMap::default();
                    for (i, p) in f.params.iter().enumerate() {
                        let v = match bound[i].take() {
                            Some(v) => v,
                            None => p.default.as_ref().map_or(V::Error, |d| {
                                // Defaults see the parameters before them.
                                ev.scopes.push(scope.clone());
                                let v = ev.expr(d);
                                ev.scopes.pop();
                                v
                            }),
                        };
                        let v = ev.fill_defaults(v, &p.ty);
                        scope.insert(p.name.name.clone(), v);
                    }
                    ev.scopes.push(scope);
                    let v = ev.block(&f.body, true);
                    ev.scopes.pop();
                    v
                });
                self.depth -= 1;
                r
            }
            _ => V::Error,
        }
    }

    fn builtin(&mut self, name: &str, args: &[Arg]) -> V {
        let b = crate::typeck::builtin(name).expect("builtin");
        let mut vals: Vec<Option<V>> = vec![None; b.params.len()];
        let mut pos = 0;
        for a in args {
            let idx = match &a.name {
                Some(n) => b
                    .params
                    .iter()
                    .position(|(p, _)| p.trim_end_matches('=') == n.name),
                None => {
                    pos += 1;
                    Some(pos - 1)
                }
            };
            let v = if name == "value" {
                match &a.value.kind {
                    ExprKind::Name(t) => V::text(t.clone()),
                    _ => V::Error,
                }
            } else {
                self.expr(&a.value)
            };
            if let Some(i) = idx.filter(|i| *i < vals.len()) {
                vals[i] = Some(v);
            }
        }
        let arg = |i: usize| vals.get(i).cloned().flatten();
        let strs = |v: Option<V>| -> Vec<String> {
            match v {
                Some(V::List(items)) => items.iter().map(V::plain).collect(),
                _ => Vec::new(),
            }
        };
        let text = |v: Option<V>| v.map(|v| v.plain()).unwrap_or_default();
        match name {
            "secret" => V::Secret(text(arg(0))),
            "workspace" => V::Dir {
                path: ".".into(),
                include: strs(arg(0)),
                exclude: strs(arg(1)),
                from: None,
            },
            "dir" => V::Dir {
                path: text(arg(0)),
                include: Vec::new(),
                exclude: strs(arg(1)),
                from: None,
            },
            "file" => V::File {
                path: text(arg(0)),
                from: None,
            },
            "value" => V::ValueDecl(text(arg(0))),
            "junit" => V::Report {
                kind: "junit".into(),
                path: text(arg(0)),
                format: None,
            },
            "sarif" => V::Report {
                kind: "sarif".into(),
                path: text(arg(0)),
                format: None,
            },
            "coverage" => V::Report {
                kind: "coverage".into(),
                path: text(arg(0)),
                format: Some(arg(1).map_or_else(|| "lcov".to_owned(), |v| v.plain())),
            },
            "raw" => match arg(0) {
                Some(v) if v.is_rt() => V::Str(vec![Seg::Rt(to_cond(&v), false)]),
                v => V::Raw(text(v)),
            },
            "join" => {
                V::text(strs(arg(0)).join(&arg(1).map_or_else(|| " ".to_owned(), |v| v.plain())))
            }
            "len" => match arg(0) {
                Some(V::List(items)) => V::Int(items.len() as i64),
                Some(v) => V::Int(v.plain().chars().count() as i64),
                None => V::Error,
            },
            "str" => V::text(text(arg(0))),
            "upper" => V::text(text(arg(0)).to_ascii_uppercase()),
            "lower" => V::text(text(arg(0)).to_ascii_lowercase()),
            "contains" => match (arg(0), arg(1)) {
                (Some(V::List(items)), Some(x)) => {
                    V::Bool(items.iter().any(|i| values_equal(i, &x)))
                }
                (Some(a), Some(b)) => V::Bool(a.plain().contains(&b.plain())),
                _ => V::Error,
            },
            _ => V::Error,
        }
    }

    fn node(
        &mut self,
        kind: NodeKind,
        name: &Expr,
        fields: &[FieldInit],
        requires: &[Require],
        span: Span,
    ) -> V {
        let name_v = self.expr(name);
        if name_v.is_rt() {
            return self.runtime_at_plan_time(name.span, &format!("a {} name", kind.as_str()));
        }
        let node_name = name_v.plain();
        let mut needs: BTreeSet<usize> = self.barriers.iter().copied().collect();
        let mut node = Node {
            id: String::new(),
            name: node_name.clone(),
            kind: kind.as_str().to_owned(),
            stage: self.stage.clone(),
            rollback_for: self.rollback_for.clone(),
            needs: Vec::new(),
            when: None,
            command: None,
            image: None,
            env: plan::SortedMap::new(),
            secrets: plan::SortedMap::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            reports: Vec::new(),
            requires: Vec::new(),
            approval: (kind == NodeKind::Approval).then(|| plan::ApprovalSpec {
                min: 1,
                ..Default::default()
            }),
            timeout_ms: None,
            retries: 0,
            backoff_ms: None,
            allow_failure: false,
            cache: kind == NodeKind::Step,
            workdir: None,
            labels: Vec::new(),
            concurrency: None,
            environment: None,
            description: None,
            source: SourceRef {
                file: self.file.clone(),
                start: span.start,
                end: span.end,
            },
        };
        for f in fields {
            let v = self.expr(&f.value);
            refs_of(&v, &self.nodes, &mut needs);
            match f.name.name.as_str() {
                "run" => {
                    node.command = Some(match &v {
                        V::List(items) => Command::Argv {
                            args: items.iter().map(argv_segments).collect(),
                        },
                        other => Command::Shell {
                            script: shell_segments(other),
                        },
                    });
                }
                "image" => node.image = Some(v.plain()),
                "workdir" => node.workdir = Some(v.plain()),
                "concurrency" => node.concurrency = Some(v.plain()),
                "environment" => node.environment = Some(v.plain()),
                "description" => node.description = Some(v.plain()),
                "timeout" => {
                    if let V::Duration(ms) = v {
                        if let Some(a) = node.approval.as_mut() {
                            a.timeout_ms = Some(ms);
                        } else {
                            node.timeout_ms = Some(ms);
                        }
                    }
                }
                "backoff" => {
                    if let V::Duration(ms) = v {
                        node.backoff_ms = Some(ms);
                    }
                }
                "retries" => {
                    if let V::Int(i) = v {
                        node.retries = i;
                    }
                }
                "min" => {
                    if let (V::Int(i), Some(a)) = (&v, node.approval.as_mut()) {
                        a.min = *i;
                    }
                }
                "not_author" => {
                    if let (V::Bool(b), Some(a)) = (&v, node.approval.as_mut()) {
                        a.not_author = *b;
                    }
                }
                "groups" => {
                    if let Some(a) = node.approval.as_mut() {
                        a.groups = v.words();
                    }
                }
                "allow_failure" => node.allow_failure = v == V::Bool(true),
                "cache" => node.cache = v == V::Bool(true),
                "labels" => node.labels = v.words(),
                "when" => {
                    node.when = match &v {
                        V::Bool(b) => Some(Cond::Lit(serde_json::Value::Bool(*b))),
                        other if other.is_rt() => Some(to_cond(other)),
                        _ => None,
                    }
                }
                "env" => {
                    if let V::Record(fs) = &v {
                        for (k, x) in fs {
                            node.env.insert(k.clone(), text_segments(x));
                        }
                    }
                }
                "secrets" => {
                    if let V::Record(fs) = &v {
                        for (k, x) in fs {
                            if let V::Secret(s) = x {
                                node.secrets.insert(k.clone(), s.clone());
                            }
                        }
                    }
                }
                "inputs" => {
                    let items = match v {
                        V::List(items) => items,
                        other => vec![other],
                    };
                    for it in items {
                        match it {
                            V::Dir {
                                path,
                                include,
                                exclude,
                                from,
                            } => node.inputs.push(Input {
                                kind: "dir".into(),
                                path,
                                include,
                                exclude,
                                from: from.map(|(i, o)| OutputRef {
                                    node: self.nodes[i].id.clone(),
                                    output: o,
                                }),
                            }),
                            V::File { path, from } => node.inputs.push(Input {
                                kind: "file".into(),
                                path,
                                include: Vec::new(),
                                exclude: Vec::new(),
                                from: from.map(|(i, o)| OutputRef {
                                    node: self.nodes[i].id.clone(),
                                    output: o,
                                }),
                            }),
                            _ => {}
                        }
                    }
                }
                "outputs" => {
                    if let V::Record(fs) = v {
                        node.outputs.reserve_exact(fs.len());
                        for (k, x) in fs {
                            let o = match x {
                                V::File { path, .. } => plan::Output {
                                    name: k,
                                    kind: "file".into(),
                                    path: Some(path),
                                    value_type: None,
                                },
                                V::Dir { path, .. } => plan::Output {
                                    name: k,
                                    kind: "dir".into(),
                                    path: Some(path),
                                    value_type: None,
                                },
                                V::ValueDecl(t) => plan::Output {
                                    name: k,
                                    kind: "value".into(),
                                    path: None,
                                    value_type: Some(t),
                                },
                                _ => continue,
                            };
                            node.outputs.push(o);
                        }
                    }
                }
                "reports" => {
                    let items = match v {
                        V::List(items) => items,
                        other => vec![other],
                    };
                    for it in items {
                        if let V::Report { kind, path, format } = it {
                            node.reports.push(plan::Report { kind, path, format });
                        }
                    }
                }
                _ => {}
            }
        }
        for r in requires {
            let c = self.expr(&r.cond);
            refs_of(&c, &self.nodes, &mut needs);
            let m = self.expr(&r.message);
            let cond = match &c {
                V::Bool(b) => Cond::Lit(serde_json::Value::Bool(*b)),
                other => to_cond(other),
            };
            node.requires.push(plan::Requirement {
                cond,
                message: m.plain(),
                source: SourceRef {
                    file: self.file.clone(),
                    start: r.span.start,
                    end: r.span.end,
                },
            });
        }
        if self.stage_skip {
            node.when = Some(Cond::Lit(serde_json::Value::Bool(false)));
        }
        if let Some(&prev) = self.node_names.get(&node_name) {
            let p = &self.nodes[prev];
            let d = Diagnostic::error(Code::DuplicateStepName, &self.file.clone(), name.span, format!("two {}s are named `{node_name}`", kind.as_str()))
                .with_label("this name is taken")
                .with_secondary(&p.source.file.clone(), Span { start: p.source.start, end: p.source.end }, "by this node")
                .with_note("names identify nodes in the plan, the cache and the run history, so they must be unique in a pipeline")
                .with_help("put what varies into the name, e.g. `step \"test ${target}\"`");
            return self.error(d);
        }
        let base = plan::slug(&node_name);
        let mut id = base.clone();
        let mut k = 2;
        while self.ids.contains(&id) {
            id = format!("{base}-{k}");
            k += 1;
        }
        self.ids.insert(id.clone());
        node.id = id;
        let mut need_ids: Vec<String> = needs
            .into_iter()
            .map(|i| self.nodes[i].id.clone())
            .collect();
        need_ids.sort();
        need_ids.dedup();
        node.needs = need_ids;
        // Most of these lists have one or two entries; a vector's first
        // allocation has room for four.
        node.env.fit();
        node.secrets.fit();
        node.inputs.shrink_to_fit();
        node.outputs.shrink_to_fit();
        node.reports.shrink_to_fit();
        node.requires.shrink_to_fit();
        let idx = self.nodes.len();
        self.node_names.insert(node_name, idx);
        self.nodes.push(node);
        V::Node(idx)
    }
}

fn report_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "tests" => &["total", "passed", "failed", "skipped"],
        "coverage" => &["lines", "branches"],
        _ => &["errors", "warnings", "notes", "total"],
    }
}

fn values_equal(a: &V, b: &V) -> bool {
    match (a, b) {
        (V::Str(_), V::Str(_)) => a.plain() == b.plain(),
        (V::List(x), V::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| values_equal(p, q))
        }
        _ => a == b,
    }
}

fn push_interp(segs: &mut Vec<Seg>, v: &V) {
    match v {
        V::Raw(s) => segs.push(Seg::Raw(s.clone())),
        V::Str(inner) if v.is_rt() => segs.extend(inner.iter().cloned()),
        V::Rt(c) => segs.push(Seg::Rt(c.clone(), true)),
        V::List(items) if items.iter().any(V::is_rt) => {
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    segs.push(Seg::Lit(" ".into()));
                }
                push_interp(segs, it);
            }
        }
        other => {
            if let V::Dir {
                from: Some((i, _)), ..
            }
            | V::File {
                from: Some((i, _)), ..
            } = other
            {
                segs.push(Seg::Dep(*i));
            }
            segs.push(Seg::Words(other.words()));
        }
    }
}

/// Segments of a shell script: interpolated words are quoted.
fn shell_segments(v: &V) -> Vec<Segment> {
    match v {
        V::Str(segs) => segments(segs, true),
        other => segments(&[Seg::Words(other.words())], true),
    }
}

/// Segments of plain text (argv words, env values): nothing is quoted.
fn text_segments(v: &V) -> Vec<Segment> {
    match v {
        V::Str(segs) => segments(segs, false),
        V::Rt(c) => vec![Segment::Value {
            value: c.clone(),
            quote: false,
        }],
        other => vec![Segment::Text(other.plain())],
    }
}

/// The plan's segments of a text: literal runs joined, run-time values
/// apart. In a shell script (`shell`), interpolated words are quoted and a
/// run-time value keeps its quoting; in plain text nothing is quoted.
fn segments(segs: &[Seg], shell: bool) -> Vec<Segment> {
    // Most texts are one piece of literal text.
    if let [Seg::Lit(t) | Seg::Raw(t)] = segs {
        return vec![Segment::Text(t.clone())];
    }
    let mut out: Vec<Segment> = Vec::new();
    let mut text = String::new();
    for s in segs {
        match s {
            Seg::Lit(t) | Seg::Raw(t) => text.push_str(t),
            Seg::Words(w) if shell => text.push_str(
                &w.iter()
                    .map(|x| plan::shell_quote(x))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            Seg::Words(w) => text.push_str(&w.join(" ")),
            Seg::Rt(c, quote) => {
                if !text.is_empty() {
                    out.push(Segment::Text(std::mem::take(&mut text)));
                }
                out.push(Segment::Value {
                    value: c.clone(),
                    quote: shell && *quote,
                });
            }
            Seg::Dep(_) => {}
        }
    }
    if !text.is_empty() || out.is_empty() {
        out.push(Segment::Text(text));
    }
    out.shrink_to_fit();
    out
}

fn argv_segments(v: &V) -> Vec<Segment> {
    text_segments(v)
}

fn to_cond(v: &V) -> Cond {
    match v {
        V::Rt(c) => c.clone(),
        V::Str(_) if v.is_rt() => Cond::Concat(text_segments(v)),
        other => Cond::Lit(other.to_json()),
    }
}

/// Nodes a value refers to.
fn refs_of(v: &V, nodes: &[Node], out: &mut BTreeSet<usize>) {
    match v {
        V::Node(i) => {
            out.insert(*i);
        }
        V::Dir {
            from: Some((i, _)), ..
        }
        | V::File {
            from: Some((i, _)), ..
        } => {
            out.insert(*i);
        }
        V::List(items) => items.iter().for_each(|i| refs_of(i, nodes, out)),
        V::Record(fs) => fs.iter().for_each(|(_, x)| refs_of(x, nodes, out)),
        V::Rt(c) => cond_refs(c, nodes, out),
        V::Str(segs) => {
            for s in segs {
                match s {
                    Seg::Rt(c, _) => cond_refs(c, nodes, out),
                    Seg::Dep(i) => {
                        out.insert(*i);
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

fn cond_refs(c: &Cond, nodes: &[Node], out: &mut BTreeSet<usize>) {
    match c {
        Cond::Output { node, .. } | Cond::Status { node, .. } | Cond::Report { node, .. } => {
            if let Some(i) = nodes.iter().position(|n| &n.id == node) {
                out.insert(i);
            }
        }
        Cond::Not(x) | Cond::Neg(x) => cond_refs(x, nodes, out),
        Cond::Binary { left, right, .. } => {
            cond_refs(left, nodes, out);
            cond_refs(right, nodes, out);
        }
        Cond::Concat(segs) => {
            for s in segs {
                if let Segment::Value { value, .. } = s {
                    cond_refs(value, nodes, out);
                }
            }
        }
        Cond::Lit(_) => {}
    }
}

fn collect_barriers(v: &V, nodes: &[Node], out: &mut Vec<usize>) {
    match v {
        V::Node(i) if nodes[*i].kind != "step" => out.push(*i),
        V::List(items) => items.iter().for_each(|x| collect_barriers(x, nodes, out)),
        _ => {}
    }
}

/// Parses a `--param` value as the declared type.
pub fn parse_param_value(
    program: &Program,
    file: &str,
    ty: &TypeExpr,
    text: &str,
) -> Result<V, String> {
    match ty {
        TypeExpr::Optional(inner, _) => {
            if text.is_empty() || text == "none" {
                Ok(V::None)
            } else {
                parse_param_value(program, file, inner, text)
            }
        }
        TypeExpr::List(inner, _) => {
            if text.trim().is_empty() {
                return Ok(V::List(Vec::new()));
            }
            text.split(',')
                .map(|p| parse_param_value(program, file, inner, p.trim()))
                .collect::<Result<Vec<_>, _>>()
                .map(V::List)
        }
        TypeExpr::Named(path, _) if path.len() == 1 => {
            let n = path[0].name.as_str();
            let lit = || -> Option<crate::syntax::lexer::Tok> {
                let lexed = crate::syntax::lexer::lex("param", text.trim());
                (lexed.diagnostics.is_empty() && lexed.tokens.len() == 1).then(|| lexed.tokens[0].0)
            };
            use crate::syntax::lexer::Tok;
            match n {
                "str" => Ok(V::text(text)),
                "int" => text
                    .trim()
                    .parse::<i64>()
                    .map(V::Int)
                    .map_err(|_| "expected a whole number, such as `3`".to_owned()),
                "bool" => match text.trim() {
                    "true" => Ok(V::Bool(true)),
                    "false" => Ok(V::Bool(false)),
                    _ => Err("expected `true` or `false`".to_owned()),
                },
                "duration" => match lit() {
                    Some(Tok::Duration(d)) => Ok(V::Duration(d.get())),
                    _ => Err("expected a duration, such as `90s` or `1h30m`".to_owned()),
                },
                "size" => match lit() {
                    Some(Tok::Size(d)) => Ok(V::Size(d.get())),
                    _ => Err("expected a size, such as `512MiB`".to_owned()),
                },
                "percent" => match lit() {
                    Some(Tok::Percent(d)) => Ok(V::Percent(d.signed())),
                    _ => Err("expected a percentage, such as `80%`".to_owned()),
                },
                other => {
                    let m = &program.modules[file];
                    let en =
                        m.items
                            .get(other)
                            .and_then(|&i| match &m.parsed.module.items[i].kind {
                                ItemKind::Enum(e) => Some(e),
                                _ => None,
                            });
                    match en {
                        Some(e) => {
                            let t = text.trim();
                            let t = t.strip_prefix(&format!("{other}.")).unwrap_or(t);
                            if e.variants.iter().any(|v| v.name.name == t) {
                                Ok(V::Enum(other.to_owned(), t.to_owned()))
                            } else {
                                let names: Vec<&str> =
                                    e.variants.iter().map(|v| v.name.name.as_str()).collect();
                                let hint = crate::diagnostics::suggest(t, names.iter().copied())
                                    .map(|s| format!("; did you mean `{s}`?"))
                                    .unwrap_or_default();
                                Err(format!(
                                    "expected one of {}{hint}",
                                    crate::diagnostics::code_list(names)
                                ))
                            }
                        }
                        None => Err(format!(
                            "params of type `{other}` cannot be given on the command line"
                        )),
                    }
                }
            }
        }
        _ => Err("this param's type cannot be given on the command line".to_owned()),
    }
}

/// Checks every `policy` of the program against the plan. A violation is
/// reported at the offending node, with the policy's requirement as a
/// secondary label.
pub fn check_policies(program: &Program, plan: &Plan, diags: &mut Vec<Diagnostic>) {
    let has_policy = program.modules.values().any(|m| {
        m.parsed
            .module
            .items
            .iter()
            .any(|i| matches!(i.kind, ItemKind::Policy(_)))
    });
    if !has_policy {
        return;
    }
    // Transitive dependencies, in node order (needs always point backwards).
    let mut deps: Vec<BTreeSet<usize>> = Vec::with_capacity(plan.nodes.len());
    for needs in plan.need_indices() {
        let mut set = BTreeSet::new();
        for j in needs {
            set.insert(j);
            if j < deps.len() {
                set.extend(deps[j].iter().copied());
            }
        }
        deps.push(set);
    }
    for (path, m) in &program.modules {
        for item in &m.parsed.module.items {
            let ItemKind::Policy(p) = &item.kind else {
                continue;
            };
            let mut ev = Eval::new(program, path, plan.context.clone());
            for (i, n) in plan.nodes.iter().enumerate() {
                let texts = |v: &[String]| V::List(v.iter().map(|s| V::text(s.clone())).collect());
                let dep_names: Vec<String> = deps[i]
                    .iter()
                    .map(|&j| plan.nodes[j].name.clone())
                    .collect();
                let view = V::Record(vec![
                    ("name".into(), V::text(n.name.clone())),
                    ("kind".into(), V::text(n.kind.clone())),
                    ("pipeline".into(), V::text(plan.pipeline.clone())),
                    ("stage".into(), V::text(n.stage.clone().unwrap_or_default())),
                    ("image".into(), V::text(n.image.clone().unwrap_or_default())),
                    (
                        "environment".into(),
                        V::text(n.environment.clone().unwrap_or_default()),
                    ),
                    ("labels".into(), texts(&n.labels)),
                    (
                        "secrets".into(),
                        texts(&n.secrets.values().cloned().collect::<Vec<_>>()),
                    ),
                    ("depends_on".into(), texts(&dep_names)),
                    (
                        "approved".into(),
                        V::Bool(deps[i].iter().any(|&j| plan.nodes[j].kind == "approval")),
                    ),
                    (
                        "gated".into(),
                        V::Bool(deps[i].iter().any(|&j| plan.nodes[j].kind == "gate")),
                    ),
                ]);
                ev.scopes = vec![HashMap::from_iter([(p.binder.name.clone(), view)])];
                if let Some(f) = &p.filter
                    && ev.expr(f) != V::Bool(true)
                {
                    continue;
                }
                for r in &p.requires {
                    if ev.expr(&r.cond) == V::Bool(false) {
                        let msg = ev.expr(&r.message).plain();
                        let span = Span {
                            start: n.source.start,
                            end: n.source.end,
                        };
                        diags.push(
                            Diagnostic::error(
                                Code::PolicyViolation,
                                &n.source.file,
                                span,
                                format!(
                                    "{} `{}` breaks policy `{}`: {msg}",
                                    n.kind, n.name, p.name.name
                                ),
                            )
                            .with_label("this node breaks the policy")
                            .with_secondary(
                                path,
                                r.span,
                                "required here",
                            ),
                        );
                    }
                }
            }
            diags.append(&mut ev.diags);
        }
    }
}
