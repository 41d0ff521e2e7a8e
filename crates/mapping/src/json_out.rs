//! Writes values as compact JSON straight into a byte buffer.

use crate::value::Val;

/// Appends the JSON text of a value.
pub fn write(out: &mut Vec<u8>, value: &Val) {
    match value {
        Val::Null => out.extend_from_slice(b"null"),
        Val::Bool(true) => out.extend_from_slice(b"true"),
        Val::Bool(false) => out.extend_from_slice(b"false"),
        Val::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        Val::Dec(d) => out.extend_from_slice(d.normalize().to_string().as_bytes()),
        Val::Str(s) => write_str(out, s),
        Val::Money(money) => {
            out.extend_from_slice(b"{\"amount\":");
            out.extend_from_slice(itoa::Buffer::new().format(money.amount).as_bytes());
            out.extend_from_slice(b",\"currency\":");
            write_str(out, &money.currency);
            out.push(b'}');
        }
        Val::List(items) => {
            out.push(b'[');
            for (idx, item) in items.iter().enumerate() {
                if idx > 0 {
                    out.push(b',');
                }
                write(out, item);
            }
            out.push(b']');
        }
        Val::Obj(fields) => {
            out.push(b'{');
            for (idx, (key, item)) in fields.iter().enumerate() {
                if idx > 0 {
                    out.push(b',');
                }
                write_str(out, key);
                out.push(b':');
                // Most fields are strings and integers: written here, without a call.
                match item {
                    Val::Str(s) => write_str(out, s),
                    Val::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
                    other => write(out, other),
                }
            }
            out.push(b'}');
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

const LOW: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `x` that is a control character, `"` or `\\`.
#[inline(always)]
fn escape_bits(x: u64) -> u64 {
    let control = x.wrapping_sub(LOW * 0x20) & !x;
    let quote = (x ^ (LOW * b'"' as u64)).wrapping_sub(LOW) & !(x ^ (LOW * b'"' as u64));
    let slash = (x ^ (LOW * b'\\' as u64)).wrapping_sub(LOW) & !(x ^ (LOW * b'\\' as u64));
    (control | quote | slash) & HIGH
}

/// True when any byte is a control character, `"` or `\\`; eight bytes at a time without a
/// branch per word. The last word overlaps the one before it, so no byte is read alone;
/// a string shorter than a word is packed into a word of spaces.
#[inline]
fn needs_escape(bytes: &[u8]) -> bool {
    let word_at = |at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        escape_bits(u64::from_le_bytes(word))
    };
    if bytes.len() < 8 {
        // Packed into a word of spaces by shifts, not copied (a copy would be a call).
        let word = bytes
            .iter()
            .enumerate()
            .fold(LOW * u64::from(b' '), |word, (idx, &byte)| {
                let shift = 8 * idx;
                (word & !(0xff << shift)) | (u64::from(byte) << shift)
            });
        return escape_bits(word) != 0;
    }
    let mut hits = word_at(bytes.len() - 8);
    let mut at = 0;
    while at + 8 < bytes.len() {
        hits |= word_at(at);
        at += 8;
    }
    hits != 0
}

/// Appends a JSON string literal.
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if !needs_escape(bytes) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (idx, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => {
                out.extend_from_slice(&bytes[start..idx]);
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(byte >> 4) as usize]);
                out.push(HEX[(byte & 0xf) as usize]);
                start = idx + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..idx]);
        out.extend_from_slice(escape);
        start = idx + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// A value as a JSON string.
pub fn to_string(value: &Val) -> String {
    let mut out = Vec::new();
    write(&mut out, value);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_serde_json() {
        for text in [
            "plain",
            "quote \" and \\ slash",
            "tab\tnew\nline\u{1}",
            "Müller, Montréal",
        ] {
            let mut out = Vec::new();
            write_str(&mut out, text);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(text).unwrap()
            );
        }
        // Every ASCII character at every position of short and word-crossing strings.
        for len in 1..=25 {
            for pos in 0..len {
                for byte in 0u8..0x80 {
                    let mut text = vec![b'a'; len];
                    text[pos] = byte;
                    let text = String::from_utf8(text).unwrap();
                    let mut out = Vec::new();
                    write_str(&mut out, &text);
                    assert_eq!(
                        String::from_utf8(out).unwrap(),
                        serde_json::to_string(&text).unwrap(),
                        "byte {byte} at {pos} of {len}"
                    );
                }
            }
        }
        let value = Val::money(1999, "USD");
        assert_eq!(to_string(&value), r#"{"amount":1999,"currency":"USD"}"#);
    }
}
