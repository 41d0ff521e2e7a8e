//! Whole-flow tests (`omniflow test` with `answers`, `requests`, `dead_letters`, `env`):
//! the real connectors against scripted answers, retries on a virtual clock, dead letters
//! and their reasons; a test that expects the wrong thing fails with what differs; and
//! `--coverage` names what no test reaches.
#![allow(clippy::disallowed_methods)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/whole_flow")
}

/// `omniflow test` with `args`: exit code and standard output.
fn omniflow_test(args: &[&Path], coverage: bool) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_omniflow"));
    command.arg("test").args(args);
    if coverage {
        command.arg("--coverage");
    }
    let output = command.output().unwrap();
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.code(), text)
}

/// A copy of the fixture flows with `edits` applied to the flow file.
fn edited(name: &str, edits: &[(&str, &str)]) -> support::TempDir {
    let dir = support::TempDir::new(name);
    let mut text = std::fs::read_to_string(here().join("orders.flow")).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{from}");
        text = text.replacen(from, to, 1);
    }
    std::fs::write(dir.0.join("orders.flow"), text).unwrap();
    std::fs::copy(here().join("order.json"), dir.0.join("order.json")).unwrap();
    dir
}

#[test]
fn connector_answers_drive_retries_refusals_and_throttling_through_the_real_connectors() {
    let dir = edited("whole-flow-ok", &[]);
    let (code, out) = omniflow_test(&[&dir.0], true);
    assert_eq!(code, Some(0), "{out}");
    for name in [
        "ok      receipts :: a 503 then a 201: sent twice with the same key, then stored",
        "ok      receipts :: a 409 refusal is a dead letter with the target's reason, never retried",
        "ok      receipts :: a 429 with Retry-After waits as told, on the virtual clock",
        "ok      erp_orders :: the ERP is looked up first, then the sale is created once",
        "ok      erp_orders :: the ERP refuses the sale (400): a dead letter with the ERP's message",
        "ok      listed_receipts :: a poll reads both pages and each receipt is posted once, in order",
        "6 tests, 6 passed, 0 failed",
        "receipts: 3 tests; nodes 3/3, branches 0/0, sinks 1/1",
    ] {
        assert!(out.contains(name), "{name}: {out}");
    }
}

#[test]
fn a_test_expecting_the_wrong_requests_or_reasons_fails_with_what_differs() {
    let dir = edited(
        "whole-flow-wrong",
        &[
            // Another path than the connector calls.
            (
                "\"path\": \"/api/receipts\",\n          \"headers\"",
                "\"path\": \"/api/receipt\",\n          \"headers\"",
            ),
            // Another reason than the target gives.
            (
                "dead_letters = {\"post\": \"receipt r-2 exists\"}",
                "dead_letters = {\"post\": \"410 Gone\"}",
            ),
            // The throttled target now fails for good: the retries run out.
            (
                "{\"status\": 429, \"headers\": {\"retry-after\": \"600\"}},\n        {\"status\": 200, \"body\": {}}",
                "{\"status\": 500}",
            ),
            // The poll is expected to follow another page token than the page gives.
            ("page_token=t2", "page_token=t3"),
            // The lookup finds the sale: none is created, so the expected POST is missing.
            (
                "{\"status\": 200, \"body\": {\"value\": []}},\n        {\"status\": 201",
                "{\"status\": 200, \"body\": {\"value\": [{\"ID\": \"7f1c\", \"orderNo\": \"amazon:902-1845936-5435065\"}]}},\n        {\"status\": 201",
            ),
        ],
    );
    let (code, out) = omniflow_test(&[&dir.0], false);
    assert_eq!(code, Some(1), "{out}");
    for expected in [
        "sink `post` request 1: path /api/receipts, expected /api/receipt",
        "sink `post` dead-lettered with \"HTTP 409: {\"error\":\"receipt r-2 exists\"}\", expected a reason containing \"410 Gone\"",
        "sink `post` sent 5 requests, expected 2",
        "`post` dead-lettered unexpectedly: HTTP 500",
        "sink `sale` sent 1 requests, expected 2",
        "source `listed` request 2: path /api/receipts?page_token=t2, expected /api/receipts?page_token=t3",
        "6 tests, 1 passed, 5 failed",
    ] {
        assert!(out.contains(expected), "{expected}: {out}");
    }
}

#[test]
fn the_reference_flows_whole_flow_tests_pass_and_coverage_names_the_untested_flow() {
    let flows = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../flows");
    let (code, out) = omniflow_test(&[&flows], true);
    assert_eq!(code, Some(0), "{out}");
    for name in [
        "ok      ecommerce_split_fulfilment :: ShipBob refuses the warehouse order: a dead letter with its reason",
        "ok      ecommerce_split_fulfilment :: the store's POS is down a moment: the reservation is sent again, with the same key",
        "ok      product_price_distribution :: Amazon throttles the price update: it waits as told, then the price is accepted",
        "ok      shipment_confirmations :: Shopify refuses the fulfilment: a dead letter with Shopify's reason",
        "ok      marketplace_orders :: Tryton refuses the connector's login: the order is a dead letter saying so",
        "storefront_reservations: 0 tests; nodes 0/3, branches 0/0, sinks 0/1",
        "not reached: node orders, node order, sink hold",
    ] {
        assert!(out.contains(name), "{name}: {out}");
    }
}

#[test]
fn what_a_whole_flow_test_cannot_run_is_refused_when_the_flows_are_checked() {
    // A 1xx is no final answer: the check refuses it, as it refuses every wrong shape.
    let dir = edited(
        "whole-flow-1xx",
        &[("{\"status\": 503}", "{\"status\": 101}")],
    );
    let (code, out) = omniflow_test(&[&dir.0], false);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("E0212") && out.contains("status 200 to 599"),
        "{out}"
    );
}
