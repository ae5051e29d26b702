//! sekisho's domain: who users are, how passwords are checked, how tokens are minted, verified
//! and rotated, and the storage traits every backend implements. Nothing here speaks HTTP or SQL,
//! so each rule is written (and tested) once, whichever transport or store carries it.

pub mod clock;
pub mod config;
pub mod csrf;
pub mod error;
pub mod family;
pub mod password;
pub mod random;
pub mod service;
pub mod session;
pub mod store;
pub mod throttle;
pub mod token;
pub mod user;

pub use clock::{Clock, SystemClock, Timestamp};
pub use config::Config;
pub use error::AuthError;
pub use service::AuthService;
