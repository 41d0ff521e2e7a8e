//! Masking of personal data and secrets before anything is recorded: values under keys
//! that name them (emails, phones, names, addresses, tokens, ...) and strings that look like
//! an email address or an international phone number, wherever they are. A masked value is
//! a pseudonym that is the same for the same value within one recording (so a customer's
//! orders still belong together) and cannot be turned back into it (keyed by a secret
//! made for the recording and never written).

use serde_json::Value;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// Keys whose values are masked (case-insensitive; `*` stands for any text).
pub const DEFAULT_MASKED: &[&str] = &[
    "*email*",
    "*phone*",
    "*name",
    "*address*",
    "*street*",
    "city",
    "zip",
    "*postal*",
    "*postcode*",
    "*token*",
    "*secret*",
    "*password*",
    "*authorization*",
    "*api_key*",
    "*apikey*",
    "*card*",
    "*iban*",
    "*birth*",
    "company",
    "note",
];

/// Keys kept as they are although a masked pattern matches them: routing reads them and
/// they name no person.
pub const DEFAULT_KEPT: &[&str] = &["source_name", "*_id", "*status*"];

/// The rules of one recording.
pub struct Masking {
    /// The user's rules first, then the defaults: `(pattern, masked)`, the first match wins.
    rules: Vec<(String, bool)>,
    key: RandomState,
}

impl Masking {
    /// The default rules plus the user's (which win): `mask` adds keys to mask, `keep`
    /// keys to keep.
    pub fn new(mask: &[String], keep: &[String]) -> Masking {
        let rule = |masked: bool| move |p: &str| (p.to_ascii_lowercase(), masked);
        let mut rules: Vec<(String, bool)> = keep.iter().map(|p| rule(false)(p)).collect();
        rules.extend(mask.iter().map(|p| rule(true)(p)));
        rules.extend(DEFAULT_KEPT.iter().map(|p| rule(false)(p)));
        rules.extend(DEFAULT_MASKED.iter().map(|p| rule(true)(p)));
        Masking {
            rules,
            key: RandomState::new(),
        }
    }

    /// Whether the value under `key` is masked whole.
    fn masks(&self, key: &str) -> bool {
        let key = key.to_ascii_lowercase();
        self.rules
            .iter()
            .find(|(pattern, _)| matches(pattern, &key))
            .is_some_and(|(_, masked)| *masked)
    }

    /// Masks a document in place.
    pub fn mask(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                self.mask_keys(map);
                for (key, inner) in map.iter_mut() {
                    match self.masks(key) {
                        true => self.mask_all(inner),
                        false => self.mask(inner),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.mask(item)),
            Value::String(text) => {
                if let Some(masked) = self.masked_text(text) {
                    *text = masked;
                }
            }
            _ => {}
        }
    }

    /// Masks every value below a masked key.
    fn mask_all(&self, value: &mut Value) {
        match value {
            Value::String(text) => *text = self.pseudonym(text),
            Value::Number(_) => *value = Value::from(0),
            Value::Object(map) => {
                self.mask_keys(map);
                map.values_mut().for_each(|v| self.mask_all(v));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.mask_all(v)),
            Value::Bool(_) | Value::Null => {}
        }
    }

    /// A key can be personal data too (an object keyed by email address).
    fn mask_keys(&self, map: &mut serde_json::Map<String, Value>) {
        let renamed: Vec<(String, String)> = map
            .keys()
            .filter_map(|k| self.masked_text(k).map(|masked| (k.clone(), masked)))
            .collect();
        for (key, masked) in renamed {
            if let Some(inner) = map.remove(&key) {
                map.insert(masked, inner);
            }
        }
    }

    /// `text` with every email address and international phone number in it replaced by
    /// its pseudonym; `None` when it holds none.
    fn masked_text(&self, text: &str) -> Option<String> {
        let found = personal_spans(text);
        if found.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in found {
            out.push_str(&text[at..start]);
            out.push_str(&self.pseudonym(&text[start..end]));
            at = end;
        }
        out.push_str(&text[at..]);
        Some(out)
    }

    /// The value's pseudonym; a pseudonym stays as it is (masking twice changes nothing).
    fn pseudonym(&self, text: &str) -> String {
        if text.is_empty() || is_pseudonym(text) {
            return text.to_string();
        }
        let hash = self.key.hash_one(text) & 0xffff_ffff;
        if text.contains('@') {
            format!("masked-{hash:08x}@example.invalid")
        } else {
            format!("masked-{hash:08x}")
        }
    }
}

/// True for a value masking made.
pub fn is_pseudonym(text: &str) -> bool {
    text.strip_prefix("masked-").is_some_and(|rest| {
        let hex = rest.strip_suffix("@example.invalid").unwrap_or(rest);
        hex.len() == 8 && hex.chars().all(|c| c.is_ascii_hexdigit())
    })
}

/// `pattern` (lower case, `*` for any text) matches the whole of `key`.
fn matches(pattern: &str, key: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == key;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !key.starts_with(first) || key.len() < first.len() + last.len() || !key.ends_with(last) {
        return false;
    }
    let mut rest = &key[first.len()..key.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(idx) => rest = &rest[idx + middle.len()..],
            None => return false,
        }
    }
    true
}

