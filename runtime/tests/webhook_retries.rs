//! A receiver down for a simulated hour: the sandbox redelivers Shopify's `orders/create`
//! on Shopify's schedule (in simulated time), the runtime comes up, takes the redeliveries
//! and stores each event once, duplicates included.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::process::{get, post_json, sandbox_with, Killed};
use support::{free_port, run_flows, wait_for, Faults, Sink, TempDir};

/// Shopify's waits after each failed attempt, as the sandbox models them (seconds).
const SHOPIFY: [f64; 8] = [60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 3840.0, 6780.0];

const PATIENCE: Duration = Duration::from_secs(90);

/// The sandbox's delivery attempts.
fn attempts(port: u16) -> Vec<Value> {
    let (_, body) = get(port, "/_sandbox/webhooks/deliveries");
    serde_json::from_str::<Value>(&body).unwrap_or_default()["attempts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Attempts grouped by delivery.
fn by_delivery(log: &[Value]) -> std::collections::BTreeMap<u64, Vec<Value>> {
    let mut out = std::collections::BTreeMap::<u64, Vec<Value>>::new();
    for a in log {
        out.entry(a["delivery"].as_u64().unwrap())
            .or_default()
            .push(a.clone());
    }
    out
}

#[test]
fn an_hour_long_outage_is_bridged_by_shopifys_redeliveries_and_each_order_is_stored_once() {
    let dir = TempDir::new("webhook-retries");
    let (sandbox_port, hooks, ops) = (free_port(), free_port(), free_port());
    // Ten simulated minutes a real second: the hour passes in six seconds.
    let _sandbox = sandbox_with(sandbox_port, &["--time-scale", "600"]);
    let url = format!("http://127.0.0.1:{hooks}/hooks/shopify/orders");
    let subscribe = format!(r#"{{"system": "shopify", "topic": "orders/create", "url": "{url}"}}"#);
    assert_eq!(
        post_json(sandbox_port, "/_sandbox/webhooks", &subscribe).0,
        201
    );
    let order = r#"{"line_items": [{"sku": "CAP-009-BLK-XL", "quantity": 1}]}"#;
    let mut ids = Vec::new();
    for path in [
        "/_sandbox/shopify/orders",
        "/_sandbox/shopify/orders?duplicate=true",
    ] {
        let (status, body) = post_json(sandbox_port, path, order);
        assert_eq!(status, 201, "{body}");
        let created: Value = serde_json::from_str(&body).unwrap();
        ids.push(created["order"]["id"].as_u64().unwrap().to_string());
    }

    // Nobody listens: every delivery fails until a simulated hour has passed.
    wait_for("an hour of failed attempts", PATIENCE, || {
        let groups = by_delivery(&attempts(sandbox_port));
        groups.len() == 3
            && groups
                .values()
                .all(|g| g.iter().any(|a| a["at_s"].as_f64().unwrap() >= 3600.0))
    });
    let sink = Sink::start(Faults::default());
    dir.write_flows("orders.flow", support::SHOPIFY_ORDERS_FLOW);
    let _runtime = Killed(run_flows(
        &dir,
        &[
            "--webhook-addr",
            &format!("127.0.0.1:{hooks}"),
            "--ops-addr",
            &format!("127.0.0.1:{ops}"),
        ],
        &[
            ("SHOPIFY_SHOP", format!("http://127.0.0.1:{sandbox_port}")),
            ("SHOPIFY_TOKEN", "shpat_sandbox".into()),
            (
                "SHOPIFY_WEBHOOK_SECRET",
                omniflow_sandbox::shopify::WEBHOOK_SECRET.into(),
            ),
            (
                "OMNIFLOW_TEST_SINK",
                format!("http://127.0.0.1:{}", sink.port),
            ),
        ],
    ));
    wait_for("every delivery taken", PATIENCE, || {
        let groups = by_delivery(&attempts(sandbox_port));
        groups.values().all(|g| g.iter().any(|a| a["ok"] == true))
    });
    wait_for("both orders at the sink", PATIENCE, || sink.distinct() == 2);

    let groups = by_delivery(&attempts(sandbox_port));
    assert_eq!(groups.len(), 3, "two orders, one delivered twice");
    for attempts in groups.values() {
        let (last, failed) = attempts.split_last().unwrap();
        assert_eq!(last["ok"], true, "{attempts:?}");
        assert!(last["at_s"].as_f64().unwrap() >= 3600.0, "{attempts:?}");
        assert!(failed.iter().all(|a| a["outcome"] == "cannot connect"));
        let waits: Vec<f64> = attempts
            .iter()
            .map(|a| a["wait_s"].as_f64().unwrap())
            .collect();
        assert_eq!(waits[0], 0.0);
        assert_eq!(
            &waits[1..],
            &SHOPIFY[..waits.len() - 1],
            "Shopify's schedule"
        );
        let mut earliest = 0.0;
        for (a, wait) in attempts.iter().zip(&waits) {
            earliest += wait;
            assert!(a["at_s"].as_f64().unwrap() >= earliest, "{a}");
        }
    }
    let seen = sink.seen.lock().unwrap();
    for id in &ids {
        assert_eq!(seen.effects.get(id), Some(&1), "order {id} stored once");
    }
    drop(seen);
    let metrics = get(ops, "/metrics").1;
    assert!(
        metrics.contains(r#"omniflow_messages_in_total{flow="orders",node="created"} 2"#),
        "the duplicate delivery is not a message: {metrics}"
    );
}
