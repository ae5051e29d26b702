//! JWTs compatible with djangorestframework-simplejwt: the same claims (`token_type`, `exp`,
//! `iat`, `jti` as 32 hex, the user id as a string) and the same checks in the same order, so an
//! SPA written for the Django stack cannot tell the difference. The wording of each refusal is
//! simplejwt's, and lives with the rest of the HTTP contract in sekisho-axum's `error` module.
//!
//! [`TokenPolicy`] is the single verification policy built from config at start-up. Signing and
//! verifying go through a [`keys::TokenKey`]; [`compact`] is the single-pass reader, and every
//! claim check is done here, on purpose, against the injected clock and with sekisho's defaults
//! (leeway 0, `nbf`/`iat` in the future refused, header fields that point at other keys refused).

use crate::clock::Timestamp;
use crate::config::JwtConfig;
use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use std::sync::Arc;

mod bearer;
mod compact;
pub mod keys;
pub mod managed;
pub mod ring;

pub use bearer::BearerIdentity;
pub use keys::{AsymmetricKey, HmacKey, KeyError, SignatureAlgorithm, TokenKey};
pub use ring::{KeyRing, RingKey};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    Access,
    Refresh,
}

impl TokenType {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Access => "access",
            TokenType::Refresh => "refresh",
        }
    }
}

/// Why a token was refused, in simplejwt's order of checks (the HTTP layer words each case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Bad signature, bad shape, wrong issuer/audience, `nbf`/`iat` in the future.
    #[error("token invalid")]
    Invalid,
    #[error("token expired")]
    Expired,
    #[error("token of the wrong type")]
    WrongType,
    #[error("token without a type")]
    NoType,
    #[error("token without an id")]
    NoId,
    #[error("token without an expiry")]
    NoExp,
    /// Revoked: logged out, rotated away, or its family ended.
    #[error("token revoked")]
    Blacklisted,
}

/// The claims sekisho reads and writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub token_type: TokenType,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    /// The user id as a string (simplejwt ≥ 5.4 writes it as a string; older tokens carry a
    /// number, which is accepted). `None` when the token carries no user id claim.
    pub user_id: Option<String>,
    /// The refresh family (login) this token belongs to; absent in tokens minted elsewhere.
    pub family: Option<String>,
    /// How the login was authenticated (`amr` and `auth_time`); absent in tokens minted
    /// elsewhere. Extra claims, which simplejwt and PyJWT ignore.
    pub login: Option<crate::mfa::LoginMethod>,
}

/// Tokens longer than this are refused before any parsing (a cheap guard against oversized
/// headers and payloads).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

pub struct TokenPolicy {
    /// Swapped whole when the stored keys change (rotation, another instance's change); a
    /// verification reads one consistent ring.
    ring: ArcSwap<KeyRing>,
    leeway: i64,
    issuer: Option<String>,
    audience: Option<String>,
    user_id_claim: String,
}

/// No key signs at the token's issue time (a key ring not loaded yet, or every key retired).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no signing key")]
pub struct NoSigningKey;

/// A refusal from [`TokenPolicy::verify_checked`]: the error, and whether the token named a
/// key this ring does not hold (worth re-reading the stored keys before the refusal stands).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub error: TokenError,
    pub unknown_key: bool,
}

impl TokenPolicy {
    /// A policy whose only key is `key`, signing and verifying for ever (a configured secret or
    /// PEM file).
    pub fn new(jwt: &JwtConfig, key: Arc<dyn TokenKey>) -> Self {
        Self::with_ring(jwt, KeyRing::single(key))
    }

    pub fn with_ring(jwt: &JwtConfig, ring: KeyRing) -> Self {
        TokenPolicy {
            ring: ArcSwap::from_pointee(ring),
            leeway: jwt.leeway.0.as_secs() as i64,
            issuer: jwt.issuer.clone(),
            audience: jwt.audience.clone(),
            user_id_claim: jwt.user_id_claim.clone(),
        }
    }

