//! Fault injection: a standing profile per system (flaky, throttled, slow), an outage of one
//! status for a while, and scripted faults per route, consumed one per matching request:
//!
//! ```json
//! POST /_sandbox/faults
//! {"route": "GET /admin/api/*/orders.json",
//!  "script": [{"status": 503}, {}, {"body": "truncated"}, {"body": "malformed"},
//!             {"delay_ms": 2000}, {"status": 504, "applied": true}, {"status": 502, "body": "html"}]}
//! ```
//!
//! A step may hold the answer (`delay_ms`), answer a status with the vendor's error body
//! instead of serving (`status`), serve and then answer the status anyway (`applied`: the
//! write happened, the client cannot know), cut the real answer in half (`"truncated"`),
//! break its JSON (`"malformed"`), or answer an HTML error page (`"html"`). `{}` serves
//! normally. `"times": N` repeats a single `step` N times.

use super::{fault_response, json_body, Sandbox, Shared, System};
use omniflow_http::server::{Req, Resp};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// How long a hanging request of the flaky profile is held.
const HANG: Duration = Duration::from_secs(35);
/// The longest scripted hold.
const MAX_DELAY_MS: u64 = 600_000;
/// The most steps one route may hold.
const MAX_STEPS: usize = 10_000;

/// A standing fault profile for one system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultProfile {
    /// No injected faults.
    None,
    /// 10% of requests get 503, 5% get the vendor's 429, 3% hang for 35 s (past the usual
    /// 30 s client timeout) and then get 504.
    Flaky,
    /// The vendor's throttle at a quarter of the normal quota.
    Throttled,
    /// 200–800 ms of added latency.
    Slow,
}

impl FromStr for FaultProfile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(FaultProfile::None),
            "flaky" => Ok(FaultProfile::Flaky),
            "throttled" => Ok(FaultProfile::Throttled),
            "slow" => Ok(FaultProfile::Slow),
            other => Err(format!(
                "unknown fault profile `{other}` (none, flaky, throttled, slow)"
            )),
        }
    }
}

/// What a scripted step does to the answer's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// The real answer's first half.
    Truncated,
    /// The real answer with trailing garbage: not JSON any more.
    Malformed,
    /// An HTML error page, as a load balancer in front of the API answers.
    Html,
}

/// One scripted step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Step {
    delay_ms: u64,
    status: Option<u16>,
    applied: bool,
    body: Option<Body>,
}

impl Step {
    fn parse(v: &Value) -> Result<Step, String> {
        let Some(obj) = v.as_object() else {
            return Err("each step must be an object".into());
        };
        for key in obj.keys() {
            if !["delay_ms", "status", "applied", "body"].contains(&key.as_str()) {
                return Err(format!(
                    "unknown step field `{key}` (delay_ms, status, applied, body)"
                ));
            }
        }
        let delay_ms = match &v["delay_ms"] {
            Value::Null => 0,
            d => d
                .as_u64()
                .filter(|d| *d <= MAX_DELAY_MS)
                .ok_or(format!("delay_ms must be 0 to {MAX_DELAY_MS}"))?,
        };
        let status = match &v["status"] {
            Value::Null => None,
            s => Some(
                s.as_u64()
                    .filter(|s| (400..600).contains(s))
                    .ok_or("status must be 400-599")? as u16,
            ),
        };
        let body = match v["body"].as_str() {
            None if v["body"].is_null() => None,
            Some("truncated") => Some(Body::Truncated),
            Some("malformed") => Some(Body::Malformed),
            Some("html") => Some(Body::Html),
            _ => return Err("body must be truncated, malformed or html".into()),
        };
        let applied = v["applied"].as_bool().unwrap_or(false);
        if applied && status.is_none() {
            return Err("applied needs a status".into());
        }
        Ok(Step {
            delay_ms,
            status,
            applied,
            body,
        })
    }

    fn to_json(&self) -> Value {
        json!({"delay_ms": self.delay_ms, "status": self.status, "applied": self.applied,
            "body": self.body.map(|b| format!("{b:?}").to_lowercase())})
    }
}

