//! A session as stored. The browser holds a random id with 256 bits; the store
//! holds only its SHA-256, so a leaked database or backup cannot be replayed as cookies.
//! Sessions expire when idle and at an absolute deadline; the idle deadline slides, but the
//! store is written at most once per renewal interval rather than on every request.

use crate::account::UserId;
use crate::clock::Timestamp;
use sha2::{Digest, Sha256};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the cookie value, hex. The primary key; the cookie value itself is never stored.
    pub id_hash: String,
    /// A separate random id that names the session in the devices list and its DELETE path
    /// (never the cookie value or its hash).
    pub public_id: String,
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub last_seen: Timestamp,
    /// `last_seen + idle_timeout`, moved forward on renewal.
    pub idle_expires_at: Timestamp,
    /// `created_at + absolute_timeout`; never moves.
    pub absolute_expires_at: Timestamp,
    pub user_agent: String,
    pub ip: String,
    /// How the login was authenticated (a second factor or not, and when).
    pub login: crate::mfa::LoginMethod,
}

impl SessionRecord {
    pub fn is_live(&self, now: Timestamp) -> bool {
        now < self.idle_expires_at && now < self.absolute_expires_at
    }
}

/// A new cookie value: 256 random bits, URL-safe.
pub fn new_session_id() -> String {
    crate::random::hex(&crate::random::bytes::<32>())
}

pub fn hash_session_id(id: &str) -> String {
    crate::random::hex(&Sha256::digest(id.as_bytes()))
}

/// Cookie values that cannot be a session id are refused before any hashing or lookup.
pub fn plausible_session_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Device information kept with a session for the sessions list.
#[derive(Clone, Debug, Default)]
pub struct Device {
    pub user_agent: String,
    pub ip: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_256_bit_and_only_hashes_are_kept() {
        let id = new_session_id();
        assert!(plausible_session_id(&id));
        assert_ne!(hash_session_id(&id), id);
        assert_eq!(hash_session_id(&id), hash_session_id(&id));
        assert!(!plausible_session_id("planted"));
    }

    #[test]
    fn liveness_has_two_deadlines() {
        let r = SessionRecord {
            id_hash: String::new(),
            public_id: String::new(),
            user_id: 1,
            created_at: Timestamp(0),
            last_seen: Timestamp(0),
            idle_expires_at: Timestamp(100),
            absolute_expires_at: Timestamp(50),
            user_agent: String::new(),
            ip: String::new(),
            login: crate::mfa::LoginMethod::password(Timestamp(0)),
        };
        assert!(r.is_live(Timestamp(49)));
        assert!(!r.is_live(Timestamp(50)));
    }
}
