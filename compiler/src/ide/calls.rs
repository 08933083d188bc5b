//! Calls under the cursor: signature help and named-argument completion.
//!
//! The call is found in the token stream, not the tree, so that it works
//! while the user is still typing it (`build(target: "ar` does not parse).

use super::Completion;
use crate::db::Checked;
use crate::resolve::Import;
use crate::syntax::lexer::{self, P, Tok};
use crate::syntax::{ItemKind, type_expr_text};
use crate::typeck::BUILTINS;

/// The innermost call whose argument list holds the cursor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallContext {
    /// The callee as written: `["build"]` or `["lib", "build"]`.
    pub callee: Vec<String>,
    /// Zero-based index of the argument being written.
    pub arg_index: usize,
    /// Names of the named arguments already written, in order.
    pub named: Vec<String>,
    /// The name of the argument being written, when it already has `name:`.
    pub current_name: Option<String>,
}

/// One parameter of a signature: its name and its text in the label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureParam {
    pub name: String,
    /// Byte range of the parameter within [`Signature::label`].
    pub range: (usize, usize),
    /// Type, and `= default` when it has one.
    pub detail: String,
    pub doc: String,
    pub has_default: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub label: String,
    pub doc: String,
    pub params: Vec<SignatureParam>,
    /// The parameter the cursor is on, if it is one of them.
    pub active: Option<usize>,
}

/// The call around `offset`, from the tokens of `text` before it.
pub fn call_context(text: &str, offset: usize) -> Option<CallContext> {
    call_context_from(text, 0, offset)
}

/// [`call_context`], lexing only from `start`, a token boundary at or
/// before the statement that holds the cursor.
fn call_context_from(text: &str, start: usize, offset: usize) -> Option<CallContext> {
    let offset = crate::diagnostics::floor_char_boundary(text, offset);
    let start = if start <= offset && text.is_char_boundary(start) {
        start
    } else {
        0
    };
    let lexed = lexer::lex("", &text[start..offset]);
    let toks: Vec<&Tok> = lexed
        .tokens
        .iter()
        .filter(|(_, s)| (s.end as usize) <= offset - start)
        .map(|(t, _)| t)
        .collect();
    // `name:` at the start of the argument that begins at token `k`.
    let name_at = |k: usize| match (toks.get(k), toks.get(k + 1)) {
        (Some(Tok::Ident(n)), Some(Tok::P(P::Colon))) => Some(lexed.text(*n).to_owned()),
        _ => None,
    };
    let mut depth = 0usize;
    let mut arg_index = 0usize;
    let mut named = Vec::new();
    let mut current_name = None;
    let mut i = toks.len();
    while i > 0 {
        i -= 1;
        let boundary = match toks[i] {
            Tok::P(P::RParen | P::RBracket | P::RBrace) => {
                depth += 1;
                false
            }
            Tok::P(P::LParen) if depth == 0 => true,
            Tok::P(P::LParen | P::LBracket | P::LBrace) | Tok::InterpStart if depth == 0 => {
                return None;
            }
            Tok::P(P::LParen | P::LBracket | P::LBrace) => {
                depth -= 1;
                false
            }
            Tok::P(P::Comma) => depth == 0,
            // A statement boundary: the cursor is not inside a call.
            Tok::Kw(
                lexer::Kw::Let
                | lexer::Kw::Step
                | lexer::Kw::Stage
                | lexer::Kw::Fn
                | lexer::Kw::Pipeline,
            ) if depth == 0 => return None,
            _ => false,
        };
        if !boundary {
            continue;
        }
        // The argument starting right after this `(` or `,`.
        if arg_index == 0 {
            current_name = name_at(i + 1);
        } else if let Some(n) = name_at(i + 1) {
            named.push(n);
        }
        if matches!(toks[i], Tok::P(P::LParen)) {
            named.reverse();
            return Some(CallContext {
                callee: callee_before(&toks[..i], &lexed.strings)?,
                arg_index,
                named,
                current_name,
            });
        }
        arg_index += 1;
    }
    None
}

