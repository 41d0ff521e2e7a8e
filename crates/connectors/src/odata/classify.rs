//! OData answers as outcomes: V4 (`{"error":{code, message, details}}`) and V2
//! (`message.value`, `innererror`) error bodies become the dead-letter reason.

use crate::client::Reply;
use serde_json::Value;

/// The error of an OData answer (V4 or V2 shape) as text.
pub fn error_text(reply: &Reply) -> String {
    let body = reply.json();
    let Some(error) = body.get("error") else {
        return format!("HTTP {}: {}", reply.status, reply.excerpt());
    };
    let message = match &error["message"] {
        Value::String(s) => s.clone(),
        Value::Object(m) => m
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        _ => String::new(),
    };
    let mut text = format!(
        "HTTP {} {}: {message}",
        reply.status,
        error["code"].as_str().unwrap_or("")
    );
    let details = error["details"]
        .as_array()
        .or_else(|| error["innererror"]["errordetails"].as_array());
    if let Some(details) = details {
        let parts: Vec<String> = details
            .iter()
            .map(|d| {
                let message = d["message"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| d["message"]["value"].as_str().unwrap_or("").to_string());
                match d["target"].as_str() {
                    Some(target) => format!("{target}: {message}"),
                    None => message,
                }
            })
            .collect();
        if !parts.is_empty() {
            text.push_str(&format!(" ({})", parts.join("; ")));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Default::default(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn v4_and_v2_errors() {
        let v4 = reply(
            400,
            r#"{"error":{"code":"MULTIPLE_ERRORS","message":"Multiple errors occurred","details":[{"code":"ASSERT_MANDATORY","target":"customer","message":"Provide the missing value."}]}}"#,
        );
        assert_eq!(error_text(&v4), "HTTP 400 MULTIPLE_ERRORS: Multiple errors occurred (customer: Provide the missing value.)");
        let v2 = reply(
            400,
            r#"{"error":{"code":"SD/123","message":{"lang":"en","value":"Material unknown"},"innererror":{"errordetails":[{"code":"X","message":"Material ITM-9 not found"}]}}}"#,
        );
        assert_eq!(
            error_text(&v2),
            "HTTP 400 SD/123: Material unknown (Material ITM-9 not found)"
        );
    }
}
