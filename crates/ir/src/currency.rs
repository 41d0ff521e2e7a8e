//! The active ISO 4217 currency codes and their minor-unit exponents: the one table that
//! the type checker (currency literals) and the runtime (money, connectors) read.

/// Every active ISO 4217 code with a minor unit, and its exponent (decimal places), sorted.
/// Codes without a minor unit (precious metals, XDR, XSU, XUA, bond units, XTS, XXX) are
/// not money here; withdrawn codes (ANG, HRK, SLL, ZWL, CUC, …) are refused.
pub const CURRENCIES: &[(&str, u32)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BOV", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHE", 2),
    ("CHF", 2),
    ("CHW", 2),
    ("CLF", 4),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("COU", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MXV", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("USN", 2),
    ("UYI", 0),
    ("UYU", 2),
    ("UYW", 4),
    ("UZS", 2),
    ("VED", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XCG", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

/// The number of decimal places of a currency's minor unit; `None` for a code that is not
/// an active ISO 4217 currency (codes are upper case, as ISO writes them).
pub fn exponent(code: &str) -> Option<u32> {
    CURRENCIES
        .binary_search_by(|(known, _)| (*known).cmp(code))
        .ok()
        .map(|idx| CURRENCIES[idx].1)
}

/// Why a code is not a currency, as a sentence for diagnostics and dead letters.
pub fn unknown(code: &str) -> String {
    let upper = code.to_ascii_uppercase();
    if upper != code && exponent(&upper).is_some() {
        format!("`{code}` is not an ISO 4217 currency code (codes are upper case: `{upper}`)")
    } else {
        format!("`{code}` is not an active ISO 4217 currency code")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_holds_the_exponents() {
        assert!(CURRENCIES.windows(2).all(|pair| pair[0].0 < pair[1].0));
        assert!(CURRENCIES
            .iter()
            .all(|(code, _)| code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())));
        for code in [
            "JPY", "KRW", "CLP", "ISK", "VND", "UGX", "XAF", "XOF", "PYG", "RWF", "KMF", "GNF",
            "DJF", "VUV", "XPF", "BIF", "UYI",
        ] {
            assert_eq!(exponent(code), Some(0), "{code}");
        }
        for code in ["KWD", "BHD", "JOD", "OMR", "TND", "LYD", "IQD"] {
            assert_eq!(exponent(code), Some(3), "{code}");
        }
        assert_eq!(exponent("CLF"), Some(4));
        assert_eq!(exponent("UYW"), Some(4));
        assert_eq!(exponent("USD"), Some(2));
        assert_eq!(exponent("EUR"), Some(2));
        for code in ["usd", "XXX", "XAU", "BTC", "", "US", "USDD"] {
            assert_eq!(exponent(code), None, "{code}");
        }
        assert!(unknown("usd").contains("`USD`"));
    }
}
