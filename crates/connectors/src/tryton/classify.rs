//! Tryton's answers as outcomes: a `UserError` is a business refusal (permanent, with its
//! message); a `UserWarning` is offered to the caller to accept; a concurrent write or a
//! busy database, 429, 5xx and timeouts are transient; a 401 asks for a new login.

use crate::client::{self, Reply};
use crate::CallOutcome;
use serde_json::Value;

/// The internal class of a `UserWarning` answer (its reason is the warning key).
pub const WARNING: &str = "tryton_warning";

pub fn user_error(error: &Value) -> String {
    // ["UserError", ["message", "description", …]] or ["'KeyError'", ""].
    match error {
        Value::Array(parts) => {
            let kind = parts.first().and_then(Value::as_str).unwrap_or("error");
            let message = match parts.get(1) {
                Some(Value::Array(args)) => args
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            if message.is_empty() {
                kind.to_string()
            } else {
                format!("{kind}: {message}")
            }
        }
        other => other.to_string(),
    }
}

/// The result of a JSON-RPC answer to `method`, or its outcome.
pub fn answer(method: &str, reply: &Reply) -> Result<Value, CallOutcome> {
    if reply.status == 401 {
        return Err(CallOutcome::Transient {
            class: "unauthorized".into(),
            reason: "HTTP 401: session refused".into(),
            retry_after: None,
        });
    }
    if !reply.ok() {
        let wait = client::seconds_header(&reply.headers, "retry-after");
        return Err(client::outcome(
            reply,
            wait,
            format!("HTTP {}: {} ({method})", reply.status, reply.excerpt()),
        ));
    }
    // A 2xx that is not a JSON-RPC answer (cut off, spoiled, an error page) says nothing
    // about what happened: never read it as an empty result.
    let body = reply.document().map_err(client::unreadable)?;
    if let Some(error) = body.get("error").filter(|e| !e.is_null()) {
        // ["UserWarning", [key, message, description]]: the caller may accept it.
        if error[0] == "UserWarning" {
            if let Some(key) = error[1][0].as_str() {
                return Err(CallOutcome::Transient {
                    class: WARNING.into(),
                    reason: key.to_string(),
                    retry_after: None,
                });
            }
        }
        let reason = format!("{} ({method})", user_error(error));
        // A concurrent write or a busy database is worth another try.
        if reason.contains("ConcurrencyException") || reason.contains("database is locked") {
            return Err(CallOutcome::Transient {
                class: "server_error".into(),
                reason,
                retry_after: None,
            });
        }
        return Err(CallOutcome::Permanent { reason });
    }
    match body.get("result") {
        Some(result) => Ok(result.clone()),
        None => Err(client::unreadable(format!(
            "the answer to {method} has neither `result` nor `error`: {}",
            reply.excerpt()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_errors_as_text() {
        let e = json!([
            "UserError",
            [
                "To get a quote for sale \"(6)\" you must enter an invoice address.",
                "",
                null
            ]
        ]);
        assert_eq!(
            user_error(&e),
            "UserError: To get a quote for sale \"(6)\" you must enter an invoice address."
        );
        assert_eq!(
            user_error(&json!(["'no.such.model'", ""])),
            "'no.such.model'"
        );
    }

    /// A 2xx that is not a JSON-RPC answer is unreadable, never an empty result: a search
    /// read as empty before a create would create a second record.
    #[test]
    fn a_spoiled_answer_is_unreadable_not_empty() {
        let reply = |body: &str| Reply {
            status: 200,
            headers: reqwest::header::HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        };
        for body in ["<html>502</html>", r#"{"result": [1, 2"#, r#"{"id": 1}"#] {
            match answer("model.sale.sale.search", &reply(body)) {
                Err(CallOutcome::Transient { class, .. }) => {
                    assert_eq!(class, "unreadable_answer", "{body}")
                }
                other => panic!("{body}: {other:?}"),
            }
        }
        assert_eq!(
            answer("m", &reply(r#"{"id": 1, "result": null}"#)).unwrap(),
            Value::Null
        );
    }
}
