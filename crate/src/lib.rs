//! Sans-I/O core of a maubot plugin that manages Matrix Authentication
//! Service (MAS) user registration tokens from a chat room.
//!
//! The core parses chat commands, decides who may run them, plans the MAS
//! requests, reads MAS's responses and formats the replies. It performs no
//! I/O: it never reads the clock, never draws random numbers and never opens
//! a connection. The host passes the current time and every HTTP response in,
//! and the core hands back the next HTTP request to perform or the reply to
//! send. Secrets stay with the host too: a request only says which kind of
//! `Authorization` header the host must attach.
//!
//! [`Core`] is the Rust API; the `abi` module wraps it in a JSON-in/JSON-out
//! WebAssembly interface that `docs/boundary.md` describes.

mod access;
mod auth;
mod command;
mod config;
mod engine;
mod flows;
mod ident;
mod mas;
pub mod protocol;
mod reply;
mod runner;
mod time;

#[cfg(target_arch = "wasm32")]
mod abi;

pub use engine::{Core, CoreError, Limits};

/// Version of the JSON boundary described in `docs/boundary.md`.
pub const ABI_VERSION: u32 = 2;
