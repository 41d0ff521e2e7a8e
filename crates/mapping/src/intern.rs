//! Interned names: schema fields, projected keys, table keys and literals live for the
//! whole process, once per distinct text, so values borrow them without copying and a
//! field lookup can match a key by address before comparing text.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

static NAMES: LazyLock<Mutex<HashSet<&'static str>>> = LazyLock::new(Mutex::default);

/// The one `'static` copy of a text.
pub fn intern(text: &str) -> &'static str {
    let mut names = NAMES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(name) = names.get(text) {
        return name;
    }
    let name: &'static str = Box::leak(text.to_string().into_boxed_str());
    names.insert(name);
    name
}

/// True when `key` is the interned `name` itself (same address and length).
#[inline]
pub fn same_name(key: &str, name: &'static str) -> bool {
    std::ptr::eq(key.as_ptr(), name.as_ptr()) && key.len() == name.len()
}

/// True when two texts are equal, compared in place a word at a time: keys and field
/// names are short, and a call to `memcmp` costs more than the comparison.
#[inline(always)]
pub fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word4 = |s: &[u8], at: usize| u32::from_le_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]]);
    let word8 = |s: &[u8], at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&s[at..at + 8]);
        u64::from_le_bytes(word)
    };
    match n {
        0 => true,
        // The first, middle and last bytes are every byte of a text this short.
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        // Two overlapping words cover the whole text.
        4..=7 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_copy_per_text() {
        let a = intern("sku");
        let b = intern(&String::from("sku"));
        assert!(same_name(a, b));
        assert!(!same_name(String::from("sku").as_str(), a));
        assert!(!same_name(intern("sk"), a));
    }

    /// Every length up to past two words, with a difference at every position.
    #[test]
    fn same_text_compares_every_byte() {
        for n in 0..=40 {
            let text: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            assert!(same_text(&text, &text.clone()), "{n}");
            assert!(!same_text(&text, &format!("{text}x")), "{n}");
            for at in 0..n {
                let mut other = text.clone().into_bytes();
                other[at] = b'#';
                let other = String::from_utf8(other).unwrap();
                assert!(!same_text(&text, &other), "{n} at {at}");
            }
        }
    }
}
