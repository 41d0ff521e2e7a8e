//! Access tokens cached per token endpoint and credentials, shared by the sources and
//! sinks of one runtime.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

/// One cached access token and when it expires (`None`: none fetched yet).
pub type TokenSlot = Rc<RefCell<Option<(String, Instant)>>>;

/// When a slot's token was last dropped as refused.
pub type DropTime = Rc<Cell<Option<Instant>>>;

/// Access tokens by (token endpoint, credentials): the sources and sinks of a connection,
/// and a ledger's publication to it, share one.
#[derive(Debug, Clone, Default)]
pub struct TokenCache {
    slots: Rc<RefCell<HashMap<String, TokenSlot>>>,
    /// Held while a slot's token is fetched, so the sources and sinks sharing it log in
    /// once.
    locks: Rc<RefCell<HashMap<String, Rc<tokio::sync::Mutex<()>>>>>,
    /// When each slot's token was last dropped as refused.
    drops: Rc<RefCell<HashMap<String, DropTime>>>,
}

impl TokenCache {
    /// The slot of one token endpoint and set of credentials.
    pub fn slot(&self, key: String) -> TokenSlot {
        self.slots.borrow_mut().entry(key).or_default().clone()
    }

    /// The lock of the slot `key`, held while its token is fetched.
    pub fn lock(&self, key: String) -> Rc<tokio::sync::Mutex<()>> {
        self.locks.borrow_mut().entry(key).or_default().clone()
    }

    /// When the slot `key`'s token was last dropped as refused, shared by every caller
    /// of the slot.
    pub fn dropped(&self, key: String) -> DropTime {
        self.drops.borrow_mut().entry(key).or_default().clone()
    }
}
