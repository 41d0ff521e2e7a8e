//! Drift: the ledger's on-hand against the ERP's own stock quantities, per sku at one
//! location (Tryton's `product.product` quantities in the connection's warehouse).

use super::book::Book;
use omniflow_connectors::api::Pager;
use omniflow_ir as ir;
use serde_json::Value;

/// One sku whose on-hand differs between the ledger and the ERP.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Drift {
    pub sku: String,
    pub location: String,
    pub ledger: i64,
    pub erp: i64,
}

/// The ERP's on-hand per sku, read through the connection (Tryton only; secrets from the
/// environment).
pub async fn erp_stock(connection: &ir::Connection) -> Result<Vec<(String, i64)>, String> {
    if connection.connector != "tryton" {
        return Err(format!(
            "connection `{}` is {}; drift reads Tryton's stock quantities",
            connection.name, connection.connector
        ));
    }
    let connectors = omniflow_connectors::Context::default();
    let settings = connectors.settings(connection).map_err(|e| e.to_string())?;
    let pager =
        omniflow_connectors::tryton::StockPager::new(&settings).map_err(|e| e.to_string())?;
    let page = pager.page(None, true).await?;
    let mut stock = Vec::new();
    for (payload, _) in page.items {
        let row: Value = serde_json::from_slice(&payload).map_err(|e| e.to_string())?;
        let sku = row["sku"].as_str().unwrap_or_default().to_string();
        stock.push((sku, row["on_hand"].as_i64().unwrap_or(0)));
    }
    stock.sort();
    Ok(stock)
}

/// Every sku of either side whose on-hand at `location` differs, sorted by sku.
pub fn compare(book: &Book, location: &str, erp: &[(String, i64)]) -> Result<Vec<Drift>, String> {
    let at = book.rules.location(location).ok_or_else(|| {
        format!(
            "ledger `{}` does not keep location {location} (it keeps {})",
            book.rules.name,
            book.rules.locations.join(", ")
        )
    })?;
    let mut skus: Vec<String> = book.skus().map(str::to_string).collect();
    skus.extend(erp.iter().map(|(sku, _)| sku.clone()));
    skus.sort();
    skus.dedup();
    Ok(skus
        .into_iter()
        .filter_map(|sku| {
            let ledger = book.position(&sku, at).map_or(0, |p| p.on_hand);
            let erp = erp.iter().find(|(s, _)| *s == sku).map_or(0, |(_, q)| *q);
            (ledger != erp).then(|| Drift {
                sku,
                location: location.to_string(),
                ledger,
                erp,
            })
        })
        .collect())
}
