//! `amazon_sp.settlements` against the sandbox's Reports API: settlement reports only (other
//! types and reports still in progress are filtered), `nextToken` pages, the `createdSince`
//! watermark moving once a listing is read, reports taken once, a refused token.

mod support;

use omniflow_connectors as connectors;
use omniflow_connectors::api::Pager;
use omniflow_sandbox::{self as sandbox, SandboxConfig};
use serde_json::{json, Value};
use std::collections::BTreeMap;

async fn add_settlement(base: &str, id: &str) {
    let body = json!({"settlement-id": id, "total-amount": "5.00", "currency": "EUR",
        "rows": [{"transaction-type": "Order", "order-id": "302-1", "amount-type": "ItemPrice",
                  "amount-description": "Principal", "amount": "5.00", "sku": "CBA_OTF_5"}]});
    let answer = reqwest::Client::new()
        .post(format!("{base}/_sandbox/amazon/settlements"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success());
}

fn pager(base: &str, page_size: u64) -> Box<dyn Pager> {
    let connection = support::connection(
        "amazon",
        "amazon_sp",
        json!({"region": "na", "marketplace_id": sandbox::amazon::MARKETPLACE_ID, "seller_id": sandbox::amazon::SELLER_ID,
               "client_id": sandbox::amazon::CLIENT_ID, "client_secret": sandbox::amazon::CLIENT_SECRET,
               "refresh_token": sandbox::amazon::REFRESH_TOKEN, "endpoint": base,
               "token_endpoint": format!("{base}/auth/o2/token")}),
    );
    let ctx = connectors::Context::default();
    let settings = connectors::settings(&ctx, &connection).unwrap();
    let options = BTreeMap::from([("page_size".to_string(), json!(page_size))]);
    connectors::pager(&ctx, "amazon_sp", "settlements", &settings, &options).unwrap()
}

/// Reads a whole listing from `position`; tells the pager what was taken, as the poll loop
/// does once a page is durable. Returns the settlements, the pages and the final position.
async fn listing(pager: &dyn Pager, mut position: Option<String>) -> (Vec<Value>, usize, String) {
    let (mut settlements, mut pages) = (Vec::new(), 0);
    loop {
        let page = pager.page(position.as_deref(), pages == 0).await.unwrap();
        pages += 1;
        let keys: Vec<String> = page.items.iter().filter_map(|(_, k)| k.clone()).collect();
        for (payload, _) in &page.items {
            settlements.push(serde_json::from_slice::<Value>(payload).unwrap());
        }
        pager.committed(&keys);
        position = page.position;
        if !page.more {
            return (settlements, pages, position.unwrap_or_default());
        }
    }
}

fn ids(settlements: &[Value]) -> Vec<&str> {
    let mut ids: Vec<&str> = settlements
        .iter()
        .map(|s| s["settlement-id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids
}

#[test]
fn settlements_are_listed_page_by_page_and_taken_once() {
    support::block_on(async {
        let addr = sandbox::serve("127.0.0.1:0", SandboxConfig::default())
            .await
            .unwrap();
        let base = format!("http://{addr}");
        add_settlement(&base, "22000000001").await;
        let pager = pager(&base, 1);

        // Three settlements, one a page; the report still in progress and the listings
        // report are not among them.
        let (settlements, pages, watermark) = listing(pager.as_ref(), None).await;
        assert_eq!(
            ids(&settlements),
            ["11795325101", "11795325102", "22000000001"]
        );
        assert_eq!(pages, 3);
        let added = settlements
            .iter()
            .find(|s| s["settlement-id"] == "22000000001")
            .unwrap();
        assert_eq!(added["currency"], "EUR");
        assert_eq!(added["total-amount"], "5.00");
        assert_eq!(added["rows"][0]["amount"], "5.00");
        assert_eq!(added["rows"][0]["sku"], "CBA_OTF_5");
        assert!(added["rows"][0].get("settlement-id").is_none());
        // The watermark is the newest createdTime of the whole listing, not of its last page
        // (the API lists newest first).
        assert!(!watermark.contains('|'), "{watermark}");
        let newest = chrono::DateTime::parse_from_rfc3339(&watermark).unwrap();
        assert!(chrono::Utc::now().signed_duration_since(newest) < chrono::Duration::hours(1));

        // From the watermark: what was taken is not taken again; a new report is.
        let (again, _, _) = listing(pager.as_ref(), Some(watermark.clone())).await;
        assert!(again.is_empty(), "{again:?}");
        add_settlement(&base, "22000000002").await;
        let (new, _, _) = listing(pager.as_ref(), Some(watermark.clone())).await;
        assert_eq!(ids(&new), ["22000000002"]);

        // A token the API refuses lists again from where its listing started.
        let refused = pager
            .page(
                Some(&format!("{watermark}|{watermark}|bm90IGEgdG9rZW4")),
                false,
            )
            .await
            .unwrap();
        assert!(refused.items.is_empty());
        assert_eq!(refused.position.as_deref(), Some(watermark.as_str()));
    });
}
