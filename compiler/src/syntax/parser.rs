//! The parser: tokens to [`ast::Module`], built with chumsky combinators.
//!
//! Parsing never fails. Each production that can go wrong recovers:
//! a bracketed group that does not parse becomes an error node covering the
//! group (`nested_delimiters`), a statement or item that does not parse is
//! skipped token by token until the next one parses. One typo therefore gives
//! one diagnostic, and three independent typos give three.
//!
//! Productions are named after the grammar in `docs/language.md`.

use super::ast::*;
use super::lexer::{Kw, P, Tok};
use crate::diagnostics::{Code, Diagnostic, Span};
use chumsky::error::LabelError;
use chumsky::extra::ParserExtra;
use chumsky::input::{Input, ValueInput};
use chumsky::pratt::{infix, left, postfix, prefix};
use chumsky::prelude::*;

type Err<'src> = extra::Err<Rich<'src, Tok, SimpleSpan>>;

/// The parser's extra parameters: rich errors for diagnostics, or none for
/// the fast first pass over files that parse cleanly.
pub trait Extra<'src, I: Input<'src>>:
    ParserExtra<'src, I, Context = (), State = (), Error: LabelError<'src, I, &'static str>> + 'src
{
}
impl<'src, I: Input<'src>, T> Extra<'src, I> for T where
    T: ParserExtra<'src, I, Context = (), State = (), Error: LabelError<'src, I, &'static str>>
        + 'src
{
}

fn sp(s: SimpleSpan) -> Span {
    Span::new(s.start, s.end)
}

fn p<'src, I: ValueInput<'src, Token = Tok, Span = SimpleSpan>, X: Extra<'src, I>>(
    x: P,
) -> impl Parser<'src, I, Tok, X> + Clone {
    just(Tok::P(x))
}
fn kw<'src, I: ValueInput<'src, Token = Tok, Span = SimpleSpan>, X: Extra<'src, I>>(
    x: Kw,
) -> impl Parser<'src, I, Tok, X> + Clone {
    just(Tok::Kw(x))
}

fn ident<'src, I: ValueInput<'src, Token = Tok, Span = SimpleSpan>, X: Extra<'src, I>>()
-> impl Parser<'src, I, Ident, X> + Clone {
    select! { Tok::Ident(name) = e => Ident { name: name.to_string(), span: sp(e.span()) } }
        .labelled("a name")
}

/// A field name: an identifier, or a keyword such as `when` used as a field.
fn field_name<'src, I: ValueInput<'src, Token = Tok, Span = SimpleSpan>, X: Extra<'src, I>>()
-> impl Parser<'src, I, Ident, X> + Clone {
    select! {
        Tok::Ident(name) = e => Ident { name: name.to_string(), span: sp(e.span()) },
        Tok::Kw(k) = e => Ident { name: k.as_str().to_owned(), span: sp(e.span()) },
    }
    .labelled("a field name")
}

fn seps<'src, I: ValueInput<'src, Token = Tok, Span = SimpleSpan>, X: Extra<'src, I>>()
-> impl Parser<'src, I, (), X> + Clone {
    p(P::Comma).or(p(P::Semi)).repeated().ignored()
}

/// A string without interpolation, as `use` and `policy` take.
fn plain_string<'src, I: ValueInput<'src, Token = Tok, Span = SimpleSpan>, X: Extra<'src, I>>()
-> impl Parser<'src, I, (String, Span), X> + Clone {
    select! { Tok::StrStart(_) => () }
        .ignore_then(select! { Tok::Text(t) => t.to_string() }.or_not())
        .then_ignore(just(Tok::StrEnd))
        .map_with(|t, e| (t.unwrap_or_default(), sp(e.span())))
        .labelled("a string")
}

