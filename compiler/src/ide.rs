//! IDE features as plain data in byte offsets: hover, go to definition,
//! references, rename, document and workspace symbols, completion,
//! signature help, semantic tokens and inlay hints. The language server
//! only converts positions and types; there is no language logic there.

mod calls;
mod tokens;

pub use calls::{
    CallContext, Signature, SignatureParam, call_context, missing_arguments_fix, signature_help,
};
pub use tokens::{InlayHint, MODIFIERS, SemanticToken, TokenKind, inlay_hints, semantic_tokens};

use crate::db::Checked;
use crate::diagnostics::Span;
use crate::syntax::*;
use crate::typeck::{APPROVAL_FIELDS, BUILTINS, GATE_FIELDS, Reference, STEP_FIELDS};
use crate::types::Ty;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hover {
    pub span: Span,
    pub markdown: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    /// `pipeline`, `stage`, `step`, `gate`, `approval`, `fn`, `enum`, `type`, `param`, `let`, `policy`.
    pub kind: &'static str,
    pub span: Span,
    pub selection: Span,
    pub children: Vec<Symbol>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub label: String,
    /// `keyword`, `field`, `function`, `variable`, `enum_member`, `module`,
    /// `argument` (a named argument of the call being written).
    pub kind: &'static str,
    pub detail: String,
}

fn reference_at<'a>(checked: &'a Checked, file: &str, offset: usize) -> Option<&'a Reference> {
    checked
        .references
        .iter()
        .filter(|r| {
            r.file == file && r.span.start as usize <= offset && offset <= r.span.end as usize
        })
        .min_by_key(|r| r.span.len())
}

fn item_doc(checked: &Checked, def: &(String, Span)) -> Option<(String, String)> {
    let m = checked.program.modules.get(&def.0)?;
    for item in &m.parsed.module.items {
        if item.kind.name().is_some_and(|n| n.span == def.1) {
            let sig = match &item.kind {
                ItemKind::Fn(f) => {
                    let params: Vec<String> = f
                        .params
                        .iter()
                        .map(|p| {
                            format!(
                                "{}: {}{}",
                                p.name.name,
                                type_expr_text(&p.ty),
                                if p.default.is_some() { " = …" } else { "" }
                            )
                        })
                        .collect();
                    format!(
                        "fn {}({}){}",
                        f.name.name,
                        params.join(", "),
                        f.ret
                            .as_ref()
                            .map(|r| format!(" -> {}", type_expr_text(r)))
                            .unwrap_or_default()
                    )
                }
                ItemKind::Enum(e) => e.one_line(),
                ItemKind::Param(p) => format!("param {}: {}", p.name.name, type_expr_text(&p.ty)),
                _ => String::new(),
            };
            return Some((sig, item.doc.clone().unwrap_or_default()));
        }
    }
    None
}

/// The type and documentation of the name under the cursor.
pub fn hover(checked: &Checked, file: &str, offset: usize) -> Option<Hover> {
    let r = reference_at(checked, file, offset)?;
    let mut md = String::new();
    let doc = r.def.as_ref().and_then(|d| item_doc(checked, d));
    match (&doc, r.kind) {
        (Some((sig, _)), _) if !sig.is_empty() => md.push_str(&format!("```weir\n{sig}\n```\n")),
        (_, "builtin") => {
            if let Some(b) = BUILTINS.iter().find(|b| b.name == r.name) {
                let params: Vec<String> = b
                    .params
                    .iter()
                    .map(|(n, t)| format!("{}: {t}", n.trim_end_matches('=')))
                    .collect();
                md.push_str(&format!(
                    "```weir\nfn {}({})\n```\n{}",
                    b.name,
                    params.join(", "),
                    b.doc
                ));
            } else {
                md.push_str(&format!("```weir\n{}: {}\n```\n", r.name, r.ty()));
            }
        }
        _ => md.push_str(&format!(
            "```weir\n{} {}: {}\n```\n",
            if r.kind == "local" { "let" } else { r.kind },
            r.name,
            r.ty()
        )),
    }
    if let Some((_, d)) = doc.filter(|(_, d)| !d.is_empty()) {
        md.push('\n');
        md.push_str(&d);
    }
    Some(Hover {
        span: r.span,
        markdown: md,
    })
}

