//! The key ring: every key a [`super::TokenPolicy`] signs or verifies with, and when.
//!
//! A key signs the tokens whose `iat` falls in its signing window (`[signs_from,
//! signs_until)`; the newest generation wins where windows meet) and verifies until
//! `verifies_until`. Choosing the signer by the token's own `iat`, not by the clock, is what
//! keeps the grace window's promise across a rotation and across instances: re-signing a
//! successor's claims (same `iat`) picks the key that signed it the first time, on any
//! instance that holds the same ring, and every key's signatures are deterministic.
//!
//! Verification picks the key by the header's `kid` and requires the header's `alg` to be that
//! key's algorithm exactly (no algorithm switching, so a public key can never be used as an
//! HMAC secret). A token without `kid` is accepted only by an HMAC key that allows it: tokens
//! minted by Django (simplejwt writes no `kid`) and by earlier sekisho versions.

use super::keys::TokenKey;
use crate::clock::Timestamp;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use std::sync::Arc;

/// One key and its schedule.
#[derive(Clone)]
pub struct RingKey {
    pub key: Arc<dyn TokenKey>,
    /// Orders keys; the newest generation signs where signing windows meet.
    pub generation: i64,
    /// From when the key signs (`None`: not scheduled, it only verifies).
    pub signs_from: Option<Timestamp>,
    /// Until when it signs (exclusive; `None`: open-ended).
    pub signs_until: Option<Timestamp>,
    /// Until when tokens it signed are accepted (`None`: as long as it is in the ring).
    pub verifies_until: Option<Timestamp>,
}

impl RingKey {
    /// A key that always signs and verifies (a configured secret or PEM file).
    pub fn permanent(key: Arc<dyn TokenKey>) -> Self {
        RingKey {
            key,
            generation: 0,
            signs_from: Some(Timestamp(i64::MIN)),
            signs_until: None,
            verifies_until: None,
        }
    }

    pub fn signs_at(&self, t: Timestamp) -> bool {
        self.signs_from.is_some_and(|f| f <= t) && self.signs_until.is_none_or(|u| t < u)
    }

    pub fn verifies_at(&self, t: Timestamp) -> bool {
        self.verifies_until.is_none_or(|u| t <= u)
    }
}

pub(super) struct Entry {
    pub ring_key: RingKey,
    /// The encoded header this key writes: a token carrying exactly it needs no header parsing.
    pub header: String,
    /// HMAC keys also match the header PyJWT writes (no `kid`): Django's tokens.
    pub legacy_header: Option<String>,
}

impl Entry {
    pub fn key(&self) -> &dyn TokenKey {
        &*self.ring_key.key
    }
}

/// The keys of one policy. Rebuilt whole and swapped in when the stored keys change.
#[derive(Default)]
pub struct KeyRing {
    entries: Vec<Entry>,
}

/// The encoded protected header of a key: `{"typ":"JWT","alg":…,"kid":…}` (`kid` left out for
/// the legacy form), in the order PyJWT writes `typ` and `alg`.
fn encoded_header(key: &dyn TokenKey, with_kid: bool) -> String {
    let mut h = Map::new();
    h.insert("typ".into(), Value::from("JWT"));
    h.insert("alg".into(), Value::from(key.algorithm().name()));
    if with_kid {
        h.insert("kid".into(), Value::from(key.kid()));
    }
    URL_SAFE_NO_PAD.encode(Value::Object(h).to_string())
}

impl KeyRing {
    pub fn new(keys: Vec<RingKey>) -> Self {
        let entries = keys
            .into_iter()
            .map(|k| Entry {
                header: encoded_header(&*k.key, true),
                legacy_header: k
                    .key
                    .algorithm()
                    .is_symmetric()
                    .then(|| encoded_header(&*k.key, false)),
                ring_key: k,
            })
            .collect();
        KeyRing { entries }
    }

    /// A ring of one key that always signs.
    pub fn single(key: Arc<dyn TokenKey>) -> Self {
        Self::new(vec![RingKey::permanent(key)])
    }

    pub fn keys(&self) -> impl Iterator<Item = &RingKey> {
        self.entries.iter().map(|e| &e.ring_key)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The key that signs a token issued at `iat`.
    pub(super) fn signer(&self, iat: Timestamp) -> Option<&Entry> {
        self.entries
            .iter()
            .filter(|e| e.ring_key.signs_at(iat))
            .max_by_key(|e| e.ring_key.generation)
    }

    /// The key that signs now, if any.
    pub fn current(&self, now: Timestamp) -> Option<&RingKey> {
        self.signer(now).map(|e| &e.ring_key)
    }

    pub(super) fn by_header(&self, header: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.header == header || e.legacy_header.as_deref() == Some(header))
    }

    pub(super) fn by_kid(&self, kid: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key().kid() == kid)
    }

    /// The key that accepts a token naming no `kid`: only ever an HMAC key.
    pub(super) fn without_kid(&self) -> Option<&Entry> {
        self.entries.iter().find(|e| e.legacy_header.is_some())
    }

    /// The JWKS (RFC 7517 §5): the public keys that verify at `now`, including those published
    /// ahead of signing. Secret keys are never listed.
    pub fn jwks(&self, now: Timestamp) -> Value {
        let mut keys: Vec<&RingKey> = self
            .keys()
            .filter(|k| k.verifies_at(now) && k.key.public_jwk().is_some())
            .collect();
        keys.sort_by_key(|k| std::cmp::Reverse(k.generation));
        let keys: Vec<Value> = keys
            .into_iter()
            .filter_map(|k| k.key.public_jwk().map(Value::Object))
            .collect();
        serde_json::json!({ "keys": keys })
    }
}
