//! The formatter: one canonical layout for Weir sources.
//!
//! It prints the syntax tree back with two-space indentation, one field or
//! statement per line, and keeps every comment: comments before a node are
//! printed above it, a comment after code on the same line stays there.
//! Blank lines between statements are kept (at most one).
//!
//! Two guards make it safe: the output must lex to the same tokens as the
//! input (ignoring `,` and `;` separators), so formatting never changes the
//! parsed tree; and it must hold every comment of the input. A file where a
//! guard fails is left as it is. A file with syntax errors is refused.

use crate::diagnostics::Diagnostic;
use crate::syntax::lexer::{Comment, P, Tok, lex};
use crate::syntax::*;

const WIDTH: usize = 100;

/// Formats a source file. Errs with the file's syntax diagnostics.
pub fn format_source(file: &str, src: &str) -> Result<String, Vec<Diagnostic>> {
    let mut parsed = parse(file, src);
    if parsed.diagnostics.iter().any(Diagnostic::is_error) {
        return Err(std::mem::take(&mut parsed.diagnostics));
    }
    let mut f = Formatter {
        src,
        comments: &parsed.comments,
        next: 0,
        out: String::new(),
        indent: 0,
    };
    f.module(&parsed.module);
    let out = f.out;
    if same_tokens(src, &out) && same_comments(&parsed.comments, &out) {
        Ok(out)
    } else {
        Ok(src.to_owned())
    }
}

/// An expression as the formatter prints it (for signatures and hints).
pub fn expr_text(e: &Expr) -> String {
    let mut f = Formatter {
        src: "",
        comments: &[],
        next: 0,
        out: String::new(),
        indent: 0,
    };
    f.expr(e);
    f.out
}

fn significant(src: &str) -> Vec<Tok> {
    lex("", src)
        .tokens
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| !matches!(t, Tok::P(P::Comma | P::Semi)))
        .collect()
}

fn same_tokens(a: &str, b: &str) -> bool {
    significant(a) == significant(b)
}

fn same_comments(before: &[Comment], out: &str) -> bool {
    let after = lex("", out).comments;
    let a: Vec<(&str, bool)> = before.iter().map(|c| (c.text.trim_end(), c.doc)).collect();
    let b: Vec<(&str, bool)> = after.iter().map(|c| (c.text.trim_end(), c.doc)).collect();
    a == b
}

struct Formatter<'a> {
    src: &'a str,
    comments: &'a [Comment],
    next: usize,
    out: String,
    indent: usize,
}

