//! The language server driven over stdio with JSON-RPC, as an editor does.
#![allow(
    clippy::unwrap_used,
    clippy::many_single_char_names,
    clippy::match_wild_err_arm,
    reason = "a test client: failures should panic loudly"
)]

mod common;

use common::{Client, hover_text, pos_of};
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

const LIB: &str = "/// Builds the service in release mode.\npub fn build(target: str = \"x86\") -> Step {\n  step \"build ${target}\" {\n    run: \"cargo build --target ${target}\"\n    outputs: { bin: file(\"app\"), version: value(str) }\n  }\n}\n";

#[test]
fn diagnostics_on_open_and_change_with_utf16_ranges() {
    let text = "pipeline ci {\n  step \"é🎉\" { run: \"echo ${unknwn}\" }\n}\n";
    let mut c = Client::start("diag", &[("ci.weir", text)]);
    c.open("ci.weir", text);
    let d = c.diagnostics("ci.weir", 1);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0]["code"], "E0101");
    let (line, col) = pos_of(text, "unknwn");
    assert_eq!(
        d[0]["range"]["start"],
        json!({ "line": line, "character": col })
    );
    assert_eq!(d[0]["range"]["end"]["character"], col + 6);
    let fixed = text.replace("${unknwn}", "ok");
    c.change("ci.weir", 2, &fixed);
    assert!(c.diagnostics("ci.weir", 2).is_empty());
    // The same set `weir check` reports.
    let mut files = std::collections::BTreeMap::new();
    files.insert("ci.weir".to_owned(), text.to_owned());
    assert_eq!(weir_compiler::check(&files).len(), 1);
}

#[test]
fn hover_definition_references_rename_across_files() {
    let main = "use \"lib.weir\" as lib\npipeline ci {\n  let b = lib.build(target: \"arm\")\n  step \"use\" { run: \"./x\", inputs: [b.bin] }\n}\n";
    let mut c = Client::start("nav", &[("ci.weir", main), ("lib.weir", LIB)]);
    c.open("ci.weir", main);
    assert!(c.diagnostics("ci.weir", 1).is_empty());
    let (l, col) = pos_of(main, "b.bin");
    let h = c.at("textDocument/hover", "ci.weir", l, col);
    assert!(hover_text(&h).contains("b: Step"), "{h}");
    let (l, col) = pos_of(main, "lib.build");
    let h = c.at("textDocument/hover", "ci.weir", l, col);
    assert!(hover_text(&h).contains("module"), "{h}");
    // Definition of the local `b`.
    let (l, col) = pos_of(main, "b.bin");
    let d = c.at("textDocument/definition", "ci.weir", l, col);
    assert_eq!(
        d["result"]["range"]["start"],
        json!({ "line": 2, "character": 6 })
    );
    let r = c.at("textDocument/references", "ci.weir", l, col);
    assert_eq!(r["result"].as_array().unwrap().len(), 2);
    let uri = c.uri("ci.weir");
    let e = c.request("textDocument/rename", json!({ "textDocument": { "uri": uri }, "position": { "line": l, "character": col }, "newName": "built" }));
    let edits = e["result"]["changes"][c.uri("ci.weir")]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(edits.len(), 2);
    let bad = c.request("textDocument/rename", json!({ "textDocument": { "uri": uri }, "position": { "line": l, "character": col }, "newName": "let" }));
    assert!(bad["error"].is_object());
}

#[test]
fn hover_shows_doc_comments_and_signatures() {
    let main = "use \"lib.weir\" as lib\n/// Where to deploy.\nenum Env { dev, prod }\npipeline ci {\n  let e = Env.dev\n  lib.build()\n}\n";
    let mut c = Client::start("hover", &[("ci.weir", main), ("lib.weir", LIB)]);
    c.open("lib.weir", LIB);
    let (l, col) = pos_of(LIB, "build(");
    let _ = c.diagnostics("lib.weir", 1);
    let h = c.at("textDocument/definition", "lib.weir", l, col);
    assert!(h["result"].is_null() || h["result"].is_object());
    c.open("ci.weir", main);
    let _ = c.diagnostics("ci.weir", 1);
    let (l, col) = pos_of(main, "Env.dev");
    let h = c.at("textDocument/hover", "ci.weir", l, col);
    let v = hover_text(&h);
    assert!(
        v.contains("enum Env { dev, prod }") && v.contains("Where to deploy."),
        "{v}"
    );
}

