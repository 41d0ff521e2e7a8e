//! Outbound webhook deliveries: subscribers, per-vendor signatures (Shopify, Square,
//! Standard Webhooks for ShipBob), POSTs from local tasks retried on each vendor's
//! published schedule in the sandbox's simulated time, and the log of every attempt.

use super::{json_body, Sandbox, Shared, System};
use base64::Engine;
use hmac::{Hmac, Mac};
use omniflow_http::server::{Req, Resp};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::VecDeque;
use std::time::Duration;

/// One webhook subscription.
#[derive(Clone, Debug)]
pub struct Subscriber {
    /// Which system sends.
    pub system: System,
    /// Topic or event type (`orders/create`, `order.updated`, `order.shipped`).
    pub topic: String,
    /// Where deliveries go.
    pub url: String,
    /// Per-subscription signing secret, when the vendor has one.
    pub secret: Option<String>,
    /// The API version the subscription asked for (Shopify's bodies and headers follow it).
    pub version: Option<String>,
}

/// How a delivery is signed.
#[derive(Clone, Debug)]
pub enum Signing {
    /// The headers were signed once (Shopify's HMAC of the body, Square's of URL and
    /// body): every redelivery carries them unchanged, original timestamps included (an
    /// [`Delivery::event_time`] header aside, which is not signed).
    Fixed,
    /// Standard Webhooks (ShipBob): every attempt signs `id.timestamp.body` anew with the
    /// attempt's own time under the same message id, as Svix-style senders do.
    Standard { secret: String, id: String },
}

/// A delivery ready to send.
pub struct Delivery {
    pub system: System,
    /// The topic or event type, for the delivery log.
    pub topic: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub signing: Signing,
    /// Held back this long (real time) before the first attempt (`?delay_ms=` on the
    /// control endpoints), so a later event can overtake it: out-of-order delivery.
    pub delay: Duration,
    /// A header holding the event's time (Shopify's `X-Shopify-Triggered-At`): each attempt
    /// writes it as now less the simulated time since the event, so a late redelivery
    /// looks to its receiver as old as the vendor's would.
    pub event_time: Option<&'static str>,
}

/// The `delay_ms` query parameter of a control request.
pub fn delay(query: &str) -> Duration {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "delay_ms")
        .and_then(|(_, v)| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or_default()
}

/// Shopify: 8 retries over 4 hours with exponential backoff (the vendor does not publish
/// the intervals: doubling from one minute, the last at 4 h).
const SHOPIFY: [f64; 8] = [60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 3840.0, 6780.0];
/// ShipBob (Standard Webhooks): after the immediate attempt, 5 s, 5 min, 30 min, 2 h, 5 h,
/// 10 h and 10 h: eight attempts over about 27.6 h.
const SHIPBOB: [f64; 7] = [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0];
/// Square: exponential backoff for up to 24 hours (intervals not published: doubling from
/// one minute, the last at 24 h).
const SQUARE: [f64; 11] = [
    60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 3840.0, 7680.0, 15360.0, 30720.0, 25020.0,
];

/// The simulated seconds a vendor waits after each failed attempt before the next; the
/// delivery is dropped after the last.
pub fn schedule(system: System) -> &'static [f64] {
    match system {
        System::Shopify => &SHOPIFY,
        System::Shipbob => &SHIPBOB,
        System::Square => &SQUARE,
        System::AmazonSp | System::Odata => &[],
    }
}

/// How many attempts the delivery log keeps (the oldest go first).
const LOG_CAP: usize = 10_000;

/// Every delivery attempt, newest last, for `GET /_sandbox/webhooks/deliveries`.
#[derive(Default)]
pub struct Log {
    next: u64,
    attempts: VecDeque<Value>,
}

