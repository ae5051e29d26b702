//! Django's signed session data, read exactly as Django 4.2 and 5.x read it: the
//! `django_session.session_data` column is `django.core.signing.dumps(..., compress=True)`
//! output (a `TimestampSigner` with the salt `django.contrib.sessions.SessionStore`, HMAC-SHA256
//! keyed through `salted_hmac`, JSON, zlib-compressed when that is shorter), and the login it
//! holds is only valid while its `_auth_user_hash` (`get_session_auth_hash`) matches the user's
//! stored password hash. Every comparison is constant-time; anything malformed is simply not a
//! session (never a panic, never an error the caller has to map).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::io::Read;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// `SessionBase.key_salt` of `django.contrib.sessions.backends.db.SessionStore`.
const SESSION_SALT: &str = "django.contrib.sessions.SessionStore";
/// `AbstractBaseUser.get_session_auth_hash`'s `key_salt`.
const AUTH_HASH_SALT: &str = "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash";
/// Django's session data is small; anything bigger is refused before any work.
const MAX_SIGNED_LEN: usize = 64 * 1024;
/// A cap on the decompressed JSON, so a crafted zlib stream cannot expand without bound.
const MAX_JSON_LEN: u64 = 256 * 1024;

/// Django's `SECRET_KEY` and `SECRET_KEY_FALLBACKS` (tried in that order, as `Signer` does).
#[derive(Clone)]
pub struct DjangoSecrets {
    keys: Vec<Zeroizing<String>>,
}

impl std::fmt::Debug for DjangoSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DjangoSecrets({} keys, ********)", self.keys.len())
    }
}

impl DjangoSecrets {
    pub fn new(secret_key: &str, fallbacks: &[String]) -> Self {
        let mut keys = vec![Zeroizing::new(secret_key.to_string())];
        keys.extend(fallbacks.iter().map(|k| Zeroizing::new(k.clone())));
        DjangoSecrets { keys }
    }

    fn all(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.as_str())
    }

    fn current(&self) -> &str {
        &self.keys[0]
    }
}

/// `django.utils.crypto.salted_hmac(key_salt, value, secret, algorithm="sha256")`: the HMAC
/// key is `sha256(key_salt + secret)`, so every purpose gets its own key from one secret.
fn salted_hmac(key_salt: &str, value: &[u8], secret: &str) -> [u8; 32] {
    let mut key = Sha256::new();
    key.update(key_salt.as_bytes());
    key.update(secret.as_bytes());
    let key: Zeroizing<[u8; 32]> = Zeroizing::new(key.finalize().into());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key[..]).expect("HMAC takes any key length");
    mac.update(value);
    mac.finalize().into_bytes().into()
}

/// `Signer.signature`: `base64_hmac(salt + "signer", value, key)`, unpadded URL-safe base64.
fn signature(value: &str, secret: &str) -> String {
    let salt = format!("{SESSION_SALT}signer");
    URL_SAFE_NO_PAD.encode(salted_hmac(&salt, value.as_bytes(), secret))
}

/// `AbstractBaseUser.get_session_auth_hash()` for a stored password hash, as hex.
pub fn session_auth_hash(password_hash: &str, secret: &str) -> String {
    crate::random::hex(&salted_hmac(
        AUTH_HASH_SALT,
        password_hash.as_bytes(),
        secret,
    ))
}

/// Whether the session's `_auth_user_hash` is the one Django computes for `password_hash` with
/// any of the secrets (Django 4.1.8+ also accepts the fallbacks' hashes).
pub fn auth_hash_matches(presented: &str, password_hash: &str, secrets: &DjangoSecrets) -> bool {
    let mut ok = false;
    for secret in secrets.all() {
        let expected = session_auth_hash(password_hash, secret);
        ok |= presented.len() == expected.len()
            && bool::from(presented.as_bytes().ct_eq(expected.as_bytes()));
    }
    ok
}

/// The login a Django session holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DjangoLogin {
    /// `_auth_user_id` (Django stores the primary key as a string).
    pub user_id: i64,
    /// `_auth_user_hash`.
    pub auth_hash: String,
}

