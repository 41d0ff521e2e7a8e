//! The simulated shop's products and variants: `GET products.json` (limit, fields,
//! `page_info` paging by `Link`), `GET`/`PUT products/{id}.json` and
//! `GET`/`PUT variants/{id}.json`, with Shopify's validation answers (404 `Not Found`,
//! 400 for a missing root key, 422 with field errors).

use super::{errors, paging, shop_ts, Shared, System};
use crate::{base_url, catalog, cents_str, param, parse_cents, query_pairs};
use omniflow_http::server::{Req, Resp};
use serde_json::{json, Map, Value};

/// One variant.
pub struct Variant {
    pub(super) id: u64,
    pub(super) product_id: u64,
    pub(super) title: String,
    pub(super) sku: String,
    pub(super) price_cents: i64,
    pub(super) compare_at_cents: Option<i64>,
    pub(super) barcode: Option<String>,
    pub(super) grams: Option<i64>,
    pub(super) inventory_item_id: u64,
    pub(super) created_at: String,
    pub(super) updated_at: String,
}

/// One product.
pub struct Product {
    pub(super) id: u64,
    pub(super) title: String,
    pub(super) body_html: Option<String>,
    pub(super) vendor: Option<String>,
    pub(super) status: String,
    pub(super) created_at: String,
    pub(super) updated_at: String,
    pub(super) variants: Vec<Variant>,
}

/// The products of the shop (one variant each, from the seeded catalogue).
pub struct Catalogue {
    pub(super) products: Vec<Product>,
}

impl Catalogue {
    /// The seeded catalogue.
    pub fn new() -> Catalogue {
        let ts = shop_ts(crate::now());
        let products = catalog::ITEMS
            .iter()
            .enumerate()
            .map(|(idx, item)| Product {
                id: catalog::shopify_product_id(idx),
                title: item.title.split(" - ").next().unwrap_or(item.title).into(),
                body_html: None,
                vendor: None,
                status: "active".into(),
                created_at: ts.clone(),
                updated_at: ts.clone(),
                variants: vec![Variant {
                    id: catalog::shopify_variant_id(idx),
                    product_id: catalog::shopify_product_id(idx),
                    title: item
                        .title
                        .split(" - ")
                        .nth(1)
                        .unwrap_or("Default Title")
                        .into(),
                    sku: item.sku.into(),
                    price_cents: item.price_cents,
                    compare_at_cents: None,
                    barcode: None,
                    grams: None,
                    inventory_item_id: catalog::shopify_inventory_item_id(idx),
                    created_at: ts.clone(),
                    updated_at: ts.clone(),
                }],
            })
            .collect();
        Catalogue { products }
    }

    /// The price of the variant with `sku`, in cents.
    pub fn price_of(&self, sku: &str) -> Option<i64> {
        self.variants()
            .find(|v| v.sku == sku)
            .map(|v| v.price_cents)
    }

    /// The title of the product that carries `sku`.
    pub fn title_of(&self, sku: &str) -> Option<&str> {
        self.products
            .iter()
            .find(|p| p.variants.iter().any(|v| v.sku == sku))
            .map(|p| p.title.as_str())
    }

    pub(super) fn variants(&self) -> impl Iterator<Item = &Variant> {
        self.products.iter().flat_map(|p| p.variants.iter())
    }
}

impl Default for Catalogue {
    fn default() -> Self {
        Catalogue::new()
    }
}

/// Stock per (inventory item, location): available and when it changed.
type Levels = std::collections::BTreeMap<(u64, u64), (i64, String)>;

fn variant_json(v: &Variant, levels: &Levels) -> Value {
    let on_hand: i64 = levels
        .iter()
        .filter(|((item, _), _)| *item == v.inventory_item_id)
        .map(|(_, (available, _))| available)
        .sum();
    json!({
        "id": v.id, "product_id": v.product_id, "title": v.title, "sku": v.sku,
        "price": cents_str(v.price_cents), "position": 1, "inventory_policy": "deny",
        "compare_at_price": v.compare_at_cents.map(cents_str),
        "option1": v.title, "option2": null, "option3": null,
        "created_at": v.created_at, "updated_at": v.updated_at, "taxable": true,
        "barcode": v.barcode, "fulfillment_service": "manual", "grams": v.grams.unwrap_or(0),
        "image_id": null, "weight": v.grams.unwrap_or(0), "weight_unit": "g",
        "inventory_item_id": v.inventory_item_id, "inventory_management": "shopify",
        "inventory_quantity": on_hand, "old_inventory_quantity": on_hand,
        "requires_shipping": true, "tax_code": null, "presentment_prices": [],
        "admin_graphql_api_id": format!("gid://shopify/ProductVariant/{}", v.id),
    })
}

