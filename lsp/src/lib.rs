//! The Weir language server.
//!
//! It holds no language logic: every request is answered by the compiler's
//! salsa-backed [`Session`] and its IDE functions, which work in byte
//! offsets; this crate converts LSP positions (UTF-16 code units) at the
//! edge and back.
//!
//! One lock owns the session: edits are applied in version order (full
//! document sync; a change older than the document is ignored), and a
//! request sees a consistent project. A panic inside the compiler is caught
//! and answered as an internal error; the server keeps serving.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CodeActionParams,
    CodeActionProviderCapability, CodeActionResponse, CompletionItem, CompletionItemKind,
    CompletionOptions, CompletionParams, CompletionResponse, Diagnostic,
    DiagnosticRelatedInformation, DiagnosticSeverity, DidChangeTextDocumentParams,
    DidChangeWatchedFilesParams, DidCloseTextDocumentParams, DidOpenTextDocumentParams,
    DidSaveTextDocumentParams, DocumentFormattingParams, DocumentSymbol, DocumentSymbolParams,
    DocumentSymbolResponse, GotoDefinitionParams, GotoDefinitionResponse, Hover, HoverContents,
    HoverParams, HoverProviderCapability, InitializeParams, InitializeResult, Location,
    MarkupContent, MarkupKind, MessageType, NumberOrString, OneOf, Position, PositionEncodingKind,
    Range, ReferenceParams, RenameParams, ServerCapabilities, ServerInfo, SymbolKind,
    TextDocumentSyncCapability, TextDocumentSyncKind, TextEdit, Uri, WorkspaceEdit,
};
use tower_lsp_server::{Client, LanguageServer, LspService, Server};
use weir_compiler::Session;
use weir_compiler::diagnostics::{Diagnostic as WDiag, Severity, Span};

/// Serves LSP on standard input and output until the client exits.
pub fn serve_stdio() {
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    else {
        eprintln!("weir-lsp: cannot start the async runtime");
        return;
    };
    rt.block_on(async {
        let (service, socket) = LspService::build(Backend::new)
            .custom_method("weir/malformed", Backend::malformed)
            .finish();
        // Frames whose body is not JSON would end the transport; they are
        // replaced by a `weir/malformed` notification, which the server
        // answers with an error message to the client, and serving goes on.
        let (to_server, from_proxy) = tokio::io::duplex(1 << 16);
        tokio::spawn(proxy_stdin(to_server));
        Server::new(from_proxy, tokio::io::stdout(), socket)
            .serve(service)
            .await;
    });
}

async fn proxy_stdin(mut out: tokio::io::DuplexStream) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let mut input = BufReader::new(tokio::io::stdin());
    loop {
        let mut len: Option<usize> = None;
        loop {
            let mut line = String::new();
            match input.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = line.trim();
            if line.is_empty() {
                if len.is_some() {
                    break;
                }
                continue;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.trim().eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().ok();
            }
        }
        let Some(len) = len.filter(|l| *l <= 64 << 20) else {
            continue;
        };
        let mut body = vec![0u8; len];
        if input.read_exact(&mut body).await.is_err() {
            return;
        }
        if serde_json::from_slice::<serde_json::Value>(&body).is_err() {
            let preview: String = String::from_utf8_lossy(&body).chars().take(80).collect();
            body = serde_json::json!({ "jsonrpc": "2.0", "method": "weir/malformed", "params": { "message": format!("malformed JSON-RPC message ignored: {preview}") } }).to_string().into_bytes();
        }
        let frame = format!("Content-Length: {}\r\n\r\n", body.len());
        if out.write_all(frame.as_bytes()).await.is_err() || out.write_all(&body).await.is_err() {
            return;
        }
    }
}

struct Doc {
    text: String,
    version: i32,
}

#[derive(Default)]
struct State {
    root: Option<PathBuf>,
    /// Open buffers by module name; they overlay the files on disk.
    open: BTreeMap<String, Doc>,
    /// The project's `.weir` files as read from disk, by module name.
    disk: BTreeMap<String, String>,
    session: Session,
}