/// `signing.loads(session_data, salt=SessionStore.key_salt)`: the signature checked against
/// every secret, then the payload decoded. `None` for anything that is not intact data signed
/// with one of the secrets. No `max_age`: as in Django, the row's `expire_date` is the expiry.
pub fn unsign_session(signed: &str, secrets: &DjangoSecrets) -> Option<serde_json::Value> {
    if signed.len() > MAX_SIGNED_LEN || !signed.is_ascii() {
        return None;
    }
    let (value, sig) = signed.rsplit_once(':')?;
    let mut ok = false;
    for secret in secrets.all() {
        let expected = signature(value, secret);
        ok |= sig.len() == expected.len() && bool::from(sig.as_bytes().ct_eq(expected.as_bytes()));
    }
    if !ok {
        return None;
    }
    // TimestampSigner: `payload:timestamp`, the timestamp unused without max_age.
    let (payload, _timestamp) = value.rsplit_once(':')?;
    let (compressed, b64) = match payload.strip_prefix('.') {
        Some(rest) => (true, rest),
        None => (false, payload),
    };
    // Django's b64_decode re-pads, so both padded and unpadded input decode.
    let raw = URL_SAFE_NO_PAD.decode(b64.trim_end_matches('=')).ok()?;
    let json = if compressed {
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(&raw[..])
            .take(MAX_JSON_LEN + 1)
            .read_to_end(&mut out)
            .ok()?;
        if out.len() as u64 > MAX_JSON_LEN {
            return None;
        }
        out
    } else {
        raw
    };
    // JSONSerializer decodes as latin-1 (its output is ASCII: json.dumps escapes the rest).
    let text: String = json.iter().map(|&b| char::from(b)).collect();
    serde_json::from_str(&text).ok()
}

