//! Outbound webhook deliveries: subscribers, per-vendor signatures (Shopify, Square,
//! Standard Webhooks for ShipBob) and retried POSTs from local tasks.

use super::{json_body, Sandbox, Shared, System};
use base64::Engine;
use hmac::{Hmac, Mac};
use omniflow_http::server::{Req, Resp};
use serde_json::json;
use sha2::Sha256;
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
}

/// A delivery ready to send.
pub struct Delivery {
    pub system: System,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Held back this long before the first attempt (`?delay_ms=` on the control
    /// endpoints), so a later event can overtake it: out-of-order delivery.
    pub delay: Duration,
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

/// Pauses between attempts (compressed vendor schedules).
const BACKOFF_MS: [u64; 3] = [200, 1_000, 3_000];

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

/// Sends `delivery` from a local task, retrying non-2xx answers and connection errors.
pub fn send(sb: &Shared, delivery: Delivery) {
    sb.bump(delivery.system, "webhooks_sent");
    let sb = sb.clone();
    tokio::task::spawn_local(async move {
        if !delivery.delay.is_zero() {
            tokio::time::sleep(delivery.delay).await;
        }
        let mut attempt = 0;
        loop {
            let mut request = sb
                .client
                .post(&delivery.url)
                .header("content-type", "application/json")
                .body(delivery.body.clone());
            for (name, value) in &delivery.headers {
                request = request.header(name.as_str(), value.as_str());
            }
            let ok = matches!(request.send().await, Ok(r) if r.status().is_success());
            if ok {
                sb.bump(delivery.system, "webhooks_delivered");
                return;
            }
            let Some(pause) = BACKOFF_MS.get(attempt) else {
                sb.bump(delivery.system, "webhooks_failed");
                tracing::warn!(url = %delivery.url, "sandbox webhook delivery failed");
                return;
            };
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(*pause)).await;
        }
    });
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
