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
use super::shift::Shift;
use crate::diagnostics::{Code, Diagnostic, Span};
use chumsky::error::LabelError;
use chumsky::extra::ParserExtra;
use chumsky::input::{Input, ValueInput};
use chumsky::pratt::{infix, left, postfix, prefix};
use chumsky::prelude::*;

type Err<'src> = extra::Err<Rich<'src, Tok, Span>>;

/// A list as long as it is. The parser collects lists one element at a
/// time, and a vector's first allocation has room for four: most lists of
/// a pipeline (a string's parts, a call's arguments, a record's fields)
/// have one element, and the spare room was about a third of a large
/// file's syntax tree. The first element gets room for itself alone; a
/// longer list grows as usual and gives its spare room back at the end.
struct Fitted<T>(Vec<T>);

impl<T> FromIterator<T> for Fitted<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut iter = iter.into_iter();
        let mut list = Vec::new();
        if let Some(first) = iter.next() {
            list.reserve_exact(1);
            list.push(first);
            list.extend(iter);
            list.shrink_to_fit();
        }
        Fitted(list)
    }
}

fn fitted<T>(list: Fitted<T>) -> Vec<T> {
    list.0
}

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

/// Tokens carry the compiler's own spans, so the parser's spans need no
/// conversion.
impl chumsky::span::Span for Span {
    type Context = ();
    type Offset = u32;
    fn new((): (), range: std::ops::Range<u32>) -> Self {
        Span {
            start: range.start,
            end: range.end.max(range.start),
        }
    }
    fn context(&self) {}
    fn start(&self) -> u32 {
        self.start
    }
    fn end(&self) -> u32 {
        self.end
    }
}

fn p<'src, I: ValueInput<'src, Token = Tok, Span = Span>, X: Extra<'src, I>>(
    x: P,
) -> impl Parser<'src, I, Tok, X> + Clone {
    just(Tok::P(x))
}
fn kw<'src, I: ValueInput<'src, Token = Tok, Span = Span>, X: Extra<'src, I>>(
    x: Kw,
) -> impl Parser<'src, I, Tok, X> + Clone {
    just(Tok::Kw(x))
}

fn ident<'src, I: ValueInput<'src, Token = Tok, Span = Span>, X: Extra<'src, I>>(
    names: &'src str,
) -> impl Parser<'src, I, Ident, X> + Clone {
    select! { Tok::Ident(name) = e => Ident { name: name.get(names).to_owned(), span: e.span() } }
        .labelled("a name")
}

/// A field name: an identifier, or a keyword such as `when` used as a field.
fn field_name<'src, I: ValueInput<'src, Token = Tok, Span = Span>, X: Extra<'src, I>>(
    names: &'src str,
) -> impl Parser<'src, I, Ident, X> + Clone {
    select! {
        Tok::Ident(name) = e => Ident { name: name.get(names).to_owned(), span: e.span() },
        Tok::Kw(k) = e => Ident { name: k.as_str().to_owned(), span: e.span() },
    }
    .labelled("a field name")
}

fn seps<'src, I: ValueInput<'src, Token = Tok, Span = Span>, X: Extra<'src, I>>()
-> impl Parser<'src, I, (), X> + Clone {
    // One look at the token for both separators (two `just`s took two).
    one_of([Tok::P(P::Comma), Tok::P(P::Semi)])
        .repeated()
        .ignored()
}

/// A string without interpolation, as `use` and `policy` take.
fn plain_string<'src, I: ValueInput<'src, Token = Tok, Span = Span>, X: Extra<'src, I>>(
    names: &'src str,
) -> impl Parser<'src, I, (String, Span), X> + Clone {
    select! { Tok::StrStart(_) => () }
        .ignore_then(select! { Tok::Text(t) => t.get(names).to_owned() }.or_not())
        .then_ignore(just(Tok::StrEnd))
        .map_with(|t, e| (t.unwrap_or_default(), e.span()))
        .labelled("a string")
}

fn type_expr<'src, I, X, E>(names: &'src str, expr: E) -> impl Parser<'src, I, TypeExpr, X> + Clone
where
    I: ValueInput<'src, Token = Tok, Span = Span>,
    X: Extra<'src, I>,
    E: Parser<'src, I, Expr, X> + Clone + 'src,
{
    recursive(|ty| {
        let field = field_name(names)
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
            .collect::<Fitted<_>>()
            .map(fitted)
            .delimited_by(p(P::LBrace), p(P::RBrace))
            .map_with(|fields, e| TypeExpr::Record(fields, e.span()));
        let named = ident(names)
            .separated_by(p(P::Dot))
            .at_least(1)
            .collect::<Fitted<_>>()
            .map(fitted)
            .then(
                ty.clone()
                    .delimited_by(p(P::LBracket), p(P::RBracket))
                    .or_not(),
            )
            .map_with(|(path, arg), e| match arg {
                Some(inner) if path.len() == 1 && path[0].name == "list" => {
                    TypeExpr::List(Box::new(inner), e.span())
                }
                _ => TypeExpr::Named(path, e.span()),
            });
        choice((named, record))
            .then(p(P::Question).or_not())
            .map_with(|(t, q), e| {
                if q.is_some() {
                    TypeExpr::Optional(Box::new(t), e.span())
                } else {
                    t
                }
            })
            .boxed()
    })
    .labelled("a type")
}

fn string_lit<'src, I, X, E>(names: &'src str, expr: E) -> impl Parser<'src, I, Expr, X> + Clone
where
    I: ValueInput<'src, Token = Tok, Span = Span>,
    X: Extra<'src, I>,
    E: Parser<'src, I, Expr, X> + Clone,
{
    let part = choice((
        select! { Tok::Text(t) => StrPart::Text(t.get(names).to_owned()) },
        expr.delimited_by(just(Tok::InterpStart), just(Tok::InterpEnd))
            .recover_with(via_parser(nested_delimiters(
                Tok::InterpStart,
                Tok::InterpEnd,
                [
                    (Tok::P(P::LParen), Tok::P(P::RParen)),
                    (Tok::P(P::LBracket), Tok::P(P::RBracket)),
                ],
                Expr::error,
            )))
            .map(StrPart::Interp),
    ));
    select! { Tok::StrStart(multi) => multi }
        .then(part.repeated().collect::<Fitted<_>>().map(fitted))
        .then_ignore(just(Tok::StrEnd))
        .map_with(|(multi, parts), e| Expr {
            kind: ExprKind::Str { parts, multi },
            span: e.span(),
        })
}

fn args<'src, I, X, E>(names: &'src str, expr: E) -> impl Parser<'src, I, Vec<Arg>, X> + Clone
where
    I: ValueInput<'src, Token = Tok, Span = Span>,
    X: Extra<'src, I>,
    E: Parser<'src, I, Expr, X> + Clone,
{
    let arg = field_name(names)
        .then_ignore(p(P::Colon))
        .or_not()
        .then(expr)
        .map(|(name, value)| Arg { name, value });
    arg.separated_by(p(P::Comma))
        .allow_trailing()
        .collect::<Fitted<_>>()
        .map(fitted)
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
                    value: Expr::error(s),
                }]
            },
        )))
}

