//! `omniflow playground` driven in headless Chromium (`tests/playground/drive.cjs`,
//! playwright-core with Debian's chromium): a payload typed into the page is mapped,
//! routed or rejected with its reason, a test fixture loads, and a rule saved to the flow
//! file changes the output shown without a reload. Screenshots are kept in the test's
//! target directory (`playground-screenshots/`).
#![allow(clippy::disallowed_methods)]

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use support::process::terminate;

#[test]
fn a_payload_is_mapped_routed_or_rejected_and_a_saved_rule_shows_at_once() {
    let modules = support::node_modules();
    let dir = support::TempDir::new("playground");
    let flow_file = dir.0.join("orders.flow");
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/playground");
    std::fs::copy(here.join("orders.flow"), &flow_file).unwrap();
    std::fs::create_dir_all(dir.0.join("fixtures")).unwrap();
    std::fs::write(
        dir.0.join("fixtures/small.json"),
        r#"{"id": "o-1", "sku": "TEE-M", "qty": 2}"#,
    )
    .unwrap();

    // Refused off loopback: the page shows local flows.
    let refused = Command::new(env!("CARGO_BIN_EXE_omniflow"))
        .args(["playground", "--listen", "0.0.0.0:0"])
        .arg(&dir.0)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));

    let mut child = Command::new(env!("CARGO_BIN_EXE_omniflow"))
        .args(["playground", "--listen", "127.0.0.1:0"])
        .arg(&dir.0)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let base = first
        .trim()
        .strip_prefix("playground on ")
        .unwrap_or_else(|| panic!("{first}"))
        .trim_end_matches('/')
        .to_string();
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();

    // A request naming another host (a rebound name) is refused.
    let (status, _) = support::process::exchange(
        port,
        "GET /api/flows HTTP/1.1\r\nhost: evil.example\r\nconnection: close\r\n\r\n",
    );
    assert_eq!(status, 403);
    // A run posted as a form (what another site can send without asking) is refused.
    let (status, _) = support::process::exchange(
        port,
        "POST /api/run HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
    );
    assert_eq!(status, 415);

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("playground-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let driven = Command::new("node")
        .arg(here.join("drive.cjs"))
        .arg(&base)
        .arg(&flow_file)
        .arg(&shots)
        .env("NODE_PATH", &modules)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&driven.stdout);
    let status = terminate(&mut child);
    assert!(
        driven.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&driven.stderr)
    );
    let seen: Value = serde_json::from_str(out.trim()).unwrap();

    assert_eq!(seen["flows"], serde_json::json!(["orders"]), "{seen}");
    assert_eq!(seen["node"], "line", "the first map is shown first: {seen}");
    let mapped = seen["mapped"].as_str().unwrap();
    assert!(
        mapped.contains("\"sku\": \"SKU-200\"") && mapped.contains("\"qty\": 12"),
        "{mapped}"
    );
    assert_eq!(seen["route"], "bulk", "{seen}");
    let rejection = seen["rejection"].as_str().unwrap();
    assert!(
        rejection.contains("line") && rejection.contains("unknown SKU SCARF"),
        "{rejection}"
    );
    assert!(
        seen["bad_json"].as_str().unwrap().contains("not JSON"),
        "{seen}"
    );
    assert_eq!(seen["fixture_node"], "incoming", "{seen}");
    assert_eq!(seen["fixture_route"], "single", "{seen}");
    assert_eq!(seen["sink_route"], "bulk", "{seen}");
    assert!(
        seen["after_edit"]
            .as_str()
            .unwrap()
            .contains("\"id\": \"web:o-10\""),
        "{seen}"
    );
    assert!(
        seen["compile_error"].as_str().unwrap().contains("E0001"),
        "{seen}"
    );
    assert_eq!(
        seen["outside"],
        serde_json::json!([]),
        "no request leaves the playground"
    );
    assert!(status.success(), "stops on SIGTERM: {status:?}");

    for name in ["mapped", "rejected", "after-edit", "compile-error"] {
        let png = std::fs::read(shots.join(format!("{name}.png"))).unwrap();
        assert!(
            png.len() > 1_000 && png.starts_with(b"\x89PNG"),
            "{name}.png is not a screenshot"
        );
    }
}
