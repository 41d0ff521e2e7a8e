//! Shopify's cursor paging: an opaque `page_info` that freezes a list's filters and the side
//! of a key it reads, and the `Link` header naming the previous and next pages.

use base64::Engine;
use serde_json::{json, Value};

/// The query keys Shopify accepts beside `page_info` (the filters travel in the cursor).
pub const WITH_PAGE_INFO: [&str; 3] = ["limit", "fields", "page_info"];

/// A list's sort key, written into cursors.
pub trait Key: Ord + Clone {
    fn to_json(&self) -> Value;
    fn from_json(value: &Value) -> Option<Self>;
}

impl Key for u64 {
    fn to_json(&self) -> Value {
        json!(self)
    }
    fn from_json(value: &Value) -> Option<u64> {
        value.as_u64()
    }
}

impl Key for (u64, u64) {
    fn to_json(&self) -> Value {
        json!([self.0, self.1])
    }
    fn from_json(value: &Value) -> Option<(u64, u64)> {
        Some((value.get(0)?.as_u64()?, value.get(1)?.as_u64()?))
    }
}

/// Which side of a key a page reads.
#[derive(Clone)]
pub enum Side<K> {
    After(K),
    Before(K),
}

/// The `page_info` token of the page on `side`, with the list's `filters`.
pub fn encode<K: Key>(filters: &Value, side: &Side<K>) -> String {
    let raw = match side {
        Side::After(k) => json!({"f": filters, "after": k.to_json()}),
        Side::Before(k) => json!({"f": filters, "before": k.to_json()}),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.to_string())
}

/// The filters and side a `page_info` token names; `None` for a token not made here.
pub fn decode<K: Key>(token: &str) -> Option<(Value, Side<K>)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    let side = match (v.get("after"), v.get("before")) {
        (Some(k), None) => Side::After(K::from_json(k)?),
        (None, Some(k)) => Side::Before(K::from_json(k)?),
        _ => return None,
    };
    Some((v.get("f")?.clone(), side))
}

/// The page `[from, to)` of `keys` (ascending): the first `limit` after a cursor's key, or
/// the last `limit` before it.
pub fn window<K: Key>(keys: &[K], cursor: Option<&Side<K>>, limit: usize) -> (usize, usize) {
    match cursor {
        None => (0, limit.min(keys.len())),
        Some(Side::After(k)) => {
            let from = keys.partition_point(|x| x <= k);
            (from, (from + limit).min(keys.len()))
        }
        Some(Side::Before(k)) => {
            let to = keys.partition_point(|x| x < k);
            (to.saturating_sub(limit), to)
        }
    }
}

/// The `Link` header of the page `[from, to)` of `keys`: `previous` when keys come before
/// it and `next` when keys follow; `url` makes a page's address from its side.
pub fn link<K: Key>(
    keys: &[K],
    (from, to): (usize, usize),
    url: impl Fn(&Side<K>) -> String,
) -> Option<String> {
    let mut links = Vec::new();
    if from > 0 && from < to {
        links.push(format!(
            "<{}>; rel=\"previous\"",
            url(&Side::Before(keys[from].clone()))
        ));
    }
    if to < keys.len() && from < to {
        links.push(format!(
            "<{}>; rel=\"next\"",
            url(&Side::After(keys[to - 1].clone()))
        ));
    }
    (!links.is_empty()).then(|| links.join(", "))
}

/// The filters frozen in a request's `page_info`, or read from its query by `filters`;
/// `Err` with Shopify's 400 body for a key not allowed beside `page_info` or a bad token.
pub fn filters_or_cursor<K: Key>(
    pairs: &[(String, String)],
    filters: &[&str],
) -> Result<(Value, Option<Side<K>>), Value> {
    match crate::param(pairs, "page_info") {
        Some(token) => {
            if let Some((k, _)) = pairs
                .iter()
                .find(|(k, _)| !WITH_PAGE_INFO.contains(&k.as_str()))
            {
                return Err(
                    json!({"page_info": [format!("{k} cannot be passed when page_info is present")]}),
                );
            }
            match decode(token) {
                Some((f, side)) => Ok((f, Some(side))),
                None => Err(json!({"page_info": ["Invalid value."]})),
            }
        }
        None => {
            let mut f = serde_json::Map::new();
            for key in filters {
                if let Some(v) = crate::param(pairs, key) {
                    f.insert(key.to_string(), json!(v));
                }
            }
            Ok((Value::Object(f), None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_forward_and_back_over_the_same_keys() {
        let keys: Vec<u64> = (10..17).collect();
        let mut seen = Vec::new();
        let mut cursor: Option<Side<u64>> = None;
        let last = loop {
            let (from, to) = window(&keys, cursor.as_ref(), 3);
            seen.extend_from_slice(&keys[from..to]);
            if to == keys.len() {
                break (from, to);
            }
            cursor = Some(Side::After(keys[to - 1]));
        };
        assert_eq!(seen, keys);
        // Back from the last page by `previous`.
        let mut back = Vec::new();
        let (mut from, mut to) = last;
        while from > 0 {
            let (f, t) = window(&keys, Some(&Side::Before(keys[from])), 3);
            back.splice(0..0, keys[f..t].iter().copied());
            (from, to) = (f, t);
        }
        assert_eq!(to, 3);
        back.extend_from_slice(&keys[last.0..last.1]);
        assert_eq!(back, keys);
        let token = encode(&json!({"a": "b"}), &Side::Before((3u64, 4u64)));
        let (f, side) = decode::<(u64, u64)>(&token).unwrap();
        assert_eq!(f, json!({"a": "b"}));
        assert!(matches!(side, Side::Before((3, 4))));
        assert!(decode::<u64>("not a token").is_none());
    }
}
