//! The ledger's rows as the state store keeps them, and the [`Journal`] a ledger's book
//! writes them through.

use crate::StateResult;

/// The most units one movement or order line may carry: far beyond any real quantity,
/// and far from overflowing the sums the ledger keeps.
pub const MAX_QUANTITY: i64 = 1_000_000_000;

/// What a movement does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Receipt,
    Sale,
    Return,
    TransferOut,
    TransferIn,
    Adjustment,
    Shrinkage,
    CycleCount,
    Reservation,
    Release,
    Shipment,
}

impl Kind {
    /// Parses the `MovementKind` variant name.
    pub fn parse(text: &str) -> Option<Kind> {
        Some(match text {
            "receipt" => Kind::Receipt,
            "sale" => Kind::Sale,
            "return" => Kind::Return,
            "transfer_out" => Kind::TransferOut,
            "transfer_in" => Kind::TransferIn,
            "adjustment" => Kind::Adjustment,
            "shrinkage" => Kind::Shrinkage,
            "cycle_count" => Kind::CycleCount,
            "reservation" => Kind::Reservation,
            "release" => Kind::Release,
            "shipment" => Kind::Shipment,
            _ => return None,
        })
    }

    /// The variant name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Receipt => "receipt",
            Kind::Sale => "sale",
            Kind::Return => "return",
            Kind::TransferOut => "transfer_out",
            Kind::TransferIn => "transfer_in",
            Kind::Adjustment => "adjustment",
            Kind::Shrinkage => "shrinkage",
            Kind::CycleCount => "cycle_count",
            Kind::Reservation => "reservation",
            Kind::Release => "release",
            Kind::Shipment => "shipment",
        }
    }

    /// The change to on-hand at the movement's location (not for cycle counts).
    pub fn on_hand_delta(self, quantity: i64) -> i64 {
        match self {
            Kind::Receipt | Kind::Return | Kind::TransferIn | Kind::Adjustment => quantity,
            Kind::Sale | Kind::TransferOut | Kind::Shrinkage | Kind::Shipment => -quantity,
            Kind::CycleCount | Kind::Reservation | Kind::Release => 0,
        }
    }
}

/// One canonical `InventoryMovement`.
#[derive(Debug, Clone, PartialEq)]
pub struct Movement {
    pub id: String,
    pub kind: Kind,
    pub sku: String,
    pub location: String,
    pub quantity: i64,
    pub counterpart: Option<String>,
    pub reference: Option<String>,
    /// When it happened, milliseconds since the epoch.
    pub at: i64,
}

/// Stock of one sku at one location.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    pub on_hand: i64,
    /// Held by reservation movements from other systems.
    pub reserved: i64,
    /// Sent here by a transfer and not yet received.
    pub in_transit: i64,
    /// Held by order reservations (derived from the holds, not stored).
    pub held: i64,
    /// The latest cycle count applied: its time and id.
    pub count_at: Option<i64>,
    pub count_id: String,
    /// The position's row in the journal, once it has one.
    pub row: Option<i64>,
}

impl Position {
    /// Units not held by anyone, never negative.
    pub fn free(&self) -> i64 {
        // A release delivered before its reservation leaves `reserved` below 0 for a
        // while; it never frees units that are not there.
        (self.on_hand - self.reserved.max(0) - self.held).max(0)
    }
}

/// Units of one sku an order holds at one location. A hold with an empty location is a
/// backorder: recorded, holding nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub order: String,
    pub sku: String,
    pub location: String,
    pub quantity: i64,
    pub channel: String,
    /// Released at this time unless confirmed (`None`: confirmed or no window).
    pub expires_at: Option<i64>,
}

/// A channel's available-to-sell for one sku: computed, and last published.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Publication {
    pub ats: i64,
    pub published: Option<i64>,
    pub published_at: Option<i64>,
    /// When `ats` first differed from `published` (for the publication lag); not stored.
    pub pending_since: Option<i64>,
}

impl Publication {
    /// True when the channel has not been told the current value (a sku never published
    /// counts as published at 0).
    pub fn is_pending(&self) -> bool {
        self.published.unwrap_or(0) != self.ats
    }
}

/// Everything a ledger keeps durably, as loaded at start.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The ledger's declaration as last started (JSON of the compiled ledger).
    pub rules: Option<String>,
    pub positions: Vec<(String, String, Position)>,
    pub holds: Vec<Hold>,
    pub publications: Vec<(String, String, Publication)>,
}

