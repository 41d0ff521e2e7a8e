//! Money functions: exact minor units at a currency's exponent, money values and their
//! currency.

use super::args::{decimal_of, take, text};
use crate::decimal::Decimal;
use crate::reject::{Eval, Reject};
use crate::value::Val;
use omniflow_ir::currency;

/// The exponent of an ISO 4217 currency, or why the code is refused.
fn exponent(currency: &str, func: &str) -> Result<u32, Reject> {
    currency::exponent(currency)
        .ok_or_else(|| Reject(format!("`{func}`: {}", currency::unknown(currency))))
}

/// Exact minor units of an amount at a currency's exponent (`places`): `"19.99"` → 1999 at
/// 2, `"1500"` → 1500 at 0; an amount with more decimals than that is rejected.
fn minor_units(value: &Val, places: u32) -> Result<i64, Reject> {
    if let Val::Str(s) = value {
        if let Some(minor) = fast_minor(s.as_bytes(), places) {
            return Ok(minor);
        }
    }
    let amount = match value {
        // Never rounded, unlike a decimal read from text elsewhere: an amount with more
        // digits than a decimal holds would lose the ones that make it refused.
        Val::Str(s) => Decimal::parse_exact(s).ok_or_else(|| {
            Reject(match is_numeral(s) {
                true => format!("amount \"{s}\" has more digits than an amount can hold exactly"),
                false => format!("`minor_units`: \"{s}\" is not a decimal number"),
            })
        })?,
        _ => decimal_of(value, "minor_units")?,
    };
    amount.to_minor(places).ok_or_else(|| {
        Reject(match places {
            _ if amount.normalize().scale <= places => {
                format!("amount {amount} does not fit 64-bit minor units")
            }
            0 => format!("amount {amount} has decimals, the currency has none"),
            1 => format!("amount {amount} has more than one decimal"),
            2 => format!("amount {amount} has more than two decimals"),
            _ => format!("amount {amount} has more than {places} decimals"),
        })
    })
}

/// Whether `text` is written as a decimal number (`-12.50`, `1e-3`), whatever its size.
fn is_numeral(text: &str) -> bool {
    let text = text.trim();
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (text, None),
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let (int, frac) = unsigned(mantissa)
        .split_once('.')
        .unwrap_or((unsigned(mantissa), "0"));
    digits(int) && digits(frac) && exponent.is_none_or(|e| digits(unsigned(e)))
}

/// `text` without its sign.
fn unsigned(text: &str) -> &str {
    text.strip_prefix(['-', '+']).unwrap_or(text)
}

/// The common `-?\d+(\.\d{1,places})?` case without building a decimal.
fn fast_minor(bytes: &[u8], places: u32) -> Option<i64> {
    let (neg, digits) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        _ => (false, bytes),
    };
    let mut value: i64 = 0;
    let mut idx = 0;
    while idx < digits.len() && digits[idx].is_ascii_digit() {
        value = value
            .checked_mul(10)?
            .checked_add((digits[idx] - b'0') as i64)?;
        idx += 1;
    }
    if idx == 0 || idx > 14 {
        return None;
    }
    let mut frac_digits = 0;
    if idx < digits.len() {
        if digits[idx] != b'.' {
            return None;
        }
        idx += 1;
        while idx < digits.len() && frac_digits < places && digits[idx].is_ascii_digit() {
            value = value * 10 + (digits[idx] - b'0') as i64;
            frac_digits += 1;
            idx += 1;
        }
        if idx != digits.len() || frac_digits == 0 {
            return None;
        }
    }
    while frac_digits < places {
        value = value.checked_mul(10)?;
        frac_digits += 1;
    }
    Some(if neg { -value } else { value })
}

/// `minor_units(amount, [currency])`: without a currency, hundredths.
pub(super) fn minor_units_of<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    let amount = take(args, 0);
    let places = match args.get(1) {
        None => 2,
        Some(currency) => exponent(&text(currency, "minor_units")?, "minor_units")?,
    };
    if amount.is_null() {
        return Err(Reject("`minor_units`: the amount is missing".into()));
    }
    Ok(Val::Int(minor_units(&amount, places)?))
}

pub(super) fn money<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    let amount = take(args, 0);
    let currency = text(&take(args, 1), "money")?;
    let places = exponent(&currency, "money")?;
    if amount.is_null() {
        return Err(Reject("`money`: the amount is missing".into()));
    }
    Ok(Val::money(minor_units(&amount, places)?, currency))
}

pub(super) fn money_minor<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    match (take(args, 0), take(args, 1)) {
        (Val::Int(units), Val::Str(currency)) => {
            exponent(&currency, "money_minor")?;
            Ok(Val::money(units, currency))
        }
        (units, currency) => Err(Reject(format!(
            "`money_minor` expects int and string, found {} and {}",
            units.kind(),
            currency.kind()
        ))),
    }
}