fn type_expr<'src, I, X, E>(expr: E) -> impl Parser<'src, I, TypeExpr, X> + Clone
where
    I: ValueInput<'src, Token = Tok, Span = SimpleSpan>,
    X: Extra<'src, I>,
    E: Parser<'src, I, Expr, X> + Clone + 'src,
{
    recursive(|ty| {
        let field = field_name()
            .then_ignore(p(P::Colon))
            .then(ty.clone())
            .then(p(P::Eq).ignore_then(expr.clone()).or_not())
            .map(|((name, ty), default)| FieldDecl {
                name,
                ty,
                default,
                doc: None,
            });
        let record = field
            .separated_by(seps())
            .allow_trailing()
            .collect::<Vec<_>>()
            .delimited_by(p(P::LBrace), p(P::RBrace))
            .map_with(|fields, e| TypeExpr::Record(fields, sp(e.span())));
        let named = ident()
            .separated_by(p(P::Dot))
            .at_least(1)
            .collect::<Vec<_>>()
            .then(
                ty.clone()
                    .delimited_by(p(P::LBracket), p(P::RBracket))
                    .or_not(),
            )
            .map_with(|(path, arg), e| match arg {
                Some(inner) if path.len() == 1 && path[0].name == "list" => {
                    TypeExpr::List(Box::new(inner), sp(e.span()))
                }
                _ => TypeExpr::Named(path, sp(e.span())),
            });
        choice((named, record))
            .then(p(P::Question).or_not())
            .map_with(|(t, q), e| {
                if q.is_some() {
                    TypeExpr::Optional(Box::new(t), sp(e.span()))
                } else {
                    t
                }
            })
            .boxed()
    })
    .labelled("a type")
}

fn string_lit<'src, I, X, E>(expr: E) -> impl Parser<'src, I, Expr, X> + Clone
where
    I: ValueInput<'src, Token = Tok, Span = SimpleSpan>,
    X: Extra<'src, I>,
    E: Parser<'src, I, Expr, X> + Clone,
{
    let part = choice((
        select! { Tok::Text(t) => StrPart::Text(t.to_string()) },
        expr.delimited_by(just(Tok::InterpStart), just(Tok::InterpEnd))
            .recover_with(via_parser(nested_delimiters(
                Tok::InterpStart,
                Tok::InterpEnd,
                [
                    (Tok::P(P::LParen), Tok::P(P::RParen)),
                    (Tok::P(P::LBracket), Tok::P(P::RBracket)),
                ],
                |s| Expr::error(sp(s)),
            )))
            .map(StrPart::Interp),
    ));
    select! { Tok::StrStart(multi) => multi }
        .then(part.repeated().collect::<Vec<_>>())
        .then_ignore(just(Tok::StrEnd))
        .map_with(|(multi, parts), e| Expr {
            kind: ExprKind::Str { parts, multi },
            span: sp(e.span()),
        })
}

fn args<'src, I, X, E>(expr: E) -> impl Parser<'src, I, Vec<Arg>, X> + Clone
where
    I: ValueInput<'src, Token = Tok, Span = SimpleSpan>,
    X: Extra<'src, I>,
    E: Parser<'src, I, Expr, X> + Clone,
{
    let arg = field_name()
        .then_ignore(p(P::Colon))
        .or_not()
        .then(expr)
        .map(|(name, value)| Arg { name, value });
    arg.separated_by(p(P::Comma))
        .allow_trailing()
        .collect::<Vec<_>>()
        .delimited_by(p(P::LParen), p(P::RParen))
        .recover_with(via_parser(nested_delimiters(
            Tok::P(P::LParen),
            Tok::P(P::RParen),
            [
                (Tok::P(P::LBracket), Tok::P(P::RBracket)),
                (Tok::P(P::LBrace), Tok::P(P::RBrace)),
            ],
            |s| {
                vec![Arg {
                    name: None,
                    value: Expr::error(sp(s)),
                }]
            },
        )))
}

