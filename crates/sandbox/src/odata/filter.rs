//! OData `$filter` as the simulator understands it: comparisons (`eq ne gt ge lt le`) of
//! a property with a string, number or timestamp literal, joined by `and`/`or` with
//! parentheses; unknown properties are errors, as a real service answers them.

use serde_json::{json, Value};
use std::cmp::Ordering;

/// Parses `text` over the properties `fields`.
pub fn parse(text: &str, fields: &[&str]) -> Result<Expr, String> {
    let toks = tokenize(text)?;
    let mut parser = Parser {
        toks: &toks,
        pos: 0,
        fields,
    };
    let expr = parser.or()?;
    if parser.pos != toks.len() {
        return Err("unexpected tokens at the end of $filter".into());
    }
    Ok(expr)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Open,
    Close,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push(Tok::Open);
            i += 1;
        } else if c == ')' {
            out.push(Tok::Close);
            i += 1;
        } else if c == '\'' {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated string literal".into()),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        text.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        text.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(text));
        } else if let Some(len) = timestamp_at(&chars[i..]) {
            // A DateTimeOffset literal (unquoted in V4), compared as the stored stamps are
            // written: RFC 3339 in UTC with milliseconds.
            let text: String = chars[i..i + len].iter().collect();
            let stamp = crate::parse_ts(&text).ok_or(format!("bad timestamp {text}"))?;
            out.push(Tok::Str(crate::ts_millis(stamp)));
            i += len;
        } else if c.is_ascii_digit() || c == '-' {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Tok::Num(
                text.parse().map_err(|_| format!("bad number {text}"))?,
            ));
        } else if c.is_alphanumeric() || c == '_' || c == '/' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '/')
            {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else {
            return Err(format!("unexpected character {c}"));
        }
    }
    Ok(out)
}

/// The length of a DateTimeOffset literal (`2026-05-12T06:00:00.000Z`) at the start of
/// `chars`, if there is one.
fn timestamp_at(chars: &[char]) -> Option<usize> {
    let date_like = chars.len() > 10
        && chars[..4].iter().all(char::is_ascii_digit)
        && chars[4] == '-'
        && chars[7] == '-'
        && chars[10] == 'T';
    date_like.then(|| {
        chars
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.' | '+'))
            .count()
    })
}

/// A parsed filter.
pub enum Expr {
    Cmp(String, String, Value),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
    fields: &'a [&'a str],
}

impl Parser<'_> {
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Ident(x)) if x == w)
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.atom()?;
        while self.peek_word("and") {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.atom()?));
        }
        Ok(left)
    }

    fn atom(&mut self) -> Result<Expr, String> {
        if self.toks.get(self.pos) == Some(&Tok::Open) {
            self.pos += 1;
            let e = self.or()?;
            if self.toks.get(self.pos) != Some(&Tok::Close) {
                return Err("missing )".into());
            }
            self.pos += 1;
            return Ok(e);
        }
        let field = match self.toks.get(self.pos) {
            Some(Tok::Ident(f)) => f.clone(),
            _ => return Err("expected a property".into()),
        };
        if !self.fields.contains(&field.as_str()) {
            return Err(format!("Property '{field}' not found"));
        }
        let op = match self.toks.get(self.pos + 1) {
            Some(Tok::Ident(op)) if ["eq", "ne", "gt", "ge", "lt", "le"].contains(&op.as_str()) => {
                op.clone()
            }
            _ => return Err("expected a comparison operator".into()),
        };
        let value = match self.toks.get(self.pos + 2) {
            Some(Tok::Str(s)) => json!(s),
            Some(Tok::Num(n)) => json!(n),
            Some(Tok::Ident(w)) if w == "null" => Value::Null,
            Some(Tok::Ident(w)) if w == "true" || w == "false" => json!(w == "true"),
            _ => return Err("expected a literal".into()),
        };
        self.pos += 3;
        Ok(Expr::Cmp(field, op, value))
    }
}

/// Orders two property values of one kind (numbers, or strings such as timestamps).
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    }
}

/// True when `row` passes the filter.
pub fn eval(e: &Expr, row: &Value) -> bool {
    match e {
        Expr::And(a, b) => eval(a, row) && eval(b, row),
        Expr::Or(a, b) => eval(a, row) || eval(b, row),
        Expr::Cmp(field, op, lit) => {
            let ord = compare(&row[field.as_str()], lit);
            match op.as_str() {
                "eq" => ord == Some(Ordering::Equal),
                "ne" => ord != Some(Ordering::Equal),
                "gt" => ord == Some(Ordering::Greater),
                "ge" => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
                "lt" => ord == Some(Ordering::Less),
                _ => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
            }
        }
    }
}
