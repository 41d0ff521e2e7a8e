//! A sandbox on a loopback port and a recorder of answers checked against a description.

use super::schema::Doc;
use serde_json::Value;
use std::future::Future;

/// Runs `f(base_url)` against a fresh sandbox on a current-thread runtime and LocalSet.
pub fn with_sandbox<F, Fut>(f: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let config = omniflow_sandbox::SandboxConfig::default();
        let addr = omniflow_sandbox::serve("127.0.0.1:0", config)
            .await
            .expect("serve");
        f(format!("http://{addr}")).await;
    });
}

/// One answer.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

/// Sends `request` and reads the answer (a body that is not JSON reads as Null).
pub async fn send(request: reqwest::RequestBuilder) -> Answer {
    let resp = request.send().await.expect("the sandbox answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    Answer {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

/// Answers checked against one description; every breach is kept for one report.
pub struct Checker {
    pub doc: Doc,
    breaches: Vec<String>,
    /// A header every successful answer must carry (the vendor's rate-limit header).
    success_header: Option<&'static str>,
    statuses: std::collections::BTreeSet<(String, u16)>,
}

impl Checker {
    pub fn new(doc: Doc) -> Checker {
        Checker {
            doc,
            breaches: Vec::new(),
            success_header: None,
            statuses: Default::default(),
        }
    }

    /// Requires `name` on every 2xx answer.
    pub fn on_success(mut self, name: &'static str) -> Checker {
        self.success_header = Some(name);
        self
    }

    fn headers(&mut self, method: &str, template: &str, answer: &Answer) {
        if let Some(name) = self.success_header {
            if answer.status < 300 && !answer.headers.contains_key(name) {
                self.breaches
                    .push(format!("{method} {template} {}: no {name}", answer.status));
            }
        }
    }

    /// Checks `answer` as `method template`'s documented answer for its status.
    pub fn check(&mut self, method: &str, template: &str, answer: &Answer) {
        self.headers(method, template, answer);
        self.statuses
            .insert((format!("{method} {template}"), answer.status));
        if answer.body.is_null() && !answer.text.is_empty() {
            self.breaches.push(format!(
                "{method} {template} {}: not JSON: {}",
                answer.status, answer.text
            ));
            return;
        }
        match self.doc.response(method, template, answer.status) {
            Ok(schema) => {
                for breach in self.doc.check(schema, &answer.body) {
                    self.breaches
                        .push(format!("{method} {template} {}: {breach}", answer.status));
                }
            }
            Err(e) => self.breaches.push(e),
        }
    }

    /// Checks `answer` against the answer `method template` documents for `documented`
    /// (Square documents only 200: its errors come in the same object's `errors`).
    pub fn check_as(&mut self, method: &str, template: &str, documented: u16, answer: &Answer) {
        self.headers(method, template, answer);
        self.statuses
            .insert((format!("{method} {template}"), answer.status));
        match self.doc.response(method, template, documented) {
            Ok(schema) => {
                for breach in self.doc.check(schema, &answer.body) {
                    self.breaches
                        .push(format!("{method} {template} {}: {breach}", answer.status));
                }
            }
            Err(e) => self.breaches.push(e),
        }
    }

    /// True when `body` breaks what `method template` documents for `status`: the
    /// negative control that shows a check can fail.
    pub fn breaks(&self, method: &str, template: &str, status: u16, body: &Value) -> bool {
        let schema = self
            .doc
            .response(method, template, status)
            .expect("documented");
        !self.doc.check(schema, body).is_empty()
    }

    /// Checks `value` against a named schema of the description.
    pub fn check_schema(&mut self, what: &str, name: &str, value: &Value) {
        let schema = self.doc.schema(name).clone();
        assert!(!schema.is_null(), "no schema {name}");
        for breach in self.doc.check(&schema, value) {
            self.breaches.push(format!("{what}: {breach}"));
        }
    }

    /// Panics with every breach; `routes` is how many (route, status) pairs must have
    /// been seen at least.
    pub fn finish(self, routes: usize) {
        assert!(
            self.breaches.is_empty(),
            "{} of the answers break the description:\n{}",
            self.breaches.len(),
            self.breaches.join("\n")
        );
        assert!(
            self.statuses.len() >= routes,
            "only {:?} were checked",
            self.statuses
        );
    }
}
