//! `overwrites` comes from the connector declaration: a sink whose operation declares it and
//! that sets no `order_by` is warned (`W0404`), a source declaring it is refused (`E0514`),
//! and a ledger channel's publication, which keeps its own order, is not warned.

use omniflow_compiler::diagnostics::{Diagnostic, Severity};
use omniflow_compiler::fs::MemoryFs;
use omniflow_compiler::syntax::ast::Item;
use std::path::PathBuf;
use std::sync::Arc;

/// A connector that replaces a stock level and adds a movement, and a flow using both.
const FLOW: &str = r#"
connector stock_api {
  setting base_url: url

  source counts: poll -> json
  sink set_level(json) -> json {
    option path: template?
    overwrites
  }
  sink add_movement(json) -> json
}

connection api = stock_api { base_url = "https://stock.example.com" }

flow f {
  source s = api.counts { every = 1m }
  sink level = api.set_level(s) { idempotency_key = $.id, dead_letter = "e" }
  sink movement = api.add_movement(s) { idempotency_key = $.id, dead_letter = "e" }
}
"#;

/// The diagnostics of one file checked in memory, besides the one for declaring a
/// connector in a flow (`E0507`).
fn check(name: &str, text: &str) -> Vec<Diagnostic> {
    // In memory: the checks read the declaration, never the disk.
    let path = PathBuf::from(format!("/{name}/main.flow"));
    let fs = MemoryFs::new().with_file(&path, text);
    let compilation = omniflow_compiler::compile_with(Arc::new(fs), &[path]).unwrap();
    compilation
        .diagnostics
        .into_iter()
        .filter(|d| d.code.id != "E0507")
        .collect()
}

/// The diagnostics of `diags` with this code.
fn with_code<'d>(diags: &'d [Diagnostic], code: &str) -> Vec<&'d Diagnostic> {
    diags.iter().filter(|d| d.code.id == code).collect()
}

#[test]
fn an_overwriting_sink_without_order_by_is_warned() {
    let diags = check("unordered", FLOW);
    let warned = with_code(&diags, "W0404");
    assert_eq!(warned.len(), 1, "{diags:#?}");
    let warning = warned[0];
    assert_eq!(warning.severity, Severity::Warning);
    assert_eq!(
        warning.message,
        "sink `level` overwrites records in `api` without `order_by`"
    );
    let primary = warning.labels.iter().find(|l| l.primary).unwrap();
    let at = FLOW.find("api.set_level").unwrap();
    assert_eq!(
        (primary.span.start as usize, primary.span.end as usize),
        (at, at + "api.set_level".len()),
        "the label sits on the sink's operation"
    );
    assert!(warning
        .help
        .as_deref()
        .is_some_and(|help| help.contains("order_by = ")));
    assert!(
        diags.iter().all(|d| d.severity == Severity::Warning),
        "{diags:#?}"
    );
}

#[test]
fn order_by_silences_the_warning() {
    let ordered = FLOW.replace(
        "api.set_level(s) { idempotency_key = $.id,",
        "api.set_level(s) { idempotency_key = $.id, order_by = $.sku,",
    );
    assert_ne!(ordered, FLOW);
    let diags = check("ordered", &ordered);
    assert!(with_code(&diags, "W0404").is_empty(), "{diags:#?}");
}

#[test]
fn a_sink_that_adds_is_not_warned() {
    let adding = FLOW.replace("    overwrites\n", "");
    assert_ne!(adding, FLOW);
    let diags = check("adding", &adding);
    assert!(with_code(&diags, "W0404").is_empty(), "{diags:#?}");
}

#[test]
fn overwrites_on_a_source_is_an_error() {
    let source = FLOW.replace(
        "source counts: poll -> json\n",
        "source counts: poll -> json {\n    overwrites\n  }\n",
    );
    assert_ne!(source, FLOW);
    let diags = check("source", &source);
    let refused = with_code(&diags, "E0514");
    assert_eq!(refused.len(), 1, "{diags:#?}");
    let error = refused[0];
    assert_eq!(error.severity, Severity::Error);
    assert_eq!(
        error.message,
        "source operation `counts` declares `overwrites`"
    );
    let primary = error.labels.iter().find(|l| l.primary).unwrap();
    let at = source.find("    overwrites\n  }\n  sink").unwrap() + 4;
    assert_eq!(
        (primary.span.start as usize, primary.span.end as usize),
        (at, at + "overwrites".len())
    );
    assert!(error.help.is_some());
    // The source statement using the operation is not warned: only sinks write.
    assert_eq!(with_code(&diags, "W0404").len(), 1, "{diags:#?}");
}

#[test]
fn a_ledger_channel_publishing_to_an_overwriting_operation_is_not_warned() {
    let text = r#"
use std.connectors.{shopify, file}
use std.retail.{InventoryMovement, InventoryLevel}

connection shop = shopify { shop = "example", access_token = secret("SHOPIFY_TOKEN") }
connection inbox = file { dir = env("INBOX") }

ledger stock {
  locations = ["WH-MAIN"]
  channel web {
    locations = ["WH-MAIN"]
    publish = shop.set_inventory_level
  }
}

flow movements {
  source rows = inbox.read { path = "movements/*.jsonl", format = jsonl }
  map movement = rows -> InventoryMovement {
    id = $.id
    kind = "receipt"
    sku = $.sku
    location = "WH-MAIN"
    quantity = $.quantity
    occurred_at = $.at
  }
  sink book = stock.apply(movement) { idempotency_key = id, dead_letter = "e" }
}
"#;
    let diags = check("ledger", text);
    assert!(with_code(&diags, "W0404").is_empty(), "{diags:#?}");
    assert!(
        diags.iter().all(|d| d.severity == Severity::Warning),
        "{diags:#?}"
    );
    // The same operation used by a sink statement is warned.
    let sink = text.replace(
        "  sink book =",
        "  map level = rows -> InventoryLevel { sku = $.sku, location = \"WH-MAIN\", available = $.quantity }\n  sink publish = shop.set_inventory_level(level) { idempotency_key = sku, dead_letter = \"e\" }\n  sink book =",
    );
    let diags = check("ledger_and_sink", &sink);
    assert_eq!(with_code(&diags, "W0404").len(), 1, "{diags:#?}");
}

#[test]
fn the_stdlib_marks_the_operations_that_replace_state() {
    use omniflow_compiler::diagnostics::Diagnostics;
    use omniflow_compiler::source::FileId;
    let mut marked = Vec::new();
    for file in omniflow_compiler::stdlib::FILES {
        let mut diags = Diagnostics::default();
        let module = omniflow_compiler::syntax::parse_module(FileId(0), file.text, &mut diags);
        assert!(!diags.has_errors(), "stdlib/{} does not parse", file.path);
        for item in &module.items {
            let Item::Connector(connector) = item else {
                continue;
            };
            for sink in connector
                .sinks
                .iter()
                .filter(|s| s.body.overwrites.is_some())
            {
                marked.push(format!("{}.{}", connector.name.name, sink.name.name));
            }
            assert!(
                connector
                    .sources
                    .iter()
                    .all(|s| s.body.overwrites.is_none()),
                "a source of {} declares `overwrites`",
                connector.name.name
            );
        }
    }
    marked.sort();
    assert_eq!(
        marked,
        [
            "amazon_sp.update_listing_price",
            "amazon_sp.update_listing_quantity",
            "http.patch",
            "http.put",
            "odata.update_entity",
            "shopify.set_inventory_level",
            "shopify.update_price",
            "shopify.update_product",
            "square.set_inventory_count",
            "square.update_price",
        ]
    );
}
