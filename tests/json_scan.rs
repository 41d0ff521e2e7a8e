//! The hot-path JSON scanner agrees with serde_json: on the benchmark sample and on
//! mutated documents, whatever it accepts parses to the same value, and whatever serde_json
//! rejects it refuses too (so the error message still comes from serde_json).

use omniflow_runtime::json_in::{parse_with_serde, Projection};
use omniflow_runtime::json_scan::scan;
use omniflow_tests::repo_root;
use proptest::prelude::*;
use std::sync::OnceLock;

fn sample() -> &'static Vec<String> {
    static SAMPLE: OnceLock<Vec<String>> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let text =
            std::fs::read_to_string(repo_root().join("flows/bench/fixtures/sample_orders.jsonl"))
                .unwrap();
        text.lines().map(String::from).collect()
    })
}

fn projections() -> Vec<Projection> {
    let reads: Vec<String> = [
        "$.id",
        "$.line_items[*].sku",
        "$.line_items[*].price",
        "$.customer",
        "$.note",
        "$.total_price",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    vec![Projection::whole(), Projection::from_reads(&reads)]
}

/// Equal JSON, floats within one unit in the last place: the scanner rounds decimal text
/// to the nearest f64 (as Rust's own parser does), serde_json's default parser can land one
/// ulp off on long mantissas with exponents.
fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) if x.is_f64() || y.is_f64() => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x.to_bits() as i64 - y.to_bits() as i64).abs() <= 1,
            _ => false,
        },
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Object(x), Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn agree(bytes: &[u8]) -> Result<(), String> {
    for projection in projections() {
        let fast = scan(bytes, &projection);
        let reference = parse_with_serde(bytes, &projection);
        match (fast, reference) {
            (Some(a), Ok(b)) if a.to_json() == b.to_json() => {}
            (Some(a), Ok(b)) if same(&a.to_json(), &b.to_json()) => {}
            (Some(a), Ok(b)) => {
                return Err(format!("values differ: {} vs {}", a.to_json(), b.to_json()))
            }
            (Some(_), Err(e)) => {
                return Err(format!("scanner accepted what serde_json rejects: {e}"))
            }
            (None, _) => {}
        }
    }
    Ok(())
}

#[test]
fn the_sample_scans_like_serde_json() {
    for line in sample() {
        assert!(
            scan(line.as_bytes(), &Projection::whole()).is_some(),
            "the scanner should handle the corpus itself"
        );
        agree(line.as_bytes()).unwrap();
    }
    for edge in [
        r#"{"a": "\u00e9\ud83d\ude00\n\"\\\/", "b": -0, "c": 1e2, "d": 18446744073709551615, "e": -9223372036854775809}"#,
        r#"{"a": [], "b": {}, "c": [[[]]], "d": 1.0, "e": 0.06, "f": true, "g": null}"#,
        r#"  {"a" : 1 }  "#,
        r#"{"a": "\ud800"}"#,
        r#"{"a": 01}"#,
        r#"{"a": 1.}"#,
        r#"{"a": tru}"#,
        "{\"a\": \"tab\tin\"}",
        r#"{"a": 1,}"#,
        r#"[1, 2"#,
        r#"{"a": 1} x"#,
        // Long mantissas with exponents (found by the mutation test).
        r#"{"id": 130001009140003231e2, "b": 1300036051e28, "c": 400000317100e21}"#,
    ] {
        agree(edge.as_bytes()).unwrap_or_else(|e| panic!("{edge}: {e}"));
    }
}

const PIECES: &[&str] = &[
    "\"", "\\", "{", "}", "[", "]", ",", ":", "-", "0", "1e", ".", "true", "nul", "\\u12",
    "\\ud800", " ", "\n", "\u{1}", "é",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_documents_scan_like_serde_json(doc in 0usize..100, edits in proptest::collection::vec((0usize..3, 0usize..10_000, 0usize..20), 1..6)) {
        let mut text: Vec<char> = sample()[doc % sample().len()].chars().collect();
        for (kind, at, piece) in edits {
            if text.is_empty() { break; }
            let at = at % text.len();
            match kind {
                0 => { text.remove(at); }
                1 => { for (i, c) in PIECES[piece].chars().enumerate() { text.insert(at + i, c); } }
                _ => { let end = (at + 1 + piece).min(text.len()); text.drain(at..end); }
            }
        }
        let text: String = text.into_iter().collect();
        prop_assert_eq!(agree(text.as_bytes()), Ok(()));
    }
}
