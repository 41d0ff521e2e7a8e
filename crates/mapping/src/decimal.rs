//! An exact decimal (i128 mantissa, base-10 scale) for amounts and arithmetic: never a float.

use std::cmp::Ordering;
use std::fmt;

/// `mantissa × 10^-scale`.
#[derive(Debug, Clone, Copy)]
pub struct Decimal {
    pub mantissa: i128,
    pub scale: u32,
}

/// Largest scale kept; division rounds to it.
pub const MAX_SCALE: u32 = 18;

const POW10: [i128; 39] = {
    let mut table = [1i128; 39];
    let mut idx = 1;
    while idx < 39 {
        table[idx] = table[idx - 1] * 10;
        idx += 1;
    }
    table
};

impl Decimal {
    /// An integer as a decimal.
    pub fn from_int(value: i64) -> Decimal {
        Decimal {
            mantissa: value as i128,
            scale: 0,
        }
    }

    /// Parses `-?\d+(\.\d+)?` (also a leading `+` and exponents like `1e-3`), rounding
    /// half-even past [`MAX_SCALE`] places.
    pub fn parse(text: &str) -> Option<Decimal> {
        let value = Decimal::parse_exact(text)?;
        Some(if value.scale > MAX_SCALE {
            value.round(MAX_SCALE)
        } else {
            value
        })
    }

