//! Text that came from outside (cursor positions and ids a remote API chose, message keys)
//! in PostgreSQL's `text`, which cannot hold NUL: an escape that changes no string
//! without NUL or U+0001 and maps every string to one stored form and back.

use std::borrow::Cow;

/// The escape character: U+0001 (itself stored doubled).
const ESCAPE: char = '\u{1}';

/// The stored form of `text`.
pub fn stored(text: &str) -> Cow<'_, str> {
    if !text.contains(['\0', ESCAPE]) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        match c {
            '\0' => out.push_str("\u{1}0"),
            ESCAPE => out.push_str("\u{1}\u{1}"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The text a stored form stands for.
pub fn loaded(stored: String) -> String {
    if !stored.contains(ESCAPE) {
        return stored;
    }
    let mut out = String::with_capacity(stored.len());
    let mut chars = stored.chars();
    while let Some(c) = chars.next() {
        match (c, c == ESCAPE) {
            (_, true) => match chars.next() {
                Some('0') => out.push('\0'),
                Some(other) => out.push(other),
                None => {}
            },
            (c, false) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{loaded, stored};

    #[test]
    fn every_text_comes_back_and_no_stored_form_holds_nul() {
        for text in [
            "",
            "plain",
            "a\0b",
            "\0",
            "\u{1}",
            "\u{1}0",
            "\0\u{1}\0",
            "x\u{1}\u{1}y",
            "é\0ü",
        ] {
            let kept = stored(text);
            assert!(!kept.contains('\0'), "{text:?}");
            assert_eq!(loaded(kept.into_owned()), text);
        }
        // Distinct texts stay distinct.
        assert_ne!(stored("a\0"), stored("a\u{1}0"));
        assert!(matches!(stored("plain"), std::borrow::Cow::Borrowed(_)));
    }
}