/// Statements and expressions are mutually recursive through blocks, so both
/// are built here and the caller picks the one it needs.
fn expr_and_block<'src, I: ValueInput<'src, Token = Tok, Span = SimpleSpan>, X: Extra<'src, I>>()
-> (
    impl Parser<'src, I, Expr, X> + Clone,
    impl Parser<'src, I, Block, X> + Clone,
    impl Parser<'src, I, Stmt, X> + Clone,
    impl Parser<'src, I, TypeExpr, X> + Clone,
) {
    // Expressions contain blocks and blocks contain expressions. Each is
    // built with `recursive`, whose handle on itself is weak, and the inner
    // block refers to the expression weakly too, so no parser keeps itself
    // alive in a reference cycle (which leaked on every parse). The block
    // and statement parsers handed back are built again outside, over the
    // finished expression parser.
    let expr = recursive(|expr| {
        let (_, block, _) = stmt_and_block::<I, X, _>(expr.clone());
        let require = require_clause(expr.clone());

        let field_init = field_name()
            .then_ignore(p(P::Colon))
            .then(expr.clone())
            .map(|(name, value)| FieldInit { name, value });

        let if_expr = recursive(|if_expr| {
            kw(Kw::If)
                .ignore_then(expr.clone())
                .then(block.clone())
                .then(
                    kw(Kw::Else)
                        .ignore_then(choice((
                            block.clone(),
                            if_expr.map(|e: Expr| {
                                let span = e.span;
                                Block {
                                    stmts: vec![Stmt::Expr(e)],
                                    span,
                                }
                            }),
                        )))
                        .or_not(),
                )
                .map_with(|((cond, then), els), e| Expr {
                    kind: ExprKind::If {
                        cond: Box::new(cond),
                        then,
                        els,
                    },
                    span: sp(e.span()),
                })
                .boxed()
        });

        let pattern = choice((
            select! { Tok::Ident(n) = e if &*n == "_" => Pattern::Wildcard(sp(e.span())) },
            ident()
                .separated_by(p(P::Dot))
                .at_least(1)
                .collect::<Vec<_>>()
                .map_with(|path, e| Pattern::Path(path, sp(e.span()))),
            string_lit(expr.clone()).map(Pattern::Literal),
            select! {
                Tok::Int(i) = e => Pattern::Literal(Expr { kind: ExprKind::Int(i), span: sp(e.span()) }),
                Tok::Kw(Kw::True) = e => Pattern::Literal(Expr { kind: ExprKind::Bool(true), span: sp(e.span()) }),
                Tok::Kw(Kw::False) = e => Pattern::Literal(Expr { kind: ExprKind::Bool(false), span: sp(e.span()) }),
            },
        ));
        let arm = pattern
            .separated_by(p(P::Pipe))
            .at_least(1)
            .collect::<Vec<_>>()
            .then_ignore(p(P::FatArrow))
            .then(expr.clone())
            .map(|(patterns, body)| MatchArm { patterns, body });
        let match_expr = kw(Kw::Match)
            .ignore_then(expr.clone())
            .then(
                arm.separated_by(seps())
                    .allow_trailing()
                    .collect::<Vec<_>>()
                    .delimited_by(p(P::LBrace), p(P::RBrace))
                    .recover_with(via_parser(nested_delimiters(
                        Tok::P(P::LBrace),
                        Tok::P(P::RBrace),
                        [
                            (Tok::P(P::LParen), Tok::P(P::RParen)),
                            (Tok::P(P::LBracket), Tok::P(P::RBracket)),
                        ],
                        |_| Vec::new(),
                    ))),
            )
            .map_with(|(scrutinee, arms), e| Expr {
                kind: ExprKind::Match {
                    scrutinee: Box::new(scrutinee),
                    arms,
                },
                span: sp(e.span()),
            });

        let for_expr = kw(Kw::For)
            .ignore_then(ident())
            .then_ignore(kw(Kw::In))
            .then(expr.clone())
            .then(block.clone())
            .map_with(|((var, iter), body), e| Expr {
                kind: ExprKind::For {
                    var,
                    iter: Box::new(iter),
                    body,
                },
                span: sp(e.span()),
            });

        enum NodeItem {
            Field(FieldInit),
            Require(Require),
        }
        let node_kind = select! {
            Tok::Kw(Kw::Step) => NodeKind::Step,
            Tok::Kw(Kw::Gate) => NodeKind::Gate,
            Tok::Kw(Kw::Approval) => NodeKind::Approval,
        };
        let node_item = choice((
            require.clone().map(NodeItem::Require),
            field_init.clone().map(NodeItem::Field),
        ));
        let node_body = braced_items(node_item);
        let node_expr = node_kind.then(expr.clone()).then(node_body).map_with(
            |((kind, name), (items, body_span)), e| {
                let mut fields = Vec::new();
                let mut requires = Vec::new();
                for it in items {
                    match it {
                        NodeItem::Field(f) => fields.push(f),
                        NodeItem::Require(r) => requires.push(r),
                    }
                }
                Expr {
                    kind: ExprKind::Node {
                        kind,
                        name: Box::new(name),
                        fields,
                        requires,
                        body_span,
                    },
                    span: sp(e.span()),
                }
            },
        );

        let list = expr
            .clone()
            .separated_by(p(P::Comma))
            .allow_trailing()
            .collect::<Vec<_>>()
            .delimited_by(p(P::LBracket), p(P::RBracket))
            .map_with(|items, e| Expr {
                kind: ExprKind::List(items),
                span: sp(e.span()),
            })
            .recover_with(via_parser(nested_delimiters(
                Tok::P(P::LBracket),
                Tok::P(P::RBracket),
                [
                    (Tok::P(P::LParen), Tok::P(P::RParen)),
                    (Tok::P(P::LBrace), Tok::P(P::RBrace)),
                ],
                |s| Expr::error(sp(s)),
            )));

        let record = field_init
            .clone()
            .separated_by(seps())
            .allow_trailing()
            .collect::<Vec<_>>()
            .delimited_by(p(P::LBrace), p(P::RBrace))
            .map_with(|fields, e| Expr {
                kind: ExprKind::Record(fields),
                span: sp(e.span()),
            });

        let paren = expr
            .clone()
            .delimited_by(p(P::LParen), p(P::RParen))
            .map_with(|inner, e| Expr {
                kind: ExprKind::Paren(Box::new(inner)),
                span: sp(e.span()),
            })
            .recover_with(via_parser(nested_delimiters(
                Tok::P(P::LParen),
                Tok::P(P::RParen),
                [
                    (Tok::P(P::LBracket), Tok::P(P::RBracket)),
                    (Tok::P(P::LBrace), Tok::P(P::RBrace)),
                ],
                |s| Expr::error(sp(s)),
            )));

        let literal = select! {
            Tok::Int(i) => ExprKind::Int(i),
            Tok::Duration(d) => ExprKind::Duration(d),
            Tok::Size(s) => ExprKind::Size(s),
            Tok::Percent(x) => ExprKind::Percent(x),
            Tok::Kw(Kw::True) => ExprKind::Bool(true),
            Tok::Kw(Kw::False) => ExprKind::Bool(false),
            Tok::Kw(Kw::None) => ExprKind::None,
            Tok::Ident(n) => ExprKind::Name(n.to_string()),
            // The lexer reported the bad token already: stand in quietly.
            Tok::Error => ExprKind::Error,
        }
        .map_with(|kind, e| Expr {
            kind,
            span: sp(e.span()),
        });

        // Ordered by how often each starts an expression in real pipelines.
        let atom = choice((
            literal,
            string_lit(expr.clone()),
            node_expr,
            list,
            record,
            paren,
            for_expr.clone(),
            if_expr.clone(),
            match_expr,
        ))
        .labelled("an expression")
        .boxed();

        enum Post {
            Field(Ident),
            Call(Vec<Arg>),
        }
        let post = choice((
            p(P::Dot).ignore_then(field_name()).map(Post::Field),
            args(expr.clone()).map(Post::Call),
        ));

        let bin =
            |l: Expr, op: BinOp, r: Expr, e: &mut chumsky::input::MapExtra<'src, '_, I, X>| Expr {
                kind: ExprKind::Binary(op, Box::new(l), Box::new(r)),
                span: sp(e.span()),
            };
        atom
        .pratt((
            postfix(
                10,
                post,
                |l: Expr, op, e: &mut chumsky::input::MapExtra<'src, '_, I, X>| {
                    let kind = match op {
                        Post::Field(f) => ExprKind::Field(Box::new(l), f),
                        Post::Call(a) => ExprKind::Call {
                            callee: Box::new(l),
                            args: a,
                        },
                    };
                    Expr {
                        kind,
                        span: sp(e.span()),
                    }
                },
            ),
            prefix(
                9,
                p(P::Bang),
                |_, r: Expr, e: &mut chumsky::input::MapExtra<'src, '_, I, X>| Expr {
                    kind: ExprKind::Unary(UnOp::Not, Box::new(r)),
                    span: sp(e.span()),
                },
            ),
            prefix(
                9,
                p(P::Minus),
                |_, r: Expr, e: &mut chumsky::input::MapExtra<'src, '_, I, X>| Expr {
                    kind: ExprKind::Unary(UnOp::Neg, Box::new(r)),
                    span: sp(e.span()),
                },
            ),
            // One operator parser per precedence level: a token is compared
            // once per level instead of once per operator.
            infix(left(8), select! { Tok::P(P::Star) => BinOp::Mul, Tok::P(P::Slash) => BinOp::Div }, bin),
            infix(left(7), select! { Tok::P(P::Plus) => BinOp::Add, Tok::P(P::Minus) => BinOp::Sub }, bin),
            infix(left(6), select! { Tok::Kw(Kw::In) => BinOp::In }, bin),
            infix(
                left(5),
                select! { Tok::P(P::Lt) => BinOp::Lt, Tok::P(P::Le) => BinOp::Le, Tok::P(P::Gt) => BinOp::Gt, Tok::P(P::Ge) => BinOp::Ge },
                bin,
            ),
            infix(left(4), select! { Tok::P(P::EqEq) => BinOp::Eq, Tok::P(P::Ne) => BinOp::Ne }, bin),
            infix(left(3), select! { Tok::P(P::AndAnd) => BinOp::And }, bin),
            infix(left(2), select! { Tok::P(P::OrOr) => BinOp::Or }, bin),
            infix(left(1), select! { Tok::P(P::QQ) => BinOp::Coalesce }, bin),
        ))
        .boxed()
    });
    let (stmt, block, ty) = stmt_and_block::<I, X, _>(expr.clone());
    (expr, block, stmt, ty)
}