/// Statements and expressions are mutually recursive through blocks, so both
/// are built here and the caller picks the one it needs.
///
/// With `fast`, operators are parsed by [`climbing`] (the fast path's
/// errors are discarded: a file with any error is parsed again); otherwise
/// by chumsky's pratt parser, whose errors the diagnostics are made of.
/// Both build the same tree (tested).
fn expr_and_block<'src, I: ValueInput<'src, Token = Tok, Span = Span>, X: Extra<'src, I>>(
    names: &'src str,
    fast: bool,
) -> (
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
        let (_, block, _) = stmt_and_block::<I, X, _>(names, expr.clone());
        let require = require_clause(expr.clone());

        let field_init = field_name(names)
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
                        then: Box::new(then),
                        els: els.map(Box::new),
                    },
                    span: e.span(),
                })
                .boxed()
        });

        let pattern = choice((
            select! { Tok::Ident(n) = e if n.get(names) == "_" => Pattern::Wildcard(e.span()) },
            ident(names)
                .separated_by(p(P::Dot))
                .at_least(1)
                .collect::<Fitted<_>>()
                .map(fitted)
                .map_with(|path, e| Pattern::Path(path, e.span())),
            string_lit(names, expr.clone()).map(Pattern::Literal),
            select! {
                Tok::Int(i) = e => Pattern::Literal(Expr { kind: ExprKind::Int(i.signed()), span: e.span() }),
                Tok::Kw(Kw::True) = e => Pattern::Literal(Expr { kind: ExprKind::Bool(true), span: e.span() }),
                Tok::Kw(Kw::False) = e => Pattern::Literal(Expr { kind: ExprKind::Bool(false), span: e.span() }),
            },
        ));
        let arm = pattern
            .separated_by(p(P::Pipe))
            .at_least(1)
            .collect::<Fitted<_>>()
            .map(fitted)
            .then_ignore(p(P::FatArrow))
            .then(expr.clone())
            .map(|(patterns, body)| MatchArm { patterns, body });
        let match_expr = kw(Kw::Match)
            .ignore_then(expr.clone())
            .then(
                arm.separated_by(seps())
                    .allow_trailing()
                    .collect::<Fitted<_>>()
                    .map(fitted)
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
                span: e.span(),
            });

        let for_expr = kw(Kw::For)
            .ignore_then(ident(names))
            .then_ignore(kw(Kw::In))
            .then(expr.clone())
            .then(block.clone())
            .map_with(|((var, iter), body), e| Expr {
                kind: ExprKind::For {
                    var: Box::new(var),
                    iter: Box::new(iter),
                    body: Box::new(body),
                },
                span: e.span(),
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
                    kind: ExprKind::Node(Box::new(NodeExpr {
                        kind,
                        name,
                        fields,
                        requires,
                        body_span,
                    })),
                    span: e.span(),
                }
            },
        );

        let list = expr
            .clone()
            .separated_by(p(P::Comma))
            .allow_trailing()
            .collect::<Fitted<_>>()
            .map(fitted)
            .delimited_by(p(P::LBracket), p(P::RBracket))
            .map_with(|items, e| Expr {
                kind: ExprKind::List(items),
                span: e.span(),
            })
            .recover_with(via_parser(nested_delimiters(
                Tok::P(P::LBracket),
                Tok::P(P::RBracket),
                [
                    (Tok::P(P::LParen), Tok::P(P::RParen)),
                    (Tok::P(P::LBrace), Tok::P(P::RBrace)),
                ],
                Expr::error,
            )));

        let record = field_init
            .clone()
            .separated_by(seps())
            .allow_trailing()
            .collect::<Fitted<_>>()
            .map(fitted)
            .delimited_by(p(P::LBrace), p(P::RBrace))
            .map_with(|fields, e| Expr {
                kind: ExprKind::Record(fields),
                span: e.span(),
            });

        let paren = expr
            .clone()
            .delimited_by(p(P::LParen), p(P::RParen))
            .map_with(|inner, e| Expr {
                kind: ExprKind::Paren(Box::new(inner)),
                span: e.span(),
            })
            .recover_with(via_parser(nested_delimiters(
                Tok::P(P::LParen),
                Tok::P(P::RParen),
                [
                    (Tok::P(P::LBracket), Tok::P(P::RBracket)),
                    (Tok::P(P::LBrace), Tok::P(P::RBrace)),
                ],
                Expr::error,
            )));

        let literal = select! {
            Tok::Int(i) => ExprKind::Int(i.signed()),
            Tok::Duration(d) => ExprKind::Duration(d.get()),
            Tok::Size(s) => ExprKind::Size(s.get()),
            Tok::Percent(x) => ExprKind::Percent(x.signed()),
            Tok::Kw(Kw::True) => ExprKind::Bool(true),
            Tok::Kw(Kw::False) => ExprKind::Bool(false),
            Tok::Kw(Kw::None) => ExprKind::None,
            Tok::Ident(n) => ExprKind::Name(n.get(names).to_owned()),
            // The lexer reported the bad token already: stand in quietly.
            Tok::Error => ExprKind::Error,
        }
        .map_with(|kind, e| Expr {
            kind,
            span: e.span(),
        });

        // Ordered by how often each starts an expression in real pipelines.
        let atom = choice((
            literal,
            string_lit(names, expr.clone()),
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

        let post = choice((
            p(P::Dot).ignore_then(field_name(names)).map(Post::Field),
            args(names, expr.clone()).map(Post::Call),
        ));

        if fast {
            return climbing(atom, post).boxed();
        }
        let bin =
            |l: Expr, op: BinOp, r: Expr, e: &mut chumsky::input::MapExtra<'src, '_, I, X>| Expr {
                kind: ExprKind::Binary(op, Box::new(l), Box::new(r)),
                span: e.span(),
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
                        span: e.span(),
                    }
                },
            ),
            prefix(
                9,
                p(P::Bang),
                |_, r: Expr, e: &mut chumsky::input::MapExtra<'src, '_, I, X>| Expr {
                    kind: ExprKind::Unary(UnOp::Not, Box::new(r)),
                    span: e.span(),
                },
            ),
            prefix(
                9,
                p(P::Minus),
                |_, r: Expr, e: &mut chumsky::input::MapExtra<'src, '_, I, X>| Expr {
                    kind: ExprKind::Unary(UnOp::Neg, Box::new(r)),
                    span: e.span(),
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
    let (stmt, block, ty) = stmt_and_block::<I, X, _>(names, expr.clone());
    (expr, block, stmt, ty)
}

/// What may follow an operand: `.field` or a call's arguments.
enum Post {
    Field(Ident),
    Call(Vec<Arg>),
}

fn apply_post(l: Expr, (op, op_span): (Post, Span)) -> Expr {
    let span = l.span.to(op_span);
    let kind = match op {
        Post::Field(f) => ExprKind::Field(Box::new(l), f),
        Post::Call(a) => ExprKind::Call {
            callee: Box::new(l),
            args: a,
        },
    };
    Expr { kind, span }
}

/// The binary operators, with their binding power (higher binds tighter);
/// all associate to the left.
fn binary_op(t: Tok) -> Option<(BinOp, u8)> {
    Some(match t {
        Tok::P(P::Star) => (BinOp::Mul, 8),
        Tok::P(P::Slash) => (BinOp::Div, 8),
        Tok::P(P::Plus) => (BinOp::Add, 7),
        Tok::P(P::Minus) => (BinOp::Sub, 7),
        Tok::Kw(Kw::In) => (BinOp::In, 6),
        Tok::P(P::Lt) => (BinOp::Lt, 5),
        Tok::P(P::Le) => (BinOp::Le, 5),
        Tok::P(P::Gt) => (BinOp::Gt, 5),
        Tok::P(P::Ge) => (BinOp::Ge, 5),
        Tok::P(P::EqEq) => (BinOp::Eq, 4),
        Tok::P(P::Ne) => (BinOp::Ne, 4),
        Tok::P(P::AndAnd) => (BinOp::And, 3),
        Tok::P(P::OrOr) => (BinOp::Or, 2),
        Tok::P(P::QQ) => (BinOp::Coalesce, 1),
        _ => return None,
    })
}

/// Operators by precedence climbing: after each operand one look at the
/// next token decides whether an operator follows and how tightly it binds,
/// where the pratt parser tries each precedence level's parser in turn.
/// Prefix `!` and `-` bind tighter than any binary operator and looser
/// than `.field` and calls, as in the pratt table.
fn climbing<'src, I, X, A, Q>(atom: A, post: Q) -> impl Parser<'src, I, Expr, X> + Clone
where
    I: ValueInput<'src, Token = Tok, Span = Span>,
    X: Extra<'src, I>,
    A: Parser<'src, I, Expr, X> + Clone + 'src,
    Q: Parser<'src, I, Post, X> + Clone + 'src,
{
    let operand = atom.foldl(post.map_with(|op, e| (op, e.span())).repeated(), apply_post);
    let prefix = choice((p(P::Bang).to(UnOp::Not), p(P::Minus).to(UnOp::Neg)))
        .map_with(|op, e| (op, e.span()));
    let unary = prefix
        .repeated()
        .foldr(operand, |(op, span): (UnOp, Span), r: Expr| Expr {
            span: span.to(r.span),
            kind: ExprKind::Unary(op, Box::new(r)),
        })
        .boxed();
    custom(move |inp| climb(inp, &unary, 0))
}

fn climb<'src, I, X, U>(
    inp: &mut chumsky::input::InputRef<'src, '_, I, X>,
    unary: &U,
    min_power: u8,
) -> Result<Expr, X::Error>
where
    I: ValueInput<'src, Token = Tok, Span = Span>,
    X: Extra<'src, I>,
    U: Parser<'src, I, Expr, X>,
{
    let mut lhs = inp.parse(unary)?;
    while let Some((op, power)) = inp.peek().and_then(binary_op) {
        if power <= min_power {
            break;
        }
        inp.skip();
        let rhs = climb(inp, unary, power)?;
        lhs = Expr {
            span: lhs.span.to(rhs.span),
            kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
        };
    }
    Ok(lhs)
}

