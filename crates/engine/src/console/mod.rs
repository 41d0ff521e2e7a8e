//! The operator console, served under `/console` on the ops address: flows and nodes with
//! live rates and queue depths, sink health, dead letters with filters and replay/discard,
//! lineage search and inventory per SKU, with plots of rates and latencies. Pages are
//! rendered on the server (minijinja, HTML-escaped) with no script and nothing fetched from
//! elsewhere.
//!
//! Access: with a token (`console.token_secret` in omniflow.yaml) every page asks for it
//! (a sign-in form sets a `SameSite=Strict`, `HttpOnly` cookie holding an HMAC of the
//! token, never the token; `Authorization: Bearer` works too); without one the console is
//! served only on a loopback ops address and only to requests naming a loopback host (a
//! rebinding DNS name is refused). Writes are POSTs from the console's own pages (an
//! `Origin` naming the host asked) or from a client holding the token (Bearer).

pub mod history;
mod pages;
mod plot;

use crate::ops::metrics::Metrics;
use history::History;
use omniflow_http::form;
use omniflow_http::server::{Req, Resp};
use omniflow_mapping::pipeline::Pipeline;
use omniflow_state::Store;
use std::rc::Rc;

/// How the console is offered.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The token pages ask for; `None`: no token.
    pub token: Option<String>,
    /// False when the console is off (a non-loopback ops address without a token).
    pub enabled: bool,
}

impl Settings {
    /// The console for an ops endpoint on `addr`: on with a token, or on a loopback
    /// address.
    pub fn for_address(addr: &str, token: Option<String>) -> Settings {
        let loopback = addr
            .rsplit_once(':')
            .map(|(host, _)| host.trim_matches(['[', ']']))
            .is_some_and(|host| {
                host == "localhost"
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            });
        Settings {
            enabled: token.is_some() || loopback,
            token,
        }
    }
}

/// What the console reads and acts on.
pub struct Console {
    pub settings: Settings,
    pub store: Store,
    pub metrics: Rc<Metrics>,
    pub pipeline: Rc<Pipeline>,
    pub history: Rc<History>,
    /// What the sources that read on their own reported (`/health`'s sources).
    pub health: Rc<crate::ops::health::Health>,
    templates: minijinja::Environment<'static>,
}

/// The name of the cookie holding the token.
const COOKIE: &str = "omniflow_console";

impl Console {
    pub fn new(
        settings: Settings,
        store: Store,
        metrics: Rc<Metrics>,
        pipeline: Rc<Pipeline>,
        history: Rc<History>,
        health: Rc<crate::ops::health::Health>,
    ) -> Console {
        let mut templates = minijinja::Environment::new();
        for (name, text) in [
            ("layout.html", include_str!("templates/layout.html")),
            ("login.html", include_str!("templates/login.html")),
            ("overview.html", include_str!("templates/overview.html")),
            ("letters.html", include_str!("templates/letters.html")),
            ("lineage.html", include_str!("templates/lineage.html")),
            ("inventory.html", include_str!("templates/inventory.html")),
        ] {
            if let Err(err) = templates.add_template(name, text) {
                tracing::error!(template = name, error = %err, "console template does not parse");
            }
        }
        Console {
            settings,
            store,
            metrics,
            pipeline,
            history,
            health,
            templates,
        }
    }

    /// Answers a request under `/console`.
    pub async fn handle(self: Rc<Self>, req: Req) -> Resp {
        if !self.settings.enabled {
            return Resp::text(
                404,
                "the console is off: the ops address is not a loopback address and no console \
                 token is set (console.token_secret in omniflow.yaml)\n",
            );
        }
        if req.path == "/console/login" && req.method == "POST" {
            return self.sign_in(&req);
        }
        if self.settings.token.is_none() && !loopback_host(&req) {
            return Resp::text(
                403,
                "without a console token the console answers only to a loopback host name\n",
            );
        }
        if !self.allowed(&req) {
            return self.page(401, "login.html", minijinja::context! {page => "login"});
        }
        if req.method == "POST" && !(same_origin(&req) || self.bearer(&req)) {
            return Resp::text(
                403,
                "a console action must come from the console's own page\n",
            );
        }
        pages::route(&self, req).await
    }

    /// True when the request carries the token or the session cookie (or none is needed).
    fn allowed(&self, req: &Req) -> bool {
        let Some(token) = &self.settings.token else {
            return true;
        };
        let session = session(token);
        let cookie = req
            .headers
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
            .any(|given| same_text(given, &session));
        cookie || self.bearer(req)
    }

    /// True when the request carries the token as `Authorization: Bearer`.
    fn bearer(&self, req: &Req) -> bool {
        let Some(token) = &self.settings.token else {
            return false;
        };
        req.headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| same_text(given, token))
    }

    fn sign_in(&self, req: &Req) -> Resp {
        let fields = form::parse(&String::from_utf8_lossy(&req.body));
        let given = form::get(&fields, "token");
        match &self.settings.token {
            Some(token) if same_text(given, token) => Resp {
                status: 303,
                content_type: "text/plain",
                body: String::new(),
                headers: Vec::new(),
            }
            .header("location", "/console")
            .header(
                "set-cookie",
                format!(
                    "{COOKIE}={}; Path=/console; Max-Age=43200; HttpOnly; SameSite=Strict",
                    session(token)
                ),
            ),
            Some(_) => self.page(
                401,
                "login.html",
                minijinja::context! {page => "login", wrong => true},
            ),
            None => Resp::text(303, "").header("location", "/console"),
        }
    }

    /// Renders a template as an HTML page.
    fn page(&self, status: u16, template: &str, context: minijinja::Value) -> Resp {
        let rendered = self
            .templates
            .get_template(template)
            .and_then(|t| t.render(context));
        match rendered {
            Ok(body) => Resp {
                status,
                content_type: "text/html; charset=utf-8",
                body,
                headers: Vec::new(),
            }
            .header("cache-control", "no-store")
            .header("x-frame-options", "DENY")
            .header(
                "content-security-policy",
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'",
            ),
            Err(err) => Resp::text(500, format!("the console cannot show this page: {err}\n")),
        }
    }
}

