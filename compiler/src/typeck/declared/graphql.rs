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
                // `\"""` inside a block string is an escaped quote run, not its end.
                let mut j = i + 3;
                loop {
                    let end = text[j..]
                        .find("\"\"\"")
                        .ok_or("a block string has no closing `\"\"\"`")?;
                    if text[..j + end].ends_with('\\') {
                        j += end + 3;
                        continue;
                    }
                    i = j + end + 3;
                    break;
                }
                out.push(Token::Str);
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

/// One top-level definition: where its header and its selection set are in the tokens.
struct Definition {
    operation: bool,
    /// Tokens before the selection set (`query Name($a: Int = 1)`).
    header: std::ops::Range<usize>,
    /// The selection set, braces included.
    body: std::ops::Range<usize>,
}

/// The document's definitions; `Err` for brackets that do not match.
fn definitions(tokens: &[Token]) -> Result<Vec<Definition>, String> {
    let mut defs = Vec::new();
    let mut at = 0;
    while at < tokens.len() {
        let operation = match &tokens[at] {
            Token::Punct('{') | Token::Name("query" | "mutation" | "subscription") => true,
            Token::Name("fragment") => false,
            _ => {
                return Err(
                    "an operation starts with `query`, `mutation`, `subscription` or `{`".into(),
                )
            }
        };
        // The header ends at the first `{` outside parentheses (a default value's object
        // is inside them).
        let mut depth = 0i32;
        let mut open = None;
        for (idx, token) in tokens.iter().enumerate().skip(at) {
            match token {
                Token::Punct('(' | '[') => depth += 1,
                Token::Punct(')' | ']') => depth -= 1,
                Token::Punct('{') if depth == 0 => {
                    open = Some(idx);
                    break;
                }
                _ => {}
            }
        }
        let Some(open) = open else {
            return Err("the operation has no selection set `{ ... }`".into());
        };
        let mut stack: Vec<char> = Vec::new();
        let mut close = None;
        for (idx, token) in tokens.iter().enumerate().skip(open) {
            match token {
                Token::Punct(c @ ('{' | '(' | '[')) => stack.push(*c),
                Token::Punct(c @ ('}' | ')' | ']')) => {
                    let want = match c {
                        '}' => '{',
                        ')' => '(',
                        _ => '[',
                    };
                    if stack.pop() != Some(want) {
                        return Err(format!("`{c}` closes nothing"));
                    }
                    // `{}` is an empty selection set, unless it is an argument's object.
                    if *c == '}' && tokens[idx - 1] == Token::Punct('{') && !stack.contains(&'(') {
                        return Err("a selection set `{}` is empty".into());
                    }
                    if stack.is_empty() {
                        close = Some(idx);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(close) = close else {
            return Err(format!(
                "`{}` is never closed",
                stack.last().unwrap_or(&'{')
            ));
        };
        defs.push(Definition {
            operation,
            header: at..open,
            body: open..close + 1,
        });
        at = close + 1;
    }
    Ok(defs)
}

/// Checks `query` and the `variables` a request gives it.
pub fn check(query: &str, variables: &Value) -> Result<(), String> {
    let tokens = tokens(query)?;
    if tokens.is_empty() {
        return Err("the operation is empty".into());
    }
    let defs = definitions(&tokens)?;
    let operations: Vec<&Definition> = defs.iter().filter(|d| d.operation).collect();
    let Some(operation) = operations.first() else {
        return Err("the document holds fragments but no operation".into());
    };
    if operations.len() > 1 {
        return Err("the document holds several operations; a request sends one".into());
    }
    // Variables declared in the header's parentheses (not its directives):
    // `$name: Type` with `!` and no `= default` required.
    let whole_header = &tokens[operation.header.clone()];
    let header = whole_header;
    let (header, definitions) = match header.iter().position(|t| *t == Token::Punct('(')) {
        // `query Name (` or `query (`: the variable definitions.
        Some(open) if open <= 2 && !header[..open].contains(&Token::Punct('@')) => {
            let mut depth = 0;
            let close = header[open..]
                .iter()
                .position(|t| {
                    match t {
                        Token::Punct('(') => depth += 1,
                        Token::Punct(')') => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(header.len(), |at| open + at + 1);
            (&header[open..close], open..close)
        }
        _ => (&header[..0], 0..0),
    };
    let mut declared: Vec<(&str, bool)> = Vec::new();
    for (idx, token) in header.iter().enumerate() {
        if *token != Token::Punct('$') {
            continue;
        }
        let Some(Token::Name(name)) = header.get(idx + 1) else {
            return Err("`$` is not followed by a variable name".into());
        };
        if header.get(idx + 2) != Some(&Token::Punct(':')) {
            return Err(format!("the variable `${name}` has no type"));
        }
        let mut end = idx + 3;
        while matches!(
            header.get(end),
            Some(Token::Name(_) | Token::Punct('[' | ']' | '!'))
        ) {
            end += 1;
        }
        let required = header.get(end - 1) == Some(&Token::Punct('!'))
            && header.get(end) != Some(&Token::Punct('='));
        declared.push((name, required));
    }
    // Variables used in the operation's directives, its selection set and fragments.
    let mut used: Vec<&str> = Vec::new();
    for (idx, token) in whole_header.iter().enumerate() {
        if *token == Token::Punct('$') && !definitions.contains(&idx) {
            if let Some(Token::Name(name)) = whole_header.get(idx + 1) {
                used.push(name);
            }
        }
    }
    for def in &defs {
        let body = &tokens[def.body.clone()];
        for (idx, token) in body.iter().enumerate() {
            if *token == Token::Punct('$') {
                match body.get(idx + 1) {
                    Some(Token::Name(name)) => used.push(name),
                    _ => return Err("`$` is not followed by a variable name".into()),
                }
            }
        }
    }
    if let Some(name) = used.iter().find(|u| !declared.iter().any(|(d, _)| d == *u)) {
        return Err(format!(
            "`${name}` is used but the operation does not declare it"
        ));
    }
    if let Some((name, _)) = declared.iter().find(|(d, _)| !used.contains(d)) {
        return Err(format!(
            "`${name}` is declared but never used (a page cursor must reach the query)"
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
        // Valid documents: a default object value, an empty argument object, a fragment
        // first, an escaped quote run in a block string.
        check(
            "query Q($f: F = {status: OPEN}, $after: String) { orders(filter: $f, after: $after) { id } }",
            &json!({}),
        )
        .unwrap();
        check("{ orders(filter: {}) { id } }", &json!({})).unwrap();
        check(
            "fragment F on Order { id } query Q($a: String) { orders(after: $a) { ...F } }",
            &json!({"a": null}),
        )
        .unwrap();
        check("{ x(note: \"\"\"a \\\"\"\" b\"\"\") { id } }", &json!({})).unwrap();
        assert!(problem("{ a { id } } { b { id } }", json!({})).contains("several operations"));
        assert!(
            problem("query Q($after: String) { orders { id } }", json!({})).contains("never used")
        );
        assert!(problem("fragment F on Order { id }", json!({})).contains("no operation"));
        check(
            "query Q($a: Boolean!) @skip(if: $a) { x { id } }",
            &json!({"a": true}),
        )
        .unwrap();
    }
}
