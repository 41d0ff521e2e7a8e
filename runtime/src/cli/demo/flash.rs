//! The demo's flash sale: 100 units of one tee arrive (70 in the main warehouse, 30 in the
//! SoHo store), then 1,000 one-unit orders from the storefront, Amazon and the stores ask
//! the reference ledger `stock` to hold them at once. The ledger must hold exactly the
//! stock, refuse the rest with reasons, tell every publishing channel 0, and leave no SKU
//! oversold.

use omniflow_engine::ledger::book::{Applied, Book, Kind, Movement, Refusal};
use omniflow_engine::ledger::{now_ms, Ledger};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The flash-sale item (the sandbox's Classic Tee #039, red, M).
pub const SKU: &str = "ITM-110857";
const CHANNELS: [&str; 3] = ["web", "marketplace", "pos"];
const ORDERS: usize = 1_000;

/// What the flash sale did.
pub struct Outcome {
    pub received: i64,
    /// Free units of the item once the receipts were applied (the day's store sales
    /// already took some).
    pub available: i64,
    pub held_orders: usize,
    pub held_units: i64,
    pub refused: usize,
    /// A refusal, as the order desk sees it.
    pub sample_reason: String,
    /// Per publishing channel: what it was last told of the flash item.
    pub told: Vec<(String, Option<i64>)>,
    /// Per SKU with any stock or hold: units held for orders beyond the free stock.
    pub oversold: Vec<(String, i64)>,
}

/// Units held for orders that the stock does not cover, per SKU.
pub fn oversold(book: &Book) -> Vec<(String, i64)> {
    let mut skus: Vec<String> = book.skus().map(str::to_string).collect();
    skus.sort();
    skus.into_iter()
        .map(|sku| {
            let over: i64 = (0..book.rules.locations.len())
                .filter_map(|l| book.position(&sku, l))
                .map(|p| (p.held - (p.on_hand - p.reserved).max(0)).max(0))
                .sum();
            (sku, over)
        })
        .collect()
}

fn receipt(id: &str, location: &str, quantity: i64) -> Movement {
    Movement {
        id: format!("demo-flash:{id}"),
        kind: Kind::Receipt,
        sku: SKU.into(),
        location: location.into(),
        quantity,
        counterpart: None,
        reference: Some("PO-FLASH-1".into()),
        at: now_ms(),
    }
}

/// Runs the flash sale against the running ledger.
pub async fn run(ledger: &Rc<Ledger>) -> Result<Outcome, String> {
    let received = 100;
    for movement in [
        receipt("wh", "WH-MAIN", 70),
        receipt("soho", "STORE-NYC-SOHO", 30),
    ] {
        ledger
            .apply(movement)
            .await
            .map_err(|e| format!("flash-sale receipt: {e:?}"))?;
    }
    let available: i64 = ledger.with_book(|book| {
        (0..book.rules.locations.len())
            .filter_map(|l| book.position(SKU, l))
            .map(|p| p.free())
            .sum()
    });
    // Every order asks at once; the ledger decides in the order the requests reach it.
    let mut asks = Vec::with_capacity(ORDERS);
    for n in 0..ORDERS {
        let ledger = ledger.clone();
        let channel = CHANNELS[n % CHANNELS.len()];
        asks.push(tokio::task::spawn_local(async move {
            ledger
                .reserve(
                    format!("flash-{channel}-{n:04}"),
                    channel,
                    vec![(SKU.to_string(), 1)],
                    false,
                )
                .await
        }));
    }
    let (mut held_orders, mut refused, mut sample_reason) = (0, 0, String::new());
    for ask in asks {
        match ask.await.map_err(|e| e.to_string())? {
            Ok(Applied::Changed(_)) => held_orders += 1,
            Ok(Applied::Duplicate) => {}
            Err(Refusal::Invalid(reason)) => {
                refused += 1;
                if sample_reason.is_empty() {
                    sample_reason = reason;
                }
            }
            Err(Refusal::Store(err)) => return Err(format!("flash sale: {err}")),
        }
    }
    // The publishing channels are told 0 (a drop to zero goes first in their queues).
    let publishing: Vec<usize> = ledger.publishing_channels();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let all_told = ledger.with_book(|book| {
            publishing.iter().all(|&c| {
                book.publication(c, SKU)
                    .is_some_and(|p| p.published == Some(0))
            })
        });
        if all_told {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(ledger.with_book(|book| Outcome {
        received,
        available,
        held_orders,
        held_units: (0..book.rules.locations.len())
            .filter_map(|l| book.position(SKU, l))
            .map(|p| p.held)
            .sum(),
        refused,
        sample_reason,
        told: publishing
            .iter()
            .map(|&c| {
                (
                    book.rules.channels[c].spec.name.clone(),
                    book.publication(c, SKU).and_then(|p| p.published),
                )
            })
            .collect(),
        oversold: oversold(book),
    }))
}