/// A route pattern: an optional method and path segments where `*` matches one segment
/// (or, inside a segment, any run of characters).
#[derive(Clone, Debug)]
struct Route {
    text: String,
    method: Option<String>,
    segments: Vec<String>,
}

impl Route {
    fn parse(text: &str) -> Result<Route, String> {
        let (method, path) = match text.split_once(' ') {
            Some((m, p)) => (Some(m.to_ascii_uppercase()), p.trim()),
            None => (None, text.trim()),
        };
        if !path.starts_with('/') {
            return Err("route must be `[METHOD] /path` (`*` matches a segment)".into());
        }
        Ok(Route {
            text: text.to_string(),
            method,
            segments: path.split('/').map(str::to_string).collect(),
        })
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        if self.method.as_deref().is_some_and(|m| m != method) {
            return false;
        }
        let parts: Vec<&str> = path.split('/').collect();
        parts.len() == self.segments.len()
            && self
                .segments
                .iter()
                .zip(parts)
                .all(|(pattern, part)| glob(pattern, part))
    }
}

/// `*` matches any run of characters; linear in the text, however many stars (a greedy
/// match that backs up to the last star only).
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        if i < p.len() && p[i] == b'*' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && p[i] == t[j] {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|b| *b == b'*')
}

struct Scripted {
    route: Route,
    steps: VecDeque<Step>,
}

struct Outage {
    status: u16,
    until: Instant,
}

/// Every standing and scripted fault.
pub struct Faults {
    profiles: RefCell<HashMap<System, FaultProfile>>,
    outages: RefCell<HashMap<System, Outage>>,
    scripts: RefCell<Vec<Scripted>>,
}

impl Faults {
    /// Every system on `profile`, nothing scripted.
    pub fn new(profile: FaultProfile) -> Faults {
        Faults {
            profiles: RefCell::new(System::ALL.iter().map(|s| (*s, profile)).collect()),
            outages: RefCell::default(),
            scripts: RefCell::default(),
        }
    }

    /// The standing profile of `system`.
    pub fn profile(&self, system: System) -> FaultProfile {
        self.profiles
            .borrow()
            .get(&system)
            .copied()
            .unwrap_or(FaultProfile::None)
    }

    /// Takes the next scripted step of the first route matching the request, if any.
    pub fn scripted(&self, method: &str, path: &str) -> Option<Step> {
        let mut scripts = self.scripts.borrow_mut();
        let idx = scripts.iter().position(|s| s.route.matches(method, path))?;
        let step = scripts[idx].steps.pop_front();
        if scripts[idx].steps.is_empty() {
            scripts.remove(idx);
        }
        step
    }

    fn outage(&self, system: System) -> Option<u16> {
        let mut outages = self.outages.borrow_mut();
        match outages.get(&system) {
            Some(o) if o.until > Instant::now() => Some(o.status),
            Some(_) => {
                outages.remove(&system);
                None
            }
            None => None,
        }
    }
}

/// Before serving: a scripted hold or status, an outage, or the standing profile's draw.
pub async fn before(sb: &Shared, system: System, step: Option<&Step>, req: &Req) -> Option<Resp> {
    if let Some(step) = step {
        if step.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(step.delay_ms)).await;
        }
        return match (step.status, step.applied) {
            (Some(status), false) => Some(step_answer(sb, system, status, step.body, req)),
            _ => None,
        };
    }
    if let Some(status) = sb.faults.outage(system) {
        return Some(fault_response(sb, system, status, req));
    }
    match sb.faults.profile(system) {
        FaultProfile::Flaky => {
            let draw = sb.rng.borrow_mut().below(100);
            if draw < 10 {
                Some(fault_response(sb, system, 503, req))
            } else if draw < 15 {
                sb.bump(system, "throttled");
                Some(fault_response(sb, system, 429, req))
            } else if draw < 18 {
                sb.bump(system, "timeouts_injected");
                tokio::time::sleep(HANG).await;
                Some(fault_response(sb, system, 504, req))
            } else {
                None
            }
        }
        FaultProfile::Slow => {
            let ms = 200 + sb.rng.borrow_mut().below(601);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            None
        }
        FaultProfile::None | FaultProfile::Throttled => None,
    }
}