pub fn definition(checked: &Checked, file: &str, offset: usize) -> Option<Location> {
    let r = reference_at(checked, file, offset)?;
    r.def.as_ref().map(|(f, s)| Location {
        file: f.clone(),
        span: *s,
    })
}

/// Every use of the name under the cursor, its definition included.
pub fn references(checked: &Checked, file: &str, offset: usize) -> Vec<Location> {
    let Some(r) = reference_at(checked, file, offset) else {
        return Vec::new();
    };
    let Some(def) = &r.def else { return Vec::new() };
    let mut out: Vec<Location> = checked
        .references
        .iter()
        .filter(|x| x.def.as_ref() == Some(def))
        .map(|x| Location {
            file: x.file.clone(),
            span: x.span,
        })
        .collect();
    if !out.iter().any(|l| l.file == def.0 && l.span == def.1) {
        out.push(Location {
            file: def.0.clone(),
            span: def.1,
        });
    }
    out.sort_by(|a, b| (&a.file, a.span.start).cmp(&(&b.file, b.span.start)));
    out.dedup();
    out
}

/// The edits that rename the name under the cursor everywhere.
pub fn rename(
    checked: &Checked,
    file: &str,
    offset: usize,
    new_name: &str,
) -> Result<Vec<Location>, String> {
    let valid = new_name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && new_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid || is_keyword(new_name) {
        return Err(format!("`{new_name}` is not a valid name"));
    }
    let r = reference_at(checked, file, offset).ok_or("no name here")?;
    if r.kind == "builtin" {
        return Err(format!("`{}` is built in and cannot be renamed", r.name));
    }
    Ok(references(checked, file, offset))
}

/// The outline of a file: items, with the stages and steps of pipelines.
pub fn symbols(parsed: &Parsed) -> Vec<Symbol> {
    let mut out = Vec::new();
    for item in &parsed.module.items {
        let Some(name) = item.kind.name() else {
            continue;
        };
        let kind = match &item.kind {
            ItemKind::Pipeline(_) => "pipeline",
            ItemKind::Fn(_) => "fn",
            ItemKind::Enum(_) => "enum",
            ItemKind::Type(_) => "type",
            ItemKind::Param(_) => "param",
            ItemKind::Let(_) => "let",
            ItemKind::Policy(_) => "policy",
            ItemKind::Use(_) => "module",
            ItemKind::Error => continue,
        };
        let mut children = Vec::new();
        match &item.kind {
            ItemKind::Pipeline(p) => block_symbols(&p.body, &mut children),
            ItemKind::Fn(f) => block_symbols(&f.body, &mut children),
            _ => {}
        }
        out.push(Symbol {
            name: name.name.clone(),
            kind,
            span: item.span,
            selection: name.span,
            children,
        });
    }
    out
}

/// A symbol anywhere in the project, for workspace symbol search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceSymbol {
    pub file: String,
    pub name: String,
    pub kind: &'static str,
    pub selection: Span,
    /// The enclosing symbol's name, if any.
    pub container: Option<String>,
}

/// Symbols of every module whose name matches `query` (case-insensitive,
/// its characters in order: `bdimg` finds `build-image`), best first.
pub fn workspace_symbols(checked: &Checked, query: &str) -> Vec<WorkspaceSymbol> {
    fn walk(file: &str, s: &Symbol, container: Option<&str>, out: &mut Vec<WorkspaceSymbol>) {
        out.push(WorkspaceSymbol {
            file: file.to_owned(),
            name: s.name.clone(),
            kind: s.kind,
            selection: s.selection,
            container: container.map(str::to_owned),
        });
        for c in &s.children {
            walk(file, c, Some(&s.name), out);
        }
    }
    let q: Vec<char> = query.to_lowercase().chars().collect();
    let mut all = Vec::new();
    for (path, m) in &checked.program.modules {
        for s in symbols(&m.parsed) {
            walk(path, &s, None, &mut all);
        }
    }
    let mut scored: Vec<(usize, WorkspaceSymbol)> = all
        .into_iter()
        .filter_map(|s| {
            let name = s.name.to_lowercase();
            let score = if name == query.to_lowercase() {
                0
            } else if name.starts_with(&query.to_lowercase()) {
                1
            } else if name.contains(&query.to_lowercase()) {
                2
            } else {
                let mut it = name.chars();
                q.iter().all(|c| it.any(|n| n == *c)).then_some(3)?
            };
            Some((score, s))
        })
        .collect();
    scored.sort_by(|a, b| {
        (a.0, &a.1.name, &a.1.file, a.1.selection.start).cmp(&(
            b.0,
            &b.1.name,
            &b.1.file,
            b.1.selection.start,
        ))
    });
    scored.into_iter().map(|(_, s)| s).collect()
}

