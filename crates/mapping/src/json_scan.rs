//! A projected JSON scanner for the hot path: one pass over the bytes, keeping only what
//! the projection asks for and borrowing strings without escapes. It validates everything
//! it skips; on anything it is not sure about it returns `None` and the caller falls back
//! to serde_json, which then also produces the precise error message.

use crate::intern::{same_name, same_text};
use crate::projection::Projection;
use crate::value::Val;
use std::borrow::Cow;

/// Deepest nesting scanned; deeper documents go to serde_json (which limits at 128).
const MAX_DEPTH: usize = 120;

/// Scans a whole document; `None` when serde_json should decide.
pub fn scan<'a>(bytes: &'a [u8], projection: &Projection) -> Option<Val<'a>> {
    // Vectorised validation: the whole document once, so every slice below is text.
    let text = simdutf8::basic::from_utf8(bytes).ok()?;
    let mut scanner = Scanner {
        text,
        bytes,
        pos: 0,
        // Room for a typical document's open objects and lists, allocated once.
        fields: Vec::with_capacity(64),
        items: Vec::with_capacity(32),
    };
    scanner.ws();
    let value = scanner.value(Some(projection), 0)?;
    scanner.ws();
    (scanner.pos == bytes.len()).then_some(value)
}

const LOW: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Bytes of `x` equal to `byte` get their high bit set (exact: no false positives).
fn equal_mask(x: u64, byte: u8) -> u64 {
    let y = x ^ (LOW * byte as u64);
    !(((y & !HIGH).wrapping_add(!HIGH)) | y) & HIGH
}