/// The session cookie's value for `token`: an HMAC of it, so the cookie never holds the
/// token itself.
fn session(token: &str) -> String {
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(token.as_bytes()) else {
        return String::new();
    };
    mac.update(b"omniflow console session");
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// True when the request's `Host` is a loopback name or address (with or without a port).
fn loopback_host(req: &Req) -> bool {
    req.headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|host| {
            Settings::for_address(host, None).enabled
                || Settings::for_address(&format!("{host}:0"), None).enabled
        })
}

/// Compares a given token with the expected one in time independent of where they differ.
fn same_text(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut differ = a.len() ^ b.len();
    for (i, byte) in b.iter().enumerate() {
        differ |= usize::from(a.get(i).copied().unwrap_or(0) ^ byte);
    }
    differ == 0
}

/// A request whose `Origin` names the host it was sent to (browsers send one with every
/// form POST).
fn same_origin(req: &Req) -> bool {
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    match (header("origin"), header("host")) {
        (Some(origin), Some(host)) => {
            origin.strip_prefix("http://") == Some(host)
                || origin.strip_prefix("https://") == Some(host)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_is_on_with_a_token_or_on_a_loopback_address() {
        assert!(Settings::for_address("127.0.0.1:9090", None).enabled);
        assert!(Settings::for_address("[::1]:9090", None).enabled);
        assert!(Settings::for_address("localhost:9090", None).enabled);
        assert!(!Settings::for_address("0.0.0.0:9090", None).enabled);
        assert!(!Settings::for_address("10.1.2.3:9090", None).enabled);
        assert!(Settings::for_address("0.0.0.0:9090", Some("t".into())).enabled);
    }

    #[tokio::test]
    async fn every_page_renders_and_escapes_what_it_shows() {
        let state =
            std::env::temp_dir().join(format!("omniflow-console-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&state);
        let backend = omniflow_state::open(&format!("sqlite:{}", state.display())).unwrap();
        let store = Store::start(backend);
        let hostile = "<script>alert(1)</script>";
        let graph = omniflow_ir::Graph::default();
        let pipeline = Rc::new(Pipeline::new(graph).unwrap());
        let health = Rc::new(crate::ops::health::Health::default());
        health.ok("f", "fine");
        health.failed("f", "polled", hostile, "unexpected_answer");
        let console = Rc::new(Console::new(
            Settings::for_address("127.0.0.1:1", None),
            store.clone(),
            Rc::new(Metrics::default()),
            pipeline,
            Rc::new(History::default()),
            health.clone(),
        ));
        let mut letter = omniflow_state::DeadLetter {
            id: 0,
            origin: omniflow_state::Origin::Flow("f".into()),
            source: "s".into(),
            node: "post".into(),
            sink: "f/post".into(),
            key: hostile.into(),
            correlation_id: "f#1".into(),
            message: "{}".into(),
            payload: "{}".into(),
            error: hostile.into(),
            attempts: vec![],
            created_at: 0,
            replayed_at: None,
            accepted_at: None,
            discarded_at: None,
            queue: None,
        };
        letter.queue = Some("q".into());
        store
            .call(move |b| b.add_dead_letter(&letter))
            .await
            .unwrap();
        for (path, query, expected) in [
            ("/console", "", "<table id=\"flows\">"),
            (
                "/console",
                "",
                "<td>f</td><td>polled</td>\n<td><span class=\"bad\">failing</span></td>",
            ),
            ("/console", "", "unexpected_answer"),
            ("/console/dead-letters", "", "&lt;script&gt;alert(1)"),
            (
                "/console/lineage",
                "q=%3Cb%3E",
                "Nothing is known of “&lt;b&gt;”",
            ),
            ("/console/inventory", "sku=X", "No ledger holds SKU “X”"),
        ] {
            let req = Req {
                method: "GET".into(),
                path: path.into(),
                query: query.into(),
                headers: [(
                    http::header::HOST,
                    http::header::HeaderValue::from_static("127.0.0.1:9090"),
                )]
                .into_iter()
                .collect(),
                body: Default::default(),
            };
            let resp = console.clone().handle(req).await;
            assert_eq!(resp.status, 200, "{path}: {}", resp.body);
            assert!(resp.body.contains(expected), "{path}: {}", resp.body);
            assert!(
                !resp.body.contains(hostile),
                "{path} shows markup it was given"
            );
        }
        drop(console);
        drop(store);
        let _ = std::fs::remove_file(&state);
    }

    #[test]
    fn the_session_cookie_is_not_the_token() {
        let cookie = session("a-token-of-sixteen+");
        assert_eq!(cookie.len(), 64);
        assert!(!cookie.contains("a-token"));
        assert_ne!(cookie, session("another-token-16+"));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_text("secret", "secret"));
        assert!(!same_text("secre", "secret"));
        assert!(!same_text("secretx", "secret"));
        assert!(!same_text("", "secret"));
    }
}