/// The login in decoded session data, if it holds one.
pub fn login_of(data: &serde_json::Value) -> Option<DjangoLogin> {
    let id = match &data["_auth_user_id"] {
        serde_json::Value::String(s) => s.parse().ok()?,
        serde_json::Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    Some(DjangoLogin {
        user_id: id,
        auth_hash: data["_auth_user_hash"].as_str()?.to_string(),
    })
}

/// Whether a cookie value has the shape of a Django session key (`get_random_string(32,
/// VALID_KEY_CHARS)`: lowercase letters and digits; Django accepts 8 to 40 characters). A
/// sekisho session id (64 hex digits) never does, so one cookie name serves both.
pub fn plausible_django_key(key: &str) -> bool {
    (8..=40).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The hash an exchanged Django key is remembered by: the key itself is never stored.
pub fn hash_django_key(key: &str) -> String {
    crate::random::hex(&Sha256::digest(format!("django-session:{key}").as_bytes()))
}

/// `signing.dumps(data, salt=SessionStore.key_salt, compress=True)` with the current secret and
/// the given Unix time: what Django writes to `session_data`. For tests and fixtures.
pub fn sign_session(data: &serde_json::Value, secrets: &DjangoSecrets, unix_time: u64) -> String {
    use std::io::Write;
    let json = serde_json::to_string(data).unwrap_or_default();
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = z.write_all(json.as_bytes());
    let compressed = z.finish().unwrap_or_default();
    let payload = if compressed.len() < json.len().saturating_sub(1) {
        format!(".{}", URL_SAFE_NO_PAD.encode(compressed))
    } else {
        URL_SAFE_NO_PAD.encode(json.as_bytes())
    };
    let value = format!("{payload}:{}", b62(unix_time));
    let sig = signature(&value, secrets.current());
    format!("{value}:{sig}")
}

/// Django's `b62_encode` (digits, then upper case, then lower case).
fn b62(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 62) as usize]);
        n /= 62;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Produced by Django 5.2 (`django.core.signing`, `SessionStore().encode(...)`,
    /// `salted_hmac`) with the secret below; the e2e script checks fresh ones against Django.
    const FIXTURE: &str = include_str!("../../tests/fixtures/django_sessions.json");

    #[test]
    fn djangos_own_session_data_verifies() {
        let f: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
        let secrets = DjangoSecrets::new(f["secret_key"].as_str().unwrap(), &[]);
        let cases = f["sessions"].as_array().unwrap();
        assert!(cases.len() >= 2, "compressed and uncompressed cases");
        for case in cases {
            let signed = case["session_data"].as_str().unwrap();
            let data = unsign_session(signed, &secrets).unwrap_or_else(|| panic!("{case}"));
            assert_eq!(data, case["decoded"], "{case}");
            if let Some(login) = login_of(&data) {
                let hash = case["password"].as_str().unwrap();
                assert_eq!(login.auth_hash, session_auth_hash(hash, secrets.current()));
                assert!(auth_hash_matches(&login.auth_hash, hash, &secrets));
                assert!(!auth_hash_matches(&login.auth_hash, "other", &secrets));
            }
            // Another secret, or one flipped character anywhere, is not a session.
            assert!(unsign_session(signed, &DjangoSecrets::new("other", &[])).is_none());
            for i in [0, signed.len() / 2, signed.len() - 1] {
                let mut b = signed.as_bytes().to_vec();
                b[i] = if b[i] == b'A' { b'B' } else { b'A' };
                let tampered = String::from_utf8(b).unwrap();
                assert!(unsign_session(&tampered, &secrets).is_none(), "{i}");
            }
        }
    }

    #[test]
    fn signing_round_trips_and_fallbacks_verify() {
        let data = json!({"_auth_user_id": "7", "_auth_user_hash": "ab", "x": "y".repeat(200)});
        let old = DjangoSecrets::new("old-secret", &[]);
        let signed = sign_session(&data, &old, 1_700_000_000);
        assert!(signed.starts_with('.'), "long data is compressed: {signed}");
        assert_eq!(unsign_session(&signed, &old), Some(data.clone()));
        let rotated = DjangoSecrets::new("new-secret", &["old-secret".to_string()]);
        assert_eq!(unsign_session(&signed, &rotated), Some(data.clone()));
        assert_eq!(
            unsign_session(&signed, &DjangoSecrets::new("new-secret", &[])),
            None
        );
        let small = json!({"a": 1});
        let plain = sign_session(&small, &old, 5);
        assert!(!plain.starts_with('.'));
        assert_eq!(unsign_session(&plain, &old), Some(small));
        assert_eq!(
            login_of(&data),
            Some(DjangoLogin {
                user_id: 7,
                auth_hash: "ab".into()
            })
        );
        assert_eq!(login_of(&json!({"_auth_user_id": "x"})), None);
    }

    #[test]
    fn garbage_is_not_a_session() {
        let s = DjangoSecrets::new("k", &[]);
        for bad in [
            "",
            ":",
            "::",
            "a:b:c",
            "\0:\0",
            "é:é",
            "a".repeat(MAX_SIGNED_LEN + 1).as_str(),
        ] {
            assert!(unsign_session(bad, &s).is_none(), "{bad:?}");
        }
        // A correctly signed payload that is not base64, not zlib or not JSON.
        for payload in ["!!!", ".AAAA", "bm90IGpzb24"] {
            let value = format!("{payload}:1");
            let signed = format!("{value}:{}", signature(&value, "k"));
            assert!(unsign_session(&signed, &s).is_none(), "{payload}");
        }
        assert!(plausible_django_key("abcdefghijklmnopqrstuvwxyz012345"));
        assert!(!plausible_django_key(&"a".repeat(64)));
        assert!(!plausible_django_key("ABCDEFGHIJKLMNOP"));
        assert!(!plausible_django_key("short"));
    }

    #[test]
    fn a_zlib_bomb_is_capped() {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![b' '; 4 * 1024 * 1024]).unwrap();
        let value = format!(".{}:1", URL_SAFE_NO_PAD.encode(z.finish().unwrap()));
        let signed = format!("{value}:{}", signature(&value, "k"));
        assert!(signed.len() < MAX_SIGNED_LEN);
        assert!(unsign_session(&signed, &DjangoSecrets::new("k", &[])).is_none());
    }
}
