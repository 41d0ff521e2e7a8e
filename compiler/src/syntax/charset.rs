//! Outside strings, comments and JSONPaths a flow file is ASCII: names are ASCII letters,
//! digits and `_`; whitespace is space, tab, line feed and carriage return. The grammar reads
//! wider classes, each one test where the ASCII ranges cost up to four (a twentieth of a
//! check): Unicode's `Pattern_White_Space` as whitespace, `XID_Start`/`XID_Continue` in
//! names. What the wider classes let through is refused here, before the parse, so the
//! language stays as written and the rest of the file is still read.

use super::parse::{jsonpath_extent, line_end, string_close};

/// The `Pattern_White_Space` characters beyond space, tab, LF and CR, with their Unicode
/// names.
const FOREIGN_WHITESPACE: [(char, &str); 7] = [
    ('\u{0B}', "LINE TABULATION"),
    ('\u{0C}', "FORM FEED"),
    ('\u{85}', "NEXT LINE"),
    ('\u{200E}', "LEFT-TO-RIGHT MARK"),
    ('\u{200F}', "RIGHT-TO-LEFT MARK"),
    ('\u{2028}', "LINE SEPARATOR"),
    ('\u{2029}', "PARAGRAPH SEPARATOR"),
];

/// A character the grammar read as whitespace or as part of a name that a flow file may
/// hold only in a string, a comment or a JSONPath: the first of its kind in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Misplaced {
    /// Byte offset of the first one.
    pub at: usize,
    pub ch: char,
    /// How many of its kind (whitespace, or name characters) stand outside strings,
    /// comments and JSONPaths in the file.
    pub count: usize,
}

impl Misplaced {
    /// The report's message (without the count), label and help.
    pub fn describe(&self) -> (String, &'static str, String) {
        let code = self.ch as u32;
        match FOREIGN_WHITESPACE.iter().find(|(ch, _)| *ch == self.ch) {
            Some((_, name)) => (
                format!("U+{code:04X} {name} is not whitespace in a flow file"),
                "not a space, tab or line break",
                format!(
                    "use a space, a tab or a line break; in a string write it as `\\u{code:04X}`"
                ),
            ),
            None => (
                format!(
                    "`{}` (U+{code:04X}) can stand only in a string or a comment",
                    self.ch
                ),
                "not an ASCII letter, digit or `_`",
                "names are ASCII letters, digits and `_`; other text goes in a string".to_string(),
            ),
        }
    }
}

/// Whether the grammar skips `ch` as whitespace (`Pattern_White_Space`).
pub fn skipped(ch: char) -> bool {
    matches!(ch, ' ' | '\t' | '\n' | '\r') || foreign_whitespace(ch)
}

/// The characters outside strings, comments and JSONPaths that the grammar accepts and a
/// flow file does not: the first whitespace and the first name character, each with how
/// many of its kind there are. An ASCII file without vertical tabs and form feeds (nearly
/// every file) costs two quick passes over its bytes (`is_ascii`, then a byte search).
pub fn misplaced(text: &str) -> Vec<Misplaced> {
    let bytes = text.as_bytes();
    if text.is_ascii() && memchr::memchr2(0x0B, 0x0C, bytes).is_none() {
        return Vec::new();
    }
    // [whitespace, name characters]
    let mut found: [Option<Misplaced>; 2] = [None, None];
    let mut idx = 0;
    while idx < bytes.len() {
        match bytes[idx] {
            b'"' => idx = string_close(bytes, idx),
            b'/' if bytes.get(idx + 1) == Some(&b'/') => idx = line_end(bytes, idx),
            b'$' => {
                idx = jsonpath_extent(bytes, idx).0;
                continue;
            }
            byte if byte.is_ascii() && !matches!(byte, 0x0B | 0x0C) => {}
            _ => {
                if let Some(ch) = text.get(idx..).and_then(|rest| rest.chars().next()) {
                    let kind = if foreign_whitespace(ch) {
                        Some(0)
                    } else {
                        pest::unicode::XID_CONTINUE(ch).then_some(1)
                    };
                    if let Some(kind) = kind {
                        found[kind]
                            .get_or_insert(Misplaced {
                                at: idx,
                                ch,
                                count: 0,
                            })
                            .count += 1;
                    }
                    idx += ch.len_utf8();
                    continue;
                }
            }
        }
        idx += 1;
    }
    found.into_iter().flatten().collect()
}

