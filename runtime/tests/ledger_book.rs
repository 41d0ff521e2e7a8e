//! The ledger's book: property tests (duplicates and reordering converge to applying each
//! distinct movement once in time order; available-to-sell is never negative and never
//! promises a unit twice; reservations never exceed what was available), the same rules
//! through the SQLite journal with a reload, and the reservation lifecycle.

use omniflow_engine::ledger::book::{Applied, Book, Kind, Movement, Refusal};
use omniflow_engine::ledger::memory::MemoryJournal;
use omniflow_engine::ledger::rules::Rules;
use omniflow_ir as ir;
use omniflow_state::{Backend, SqliteBackend};
use proptest::prelude::*;
use std::collections::BTreeMap;

const LOCATIONS: [&str; 2] = ["WH", "STORE"];

fn channel(name: &str, locations: &[&str], share_bp: u32) -> ir::LedgerChannel {
    ir::LedgerChannel {
        name: name.into(),
        locations: locations.iter().map(|l| l.to_string()).collect(),
        share_bp,
        cap: None,
        min_publish: 0,
        safety_stock: 0,
        safety_by_location: BTreeMap::new(),
        safety_by_sku: BTreeMap::new(),
        publish: None,
    }
}

fn rules(channels: Vec<ir::LedgerChannel>, window_ms: u64) -> Rules {
    Rules::new(&ir::Ledger {
        name: "stock".into(),
        locations: LOCATIONS.iter().map(|l| l.to_string()).collect(),
        reservation_window_ms: window_ms,
        channels,
    })
    .expect("valid rules")
}

fn three_channels() -> Vec<ir::LedgerChannel> {
    vec![
        channel("web", &["WH", "STORE"], 5_000),
        channel("marketplace", &["WH"], 3_000),
        channel("pos", &["STORE"], 5_000),
    ]
}

fn movement(id: &str, kind: Kind, location: &str, quantity: i64, at: i64) -> Movement {
    Movement {
        id: id.into(),
        kind,
        sku: "SKU-1".into(),
        location: location.into(),
        quantity,
        counterpart: None,
        reference: None,
        at,
    }
}

/// What each distinct movement does, applied once each in time order (deltas before a
/// count at the same instant, counts at one instant by id).
fn reference(movements: &[Movement]) -> BTreeMap<&'static str, (i64, i64, i64)> {
    let mut sorted: Vec<&Movement> = movements.iter().collect();
    sorted.sort_by(|a, b| {
        (a.at, a.kind == Kind::CycleCount, &a.id).cmp(&(b.at, b.kind == Kind::CycleCount, &b.id))
    });
    let mut state: BTreeMap<&'static str, (i64, i64, i64)> =
        LOCATIONS.iter().map(|l| (*l, (0, 0, 0))).collect();
    for m in sorted {
        let loc = LOCATIONS
            .iter()
            .find(|l| **l == m.location)
            .copied()
            .unwrap_or("WH");
        let q = m.quantity;
        match m.kind {
            Kind::CycleCount => state.get_mut(loc).map(|s| s.0 = q).unwrap_or(()),
            Kind::Receipt | Kind::Return | Kind::Adjustment => {
                state.get_mut(loc).map(|s| s.0 += q).unwrap_or(())
            }
            Kind::Sale | Kind::Shrinkage | Kind::Shipment => {
                state.get_mut(loc).map(|s| s.0 -= q).unwrap_or(())
            }
            Kind::Reservation => state.get_mut(loc).map(|s| s.1 += q).unwrap_or(()),
            Kind::Release => state.get_mut(loc).map(|s| s.1 -= q).unwrap_or(()),
            Kind::TransferOut => {
                state.get_mut(loc).map(|s| s.0 -= q).unwrap_or(());
                if let Some(to) = &m.counterpart {
                    let to = if to == "WH" { "WH" } else { "STORE" };
                    state.get_mut(to).map(|s| s.2 += q).unwrap_or(());
                }
            }
            Kind::TransferIn => {
                state
                    .get_mut(loc)
                    .map(|s| {
                        s.0 += q;
                        s.2 -= q;
                    })
                    .unwrap_or(());
            }
        }
    }
    state
}

