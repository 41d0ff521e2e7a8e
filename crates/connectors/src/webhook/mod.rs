//! The generic `webhook` connector: inbound deliveries checked with a configurable
//! signature scheme (`scheme`): `hmac_sha256_base64` over the body in a configurable header
//! (the default), `hmac_sha256_url_body` (Square's), `standard_webhooks` (ShipBob's), or
//! `none` for trusted networks.
//!
//! It only receives, so it has no settings, read, write or classify files; its own schemes
//! are in `auth`.

pub mod auth;

use crate::api::{ConnectorError, Registry, Verifier};
use crate::signatures::{need, text};

/// Registers `webhook.receive`.
pub fn register(registry: &mut Registry) {
    registry.verifier("webhook", "receive", |_, s| {
        let need = |name| need(s, "webhook", name);
        let verifier: Box<dyn Verifier> =
            match text(s, "scheme").as_deref().unwrap_or("hmac_sha256_base64") {
                "none" => Box::new(auth::Unsigned),
                "hmac_sha256_base64" => Box::new(auth::BodyHmac {
                    header: text(s, "signature_header").unwrap_or_else(|| "x-signature".into()),
                    secret: need("secret")?.into_bytes(),
                }),
                "hmac_sha256_url_body" => Box::new(crate::square::auth::SquareWebhooks {
                    key: need("secret")?.into_bytes(),
                    url: need("notification_url")?,
                }),
                "standard_webhooks" => Box::new(crate::shipbob::StandardWebhooks::from_secret(
                    &need("secret")?,
                )?),
                other => {
                    return Err(ConnectorError::BadSetting(format!(
                        "unknown webhook signature scheme `{other}`"
                    )))
                }
            };
        Ok(verifier)
    });
}
