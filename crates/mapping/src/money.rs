//! Money as vendors write it: canonical money (`{"amount": minor units, "currency"}`) to and
//! from decimal text in major units, at each currency's ISO 4217 exponent.

use crate::decimal::Decimal;
use serde_json::Value;

/// Decimal places of a currency's minor unit, from the one ISO 4217 table
/// (`omniflow_ir::currency`); 2 for a code that is not in it (money values are
/// checked when they are made, so a sink only meets listed codes).
pub fn minor_digits(currency: &str) -> u32 {
    omniflow_ir::currency::exponent(currency).unwrap_or(2)
}

/// A canonical money value (`{"amount": minor units, "currency"}`) as a decimal string in
/// major units at the currency's exponent (Shopify prices, Amazon amounts, Tryton and OData
/// decimals): 1999 USD → "19.99", 1500 JPY → "1500", 250 KWD → "0.250". `None` for an
/// unknown currency. Square takes the minor units themselves (`amount`).
pub fn money_text(money: &Value) -> Option<String> {
    let amount = money.get("amount")?.as_i64()?;
    let currency = money.get("currency")?.as_str()?;
    let digits = omniflow_ir::currency::exponent(currency)?;
    Some(minor_to_decimal(amount, digits))
}

/// A canonical money value as a JSON number in major units, only when the number is
/// exactly the amount (a float is, up to 15 significant digits); `None` otherwise.
pub fn money_number(money: &Value) -> Option<Value> {
    let text = money_text(money)?;
    let number = text.parse::<f64>().ok()?;
    let back = Decimal::parse_exact(&number.to_string())?;
    (Some(back) == Decimal::parse_exact(&text)).then(|| Value::from(number))
}

/// Major units as written by a vendor (`"19.99"`, `"1500"`) to exact minor units at the
/// currency's exponent; `None` for an unknown currency or a finer amount.
pub fn minor_units(text: &str, currency: &str) -> Option<i64> {
    let digits = omniflow_ir::currency::exponent(currency)?;
    Decimal::parse_exact(text)?.to_minor(digits)
}

/// Minor units as a decimal string with `digits` places.
pub fn minor_to_decimal(amount: i64, digits: u32) -> String {
    if digits == 0 {
        return amount.to_string();
    }
    let scale = 10i64.pow(digits);
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        abs / scale as u64,
        abs % scale as u64,
        width = digits as usize
    )
}
