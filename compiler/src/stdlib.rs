//! The stdlib (`stdlib/` at the repository root), embedded into the compiler binary.
//! `std.retail` is every file under `retail/`, `std.connectors.shopify` is
//! `connectors/shopify.flow`, and `std.connectors` is all connectors together.

/// One embedded stdlib file.
#[derive(Debug, Clone, Copy)]
pub struct StdFile {
    /// Path below `stdlib/`.
    pub path: &'static str,
    /// The module it belongs to, e.g. `std.retail`.
    pub module: &'static str,
    pub text: &'static str,
}

macro_rules! std_files {
    ($($module:literal => $path:literal,)*) => {
        /// Every stdlib file.
        pub const FILES: &[StdFile] = &[
            $(StdFile { path: $path, module: $module, text: include_str!(concat!("../../stdlib/", $path)) },)*
        ];
    };
}

std_files! {
    "std.retail" => "retail/common.flow",
    "std.retail" => "retail/catalog.flow",
    "std.retail" => "retail/inventory.flow",
    "std.retail" => "retail/orders.flow",
    "std.retail" => "retail/returns.flow",
    "std.policies" => "policies/retry.flow",
    "std.connectors.amazon_sp" => "connectors/amazon_sp.flow",
    "std.connectors.bus" => "connectors/bus.flow",
    "std.connectors.file" => "connectors/file.flow",
    "std.connectors.http" => "connectors/http.flow",
    "std.connectors.ledger" => "connectors/ledger.flow",
    "std.connectors.odata" => "connectors/odata.flow",
    "std.connectors.shipbob" => "connectors/shipbob.flow",
    "std.connectors.shopify" => "connectors/shopify.flow",
    "std.connectors.shopify_graphql" => "connectors/shopify_graphql.flow",
    "std.connectors.square" => "connectors/square.flow",
    "std.connectors.tryton" => "connectors/tryton.flow",
    "std.connectors.webhook" => "connectors/webhook.flow",
}

/// The files of a module; `std.connectors` gathers every connector.
pub fn module_files(module: &str) -> Vec<&'static StdFile> {
    FILES
        .iter()
        .filter(|file| {
            file.module == module
                || (file.module.starts_with(module)
                    && file.module.as_bytes().get(module.len()) == Some(&b'.'))
        })
        .collect()
}

/// Every importable module name, for suggestions.
pub fn module_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = FILES.iter().map(|f| f.module).collect();
    names.push("std.connectors");
    names.sort_unstable();
    names.dedup();
    names
}

/// The module that declares a built-in connector, if there is one.
pub fn connector_module(name: &str) -> Option<&'static str> {
    FILES
        .iter()
        .find(|f| f.module.strip_prefix("std.connectors.") == Some(name))
        .map(|f| f.module)
}