/// The byte ranges of `text` that are an email address or a phone number written
/// internationally (`+` and 8 digits or more, with spaces, dashes, dots or brackets).
fn personal_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut idx = 0;
    while idx < bytes.len() {
        if bytes[idx] == b'+' {
            let end = idx
                + 1
                + text[idx + 1..]
                    .find(|c: char| !(c.is_ascii_digit() || " -().".contains(c)))
                    .unwrap_or(text.len() - idx - 1);
            let run = text[idx..end].trim_end_matches([' ', '-', '.', '(']);
            if run.chars().filter(char::is_ascii_digit).count() >= 8 {
                found.push((idx, idx + run.len()));
                idx += run.len();
                continue;
            }
        }
        if bytes[idx] == b'@' {
            let is_local = |c: char| c.is_ascii_alphanumeric() || "._%+-'".contains(c);
            let start = text[..idx]
                .char_indices()
                .rev()
                .take_while(|(_, c)| is_local(*c))
                .last()
                .map_or(idx, |(i, _)| i);
            let is_domain = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
            let end = idx
                + 1
                + text[idx + 1..]
                    .find(|c: char| !is_domain(c))
                    .unwrap_or(text.len() - idx - 1);
            let domain = text[idx + 1..end].trim_end_matches(['.', '-']);
            let top = domain.rsplit('.').next().unwrap_or("");
            let email = start < idx
                && domain.contains('.')
                && top.len() >= 2
                && top.chars().all(|c| c.is_ascii_alphabetic());
            if email {
                let end = idx + 1 + domain.len();
                // An earlier phone run never overlaps an address (it has no `@`).
                found.push((start, end));
                idx = end;
                continue;
            }
        }
        idx += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn personal_data_is_masked_by_key_and_by_look_and_routing_fields_are_kept() {
        let masking = Masking::new(&["loyalty*".into()], &[]);
        let mut order = json!({
            "id": 5200000000101u64,
            "email": "ada@example.com",
            "source_name": "web",
            "customer": {"first_name": "Ada", "last_name": "Lovelace", "id": 7, "phone": "+44 20 7946 0958"},
            "shipping_address": {"address1": "1 Main St", "zip": 10001, "country_code": "US"},
            "note_attributes": [{"name": "gift", "value": "+1 (555) 123-4567"}],
            "loyalty_number": "LN-1",
            "financial_status": "paid",
            "line_items": [{"sku": "TEE-M", "quantity": 2, "price": "10.00"}],
            "contact": "grace@example.org"
        });
        masking.mask(&mut order);
        let text = order.to_string();
        for gone in [
            "ada@", "Ada", "Lovelace", "7946", "Main St", "10001", "555", "LN-1", "grace@",
        ] {
            assert!(!text.contains(gone), "{gone} in {text}");
        }
        assert_eq!(order["id"], 5200000000101u64);
        assert_eq!(order["source_name"], "web");
        assert_eq!(order["customer"]["id"], 7);
        assert_eq!(order["financial_status"], "paid");
        assert_eq!(
            order["line_items"][0],
            json!({"sku": "TEE-M", "quantity": 2, "price": "10.00"})
        );
        assert_eq!(order["shipping_address"]["zip"], 0);
        assert!(order["contact"]
            .as_str()
            .unwrap()
            .ends_with("@example.invalid"));
        // Inside free text, in an object's key, and after the user's own rules.
        let mut text = json!({
            "reason": "customer Ada <ada@example.com> exists, call +44 20 7946 0958.",
            "by_email": {"ada@example.com": 1},
            "tax_id": "DE123",
            "note": "keep"
        });
        let users = Masking::new(&["tax_id".into()], &["note".into()]);
        users.mask(&mut text);
        let shown = text.to_string();
        assert!(
            !shown.contains("ada@") && !shown.contains("7946") && !shown.contains("DE123"),
            "{shown}"
        );
        assert!(shown.contains("customer Ada <masked-"), "{shown}");
        assert_eq!(text["note"], "keep");
        // Masking twice changes nothing.
        let once = text.clone();
        users.mask(&mut text);
        assert_eq!(text, once);
        // A key that only looks like an address (`SKU@time`) stays.
        let mut key = json!({"key": "ITM-200105@2026-12-06T05:44:46.135Z"});
        masking.mask(&mut key);
        assert_eq!(key["key"], "ITM-200105@2026-12-06T05:44:46.135Z");
        // The same value, the same pseudonym; another recording, another one.
        let mut again = json!({"email": "ada@example.com"});
        masking.mask(&mut again);
        assert_eq!(again["email"], order["email"]);
        let mut elsewhere = json!({"email": "ada@example.com"});
        Masking::new(&[], &[]).mask(&mut elsewhere);
        assert_ne!(elsewhere["email"], order["email"]);
    }

    #[test]
    fn patterns_match_whole_keys() {
        assert!(matches("*name", "first_name"));
        assert!(!matches("*name", "name_space"));
        assert!(matches("*address*", "shipping_address"));
        assert!(matches("zip", "zip"));
        assert!(!matches("zip", "zipper"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "ac"));
    }
}