fn block_symbols(b: &Block, out: &mut Vec<Symbol>) {
    for s in &b.stmts {
        match s {
            Stmt::Stage(st) => {
                let mut children = Vec::new();
                block_symbols(&st.body, &mut children);
                if let Some(f) = &st.on_failure {
                    block_symbols(f, &mut children);
                }
                out.push(Symbol {
                    name: st.name.name.clone(),
                    kind: "stage",
                    span: st.span,
                    selection: st.name.span,
                    children,
                });
            }
            Stmt::Let(l, _) => expr_symbols(&l.value, out),
            Stmt::Expr(e) => expr_symbols(e, out),
            Stmt::Require(_) => {}
        }
    }
}

fn expr_symbols(e: &Expr, out: &mut Vec<Symbol>) {
    match &e.kind {
        ExprKind::Node(node) => {
            let NodeExpr { kind, name, .. } = &**node;
            let label = match &name.kind {
                ExprKind::Str { parts, .. } => parts
                    .iter()
                    .map(|p| {
                        if let StrPart::Text(t) = p {
                            t.clone()
                        } else {
                            "${…}".to_owned()
                        }
                    })
                    .collect(),
                _ => "…".to_owned(),
            };
            out.push(Symbol {
                name: label,
                kind: kind.as_str(),
                span: e.span,
                selection: name.span,
                children: Vec::new(),
            });
        }
        ExprKind::For { body, .. } => block_symbols(body, out),
        ExprKind::If { then, els, .. } => {
            block_symbols(then, out);
            if let Some(b) = els {
                block_symbols(b, out);
            }
        }
        ExprKind::Paren(x) => expr_symbols(x, out),
        _ => {}
    }
}

fn node_at(e: &Expr, offset: usize) -> Option<NodeKind> {
    if !e.span.contains(offset) {
        return None;
    }
    match &e.kind {
        ExprKind::Node(node) => {
            let NodeExpr {
                kind,
                fields,
                body_span,
                ..
            } = &**node;
            for f in fields {
                if let Some(k) = node_at(&f.value, offset) {
                    return Some(k);
                }
            }
            body_span.contains(offset).then_some(*kind)
        }
        ExprKind::For { body, .. } | ExprKind::If { then: body, .. } => block_node_at(body, offset),
        ExprKind::Paren(x) => node_at(x, offset),
        _ => None,
    }
}

