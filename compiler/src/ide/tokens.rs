//! Semantic tokens (what each token of a file is) and inlay hints (the
//! inferred types of `let` bindings written without one).

use crate::db::Checked;
use crate::diagnostics::Span;
use crate::syntax::lexer::{self, P, Tok};
use crate::syntax::*;
use crate::typeck::{BUILTINS, Reference};
use std::collections::HashMap;

/// Token kinds, named as in the LSP's standard legend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    Namespace,
    Type,
    Enum,
    EnumMember,
    Parameter,
    Variable,
    Property,
    Function,
    Keyword,
    Comment,
    String,
    Number,
    Operator,
}

impl TokenKind {
    pub const ALL: &'static [TokenKind] = &[
        TokenKind::Namespace,
        TokenKind::Type,
        TokenKind::Enum,
        TokenKind::EnumMember,
        TokenKind::Parameter,
        TokenKind::Variable,
        TokenKind::Property,
        TokenKind::Function,
        TokenKind::Keyword,
        TokenKind::Comment,
        TokenKind::String,
        TokenKind::Number,
        TokenKind::Operator,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Namespace => "namespace",
            TokenKind::Type => "type",
            TokenKind::Enum => "enum",
            TokenKind::EnumMember => "enumMember",
            TokenKind::Parameter => "parameter",
            TokenKind::Variable => "variable",
            TokenKind::Property => "property",
            TokenKind::Function => "function",
            TokenKind::Keyword => "keyword",
            TokenKind::Comment => "comment",
            TokenKind::String => "string",
            TokenKind::Number => "number",
            TokenKind::Operator => "operator",
        }
    }
    /// Index in [`TokenKind::ALL`], the legend's order.
    pub fn index(self) -> u32 {
        TokenKind::ALL.iter().position(|k| *k == self).unwrap_or(0) as u32
    }
}

