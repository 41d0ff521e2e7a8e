//! Not yet simulated: every request answers 501.
use super::Shared;
use crate::ops::server::{Req, Resp};
#[derive(Default)]
pub struct State;
impl State {
    pub fn new() -> State {
        State
    }
}
pub fn handle(_sb: &Shared, _req: &Req) -> Resp {
    Resp::text(501, "")
}
pub fn error_status(s: u16) -> Resp {
    Resp::text(s, "")
}
pub fn control_sales_orders(_sb: &Shared) -> Resp {
    Resp::text(501, "")
}
pub fn control_csrf(_sb: &Shared, _req: &Req) -> Resp {
    Resp::text(501, "")
}
