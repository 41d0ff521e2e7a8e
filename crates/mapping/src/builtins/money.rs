//! Money functions: exact minor units at a currency's exponent, money values and their
//! currency.

use super::args::{decimal_of, take, text};
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
    let amount = decimal_of(value, "minor_units")?;
    amount.to_minor(places).ok_or_else(|| {
        Reject(match places {
            0 => format!("amount {amount} has decimals, the currency has none"),
            1 => format!("amount {amount} has more than one decimal"),
            2 => format!("amount {amount} has more than two decimals"),
            _ => format!("amount {amount} has more than {places} decimals"),
        })
    })
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
