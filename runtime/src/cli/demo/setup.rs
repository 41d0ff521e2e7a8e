//! How the demo points the reference flows at the sandbox: the environment the
//! connections read, the ERP connection switched to the sandbox's OData service, and polls
//! run every two seconds so a retail day fits in minutes.

use omniflow_engine::deploy::{ConnectionOverride, Deployment, Setting};
use omniflow_ir::{Graph, NodeKind};
use serde_json::Value;
use std::collections::BTreeMap;

/// The reference flows the retail day drives.
pub const FLOWS: &[&str] = &[
    "marketplace_orders",
    "marketplace_order_release",
    "ecommerce_split_fulfilment",
    "pos_sales",
    "shipment_confirmations",
    "omnichannel_returns",
    "inventory_ledger",
    "product_price_distribution",
];

/// Poll interval of every source during the demo, in milliseconds.
const DEMO_POLL_MS: u64 = 2_000;
/// Poll interval of Amazon's getOrders (a burst of 20, then one call a minute).
const DEMO_AMAZON_POLL_MS: u64 = 5_000;

/// Sandbox credentials (the simulators accept exactly these).
pub const SHOPIFY_TOKEN: &str = "shpat_sandbox";
pub const SHOPIFY_SECRET: &str = "shopify-webhook-secret";
pub const SHIPBOB_TOKEN: &str = "shipbob-sandbox-pat";
pub const SHIPBOB_CHANNEL: &str = "100102";

/// Where everything the flows talk to lives.
pub struct Endpoints {
    pub sandbox: String,
    pub back_office: String,
    pub webhooks: String,
    pub shipbob_secret: String,
}

/// The environment the connections of `flows/common.flow` and the scenario flows read.
pub fn environment(e: &Endpoints) -> Vec<(&'static str, String)> {
    let sandbox = &e.sandbox;
    vec![
        ("AMAZON_SP_REGION", "na".into()),
        ("AMAZON_MARKETPLACE_ID", "ATVPDKIKX0DER".into()),
        ("AMAZON_SELLER_ID", "A1SANDBOXSELLER".into()),
        ("AMAZON_LWA_CLIENT_ID", "amzn1.application-oa2-client.sandbox".into()),
        ("AMAZON_LWA_CLIENT_SECRET", "sandbox-secret".into()),
        ("AMAZON_LWA_REFRESH_TOKEN", "Atzr|sandbox".into()),
        ("AMAZON_SP_ENDPOINT", sandbox.clone()),
        ("AMAZON_LWA_TOKEN_ENDPOINT", format!("{sandbox}/auth/o2/token")),
        ("SHOPIFY_SHOP", sandbox.clone()),
        ("SHOPIFY_ADMIN_TOKEN", SHOPIFY_TOKEN.into()),
        ("SHOPIFY_WEBHOOK_SECRET", SHOPIFY_SECRET.into()),
        ("SHOPIFY_LOCATION_MAP", String::new()),
        ("SQUARE_ACCESS_TOKEN", "sq-sandbox-token".into()),
        ("SQUARE_LOCATION_IDS", "FPYCBCHYMXFK1,LK3Z8WQ2M5R7B".into()),
        ("SQUARE_BASE_URL", sandbox.clone()),
        ("SQUARE_WEBHOOK_SIGNATURE_KEY", "square-signature-key".into()),
        ("SQUARE_NOTIFICATION_URL", format!("{}/webhooks/square", e.webhooks)),
        (
            "SQUARE_ITEM_MAP",
            "ITM-110857=W62UWFY35CWMYGVWK6TWJDNI,ITM-104578=QX7RZ2B4KJH6T3M5PLD8WCFA,ITM-112467=HB3N6V2KD7PQ4XJ9TZ5RWLMC,ITM-102541=T9KC4M2ZQ8RW6BXN3HJ7VFLD".into(),
        ),
        ("SQUARE_LOCATION_MAP", "STORE-NYC-SOHO=FPYCBCHYMXFK1,STORE-BKN-WBG=LK3Z8WQ2M5R7B".into()),
        ("SHIPBOB_TOKEN", SHIPBOB_TOKEN.into()),
        ("SHIPBOB_CHANNEL_ID", SHIPBOB_CHANNEL.into()),
        ("SHIPBOB_BASE_URL", sandbox.clone()),
        ("SHIPBOB_WEBHOOK_SECRET", e.shipbob_secret.clone()),
        ("SHIPBOB_API_URL", sandbox.clone()),
        ("SHIPBOB_AUTH_HEADER", format!("Bearer {SHIPBOB_TOKEN}")),
        ("PRODUCT_MASTER_ODATA_URL", format!("{sandbox}/odata/v4/sales")),
        ("PRODUCT_MASTER_USER", "connector".into()),
        ("PRODUCT_MASTER_PASSWORD", "secret".into()),
        ("RETAIL_BUS_URL", "embedded:".into()),
        ("RETAIL_BUS_CREDENTIALS", "none".into()),
        ("FINANCE_API_URL", format!("{}/finance", e.back_office)),
        ("FINANCE_API_AUTH", "Bearer back-office".into()),
        ("ORDER_REVIEW_URL", format!("{}/review-desk", e.back_office)),
        ("ORDER_REVIEW_AUTH", "Bearer back-office".into()),
        ("RETAIL_DROPZONE_DIR", std::env::temp_dir().display().to_string()),
        ("RETAIL_DROPZONE_ARCHIVE_DIR", std::env::temp_dir().display().to_string()),
    ]
}

