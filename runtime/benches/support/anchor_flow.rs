//! The anchor workload's flow as the benchmarks run it (shared by `#[path]`): the reference
//! `canonical.order.v1` mapping with one `http` sink in place of its file sinks.

/// `flows/bench/shopify_canonical.flow` with one http sink (16 in flight, `timeout`) in
/// place of the file sinks, and without its test blocks, which name those sinks.
pub fn http_flow(timeout: &str) -> String {
    let reference = std::fs::read_to_string(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../flows/bench/shopify_canonical.flow"),
    )
    .expect("the reference flow");
    let head = reference
        .split("  route by_priority")
        .next()
        .expect("the reference flow routes by priority")
        .replace(
            "use std.connectors.{file}",
            "use std.connectors.{file, http}",
        )
        .replace(
            "connection outbox = file { dir = env(\"OMNIFLOW_OUTBOX\") }",
            "connection api = http { base_url = env(\"BENCH_SINK\") }",
        );
    format!(
        "{head}  sink post = api.post(canonical) {{\n    path = \"/orders\"\n    \
         idempotency_key = idempotency_key\n    concurrency = 16\n    timeout = {timeout}\n    \
         retry = quick\n    dead_letter = \"shopify_canonical\"\n  }}\n}}\n"
    )
}