fn kinds() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Receipt),
        Just(Kind::Sale),
        Just(Kind::Return),
        Just(Kind::TransferOut),
        Just(Kind::TransferIn),
        Just(Kind::Adjustment),
        Just(Kind::Shrinkage),
        Just(Kind::CycleCount),
        Just(Kind::CycleCount),
        Just(Kind::Reservation),
        Just(Kind::Release),
        Just(Kind::Shipment),
    ]
}

fn movements() -> impl Strategy<Value = Vec<Movement>> {
    prop::collection::vec((kinds(), 0usize..2, 0i64..40, 0i64..30), 1..40).prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (kind, loc, quantity, at))| {
                let location = LOCATIONS[loc];
                let other = LOCATIONS[1 - loc];
                let quantity = if kind == Kind::Adjustment {
                    quantity - 20
                } else {
                    quantity
                };
                Movement {
                    counterpart: matches!(kind, Kind::TransferOut | Kind::TransferIn)
                        .then(|| other.to_string()),
                    ..movement(&format!("m{i:03}"), kind, location, quantity, at * 1000)
                }
            })
            .collect()
    })
}

/// A delivery of the movements: every one at least once, some twice, in any order.
fn delivery(movements: &[Movement], keys: &[u32], repeats: &[usize]) -> Vec<Movement> {
    let mut sent: Vec<(u32, Movement)> = movements
        .iter()
        .enumerate()
        .map(|(i, m)| (keys.get(i).copied().unwrap_or(0), m.clone()))
        .collect();
    for (n, r) in repeats.iter().enumerate() {
        let m = movements[r % movements.len()].clone();
        sent.push((keys.get(n + movements.len()).copied().unwrap_or(7), m));
    }
    sent.sort_by_key(|(k, m)| (*k, m.id.clone()));
    sent.into_iter().map(|(_, m)| m).collect()
}

fn state_of(book: &Book) -> BTreeMap<&'static str, (i64, i64, i64)> {
    LOCATIONS
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let p = book.position("SKU-1", i).cloned().unwrap_or_default();
            (*l, (p.on_hand, p.reserved, p.in_transit))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn duplicates_and_reordering_converge(
        ms in movements(),
        keys in prop::collection::vec(any::<u32>(), 80),
        repeats in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let mut book = Book::new(rules(three_channels(), 0));
        let mut journal = MemoryJournal::default();
        let mut duplicates = 0;
        for m in delivery(&ms, &keys, &repeats) {
            match book.apply(&mut journal, &m) {
                Ok(Applied::Duplicate) => duplicates += 1,
                Ok(Applied::Changed(_)) => {}
                Err(e) => prop_assert!(false, "refused: {e:?}"),
            }
            for c in 0..3 {
                prop_assert!(book.ats(c, "SKU-1") >= 0);
            }
            // No unit is promised twice: what the channels are offered fits in what is free.
            let offered: i64 = (0..3).map(|c| book.ats(c, "SKU-1")).sum();
            let free: i64 = (0..2).map(|l| book.position("SKU-1", l).map_or(0, |p| p.free())).sum();
            prop_assert!(offered <= free, "offered {offered} of {free} free units");
        }
        prop_assert_eq!(duplicates, repeats.len());
        prop_assert_eq!(state_of(&book), reference(&ms));
    }

    #[test]
    fn the_sqlite_journal_converges_the_same_way(
        ms in movements(),
        keys in prop::collection::vec(any::<u32>(), 80),
        repeats in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let mut backend = SqliteBackend::open(":memory:").unwrap();
        backend.begin().unwrap();
        let mut book = Book::new(rules(three_channels(), 0));
        for m in delivery(&ms, &keys, &repeats) {
            let mut journal = backend.journal("stock").unwrap();
            book.apply(journal.as_mut(), &m).unwrap();
        }
        backend.commit().unwrap();
        prop_assert_eq!(state_of(&book), reference(&ms));
        // And what is stored reloads to the same stock.
        let mut reloaded = Book::new(rules(three_channels(), 0));
        reloaded.load(backend.journal("stock").unwrap().as_mut()).unwrap();
        prop_assert_eq!(state_of(&reloaded), reference(&ms));
    }

    #[test]
    fn reservations_never_exceed_what_was_available(
        receipts in prop::collection::vec((0usize..2, 1i64..20), 1..6),
        orders in prop::collection::vec((0usize..3, 1i64..6, any::<bool>()), 1..60),
    ) {
        let mut book = Book::new(rules(three_channels(), 0));
        let mut journal = MemoryJournal::default();
        let mut stocked = 0;
        for (i, (loc, q)) in receipts.iter().enumerate() {
            book.apply(&mut journal, &movement(&format!("r{i}"), Kind::Receipt, LOCATIONS[*loc], *q, 0)).unwrap();
            stocked += q;
        }
        let mut held = 0;
        for (i, (channel, quantity, backorder)) in orders.iter().enumerate() {
            let available: i64 = book.sellable(*channel, "SKU-1").iter().map(|(_, n)| n).sum();
            let result = book.reserve(&mut journal, &format!("o{i}"), *channel, &[("SKU-1".to_string(), *quantity)], *backorder, 0);
            let taken: i64 = book.holds(&format!("o{i}")).iter().filter(|h| !h.location.is_empty()).map(|h| h.quantity).sum();
            match result {
                Ok(_) if *backorder => prop_assert_eq!(taken, (*quantity).min(available)),
                Ok(_) => {
                    prop_assert!(*quantity <= available);
                    prop_assert_eq!(taken, *quantity);
                }
                Err(Refusal::Invalid(reason)) => {
                    prop_assert!(*quantity > available && !backorder, "{}", reason);
                    prop_assert!(reason.contains("SKU-1 needs"), "{}", reason);
                    prop_assert_eq!(taken, 0);
                }
                Err(other) => prop_assert!(false, "{other:?}"),
            }
            held += taken;
            prop_assert!(held <= stocked);
            for l in 0..2 {
                let p = book.position("SKU-1", l).cloned().unwrap_or_default();
                prop_assert!(p.held <= p.on_hand - p.reserved);
            }
        }
    }
}

