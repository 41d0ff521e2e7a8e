//! The omniflow compiler: `.flow` text in, graph IR plus diagnostics out.
//! Pure except for `source.rs`, which reads the files a compilation needs.
#![deny(clippy::unwrap_used)]

pub mod diagnostics;
pub mod source;
pub mod syntax;
