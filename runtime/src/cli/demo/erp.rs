//! Reading the ERP back for the reconciliation, with clients written here (not the
//! connectors under test): the sandbox's control API, an OData service's `SalesOrders`,
//! or Tryton's `sale.sale` over JSON-RPC.

use base64::Engine;
use serde_json::{json, Value};
use std::time::Duration;

/// One sales order as the ERP holds it.
pub struct ErpOrder {
    /// The order number: the canonical order id.
    pub number: String,
    /// True once the ERP records its shipment.
    pub shipped: bool,
    /// What the ERP says about the shipment.
    pub detail: String,
}

/// Where the ERP is.
pub enum ErpReader {
    Sandbox {
        control: String,
    },
    OData {
        service: String,
        user: String,
        password: String,
    },
    Tryton {
        url: String,
        database: String,
        user: String,
        password: String,
    },
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())
}

async fn json_of(response: reqwest::Response) -> Result<Value, String> {
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

impl ErpReader {
    /// Every sales order the ERP holds.
    pub async fn orders(&self) -> Result<Vec<ErpOrder>, String> {
        match self {
            ErpReader::Sandbox { control } => {
                let list = json_of(
                    client()?
                        .get(format!("{control}/_sandbox/odata/sales_orders"))
                        .send()
                        .await
                        .map_err(|e| e.to_string())?,
                )
                .await?;
                Ok(odata_rows(list.as_array().cloned().unwrap_or_default()))
            }
            ErpReader::OData {
                service,
                user,
                password,
            } => {
                let mut rows = Vec::new();
                let mut next =
                    Some("SalesOrders?$select=orderNo,status,carrier,trackingNumber".to_string());
                while let Some(path) = next {
                    let url = if path.starts_with("http") {
                        path
                    } else {
                        format!("{}/{path}", service.trim_end_matches('/'))
                    };
                    let page = json_of(
                        client()?
                            .get(url)
                            .basic_auth(user, Some(password))
                            .send()
                            .await
                            .map_err(|e| e.to_string())?,
                    )
                    .await?;
                    rows.extend(page["value"].as_array().cloned().unwrap_or_default());
                    next = page["@odata.nextLink"].as_str().map(String::from);
                }
                Ok(odata_rows(rows))
            }
            ErpReader::Tryton {
                url,
                database,
                user,
                password,
            } => {
                let rpc = format!("{}/{database}/rpc/", url.trim_end_matches('/'));
                let http = client()?;
                let call = |method: &str, params: Value, auth: Option<String>| {
                    let mut request = http
                        .post(&rpc)
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(json!({"id": 1, "method": method, "params": params}).to_string());
                    if let Some(auth) = auth {
                        request = request.header(reqwest::header::AUTHORIZATION, auth);
                    }
                    request.send()
                };
                let login = json_of(
                    call(
                        "common.db.login",
                        json!([user, {"password": password}, "en"]),
                        None,
                    )
                    .await
                    .map_err(|e| e.to_string())?,
                )
                .await?;
                let result = &login["result"];
                let auth = format!(
                    "Session {}",
                    base64::engine::general_purpose::STANDARD.encode(format!(
                        "{user}:{}:{}",
                        result[0],
                        result[1].as_str().unwrap_or("")
                    ))
                );
                let prefs = json_of(
                    call(
                        "model.res.user.get_preferences",
                        json!([true, {}]),
                        Some(auth.clone()),
                    )
                    .await
                    .map_err(|e| e.to_string())?,
                )
                .await?;
                let context = json!({"company": prefs["result"]["company"], "companies": prefs["result"]["companies"]});
                let sales = json_of(
                    call(
                        "model.sale.sale.search_read",
                        json!([
                            [["reference", "!=", null]],
                            0,
                            null,
                            null,
                            ["reference", "state", "shipment_state"],
                            context
                        ]),
                        Some(auth),
                    )
                    .await
                    .map_err(|e| e.to_string())?,
                )
                .await?;
                if let Some(error) = sales.get("error").filter(|e| !e.is_null()) {
                    return Err(format!("Tryton: {error}"));
                }
                Ok(sales["result"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|s| ErpOrder {
                        number: s["reference"].as_str().unwrap_or_default().to_string(),
                        shipped: s["shipment_state"] == "sent",
                        detail: format!("sale {} shipment {}", s["state"], s["shipment_state"]),
                    })
                    .collect())
            }
        }
    }
}

fn odata_rows(rows: Vec<Value>) -> Vec<ErpOrder> {
    rows.iter()
        .filter_map(|o| {
            Some(ErpOrder {
                number: o["orderNo"].as_str()?.to_string(),
                shipped: o["status"] == "SHIPPED" && o["trackingNumber"].is_string(),
                detail: format!("{} {} {}", o["status"], o["carrier"], o["trackingNumber"]),
            })
        })
        .collect()
}