pub(super) fn currency<'a>(args: &mut [Val<'a>]) -> Eval<'a> {
    match take(args, 0) {
        Val::Money(m) => Ok(Val::Str(m.currency.clone())),
        other => Err(Reject(format!(
            "`currency` expects money, found {}",
            other.kind()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_are_exact() {
        for (text, minor) in [
            ("19.99", 1999),
            ("5", 500),
            ("5.5", 550),
            ("-3.07", -307),
            ("0.00", 0),
        ] {
            assert_eq!(minor_units(&Val::str(text), 2).unwrap(), minor, "{text}");
        }
        assert!(minor_units(&Val::str("1.234"), 2).is_err());
        assert!(minor_units(&Val::str("abc"), 2).is_err());
        assert!(minor_units(&Val::str("1."), 2).is_err());
        // Text with more digits than a decimal holds is refused, not rounded first.
        for (text, places, reason) in [
            ("19.9900000000000000001", 2, "more than two decimals"),
            ("1e-19", 2, "more than two decimals"),
            (
                "0.00000000000000000000000000000000000001",
                2,
                "more than two decimals",
            ),
            ("-0.0000000000000000001", 2, "more than two decimals"),
            (
                "1500.0000000000000000001",
                0,
                "has decimals, the currency has none",
            ),
            (
                "0.000000000000000000000000000000000000001",
                2,
                "more digits",
            ),
            ("0.0000000000000000015", 2, "more than two decimals"),
            ("92233720368547758.08", 2, "does not fit 64-bit"),
            ("1e18", 2, "does not fit 64-bit"),
            (
                "123456789012345678901234567890.12",
                2,
                "does not fit 64-bit",
            ),
        ] {
            let refused = minor_units(&Val::str(text), places).unwrap_err().0;
            assert!(refused.contains(reason), "{text}: {refused}");
            assert!(
                !refused.contains("0.000000000000000002"),
                "{text}: rounded: {refused}"
            );
        }
        assert_eq!(minor_units(&Val::str("1e-2"), 2).unwrap(), 1);
        assert_eq!(
            minor_units(&Val::str("19.990000000000000000"), 2).unwrap(),
            1999
        );
    }

    fn money_of(amount: &str, currency: &str) -> Result<(i64, String), String> {
        let mut args = [Val::str(amount.to_string()), Val::str(currency.to_string())];
        match money(&mut args) {
            Ok(Val::Money(m)) => Ok((m.amount, m.currency.to_string())),
            Ok(other) => Err(format!("not money: {other:?}")),
            Err(Reject(reason)) => Err(reason),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, failure_persistence: None, ..Default::default() })]

        /// In every ISO 4217 currency of the table, minor units → the major-unit text that
        /// connectors send → `money` and the vendor read-back give the same minor units.
        #[test]
        fn money_round_trips_in_every_currency(minor in -(1i64 << 50)..(1i64 << 50)) {
            use crate::money as client;
            for (code, places) in currency::CURRENCIES {
                let json = serde_json::json!({"amount": minor, "currency": code});
                let text = client::money_text(&json).unwrap();
                let decimals = text.split_once('.').map_or(0, |(_, frac)| frac.len());
                proptest::prop_assert_eq!(decimals, *places as usize, "{} {}", code, text);
                proptest::prop_assert_eq!(money_of(&text, code), Ok((minor, code.to_string())));
                proptest::prop_assert_eq!(client::minor_units(&text, code), Some(minor));
                let number = client::money_number(&json).unwrap();
                proptest::prop_assert_eq!(number.to_string().parse::<f64>().ok(), text.parse::<f64>().ok());
                let mut args = [Val::Int(minor), Val::str(*code)];
                let Ok(Val::Money(made)) = money_minor(&mut args) else {
                    return Err(proptest::test_runner::TestCaseError::fail(format!("money_minor {code}")));
                };
                proptest::prop_assert_eq!(
                    crate::json_out::to_string(&Val::Money(made)),
                    serde_json::to_string(&json).unwrap()
                );
            }
        }
    }

    #[test]
    fn money_follows_the_currency_exponent() {
        assert_eq!(money_of("1500", "JPY").unwrap().0, 1500);
        assert_eq!(money_of("1500.00", "JPY").unwrap().0, 1500);
        assert_eq!(money_of("19.99", "USD").unwrap().0, 1999);
        assert_eq!(money_of("1.250", "KWD").unwrap().0, 1250);
        assert_eq!(money_of("0.5", "BHD").unwrap().0, 500);
        assert_eq!(money_of("1.2345", "CLF").unwrap().0, 12345);
        assert!(money_of("1500.5", "JPY").unwrap_err().contains("none"));
        assert!(money_of("1.2345", "KWD")
            .unwrap_err()
            .contains("3 decimals"));
        assert!(money_of("1", "XYZ")
            .unwrap_err()
            .contains("not an active ISO 4217"));
        assert!(money_of("1", "usd").unwrap_err().contains("`USD`"));
        let mut args = [Val::Int(5), Val::str("ABC")];
        assert!(money_minor(&mut args).is_err());
        let mut args = [Val::str("1500"), Val::str("JPY")];
        assert!(matches!(minor_units_of(&mut args), Ok(Val::Int(1500))));
        let mut args = [Val::str("15")];
        assert!(matches!(minor_units_of(&mut args), Ok(Val::Int(1500))));
    }
}
