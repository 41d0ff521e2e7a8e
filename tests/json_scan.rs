//! The hot-path JSON scanner agrees with serde_json: on the benchmark sample and on
//! mutated documents, whatever it accepts parses to the same value, and whatever serde_json
//! rejects it refuses too (so the error message still comes from serde_json).

use omniflow_mapping::json_in::{parse_with_serde, Projection};
use omniflow_mapping::json_scan::scan;
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

/// The exact value of a JSON number's text, written without exponent or redundant zeros
/// (independent of the runtime's decimal).
fn canonical(text: &str) -> String {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().unwrap()),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    let point = int.len() as i64 + exponent;
    let (int, frac) = if point <= 0 {
        (
            "0".to_string(),
            format!("{}{digits}", "0".repeat((-point) as usize)),
        )
    } else if point as usize >= digits.len() {
        (
            format!("{digits}{}", "0".repeat(point as usize - digits.len())),
            String::new(),
        )
    } else {
        (
            digits[..point as usize].to_string(),
            digits[point as usize..].to_string(),
        )
    };
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let body = if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    };
    if negative && body != "0" {
        format!("-{body}")
    } else {
        body
    }
}

fn number_text() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        "[1-9][0-9]{0,45}|0",
        proptest::option::of("[0-9]{1,45}"),
        proptest::option::of((any::<bool>(), -45i32..45)),
    )
        .prop_map(|(negative, int, frac, exponent)| {
            let mut text = String::new();
            if negative {
                text.push('-');
            }
            text.push_str(&int);
            if let Some(frac) = frac {
                text.push('.');
                text.push_str(&frac);
            }
            if let Some((upper, exponent)) = exponent {
                text.push(if upper { 'E' } else { 'e' });
                text.push_str(&exponent.to_string());
            }
            text
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every number either keeps its exact value through both parsers, the key text and the
    /// output, or both parsers refuse it with the same reason; never a nearby float.
    #[test]
    fn numbers_of_every_size_round_trip_exactly(text in number_text()) {
        let doc = format!(r#"{{"n": {text}, "skipped": [{text}], "list": [{text}]}}"#);
        let projection = Projection::from_reads(&["$.n".to_string(), "$.list[*]".to_string()]);
        let fast = scan(doc.as_bytes(), &projection);
        let reference = parse_with_serde(doc.as_bytes(), &projection);
        let exact = canonical(&text);
        let digits = text.trim_start_matches('-').split(['e', 'E']).next().unwrap().replace('.', "");
        let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
        match (fast, reference) {
            (Some(fast), Ok(reference)) => {
                for value in [&fast, &reference] {
                    let n = value.field("n");
                    prop_assert_eq!(omniflow_mapping::json_out::to_string(&n), exact.clone());
                    let key = n.text().unwrap();
                    prop_assert_eq!(canonical(&key), exact.clone(), "key {}", key);
                    let (int, frac) = text.trim_start_matches('-').split_once('.').unwrap_or((&text, ""));
                    let written_fits = frac.len() <= 38 && int.trim_start_matches('0').len() + frac.len() <= 38;
                    if !text.contains(['e', 'E']) && exact != "0" && written_fits {
                        // Written plainly (and within 38 digits), the key is the number as
                        // written; past that, trailing fraction zeros may be dropped.
                        prop_assert_eq!(key.as_ref(), text.as_str());
                    }
                    let out = omniflow_mapping::json_out::to_string(value);
                    prop_assert_eq!(out, format!(r#"{{"n":{exact},"list":[{exact}]}}"#));
                }
            }
            (None, Err(reason)) => {
                prop_assert!(reason.contains("cannot be kept exactly"), "{}", reason);
                prop_assert!(significant > 38 || text.contains(['e', 'E']) || digits.len() > 38, "{} refused", text);
            }
            (fast, reference) => prop_assert!(false, "{}: scanner {:?}, serde {:?}", text, fast, reference),
        }
    }
}

#[test]
fn hostile_documents_are_refused_with_a_reason() {
    let whole = Projection::whole();
    let deep = "[".repeat(100_000);
    let digits = format!("[1{}]", "7".repeat(1 << 20));
    let long = format!("[\"{}\"]", "x".repeat(8 << 20));
    let cases: [(&str, &[u8], Option<&str>); 6] = [
        ("deep", deep.as_bytes(), Some("nests deeper than 128")),
        ("digits", digits.as_bytes(), Some("cannot be kept exactly")),
        ("exponent", b"{\"a\": 1e400}", Some("1e400")),
        ("surrogate", br#"{"a": "x\uD800y"}"#, Some("surrogate")),
        (
            "trailing surrogate",
            br#"{"a": "\uDC00"}"#,
            Some("surrogate"),
        ),
        ("long string", long.as_bytes(), None),
    ];
    for (what, doc, reason) in cases {
        let parsed = omniflow_mapping::json_in::parse(doc, &whole);
        let reference = parse_with_serde(doc, &whole);
        match reason {
            Some(reason) => {
                let err = parsed.expect_err(what);
                assert!(err.contains(reason), "{what}: {err}");
                assert_eq!(reference.expect_err(what), err, "{what}: one reason");
                assert!(err.len() < 400, "{what}: a short reason");
            }
            None => {
                assert!(parsed.is_ok() && reference.is_ok(), "{what}");
            }
        }
    }
    // What a mapping does not read is only validated: both parsers pass over it.
    let projection = Projection::from_reads(&["$.id".to_string()]);
    let doc = br#"{"id": 1, "note": "\uD800", "weight": 1e400}"#;
    assert!(omniflow_mapping::json_in::parse(doc, &projection).is_ok());
    assert!(parse_with_serde(doc, &projection).is_ok());
}