impl State {
    fn files(&self) -> BTreeMap<String, String> {
        let mut f = self.disk.clone();
        for (k, d) in &self.open {
            f.insert(k.clone(), d.text.clone());
        }
        f
    }
    fn sync(&mut self) {
        let files = self.files();
        self.session.set_files(&files);
    }
    fn module_name(&self, uri: &Uri) -> String {
        let path = uri.to_file_path().map(std::borrow::Cow::into_owned);
        match (path, &self.root) {
            (Some(p), Some(root)) => p.strip_prefix(root).map_or_else(
                |_| p.display().to_string(),
                |r| r.to_string_lossy().replace('\\', "/"),
            ),
            (Some(p), None) => p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            (None, _) => uri.as_str().to_owned(),
        }
    }
    fn uri_of(&self, module: &str) -> Option<Uri> {
        match &self.root {
            Some(root) => Uri::from_file_path(root.join(module)),
            None => Uri::from_file_path(Path::new("/").join(module)),
        }
    }
    fn text(&self, module: &str) -> Option<&str> {
        self.open
            .get(module)
            .map(|d| d.text.as_str())
            .or_else(|| self.disk.get(module).map(String::as_str))
    }
}

pub struct Backend {
    client: Client,
    state: Mutex<State>,
}

fn internal(msg: &str) -> Error {
    let mut e = Error::internal_error();
    e.message = msg.to_owned().into();
    e
}

/// UTF-16 position of a byte offset.
pub fn position(text: &str, offset: usize) -> Position {
    let mut offset = offset.min(text.len());
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let character = text[line_start..offset].encode_utf16().count();
    Position {
        line: line as u32,
        character: character as u32,
    }
}

/// Byte offset of a UTF-16 position; positions past a line's end clamp to it.
pub fn offset(text: &str, pos: Position) -> usize {
    let mut line_start = 0;
    for _ in 0..pos.line {
        match text[line_start..].find('\n') {
            Some(i) => line_start += i + 1,
            None => return text.len(),
        }
    }
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let mut units = 0u32;
    for (i, c) in text[line_start..line_end].char_indices() {
        if units >= pos.character {
            return line_start + i;
        }
        units += c.len_utf16() as u32;
    }
    line_end
}

fn range(text: &str, span: Span) -> Range {
    Range {
        start: position(text, span.start as usize),
        end: position(text, span.end as usize),
    }
}

