//! Rendering a declaration's templates: text, and JSON bodies whose strings are
//! templates (a string that is one `{{ expression }}` alone takes the expression's value,
//! so a number stays a number and an absent value is `null`).

use minijinja::Value as Context;
use serde_json::Value;

/// The environment of one declared connector (omniflow's filters included).
pub struct Templates {
    env: minijinja::Environment<'static>,
}

impl Default for Templates {
    fn default() -> Templates {
        let mut env = omniflow_mapping::templates::environment();
        // A null (a message's field, an unset setting) renders empty, as an absent value
        // does, not as `none`.
        env.set_formatter(|out, state, value| {
            if value.is_none() {
                Ok(())
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        Templates { env }
    }
}

impl Templates {
    /// `text` rendered over `ctx` (returned as is when it is not a template).
    pub fn text(&self, text: &str, ctx: &Context) -> Result<String, String> {
        if !text.contains("{{") && !text.contains("{%") {
            return Ok(text.to_string());
        }
        self.env
            .render_str(text, ctx)
            .map_err(|e| format!("template `{text}`: {e}"))
    }

    /// A string of a JSON body: one expression alone keeps its value's type.
    pub fn value(&self, text: &str, ctx: &Context) -> Result<Value, String> {
        let trimmed = text.trim();
        if let Some(inner) = trimmed
            .strip_prefix("{{")
            .and_then(|t| t.strip_suffix("}}"))
            .filter(|inner| !inner.contains("{{") && !inner.contains("}}"))
            // Whitespace control (`{{- x -}}`) trims text around the block: nothing here.
            .map(|inner| {
                inner
                    .trim_start_matches(['-', '+'])
                    .trim_end_matches(['-', '+'])
            })
        {
            let expr = self
                .env
                .compile_expression(inner)
                .map_err(|e| format!("template `{text}`: {e}"))?;
            let out = expr
                .eval(ctx)
                .map_err(|e| format!("template `{text}`: {e}"))?;
            if out.is_undefined() || out.is_none() {
                return Ok(Value::Null);
            }
            return serde_json::to_value(&out).map_err(|e| format!("template `{text}`: {e}"));
        }
        self.text(text, ctx).map(Value::String)
    }

    /// A JSON value with every string rendered.
    pub fn json(&self, value: &Value, ctx: &Context) -> Result<Value, String> {
        Ok(match value {
            Value::String(s) => self.value(s, ctx)?,
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.json(i, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            // A member whose template renders to nothing (a first page's cursor) is left
            // out, as APIs read an absent member, not a null one, as "not given".
            Value::Object(map) => {
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    let rendered = self.json(v, ctx)?;
                    if !(rendered.is_null() && v.is_string()) {
                        out.insert(k.clone(), rendered);
                    }
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_lone_expression_keeps_its_type() {
        let t = Templates::default();
        let ctx = Context::from_serialize(
            json!({"page": {"offset": 40, "after": null}, "settings": {"user": "ann"}}),
        );
        let body = json!({"params": ["{{ settings.user }}", "{{ page.offset }}", "{{ page.after }}", "at {{ page.offset }}"], "n": 3, "cursor": "{{ page.after }}", "none": null});
        assert_eq!(
            t.json(&body, &ctx).unwrap(),
            json!({"params": ["ann", 40, null, "at 40"], "n": 3, "none": null})
        );
        assert_eq!(t.text("/a/{{ settings.user }}", &ctx).unwrap(), "/a/ann");
        assert_eq!(t.value("{{- page.offset -}}", &ctx).unwrap(), json!(40));
        assert_eq!(t.text("code={{ page.after }}", &ctx).unwrap(), "code=");
        assert!(t.text("{{ nope(", &ctx).is_err());
    }
}
