//! Not yet simulated: every request answers 501.
use super::Shared;
use crate::ops::server::{Req, Resp};
pub struct State;
impl State {
    pub fn new(_r: &mut super::Rng) -> State {
        State
    }
}
pub fn handle(_sb: &Shared, _req: &Req) -> Resp {
    Resp::text(501, "")
}
pub const VERSIONS: [&str; 1] = ["2026-07"];
pub fn error_status(s: u16) -> Resp {
    Resp::text(s, "")
}
pub fn control_ship(_sb: &Shared, _id: &str, _req: &Req) -> Resp {
    Resp::text(501, "")
}
