//! Storefront orders as the Admin REST API's Order resource (2025-07) writes them: every
//! documented top-level field (null or empty when it does not apply), ids as numbers,
//! amounts as decimal strings with their `*_set` money bags, full addresses and a customer
//! with its default address. Webhook bodies carry the same object.

use super::{shop_ts, FoLine, FulfillmentOrder, Order};
use crate::{catalog, cents_str, number_cents, parse_cents, Shared};
use serde_json::{json, Value};

/// The shop's currency.
const CURRENCY: &str = "USD";
/// Shipping weight of a catalogue line, grams.
const GRAMS: i64 = 200;

/// `{shop_money, presentment_money}` of `cents`.
pub(super) fn money_set(cents: i64) -> Value {
    let money = json!({"amount": cents_str(cents), "currency_code": CURRENCY});
    json!({"shop_money": money, "presentment_money": money})
}

/// A tax line of `cents` at `bp` basis points.
fn tax_line(cents: i64, bp: i64) -> Value {
    json!({"title": "State Tax", "rate": bp as f64 / 10_000.0, "price": cents_str(cents),
        "price_set": money_set(cents), "channel_liable": false})
}

/// Every field of a Shopify address, the given ones kept.
fn address(given: Option<&Value>) -> Value {
    let mut out = json!({
        "first_name": "Sandbox", "last_name": "Customer", "name": "Sandbox Customer",
        "company": null, "address1": "55 Water St", "address2": "", "city": "New York",
        "province": "New York", "province_code": "NY", "zip": "10041",
        "country": "United States", "country_code": "US", "phone": null,
        "latitude": 40.7033, "longitude": -74.0115,
    });
    overlay(&mut out, given);
    out
}

/// Every field of the order's customer, the given ones kept.
fn customer(given: Option<&Value>, id: u64, email: &str, ts: &str) -> Value {
    let mut default_address = address(None);
    if let Some(obj) = default_address.as_object_mut() {
        obj.remove("latitude");
        obj.remove("longitude");
        obj.insert("id".into(), json!(id + 1));
        obj.insert("customer_id".into(), json!(id));
        obj.insert("country_name".into(), json!("United States"));
        obj.insert("default".into(), json!(true));
    }
    let mut out = json!({
        "id": id, "email": email, "created_at": ts, "updated_at": ts,
        "first_name": "Sandbox", "last_name": "Customer", "state": "disabled", "note": null,
        "verified_email": true, "multipass_identifier": null, "tax_exempt": false,
        "phone": null, "tags": "", "currency": CURRENCY, "tax_exemptions": [],
        "email_marketing_consent": {"state": "not_subscribed", "opt_in_level": "single_opt_in",
            "consent_updated_at": null},
        "sms_marketing_consent": null,
        "admin_graphql_api_id": format!("gid://shopify/Customer/{id}"),
        "default_address": default_address,
    });
    overlay(&mut out, given);
    out
}

/// Copies `given`'s fields over `out` (both objects).
fn overlay(out: &mut Value, given: Option<&Value>) {
    if let (Some(out), Some(Value::Object(given))) = (out.as_object_mut(), given) {
        for (k, v) in given {
            out.insert(k.clone(), v.clone());
        }
    }
}