/// The durable side of a book: one ledger's rows in the state store.
pub trait Journal {
    /// The row of a (sku, location) position, created empty when it has none.
    fn position_row(&mut self, sku: &str, location: &str) -> StateResult<i64>;
    /// Records a movement at a position with its on-hand delta; false when its id was
    /// recorded before.
    fn record(&mut self, movement: &Movement, row: i64, on_hand_delta: i64) -> StateResult<bool>;
    /// The sum of on-hand deltas at a position that happened strictly after `at`.
    fn on_hand_after(&mut self, row: i64, at: i64) -> StateResult<i64>;
    fn save_position(&mut self, row: i64, position: &Position) -> StateResult<()>;
    /// Replaces an order's holds.
    fn save_holds(&mut self, order: &str, holds: &[Hold]) -> StateResult<()>;
    fn save_publication(
        &mut self,
        channel: &str,
        sku: &str,
        publication: &Publication,
    ) -> StateResult<()>;
    /// Stores the ledger's declaration (for readers without the flows).
    fn save_rules(&mut self, rules: &str) -> StateResult<()>;
    /// Everything stored for the ledger.
    fn load(&mut self) -> StateResult<Snapshot>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn movement(id: &str, at: i64) -> Movement {
        Movement {
            id: id.into(),
            kind: Kind::Receipt,
            sku: "sku-1".into(),
            location: "store-1".into(),
            quantity: 5,
            counterpart: None,
            reference: None,
            at,
        }
    }

    fn hold(order: &str, sku: &str, quantity: i64) -> Hold {
        Hold {
            order: order.into(),
            sku: sku.into(),
            location: "store-1".into(),
            quantity,
            channel: "web".into(),
            expires_at: Some(99),
        }
    }

    #[tokio::test]
    async fn a_journal_keeps_the_same_rows_on_every_backend() {
        for state in crate::testing::each("journal") {
            let kind = state.kind();
            let written = state
                .store
                .call(|b| {
                    let mut journal = b.journal("stock")?;
                    let row = journal.position_row("sku-1", "store-1")?;
                    assert_eq!(journal.position_row("sku-1", "store-1")?, row);
                    assert!(journal.record(&movement("m1", 10), row, 5)?);
                    assert!(!journal.record(&movement("m1", 10), row, 5)?, "a repeat");
                    assert!(journal.record(&movement("m2", 20), row, -2)?);
                    assert!(journal.record(&movement("m3", 30), row, 4)?);
                    assert_eq!(journal.on_hand_after(row, 10)?, 2);
                    assert_eq!(journal.on_hand_after(row, 30)?, 0);
                    let position = Position {
                        on_hand: 7,
                        reserved: 1,
                        in_transit: 2,
                        held: 0,
                        count_at: Some(25),
                        count_id: "count-1".into(),
                        row: Some(row),
                    };
                    journal.save_position(row, &position)?;
                    assert!(journal.save_position(row + 1000, &position).is_err());
                    journal.save_holds("o1", &[hold("o1", "sku-1", 1), hold("o1", "sku-2", 3)])?;
                    // Replaced whole; a repeated line keeps its last value.
                    journal.save_holds("o1", &[hold("o1", "sku-2", 4), hold("o1", "sku-2", 6)])?;
                    journal.save_holds("o0", &[hold("o0", "sku-1", 2)])?;
                    journal.save_holds("gone", &[hold("gone", "sku-1", 2)])?;
                    journal.save_holds("gone", &[])?;
                    let publication = Publication {
                        ats: 5,
                        published: None,
                        published_at: None,
                        pending_since: None,
                    };
                    journal.save_publication("web", "sku-1", &publication)?;
                    let published = Publication {
                        published: Some(5),
                        published_at: Some(77),
                        ..publication
                    };
                    journal.save_publication("web", "sku-1", &published)?;
                    journal.save_rules("{\"v\":1}")?;
                    journal.save_rules("{\"v\":2}")?;
                    drop(journal);
                    b.journal("other")?
                        .save_publication("pos", "sku-9", &published)?;
                    Ok(row)
                })
                .await
                .unwrap();
            let (snapshot, names) = state
                .store
                .read(|b| {
                    let snapshot = b.journal("stock")?.load()?;
                    Ok((snapshot, b.ledger_names()?))
                })
                .await
                .unwrap();
            assert_eq!(names, ["other", "stock"], "{kind}");
            assert_eq!(snapshot.rules.as_deref(), Some("{\"v\":2}"), "{kind}");
            assert_eq!(snapshot.positions.len(), 1, "{kind}");
            let (sku, location, position) = &snapshot.positions[0];
            assert_eq!((sku.as_str(), location.as_str()), ("sku-1", "store-1"));
            assert_eq!(
                (position.on_hand, position.reserved, position.in_transit),
                (7, 1, 2)
            );
            assert_eq!(
                (position.count_at, position.count_id.as_str(), position.row),
                (Some(25), "count-1", Some(written))
            );
            assert_eq!(
                snapshot.holds,
                [hold("o0", "sku-1", 2), hold("o1", "sku-2", 6)],
                "{kind}"
            );
            assert_eq!(snapshot.publications.len(), 1, "{kind}");
            let (channel, sku, publication) = &snapshot.publications[0];
            assert_eq!((channel.as_str(), sku.as_str()), ("web", "sku-1"));
            assert_eq!(
                (
                    publication.ats,
                    publication.published,
                    publication.published_at
                ),
                (5, Some(5), Some(77))
            );
        }
    }
}
