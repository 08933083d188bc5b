//! One protocol test per language-server feature, each an insta snapshot
//! that shows the source with the cursor (`$0` in the fixtures) or the
//! answered ranges marked under their lines. Review with `cargo insta review`.
#![allow(
    clippy::unwrap_used,
    clippy::many_single_char_names,
    clippy::format_collect,
    reason = "a test: failures should panic loudly; short names for JSON values"
)]

mod common;

use common::Client;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const LIB: &str = r#"/// Builds the service for one target.
pub fn build(
  /// The target triple.
  target: str,
  profile: str = "release",
  jobs: int = 4,
) -> Step {
  step "build ${target}" {
    run: "cargo build --target ${target} --profile ${profile} -j ${jobs}"
    outputs: { bin: file("app"), version: value(str) }
  }
}
"#;

/// A fixture with `$0` at the cursor: the text without it, and the
/// cursor's (line, UTF-16 column).
fn cursor(src: &str) -> (String, u32, u32) {
    let at = src.find("$0").expect("a `$0` cursor");
    let text = src.replacen("$0", "", 1);
    let line = text[..at].matches('\n').count() as u32;
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    (
        text.clone(),
        line,
        text[start..at].encode_utf16().count() as u32,
    )
}

/// `line | text` with a caret run under columns `a..b` and a label.
fn mark(text: &str, line: u32, a: u32, b: u32, label: &str) -> String {
    let l = text.lines().nth(line as usize).unwrap_or("");
    let carets = "^".repeat((b.saturating_sub(a)).max(1) as usize);
    format!(
        "{:>3} | {l}\n    | {}{carets} {label}\n",
        line + 1,
        " ".repeat(a as usize)
    )
}

fn mark_range(text: &str, r: &Value, label: &str) -> String {
    let (sl, sc) = (
        r["start"]["line"].as_u64().unwrap() as u32,
        r["start"]["character"].as_u64().unwrap() as u32,
    );
    let (el, ec) = (
        r["end"]["line"].as_u64().unwrap() as u32,
        r["end"]["character"].as_u64().unwrap() as u32,
    );
    let end = if el == sl { ec } else { sc + 1 };
    mark(text, sl, sc, end, label)
}

/// Everything the client received, with the temporary root made stable.
fn stable(c: &Client, v: &Value) -> String {
    serde_json::to_string_pretty(v)
        .unwrap()
        .replace(&c.uri(""), "file:///project")
}

fn snap(name: &str, text: String) {
    insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!(name, text);
    });
}

/// Opens `file` with `text`, waits for its diagnostics, and sends a
/// request at the cursor.
fn at_cursor(c: &mut Client, method: &str, file: &str, src: &str) -> (String, u32, u32, Value) {
    let (text, line, col) = cursor(src);
    c.open(file, &text);
    let _ = c.diagnostics(file, 1);
    let r = c.at(method, file, line, col);
    (text, line, col, r)
}

const MAIN: &str = "use \"lib.weir\" as lib\n\n/// Where to deploy.\nenum Env { dev, prod }\n\nparam env: Env = Env.dev\n\npipeline ci {\n  let b = lib.build(target: \"x86_64\")\n  let tag = \"v1\"\n  step \"ship\" {\n    run: \"./ship ${b.bin} ${tag}\"\n    when: env == Env.prod\n  }\n}\n";

#[test]
fn diagnostics_are_published_with_ranges_codes_and_help() {
    let text = "use \"lib.weir\" as lib\npipeline ci {\n  let b = lib.build()\n  step \"t\" { run: \"echo ${bb.bin}\" }\n}\n";
    let mut c = Client::start("f-diag", &[("ci.weir", text), ("lib.weir", LIB)]);
    c.open("ci.weir", text);
    let d = c.diagnostics("ci.weir", 1);
    let mut out = String::new();
    for x in &d {
        out.push_str(&mark_range(text, &x["range"], x["code"].as_str().unwrap()));
        out.push_str(&format!("{}\n\n", x["message"].as_str().unwrap()));
    }
    snap("diagnostics", out);
}

#[test]
fn hover_shows_signature_type_and_docs() {
    let src = MAIN.replace("lib.build(", "lib.bu$0ild(");
    let mut c = Client::start("f-hover", &[("ci.weir", MAIN), ("lib.weir", LIB)]);
    let (text, line, col, r) = at_cursor(&mut c, "textDocument/hover", "ci.weir", &src);
    let mut out = mark(&text, line, col, col + 1, "cursor");
    out.push_str(common::hover_text(&r));
    out.push_str("\n\n");
    let (l, col) = common::pos_of(&text, "Env.dev");
    let r = c.at("textDocument/hover", "ci.weir", l, col);
    out.push_str(&mark(&text, l, col, col + 1, "cursor"));
    out.push_str(common::hover_text(&r));
    snap("hover", out);
}

