//! Test support for sekisho; a dev-only crate (`publish = false`), never a dependency of the
//! shipped libraries or the binary.
//!
//! - [`conformance`]: one behaviour suite every store backend runs.
//! - [`services`]: throwaway PostgreSQL databases and Redis key prefixes on the machine's real
//!   services (a missing service fails, never skips).
//! - [`harness`]: the whole app (`sekisho_axum::app`) driven in-process with a manual clock, so
//!   lifetimes, idle timeouts and lockouts are tested by moving time, not by sleeping.

pub mod conformance;
pub mod harness;
pub mod services;

pub use harness::{Browser, Harness, Reply};
