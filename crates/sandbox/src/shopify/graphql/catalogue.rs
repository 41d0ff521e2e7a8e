//! The catalogue over GraphQL: `productVariants(query: "sku:...")` on the query root, and
//! the mutations `productUpdate(product:)` and `productVariantsBulkUpdate(productId:,
//! variants:)` (all or nothing), on the products and variants the REST API serves.
//! Refusals are `userErrors` with the codes Shopify documents.

use super::super::products::{self, Catalogue, Product, Variant};
use super::super::{Shared, System};
use super::{gid, id_of};
use crate::cents_str;
use serde_json::{json, Map, Value};

fn product(p: &Product) -> Value {
    json!({"__type": "Product", "id": gid("Product", p.id), "legacyResourceId": p.id.to_string(),
        "title": p.title, "descriptionHtml": p.body_html.clone().unwrap_or_default(),
        "vendor": p.vendor.as_deref().unwrap_or("Sandbox Shop"),
        "status": p.status.to_ascii_uppercase(), "updatedAt": p.updated_at})
}

fn variant(v: &Variant, p: &Product) -> Value {
    json!({"__type": "ProductVariant", "id": gid("ProductVariant", v.id),
        "legacyResourceId": v.id.to_string(), "sku": v.sku, "title": v.title,
        "price": cents_str(v.price_cents), "compareAtPrice": v.compare_at_cents.map(cents_str),
        "barcode": v.barcode, "updatedAt": v.updated_at,
        "inventoryItem": {"__type": "InventoryItem", "id": gid("InventoryItem", v.inventory_item_id),
            "measurement": {"__type": "InventoryItemMeasurement",
                "weight": {"__type": "Weight", "value": v.grams.unwrap_or(0) as f64, "unit": "GRAMS"}}},
        "product": product(p)})
}

/// The SKU a `productVariants(query:)` search names (`sku:X`, `sku:'X'` or `sku:"X"`,
/// with `\` escapes); other terms are ignored.
fn sku_term(query: &str) -> Option<String> {
    let rest = query.trim().strip_prefix("sku:")?;
    let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
        return Some(rest.split_whitespace().next().unwrap_or("").to_string());
    };
    let mut out = String::new();
    let mut chars = rest[1..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            c if c == quote => return Some(out),
            c => out.push(c),
        }
    }
    None
}

/// The variants a `productVariants` connection lists, by id: all, or those with the SKU
/// its query names.
pub fn variants(catalogue: &Catalogue, query: &str) -> Vec<(u64, Value)> {
    let sku = sku_term(query);
    // A SKU term that does not read matches nothing, rather than everything.
    if sku.is_none() && query.trim_start().starts_with("sku:") {
        return Vec::new();
    }
    let mut rows: Vec<(u64, Value)> = catalogue
        .products
        .iter()
        .flat_map(|p| p.variants.iter().map(move |v| (v, p)))
        .filter(|(v, _)| sku.as_ref().is_none_or(|s| *s == v.sku))
        .map(|(v, p)| (v.id, variant(v, p)))
        .collect();
    rows.sort_by_key(|(id, _)| *id);
    rows
}

/// Every field a `productUpdate` payload can select.
pub fn product_shape() -> Value {
    let mut p = product(&Catalogue::new().products[0]);
    p["id"] = json!("");
    json!({"__type": "ProductUpdatePayload", "product": p,
        "userErrors": [{"__type": "UserError", "field": [], "message": ""}]})
}

/// Every field a `productVariantsBulkUpdate` payload can select.
pub fn variants_shape() -> Value {
    let c = Catalogue::new();
    let p = &c.products[0];
    json!({"__type": "ProductVariantsBulkUpdatePayload", "product": product(p),
        "productVariants": [variant(&p.variants[0], p)],
        "userErrors": [{"__type": "ProductVariantsBulkUpdateUserError", "field": [], "code": "", "message": ""}]})
}

/// A REST field error (`{"price": ["is not a number"]}`) as GraphQL's message.
fn messages(invalid: Map<String, Value>) -> Vec<(String, String)> {
    invalid
        .into_iter()
        .map(|(field, list)| {
            let text = list
                .as_array()
                .and_then(|l| l.first())
                .and_then(Value::as_str)
                .unwrap_or("is invalid")
                .to_string();
            (field, text)
        })
        .collect()
}

/// `productUpdate(product: {id, title, descriptionHtml, vendor, status})` (`input:` before
/// 2024-10).
pub fn update_product(sb: &Shared, input: &Value) -> Value {
    let refused = |field: &str, message: String| {
        json!({"__type": "ProductUpdatePayload", "product": null,
            "userErrors": [{"__type": "UserError", "field": [field], "message": message}]})
    };
    let mut fields = Map::new();
    for (graphql, rest) in [
        ("title", "title"),
        ("descriptionHtml", "body_html"),
        ("vendor", "vendor"),
    ] {
        if let Some(v) = input.get(graphql) {
            fields.insert(rest.into(), v.clone());
        }
    }
    if let Some(status) = input.get("status") {
        let lower = status.as_str().map(str::to_ascii_lowercase);
        fields.insert("status".into(), json!(lower));
    }
    let change = match products::product_change(&fields) {
        Ok(change) => change,
        Err(invalid) => {
            let (field, message) = messages(invalid).remove(0);
            return refused(&field, format!("{field} {message}"));
        }
    };
    let mut st = sb.shopify.borrow_mut();
    let Some(id) =
        id_of(&input["id"], "Product").filter(|id| st.catalogue.change_product(*id, change))
    else {
        return refused("id", "Product does not exist".into());
    };
    let p = st
        .catalogue
        .products
        .iter()
        .find(|p| p.id == id)
        .map(product);
    drop(st);
    sb.bump(System::Shopify, "product_updates");
    json!({"__type": "ProductUpdatePayload", "product": p, "userErrors": []})
}

