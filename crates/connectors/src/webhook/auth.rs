//! The generic webhook connector's own schemes: none (a trusted network) and an HMAC-SHA256
//! of the body, base64, in a configurable header. Their delivery id is the first of the
//! usual id headers.

use crate::api::Verifier;
use crate::signatures::{check_b64, first_header, header, hmac, Refusal};
use hyper::HeaderMap;

/// Headers read for a delivery id, in order.
const ID_HEADERS: [&str; 4] = [
    "x-shopify-webhook-id",
    "webhook-id",
    "x-webhook-id",
    "idempotency-key",
];

/// Trusted network: no signature.
pub struct Unsigned;

impl Verifier for Unsigned {
    fn verify(&self, _headers: &HeaderMap, _body: &[u8]) -> Result<(), Refusal> {
        Ok(())
    }

    fn delivery_id(&self, headers: &HeaderMap, _body: &[u8]) -> Option<String> {
        first_header(headers, &ID_HEADERS)
    }
}

/// `hmac_sha256_base64` over the body in a configurable header.
pub struct BodyHmac {
    pub header: String,
    pub secret: Vec<u8>,
}

impl Verifier for BodyHmac {
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Refusal> {
        check_b64(
            &hmac(&self.secret, &[body]),
            header(headers, &self.header),
            &self.header,
        )
    }

    fn delivery_id(&self, headers: &HeaderMap, _body: &[u8]) -> Option<String> {
        first_header(headers, &ID_HEADERS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signatures::test_headers::headers;
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;

    #[test]
    fn body_hmac_reads_its_header_and_the_usual_ids() {
        let v = BodyHmac {
            header: "x-sig".into(),
            secret: b"k".to_vec(),
        };
        let body = b"{}";
        let h = headers(&[
            ("x-sig", B64.encode(hmac(b"k", &[body]))),
            ("x-webhook-id", "d1".into()),
        ]);
        assert_eq!(v.verify(&h, body), Ok(()));
        assert_eq!(v.delivery_id(&h, body).as_deref(), Some("d1"));
        assert_eq!(v.verify(&h, b"[]"), Err(Refusal::Mismatch));
        assert_eq!(Unsigned.verify(&headers(&[]), body), Ok(()));
    }
}
