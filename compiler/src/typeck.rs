//! The static type checker.
//!
//! It walks every item of every module once. Types of module-level `let`s and
//! inferred function return types are computed on demand and memoised, with
//! an in-progress marker that turns self-reference into a diagnostic rather
//! than infinite recursion.
//!
//! Besides ordinary types it tracks *phase*: a [`Typed`] value is plan-time or
//! run-time. Run-time values (a step's `ok`, its value outputs, report fields)
//! may flow into `run`, `env`, `when:` and gate requirements; using one where
//! the shape of the plan depends on it (`if`, `for`, a step name, `timeout`)
//! is E0211.
//!
//! An expression whose type is [`Ty::Error`] has been reported already; every
//! rule accepts it silently, so one mistake yields one diagnostic.

use crate::diagnostics::{Code, Diagnostic, Span, suggest};
use crate::resolve::{Import, ModuleInfo, Program};
use crate::syntax::shift::Shift;
use crate::syntax::*;
use crate::types::*;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

pub mod memo;

/// Step fields, their types and whether they accept run-time values.
pub const STEP_FIELDS: &[&str] = &[
    "run",
    "image",
    "env",
    "secrets",
    "inputs",
    "outputs",
    "reports",
    "after",
    "when",
    "timeout",
    "retries",
    "backoff",
    "allow_failure",
    "cache",
    "workdir",
    "labels",
    "concurrency",
    "environment",
    "description",
];
pub const GATE_FIELDS: &[&str] = &["after", "when", "labels", "description"];
pub const APPROVAL_FIELDS: &[&str] = &[
    "groups",
    "min",
    "not_author",
    "timeout",
    "after",
    "when",
    "labels",
    "environment",
    "description",
];

pub struct BuiltinFn {
    pub name: &'static str,
    pub params: &'static [(&'static str, &'static str)],
    pub doc: &'static str,
}

/// Built-in functions. Parameter types are written as Weir types; a `=`
/// in the name marks a parameter with a default.
pub const BUILTINS: &[BuiltinFn] = &[
    BuiltinFn {
        name: "secret",
        params: &[("name", "str")],
        doc: "A secret from the run's secret providers, by name. Reaches a step only through `secrets:`.",
    },
    BuiltinFn {
        name: "workspace",
        params: &[("include=", "list[str]"), ("exclude=", "list[str]")],
        doc: "The project directory as a step input, filtered by globs.",
    },
    BuiltinFn {
        name: "dir",
        params: &[("path", "str"), ("exclude=", "list[str]")],
        doc: "A directory: an input when given to `inputs:`, an output in `outputs:`.",
    },
    BuiltinFn {
        name: "file",
        params: &[("path", "str")],
        doc: "A file: an input when given to `inputs:`, an output in `outputs:`.",
    },
    BuiltinFn {
        name: "value",
        params: &[("type", "type")],
        doc: "A value output of the given type, read from `$WEIR_OUTPUTS/<name>`.",
    },
    BuiltinFn {
        name: "junit",
        params: &[("path", "str")],
        doc: "A JUnit XML report; the step then has `tests: TestReport`.",
    },
    BuiltinFn {
        name: "coverage",
        params: &[("path", "str"), ("format=", "str")],
        doc: "A coverage report (`lcov` or `cobertura`); the step then has `coverage: Coverage`.",
    },
    BuiltinFn {
        name: "sarif",
        params: &[("path", "str")],
        doc: "A SARIF findings report; the step then has `findings: Findings`.",
    },
    BuiltinFn {
        name: "raw",
        params: &[("text", "str")],
        doc: "Splices text into a command unquoted. An explicit escape hatch: review every use.",
    },
    BuiltinFn {
        name: "join",
        params: &[("items", "list[str]"), ("sep=", "str")],
        doc: "Joins strings with a separator (default a space).",
    },
    BuiltinFn {
        name: "len",
        params: &[("value", "any")],
        doc: "The length of a list or string.",
    },
    BuiltinFn {
        name: "str",
        params: &[("value", "any")],
        doc: "The text form of a value.",
    },
    BuiltinFn {
        name: "upper",
        params: &[("text", "str")],
        doc: "Upper-cases ASCII letters.",
    },
    BuiltinFn {
        name: "lower",
        params: &[("text", "str")],
        doc: "Lower-cases ASCII letters.",
    },
    BuiltinFn {
        name: "contains",
        params: &[("haystack", "any"), ("needle", "any")],
        doc: "Whether a list holds an element, or a string a substring.",
    },
];

pub fn builtin(name: &str) -> Option<&'static BuiltinFn> {
    BUILTINS.iter().find(|b| b.name == name)
}

#[derive(Clone)]
struct Local {
    ty: Typed,
    def: Span,
}

/// A name as the editor sees it: where it is used or defined, its type, and
/// where it was defined. The IDE functions (hover, go to definition,
/// references, rename) are answered from these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub file: String,
    pub span: Span,
    pub name: String,
    pub typ: Ty,
    /// The defining occurrence: file and span of the name.
    pub def: Option<(String, Span)>,
    /// `local`, `param`, `let`, `fn`, `enum`, `type`, `module`, `builtin`.
    pub kind: &'static str,
}

impl Reference {
    /// The type as hover shows it (written out only when asked: a large
    /// file has tens of thousands of references).
    pub fn ty(&self) -> String {
        self.typ.to_string()
    }
}

pub struct Checker<'a> {
    program: &'a Program,
    diags: &'a mut Vec<Diagnostic>,
    file: String,
    scopes: Vec<HashMap<String, Local>>,
    let_types: HashMap<(String, String), Option<Typed>>,
    fn_rets: HashMap<(String, String), Option<Typed>>,
    type_decls: HashMap<(String, String), Option<Ty>>,
    /// Declared types of params, by module and name: a param is used
    /// far more often than declared.
    param_types: HashMap<(&'a str, &'a str), Ty>,
    depth: usize,
    refs: Vec<Reference>,
    /// Whether to record [`Reference`]s: editors need them, a build does not.
    collect_refs: bool,
    /// Kept statement checks to replay, and the texts they are keyed by.
    reuse: Option<Reuse<'a>>,
    /// The statement being checked for [`memo`], if any.
    recording: Option<memo::Recording>,
    /// The pipelines whose statement checks were kept by this check.
    memo_keys: Vec<(String, String)>,
}

/// An editor's kept statement checks, and the project's texts (module
/// name to text) the statements are found in.
#[derive(Clone, Copy)]
pub struct Reuse<'a> {
    pub memo: &'a memo::CheckMemo,
    pub texts: &'a std::collections::BTreeMap<&'a str, &'a str>,
}

const MAX_CHECK_DEPTH: usize = 2000;

/// A step, gate or approval with at most this many fields finds a repeated
/// field by looking through the earlier ones; one with more uses a map.
const FIELDS_SCANNED: usize = 32;

/// Type-checks every module of the program. With `references`, also
/// returns every use and definition of a name, for the editor.
pub fn check_program(
    program: &Program,
    diags: &mut Vec<Diagnostic>,
    references: bool,
) -> Vec<Reference> {
    check(program, diags, references, None)
}

/// [`check_program`] without references, replaying the kept checks of
/// unchanged statements in large pipelines (see [`memo`]). The diagnostics
/// are the same as [`check_program`]'s.
pub fn check_program_reusing(program: &Program, diags: &mut Vec<Diagnostic>, reuse: Reuse<'_>) {
    check(program, diags, false, Some(reuse));
}

fn check<'a>(
    program: &'a Program,
    diags: &'a mut Vec<Diagnostic>,
    references: bool,
    reuse: Option<Reuse<'a>>,
) -> Vec<Reference> {
    let mut c = Checker {
        program,
        diags,
        file: String::new(),
        scopes: Vec::new(),
        let_types: HashMap::default(),
        fn_rets: HashMap::default(),
        type_decls: HashMap::default(),
        param_types: HashMap::default(),
        depth: 0,
        refs: Vec::new(),
        collect_refs: references,
        reuse,
        recording: None,
        memo_keys: Vec::new(),
    };
    // Pipelines last: every module-level `let`, `fn` and type is checked
    // (and its type memoised, with its diagnostics) before any statement
    // uses it, so where it is first used does not change what is reported.
    for pipelines in [false, true] {
        for (path, m) in &program.modules {
            c.file.clone_from(path);
            for item in &m.parsed.module.items {
                if matches!(item.kind, ItemKind::Pipeline(_)) == pipelines {
                    c.check_item(m, item);
                }
            }
        }
    }
    // Kept checks of pipelines this check did not see (renamed, removed,
    // shrunk) are dropped.
    if let Some(reuse) = c.reuse {
        reuse.memo.retain(&c.memo_keys);
    }
    // Files are checked one after the other, in order, so each file's
    // references are normally one run: sort each run by position rather
    // than comparing file names in every comparison.
    if !c.refs.is_sorted_by(|a, b| a.file <= b.file) {
        c.refs.sort_by(|a, b| a.file.cmp(&b.file));
    }
    // References are large: sorting their keys and then moving each one
    // into place once is several times cheaper than moving them around
    // while sorting.
    for run in c.refs.chunk_by_mut(|a, b| a.file == b.file) {
        run.sort_by_cached_key(|r| (r.span.start, r.span.end));
    }
    c.refs.dedup_by(|a, b| a.file == b.file && a.span == b.span);
    c.refs
}

fn named(fields: &[(String, Ty)], name: &str) -> Option<Ty> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t.clone())
}

