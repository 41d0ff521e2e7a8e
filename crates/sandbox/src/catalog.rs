//! Seeded catalogue shared by the simulators: the reference flows' channel SKUs, ERP item
//! codes, Square variations and locations, and ShipBob fulfilment centres.

/// One sellable item.
pub struct Item {
    /// Channel SKU (Shopify, Amazon).
    pub sku: &'static str,
    /// ERP item code (OData `Products.ID`, ShipBob SKU).
    pub item_code: &'static str,
    /// Product title.
    pub title: &'static str,
    /// Unit price in US cents.
    pub price_cents: i64,
    /// Square item variation id, when the item is sold in store.
    pub square_variation: Option<&'static str>,
}

/// The catalogue (from `flows/data/sku_map.csv` and `square_items.csv`).
pub const ITEMS: &[Item] = &[
    Item {
        sku: "CBA_OTF_5",
        item_code: "ITM-200105",
        title: "Organic Cotton Tote - Natural",
        price_cents: 895,
        square_variation: None,
    },
    Item {
        sku: "TSHIRT-039-RED-M",
        item_code: "ITM-110857",
        title: "Classic Tee #039 - Red / M",
        price_cents: 2200,
        square_variation: Some("W62UWFY35CWMYGVWK6TWJDNI"),
    },
    Item {
        sku: "TSHIRT-036-BLK-XL",
        item_code: "ITM-104578",
        title: "Classic Tee #036 - Black / XL",
        price_cents: 2950,
        square_variation: Some("QX7RZ2B4KJH6T3M5PLD8WCFA"),
    },
    Item {
        sku: "TSHIRT-035-GRY-L",
        item_code: "ITM-100455",
        title: "Classic Tee #035 - Grey / L",
        price_cents: 2200,
        square_variation: None,
    },
    Item {
        sku: "CAP-009-BLK-XL",
        item_code: "ITM-112467",
        title: "Dad Cap #009 - Black / XL",
        price_cents: 1800,
        square_variation: Some("HB3N6V2KD7PQ4XJ9TZ5RWLMC"),
    },
    Item {
        sku: "BOTTLE-048-BLK-XS",
        item_code: "ITM-104242",
        title: "Steel Bottle #048 - Black / XS",
        price_cents: 2400,
        square_variation: None,
    },
    Item {
        sku: "SOCK-014-GRY-M",
        item_code: "ITM-102541",
        title: "Crew Socks #014 - Grey / M",
        price_cents: 1099,
        square_variation: Some("T9KC4M2ZQ8RW6BXN3HJ7VFLD"),
    },
    Item {
        sku: "POSTER-034-NVY-XL",
        item_code: "ITM-108848",
        title: "Art Print #034 - Navy / XL",
        price_cents: 1500,
        square_variation: None,
    },
    Item {
        sku: "JACKET-007-OLV-L",
        item_code: "ITM-300711",
        title: "Field Jacket #007 - Olive / L",
        price_cents: 8900,
        square_variation: None,
    },
];

/// Square location ids (SoHo, Williamsburg).
pub const SQUARE_LOCATIONS: [&str; 2] = ["FPYCBCHYMXFK1", "LK3Z8WQ2M5R7B"];

/// ShipBob fulfilment centres: (location id, name).
pub const SHIPBOB_LOCATIONS: [(u64, &str); 2] = [(1, "Cicero (IL)"), (23, "Moreno Valley (CA)")];

/// Shopify location ids: (id, name); the first one holds online stock.
pub const SHOPIFY_LOCATIONS: [(u64, &str); 2] =
    [(65544149101, "SoHo"), (65544149102, "Williamsburg")];

/// Finds an item by channel SKU.
pub fn by_sku(sku: &str) -> Option<(usize, &'static Item)> {
    ITEMS.iter().enumerate().find(|(_, i)| i.sku == sku)
}

/// Finds an item by ERP item code.
pub fn by_item_code(code: &str) -> Option<(usize, &'static Item)> {
    ITEMS.iter().enumerate().find(|(_, i)| i.item_code == code)
}

/// Finds an item by Square variation id.
pub fn by_square_variation(id: &str) -> Option<(usize, &'static Item)> {
    ITEMS
        .iter()
        .enumerate()
        .find(|(_, i)| i.square_variation == Some(id))
}

/// Shopify product id of item `idx`.
pub fn shopify_product_id(idx: usize) -> u64 {
    632_910_000 + idx as u64
}

/// Shopify variant id of item `idx`.
pub fn shopify_variant_id(idx: usize) -> u64 {
    39_072_856_000 + idx as u64
}

/// Shopify inventory item id of item `idx` (distinct from the variant id).
pub fn shopify_inventory_item_id(idx: usize) -> u64 {
    808_950_000 + idx as u64
}

/// Amazon ASIN of item `idx`.
pub fn asin(idx: usize) -> String {
    format!("B0SBX{idx:05}")
}

/// ShipBob inventory id of item `idx`.
pub fn shipbob_inventory_id(idx: usize) -> u64 {
    880_100 + idx as u64
}