/// `{ item, item … }`: the items and the span of the braces. A group that
/// does not parse becomes an empty list over the group.
fn braced_items<'src, I, X, T, Item>(item: Item) -> impl Parser<'src, I, (Vec<T>, Span), X> + Clone
where
    I: ValueInput<'src, Token = Tok, Span = SimpleSpan>,
    X: Extra<'src, I>,
    Item: Parser<'src, I, T, X> + Clone + 'src,
{
    item.separated_by(seps())
        .allow_leading()
        .allow_trailing()
        .collect::<Vec<_>>()
        .delimited_by(p(P::LBrace), p(P::RBrace))
        .map_with(|items, e| (items, sp(e.span())))
        .recover_with(via_parser(nested_delimiters(
            Tok::P(P::LBrace),
            Tok::P(P::RBrace),
            [
                (Tok::P(P::LParen), Tok::P(P::RParen)),
                (Tok::P(P::LBracket), Tok::P(P::RBracket)),
            ],
            |s| (Vec::new(), sp(s)),
        )))
}

/// `require COND else MESSAGE`
fn require_clause<'src, I, X, E>(expr: E) -> impl Parser<'src, I, Require, X> + Clone
where
    I: ValueInput<'src, Token = Tok, Span = SimpleSpan>,
    X: Extra<'src, I>,
    E: Parser<'src, I, Expr, X> + Clone + 'src,
{
    kw(Kw::Require)
        .ignore_then(expr.clone())
        .then_ignore(kw(Kw::Else))
        .then(expr)
        .map_with(|(cond, message), e| Require {
            cond,
            message,
            span: sp(e.span()),
        })
}

