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
use omniflow_ir::webhook::WebhookScheme;

/// Registers `webhook.receive`.
pub fn register(registry: &mut Registry) {
    registry.verifier("webhook", "receive", |_, s| {
        let need = |name| need(s, "webhook", name);
        let scheme = match text(s, "scheme") {
            None => WebhookScheme::DEFAULT,
            Some(name) => WebhookScheme::parse(&name).ok_or_else(|| {
                ConnectorError::BadSetting(format!("unknown webhook signature scheme `{name}`"))
            })?,
        };
        let verifier: Box<dyn Verifier> = match scheme {
            WebhookScheme::None => Box::new(auth::Unsigned),
            WebhookScheme::HmacSha256Base64 => Box::new(auth::BodyHmac {
                header: text(s, "signature_header").unwrap_or_else(|| "x-signature".into()),
                secret: need("secret")?.into_bytes(),
            }),
            WebhookScheme::HmacSha256UrlBody => Box::new(crate::square::auth::SquareWebhooks {
                key: need("secret")?.into_bytes(),
                url: need("notification_url")?,
            }),
            WebhookScheme::StandardWebhooks => Box::new(
                crate::shipbob::StandardWebhooks::from_secret(&need("secret")?)?,
            ),
        };
        Ok(verifier)
    });
}
