//! sekisho's domain: who users are, how they log in, how tokens are minted, verified and
//! rotated, how sessions live and end, and the storage traits every backend implements. Nothing
//! here speaks HTTP or SQL, so each rule is written (and tested) once, whichever transport or
//! store carries it.
//!
//! [`Auth`] is the facade: built once by [`Auth::builder`], private state, one method per
//! operation. Modules are concepts: [`login`] (first factor, throttling), [`token`] (policy,
//! keys, bearer authentication), [`family`] (refresh rotation), [`session`] (sessions, CSRF),
//! [`account`] (users, passwords, ending logins), [`authz`] (permissions), [`mfa`] (second
//! factors and the login gate), [`import`] (moving a Django deployment in).

pub mod account;
pub mod auth;
pub mod authz;
pub mod clock;
pub mod config;
pub mod error;
pub mod family;
pub mod import;
pub mod login;
pub mod mfa;
pub mod random;
pub mod session;
pub mod store;
pub mod token;

pub use account::{User, UserId};
pub use auth::{Auth, AuthBuilder};
pub use clock::{Clock, SystemClock, Timestamp};
pub use config::Config;
pub use error::AuthError;