/// Statements, blocks and type expressions over an expression parser.
#[allow(clippy::type_complexity)]
fn stmt_and_block<'src, I, X, E>(
    expr: E,
) -> (
    impl Parser<'src, I, Stmt, X> + Clone,
    impl Parser<'src, I, Block, X> + Clone,
    impl Parser<'src, I, TypeExpr, X> + Clone,
)
where
    I: ValueInput<'src, Token = Tok, Span = SimpleSpan>,
    X: Extra<'src, I>,
    E: Parser<'src, I, Expr, X> + Clone + 'src,
{
    let ty = type_expr(expr.clone()).boxed();
    let block = recursive(|block| {
        let stmt = stmt_parser(expr.clone(), block, ty.clone());
        stmt.separated_by(seps())
            .allow_leading()
            .allow_trailing()
            .collect::<Vec<_>>()
            .delimited_by(p(P::LBrace), p(P::RBrace))
            .map_with(|stmts, e| Block {
                stmts,
                span: sp(e.span()),
            })
            .recover_with(via_parser(nested_delimiters(
                Tok::P(P::LBrace),
                Tok::P(P::RBrace),
                [
                    (Tok::P(P::LParen), Tok::P(P::RParen)),
                    (Tok::P(P::LBracket), Tok::P(P::RBracket)),
                ],
                |s| Block {
                    stmts: Vec::new(),
                    span: sp(s),
                },
            )))
            .boxed()
    });
    let stmt = stmt_parser(expr, block.clone(), ty.clone());
    (stmt, block, ty)
}