/// Grams of a `{value, unit}` weight.
fn grams(weight: &Value) -> Option<i64> {
    let value = weight["value"].as_f64()?;
    let per_unit = match weight["unit"].as_str()? {
        "GRAMS" => 1.0,
        "KILOGRAMS" => 1000.0,
        "OUNCES" => 28.349_523_125,
        "POUNDS" => 453.592_37,
        _ => return None,
    };
    let g = (value * per_unit).round();
    (g.is_finite() && (0.0..=2e9).contains(&g)).then_some(g as i64)
}

/// `productVariantsBulkUpdate(productId:, variants: [{id, price, compareAtPrice, barcode,
/// inventoryItem: {measurement: {weight}}}])`: every variant is checked before any is
/// changed.
pub fn update_variants(sb: &Shared, product_id: &Value, inputs: &Value) -> Value {
    let refused = |errors: Vec<Value>| {
        json!({"__type": "ProductVariantsBulkUpdatePayload", "product": null,
            "productVariants": null, "userErrors": errors})
    };
    let error = |field: Vec<Value>, code: &str, message: &str| json!({"__type": "ProductVariantsBulkUpdateUserError", "field": field, "code": code, "message": message});
    let inputs = inputs.as_array().cloned().unwrap_or_default();
    let mut errors = Vec::new();
    let mut changes = Vec::new();
    let product_ref = id_of(product_id, "Product");
    {
        let st = sb.shopify.borrow();
        if product_ref
            .and_then(|p| st.catalogue.has_variant(p, 0))
            .is_none()
        {
            return refused(vec![error(
                vec![json!("productId")],
                "PRODUCT_DOES_NOT_EXIST",
                "Product does not exist",
            )]);
        }
        for (i, input) in inputs.iter().enumerate() {
            let at = |f: &str| vec![json!("variants"), json!(i.to_string()), json!(f)];
            let id = id_of(&input["id"], "ProductVariant");
            if id.and_then(|v| st.catalogue.has_variant(product_ref.unwrap_or(0), v)) != Some(true)
            {
                errors.push(error(
                    at("id"),
                    "PRODUCT_VARIANT_DOES_NOT_EXIST",
                    "Product variant does not exist",
                ));
                continue;
            }
            let mut fields = Map::new();
            for (graphql, rest) in [
                ("price", "price"),
                ("compareAtPrice", "compare_at_price"),
                ("barcode", "barcode"),
            ] {
                if let Some(v) = input.get(graphql) {
                    fields.insert(rest.into(), v.clone());
                }
            }
            let weight = &input["inventoryItem"]["measurement"]["weight"];
            if !weight.is_null() {
                match grams(weight) {
                    Some(g) => {
                        fields.insert("weight".into(), json!(g));
                    }
                    None => {
                        errors.push(error(
                            at("inventoryItem"),
                            "INVALID_INPUT",
                            "Weight is invalid",
                        ));
                        continue;
                    }
                }
            }
            match products::variant_change(&fields) {
                Ok(change) => changes.push((id.unwrap_or(0), change)),
                Err(invalid) => {
                    for (field, message) in messages(invalid) {
                        let field = if field == "compare_at_price" {
                            "compareAtPrice"
                        } else {
                            field.as_str()
                        };
                        errors.push(error(
                            at(field),
                            "INVALID_INPUT",
                            &format!("{field} {message}"),
                        ));
                    }
                }
            }
        }
    }
    if !errors.is_empty() {
        return refused(errors);
    }
    let priced = changes.iter().any(|(_, c)| c.prices());
    let ids: Vec<u64> = changes.iter().map(|(id, _)| *id).collect();
    let mut st = sb.shopify.borrow_mut();
    for (id, change) in changes {
        st.catalogue.change_variant(id, change);
    }
    let p = st
        .catalogue
        .products
        .iter()
        .find(|p| Some(p.id) == product_ref);
    let out = p.map(|p| {
        let listed: Vec<Value> = p
            .variants
            .iter()
            .filter(|v| ids.contains(&v.id))
            .map(|v| variant(v, p))
            .collect();
        (product(p), listed)
    });
    drop(st);
    if priced {
        sb.bump(System::Shopify, "price_updates");
    }
    let (p, listed) = out.unwrap_or((Value::Null, Vec::new()));
    json!({"__type": "ProductVariantsBulkUpdatePayload", "product": p,
        "productVariants": listed, "userErrors": []})
}

#[cfg(test)]
mod tests {
    use super::{grams, sku_term};
    use serde_json::json;

    #[test]
    fn sku_terms_and_weights() {
        assert_eq!(sku_term("sku:ABC-1").as_deref(), Some("ABC-1"));
        assert_eq!(sku_term(r#"sku:"A \"B\"""#).as_deref(), Some(r#"A "B""#));
        assert_eq!(sku_term("sku:'A B'").as_deref(), Some("A B"));
        assert_eq!(sku_term("title:x"), None);
        assert_eq!(sku_term("sku:\"open"), None);
        assert_eq!(
            grams(&json!({"value": 1.5, "unit": "KILOGRAMS"})),
            Some(1500)
        );
        assert_eq!(grams(&json!({"value": -1, "unit": "GRAMS"})), None);
        assert_eq!(grams(&json!({"value": 1e300, "unit": "POUNDS"})), None);
        assert_eq!(grams(&json!({"value": 1, "unit": "STONE"})), None);
    }
}
