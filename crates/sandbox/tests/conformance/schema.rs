//! A validator for the JSON Schema dialects of vendor API descriptions (Swagger 2.0 and
//! OpenAPI 3.0/3.1): `$ref`, `type` (a name or a list, `nullable`, `x-nullable`),
//! `properties`, `required`, `additionalProperties`, `items`, `enum`, `oneOf`/`anyOf`/
//! `allOf`, `format: date-time`, string lengths, numeric bounds and `minItems`.
//!
//! Strict about what the sandbox adds: an object schema that lists some `properties` and
//! says nothing about `additionalProperties` is closed here, so a field the vendor does not
//! document is reported (pass the vendor's later additions in `extra`).

use serde_json::Value;
use std::collections::BTreeSet;

/// One vendor description.
pub struct Doc {
    root: Value,
    /// `Schema.field` pairs the vendor added after this description's version.
    extra: BTreeSet<String>,
}

impl Doc {
    /// Loads `specs/<path>` of the sandbox crate.
    pub fn load(path: &str, extra: &[&str]) -> Doc {
        let full = format!("{}/specs/{path}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
        Doc {
            root: serde_json::from_str(&text).unwrap_or_else(|e| panic!("{full}: {e}")),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The schema of `method path`'s answer with `status` (`default` when the status is
    /// not listed); `Err` when the operation or the status is not documented.
    pub fn response(&self, method: &str, path: &str, status: u16) -> Result<&Value, String> {
        let op = &self.root["paths"][path][method.to_ascii_lowercase()];
        if !op.is_object() {
            return Err(format!("{method} {path} is not in the description"));
        }
        let responses = &op["responses"];
        let answer = match responses.get(status.to_string()) {
            Some(a) => a,
            None => responses.get("default").ok_or(format!(
                "{method} {path} does not document status {status} (it has {:?})",
                responses.as_object().map(|o| o.keys().collect::<Vec<_>>())
            ))?,
        };
        let answer = self.deref(answer);
        // OpenAPI 3: content/application/json/schema; Swagger 2: schema.
        Ok(answer["content"]["application/json"]
            .get("schema")
            .or_else(|| answer.get("schema"))
            .unwrap_or(&Value::Null))
    }

    /// The headers the description documents on `method path`'s answer with `status`.
    pub fn headers(&self, method: &str, path: &str, status: u16) -> Vec<String> {
        let responses = &self.root["paths"][path][method.to_ascii_lowercase()]["responses"];
        let answer = self.deref(&responses[status.to_string()]);
        answer["headers"]
            .as_object()
            .map(|h| h.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// A named schema (`components/schemas` or `definitions`).
    pub fn schema(&self, name: &str) -> &Value {
        let s = &self.root["components"]["schemas"][name];
        if s.is_null() {
            &self.root["definitions"][name]
        } else {
            s
        }
    }

    /// Every way `value` breaks `schema`, each with its JSON path.
    pub fn check(&self, schema: &Value, value: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.walk(schema, value, "$", "", &mut errors);
        errors
    }

    fn deref<'a>(&'a self, node: &'a Value) -> &'a Value {
        let mut node = node;
        for _ in 0..64 {
            match node.get("$ref").and_then(Value::as_str) {
                Some(r) => node = self.pointer(r),
                None => break,
            }
        }
        node
    }

    fn pointer(&self, reference: &str) -> &Value {
        let path = reference.trim_start_matches('#');
        self.root
            .pointer(path)
            .unwrap_or_else(|| panic!("unresolved $ref {reference}"))
    }

    fn walk(&self, schema: &Value, value: &Value, at: &str, name: &str, errors: &mut Vec<String>) {
        let (schema, name) = match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => (self.pointer(r), r.rsplit('/').next().unwrap_or(name)),
            None => (schema, name),
        };
        if schema.is_null() || schema.as_object().is_some_and(|o| o.is_empty()) {
            return;
        }
        if value.is_null() && nullable(schema) {
            return;
        }
        if let Some(all) = schema["allOf"].as_array() {
            for s in all {
                self.walk(s, value, at, name, errors);
            }
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(any) = schema[key].as_array() {
                let fits = any.iter().any(|s| {
                    let mut e = Vec::new();
                    self.walk(s, value, at, name, &mut e);
                    e.is_empty()
                });
                if !fits {
                    errors.push(format!("{at}: fits none of {key} in {name}: {value}"));
                }
            }
        }
        if let Some(expected) = types(schema) {
            let actual = type_of(value);
            let ok = expected
                .iter()
                .any(|t| *t == actual || (*t == "number" && actual == "integer"));
            if !ok {
                errors.push(format!(
                    "{at}: {actual} where {name} says {expected:?}: {value}"
                ));
                return;
            }
        }
        if let Some(allowed) = schema["enum"].as_array() {
            if !allowed.contains(value) {
                errors.push(format!("{at}: {value} is not one of {name}'s {allowed:?}"));
            }
        }
        match value {
            Value::Object(fields) => self.object(schema, fields, at, name, errors),
            Value::Array(items) => {
                if let Some(min) = schema["minItems"].as_u64() {
                    if (items.len() as u64) < min {
                        errors.push(format!("{at}: fewer than {min} items"));
                    }
                }
                if let Some(item) = schema.get("items") {
                    for (i, v) in items.iter().enumerate() {
                        self.walk(item, v, &format!("{at}[{i}]"), name, errors);
                    }
                }
            }
            Value::String(s) => {
                let len = s.chars().count() as u64;
                if schema["maxLength"].as_u64().is_some_and(|m| len > m)
                    || schema["minLength"].as_u64().is_some_and(|m| len < m)
                {
                    errors.push(format!("{at}: length {len} outside {name}'s bounds"));
                }
                if schema["format"] == "date-time"
                    && chrono::DateTime::parse_from_rfc3339(s).is_err()
                {
                    errors.push(format!("{at}: `{s}` is not an RFC 3339 date-time"));
                }
            }
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(0.0);
                if schema["minimum"].as_f64().is_some_and(|m| x < m)
                    || schema["maximum"].as_f64().is_some_and(|m| x > m)
                {
                    errors.push(format!("{at}: {x} outside {name}'s bounds"));
                }
            }
            _ => {}
        }
    }

    fn object(
        &self,
        schema: &Value,
        fields: &serde_json::Map<String, Value>,
        at: &str,
        name: &str,
        errors: &mut Vec<String>,
    ) {
        for key in schema["required"].as_array().into_iter().flatten() {
            if let Some(key) = key.as_str() {
                if !fields.contains_key(key) {
                    errors.push(format!("{at}: {name} requires `{key}`"));
                }
            }
        }
        let properties = schema["properties"].as_object();
        for (key, v) in fields {
            let path = format!("{at}.{key}");
            match properties.and_then(|p| p.get(key)) {
                Some(s) => self.walk(s, v, &path, name, errors),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(true)) => {}
                    Some(Value::Bool(false)) => {
                        errors.push(format!("{path}: {name} is closed and has no `{key}`"))
                    }
                    Some(extra) => self.walk(extra, v, &path, name, errors),
                    None if properties.is_some_and(|p| !p.is_empty())
                        && !self.extra.contains(&format!("{name}.{key}")) =>
                    {
                        errors.push(format!("{path}: {name} does not document `{key}`"))
                    }
                    None => {}
                },
            }
        }
    }
}

fn nullable(schema: &Value) -> bool {
    schema["nullable"] == true
        || schema["x-nullable"] == true
        || schema["type"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "null"))
}

fn types(schema: &Value) -> Option<Vec<&str>> {
    match &schema["type"] {
        Value::String(t) => Some(vec![t.as_str()]),
        Value::Array(list) => Some(list.iter().filter_map(Value::as_str).collect()),
        _ if schema.get("properties").is_some() => Some(vec!["object"]),
        _ => None,
    }
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(root: Value) -> Doc {
        Doc {
            root,
            extra: BTreeSet::new(),
        }
    }

    #[test]
    fn the_validator_catches_each_kind_of_breach() {
        let d = doc(
            json!({"definitions": {"Money": {"type": "object", "required": ["Amount"],
            "properties": {"Amount": {"type": "string"}, "N": {"type": "integer"},
                "At": {"type": "string", "format": "date-time"},
                "S": {"type": "string", "enum": ["A", "B"]}}}}}),
        );
        let money = json!({"$ref": "#/definitions/Money"});
        assert!(d
            .check(&money, &json!({"Amount": "1.00", "N": 2}))
            .is_empty());
        let broken = json!({"N": 2.5, "At": "yesterday", "S": "C", "Extra": 1});
        let errors = d.check(&money, &broken);
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(d.check(&money, &json!({"Amount": 1})).len() == 1);
    }
}
