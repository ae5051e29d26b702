//! Recovery codes: ten single-use codes of 100 random bits each, shown once when a factor is
//! confirmed (or the set is regenerated) and stored only as a keyed hash. With 100 bits of
//! entropy a fast keyed hash is enough: a stolen table is worthless without the key, and with
//! it a guess still costs 2^100. A code is found by its hash (an index lookup on a keyed
//! digest leaks nothing about other codes) and deleted as it is used, so it works once.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How many codes a set holds.
pub const COUNT: usize = 10;
/// Base32 characters per code (5 bits each).
const CHARS: usize = 20;
const GROUP: usize = 5;

/// The key recovery codes are hashed with (derived from the MFA secret).
#[derive(Clone)]
pub struct RecoveryKey([u8; 32]);

impl RecoveryKey {
    pub fn derive(secret: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"sekisho recovery codes v1");
        RecoveryKey(mac.finalize().into_bytes().into())
    }

    /// The stored form of a code (already [`normalize`]d): HMAC-SHA256, hex.
    pub fn hash(&self, normalized: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(normalized.as_bytes());
        crate::random::hex(&mac.finalize().into_bytes())
    }
}

/// A fresh set of codes as shown to the user: `xxxxx-xxxxx-xxxxx-xxxxx`, lowercase.
pub fn generate() -> Vec<String> {
    (0..COUNT)
        .map(|_| {
            let raw = super::totp::base32(&crate::random::bytes::<13>()).to_ascii_lowercase();
            raw.as_bytes()[..CHARS]
                .chunks(GROUP)
                .map(|c| std::str::from_utf8(c).expect("ASCII"))
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// A typed code in its one canonical form (dashes and spaces dropped, upper case), or `None`
/// when it cannot be a recovery code at all.
pub fn normalize(typed: &str) -> Option<String> {
    if typed.len() > 64 {
        return None;
    }
    let s: String = typed
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (s.len() == CHARS
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)))
    .then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_grouped_and_normalize_to_their_hash_input() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        let mut seen = std::collections::HashSet::new();
        for c in &codes {
            assert_eq!(c.len(), 23, "{c}");
            assert_eq!(c.matches('-').count(), 3);
            let n = normalize(c).expect("a code normalizes");
            assert_eq!(
                normalize(&c.to_uppercase().replace('-', " ")),
                Some(n.clone())
            );
            assert!(seen.insert(n));
        }
    }

    #[test]
    fn garbage_is_not_a_code() {
        for bad in [
            "",
            "123456",
            "abcde-abcde-abcde-abcd1",
            "abcde-abcde-abcde-abcd\u{0}",
            &"a".repeat(100),
        ] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hashes_are_keyed() {
        let a = RecoveryKey::derive(b"one secret");
        let b = RecoveryKey::derive(b"another secret");
        assert_eq!(a.hash("X"), a.hash("X"));
        assert_ne!(a.hash("X"), b.hash("X"));
        assert_eq!(a.hash("X").len(), 64);
    }
}
