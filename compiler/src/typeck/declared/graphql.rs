//! A GraphQL operation's syntax as far as a request needs it: its tokens, balanced
//! brackets, one operation with a non-empty selection set, and its variables against the
//! ones a request gives.

use serde_json::Value;

#[derive(Debug, PartialEq)]
enum Token<'a> {
    Punct(char),
    Spread,
    Name(&'a str),
    Number,
    Str,
}

fn tokens(text: &str) -> Result<Vec<Token<'_>>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => i += 1,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'!' | b'$' | b'&' | b'(' | b')' | b':' | b'=' | b'@' | b'[' | b']' | b'{' | b'|'
            | b'}' => {
                out.push(Token::Punct(c as char));
                i += 1;
            }
            b'.' if text[i..].starts_with("...") => {
                out.push(Token::Spread);
                i += 3;
            }
            b'"' if text[i..].starts_with("\"\"\"") => {
                let end = text[i + 3..]
                    .find("\"\"\"")
                    .ok_or("a block string has no closing `\"\"\"`")?;
                out.push(Token::Str);
                i += end + 6;
            }
            b'"' => {
                i += 1;
                loop {
                    match bytes.get(i) {
                        None | Some(b'\n') => return Err("a string has no closing quote".into()),
                        Some(b'\\') => i += 2,
                        Some(b'"') => break,
                        Some(_) => i += 1,
                    }
                }
                out.push(Token::Str);
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'.' | b'+' | b'-'))
                {
                    i += 1;
                }
                out.push(Token::Number);
            }
            c if c == b'_' || c.is_ascii_alphabetic() => {
                let start = i;
                while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                out.push(Token::Name(&text[start..i]));
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return Err(format!("unexpected character `{ch}`"));
            }
        }
    }
    Ok(out)
}

/// Checks `query` and the `variables` a request gives it.
pub fn check(query: &str, variables: &Value) -> Result<(), String> {
    let tokens = tokens(query)?;
    let mut stack = Vec::new();
    for (idx, token) in tokens.iter().enumerate() {
        match token {
            Token::Punct(open @ ('{' | '(' | '[')) => stack.push(*open),
            Token::Punct(close @ ('}' | ')' | ']')) => {
                let want = match close {
                    '}' => '{',
                    ')' => '(',
                    _ => '[',
                };
                if stack.pop() != Some(want) {
                    return Err(format!("`{close}` closes nothing"));
                }
                if *close == '}' && tokens[idx - 1] == Token::Punct('{') {
                    return Err("a selection set `{}` is empty".into());
                }
            }
            _ => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("`{open}` is never closed"));
    }
    let operation = match tokens.first() {
        Some(Token::Punct('{')) => "query",
        Some(Token::Name(kind @ ("query" | "mutation" | "subscription"))) => kind,
        Some(_) => {
            return Err(
                "an operation starts with `query`, `mutation`, `subscription` or `{`".into(),
            )
        }
        None => return Err("the operation is empty".into()),
    };
    if !tokens.contains(&Token::Punct('{')) {
        return Err(format!("the {operation} has no selection set `{{ ... }}`"));
    }
    // Variables declared in the operation's `( $name: Type ... )`, and used after it.
    let mut declared: Vec<(&str, bool)> = Vec::new();
    let mut used: Vec<&str> = Vec::new();
    let body_start = tokens
        .iter()
        .position(|t| *t == Token::Punct('{'))
        .unwrap_or(0);
    for (idx, token) in tokens.iter().enumerate() {
        if *token != Token::Punct('$') {
            continue;
        }
        let Some(Token::Name(name)) = tokens.get(idx + 1) else {
            return Err("`$` is not followed by a variable name".into());
        };
        if idx < body_start {
            // `$name: Type!` without `= default` must be given.
            let mut j = idx + 3;
            let mut depth = 0;
            while let Some(t) = tokens.get(j) {
                match t {
                    Token::Punct('[') => depth += 1,
                    Token::Punct(']') => depth -= 1,
                    Token::Name(_) | Token::Punct('!') => {}
                    _ => break,
                }
                j += 1;
                if depth == 0 && !matches!(tokens.get(j), Some(Token::Punct('!' | ']' | '['))) {
                    break;
                }
            }
            let required = tokens.get(j - 1) == Some(&Token::Punct('!'))
                && tokens.get(j) != Some(&Token::Punct('='));
            declared.push((name, required));
        } else {
            used.push(name);
        }
    }
    if let Some(name) = used.iter().find(|u| !declared.iter().any(|(d, _)| d == *u)) {
        return Err(format!(
            "`${name}` is used but the operation does not declare it"
        ));
    }
    let given = variables.as_object();
    if let Some(given) = given {
        if let Some(name) = given.keys().find(|k| !declared.iter().any(|(d, _)| d == k)) {
            return Err(format!(
                "`variables` gives `{name}`, which the operation does not declare (`${name}: Type`)"
            ));
        }
    }
    if let Some((name, _)) = declared
        .iter()
        .find(|(d, required)| *required && !given.is_some_and(|g| g.contains_key(*d)))
    {
        return Err(format!(
            "`${name}` is required (`!`) but `variables` does not give it"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operations_and_their_variables() {
        let orders = "query Orders($after: String, $q: String!) { orders(first: 50, after: $after, query: $q) { nodes { id } pageInfo { hasNextPage endCursor } } }";
        check(orders, &json!({"after": null, "q": "x"})).unwrap();
        check("{ shop { name } }", &json!({})).unwrap();
        check(
            "mutation M($input: [Item!]! = []) { set(input: $input) { userErrors { message } } }",
            &json!({}),
        )
        .unwrap();
        let problem = |q: &str, v: Value| check(q, &v).unwrap_err();
        assert!(problem("query { orders { id }", json!({})).contains("never closed"));
        assert!(problem("query { orders { } }", json!({})).contains("empty"));
        assert!(problem("orders { id }", json!({})).contains("starts with"));
        assert!(problem("query { orders(after: $after) { id } }", json!({}))
            .contains("does not declare"));
        assert!(
            problem("query($a: Int) { x(a: $a) { id } }", json!({"b": 1})).contains("gives `b`")
        );
        assert!(problem(orders, json!({"after": null})).contains("`$q` is required"));
        assert!(problem("query { x(s: \"open) { id } }", json!({})).contains("closing quote"));
        assert!(problem("query { x % }", json!({})).contains("unexpected character"));
    }
}
