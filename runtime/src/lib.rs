//! omniflow runtime.