fn callee_before(toks: &[&Tok], strings: &str) -> Option<Vec<String>> {
    let mut path = Vec::new();
    let mut i = toks.len();
    loop {
        i = i.checked_sub(1)?;
        match toks[i] {
            Tok::Ident(n) => path.push(n.get(strings).to_owned()),
            _ => return None,
        }
        if i >= 2 && matches!(toks[i - 1], Tok::P(P::Dot)) {
            i -= 1;
            continue;
        }
        break;
    }
    path.reverse();
    Some(path)
}

/// Where to start lexing for the call around `offset`: the start of the
/// last top-level item, or statement of a pipeline or function body, that
/// begins at or before it. Keeps a keystroke in a large file from lexing
/// everything above the cursor.
fn statement_start(checked: &Checked, file: &str, offset: usize) -> usize {
    use crate::syntax::{Block, ItemKind};
    let Some(m) = checked.program.modules.get(file) else {
        return 0;
    };
    let last_before = |b: &Block| {
        b.stmts
            .iter()
            .map(|st| st.span().start as usize)
            .take_while(|&s| s <= offset)
            .last()
    };
    let Some(item) = m
        .parsed
        .module
        .items
        .iter()
        .take_while(|i| i.span.start as usize <= offset)
        .last()
    else {
        return 0;
    };
    let body = match &item.kind {
        ItemKind::Pipeline(p) => Some(&p.body),
        ItemKind::Fn(f) => Some(&f.body),
        _ => None,
    };
    body.filter(|b| b.span.contains(offset))
        .and_then(last_before)
        .unwrap_or(item.span.start as usize)
}

/// The signature of the function `callee` names, seen from `file`.
pub fn signature_of(checked: &Checked, file: &str, callee: &[String]) -> Option<Signature> {
    let module = checked.program.modules.get(file)?;
    let (target, name) = match callee {
        [name] => (module, name),
        [alias, name] => match module.imports.get(alias) {
            Some((Import::Module(path), _)) => (checked.program.modules.get(path)?, name),
            _ => return None,
        },
        _ => return None,
    };
    if let Some(&i) = target.items.get(name.as_str()) {
        let item = &target.parsed.module.items[i];
        let ItemKind::Fn(f) = &item.kind else {
            return None;
        };
        let mut label = format!("fn {}(", f.name.name);
        let mut params = Vec::new();
        for (k, p) in f.params.iter().enumerate() {
            if k > 0 {
                label.push_str(", ");
            }
            let mut detail = type_expr_text(&p.ty);
            if let Some(d) = &p.default {
                detail.push_str(&format!(" = {}", crate::fmt::expr_text(d)));
            }
            let start = label.len();
            label.push_str(&format!("{}: {detail}", p.name.name));
            params.push(SignatureParam {
                name: p.name.name.clone(),
                range: (start, label.len()),
                detail,
                doc: p.doc.clone().unwrap_or_default(),
                has_default: p.default.is_some(),
            });
        }
        label.push(')');
        if let Some(r) = &f.ret {
            label.push_str(&format!(" -> {}", type_expr_text(r)));
        }
        return Some(Signature {
            label,
            doc: item.doc.clone().unwrap_or_default(),
            params,
            active: None,
        });
    }
    if callee.len() != 1 {
        return None;
    }
    let b = BUILTINS.iter().find(|b| b.name == name)?;
    let mut label = format!("fn {}(", b.name);
    let mut params = Vec::new();
    for (k, (n, t)) in b.params.iter().enumerate() {
        if k > 0 {
            label.push_str(", ");
        }
        let optional = n.ends_with('=');
        let pname = n.trim_end_matches('=');
        let detail = if optional {
            format!("{t} = …")
        } else {
            (*t).to_owned()
        };
        let start = label.len();
        label.push_str(&format!("{pname}: {detail}"));
        params.push(SignatureParam {
            name: pname.to_owned(),
            range: (start, label.len()),
            detail,
            doc: String::new(),
            has_default: optional,
        });
    }
    label.push(')');
    Some(Signature {
        label,
        doc: b.doc.to_owned(),
        params,
        active: None,
    })
}

/// Signature help at `offset` in `text`, the current buffer of `file`.
pub fn signature_help(
    checked: &Checked,
    file: &str,
    text: &str,
    offset: usize,
) -> Option<Signature> {
    let cx = call_context_from(text, statement_start(checked, file, offset), offset)?;
    let mut sig = signature_of(checked, file, &cx.callee)?;
    sig.active = match &cx.current_name {
        Some(n) => sig.params.iter().position(|p| &p.name == n),
        // Positional arguments come first; after a named one, the cursor
        // is on the first parameter not yet given.
        None if cx.named.is_empty() => (cx.arg_index < sig.params.len()).then_some(cx.arg_index),
        None => sig.params.iter().position(|p| !cx.named.contains(&p.name)),
    };
    Some(sig)
}

