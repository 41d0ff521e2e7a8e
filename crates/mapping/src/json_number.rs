//! JSON number text to an exact run-time value. The scanner and the serde_json fallback both
//! read numbers here, so they keep every digit or refuse the same number with one reason.

use crate::decimal::Decimal;
use crate::value::Val;
use std::fmt;

/// A JSON number that no run-time value holds exactly (more than 38 significant digits,
/// more than 38 decimal places, or an exponent past either).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inexact {
    /// The number as written, shortened when long.
    shown: String,
    digits: usize,
}

impl fmt::Display for Inexact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the number {} ({} characters) cannot be kept exactly: numbers are kept to 38 \
             significant digits and 38 decimal places, never rounded; send it as a string",
            self.shown, self.digits
        )
    }
}

impl std::error::Error for Inexact {}

/// The value of a number already checked against JSON's grammar: an int when it is an
/// integer that fits 64 bits, else an exact decimal, else refused.
pub fn value<'a>(text: &str) -> Result<Val<'a>, Inexact> {
    let integer = !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'));
    if integer {
        if let Ok(int) = text.parse::<i64>() {
            return Ok(Val::Int(int));
        }
    }
    Decimal::parse_exact(text)
        .map(Val::dec)
        .ok_or_else(|| inexact(text))
}

fn inexact(text: &str) -> Inexact {
    const SHOWN: usize = 40;
    let shown = match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    };
    Inexact {
        shown,
        digits: text.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: Val) -> String {
        crate::json_out::to_string(&value)
    }

    #[test]
    fn keeps_every_digit_or_refuses() {
        for (input, output) in [
            ("0", "0"),
            ("-0", "0"),
            ("-9223372036854775808", "-9223372036854775808"),
            ("9223372036854775808", "9223372036854775808"),
            ("12345678901234567890123", "12345678901234567890123"),
            (
                "-98765432109876543210987654321",
                "-98765432109876543210987654321",
            ),
            ("0.12345678901234567890123", "0.12345678901234567890123"),
            ("1E-7", "0.0000001"),
            ("2.5e+3", "2500"),
            ("1.50", "1.5"),
            ("1e38", "100000000000000000000000000000000000000"),
        ] {
            assert_eq!(text(value(input).unwrap()), output, "{input}");
        }
        assert_eq!(value("12").unwrap().text().unwrap(), "12");
        assert_eq!(value("1.50").unwrap().text().unwrap(), "1.50");
        for input in ["1e400", "1e-400", "1e39", &"9".repeat(39), "1e99999999999"] {
            let err = value(input).unwrap_err().to_string();
            assert!(err.contains("cannot be kept exactly"), "{input}: {err}");
        }
        let long = value(&"7".repeat(1 << 20)).unwrap_err().to_string();
        assert!(long.len() < 300, "the reason stays short: {long}");
    }
}
