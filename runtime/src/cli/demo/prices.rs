//! The catalogue part of the day: the product master (the sandbox's OData `Products`)
//! changes a list price, and `product_price_distribution` carries it to the storefront,
//! to Amazon with the marketplace uplift, and to the stores' Square catalogue.

use super::script::Driver;
use super::summary::Check;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The item whose list price changes, its channel SKU and the new price in cents.
pub const ITEM: &str = "ITM-110857";
pub const SKU: &str = "TSHIRT-039-RED-M";
pub const NEW_PRICE_CENTS: i64 = 2400;

/// What each channel should end up with: storefront, Amazon (+10%, to the cent), stores.
fn expected() -> (i64, i64, i64) {
    let amazon = (NEW_PRICE_CENTS * 110 + 50) / 100;
    (NEW_PRICE_CENTS, amazon, NEW_PRICE_CENTS)
}

/// The channels' prices of the item, from the sandbox.
async fn held(driver: &Driver) -> Result<Value, String> {
    let all = driver.get("/_sandbox/prices", &[]).await?;
    Ok(all["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["item_code"] == ITEM))
        .cloned()
        .unwrap_or(Value::Null))
}

fn reached(item: &Value) -> bool {
    let (shop, amazon, pos) = expected();
    item["shopify"] == shop && item["amazon"] == amazon && item["square"] == pos
}

/// Changes the list price in the product master and waits (up to `limit`) until every
/// channel holds it.
pub async fn change(driver: &Driver, limit: Duration) -> Result<(), String> {
    driver
        .patch_odata(
            &format!("Products('{ITEM}')"),
            json!({"price": NEW_PRICE_CENTS as f64 / 100.0}),
        )
        .await?;
    let until = Instant::now() + limit;
    while Instant::now() < until && !reached(&held(driver).await?) {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

fn cents(value: &Value) -> String {
    value
        .as_i64()
        .map(|c| format!("{}.{:02}", c / 100, c % 100))
        .unwrap_or_else(|| "-".into())
}

/// The catalogue lines of the summary and its check.
pub async fn report(driver: &Driver) -> Result<(String, Check), String> {
    let all = driver.get("/_sandbox/prices", &[]).await?;
    let item = held(driver).await?;
    let writes = &all["writes"];
    let text = format!(
        "  {SKU} ({ITEM}) listed at {}: storefront {}, Amazon {}, stores {}\n  writes: {} storefront products, {} storefront prices, {} Amazon prices, {} Square catalog upserts\n",
        cents(&json!(NEW_PRICE_CENTS)),
        cents(&item["shopify"]),
        cents(&item["amazon"]),
        cents(&item["square"]),
        writes["shopify_products"],
        writes["shopify_prices"],
        writes["amazon_prices"],
        writes["square_prices"],
    );
    let check = Check {
        what: "the price change reached the storefront, Amazon (+10%) and the stores",
        ok: reached(&item),
        detail: format!(
            "{} / {} / {}",
            cents(&item["shopify"]),
            cents(&item["amazon"]),
            cents(&item["square"])
        ),
    };
    Ok((text, check))
}