/// Named-argument completions for the argument being written at `offset`.
pub fn argument_completions(
    checked: &Checked,
    file: &str,
    text: &str,
    offset: usize,
) -> Vec<Completion> {
    let Some(cx) = call_context_from(text, statement_start(checked, file, offset), offset) else {
        return Vec::new();
    };
    if cx.current_name.is_some() {
        return Vec::new();
    }
    let Some(sig) = signature_of(checked, file, &cx.callee) else {
        return Vec::new();
    };
    sig.params
        .iter()
        .filter(|p| !cx.named.contains(&p.name))
        .map(|p| Completion {
            label: p.name.clone(),
            kind: "argument",
            detail: p.detail.clone(),
        })
        .collect()
}

/// The edit that adds the required arguments a call at `span` omits:
/// where to insert, and the text (`name: placeholder` for each).
pub fn missing_arguments_fix(
    checked: &Checked,
    file: &str,
    text: &str,
    span: crate::diagnostics::Span,
) -> Option<(usize, String)> {
    let close = (span.end as usize).checked_sub(1)?;
    if text.as_bytes().get(close) != Some(&b')') {
        return None;
    }
    let cx = call_context_from(text, statement_start(checked, file, close), close)?;
    let sig = signature_of(checked, file, &cx.callee)?;
    let before = text[..close].trim_end();
    let open_or_comma = before.ends_with('(') || before.ends_with(',');
    let given = if open_or_comma && !before.ends_with('(') {
        cx.arg_index
    } else if before.ends_with('(') {
        0
    } else {
        cx.arg_index + 1
    };
    let named = cx.named.len() + usize::from(cx.current_name.is_some());
    let positional = given.saturating_sub(named);
    let missing: Vec<String> = sig
        .params
        .iter()
        .enumerate()
        .filter(|(i, p)| {
            *i >= positional
                && !p.has_default
                && !cx.named.contains(&p.name)
                && cx.current_name.as_ref() != Some(&p.name)
        })
        .map(|(_, p)| format!("{}: {}", p.name, placeholder(checked, &p.detail)))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let sep = if open_or_comma { "" } else { ", " };
    Some((before.len(), format!("{sep}{}", missing.join(", "))))
}

/// A value of type `ty` to stand in until the user writes the real one.
fn placeholder(checked: &Checked, ty: &str) -> String {
    match ty {
        "str" => "\"\"".into(),
        "int" => "0".into(),
        "bool" => "false".into(),
        "duration" => "1m".into(),
        "size" => "1MB".into(),
        "percent" => "0%".into(),
        t if t.starts_with("list[") => "[]".into(),
        t => {
            for m in checked.program.modules.values() {
                for item in &m.parsed.module.items {
                    if let ItemKind::Enum(e) = &item.kind
                        && e.name.name == t
                        && let Some(v) = e.variants.first()
                    {
                        return format!("{t}.{}", v.name.name);
                    }
                }
            }
            "none".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx(text: &str) -> Option<CallContext> {
        let at = text.find('|').expect("cursor");
        let t = text.replacen('|', "", 1);
        call_context(&t, at)
    }

    #[test]
    fn finds_the_innermost_call_and_argument() {
        let c = cx("let x = lib.build(\"a\", |").expect("call");
        assert_eq!(c.callee, vec!["lib", "build"]);
        assert_eq!(c.arg_index, 1);
        let c = cx("let x = build(target: \"ar|").expect("call");
        assert_eq!(c.current_name.as_deref(), Some("target"));
        let c = cx("f(a: 1, b: [1, 2], |)").expect("call");
        assert_eq!(c.named, vec!["a", "b"]);
        assert_eq!(c.arg_index, 2);
        let c = cx("f(g(1), h(|").expect("call");
        assert_eq!(c.callee, vec!["h"]);
        assert!(cx("f(1) + |").is_none());
        assert!(cx("f({ a: |").is_none());
    }
}