#[test]
fn a_count_replaces_on_hand_as_of_its_time_and_later_deltas_still_apply() {
    let mut book = Book::new(rules(three_channels(), 0));
    let mut journal = MemoryJournal::default();
    // Delivered out of order: the sale after the count first, then the count, then a
    // receipt from before the count (absorbed by it).
    book.apply(&mut journal, &movement("sale", Kind::Sale, "WH", 3, 20_000))
        .unwrap();
    book.apply(
        &mut journal,
        &movement("count", Kind::CycleCount, "WH", 50, 10_000),
    )
    .unwrap();
    book.apply(
        &mut journal,
        &movement("early", Kind::Receipt, "WH", 7, 5_000),
    )
    .unwrap();
    assert_eq!(book.position("SKU-1", 0).unwrap().on_hand, 47);
    // An older count changes nothing; a newer one replaces again.
    book.apply(
        &mut journal,
        &movement("old-count", Kind::CycleCount, "WH", 10, 1_000),
    )
    .unwrap();
    assert_eq!(book.position("SKU-1", 0).unwrap().on_hand, 47);
    book.apply(
        &mut journal,
        &movement("new-count", Kind::CycleCount, "WH", 40, 15_000),
    )
    .unwrap();
    assert_eq!(book.position("SKU-1", 0).unwrap().on_hand, 37);
}

#[test]
fn bad_movements_are_refused_with_the_reason() {
    let mut book = Book::new(rules(three_channels(), 0));
    let mut journal = MemoryJournal::default();
    let err = book
        .apply(
            &mut journal,
            &movement("m1", Kind::Receipt, "DARK-STORE", 5, 0),
        )
        .unwrap_err();
    assert_eq!(
        err,
        Refusal::Invalid(
            "movement m1: location DARK-STORE is not kept by ledger `stock` (it keeps WH, STORE)"
                .into()
        )
    );
    let err = book
        .apply(&mut journal, &movement("m2", Kind::Sale, "WH", -2, 0))
        .unwrap_err();
    assert!(matches!(err, Refusal::Invalid(r) if r.contains("quantities are positive")));
    // A refused movement is not recorded: once corrected, it applies.
    book.apply(&mut journal, &movement("m1", Kind::Receipt, "WH", 5, 0))
        .unwrap();
    assert_eq!(book.position("SKU-1", 0).unwrap().on_hand, 5);
}

