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
    masked: Vec<String>,
    kept: Vec<String>,
    key: RandomState,
}

impl Masking {
    /// The default rules plus the user's: `mask` adds keys to mask, `keep` keys to keep.
    pub fn new(mask: &[String], keep: &[String]) -> Masking {
        let lower = |list: &mut dyn Iterator<Item = &str>| -> Vec<String> {
            list.map(str::to_ascii_lowercase).collect()
        };
        Masking {
            masked: lower(
                &mut DEFAULT_MASKED
                    .iter()
                    .copied()
                    .chain(mask.iter().map(String::as_str)),
            ),
            kept: lower(
                &mut DEFAULT_KEPT
                    .iter()
                    .copied()
                    .chain(keep.iter().map(String::as_str)),
            ),
            key: RandomState::new(),
        }
    }

    /// Masks a document in place.
    pub fn mask(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map.iter_mut() {
                    let key = key.to_ascii_lowercase();
                    if self.kept.iter().any(|p| matches(p, &key)) {
                        self.mask(inner);
                    } else if self.masked.iter().any(|p| matches(p, &key)) {
                        self.mask_all(inner);
                    } else {
                        self.mask(inner);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.mask(item)),
            Value::String(text) if looks_personal(text) => *text = self.pseudonym(text),
            _ => {}
        }
    }

    /// Masks every value below a masked key.
    fn mask_all(&self, value: &mut Value) {
        match value {
            Value::String(text) => *text = self.pseudonym(text),
            Value::Number(_) => *value = Value::from(0),
            Value::Object(map) => map.values_mut().for_each(|v| self.mask_all(v)),
            Value::Array(items) => items.iter_mut().for_each(|v| self.mask_all(v)),
            Value::Bool(_) | Value::Null => {}
        }
    }

    fn pseudonym(&self, text: &str) -> String {
        if text.is_empty() {
            return String::new();
        }
        let hash = self.key.hash_one(text) & 0xffff_ffff;
        if text.contains('@') {
            format!("masked-{hash:08x}@example.invalid")
        } else {
            format!("masked-{hash:08x}")
        }
    }
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

/// An email address, or a phone number written internationally (`+` and 8 digits or more).
fn looks_personal(text: &str) -> bool {
    let email = text.split_once('@').is_some_and(|(local, domain)| {
        let top = domain.rsplit('.').next().unwrap_or("");
        !local.is_empty()
            && !local.contains(char::is_whitespace)
            && domain.contains('.')
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            && top.len() >= 2
            && top.chars().all(|c| c.is_ascii_alphabetic())
    });
    let phone = text.strip_prefix('+').is_some_and(|rest| {
        rest.chars()
            .all(|c| c.is_ascii_digit() || " -().".contains(c))
            && rest.chars().filter(char::is_ascii_digit).count() >= 8
    });
    email || phone
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
