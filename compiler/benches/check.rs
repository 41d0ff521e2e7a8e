//! `omniflowc check` throughput: a generated corpus of 1,000 flow files (about 100k
//! lines), checked end to end (load, parse, resolve, typeck, checks, lower) on one thread,
//! in this process and as a whole `omniflowc check` process.
//! Run: `cargo bench -p omniflow-compiler --bench check [-- FILES RUNS]`.
#![allow(clippy::print_stdout, clippy::unwrap_used)]
// The benchmark writes its corpus to disk, the way `omniflowc check` meets it.
#![allow(clippy::disallowed_methods)]

/// The allocator `omniflowc` uses, so the figure is the command's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

/// One realistic flow file: a schema, connections, a table, a mapping with nested lines,
/// a route, sinks and tests. About 100 lines.
fn flow_file(idx: usize) -> String {
    let mut text = String::new();
    let _ = write!(
        text,
        r#"// Generated benchmark flow {idx}: marketplace orders into the ERP.
use std.retail.{{Order, OrderLine, Address}}
use std.connectors.{{amazon_sp, tryton, http}}
use std.policies.{{standard}}

connection market_{idx} = amazon_sp {{
  region = "eu"
  marketplace_id = "A1PA6795UKMFR9"
  seller_id = env("AMZ_SELLER_{idx}")
  client_id = env("AMZ_CLIENT_{idx}")
  client_secret = secret("AMZ_SECRET_{idx}")
  refresh_token = secret("AMZ_REFRESH_{idx}")
}}
connection erp_{idx} = tryton {{ url = env("TRYTON_URL"), database = "retail", username = "sync", password = secret("TRYTON_PASSWORD") }}
connection alerts_{idx} = http {{ base_url = env("ALERTS_URL") }}

table skus_{idx}: string -> string = {{
  "SKU-{idx}-1": "ITEM-{idx}-1",
  "SKU-{idx}-2": "ITEM-{idx}-2",
  "SKU-{idx}-3": "ITEM-{idx}-3",
}}

schema Review{idx} {{
  order_id: string
  total: money
  reason: string
  lines: int
}}

flow orders_{idx} {{
  source orders = market_{idx}.orders {{ every = 2m, cursor = watermark, page_size = 100 }}

  map canonical = orders -> Order {{
    let currency = $.OrderTotal.CurrencyCode ?? "EUR"
    id = "amazon:" + $.AmazonOrderId
    channel = "amazon"
    external_id = $.AmazonOrderId
    order_ref = $.SellerOrderId
    placed_at = $.PurchaseDate
    status = lower($.OrderStatus)
    currency = currency
    ship_to = if is_object($.ShippingAddress) then Address {{
      name = $.ShippingAddress.Name
      line1 = $.ShippingAddress.AddressLine1 ?? ""
      city = $.ShippingAddress.City ?? ""
      postal_code = $.ShippingAddress.PostalCode
      country = $.ShippingAddress.CountryCode ?? "DE"
    }} else null
    lines = $.OrderItems[*] as item where item.QuantityOrdered > 0 -> OrderLine {{
      line_id = item.OrderItemId
      sku = skus_{idx}[item.SellerSKU] ?? reject "unknown SKU {{{{ item.SellerSKU }}}}"
      channel_sku = item.SellerSKU
      title = item.Title
      quantity = item.QuantityOrdered
      unit_price = money(item.ItemPrice.Amount, currency)
      total = money(item.ItemPrice.Amount, currency)
    }}
    subtotal = money($.OrderTotal.Amount, currency)
    shipping = money_minor(0, currency)
    tax = money_minor(0, currency)
    discount = money_minor(0, currency)
    total = money($.OrderTotal.Amount, currency)
  }}

  route by_value = canonical {{
    when total.amount > 500000 and channel == "amazon" -> review_note, post
    otherwise -> post
  }}

  map review_note = by_value -> Review{idx} {{
    order_id = id
    total = total
    reason = "order over 5,000.00 {{{{ id }}}}"
    lines = count(lines)
  }}

  sink review = alerts_{idx}.post(review_note) {{ idempotency_key = order_id, retry = standard, dead_letter = "reviews_{idx}" }}
  sink post = erp_{idx}.create_sale(by_value) {{ idempotency_key = id, retry = standard, rate = 5/s, timeout = 30s, dead_letter = "orders_{idx}" }}

  test "maps an order {idx}" {{
    input = {{"AmazonOrderId": "{idx}", "PurchaseDate": "2026-05-01T03:58:30Z", "OrderStatus": "Unshipped", "OrderTotal": {{"Amount": "11.01", "CurrencyCode": "EUR"}}, "OrderItems": []}}
    expect = {{"id": "amazon:{idx}", "channel": "amazon"}}
  }}

  test "rejects an unknown SKU {idx}" {{
    input = {{"AmazonOrderId": "x", "PurchaseDate": "2026-05-01T03:58:30Z", "OrderStatus": "Unshipped", "OrderItems": [{{"OrderItemId": "1", "SellerSKU": "NOPE", "QuantityOrdered": 1, "ItemPrice": {{"Amount": "1.00", "CurrencyCode": "EUR"}}}}]}}
    reject = "unknown SKU"
  }}
}}
"#
    );
    text
}

fn main() {
    let args: Vec<String> = std::env::args()
        .filter(|a| !a.starts_with('-'))
        .skip(1)
        .collect();
    let n_files: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let dir = std::env::temp_dir().join(format!("omniflow-check-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut n_lines = 0;
    let mut n_bytes = 0;
    for idx in 0..n_files {
        let text = flow_file(idx);
        n_lines += text.lines().count();
        n_bytes += text.len();
        std::fs::write(dir.join(format!("flow_{idx:04}.flow")), text).unwrap();
    }
    let paths = vec![dir.clone()];
    // Warm-up, and a correctness gate: the corpus must check clean.
    let compilation = omniflow_compiler::compile_paths(&paths).unwrap();
    let errors: Vec<String> = compilation
        .diagnostics
        .iter()
        .take(3)
        .map(|d| format!("{} {}", d.code.id, d.message))
        .collect();
    assert!(
        compilation.diagnostics.is_empty(),
        "corpus does not check clean: {errors:?}"
    );
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let compilation = omniflow_compiler::compile_paths(&paths).unwrap();
        times.push(start.elapsed().as_secs_f64());
        assert_eq!(compilation.graph.flows.len(), n_files);
    }
    report("in process", &mut times, n_files, n_lines, n_bytes);
    // What a user waits for: the whole `omniflowc check` process (start, read, check, print).
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_omniflowc"))
            .arg("check")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        times.push(start.elapsed().as_secs_f64());
        assert!(status.success(), "omniflowc check failed on the corpus");
    }
    report("omniflowc check", &mut times, n_files, n_lines, n_bytes);
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}

fn report(what: &str, times: &mut [f64], n_files: usize, n_lines: usize, n_bytes: usize) {
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = times[times.len() / 2];
    println!(
        "check ({what}): {n_files} files, {n_lines} lines, {:.1} MB; median of {}: {:.3} s (min {:.3}, max {:.3}) = {:.0} lines/s, {:.1} MB/s",
        n_bytes as f64 / 1e6,
        times.len(),
        median,
        times[0],
        times[times.len() - 1],
        n_lines as f64 / median,
        n_bytes as f64 / 1e6 / median
    );
}
