//! Built-in connectors at run time. A connector only classifies each call's outcome
//! (ok, transient with an optional retry-after, permanent with a reason); retries, limits,
//! idempotency and dead letters stay in the engine's delivery.
//!
//! Layout: [`api`] holds what the engine asks of a connector (sinks, pagers, webhook
//! verifiers) and the [`Registry`] every connector registers into by (connector,
//! operation); [`context`] what the connectors of one runtime share (secrets, tokens, the
//! registry); [`client`] and [`transport`] the HTTP plumbing; [`signatures`] the webhook
//! plumbing. Each vendor has one folder with a fixed file set: `mod.rs` (its `register`
//! and re-exports), `settings.rs` (typed connection settings), `auth.rs` (tokens, request
//! and webhook signatures), `read.rs` (pagers), `write.rs` (sinks), `classify.rs` (answers
//! to outcomes), with their unit tests; a file that would be empty is left out.
//!
//! # Adding a connector
//!
//! 1. A folder `src/VENDOR/` with the files above and a `register(&mut Registry)` that
//!    registers each sink, pager and webhook verifier under the names the stdlib declares.
//! 2. The declaration `stdlib/connectors/VENDOR.flow` (settings, sources with their kind,
//!    sinks with their input type); the tidy tests hold both directions: every declared
//!    operation is registered, every registered one declared with the same kind.
//! 3. One line `VENDOR::register(&mut registry);` in [`Registry::builtin`].
//! 4. Optionally, a simulator of the vendor in `crates/sandbox` for end-to-end tests.
#![deny(clippy::unwrap_used)]

pub mod amazon;
pub mod api;
pub mod client;
pub mod context;
pub mod declared;
pub mod error;
pub mod file;
pub mod http;
pub mod odata;
pub mod shipbob;
pub mod shopify;
pub mod signatures;
pub mod square;
pub mod tokens;
pub mod trace;
pub mod transport;
pub mod tryton;
pub mod webhook;

use omniflow_ir::Connection;

pub use api::{
    Call, CallFuture, CallOutcome, ConnectorError, Kind, Map, Page, PageFuture, Pager, Registry,
    SinkConnector, Verifier,
};
pub use context::{Context, SecretSource, TokenCache};

impl Registry {
    /// Every connector built into this runtime.
    pub fn builtin() -> Registry {
        let mut registry = Registry::default();
        amazon::register(&mut registry);
        file::register(&mut registry);
        http::register(&mut registry);
        odata::register(&mut registry);
        shipbob::register(&mut registry);
        shopify::register(&mut registry);
        square::register(&mut registry);
        tryton::register(&mut registry);
        webhook::register(&mut registry);
        registry
    }
}

/// Resolves a connection's settings (see [`Context::settings`]).
pub fn settings(ctx: &Context, connection: &Connection) -> Result<Map, ConnectorError> {
    ctx.settings(connection)
}

/// True when this runtime runs `connector.operation` as declared: `kind` is `sink` for a
/// sink, else the source's kind (`poll`, `schedule`, `webhook`, `bus`, `file`).
pub fn implements(connector: &str, operation: &str, kind: &str) -> bool {
    Registry::builtin().implements(connector, operation, kind)
}

/// Builds the sink connector for an operation.
pub fn sink(
    ctx: &Context,
    connection: &Connection,
    operation: &str,
    options: &Map,
) -> Result<Box<dyn SinkConnector>, ConnectorError> {
    let connector = connection.connector.as_str();
    if let Some(spec) = &connection.declared {
        return declared::sink(&ctx.tokens, spec, operation, &ctx.settings(connection)?);
    }
    let Some(build) = ctx.registry.sink_build(connector, operation) else {
        return Err(ConnectorError::UnknownSink {
            connection: connection.name.clone(),
            connector: connector.to_string(),
            operation: operation.to_string(),
        });
    };
    build(&ctx.tokens, &ctx.settings(connection)?, operation, options)
}

/// Builds the pager of a poll source of `connection` (a declared connector's, or a
/// built-in one's).
pub fn pager_of(
    ctx: &Context,
    connection: &Connection,
    operation: &str,
    settings: &Map,
    options: &Map,
) -> Result<Box<dyn Pager>, ConnectorError> {
    match &connection.declared {
        Some(spec) => declared::pager(&ctx.tokens, spec, operation, settings),
        None => pager(ctx, &connection.connector, operation, settings, options),
    }
}

/// Builds the pager of a poll source of a built-in connector.
pub fn pager(
    ctx: &Context,
    connector: &str,
    operation: &str,
    settings: &Map,
    options: &Map,
) -> Result<Box<dyn Pager>, ConnectorError> {
    match ctx.registry.pager_build(connector, operation) {
        Some(build) => build(&ctx.tokens, settings, options),
        None => Err(ConnectorError::UnknownPoll {
            connector: connector.to_string(),
            operation: operation.to_string(),
        }),
    }
}

/// Builds the verifier of a webhook source.
pub fn verifier(
    ctx: &Context,
    connector: &str,
    operation: &str,
    settings: &Map,
) -> Result<Box<dyn Verifier>, ConnectorError> {
    match ctx.registry.verifier_build(connector, operation) {
        Some(build) => build(operation, settings),
        None => Err(ConnectorError::UnknownWebhook {
            connector: connector.to_string(),
        }),
    }
}

pub use file::{matching_files, read_lines};

#[cfg(test)]
mod local_api;

#[cfg(test)]
mod tests {
    use super::*;
    use omniflow_ir::SettingValue;
    use serde_json::json;

    fn connection(connector: &str, settings: &[(&str, SettingValue)]) -> Connection {
        Connection {
            name: "c".into(),
            connector: connector.into(),
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            quota: Default::default(),
            declared: None,
        }
    }

    #[test]
    fn unknown_operations_are_refused_by_name() {
        let ctx = Context::default();
        let err = sink(&ctx, &connection("shipbob", &[]), "nope", &Map::new()).err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some(
                "connection `c`: the `shipbob.nope` operation is not available in this runtime yet"
            )
        );
        let err = pager(&ctx, "shipbob", "nope", &Map::new(), &Map::new()).err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some("the `shipbob.nope` poll source is not available in this runtime yet")
        );
        let err = verifier(&ctx, "tryton", "x", &Map::new()).err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some("the tryton connector has no webhook signature scheme; deliveries cannot be verified")
        );
        assert!(implements("shipbob", "shipments", "poll"));
        assert!(implements("amazon_sp", "settlements", "schedule"));
        assert!(!implements("shipbob", "shipments", "sink"));
        assert!(implements("file", "read", "file"));
    }

    #[test]
    fn secrets_come_from_files_when_the_context_says_so() {
        let dir = std::env::temp_dir().join(format!("omniflow-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("TOKEN"), "s3cret\n").unwrap();
        let conn = connection(
            "shipbob",
            &[
                ("token", SettingValue::Secret("TOKEN".into())),
                ("channel_id", SettingValue::Value(json!("7"))),
            ],
        );
        let files = Context::new(SecretSource::Files(dir.clone()));
        let resolved = settings(&files, &conn).unwrap();
        assert_eq!(resolved["token"], json!("s3cret"));
        let missing = connection(
            "shipbob",
            &[("token", SettingValue::Secret("ABSENT".into()))],
        );
        let err = settings(&files, &missing).unwrap_err().to_string();
        assert!(
            err.starts_with("connection `c`: setting `token` reads the secret file `"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
