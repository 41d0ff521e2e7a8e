//! How the generic HTTP sink reaches its endpoint: its own pool of keep-alive HTTP/1.1
//! connections (plain or TLS with the Mozilla roots), or reqwest when the environment
//! names a proxy for the endpoint (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`).
//! The direct path sends a request as it is built: no URL re-parsing, no redirect or
//! cookie layers, which a sink call does not use.

use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::time::Duration;

/// Most of a response body read into a failure reason.
const MAX_KEPT_BODY: usize = 4096;
/// Most of a successful response body drained so its connection can carry the next call.
const MAX_DRAINED_BODY: usize = 1 << 20;
/// How long an idle connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The answer to a request that reached the endpoint.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    /// The start of the body when the status is not 2xx (empty otherwise).
    pub body: String,
}

/// Why a request got no answer.
#[derive(Debug, PartialEq)]
pub enum Failure {
    /// The request itself is wrong (a header value that cannot be sent): retrying cannot help.
    Invalid(String),
    /// No answer within the call's timeout.
    Timeout,
    /// The connection could not be made or broke before the answer.
    Connect(String),
}

/// One outbound request.
pub struct Outbound<'a> {
    pub method: &'a Method,
    pub uri: Uri,
    pub headers: &'a [(HeaderName, &'a str)],
    pub body: Vec<u8>,
    pub timeout: Duration,
}

/// A sink's way to its endpoint.
pub enum Transport {
    /// Pooled connections straight to the endpoint.
    Direct(Client<HttpsConnector<HttpConnector>, Full<Bytes>>),
    /// Through the proxy the environment names.
    Proxied(reqwest::Client),
}

impl Transport {
    /// The transport for `endpoint`, keeping up to `idle` idle connections, through the
    /// proxy the environment names for it, if any.
    pub fn for_endpoint(endpoint: &Uri, idle: usize) -> Result<Transport, String> {
        Transport::with_proxies(endpoint, idle, &Matcher::from_env())
    }

    /// The transport for `endpoint` when `proxies` says which proxy serves which URL.
    pub fn with_proxies(
        endpoint: &Uri,
        idle: usize,
        proxies: &Matcher,
    ) -> Result<Transport, String> {
        if let Some(intercept) = proxies.intercept(endpoint) {
            let mut proxy = reqwest::Proxy::all(intercept.uri().to_string())
                .map_err(|e| format!("proxy `{}`: {e}", intercept.uri()))?;
            if let Some(auth) = intercept.basic_auth() {
                proxy = proxy.custom_http_auth(auth.clone());
            }
            return reqwest::Client::builder()
                .proxy(proxy)
                .pool_max_idle_per_host(idle)
                .tcp_nodelay(true)
                .build()
                .map(Transport::Proxied)
                .map_err(|e| format!("http client: {e}"));
        }
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(idle)
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(Transport::Direct(client))
    }

