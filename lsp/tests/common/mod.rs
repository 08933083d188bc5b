//! A test client: drives the language server over stdio with JSON-RPC,
//! as an editor does.
#![allow(
    clippy::unwrap_used,
    clippy::match_wild_err_arm,
    dead_code,
    reason = "a test client: failures should panic loudly; each test uses part of it"
)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

pub struct Client {
    pub child: Child,
    pub stdin: ChildStdin,
    pub rx: Receiver<Value>,
    next_id: i64,
    pub notes: Vec<Value>,
    pub root: PathBuf,
}

pub fn frame(v: &Value) -> Vec<u8> {
    let body = v.to_string();
    format!("Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

impl Client {
    pub fn start(name: &str, files: &[(&str, &str)]) -> Client {
        Client::start_with_env(name, files, &[])
    }
    pub fn start_with_env(name: &str, files: &[(&str, &str)], env: &[(&str, &str)]) -> Client {
        let root = std::env::temp_dir().join(format!("weir-lsp-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        for (p, t) in files {
            let path = root.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, t).unwrap();
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir-lsp"))
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        len = v.parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                if r.read_exact(&mut body).is_err() {
                    return;
                }
                if let Ok(v) = serde_json::from_slice(&body)
                    && tx.send(v).is_err()
                {
                    return;
                }
            }
        });
        let mut c = Client {
            child,
            stdin,
            rx,
            next_id: 1,
            notes: Vec::new(),
            root,
        };
        let root_uri = c.uri("");
        let r = c.request("initialize", json!({ "processId": null, "rootUri": root_uri, "capabilities": {}, "workspaceFolders": [{ "uri": root_uri, "name": "t" }] }));
        assert_eq!(r["result"]["capabilities"]["hoverProvider"], true);
        c.notify("initialized", json!({}));
        c
    }
    pub fn uri(&self, p: &str) -> String {
        format!("file://{}", self.root.join(p).display())
            .trim_end_matches('/')
            .to_owned()
    }
    pub fn send(&mut self, v: &Value) {
        self.stdin.write_all(&frame(v)).unwrap();
        self.stdin.flush().unwrap();
    }
    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(v) if v["id"] == id && v.get("method").is_none() => return v,
                Ok(v) => self.notes.push(v),
                Err(RecvTimeoutError::Timeout) => panic!("no answer to {method}"),
                Err(RecvTimeoutError::Disconnected) => panic!("the server exited during {method}"),
            }
        }
    }
    /// The latest diagnostics published for `file`, waiting for a batch for `version`.
    pub fn diagnostics(&mut self, file: &str, version: i64) -> Vec<Value> {
        let uri = self.uri(file);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(n) = self.notes.iter().rev().find(|n| {
                n["method"] == "textDocument/publishDiagnostics"
                    && n["params"]["uri"] == uri
                    && n["params"]["version"] == version
            }) {
                return n["params"]["diagnostics"].as_array().unwrap().clone();
            }
            match self
                .rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(v) => self.notes.push(v),
                Err(_) => panic!(
                    "no diagnostics for {file} v{version}; got {:#?}",
                    self.notes
                ),
            }
        }
    }
    pub fn open(&mut self, file: &str, text: &str) {
        let uri = self.uri(file);
        self.notify("textDocument/didOpen", json!({ "textDocument": { "uri": uri, "languageId": "weir", "version": 1, "text": text } }));
    }
    pub fn change(&mut self, file: &str, version: i64, text: &str) {
        let uri = self.uri(file);
        self.notify("textDocument/didChange", json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [{ "text": text }] }));
    }
    /// Replaces the UTF-16 range (line, column)..(line, column) with `text`.
    pub fn edit(&mut self, file: &str, version: i64, from: (u32, u32), to: (u32, u32), text: &str) {
        let uri = self.uri(file);
        self.notify("textDocument/didChange", json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [{ "range": { "start": { "line": from.0, "character": from.1 }, "end": { "line": to.0, "character": to.1 } }, "text": text }] }));
    }
    pub fn at(&mut self, method: &str, file: &str, line: u32, character: u32) -> Value {
        let uri = self.uri(file);
        let mut params = json!({ "textDocument": { "uri": uri }, "position": { "line": line, "character": character } });
        if method == "textDocument/references" {
            params["context"] = json!({ "includeDeclaration": true });
        }
        self.request(method, params)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The markdown of a hover answer.
pub fn hover_text(h: &Value) -> &str {
    h["result"]["contents"]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("not a hover: {h}"))
}

/// (line, UTF-16 column) of the first occurrence of `needle`.
pub fn pos_of(text: &str, needle: &str) -> (u32, u32) {
    let i = text.find(needle).unwrap();
    let line = text[..i].matches('\n').count() as u32;
    let start = text[..i].rfind('\n').map_or(0, |j| j + 1);
    (line, text[start..i].encode_utf16().count() as u32)
}
