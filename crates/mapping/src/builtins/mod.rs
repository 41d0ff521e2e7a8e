//! The built-in functions: one table, [`BUILTINS`], where each function is one entry with
//! its name, signature, doc, examples and implementation.
//!
//! The table lives here, in the pure mapping crate, rather than in the compiler: the
//! implementations need the evaluator's values, and the compiler may depend on this crate
//! (never the other way), so the compiler reads the same entries for its checks. The
//! signature is written in a small vocabulary ([`Param`], [`Ret`]) that the compiler maps
//! to its own types. The implementations, grouped by topic, are in the submodules.
//! The evaluator resolves a call to its entry once, when it compiles the expression; per
//! message it calls the entry's function pointer, with no lookup by name.
//!
//! Every example is run through the compiler and the evaluator by a test, so an example
//! that no longer holds fails (`compiler/tests/builtins.rs`).

mod args;
mod kind;
mod list;
mod money;
mod number;
mod text;
mod time;

use crate::reject::{Eval, Reject};
use crate::value::Val;

/// What an argument position accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// Any value.
    Any,
    /// A string (or an enum).
    Str,
    Int,
    /// An int or a decimal.
    Num,
    /// Any list.
    List,
    Money,
    /// A datetime, a date or a string.
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

/// A result type that does not depend on the arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fixed {
    Str,
    Int,
    Decimal,
    Bool,
    Money,
    Datetime,
    Date,
    /// A list of strings.
    StrList,
    Json,
    Secret,
}

/// A function over evaluated arguments (as many as the call has).
pub type Call = for<'a> fn(&mut [Val<'a>]) -> Eval<'a>;

/// How a built-in runs.
#[derive(Clone, Copy)]
pub enum Imp {
    /// On the evaluated arguments.
    Call(Call),
    /// A test of one value's kind, answered by reference, so the evaluator can skip
    /// building the argument.
    Test(fn(&Val) -> bool),
    /// In settings blocks only: the compiler turns the call into a deployment setting.
    Settings,
}

/// An example call and what it gives: `Ok` holds the result as the runtime writes it in
/// JSON, `Err` the reason the message is rejected. Examples read [`EXAMPLE_INPUT`] as `$`;
/// the examples of settings-only functions give the setting's JSON.
#[derive(Debug, Clone, Copy)]
pub struct Example {
    pub expr: &'static str,
    pub result: Result<&'static str, &'static str>,
}

/// The input document the examples read as `$`.
pub const EXAMPLE_INPUT: &str = r#"{"id": 7, "email": null, "lines": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}, {"sku": "A", "qty": 3}]}"#;

/// A built-in function.
#[derive(Clone, Copy)]
pub struct Builtin {
    pub name: &'static str,
    pub params: &'static [Param],
    /// Number of trailing parameters that may be left out.
    pub optional: usize,
    /// The last parameter repeats.
    pub variadic: bool,
    pub ret: Ret,
    pub doc: &'static str,
    pub examples: &'static [Example],
    pub imp: Imp,
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Builtin({})", self.name)
    }
}

impl Builtin {
    /// Calls the function on evaluated arguments.
    #[inline]
    pub fn apply<'a>(&self, args: &mut [Val<'a>]) -> Eval<'a> {
        match self.imp {
            Imp::Call(call) => call(args),
            Imp::Test(test) => Ok(Val::Bool(test(args.first().unwrap_or(&Val::Null)))),
            Imp::Settings => Err(Reject(
                "`env` and `secret` are only available in settings".into(),
            )),
        }
    }

    /// True for the functions only settings blocks may call.
    pub fn settings_only(&self) -> bool {
        matches!(self.imp, Imp::Settings)
    }
}

/// Looks a built-in up by name (when an expression is compiled, never per message).
pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

use Param as P;

const fn f(
    name: &'static str,
    params: &'static [Param],
    ret: Ret,
    imp: Imp,
    doc: &'static str,
    examples: &'static [Example],
) -> Builtin {
    Builtin {
        name,
        params,
        optional: 0,
        variadic: false,
        ret,
        doc,
        examples,
        imp,
    }
}

/// The last `optional` parameters may be left out.
const fn opt(mut b: Builtin, optional: usize) -> Builtin {
    b.optional = optional;
    b
}

/// The last parameter repeats.
const fn var(mut b: Builtin) -> Builtin {
    b.variadic = true;
    b
}

/// An example that gives a value (its JSON text).
const fn ok(expr: &'static str, json: &'static str) -> Example {
    Example {
        expr,
        result: Ok(json),
    }
}

/// An example that rejects the message with this reason.
const fn fails(expr: &'static str, reason: &'static str) -> Example {
    Example {
        expr,
        result: Err(reason),
    }
}

const STR: Ret = Ret::Fixed(Fixed::Str);
const INT: Ret = Ret::Fixed(Fixed::Int);
const BOOL: Ret = Ret::Fixed(Fixed::Bool);
const DECIMAL: Ret = Ret::Fixed(Fixed::Decimal);
const MONEY: Ret = Ret::Fixed(Fixed::Money);
const DATETIME: Ret = Ret::Fixed(Fixed::Datetime);