/// `{ item, item … }`: the items and the span of the braces. A group that
/// does not parse becomes an empty list over the group.
fn braced_items<'src, I, X, T, Item>(item: Item) -> impl Parser<'src, I, (Vec<T>, Span), X> + Clone
where
    I: ValueInput<'src, Token = Tok, Span = Span>,
    X: Extra<'src, I>,
    Item: Parser<'src, I, T, X> + Clone + 'src,
{
    item.separated_by(seps())
        .allow_leading()
        .allow_trailing()
        .collect::<Vec<_>>()
        .delimited_by(p(P::LBrace), p(P::RBrace))
        .map_with(|items, e| (items, e.span()))
        .recover_with(via_parser(nested_delimiters(
            Tok::P(P::LBrace),
            Tok::P(P::RBrace),
            [
                (Tok::P(P::LParen), Tok::P(P::RParen)),
                (Tok::P(P::LBracket), Tok::P(P::RBracket)),
            ],
            |s| (Vec::new(), s),
        )))
}

/// `require COND else MESSAGE`
fn require_clause<'src, I, X, E>(expr: E) -> impl Parser<'src, I, Require, X> + Clone
where
    I: ValueInput<'src, Token = Tok, Span = Span>,
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
            span: e.span(),
        })
}

/// Statements, blocks and type expressions over an expression parser.
#[allow(clippy::type_complexity)]
fn stmt_and_block<'src, I, X, E>(
    names: &'src str,
    expr: E,
) -> (
    impl Parser<'src, I, Stmt, X> + Clone,
    impl Parser<'src, I, Block, X> + Clone,
    impl Parser<'src, I, TypeExpr, X> + Clone,
)
where
    I: ValueInput<'src, Token = Tok, Span = Span>,
    X: Extra<'src, I>,
    E: Parser<'src, I, Expr, X> + Clone + 'src,
{
    let ty = type_expr(names, expr.clone()).boxed();
    let block = recursive(|block| {
        let stmt = stmt_parser(names, expr.clone(), block, ty.clone());
        stmt.separated_by(seps())
            .allow_leading()
            .allow_trailing()
            .collect::<Fitted<_>>()
            .map(fitted)
            .delimited_by(p(P::LBrace), p(P::RBrace))
            .map_with(|stmts, e| Block {
                stmts,
                span: e.span(),
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
                    span: s,
                },
            )))
            .boxed()
    });
    let stmt = stmt_parser(names, expr, block.clone(), ty.clone());
    (stmt, block, ty)
}

/// One statement: `let`, `stage`, `require` or an expression.
fn stmt_parser<'src, I, X, E, B, T>(
    names: &'src str,
    expr: E,
    block: B,
    ty: T,
) -> impl Parser<'src, I, Stmt, X> + Clone
where
    I: ValueInput<'src, Token = Tok, Span = Span>,
    X: Extra<'src, I>,
    E: Parser<'src, I, Expr, X> + Clone + 'src,
    B: Parser<'src, I, Block, X> + Clone + 'src,
    T: Parser<'src, I, TypeExpr, X> + Clone + 'src,
{
    let require = require_clause(expr.clone());
    let let_decl = kw(Kw::Let)
        .ignore_then(ident(names))
        .then(p(P::Colon).ignore_then(ty.clone()).or_not())
        .then_ignore(p(P::Eq))
        .then(expr.clone())
        .map(|((name, ty), value)| LetDecl { name, ty, value });
    let stage = kw(Kw::Stage)
        .ignore_then(ident(names))
        .then(kw(Kw::When).ignore_then(expr.clone()).or_not())
        .then(block.clone())
        .then(kw(Kw::OnFailure).ignore_then(block.clone()).or_not())
        .map_with(|(((name, when), body), on_failure), e| StageDecl {
            name,
            when,
            body,
            on_failure,
            span: e.span(),
            doc: None,
        });
    let stmt = choice((
        let_decl.map_with(|l, e| Stmt::Let(l, e.span())),
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

/// What a pipeline's braces hold: triggers and statements, in any order.
#[derive(Clone)]
enum PipeItem {
    Trigger(Trigger),
    Stmt(Stmt),
}

fn pipe_item<'src, I, X, E, S>(
    names: &'src str,
    expr: E,
    stmt: S,
) -> impl Parser<'src, I, PipeItem, X> + Clone
where
    I: ValueInput<'src, Token = Tok, Span = Span>,
    X: Extra<'src, I>,
    E: Parser<'src, I, Expr, X> + Clone + 'src,
    S: Parser<'src, I, Stmt, X> + Clone + 'src,
{
    let trigger = kw(Kw::On)
        .ignore_then(ident(names))
        .then(args(names, expr).or_not())
        .map_with(|(kind, args), e| Trigger {
            kind,
            args: args.unwrap_or_default(),
            span: e.span(),
        });
    choice((trigger.map(PipeItem::Trigger), stmt.map(PipeItem::Stmt)))
}

fn split_pipe_items(items: Vec<PipeItem>, triggers: &mut Vec<Trigger>, stmts: &mut Vec<Stmt>) {
    for it in items {
        match it {
            PipeItem::Trigger(t) => triggers.push(t),
            PipeItem::Stmt(s) => stmts.push(s),
        }
    }
}

/// The inside of a pipeline's braces, on its own: a run of statements
/// split off a large pipeline to be parsed on another thread.
fn pipe_items<'src, I: ValueInput<'src, Token = Tok, Span = Span>, X: Extra<'src, I>>(
    names: &'src str,
) -> impl Parser<'src, I, Vec<PipeItem>, X> {
    let (expr, _, stmt, _) = expr_and_block::<I, X>(names, true);
    pipe_item(names, expr, stmt)
        .separated_by(seps())
        .allow_leading()
        .allow_trailing()
        .collect::<Vec<_>>()
        .then_ignore(end())
}

