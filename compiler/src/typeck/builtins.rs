//! The compiler's view of the built-in functions. The table itself, with each function's
//! signature, doc, examples and implementation, is `omniflow_mapping::builtins::BUILTINS`:
//! one entry per function serves the checks here and the evaluator. This module maps the
//! table's signature vocabulary to the compiler's types and checks literal money arguments.

use super::types::Ty;
use crate::currency;
use crate::diagnostics::{codes, Diagnostic};
use crate::syntax::ast::{Expr, ExprKind, Literal};
pub use omniflow_mapping::builtins::{Builtin, Fixed, Param, Ret, BUILTINS};

/// The compiler's type of a fixed result type.
fn fixed_ty(fixed: Fixed) -> Ty {
    match fixed {
        Fixed::Str => Ty::String,
        Fixed::Int => Ty::Int,
        Fixed::Decimal => Ty::Decimal,
        Fixed::Bool => Ty::Bool,
        Fixed::Money => Ty::Money,
        Fixed::Datetime => Ty::Datetime,
        Fixed::Date => Ty::Date,
        Fixed::StrList => Ty::List(Box::new(Ty::String)),
        Fixed::Json => Ty::Json,
        Fixed::Secret => Ty::Secret,
    }
}

/// Looks a builtin up by name.
pub fn find(name: &str) -> Option<&'static Builtin> {
    omniflow_mapping::builtins::find(name)
}

/// Checks one argument's type against a parameter. `None` when it fits.
pub fn param_mismatch(param: Param, ty: &Ty) -> Option<&'static str> {
    if ty.is_lenient() || *ty == Ty::Null {
        return None;
    }
    let fits = match param {
        Param::Any => true,
        Param::Str => matches!(ty, Ty::String | Ty::Enum(_)),
        Param::Int => *ty == Ty::Int,
        Param::Num => ty.is_number(),
        Param::List => matches!(ty, Ty::List(_)),
        Param::Money => *ty == Ty::Money,
        Param::Time => matches!(ty, Ty::Datetime | Ty::Date | Ty::String),
    };
    if fits {
        None
    } else {
        Some(match param {
            Param::Any => "any value",
            Param::Str => "string",
            Param::Int => "int",
            Param::Num => "a number",
            Param::List => "a list",
            Param::Money => "money",
            Param::Time => "datetime",
        })
    }
}

/// The result type of a call with these argument types.
pub fn result_type(builtin: &Builtin, args: &[Ty]) -> Ty {
    match builtin.ret {
        Ret::Fixed(fixed) => fixed_ty(fixed),
        Ret::First => args.first().cloned().unwrap_or(Ty::Error),
        Ret::Element => match args.first() {
            Some(Ty::List(elem)) => (**elem).clone(),
            _ => Ty::Json,
        },
        Ret::Unified => args
            .iter()
            .try_fold(Ty::Never, |acc, ty| super::types::unify(&acc, ty))
            .unwrap_or(Ty::Json),
    }
}

/// The literal text of a string argument.
fn literal_str(expr: &Expr) -> Option<&str> {
    match &expr.kind {
        ExprKind::Lit(Literal::Str(text)) => Some(text),
        _ => None,
    }
}

/// Decimal places of a literal amount (a decimal or a decimal string), trailing zeros aside.
fn literal_places(expr: &Expr) -> Option<usize> {
    let text = match &expr.kind {
        ExprKind::Lit(Literal::Str(text) | Literal::Decimal(text)) => text.trim(),
        _ => return None,
    };
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let numeric = !int.is_empty() && (int.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit());
    numeric.then(|| frac.trim_end_matches('0').len())
}

/// Literal currencies and amounts of `money`, `money_minor` and `minor_units`: what the
/// runtime would refuse for every message (an unknown currency, an amount finer than the
/// currency's minor unit) is refused here.
pub fn money_literals(name: &str, args: &[Expr]) -> Vec<Diagnostic> {
    let has_amount = match name {
        "money" | "minor_units" => true,
        "money_minor" => false,
        _ => return Vec::new(),
    };
    let Some(currency_arg) = args.get(1) else {
        return Vec::new();
    };
    let Some(code) = literal_str(currency_arg) else {
        return Vec::new();
    };
    let Some(places) = currency::exponent(code) else {
        return vec![Diagnostic::error(
            codes::UNKNOWN_CURRENCY,
            currency_arg.span,
            format!("unknown currency `{code}`"),
        )
        .label(currency::unknown(code))
        .help("write an active ISO 4217 code in upper case, such as \"USD\", \"EUR\" or \"JPY\"")];
    };
    match args.first() {
        Some(amount) if has_amount => match literal_places(amount) {
            Some(found) if found > places as usize => {
                let unit = match places {
                    0 => format!("{code} has no decimal places"),
                    1 => format!("{code} has one decimal place"),
                    _ => format!("{code} has {places} decimal places"),
                };
                let found = if found == 1 {
                    "1 decimal place".to_string()
                } else {
                    format!("{found} decimal places")
                };
                let help = if places == 0 {
                    format!("write a whole amount of {code}")
                } else {
                    format!("write the amount with at most {places} decimal places")
                };
                vec![Diagnostic::error(
                    codes::AMOUNT_BEYOND_MINOR_UNIT,
                    amount.span,
                    format!("amount is finer than the minor unit of {code}"),
                )
                .label(format!("this amount has {found}"))
                .secondary(currency_arg.span, unit)
                .help(help)]
            }
            Some(_) if !fits_minor_units(amount, places) => vec![Diagnostic::error(
                codes::LITERAL_OUT_OF_RANGE,
                amount.span,
                format!("amount does not fit in 64-bit minor units of {code}"),
            )
            .label("too large an amount")
            .help(format!(
                "money holds at most {} minor units; write a smaller amount",
                i64::MAX
            ))],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// True when a literal amount, in minor units of a currency with `places` decimals, fits
/// the runtime's 64-bit integer.
fn fits_minor_units(expr: &Expr, places: u32) -> bool {
    let text = match &expr.kind {
        ExprKind::Lit(Literal::Str(text) | Literal::Decimal(text)) => text.trim(),
        _ => return true,
    };
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let frac = frac.trim_end_matches('0');
    let mut minor = format!("{int}{frac}");
    minor.extend(std::iter::repeat_n(
        '0',
        (places as usize).saturating_sub(frac.len()),
    ));
    let minor = minor.trim_start_matches('0');
    minor.len() < 19 || (minor.len() == 19 && minor <= "9223372036854775807")
}