/// After serving: an applied step's status, or the body spoiled as the step says.
pub fn after(sb: &Sandbox, system: System, step: &Step, served: Resp, req: &Req) -> Resp {
    if let (Some(status), true) = (step.status, step.applied) {
        sb.bump(system, "faults_injected");
        return step_answer(sb, system, status, step.body, req);
    }
    match step.body {
        Some(body) => {
            sb.bump(system, "faults_injected");
            spoil(served, body)
        }
        None => served,
    }
}

/// The vendor's answer for `status`, its body spoiled when the step says so.
fn step_answer(sb: &Sandbox, system: System, status: u16, body: Option<Body>, req: &Req) -> Resp {
    let resp = fault_response(sb, system, status, req);
    match body {
        Some(body) => spoil(resp, body),
        None => resp,
    }
}

fn spoil(mut resp: Resp, body: Body) -> Resp {
    match body {
        Body::Truncated => {
            let mut cut = resp.body.len() / 2;
            while !resp.body.is_char_boundary(cut) {
                cut -= 1;
            }
            resp.body.truncate(cut);
        }
        Body::Malformed => resp.body.push_str(",}"),
        Body::Html => {
            let status = resp.status;
            resp.content_type = "text/html; charset=utf-8";
            resp.body = format!(
                "<!DOCTYPE html><html><head><title>{status} Error</title></head>\
                 <body><h1>{status}</h1><p>There was an error processing your request.</p>\
                 </body></html>"
            );
            resp.headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("retry-after"));
        }
    }
    resp
}

/// `POST /_sandbox/faults`: a standing `profile`, an outage (`status`, `for_ms`) of a
/// `system`, or a scripted `route` (`script`, or `step` with `times`).
pub fn control(sb: &Sandbox, req: &Req) -> Resp {
    let Some(body) = json_body(req) else {
        return Resp::json(400, json!({"error": "body must be a JSON object"}));
    };
    if let Some(route) = body["route"].as_str() {
        return match script(&body, route) {
            Ok(scripted) => {
                let n = scripted.steps.len();
                sb.faults.scripts.borrow_mut().push(scripted);
                Resp::json(200, json!({"route": route, "steps": n}))
            }
            Err(e) => Resp::json(400, json!({ "error": e })),
        };
    }
    let Some(system) = body["system"].as_str().and_then(System::parse) else {
        return Resp::json(
            400,
            json!({"error": "give `route`, or `system` (shopify, amazon_sp, square, shipbob, odata)"}),
        );
    };
    if let Some(profile) = body["profile"].as_str() {
        return match profile.parse::<FaultProfile>() {
            Ok(p) => {
                sb.faults.profiles.borrow_mut().insert(system, p);
                Resp::json(200, json!({"system": system.key(), "profile": profile}))
            }
            Err(e) => Resp::json(400, json!({ "error": e })),
        };
    }
    let Some(status) = body["status"].as_u64().filter(|s| (400..600).contains(s)) else {
        return Resp::json(
            400,
            json!({"error": "give `profile`, or `status` (400-599) and `for_ms`"}),
        );
    };
    let for_ms = body["for_ms"].as_u64().unwrap_or(30_000);
    let mut outages = sb.faults.outages.borrow_mut();
    if for_ms == 0 {
        outages.remove(&system);
    } else {
        outages.insert(
            system,
            Outage {
                status: status as u16,
                until: Instant::now() + Duration::from_millis(for_ms),
            },
        );
    }
    Resp::json(
        200,
        json!({"system": system.key(), "status": status, "for_ms": for_ms}),
    )
}

fn script(body: &Value, route: &str) -> Result<Scripted, String> {
    let route = Route::parse(route)?;
    let steps: VecDeque<Step> = match (&body["script"], &body["step"]) {
        (Value::Array(list), Value::Null) => {
            list.iter().map(Step::parse).collect::<Result<_, _>>()?
        }
        (Value::Null, step @ Value::Object(_)) => {
            let times = body["times"].as_u64().unwrap_or(1) as usize;
            if times == 0 || times > MAX_STEPS {
                return Err(format!("times must be 1 to {MAX_STEPS}"));
            }
            vec![Step::parse(step)?; times].into()
        }
        _ => return Err("give `script` (a list of steps) or `step` (with `times`)".into()),
    };
    if steps.is_empty() || steps.len() > MAX_STEPS {
        return Err(format!("a script holds 1 to {MAX_STEPS} steps"));
    }
    Ok(Scripted { route, steps })
}