fn product_json(p: &Product, levels: &Levels) -> Value {
    let handle: String = p
        .title
        .to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    json!({
        "id": p.id, "title": p.title, "body_html": p.body_html,
        "vendor": p.vendor.as_deref().unwrap_or("Sandbox Shop"), "product_type": "",
        "created_at": p.created_at, "handle": handle, "updated_at": p.updated_at,
        "published_at": p.created_at, "template_suffix": null, "published_scope": "global",
        "tags": "", "status": p.status,
        "admin_graphql_api_id": format!("gid://shopify/Product/{}", p.id),
        "variants": p.variants.iter().map(|v| variant_json(v, levels)).collect::<Vec<_>>(),
        "options": [{"id": p.id + 1, "product_id": p.id, "name": "Title", "position": 1,
            "values": p.variants.iter().map(|v| v.title.clone()).collect::<Vec<_>>()}],
        "images": [], "image": null,
    })
}

/// Keeps only `fields` (comma-separated) of an object, when given.
fn only(fields: Option<&str>, value: Value) -> Value {
    let (Some(fields), Value::Object(map)) = (fields, &value) else {
        return value;
    };
    let keep: Vec<&str> = fields.split(',').map(str::trim).collect();
    Value::Object(
        map.iter()
            .filter(|(k, _)| keep.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Map<_, _>>(),
    )
}

/// `GET products.json`: `limit` a page, `fields` the keys kept, the previous and next pages
/// in the `Link` header.
pub fn list(sb: &Shared, req: &Req, version: &str) -> Resp {
    let pairs = query_pairs(&req.query);
    let limit = match super::page_limit(&pairs) {
        Ok(n) => n,
        Err(resp) => return resp,
    };
    let (filters, cursor) = match paging::filters_or_cursor::<u64>(&pairs, &[]) {
        Ok(found) => found,
        Err(body) => return errors(400, body),
    };
    let fields = param(&pairs, "fields");
    let st = sb.shopify.borrow();
    let ids: Vec<u64> = st.catalogue.products.iter().map(|p| p.id).collect();
    let (from, to) = paging::window(&ids, cursor.as_ref(), limit);
    let page: Vec<Value> = st.catalogue.products[from..to]
        .iter()
        .map(|p| only(fields, product_json(p, &st.levels)))
        .collect();
    let keep = fields.map(|f| format!("&fields={f}")).unwrap_or_default();
    let link = paging::link(&ids, (from, to), |side| {
        format!(
            "{}/admin/api/{version}/products.json?limit={limit}{keep}&page_info={}",
            base_url(req),
            paging::encode(&filters, side)
        )
    });
    super::with_link(Resp::json(200, json!({ "products": page })), link)
}

/// `GET products/{id}.json`.
pub fn get_product(sb: &Shared, id: &str) -> Resp {
    let st = sb.shopify.borrow();
    match st
        .catalogue
        .products
        .iter()
        .find(|p| p.id.to_string() == id)
    {
        Some(p) => Resp::json(200, json!({"product": product_json(p, &st.levels)})),
        None => errors(404, json!("Not Found")),
    }
}

/// `GET variants/{id}.json`.
pub fn get_variant(sb: &Shared, id: &str) -> Resp {
    let st = sb.shopify.borrow();
    let found = st
        .catalogue
        .variants()
        .find(|v| v.id.to_string() == id)
        .map(|v| variant_json(v, &st.levels));
    match found {
        Some(v) => Resp::json(200, json!({ "variant": v })),
        None => errors(404, json!("Not Found")),
    }
}

/// The root object of a PUT body (`{"product": {...}}`), or Shopify's 400.
fn root(req: &Req, key: &str) -> Result<Map<String, Value>, Resp> {
    serde_json::from_slice::<Value>(&req.body)
        .ok()
        .and_then(|body| body.get(key).and_then(Value::as_object).cloned())
        .ok_or_else(|| errors(400, json!({ key: "Required parameter missing or invalid" })))
}

/// A product's changes (REST's field names), checked.
#[derive(Default)]
pub struct ProductChange {
    title: Option<String>,
    body_html: Option<Option<String>>,
    vendor: Option<Option<String>>,
    status: Option<String>,
}

/// Checks a product's fields (`title`, `body_html`, `vendor`, `status`): the change, or
/// the errors by field.
pub fn product_change(fields: &Map<String, Value>) -> Result<ProductChange, Map<String, Value>> {
    let mut invalid = Map::new();
    if let Some(title) = fields.get("title") {
        if title.as_str().is_none_or(|t| t.trim().is_empty()) {
            invalid.insert("title".into(), json!(["can't be blank"]));
        }
    }
    if let Some(status) = fields.get("status") {
        if !matches!(status.as_str(), Some("active" | "archived" | "draft")) {
            invalid.insert("status".into(), json!(["is not included in the list"]));
        }
    }
    if !invalid.is_empty() {
        return Err(invalid);
    }
    let text = |key: &str| fields.get(key).map(|v| v.as_str().map(String::from));
    Ok(ProductChange {
        title: text("title").flatten(),
        body_html: text("body_html"),
        vendor: text("vendor"),
        status: text("status").flatten(),
    })
}

/// A variant's changes (REST's field names), checked.
#[derive(Default)]
pub struct VariantChange {
    price: Option<i64>,
    compare_at: Option<Option<i64>>,
    barcode: Option<Option<String>>,
    grams: Option<i64>,
}

impl VariantChange {
    /// True when the price changes.
    pub fn prices(&self) -> bool {
        self.price.is_some() || self.compare_at.is_some()
    }
}

/// Checks a variant's fields (`price`, `compare_at_price`, `barcode`, `weight` in grams):
/// the change, or the errors by field.
pub fn variant_change(fields: &Map<String, Value>) -> Result<VariantChange, Map<String, Value>> {
    let mut invalid = Map::new();
    let mut price = None;
    let mut compare_at = None;
    for (key, slot) in [("price", &mut price), ("compare_at_price", &mut compare_at)] {
        if let Some(value) = fields.get(key) {
            match price_field(value) {
                Ok(cents) => *slot = Some(cents),
                Err(message) => {
                    invalid.insert(key.into(), json!([message]));
                }
            }
        }
    }
    if matches!(price, Some(None)) {
        invalid.insert("price".into(), json!(["can't be blank"]));
    }
    if !invalid.is_empty() {
        return Err(invalid);
    }
    Ok(VariantChange {
        price: price.flatten(),
        compare_at,
        barcode: fields.get("barcode").map(|b| b.as_str().map(String::from)),
        grams: fields.get("weight").and_then(Value::as_i64),
    })
}

impl Catalogue {
    /// Applies a product's change; false when the shop has no such product.
    pub fn change_product(&mut self, id: u64, change: ProductChange) -> bool {
        let Some(product) = self.products.iter_mut().find(|p| p.id == id) else {
            return false;
        };
        if let Some(title) = change.title {
            product.title = title;
        }
        if let Some(body) = change.body_html {
            product.body_html = body;
        }
        if let Some(vendor) = change.vendor {
            product.vendor = vendor;
        }
        if let Some(status) = change.status {
            product.status = status;
        }
        product.updated_at = shop_ts(crate::now());
        true
    }

    /// Applies a variant's change; false when the shop has no such variant.
    pub fn change_variant(&mut self, id: u64, change: VariantChange) -> bool {
        let Some(variant) = self
            .products
            .iter_mut()
            .flat_map(|p| p.variants.iter_mut())
            .find(|v| v.id == id)
        else {
            return false;
        };
        if let Some(cents) = change.price {
            variant.price_cents = cents;
        }
        if let Some(cents) = change.compare_at {
            variant.compare_at_cents = cents;
        }
        if let Some(barcode) = change.barcode {
            variant.barcode = barcode;
        }
        if let Some(grams) = change.grams {
            variant.grams = Some(grams);
        }
        variant.updated_at = shop_ts(crate::now());
        true
    }

    /// The product with `id`, and whether `variant` is one of its variants.
    pub fn has_variant(&self, product: u64, variant: u64) -> Option<bool> {
        self.products
            .iter()
            .find(|p| p.id == product)
            .map(|p| p.variants.iter().any(|v| v.id == variant))
    }
}

/// `PUT products/{id}.json`: title, body_html, vendor, status.
pub fn put_product(sb: &Shared, req: &Req, id: &str) -> Resp {
    let fields = match root(req, "product") {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let change = product_change(&fields);
    let mut st = sb.shopify.borrow_mut();
    let st = &mut *st;
    let Some(id) = id
        .parse::<u64>()
        .ok()
        .filter(|id| st.catalogue.products.iter().any(|p| p.id == *id))
    else {
        return errors(404, json!("Not Found"));
    };
    let change = match change {
        Ok(change) => change,
        Err(invalid) => return errors(422, Value::Object(invalid)),
    };
    st.catalogue.change_product(id, change);
    let product = st.catalogue.products.iter().find(|p| p.id == id);
    let body = json!({"product": product.map(|p| product_json(p, &st.levels))});
    sb.bump(System::Shopify, "product_updates");
    Resp::json(200, body)
}

/// A price field: a decimal string or number with at most two decimals, not negative.
fn price_field(value: &Value) -> Result<Option<i64>, &'static str> {
    let cents = match value {
        Value::Null => return Ok(None),
        Value::String(s) => parse_cents(s),
        Value::Number(n) => parse_cents(&n.to_string()),
        _ => None,
    };
    match cents {
        Some(c) if c < 0 => Err("must be greater than or equal to 0"),
        Some(c) => Ok(Some(c)),
        None => Err("is not a number"),
    }
}

/// `PUT variants/{id}.json`: price, compare_at_price, barcode, weight (grams).
pub fn put_variant(sb: &Shared, req: &Req, id: &str) -> Resp {
    let fields = match root(req, "variant") {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let change = variant_change(&fields);
    let mut st = sb.shopify.borrow_mut();
    let st = &mut *st;
    let Some(id) = id
        .parse::<u64>()
        .ok()
        .filter(|id| st.catalogue.variants().any(|v| v.id == *id))
    else {
        return errors(404, json!("Not Found"));
    };
    let change = match change {
        Ok(change) => change,
        Err(invalid) => return errors(422, Value::Object(invalid)),
    };
    let priced = change.price.is_some();
    st.catalogue.change_variant(id, change);
    let variant = st.catalogue.variants().find(|v| v.id == id);
    let body = json!({"variant": variant.map(|v| variant_json(v, &st.levels))});
    if priced {
        sb.bump(System::Shopify, "price_updates");
    }
    Resp::json(200, body)
}

#[cfg(test)]
mod tests {
    use crate::testutil::{client, parts, with_sandbox};
    use crate::SandboxConfig;
    use serde_json::{json, Value};

    fn request(method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        client()
            .request(method, url)
            .header("X-Shopify-Access-Token", super::super::ACCESS_TOKEN)
    }

    #[test]
    fn products_page_by_link_and_puts_validate_like_shopify() {
        with_sandbox(SandboxConfig::default(), |base| async move {
            let api = format!("{base}/admin/api/2026-04");
            let mut url = Some(format!("{api}/products.json?limit=4&fields=id,variants"));
            let mut seen = Vec::new();
            while let Some(next) = url.take() {
                let (status, headers, body) =
                    parts(request(reqwest::Method::GET, &next).send().await.unwrap()).await;
                assert_eq!(status, 200, "{body}");
                for product in body["products"].as_array().unwrap() {
                    assert!(
                        product.get("title").is_none(),
                        "fields keeps id and variants only"
                    );
                    seen.push(product["id"].as_u64().unwrap());
                }
                url = headers
                    .get("link")
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| l.split(", ").find(|part| part.ends_with("rel=\"next\"")))
                    .and_then(|l| l.split_once('>'))
                    .map(|(u, _)| u.trim_start_matches('<').to_string());
            }
            assert_eq!(seen.len(), crate::catalog::ITEMS.len());
            let variant = format!(
                "{api}/variants/{}.json",
                crate::catalog::shopify_variant_id(1)
            );
            let put = |url: &str, body: Value| {
                request(reqwest::Method::PUT, url)
                    .header("content-type", "application/json")
                    .body(body.to_string())
            };
            let (status, _, body) = parts(
                put(&variant, json!({"variant": {"price": "-1.00"}}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 422);
            assert_eq!(
                body["errors"]["price"][0],
                "must be greater than or equal to 0"
            );
            let (status, _, body) = parts(
                put(&variant, json!({"price": "1.00"}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 400, "{body}");
            let (status, _, body) = parts(
                put(&variant, json!({"variant": {"price": "19.5"}}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 200);
            assert_eq!(body["variant"]["price"], "19.50");
            let missing = format!("{api}/products/1.json");
            let (status, _, _) = parts(
                put(&missing, json!({"product": {"title": "x"}}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 404);
        });
    }
}