/// One statement: `let`, `stage`, `require` or an expression.
fn stmt_parser<'src, I, X, E, B, T>(
    expr: E,
    block: B,
    ty: T,
) -> impl Parser<'src, I, Stmt, X> + Clone
where
    I: ValueInput<'src, Token = Tok, Span = SimpleSpan>,
    X: Extra<'src, I>,
    E: Parser<'src, I, Expr, X> + Clone + 'src,
    B: Parser<'src, I, Block, X> + Clone + 'src,
    T: Parser<'src, I, TypeExpr, X> + Clone + 'src,
{
    let require = require_clause(expr.clone());
    let let_decl = kw(Kw::Let)
        .ignore_then(ident())
        .then(p(P::Colon).ignore_then(ty.clone()).or_not())
        .then_ignore(p(P::Eq))
        .then(expr.clone())
        .map(|((name, ty), value)| LetDecl { name, ty, value });
    let stage = kw(Kw::Stage)
        .ignore_then(ident())
        .then(kw(Kw::When).ignore_then(expr.clone()).or_not())
        .then(block.clone())
        .then(kw(Kw::OnFailure).ignore_then(block.clone()).or_not())
        .map_with(|(((name, when), body), on_failure), e| StageDecl {
            name,
            when,
            body,
            on_failure,
            span: sp(e.span()),
            doc: None,
        });
    let stmt = choice((
        let_decl.map_with(|l, e| Stmt::Let(l, sp(e.span()))),
        stage.map(Stmt::Stage),
        require.map(Stmt::Require),
        expr.clone().map(Stmt::Expr),
    ));
    stmt.recover_with(skip_then_retry_until(
        any().ignored(),
        one_of([Tok::P(P::RBrace)]).ignored().rewind(),
    ))
    .boxed()
}