impl<'a> Checker<'a> {
    fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }
    fn error(
        &mut self,
        code: Code,
        span: Span,
        msg: impl Into<String>,
        label: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::error(code, &self.file, span, msg).with_label(label)
    }
    fn module(&self) -> &'a ModuleInfo {
        &self.program.modules[&self.file]
    }

    fn with_module<T>(&mut self, path: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        let saved_file = std::mem::replace(&mut self.file, path.to_owned());
        let saved_scopes = std::mem::take(&mut self.scopes);
        let saved_recording = self.recording.take();
        let r = f(self);
        self.file = saved_file;
        self.scopes = saved_scopes;
        self.recording = saved_recording;
        r
    }

    fn check_item(&mut self, m: &'a ModuleInfo, item: &'a Item) {
        match &item.kind {
            ItemKind::Param(p) => {
                let ty = self.resolve_type(&p.ty);
                if let Some(d) = &p.default {
                    let t = self.expr(d, Some(&ty));
                    self.expect_fits(&t, &ty, d.span, &"the default of this param");
                    self.expect_plan(&t, d.span, &"a param default");
                }
                if matches!(
                    ty,
                    Ty::Secret | Ty::Step(_) | Ty::Gate | Ty::Approval | Ty::Dir | Ty::File
                ) {
                    let d = self.error(Code::TypeMismatch, p.ty.span(), format!("a param cannot have type `{ty}`"), "not a type a command line can give").with_help("params take int, bool, str, duration, size, percent, an enum, or a list of those; pass secrets with `secret(\"NAME\")`");
                    self.err(d);
                }
            }
            ItemKind::Let(l) => {
                let _ = self.module_let(&m.path, &l.name.name);
            }
            ItemKind::Fn(f) => {
                let _ = self.fn_return(&m.path, &f.name.name);
                for p in &f.params {
                    let ty = self.resolve_type(&p.ty);
                    if let Some(d) = &p.default {
                        let t = self.expr(d, Some(&ty));
                        self.expect_fits(&t, &ty, d.span, &"this default");
                    }
                }
            }
            ItemKind::Type(t) => {
                let _ = self.type_decl(&m.path, &t.name.name, t.name.span);
                for f in &t.fields {
                    if let Some(d) = &f.default {
                        let ty = self.resolve_type(&f.ty);
                        let t = self.expr(d, Some(&ty));
                        self.expect_fits(&t, &ty, d.span, &"this default");
                    }
                }
            }
            ItemKind::Enum(e) => {
                let mut seen: HashMap<&str, Span> = HashMap::default();
                for v in &e.variants {
                    if let Some(prev) = seen.insert(&v.name.name, v.name.span) {
                        let file = self.file.clone();
                        let d = self
                            .error(
                                Code::DuplicateDefinition,
                                v.name.span,
                                format!("variant `{}` is declared twice", v.name.name),
                                "declared again here",
                            )
                            .with_secondary(&file, prev, "first declared here");
                        self.err(d);
                    }
                }
            }
            ItemKind::Pipeline(p) => {
                for t in &p.triggers {
                    self.check_trigger(t);
                }
                self.scopes.push(HashMap::default());
                match self.reuse {
                    Some(reuse) if p.body.stmts.len() >= memo::MIN_STATEMENTS => {
                        self.body_reusing(p, reuse);
                    }
                    _ => {
                        self.block_stmts(&p.body, true);
                    }
                }
                self.scopes.pop();
            }
            ItemKind::Policy(p) => {
                self.scopes.push(HashMap::default());
                self.bind(&p.binder.name, Typed::plan(Ty::step_view()), p.binder.span);
                if let Some(f) = &p.filter {
                    let t = self.expr(f, Some(&Ty::Bool));
                    self.expect_bool(&t, f.span);
                }
                for r in &p.requires {
                    self.check_require(r);
                }
                self.scopes.pop();
            }
            ItemKind::Use(_) | ItemKind::Error => {}
        }
    }

    fn check_require(&mut self, r: &Require) {
        let t = self.expr(&r.cond, Some(&Ty::Bool));
        self.expect_bool(&t, r.cond.span);
        let m = self.expr(&r.message, Some(&Ty::Str));
        self.expect_fits(&m, &Ty::Str, r.message.span, &"the message");
    }

    fn check_trigger(&mut self, t: &Trigger) {
        let params: &[(&str, Ty)] = match t.kind.name.as_str() {
            "push" => &[
                ("branches", Ty::List(Box::new(Ty::Str))),
                ("paths", Ty::List(Box::new(Ty::Str))),
                ("tags", Ty::List(Box::new(Ty::Str))),
            ],
            "pull_request" => &[
                ("branches", Ty::List(Box::new(Ty::Str))),
                ("paths", Ty::List(Box::new(Ty::Str))),
                ("forks", Ty::Bool),
            ],
            "tag" => &[("pattern", Ty::Str)],
            "schedule" => &[("cron", Ty::Str)],
            "manual" => &[],
            other => {
                let mut d = self
                    .error(
                        Code::UnknownTrigger,
                        t.kind.span,
                        format!("unknown trigger `{other}`"),
                        "not a trigger kind",
                    )
                    .with_note("triggers are push, pull_request, tag, schedule and manual");
                if let Some(s) =
                    suggest(other, ["push", "pull_request", "tag", "schedule", "manual"])
                {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                self.err(d);
                return;
            }
        };
        let mut given: HashSet<&str> = HashSet::default();
        for (i, a) in t.args.iter().enumerate() {
            let (pname, pty) = match &a.name {
                Some(n) => match params.iter().find(|(p, _)| *p == n.name) {
                    Some((p, ty)) => (*p, ty.clone()),
                    None => {
                        let mut d = self.error(
                            Code::UnknownArgument,
                            n.span,
                            format!("trigger `{}` takes no argument `{}`", t.kind.name, n.name),
                            "unknown argument",
                        );
                        if let Some(s) = suggest(&n.name, params.iter().map(|(p, _)| *p)) {
                            d = d.with_help(format!("did you mean `{s}`?"));
                        }
                        self.err(d);
                        continue;
                    }
                },
                None => match params.get(i) {
                    Some((p, ty)) => (*p, ty.clone()),
                    None => {
                        let d = self.error(
                            Code::TooManyArguments,
                            a.value.span,
                            format!(
                                "trigger `{}` takes {} argument(s)",
                                t.kind.name,
                                params.len()
                            ),
                            "unexpected argument",
                        );
                        self.err(d);
                        continue;
                    }
                },
            };
            if !given.insert(pname) {
                let d = self.error(
                    Code::DuplicateArgument,
                    a.value.span,
                    format!("`{pname}` is given twice"),
                    "given again here",
                );
                self.err(d);
            }
            let ty = self.expr(&a.value, Some(&pty));
            self.expect_fits(&ty, &pty, a.value.span, &format_args!("`{pname}`"));
            self.expect_plan(&ty, a.value.span, &"a trigger");
            // Validate literal patterns.
            match pname {
                "cron" => {
                    if let Some(s) = literal_str(&a.value)
                        && let Err(why) = crate::validate::cron(&s)
                    {
                        let d = self.error(Code::InvalidCron, a.value.span, format!("invalid cron expression `{s}`"), why).with_help("a schedule has five fields: minute hour day-of-month month day-of-week, e.g. \"0 3 * * 1-5\"");
                        self.err(d);
                    }
                }
                "pattern" | "branches" | "paths" | "tags" => {
                    let pats: Vec<(String, Span)> = match &a.value.kind {
                        ExprKind::List(items) => items
                            .iter()
                            .filter_map(|e| literal_str(e).map(|s| (s, e.span)))
                            .collect(),
                        _ => literal_str(&a.value)
                            .map(|s| vec![(s, a.value.span)])
                            .unwrap_or_default(),
                    };
                    for (s, span) in pats {
                        if let Err(why) = crate::validate::glob(&s) {
                            let d = self.error(Code::InvalidGlob, span, format!("invalid glob `{s}`"), why).with_help("globs use `*`, `**`, `?`, `[abc]` and `{a,b}`; brackets and braces must be closed");
                            self.err(d);
                        }
                    }
                }
                _ => {}
            }
        }
        if t.kind.name == "schedule" && t.args.is_empty() {
            let d = self
                .error(
                    Code::MissingArgument,
                    t.span,
                    "`schedule` needs a cron expression",
                    "missing `cron`",
                )
                .with_help("write `on schedule(\"0 3 * * *\")`");
            self.err(d);
        }
        if t.kind.name == "tag" && t.args.is_empty() {
            let d = self
                .error(
                    Code::MissingArgument,
                    t.span,
                    "`tag` needs a pattern",
                    "missing `pattern`",
                )
                .with_help("write `on tag(\"v*\")`");
            self.err(d);
        }
    }

    fn bind(&mut self, name: &str, ty: Typed, def: Span) {
        if self.collect_refs {
            self.refs.push(Reference {
                file: self.file.clone(),
                span: def,
                name: name.to_owned(),
                typ: ty.ty.clone(),
                def: Some((self.file.clone(), def)),
                kind: "local",
            });
        }
        if let Some(r) = &mut self.recording
            && self.scopes.len() == r.base
        {
            r.stmt.binds.push((name.into(), ty.clone(), def));
        }
        if let Some(s) = self.scopes.last_mut() {
            s.insert(name.to_owned(), Local { ty, def });
        }
    }

    fn record_ref(
        &mut self,
        name: &str,
        span: Span,
        ty: &Typed,
        def: Option<(String, Span)>,
        kind: &'static str,
    ) {
        self.refs.push(Reference {
            file: self.file.clone(),
            span,
            name: name.to_owned(),
            typ: ty.ty.clone(),
            def,
            kind,
        });
    }

    // ---- types ----

    pub fn resolve_type(&mut self, t: &TypeExpr) -> Ty {
        match t {
            TypeExpr::Error(_) => Ty::Error,
            TypeExpr::List(inner, _) => Ty::List(Box::new(self.resolve_type(inner))),
            TypeExpr::Optional(inner, _) => Ty::Optional(Box::new(self.resolve_type(inner))),
            TypeExpr::Record(fields, _) => {
                let fs = fields
                    .iter()
                    .map(|f| (f.name.name.clone(), self.resolve_type(&f.ty)))
                    .collect();
                Ty::Record {
                    name: None,
                    fields: fs,
                }
            }
            TypeExpr::Named(path, span) => {
                if path.len() == 1 {
                    let n = path[0].name.as_str();
                    let prim = match n {
                        "int" => Some(Ty::Int),
                        "bool" => Some(Ty::Bool),
                        "str" => Some(Ty::Str),
                        "duration" => Some(Ty::Duration),
                        "size" => Some(Ty::Size),
                        "percent" => Some(Ty::Percent),
                        "Secret" => Some(Ty::Secret),
                        "Dir" => Some(Ty::Dir),
                        "File" => Some(Ty::File),
                        "Step" => Some(Ty::Step(StepTy::default())),
                        "Gate" => Some(Ty::Gate),
                        "Approval" => Some(Ty::Approval),
                        "TestReport" => Some(Ty::test_report()),
                        "Coverage" => Some(Ty::coverage()),
                        "Findings" => Some(Ty::findings()),
                        "Report" => Some(Ty::Reports(0)),
                        "list" => {
                            let d = self
                                .error(
                                    Code::UnknownType,
                                    *span,
                                    "`list` needs an element type",
                                    "write `list[T]`",
                                )
                                .with_help("for example `list[str]`");
                            self.err(d);
                            Some(Ty::Error)
                        }
                        _ => None,
                    };
                    if let Some(t) = prim {
                        return t;
                    }
                    if let Some(t) = self.named_type(&self.file.clone(), n, *span) {
                        return t;
                    }
                    let mut candidates: Vec<String> = [
                        "int",
                        "bool",
                        "str",
                        "duration",
                        "size",
                        "percent",
                        "Secret",
                        "Dir",
                        "File",
                        "Step",
                        "Gate",
                        "Approval",
                        "TestReport",
                        "Coverage",
                        "Findings",
                    ]
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect();
                    for it in &self.module().parsed.module.items {
                        if let ItemKind::Enum(EnumDecl { name, .. })
                        | ItemKind::Type(TypeDecl { name, .. }) = &it.kind
                        {
                            candidates.push(name.name.clone());
                        }
                    }
                    let mut d = self.error(
                        Code::UnknownType,
                        *span,
                        format!("unknown type `{n}`"),
                        "no type of this name",
                    );
                    if let Some(s) = suggest(n, candidates.iter().map(String::as_str)) {
                        d = d.with_help(format!("did you mean `{s}`?"));
                    }
                    self.err(d);
                    Ty::Error
                } else if path.len() == 2 {
                    let m = &self.module().imports;
                    match m.get(&path[0].name) {
                        Some((Import::Module(target), _)) => {
                            let target = target.clone();
                            match self.named_type(&target, &path[1].name, *span) {
                                Some(t) => t,
                                None => {
                                    let d = self.error(
                                        Code::UnknownMember,
                                        path[1].span,
                                        format!(
                                            "module `{}` has no type `{}`",
                                            path[0].name, path[1].name
                                        ),
                                        "no such type",
                                    );
                                    self.err(d);
                                    Ty::Error
                                }
                            }
                        }
                        Some((Import::Broken, _)) => Ty::Error,
                        None => {
                            let d = self
                                .error(
                                    Code::UnknownName,
                                    path[0].span,
                                    format!("no module named `{}`", path[0].name),
                                    "not imported",
                                )
                                .with_help(format!("import it: `use \"{}.weir\"`", path[0].name));
                            self.err(d);
                            Ty::Error
                        }
                    }
                } else {
                    let d = self.error(
                        Code::UnknownType,
                        *span,
                        "a type path has at most two parts",
                        "write `module.Type`",
                    );
                    self.err(d);
                    Ty::Error
                }
            }
        }
    }

    fn named_type(&mut self, module: &str, name: &str, span: Span) -> Option<Ty> {
        let m = self.program.modules.get(module)?;
        let idx = *m.items.get(name)?;
        match &m.parsed.module.items[idx].kind {
            ItemKind::Enum(e) => Some(Ty::Enum(e.name.name.clone())),
            ItemKind::Type(_) => Some(self.type_decl(module, name, span)),
            _ => None,
        }
    }

    fn type_decl(&mut self, module: &str, name: &str, span: Span) -> Ty {
        let key = (module.to_owned(), name.to_owned());
        match self.type_decls.get(&key) {
            Some(Some(t)) => return t.clone(),
            Some(None) => {
                let d = self
                    .error(
                        Code::UnknownType,
                        span,
                        format!("record type `{name}` contains itself"),
                        "recursive type",
                    )
                    .with_note(
                        "a record cannot contain itself: its values would be infinitely large",
                    )
                    .with_help("make the field a list (`list[T]`), which may be empty");
                self.err(d);
                return Ty::Error;
            }
            None => {}
        }
        self.type_decls.insert(key.clone(), None);
        let m = &self.program.modules[module];
        let ItemKind::Type(t) = &m.parsed.module.items[m.items[name]].kind else {
            return Ty::Error;
        };
        let ty = self.with_module(module, |c| {
            if t.fields.len() == 1 && t.fields[0].name.name.is_empty() {
                c.resolve_type(&t.fields[0].ty)
            } else {
                Ty::Record {
                    name: Some(name.to_owned()),
                    fields: t
                        .fields
                        .iter()
                        .map(|f| (f.name.name.clone(), c.resolve_type(&f.ty)))
                        .collect(),
                }
            }
        });
        self.type_decls.insert(key, Some(ty.clone()));
        ty
    }

    fn record_defaults(&self, name: &str) -> Vec<String> {
        for m in self.program.modules.values() {
            if let Some(&i) = m.items.get(name)
                && let ItemKind::Type(t) = &m.parsed.module.items[i].kind
            {
                return t
                    .fields
                    .iter()
                    .filter(|f| f.default.is_some())
                    .map(|f| f.name.name.clone())
                    .collect();
            }
        }
        Vec::new()
    }

    // ---- lookups ----

    fn module_let(&mut self, module: &str, name: &str) -> Typed {
        let key = (module.to_owned(), name.to_owned());
        match self.let_types.get(&key) {
            Some(Some(t)) => return t.clone(),
            Some(None) => {
                let m = &self.program.modules[module];
                let span = m.parsed.module.items[m.items[name]]
                    .kind
                    .name()
                    .map_or_else(Span::default, |n| n.span);
                let d = Diagnostic::error(
                    Code::UnknownName,
                    module,
                    span,
                    format!("`{name}` is defined in terms of itself"),
                )
                .with_label("this definition refers back to itself")
                .with_help("a `let` cannot use its own value; compute it from other values");
                self.err(d);
                return Typed::error();
            }
            None => {}
        }
        self.let_types.insert(key.clone(), None);
        let m = &self.program.modules[module];
        let ItemKind::Let(l) = &m.parsed.module.items[m.items[name]].kind else {
            return Typed::error();
        };
        let t = self.with_module(module, |c| c.let_decl(l));
        self.let_types.insert(key, Some(t.clone()));
        t
    }

    fn let_decl(&mut self, l: &LetDecl) -> Typed {
        let expected = l.ty.as_ref().map(|t| self.resolve_type(t));
        let t = self.expr(&l.value, expected.as_ref());
        if let Some(e) = &expected {
            self.expect_fits(&t, e, l.value.span, &format_args!("`{}`", l.name.name));
            return Typed {
                ty: if t.ty.is_error() {
                    e.clone()
                } else {
                    Ty::unify(&t.ty, e).unwrap_or(e.clone())
                },
                rt: t.rt,
            };
        }
        t
    }

    fn fn_decl(&self, module: &str, name: &str) -> Option<&'a FnDecl> {
        let m = self.program.modules.get(module)?;
        match &m.parsed.module.items[*m.items.get(name)?].kind {
            ItemKind::Fn(f) => Some(f),
            _ => None,
        }
    }

    /// The type a call of the function returns: the inferred body type when
    /// it fits the annotation (it is more precise: a step's outputs), else the annotation.
    fn fn_return(&mut self, module: &str, name: &str) -> Typed {
        let key = (module.to_owned(), name.to_owned());
        let Some(f) = self.fn_decl(module, name) else {
            return Typed::error();
        };
        match self.fn_rets.get(&key) {
            Some(Some(t)) => return t.clone(),
            Some(None) => {
                // Recursive call while inferring: use the annotation if any.
                if let Some(r) = &f.ret {
                    let ty = self.with_module(module, |c| c.resolve_type(r));
                    return Typed::plan(ty);
                }
                let d = Diagnostic::error(
                    Code::RecursiveFunctionNeedsType,
                    module,
                    f.name.span,
                    format!("recursive function `{name}` needs a return type"),
                )
                .with_label("this function calls itself")
                .with_help(format!("annotate it: `fn {name}(...) -> T {{ ... }}`"));
                self.err(d);
                return Typed::error();
            }
            None => {}
        }
        self.fn_rets.insert(key.clone(), None);
        let t = self.with_module(module, |c| {
            c.scopes.push(HashMap::default());
            for p in &f.params {
                let ty = c.resolve_type(&p.ty);
                c.bind(&p.name.name, Typed::plan(ty), p.name.span);
            }
            let body = c.block_stmts(&f.body, false);
            c.scopes.pop();
            match &f.ret {
                Some(r) => {
                    let declared = c.resolve_type(r);
                    let span = f.body.stmts.last().map_or(f.body.span, Stmt::span);
                    c.expect_fits(
                        &body,
                        &declared,
                        span,
                        &format_args!("the result of `{name}`"),
                    );
                    if body.ty.fits(&declared) && !body.ty.is_error() {
                        Typed {
                            ty: body.ty,
                            rt: body.rt,
                        }
                    } else {
                        Typed::plan(declared)
                    }
                }
                None => body,
            }
        });
        self.fn_rets.insert(key, Some(t.clone()));
        t
    }

    fn visible_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.scopes.iter().flat_map(|s| s.keys().cloned()).collect();
        v.extend(self.module().items.keys().cloned());
        v.extend(BUILTINS.iter().map(|b| b.name.to_owned()));
        v.push("git".into());
        v.push("event".into());
        v
    }

    fn name(&mut self, n: &str, span: Span) -> Typed {
        let t = self.name_inner(n, span);
        if !self.collect_refs {
            return t;
        }
        let found = self
            .scopes
            .iter()
            .rev()
            .find_map(|s| s.get(n))
            .map(|l| l.def);
        let (def, kind) = match found {
            Some(d) => (Some((self.file.clone(), d)), "local"),
            None => {
                let m = self.module();
                match m.items.get(n).map(|&i| &m.parsed.module.items[i]) {
                    Some(item) => {
                        let kind = match &item.kind {
                            ItemKind::Param(_) => "param",
                            ItemKind::Let(_) => "let",
                            ItemKind::Fn(_) => "fn",
                            ItemKind::Enum(_) => "enum",
                            ItemKind::Use(_) => "module",
                            _ => "item",
                        };
                        (item.kind.name().map(|i| (m.path.clone(), i.span)), kind)
                    }
                    None => (None, "builtin"),
                }
            }
        };
        self.record_ref(n, span, &t, def, kind);
        t
    }

    fn name_inner(&mut self, n: &str, span: Span) -> Typed {
        for (i, s) in self.scopes.iter().enumerate().rev() {
            if let Some(l) = s.get(n) {
                // A name the statement bound itself (a stage's step used
                // later in the stage) is not a read from outside it.
                if let Some(r) = &mut self.recording
                    && i < r.base
                    && !r.stmt.binds(n)
                {
                    r.stmt.read(n, Some(&l.ty));
                }
                return l.ty.clone();
            }
        }
        if let Some(r) = &mut self.recording {
            r.stmt.read(n, None);
        }
        let m = self.module();
        if let Some(&idx) = m.items.get(n) {
            let item = &m.parsed.module.items[idx];
            return match &item.kind {
                ItemKind::Param(p) => {
                    let key = (m.path.as_str(), p.name.name.as_str());
                    if let Some(t) = self.param_types.get(&key) {
                        return Typed::plan(t.clone());
                    }
                    // Kept only when resolving it reported nothing, so a
                    // bad type is still reported where it is used.
                    let before = self.diags.len();
                    let t = self.resolve_type(&p.ty);
                    if self.diags.len() == before {
                        self.param_types.insert(key, t.clone());
                    }
                    Typed::plan(t)
                }
                ItemKind::Let(_) => self.module_let(&m.path.clone(), n),
                ItemKind::Fn(_) => Typed::plan(Ty::Fn(format!("{}\0{}", m.path, n))),
                ItemKind::Enum(e) => Typed::plan(Ty::EnumType(e.name.name.clone())),
                ItemKind::Use(_) => match m.imports.get(n) {
                    Some((Import::Module(p), _)) => Typed::plan(Ty::Module(p.clone())),
                    _ => Typed::error(),
                },
                ItemKind::Type(_) | ItemKind::Pipeline(_) | ItemKind::Policy(_) => {
                    let what = match &item.kind {
                        ItemKind::Type(_) => "a type",
                        ItemKind::Pipeline(_) => "a pipeline",
                        _ => "a policy",
                    };
                    let d = self.error(
                        Code::TypeMismatch,
                        span,
                        format!("`{n}` is {what}, not a value"),
                        "used as a value here",
                    );
                    self.err(d);
                    Typed::error()
                }
                ItemKind::Error => Typed::error(),
            };
        }
        match n {
            "git" => return Typed::plan(Ty::git()),
            "event" => return Typed::plan(Ty::event()),
            _ => {}
        }
        if builtin(n).is_some() {
            return Typed::plan(Ty::Fn(format!("\0{n}")));
        }
        let names = self.visible_names();
        let mut d = self.error(
            Code::UnknownName,
            span,
            format!("cannot find `{n}` in this scope"),
            "not defined",
        );
        if let Some(s) = suggest(n, names.iter().map(String::as_str)) {
            d = d.with_help(format!("did you mean `{s}`?"));
        } else if crate::syntax::is_keyword(n) {
            d = d.with_note(format!("`{n}` is a keyword"));
        }
        self.err(d);
        Typed::error()
    }

    // ---- checks ----

    fn expect_fits(&mut self, t: &Typed, expected: &Ty, span: Span, what: &dyn std::fmt::Display) {
        if t.ty.fits(expected) {
            return;
        }
        let mut d = self.error(
            Code::TypeMismatch,
            span,
            format!(
                "mismatched types: {what} must be `{expected}`, found `{}`",
                t.ty
            ),
            format!("expected `{expected}`, found `{}`", t.ty),
        );
        match (&t.ty, expected) {
            (Ty::Optional(inner), e) if inner.fits(e) => {
                d.code = Code::OptionalNotHandled;
                d.message = format!("{what} must be `{expected}`, but this value may be `none`");
                d = d.with_help("give a fallback with `??`, for example `value ?? \"default\"`");
            }
            (Ty::Str, Ty::Secret) => {
                d = d.with_help("wrap the name in `secret(...)`: secrets come from the run's secret providers, never from literals in the pipeline");
            }
            (Ty::Secret, _) => {
                d.code = Code::SecretMisuse;
                d = d.with_help(
                    "a `Secret` only reaches a step through `secrets: { NAME: secret(\"...\") }`",
                );
            }
            (Ty::Str, Ty::Enum(e)) => {
                d = d.with_help(format!("use a variant of `{e}`, such as `{e}.<variant>`"));
            }
            (Ty::Int, Ty::Duration) => {
                d = d.with_help("write a duration with its unit, such as `90s` or `20m`");
            }
            (Ty::Int, Ty::Percent) => {
                d = d.with_help("write a percentage with `%`, such as `80%`");
            }
            _ => {}
        }
        self.err(d);
    }

    fn expect_plan(&mut self, t: &Typed, span: Span, what: &dyn std::fmt::Display) {
        if t.rt && !t.ty.is_error() {
            let d = self
                .error(Code::RuntimeValueAtPlanTime, span, format!("{what} must be known when the plan is built, but this value exists only once a step has run"), "known only at run time")
                .with_note("step outputs, `ok`, `exit_code` and reports are run-time values; the plan's shape (which steps exist, their names, images, timeouts) is fixed before anything runs")
                .with_help("decide at run time with the step's `when:` field, or a gate");
            self.err(d);
        }
    }

    fn expect_bool(&mut self, t: &Typed, span: Span) {
        match &t.ty {
            Ty::Bool | Ty::Error => {}
            Ty::Secret => {
                let d = self.error(Code::SecretMisuse, span, "a `Secret` cannot be used in a condition", "a secret here").with_note("conditions are recorded in the plan and the run history; a secret's value must not decide or leak through them");
                self.err(d);
            }
            other => {
                let mut d = self.error(
                    Code::ConditionNotBool,
                    span,
                    format!("a condition must be `bool`, found `{other}`"),
                    format!("this is `{other}`"),
                );
                if matches!(other, Ty::Optional(_)) {
                    d = d.with_help("compare with `none`: `x != none`");
                } else if matches!(other, Ty::Str) {
                    d = d.with_help("compare it: `x == \"value\"`");
                }
                self.err(d);
            }
        }
    }

    /// Checks a block's statements; returns the type of its last expression.
    fn block_stmts(&mut self, b: &Block, registers: bool) -> Typed {
        // Room for a binding per statement: a large pipeline's scope is not
        // rehashed as it fills.
        self.scopes.push(HashMap::with_capacity_and_hasher(
            b.stmts.len(),
            rustc_hash::FxBuildHasher,
        ));
        let t = self.block_stmts_here(b, registers);
        self.scopes.pop();
        t
    }

    /// Checks a block's statements in the current scope (stage bodies share
    /// their pipeline's scope, so a later stage can use an earlier one's steps).
    fn block_stmts_here(&mut self, b: &Block, registers: bool) -> Typed {
        let mut last = Typed::plan(Ty::Unit);
        let n = b.stmts.len();
        for (i, s) in b.stmts.iter().enumerate() {
            last = self.stmt(s, registers, i + 1 == n);
        }
        last
    }

    /// Checks one statement of a block; returns its value's type (unit
    /// but for an expression).
    fn stmt(&mut self, s: &Stmt, registers: bool, is_last: bool) -> Typed {
        match s {
            Stmt::Let(l, _) => {
                let t = self.let_decl(l);
                self.bind(&l.name.name, t, l.name.span);
            }
            Stmt::Expr(e) => {
                let t = self.expr(e, None);
                // A statement-level `if`, `for` or `match` decides which
                // steps exist; it is checked in `expr`.
                if (registers || !is_last)
                    && !produces_nodes(&t.ty)
                    && !matches!(
                        e.kind,
                        ExprKind::If { .. } | ExprKind::For { .. } | ExprKind::Match { .. }
                    )
                {
                    let d = self
                        .error(
                            Code::UnusedValue,
                            e.span,
                            format!("this `{}` value is computed and then thrown away", t.ty),
                            "unused value",
                        )
                        .with_help("bind it with `let`, or remove it");
                    self.err(d);
                }
                return t;
            }
            Stmt::Stage(st) => self.stage(st),
            Stmt::Require(r) => {
                let d = self
                    .error(
                        Code::SyntaxError,
                        r.span,
                        "`require` belongs in a gate or a policy",
                        "not allowed here",
                    )
                    .with_help("wrap it: `gate \"name\" { require ... else \"...\" }`");
                self.err(d);
            }
        }
        Typed::plan(Ty::Unit)
    }

    /// A large pipeline body in an editor's session: statements whose
    /// kept check still holds are replayed (their bindings made again),
    /// the others checked and, when clean, kept for next time.
    fn body_reusing(&mut self, p: &PipelineDecl, reuse: Reuse<'a>) {
        let stmts = &p.body.stmts;
        // The statements' source: the parse's shared copy when it kept one.
        let src = match self.module().parsed.source() {
            Some(src) => Some(std::sync::Arc::clone(src)),
            None => reuse
                .texts
                .get(self.file.as_str())
                .map(|t| std::sync::Arc::from(*t)),
        };
        let (Some(src), Some(first), Some(last)) = (src, stmts.first(), stmts.last()) else {
            self.block_stmts(&p.body, true);
            return;
        };
        let body = first.span().start as usize..last.span().end as usize;
        let context = memo::context(reuse.texts, &self.file, body);
        let key = (self.file.clone(), p.name.name.clone());
        let texts: Vec<&str> = stmts
            .iter()
            .map(|s| src.get(s.span().range()).unwrap_or(""))
            .collect();
        let mut old = reuse.memo.take(&key, context);
        let found = old
            .as_ref()
            .map_or_else(|| vec![None; stmts.len()], |o| o.align(&texts));
        let mut kept = Vec::with_capacity(stmts.len());
        let mut replayed = 0;
        self.scopes.push(HashMap::with_capacity_and_hasher(
            stmts.len(),
            rustc_hash::FxBuildHasher,
        ));
        for (s, at) in stmts.iter().zip(found) {
            let span = s.span();
            let was = at.and_then(|j| old.as_mut()?.stmts.get_mut(j)?.1.take());
            if let Some(m) = was
                && self.still_reads(&m)
            {
                for (name, ty, def) in &m.binds {
                    let mut def = *def;
                    def.shift(i64::from(span.start));
                    self.bind(name, ty.clone(), def);
                }
                kept.push((span.start..span.end, Some(m)));
                replayed += 1;
                continue;
            }
            let before = self.diags.len();
            self.recording = Some(memo::Recording {
                base: self.scopes.len(),
                stmt: memo::Stmt::default(),
            });
            self.stmt(s, true, false);
            let rec = self.recording.take();
            // Kept when clean.
            let kept_stmt = rec
                .filter(|_| self.diags.len() == before)
                .and_then(|rec| rec.stmt.relative_to(span.start));
            kept.push((span.start..span.end, kept_stmt));
        }
        self.scopes.pop();
        // The old checks are freed after this one's are kept.
        let body = memo::Body {
            context,
            src,
            stmts: kept,
        };
        self.memo_keys.push(key.clone());
        reuse.memo.keep(key, body, replayed);
        drop(old);
    }

    /// Whether every name a kept statement check read still finds the same
    /// type in the pipeline's scope (or, as then, is not there).
    fn still_reads(&self, m: &memo::Stmt) -> bool {
        m.reads.iter().all(|(name, was)| {
            let now = self.scopes.iter().rev().find_map(|s| s.get(&**name));
            now.map(|l| &l.ty) == was.as_ref()
        })
    }

    fn stage(&mut self, st: &StageDecl) {
        if let Some(w) = &st.when {
            let t = self.expr(w, Some(&Ty::Bool));
            self.expect_bool(&t, w.span);
        }
        self.block_stmts_here(&st.body, true);
        if let Some(f) = &st.on_failure {
            self.block_stmts(f, true);
        }
    }

    pub fn expr(&mut self, e: &Expr, expected: Option<&Ty>) -> Typed {
        self.depth += 1;
        let t = if self.depth > MAX_CHECK_DEPTH {
            let d = self
                .error(
                    Code::NestingTooDeep,
                    e.span,
                    "this expression is nested too deeply to check",
                    "too deep",
                )
                .with_help("split it into `let` bindings");
            self.err(d);
            Typed::error()
        } else {
            self.expr_inner(e, expected)
        };
        self.depth -= 1;
        t
    }

    fn expr_inner(&mut self, e: &Expr, expected: Option<&Ty>) -> Typed {
        match &e.kind {
            ExprKind::Int(_) => Typed::plan(Ty::Int),
            ExprKind::Bool(_) => Typed::plan(Ty::Bool),
            ExprKind::None => Typed::plan(
                expected
                    .filter(|t| matches!(t, Ty::Optional(_)))
                    .cloned()
                    .unwrap_or(Ty::NoneLit),
            ),
            ExprKind::Duration(_) => Typed::plan(Ty::Duration),
            ExprKind::Size(_) => Typed::plan(Ty::Size),
            ExprKind::Percent(_) => Typed::plan(Ty::Percent),
            ExprKind::Error => Typed::error(),
            ExprKind::Paren(inner) => self.expr(inner, expected),
            ExprKind::Str { parts, .. } => {
                let mut rt = false;
                for p in parts {
                    if let StrPart::Interp(x) = p {
                        let t = self.expr(x, None);
                        rt |= t.rt;
                        self.check_interpolation(&t.ty, x.span);
                    }
                }
                Typed { ty: Ty::Str, rt }
            }
            ExprKind::Name(n) => self.name(n, e.span),
            ExprKind::Field(base, field) => {
                let b = self.expr(base, None);
                self.field(&b, field, base)
            }
            ExprKind::Call { callee, args } => self.call(callee, args, e.span, expected),
            ExprKind::List(items) => {
                let elem_expected = match expected {
                    Some(Ty::List(t)) => Some((**t).clone()),
                    _ => None,
                };
                let mut ty: Option<Ty> = None;
                let mut rt = false;
                for it in items {
                    let t = self.expr(it, elem_expected.as_ref());
                    rt |= t.rt;
                    ty = match ty {
                        None => Some(t.ty),
                        Some(prev) => match Ty::unify(&prev, &t.ty) {
                            Some(u) => Some(u),
                            None => {
                                let d = self.error(Code::TypeMismatch, it.span, format!("list elements must have one type: found `{}` after `{prev}`", t.ty), format!("this is `{}`", t.ty));
                                self.err(d);
                                Some(Ty::Error)
                            }
                        },
                    };
                }
                let elem = ty.or(elem_expected).unwrap_or(Ty::Error);
                Typed {
                    ty: Ty::List(Box::new(elem)),
                    rt,
                }
            }
            ExprKind::Record(fields) => self.record(fields, e.span, expected),
            ExprKind::Unary(op, x) => {
                let t = self.expr(x, None);
                let ok = match op {
                    UnOp::Not => matches!(t.ty, Ty::Bool | Ty::Error),
                    UnOp::Neg => matches!(t.ty, Ty::Int | Ty::Error | Ty::Percent | Ty::Duration),
                };
                if !ok {
                    let sym = if *op == UnOp::Not { "!" } else { "-" };
                    let d = self.error(
                        Code::InvalidOperands,
                        e.span,
                        format!("`{sym}` cannot be applied to `{}`", t.ty),
                        format!("this is `{}`", t.ty),
                    );
                    self.err(d);
                    return Typed::error();
                }
                t
            }
            ExprKind::Binary(op, l, r) => self.binary(*op, l, r, e.span),
            ExprKind::If { cond, then, els } => {
                let c = self.expr(cond, Some(&Ty::Bool));
                self.expect_bool(&c, cond.span);
                self.expect_plan(&c, cond.span, &"an `if` condition");
                let a = self.block_stmts(then, false);
                match els {
                    Some(b) => {
                        let bt = self.block_stmts(b, false);
                        match Ty::unify(&a.ty, &bt.ty) {
                            Some(u) => Typed {
                                ty: u,
                                rt: a.rt || bt.rt,
                            },
                            None => Typed::plan(Ty::Unit),
                        }
                    }
                    None => {
                        if produces_nodes(&a.ty) || a.ty == Ty::Unit {
                            Typed::plan(Ty::Unit)
                        } else {
                            Typed {
                                ty: Ty::Optional(Box::new(a.ty)),
                                rt: a.rt,
                            }
                        }
                    }
                }
            }
            ExprKind::Match { scrutinee, arms } => self.match_expr(scrutinee, arms, e.span),
            ExprKind::For { var, iter, body } => {
                let it = self.expr(iter, None);
                self.expect_plan(&it, iter.span, &"the list a `for` walks");
                let elem = match &it.ty {
                    Ty::List(t) => (**t).clone(),
                    Ty::Error => Ty::Error,
                    other => {
                        let d = self
                            .error(
                                Code::NotIterable,
                                iter.span,
                                format!("`for` walks a list, found `{other}`"),
                                format!("this is `{other}`"),
                            )
                            .with_help("write the values as a list: `[a, b]`");
                        self.err(d);
                        Ty::Error
                    }
                };
                self.scopes.push(HashMap::default());
                self.bind(&var.name, Typed::plan(elem), var.span);
                let b = self.block_stmts(body, false);
                self.scopes.pop();
                Typed {
                    ty: Ty::List(Box::new(b.ty)),
                    rt: b.rt,
                }
            }
            ExprKind::Node(n) => self.node(n.kind, &n.name, &n.fields, &n.requires, e.span),
        }
    }

    fn check_interpolation(&mut self, ty: &Ty, span: Span) {
        match ty {
            Ty::Secret => {
                let d = self
                    .error(Code::SecretAsText, span, "a `Secret` cannot be interpolated into text", "the secret's value would end up in the command line, the plan and the logs")
                    .with_help("give it to the step as an environment variable: `secrets: { TOKEN: secret(\"NAME\") }`, then use `$TOKEN` in the script");
                self.err(d);
            }
            Ty::Step(_)
            | Ty::Gate
            | Ty::Approval
            | Ty::Fn(_)
            | Ty::Module(_)
            | Ty::Record { .. }
            | Ty::Reports(_)
            | Ty::Unit
            | Ty::EnumType(_) => {
                let d = self
                    .error(
                        Code::TypeMismatch,
                        span,
                        format!("a `{ty}` cannot be interpolated into text"),
                        "not text",
                    )
                    .with_help("interpolate a field of it instead, such as a step's output");
                self.err(d);
            }
            Ty::Optional(_) => {
                let d = self
                    .error(
                        Code::OptionalNotHandled,
                        span,
                        "this value may be `none` and cannot be interpolated as is",
                        "optional",
                    )
                    .with_help("give a fallback: `${x ?? \"\"}`");
                self.err(d);
            }
            Ty::List(inner) => self.check_interpolation(inner, span),
            _ => {}
        }
    }

    fn record(&mut self, fields: &[FieldInit], span: Span, expected: Option<&Ty>) -> Typed {
        let mut seen: HashMap<&str, Span> = HashMap::default();
        let exp_fields = match expected {
            Some(Ty::Record { fields, .. }) => Some(fields.clone()),
            _ => None,
        };
        let mut out = Vec::new();
        let mut rt = false;
        for f in fields {
            if let Some(prev) = seen.insert(&f.name.name, f.name.span) {
                let file = self.file.clone();
                let d = self
                    .error(
                        Code::DuplicateField,
                        f.name.span,
                        format!("field `{}` is given twice", f.name.name),
                        "given again here",
                    )
                    .with_secondary(&file, prev, "first given here");
                self.err(d);
                continue;
            }
            let fe = exp_fields.as_ref().and_then(|fs| named(fs, &f.name.name));
            let t = self.expr(&f.value, fe.as_ref());
            rt |= t.rt;
            out.push((f.name.name.clone(), t.ty));
        }
        if let Some(Ty::Record {
            name: Some(rname),
            fields: efs,
        }) = expected
        {
            let defaults = self.record_defaults(rname);
            for (n, t) in &out {
                match named(efs, n) {
                    None => {
                        let f = fields
                            .iter()
                            .find(|f| &f.name.name == n)
                            .map_or(span, |f| f.name.span);
                        let mut d = self.error(
                            Code::UnknownField,
                            f,
                            format!("`{rname}` has no field `{n}`"),
                            "unknown field",
                        );
                        if let Some(s) = suggest(n, efs.iter().map(|(n, _)| n.as_str())) {
                            d = d.with_help(format!("did you mean `{s}`?"));
                        }
                        self.err(d);
                    }
                    Some(et) => {
                        if !t.fits(&et) {
                            let f = fields
                                .iter()
                                .find(|f| &f.name.name == n)
                                .map_or(span, |f| f.value.span);
                            let d = self.error(
                                Code::TypeMismatch,
                                f,
                                format!(
                                    "mismatched types: field `{n}` must be `{et}`, found `{t}`"
                                ),
                                format!("expected `{et}`"),
                            );
                            self.err(d);
                        }
                    }
                }
            }
            let missing: Vec<&str> = efs
                .iter()
                .map(|(n, _)| n.as_str())
                .filter(|n| !seen.contains_key(n) && !defaults.iter().any(|d| d == n))
                .collect();
            if !missing.is_empty() {
                let d = self
                    .error(
                        Code::MissingRecordField,
                        span,
                        format!(
                            "missing field{} {} of `{rname}`",
                            if missing.len() > 1 { "s" } else { "" },
                            crate::diagnostics::code_list(&missing)
                        ),
                        "in this record",
                    )
                    .with_help(format!(
                        "add {}",
                        missing
                            .iter()
                            .map(|m| format!("`{m}: ...`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                self.err(d);
            }
            return Typed {
                ty: expected.cloned().unwrap_or(Ty::Error),
                rt,
            };
        }
        Typed {
            ty: Ty::Record {
                name: None,
                fields: out,
            },
            rt,
        }
    }

    fn field(&mut self, b: &Typed, field: &Ident, base: &Expr) -> Typed {
        let f = field.name.as_str();
        let rt = b.rt;
        let unknown = |c: &mut Self, what: String, candidates: Vec<String>, code: Code| {
            let mut d = c.error(
                code,
                field.span,
                format!("{what} has no field `{f}`"),
                "unknown field",
            );
            if let Some(s) = suggest(f, candidates.iter().map(String::as_str)) {
                d = d.with_help(format!("did you mean `{s}`?"));
            } else if !candidates.is_empty() && candidates.len() <= 12 {
                d = d.with_note(format!(
                    "available: {}",
                    crate::diagnostics::code_list(candidates)
                ));
            }
            c.err(d);
            Typed::error()
        };
        match &b.ty {
            Ty::Error => Typed::error(),
            Ty::Record { name, fields } => match named(fields, f) {
                Some(t) => Typed { ty: t, rt },
                None => unknown(
                    self,
                    name.as_ref()
                        .map_or_else(|| "this record".to_owned(), |n| format!("`{n}`")),
                    fields.iter().map(|(n, _)| n.clone()).collect(),
                    Code::UnknownField,
                ),
            },
            Ty::EnumType(en) => {
                if self.enum_has(en, f) {
                    Typed::plan(Ty::Enum(en.clone()))
                } else {
                    let variants = self.enum_variants(en);
                    let mut d = self.error(
                        Code::UnknownVariant,
                        field.span,
                        format!("enum `{en}` has no variant `{f}`"),
                        "unknown variant",
                    );
                    if let Some(s) = suggest(f, variants.iter().map(String::as_str)) {
                        d = d.with_help(format!("did you mean `{en}.{s}`?"));
                    } else {
                        d = d.with_note(format!(
                            "the variants are {}",
                            crate::diagnostics::code_list(variants)
                        ));
                    }
                    self.err(d);
                    Typed::error()
                }
            }
            Ty::Module(path) => self.member(path, field, base),
            Ty::Step(st) => {
                let mut cands: Vec<String> = vec!["ok".into(), "exit_code".into()];
                match f {
                    "ok" => return Typed::run(Ty::Bool),
                    "exit_code" => return Typed::run(Ty::Int),
                    "tests" | "coverage" | "findings" => {
                        let (bit, ty, decl) = match f {
                            "tests" => (
                                REPORT_JUNIT,
                                Ty::test_report(),
                                "junit(\"path/to/junit.xml\")",
                            ),
                            "coverage" => {
                                (REPORT_COVERAGE, Ty::coverage(), "coverage(\"lcov.info\")")
                            }
                            _ => (REPORT_SARIF, Ty::findings(), "sarif(\"results.sarif\")"),
                        };
                        if st.outputs.is_none() || st.reports & bit != 0 {
                            return Typed::run(ty);
                        }
                        let d = self
                            .error(
                                Code::MissingReport,
                                field.span,
                                format!("this step produces no `{f}` report"),
                                "the step never declares this report",
                            )
                            .with_help(format!("declare it on the step: `reports: [{decl}]`"));
                        self.err(d);
                        return Typed::error();
                    }
                    _ => {}
                }
                match &st.outputs {
                    None => Typed::run(Ty::Error),
                    Some(outs) => match named(outs, f) {
                        Some(t) => Typed {
                            rt: !matches!(t, Ty::File | Ty::Dir),
                            ty: t,
                        },
                        None => {
                            cands.extend(outs.iter().map(|(n, _)| n.clone()));
                            let mut d = self.error(
                                Code::UnknownStepOutput,
                                field.span,
                                format!("this step has no output `{f}`"),
                                "unknown output",
                            );
                            if let Some(s) = suggest(f, cands.iter().map(String::as_str)) {
                                d = d.with_help(format!("did you mean `{s}`?"));
                            } else {
                                d = d.with_note(format!("its outputs are {}", crate::diagnostics::code_list(cands))).with_help(format!("declare it on the step: `outputs: {{ {f}: file(\"...\") }}`"));
                            }
                            self.err(d);
                            Typed::error()
                        }
                    },
                }
            }
            Ty::Gate | Ty::Approval if f == "ok" => Typed::run(Ty::Bool),
            Ty::Optional(inner) => {
                let d = self
                    .error(
                        Code::OptionalNotHandled,
                        base.span,
                        format!("this value may be `none`; cannot read `{f}`"),
                        format!("`{}`", Ty::Optional(inner.clone())),
                    )
                    .with_help("give a fallback with `??` first");
                self.err(d);
                Typed::error()
            }
            other => unknown(self, format!("`{other}`"), Vec::new(), Code::UnknownField),
        }
    }

    /// The declaration of enum `en`: the first module's that has one.
    fn enum_decl(&self, en: &str) -> Option<&'a EnumDecl> {
        self.program.modules.values().find_map(|m| {
            let &i = m.items.get(en)?;
            match &m.parsed.module.items[i].kind {
                ItemKind::Enum(e) => Some(e),
                _ => None,
            }
        })
    }

    /// Whether enum `en` has variant `v` (without listing the variants).
    fn enum_has(&self, en: &str, v: &str) -> bool {
        self.enum_decl(en)
            .is_some_and(|e| e.variants.iter().any(|x| x.name.name == v))
    }

    fn enum_variants(&self, en: &str) -> Vec<String> {
        self.enum_decl(en).map_or_else(Vec::new, |e| {
            e.variants.iter().map(|v| v.name.name.clone()).collect()
        })
    }

    fn member(&mut self, path: &str, field: &Ident, _base: &Expr) -> Typed {
        let Some(m) = self.program.modules.get(path) else {
            return Typed::error();
        };
        let Some(&idx) = m.items.get(&field.name) else {
            let mut d = self.error(
                Code::UnknownMember,
                field.span,
                format!("module `{path}` has no member `{}`", field.name),
                "not defined there",
            );
            let pubs: Vec<&str> = m
                .parsed
                .module
                .items
                .iter()
                .filter(|i| i.public)
                .filter_map(|i| i.kind.name())
                .map(|n| n.name.as_str())
                .collect();
            if let Some(s) = suggest(&field.name, pubs) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            self.err(d);
            return Typed::error();
        };
        let item = &m.parsed.module.items[idx];
        if !item.public {
            let name_span = item.kind.name().map_or(item.span, |n| n.span);
            let d = self
                .error(
                    Code::PrivateMember,
                    field.span,
                    format!("`{}` is private to module `{path}`", field.name),
                    "private",
                )
                .with_secondary(path, name_span, "declared here without `pub`")
                .with_help(format!(
                    "mark it `pub` in `{path}` to use it from other modules"
                ));
            self.err(d);
            return Typed::error();
        }
        let t = match &item.kind {
            ItemKind::Fn(_) => Typed::plan(Ty::Fn(format!("{path}\0{}", field.name))),
            ItemKind::Let(_) => self.module_let(path, &field.name),
            ItemKind::Enum(e) => Typed::plan(Ty::EnumType(e.name.name.clone())),
            ItemKind::Param(p) => self.with_module(path, |c| Typed::plan(c.resolve_type(&p.ty))),
            _ => {
                let d = self.error(
                    Code::TypeMismatch,
                    field.span,
                    format!("`{}` is not a value", field.name),
                    "not a value",
                );
                self.err(d);
                Typed::error()
            }
        };
        // The member is a use of the item, for hover, definition and rename.
        let kind = match &item.kind {
            ItemKind::Fn(_) => "fn",
            ItemKind::Let(_) => "let",
            ItemKind::Enum(_) => "enum",
            ItemKind::Param(_) => "param",
            _ => "item",
        };
        if self.collect_refs {
            let def = item.kind.name().map(|n| (path.to_owned(), n.span));
            self.record_ref(&field.name, field.span, &t, def, kind);
        }
        t
    }

    fn binary(&mut self, op: BinOp, l: &Expr, r: &Expr, span: Span) -> Typed {
        let a = self.expr(l, None);
        let b = self.expr(
            r,
            if op == BinOp::Coalesce {
                if let Ty::Optional(t) = &a.ty {
                    Some(&**t)
                } else {
                    None
                }
            } else {
                Some(&a.ty)
            }
            .cloned()
            .as_ref(),
        );
        let rt = a.rt || b.rt;
        if a.ty.is_error() || b.ty.is_error() {
            let ty = match op {
                BinOp::Eq
                | BinOp::Ne
                | BinOp::Lt
                | BinOp::Le
                | BinOp::Gt
                | BinOp::Ge
                | BinOp::And
                | BinOp::Or
                | BinOp::In => Ty::Bool,
                _ => Ty::Error,
            };
            return Typed { ty, rt };
        }
        if matches!(a.ty, Ty::Secret) || matches!(b.ty, Ty::Secret) {
            let s = if matches!(a.ty, Ty::Secret) {
                l.span
            } else {
                r.span
            };
            let d = self
                .error(
                    Code::SecretMisuse,
                    s,
                    format!("a `Secret` cannot be used with `{}`", op.as_str()),
                    "a secret here",
                )
                .with_note(
                    "a secret's value never takes part in plan logic, so it cannot leak through it",
                );
            self.err(d);
            return Typed::error();
        }
        let numeric = |t: &Ty| matches!(t, Ty::Int | Ty::Duration | Ty::Size | Ty::Percent);
        let result = match op {
            BinOp::Add if a.ty == Ty::Str && b.ty == Ty::Str => Some(Ty::Str),
            BinOp::Add if matches!((&a.ty, &b.ty), (Ty::List(_), Ty::List(_))) => {
                Ty::unify(&a.ty, &b.ty)
            }
            BinOp::Add | BinOp::Sub if numeric(&a.ty) && a.ty == b.ty => Some(a.ty.clone()),
            BinOp::Mul if numeric(&a.ty) && b.ty == Ty::Int => Some(a.ty.clone()),
            BinOp::Mul if a.ty == Ty::Int && numeric(&b.ty) => Some(b.ty.clone()),
            BinOp::Div if numeric(&a.ty) && b.ty == Ty::Int => Some(a.ty.clone()),
            BinOp::Eq | BinOp::Ne if Ty::unify(&a.ty, &b.ty).is_some() && !a.ty.is_node() => {
                Some(Ty::Bool)
            }
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
                if (numeric(&a.ty) || a.ty == Ty::Str) && a.ty == b.ty =>
            {
                Some(Ty::Bool)
            }
            BinOp::And | BinOp::Or if a.ty == Ty::Bool && b.ty == Ty::Bool => Some(Ty::Bool),
            BinOp::In => match &b.ty {
                Ty::List(t) if a.ty.fits(t) || t.fits(&a.ty) => Some(Ty::Bool),
                Ty::Str if a.ty == Ty::Str => Some(Ty::Bool),
                _ => None,
            },
            BinOp::Coalesce => match &a.ty {
                Ty::Optional(t) if b.ty.fits(t) => Some((**t).clone()),
                Ty::NoneLit => Some(b.ty.clone()),
                _ => {
                    let d = self
                        .error(
                            Code::InvalidOperands,
                            l.span,
                            format!("`??` needs an optional value on its left, found `{}`", a.ty),
                            "never `none`",
                        )
                        .with_help("remove the `?? ...`: this value is always present");
                    self.err(d);
                    return Typed { ty: a.ty, rt };
                }
            },
            _ => None,
        };
        match result {
            Some(ty) => Typed { ty, rt },
            None => {
                let mut d = self.error(
                    Code::InvalidOperands,
                    span,
                    format!(
                        "`{}` cannot be applied to `{}` and `{}`",
                        op.as_str(),
                        a.ty,
                        b.ty
                    ),
                    format!("`{}` {} `{}`", a.ty, op.as_str(), b.ty),
                );
                if op == BinOp::Add && (a.ty == Ty::Str) != (b.ty == Ty::Str) {
                    d = d.with_help("build text with interpolation: \"${a}${b}\"");
                } else if matches!(op, BinOp::And | BinOp::Or) {
                    d = d.with_help("both sides of `&&` and `||` must be `bool`");
                } else if op == BinOp::In {
                    d = d.with_help("`in` tests membership in a list (`x in [a, b]`) or a substring (`\"a\" in s`)");
                }
                self.err(d);
                Typed {
                    ty: if matches!(
                        op,
                        BinOp::Eq
                            | BinOp::Ne
                            | BinOp::Lt
                            | BinOp::Le
                            | BinOp::Gt
                            | BinOp::Ge
                            | BinOp::And
                            | BinOp::Or
                            | BinOp::In
                    ) {
                        Ty::Bool
                    } else {
                        Ty::Error
                    },
                    rt,
                }
            }
        }
    }

    fn match_expr(&mut self, scrutinee: &Expr, arms: &[MatchArm], span: Span) -> Typed {
        let s = self.expr(scrutinee, None);
        self.expect_plan(&s, scrutinee.span, &"the value a `match` inspects");
        let variants = match &s.ty {
            Ty::Enum(en) => Some((en.clone(), self.enum_variants(en))),
            _ => None,
        };
        let mut covered: HashSet<String> = HashSet::default();
        let mut wildcard = false;
        let mut result: Option<Ty> = None;
        let mut rt = false;
        for arm in arms {
            let mut arm_useful = false;
            for p in &arm.patterns {
                if wildcard {
                    continue;
                }
                match p {
                    Pattern::Wildcard(_) => {
                        wildcard = true;
                        arm_useful = true;
                    }
                    Pattern::Path(path, pspan) => {
                        let last = path.last().map_or("", |i| i.name.as_str());
                        if let Some((en, vs)) = &variants {
                            if path.len() == 2 && path[0].name != *en {
                                let d = self.error(
                                    Code::TypeMismatch,
                                    path[0].span,
                                    format!(
                                        "this pattern names `{}`, but the value is a `{en}`",
                                        path[0].name
                                    ),
                                    format!("expected `{en}`"),
                                );
                                self.err(d);
                            } else if !vs.iter().any(|v| v == last) {
                                let mut d = self.error(
                                    Code::UnknownVariant,
                                    *pspan,
                                    format!("enum `{en}` has no variant `{last}`"),
                                    "unknown variant",
                                );
                                if let Some(sg) = suggest(last, vs.iter().map(String::as_str)) {
                                    d = d.with_help(format!("did you mean `{en}.{sg}`?"));
                                }
                                self.err(d);
                                arm_useful = true;
                            } else if covered.insert(last.to_owned()) {
                                arm_useful = true;
                            }
                        } else if !s.ty.is_error() {
                            let d = self.error(
                                Code::TypeMismatch,
                                *pspan,
                                format!("an enum pattern cannot match a `{}`", s.ty),
                                "enum pattern",
                            );
                            self.err(d);
                            arm_useful = true;
                        }
                    }
                    Pattern::Literal(lit) => {
                        let t = self.expr(lit, Some(&s.ty));
                        if !t.ty.fits(&s.ty) && !s.ty.is_error() {
                            let d = self.error(
                                Code::TypeMismatch,
                                lit.span,
                                format!("this pattern is `{}`, but the value is `{}`", t.ty, s.ty),
                                format!("expected `{}`", s.ty),
                            );
                            self.err(d);
                        }
                        arm_useful = true;
                    }
                }
            }
            if !arm_useful {
                let d = self
                    .error(
                        Code::UnreachableArm,
                        arm.patterns.first().map_or(arm.body.span, Pattern::span),
                        "this arm can never be taken",
                        "unreachable",
                    )
                    .with_help("earlier arms already cover every value it matches; remove it");
                self.err(d);
            }
            let t = self.expr(&arm.body, result.as_ref());
            rt |= t.rt;
            result = match result {
                None => Some(t.ty),
                Some(prev) => match Ty::unify(&prev, &t.ty) {
                    Some(u) => Some(u),
                    None => {
                        let d = self.error(Code::TypeMismatch, arm.body.span, format!("match arms must have one type: this arm is `{}`, earlier arms are `{prev}`", t.ty), format!("expected `{prev}`"));
                        self.err(d);
                        Some(Ty::Error)
                    }
                },
            };
        }
        if !wildcard {
            match &variants {
                Some((en, vs)) => {
                    let missing: Vec<&String> =
                        vs.iter().filter(|v| !covered.contains(*v)).collect();
                    if !missing.is_empty() {
                        let list = missing
                            .iter()
                            .map(|m| format!("`{en}.{m}`"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        let d = self
                            .error(
                                Code::NonExhaustiveMatch,
                                span,
                                format!("this `match` does not cover {list}"),
                                "not every variant is handled",
                            )
                            .with_help(format!(
                                "add arms for {list}, or a wildcard arm `_ => ...`"
                            ));
                        self.err(d);
                    }
                }
                None if !s.ty.is_error() => {
                    let d = self
                        .error(
                            Code::NonExhaustiveMatch,
                            span,
                            format!("a `match` on `{}` needs a wildcard arm", s.ty),
                            "not every value is handled",
                        )
                        .with_help("add `_ => ...` as the last arm");
                    self.err(d);
                }
                None => {}
            }
        }
        Typed {
            ty: result.unwrap_or(Ty::Error),
            rt,
        }
    }

    fn call(&mut self, callee: &Expr, args: &[Arg], span: Span, _expected: Option<&Ty>) -> Typed {
        let c = self.expr(callee, None);
        let id = match &c.ty {
            Ty::Fn(id) => id.clone(),
            Ty::Error => {
                for a in args {
                    self.expr(&a.value, None);
                }
                return Typed::error();
            }
            other => {
                let d = self.error(
                    Code::NotCallable,
                    callee.span,
                    format!("`{other}` is not a function"),
                    "called here",
                );
                self.err(d);
                return Typed::error();
            }
        };
        let (module, name) = id.split_once('\0').unwrap_or(("", ""));
        if module.is_empty() {
            return self.builtin_call(name, args, span);
        }
        let Some(f) = self.fn_decl(module, name) else {
            return Typed::error();
        };
        let params: Vec<(String, Ty, bool)> = self.with_module(module, |c| {
            f.params
                .iter()
                .map(|p| {
                    (
                        p.name.name.clone(),
                        c.resolve_type(&p.ty),
                        p.default.is_some(),
                    )
                })
                .collect()
        });
        let arg_types = self.bind_args(name, &params, args, span);
        for (i, (pname, pty, _)) in params.iter().enumerate() {
            if let Some((t, aspan)) = &arg_types[i] {
                // Run-time arguments are allowed: the function's plan-time uses
                // of them are caught when the pipeline is evaluated.
                self.expect_fits(t, pty, *aspan, &format_args!("argument `{pname}`"));
            }
        }
        let decl_module = module.to_owned();
        let r = self.fn_return(&decl_module, name);
        Typed { ty: r.ty, rt: r.rt }
    }

    /// Matches positional and named arguments to parameters. Returns each
    /// parameter's argument type and span, if given.
    fn bind_args(
        &mut self,
        fname: &str,
        params: &[(String, Ty, bool)],
        args: &[Arg],
        span: Span,
    ) -> Vec<Option<(Typed, Span)>> {
        let mut out: Vec<Option<(Typed, Span)>> = vec![None; params.len()];
        let mut positional = 0;
        for a in args {
            let idx = match &a.name {
                Some(n) => match params.iter().position(|(p, _, _)| *p == n.name) {
                    Some(i) => i,
                    None => {
                        let mut d = self.error(
                            Code::UnknownArgument,
                            n.span,
                            format!("`{fname}` has no parameter `{}`", n.name),
                            "unknown argument",
                        );
                        if let Some(s) = suggest(&n.name, params.iter().map(|(p, _, _)| p.as_str()))
                        {
                            d = d.with_help(format!("did you mean `{s}`?"));
                        } else if !params.is_empty() {
                            d = d.with_note(format!(
                                "its parameters are {}",
                                params
                                    .iter()
                                    .map(|(p, t, _)| format!("`{p}: {t}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ));
                        }
                        self.err(d);
                        self.expr(&a.value, None);
                        continue;
                    }
                },
                None => {
                    let i = positional;
                    positional += 1;
                    if i >= params.len() {
                        let d = self.error(
                            Code::TooManyArguments,
                            a.value.span,
                            format!(
                                "`{fname}` takes {} argument{}, but more were given",
                                params.len(),
                                if params.len() == 1 { "" } else { "s" }
                            ),
                            "unexpected argument",
                        );
                        self.err(d);
                        self.expr(&a.value, None);
                        continue;
                    }
                    i
                }
            };
            let t = self.expr(&a.value, Some(&params[idx].1));
            if out[idx].is_some() {
                let d = self.error(
                    Code::DuplicateArgument,
                    a.value.span,
                    format!("`{}` is given twice", params[idx].0),
                    "given again here",
                );
                self.err(d);
                continue;
            }
            out[idx] = Some((t, a.value.span));
        }
        let missing: Vec<&(String, Ty, bool)> = params
            .iter()
            .enumerate()
            .filter(|(i, (_, _, has_default))| out[*i].is_none() && !has_default)
            .map(|(_, p)| p)
            .collect();
        if !missing.is_empty() {
            let list = missing
                .iter()
                .map(|(p, t, _)| format!("`{p}: {t}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let d = self
                .error(
                    Code::MissingArgument,
                    span,
                    format!("`{fname}` is missing {list}"),
                    "in this call",
                )
                .with_help(format!(
                    "add {}",
                    missing
                        .iter()
                        .map(|(p, _, _)| format!("`{p}: ...`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            self.err(d);
        }
        out
    }

    fn parse_builtin_ty(s: &str) -> Ty {
        match s {
            "str" => Ty::Str,
            "int" => Ty::Int,
            "bool" => Ty::Bool,
            "list[str]" => Ty::List(Box::new(Ty::Str)),
            _ => Ty::Error,
        }
    }

    fn builtin_call(&mut self, name: &str, args: &[Arg], span: Span) -> Typed {
        let b = builtin(name).expect("builtin exists");
        if name == "value" {
            // The argument is a type.
            if let [
                Arg {
                    name: None,
                    value:
                        Expr {
                            kind: ExprKind::Name(t),
                            span: tspan,
                        },
                },
            ] = args
            {
                let ty = match t.as_str() {
                    "str" => Ty::Str,
                    "int" => Ty::Int,
                    "bool" => Ty::Bool,
                    "duration" => Ty::Duration,
                    "percent" => Ty::Percent,
                    "size" => Ty::Size,
                    _ => {
                        let d = self
                            .error(
                                Code::UnknownType,
                                *tspan,
                                format!("a value output cannot have type `{t}`"),
                                "not a value type",
                            )
                            .with_help(
                                "value outputs are str, int, bool, duration, size or percent",
                            );
                        self.err(d);
                        Ty::Error
                    }
                };
                return Typed::plan(ty);
            }
            let d = self
                .error(
                    Code::MissingArgument,
                    span,
                    "`value` takes the output's type",
                    "write `value(str)`",
                )
                .with_help("for example `outputs: { version: value(str) }`");
            self.err(d);
            return Typed::error();
        }
        let params: Vec<(String, Ty, bool)> = b
            .params
            .iter()
            .map(|(n, t)| {
                (
                    n.trim_end_matches('=').to_owned(),
                    Self::parse_builtin_ty(t),
                    n.ends_with('='),
                )
            })
            .collect();
        let got = self.bind_args(name, &params, args, span);
        let mut rt = false;
        for (i, (pname, pty, _)) in params.iter().enumerate() {
            if let Some((t, aspan)) = &got[i] {
                rt |= t.rt;
                if !pty.is_error() {
                    self.expect_fits(t, pty, *aspan, &format_args!("argument `{pname}`"));
                }
                if name == "secret" || name == "raw" {
                    continue;
                }
                if matches!(t.ty, Ty::Secret) {
                    let d = self.error(
                        Code::SecretMisuse,
                        *aspan,
                        format!("a `Secret` cannot be passed to `{name}`"),
                        "a secret here",
                    );
                    self.err(d);
                }
            }
        }
        let arg0 = got
            .first()
            .and_then(|g| g.as_ref())
            .map_or(Ty::Error, |(t, _)| t.ty.clone());
        let ty = match name {
            "secret" => {
                if rt {
                    let d = self.error(
                        Code::RuntimeValueAtPlanTime,
                        span,
                        "a secret's name must be known when the plan is built",
                        "run-time value",
                    );
                    self.err(d);
                }
                if let Some(Arg { value, .. }) = args.first()
                    && let Some(s) = literal_str(value)
                    && !crate::validate::env_name(&s)
                {
                    let d = self
                        .error(
                            Code::ShortSecretName,
                            value.span,
                            format!("`{s}` is not a portable secret name"),
                            "use letters, digits and `_`",
                        )
                        .with_help(
                            "name secrets like environment variables, e.g. `REGISTRY_TOKEN`",
                        );
                    self.err(d);
                }
                return Typed::plan(Ty::Secret);
            }
            "workspace" | "dir" => Ty::Dir,
            "file" => Ty::File,
            "junit" => Ty::Reports(REPORT_JUNIT),
            "coverage" => Ty::Reports(REPORT_COVERAGE),
            "sarif" => Ty::Reports(REPORT_SARIF),
            "raw" => Ty::Raw,
            "join" | "upper" | "lower" | "str" => Ty::Str,
            "len" => {
                if !matches!(arg0, Ty::List(_) | Ty::Str | Ty::Error) {
                    let d = self.error(
                        Code::TypeMismatch,
                        span,
                        format!("`len` takes a list or a string, found `{arg0}`"),
                        "not a list or string",
                    );
                    self.err(d);
                }
                Ty::Int
            }
            "contains" => {
                let arg1 = got
                    .get(1)
                    .and_then(|g| g.as_ref())
                    .map_or(Ty::Error, |(t, _)| t.ty.clone());
                let ok = match &arg0 {
                    Ty::List(t) => arg1.fits(t),
                    Ty::Str => matches!(arg1, Ty::Str | Ty::Error),
                    Ty::Error => true,
                    _ => false,
                };
                if !ok {
                    let d = self.error(Code::TypeMismatch, span, format!("`contains` takes a list and an element, or two strings; found `{arg0}` and `{arg1}`"), "mismatched arguments");
                    self.err(d);
                }
                Ty::Bool
            }
            _ => Ty::Error,
        };
        if rt
            && !matches!(
                name,
                "str" | "join" | "upper" | "lower" | "len" | "contains"
            )
        {
            self.expect_plan(
                &Typed::run(ty.clone()),
                span,
                &format_args!("the argument of `{name}`"),
            );
        }
        Typed { ty, rt }
    }

    fn node(
        &mut self,
        kind: NodeKind,
        name: &Expr,
        fields: &[FieldInit],
        requires: &[Require],
        span: Span,
    ) -> Typed {
        let nt = self.expr(name, Some(&Ty::Str));
        self.expect_fits(
            &nt,
            &Ty::Str,
            name.span,
            &format_args!("a {} name", kind.as_str()),
        );
        self.expect_plan(&nt, name.span, &format_args!("a {} name", kind.as_str()));
        if let Some(s) = literal_str(name)
            && (s.trim().is_empty() || s.chars().any(char::is_control))
        {
            let d = self
                .error(
                    Code::EmptyStepName,
                    name.span,
                    format!("a {} name must be non-empty, printable text", kind.as_str()),
                    "invalid name",
                )
                .with_help("name it after what it does, e.g. \"build\"");
            self.err(d);
        }
        let allowed = match kind {
            NodeKind::Step => STEP_FIELDS,
            NodeKind::Gate => GATE_FIELDS,
            NodeKind::Approval => APPROVAL_FIELDS,
        };
        let mut outputs: Vec<(String, Ty)> = Vec::new();
        let mut reports = 0u8;
        let mut many_seen: HashMap<&str, Span> = HashMap::default();
        for (i, f) in fields.iter().enumerate() {
            let fname = f.name.name.as_str();
            if !allowed.contains(&fname) {
                let mut d = self.error(
                    Code::UnknownStepField,
                    f.name.span,
                    format!("{}s have no field `{fname}`", kind.as_str()),
                    "unknown field",
                );
                if let Some(s) = suggest(fname, allowed.iter().copied()) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                } else {
                    d = d.with_note(format!(
                        "the fields are {}",
                        crate::diagnostics::code_list(allowed)
                    ));
                }
                if kind == NodeKind::Gate && fname == "require" {
                    d = d.with_help("write requirements as `require <condition> else \"message\"`");
                }
                self.err(d);
                self.expr(&f.value, None);
                continue;
            }
            // A node has a handful of fields: the earlier ones are looked
            // through. Past a few dozen (a generated or hostile file), they
            // are kept in a map, so the check stays linear.
            let prev = if fields.len() <= FIELDS_SCANNED {
                fields[..i]
                    .iter()
                    .find(|g| g.name.name == fname)
                    .map(|g| g.name.span)
            } else {
                match many_seen.entry(fname) {
                    std::collections::hash_map::Entry::Occupied(e) => Some(*e.get()),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(f.name.span);
                        None
                    }
                }
            };
            if let Some(prev) = prev {
                let file = self.file.clone();
                let d = self
                    .error(
                        Code::DuplicateField,
                        f.name.span,
                        format!("field `{fname}` is given twice"),
                        "given again here",
                    )
                    .with_secondary(&file, prev, "first given here");
                self.err(d);
                continue;
            }
            let (expected, rt_ok): (Option<Ty>, bool) = match fname {
                "run" => (None, true),
                "image" | "workdir" | "concurrency" | "environment" | "description" => {
                    (Some(Ty::Str), false)
                }
                "timeout" | "backoff" => (Some(Ty::Duration), false),
                "retries" | "min" => (Some(Ty::Int), false),
                "allow_failure" | "cache" | "not_author" => (Some(Ty::Bool), false),
                "labels" | "groups" => (Some(Ty::List(Box::new(Ty::Str))), false),
                "when" => (Some(Ty::Bool), true),
                _ => (None, true),
            };
            let t = self.expr(&f.value, expected.as_ref());
            if let Some(exp) = &expected {
                if fname == "when" {
                    self.expect_bool(&t, f.value.span);
                } else {
                    self.expect_fits(&t, exp, f.value.span, &format_args!("`{fname}`"));
                }
            }
            if !rt_ok {
                self.expect_plan(&t, f.value.span, &format_args!("`{fname}`"));
            }
            match fname {
                "run" => match &t.ty {
                    Ty::Str | Ty::Error => {}
                    Ty::List(inner) if matches!(**inner, Ty::Str | Ty::Error | Ty::Raw) => {}
                    Ty::Secret => self.check_interpolation(&Ty::Secret, f.value.span),
                    other => {
                        let d = self.error(Code::TypeMismatch, f.value.span, format!("mismatched types: `run` must be `str` (a script) or `list[str]` (an argv), found `{other}`"), "expected `str` or `list[str]`");
                        self.err(d);
                    }
                },
                "env" => self.check_env(&f.value, &t, false),
                "secrets" => self.check_env(&f.value, &t, true),
                "inputs" => {
                    let ok = match &t.ty {
                        Ty::Dir | Ty::File | Ty::Artifact | Ty::Error => true,
                        Ty::List(inner) => {
                            matches!(**inner, Ty::Dir | Ty::File | Ty::Artifact | Ty::Error)
                        }
                        _ => false,
                    };
                    if !ok {
                        let d = self.error(Code::TypeMismatch, f.value.span, format!("mismatched types: `inputs` takes `Dir` and `File` values, found `{}`", t.ty), "expected `Dir`, `File` or a list of them").with_help("wrap paths: `inputs: [dir(\"src\"), file(\"Cargo.lock\")]`");
                        self.err(d);
                    }
                }
                "outputs" if !self.outputs_declared(&f.value) => {}
                "outputs" => match &t.ty {
                    Ty::Record { fields: fs, .. } => {
                        for (n, ty) in fs {
                            let fspan = match &f.value.kind {
                                ExprKind::Record(inits) => inits
                                    .iter()
                                    .find(|i| &i.name.name == n)
                                    .map_or(f.value.span, |i| i.value.span),
                                _ => f.value.span,
                            };
                            match ty {
                                Ty::Secret => {
                                    let d = self.error(Code::SecretMisuse, fspan, format!("output `{n}` cannot be a `Secret`"), "a secret here").with_note("outputs are stored in the cache and shown in the plan; a secret there would leak");
                                    self.err(d);
                                }
                                Ty::File
                                | Ty::Dir
                                | Ty::Str
                                | Ty::Int
                                | Ty::Bool
                                | Ty::Duration
                                | Ty::Percent
                                | Ty::Size
                                | Ty::Error => {}
                                other => {
                                    let d = self.error(Code::TypeMismatch, fspan, format!("output `{n}` must be `file(...)`, `dir(...)` or `value(T)`, found `{other}`"), "not an output").with_help("declare outputs as `file(\"path\")`, `dir(\"path\")` or `value(str)`");
                                    self.err(d);
                                }
                            }
                            outputs.push((n.clone(), ty.clone()));
                        }
                    }
                    Ty::Error => {}
                    other => {
                        let d = self.error(Code::TypeMismatch, f.value.span, format!("mismatched types: `outputs` is a record of outputs, found `{other}`"), "expected a record").with_help("write `outputs: { bin: file(\"target/app\") }`");
                        self.err(d);
                    }
                },
                "reports" => match &t.ty {
                    Ty::Reports(r) => reports |= r,
                    Ty::List(inner) => match &**inner {
                        Ty::Reports(r) => reports |= r,
                        Ty::Error => {}
                        other => {
                            let d = self.error(Code::TypeMismatch, f.value.span, format!("`reports` takes `junit(...)`, `coverage(...)` and `sarif(...)`, found a list of `{other}`"), "not reports");
                            self.err(d);
                        }
                    },
                    Ty::Error => {}
                    other => {
                        let d = self.error(Code::TypeMismatch, f.value.span, format!("`reports` takes `junit(...)`, `coverage(...)` and `sarif(...)`, found `{other}`"), "not reports");
                        self.err(d);
                    }
                },
                "after" => {
                    let ok = match &t.ty {
                        t if t.is_node() => true,
                        Ty::Error => true,
                        Ty::List(inner) => {
                            inner.is_node()
                                || matches!(**inner, Ty::Error)
                                || matches!(&**inner, Ty::List(i2) if i2.is_node())
                        }
                        _ => false,
                    };
                    if !ok {
                        let d = self
                            .error(
                                Code::TypeMismatch,
                                f.value.span,
                                format!(
                                    "`after` takes steps, gates and approvals, found `{}`",
                                    t.ty
                                ),
                                "expected steps",
                            )
                            .with_help("name the steps: `after: [lint, test]`");
                        self.err(d);
                    }
                }
                _ => {}
            }
        }
        for r in requires {
            if kind == NodeKind::Gate {
                self.check_require(r);
            } else {
                let d = self
                    .error(
                        Code::UnknownStepField,
                        r.span,
                        format!("{}s take no `require`", kind.as_str()),
                        "only gates take requirements",
                    )
                    .with_help("put the requirement in a `gate`");
                self.err(d);
            }
        }
        if kind == NodeKind::Step && !fields.iter().any(|f| f.name.name == "run") {
            let d = self
                .error(
                    Code::MissingStepField,
                    span,
                    "this step has no `run` command",
                    "missing `run`",
                )
                .with_help(
                    "add `run: \"command\"` (a shell script) or `run: [\"program\", \"arg\"]`",
                );
            self.err(d);
        }
        if kind == NodeKind::Gate && requires.is_empty() {
            let d = self
                .error(
                    Code::MissingStepField,
                    span,
                    "this gate has no requirement",
                    "missing `require`",
                )
                .with_help("add `require <condition> else \"message\"`");
            self.err(d);
        }
        Typed::plan(match kind {
            NodeKind::Step => Ty::Step(StepTy {
                outputs: Some(std::sync::Arc::new(outputs)),
                reports,
            }),
            NodeKind::Gate => Ty::Gate,
            NodeKind::Approval => Ty::Approval,
        })
    }

    /// Each output must be declared with `file(...)`, `dir(...)` or
    /// `value(T)`; a bare string would be ambiguous. Reports and returns
    /// false when one is not.
    fn outputs_declared(&mut self, value: &Expr) -> bool {
        let ExprKind::Record(inits) = &value.kind else {
            return true;
        };
        let mut ok = true;
        for i in inits {
            let declared = matches!(&i.value.kind, ExprKind::Call { callee, .. } if matches!(&callee.kind, ExprKind::Name(n) if n == "file" || n == "dir" || n == "value"));
            let is_secret = matches!(&i.value.kind, ExprKind::Call { callee, .. } if matches!(&callee.kind, ExprKind::Name(n) if n == "secret"));
            if is_secret {
                ok = false;
                let d = self
                    .error(Code::SecretMisuse, i.value.span, format!("output `{}` cannot be a `Secret`", i.name.name), "a secret here")
                    .with_note("outputs are stored in the cache and shown in the plan; a secret there would leak");
                self.err(d);
            } else if !declared {
                ok = false;
                let d = self
                    .error(Code::TypeMismatch, i.value.span, format!("output `{}` must be declared with `file(...)`, `dir(...)` or `value(T)`", i.name.name), "not an output declaration")
                    .with_help(format!("for a file the step writes: `{}: file(\"path\")`; for a value: `{}: value(str)`", i.name.name, i.name.name));
                self.err(d);
            }
        }
        ok
    }

    fn check_env(&mut self, value: &Expr, t: &Typed, secrets: bool) {
        let what = if secrets { "secrets" } else { "env" };
        let Ty::Record { fields, .. } = &t.ty else {
            if !t.ty.is_error() {
                let d = self
                    .error(
                        Code::TypeMismatch,
                        value.span,
                        format!("`{what}` is a record of variables, found `{}`", t.ty),
                        "expected a record",
                    )
                    .with_help(format!("write `{what}: {{ NAME: ... }}`"));
                self.err(d);
            }
            return;
        };
        let inits: &[FieldInit] = match &value.kind {
            ExprKind::Record(i) => i,
            _ => &[],
        };
        for (n, ty) in fields {
            let span = inits
                .iter()
                .find(|i| &i.name.name == n)
                .map_or(value.span, |i| i.value.span);
            let name_span = inits
                .iter()
                .find(|i| &i.name.name == n)
                .map_or(value.span, |i| i.name.span);
            if !crate::validate::env_name(n) {
                let d = self.error(
                    Code::ShortSecretName,
                    name_span,
                    format!("`{n}` is not a portable environment variable name"),
                    "use letters, digits and `_`",
                );
                self.err(d);
            }
            match (secrets, ty) {
                (true, Ty::Secret | Ty::Error) => {}
                (true, other) => {
                    let d = self.error(Code::TypeMismatch, span, format!("mismatched types: `secrets` values must be `Secret`, found `{other}`"), "expected `Secret`").with_help("use `secret(\"NAME\")`; plain values go in `env:`");
                    self.err(d);
                }
                (false, Ty::Secret) => {
                    let d = self
                        .error(Code::SecretMisuse, span, format!("a `Secret` cannot go in `env` (`{n}`)"), "a secret here")
                        .with_note("`env` values are part of the plan and the cache key; secrets are handed over separately and redacted")
                        .with_help(format!("move it to `secrets: {{ {n}: ... }}`"));
                    self.err(d);
                }
                (
                    false,
                    Ty::Str
                    | Ty::Int
                    | Ty::Bool
                    | Ty::Duration
                    | Ty::Percent
                    | Ty::Size
                    | Ty::Enum(_)
                    | Ty::Error,
                ) => {}
                (false, other) => {
                    let d = self.error(Code::TypeMismatch, span, format!("mismatched types: an env value must be text or a number, found `{other}`"), "not a scalar");
                    self.err(d);
                }
            }
        }
    }
}

/// Whether a value of this type registers plan nodes when used as a statement.
pub fn produces_nodes(t: &Ty) -> bool {
    match t {
        Ty::Step(_) | Ty::Gate | Ty::Approval | Ty::Unit | Ty::Error => true,
        Ty::List(inner) | Ty::Optional(inner) => produces_nodes(inner),
        _ => false,
    }
}

/// The text of a string literal without interpolation.
pub fn literal_str(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Str { parts, .. } => {
            let mut s = String::new();
            for p in parts {
                match p {
                    StrPart::Text(t) => s.push_str(t),
                    StrPart::Interp(_) => return None,
                }
            }
            Some(s)
        }
        _ => None,
    }
}