    /// Sends one request and reads its answer, all within its timeout.
    pub async fn send(&self, outbound: Outbound<'_>) -> Result<Answer, Failure> {
        let timeout = outbound.timeout;
        let exchange = async {
            match self {
                Transport::Direct(client) => direct(client, outbound).await,
                Transport::Proxied(client) => proxied(client, outbound).await,
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(Failure::Timeout))
    }
}

async fn direct(
    client: &Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    outbound: Outbound<'_>,
) -> Result<Answer, Failure> {
    let mut request = Request::new(Full::new(Bytes::from(outbound.body)));
    *request.method_mut() = outbound.method.clone();
    *request.uri_mut() = outbound.uri;
    let headers = request.headers_mut();
    headers.reserve(outbound.headers.len());
    for (name, value) in outbound.headers {
        let value = HeaderValue::from_str(value).map_err(|_| {
            // The value is not quoted: it may be a credential.
            Failure::Invalid(format!(
                "the value of header {name} cannot be sent in HTTP (a control character or a line break)"
            ))
        })?;
        headers.insert(name, value);
    }
    let response = client
        .request(request)
        .await
        .map_err(|err| Failure::Connect(format!("connection failed: {}", chain(&err))))?;
    let status = response.status().as_u16();
    let (parts, body) = response.into_parts();
    let body = read(body, (200..300).contains(&status)).await;
    Ok(Answer {
        status,
        headers: parts.headers,
        body,
    })
}

/// Reads a response body: keeps its start for a failure reason, or drains a success so
/// the connection can be reused. A body that breaks off or runs long is left (the
/// connection is then closed).
async fn read<B>(mut body: B, drain: bool) -> String
where
    B: Body<Data = Bytes> + Unpin,
{
    let limit = if drain {
        MAX_DRAINED_BODY
    } else {
        MAX_KEPT_BODY
    };
    let (mut seen, mut kept) = (0usize, Vec::new());
    while seen < limit {
        let Some(Ok(frame)) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if !drain {
                kept.extend_from_slice(&data[..data.len().min(limit - kept.len())]);
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

async fn proxied(client: &reqwest::Client, outbound: Outbound<'_>) -> Result<Answer, Failure> {
    let mut request = client
        .request(outbound.method.clone(), outbound.uri.to_string())
        .body(outbound.body);
    for (name, value) in outbound.headers {
        request = request.header(name, *value);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = if (200..300).contains(&status) {
                String::new()
            } else {
                response.text().await.unwrap_or_default()
            };
            Ok(Answer {
                status,
                headers,
                body,
            })
        }
        Err(err) if err.is_builder() => Err(Failure::Invalid(format!(
            "the request could not be built: {err}"
        ))),
        Err(err) if err.is_timeout() => Err(Failure::Timeout),
        Err(err) => Err(Failure::Connect(format!(
            "connection failed: {}",
            chain(&err)
        ))),
    }
}

/// An error with its causes, outermost first.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
#[path = "../../../runtime/tests/support/http_read.rs"]
mod http_read;

#[cfg(test)]
mod tests {
    use super::http_read;
    use super::*;
    use std::io::{BufReader, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    /// What a test server saw: the connections it accepted and the requests it read.
    #[derive(Default)]
    struct Seen {
        connections: AtomicUsize,
        requests: Mutex<Vec<http_read::Request>>,
    }

    /// A keep-alive server on localhost answering every request with `answer`.
    fn serve(answer: &'static str) -> (u16, Arc<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Seen::default());
        let server = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                server.connections.fetch_add(1, Ordering::SeqCst);
                let seen = server.clone();
                std::thread::spawn(move || {
                    let mut writer = stream.try_clone().unwrap();
                    let mut reader = BufReader::new(stream);
                    while let Some(request) = http_read::read_request(&mut reader) {
                        seen.requests.lock().unwrap().push(request);
                        if writer.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, seen)
    }

    fn outbound<'a>(
        uri: &str,
        headers: &'a [(HeaderName, &'a str)],
        timeout: Duration,
    ) -> Outbound<'a> {
        Outbound {
            method: &Method::POST,
            uri: uri.parse().unwrap(),
            headers,
            body: br#"{"id":"A-1"}"#.to_vec(),
            timeout,
        }
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn a_direct_transport_keeps_its_connection_and_sends_what_it_is_given() {
        let (port, seen) = serve("HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok");
        let endpoint: Uri = format!("http://127.0.0.1:{port}").parse().unwrap();
        let transport = Transport::with_proxies(&endpoint, 4, &Matcher::builder().build()).unwrap();
        assert!(matches!(transport, Transport::Direct(_)));
        for n in 0..10 {
            let key = format!("key-{n}");
            let headers = [(HeaderName::from_static("idempotency-key"), key.as_str())];
            let answer = transport
                .send(outbound(
                    &format!("{endpoint}orders?n={n}"),
                    &headers,
                    SECOND,
                ))
                .await
                .unwrap();
            assert_eq!((answer.status, answer.body.as_str()), (201, ""));
        }
        // A drained answer leaves its connection for the next call.
        assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
        let requests = seen.requests.lock().unwrap();
        assert_eq!(requests.len(), 10);
        assert_eq!(requests[3].line, "POST /orders?n=3 HTTP/1.1");
        assert_eq!(requests[3].header("idempotency-key"), Some("key-3"));
        assert_eq!(
            requests[3].header("host"),
            Some(&*format!("127.0.0.1:{port}"))
        );
        assert_eq!(requests[3].body, br#"{"id":"A-1"}"#);
    }

    #[tokio::test]
    async fn refusals_timeouts_and_unsendable_headers_are_told_apart() {
        let none = Matcher::builder().build();
        let (busy, _) = serve(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nContent-Length: 4\r\n\r\nbusy",
        );
        let endpoint: Uri = format!("http://127.0.0.1:{busy}/").parse().unwrap();
        let transport = Transport::with_proxies(&endpoint, 4, &none).unwrap();
        let answer = transport
            .send(outbound(&endpoint.to_string(), &[], SECOND))
            .await
            .unwrap();
        assert_eq!((answer.status, answer.body.as_str()), (503, "busy"));
        assert_eq!(
            crate::http::retry_after(&answer.headers),
            Some(Duration::from_secs(2))
        );

        // A server that reads and never answers.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let uri = format!("http://{}/", silent.local_addr().unwrap());
        let failure = transport
            .send(outbound(&uri, &[], Duration::from_millis(200)))
            .await
            .unwrap_err();
        assert_eq!(failure, Failure::Timeout);

        // Nobody listens.
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let failure = transport
            .send(outbound(&format!("http://{closed}/"), &[], SECOND))
            .await
            .unwrap_err();
        assert!(
            matches!(&failure, Failure::Connect(reason) if reason.starts_with("connection failed")),
            "{failure:?}"
        );

        let headers = [(HeaderName::from_static("idempotency-key"), "line\nbreak")];
        let failure = transport
            .send(outbound(&endpoint.to_string(), &headers, SECOND))
            .await
            .unwrap_err();
        assert!(
            matches!(&failure, Failure::Invalid(reason) if reason.contains("idempotency-key")),
            "{failure:?}"
        );
        drop(silent);
    }

    #[tokio::test]
    async fn calls_go_through_the_proxy_named_for_the_endpoint() {
        let (proxy, seen) = serve("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
        let proxies = Matcher::builder()
            .http(format!("http://127.0.0.1:{proxy}"))
            .no("direct.example.invalid")
            .build();
        let direct: Uri = "http://direct.example.invalid".parse().unwrap();
        assert!(matches!(
            Transport::with_proxies(&direct, 4, &proxies).unwrap(),
            Transport::Direct(_)
        ));
        let endpoint: Uri = "http://erp.example.invalid".parse().unwrap();
        let transport = Transport::with_proxies(&endpoint, 4, &proxies).unwrap();
        assert!(matches!(transport, Transport::Proxied(_)));
        let headers = [(HeaderName::from_static("idempotency-key"), "A-1")];
        let answer = transport
            .send(outbound(
                "http://erp.example.invalid/orders",
                &headers,
                SECOND,
            ))
            .await
            .unwrap();
        assert_eq!(answer.status, 201);
        let requests = seen.requests.lock().unwrap();
        assert_eq!(
            requests[0].line,
            "POST http://erp.example.invalid/orders HTTP/1.1"
        );
        assert_eq!(requests[0].header("idempotency-key"), Some("A-1"));
    }
}
