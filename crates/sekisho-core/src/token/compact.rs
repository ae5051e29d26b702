//! The verification hot path: every bearer request runs it, so it is written for that.
//!
//! Measured under load (perf, `GET /api/auth/me/` with a bearer token), the JOSE crate's
//! `decode` was a fifth of the server's CPU: it keys a new HMAC per call, parses the payload
//! twice (once for its own claim checks, which sekisho turns off, once for the caller) and
//! builds a `serde_json::Map` with a heap string per key and value. Here the key is prepared
//! once ([`super::keys`]), the key is found by the header (for sekisho's own tokens by comparing
//! the header segment, without parsing it), the signature is checked before the payload is
//! parsed, and the payload is read in one pass into borrowed slices with only the claims sekisho
//! looks at kept. The tests check this
//! reader against the JOSE crate's verifier on the same tokens.

use super::ring::KeyRing;
use crate::clock::Timestamp;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// A claim's JSON value, reduced to what the checks need.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Scalar<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    UInt(u64),
    Float(f64),
    /// An array; its string members (the shape of a multi-valued `aud`).
    Strings(Vec<Cow<'a, str>>),
    Null,
    /// A boolean or an object.
    Other,
}

impl Scalar<'_> {
    /// A time claim as whole seconds (PyJWT truncates floats the same way); anything that is
    /// not a number is not a time, and a wrong-typed time claim must never skip its check.
    pub(super) fn seconds(&self) -> Option<i64> {
        match *self {
            Scalar::Int(i) => Some(i),
            Scalar::UInt(u) => Some(i64::try_from(u).unwrap_or(i64::MAX)),
            Scalar::Float(f) if f.is_finite() => Some(f.floor() as i64),
            _ => None,
        }
    }

    pub(super) fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// The claims sekisho reads, as found in the payload; every other claim is skipped without
/// being kept. A payload that repeats one of them (or `sub`) is refused.
#[derive(Debug, Default)]
pub(super) struct RawClaims<'a> {
    pub exp: Option<Scalar<'a>>,
    pub nbf: Option<Scalar<'a>>,
    pub iat: Option<Scalar<'a>>,
    pub aud: Option<Scalar<'a>>,
    pub iss: Option<Scalar<'a>>,
    pub jti: Option<Scalar<'a>>,
    pub token_type: Option<Scalar<'a>>,
    pub fid: Option<Scalar<'a>>,
    pub amr: Option<Scalar<'a>>,
    pub auth_time: Option<Scalar<'a>>,
    pub user_id: Option<Scalar<'a>>,
}

/// Why a compact token could not be read: every case is "Token is invalid" to the caller.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused {
    Malformed,
    /// Well formed, naming a `kid` the ring does not hold (yet: a key another instance just
    /// made may not have been loaded here).
    UnknownKey,
}

/// What [`open`] checks a token against.
pub(super) struct Expect<'p> {
    pub ring: &'p KeyRing,
    pub now: Timestamp,
    pub user_id_claim: &'p str,
}

/// Finds the key by the header, checks the signature with it, then reads the payload. `buf`
/// is scratch space for the decoded payload, which the returned claims borrow from.
pub(super) fn open<'b>(
    token: &str,
    expect: &Expect,
    buf: &'b mut Vec<u8>,
) -> Result<RawClaims<'b>, Refused> {
    use Refused::Malformed;
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Malformed);
    };
    // A header one of the ring's keys writes names that key and nothing else; any other
    // header is read (strictly: repeated or key-pointing parameters refused) for its `kid`,
    // and its `alg` must be that key's exactly. Only then is the signature checked, and
    // nothing else an attacker wrote is parsed until it is known to be signed by that key.
    let entry = match expect.ring.by_header(header) {
        Some(e) => e,
        None => {
            let mut hbuf = Vec::with_capacity(header.len());
            URL_SAFE_NO_PAD
                .decode_vec(header, &mut hbuf)
                .map_err(|_| Malformed)?;
            let h: RawHeader = serde_json::from_slice(&hbuf).map_err(|_| Malformed)?;
            if h.foreign_key {
                return Err(Malformed);
            }
            let entry = match &h.kid {
                None => expect.ring.without_kid().ok_or(Malformed)?,
                Some(Scalar::Str(kid)) => expect.ring.by_kid(kid).ok_or(Refused::UnknownKey)?,
                Some(_) => return Err(Malformed),
            };
            if h.alg.as_ref().and_then(Scalar::as_str) != Some(entry.key().algorithm().name()) {
                return Err(Malformed);
            }
            entry
        }
    };
    if !entry.ring_key.verifies_at(expect.now) {
        return Err(Malformed);
    }
    let mut tag = [0u8; 512];
    let n = URL_SAFE_NO_PAD
        .decode_slice(signature, &mut tag)
        .map_err(|_| Malformed)?;
    let signed = &token[..header.len() + 1 + payload.len()];
    if !entry.key().verify(signed.as_bytes(), &tag[..n]) {
        return Err(Malformed);
    }
    buf.clear();
    URL_SAFE_NO_PAD
        .decode_vec(payload, buf)
        .map_err(|_| Malformed)?;
    let mut de = serde_json::Deserializer::from_slice(buf);
    let claims = ClaimsSeed {
        user_id_claim: expect.user_id_claim,
    }
    .deserialize(&mut de)
    .map_err(|_| Malformed)?;
    de.end().map_err(|_| Malformed)?;
    Ok(claims)
}