fn labels(r: &Value) -> String {
    r["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] != 14) // keywords: the same everywhere
        .map(|i| {
            format!(
                "{} ({}){}{}\n",
                i["label"].as_str().unwrap(),
                i["kind"],
                i["detail"]
                    .as_str()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default(),
                i["insertText"]
                    .as_str()
                    .map(|t| format!(" inserts `{t}`"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn completion_of_arguments_outputs_variants_and_fields() {
    let mut c = Client::start("f-complete", &[("ci.weir", MAIN), ("lib.weir", LIB)]);
    let mut out = String::new();
    let cases = [
        (
            "named arguments",
            "lib.build(target: \"x86_64\"",
            "lib.build(target: \"x86_64\", $0",
        ),
        ("step outputs", "${b.bin}", "${b.$0}"),
        ("enum variants", "env == Env.prod", "env == Env.$0"),
        ("step fields", "    when: env", "    $0\n    when: env"),
    ];
    for (v, (what, from, to)) in cases.iter().enumerate() {
        let (text, line, col) = cursor(&MAIN.replace(from, to));
        if v == 0 {
            c.open("ci.weir", &text);
        } else {
            c.change("ci.weir", v as i64 + 1, &text);
        }
        let _ = c.diagnostics("ci.weir", v as i64 + 1);
        let r = c.at("textDocument/completion", "ci.weir", line, col);
        out.push_str(&format!("== {what}\n"));
        out.push_str(&mark(&text, line, col, col + 1, "cursor"));
        let all = labels(&r);
        // Names visible everywhere (builtins, items) follow; keep the
        // snapshot to what the context adds.
        let first: Vec<&str> = all.lines().take(12).collect();
        out.push_str(&first.join("\n"));
        out.push_str("\n\n");
    }
    snap("completion", out);
}

#[test]
fn signature_help_tracks_the_active_parameter() {
    let mut c = Client::start("f-sig", &[("ci.weir", MAIN), ("lib.weir", LIB)]);
    let mut out = String::new();
    let cases = [
        "lib.build($0target: \"x86_64\")",
        "lib.build(target: \"x86_64\", $0)",
        "lib.build(target: \"x86_64\", jobs: $0)",
        "lib.build(target: file(\"a$0\"))",
    ];
    for (v, case) in cases.iter().enumerate() {
        let (text, line, col) = cursor(&MAIN.replace("lib.build(target: \"x86_64\")", case));
        if v == 0 {
            c.open("ci.weir", &text);
        } else {
            c.change("ci.weir", v as i64 + 1, &text);
        }
        let r = c.at("textDocument/signatureHelp", "ci.weir", line, col);
        out.push_str(&mark(&text, line, col, col + 1, "cursor"));
        let s = &r["result"]["signatures"][0];
        let label = s["label"].as_str().unwrap();
        out.push_str(&format!("{label}\n"));
        if let Some(a) = r["result"]["activeParameter"].as_u64() {
            let p = &s["parameters"][a as usize]["label"];
            let (x, y) = (
                p[0].as_u64().unwrap() as usize,
                p[1].as_u64().unwrap() as usize,
            );
            out.push_str(&format!("{}{}\n", " ".repeat(x), "^".repeat(y - x)));
        }
        if let Some(d) = s["documentation"]["value"].as_str() {
            out.push_str(&format!("{d}\n"));
        }
        out.push('\n');
    }
    snap("signature_help", out);
}

#[test]
fn definition_jumps_across_files() {
    let src = MAIN.replace("lib.build(", "lib.bu$0ild(");
    let mut c = Client::start("f-def", &[("ci.weir", MAIN), ("lib.weir", LIB)]);
    let (text, line, col, r) = at_cursor(&mut c, "textDocument/definition", "ci.weir", &src);
    let mut out = mark(&text, line, col, col + 1, "cursor in ci.weir");
    out.push_str(&format!(
        "=> {}\n",
        r["result"]["uri"].as_str().unwrap().replace(&c.uri(""), "")
    ));
    out.push_str(&mark_range(LIB, &r["result"]["range"], "definition"));
    // A local: to its `let`.
    let (l, col2) = common::pos_of(&text, "b.bin");
    let r = c.at("textDocument/definition", "ci.weir", l, col2);
    out.push_str(&mark(&text, l, col2, col2 + 1, "cursor"));
    out.push_str(&mark_range(&text, &r["result"]["range"], "definition"));
    snap("definition", out);
}

#[test]
fn references_and_rename_cover_the_project() {
    let src = MAIN.replace("lib.build(", "lib.bu$0ild(");
    let mut c = Client::start("f-refs", &[("ci.weir", MAIN), ("lib.weir", LIB)]);
    let (text, line, col, r) = at_cursor(&mut c, "textDocument/references", "ci.weir", &src);
    let files: BTreeMap<String, &str> =
        [(c.uri("ci.weir"), text.as_str()), (c.uri("lib.weir"), LIB)]
            .into_iter()
            .collect();
    let mut out = mark(&text, line, col, col + 1, "cursor");
    out.push_str("== references\n");
    for l in r["result"].as_array().unwrap() {
        let uri = l["uri"].as_str().unwrap();
        out.push_str(&mark_range(
            files[uri],
            &l["range"],
            &uri.replace(&c.uri(""), ""),
        ));
    }
    let uri = c.uri("ci.weir");
    let r = c.request("textDocument/rename", json!({ "textDocument": { "uri": uri }, "position": { "line": line, "character": col }, "newName": "compile" }));
    out.push_str("== rename to `compile`\n");
    let changes = r["result"]["changes"].as_object().unwrap();
    let mut keys: Vec<&String> = changes.keys().collect();
    keys.sort();
    for k in keys {
        for e in changes[k].as_array().unwrap() {
            out.push_str(&mark_range(
                files[k.as_str()],
                &e["range"],
                &format!(
                    "{} -> {}",
                    k.replace(&c.uri(""), ""),
                    e["newText"].as_str().unwrap()
                ),
            ));
        }
    }
    let bad = c.request("textDocument/rename", json!({ "textDocument": { "uri": uri }, "position": { "line": line, "character": col }, "newName": "step" }));
    out.push_str(&format!(
        "== rename to `step`\nerror: {}\n",
        bad["error"]["message"].as_str().unwrap()
    ));
    snap("references_and_rename", out);
}

fn outline(v: &Value, depth: usize, out: &mut String) {
    for s in v.as_array().unwrap() {
        out.push_str(&format!(
            "{}{} ({}) line {}\n",
            "  ".repeat(depth),
            s["name"].as_str().unwrap(),
            s["detail"].as_str().unwrap_or(""),
            s["selectionRange"]["start"]["line"].as_u64().unwrap() + 1
        ));
        outline(&s["children"], depth + 1, out);
    }
}

#[test]
fn document_and_workspace_symbols() {
    let text = "pipeline ci {\n  stage build {\n    let compile = step \"compile\" { run: \"make\" }\n    step \"build image\" { run: \"docker build .\", after: [compile] }\n  }\n  stage ship {\n    approval \"prod\" { }\n  }\n}\n";
    let mut c = Client::start("f-sym", &[("ci.weir", text), ("lib.weir", LIB)]);
    c.open("ci.weir", text);
    let _ = c.diagnostics("ci.weir", 1);
    let uri = c.uri("ci.weir");
    let s = c.request(
        "textDocument/documentSymbol",
        json!({ "textDocument": { "uri": uri } }),
    );
    let mut out = String::from("== outline of ci.weir\n");
    outline(&s["result"], 0, &mut out);
    for q in ["build", "bdimg", "zzz"] {
        let w = c.request("workspace/symbol", json!({ "query": q }));
        out.push_str(&format!("== workspace symbols for `{q}`\n"));
        for s in w["result"].as_array().unwrap() {
            out.push_str(&format!(
                "{} in {} (container {})\n",
                s["name"].as_str().unwrap(),
                s["location"]["uri"]
                    .as_str()
                    .unwrap()
                    .replace(&c.uri(""), ""),
                s["containerName"].as_str().unwrap_or("-")
            ));
        }
    }
    snap("symbols", out);
}

#[test]
fn formatting_equals_weir_fmt() {
    let text = "pipeline ci{ // the pipeline\n  let b=step \"b\"{run:\"make\",timeout:5m}\n}\n";
    let mut c = Client::start("f-fmt", &[("ci.weir", text)]);
    c.open("ci.weir", text);
    let _ = c.diagnostics("ci.weir", 1);
    let uri = c.uri("ci.weir");
    let f = c.request("textDocument/formatting", json!({ "textDocument": { "uri": uri }, "options": { "tabSize": 2, "insertSpaces": true } }));
    let new_text = f["result"][0]["newText"].as_str().unwrap();
    assert_eq!(
        new_text,
        weir_compiler::fmt::format_source("ci.weir", text).unwrap()
    );
    snap(
        "formatting",
        format!("{}\n{new_text}", stable(&c, &f["result"][0]["range"])),
    );
}

#[test]
fn semantic_tokens_classify_every_token() {
    let text = "/// Docs.\nenum Env { dev, prod }\nparam env: Env = Env.dev\nfn greet(who: str) -> str { \"hi ${who}\" }\npipeline ci {\n  // a comment\n  let s = step \"é\" { run: greet(who: \"x\"), timeout: 5m, when: env == Env.prod }\n}\n";
    let mut c = Client::start("f-tokens", &[("ci.weir", text)]);
    c.open("ci.weir", text);
    assert!(c.diagnostics("ci.weir", 1).is_empty());
    let init_legend = {
        let r = c.request(
            "textDocument/semanticTokens/full",
            json!({ "textDocument": { "uri": c.uri("ci.weir") } }),
        );
        r["result"]["data"].as_array().unwrap().clone()
    };
    let types = [
        "namespace",
        "type",
        "enum",
        "enumMember",
        "parameter",
        "variable",
        "property",
        "function",
        "keyword",
        "comment",
        "string",
        "number",
        "operator",
    ];
    let mods = ["declaration", "readonly", "documentation", "defaultLibrary"];
    let lines: Vec<&str> = text.lines().collect();
    let (mut line, mut col) = (0usize, 0usize);
    let mut out = String::new();
    for t in init_legend.chunks(5) {
        let n = |i: usize| t[i].as_u64().unwrap() as usize;
        if n(0) > 0 {
            line += n(0);
            col = n(1);
        } else {
            col += n(1);
        }
        let l: Vec<u16> = lines[line].encode_utf16().collect();
        let word = String::from_utf16_lossy(&l[col..col + n(2)]);
        let m: Vec<&str> = mods
            .iter()
            .enumerate()
            .filter(|(i, _)| n(4) & (1 << i) != 0)
            .map(|(_, m)| *m)
            .collect();
        out.push_str(&format!(
            "{}:{} {word:?} {} {}\n",
            line + 1,
            col + 1,
            types[n(3)],
            m.join(",")
        ));
    }
    snap("semantic_tokens", out);
}

#[test]
fn inlay_hints_show_inferred_types() {
    let mut c = Client::start("f-inlay", &[("ci.weir", MAIN), ("lib.weir", LIB)]);
    c.open("ci.weir", MAIN);
    let _ = c.diagnostics("ci.weir", 1);
    let r = c.request("textDocument/inlayHint", json!({ "textDocument": { "uri": c.uri("ci.weir") }, "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 99, "character": 0 } } }));
    let mut out = String::new();
    for h in r["result"].as_array().unwrap() {
        let (l, ch) = (
            h["position"]["line"].as_u64().unwrap() as u32,
            h["position"]["character"].as_u64().unwrap() as u32,
        );
        out.push_str(&mark(MAIN, l, ch, ch + 1, h["label"].as_str().unwrap()));
    }
    snap("inlay_hints", out);
}

#[test]
fn code_actions_fix_typos_and_missing_arguments() {
    let text = "use \"lib.weir\" as lib\npipeline ci {\n  let b = lib.build()\n  step \"t\" { run: \"echo\", after: [bb] }\n}\n";
    let mut c = Client::start("f-actions", &[("ci.weir", text), ("lib.weir", LIB)]);
    c.open("ci.weir", text);
    let d = c.diagnostics("ci.weir", 1);
    assert_eq!(d.len(), 2, "{d:#?}");
    let uri = c.uri("ci.weir");
    let mut out = String::new();
    let mut fixed = text.to_owned();
    for diag in &d {
        let a = c.request("textDocument/codeAction", json!({ "textDocument": { "uri": uri }, "range": diag["range"], "context": { "diagnostics": [diag] } }));
        let action = &a["result"][0];
        let edit = &action["edit"]["changes"][&uri][0];
        out.push_str(&mark_range(
            text,
            &diag["range"],
            diag["code"].as_str().unwrap(),
        ));
        out.push_str(&format!(
            "{}: {}\n",
            action["title"].as_str().unwrap(),
            stable(&c, edit).replace('\n', " ")
        ));
        // Apply the edit to check the result compiles.
        let r = &edit["range"];
        let lines = weir_lsp::LineIndex::new(&fixed);
        let at = |p: &Value| lines.offset(serde_json::from_value(p.clone()).unwrap());
        let (a0, b0) = (at(&r["start"]), at(&r["end"]));
        let mut next = fixed.clone();
        next.replace_range(a0..b0, edit["newText"].as_str().unwrap());
        fixed = next;
    }
    out.push_str(&format!("== after both fixes\n{fixed}"));
    let mut files = BTreeMap::new();
    files.insert("ci.weir".to_owned(), fixed.clone());
    files.insert("lib.weir".to_owned(), LIB.to_owned());
    let left = weir_compiler::check(&files);
    assert!(left.is_empty(), "{left:#?}");
    snap("code_actions", out);
}
