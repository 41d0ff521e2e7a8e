//! A minimal HTTP/1.1 server on the local task set (hyper), shared by the ops endpoint and
//! the webhook sources: bodies up to [`MAX_BODY`], deadlines and a connection cap from
//! [`Limits`].

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

pub use crate::connections::Limits;
use crate::connections::{Conn, Table, Watched};

/// A request reduced to what handlers need.
pub struct Req {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?` (empty when there is none).
    pub query: String,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

/// A response: status, content type, body.
pub struct Resp {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
}

impl Resp {
    /// A JSON response.
    pub fn json(status: u16, body: serde_json::Value) -> Resp {
        Resp {
            status,
            content_type: "application/json",
            body: body.to_string(),
            headers: Vec::new(),
        }
    }

    /// A plain text response.
    pub fn text(status: u16, body: impl Into<String>) -> Resp {
        Resp {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a response header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Resp {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A request handler.
pub type Handler = Rc<dyn Fn(Req) -> Pin<Box<dyn Future<Output = Resp>>>>;

/// Largest request body read (bigger bodies get 413).
pub const MAX_BODY: usize = omniflow_ir::MAX_WEBHOOK_BODY_BYTES as usize;

/// Why a server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Address(std::io::Error),
}

/// Binds and serves with the default [`Limits`] until the task is dropped; returns the
/// bound address.
pub async fn serve(addr: &str, handler: Handler) -> Result<SocketAddr, ServeError> {
    serve_with(addr, handler, "http", Limits::default()).await
}

/// Binds and serves with `limits` until the task is dropped; returns the bound address.
/// `name` names the server in logs.
pub async fn serve_with(
    addr: &str,
    handler: Handler,
    name: &'static str,
    limits: Limits,
) -> Result<SocketAddr, ServeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen {
            addr: addr.to_string(),
            source,
        })?;
    let local = listener.local_addr().map_err(ServeError::Address)?;
    let table = Rc::new(Table::new(name, limits));
    tokio::task::spawn_local(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of descriptors, most often: let time close some.
                    tracing::warn!(server = name, error = %err, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let (id, conn) = table.admit().await;
            tokio::task::spawn_local(connection(stream, handler.clone(), table.clone(), id, conn));
        }
    });
    Ok(local)
}

/// Pause after a failed accept.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Serves one connection until the peer closes it, a deadline passes or the cap needs it.
async fn connection(
    stream: TcpStream,
    handler: Handler,
    table: Rc<Table>,
    id: u64,
    conn: Rc<Conn>,
) {
    let limits = *table.limits();
    let watched = conn.clone();
    let shared = table.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let (handler, conn, table) = (handler.clone(), watched.clone(), shared.clone());
        async move {
            conn.reading_body();
            let response = handle(handler, request, limits.body_timeout.0, &table, &conn).await;
            conn.idle();
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(Watched::new(stream, conn.clone())), service);
    tokio::select! {
        _ = served => {}
        why = conn.closing(&limits) => tracing::debug!(reason = why, "connection closed"),
    }
    table.release(id);
}

async fn handle(
    handler: Handler,
    request: Request<Incoming>,
    body_timeout: Duration,
    table: &Table,
    conn: &Conn,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return closing(Resp::text(413, "request body too large\n"));
    }
    let _held = Held { table, conn };
    let body = match tokio::time::timeout(body_timeout, read_body(body, table, conn)).await {
        Ok(Ok(body)) => body,
        Ok(Err(refused)) => return closing(refused),
        Err(_) => return closing(Resp::text(408, "request body not received in time\n")),
    };
    conn.busy();
    let resp = handler(Req {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts.headers,
        body,
    })
    .await;
    respond(resp)
}

/// The room a request's body holds in its server's [`crate::connections::MAX_BUFFERED`],
/// given back when the request is answered or dropped.
struct Held<'t> {
    table: &'t Table,
    conn: &'t Conn,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.table.unhold(self.conn);
    }
}

/// Reads a body of at most [`MAX_BODY`], holding room for each part as it arrives.
async fn read_body(mut body: Incoming, table: &Table, conn: &Conn) -> Result<Bytes, Resp> {
    let unreadable = || Resp::text(413, "request body too large or unreadable\n");
    let mut data: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame.map_err(|_| unreadable())?.into_data() else {
            continue;
        };
        if data.len() + chunk.len() > MAX_BODY {
            return Err(unreadable());
        }
        // Progress: the body is no longer the one stalled longest.
        conn.reading_body();
        if !table.hold(conn, chunk.len()).await {
            return Err(Resp::text(
                503,
                "too many request bodies in memory; retry in a moment\n",
            )
            .header("retry-after", "1"));
        }
        data.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(data))
}

/// A refusal after which the connection closes (the rest of the body is not read).
fn closing(resp: Resp) -> Response<Full<Bytes>> {
    respond(resp.header("connection", "close"))
}

fn respond(resp: Resp) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(resp.body)));
    *response.status_mut() =
        StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = hyper::header::HeaderValue::from_str(resp.content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    for (name, value) in &resp.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn an_address_in_use_is_a_listen_error_naming_it() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let handler: Handler = Rc::new(|_| Box::pin(async { Resp::text(200, "ok") }));
                let bound = serve("127.0.0.1:0", handler.clone()).await.unwrap();
                let again = serve(&bound.to_string(), handler).await.unwrap_err();
                assert!(
                    matches!(&again, ServeError::Listen { addr, .. } if *addr == bound.to_string())
                );
                assert!(again
                    .to_string()
                    .starts_with(&format!("cannot listen on {bound}: ")));
            })
            .await;
    }
}
