//! CSRF tokens bound to the session (DESIGN §3.3).
//!
//! Django compares the `X-CSRFToken` header with the `csrftoken` cookie. That stops a foreign
//! site (it can neither read the cookie nor set the header), but a token planted in a victim's
//! browser — or one captured before login — stays valid for any session. sekisho's token is
//! `nonce ‖ HMAC(key, binding ‖ nonce)`, where the binding is the session (or "anonymous" before
//! login), so a token minted for one session fails for every other, and login rotates it.
//! 64 hex characters, like Django's, so existing front ends copy it unchanged.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The binding used before login.
pub const ANONYMOUS: &str = "anonymous";

#[derive(Clone)]
pub struct CsrfKey([u8; 32]);

/// Why a CSRF check failed, in Django's order of checks (the HTTP layer words each case).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CsrfFailure {
    /// `Origin` is neither the server's own nor a trusted one; carries the origin as sent.
    BadOrigin(String),
    CookieNotSet,
    TokenMissing,
    TokenIncorrect,
}

type HmacSha256 = Hmac<Sha256>;

impl CsrfKey {
    /// Derives the CSRF key from the server's secret, so every instance sharing the signing key
    /// accepts every other instance's tokens.
    pub fn derive(secret: &[u8]) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"sekisho csrf key v1");
        CsrfKey(mac.finalize().into_bytes().into())
    }

    /// A separate 32-byte key for another purpose, derived from this one (one-way: the CSRF
    /// key cannot be recovered from it).
    pub(crate) fn derive_subkey(&self, label: &[u8]) -> zeroize::Zeroizing<[u8; 32]> {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(label);
        zeroize::Zeroizing::new(mac.finalize().into_bytes().into())
    }

    fn tag(&self, binding: &str, nonce: &[u8]) -> [u8; 16] {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(binding.as_bytes());
        mac.update(b"\0");
        mac.update(nonce);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    /// A fresh token bound to `binding` (the session's binding, or [`ANONYMOUS`]).
    pub fn mint(&self, binding: &str) -> String {
        let nonce = crate::random::bytes::<16>();
        let mut s = crate::random::hex(&nonce);
        s.push_str(&crate::random::hex(&self.tag(binding, &nonce)));
        s
    }

    /// Whether `token` was minted by this server for `binding`.
    pub fn is_valid(&self, token: &str, binding: &str) -> bool {
        let Some(raw) = unhex(token) else {
            return false;
        };
        if raw.len() != 32 {
            return false;
        }
        let (nonce, tag) = raw.split_at(16);
        bool::from(self.tag(binding, nonce).ct_eq(tag))
    }

    /// The cookie/header double-submit check plus the binding check, in Django's order
    /// (cookie, then header, then comparison).
    pub fn check(
        &self,
        cookie: Option<&str>,
        header: Option<&str>,
        binding: &str,
    ) -> Result<(), CsrfFailure> {
        let cookie = cookie
            .filter(|c| !c.is_empty())
            .ok_or(CsrfFailure::CookieNotSet)?;
        let header = header
            .filter(|h| !h.is_empty())
            .ok_or(CsrfFailure::TokenMissing)?;
        let same =
            header.len() == cookie.len() && bool::from(header.as_bytes().ct_eq(cookie.as_bytes()));
        if same && self.is_valid(header, binding) {
            Ok(())
        } else {
            Err(CsrfFailure::TokenIncorrect)
        }
    }
}

/// Checks an `Origin` header against the server's own origin and the trusted list. Comparison is
/// on the serialised origin (scheme://host[:port]), case-insensitively, as browsers send it.
pub fn check_origin(origin: &str, own: &str, trusted: &[String]) -> Result<(), CsrfFailure> {
    let o = origin.trim_end_matches('/');
    if o.eq_ignore_ascii_case(own)
        || trusted
            .iter()
            .any(|t| t.trim_end_matches('/').eq_ignore_ascii_case(o))
    {
        Ok(())
    } else {
        Err(CsrfFailure::BadOrigin(origin.to_string()))
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_their_session() {
        let k = CsrfKey::derive(b"server secret");
        let t = k.mint("session-a");
        assert_eq!(t.len(), 64);
        assert!(k.is_valid(&t, "session-a"));
        assert!(!k.is_valid(&t, "session-b"));
        assert!(!k.is_valid(&t, ANONYMOUS));
        assert!(!CsrfKey::derive(b"other secret").is_valid(&t, "session-a"));
        assert!(!k.is_valid("zz", "session-a"));
        assert!(!k.is_valid(&t[..63], "session-a"));
    }

    #[test]
    fn check_follows_djangos_order() {
        let k = CsrfKey::derive(b"s");
        let t = k.mint("b");
        assert_eq!(k.check(None, Some(&t), "b"), Err(CsrfFailure::CookieNotSet));
        assert_eq!(k.check(Some(&t), None, "b"), Err(CsrfFailure::TokenMissing));
        assert_eq!(
            k.check(Some(&t), Some(&k.mint("b")), "b"),
            Err(CsrfFailure::TokenIncorrect)
        );
        assert_eq!(
            k.check(Some(&t), Some(&t), "other"),
            Err(CsrfFailure::TokenIncorrect)
        );
        assert_eq!(k.check(Some(&t), Some(&t), "b"), Ok(()));
    }

    #[test]
    fn origins() {
        let trusted = vec!["https://app.example".to_string()];
        assert!(check_origin("http://127.0.0.1:8000", "http://127.0.0.1:8000", &trusted).is_ok());
        assert!(check_origin("https://APP.example", "http://127.0.0.1:8000", &trusted).is_ok());
        assert_eq!(
            check_origin("https://evil.example", "http://127.0.0.1:8000", &trusted),
            Err(CsrfFailure::BadOrigin("https://evil.example".into()))
        );
        assert!(check_origin("null", "http://h", &[]).is_err());
    }
}