    /// The keys in use now.
    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.load_full()
    }

    pub fn replace_ring(&self, ring: KeyRing) {
        self.ring.store(Arc::new(ring));
    }

    /// The algorithm of the key that signs at `now`.
    pub fn algorithm(&self, now: Timestamp) -> Option<SignatureAlgorithm> {
        self.ring.load().current(now).map(|k| k.key.algorithm())
    }

    /// Whether signing the same claims twice gives the same token with every key (see
    /// [`keys`]).
    pub fn deterministic(&self) -> bool {
        self.ring.load().keys().all(|k| k.key.deterministic())
    }

    /// Signs claims with the key whose signing window holds `iat`. Serialisation is
    /// deterministic (fixed claim order) and so is every key, so the same claims give the same
    /// token — what lets a grace-window refresh hand out the identical successor without
    /// storing it, even after the signing key changed meanwhile.
    pub fn sign(&self, claims: &Claims) -> Result<String, NoSigningKey> {
        let ring = self.ring.load();
        let entry = ring
            .signer(Timestamp::from_secs(claims.iat))
            .ok_or(NoSigningKey)?;
        let mut m = Map::new();
        m.insert("token_type".into(), Value::from(claims.token_type.as_str()));
        m.insert("exp".into(), Value::from(claims.exp));
        m.insert("iat".into(), Value::from(claims.iat));
        m.insert("jti".into(), Value::from(claims.jti.as_str()));
        if let Some(uid) = &claims.user_id {
            m.insert(self.user_id_claim.clone(), Value::from(uid.as_str()));
        }
        if let Some(fid) = &claims.family {
            m.insert("fid".into(), Value::from(fid.as_str()));
        }
        if let Some(login) = &claims.login {
            m.insert("amr".into(), Value::from(login.amr().to_vec()));
            m.insert("auth_time".into(), Value::from(login.auth_time));
        }
        if let Some(iss) = &self.issuer {
            m.insert("iss".into(), Value::from(iss.as_str()));
        }
        if let Some(aud) = &self.audience {
            m.insert("aud".into(), Value::from(aud.as_str()));
        }
        let mut token = entry.header.clone();
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(Value::Object(m).to_string(), &mut token);
        let signature = entry.key().sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }

    /// Verifies a token (see [`TokenPolicy::verify_checked`]).
    pub fn verify(
        &self,
        token: &str,
        expected: Option<TokenType>,
        now: Timestamp,
    ) -> Result<Claims, TokenError> {
        self.verify_checked(token, expected, now)
            .map_err(|r| r.error)
    }

    /// Verifies a token, checking in simplejwt's order: signature, `exp`/`nbf`/`iat` (PyJWT),
    /// `aud`/`iss`, then presence of `exp` and `jti`, then `token_type` against `expected`.
    pub fn verify_checked(
        &self,
        token: &str,
        expected: Option<TokenType>,
        now: Timestamp,
    ) -> Result<Claims, Refusal> {
        self.verify_claims(token, expected, now)
            .map_err(|e| match e {
                Err(unknown) => Refusal {
                    error: TokenError::Invalid,
                    unknown_key: unknown,
                },
                Ok(error) => Refusal {
                    error,
                    unknown_key: false,
                },
            })
    }

    /// The checks; `Err(Err(unknown_key))` when the token could not be opened.
    fn verify_claims(
        &self,
        token: &str,
        expected: Option<TokenType>,
        now: Timestamp,
    ) -> Result<Claims, Result<TokenError, bool>> {
        use TokenError::*;
        use compact::Scalar;
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(Ok(Invalid));
        }
        let mut buf = Vec::with_capacity(token.len());
        let ring = self.ring.load();
        let expect = compact::Expect {
            ring: &ring,
            now,
            user_id_claim: &self.user_id_claim,
        };
        let c = compact::open(token, &expect, &mut buf)
            .map_err(|r| Err(r == compact::Refused::UnknownKey))?;
        let check = || -> Result<Claims, TokenError> {
            let now_s = now.secs();
            let exp = match &c.exp {
                None => None,
                Some(v) => Some(v.seconds().ok_or(Invalid)?),
            };
            if let Some(exp) = exp
                && exp <= now_s - self.leeway
            {
                return Err(Expired);
            }
            if let Some(v) = &c.nbf
                && v.seconds().ok_or(Invalid)? > now_s + self.leeway
            {
                return Err(Invalid);
            }
            let iat = match &c.iat {
                None => None,
                Some(v) => Some(v.seconds().ok_or(Invalid)?),
            };
            if iat.is_some_and(|iat| iat > now_s + self.leeway) {
                return Err(Invalid);
            }
            // As PyJWT (and so simplejwt): with no audience configured, a token that names one
            // was meant for another service and is refused.
            let aud_ok = match (&self.audience, &c.aud) {
                (None, aud) => aud.is_none(),
                (Some(want), Some(Scalar::Str(a))) => a == want,
                (Some(want), Some(Scalar::Strings(list))) => list.iter().any(|a| a == want),
                (Some(_), _) => false,
            };
            if !aud_ok {
                return Err(Invalid);
            }
            if let Some(want) = &self.issuer
                && c.iss.as_ref().and_then(Scalar::as_str) != Some(want)
            {
                return Err(Invalid);
            }
            let exp = exp.ok_or(NoExp)?;
            let jti = match &c.jti {
                None => return Err(NoId),
                Some(Scalar::Str(s)) if !s.is_empty() && !s.contains('\0') => s.to_string(),
                Some(_) => return Err(Invalid),
            };
            let token_type = match c.token_type.as_ref().map(Scalar::as_str) {
                None => return Err(NoType),
                Some(Some("access")) => TokenType::Access,
                Some(Some("refresh")) => TokenType::Refresh,
                Some(_) => return Err(WrongType),
            };
            if let Some(want) = expected
                && want != token_type
            {
                return Err(WrongType);
            }
            let user_id = match &c.user_id {
                Some(Scalar::Str(s)) => Some(s.to_string()),
                Some(Scalar::Int(n)) => Some(n.to_string()),
                Some(Scalar::UInt(n)) => Some(n.to_string()),
                _ => None,
            };
            let family = match &c.fid {
                None => None,
                Some(Scalar::Str(s)) if !s.contains('\0') => Some(s.to_string()),
                Some(_) => return Err(Invalid),
            };
            // Both or nothing; a shape sekisho never writes says nothing about the login.
            let login = match (&c.amr, c.auth_time.as_ref().and_then(Scalar::seconds)) {
                (Some(Scalar::Strings(amr)), Some(at)) => {
                    crate::mfa::LoginMethod::from_amr(amr, at)
                }
                _ => None,
            };
            Ok(Claims {
                token_type,
                exp,
                iat: iat.unwrap_or(0),
                jti,
                user_id,
                family,
                login,
            })
        };
        check().map_err(Ok)
    }
}

#[cfg(test)]
mod tests;
