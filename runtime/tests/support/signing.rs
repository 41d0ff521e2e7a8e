//! Signing webhook deliveries the way the `webhook` connector verifies them (shared with
//! the benchmarks by `#[path]`).
#![allow(dead_code)]

/// base64(HMAC-SHA256(secret, body)).
pub fn sign(secret: &str, body: &str) -> String {
    use base64::Engine;
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}
