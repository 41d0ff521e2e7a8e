//! A minimal HTTP/1.1 server on the local task set (hyper), shared by the ops endpoint and
//! the webhook sources.

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use tokio::net::TcpListener;

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
pub const MAX_BODY: usize = omniflow_compiler::ir::MAX_WEBHOOK_BODY_BYTES as usize;

/// Binds and serves until the task is dropped; returns the bound address.
pub async fn serve(addr: &str, handler: Handler) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::task::spawn_local(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let handler = handler.clone();
            tokio::task::spawn_local(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let handler = handler.clone();
                    async move { Ok::<_, std::convert::Infallible>(handle(handler, request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(local)
}

async fn handle(handler: Handler, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return respond(Resp::text(413, "request body too large or unreadable")),
    };
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
