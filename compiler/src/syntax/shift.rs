//! Moving a piece of syntax tree to another place in its file: every span
//! in it moves by the same number of bytes. The parser reuses the trees of
//! statements an edit did not touch (see `parser::PieceCache`); text
//! inserted or deleted before a statement moves it.

use super::ast::*;
use crate::diagnostics::Span;

pub(crate) trait Shift {
    /// Moves every span by `by` bytes (negative: towards the start).
    fn shift(&mut self, by: i64);
}

impl Shift for Span {
    fn shift(&mut self, by: i64) {
        // Reused pieces start at a statement, never before the file's
        // start, so the sum stays in range; clamp rather than wrap anyway.
        let at = |x: u32| u32::try_from((i64::from(x) + by).max(0)).unwrap_or(u32::MAX);
        self.start = at(self.start);
        self.end = at(self.end);
    }
}

impl<T: Shift> Shift for Vec<T> {
    fn shift(&mut self, by: i64) {
        for x in self {
            x.shift(by);
        }
    }
}

impl<T: Shift> Shift for Option<T> {
    fn shift(&mut self, by: i64) {
        if let Some(x) = self {
            x.shift(by);
        }
    }
}

impl<T: Shift> Shift for Box<T> {
    fn shift(&mut self, by: i64) {
        (**self).shift(by);
    }
}

impl Shift for Ident {
    fn shift(&mut self, by: i64) {
        self.span.shift(by);
    }
}

impl Shift for Block {
    fn shift(&mut self, by: i64) {
        self.stmts.shift(by);
        self.span.shift(by);
    }
}

impl Shift for Stmt {
    fn shift(&mut self, by: i64) {
        match self {
            Stmt::Let(l, span) => {
                l.shift(by);
                span.shift(by);
            }
            Stmt::Expr(e) => e.shift(by),
            Stmt::Stage(s) => s.shift(by),
            Stmt::Require(r) => r.shift(by),
        }
    }
}

impl Shift for LetDecl {
    fn shift(&mut self, by: i64) {
        self.name.shift(by);
        self.ty.shift(by);
        self.value.shift(by);
    }
}

impl Shift for StageDecl {
    fn shift(&mut self, by: i64) {
        self.name.shift(by);
        self.when.shift(by);
        self.body.shift(by);
        self.on_failure.shift(by);
        self.span.shift(by);
    }
}

impl Shift for Require {
    fn shift(&mut self, by: i64) {
        self.cond.shift(by);
        self.message.shift(by);
        self.span.shift(by);
    }
}

impl Shift for Trigger {
    fn shift(&mut self, by: i64) {
        self.kind.shift(by);
        self.args.shift(by);
        self.span.shift(by);
    }
}

impl Shift for TypeExpr {
    fn shift(&mut self, by: i64) {
        match self {
            TypeExpr::Named(path, span) => {
                path.shift(by);
                span.shift(by);
            }
            TypeExpr::List(inner, span) | TypeExpr::Optional(inner, span) => {
                inner.shift(by);
                span.shift(by);
            }
            TypeExpr::Record(fields, span) => {
                fields.shift(by);
                span.shift(by);
            }
            TypeExpr::Error(span) => span.shift(by),
        }
    }
}

impl Shift for FieldDecl {
    fn shift(&mut self, by: i64) {
        self.name.shift(by);
        self.ty.shift(by);
        self.default.shift(by);
    }
}

impl Shift for Arg {
    fn shift(&mut self, by: i64) {
        self.name.shift(by);
        self.value.shift(by);
    }
}

impl Shift for FieldInit {
    fn shift(&mut self, by: i64) {
        self.name.shift(by);
        self.value.shift(by);
    }
}

impl Shift for StrPart {
    fn shift(&mut self, by: i64) {
        if let StrPart::Interp(e) = self {
            e.shift(by);
        }
    }
}

impl Shift for Pattern {
    fn shift(&mut self, by: i64) {
        match self {
            Pattern::Wildcard(span) => span.shift(by),
            Pattern::Path(path, span) => {
                path.shift(by);
                span.shift(by);
            }
            Pattern::Literal(e) => e.shift(by),
        }
    }
}

impl Shift for MatchArm {
    fn shift(&mut self, by: i64) {
        self.patterns.shift(by);
        self.body.shift(by);
    }
}

impl Shift for NodeExpr {
    fn shift(&mut self, by: i64) {
        self.name.shift(by);
        self.fields.shift(by);
        self.requires.shift(by);
        self.body_span.shift(by);
    }
}

impl Shift for Expr {
    fn shift(&mut self, by: i64) {
        self.span.shift(by);
        match &mut self.kind {
            ExprKind::Int(_)
            | ExprKind::Bool(_)
            | ExprKind::None
            | ExprKind::Duration(_)
            | ExprKind::Size(_)
            | ExprKind::Percent(_)
            | ExprKind::Name(_)
            | ExprKind::Error => {}
            ExprKind::Str { parts, .. } => parts.shift(by),
            ExprKind::Field(base, field) => {
                base.shift(by);
                field.shift(by);
            }
            ExprKind::Call { callee, args } => {
                callee.shift(by);
                args.shift(by);
            }
            ExprKind::List(items) => items.shift(by),
            ExprKind::Record(fields) => fields.shift(by),
            ExprKind::Binary(_, l, r) => {
                l.shift(by);
                r.shift(by);
            }
            ExprKind::Unary(_, x) | ExprKind::Paren(x) => x.shift(by),
            ExprKind::If { cond, then, els } => {
                cond.shift(by);
                then.shift(by);
                els.shift(by);
            }
            ExprKind::Match { scrutinee, arms } => {
                scrutinee.shift(by);
                arms.shift(by);
            }
            ExprKind::For { var, iter, body } => {
                var.shift(by);
                iter.shift(by);
                body.shift(by);
            }
            ExprKind::Node(node) => node.shift(by),
        }
    }
}