#[test]
fn shares_safety_stock_cap_and_minimum_shape_what_each_channel_is_offered() {
    let mut web = channel("web", &["WH", "STORE"], 5_000);
    web.safety_by_location.insert("STORE".into(), 2);
    web.cap = Some(30);
    let mut marketplace = channel("marketplace", &["WH"], 5_000);
    marketplace.min_publish = 5;
    marketplace.safety_by_sku.insert("SKU-1".into(), 3);
    let mut book = Book::new(rules(vec![web, marketplace], 0));
    let mut journal = MemoryJournal::default();
    book.apply(&mut journal, &movement("r1", Kind::Receipt, "WH", 11, 0))
        .unwrap();
    book.apply(&mut journal, &movement("r2", Kind::Receipt, "STORE", 6, 0))
        .unwrap();
    // web: half of 11 at WH (5) + half of 6 - 2 at STORE (2) = 7
    assert_eq!(book.ats(0, "SKU-1"), 7);
    // marketplace: half of 11 - 3 = 4, below its minimum of 5: nothing offered
    assert_eq!(book.ats(1, "SKU-1"), 0);
    book.apply(&mut journal, &movement("r3", Kind::Receipt, "WH", 100, 0))
        .unwrap();
    assert_eq!(book.ats(0, "SKU-1"), 30, "capped");
    assert_eq!(book.ats(1, "SKU-1"), 54);
}

#[test]
fn reservations_expire_unless_confirmed_and_shipments_consume_them() {
    let mut book = Book::new(rules(vec![channel("web", &["WH"], 10_000)], 60_000));
    let mut journal = MemoryJournal::default();
    book.apply(&mut journal, &movement("r1", Kind::Receipt, "WH", 10, 0))
        .unwrap();
    let line = |q| vec![("SKU-1".to_string(), q)];
    book.reserve(&mut journal, "A", 0, &line(4), false, 1_000)
        .unwrap();
    book.reserve(&mut journal, "B", 0, &line(3), false, 1_000)
        .unwrap();
    assert_eq!(
        book.reserve(&mut journal, "A", 0, &line(4), false, 2_000),
        Ok(Applied::Duplicate)
    );
    assert_eq!(book.ats(0, "SKU-1"), 3);
    let err = book
        .reserve(&mut journal, "C", 0, &line(5), false, 1_000)
        .unwrap_err();
    assert_eq!(
        err,
        Refusal::Invalid(
            "order C cannot be reserved: SKU-1 needs 5, 3 available to channel web".into()
        )
    );
    assert!(book.confirm(&mut journal, "A").unwrap());
    let (expired, _) = book.expire(&mut journal, 61_000).unwrap();
    assert_eq!(expired, vec!["B".to_string()]);
    assert_eq!(
        book.ats(0, "SKU-1"),
        6,
        "B's three units are free again, A's four are kept"
    );
    // Shipping A's units consumes its hold and the stock together.
    let mut ship = movement("s1", Kind::Shipment, "WH", 4, 70_000);
    ship.reference = Some("A".into());
    book.apply(&mut journal, &ship).unwrap();
    assert!(book.holds("A").is_empty());
    let p = book.position("SKU-1", 0).unwrap();
    assert_eq!((p.on_hand, p.held), (6, 0));
    // A backorder holds what is there and records the rest.
    book.reserve(&mut journal, "D", 0, &line(8), true, 80_000)
        .unwrap();
    let holds = book.holds("D");
    assert_eq!(
        holds
            .iter()
            .map(|h| (h.location.as_str(), h.quantity))
            .collect::<Vec<_>>(),
        vec![("WH", 6), ("", 2)]
    );
}