fn module<'src, I: ValueInput<'src, Token = Tok, Span = Span>, X: Extra<'src, I>>(
    names: &'src str,
    fast: bool,
) -> impl Parser<'src, I, Module, X> {
    let (expr, block, stmt, ty) = expr_and_block::<I, X>(names, fast);

    let use_decl = kw(Kw::Use)
        .ignore_then(choice((
            kw(Kw::Plugin)
                .ignore_then(plain_string(names))
                .map(|(s, span)| UseTarget::Plugin(s, span)),
            plain_string(names).map(|(s, span)| match s.split_once('@') {
                Some((name, version)) => UseTarget::Versioned {
                    name: name.to_owned(),
                    version: version.to_owned(),
                    span,
                },
                None => UseTarget::Path(s, span),
            }),
            ident(names)
                .separated_by(p(P::Dot))
                .at_least(1)
                .collect::<Fitted<_>>()
                .map(fitted)
                .map(UseTarget::Std),
        )))
        .then(kw(Kw::As).ignore_then(ident(names)).or_not())
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
        .ignore_then(ident(names))
        .then_ignore(p(P::Colon))
        .then(ty.clone())
        .then(p(P::Eq).ignore_then(expr.clone()).or_not())
        .map(|((name, ty), default)| ItemKind::Param(ParamDecl { name, ty, default }));

    let let_item = kw(Kw::Let)
        .ignore_then(ident(names))
        .then(p(P::Colon).ignore_then(ty.clone()).or_not())
        .then_ignore(p(P::Eq))
        .then(expr.clone())
        .map(|((name, ty), value)| ItemKind::Let(LetDecl { name, ty, value }));

    let fn_param = ident(names)
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
        .ignore_then(ident(names))
        .then(
            fn_param
                .separated_by(p(P::Comma))
                .allow_trailing()
                .collect::<Fitted<_>>()
                .map(fitted)
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
        .ignore_then(ident(names))
        .then(
            ident(names)
                .map(|name| Variant { name, doc: None })
                .separated_by(seps())
                .allow_trailing()
                .collect::<Fitted<_>>()
                .map(fitted)
                .delimited_by(p(P::LBrace), p(P::RBrace)),
        )
        .map(|(name, variants)| ItemKind::Enum(EnumDecl { name, variants }));

    let type_decl = kw(Kw::Type)
        .ignore_then(ident(names))
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

    let pipeline = kw(Kw::Default)
        .or_not()
        .then_ignore(kw(Kw::Pipeline))
        .then(ident(names))
        .then(braced_items(pipe_item(names, expr.clone(), stmt.clone())))
        .map(|((is_default, name), (items, span))| {
            let mut triggers = Vec::new();
            let mut stmts = Vec::with_capacity(items.len());
            split_pipe_items(items, &mut triggers, &mut stmts);
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
            span: e.span(),
        });
    let policy = kw(Kw::Policy)
        .ignore_then(ident(names))
        .then_ignore(kw(Kw::For))
        .then_ignore(kw(Kw::Step))
        .then(ident(names))
        .then(kw(Kw::When).ignore_then(expr.clone()).or_not())
        .then(
            require
                .separated_by(seps())
                .allow_trailing()
                .collect::<Fitted<_>>()
                .map(fitted)
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
            span: e.span(),
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
    names: &str,
    src: &str,
    cache: Option<&Arc<PieceCache>>,
) -> (Module, Vec<Diagnostic>, Recycle) {
    let eoi = Span::new(src.len(), src.len());
    if let Some(cache) = cache
        && let Some((m, recycle)) = parse_clean_reusing(file, tokens, names, src, eoi, cache)
    {
        return (m, Vec::new(), recycle);
    }
    // Fast path: most files parse cleanly, and a parse without error
    // tracking is several times faster. Only a file with errors is parsed
    // again with rich errors for its diagnostics.
    let pieces = match parallelism() {
        1 => 1,
        // More pieces than threads: each thread takes the next piece when
        // it is done with one, and they finish at about the same time.
        n => n * PIECES_PER_THREAD,
    };
    if let Some(m) = parse_clean(tokens, names, eoi, PARALLEL_MIN_TOKENS, pieces) {
        return (m, Vec::new(), Recycle::default());
    }
    let input = tokens.split_token_span(eoi);
    let (out, errs) = module::<_, Err<'_>>(names, false)
        .parse(input)
        .into_output_errors();
    let mut diags = Vec::new();
    for e in errs {
        diags.push(rich_to_diagnostic(file, &e, names));
    }
    (out.unwrap_or_default(), diags, Recycle::default())
}

/// Statements of large pipeline bodies, parsed, kept from one parse of a
/// file to the next in an editor's session, so that an edit re-parses only
/// the statements it touched. The others come, by their text, from:
///
/// - the *spare* trees of a parse no longer in use: when a reusing parse is
///   dropped (the database has moved on two versions), its body is given
///   back here, and the next parse *moves* each unchanged statement out of
///   it, shifting its spans to where its text now starts; nothing is
///   copied and nothing freed;
/// - else the last parse, while it is alive: its statements are copied
///   (right after a file is opened, or while an old version is still held).
///
/// The tokens of the last parse are kept too: the next version is lexed
/// again only around what changed ([`super::lexer::relex`]).
#[derive(Default)]
pub struct PieceCache {
    files: std::sync::Mutex<rustc_hash::FxHashMap<String, FileCache>>,
    generation: std::sync::atomic::AtomicU64,
    reused: std::sync::atomic::AtomicUsize,
    moved: std::sync::atomic::AtomicUsize,
    relexed: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct FileCache {
    /// Trees given back by a dropped parse.
    spare: Option<Spare>,
    /// The last reusing parse and where its statements are.
    live: Option<(std::sync::Weak<super::Parsed>, Arc<Index>)>,
    /// The last reusing parse's text and tokens.
    lexed: Option<Box<KeptLex>>,
}

struct KeptLex {
    text: Arc<str>,
    lexed: super::lexer::Lexed,
    /// Where the body's statements start, and where it ends.
    restarts: Vec<u32>,
}

use std::sync::Arc;

/// Where a reusing parse's statements are: each piece's text (a range of
/// the parsed source) and the range of the body's items (triggers and
/// statements in source order) it parsed to.
struct Index {
    generation: u64,
    /// Whether the parse had spare trees to take from.
    had_spare: bool,
    /// The span of the body (to find the pipeline again).
    body: Span,
    src: Arc<str>,
    pieces: Vec<IndexedPiece>,
}

struct IndexedPiece {
    /// The text's range in the source (its start is where its items'
    /// spans are relative to).
    start: u32,
    end: u32,
    /// The piece's items in the body's.
    first: u32,
    count: u32,
}

impl Index {
    fn text(&self, p: &IndexedPiece) -> &str {
        self.src.get(p.start as usize..p.end as usize).unwrap_or("")
    }

    /// For each of `texts` (a new version's pieces, in order), the piece
    /// of this parse with the same text (see [`super::align`]).
    fn align(&self, texts: &[&str]) -> Vec<Option<usize>> {
        let old: Vec<&str> = self.pieces.iter().map(|p| self.text(p)).collect();
        super::align(texts, &old)
    }
}

/// A dropped parse's body items, in source order, each taken at most once.
struct Spare {
    index: Arc<Index>,
    slots: Vec<Option<PipeItem>>,
}

impl PieceCache {
    /// How many statements parses have taken from the cache so far.
    pub fn reused(&self) -> usize {
        self.reused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Of those, how many were moved from a dropped parse (not copied).
    pub fn moved(&self) -> usize {
        self.moved.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Drops what is kept for `file` (taken out of the session, or no
    /// longer with a large pipeline).
    pub fn forget(&self, file: &str) {
        let gone = self.lock().remove(file);
        // Freed outside the lock: dropping the live parse's weak reference
        // or spare trees takes no lock, but a parse given back would.
        drop(gone);
    }

    /// How many versions were lexed only around what changed.
    pub fn relexed(&self) -> usize {
        self.relexed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `src`'s tokens from the last parse's, if `file` was parsed before
    /// and the change allows it.
    pub(crate) fn relex(&self, file: &str, src: &str) -> Option<super::lexer::Lexed> {
        let kept = self.lock().get_mut(file)?.lexed.take()?;
        let KeptLex {
            text,
            lexed,
            restarts,
        } = *kept;
        // The body's statements are inside the pipeline's braces.
        let lexed = super::lexer::relex(file, src, &text, lexed, &restarts, 1)?;
        self.relexed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(lexed)
    }

    /// Keeps the tokens of a clean reusing parse of `src` for the next
    /// version.
    pub(crate) fn keep_lexed(
        &self,
        file: &str,
        src: Arc<str>,
        lexed: super::lexer::Lexed,
        restarts: Vec<u32>,
    ) {
        let kept = Box::new(KeptLex {
            text: src,
            lexed,
            restarts,
        });
        self.lock().entry(file.to_owned()).or_default().lexed = Some(kept);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, rustc_hash::FxHashMap<String, FileCache>> {
        self.files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records `parsed`, just made by a reusing parse of `file`, as the one
    /// to copy from until it is dropped. When that parse had no spare trees
    /// (the file was just opened), a copy of its trees is made on another
    /// thread, so that the next edit moves trees rather than copying them.
    pub fn note_live(self: &Arc<Self>, file: &str, parsed: &Arc<super::Parsed>) {
        let Some(give) = &parsed.recycle.0 else {
            return;
        };
        let index = Arc::clone(&give.index);
        let warm = !index.had_spare;
        self.lock().entry(file.to_owned()).or_default().live =
            Some((Arc::downgrade(parsed), index));
        if warm {
            let (cache, parsed, file) = (Arc::clone(self), Arc::downgrade(parsed), file.to_owned());
            // No thread to be had: the next edit copies instead.
            let _ = std::thread::Builder::new()
                .name("weir-spare-trees".into())
                .spawn(move || cache.warm(file, &parsed));
        }
    }

    /// Copies a live parse's body into spare trees.
    fn warm(&self, file: String, parsed: &std::sync::Weak<super::Parsed>) {
        let Some(parsed) = parsed.upgrade() else {
            return;
        };
        let Some(give) = &parsed.recycle.0 else {
            return;
        };
        let index = Arc::clone(&give.index);
        let slots = items_in_order(&parsed.module, index.body)
            .into_iter()
            .map(|r| Some(r.copied()))
            .collect();
        // Dropping it may give it back (and take the lock): not under it.
        drop(parsed);
        self.offer(file, Spare { index, slots });
    }

    /// Keeps `spare` as `file`'s spare trees unless it has newer ones.
    fn offer(&self, file: String, spare: Spare) {
        let old = {
            let mut files = self.lock();
            let f = files.entry(file).or_default();
            if f.spare
                .as_ref()
                .is_some_and(|s| s.index.generation > spare.index.generation)
            {
                Some(spare)
            } else {
                f.spare.replace(spare)
            }
        };
        // Freed outside the lock.
        drop(old);
    }
}

/// What a reusing parse gives back to its cache when it is dropped: see
/// [`PieceCache`]. Not part of the parse's value (always equal, cloned
/// empty).
#[derive(Default)]
pub struct Recycle(Option<Box<Give>>);

pub(crate) struct Give {
    cache: Arc<PieceCache>,
    file: String,
    index: Arc<Index>,
    /// Where the body's statements start and where it ends, until taken.
    restarts: Vec<u32>,
}

impl Clone for Recycle {
    fn clone(&self) -> Self {
        Recycle(None)
    }
}
impl PartialEq for Recycle {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Recycle {}
impl std::hash::Hash for Recycle {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}
impl std::fmt::Debug for Recycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recycle")
    }
}

impl Recycle {
    pub(crate) fn source(&self) -> Option<&Arc<str>> {
        self.0.as_ref().map(|g| &g.index.src)
    }

    /// The offsets where a reusing parse's body statements start and
    /// where the body ends, with the source they are offsets in (given
    /// once).
    pub(crate) fn take_restarts(&mut self) -> Option<(Vec<u32>, Arc<str>)> {
        let g = self.0.as_mut()?;
        let restarts = std::mem::take(&mut g.restarts);
        (!restarts.is_empty()).then(|| (restarts, Arc::clone(&g.index.src)))
    }

    /// Gives the body of `module` (a parse being dropped) to the cache as
    /// spare trees, unless the cache has spares of a newer parse.
    pub(crate) fn give_back(&mut self, module: &mut Module) {
        let Some(give) = self.0.take() else {
            return;
        };
        let Some(p) = pipeline_with_body(module, give.index.body) else {
            return;
        };
        let mut stmts = std::mem::take(&mut p.body.stmts);
        // As parsed: doc comments are attached after parsing, to the text
        // around the statement, which may have changed.
        strip_docs(&mut stmts);
        let slots = in_source_order(
            std::mem::take(&mut p.triggers),
            stmts,
            |t| Some(PipeItem::Trigger(t)),
            |s| Some(PipeItem::Stmt(s)),
        );
        give.cache.offer(
            give.file,
            Spare {
                index: give.index,
                slots,
            },
        );
    }
}

fn strip_docs(stmts: &mut [Stmt]) {
    for s in stmts {
        if let Stmt::Stage(st) = s {
            st.doc = None;
            strip_docs(&mut st.body.stmts);
        }
    }
}

/// A body item of a live parse, to copy.
#[derive(Clone, Copy)]
enum ItemRef<'a> {
    Trigger(&'a Trigger),
    Stmt(&'a Stmt),
}

impl ItemRef<'_> {
    /// A copy, as parsed (without doc comments).
    fn copied(self) -> PipeItem {
        match self {
            ItemRef::Trigger(t) => PipeItem::Trigger(t.clone()),
            ItemRef::Stmt(s) => {
                let mut s = s.clone();
                strip_docs(std::slice::from_mut(&mut s));
                PipeItem::Stmt(s)
            }
        }
    }
}

/// The body items of the pipeline whose body has span `body`, in source
/// order.
fn items_in_order(module: &Module, body: Span) -> Vec<ItemRef<'_>> {
    let Some(p) = module.items.iter().find_map(|it| match &it.kind {
        ItemKind::Pipeline(p) if p.body.span == body => Some(p),
        _ => None,
    }) else {
        return Vec::new();
    };
    in_source_order(&p.triggers, &p.body.stmts, ItemRef::Trigger, ItemRef::Stmt)
}

/// The pipeline whose body has span `body`.
fn pipeline_with_body(module: &mut Module, body: Span) -> Option<&mut PipelineDecl> {
    module.items.iter_mut().find_map(|it| match &mut it.kind {
        ItemKind::Pipeline(p) if p.body.span == body => Some(p),
        _ => None,
    })
}

/// A pipeline's triggers and statements (each in source order) merged back
/// into one list in source order, each made an `R`.
fn in_source_order<T, S, R>(
    triggers: impl IntoIterator<Item = T>,
    stmts: impl IntoIterator<Item = S>,
    trigger: impl Fn(T) -> R,
    stmt: impl Fn(S) -> R,
) -> Vec<R>
where
    T: std::borrow::Borrow<Trigger>,
    S: std::borrow::Borrow<Stmt>,
{
    let mut out = Vec::new();
    let mut triggers = triggers.into_iter().peekable();
    for s in stmts {
        let at = s.borrow().span().start;
        while let Some(t) = triggers.next_if(|t| t.borrow().span.start < at) {
            out.push(trigger(t));
        }
        out.push(stmt(s));
    }
    out.extend(triggers.map(trigger));
    out
}

/// [`parse_clean`] for a file parsed before with `cache`: the largest
/// pipeline body is cut before each statement, and each statement's tree
/// is taken from the cache when its text is there. `None` when the file
/// has an error, or no pipeline large enough to be worth it.
fn parse_clean_reusing(
    file: &str,
    tokens: &[(Tok, Span)],
    names: &str,
    src: &str,
    eoi: Span,
    cache: &Arc<PieceCache>,
) -> Option<(Module, Recycle)> {
    use std::sync::atomic::Ordering::Relaxed;
    let Some(body) = largest_pipeline_body(tokens).filter(|(o, c)| c - o > REUSE_MIN_TOKENS) else {
        // Nothing to reuse any more (the pipeline shrank or went away).
        cache.forget(file);
        return None;
    };
    // Every statement its own piece: cuts that move with the text, not
    // with token counts, so an edit leaves the other pieces' texts alone.
    let pieces = statement_pieces(tokens, body.0 + 1, body.1, usize::MAX);
    let texts: Vec<&str> = pieces.iter().map(|r| piece_text(tokens, src, r)).collect();
    let (spare, live) = {
        let mut files = cache.lock();
        let f = files.entry(file.to_owned()).or_default();
        (f.spare.take(), f.live.clone())
    };
    let live = live.and_then(|(parsed, index)| Some((parsed.upgrade()?, index)));
    // Where each piece's unchanged trees are: in the spare trees, else in
    // the live parse (looked at only when the spares lack some).
    let in_spare = spare.as_ref().map(|s| s.index.align(&texts));
    let in_live = live.as_ref().and_then(|(parsed, index)| {
        let lacking = in_spare
            .as_ref()
            .is_none_or(|found| found.iter().any(Option::is_none));
        lacking.then(|| {
            (
                index.align(&texts),
                items_in_order(&parsed.module, index.body),
            )
        })
    });
    let had_spare = spare.is_some();
    let spare = std::sync::Mutex::new(spare);
    // Moves a piece's items from the spare trees onto `out`; returns where
    // their text started.
    let take_spare = |i: usize, out: &mut Vec<PipeItem>| {
        let j = in_spare.as_ref()?[i]?;
        let mut spare = spare
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = spare.as_mut()?;
        let p = s.index.pieces.get(j)?;
        let slots = s
            .slots
            .get_mut(p.first as usize..(p.first + p.count) as usize)?;
        if slots.iter().any(Option::is_none) {
            return None;
        }
        out.extend(slots.iter_mut().filter_map(Option::take));
        Some(p.start)
    };
    // Or copies them from the live parse.
    let copy_live = |i: usize, out: &mut Vec<PipeItem>| {
        let (found, items) = in_live.as_ref()?;
        let (_, index) = live.as_ref()?;
        let p = index.pieces.get(found[i]?)?;
        let refs = items.get(p.first as usize..(p.first + p.count) as usize)?;
        out.extend(refs.iter().map(|r| r.copied()));
        Some(p.start)
    };
    // A group's pieces (numbered): their items, and how many each has.
    let work = |group: &[(usize, Piece)]| {
        let parser = pipe_items::<_, extra::Default>(names);
        // The pieces with no tree to reuse are parsed first: one with an
        // error fails the parse before any spare tree is taken, so the
        // spares are still there for the version that fixes it.
        let mut fresh: Vec<Option<Vec<PipeItem>>> = Vec::with_capacity(group.len());
        for (i, r) in group {
            let reusable = in_spare.as_ref().is_some_and(|f| f[*i].is_some())
                || in_live.as_ref().is_some_and(|(f, _)| f[*i].is_some());
            fresh.push(if reusable {
                None
            } else {
                Some(parse_piece(&parser, tokens, r.clone(), eoi)?)
            });
        }
        let mut items = Vec::with_capacity(group.len());
        let mut counts = Vec::with_capacity(group.len());
        let (mut reused, mut moved) = (0, 0);
        for ((i, r), parsed) in group.iter().zip(fresh) {
            if let Some(parsed) = parsed {
                counts.push(parsed.len() as u32);
                items.extend(parsed);
                continue;
            }
            let start = tokens[r.start].1.start;
            let before = items.len();
            let found = match take_spare(*i, &mut items) {
                Some(was) => {
                    moved += 1;
                    Some(was)
                }
                None => copy_live(*i, &mut items),
            };
            match found {
                Some(was) => {
                    reused += 1;
                    let by = i64::from(start) - i64::from(was);
                    if by != 0 {
                        for it in &mut items[before..] {
                            it.shift(by);
                        }
                    }
                }
                None => items.extend(parse_piece(&parser, tokens, r.clone(), eoi)?),
            }
            counts.push((items.len() - before) as u32);
        }
        Some((items, (counts, reused, moved)))
    };
    // With spare trees almost every piece is a move: one thread does it
    // quicker than two taking turns at the spares. Without, parsing is the
    // work, shared by all cores.
    let numbered: Vec<(usize, Piece)> = pieces.iter().cloned().enumerate().collect();
    let per = if had_spare {
        numbered.len()
    } else {
        numbered.len().div_ceil(parallelism())
    };
    let groups: Vec<_> = numbered.chunks(per.max(1)).collect();
    let Some((module, done)) = parse_around_body(tokens, names, eoi, body, &groups, &work) else {
        // An error: what is left of the spares is kept for the next version.
        if let Some(left) = spare
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            cache.offer(file.to_owned(), left);
        }
        return None;
    };
    let mut index = Index {
        generation: cache.generation.fetch_add(1, Relaxed),
        had_spare,
        body: tokens[body.0].1.to(tokens[body.1].1),
        src: Arc::from(src),
        pieces: Vec::with_capacity(pieces.len()),
    };
    let mut first = 0u32;
    let mut spans = pieces.iter().map(|r| piece_span(tokens, r));
    for (counts, reused, moved) in done {
        cache.reused.fetch_add(reused, Relaxed);
        cache.moved.fetch_add(moved, Relaxed);
        for count in counts {
            let span = spans.next().unwrap_or_default();
            index.pieces.push(IndexedPiece {
                start: span.start,
                end: span.end,
                first,
                count,
            });
            first += count;
        }
    }
    let restarts = pieces
        .iter()
        .map(|r| tokens[r.start].1.start)
        .chain([tokens[body.1].1.start])
        .collect();
    let recycle = Recycle(Some(Box::new(Give {
        cache: Arc::clone(cache),
        file: file.to_owned(),
        index: Arc::new(index),
        restarts,
    })));
    Some((module, recycle))
}

/// The source text of the tokens `r` (from the first's start to the last's end).
fn piece_text<'s>(tokens: &[(Tok, Span)], src: &'s str, r: &std::ops::Range<usize>) -> &'s str {
    src.get(piece_span(tokens, r).range()).unwrap_or("")
}

/// Where the tokens `r` are, from the first's start to the last's end.
fn piece_span(tokens: &[(Tok, Span)], r: &std::ops::Range<usize>) -> Span {
    match tokens.get(r.start..r.end) {
        Some([first, .., last]) => first.1.to(last.1),
        Some([only]) => only.1,
        _ => Span::default(),
    }
}

/// A piece of a pipeline body: a range of tokens holding whole statements.
type Piece = std::ops::Range<usize>;

/// One piece of a pipeline body parsed alone; `None` if it has an error.
fn parse_piece<'src, P>(
    parser: &P,
    tokens: &'src [(Tok, Span)],
    r: std::ops::Range<usize>,
    eoi: Span,
) -> Option<Vec<PipeItem>>
where
    P: Parser<
            'src,
            chumsky::input::MappedInput<'src, Tok, Span, &'src [(Tok, Span)]>,
            Vec<PipeItem>,
        >,
{
    let piece_eoi = tokens.get(r.end).map_or(eoi, |t| t.1);
    parser
        .parse(tokens[r].split_token_span(piece_eoi))
        .into_result()
        .ok()
}

/// A group's items and other result, `None` when it has an error.
type GroupResult<G> = Option<(Vec<PipeItem>, G)>;

/// Parses a file whose pipeline body `open..close` is done in `groups` of
/// pieces by `work`, beside the file's outline (the file with that body
/// emptied), which this thread parses first. The threads take the groups
/// in turn from a shared counter, so one that is slower (a new thread's
/// first allocations are fresh memory) takes fewer. The groups' items are
/// put into the body in order; each group's other result is returned.
/// `None` when the outline or any group has an error.
fn parse_around_body<T, G, W>(
    tokens: &[(Tok, Span)],
    names: &str,
    eoi: Span,
    (open, close): (usize, usize),
    groups: &[&[T]],
    work: &W,
) -> Option<(Module, Vec<G>)>
where
    T: Sync,
    G: Send,
    W: Fn(&[T]) -> Option<(Vec<PipeItem>, G)> + Sync,
{
    use std::sync::atomic::Ordering::Relaxed;
    let mut outline = Vec::with_capacity(tokens.len() - (close - open) + 1);
    outline.extend_from_slice(&tokens[..=open]);
    outline.extend_from_slice(&tokens[close..]);
    let body_span = tokens[open].1.to(tokens[close].1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    // Takes groups until none is left or one has an error.
    let take = || {
        let mut done = Vec::new();
        while !failed.load(Relaxed) {
            let i = next.fetch_add(1, Relaxed);
            let Some(&group) = groups.get(i) else { break };
            let result = work(group);
            if result.is_none() {
                failed.store(true, Relaxed);
            }
            done.push((i, result));
        }
        done
    };
    let (module, taken) = std::thread::scope(|scope| {
        let helpers = parallelism().min(groups.len()).saturating_sub(1);
        let workers: Vec<_> = (0..helpers)
            .map(|_| {
                std::thread::Builder::new()
                    .stack_size(crate::LARGE_STACK)
                    .spawn_scoped(scope, take)
            })
            .collect();
        // The outline first: when it has an error, this thread takes no
        // group (an editor's parse, whose one group is this thread's, then
        // takes no spare trees).
        let module = module::<_, extra::Default>(names, true)
            .parse(outline.split_token_span(eoi))
            .into_result()
            .ok();
        let mut taken = Vec::new();
        if module.is_some() {
            taken = take();
        } else {
            failed.store(true, Relaxed);
        }
        for w in workers {
            // A thread that could not start or panicked: its groups are
            // done below.
            if let Ok(Ok(more)) = w.map(std::thread::ScopedJoinHandle::join) {
                taken.extend(more);
            }
        }
        (module, taken)
    });
    let mut module = module?;
    // For each group, its result once a thread has taken it.
    let mut done: Vec<Option<GroupResult<G>>> =
        std::iter::repeat_with(|| None).take(groups.len()).collect();
    for (i, result) in taken {
        done[i] = Some(result);
    }
    // A group that does not parse makes the file unclean: no second try.
    if done.iter().any(|d| matches!(d, Some(None))) {
        return None;
    }
    let count: usize = done
        .iter()
        .flatten()
        .flatten()
        .map(|(its, _)| its.len())
        .sum();
    let pipeline = pipeline_with_body(&mut module, body_span)?;
    // Each item is moved once, from its group straight into the pipeline.
    let mut stmts = Vec::with_capacity(count);
    let mut rest = Vec::with_capacity(groups.len());
    for (group, &range) in done.into_iter().zip(groups) {
        let (its, other) = match group {
            Some(result) => result?,
            None => work(range)?,
        };
        split_pipe_items(its, &mut pipeline.triggers, &mut stmts);
        rest.push(other);
    }
    pipeline.body.stmts = stmts;
    Some((module, rest))
}

impl super::shift::Shift for PipeItem {
    fn shift(&mut self, by: i64) {
        match self {
            PipeItem::Trigger(t) => t.shift(by),
            PipeItem::Stmt(s) => s.shift(by),
        }
    }
}

/// Pipelines with fewer tokens than this in their body are parsed whole,
/// with no pieces reused: they parse in a few milliseconds.
const REUSE_MIN_TOKENS: usize = 2_000;

/// How many pieces a large pipeline body is cut into per thread.
const PIECES_PER_THREAD: usize = 4;

/// Pipelines with fewer tokens than this in their body are parsed on the
/// calling thread alone.
const PARALLEL_MIN_TOKENS: usize = 40_000;

/// The module, if the tokens parse without any error. A pipeline body of
/// more than `split_min` tokens is cut between statements into `n` pieces,
/// which the threads take in turn; the result is the same tree as one
/// parse.
fn parse_clean(
    tokens: &[(Tok, Span)],
    names: &str,
    eoi: Span,
    split_min: usize,
    n: usize,
) -> Option<Module> {
    let parse_all = |toks: &[(Tok, Span)]| {
        module::<_, extra::Default>(names, true)
            .parse(toks.split_token_span(eoi))
            .into_result()
            .ok()
    };
    let Some(body) = largest_pipeline_body(tokens).filter(|(o, c)| c - o > split_min) else {
        return parse_all(tokens);
    };
    let pieces = statement_pieces(tokens, body.0 + 1, body.1, n);
    if pieces.len() < 2 {
        return parse_all(tokens);
    }
    // Each group is one piece.
    let work = |group: &[std::ops::Range<usize>]| {
        let parser = pipe_items::<_, extra::Default>(names);
        Some((parse_piece(&parser, tokens, group[0].clone(), eoi)?, ()))
    };
    let groups: Vec<_> = pieces.chunks(1).collect();
    parse_around_body(tokens, names, eoi, body, &groups, &work).map(|(module, _)| module)
}

fn parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// The token indices of the `{` and `}` of the pipeline with the largest body.
fn largest_pipeline_body(tokens: &[(Tok, Span)]) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        match tokens[i].0 {
            Tok::Kw(Kw::Pipeline) if depth == 0 => {
                if let (Some((Tok::Ident(_), _)), Some((Tok::P(P::LBrace), _))) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                {
                    let open = i + 2;
                    let close = matching_close(tokens, open)?;
                    if best.is_none_or(|(o, c)| c - o < close - open) {
                        best = Some((open, close));
                    }
                    i = close + 1;
                    continue;
                }
            }
            t if opens(t) => depth += 1,
            t if closes(t) => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    best
}

fn opens(t: Tok) -> bool {
    matches!(
        t,
        Tok::P(P::LBrace | P::LParen | P::LBracket) | Tok::InterpStart | Tok::StrStart(_)
    )
}
fn closes(t: Tok) -> bool {
    matches!(
        t,
        Tok::P(P::RBrace | P::RParen | P::RBracket) | Tok::InterpEnd | Tok::StrEnd
    )
}

fn matching_close(tokens: &[(Tok, Span)], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, (t, _)) in tokens.iter().enumerate().skip(open) {
        if opens(*t) {
            depth += 1;
        } else if closes(*t) {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// Cuts `from..to` into about `n` ranges of whole statements. A cut goes
/// before a `let` or `stage` at the body's own depth (not after a `.`,
/// where a keyword is a field name): those words can only begin a
/// statement, so each range parses alone exactly as it does in place.
fn statement_pieces(
    tokens: &[(Tok, Span)],
    from: usize,
    to: usize,
    n: usize,
) -> Vec<std::ops::Range<usize>> {
    let target = (to - from).div_ceil(n.max(1));
    let mut pieces = Vec::new();
    let mut start = from;
    let mut depth = 0usize;
    for i in from..to {
        let t = tokens[i].0;
        if depth == 0
            && i - start >= target
            && matches!(t, Tok::Kw(Kw::Let | Kw::Stage))
            && !matches!(tokens[i - 1].0, Tok::P(P::Dot))
        {
            pieces.push(start..i);
            start = i;
        }
        if opens(t) {
            depth += 1;
        } else if closes(t) {
            depth = depth.saturating_sub(1);
        }
    }
    pieces.push(start..to);
    pieces
}

fn rich_to_diagnostic(file: &str, e: &Rich<'_, Tok, Span>, names: &str) -> Diagnostic {
    let span = *e.span();
    let found = match e.found() {
        None => "the end of the file".to_owned(),
        Some(Tok::Ident(n)) => format!("`{}`", n.get(names)),
        Some(t) => t.to_string(),
    };
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

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use crate::syntax::lexer::lex;

    /// Parsing a pipeline cut into pieces gives the tree of one parse.
    fn same_tree_in_pieces(src: &str) -> usize {
        let lexed = lex("t.weir", src);
        let eoi = Span::new(src.len(), src.len());
        let whole = parse_clean(&lexed.tokens, &lexed.strings, eoi, usize::MAX, 1);
        let mut compared = 0;
        for n in 2..6 {
            let pieces = parse_clean(&lexed.tokens, &lexed.strings, eoi, 0, n);
            assert_eq!(whole, pieces, "{n} pieces of:\n{src}");
            compared += usize::from(whole.is_some());
        }
        compared
    }

    #[test]
    fn a_pipeline_parsed_in_pieces_is_the_pipeline_parsed_at_once() {
        let tricky = r#"
            enum Env { dev, prod }
            pipeline small { step "a" { run: "a" } }
            pub default pipeline big {
              on push(branches: ["main"])
              let a = step "a" { run: "echo ${ { let: 1 }.let }", outputs: { let: file("x") } };
              let b = a.let;
              on tag(pattern: "v*")
              stage deploy when true { let c = step "c" { run: "c" } }
              for e in [Env.dev, Env.prod] { let d = step "d ${e}" { run: "d" } }
              if true { step "e" { run: "e" } } else { step "f" { run: "f" } }
              require true else "x",
              let g: int = 1 + (2 * 3)
              match Env.dev { Env.dev => step "h" { run: "h" }, _ => step "i" { run: "i" } }
              stage last { step "j" { run: "j" } } on_failure { step "k" { run: "k" } }
            }
        "#;
        assert_eq!(same_tree_in_pieces(tricky), 4);
        let lexed = lex("t.weir", tricky);
        let (open, close) = largest_pipeline_body(&lexed.tokens).unwrap();
        let cuts: Vec<Tok> = statement_pieces(&lexed.tokens, open + 1, close, 1000)
            .iter()
            .skip(1)
            .map(|r| lexed.tokens[r.start].0)
            .collect();
        // Cut before each `let` and `stage` of the body, and nowhere else.
        assert_eq!(
            cuts,
            [Kw::Let, Kw::Let, Kw::Stage, Kw::Let, Kw::Stage].map(Tok::Kw),
            "{cuts:?}"
        );
        assert_eq!(same_tree_in_pieces(&crate::generated::pipeline(300)), 4);
        // A file with an error is not parsed clean, cut or not.
        let broken = crate::generated::pipeline(40).replace("step 7\"", "step 7");
        assert_eq!(same_tree_in_pieces(&broken), 0);
    }

    /// The fast path (precedence climbing, no error tracking) and the
    /// diagnostics path (pratt, rich errors) accept the same sources and
    /// build the same trees.
    fn fast_and_rich_agree(src: &str) -> bool {
        let lexed = lex("t.weir", src);
        let eoi = Span::new(src.len(), src.len());
        let input = lexed.tokens.split_token_span(eoi);
        let fast = module::<_, extra::Default>(&lexed.strings, true)
            .parse(input)
            .into_result()
            .ok();
        let (rich, errors) = module::<_, Err<'_>>(&lexed.strings, false)
            .parse(input)
            .into_output_errors();
        assert_eq!(fast.is_some(), errors.is_empty(), "{src}\n{errors:?}");
        if let Some(tree) = &fast {
            assert_eq!(Some(tree), rich.as_ref(), "{src}");
        }
        fast.is_some()
    }

    fn random_expr(rng: &mut rand::rngs::StdRng, depth: u32) -> String {
        use rand::Rng;
        const ATOMS: &[&str] = &[
            "a",
            "b.c",
            "1",
            "\"s ${x + 1} t\"",
            "f(x, y: 2)",
            "[1, 2,]",
            "{ k: 1, m: a }",
            "none",
            "true",
            "5m",
            "10%",
            "Env.dev",
        ];
        const OPS: &[&str] = &[
            "*", "/", "+", "-", "in", "<", "<=", ">", ">=", "==", "!=", "&&", "||", "??",
        ];
        if depth == 0 {
            return ATOMS[rng.random_range(0..ATOMS.len())].to_owned();
        }
        let sub = |rng: &mut rand::rngs::StdRng| random_expr(rng, depth - 1);
        match rng.random_range(0..8) {
            0 => format!("!{}", sub(rng)),
            1 => format!("-{}", sub(rng)),
            2 => format!("({})", sub(rng)),
            3 => format!("{}.f", sub(rng)),
            4 => format!("{}(x, {})", sub(rng), sub(rng)),
            _ => {
                let op = OPS[rng.random_range(0..OPS.len())];
                format!("{} {op} {}", sub(rng), sub(rng))
            }
        }
    }

    #[test]
    fn operators_parse_the_same_on_the_fast_path_and_with_diagnostics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut accepted = 0;
        for _ in 0..1500 {
            let depth = rng.random_range(1..5);
            let e = random_expr(&mut rng, depth);
            accepted += usize::from(fast_and_rich_agree(&format!(
                "pipeline p {{ let x = {e}\n step \"s\" {{ run: \"${{ {e} }}\", when: {e} }} }}"
            )));
        }
        assert_eq!(accepted, 1500);
        // Token soup: mostly rejected, and rejected by both alike.
        let words = [
            "a", "1", "+", "-", "!", ".", "f", "(", ")", "*", "==", "in", "??", ",",
        ];
        let mut rejected = 0;
        for _ in 0..1500 {
            let n = rng.random_range(1..8);
            let soup: Vec<&str> = (0..n)
                .map(|_| words[rng.random_range(0..words.len())])
                .collect();
            let src = format!("pipeline p {{ let x = {} }}", soup.join(" "));
            rejected += usize::from(!fast_and_rich_agree(&src));
        }
        assert!(rejected > 500, "{rejected}");
    }

    #[test]
    fn a_parse_reusing_the_last_versions_statements_is_a_fresh_parse() {
        use crate::syntax::{Parsed, parse, parse_reusing};
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let cache = Arc::new(PieceCache::default());
        let mut text = crate::generated::pipeline(120);
        assert_eq!(
            parse_reusing("g.weir", &text, Some(&cache)),
            parse("g.weir", &text)
        );
        assert_eq!(cache.reused(), 0);
        let lines =
            |t: &str| -> Vec<usize> { t.match_indices("\n  let ").map(|(i, _)| i + 1).collect() };
        let mut clean = text.clone();
        // Some versions are kept alive through the next parse (which then
        // copies from them), the others are dropped (and their trees moved).
        let mut kept: Option<Arc<Parsed>> = None;
        for round in 0..160 {
            let at =
                crate::diagnostics::floor_char_boundary(&text, rng.random_range(0..text.len()));
            match round % 7 {
                // Typing: a character or two anywhere, valid or not.
                0 | 1 => {
                    let ins = ["a", "1", " ", "\n", "{", "}", "\"", ".", "é", "let "]
                        [rng.random_range(0..10)];
                    text.insert_str(at, ins);
                }
                2 => {
                    let end = (at + rng.random_range(1..4)).min(text.len());
                    if text.is_char_boundary(end) {
                        text.replace_range(at..end, "");
                    }
                }
                // A digit changed inside a step, as the benchmark's edit.
                3 => {
                    if let Some(i) = text[at..].find(|c: char| c.is_ascii_digit()) {
                        text.replace_range((at + i)..=(at + i), "7");
                    }
                }
                // A statement added (a step, or a stage with a doc comment
                // that a later round may remove alone) or removed.
                4 => {
                    let l = lines(&text);
                    let p = l[rng.random_range(0..l.len())];
                    let added = if rng.random_bool(0.5) {
                        format!("  let x{round} = step \"x{round}\" {{ run: \"true\" }}\n")
                    } else {
                        format!(
                            "  /// Stage {round}.\n  stage st{round} {{\n    let y{round} = step \"y{round}\" {{ run: \"true\" }}\n  }}\n"
                        )
                    };
                    text.insert_str(p, &added);
                }
                5 => {
                    if let Some(i) = text.find("  /// Stage") {
                        let end = i + text[i..].find('\n').unwrap_or(0) + 1;
                        text.replace_range(i..end, "");
                    }
                }
                _ => {
                    let l = lines(&text);
                    let k = rng.random_range(0..l.len() - 1);
                    text.replace_range(l[k]..l[k + 1], "");
                }
            }
            let reusing = Arc::new(parse_reusing("g.weir", &text, Some(&cache)));
            cache.note_live("g.weir", &reusing);
            let fresh = parse("g.weir", &text);
            assert!(
                *reusing == fresh,
                "round {round}: {}",
                first_difference(&reusing, &fresh)
            );
            // Keep the text mostly valid: most edits that broke it are
            // undone back to the last clean version.
            if reusing.diagnostics.is_empty() {
                clean = text.clone();
            } else if rng.random_range(0..4) > 0 {
                text = clean.clone();
            }
            kept = rng.random_bool(0.3).then_some(reusing);
        }
        drop(kept);
        // Most statements came from the cache, by both ways.
        assert!(cache.reused() > 160 * 50, "{}", cache.reused());
        assert!(cache.moved() > 160 * 30, "{}", cache.moved());
        // And most clean versions were lexed only around their change.
        assert!(cache.relexed() > 50, "{}", cache.relexed());
        assert!(
            cache.reused() - cache.moved() > 20 * 50,
            "{} {}",
            cache.reused(),
            cache.moved()
        );
    }

    #[test]
    fn spare_trees_outlive_versions_with_errors() {
        use crate::syntax::{parse, parse_reusing};
        let cache = Arc::new(PieceCache::default());
        let clean = crate::generated::pipeline(300);
        // Dropped at once: its trees become the spares.
        drop(parse_reusing("g.weir", &clean, Some(&cache)));
        // An error inside one statement (braces still balanced), then one
        // outside the body: neither may use up the spares.
        for broken in [
            clean.replacen("run: \"echo 7 > out/7.txt\"", "run:", 1),
            clean.replacen("param env: Env = Env.dev", "param env: Env =", 1),
        ] {
            let p = parse_reusing("g.weir", &broken, Some(&cache));
            assert!(!p.diagnostics.is_empty());
        }
        let moved = cache.moved();
        let fixed = clean.replacen("echo 9 >", "echo 8 >", 1);
        assert_eq!(
            parse_reusing("g.weir", &fixed, Some(&cache)),
            parse("g.weir", &fixed)
        );
        assert!(cache.moved() - moved >= 299, "{}", cache.moved() - moved);
        // A file whose pipeline shrinks keeps nothing.
        let small = crate::generated::pipeline(3);
        assert_eq!(
            parse_reusing("g.weir", &small, Some(&cache)),
            parse("g.weir", &small)
        );
        assert!(cache.lock().get("g.weir").is_none());
    }

    /// Where two parses differ, briefly: the first item (or body item)
    /// that is not the same in both.
    fn first_difference(a: &crate::syntax::Parsed, b: &crate::syntax::Parsed) -> String {
        for (x, y) in a.module.items.iter().zip(&b.module.items) {
            if let (ItemKind::Pipeline(p), ItemKind::Pipeline(q)) = (&x.kind, &y.kind) {
                for (s, t) in p.body.stmts.iter().zip(&q.body.stmts) {
                    if s != t {
                        return format!("statement\n{s:?}\nagainst\n{t:?}");
                    }
                }
                if p != q {
                    return format!(
                        "pipeline triggers or length: {:?} against {:?}",
                        p.triggers, q.triggers
                    );
                }
            } else if x != y {
                return format!("item\n{x:?}\nagainst\n{y:?}");
            }
        }
        format!(
            "{} against {} items, {:?} against {:?}",
            a.module.items.len(),
            b.module.items.len(),
            a.diagnostics,
            b.diagnostics
        )
    }

    #[test]
    fn every_example_parses_the_same_in_pieces() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for dir in ["examples", "compiler/tests/ui"] {
            let mut stack = vec![root.join(dir)];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).unwrap() {
                    let p = e.unwrap().path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.extension().is_some_and(|x| x == "weir") {
                        files.push(p);
                    }
                }
            }
        }
        assert!(files.len() > 60, "{}", files.len());
        // Some fixtures nest deeply on purpose.
        let clean = crate::with_large_stack(move || {
            files
                .iter()
                .map(|f| {
                    let src = std::fs::read_to_string(f).unwrap();
                    fast_and_rich_agree(&src);
                    same_tree_in_pieces(&src)
                })
                .sum::<usize>()
        });
        // Most fixtures have errors on purpose; the examples parse clean.
        assert!(clean >= 4 * 10, "{clean}");
    }
}
