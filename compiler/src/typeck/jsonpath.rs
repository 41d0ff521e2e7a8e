//! Whether a JSONPath is well formed (RFC 9535, as jsonpath-rust reads it at run time).
//! Most paths in a flow are plain (`$.a.b`, `$.items[*].sku`, `$.lines[0]`); those are
//! recognised by a scan, and only the others go through jsonpath-rust's parser.

use jsonpath_rust::parser::errors::JsonPathError;

/// `Ok` when `text` is a JSONPath query run accepts.
pub fn parses(text: &str) -> Result<(), JsonPathError> {
    if plain(text) {
        return Ok(());
    }
    jsonpath_rust::parser::parse_json_path(text).map(|_| ())
}

/// `$` followed only by `.name` (a member-name shorthand of ASCII letters, digits and `_`,
/// not starting with a digit), `[*]` and `[N]` (0, or up to nine digits without a leading
/// zero): segments every RFC 9535 parser accepts as written.
fn plain(text: &str) -> bool {
    let Some(rest) = text.strip_prefix('$') else {
        return false;
    };
    let bytes = rest.as_bytes();
    let mut idx = 0;
    while idx < bytes.len() {
        match bytes[idx] {
            b'.' => {
                idx += 1;
                match bytes.get(idx) {
                    Some(first) if first.is_ascii_alphabetic() || *first == b'_' => idx += 1,
                    _ => return false,
                }
                while idx < bytes.len()
                    && (bytes[idx].is_ascii_alphanumeric() || bytes[idx] == b'_')
                {
                    idx += 1;
                }
            }
            b'[' => {
                let Some(close) = bytes[idx..].iter().position(|b| *b == b']') else {
                    return false;
                };
                let inner = &bytes[idx + 1..idx + close];
                let index = !inner.is_empty()
                    && inner.len() <= 9
                    && inner.iter().all(u8::is_ascii_digit)
                    && (inner[0] != b'0' || inner.len() == 1);
                if inner != b"*" && !index {
                    return false;
                }
                idx += close + 1;
            }
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_skip_the_parser_and_others_do_not() {
        for path in [
            "$",
            "$.a",
            "$._x1.b_2",
            "$.items[*].sku",
            "$.lines[0]",
            "$[12][*]",
        ] {
            assert!(plain(path), "{path}");
            assert!(parses(path).is_ok(), "{path}");
        }
        for path in [
            "$.1a",
            "$..a",
            "$.a[01]",
            "$.a[-1]",
            "$.a[ 1]",
            "$['a']",
            "$.",
            "a",
            "$.é",
            "$[1234567890]",
        ] {
            assert!(!plain(path), "{path}");
        }
        assert!(parses("$.a[?@.b > 1]").is_ok());
        assert!(parses("$.a[").is_err());
        assert!(parses("$.").is_err());
    }

    /// The deepest path the bounds let through parses, on a test thread's small stack.
    #[test]
    fn the_deepest_path_allowed_parses_without_exhausting_the_stack() {
        let depth = crate::ir::expr::MAX_JSONPATH_NESTING - 1;
        let path = format!("$[?{}@.a > 1{}]", "(".repeat(depth), ")".repeat(depth));
        assert!(crate::ir::expr::jsonpath_bounds(&path).is_ok());
        assert!(parses(&path).is_ok(), "{path}");
    }

    /// Every string of up to seven characters over the characters plain paths are made of,
    /// starting with `$` (others are never plain): whatever the scan takes as plain,
    /// jsonpath-rust parses too.
    #[test]
    fn whatever_the_scan_takes_the_parser_takes() {
        fn walk(text: &mut String, checked: &mut usize) {
            if plain(text) {
                assert!(
                    jsonpath_rust::parser::parse_json_path(text).is_ok(),
                    "taken as plain but refused by jsonpath-rust: {text}"
                );
                *checked += 1;
            }
            if text.len() == 7 {
                return;
            }
            for ch in "$.[]*a_09 ".chars() {
                text.push(ch);
                walk(text, checked);
                text.pop();
            }
        }
        let mut checked = 0;
        walk(&mut "$".to_string(), &mut checked);
        assert!(checked > 100, "only {checked} plain paths were generated");
    }
}
