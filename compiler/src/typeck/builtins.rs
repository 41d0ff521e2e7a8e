//! Signatures of the built-in functions. The runtime implements the same list.

use super::types::Ty;
use crate::currency;
use crate::diagnostics::{codes, Diagnostic};
use crate::syntax::ast::{Expr, ExprKind, Literal};

/// What an argument position accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    Any,
    Str,
    Int,
    Num,
    List,
    Money,
    Time,
}

/// How the result type is derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    Fixed(Fixed),
    /// The element type of the first (list) argument.
    Element,
    /// The common type of all arguments.
    Unified,
    /// Same as the first argument.
    First,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fixed {
    Str,
    Int,
    Decimal,
    Bool,
    Money,
    Datetime,
    Date,
    StrList,
    Json,
    Secret,
}

impl Fixed {
    fn ty(self) -> Ty {
        match self {
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
}

/// A built-in function.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    pub name: &'static str,
    pub params: &'static [Param],
    /// Number of trailing parameters that may be left out.
    pub optional: usize,
    /// The last parameter repeats.
    pub variadic: bool,
    pub ret: Ret,
    pub doc: &'static str,
}

use Param as P;

const fn f(name: &'static str, params: &'static [Param], ret: Ret, doc: &'static str) -> Builtin {
    Builtin {
        name,
        params,
        optional: 0,
        variadic: false,
        ret,
        doc,
    }
}

const fn opt(mut b: Builtin, optional: usize) -> Builtin {
    b.optional = optional;
    b
}

const fn var(mut b: Builtin) -> Builtin {
    b.variadic = true;
    b
}

const STR: Ret = Ret::Fixed(Fixed::Str);
const INT: Ret = Ret::Fixed(Fixed::Int);
const BOOL: Ret = Ret::Fixed(Fixed::Bool);

/// Every built-in function (settings-only `env` and `secret` included).
pub const BUILTINS: &[Builtin] = &[
    f("lower", &[P::Str], STR, "ASCII-lowercase a string"),
    f("upper", &[P::Str], STR, "ASCII-uppercase a string"),
    f(
        "trim",
        &[P::Str],
        STR,
        "strip leading and trailing whitespace",
    ),
    f(
        "len",
        &[P::Any],
        INT,
        "length of a string (chars) or a list",
    ),
    var(f("concat", &[P::Any], STR, "join the arguments' text")),
    f(
        "to_string",
        &[P::Any],
        STR,
        "a number, bool or string as text",
    ),
    f(
        "to_int",
        &[P::Any],
        INT,
        "parse or convert to an integer; rejects non-integers",
    ),
    f(
        "to_decimal",
        &[P::Any],
        Ret::Fixed(Fixed::Decimal),
        "parse or convert to an exact decimal",
    ),
    opt(
        f(
            "minor_units",
            &[P::Any, P::Str],
            INT,
            "exact decimal amount to integer minor units of the currency (hundredths without one): \"19.99\" -> 1999, (\"1500\", \"JPY\") -> 1500",
        ),
        1,
    ),
    f(
        "money",
        &[P::Any, P::Str],
        Ret::Fixed(Fixed::Money),
        "money from a decimal amount and a currency code",
    ),
    f(
        "money_minor",
        &[P::Int, P::Str],
        Ret::Fixed(Fixed::Money),
        "money from integer minor units and a currency code",
    ),
    f(
        "round",
        &[P::Num, P::Int],
        Ret::Fixed(Fixed::Decimal),
        "round half-even to N decimal places",
    ),
    f("abs", &[P::Num], Ret::First, "absolute value"),
    f(
        "now",
        &[],
        Ret::Fixed(Fixed::Datetime),
        "the current time (UTC)",
    ),
    opt(
        f(
            "parse_datetime",
            &[P::Str, P::Str],
            Ret::Fixed(Fixed::Datetime),
            "parse RFC 3339, or with a strftime format",
        ),
        1,
    ),
    f(
        "format_datetime",
        &[P::Time, P::Str],
        STR,
        "format a datetime with a strftime format",
    ),
    f(
        "date",
        &[P::Time],
        Ret::Fixed(Fixed::Date),
        "the calendar date of a datetime",
    ),
    f(
        "is_object",
        &[P::Any],
        BOOL,
        "true for a JSON object or record",
    ),
    f("is_string", &[P::Any], BOOL, "true for a string"),
    f("is_number", &[P::Any], BOOL, "true for a number"),
    f("is_list", &[P::Any], BOOL, "true for a list"),
    f(
        "is_null",
        &[P::Any],
        BOOL,
        "true for null or an absent field",
    ),
    f("exists", &[P::Any], BOOL, "true unless null or absent"),
    opt(
        f(
            "sum",
            &[P::List, P::Any],
            Ret::Element,
            "sum of a list of numbers or money; the second argument (default 0) is the sum of an empty list, e.g. money_minor(0, \"USD\")",
        ),
        1,
    ),
    f("count", &[P::List], INT, "number of elements of a list"),
    f(
        "min",
        &[P::List],
        Ret::Element,
        "smallest element, null for an empty list",
    ),
    f(
        "max",
        &[P::List],
        Ret::Element,
        "largest element, null for an empty list",
    ),
    f(
        "first",
        &[P::List],
        Ret::Element,
        "first element, null for an empty list",
    ),
    f(
        "last",
        &[P::List],
        Ret::Element,
        "last element, null for an empty list",
    ),
    var(f(
        "coalesce",
        &[P::Any],
        Ret::Unified,
        "the first argument that is not null",
    )),
    f(
        "split",
        &[P::Str, P::Str],
        Ret::Fixed(Fixed::StrList),
        "split a string on a separator",
    ),
    f(
        "join",
        &[P::List, P::Str],
        STR,
        "join a list of strings with a separator",
    ),
    f(
        "replace",
        &[P::Str, P::Str, P::Str],
        STR,
        "replace every occurrence",
    ),
    f("starts_with", &[P::Str, P::Str], BOOL, "prefix test"),
    f("ends_with", &[P::Str, P::Str], BOOL, "suffix test"),
    f("contains", &[P::Str, P::Str], BOOL, "substring test"),
    opt(
        f(
            "substring",
            &[P::Str, P::Int, P::Int],
            STR,
            "chars from start, up to a length",
        ),
        1,
    ),
    f(
        "group_by",
        &[P::List, P::Str],
        Ret::Fixed(Fixed::Json),
        "group records by a field: [{key, items}]",
    ),
    f("currency", &[P::Money], STR, "the currency code of money"),
    f(
        "env",
        &[P::Str],
        STR,
        "a deployment setting from the environment (settings only)",
    ),
    f(
        "secret",
        &[P::Str],
        Ret::Fixed(Fixed::Secret),
        "a secret from the configured secret store (settings only)",
    ),
];

/// Looks a builtin up by name.
pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
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
        Ret::Fixed(fixed) => fixed.ty(),
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
