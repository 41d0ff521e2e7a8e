//! A sandbox on a loopback port and a recorder of answers checked against a description.

use super::schema::Doc;
use omniflow_sandbox::routes::{matches, Route};
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
    /// The routes the sandbox serves under this description, each to be checked.
    served: &'static [Route],
}

impl Checker {
    pub fn new(doc: Doc) -> Checker {
        Checker {
            doc,
            breaches: Vec::new(),
            success_header: None,
            statuses: Default::default(),
            served: &[],
        }
    }

    /// Requires every one of `routes` to be checked answering 2xx and refusing a missing or
    /// wrong credential (401 or 403).
    pub fn serves(mut self, routes: &'static [Route]) -> Checker {
        self.served = routes;
        self
    }

    /// Requires `name` on every 2xx answer.
    pub fn on_success(mut self, name: &'static str) -> Checker {
        self.success_header = Some(name);
        self
    }

    /// The success header, and every header the description documents for the status.
    fn headers(&mut self, method: &str, template: &str, answer: &Answer) {
        let mut wanted = self.doc.headers(method, template, answer.status);
        if let Some(name) = self.success_header.filter(|_| answer.status < 300) {
            wanted.push(name.to_string());
        }
        for name in wanted {
            if !answer
                .headers
                .contains_key(name.to_ascii_lowercase().as_str())
            {
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
    /// been seen at least, and each served route must have answered 2xx and refused a
    /// credential.
    pub fn finish(mut self, routes: usize) {
        for (method, route) in self.served {
            let seen = |ok: fn(u16) -> bool| {
                self.statuses.iter().any(|(checked, status)| {
                    checked.split_once(' ').is_some_and(|(m, template)| {
                        m == *method && matches(route, template) && ok(*status)
                    })
                })
            };
            if !seen(|s| (200..300).contains(&s)) {
                self.breaches
                    .push(format!("{method} {route}: never checked answering 2xx"));
            }
            if !seen(|s| s == 401 || s == 403) {
                self.breaches.push(format!(
                    "{method} {route}: never checked refusing a credential"
                ));
            }
        }
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

/// `template` with each `{name}` in `values` replaced by its value.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_string(), |path, (name, value)| {
            path.replace(&format!("{{{name}}}"), value)
        })
}

/// Sends every one of `routes` once per credential (a header and its value; `None` sends
/// none), with `headers` besides and an empty JSON object as the body of writes. Each path is
/// the route filled with `values`; each answer must refuse (401 or 403) and goes to `check`
/// with the route's template as the description names it (`named`).
pub async fn sweep(
    base: &str,
    routes: &[Route],
    values: &[(&str, &str)],
    credentials: &[Option<(&str, &str)>],
    headers: &[(&str, &str)],
    named: impl Fn(&str) -> String,
    mut check: impl FnMut(&str, &str, &Answer),
) {
    let client = reqwest::Client::new();
    for (method, route) in routes {
        for credential in credentials {
            let method_ = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
            let mut request = client.request(method_, format!("{base}{}", fill(route, values)));
            for (name, value) in headers.iter().chain(credential) {
                request = request.header(*name, *value);
            }
            if *method != "GET" {
                request = request
                    .header("content-type", "application/json")
                    .body("{}");
            }
            let answer = send(request).await;
            assert!(
                answer.status == 401 || answer.status == 403,
                "{method} {route} with {credential:?}: {} {}",
                answer.status,
                answer.text
            );
            check(method, &named(route), &answer);
        }
    }
}

/// Sends `request` as a patient client does: a throttled answer (429) is waited out (its
/// `Retry-After`, else a second) and the request sent again.
pub async fn send_paced(request: reqwest::RequestBuilder) -> Answer {
    for _ in 0..120 {
        let again = request
            .try_clone()
            .expect("a request without a stream body");
        let answer = send(again).await;
        if answer.status != 429 {
            return answer;
        }
        let wait = answer
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse::<f64>().ok())
            .unwrap_or(1.0);
        tokio::time::sleep(std::time::Duration::from_secs_f64(wait.clamp(0.1, 10.0))).await;
    }
    panic!("still throttled after two minutes")
}