fn module<'src, I: ValueInput<'src, Token = Tok, Span = SimpleSpan>, X: Extra<'src, I>>()
-> impl Parser<'src, I, Module, X> {
    let (expr, block, stmt, ty) = expr_and_block::<I, X>();

    let use_decl = kw(Kw::Use)
        .ignore_then(choice((
            kw(Kw::Plugin)
                .ignore_then(plain_string())
                .map(|(s, span)| UseTarget::Plugin(s, span)),
            plain_string().map(|(s, span)| match s.split_once('@') {
                Some((name, version)) => UseTarget::Versioned {
                    name: name.to_owned(),
                    version: version.to_owned(),
                    span,
                },
                None => UseTarget::Path(s, span),
            }),
            ident()
                .separated_by(p(P::Dot))
                .at_least(1)
                .collect::<Vec<_>>()
                .map(UseTarget::Std),
        )))
        .then(kw(Kw::As).ignore_then(ident()).or_not())
        .map(|(target, alias)| {
            let explicit_alias = alias.is_some();
            let alias = alias.or_else(|| match &target {
                UseTarget::Std(path) => path.last().cloned(),
                UseTarget::Path(s, span)
                | UseTarget::Plugin(s, span)
                | UseTarget::Versioned { name: s, span, .. } => {
                    let stem = s
                        .rsplit('/')
                        .next()
                        .unwrap_or(s)
                        .trim_end_matches(".weir")
                        .trim_end_matches(".wasm");
                    let stem: String = stem
                        .chars()
                        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                        .collect();
                    (!stem.is_empty()).then_some(Ident {
                        name: stem,
                        span: *span,
                    })
                }
            });
            ItemKind::Use(UseDecl {
                target,
                alias,
                explicit_alias,
            })
        });

    let param = kw(Kw::Param)
        .ignore_then(ident())
        .then_ignore(p(P::Colon))
        .then(ty.clone())
        .then(p(P::Eq).ignore_then(expr.clone()).or_not())
        .map(|((name, ty), default)| ItemKind::Param(ParamDecl { name, ty, default }));

    let let_item = kw(Kw::Let)
        .ignore_then(ident())
        .then(p(P::Colon).ignore_then(ty.clone()).or_not())
        .then_ignore(p(P::Eq))
        .then(expr.clone())
        .map(|((name, ty), value)| ItemKind::Let(LetDecl { name, ty, value }));

    let fn_param = ident()
        .then_ignore(p(P::Colon))
        .then(ty.clone())
        .then(p(P::Eq).ignore_then(expr.clone()).or_not())
        .map(|((name, ty), default)| FnParam {
            name,
            ty,
            default,
            doc: None,
        });
    let fn_decl = kw(Kw::Fn)
        .ignore_then(ident())
        .then(
            fn_param
                .separated_by(p(P::Comma))
                .allow_trailing()
                .collect::<Vec<_>>()
                .delimited_by(p(P::LParen), p(P::RParen)),
        )
        .then(p(P::Arrow).ignore_then(ty.clone()).or_not())
        .then(block.clone())
        .map(|(((name, params), ret), body)| {
            ItemKind::Fn(FnDecl {
                name,
                params,
                ret,
                body,
            })
        });

    let enum_decl = kw(Kw::Enum)
        .ignore_then(ident())
        .then(
            ident()
                .map(|name| Variant { name, doc: None })
                .separated_by(seps())
                .allow_trailing()
                .collect::<Vec<_>>()
                .delimited_by(p(P::LBrace), p(P::RBrace)),
        )
        .map(|(name, variants)| ItemKind::Enum(EnumDecl { name, variants }));

    let type_decl = kw(Kw::Type)
        .ignore_then(ident())
        .then_ignore(p(P::Eq))
        .then(ty.clone())
        .map(|(name, ty)| match ty {
            TypeExpr::Record(fields, _) => ItemKind::Type(TypeDecl { name, fields }),
            other => ItemKind::Type(TypeDecl {
                name,
                fields: vec![FieldDecl {
                    name: Ident {
                        name: String::new(),
                        span: other.span(),
                    },
                    ty: other,
                    default: None,
                    doc: None,
                }],
            }),
        });

    let trigger = kw(Kw::On)
        .ignore_then(ident())
        .then(args(expr.clone()).or_not())
        .map_with(|(kind, args), e| Trigger {
            kind,
            args: args.unwrap_or_default(),
            span: sp(e.span()),
        });
    enum PipeItem {
        Trigger(Trigger),
        Stmt(Stmt),
    }
    let pipeline = kw(Kw::Default)
        .or_not()
        .then_ignore(kw(Kw::Pipeline))
        .then(ident())
        .then(braced_items(choice((
            trigger.map(PipeItem::Trigger),
            stmt.clone().map(PipeItem::Stmt),
        ))))
        .map(|((is_default, name), (items, span))| {
            let mut triggers = Vec::new();
            let mut stmts = Vec::new();
            for it in items {
                match it {
                    PipeItem::Trigger(t) => triggers.push(t),
                    PipeItem::Stmt(s) => stmts.push(s),
                }
            }
            ItemKind::Pipeline(PipelineDecl {
                name,
                is_default: is_default.is_some(),
                triggers,
                body: Block { stmts, span },
            })
        });

    let require = kw(Kw::Require)
        .ignore_then(expr.clone())
        .then_ignore(kw(Kw::Else))
        .then(expr.clone())
        .map_with(|(cond, message), e| Require {
            cond,
            message,
            span: sp(e.span()),
        });
    let policy = kw(Kw::Policy)
        .ignore_then(ident())
        .then_ignore(kw(Kw::For))
        .then_ignore(kw(Kw::Step))
        .then(ident())
        .then(kw(Kw::When).ignore_then(expr.clone()).or_not())
        .then(
            require
                .separated_by(seps())
                .allow_trailing()
                .collect::<Vec<_>>()
                .delimited_by(p(P::LBrace), p(P::RBrace)),
        )
        .map(|(((name, binder), filter), requires)| {
            ItemKind::Policy(PolicyDecl {
                name,
                binder,
                filter,
                requires,
            })
        });

    let item = kw(Kw::Pub)
        .or_not()
        .then(choice((
            use_decl, param, let_item, fn_decl, enum_decl, type_decl, pipeline, policy,
        )))
        .map_with(|(public, kind), e| Item {
            kind,
            span: sp(e.span()),
            public: public.is_some(),
            doc: None,
        })
        .recover_with(skip_then_retry_until(any().ignored(), end()));

    item.separated_by(seps())
        .allow_leading()
        .allow_trailing()
        .collect::<Vec<_>>()
        .then_ignore(end())
        .map(|items| Module { items })
}

