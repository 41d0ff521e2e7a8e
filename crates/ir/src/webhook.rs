//! The signature schemes of the generic `webhook` connector: the compiler checks a
//! flow's `scheme` against this list and the runtime builds a verifier for each, so the
//! two cannot drift apart.

/// How a webhook delivery proves where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookScheme {
    /// HMAC-SHA256 of the body, base64, in a configurable header (the default).
    HmacSha256Base64,
    /// HMAC-SHA256 of the notification URL followed by the body (Square's).
    HmacSha256UrlBody,
    /// The Standard Webhooks signature (ShipBob's).
    StandardWebhooks,
    /// No signature: for trusted networks only.
    None,
}

impl WebhookScheme {
    /// Every scheme, in the order the documentation lists them.
    pub const ALL: [WebhookScheme; 4] = [
        WebhookScheme::HmacSha256Base64,
        WebhookScheme::HmacSha256UrlBody,
        WebhookScheme::StandardWebhooks,
        WebhookScheme::None,
    ];

    /// The scheme a source gets when it names none.
    pub const DEFAULT: WebhookScheme = WebhookScheme::HmacSha256Base64;

    /// The name a flow writes.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookScheme::HmacSha256Base64 => "hmac_sha256_base64",
            WebhookScheme::HmacSha256UrlBody => "hmac_sha256_url_body",
            WebhookScheme::StandardWebhooks => "standard_webhooks",
            WebhookScheme::None => "none",
        }
    }

    /// The scheme named `name`, if there is one.
    pub fn parse(name: &str) -> Option<WebhookScheme> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The names of every scheme.
    pub fn names() -> impl Iterator<Item = &'static str> {
        Self::ALL.into_iter().map(Self::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::WebhookScheme;

    #[test]
    fn every_scheme_is_found_by_its_name_and_nothing_else_is() {
        for scheme in WebhookScheme::ALL {
            assert_eq!(WebhookScheme::parse(scheme.as_str()), Some(scheme));
        }
        assert_eq!(WebhookScheme::names().count(), WebhookScheme::ALL.len());
        for other in ["", "HMAC_SHA256_BASE64", "hmac_sha256", "none "] {
            assert_eq!(WebhookScheme::parse(other), None, "{other}");
        }
    }
}
