//! `omniflowc`.
fn main() {}