    /// Parses like [`Decimal::parse`] but never rounds: `None` unless the value fits a
    /// 38-digit mantissa at a scale of at most 38 (trailing fraction zeros are dropped
    /// only when they are what does not fit).
    pub fn parse_exact(text: &str) -> Option<Decimal> {
        let text = text.trim();
        let (mantissa_text, exponent) = match text.find(['e', 'E']) {
            Some(idx) => (&text[..idx], text[idx + 1..].parse::<i64>().ok()?),
            None => (text, 0),
        };
        let (neg, digits) = match mantissa_text.as_bytes().first()? {
            b'-' => (true, &mantissa_text[1..]),
            b'+' => (false, &mantissa_text[1..]),
            _ => (false, mantissa_text),
        };
        let (int_part, frac_part) = match digits.split_once('.') {
            Some((i, f)) if !i.is_empty() && !f.is_empty() => (i, f),
            Some(_) => return None,
            None => (digits, ""),
        };
        if int_part.is_empty()
            || !int_part
                .bytes()
                .chain(frac_part.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        Decimal::from_digits(neg, int_part, frac_part, exponent).or_else(|| {
            let trimmed = frac_part.trim_end_matches('0');
            (trimmed.len() < frac_part.len())
                .then(|| Decimal::from_digits(neg, int_part, trimmed, exponent))
                .flatten()
        })
    }

    /// `±int.frac × 10^exponent` from checked ASCII digits, if it fits exactly.
    fn from_digits(neg: bool, int_part: &str, frac_part: &str, exponent: i64) -> Option<Decimal> {
        let int_part = int_part.trim_start_matches('0');
        let mut mantissa: i128 = 0;
        for byte in int_part.bytes().chain(frac_part.bytes()) {
            mantissa = mantissa
                .checked_mul(10)?
                .checked_add((byte - b'0') as i128)?;
        }
        let mut scale = i64::try_from(frac_part.len()).ok()?.checked_sub(exponent)?;
        if mantissa == 0 {
            scale = scale.clamp(0, POW10.len() as i64 - 1);
        }
        while scale < 0 {
            mantissa = mantissa.checked_mul(10)?;
            scale += 1;
        }
        if scale >= POW10.len() as i64 {
            return None;
        }
        Some(Decimal {
            mantissa: if neg { -mantissa } else { mantissa },
            scale: scale as u32,
        })
    }

    /// A float through its shortest round-trip text, so 0.06 stays 0.06.
    pub fn from_f64(value: f64) -> Option<Decimal> {
        if !value.is_finite() {
            return None;
        }
        Decimal::parse(&format!("{value}"))
    }

    fn rescale(self, scale: u32) -> Option<i128> {
        if scale >= self.scale {
            self.mantissa
                .checked_mul(*POW10.get((scale - self.scale) as usize)?)
        } else {
            None
        }
    }

    fn align(a: Decimal, b: Decimal) -> Option<(i128, i128, u32)> {
        let scale = a.scale.max(b.scale);
        Some((a.rescale(scale)?, b.rescale(scale)?, scale))
    }

    /// Sum, `None` on overflow.
    pub fn checked_add(self, other: Decimal) -> Option<Decimal> {
        let (a, b, scale) = Decimal::align(self, other)?;
        Some(Decimal {
            mantissa: a.checked_add(b)?,
            scale,
        })
    }

    /// Difference, `None` on overflow.
    pub fn checked_sub(self, other: Decimal) -> Option<Decimal> {
        self.checked_add(Decimal {
            mantissa: other.mantissa.checked_neg()?,
            scale: other.scale,
        })
    }

    /// Product, `None` on overflow.
    pub fn checked_mul(self, other: Decimal) -> Option<Decimal> {
        let value = Decimal {
            mantissa: self.mantissa.checked_mul(other.mantissa)?,
            scale: self.scale + other.scale,
        };
        Some(if value.scale > MAX_SCALE {
            value.round(MAX_SCALE)
        } else {
            value
        })
    }

    /// Quotient rounded half-even to [`MAX_SCALE`] places; `None` on division by zero.
    pub fn checked_div(self, other: Decimal) -> Option<Decimal> {
        if other.mantissa == 0 {
            return None;
        }
        // (a / 10^sa) / (b / 10^sb) = a * 10^(sb + MAX + 1 - sa) / b  at scale MAX + 1
        let target = MAX_SCALE + 1;
        let shift = (target + other.scale).checked_sub(self.scale)?;
        let numerator = self.mantissa.checked_mul(*POW10.get(shift as usize)?)?;
        Some(
            Decimal {
                mantissa: numerator / other.mantissa,
                scale: target,
            }
            .round(MAX_SCALE)
            .normalize(),
        )
    }

    /// Rounds half to even at `places` decimals.
    pub fn round(self, places: u32) -> Decimal {
        if self.scale <= places {
            return self;
        }
        let drop = self.scale - places;
        let Some(divisor) = POW10.get(drop as usize).copied() else {
            return Decimal {
                mantissa: 0,
                scale: places,
            };
        };
        let quotient = self.mantissa / divisor;
        let remainder = self.mantissa % divisor;
        let twice = remainder.abs() * 2;
        let round_away = match twice.cmp(&divisor) {
            Ordering::Greater => true,
            Ordering::Equal => quotient % 2 != 0,
            Ordering::Less => false,
        };
        let mantissa = if round_away {
            quotient + self.mantissa.signum()
        } else {
            quotient
        };
        Decimal {
            mantissa,
            scale: places,
        }
    }

    /// Drops trailing zeros of the fraction.
    pub fn normalize(mut self) -> Decimal {
        while self.scale > 0 && self.mantissa % 10 == 0 {
            self.mantissa /= 10;
            self.scale -= 1;
        }
        self
    }

    /// The value as an integer when it has no fraction.
    pub fn to_i64(self) -> Option<i64> {
        let normal = self.normalize();
        if normal.scale == 0 {
            i64::try_from(normal.mantissa).ok()
        } else {
            None
        }
    }

    /// Exact minor units at `places` decimals (a currency's exponent): `None` when the
    /// value has more decimals than that or does not fit 64 bits.
    pub fn to_minor(self, places: u32) -> Option<i64> {
        let normal = self.normalize();
        if normal.scale > places {
            return None;
        }
        let minor = normal
            .mantissa
            .checked_mul(*POW10.get((places - normal.scale) as usize)?)?;
        i64::try_from(minor).ok()
    }

    /// Nearest float (for JSON output of non-terminating values only).
    pub fn to_f64(self) -> f64 {
        self.mantissa as f64 / 10f64.powi(self.scale as i32)
    }

    /// Absolute value.
    pub fn abs(self) -> Decimal {
        Decimal {
            mantissa: self.mantissa.abs(),
            scale: self.scale,
        }
    }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Decimal) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Decimal {}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Decimal) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Decimal) -> Ordering {
        match Decimal::align(*self, *other) {
            Some((a, b, _)) => a.cmp(&b),
            None => self.to_f64().total_cmp(&other.to_f64()),
        }
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale == 0 {
            return write!(f, "{}", self.mantissa);
        }
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let digits = self.mantissa.unsigned_abs().to_string();
        let scale = self.scale as usize;
        if digits.len() > scale {
            let (int, frac) = digits.split_at(digits.len() - scale);
            write!(f, "{sign}{int}.{frac}")
        } else {
            write!(f, "{sign}0.{}{digits}", "0".repeat(scale - digits.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::parse(text).unwrap()
    }

    #[test]
    fn parses_and_prints_exactly() {
        assert_eq!(d("19.99").to_string(), "19.99");
        assert_eq!(d("-3.07").to_minor(2), Some(-307));
        assert_eq!(d("5").to_minor(2), Some(500));
        assert_eq!(d("5.5").to_minor(2), Some(550));
        assert_eq!(d("0.001").to_minor(2), None);
        assert_eq!(d("1500").to_minor(0), Some(1500));
        assert_eq!(d("1500.00").to_minor(0), Some(1500));
        assert_eq!(d("1500.5").to_minor(0), None);
        assert_eq!(d("0.250").to_minor(3), Some(250));
        assert_eq!(d("1.2345").to_minor(4), Some(12345));
        assert_eq!(d("1e-3").to_string(), "0.001");
        assert!(Decimal::parse("abc").is_none());
        assert!(Decimal::parse("1.2.3").is_none());
        assert!(Decimal::parse("1e-2147483648").is_none());
        assert_eq!(
            d("0.1234567890123456789012").to_string(),
            "0.123456789012345679"
        );
        let exact = Decimal::parse_exact("0.1234567890123456789012").unwrap();
        assert_eq!(exact.to_string(), "0.1234567890123456789012");
        assert_eq!(
            Decimal::parse_exact(&format!("1.{}", "0".repeat(60))).unwrap(),
            d("1")
        );
        assert_eq!(Decimal::parse_exact("0e-999").unwrap(), d("0"));
    }

    #[test]
    fn arithmetic_is_exact() {
        assert_eq!(d("0.1").checked_add(d("0.2")).unwrap(), d("0.3"));
        assert_eq!(d("19.99").checked_mul(d("3")).unwrap().to_string(), "59.97");
        assert_eq!(
            d("1").checked_div(d("3")).unwrap().round(4).to_string(),
            "0.3333"
        );
        assert_eq!(d("2.345").round(2).to_string(), "2.34");
        assert_eq!(d("2.355").round(2).to_string(), "2.36");
        assert_eq!(Decimal::from_f64(0.06).unwrap().to_string(), "0.06");
    }
}
