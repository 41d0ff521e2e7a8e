//! The local HTTP/1.1 server shared by the runtime's ops endpoint, its webhook sources and
//! the sandbox: bounded bodies, deadlines and a connection cap.
#![deny(clippy::unwrap_used)]

pub mod connections;
pub mod form;
pub mod server;