#[test]
fn the_sqlite_journal_keeps_the_same_book_across_a_reload() {
    let dir = std::env::temp_dir().join(format!("omniflow-ledger-book-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.db");
    let _ = std::fs::remove_file(&path);
    let mut backend = SqliteBackend::open(path.to_str().unwrap()).unwrap();
    let script = vec![
        movement("a", Kind::Receipt, "WH", 30, 1_000),
        movement("b", Kind::Sale, "WH", 4, 9_000),
        movement("c", Kind::CycleCount, "WH", 20, 5_000),
        movement("a", Kind::Receipt, "WH", 30, 1_000),
        Movement {
            counterpart: Some("STORE".into()),
            ..movement("d", Kind::TransferOut, "WH", 5, 10_000)
        },
        movement("e", Kind::Reservation, "STORE", 1, 11_000),
    ];
    let mut memory_book = Book::new(rules(three_channels(), 60_000));
    let mut memory = MemoryJournal::default();
    let mut sql_book = Book::new(rules(three_channels(), 60_000));
    backend.begin().unwrap();
    for m in &script {
        let mut journal = backend.journal("stock").unwrap();
        let a = sql_book.apply(journal.as_mut(), m).unwrap();
        let b = memory_book.apply(&mut memory, m).unwrap();
        assert_eq!(a, b);
        sql_book.refresh("SKU-1", 0);
    }
    {
        let mut journal = backend.journal("stock").unwrap();
        sql_book
            .reserve(journal.as_mut(), "O1", 0, &[("SKU-1".into(), 2)], false, 0)
            .unwrap();
        sql_book.refresh("SKU-1", 0);
    }
    backend.commit().unwrap();
    drop(backend);
    let mut reopened = SqliteBackend::open(path.to_str().unwrap()).unwrap();
    let mut reloaded = Book::new(rules(three_channels(), 60_000));
    reloaded
        .load(reopened.journal("stock").unwrap().as_mut())
        .unwrap();
    assert_eq!(state_of(&reloaded), state_of(&memory_book));
    assert_eq!(
        state_of(&reloaded),
        BTreeMap::from([("WH", (11, 0, 0)), ("STORE", (0, 1, 5))])
    );
    assert_eq!(reloaded.position("SKU-1", 0).unwrap().held, 2);
    assert_eq!(reloaded.holds("O1").len(), 1);
    assert_eq!(reloaded.ats(0, "SKU-1"), sql_book.ats(0, "SKU-1"));
    assert_eq!(
        reloaded.publication(0, "SKU-1").map(|p| p.ats),
        Some(sql_book.ats(0, "SKU-1"))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_shipment_from_another_location_consumes_the_orders_hold_there() {
    let mut book = Book::new(rules(vec![channel("web", &["WH", "STORE"], 10_000)], 0));
    let mut journal = MemoryJournal::default();
    book.apply(&mut journal, &movement("r1", Kind::Receipt, "WH", 2, 0))
        .unwrap();
    book.apply(&mut journal, &movement("r2", Kind::Receipt, "STORE", 5, 0))
        .unwrap();
    // Held at WH first (2), then STORE (1).
    book.reserve(&mut journal, "A", 0, &[("SKU-1".into(), 3)], false, 0)
        .unwrap();
    assert_eq!(book.position("SKU-1", 0).unwrap().held, 2);
    assert_eq!(book.position("SKU-1", 1).unwrap().held, 1);
    // The whole order ships from the store: every hold of the order is consumed.
    let mut ship = movement("s1", Kind::Shipment, "STORE", 3, 10);
    ship.reference = Some("A".into());
    book.apply(&mut journal, &ship).unwrap();
    assert!(book.holds("A").is_empty());
    let (wh, store) = (
        book.position("SKU-1", 0).unwrap(),
        book.position("SKU-1", 1).unwrap(),
    );
    assert_eq!((wh.on_hand, wh.held, wh.free()), (2, 0, 2));
    assert_eq!((store.on_hand, store.held, store.free()), (2, 0, 2));
}

#[test]
fn a_release_ahead_of_its_reservation_frees_nothing_that_is_not_there() {
    let mut book = Book::new(rules(vec![channel("web", &["WH"], 10_000)], 0));
    let mut journal = MemoryJournal::default();
    book.apply(&mut journal, &movement("r1", Kind::Receipt, "WH", 10, 0))
        .unwrap();
    book.apply(&mut journal, &movement("rel", Kind::Release, "WH", 4, 5))
        .unwrap();
    assert_eq!(book.position("SKU-1", 0).unwrap().free(), 10);
    assert_eq!(book.ats(0, "SKU-1"), 10);
    book.apply(
        &mut journal,
        &movement("res", Kind::Reservation, "WH", 4, 1),
    )
    .unwrap();
    assert_eq!(book.ats(0, "SKU-1"), 10);
}

#[test]
fn absurd_quantities_are_refused() {
    let mut book = Book::new(rules(vec![channel("web", &["WH"], 10_000)], 0));
    let mut journal = MemoryJournal::default();
    let err = book
        .apply(
            &mut journal,
            &movement("big", Kind::Receipt, "WH", i64::MAX, 0),
        )
        .unwrap_err();
    assert!(matches!(err, Refusal::Invalid(r) if r.contains("beyond")));
    let err = book
        .reserve(&mut journal, "O", 0, &[("SKU-1".into(), i64::MAX)], true, 0)
        .unwrap_err();
    assert!(matches!(err, Refusal::Invalid(_)));
}