fn foreign_whitespace(ch: char) -> bool {
    FOREIGN_WHITESPACE.iter().any(|(c, _)| *c == ch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pest::unicode::{PATTERN_WHITE_SPACE, XID_CONTINUE, XID_START};

    #[test]
    fn the_grammar_classes_are_the_ascii_ones_on_ascii() {
        for ch in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(skipped(ch), PATTERN_WHITE_SPACE(ch), "{ch:?}");
        }
        for ch in (0..0x80u8).map(char::from) {
            let name_char = ch.is_ascii_alphanumeric() || ch == '_';
            assert_eq!(XID_CONTINUE(ch), name_char, "{ch:?}");
            assert_eq!(
                XID_START(ch) || ch == '_',
                name_char && !ch.is_ascii_digit(),
                "{ch:?}"
            );
        }
    }

    #[test]
    fn each_foreign_whitespace_and_name_character_is_found_where_it_could_stand() {
        let cases = FOREIGN_WHITESPACE
            .iter()
            .map(|(ch, _)| format!("flow a {{\n  source s ={ch}c.orders\n}}\n"))
            .chain(
                ["é", "ß", "Ω", "名"]
                    .map(|ch| format!("flow a {{\n  source s ={ch}c.orders\n}}\n")),
            );
        for text in cases {
            let found = misplaced(&text);
            assert_eq!(found.len(), 1, "{text:?}");
            let found = found[0];
            assert_eq!((found.at, found.count), (21, 1), "{text:?}");
            assert!(text[21..].starts_with(found.ch));
        }
        let (message, ..) = misplaced("a =\u{2028}1")[0].describe();
        assert_eq!(
            message,
            "U+2028 LINE SEPARATOR is not whitespace in a flow file"
        );
        let (message, ..) = misplaced("café = 1")[0].describe();
        assert_eq!(
            message,
            "`é` (U+00E9) can stand only in a string or a comment"
        );
    }

    #[test]
    fn strings_comments_and_jsonpaths_may_hold_them() {
        for ch in FOREIGN_WHITESPACE
            .map(|(ch, _)| ch)
            .into_iter()
            .chain(['é', '€', '名'])
        {
            for text in [
                format!("x = \"a{ch}b\"\n"),
                format!("x = \"a\\\"{ch}\"\n"),
                format!("// a{ch}b\nx = 1\n"),
                format!("x = $['a{ch}b']\n"),
                format!("x = $[?@.a == \"{ch}\"]\n"),
            ] {
                assert_eq!(misplaced(&text), [], "{text:?}");
            }
        }
    }

    #[test]
    fn other_characters_are_left_to_the_grammar_and_every_one_is_counted() {
        // Not whitespace and not in a name: the grammar refuses them itself.
        for text in [
            "a = 1\r\n\tb = 2\n",
            "x = “quoted”",
            "a\u{A0}= 1",
            "a → b",
            "x = 1 + 😀",
        ] {
            assert_eq!(misplaced(text), [], "{text:?}");
        }
        let found = misplaced("aé =\u{0C}1\u{2028}\u{2029} é");
        let found: Vec<_> = found.iter().map(|m| (m.at, m.ch, m.count)).collect();
        assert_eq!(found, [(5, '\u{0C}', 3), (1, 'é', 2)]);
        // After a string that ends at its line, the next line is read again.
        let found = misplaced("x = \"open\n\u{85}y");
        assert_eq!((found[0].at, found[0].ch), (10, '\u{85}'));
    }
}