impl Log {
    fn open(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    fn push(&mut self, attempt: Value) {
        if self.attempts.len() == LOG_CAP {
            self.attempts.pop_front();
        }
        self.attempts.push_back(attempt);
    }
}

/// Base64 of HMAC-SHA256(key, concatenated parts).
pub fn hmac_b64(key: &[u8], parts: &[&[u8]]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    for part in parts {
        mac.update(part);
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Standard Webhooks signature header value `v1,<b64>` for a `whsec_` secret.
pub fn standard_signature(secret: &str, id: &str, ts: i64, body: &str) -> String {
    let raw = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .unwrap_or_else(|_| raw.as_bytes().to_vec());
    let signed = format!("{id}.{ts}.{body}");
    format!("v1,{}", hmac_b64(&key, &[signed.as_bytes()]))
}

/// The Standard Webhooks headers of one attempt made now.
pub fn standard_headers(secret: &str, id: &str, body: &str) -> Vec<(String, String)> {
    let ts = super::now().timestamp();
    vec![
        ("webhook-id".to_string(), id.to_string()),
        ("webhook-timestamp".to_string(), ts.to_string()),
        (
            "webhook-signature".to_string(),
            standard_signature(secret, id, ts, body),
        ),
    ]
}

/// Subscribers of `system` for `topic`.
pub fn subscribers(sb: &Sandbox, system: System, topic: &str) -> Vec<Subscriber> {
    sb.subscribers
        .borrow()
        .iter()
        .filter(|s| s.system == system && s.topic == topic)
        .cloned()
        .collect()
}

/// Adds a subscriber unless the same (system, topic, url) exists.
pub fn subscribe(sb: &Sandbox, sub: Subscriber) {
    let mut subs = sb.subscribers.borrow_mut();
    subs.retain(|s| !(s.system == sub.system && s.topic == sub.topic && s.url == sub.url));
    subs.push(sub);
}

/// Sends `delivery` from a local task. A non-2xx answer or a connection error is retried on
/// the vendor's schedule in simulated time; every attempt is logged.
pub fn send(sb: &Shared, delivery: Delivery) {
    sb.bump(delivery.system, "webhooks_sent");
    let sb = sb.clone();
    tokio::task::spawn_local(async move {
        let event = sb.clock.now();
        if !delivery.delay.is_zero() {
            tokio::time::sleep(delivery.delay).await;
        }
        let id = sb.deliveries.borrow_mut().open();
        let first = sb.clock.now();
        let mut wait = 0.0;
        for attempt in 0.. {
            let age = sb.clock.now() - event;
            let outcome = attempt_once(&sb, &delivery, age).await;
            let ok = outcome.is_ok();
            sb.deliveries.borrow_mut().push(json!({
                "delivery": id, "system": delivery.system.key(), "topic": delivery.topic,
                "url": delivery.url, "attempt": attempt + 1, "wait_s": wait,
                "at_s": ((sb.clock.now() - first) * 1000.0).round() / 1000.0,
                "ok": ok, "outcome": outcome.unwrap_or_else(|e| e),
            }));
            if ok {
                sb.bump(delivery.system, "webhooks_delivered");
                return;
            }
            let Some(pause) = schedule(delivery.system).get(attempt) else {
                sb.bump(delivery.system, "webhooks_failed");
                tracing::warn!(url = %delivery.url, "sandbox webhook delivery failed");
                return;
            };
            wait = *pause;
            sb.clock.sleep(wait).await;
        }
    });
}

/// One POST of `delivery`, `age` simulated seconds after its event: `Ok(status)` on 2xx,
/// `Err(reason)` otherwise.
async fn attempt_once(sb: &Sandbox, delivery: &Delivery, age: f64) -> Result<String, String> {
    let mut request = sb
        .client
        .post(&delivery.url)
        .header("content-type", "application/json")
        .body(delivery.body.clone());
    let mut signed = match &delivery.signing {
        Signing::Fixed => Vec::new(),
        Signing::Standard { secret, id } => standard_headers(secret, id, &delivery.body),
    };
    if let Some(name) = delivery.event_time {
        let back = chrono::Duration::milliseconds((age.max(0.0) * 1000.0) as i64);
        let at = super::now()
            .checked_sub_signed(back)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        signed.push((name.to_string(), super::ts_millis(at)));
    }
    for (name, value) in delivery.headers.iter().chain(&signed) {
        request = request.header(name.as_str(), value.as_str());
    }
    match request.send().await {
        Ok(r) if r.status().is_success() => Ok(r.status().as_u16().to_string()),
        Ok(r) => Err(r.status().as_u16().to_string()),
        Err(err) if err.is_timeout() => Err("timed out".to_string()),
        Err(err) if err.is_connect() => Err("cannot connect".to_string()),
        Err(_) => Err("connection failed".to_string()),
    }
}

/// `POST /_sandbox/webhooks {"system","topic","url"}`.
pub fn register_control(sb: &Shared, req: &Req) -> Resp {
    let Some(body) = json_body(req) else {
        return Resp::json(400, json!({"error": "body must be a JSON object"}));
    };
    let system = match body["system"].as_str().and_then(System::parse) {
        Some(s @ (System::Shopify | System::Square | System::Shipbob)) => s,
        _ => {
            return Resp::json(
                400,
                json!({"error": "system must be shopify, square or shipbob"}),
            )
        }
    };
    let (Some(topic), Some(url)) = (body["topic"].as_str(), body["url"].as_str()) else {
        return Resp::json(400, json!({"error": "topic and url are required"}));
    };
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Resp::json(400, json!({"error": "url must be http(s)"}));
    }
    subscribe(
        sb,
        Subscriber {
            system,
            topic: topic.to_string(),
            url: url.to_string(),
            secret: None,
            version: None,
        },
    );
    Resp::json(
        201,
        json!({"system": system.key(), "topic": topic, "url": url}),
    )
}

/// `GET /_sandbox/webhooks`: every subscriber.
pub fn list(sb: &Shared) -> Resp {
    let subs: Vec<_> = sb
        .subscribers
        .borrow()
        .iter()
        .map(|s| json!({"system": s.system.key(), "topic": s.topic, "url": s.url}))
        .collect();
    Resp::json(200, json!(subs))
}

/// `GET /_sandbox/webhooks/deliveries`: every logged attempt, oldest first.
pub fn deliveries(sb: &Shared) -> Resp {
    let log = sb.deliveries.borrow();
    Resp::json(
        200,
        json!({"attempts": log.attempts.iter().collect::<Vec<_>>()}),
    )
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{client, control, parts, with_sandbox};
    use super::super::SandboxConfig;
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// What a receiver saw: each request's headers (lower-case names) and its `body`.
    type Seen = Rc<RefCell<Vec<Vec<(String, String)>>>>;

    /// A receiver answering 503 to the first `failures` requests and 200 after.
    async fn receiver(failures: usize) -> (String, Seen) {
        let seen: Seen = Rc::default();
        let log = seen.clone();
        let handler: omniflow_http::server::Handler = Rc::new(move |req: Req| {
            let log = log.clone();
            Box::pin(async move {
                let mut headers: Vec<_> = req
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                headers.push(("body".into(), String::from_utf8_lossy(&req.body).into()));
                let mut log = log.borrow_mut();
                log.push(headers);
                Resp::json(if log.len() > failures { 200 } else { 503 }, json!({}))
            })
        });
        let addr = omniflow_http::server::serve("127.0.0.1:0", handler)
            .await
            .expect("receiver");
        (format!("http://{addr}/hook"), seen)
    }

    /// The value of header `name` (lower case) a receiver saw.
    fn header(seen: &[(String, String)], name: &str) -> String {
        seen.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .expect(name)
    }

    /// The sandbox's delivery log.
    async fn attempts(base: &str) -> Vec<Value> {
        let resp = client()
            .get(format!("{base}/_sandbox/webhooks/deliveries"))
            .send()
            .await
            .expect("log");
        parts(resp).await.2["attempts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until the log holds a final attempt (delivered, or the schedule's last).
    async fn settled(base: &str, system: System) -> Vec<Value> {
        loop {
            let log = attempts(base).await;
            let last = log.last().cloned().unwrap_or(Value::Null);
            let done = last["ok"] == true
                || last["attempt"].as_u64() == Some(schedule(system).len() as u64 + 1);
            if done {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn config() -> SandboxConfig {
        SandboxConfig {
            time_scale: 200_000.0,
            ..SandboxConfig::default()
        }
    }

    /// The waits logged before each attempt, and that each attempt came no sooner.
    fn waits(log: &[Value]) -> Vec<f64> {
        let mut earliest = 0.0;
        log.iter()
            .map(|a| {
                let wait = a["wait_s"].as_f64().expect("wait");
                earliest += wait;
                assert!(a["at_s"].as_f64().expect("at") >= earliest, "{a}");
                wait
            })
            .collect()
    }

    #[test]
    fn shopify_redelivers_eight_times_over_four_hours_with_the_original_headers() {
        with_sandbox(config(), |base| async move {
            let (url, seen) = receiver(usize::MAX).await;
            let sub = json!({"system": "shopify", "topic": "orders/create", "url": url});
            control(&base, "webhooks", sub).await;
            let order = json!({"line_items": [{"sku": "CAP-009-BLK-XL", "quantity": 1}]});
            control(&base, "shopify/orders", order).await;
            let log = settled(&base, System::Shopify).await;
            assert_eq!(log.len(), 9, "one try and eight retries: {log:?}");
            let waits = waits(&log);
            assert_eq!(waits[0], 0.0);
            assert_eq!(&waits[1..], &SHOPIFY);
            assert_eq!(SHOPIFY.iter().sum::<f64>(), 4.0 * 3600.0);
            assert!(log
                .iter()
                .all(|a| a["ok"] == false && a["outcome"] == "503"));
            let seen = seen.borrow().clone();
            assert_eq!(seen.len(), 9);
            let triggered = |h: &Vec<(String, String)>| {
                let at = header(h, "x-shopify-triggered-at");
                chrono::DateTime::parse_from_rfc3339(&at).expect("a timestamp")
            };
            let without = |h: &Vec<(String, String)>| {
                let mut h = h.clone();
                h.retain(|(k, _)| k != "x-shopify-triggered-at");
                h
            };
            assert!(
                seen.iter().all(|h| without(h) == without(&seen[0])),
                "a retry is the same delivery"
            );
            assert_eq!(header(&seen[0], "x-shopify-api-version"), "2025-07");
            // The event's time ages with the simulated clock: the last retry's event looks
            // four hours old to its receiver.
            let now = chrono::Utc::now();
            let age = |h| (now - triggered(h).with_timezone(&chrono::Utc)).num_seconds();
            let ages: Vec<i64> = seen.iter().map(age).collect();
            assert!(ages[8] >= 4 * 3600 - 60, "{ages:?}");
            assert!(ages.windows(2).all(|w| w[0] <= w[1]), "{ages:?}");
            assert!(
                ages[0] < 3600,
                "the first attempt is about as old as the event: {ages:?}"
            );
            let stats = crate::testutil::stats(&base).await;
            assert_eq!(stats["shopify"]["webhooks_failed"], 1);
        });
    }

    #[test]
    fn square_retries_for_24_hours_and_stops_at_the_first_2xx() {
        with_sandbox(config(), |base| async move {
            let (url, seen) = receiver(10).await;
            let sub = json!({"system": "square", "topic": "order.updated", "url": url});
            control(&base, "webhooks", sub).await;
            let sale = json!({"line_items": [{"catalog_object_id": "W62UWFY35CWMYGVWK6TWJDNI", "quantity": "1"}]});
            control(&base, "square/orders", sale).await;
            let log = settled(&base, System::Square).await;
            assert_eq!(log.len(), 11, "{log:?}");
            assert_eq!(&waits(&log)[1..], &SQUARE[..10]);
            assert_eq!(log[10]["ok"], true);
            assert_eq!(SQUARE.iter().sum::<f64>(), 24.0 * 3600.0);
            assert_eq!(seen.borrow().len(), 11);
        });
    }

    #[test]
    fn shipbob_signs_each_attempt_anew_under_one_message_id() {
        with_sandbox(config(), |base| async move {
            let (url, seen) = receiver(usize::MAX).await;
            let sub = json!({"system": "shipbob", "topic": "order.shipped", "url": url});
            control(&base, "webhooks", sub).await;
            let order = json!({"reference_id": "erp-SO-9", "shipping_method": "Standard", "type": "DTC",
                "recipient": {"name": "A B", "address": {"address1": "1 Main St", "city": "Chicago", "country": "US"}},
                "products": [{"reference_id": "CAP-009-BLK-XL", "name": "Cap", "quantity": 1}]});
            let created = parts(
                client()
                    .post(format!("{base}/2026-07/order"))
                    .header(
                        "Authorization",
                        format!("Bearer {}", super::super::shipbob::ACCESS_TOKEN),
                    )
                    .header("shipbob_channel_id", super::super::shipbob::CHANNEL_ID)
                    .header("content-type", "application/json")
                    .body(order.to_string())
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(created.0, 201, "{}", created.2);
            control(
                &base,
                &format!("shipbob/orders/{}/ship", created.2["id"]),
                json!({}),
            )
            .await;
            let log = settled(&base, System::Shipbob).await;
            assert_eq!(log.len(), 8, "eight attempts: {log:?}");
            assert_eq!(&waits(&log)[1..], &SHIPBOB);
            let seen = seen.borrow();
            for h in seen.iter() {
                let id = header(h, "webhook-id");
                assert_eq!(id, header(&seen[0], "webhook-id"));
                let ts: i64 = header(h, "webhook-timestamp").parse().unwrap();
                assert!(
                    ts >= super::super::now().timestamp() - 300,
                    "a fresh timestamp"
                );
                assert_eq!(header(h, "x-webhook-topic"), "order.shipped");
                let secret = super::super::shipbob::WEBHOOK_SECRET;
                let signed = standard_signature(secret, &id, ts, &header(h, "body"));
                assert_eq!(header(h, "webhook-signature"), signed);
            }
        });
    }

    #[test]
    fn the_clock_scale_is_set_and_checked_by_the_control_api() {
        with_sandbox(SandboxConfig::default(), |base| async move {
            let set = control(&base, "clock", json!({"scale": 3600})).await;
            assert_eq!(set["scale"], 3600.0);
            let refused = control(&base, "clock", json!({"scale": -1})).await;
            assert!(refused["error"].as_str().unwrap().contains("scale"));
            let now = parts(
                client()
                    .get(format!("{base}/_sandbox/clock"))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(now.2["scale"], 3600.0);
        });
    }
}
