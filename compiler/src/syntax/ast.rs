//! The syntax tree. Every node carries its byte span; error nodes stand where
//! the parser recovered, so later phases see a whole tree and stay quiet
//! about the parts that did not parse (one typo, one diagnostic).

use crate::diagnostics::Span;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Module {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Item {
    pub kind: ItemKind,
    pub span: Span,
    pub public: bool,
    /// The `///` comment lines right above the item.
    pub doc: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ItemKind {
    Use(UseDecl),
    Param(ParamDecl),
    Let(LetDecl),
    Fn(FnDecl),
    Enum(EnumDecl),
    Type(TypeDecl),
    Pipeline(PipelineDecl),
    Policy(PolicyDecl),
    Error,
}

impl ItemKind {
    pub fn name(&self) -> Option<&Ident> {
        match self {
            ItemKind::Use(u) => u.alias.as_ref(),
            ItemKind::Param(p) => Some(&p.name),
            ItemKind::Let(l) => Some(&l.name),
            ItemKind::Fn(f) => Some(&f.name),
            ItemKind::Enum(e) => Some(&e.name),
            ItemKind::Type(t) => Some(&t.name),
            ItemKind::Pipeline(p) => Some(&p.name),
            ItemKind::Policy(p) => Some(&p.name),
            ItemKind::Error => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UseTarget {
    /// `use std.rust`
    Std(Vec<Ident>),
    /// `use "lib/x.weir"`
    Path(String, Span),
    /// `use "acme/platform@^1.2"`
    Versioned {
        name: String,
        version: String,
        span: Span,
    },
    /// `use plugin "x.wasm"`
    Plugin(String, Span),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UseDecl {
    pub target: UseTarget,
    /// The name the module is bound to: the alias, or the last path segment.
    pub alias: Option<Ident>,
    pub explicit_alias: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ParamDecl {
    pub name: Ident,
    pub ty: TypeExpr,
    pub default: Option<Expr>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LetDecl {
    pub name: Ident,
    pub ty: Option<TypeExpr>,
    pub value: Expr,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FnParam {
    pub name: Ident,
    pub ty: TypeExpr,
    pub default: Option<Expr>,
    pub doc: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FnDecl {
    pub name: Ident,
    pub params: Vec<FnParam>,
    pub ret: Option<TypeExpr>,
    pub body: Block,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Variant {
    pub name: Ident,
    pub doc: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EnumDecl {
    pub name: Ident,
    pub variants: Vec<Variant>,
}

impl EnumDecl {
    /// `enum Env { dev, prod }`: the declaration on one line.
    pub fn one_line(&self) -> String {
        let variants: Vec<&str> = self.variants.iter().map(|v| v.name.name.as_str()).collect();
        format!("enum {} {{ {} }}", self.name.name, variants.join(", "))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldDecl {
    pub name: Ident,
    pub ty: TypeExpr,
    pub default: Option<Expr>,
    pub doc: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TypeDecl {
    pub name: Ident,
    pub fields: Vec<FieldDecl>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Trigger {
    pub kind: Ident,
    pub args: Vec<Arg>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PipelineDecl {
    pub name: Ident,
    pub is_default: bool,
    pub triggers: Vec<Trigger>,
    pub body: Block,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Require {
    pub cond: Expr,
    pub message: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PolicyDecl {
    pub name: Ident,
    pub binder: Ident,
    pub filter: Option<Expr>,
    pub requires: Vec<Require>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TypeExpr {
    Named(Vec<Ident>, Span),
    List(Box<TypeExpr>, Span),
    Optional(Box<TypeExpr>, Span),
    Record(Vec<FieldDecl>, Span),
    Error(Span),
}

/// A type expression as written in source (`list[str]`, `Env?`, `{ a: int }`).
pub fn type_expr_text(t: &TypeExpr) -> String {
    match t {
        TypeExpr::Named(p, _) => p
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join("."),
        TypeExpr::List(i, _) => format!("list[{}]", type_expr_text(i)),
        TypeExpr::Optional(i, _) => format!("{}?", type_expr_text(i)),
        TypeExpr::Record(fields, _) => format!(
            "{{ {} }}",
            fields
                .iter()
                .map(|f| format!("{}: {}", f.name.name, type_expr_text(&f.ty)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        TypeExpr::Error(_) => String::new(),
    }
}

impl TypeExpr {
    pub fn span(&self) -> Span {
        match self {
            TypeExpr::Named(_, s)
            | TypeExpr::List(_, s)
            | TypeExpr::Optional(_, s)
            | TypeExpr::Record(_, s)
            | TypeExpr::Error(s) => *s,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Stmt {
    Let(LetDecl, Span),
    Expr(Expr),
    Stage(StageDecl),
    Require(Require),
}

impl Stmt {
    pub fn span(&self) -> Span {
        match self {
            Stmt::Let(_, s) => *s,
            Stmt::Expr(e) => e.span,
            Stmt::Stage(s) => s.span,
            Stmt::Require(r) => r.span,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StageDecl {
    pub name: Ident,
    pub when: Option<Expr>,
    pub body: Block,
    pub on_failure: Option<Block>,
    pub span: Span,
    pub doc: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    In,
    Coalesce,
}

impl BinOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "&&",
            BinOp::Or => "||",
            BinOp::In => "in",
            BinOp::Coalesce => "??",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnOp {
    Not,
    Neg,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StrPart {
    Text(String),
    Interp(Expr),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldInit {
    pub name: Ident,
    pub value: Expr,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Pattern {
    Wildcard(Span),
    /// `Env.dev` or `dev`
    Path(Vec<Ident>, Span),
    Literal(Expr),
}

impl Pattern {
    pub fn span(&self) -> Span {
        match self {
            Pattern::Wildcard(s) | Pattern::Path(_, s) => *s,
            Pattern::Literal(e) => e.span,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MatchArm {
    pub patterns: Vec<Pattern>,
    pub body: Expr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeKind {
    Step,
    Gate,
    Approval,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Step => "step",
            NodeKind::Gate => "gate",
            NodeKind::Approval => "approval",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ExprKind {
    Int(i64),
    Bool(bool),
    None,
    Duration(u64),
    Size(u64),
    Percent(i64),
    Str {
        parts: Vec<StrPart>,
        multi: bool,
    },
    Name(String),
    Field(Box<Expr>, Ident),
    Call {
        callee: Box<Expr>,
        args: Vec<Arg>,
    },
    List(Vec<Expr>),
    Record(Vec<FieldInit>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Unary(UnOp, Box<Expr>),
    If {
        cond: Box<Expr>,
        then: Box<Block>,
        els: Option<Box<Block>>,
    },
    Match {
        scrutinee: Box<Expr>,
        arms: Vec<MatchArm>,
    },
    For {
        var: Box<Ident>,
        iter: Box<Expr>,
        body: Box<Block>,
    },
    /// `step "name" { fields }`, `gate "name" { requires }`, `approval "name" { fields }`
    Node(Box<NodeExpr>),
    Paren(Box<Expr>),
    Error,
}

/// A step, gate or approval. Boxed in [`ExprKind`], like every large
/// variant, so that an expression stays small (expressions are the most
/// numerous nodes of the tree, and the parser moves them by value).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeExpr {
    pub kind: NodeKind,
    pub name: Expr,
    pub fields: Vec<FieldInit>,
    pub requires: Vec<Require>,
    pub body_span: Span,
}

impl Expr {
    pub fn error(span: Span) -> Expr {
        Expr {
            kind: ExprKind::Error,
            span,
        }
    }
}