/// The first position from `pos` holding a quote, a backslash or a control byte (or the
/// end), eight bytes at a time.
#[inline(always)]
fn plain_run_end(bytes: &[u8], mut pos: usize) -> usize {
    while pos + 8 <= bytes.len() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[pos..pos + 8]);
        let x = u64::from_le_bytes(word);
        // Bytes below 0x20: their top three bits are zero.
        let control = !(((x & !HIGH).wrapping_add(LOW * 0x60)) | x) & HIGH;
        let hits = control | equal_mask(x, b'"') | equal_mask(x, b'\\');
        if hits != 0 {
            return pos + (hits.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while pos < bytes.len() && !matches!(bytes[pos], b'"' | b'\\' | 0x00..=0x1f) {
        pos += 1;
    }
    pos
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Kept fields and items of the containers being scanned, innermost last: each
    /// container becomes one exact allocation when it closes.
    fields: Vec<(Cow<'a, str>, Val<'a>)>,
    items: Vec<Val<'a>>,
}

impl<'a> Scanner<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.bytes.get(self.pos) == Some(&byte)).then(|| self.pos += 1)
    }

    /// A value; `keep` is `None` when it is only validated and skipped. Inlined into
    /// the container loops, so scalars never travel through a returned value in memory.
    #[inline(always)]
    fn value(&mut self, keep: Option<&Projection>, depth: usize) -> Option<Val<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        match *self.bytes.get(self.pos)? {
            b'{' => self.object(keep, depth),
            b'[' => self.array(keep, depth),
            b'"' => {
                let s = self.string()?;
                Some(if keep.is_some() {
                    Val::Str(s)
                } else {
                    Val::Null
                })
            }
            b't' => self.literal(b"true", Val::Bool(true)),
            b'f' => self.literal(b"false", Val::Bool(false)),
            b'n' => self.literal(b"null", Val::Null),
            b'-' | b'0'..=b'9' => self.number(keep.is_some()),
            _ => None,
        }
    }

    fn literal<const N: usize>(&mut self, word: &[u8; N], value: Val<'a>) -> Option<Val<'a>> {
        let found: [u8; N] = self.bytes.get(self.pos..self.pos + N)?.try_into().ok()?;
        if found != *word {
            return None;
        }
        self.pos += N;
        Some(value)
    }

    #[inline(never)]
    fn object(&mut self, keep: Option<&Projection>, depth: usize) -> Option<Val<'a>> {
        self.pos += 1;
        let mark = self.fields.len();
        // Where the projection guesses the next kept key from (the start), and the first
        // 64 fields already kept.
        let (mut last, mut kept_bits) = (0, 0u64);
        self.ws();
        if self.eat(b'}').is_none() {
            loop {
                self.ws();
                let key = self.string()?;
                self.ws();
                self.eat(b':')?;
                self.ws();
                match keep.and_then(|p| p.kept_next(&key, &mut last)) {
                    // A key read twice: serde_json's path refuses the document, saying so.
                    Some((name, _, at)) if self.seen(mark, name, &key, at, &mut kept_bits) => {
                        return None;
                    }
                    Some((name, child, _)) => {
                        let key = name.map_or(key, Cow::Borrowed);
                        // Strings and numbers, most kept fields, are built in place.
                        match self.bytes.get(self.pos) {
                            Some(b'"') => {
                                let text = self.string()?;
                                self.fields.push((key, Val::Str(text)));
                            }
                            Some(b'-' | b'0'..=b'9') => {
                                let number = self.number(true)?;
                                self.fields.push((key, number));
                            }
                            _ => {
                                let value = self.value(Some(child), depth + 1)?;
                                self.fields.push((key, value));
                            }
                        }
                    }
                    None => {
                        self.value(None, depth + 1)?;
                    }
                }
                self.ws();
                match *self.bytes.get(self.pos)? {
                    b',' => self.pos += 1,
                    b'}' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        Some(if keep.is_some() {
            Val::Obj(self.fields.drain(mark..).collect())
        } else {
            Val::Null
        })
    }

    /// True when the object opened at `mark` already holds this key: by the projection
    /// field's bit in `kept_bits` (marked here), by interned address past 64 fields, by
    /// text when the whole object is kept.
    #[inline]
    fn seen(
        &self,
        mark: usize,
        name: Option<&'static str>,
        key: &str,
        at: usize,
        kept_bits: &mut u64,
    ) -> bool {
        if at < 64 {
            let bit = 1u64 << at;
            let seen = *kept_bits & bit != 0;
            *kept_bits |= bit;
            return seen;
        }
        let fields = &self.fields[mark..];
        match name {
            Some(name) => fields.iter().any(|(k, _)| same_name(k, name)),
            None => fields.iter().any(|(k, _)| same_text(k, key)),
        }
    }

    #[inline(never)]
    fn array(&mut self, keep: Option<&Projection>, depth: usize) -> Option<Val<'a>> {
        self.pos += 1;
        let element = keep.and_then(Projection::items_projection);
        let mark = self.items.len();
        self.ws();
        if self.eat(b']').is_none() {
            loop {
                self.ws();
                let value = self.value(element, depth + 1)?;
                if element.is_some() {
                    self.items.push(value);
                }
                self.ws();
                match *self.bytes.get(self.pos)? {
                    b',' => self.pos += 1,
                    b']' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        Some(if keep.is_some() {
            Val::List(self.items.drain(mark..).collect())
        } else {
            Val::Null
        })
    }

    /// A string, borrowed when it has no escapes.
    #[inline(always)]
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.pos;
        self.pos = plain_run_end(self.bytes, self.pos);
        if self.bytes.get(self.pos) == Some(&b'"') {
            let s = self.text.get(start..self.pos)?;
            self.pos += 1;
            return Some(Cow::Borrowed(s));
        }
        self.escaped_string(start)
    }

    /// The rest of a string that holds an escape, from its opening quote's next byte.
    #[inline(never)]
    fn escaped_string(&mut self, start: usize) -> Option<Cow<'a, str>> {
        if *self.bytes.get(self.pos)? != b'\\' {
            // A control byte, or the end of the input.
            return None;
        }
        let mut out = String::from(&self.text[start..self.pos]);
        loop {
            match *self.bytes.get(self.pos)? {
                b'"' => {
                    self.pos += 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => {
                    self.pos += 1;
                    let escape = *self.bytes.get(self.pos)?;
                    self.pos += 1;
                    match escape {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let high = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&high) {
                                if self.bytes.get(self.pos..self.pos + 2)? != b"\\u" {
                                    return None;
                                }
                                self.pos += 2;
                                let low = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return None;
                                }
                                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                            } else if (0xDC00..0xE000).contains(&high) {
                                return None;
                            } else {
                                high
                            };
                            out.push(char::from_u32(code)?);
                        }
                        _ => return None,
                    }
                }
                0x00..=0x1f => return None,
                _ => {
                    // Copy the run up to the next quote or backslash in one go.
                    let run_start = self.pos;
                    self.pos = plain_run_end(self.bytes, self.pos);
                    out.push_str(&self.text[run_start..self.pos]);
                }
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.pos..self.pos + 4)?;
        let value = u32::from_str_radix(digits, 16).ok()?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.pos += 4;
        Some(value)
    }

    /// A number with JSON's grammar: int when it is an integer that fits, else an exact
    /// decimal (never through a float); a skipped number is only validated.
    fn number(&mut self, keep: bool) -> Option<Val<'a>> {
        let start = self.pos;
        let negative = self.eat(b'-').is_some();
        let int_start = self.pos;
        match *self.bytes.get(self.pos)? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        let int_end = self.pos;
        let mut integer = true;
        if self.eat(b'.').is_some() {
            integer = false;
            if !self.bytes.get(self.pos)?.is_ascii_digit() {
                return None;
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            integer = false;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            if !self.bytes.get(self.pos)?.is_ascii_digit() {
                return None;
            }
            self.digits();
        }
        if !keep {
            return Some(Val::Null);
        }
        if integer && int_end - int_start <= 18 {
            // At most 18 digits always fit an i64.
            let magnitude = self.bytes[int_start..int_end]
                .iter()
                .fold(0i64, |acc, digit| acc * 10 + i64::from(digit - b'0'));
            return Some(Val::Int(if negative { -magnitude } else { magnitude }));
        }
        // Every digit kept, or `None` so the fallback refuses it with the reason.
        crate::json_number::value(&self.text[start..self.pos]).ok()
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys in the projection's order, out of it, repeated, unknown, and past the 64
    /// fields a bit marks: a key the mapping reads given twice refuses the document (senders
    /// that keep the last copy would read another value than the first), one it does not
    /// read is passed over.
    #[test]
    fn a_key_read_twice_refuses_the_document() {
        let names: Vec<String> = (0..70).map(|i| format!("f{i}")).collect();
        let wide =
            Projection::from_reads(&names.iter().map(|n| format!("$.{n}")).collect::<Vec<_>>());
        let narrow = Projection::from_reads(&["$.a".to_string(), "$.b".to_string()]);
        let whole = Projection::whole();
        // Each copy of a key holds a value of its own: only the first may be kept.
        let wide_doc = |order: &mut dyn Iterator<Item = usize>| {
            let fields: Vec<String> = order
                .enumerate()
                .map(|(n, i)| format!(r#""f{i}": {n}"#))
                .collect();
            format!("{{{}}}", fields.join(", "))
        };
        let docs = [
            (r#"{"a": 1, "b": 2}"#.to_string(), &narrow),
            (r#"{"b": 2, "a": 1}"#.to_string(), &narrow),
            (r#"{"a": 1, "x": 2, "x": 3, "b": 2}"#.to_string(), &narrow),
            (wide_doc(&mut (0..70)), &wide),
            (wide_doc(&mut (0..70).rev()), &wide),
        ];
        for (doc, projection) in docs {
            let ours = scan(doc.as_bytes(), projection).unwrap();
            let theirs = crate::json_in::parse_with_serde(doc.as_bytes(), projection).unwrap();
            assert!(
                crate::value::equal(&ours, &theirs),
                "{doc}: {ours:?} vs {theirs:?}"
            );
        }
        let repeated = [
            (r#"{"a": 1, "a": 3, "b": 2, "b": 4}"#.to_string(), &narrow),
            (
                r#"{"b": 2, "x": 0, "a": 1, "b": 5, "a": 6}"#.to_string(),
                &narrow,
            ),
            (
                r#"{"x": {"a": 9}, "a": 1, "y": [1], "a": 2}"#.to_string(),
                &narrow,
            ),
            (r#"{"a": 1, "c": 2, "a": 3, "c": 4}"#.to_string(), &whole),
            (wide_doc(&mut (0..70).chain(0..70)), &wide),
            (wide_doc(&mut (0..70).rev().chain(60..70)), &wide),
            (
                wide_doc(&mut (0..70).map(|i| (i * 7) % 70).chain([65, 3, 69])),
                &wide,
            ),
        ];
        for (doc, projection) in repeated {
            assert!(scan(doc.as_bytes(), projection).is_none(), "{doc}");
            let refused = crate::json_in::parse(doc.as_bytes(), projection).unwrap_err();
            assert!(refused.contains("given twice"), "{doc}: {refused}");
        }
    }

    #[test]
    fn numbers_read_like_serde_json() {
        let whole = Projection::whole();
        for text in [
            "0",
            "-0",
            "7",
            "-42",
            "999999999999999999",
            "-999999999999999999",
            "1000000000000000000",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "12.50",
            "-0.001",
            "1e3",
            "2.5E-2",
        ] {
            let ours = scan(text.as_bytes(), &whole).unwrap();
            let theirs = crate::json_in::parse_with_serde(text.as_bytes(), &whole).unwrap();
            assert!(
                crate::value::equal(&ours, &theirs),
                "{text}: {ours:?} vs {theirs:?}"
            );
            // serde_json reads `-0` as a float; here it is the integer 0 (equal above).
            if text != "-0" {
                assert_eq!(
                    std::mem::discriminant(&ours),
                    std::mem::discriminant(&theirs),
                    "{text}"
                );
            }
        }
        for bad in ["-", "01", "1.", ".5", "1e", "--1", "1e+"] {
            assert!(scan(bad.as_bytes(), &whole).is_none(), "{bad}");
        }
    }

    #[test]
    fn finds_the_end_of_plain_runs() {
        let cases: &[&[u8]] = &[
            b"abcdefghijklmnop\"",
            b"abc\\def",
            b"0123456\n789",
            b"",
            b"no end at all here",
            b"\x1f",
            b"12345678\"",
        ];
        for case in cases {
            let expected = case
                .iter()
                .position(|b| matches!(b, b'"' | b'\\' | 0x00..=0x1f))
                .unwrap_or(case.len());
            assert_eq!(
                plain_run_end(case, 0),
                expected,
                "{:?}",
                String::from_utf8_lossy(case)
            );
        }
        // Every byte value in every lane position.
        for byte in 0u8..=255 {
            for lane in 0..8 {
                let mut word = [b'a'; 9];
                word[lane] = byte;
                let expected = if matches!(byte, b'"' | b'\\' | 0x00..=0x1f) {
                    lane
                } else {
                    9
                };
                assert_eq!(plain_run_end(&word, 0), expected, "byte {byte} at {lane}");
            }
        }
    }
}
