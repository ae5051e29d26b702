//! A Rust client for [sekisho](https://example.invalid/sekisho)'s JWT endpoints, for CLIs,
//! services and mobile back ends, with the browser client's guarantees: login and logout,
//! **one** refresh however many tasks need it at once, every waiter released with the same
//! result (never a hang), the rotated refresh token always stored, proactive refresh before
//! `exp`, pluggable token storage, and requests that carry `Authorization: Bearer`
//! transparently (helpers on [`Client`], or [`AuthMiddleware`] for `reqwest-middleware` with
//! the `reqwest-middleware` feature).
//!
//! ```no_run
//! use sekisho_client::{Client, FileStore};
//!
//! # async fn run() -> Result<(), sekisho_client::Error> {
//! let client = Client::builder("http://127.0.0.1:8000")
//!     .storage(FileStore::new("/home/alice/.config/myapp/tokens.json"))
//!     .build()?;
//! if !client.is_logged_in().await? {
//!     client.login("alice", "a long password").await?;
//! }
//! let me = client.me().await?;                      // GET /api/auth/me/ with the token
//! let orders: serde_json::Value = client.get_json("/api/orders/").await?;
//! # Ok(()) }
//! ```
//!
//! The client reads a token's `exp` and `iat` without verifying its signature (it has no key,
//! and needs only the times); the server verifies every token it is sent.

#![forbid(unsafe_code)]

mod client;
mod clock;
mod error;
mod flight;
mod jwt;
#[cfg(feature = "reqwest-middleware")]
mod middleware;
mod store;

pub use client::{
    Client, ClientBuilder, DEFAULT_TIMEOUT, MAX_DEFAULT_MARGIN, Paths, RequestBuilder, SecondFactor,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::Error;
#[cfg(feature = "reqwest-middleware")]
pub use middleware::AuthMiddleware;
pub use store::{FileStore, MemoryStore, TokenStore, Tokens};

/// The HTTP client this crate is built on (its `Method`, `Response`, `StatusCode`, …).
pub use reqwest;
/// The request and response bodies shared with the server.
pub use sekisho_proto as proto;

pub type Result<T, E = Error> = std::result::Result<T, E>;