/// `GET /_sandbox/faults`: profiles, outages and the steps left per scripted route.
pub fn list(sb: &Sandbox) -> Resp {
    let profiles: serde_json::Map<String, Value> = System::ALL
        .iter()
        .map(|s| {
            let p = format!("{:?}", sb.faults.profile(*s)).to_lowercase();
            (s.key().to_string(), json!(p))
        })
        .collect();
    let scripts: Vec<Value> = sb
        .faults
        .scripts
        .borrow()
        .iter()
        .map(|s| {
            json!({"route": s.route.text,
                "steps": s.steps.iter().map(Step::to_json).collect::<Vec<_>>()})
        })
        .collect();
    Resp::json(200, json!({"profiles": profiles, "scripts": scripts}))
}

/// `DELETE /_sandbox/faults`: every scripted route and outage removed, profiles to none.
pub fn clear(sb: &Sandbox) -> Resp {
    sb.faults.scripts.borrow_mut().clear();
    sb.faults.outages.borrow_mut().clear();
    for profile in sb.faults.profiles.borrow_mut().values_mut() {
        *profile = FaultProfile::None;
    }
    Resp::json(200, json!({"cleared": true}))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{client, control, parts, with_sandbox};
    use super::super::SandboxConfig;
    use super::*;

    #[test]
    fn route_patterns_match_segments_and_globs() {
        let r = Route::parse("GET /admin/api/*/orders.json").unwrap();
        assert!(r.matches("GET", "/admin/api/2026-04/orders.json"));
        assert!(!r.matches("POST", "/admin/api/2026-04/orders.json"));
        assert!(!r.matches("GET", "/admin/api/2026-04/orders/1.json"));
        let r = Route::parse("/v2/orders/*").unwrap();
        assert!(r.matches("GET", "/v2/orders/abc") && r.matches("PUT", "/v2/orders/abc"));
        assert!(glob("*.json", "1.json") && !glob("*.json", "1.xml"));
        assert!(glob("a*b*c", "axxbyyc") && !glob("a*b*c", "axxbyy") && glob("**", ""));
        // Many stars against a long segment that does not match: answered at once.
        let stars = "*a".repeat(40) + "b";
        assert!(!glob(&stars, &"a".repeat(10_000)));
        assert!(Route::parse("GET orders").is_err());
        assert!(Step::parse(&json!({"applied": true})).is_err());
        assert!(Step::parse(&json!({"status": 200})).is_err());
        assert!(Step::parse(&json!({"colour": 1})).is_err());
    }

    #[test]
    fn a_script_is_played_one_step_per_request_then_the_route_serves_again() {
        with_sandbox(SandboxConfig::default(), |base| async move {
            let route = "GET /admin/api/*/orders.json";
            let script = json!([{"status": 503}, {}, {"body": "truncated"}, {"body": "malformed"},
                {"status": 502, "body": "html"}, {"delay_ms": 300}]);
            let set = control(&base, "faults", json!({"route": route, "script": script})).await;
            assert_eq!(set["steps"], 6);
            let get = || async {
                let resp = client()
                    .get(format!("{base}/admin/api/2026-04/orders.json"))
                    .header(
                        "X-Shopify-Access-Token",
                        super::super::shopify::ACCESS_TOKEN,
                    )
                    .send()
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                let kind = resp
                    .headers()
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                (status, kind, resp.text().await.unwrap())
            };
            let (status, _, body) = get().await;
            assert_eq!(status, 503);
            assert!(body.contains("errors"), "Shopify's error body: {body}");
            let (status, _, whole) = get().await;
            assert_eq!(status, 200);
            assert!(serde_json::from_str::<Value>(&whole).is_ok());
            let (status, _, cut) = get().await;
            assert_eq!(status, 200);
            assert!(serde_json::from_str::<Value>(&cut).is_err(), "{cut}");
            assert!(whole.starts_with(&cut));
            let (_, _, broken) = get().await;
            assert!(serde_json::from_str::<Value>(&broken).is_err(), "{broken}");
            let (status, kind, page) = get().await;
            assert_eq!(
                (status, kind.starts_with("text/html")),
                (502, true),
                "{page}"
            );
            // The held step answers no sooner than its delay.
            let held = std::time::Instant::now();
            assert_eq!(get().await.0, 200);
            assert!(held.elapsed() >= Duration::from_millis(300));
            // The script is spent: served as usual, and nothing is left listed.
            assert_eq!(get().await.0, 200);
            let listed = parts(
                client()
                    .get(format!("{base}/_sandbox/faults"))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(listed.2["scripts"], json!([]));
        });
    }

    #[test]
    fn amazon_token_and_document_routes_take_scripted_faults_only() {
        let config = SandboxConfig {
            faults: FaultProfile::Flaky,
            ..SandboxConfig::default()
        };
        with_sandbox(config, |base| async move {
            let token = || async {
                let form = format!(
                    "grant_type=refresh_token&client_id={}&client_secret={}&refresh_token={}",
                    super::super::amazon::CLIENT_ID,
                    super::super::amazon::CLIENT_SECRET,
                    super::super::pct_encode(super::super::amazon::REFRESH_TOKEN)
                );
                let resp = client()
                    .post(format!("{base}/auth/o2/token"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form)
                    .send()
                    .await
                    .unwrap();
                parts(resp).await
            };
            let script = json!([{"status": 503}, {"status": 500, "body": "malformed"}]);
            control(
                &base,
                "faults",
                json!({"route": "POST /auth/o2/token", "script": script}),
            )
            .await;
            assert_eq!(token().await.0, 503);
            let broken = token().await;
            assert_eq!(broken.0, 500);
            // The script spent, the flaky profile does not reach the token endpoint.
            for _ in 0..40 {
                let ok = token().await;
                assert_eq!(ok.0, 200, "{}", ok.2);
            }
            // A report document (an S3 address in production) takes a scripted step too.
            let document = format!("{}nothing.txt", super::super::amazon_reports::DOCUMENT_PATH);
            control(
                &base,
                "faults",
                json!({"route": format!("GET {document}"), "step": {"status": 503}, "times": 1}),
            )
            .await;
            let fetch = || async {
                parts(
                    client()
                        .get(format!("{base}{document}"))
                        .send()
                        .await
                        .unwrap(),
                )
                .await
            };
            assert_eq!(fetch().await.0, 503);
            assert_ne!(fetch().await.0, 503, "the step is spent");
        });
    }

    #[test]
    fn an_applied_step_keeps_the_write_and_answers_the_failure() {
        with_sandbox(SandboxConfig::default(), |base| async move {
            let step = json!({"status": 504, "applied": true});
            let set = control(
                &base,
                "faults",
                json!({"route": "POST /v2/orders", "step": step, "times": 1}),
            )
            .await;
            assert_eq!(set["steps"], 1);
            let order = json!({"idempotency_key": "k-1", "order": {"location_id": "FPYCBCHYMXFK1",
                "line_items": [{"catalog_object_id": "W62UWFY35CWMYGVWK6TWJDNI", "quantity": "1"}]}});
            let post = || {
                client()
                    .post(format!("{base}/v2/orders"))
                    .header(
                        "Authorization",
                        format!("Bearer {}", super::super::square::ACCESS_TOKEN),
                    )
                    .header("Square-Version", "2025-10-16")
                    .header("content-type", "application/json")
                    .body(order.to_string())
                    .send()
            };
            let first = parts(post().await.unwrap()).await;
            assert_eq!(first.0, 504);
            let again = parts(post().await.unwrap()).await;
            assert_eq!(again.0, 200, "{}", again.2);
            let stats = crate::testutil::stats(&base).await;
            assert_eq!(
                stats["square"]["orders_created"], 1,
                "the first write was applied"
            );
            assert_eq!(stats["square"]["idempotent_replays"], 1);
        });
    }
}
