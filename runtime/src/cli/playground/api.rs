//! The playground's HTTP routes: the page, `GET /api/flows` and `POST /api/run`.
//! Requests must name the loopback host they were sent to (a page elsewhere that points
//! a name at 127.0.0.1 is refused), and a run must be sent as JSON (a form another site
//! posts is refused).

use super::flows::Watched;
use omniflow_http::server::{Handler, Req, Resp};
use serde_json::{json, Value};
use std::rc::Rc;

const PAGE: &str = include_str!("page.html");

/// Answers the playground's routes.
pub fn handler(watched: Rc<Watched>) -> Handler {
    Rc::new(move |req: Req| {
        let watched = watched.clone();
        Box::pin(async move { answer(&watched, req) })
    })
}

fn answer(watched: &Watched, req: Req) -> Resp {
    if !from_loopback_host(&req) {
        return Resp::text(
            403,
            "the playground answers requests to 127.0.0.1 or localhost only",
        );
    }
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/") => Resp {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: PAGE.to_string(),
            headers: vec![(
                "content-security-policy".into(),
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'".into(),
            )],
        },
        ("GET", "/api/flows") => Resp::json(200, watched.describe()),
        ("POST", "/api/run") => {
            // A JSON body needs a preflight across origins, which this server never grants.
            let json = req
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            if !json {
                return Resp::json(415, json!({"error": "send the body as application/json"}));
            }
            let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
                return Resp::json(
                    400,
                    json!({"error": "the body must be JSON: {flow, node, payload}"}),
                );
            };
            let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or("");
            Resp::json(
                200,
                watched.run(text("flow"), text("node"), text("payload")),
            )
        }
        _ => Resp::text(404, "not found"),
    }
}

/// True when the Host header names a loopback host (any port).
fn from_loopback_host(req: &Req) -> bool {
    let Some(host) = req.headers.get("host").and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    matches!(name, "127.0.0.1" | "localhost" | "::1")
}
