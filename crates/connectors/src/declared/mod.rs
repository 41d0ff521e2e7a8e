//! Connectors declared in `.flow` files (`connector NAME { auth ...; source ... {
//! request { ... } } }`): the compiler checks a declaration into
//! [`omniflow_ir::declared::Declared`], carried on each connection of it, and these
//! modules run it: `api` (requests, credentials, one fresh token after a refusal),
//! `template` (rendering), `select` (paths on an answer's own bytes), `classify`
//! (answers to outcomes by rules and defaults), `read` (paging and watermarks) and
//! `write` (sinks).

pub mod api;
pub mod classify;
pub mod read;
pub mod select;
pub mod template;
pub mod write;

use crate::api::{ConnectorError, Map, Pager, SinkConnector};
use crate::tokens::TokenCache;
use omniflow_ir::declared::Declared;

/// 64-bit FNV-1a of a byte string (a content fingerprint, not a security hash).
pub fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn operation<'s>(
    spec: &'s Declared,
    operation: &str,
) -> Result<&'s omniflow_ir::declared::Operation, ConnectorError> {
    spec.operations.get(operation).ok_or_else(|| {
        ConnectorError::BadSetting(format!(
            "connector `{}` declares no request for `{operation}`",
            spec.name
        ))
    })
}

/// The pager of a declared source.
pub fn pager(
    tokens: &TokenCache,
    spec: &Declared,
    op: &str,
    settings: &Map,
) -> Result<Box<dyn Pager>, ConnectorError> {
    let api = api::Api::new(tokens, spec, settings)?;
    Ok(Box::new(read::DeclaredPager::new(
        api,
        operation(spec, op)?,
    )?))
}

/// The sink of a declared sink operation.
pub fn sink(
    tokens: &TokenCache,
    spec: &Declared,
    op: &str,
    settings: &Map,
) -> Result<Box<dyn SinkConnector>, ConnectorError> {
    let api = api::Api::new(tokens, spec, settings)?;
    Ok(Box::new(write::DeclaredSink::new(
        api,
        operation(spec, op)?,
    )?))
}