#[test]
fn completion_of_fields_outputs_and_names() {
    let text = "pipeline ci {\n  let b = step \"b\" { run: \"x\", outputs: { bin: file(\"a\") } }\n  step \"c\" {\n    run: \"y ${b.}\"\n    \n  }\n}\n";
    let mut c = Client::start("complete", &[("ci.weir", text)]);
    c.open("ci.weir", text);
    let _ = c.diagnostics("ci.weir", 1);
    let (l, col) = pos_of(text, "b.}");
    let r = c.at("textDocument/completion", "ci.weir", l, col + 2);
    assert!(r["result"].is_array(), "{r}");
    let labels: Vec<&str> = r["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    assert!(
        labels.contains(&"bin") && labels.contains(&"ok"),
        "{labels:?}"
    );
    let r = c.at("textDocument/completion", "ci.weir", 4, 4);
    let labels: Vec<&str> = r["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    assert!(
        labels.contains(&"timeout") && labels.contains(&"retries") && labels.contains(&"b"),
        "{labels:?}"
    );
}

#[test]
fn symbols_formatting_and_code_actions() {
    let text = "pipeline ci{ stage build { let compile = step \"compile\"{run:\"make\"} }\n  step \"tset\" { run: \"t\", after: [compil] }\n}\n";
    let mut c = Client::start("sym", &[("ci.weir", text)]);
    c.open("ci.weir", text);
    let d = c.diagnostics("ci.weir", 1);
    assert_eq!(d.len(), 1, "{d:#?}");
    let uri = c.uri("ci.weir");
    let s = c.request(
        "textDocument/documentSymbol",
        json!({ "textDocument": { "uri": uri } }),
    );
    let top = &s["result"][0];
    assert_eq!(top["name"], "ci");
    assert_eq!(top["children"][0]["name"], "build");
    assert_eq!(top["children"][0]["children"][0]["name"], "compile");
    let f = c.request("textDocument/formatting", json!({ "textDocument": { "uri": uri }, "options": { "tabSize": 2, "insertSpaces": true } }));
    let new_text = f["result"][0]["newText"].as_str().unwrap();
    assert_eq!(
        new_text,
        weir_compiler::fmt::format_source("ci.weir", text).unwrap()
    );
    let a = c.request("textDocument/codeAction", json!({ "textDocument": { "uri": uri }, "range": d[0]["range"], "context": { "diagnostics": d } }));
    assert_eq!(a["result"][0]["title"], "Change to `compile`", "{a}");
}

#[test]
fn bad_input_gets_errors_and_the_server_keeps_serving() {
    let text = "pipeline ci { step \"a\" { run: \"x\" } }\n";
    let mut c = Client::start("robust", &[("ci.weir", text)]);
    // Malformed JSON, an unknown method, a change before open.
    c.stdin
        .write_all(b"Content-Length: 9\r\n\r\n{not json")
        .unwrap();
    c.stdin.flush().unwrap();
    let r = c.request("weir/unknown", json!({}));
    assert!(r["error"].is_object(), "{r}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !c.notes.iter().any(|n| {
        n["method"] == "window/logMessage"
            && n["params"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("malformed"))
    }) {
        match c
            .rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(v) => c.notes.push(v),
            Err(_) => panic!("no error message for the malformed frame: {:#?}", c.notes),
        }
    }
    c.change("never-opened.weir", 5, "garbage");
    // Unknown files and positions out of range.
    let h = c.at("textDocument/hover", "missing.weir", 0, 0);
    assert!(h["result"].is_null(), "{h}");
    c.open("ci.weir", text);
    let _ = c.diagnostics("ci.weir", 1);
    let h = c.at("textDocument/hover", "ci.weir", 999, 999);
    assert!(h["result"].is_null(), "{h}");
    // Still serving.
    let (l, col) = pos_of(text, "step");
    let r = c.at("textDocument/completion", "ci.weir", l, col);
    assert!(r["result"].is_array());
}

/// (line, UTF-16 column) of a byte offset.
fn lc(text: &str, at: usize) -> (u32, u32) {
    let line = text[..at].matches('\n').count() as u32;
    let start = text[..at].rfind('\n').map_or(0, |j| j + 1);
    (line, text[start..at].encode_utf16().count() as u32)
}

fn codes(d: &[Value]) -> Vec<String> {
    d.iter()
        .map(|x| x["code"].as_str().unwrap().to_owned())
        .collect()
}

fn fresh_codes(file: &str, text: &str) -> Vec<String> {
    let mut files = std::collections::BTreeMap::new();
    files.insert(file.to_owned(), text.to_owned());
    weir_compiler::check(&files)
        .iter()
        .map(|d| d.code.as_str().to_owned())
        .collect()
}