/// One priced line before it is written.
struct Line {
    id: u64,
    sku: String,
    qty: i64,
    price: i64,
    tax: i64,
    known: Option<(usize, &'static catalog::Item)>,
    properties: Value,
}

impl Line {
    fn json(&self, tax_bp: i64) -> Value {
        let (variant, product, title, variant_title) = match self.known {
            Some((idx, item)) => {
                let (title, variant) = item.title.split_once(" - ").unwrap_or((item.title, ""));
                (
                    json!(catalog::shopify_variant_id(idx)),
                    json!(catalog::shopify_product_id(idx)),
                    title.to_string(),
                    json!(variant),
                )
            }
            None => (Value::Null, Value::Null, self.sku.clone(), Value::Null),
        };
        let name = match variant_title.as_str() {
            Some(v) if !v.is_empty() => format!("{title} - {v}"),
            _ => title.clone(),
        };
        json!({
            "id": self.id, "admin_graphql_api_id": format!("gid://shopify/LineItem/{}", self.id),
            "attributed_staffs": [], "current_quantity": self.qty,
            "fulfillable_quantity": self.qty, "fulfillment_service": "manual",
            "fulfillment_status": null, "gift_card": false, "grams": GRAMS, "name": name,
            "price": cents_str(self.price), "price_set": money_set(self.price),
            "product_exists": self.known.is_some(), "product_id": product,
            "properties": self.properties, "quantity": self.qty, "requires_shipping": true,
            "sku": self.sku, "taxable": true, "title": title, "total_discount": "0.00",
            "total_discount_set": money_set(0), "variant_id": variant,
            "variant_inventory_management": if self.known.is_some() { json!("shopify") } else { Value::Null },
            "variant_title": variant_title, "vendor": "Sandbox Shop",
            "tax_lines": if tax_bp > 0 { json!([tax_line(self.tax, tax_bp)]) } else { json!([]) },
            "duties": [], "discount_allocations": [],
        })
    }
}

/// Reads, prices and keeps a storefront order from a control request's `body`; the order's
/// JSON, or why it was refused.
pub(super) fn build(sb: &Shared, body: &Value) -> Result<Value, String> {
    let Some(specs) = body["line_items"].as_array().filter(|l| !l.is_empty()) else {
        return Err("must have at least one line item".into());
    };
    let tax_bp = body["tax_rate"]
        .as_f64()
        .map(|r| (r * 10_000.0).round() as i64)
        .unwrap_or(0);
    let money = |key: &str| -> Result<i64, String> {
        match &body[key] {
            Value::Null => Ok(0),
            Value::String(s) => parse_cents(s).ok_or(format!("{key} is invalid")),
            v => number_cents(v).ok_or(format!("{key} is invalid")),
        }
    };
    let discounts = money("total_discounts")?;
    let shipping = money("shipping_price")?;
    let now = crate::now();
    let mut st = sb.shopify.borrow_mut();
    let order_id = st.id();
    let number = st.next_number;
    st.next_number += 1;
    let mut lines = Vec::new();
    for spec in specs {
        let sku = spec["sku"].as_str().ok_or("sku is required")?;
        let qty = spec["quantity"]
            .as_i64()
            .filter(|q| *q > 0)
            .ok_or("quantity must be a positive integer")?;
        let known = catalog::by_sku(sku);
        let price = match (&spec["price"], known) {
            (Value::Null, Some((_, item))) => item.price_cents,
            (Value::Null, None) => return Err(format!("unknown sku {sku} needs a price")),
            (v, _) => number_cents(v).ok_or("price is invalid")?,
        };
        lines.push(Line {
            id: st.id(),
            sku: sku.to_string(),
            qty,
            price,
            tax: (price * qty * tax_bp + 5_000) / 10_000,
            known,
            properties: spec.get("properties").cloned().unwrap_or(json!([])),
        });
    }
    let subtotal: i64 = lines.iter().map(|l| l.price * l.qty).sum();
    let tax: i64 = lines.iter().map(|l| l.tax).sum();
    let total = subtotal - discounts + tax + shipping;
    let email = body["email"].as_str().unwrap_or("customer@example.com");
    let customer_id = st.id();
    let ts = shop_ts(now);
    let token = format!("{:032x}", u128::from(order_id) * 0x9E37_79B9_7F4A_7C15);
    let shipping_line = json!({"id": order_id + 7, "carrier_identifier": null,
        "code": "Standard", "title": "Standard", "source": "shopify", "phone": null,
        "price": cents_str(shipping), "price_set": money_set(shipping),
        "discounted_price": cents_str(shipping), "discounted_price_set": money_set(shipping),
        "requested_fulfillment_service_id": null, "tax_lines": [], "discount_allocations": []});
    let shipping_address = address(body.get("shipping_address"));
    let billing_address = match body.get("billing_address") {
        Some(given) => address(Some(given)),
        None => shipping_address.clone(),
    };
    let mut order = json!({
        "id": order_id, "admin_graphql_api_id": format!("gid://shopify/Order/{order_id}"),
        "app_id": 580111, "browser_ip": "192.0.2.10", "buyer_accepts_marketing": false,
        "cancel_reason": null, "cancelled_at": null, "cart_token": null,
        "checkout_id": order_id + 3, "checkout_token": null,
        "client_details": {"accept_language": null, "browser_height": null,
            "browser_ip": "192.0.2.10", "browser_width": null, "session_hash": null,
            "user_agent": null},
        "closed_at": null, "company": null, "confirmation_number": format!("SBX{number}"),
        "confirmed": true, "contact_email": email, "created_at": ts, "currency": CURRENCY,
        "current_subtotal_price": cents_str(subtotal - discounts),
        "current_subtotal_price_set": money_set(subtotal - discounts),
        "current_total_additional_fees_set": null,
        "current_total_discounts": cents_str(discounts),
        "current_total_discounts_set": money_set(discounts),
        "current_total_duties_set": null,
        "current_total_price": cents_str(total), "current_total_price_set": money_set(total),
        "current_total_tax": cents_str(tax), "current_total_tax_set": money_set(tax),
        "customer_locale": "en", "device_id": null,
        "discount_codes": body.get("discount_codes").cloned().unwrap_or(json!([])),
        "discount_applications": [], "duties_included": false, "email": email,
        "estimated_taxes": false,
        "financial_status": body["financial_status"].as_str().unwrap_or("paid"),
        "fulfillment_status": null, "landing_site": null, "landing_site_ref": null,
        "location_id": null, "merchant_business_entity_id": "MTU0ODM4MDAwOQ",
        "merchant_of_record_app_id": null, "name": format!("#{number}"), "note": null,
        "note_attributes": body.get("note_attributes").cloned().unwrap_or(json!([])),
        "number": number - 1000, "order_number": number,
        "order_status_url": format!("https://{}.myshopify.com/548380009/orders/{token}/authenticate?key=sandbox", super::SHOP),
        "original_total_additional_fees_set": null, "original_total_duties_set": null,
        "payment_gateway_names": ["bogus"], "payment_terms": null, "phone": null,
        "po_number": null, "presentment_currency": CURRENCY, "processed_at": ts,
        "reference": null, "referring_site": null, "source_identifier": null,
        "source_name": "web", "source_url": null,
        "subtotal_price": cents_str(subtotal - discounts),
        "subtotal_price_set": money_set(subtotal - discounts),
        "tags": body["tags"].as_str().unwrap_or(""), "tax_exempt": false,
        "tax_lines": if tax_bp > 0 { json!([tax_line(tax, tax_bp)]) } else { json!([]) },
        "taxes_included": false, "test": false, "token": token,
        "total_cash_rounding_payment_adjustment_set": money_set(0),
        "total_cash_rounding_refund_adjustment_set": money_set(0),
        "total_discounts": cents_str(discounts), "total_discounts_set": money_set(discounts),
        "total_line_items_price": cents_str(subtotal),
        "total_line_items_price_set": money_set(subtotal),
        "total_outstanding": "0.00",
        "total_price": cents_str(total), "total_price_set": money_set(total),
        "total_shipping_price_set": money_set(shipping),
        "total_tax": cents_str(tax), "total_tax_set": money_set(tax),
        "total_tip_received": "0.00",
        "total_weight": lines.iter().map(|l| l.qty * GRAMS).sum::<i64>(),
        "updated_at": ts, "user_id": null,
        "billing_address": billing_address,
        "customer": customer(body.get("customer"), customer_id, email, &ts),
        "fulfillments": [],
        "line_items": lines.iter().map(|l| l.json(tax_bp)).collect::<Vec<_>>(),
        "refunds": [], "shipping_address": shipping_address, "shipping_lines": [shipping_line],
    });
    if let (Some(Value::Object(extra)), Some(fields)) = (body.get("order"), order.as_object_mut()) {
        // Documented fields a test wants set (`source_name`, `reference`, …).
        for (k, v) in extra {
            if fields.contains_key(k) {
                fields.insert(k.clone(), v.clone());
            }
        }
    }
    let fo_lines: Vec<FoLine> = lines
        .iter()
        .filter_map(|l| {
            let (idx, _) = l.known?;
            Some(FoLine {
                id: l.id + 1_000_000,
                line_item_id: l.id,
                inventory_item_id: catalog::shopify_inventory_item_id(idx),
                variant_id: catalog::shopify_variant_id(idx),
                quantity: l.qty,
                remaining: l.qty,
            })
        })
        .collect();
    if !fo_lines.is_empty() {
        let fo_id = st.id();
        st.fulfillment_orders.push(FulfillmentOrder {
            id: fo_id,
            order_id,
            created_at: ts.clone(),
            location_id: catalog::SHOPIFY_LOCATIONS[0].0,
            status: "open",
            lines: fo_lines,
        });
    }
    st.orders.push(Order {
        id: order_id,
        created: now,
        updated: now,
        closed: false,
        cancelled: false,
        json: order.clone(),
    });
    Ok(order)
}
