//! `omniflowc lsp`: a language server over stdio. Every open document is compiled with
//! the same front end as `check` (all errors, codes and help) as it is typed; hover,
//! definition, references, rename, completion, formatting and quick fixes read what that
//! compilation recorded ([`crate::facts`]).

mod analysis;
mod completion;
mod convert;
mod features;
mod fixes;
mod overlay;
pub mod text;

use analysis::Analysis;
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{self as note, Notification as _};
use lsp_types::request::{self as req, Request as _};
use lsp_types::Url;
use overlay::Overlay;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

/// What the server knows: the open documents and their latest compilation.
pub struct Server {
    overlay: Overlay,
    /// Where the stdlib's files are written for go-to-definition.
    stdlib: PathBuf,
    analyses: HashMap<PathBuf, Rc<Analysis>>,
    /// Each document's last compilation that parsed: completion reads its scopes while
    /// the text being typed does not parse.
    parsed: HashMap<PathBuf, Rc<Analysis>>,
    versions: HashMap<PathBuf, i32>,
    /// Documents changed since their last compilation.
    stale: bool,
}

/// Serves one client on stdin/stdout until it says `exit`.
pub fn serve_stdio() -> Result<(), String> {
    let (connection, threads) = Connection::stdio();
    serve(&connection)?;
    drop(connection);
    threads.join().map_err(|err| err.to_string())
}

/// Serves one client on a connection: the initialize handshake, then requests until
/// `shutdown` and `exit`.
pub fn serve(connection: &Connection) -> Result<(), String> {
    let capabilities = serde_json::to_value(features::capabilities()).map_err(|e| e.to_string())?;
    connection
        .initialize(capabilities)
        .map_err(|err| err.to_string())?;
    let stdlib = stdlib_dir()?;
    analysis::write_stdlib(&stdlib).map_err(|err| format!("cannot write the stdlib: {err}"))?;
    let mut server = Server {
        overlay: Overlay::default(),
        stdlib,
        analyses: HashMap::new(),
        parsed: HashMap::new(),
        versions: HashMap::new(),
        stale: false,
    };
    loop {
        let Ok(message) = connection.receiver.recv() else {
            return Ok(());
        };
        match message {
            Message::Request(request) => {
                if connection
                    .handle_shutdown(&request)
                    .map_err(|err| err.to_string())?
                {
                    return Ok(());
                }
                server.refresh(connection);
                let response = server.answer(request);
                send(connection, Message::Response(response));
            }
            Message::Notification(notification) => {
                server.notified(notification);
                // Edits typed in a burst are compiled once.
                if connection.receiver.is_empty() {
                    server.refresh(connection);
                }
            }
            Message::Response(_) => {}
        }
    }
}

fn send(connection: &Connection, message: Message) {
    // The client is gone when this fails; the receive loop ends on its own.
    let _ = connection.sender.send(message);
}

/// Where the stdlib's files are written: the user's own cache (`$XDG_CACHE_HOME`, else
/// `~/.cache`), never a folder other users can prepare.
fn stdlib_dir() -> Result<PathBuf, String> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .ok_or("neither XDG_CACHE_HOME nor HOME is set: no place for the stdlib's files")?;
    Ok(cache
        .join("omniflow")
        .join(format!("stdlib-{}", env!("CARGO_PKG_VERSION"))))
}

impl Server {
    fn notified(&mut self, notification: Notification) {
        match notification.method.as_str() {
            note::DidOpenTextDocument::METHOD => {
                if let Ok(params) = serde_json::from_value::<lsp_types::DidOpenTextDocumentParams>(
                    notification.params,
                ) {
                    self.set_text(
                        &params.text_document.uri,
                        params.text_document.text,
                        params.text_document.version,
                    );
                }
            }
            note::DidChangeTextDocument::METHOD => {
                if let Ok(params) = serde_json::from_value::<lsp_types::DidChangeTextDocumentParams>(
                    notification.params,
                ) {
                    // Full sync: the last change holds the whole text.
                    if let Some(change) = params.content_changes.into_iter().last() {
                        self.set_text(
                            &params.text_document.uri,
                            change.text,
                            params.text_document.version,
                        );
                    }
                }
            }
            note::DidCloseTextDocument::METHOD => {
                if let Ok(params) = serde_json::from_value::<lsp_types::DidCloseTextDocumentParams>(
                    notification.params,
                ) {
                    if let Some(path) = path_of(&params.text_document.uri) {
                        self.overlay.remove(&path);
                        self.analyses.remove(&path);
                        self.parsed.remove(&path);
                        self.versions.remove(&path);
                        self.stale = true;
                    }
                }
            }
            _ => {}
        }
    }

