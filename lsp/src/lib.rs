//! The Weir language server.
//!
//! It holds no language logic: every request is answered by the compiler's
//! salsa-backed [`Session`] and its IDE functions, which work in byte
//! offsets; this crate converts LSP positions (UTF-16 code units) at the
//! edge and back.
//!
//! One lock owns the session: edits are applied in version order (a change
//! older than the document is ignored). Each request takes a snapshot of
//! the session under the lock and is answered from it on the blocking pool,
//! so a slow request never holds up edits; the next edit cancels queries
//! still running on older snapshots, and such a request is answered with
//! `ContentModified` (the client asks again). Diagnostics are published
//! once edits pause for [`DEBOUNCE`]. A panic inside the compiler is caught
//! and answered as an internal error; the server keeps serving.

mod convert;
mod state;

pub use convert::{LineIndex, offset, position};

use convert::{diagnostic, document_symbol, range, suggested, symbol_kind};
use serde_json::json;
use state::{Doc, State, View};
use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CodeActionParams,
    CodeActionProviderCapability, CodeActionResponse, CompletionItem, CompletionItemKind,
    CompletionOptions, CompletionParams, CompletionResponse, DidChangeTextDocumentParams,
    DidChangeWatchedFilesParams, DidCloseTextDocumentParams, DidOpenTextDocumentParams,
    DidSaveTextDocumentParams, DocumentFormattingParams, DocumentSymbolParams,
    DocumentSymbolResponse, Documentation, GotoDefinitionParams, GotoDefinitionResponse, Hover,
    HoverContents, HoverParams, HoverProviderCapability, InitializeParams, InitializeResult,
    InitializedParams, InlayHint, InlayHintKind, InlayHintLabel, InlayHintParams, Location,
    MarkupContent, MarkupKind, MessageType, OneOf, ParameterInformation, ParameterLabel, Position,
    PositionEncodingKind, Range, ReferenceParams, Registration, RenameParams, SemanticToken,
    SemanticTokens, SemanticTokensParams, SemanticTokensResult, ServerCapabilities, ServerInfo,
    SignatureHelp, SignatureHelpOptions, SignatureHelpParams, SignatureInformation,
    SymbolInformation, TextDocumentSyncCapability, TextDocumentSyncKind, TextEdit, Uri,
    WorkspaceEdit, WorkspaceSymbolParams, WorkspaceSymbolResponse,
};
use tower_lsp_server::{Client, LanguageServer, LspService, Server};
use weir_compiler::diagnostics::{Code, Diagnostic as WDiag, Span};
use weir_compiler::ide;

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

/// How long edits must pause before diagnostics are computed and published.
pub const DEBOUNCE: Duration = Duration::from_millis(2);

struct Inner {
    client: Client,
    state: Mutex<State>,
    /// Bumped by every edit; a diagnostics run publishes only if no edit
    /// came after the one that scheduled it.
    generation: AtomicU64,
    watch_files: std::sync::atomic::AtomicBool,
    /// Fault injection for tests: `WEIR_LSP_FAULT=hover` or `=diagnostics`
    /// makes that path panic, to show the panic is contained.
    fault: Option<String>,
}

pub struct Backend {
    inner: Arc<Inner>,
}

fn internal(msg: &str) -> Error {
    let mut e = Error::internal_error();
    e.message = msg.to_owned().into();
    e
}

