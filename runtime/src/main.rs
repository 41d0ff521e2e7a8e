//! `omniflow`.
fn main() {}