/// Parses a token stream. Returns the module and the parse errors as diagnostics.
pub fn parse_tokens(
    file: &str,
    tokens: &[(Tok, Span)],
    src_len: usize,
) -> (Module, Vec<Diagnostic>) {
    let toks: Vec<(Tok, SimpleSpan)> = tokens
        .iter()
        .map(|(t, s)| {
            (
                t.clone(),
                SimpleSpan::from(s.start as usize..s.end as usize),
            )
        })
        .collect();
    let eoi = SimpleSpan::from(src_len..src_len);
    let input = toks.as_slice().split_token_span(eoi);
    // Fast path: most files parse cleanly, and a parse without error
    // tracking is several times faster. Only a file with errors is parsed
    // again with rich errors for its diagnostics.
    if let Ok(m) = module::<_, extra::Default>()
        .parse(input.clone())
        .into_result()
    {
        return (m, Vec::new());
    }
    let (out, errs) = module::<_, Err<'_>>().parse(input).into_output_errors();
    let mut diags = Vec::new();
    for e in errs {
        diags.push(rich_to_diagnostic(file, &e));
    }
    (out.unwrap_or_default(), diags)
}

fn rich_to_diagnostic(file: &str, e: &Rich<'_, Tok, SimpleSpan>) -> Diagnostic {
    let span = sp(*e.span());
    let found = e
        .found()
        .map_or_else(|| "the end of the file".to_owned(), ToString::to_string);
    let mut expected: Vec<String> = e
        .expected()
        .filter_map(|p| match p {
            chumsky::error::RichPattern::Token(t) => Some(t.to_string()),
            chumsky::error::RichPattern::Label(l) => Some(l.to_string()),
            chumsky::error::RichPattern::EndOfInput => Some("end of file".to_owned()),
            _ => None,
        })
        .collect();
    expected.sort();
    expected.dedup();
    // Operators and call/field continuations could follow almost any
    // expression; listing them hides what is really missing (a `,` or a
    // closing bracket). Keep them only when nothing else is expected.
    const CONTINUATIONS: &[&str] = &[
        "`!=`", "`==`", "`&&`", "`||`", "`+`", "`-`", "`*`", "`/`", "`<`", "`<=`", "`>`", "`>=`",
        "`??`", "`in`", "`(`", "`.`",
    ];
    if expected
        .iter()
        .any(|e| !CONTINUATIONS.contains(&e.as_str()))
    {
        expected.retain(|e| !CONTINUATIONS.contains(&e.as_str()));
    }
    let expected_text = match expected.len() {
        0 => String::new(),
        1 => expected[0].clone(),
        n if n <= 6 => format!("{} or {}", expected[..n - 1].join(", "), expected[n - 1]),
        _ => format!("{}, or something else", expected[..6].join(", ")),
    };
    let mut d = Diagnostic::error(Code::SyntaxError, file, span, format!("unexpected {found}"));
    d = if expected_text.is_empty() {
        d.with_label("not expected here")
    } else {
        d.with_label(format!("expected {expected_text}"))
    };
    if e.found() == Some(&Tok::P(P::Eq)) {
        d = d.with_help("fields, named arguments and record entries use `:`; `=` is for `let`, `param` and defaults");
    } else if e.found() == Some(&Tok::P(P::RBrace)) || e.found().is_none() {
        d = d.with_help("check that every `{`, `(` and `[` before this point is closed");
    }
    d
}
