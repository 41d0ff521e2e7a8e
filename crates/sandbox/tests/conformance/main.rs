//! Every answer the sandbox gives, on every route it serves, checked against the vendor's
//! own description of that route and status (kept in `specs/`, with their sources): the
//! Amazon SP-API models, Square's and ShipBob's OpenAPI documents, and Shopify's
//! documented Order resource. Lists are read over three pages or more; errors are
//! provoked (no or bad credentials, invalid input, unknown ids, throttling) and must be
//! documented answers too.

mod amazon;
mod harness;
mod schema;
mod shipbob;
mod shopify;
mod square;
