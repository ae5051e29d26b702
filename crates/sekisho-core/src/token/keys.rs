//! Signing keys. Every algorithm sekisho can sign with is listed once, in
//! [`SignatureAlgorithm`]; every key is a [`TokenKey`], so the token policy, the key loader and
//! (later) the JWKS endpoint never special-case one family of keys.
//!
//! A key states whether its signatures are **deterministic**. The grace window (DESIGN §3.2)
//! promises racing refreshes the *identical* successor token, and sekisho keeps that promise by
//! re-signing the successor's claims instead of storing the token. That only yields the same
//! bytes when signing is deterministic (HMAC, Ed25519); an ECDSA or RSA-PSS key needs another
//! mechanism, and [`crate::Auth`]'s builder refuses a grace window with a key that cannot keep
//! the promise.

use crate::config::ConfigError;
use hmac::{Hmac, KeyInit, Mac};

/// Minimum HMAC key length in bytes (RFC 7518 §3.2: at least the hash output size of HS256).
pub const MIN_HMAC_KEY_BYTES: usize = 32;

/// The `alg` values sekisho signs and verifies: the one list (config validation, key loading
/// and the token header all read it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    HS256,
    HS384,
    HS512,
}

impl SignatureAlgorithm {
    pub const ALL: [SignatureAlgorithm; 3] = [Self::HS256, Self::HS384, Self::HS512];

    /// Parses a `jwt.algorithm` value. An unknown name is an error, never a fallback.
    pub fn parse(name: &str) -> Result<Self, ConfigError> {
        Self::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| {
                let supported: Vec<&str> = Self::ALL.iter().map(|a| a.name()).collect();
                ConfigError(format!(
                    "jwt.algorithm: {name:?} is not supported (supported: {})",
                    supported.join(", ")
                ))
            })
    }

    /// The JOSE `alg` header value.
    pub fn name(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
        }
    }

    /// Symmetric: the same secret signs and verifies, so every verifier can also mint tokens.
    pub fn is_symmetric(self) -> bool {
        matches!(self, Self::HS256 | Self::HS384 | Self::HS512)
    }
}

/// A key that signs and verifies JWS signatures (the compact form's third segment, raw bytes).
pub trait TokenKey: Send + Sync + 'static {
    fn algorithm(&self) -> SignatureAlgorithm;
    /// The `kid` header value, when the key has one.
    fn kid(&self) -> Option<&str> {
        None
    }
    /// Whether signing the same input twice gives the same signature (see the module docs).
    fn deterministic(&self) -> bool;
    fn sign(&self, signing_input: &[u8]) -> Vec<u8>;
    /// Constant-time where the algorithm allows it.
    fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool;
}

/// An HMAC key with its inner and outer pads already absorbed: each use clones that state
/// instead of re-keying (a measurable share of the bearer hot path otherwise).
#[derive(Clone)]
pub struct HmacKey {
    algorithm: SignatureAlgorithm,
    mac: Mac3,
}

#[derive(Clone)]
enum Mac3 {
    Hs256(Hmac<sha2::Sha256>),
    Hs384(Hmac<sha2::Sha384>),
    Hs512(Hmac<sha2::Sha512>),
}

impl HmacKey {
    /// `secret` is used as raw bytes: a configured string key is its UTF-8 bytes, exactly as
    /// Django's `SECRET_KEY` is used by simplejwt. The only place the minimum length is checked.
    pub fn new(algorithm: SignatureAlgorithm, secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_HMAC_KEY_BYTES {
            return Err(KeyError::TooShort {
                algorithm,
                len: secret.len(),
            });
        }
        let bad = |_| KeyError::Unusable;
        let mac = match algorithm {
            SignatureAlgorithm::HS256 => Mac3::Hs256(Hmac::new_from_slice(secret).map_err(bad)?),
            SignatureAlgorithm::HS384 => Mac3::Hs384(Hmac::new_from_slice(secret).map_err(bad)?),
            SignatureAlgorithm::HS512 => Mac3::Hs512(Hmac::new_from_slice(secret).map_err(bad)?),
        };
        Ok(HmacKey { algorithm, mac })
    }
}

/// Why key material cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("an {} key must be at least {MIN_HMAC_KEY_BYTES} bytes (got {len})", algorithm.name())]
    TooShort {
        algorithm: SignatureAlgorithm,
        len: usize,
    },
    #[error("the key is not usable for this algorithm")]
    Unusable,
}

impl TokenKey for HmacKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn deterministic(&self) -> bool {
        true
    }

    fn sign(&self, signing_input: &[u8]) -> Vec<u8> {
        fn tag<M: Mac + Clone>(m: &M, input: &[u8]) -> Vec<u8> {
            let mut m = m.clone();
            m.update(input);
            m.finalize().into_bytes().to_vec()
        }
        match &self.mac {
            Mac3::Hs256(m) => tag(m, signing_input),
            Mac3::Hs384(m) => tag(m, signing_input),
            Mac3::Hs512(m) => tag(m, signing_input),
        }
    }

    fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        fn check<M: Mac + Clone>(m: &M, input: &[u8], sig: &[u8]) -> bool {
            let mut m = m.clone();
            m.update(input);
            m.verify_slice(sig).is_ok()
        }
        match &self.mac {
            Mac3::Hs256(m) => check(m, signing_input, signature),
            Mac3::Hs384(m) => check(m, signing_input, signature),
            Mac3::Hs512(m) => check(m, signing_input, signature),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_algorithms_are_refused_not_defaulted() {
        assert_eq!(
            SignatureAlgorithm::parse("HS384").unwrap(),
            SignatureAlgorithm::HS384
        );
        let e = SignatureAlgorithm::parse("RS256").unwrap_err();
        assert!(e.0.starts_with("jwt.algorithm: \"RS256\""), "{e}");
        assert!(SignatureAlgorithm::parse("hs256").is_err());
        assert!(SignatureAlgorithm::parse("none").is_err());
    }

    #[test]
    fn short_secrets_are_refused_in_one_place() {
        let e = HmacKey::new(SignatureAlgorithm::HS256, b"short")
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "an HS256 key must be at least 32 bytes (got 5)"
        );
        assert!(HmacKey::new(SignatureAlgorithm::HS512, &[7; 32]).is_ok());
    }

    #[test]
    fn hmac_signatures_are_deterministic_and_verify() {
        let k = HmacKey::new(SignatureAlgorithm::HS256, &[1; 32]).unwrap();
        assert!(k.deterministic());
        let a = k.sign(b"input");
        assert_eq!(a, k.sign(b"input"));
        assert!(k.verify(b"input", &a));
        assert!(!k.verify(b"inpu7", &a));
        assert!(!k.verify(b"input", &a[..31]));
        let other = HmacKey::new(SignatureAlgorithm::HS256, &[2; 32]).unwrap();
        assert!(!other.verify(b"input", &a));
    }
}