impl Backend {
    pub fn new(client: Client) -> Backend {
        Backend {
            client,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the state, turning a panic into an internal error.
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T> {
        let mut st = self.lock();
        catch_unwind(AssertUnwindSafe(|| f(&mut st))).map_err(|_| internal("internal error in the Weir compiler; please report it with the file that caused it"))
    }

    fn load_disk(st: &mut State) {
        let Some(root) = st.root.clone() else { return };
        let mut found = Vec::new();
        walk(&root, &mut found, 0);
        st.disk.clear();
        for p in found {
            if let (Ok(text), Ok(rel)) = (std::fs::read_to_string(&p), p.strip_prefix(&root)) {
                st.disk
                    .insert(rel.to_string_lossy().replace('\\', "/"), text);
            }
        }
    }

    async fn publish(&self) {
        let batches = self.with(|st| {
            st.sync();
            let diags = st.session.check();
            let mut by_file: BTreeMap<String, Vec<WDiag>> = BTreeMap::new();
            for m in st.open.keys() {
                by_file.insert(m.clone(), Vec::new());
            }
            for d in diags {
                if let Some(v) = by_file.get_mut(&d.primary.file) {
                    v.push(d);
                }
            }
            by_file
                .into_iter()
                .filter_map(|(m, ds)| {
                    let text = st.text(&m)?.to_owned();
                    let uri = st.uri_of(&m)?;
                    let version = st.open.get(&m).map(|d| d.version);
                    let converted = ds.iter().map(|d| to_lsp(d, &text, st)).collect();
                    Some((uri, converted, version))
                })
                .collect::<Vec<_>>()
        });
        if let Ok(batches) = batches {
            for (uri, diags, version) in batches {
                self.client.publish_diagnostics(uri, diags, version).await;
            }
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if depth > 16 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(std::result::Result::ok) {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if !name.starts_with('.') && name != "target" && name != "node_modules" {
                walk(&p, out, depth + 1);
            }
        } else if name.ends_with(".weir") {
            out.push(p);
        }
    }
}

fn to_lsp(d: &WDiag, text: &str, st: &State) -> Diagnostic {
    let mut message = d.message.clone();
    if !d.primary.message.is_empty() {
        message.push_str(&format!("\n{}", d.primary.message));
    }
    for n in &d.notes {
        message.push_str(&format!("\nnote: {n}"));
    }
    if let Some(h) = &d.help {
        message.push_str(&format!("\nhelp: {h}"));
    }
    let related: Vec<DiagnosticRelatedInformation> = d
        .labels
        .iter()
        .filter_map(|l| {
            let t = st.text(&l.file)?;
            Some(DiagnosticRelatedInformation {
                location: Location {
                    uri: st.uri_of(&l.file)?,
                    range: range(t, l.span),
                },
                message: l.message.clone(),
            })
        })
        .collect();
    Diagnostic {
        range: range(text, d.primary.span),
        severity: Some(if d.severity == Severity::Error {
            DiagnosticSeverity::ERROR
        } else {
            DiagnosticSeverity::WARNING
        }),
        code: Some(NumberOrString::String(d.code.as_str().to_owned())),
        source: Some("weir".into()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        data: d
            .help
            .as_ref()
            .map(|h| serde_json::Value::String(h.clone())),
        ..Default::default()
    }
}

fn symbol_kind(k: &str) -> SymbolKind {
    match k {
        "pipeline" => SymbolKind::MODULE,
        "stage" => SymbolKind::NAMESPACE,
        "step" | "gate" | "approval" => SymbolKind::EVENT,
        "fn" => SymbolKind::FUNCTION,
        "enum" => SymbolKind::ENUM,
        "type" => SymbolKind::STRUCT,
        "param" => SymbolKind::PROPERTY,
        "policy" => SymbolKind::INTERFACE,
        _ => SymbolKind::VARIABLE,
    }
}

#[allow(deprecated)]
fn document_symbol(s: &weir_compiler::ide::Symbol, text: &str) -> DocumentSymbol {
    DocumentSymbol {
        name: if s.name.is_empty() {
            "…".into()
        } else {
            s.name.clone()
        },
        detail: Some(s.kind.to_owned()),
        kind: symbol_kind(s.kind),
        tags: None,
        deprecated: None,
        range: range(text, s.span),
        selection_range: range(text, s.selection),
        children: Some(
            s.children
                .iter()
                .map(|c| document_symbol(c, text))
                .collect(),
        ),
    }
}

/// The replacement a diagnostic's "did you mean `x`?" help suggests.
fn suggested(help: &str) -> Option<String> {
    let start = help.find("did you mean `")? + "did you mean `".len();
    let rest = &help[start..];
    let s = &rest[..rest.find('`')?];
    Some(s.rsplit('.').next().unwrap_or(s).to_owned())
}

impl Backend {
    async fn malformed(&self, params: serde_json::Value) {
        let msg = params
            .get("message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("malformed JSON-RPC message ignored")
            .to_owned();
        self.client.log_message(MessageType::ERROR, msg).await;
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        #[allow(deprecated)]
        let root = params
            .workspace_folders
            .as_ref()
            .and_then(|f| f.first())
            .and_then(|f| f.uri.to_file_path().map(std::borrow::Cow::into_owned))
            .or_else(|| {
                params
                    .root_uri
                    .as_ref()
                    .and_then(|u| u.to_file_path().map(std::borrow::Cow::into_owned))
            });
        {
            let mut st = self.lock();
            st.root = root;
            Self::load_disk(&mut st);
        }
        Ok(InitializeResult {
            server_info: Some(ServerInfo {
                name: "weir-lsp".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            capabilities: ServerCapabilities {
                position_encoding: Some(PositionEncodingKind::UTF16),
                text_document_sync: Some(TextDocumentSyncCapability::Kind(
                    TextDocumentSyncKind::FULL,
                )),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                completion_provider: Some(CompletionOptions {
                    trigger_characters: Some(vec![".".into()]),
                    ..Default::default()
                }),
                definition_provider: Some(OneOf::Left(true)),
                references_provider: Some(OneOf::Left(true)),
                rename_provider: Some(OneOf::Left(true)),
                document_symbol_provider: Some(OneOf::Left(true)),
                document_formatting_provider: Some(OneOf::Left(true)),
                code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }

    async fn did_open(&self, p: DidOpenTextDocumentParams) {
        {
            let mut st = self.lock();
            let m = st.module_name(&p.text_document.uri);
            st.open.insert(
                m,
                Doc {
                    text: p.text_document.text,
                    version: p.text_document.version,
                },
            );
        }
        self.publish().await;
    }

    async fn did_change(&self, p: DidChangeTextDocumentParams) {
        let applied = {
            let mut st = self.lock();
            let m = st.module_name(&p.text_document.uri);
            match (st.open.get_mut(&m), p.content_changes.into_iter().last()) {
                (Some(doc), Some(change)) if p.text_document.version > doc.version => {
                    if let Some(r) = change.range {
                        let (a, b) = (offset(&doc.text, r.start), offset(&doc.text, r.end));
                        doc.text.replace_range(a.min(b)..b.max(a), &change.text);
                    } else {
                        doc.text = change.text;
                    }
                    doc.version = p.text_document.version;
                    true
                }
                // A change to a document that was never opened, or older than
                // what we have: ignored.
                _ => false,
            }
        };
        if applied {
            self.publish().await;
        }
    }

    async fn did_save(&self, _: DidSaveTextDocumentParams) {
        {
            let mut st = self.lock();
            Self::load_disk(&mut st);
        }
        self.publish().await;
    }

    async fn did_close(&self, p: DidCloseTextDocumentParams) {
        let uri = p.text_document.uri.clone();
        {
            let mut st = self.lock();
            let m = st.module_name(&p.text_document.uri);
            st.open.remove(&m);
        }
        self.client.publish_diagnostics(uri, Vec::new(), None).await;
        self.publish().await;
    }

    async fn did_change_watched_files(&self, _: DidChangeWatchedFilesParams) {
        {
            let mut st = self.lock();
            Self::load_disk(&mut st);
        }
        self.publish().await;
    }

    async fn hover(&self, p: HoverParams) -> Result<Option<Hover>> {
        let tp = p.text_document_position_params;
        self.with(|st| {
            st.sync();
            let m = st.module_name(&tp.text_document.uri);
            let text = st.text(&m)?.to_owned();
            let checked = st.session.checked();
            let h = weir_compiler::ide::hover(&checked, &m, offset(&text, tp.position))?;
            Some(Hover {
                contents: HoverContents::Markup(MarkupContent {
                    kind: MarkupKind::Markdown,
                    value: h.markdown,
                }),
                range: Some(range(&text, h.span)),
            })
        })
    }

    async fn goto_definition(
        &self,
        p: GotoDefinitionParams,
    ) -> Result<Option<GotoDefinitionResponse>> {
        let tp = p.text_document_position_params;
        self.with(|st| {
            st.sync();
            let m = st.module_name(&tp.text_document.uri);
            let text = st.text(&m)?.to_owned();
            let checked = st.session.checked();
            let loc = weir_compiler::ide::definition(&checked, &m, offset(&text, tp.position))?;
            let t = st.text(&loc.file)?;
            Some(GotoDefinitionResponse::Scalar(Location {
                uri: st.uri_of(&loc.file)?,
                range: range(t, loc.span),
            }))
        })
    }

    async fn references(&self, p: ReferenceParams) -> Result<Option<Vec<Location>>> {
        let tp = p.text_document_position;
        self.with(|st| {
            st.sync();
            let m = st.module_name(&tp.text_document.uri);
            let text = st.text(&m)?.to_owned();
            let checked = st.session.checked();
            let locs = weir_compiler::ide::references(&checked, &m, offset(&text, tp.position));
            Some(
                locs.iter()
                    .filter_map(|l| {
                        Some(Location {
                            uri: st.uri_of(&l.file)?,
                            range: range(st.text(&l.file)?, l.span),
                        })
                    })
                    .collect(),
            )
        })
    }

    async fn rename(&self, p: RenameParams) -> Result<Option<WorkspaceEdit>> {
        let tp = p.text_document_position;
        let result = self.with(|st| {
            st.sync();
            let m = st.module_name(&tp.text_document.uri);
            let Some(text) = st.text(&m).map(str::to_owned) else {
                return Ok(None);
            };
            let checked = st.session.checked();
            let locs =
                weir_compiler::ide::rename(&checked, &m, offset(&text, tp.position), &p.new_name)?;
            let mut changes: std::collections::HashMap<Uri, Vec<TextEdit>> =
                std::collections::HashMap::new();
            for l in locs {
                if let (Some(uri), Some(t)) = (st.uri_of(&l.file), st.text(&l.file)) {
                    changes.entry(uri).or_default().push(TextEdit {
                        range: range(t, l.span),
                        new_text: p.new_name.clone(),
                    });
                }
            }
            Ok::<_, String>(Some(WorkspaceEdit {
                changes: Some(changes),
                ..Default::default()
            }))
        })?;
        result.map_err(Error::invalid_params)
    }

    async fn document_symbol(
        &self,
        p: DocumentSymbolParams,
    ) -> Result<Option<DocumentSymbolResponse>> {
        self.with(|st| {
            st.sync();
            let m = st.module_name(&p.text_document.uri);
            let text = st.text(&m)?.to_owned();
            let parsed = st.session.parsed(&m)?;
            let syms = weir_compiler::ide::symbols(&parsed);
            Some(DocumentSymbolResponse::Nested(
                syms.iter().map(|s| document_symbol(s, &text)).collect(),
            ))
        })
    }

    async fn formatting(&self, p: DocumentFormattingParams) -> Result<Option<Vec<TextEdit>>> {
        self.with(|st| {
            let m = st.module_name(&p.text_document.uri);
            let text = st.text(&m)?.to_owned();
            let out = weir_compiler::fmt::format_source(&m, &text).ok()?;
            if out == text {
                return Some(Vec::new());
            }
            Some(vec![TextEdit {
                range: Range {
                    start: Position {
                        line: 0,
                        character: 0,
                    },
                    end: position(&text, text.len()),
                },
                new_text: out,
            }])
        })
    }

    async fn completion(&self, p: CompletionParams) -> Result<Option<CompletionResponse>> {
        let tp = p.text_document_position;
        self.with(|st| {
            st.sync();
            let m = st.module_name(&tp.text_document.uri);
            let text = st.text(&m)?.to_owned();
            let parsed = st.session.parsed(&m)?;
            let checked = st.session.checked();
            let items = weir_compiler::ide::completions(
                &checked,
                &parsed,
                &m,
                &text,
                offset(&text, tp.position),
            );
            Some(CompletionResponse::Array(
                items
                    .into_iter()
                    .map(|c| CompletionItem {
                        kind: Some(match c.kind {
                            "keyword" => CompletionItemKind::KEYWORD,
                            "field" => CompletionItemKind::FIELD,
                            "function" => CompletionItemKind::FUNCTION,
                            "enum_member" => CompletionItemKind::ENUM_MEMBER,
                            "module" => CompletionItemKind::MODULE,
                            _ => CompletionItemKind::VARIABLE,
                        }),
                        detail: (!c.detail.is_empty()).then_some(c.detail),
                        label: c.label,
                        ..Default::default()
                    })
                    .collect(),
            ))
        })
    }

    async fn code_action(&self, p: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let uri = p.text_document.uri.clone();
        let actions: Vec<CodeActionOrCommand> = p
            .context
            .diagnostics
            .iter()
            .filter_map(|d| {
                let help = d.data.as_ref()?.as_str()?;
                let new = suggested(help)?;
                let mut changes = std::collections::HashMap::new();
                changes.insert(
                    uri.clone(),
                    vec![TextEdit {
                        range: d.range,
                        new_text: new.clone(),
                    }],
                );
                Some(CodeActionOrCommand::CodeAction(CodeAction {
                    title: format!("Change to `{new}`"),
                    kind: Some(CodeActionKind::QUICKFIX),
                    diagnostics: Some(vec![d.clone()]),
                    edit: Some(WorkspaceEdit {
                        changes: Some(changes),
                        ..Default::default()
                    }),
                    is_preferred: Some(true),
                    ..Default::default()
                }))
            })
            .collect();
        Ok(Some(actions))
    }
}