    fn set_text(&mut self, uri: &Url, text: String, version: i32) {
        let Some(path) = path_of(uri) else { return };
        self.overlay.set(path.clone(), Arc::from(text));
        self.versions.insert(path, version);
        self.stale = true;
    }

    /// Compiles every open document again after a change (one may import another) and
    /// publishes each one's diagnostics.
    fn refresh(&mut self, connection: &Connection) {
        if !self.stale {
            return;
        }
        self.stale = false;
        for path in self.overlay.paths() {
            let analysis = Analysis::run(&self.overlay, &self.stdlib, &path);
            let diagnostics = match &analysis {
                Ok(analysis) => convert::diagnostics(analysis, &path),
                Err(reason) => vec![convert::whole_file_error(reason)],
            };
            match analysis {
                Ok(analysis) => {
                    let analysis = Rc::new(analysis);
                    if analysis.parsed(&path) {
                        self.parsed.insert(path.clone(), analysis.clone());
                    }
                    self.analyses.insert(path.clone(), analysis);
                }
                // Nothing compiled: no answers from an older text.
                Err(_) => {
                    self.analyses.remove(&path);
                }
            }
            let Ok(uri) = Url::from_file_path(&path) else {
                continue;
            };
            let params = lsp_types::PublishDiagnosticsParams {
                uri,
                diagnostics,
                version: self.versions.get(&path).copied(),
            };
            send(
                connection,
                Message::Notification(Notification::new(
                    note::PublishDiagnostics::METHOD.to_string(),
                    params,
                )),
            );
        }
    }

    fn answer(&self, request: Request) -> Response {
        let id = request.id.clone();
        let result = match request.method.as_str() {
            req::HoverRequest::METHOD => run(request, |p| features::hover(self, p)),
            req::GotoDefinition::METHOD => run(request, |p| features::definition(self, p)),
            req::References::METHOD => run(request, |p| features::references(self, p)),
            req::PrepareRenameRequest::METHOD => {
                run(request, |p| features::prepare_rename(self, p))
            }
            req::Rename::METHOD => run(request, |p| features::rename(self, p)),
            req::Completion::METHOD => run(request, |p| completion::complete(self, p)),
            req::Formatting::METHOD => run(request, |p| features::format(self, p)),
            req::CodeActionRequest::METHOD => run(request, |p| fixes::code_actions(self, p)),
            _ => Err((
                ErrorCode::MethodNotFound,
                format!("`{}` is not supported", request.method),
            )),
        };
        match result {
            Ok(value) => Response::new_ok(id, value),
            Err((code, message)) => Response::new_err(id, code as i32, message),
        }
    }

    /// The analysis of an open document, with its path.
    fn analysis(&self, uri: &Url) -> Option<(&Analysis, PathBuf)> {
        let path = path_of(uri)?;
        self.analyses.get(&path).map(|a| (a.as_ref(), path))
    }

    /// The last analysis of a document whose text parsed.
    fn parsed_analysis(&self, path: &Path) -> Option<&Analysis> {
        self.parsed.get(path).map(Rc::as_ref)
    }

    /// True for a file of the written-out stdlib (never renamed).
    fn is_stdlib(&self, path: &Path) -> bool {
        path.starts_with(&self.stdlib)
    }
}

type Answer = Result<serde_json::Value, (ErrorCode, String)>;

/// Decodes a request's parameters, runs `handle` and encodes its answer.
fn run<P, R>(request: Request, handle: impl FnOnce(P) -> Result<R, String>) -> Answer
where
    P: serde::de::DeserializeOwned,
    R: serde::Serialize,
{
    let params: P = serde_json::from_value(request.params)
        .map_err(|err| (ErrorCode::InvalidParams, err.to_string()))?;
    let result = handle(params).map_err(|err| (ErrorCode::RequestFailed, err))?;
    serde_json::to_value(result).map_err(|err| (ErrorCode::InternalError, err.to_string()))
}

/// The path of a `file:` URI.
fn path_of(uri: &Url) -> Option<PathBuf> {
    uri.to_file_path().ok()
}