const COMPILER_PANIC: &str =
    "internal error in the Weir compiler; please report it with the file that caused it";

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Answers from a snapshot on the blocking pool. A query cancelled by
    /// a newer edit becomes `ContentModified`; a panic, an internal error.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&View) -> T + Send + 'static,
    ) -> Result<T> {
        let view = {
            let mut st = self.lock();
            catch_unwind(AssertUnwindSafe(|| st.view())).map_err(|_| internal(COMPILER_PANIC))?
        };
        let answer =
            tokio::task::spawn_blocking(move || catch_unwind(AssertUnwindSafe(|| f(&view)))).await;
        match answer {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(p)) if weir_compiler::is_cancelled(&*p) => Err(Error::content_modified()),
            Ok(Err(_)) | Err(_) => Err(internal(COMPILER_PANIC)),
        }
    }

    /// Records an edit and schedules diagnostics for after the pause.
    fn edited(self: &Arc<Self>) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let me = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(DEBOUNCE).await;
            if me.generation.load(Ordering::SeqCst) == generation {
                me.publish(generation).await;
            }
        });
    }

    fn inject(&self, at: &str) {
        assert!(self.fault.as_deref() != Some(at), "injected fault in {at}");
    }

    async fn publish(self: &Arc<Self>, generation: u64) {
        let me = Arc::clone(self);
        let batches = self
            .read(move |view| {
                me.inject("diagnostics");
                let checked = view.snapshot.diagnostics()?;
                let mut by_file: BTreeMap<String, Vec<&WDiag>> = BTreeMap::new();
                for m in view.versions.keys() {
                    by_file.insert(m.clone(), Vec::new());
                }
                for d in &checked.diagnostics {
                    if let Some(v) = by_file.get_mut(&d.primary.file) {
                        v.push(d);
                    }
                }
                Some(
                    by_file
                        .into_iter()
                        .filter_map(|(m, ds)| {
                            let text = view.text(&m)?;
                            let uri = view.uri_of(&m)?;
                            let converted = ds.iter().map(|d| diagnostic(d, text, view)).collect();
                            Some((uri, converted, view.versions.get(&m).copied()))
                        })
                        .collect::<Vec<_>>(),
                )
            })
            .await;
        // Stale when another edit came in meanwhile: that edit publishes.
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        match batches {
            Ok(Some(batches)) => {
                for (uri, diags, version) in batches {
                    self.client.publish_diagnostics(uri, diags, version).await;
                }
            }
            // The compiler panicked: say so where the user looks, on every
            // open file, instead of leaving stale diagnostics up.
            Err(e) if e.code == tower_lsp_server::jsonrpc::ErrorCode::InternalError => {
                let open: Vec<(Uri, i32)> = {
                    let st = self.lock();
                    st.open
                        .iter()
                        .filter_map(|(m, d)| Some((st.uri_of(m)?, d.version)))
                        .collect()
                };
                for (uri, version) in open {
                    let d = tower_lsp_server::ls_types::Diagnostic {
                        range: Range::default(),
                        severity: Some(tower_lsp_server::ls_types::DiagnosticSeverity::ERROR),
                        code: Some(tower_lsp_server::ls_types::NumberOrString::String(
                            Code::Internal.as_str().to_owned(),
                        )),
                        source: Some("weir".into()),
                        message: COMPILER_PANIC.to_owned(),
                        ..Default::default()
                    };
                    self.client
                        .publish_diagnostics(uri, vec![d], Some(version))
                        .await;
                }
            }
            _ => {}
        }
    }
}

impl Backend {
    pub fn new(client: Client) -> Backend {
        Backend {
            inner: Arc::new(Inner {
                client,
                state: Mutex::new(State::default()),
                generation: AtomicU64::new(0),
                watch_files: std::sync::atomic::AtomicBool::new(false),
                fault: std::env::var("WEIR_LSP_FAULT").ok(),
            }),
        }
    }

    async fn malformed(&self, params: serde_json::Value) {
        let msg = params
            .get("message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("malformed JSON-RPC message ignored")
            .to_owned();
        self.inner.client.log_message(MessageType::ERROR, msg).await;
    }

    /// Runs `f` with the text of the document `uri` names and a byte offset
    /// for `pos`, on a snapshot.
    async fn at<T: Send + 'static>(
        &self,
        uri: &Uri,
        pos: Position,
        f: impl FnOnce(&View, &str, &str, usize) -> Option<T> + Send + 'static,
    ) -> Result<Option<T>> {
        let uri = uri.clone();
        self.inner
            .read(move |view| {
                let m = view.module_name(&uri);
                let text = view.text(&m)?;
                let at = convert::offset(text, pos);
                f(view, &m, text, at)
            })
            .await
    }
}

