//! The simulated seller's catalog item variations: RetrieveCatalogObject
//! (`GET /v2/catalog/object/{id}`) and UpsertCatalogObject (`POST /v2/catalog/object`,
//! idempotent by key) of existing variations. An update carries the whole object with the
//! current `version` (else `VERSION_MISMATCH`), fixed prices in integer minor units of
//! the seller's currency (else `CURRENCY_MISMATCH`), and gets a new version.

use super::{bad, err, Shared, System};
use crate::{catalog, ts_millis};
use omniflow_http::server::Resp;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The seller's currency.
const CURRENCY: &str = "USD";

/// Catalog objects by id (item variations only).
pub struct Objects {
    by_id: BTreeMap<String, Value>,
    last_version: i64,
}

impl Objects {
    /// One variation per seeded item sold in store, at its catalogue price.
    pub fn new() -> Objects {
        let epoch = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        let version = 1_600_000_000_000;
        let by_id = catalog::ITEMS
            .iter()
            .filter_map(|item| {
                let id = item.square_variation?;
                let object = json!({
                    "type": "ITEM_VARIATION", "id": id, "version": version,
                    "updated_at": ts_millis(epoch), "is_deleted": false,
                    "present_at_all_locations": true,
                    "item_variation_data": {
                        "item_id": format!("ITEM{}", &id[..20]),
                        "name": item.title.split(" - ").nth(1).unwrap_or("Regular"),
                        "sku": item.item_code, "pricing_type": "FIXED_PRICING",
                        "price_money": {"amount": item.price_cents, "currency": CURRENCY},
                    }
                });
                Some((id.to_string(), object))
            })
            .collect();
        Objects {
            by_id,
            last_version: version,
        }
    }

    /// The price of a variation in minor units.
    pub fn price_of(&self, id: &str) -> Option<i64> {
        self.by_id.get(id)?["item_variation_data"]["price_money"]["amount"].as_i64()
    }
}

impl Default for Objects {
    fn default() -> Self {
        Objects::new()
    }
}

/// RetrieveCatalogObject.
pub fn retrieve(sb: &Shared, id: &str) -> Resp {
    match sb.square.borrow().objects.by_id.get(id) {
        Some(object) => Resp::json(200, json!({ "object": object })),
        None => err(
            404,
            "INVALID_REQUEST_ERROR",
            "NOT_FOUND",
            &format!("Object with ID `{id}` not found."),
        ),
    }
}

fn invalid(field: &str, code: &str, detail: &str) -> Resp {
    Resp::json(
        400,
        json!({"errors": [{"category": "INVALID_REQUEST_ERROR", "code": code, "detail": detail, "field": field}]}),
    )
}

/// UpsertCatalogObject of an existing item variation (called once per idempotency key).
pub fn upsert(sb: &Shared, body: &Value) -> Resp {
    let Some(object) = body.get("object").filter(|o| o.is_object()) else {
        return bad("MISSING_REQUIRED_PARAMETER", "Field must be set: object");
    };
    if object["type"] != "ITEM_VARIATION" {
        return invalid(
            "object.type",
            "INVALID_VALUE",
            "The sandbox catalog holds item variations only.",
        );
    }
    let id = object["id"].as_str().unwrap_or_default();
    let data = &object["item_variation_data"];
    let mut st = sb.square.borrow_mut();
    let Some(current) = st.objects.by_id.get(id) else {
        return invalid(
            "object.id",
            "INVALID_VALUE",
            &format!("Received request to update nonexistent object {id}."),
        );
    };
    if object["version"].as_i64() != current["version"].as_i64() {
        return invalid(
            "version",
            "VERSION_MISMATCH",
            "Object version does not match latest database version.",
        );
    }
    if data["item_id"] != current["item_variation_data"]["item_id"] {
        return invalid(
            "item_variation_data.item_id",
            "INVALID_VALUE",
            "item_variation_data.item_id must name the variation's item.",
        );
    }
    if data["pricing_type"] == "FIXED_PRICING" {
        let money = &data["price_money"];
        if money["amount"].as_i64().is_none_or(|a| a < 0) {
            return invalid(
                "item_variation_data.price_money.amount",
                "INVALID_VALUE",
                "price_money.amount must be a non-negative integer.",
            );
        }
        if money["currency"] != CURRENCY {
            return invalid(
                "item_variation_data.price_money.currency",
                "CURRENCY_MISMATCH",
                &format!("The currency must be the seller's currency {CURRENCY}."),
            );
        }
    }
    st.objects.last_version =
        (chrono::Utc::now().timestamp_millis()).max(st.objects.last_version + 1);
    let mut stored = object.clone();
    stored["version"] = json!(st.objects.last_version);
    stored["updated_at"] = json!(ts_millis(chrono::Utc::now()));
    stored["is_deleted"] = json!(false);
    st.objects.by_id.insert(id.to_string(), stored.clone());
    drop(st);
    sb.bump(System::Square, "catalog_upserts");
    Resp::json(200, json!({"catalog_object": stored, "id_mappings": []}))
}

#[cfg(test)]
mod tests {
    use crate::testutil::{client, parts, with_sandbox};
    use crate::SandboxConfig;
    use serde_json::{json, Value};

    async fn send(
        base: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = client()
            .request(method, format!("{base}/v2/{path}"))
            .header(
                "Authorization",
                format!("Bearer {}", super::super::ACCESS_TOKEN),
            )
            .header("Square-Version", "2025-08-20");
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let (status, _, body) = parts(request.send().await.unwrap()).await;
        (status, body)
    }

    #[test]
    fn upserts_need_the_current_version_and_the_sellers_currency() {
        with_sandbox(SandboxConfig::default(), |base| async move {
            let id = "W62UWFY35CWMYGVWK6TWJDNI";
            let (status, read) = send(
                &base,
                reqwest::Method::GET,
                &format!("catalog/object/{id}"),
                None,
            )
            .await;
            assert_eq!(status, 200);
            let mut object = read["object"].clone();
            object["item_variation_data"]["price_money"]["amount"] = json!(2500);
            let upsert = json!({"idempotency_key": "k1", "object": object});
            let (status, done) = send(
                &base,
                reqwest::Method::POST,
                "catalog/object",
                Some(&upsert),
            )
            .await;
            assert_eq!(status, 200, "{done}");
            assert!(done["catalog_object"]["version"].as_i64() > object["version"].as_i64());
            // The same object at its old version, under a new key: a conflict.
            let stale = json!({"idempotency_key": "k2", "object": object});
            let (status, err) =
                send(&base, reqwest::Method::POST, "catalog/object", Some(&stale)).await;
            assert_eq!(status, 400);
            assert_eq!(err["errors"][0]["code"], "VERSION_MISMATCH");
            let mut euros = done["catalog_object"].clone();
            euros["item_variation_data"]["price_money"]["currency"] = json!("EUR");
            let body = json!({"idempotency_key": "k3", "object": euros});
            let (status, err) =
                send(&base, reqwest::Method::POST, "catalog/object", Some(&body)).await;
            assert_eq!(status, 400);
            assert_eq!(err["errors"][0]["code"], "CURRENCY_MISMATCH");
            let (status, err) =
                send(&base, reqwest::Method::GET, "catalog/object/NOPE", None).await;
            assert_eq!(status, 404);
            assert_eq!(err["errors"][0]["code"], "NOT_FOUND");
        });
    }
}
