//! The `omniflow` command: loads flows through the compiler and drives the engine, the
//! sandbox and the state tools. The demo lives here too.
#![deny(clippy::unwrap_used)]

pub mod load;