fn completion_kind(kind: &str) -> CompletionItemKind {
    match kind {
        "keyword" => CompletionItemKind::KEYWORD,
        "field" => CompletionItemKind::FIELD,
        "function" => CompletionItemKind::FUNCTION,
        "enum_member" => CompletionItemKind::ENUM_MEMBER,
        "module" => CompletionItemKind::MODULE,
        "argument" => CompletionItemKind::PROPERTY,
        _ => CompletionItemKind::VARIABLE,
    }
}

fn semantic_capabilities() -> serde_json::Value {
    let types: Vec<&str> = ide::TokenKind::ALL.iter().map(|k| k.as_str()).collect();
    json!({
        "legend": { "tokenTypes": types, "tokenModifiers": ide::MODIFIERS },
        "full": true,
        "range": false
    })
}

fn edit_of(uri: &Uri, edits: Vec<TextEdit>) -> WorkspaceEdit {
    let mut changes = HashMap::new();
    changes.insert(uri.clone(), edits);
    WorkspaceEdit {
        changes: Some(changes),
        ..Default::default()
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
        let watch = params
            .capabilities
            .workspace
            .as_ref()
            .and_then(|w| w.did_change_watched_files.as_ref())
            .and_then(|d| d.dynamic_registration)
            .unwrap_or(false);
        self.inner.watch_files.store(watch, Ordering::SeqCst);
        {
            let mut st = self.inner.lock();
            st.root = root;
            st.load_disk();
        }
        let semantic = serde_json::from_value(semantic_capabilities()).ok();
        Ok(InitializeResult {
            server_info: Some(ServerInfo {
                name: "weir-lsp".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            capabilities: ServerCapabilities {
                position_encoding: Some(PositionEncodingKind::UTF16),
                text_document_sync: Some(TextDocumentSyncCapability::Kind(
                    TextDocumentSyncKind::INCREMENTAL,
                )),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                completion_provider: Some(CompletionOptions {
                    trigger_characters: Some(vec![".".into(), "(".into(), ",".into()]),
                    ..Default::default()
                }),
                signature_help_provider: Some(SignatureHelpOptions {
                    trigger_characters: Some(vec!["(".into(), ",".into()]),
                    retrigger_characters: Some(vec![":".into()]),
                    ..Default::default()
                }),
                definition_provider: Some(OneOf::Left(true)),
                references_provider: Some(OneOf::Left(true)),
                rename_provider: Some(OneOf::Left(true)),
                document_symbol_provider: Some(OneOf::Left(true)),
                workspace_symbol_provider: Some(OneOf::Left(true)),
                document_formatting_provider: Some(OneOf::Left(true)),
                code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
                semantic_tokens_provider: semantic,
                inlay_hint_provider: Some(OneOf::Left(true)),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        if !self.inner.watch_files.load(Ordering::SeqCst) {
            return;
        }
        // Files changed on disk (a `git checkout`, another editor) are
        // picked up. Registered in the background: the answer may never come.
        let client = self.inner.client.clone();
        tokio::spawn(async move {
            let _ = client
                .register_capability(vec![Registration {
                    id: "weir-watch".into(),
                    method: "workspace/didChangeWatchedFiles".into(),
                    register_options: Some(json!({ "watchers": [{ "globPattern": "**/*.weir" }] })),
                }])
                .await;
        });
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }

    async fn did_open(&self, p: DidOpenTextDocumentParams) {
        {
            let mut st = self.inner.lock();
            let m = st.module_name(&p.text_document.uri);
            st.open.insert(
                m,
                Doc {
                    text: Arc::new(p.text_document.text),
                    version: p.text_document.version,
                },
            );
            st.changed();
        }
        self.inner.edited();
    }

    async fn did_change(&self, p: DidChangeTextDocumentParams) {
        let applied = {
            let mut st = self.inner.lock();
            let m = st.module_name(&p.text_document.uri);
            let applied = match st.open.get_mut(&m) {
                Some(doc) if p.text_document.version > doc.version => {
                    let text = Arc::make_mut(&mut doc.text);
                    for change in p.content_changes {
                        match change.range {
                            Some(r) => {
                                let (from, to) = convert::offsets(text, r);
                                text.replace_range(from.min(to)..to.max(from), &change.text);
                            }
                            None => *text = change.text,
                        }
                    }
                    doc.version = p.text_document.version;
                    true
                }
                // A change to a document that was never opened, or older than
                // what we have: ignored.
                _ => false,
            };
            if applied {
                st.changed();
            }
            applied
        };
        if applied {
            self.inner.edited();
        }
    }

    async fn did_save(&self, _: DidSaveTextDocumentParams) {
        self.inner.lock().load_disk();
        self.inner.edited();
    }

    async fn did_close(&self, p: DidCloseTextDocumentParams) {
        let uri = p.text_document.uri.clone();
        {
            let mut st = self.inner.lock();
            let m = st.module_name(&p.text_document.uri);
            st.open.remove(&m);
            st.changed();
        }
        self.inner
            .client
            .publish_diagnostics(uri, Vec::new(), None)
            .await;
        self.inner.edited();
    }

    async fn did_change_watched_files(&self, _: DidChangeWatchedFilesParams) {
        self.inner.lock().load_disk();
        self.inner.edited();
    }

    async fn hover(&self, p: HoverParams) -> Result<Option<Hover>> {
        let tp = p.text_document_position_params;
        let me = Arc::clone(&self.inner);
        self.at(
            &tp.text_document.uri,
            tp.position,
            move |view, m, text, at| {
                me.inject("hover");
                let h = ide::hover(&*view.snapshot.checked()?, m, at)?;
                Some(Hover {
                    contents: HoverContents::Markup(MarkupContent {
                        kind: MarkupKind::Markdown,
                        value: h.markdown,
                    }),
                    range: Some(range(text, h.span)),
                })
            },
        )
        .await
    }

    async fn goto_definition(
        &self,
        p: GotoDefinitionParams,
    ) -> Result<Option<GotoDefinitionResponse>> {
        let tp = p.text_document_position_params;
        self.at(&tp.text_document.uri, tp.position, |view, m, _, at| {
            let loc = ide::definition(&*view.snapshot.checked()?, m, at)?;
            Some(GotoDefinitionResponse::Scalar(Location {
                uri: view.uri_of(&loc.file)?,
                range: range(view.text(&loc.file)?, loc.span),
            }))
        })
        .await
    }

    async fn references(&self, p: ReferenceParams) -> Result<Option<Vec<Location>>> {
        let tp = p.text_document_position;
        self.at(&tp.text_document.uri, tp.position, |view, m, _, at| {
            let locs = ide::references(&*view.snapshot.checked()?, m, at);
            Some(
                locs.iter()
                    .filter_map(|l| {
                        Some(Location {
                            uri: view.uri_of(&l.file)?,
                            range: range(view.text(&l.file)?, l.span),
                        })
                    })
                    .collect(),
            )
        })
        .await
    }

    async fn rename(&self, p: RenameParams) -> Result<Option<WorkspaceEdit>> {
        let tp = p.text_document_position;
        let new_name = p.new_name;
        let result = self
            .at(&tp.text_document.uri, tp.position, move |view, m, _, at| {
                let checked = view.snapshot.checked()?;
                Some(ide::rename(&checked, m, at, &new_name).map(|locs| {
                    let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
                    for l in locs {
                        if let (Some(uri), Some(t)) = (view.uri_of(&l.file), view.text(&l.file)) {
                            changes.entry(uri).or_default().push(TextEdit {
                                range: range(t, l.span),
                                new_text: new_name.clone(),
                            });
                        }
                    }
                    WorkspaceEdit {
                        changes: Some(changes),
                        ..Default::default()
                    }
                }))
            })
            .await?;
        match result {
            None => Ok(None),
            Some(r) => r.map(Some).map_err(Error::invalid_params),
        }
    }

    async fn document_symbol(
        &self,
        p: DocumentSymbolParams,
    ) -> Result<Option<DocumentSymbolResponse>> {
        let uri = p.text_document.uri;
        self.inner
            .read(move |view| {
                let m = view.module_name(&uri);
                let lines = LineIndex::new(view.text(&m)?);
                let parsed = view.snapshot.parsed(&m)?;
                let syms = ide::symbols(&parsed);
                Some(DocumentSymbolResponse::Nested(
                    syms.iter().map(|s| document_symbol(s, &lines)).collect(),
                ))
            })
            .await
    }

    async fn symbol(&self, p: WorkspaceSymbolParams) -> Result<Option<WorkspaceSymbolResponse>> {
        self.inner
            .read(move |view| {
                let checked = view.snapshot.checked()?;
                #[allow(deprecated)]
                let found: Vec<SymbolInformation> = ide::workspace_symbols(&checked, &p.query)
                    .into_iter()
                    .take(500)
                    .filter_map(|s| {
                        Some(SymbolInformation {
                            name: s.name,
                            kind: symbol_kind(s.kind),
                            tags: None,
                            deprecated: None,
                            location: Location {
                                uri: view.uri_of(&s.file)?,
                                range: range(view.text(&s.file)?, s.selection),
                            },
                            container_name: s.container,
                        })
                    })
                    .collect();
                Some(WorkspaceSymbolResponse::Flat(found))
            })
            .await
    }

    async fn formatting(&self, p: DocumentFormattingParams) -> Result<Option<Vec<TextEdit>>> {
        let uri = p.text_document.uri;
        self.inner
            .read(move |view| {
                let m = view.module_name(&uri);
                let text = view.text(&m)?;
                let out = weir_compiler::fmt::format_source(&m, text).ok()?;
                if out == text {
                    return Some(Vec::new());
                }
                Some(vec![TextEdit {
                    range: Range {
                        start: Position::new(0, 0),
                        end: position(text, text.len()),
                    },
                    new_text: out,
                }])
            })
            .await
    }

    async fn completion(&self, p: CompletionParams) -> Result<Option<CompletionResponse>> {
        let tp = p.text_document_position;
        self.at(&tp.text_document.uri, tp.position, |view, m, text, at| {
            let parsed = view.snapshot.parsed(m)?;
            let checked = view.snapshot.checked()?;
            let items = ide::completions(&checked, &parsed, m, text, at);
            Some(CompletionResponse::Array(
                items
                    .into_iter()
                    .map(|c| CompletionItem {
                        kind: Some(completion_kind(c.kind)),
                        insert_text: (c.kind == "argument").then(|| format!("{}: ", c.label)),
                        detail: (!c.detail.is_empty()).then_some(c.detail),
                        label: c.label,
                        ..Default::default()
                    })
                    .collect(),
            ))
        })
        .await
    }

    async fn signature_help(&self, p: SignatureHelpParams) -> Result<Option<SignatureHelp>> {
        let tp = p.text_document_position_params;
        self.at(&tp.text_document.uri, tp.position, |view, m, text, at| {
            let sig = ide::signature_help(&*view.snapshot.checked()?, m, text, at)?;
            let units = |b: usize| convert::utf16_len(&sig.label[..b]);
            let params = sig
                .params
                .iter()
                .map(|p| ParameterInformation {
                    label: ParameterLabel::LabelOffsets([units(p.range.0), units(p.range.1)]),
                    documentation: (!p.doc.is_empty())
                        .then(|| Documentation::String(p.doc.clone())),
                })
                .collect();
            let active = sig.active.map(|a| a as u32);
            Some(SignatureHelp {
                signatures: vec![SignatureInformation {
                    label: sig.label.clone(),
                    documentation: (!sig.doc.is_empty()).then(|| {
                        Documentation::MarkupContent(MarkupContent {
                            kind: MarkupKind::Markdown,
                            value: sig.doc.clone(),
                        })
                    }),
                    parameters: Some(params),
                    active_parameter: active,
                }],
                active_signature: Some(0),
                active_parameter: active,
            })
        })
        .await
    }

    async fn semantic_tokens_full(
        &self,
        p: SemanticTokensParams,
    ) -> Result<Option<SemanticTokensResult>> {
        let uri = p.text_document.uri;
        self.inner
            .read(move |view| {
                let m = view.module_name(&uri);
                let text = view.text(&m)?;
                let parsed = view.snapshot.parsed(&m)?;
                let checked = view.snapshot.checked()?;
                let lines = LineIndex::new(text);
                let mut data = Vec::new();
                let (mut line, mut col) = (0u32, 0u32);
                for t in ide::semantic_tokens(&checked, &parsed, &m, text) {
                    for (pos, len) in lines.line_pieces(t.span) {
                        let delta_line = pos.line - line;
                        let delta_start = if delta_line == 0 {
                            pos.character - col
                        } else {
                            pos.character
                        };
                        data.push(SemanticToken {
                            delta_line,
                            delta_start,
                            length: len,
                            token_type: t.kind.index(),
                            token_modifiers_bitset: t.modifiers,
                        });
                        (line, col) = (pos.line, pos.character);
                    }
                }
                Some(SemanticTokensResult::Tokens(SemanticTokens {
                    result_id: None,
                    data,
                }))
            })
            .await
    }

    async fn inlay_hint(&self, p: InlayHintParams) -> Result<Option<Vec<InlayHint>>> {
        let uri = p.text_document.uri;
        let r = p.range;
        self.inner
            .read(move |view| {
                let m = view.module_name(&uri);
                let lines = LineIndex::new(view.text(&m)?);
                let parsed = view.snapshot.parsed(&m)?;
                let checked = view.snapshot.checked()?;
                let span = Span::new(lines.offset(r.start), lines.offset(r.end));
                Some(
                    ide::inlay_hints(&checked, &parsed, &m, span)
                        .into_iter()
                        .map(|h| InlayHint {
                            position: lines.position(h.offset),
                            label: InlayHintLabel::String(h.label),
                            kind: Some(InlayHintKind::TYPE),
                            text_edits: None,
                            tooltip: None,
                            padding_left: None,
                            padding_right: None,
                            data: None,
                        })
                        .collect(),
                )
            })
            .await
    }

    async fn code_action(&self, p: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let uri = p.text_document.uri;
        let diags = p.context.diagnostics;
        self.inner
            .read(move |view| {
                let m = view.module_name(&uri);
                let text = view.text(&m).unwrap_or_default();
                let checked = view.snapshot.checked();
                let lines = LineIndex::new(text);
                let actions: Vec<CodeActionOrCommand> = diags
                    .iter()
                    .filter_map(|d| {
                        let (title, edit) = if d.code
                            == Some(tower_lsp_server::ls_types::NumberOrString::String(
                                Code::MissingArgument.as_str().to_owned(),
                            )) {
                            let span =
                                Span::new(lines.offset(d.range.start), lines.offset(d.range.end));
                            let (at, insert) =
                                ide::missing_arguments_fix(checked.as_deref()?, &m, text, span)?;
                            let pos = lines.position(at);
                            (
                                format!(
                                    "Add the missing arguments `{}`",
                                    insert.trim_start_matches(", ")
                                ),
                                TextEdit {
                                    range: Range::new(pos, pos),
                                    new_text: insert,
                                },
                            )
                        } else {
                            let new = suggested(d.data.as_ref()?.as_str()?)?;
                            (
                                format!("Change to `{new}`"),
                                TextEdit {
                                    range: d.range,
                                    new_text: new,
                                },
                            )
                        };
                        Some(CodeActionOrCommand::CodeAction(CodeAction {
                            title,
                            kind: Some(CodeActionKind::QUICKFIX),
                            diagnostics: Some(vec![d.clone()]),
                            edit: Some(edit_of(&uri, vec![edit])),
                            is_preferred: Some(true),
                            ..Default::default()
                        }))
                    })
                    .collect();
                Some(actions)
            })
            .await
    }
}