/// Modifier bits, in the legend's order.
pub const MOD_DECLARATION: u32 = 1;
pub const MOD_READONLY: u32 = 2;
pub const MOD_DOCUMENTATION: u32 = 4;
pub const MOD_DEFAULT_LIBRARY: u32 = 8;
pub const MODIFIERS: &[&str] = &["declaration", "readonly", "documentation", "defaultLibrary"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SemanticToken {
    pub span: Span,
    pub kind: TokenKind,
    pub modifiers: u32,
}

const BUILTIN_TYPES: &[&str] = &[
    "str", "int", "bool", "duration", "size", "percent", "list", "Secret", "Dir", "File", "Step",
];

/// Declarations found in the tree: name start to kind and modifiers.
struct Decls(HashMap<u32, (TokenKind, u32)>);

impl Decls {
    fn add(&mut self, id: &Ident, kind: TokenKind, mods: u32) {
        self.0.insert(id.span.start, (kind, mods | MOD_DECLARATION));
    }
    fn ty(&mut self, t: &TypeExpr) {
        match t {
            TypeExpr::Named(path, _) => {
                for id in path {
                    let lib = if BUILTIN_TYPES.contains(&id.name.as_str()) {
                        MOD_DEFAULT_LIBRARY
                    } else {
                        0
                    };
                    self.0.insert(id.span.start, (TokenKind::Type, lib));
                }
            }
            TypeExpr::List(t, _) | TypeExpr::Optional(t, _) => self.ty(t),
            TypeExpr::Record(fields, _) => {
                for f in fields {
                    self.add(&f.name, TokenKind::Property, 0);
                    self.ty(&f.ty);
                }
            }
            TypeExpr::Error(_) => {}
        }
    }
    fn block(&mut self, b: &Block) {
        for s in &b.stmts {
            match s {
                Stmt::Let(l, _) => {
                    if let Some(t) = &l.ty {
                        self.ty(t);
                    }
                    self.expr(&l.value);
                }
                Stmt::Expr(e) => self.expr(e),
                Stmt::Stage(st) => {
                    self.add(&st.name, TokenKind::Namespace, 0);
                    if let Some(w) = &st.when {
                        self.expr(w);
                    }
                    self.block(&st.body);
                    if let Some(f) = &st.on_failure {
                        self.block(f);
                    }
                }
                Stmt::Require(r) => {
                    self.expr(&r.cond);
                    self.expr(&r.message);
                }
            }
        }
    }
    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Field(x, _) | ExprKind::Unary(_, x) | ExprKind::Paren(x) => self.expr(x),
            ExprKind::Call { callee, args } => {
                self.expr(callee);
                for a in args {
                    if let Some(n) = &a.name {
                        self.0.insert(n.span.start, (TokenKind::Parameter, 0));
                    }
                    self.expr(&a.value);
                }
            }
            ExprKind::List(xs) => xs.iter().for_each(|x| self.expr(x)),
            ExprKind::Record(fields) => {
                for f in fields {
                    self.0.insert(f.name.span.start, (TokenKind::Property, 0));
                    self.expr(&f.value);
                }
            }
            ExprKind::Binary(_, a, b) => {
                self.expr(a);
                self.expr(b);
            }
            ExprKind::If { cond, then, els } => {
                self.expr(cond);
                self.block(then);
                if let Some(b) = els {
                    self.block(b);
                }
            }
            ExprKind::Match { scrutinee, arms } => {
                self.expr(scrutinee);
                for a in arms {
                    self.expr(&a.body);
                }
            }
            ExprKind::For { iter, body, .. } => {
                self.expr(iter);
                self.block(body);
            }
            ExprKind::Node(node) => {
                let NodeExpr {
                    name,
                    fields,
                    requires,
                    ..
                } = &**node;
                self.expr(name);
                for f in fields {
                    self.0.insert(f.name.span.start, (TokenKind::Property, 0));
                    self.expr(&f.value);
                }
                for r in requires {
                    self.expr(&r.cond);
                    self.expr(&r.message);
                }
            }
            ExprKind::Str { parts, .. } => {
                for p in parts {
                    if let StrPart::Interp(x) = p {
                        self.expr(x);
                    }
                }
            }
            _ => {}
        }
    }
    fn module(&mut self, m: &Module) {
        for item in &m.items {
            match &item.kind {
                ItemKind::Use(u) => {
                    if let Some(a) = &u.alias {
                        self.add(a, TokenKind::Namespace, 0);
                    }
                }
                ItemKind::Param(p) => {
                    self.add(&p.name, TokenKind::Parameter, MOD_READONLY);
                    self.ty(&p.ty);
                    if let Some(d) = &p.default {
                        self.expr(d);
                    }
                }
                ItemKind::Let(l) => {
                    self.add(&l.name, TokenKind::Variable, MOD_READONLY);
                    if let Some(t) = &l.ty {
                        self.ty(t);
                    }
                    self.expr(&l.value);
                }
                ItemKind::Fn(f) => {
                    self.add(&f.name, TokenKind::Function, 0);
                    for p in &f.params {
                        self.add(&p.name, TokenKind::Parameter, 0);
                        self.ty(&p.ty);
                        if let Some(d) = &p.default {
                            self.expr(d);
                        }
                    }
                    if let Some(r) = &f.ret {
                        self.ty(r);
                    }
                    self.block(&f.body);
                }
                ItemKind::Enum(e) => {
                    self.add(&e.name, TokenKind::Enum, 0);
                    for v in &e.variants {
                        self.add(&v.name, TokenKind::EnumMember, 0);
                    }
                }
                ItemKind::Type(t) => {
                    self.add(&t.name, TokenKind::Type, 0);
                    for f in &t.fields {
                        self.add(&f.name, TokenKind::Property, 0);
                        self.ty(&f.ty);
                        if let Some(d) = &f.default {
                            self.expr(d);
                        }
                    }
                }
                ItemKind::Pipeline(p) => {
                    self.add(&p.name, TokenKind::Namespace, 0);
                    for t in &p.triggers {
                        self.0.insert(
                            t.kind.span.start,
                            (TokenKind::Function, MOD_DEFAULT_LIBRARY),
                        );
                        for a in &t.args {
                            if let Some(n) = &a.name {
                                self.0.insert(n.span.start, (TokenKind::Parameter, 0));
                            }
                        }
                    }
                    self.block(&p.body);
                }
                ItemKind::Policy(p) => {
                    self.add(&p.name, TokenKind::Namespace, 0);
                    self.add(&p.binder, TokenKind::Parameter, 0);
                    if let Some(f) = &p.filter {
                        self.expr(f);
                    }
                    for r in &p.requires {
                        self.expr(&r.cond);
                        self.expr(&r.message);
                    }
                }
                ItemKind::Error => {}
            }
        }
    }
}

fn ref_kind(r: &Reference) -> (TokenKind, u32) {
    let decl = if r.def.as_ref().is_some_and(|d| d.1 == r.span) {
        MOD_DECLARATION
    } else {
        0
    };
    match r.kind {
        "local" => (TokenKind::Variable, decl),
        "let" => (TokenKind::Variable, MOD_READONLY),
        "param" => (TokenKind::Parameter, MOD_READONLY),
        "fn" => (TokenKind::Function, 0),
        "enum" => (TokenKind::Enum, 0),
        "module" => (TokenKind::Namespace, 0),
        "builtin" if BUILTINS.iter().any(|b| b.name == r.name) => {
            (TokenKind::Function, MOD_DEFAULT_LIBRARY)
        }
        "builtin" => (TokenKind::Variable, MOD_DEFAULT_LIBRARY | MOD_READONLY),
        _ => (TokenKind::Type, 0),
    }
}