/// The protected header: `alg`, `kid`, and whether any field names another key.
struct RawHeader<'a> {
    alg: Option<Scalar<'a>>,
    kid: Option<Scalar<'a>>,
    /// `jku`, `jwk`, `x5u`, `x5c` or `crit` present (and not null): fields that could steer a
    /// verifier to an attacker's key or demand extensions sekisho does not implement. The
    /// ring's keys are the only keys.
    foreign_key: bool,
}

impl<'de> serde::Deserialize<'de> for RawHeader<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawHeader<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JOSE header")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut h = RawHeader {
                    alg: None,
                    kid: None,
                    foreign_key: false,
                };
                // RFC 7515 §4: a repeated header parameter is refused.
                let mut seen: Vec<Cow<'de, str>> = Vec::new();
                while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                    if seen.contains(&key) {
                        return Err(de::Error::custom("repeated header parameter"));
                    }
                    let v = map.next_value::<Scalar<'de>>()?;
                    match &*key {
                        "alg" => h.alg = Some(v),
                        "kid" => h.kid = Some(v),
                        "jku" | "jwk" | "x5u" | "x5c" | "crit" => {
                            h.foreign_key |= v != Scalar::Null;
                        }
                        _ => {}
                    }
                    seen.push(key);
                }
                Ok(h)
            }
        }
        d.deserialize_map(V)
    }
}

struct ClaimsSeed<'p> {
    user_id_claim: &'p str,
}

impl<'de> DeserializeSeed<'de> for ClaimsSeed<'_> {
    type Value = RawClaims<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ClaimsSeed<'_> {
    type Value = RawClaims<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut c = RawClaims::default();
        let mut sub_seen = false;
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            let key = &*key;
            let value = |map: &mut A| map.next_value::<Scalar<'de>>();
            if key == self.user_id_claim {
                let v = value(&mut map)?;
                // The user id claim may be configured to a name that is also read below.
                if let Some(slot) = c.slot(key) {
                    set_once(slot, v.clone())?;
                }
                set_once(&mut c.user_id, v)?;
                continue;
            }
            match c.slot(key) {
                Some(slot) => set_once(slot, value(&mut map)?)?,
                None if key == "sub" && std::mem::replace(&mut sub_seen, true) => {
                    return Err(de::Error::custom("repeated claim"));
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(c)
    }
}

impl<'a> RawClaims<'a> {
    fn slot(&mut self, name: &str) -> Option<&mut Option<Scalar<'a>>> {
        Some(match name {
            "exp" => &mut self.exp,
            "nbf" => &mut self.nbf,
            "iat" => &mut self.iat,
            "aud" => &mut self.aud,
            "iss" => &mut self.iss,
            "jti" => &mut self.jti,
            "token_type" => &mut self.token_type,
            "fid" => &mut self.fid,
            "amr" => &mut self.amr,
            "auth_time" => &mut self.auth_time,
            _ => return None,
        })
    }
}

/// A payload that names a claim twice is refused: two parsers that keep different copies
/// (first wins here, last wins there) is how a checked claim gets swapped for an unchecked one.
fn set_once<'a, E: de::Error>(slot: &mut Option<Scalar<'a>>, v: Scalar<'a>) -> Result<(), E> {
    if slot.replace(v).is_some() {
        return Err(E::custom("repeated claim"));
    }
    Ok(())
}

/// A string borrowed from the payload when it has no escapes (serde's own `Cow<str>` always
/// copies).
struct Text<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> serde::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::UInt(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut strings = Vec::new();
        while let Some(v) = seq.next_element::<Scalar>()? {
            if let Scalar::Str(s) = v {
                strings.push(s);
            }
        }
        Ok(Scalar::Strings(strings))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}