use Imp::{Call as C, Test as T};

/// Every built-in function (settings-only `env` and `secret` included).
pub const BUILTINS: &[Builtin] = &[
    f("lower", &[P::Str], STR, C(text::lower), "ASCII-lowercase a string", &[
        ok(r#"lower("Hello")"#, r#""hello""#),
        ok("lower($.email)", "null"),
    ]),
    f("upper", &[P::Str], STR, C(text::upper), "ASCII-uppercase a string", &[
        ok(r#"upper("sku-12")"#, r#""SKU-12""#),
    ]),
    f("trim", &[P::Str], STR, C(text::trim), "strip leading and trailing whitespace", &[
        ok(r#"trim("  a b ")"#, r#""a b""#),
    ]),
    f("len", &[P::Any], INT, C(text::len), "length of a string (chars) or a list", &[
        ok(r#"len("héllo")"#, "5"),
        ok("len($.lines)", "3"),
    ]),
    var(f("concat", &[P::Any], STR, C(text::concat), "join the arguments' text", &[
        ok(r#"concat("order-", $.id, $.email)"#, r#""order-7""#),
    ])),
    f("to_string", &[P::Any], STR, C(text::to_string), "a number, bool or string as text", &[
        ok("to_string(12.50)", r#""12.50""#),
    ]),
    f("to_int", &[P::Any], INT, C(number::to_int), "parse or convert to an integer; rejects non-integers", &[
        ok(r#"to_int("12.0")"#, "12"),
        fails(r#"to_int("1.5")"#, "`to_int`: 1.5 is not an integer"),
    ]),
    f("to_decimal", &[P::Any], DECIMAL, C(number::to_decimal), "parse or convert to an exact decimal", &[
        ok(r#"to_decimal("19.99")"#, "19.99"),
    ]),
    opt(f("minor_units", &[P::Any, P::Str], INT, C(money::minor_units_of), "exact decimal amount to integer minor units of the currency (hundredths without one): \"19.99\" -> 1999, (\"1500\", \"JPY\") -> 1500", &[
        ok(r#"minor_units("19.99")"#, "1999"),
        ok(r#"minor_units("1500", "JPY")"#, "1500"),
        fails(r#"minor_units("1.234")"#, "amount 1.234 has more than two decimals"),
    ]), 1),
    f("money", &[P::Any, P::Str], MONEY, C(money::money), "money from a decimal amount and a currency code", &[
        ok(r#"money("19.99", "USD")"#, r#"{"amount":1999,"currency":"USD"}"#),
    ]),
    f("money_minor", &[P::Int, P::Str], MONEY, C(money::money_minor), "money from integer minor units and a currency code", &[
        ok(r#"money_minor(1500, "JPY")"#, r#"{"amount":1500,"currency":"JPY"}"#),
    ]),
    f("round", &[P::Num, P::Int], DECIMAL, C(number::round), "round half-even to N decimal places", &[
        ok("round(2.345, 2)", "2.34"),
    ]),
    f("abs", &[P::Num], Ret::First, C(number::abs), "absolute value", &[
        ok("abs(-3)", "3"),
    ]),
    f("now", &[], DATETIME, C(time::now), "the current time (UTC)", &[
        ok("len(now())", "24"),
    ]),
    opt(f("parse_datetime", &[P::Str, P::Str], DATETIME, C(time::parse_datetime), "parse RFC 3339, or with a strftime format", &[
        ok(r#"parse_datetime("2024-06-01T12:30:00Z")"#, r#""2024-06-01T12:30:00+00:00""#),
        ok(r#"parse_datetime("01/06/2024 12:30", "%d/%m/%Y %H:%M")"#, r#""2024-06-01T12:30:00+00:00""#),
    ]), 1),
    f("format_datetime", &[P::Time, P::Str], STR, C(time::format_datetime), "format a datetime with a strftime format", &[
        ok(r#"format_datetime("2024-06-01T12:30:00Z", "%d/%m/%Y")"#, r#""01/06/2024""#),
    ]),
    f("date", &[P::Time], Ret::Fixed(Fixed::Date), C(time::date), "the calendar date of a datetime", &[
        ok(r#"date("2024-06-01T23:30:00-05:00")"#, r#""2024-06-01""#),
    ]),
    f("is_object", &[P::Any], BOOL, T(kind::is_object), "true for a JSON object or record", &[
        ok("is_object($.lines[0])", "true"),
    ]),
    f("is_string", &[P::Any], BOOL, T(kind::is_string), "true for a string", &[
        ok("is_string($.id)", "false"),
    ]),
    f("is_number", &[P::Any], BOOL, T(kind::is_number), "true for a number", &[
        ok("is_number($.id)", "true"),
    ]),
    f("is_list", &[P::Any], BOOL, T(kind::is_list), "true for a list", &[
        ok("is_list($.lines)", "true"),
    ]),
    f("is_null", &[P::Any], BOOL, T(kind::is_null), "true for null or an absent field", &[
        ok("is_null($.missing)", "true"),
    ]),
    f("exists", &[P::Any], BOOL, T(kind::exists), "true unless null or absent", &[
        ok("exists($.email)", "false"),
    ]),
    opt(f("sum", &[P::List, P::Any], Ret::Element, C(list::sum), "sum of a list of numbers or money; the second argument (default 0) is the sum of an empty list, e.g. money_minor(0, \"USD\")", &[
        ok("sum($.lines[*].qty)", "6"),
        ok(r#"sum($.missing, money_minor(0, "USD"))"#, r#"{"amount":0,"currency":"USD"}"#),
    ]), 1),
    f("count", &[P::List], INT, C(list::count), "number of elements of a list", &[
        ok("count($.lines)", "3"),
    ]),
    f("min", &[P::List], Ret::Element, C(list::min), "smallest element, null for an empty list", &[
        ok("min([3, 1, 2])", "1"),
    ]),
    f("max", &[P::List], Ret::Element, C(list::max), "largest element, null for an empty list", &[
        ok("max($.lines[*].qty)", "3"),
    ]),
    f("first", &[P::List], Ret::Element, C(list::first), "first element, null for an empty list", &[
        ok("first($.lines[*].sku)", r#""A""#),
    ]),
    f("last", &[P::List], Ret::Element, C(list::last), "last element, null for an empty list", &[
        ok("last($.missing)", "null"),
    ]),
    var(f("coalesce", &[P::Any], Ret::Unified, C(list::coalesce), "the first argument that is not null", &[
        ok(r#"coalesce($.email, "none")"#, r#""none""#),
    ])),
    f("split", &[P::Str, P::Str], Ret::Fixed(Fixed::StrList), C(text::split), "split a string on a separator", &[
        ok(r#"split("a,b", ",")"#, r#"["a","b"]"#),
    ]),
    f("join", &[P::List, P::Str], STR, C(text::join), "join a list of strings with a separator", &[
        ok(r#"join($.lines[*].sku, "+")"#, r#""A+B+A""#),
    ]),
    f("replace", &[P::Str, P::Str, P::Str], STR, C(text::replace), "replace every occurrence", &[
        ok(r#"replace("a-b-c", "-", "/")"#, r#""a/b/c""#),
    ]),
    f("starts_with", &[P::Str, P::Str], BOOL, C(text::starts_with), "prefix test", &[
        ok(r#"starts_with("SKU-1", "SKU")"#, "true"),
    ]),
    f("ends_with", &[P::Str, P::Str], BOOL, C(text::ends_with), "suffix test", &[
        ok(r#"ends_with("SKU-1", "SKU")"#, "false"),
    ]),
    f("contains", &[P::Str, P::Str], BOOL, C(text::contains), "substring test", &[
        ok(r#"contains("SKU-1", "U-")"#, "true"),
    ]),
    opt(f("substring", &[P::Str, P::Int, P::Int], STR, C(text::substring), "chars from start, up to a length", &[
        ok(r#"substring("héllo", 1, 3)"#, r#""éll""#),
        ok(r#"substring("héllo", 2)"#, r#""llo""#),
    ]), 1),
    f("group_by", &[P::List, P::Str], Ret::Fixed(Fixed::Json), C(list::group_by), "group records by a field: [{key, items}]", &[
        ok(r#"group_by($.lines, "sku")"#, r#"[{"key":"A","items":[{"sku":"A","qty":1},{"sku":"A","qty":3}]},{"key":"B","items":[{"sku":"B","qty":2}]}]"#),
    ]),
    f("currency", &[P::Money], STR, C(money::currency), "the currency code of money", &[
        ok(r#"currency(money("5", "EUR"))"#, r#""EUR""#),
    ]),
    f("env", &[P::Str], STR, Imp::Settings, "a deployment setting from the environment (settings only)", &[
        ok(r#"env("INBOX")"#, r#"{"env":"INBOX"}"#),
    ]),
    f("secret", &[P::Str], Ret::Fixed(Fixed::Secret), Imp::Settings, "a secret from the configured secret store (settings only)", &[
        ok(r#"secret("SHOP_TOKEN")"#, r#"{"secret":"SHOP_TOKEN"}"#),
    ]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_function_has_an_example() {
        let mut names: Vec<&str> = BUILTINS.iter().map(|b| b.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BUILTINS.len(), "a built-in is listed twice");
        for builtin in BUILTINS {
            assert!(
                !builtin.examples.is_empty(),
                "`{}` has no example",
                builtin.name
            );
            assert!(
                builtin.optional <= builtin.params.len(),
                "`{}`",
                builtin.name
            );
            for example in builtin.examples {
                assert!(
                    example.expr.starts_with(builtin.name)
                        || example.expr.contains(&format!("({}(", builtin.name)),
                    "an example of `{}` calls it: {}",
                    builtin.name,
                    example.expr
                );
            }
        }
    }
}