/// Every token of `text` (the buffer of `file`) with its kind, in order.
pub fn semantic_tokens(
    checked: &Checked,
    parsed: &Parsed,
    file: &str,
    text: &str,
) -> Vec<SemanticToken> {
    let lexed = lexer::lex(file, text);
    let mut decls = Decls(HashMap::new());
    decls.module(&parsed.module);
    let refs: HashMap<u32, &Reference> = checked
        .references
        .iter()
        .filter(|r| r.file == file)
        .map(|r| (r.span.start, r))
        .collect();
    let toks = &lexed.tokens;
    let mut out: Vec<SemanticToken> = Vec::with_capacity(toks.len() + lexed.comments.len());
    for c in &lexed.comments {
        out.push(SemanticToken {
            span: c.span,
            kind: TokenKind::Comment,
            modifiers: if c.doc { MOD_DOCUMENTATION } else { 0 },
        });
    }
    for (i, (t, span)) in toks.iter().enumerate() {
        let (kind, modifiers) = match t {
            Tok::Kw(_) => (TokenKind::Keyword, 0),
            Tok::Int(_) | Tok::Duration(_) | Tok::Size(_) | Tok::Percent(_) => {
                (TokenKind::Number, 0)
            }
            Tok::StrStart(_) | Tok::Text(_) | Tok::StrEnd => (TokenKind::String, 0),
            Tok::P(
                P::Plus
                | P::Minus
                | P::Star
                | P::Slash
                | P::EqEq
                | P::Ne
                | P::Lt
                | P::Le
                | P::Gt
                | P::Ge
                | P::AndAnd
                | P::OrOr
                | P::Bang
                | P::QQ
                | P::Question
                | P::Arrow
                | P::FatArrow
                | P::Pipe,
            ) => (TokenKind::Operator, 0),
            Tok::Ident(_) => {
                if let Some(&d) = decls.0.get(&span.start) {
                    d
                } else if let Some(r) = refs.get(&span.start) {
                    ref_kind(r)
                } else if i >= 2 && matches!(toks[i - 1].0, Tok::P(P::Dot)) {
                    // A member: of an enum, a module or a value.
                    let base = refs.get(&toks[i - 2].1.start).map(|r| r.kind);
                    let call = matches!(toks.get(i + 1), Some((Tok::P(P::LParen), _)));
                    match base {
                        Some("enum") => (TokenKind::EnumMember, 0),
                        Some("module") if call => (TokenKind::Function, 0),
                        Some("module") => (TokenKind::Variable, 0),
                        _ => (TokenKind::Property, 0),
                    }
                } else {
                    (TokenKind::Variable, 0)
                }
            }
            _ => continue,
        };
        out.push(SemanticToken {
            span: *span,
            kind,
            modifiers,
        });
    }
    out.sort_by_key(|t| t.span.start);
    out
}

/// An inferred type shown after a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InlayHint {
    /// Where the hint goes: right after the name.
    pub offset: usize,
    /// `: Type`
    pub label: String,
}

/// Types of the `let` bindings in `range` of `file` written without one.
pub fn inlay_hints(checked: &Checked, parsed: &Parsed, file: &str, range: Span) -> Vec<InlayHint> {
    // Types by the span of the name they define.
    let mut types: HashMap<u32, String> = HashMap::new();
    for r in &checked.references {
        if let Some((f, d)) = &r.def
            && f == file
            && range.contains(d.start as usize)
            && !types.contains_key(&d.start)
        {
            let ty = r.ty();
            if !ty.is_empty() && !ty.contains("{unknown}") {
                types.insert(d.start, ty);
            }
        }
    }
    let mut names = Vec::new();
    for item in &parsed.module.items {
        match &item.kind {
            ItemKind::Let(l) if l.ty.is_none() => names.push(&l.name),
            ItemKind::Pipeline(p) => block_lets(&p.body, &mut names),
            ItemKind::Fn(f) => block_lets(&f.body, &mut names),
            _ => {}
        }
    }
    let mut out: Vec<InlayHint> = names
        .into_iter()
        .filter(|n| range.contains(n.span.start as usize))
        .filter_map(|n| {
            Some(InlayHint {
                offset: n.span.end as usize,
                label: format!(": {}", types.get(&n.span.start)?),
            })
        })
        .collect();
    out.sort_by_key(|h| h.offset);
    out
}

fn block_lets<'a>(b: &'a Block, out: &mut Vec<&'a Ident>) {
    for s in &b.stmts {
        match s {
            Stmt::Let(l, _) => {
                if l.ty.is_none() {
                    out.push(&l.name);
                }
                expr_lets(&l.value, out);
            }
            Stmt::Expr(e) => expr_lets(e, out),
            Stmt::Stage(st) => {
                block_lets(&st.body, out);
                if let Some(f) = &st.on_failure {
                    block_lets(f, out);
                }
            }
            Stmt::Require(_) => {}
        }
    }
}

fn expr_lets<'a>(e: &'a Expr, out: &mut Vec<&'a Ident>) {
    match &e.kind {
        ExprKind::If { then, els, .. } => {
            block_lets(then, out);
            if let Some(b) = els {
                block_lets(b, out);
            }
        }
        ExprKind::For { body, .. } => block_lets(body, out),
        ExprKind::Paren(x) => expr_lets(x, out),
        _ => {}
    }
}