impl Formatter<'_> {
    fn line_start(&mut self) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
    }
    fn comment_text(c: &Comment) -> String {
        format!("{}{}", if c.doc { "///" } else { "//" }, c.text.trim_end())
    }
    /// Prints the comments that end before `pos` on lines of their own.
    fn leading(&mut self, pos: u32) {
        while self.next < self.comments.len() && self.comments[self.next].span.end <= pos {
            let c = &self.comments[self.next];
            if c.trailing && self.out.ends_with('\n') && !self.out.is_empty() {
                // A trailing comment whose code was printed already: attach it.
                self.out.pop();
                self.out.push(' ');
                self.out.push_str(&Self::comment_text(c));
                self.out.push('\n');
            } else {
                if self.blank_before(c.span.start)
                    && !self.out.is_empty()
                    && !self.out.ends_with("{\n")
                    && !self.out.ends_with("\n\n")
                {
                    self.out.push('\n');
                }
                self.line_start();
                self.out.push_str(&Self::comment_text(c));
                self.out.push('\n');
                let after = self.src.get(c.span.end as usize..).unwrap_or("");
                let gap = &after[..after
                    .find(|ch: char| !ch.is_whitespace())
                    .unwrap_or(after.len())];
                if gap.matches('\n').count() >= 2
                    && (c.span.end as usize) < self.src.len().min(pos as usize)
                {
                    self.out.push('\n');
                }
            }
            self.next += 1;
        }
    }
    /// Appends a comment that follows `end` on the same line.
    fn trailing(&mut self, end: u32) {
        if self.next < self.comments.len() {
            let c = &self.comments[self.next];
            let between = self
                .src
                .get(end as usize..c.span.start as usize)
                .unwrap_or("\n");
            if c.span.start >= end && between.trim_matches([',', ';', ' ', '\t']).is_empty() {
                self.out.push(' ');
                self.out.push_str(&Self::comment_text(c));
                self.next += 1;
            }
        }
    }
    fn blank_before(&self, pos: u32) -> bool {
        let before = &self.src[..(pos as usize).min(self.src.len())];
        let trimmed = before.trim_end_matches([' ', '\t']);
        let mut lines = trimmed.rsplit('\n');
        lines.next();
        lines.next().is_some_and(|l| l.trim().is_empty()) && trimmed.ends_with('\n')
    }

    fn module(&mut self, m: &Module) {
        let mut prev_kind: Option<&ItemKind> = None;
        for item in &m.items {
            if let Some(prev) = prev_kind {
                let same_group = matches!(
                    (prev, &item.kind),
                    (ItemKind::Use(_), ItemKind::Use(_))
                        | (ItemKind::Param(_), ItemKind::Param(_))
                        | (ItemKind::Let(_), ItemKind::Let(_))
                );
                if !same_group || self.blank_before(self.doc_start(item.span.start)) {
                    self.out.push('\n');
                }
            }
            self.leading(item.span.start);
            self.line_start();
            if item.public {
                self.out.push_str("pub ");
            }
            self.item(&item.kind);
            self.trailing(item.span.end);
            self.out.push('\n');
            prev_kind = Some(&item.kind);
        }
        self.leading(u32::MAX);
        while self.out.ends_with("\n\n") {
            self.out.pop();
        }
    }

    /// Where an item's leading comments start, for blank-line decisions.
    fn doc_start(&self, pos: u32) -> u32 {
        match self.comments.get(self.next) {
            Some(c) if c.span.end <= pos => pos.min(c.span.start),
            _ => pos,
        }
    }

    fn item(&mut self, k: &ItemKind) {
        match k {
            ItemKind::Use(u) => {
                self.out.push_str("use ");
                match &u.target {
                    UseTarget::Std(p) => self.out.push_str(
                        &p.iter()
                            .map(|i| i.name.as_str())
                            .collect::<Vec<_>>()
                            .join("."),
                    ),
                    UseTarget::Path(s, _) => self.out.push_str(&quote(s)),
                    UseTarget::Versioned { name, version, .. } => {
                        self.out.push_str(&quote(&format!("{name}@{version}")));
                    }
                    UseTarget::Plugin(s, _) => {
                        self.out.push_str("plugin ");
                        self.out.push_str(&quote(s));
                    }
                }
                if u.explicit_alias
                    && let Some(a) = &u.alias
                {
                    self.out.push_str(" as ");
                    self.out.push_str(&a.name);
                }
            }
            ItemKind::Param(p) => {
                self.out
                    .push_str(&format!("param {}: {}", p.name.name, type_expr_text(&p.ty)));
                if let Some(d) = &p.default {
                    self.out.push_str(" = ");
                    self.expr(d);
                }
            }
            ItemKind::Let(l) => self.let_decl(l),
            ItemKind::Fn(f) => {
                self.out.push_str(&format!("fn {}(", f.name.name));
                for (i, p) in f.params.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.out
                        .push_str(&format!("{}: {}", p.name.name, type_expr_text(&p.ty)));
                    if let Some(d) = &p.default {
                        self.out.push_str(" = ");
                        self.expr(d);
                    }
                }
                self.out.push(')');
                if let Some(r) = &f.ret {
                    self.out.push_str(&format!(" -> {}", type_expr_text(r)));
                }
                self.out.push(' ');
                self.block(&f.body);
            }
            ItemKind::Enum(e) => {
                let has_docs = e.variants.iter().any(|v| v.doc.is_some());
                let one = e.one_line();
                if !has_docs && one.len() <= WIDTH {
                    self.out.push_str(&one);
                } else {
                    self.out.push_str(&format!("enum {} {{\n", e.name.name));
                    self.indent += 1;
                    for v in &e.variants {
                        self.leading(v.name.span.start);
                        self.line_start();
                        self.out.push_str(&v.name.name);
                        self.trailing(v.name.span.end);
                        self.out.push('\n');
                    }
                    self.indent -= 1;
                    self.line_start();
                    self.out.push('}');
                }
            }
            ItemKind::Type(t) => {
                self.out.push_str(&format!("type {} = ", t.name.name));
                if t.fields.len() == 1 && t.fields[0].name.name.is_empty() {
                    self.out.push_str(&type_expr_text(&t.fields[0].ty));
                } else {
                    self.out.push_str("{\n");
                    self.indent += 1;
                    for fd in &t.fields {
                        self.leading(fd.name.span.start);
                        self.line_start();
                        self.out
                            .push_str(&format!("{}: {}", fd.name.name, type_expr_text(&fd.ty)));
                        if let Some(d) = &fd.default {
                            self.out.push_str(" = ");
                            self.expr(d);
                        }
                        self.trailing(fd.ty.span().end);
                        self.out.push('\n');
                    }
                    self.indent -= 1;
                    self.line_start();
                    self.out.push('}');
                }
            }
            ItemKind::Pipeline(p) => {
                if p.is_default {
                    self.out.push_str("default ");
                }
                self.out.push_str(&format!("pipeline {} {{\n", p.name.name));
                self.indent += 1;
                for t in &p.triggers {
                    self.leading(t.span.start);
                    self.line_start();
                    self.out.push_str(&format!("on {}", t.kind.name));
                    if !t.args.is_empty()
                        || self
                            .src
                            .get(t.kind.span.end as usize..t.span.end as usize)
                            .is_some_and(|s| s.contains('('))
                    {
                        self.args(&t.args);
                    }
                    self.trailing(t.span.end);
                    self.out.push('\n');
                }
                if !p.triggers.is_empty() && !p.body.stmts.is_empty() {
                    self.out.push('\n');
                }
                self.stmts(&p.body.stmts);
                self.leading(p.body.span.end.saturating_sub(1));
                self.indent -= 1;
                self.line_start();
                self.out.push('}');
            }
            ItemKind::Policy(p) => {
                self.out.push_str(&format!(
                    "policy {} for step {}",
                    p.name.name, p.binder.name
                ));
                if let Some(f) = &p.filter {
                    self.out.push_str(" when ");
                    self.expr(f);
                }
                self.out.push_str(" {\n");
                self.indent += 1;
                for r in &p.requires {
                    self.leading(r.span.start);
                    self.line_start();
                    self.require(r);
                    self.trailing(r.span.end);
                    self.out.push('\n');
                }
                self.indent -= 1;
                self.line_start();
                self.out.push('}');
            }
            ItemKind::Error => {}
        }
    }

    fn require(&mut self, r: &Require) {
        self.out.push_str("require ");
        self.expr(&r.cond);
        self.out.push_str(" else ");
        self.expr(&r.message);
    }

    fn let_decl(&mut self, l: &LetDecl) {
        self.out.push_str(&format!("let {}", l.name.name));
        if let Some(t) = &l.ty {
            self.out.push_str(&format!(": {}", type_expr_text(t)));
        }
        self.out.push_str(" = ");
        self.expr(&l.value);
    }

    fn block(&mut self, b: &Block) {
        if b.stmts.is_empty()
            && !self.comments[self.next..]
                .iter()
                .any(|c| c.span.end <= b.span.end)
        {
            self.out.push_str("{}");
            return;
        }
        self.out.push_str("{\n");
        self.indent += 1;
        self.stmts(&b.stmts);
        self.leading(b.span.end.saturating_sub(1));
        self.indent -= 1;
        self.line_start();
        self.out.push('}');
    }

    fn stmts(&mut self, stmts: &[Stmt]) {
        for (i, s) in stmts.iter().enumerate() {
            let start = s.span().start;
            if i > 0 && self.blank_before(self.doc_start(start)) && !self.out.ends_with("\n\n") {
                self.out.push('\n');
            }
            self.leading(start);
            self.line_start();
            match s {
                Stmt::Let(l, _) => self.let_decl(l),
                Stmt::Expr(e) => self.expr(e),
                Stmt::Require(r) => self.require(r),
                Stmt::Stage(st) => {
                    self.out.push_str(&format!("stage {}", st.name.name));
                    if let Some(w) = &st.when {
                        self.out.push_str(" when ");
                        self.expr(w);
                    }
                    self.out.push(' ');
                    self.block(&st.body);
                    if let Some(f) = &st.on_failure {
                        self.out.push_str(" on_failure ");
                        self.block(f);
                    }
                }
            }
            self.trailing(s.span().end);
            self.out.push('\n');
        }
    }

    fn args(&mut self, args: &[Arg]) {
        self.out.push('(');
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            if let Some(n) = &a.name {
                self.out.push_str(&n.name);
                self.out.push_str(": ");
            }
            self.expr(&a.value);
        }
        self.out.push(')');
    }

    /// Renders an expression on one line, if it has no multi-line parts.
    fn flat(&self, e: &Expr) -> Option<String> {
        let mut f = Formatter {
            src: self.src,
            comments: &[],
            next: 0,
            out: String::new(),
            indent: 0,
        };
        f.expr(e);
        (!f.out.contains('\n')).then_some(f.out)
    }

    fn has_comment_inside(&self, span: crate::diagnostics::Span) -> bool {
        self.comments[self.next..]
            .iter()
            .any(|c| c.span.start > span.start && c.span.end < span.end)
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Int(i) => self.out.push_str(&i.to_string()),
            ExprKind::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            ExprKind::None => self.out.push_str("none"),
            ExprKind::Duration(_) | ExprKind::Size(_) | ExprKind::Percent(_) => {
                // Keep the author's spelling (`90s` stays `90s`, not `1m30s`).
                self.out
                    .push_str(self.src.get(e.span.range()).unwrap_or("0"));
            }
            ExprKind::Error => {}
            ExprKind::Paren(x) => {
                self.out.push('(');
                self.expr(x);
                self.out.push(')');
            }
            ExprKind::Name(n) => self.out.push_str(n),
            ExprKind::Str { parts, multi } => self.string(parts, *multi),
            ExprKind::Field(b, f) => {
                self.expr(b);
                self.out.push('.');
                self.out.push_str(&f.name);
            }
            ExprKind::Call { callee, args } => {
                self.expr(callee);
                self.args(args);
            }
            ExprKind::List(items) => {
                let flat = items
                    .iter()
                    .map(|i| self.flat(i))
                    .collect::<Option<Vec<_>>>();
                let one = flat.map(|v| format!("[{}]", v.join(", ")));
                match one {
                    Some(s)
                        if s.len() + self.indent * 2 <= WIDTH
                            && !self.has_comment_inside(e.span) =>
                    {
                        self.out.push_str(&s);
                    }
                    _ => {
                        self.out.push_str("[\n");
                        self.indent += 1;
                        for it in items {
                            self.leading(it.span.start);
                            self.line_start();
                            self.expr(it);
                            self.out.push(',');
                            self.trailing(it.span.end);
                            self.out.push('\n');
                        }
                        self.leading(e.span.end.saturating_sub(1));
                        self.indent -= 1;
                        self.line_start();
                        self.out.push(']');
                    }
                }
            }
            ExprKind::Record(fields) => {
                let flat = fields
                    .iter()
                    .map(|f| self.flat(&f.value).map(|v| format!("{}: {v}", f.name.name)))
                    .collect::<Option<Vec<_>>>();
                let one = flat.map(|v| {
                    if v.is_empty() {
                        "{}".to_owned()
                    } else {
                        format!("{{ {} }}", v.join(", "))
                    }
                });
                match one {
                    Some(s)
                        if s.len() + self.indent * 2 <= 60 && !self.has_comment_inside(e.span) =>
                    {
                        self.out.push_str(&s);
                    }
                    _ => {
                        self.out.push_str("{\n");
                        self.indent += 1;
                        self.fields(fields);
                        self.leading(e.span.end.saturating_sub(1));
                        self.indent -= 1;
                        self.line_start();
                        self.out.push('}');
                    }
                }
            }
            ExprKind::Binary(op, l, r) => {
                self.expr(l);
                self.out.push_str(&format!(" {} ", op.as_str()));
                self.expr(r);
            }
            ExprKind::Unary(op, x) => {
                self.out.push(if *op == UnOp::Not { '!' } else { '-' });
                self.expr(x);
            }
            ExprKind::If { cond, then, els } => {
                self.out.push_str("if ");
                self.expr(cond);
                self.out.push(' ');
                self.block(then);
                if let Some(b) = els {
                    self.out.push_str(" else ");
                    match b.stmts.as_slice() {
                        [
                            Stmt::Expr(
                                inner @ Expr {
                                    kind: ExprKind::If { .. },
                                    ..
                                },
                            ),
                        ] if inner.span == b.span => self.expr(inner),
                        _ => self.block(b),
                    }
                }
            }
            ExprKind::Match { scrutinee, arms } => {
                self.out.push_str("match ");
                self.expr(scrutinee);
                self.out.push_str(" {\n");
                self.indent += 1;
                for arm in arms {
                    let start = arm
                        .patterns
                        .first()
                        .map_or(arm.body.span.start, |p| p.span().start);
                    self.leading(start);
                    self.line_start();
                    for (i, p) in arm.patterns.iter().enumerate() {
                        if i > 0 {
                            self.out.push_str(" | ");
                        }
                        match p {
                            Pattern::Wildcard(_) => self.out.push('_'),
                            Pattern::Path(path, _) => self.out.push_str(
                                &path
                                    .iter()
                                    .map(|i| i.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join("."),
                            ),
                            Pattern::Literal(l) => self.expr(l),
                        }
                    }
                    self.out.push_str(" => ");
                    self.expr(&arm.body);
                    self.trailing(arm.body.span.end);
                    self.out.push('\n');
                }
                self.leading(e.span.end.saturating_sub(1));
                self.indent -= 1;
                self.line_start();
                self.out.push('}');
            }
            ExprKind::For { var, iter, body } => {
                self.out.push_str(&format!("for {} in ", var.name));
                self.expr(iter);
                self.out.push(' ');
                self.block(body);
            }
            ExprKind::Node(node) => {
                let NodeExpr {
                    kind,
                    name,
                    fields,
                    requires,
                    body_span,
                } = &**node;
                self.out.push_str(kind.as_str());
                self.out.push(' ');
                self.expr(name);
                if fields.is_empty() && requires.is_empty() && !self.has_comment_inside(*body_span)
                {
                    self.out.push_str(" {}");
                    return;
                }
                self.out.push_str(" {\n");
                self.indent += 1;
                self.fields(fields);
                for r in requires {
                    self.leading(r.span.start);
                    self.line_start();
                    self.require(r);
                    self.trailing(r.span.end);
                    self.out.push('\n');
                }
                self.leading(body_span.end.saturating_sub(1));
                self.indent -= 1;
                self.line_start();
                self.out.push('}');
            }
        }
    }

    fn fields(&mut self, fields: &[FieldInit]) {
        for f in fields {
            self.leading(f.name.span.start);
            self.line_start();
            self.out.push_str(&f.name.name);
            self.out.push_str(": ");
            self.expr(&f.value);
            self.trailing(f.value.span.end);
            self.out.push('\n');
        }
    }

    fn string(&mut self, parts: &[StrPart], multi: bool) {
        if !multi {
            self.out.push('"');
            for p in parts {
                match p {
                    StrPart::Text(t) => self.out.push_str(&escape(t, false)),
                    StrPart::Interp(x) => {
                        self.out.push_str("${");
                        self.expr(x);
                        self.out.push('}');
                    }
                }
            }
            self.out.push('"');
            return;
        }
        // Multi-line: content lines indented one level deeper than the line
        // that holds the opening quotes.
        let mut body = String::new();
        for p in parts {
            match p {
                StrPart::Text(t) => body.push_str(&escape(t, true)),
                StrPart::Interp(x) => {
                    let mut f = Formatter {
                        src: self.src,
                        comments: &[],
                        next: 0,
                        out: String::new(),
                        indent: 0,
                    };
                    f.expr(x);
                    body.push_str("${");
                    body.push_str(&f.out);
                    body.push('}');
                }
            }
        }
        let pad = "  ".repeat(self.indent + 1);
        self.out.push_str("\"\"\"\n");
        let ends_nl = body.ends_with('\n');
        let lines: Vec<&str> = body
            .strip_suffix('\n')
            .unwrap_or(&body)
            .split('\n')
            .collect();
        for (i, l) in lines.iter().enumerate() {
            if !l.is_empty() {
                self.out.push_str(&pad);
                self.out.push_str(l);
            }
            if i + 1 < lines.len() || ends_nl {
                self.out.push('\n');
            }
        }
        if ends_nl {
            self.out.push_str(&"  ".repeat(self.indent + 1));
        }
        self.out.push_str("\"\"\"");
    }
}

fn escape(t: &str, multi: bool) -> String {
    let mut s = String::with_capacity(t.len());
    let chars: Vec<char> = t.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' if !multi => s.push_str("\\\""),
            '"' if multi && chars.get(i + 1) == Some(&'"') && chars.get(i + 2) == Some(&'"') => {
                s.push_str("\\\"");
            }
            '\n' if !multi => s.push_str("\\n"),
            '\t' if !multi => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            '\0' => s.push_str("\\0"),
            '$' if chars.get(i + 1) == Some(&'{') => s.push_str("\\$"),
            c => s.push(c),
        }
    }
    s
}

fn quote(s: &str) -> String {
    format!("\"{}\"", escape(s, false))
}