#[test]
fn diagnostics_after_random_edits_and_their_undo_equal_a_fresh_check() {
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello/pipeline.weir"),
    )
    .unwrap();
    let mut c = Client::start("edits", &[("pipeline.weir", &base)]);
    c.open("pipeline.weir", &base);
    assert!(c.diagnostics("pipeline.weir", 1).is_empty());
    let (hl, hc) = pos_of(&base, "${greet.greeting}");
    let hc = hc + 2;
    let hover_before = c.at("textDocument/hover", "pipeline.weir", hl, hc)["result"].clone();
    assert!(hover_before.is_object());
    let mut text = base.clone();
    let mut seed: u64 = 7;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // 1000 ranged edits (insertions and deletions, some of multi-byte
    // text), each remembered with its inverse.
    let mut undo: Vec<(usize, usize, String)> = Vec::new();
    let mut version = 1;
    for _ in 0..1000 {
        let at = weir_compiler::diagnostics::floor_char_boundary(
            &text,
            (next() as usize) % (text.len() + 1),
        );
        let mut end = if next() % 2 == 0 {
            at
        } else {
            (at + 1 + (next() as usize) % 6).min(text.len())
        };
        while !text.is_char_boundary(end) {
            end += 1;
        }
        let insert = ["x", "{", "}", "\"", " ", "step", "é🎉", "\n", ""][(next() % 9) as usize];
        let (from, to) = (lc(&text, at), lc(&text, end));
        version += 1;
        c.edit("pipeline.weir", version, from, to, insert);
        let removed = text[at..end].to_owned();
        text.replace_range(at..end, insert);
        undo.push((at, at + insert.len(), removed));
    }
    let got = c.diagnostics("pipeline.weir", version);
    assert_eq!(codes(&got), fresh_codes("pipeline.weir", &text));
    // Undo them all, newest first: back to the clean original.
    while let Some((a, b, old)) = undo.pop() {
        let (from, to) = (lc(&text, a), lc(&text, b));
        version += 1;
        c.edit("pipeline.weir", version, from, to, &old);
        text.replace_range(a..b, &old);
    }
    assert_eq!(text, base);
    assert!(c.diagnostics("pipeline.weir", version).is_empty());
    let hover_after = c.at("textDocument/hover", "pipeline.weir", hl, hc)["result"].clone();
    assert_eq!(hover_after, hover_before);
}

#[test]
fn a_panic_is_an_error_answer_or_an_internal_diagnostic_and_serving_goes_on() {
    let text = "pipeline ci {\n  let b = step \"b\" { run: \"x\" }\n  step \"c\" { run: \"y\", after: [b] }\n}\n";
    let (l, col) = pos_of(text, "b]");
    // A panic while answering a request: an internal error, then business as usual.
    let mut c = Client::start_with_env(
        "panic-hover",
        &[("ci.weir", text)],
        &[("WEIR_LSP_FAULT", "hover")],
    );
    c.open("ci.weir", text);
    assert!(c.diagnostics("ci.weir", 1).is_empty());
    let h = c.at("textDocument/hover", "ci.weir", l, col);
    assert_eq!(h["error"]["code"], -32603, "{h}");
    let d = c.at("textDocument/definition", "ci.weir", l, col);
    assert!(d["result"].is_object(), "{d}");
    c.change("ci.weir", 2, &text.replace("[b]", "[bb]"));
    assert_eq!(codes(&c.diagnostics("ci.weir", 2)), vec!["E0101"]);
    // A panic while checking: an internal-error diagnostic; requests still work.
    let mut c = Client::start_with_env(
        "panic-diag",
        &[("ci.weir", text)],
        &[("WEIR_LSP_FAULT", "diagnostics")],
    );
    c.open("ci.weir", text);
    let d = c.diagnostics("ci.weir", 1);
    assert_eq!(codes(&d), vec!["E9001"]);
    assert!(d[0]["message"].as_str().unwrap().contains("internal error"));
    let h = c.at("textDocument/hover", "ci.weir", l, col);
    assert!(hover_text(&h).contains("b: Step"), "{h}");
}

#[test]
fn files_changed_on_disk_are_picked_up() {
    let main = "use \"lib.weir\" as lib\npipeline ci {\n  let b = lib.build()\n}\n";
    let mut c = Client::start("disk", &[("ci.weir", main), ("lib.weir", LIB)]);
    c.open("ci.weir", main);
    assert!(c.diagnostics("ci.weir", 1).is_empty());
    // Another tool renames the function on disk; the editor reports it.
    std::fs::write(
        c.root.join("lib.weir"),
        LIB.replace("pub fn build", "pub fn compile"),
    )
    .unwrap();
    c.notes.clear();
    let uri = c.uri("lib.weir");
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({ "changes": [{ "uri": uri, "type": 2 }] }),
    );
    assert_eq!(codes(&c.diagnostics("ci.weir", 1)), vec!["E0108"]);
}
