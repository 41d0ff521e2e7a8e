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
}
