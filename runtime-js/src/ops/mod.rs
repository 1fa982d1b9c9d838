//! The ops, one file per domain; each is registered in the extension in `lib.rs`.

pub mod console;
pub mod crypto;
pub mod fetch;
pub mod invoke;
pub mod state;
pub mod steps;