/// Keeps the demo's flows, points the ERP at an OData service (service URL, user,
/// password) unless Tryton is used, and shortens poll intervals.
pub fn adapt(
    graph: &mut Graph,
    odata_erp: Option<&(String, String, String)>,
) -> Result<(), String> {
    graph.flows.retain(|f| FLOWS.contains(&f.name.as_str()));
    let missing: Vec<&str> = FLOWS
        .iter()
        .filter(|name| !graph.flows.iter().any(|f| f.name == **name))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(format!("the reference flows lack {}", missing.join(", ")));
    }
    // The same overrides an omniflow.yaml would carry.
    let value = |v: &str| Setting::Value(Value::String(v.to_string()));
    // The channels' own identifiers of the catalogue, for the ledger's publications.
    let catalogue = omniflow_sandbox::catalog::ITEMS;
    let shopify_items: Vec<String> = catalogue
        .iter()
        .enumerate()
        .map(|(idx, item)| {
            format!(
                "{}={}",
                item.item_code,
                omniflow_sandbox::catalog::shopify_inventory_item_id(idx)
            )
        })
        .collect();
    let seller_skus: Vec<String> = catalogue
        .iter()
        .map(|item| format!("{}={}", item.item_code, item.sku))
        .collect();
    let online = omniflow_sandbox::catalog::SHOPIFY_LOCATIONS[0].0;
    let mut connections = BTreeMap::from([
        (
            "amazon".to_string(),
            ConnectionOverride {
                connector: None,
                settings: BTreeMap::from([
                    (
                        "token_endpoint".to_string(),
                        Setting::Env {
                            env: "AMAZON_LWA_TOKEN_ENDPOINT".into(),
                        },
                    ),
                    ("sku_map".to_string(), value(&seller_skus.join(","))),
                ]),
            },
        ),
        (
            "shop".to_string(),
            ConnectionOverride {
                connector: None,
                settings: BTreeMap::from([
                    ("item_map".to_string(), value(&shopify_items.join(","))),
                    (
                        "location_map".to_string(),
                        value(&format!("WH-MAIN={online}")),
                    ),
                ]),
            },
        ),
    ]);
    if let Some((service_url, user, password)) = odata_erp {
        connections.insert(
            "erp".to_string(),
            ConnectionOverride {
                connector: Some("odata".into()),
                settings: BTreeMap::from([
                    ("service_url".to_string(), value(service_url)),
                    ("username".to_string(), value(user)),
                    ("password".to_string(), value(password)),
                ]),
            },
        );
    }
    Deployment {
        connections,
        ..Deployment::default()
    }
    .apply(graph)
    .map_err(|e| e.to_string())?;
    for flow in &mut graph.flows {
        for node in &mut flow.nodes {
            if let NodeKind::Source {
                kind,
                options,
                connection,
                ..
            } = &mut node.kind
            {
                if kind == "poll" {
                    let every = if connection == "amazon" {
                        DEMO_AMAZON_POLL_MS
                    } else {
                        DEMO_POLL_MS
                    };
                    options.insert("every".into(), Value::from(every));
                }
            }
        }
    }
    Ok(())
}
