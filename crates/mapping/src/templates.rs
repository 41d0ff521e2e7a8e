//! The minijinja environment every template renders in, and the compiler checks against:
//! minijinja's built-ins plus `b64encode` (standard base64 of the value's text, for
//! credentials such as `Basic` or Tryton's `Session` header).

use base64::Engine;

/// A new environment with omniflow's filters.
pub fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.add_filter("b64encode", |value: String| {
        base64::engine::general_purpose::STANDARD.encode(value.as_bytes())
    });
    env
}

#[cfg(test)]
mod tests {
    #[test]
    fn b64encode_encodes_the_text() {
        let out = super::environment()
            .render_str("{{ ('admin:1:' ~ 'abc') | b64encode }}", ())
            .unwrap();
        assert_eq!(out, "YWRtaW46MTphYmM=");
    }
}