fn block_node_at(b: &Block, offset: usize) -> Option<NodeKind> {
    for s in &b.stmts {
        let found = match s {
            Stmt::Let(l, _) => node_at(&l.value, offset),
            Stmt::Expr(e) => node_at(e, offset),
            Stmt::Stage(st) => block_node_at(&st.body, offset).or_else(|| {
                st.on_failure
                    .as_ref()
                    .and_then(|f| block_node_at(f, offset))
            }),
            Stmt::Require(_) => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// Completions at `offset` in `text` (the current buffer).
pub fn completions(
    checked: &Checked,
    parsed: &Parsed,
    file: &str,
    text: &str,
    offset: usize,
) -> Vec<Completion> {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let word_start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let mut out = Vec::new();
    // After a dot: members of what is before it.
    if before[..word_start].ends_with('.') {
        let base_end = word_start - 1;
        let base_start = before[..base_end]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let base = &before[base_start..base_end];
        let r = checked
            .references
            .iter()
            .filter(|r| r.file == file && r.name == base && (r.span.start as usize) < offset)
            .max_by_key(|r| r.span.start);
        if let Some(r) = r {
            match &r.typ {
                Ty::Module(path) => {
                    if let Some(m) = checked.program.modules.get(path) {
                        for item in m.parsed.module.items.iter().filter(|i| i.public) {
                            if let Some(n) = item.kind.name() {
                                let kind = if matches!(item.kind, ItemKind::Fn(_)) {
                                    "function"
                                } else {
                                    "variable"
                                };
                                out.push(Completion {
                                    label: n.name.clone(),
                                    kind,
                                    detail: item.doc.clone().unwrap_or_default(),
                                });
                            }
                        }
                    }
                }
                Ty::EnumType(en) => {
                    for m in checked.program.modules.values() {
                        for item in &m.parsed.module.items {
                            if let ItemKind::Enum(e) = &item.kind
                                && &e.name.name == en
                            {
                                for v in &e.variants {
                                    out.push(Completion {
                                        label: v.name.name.clone(),
                                        kind: "enum_member",
                                        detail: en.clone(),
                                    });
                                }
                            }
                        }
                    }
                }
                Ty::Step(st) => {
                    for (n, t) in st.outputs.iter().flat_map(|o| o.iter()) {
                        out.push(Completion {
                            label: n.clone(),
                            kind: "field",
                            detail: t.to_string(),
                        });
                    }
                    out.push(Completion {
                        label: "ok".into(),
                        kind: "field",
                        detail: "bool (run time)".into(),
                    });
                    out.push(Completion {
                        label: "exit_code".into(),
                        kind: "field",
                        detail: "int (run time)".into(),
                    });
                    for (bit, n, d) in [
                        (crate::types::REPORT_JUNIT, "tests", "TestReport"),
                        (crate::types::REPORT_COVERAGE, "coverage", "Coverage"),
                        (crate::types::REPORT_SARIF, "findings", "Findings"),
                    ] {
                        if st.reports & bit != 0 {
                            out.push(Completion {
                                label: n.into(),
                                kind: "field",
                                detail: d.into(),
                            });
                        }
                    }
                }
                Ty::Record { fields, .. } => {
                    for (n, t) in fields {
                        out.push(Completion {
                            label: n.clone(),
                            kind: "field",
                            detail: t.to_string(),
                        });
                    }
                }
                _ => {}
            }
        }
        return out;
    }
    // Inside a call's parentheses: its named arguments first.
    out.extend(calls::argument_completions(checked, file, text, offset));
    // Inside a step, gate or approval body: its fields.
    let in_node = parsed.module.items.iter().find_map(|i| match &i.kind {
        ItemKind::Pipeline(p) => block_node_at(&p.body, offset),
        ItemKind::Fn(f) => block_node_at(&f.body, offset),
        _ => None,
    });
    if let Some(kind) = in_node {
        let fields = match kind {
            NodeKind::Step => STEP_FIELDS,
            NodeKind::Gate => GATE_FIELDS,
            NodeKind::Approval => APPROVAL_FIELDS,
        };
        for f in fields {
            out.push(Completion {
                label: (*f).to_owned(),
                kind: "field",
                detail: format!("{} field", kind.as_str()),
            });
        }
    }
    for k in crate::syntax::lexer::Kw::ALL {
        out.push(Completion {
            label: k.as_str().to_owned(),
            kind: "keyword",
            detail: String::new(),
        });
    }
    for b in BUILTINS {
        out.push(Completion {
            label: b.name.to_owned(),
            kind: "function",
            detail: b.doc.to_owned(),
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(m) = checked.program.modules.get(file) {
        for item in &m.parsed.module.items {
            if let Some(n) = item.kind.name()
                && seen.insert(n.name.clone())
            {
                let kind = match item.kind {
                    ItemKind::Fn(_) => "function",
                    ItemKind::Use(_) => "module",
                    _ => "variable",
                };
                out.push(Completion {
                    label: n.name.clone(),
                    kind,
                    detail: item.doc.clone().unwrap_or_default(),
                });
            }
        }
    }
    for r in checked.references.iter().filter(|r| {
        r.file == file
            && r.kind == "local"
            && r.def.as_ref().is_some_and(|d| d.1 == r.span)
            && (r.span.end as usize) <= offset
    }) {
        if seen.insert(r.name.clone()) {
            out.push(Completion {
                label: r.name.clone(),
                kind: "variable",
                detail: r.ty(),
            });
        }
    }
    out
}
