//! The JSON bodies of sekisho's token endpoints (djangorestframework-simplejwt's shapes), the
//! user as `GET /api/auth/me/` returns it, the error body, and the claims a client may read from
//! a token. Plain data with serde, nothing else: clients depend on it without pulling in the
//! server.
//!
//! `Debug` never prints a password or a token.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use std::fmt;

/// The default paths of the token endpoints and of the caller's own account.
pub mod paths {
    /// `POST {username, password}` → [`ObtainResponse`](crate::ObtainResponse), or 401
    /// [`MfaChallenge`](crate::MfaChallenge) for an account with a second factor.
    pub const TOKEN: &str = "/api/token/";
    /// `POST` [`MfaCompleteRequest`](crate::MfaCompleteRequest) →
    /// [`ObtainResponse`](crate::ObtainResponse): the token login's second step.
    pub const TOKEN_MFA: &str = "/api/token/mfa/";
    /// `POST {refresh}` → [`RefreshResponse`](crate::RefreshResponse).
    pub const REFRESH: &str = "/api/token/refresh/";
    /// `POST {token}` → `{}`.
    pub const VERIFY: &str = "/api/token/verify/";
    /// `POST {refresh}` → `{}`: the login's refresh family is revoked.
    pub const BLACKLIST: &str = "/api/token/blacklist/";
    /// `GET` → [`User`](crate::User).
    pub const ME: &str = "/api/auth/me/";
}

/// The `code` of every refused token (a token endpoint's 401, or a bearer call's 401).
pub const CODE_TOKEN_NOT_VALID: &str = "token_not_valid";
/// The `code` of a login's 401 when the account's second factor is owed ([`MfaChallenge`]).
pub const CODE_MFA_REQUIRED: &str = "mfa_required";
/// The `code` of a login's 401 when the account must enrol a second factor first
/// (`mfa.required_for_staff`; [`MfaChallenge`]).
pub const CODE_MFA_ENROLMENT_REQUIRED: &str = "mfa_enrolment_required";

/// Stands in for a secret in `Debug` output: `"…"` when present, `None` when absent.
struct Redacted(bool);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0 { "\"…\"" } else { "None" })
    }
}

/// `POST /api/token/`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObtainRequest {
    pub username: String,
    /// Sent as typed: sekisho does not trim passwords.
    pub password: String,
}

impl fmt::Debug for ObtainRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObtainRequest")
            .field("username", &self.username)
            .field("password", &Redacted(true))
            .finish()
    }
}

/// The answer of `POST /api/token/`. `refresh` is absent only when the server keeps it in an
/// HttpOnly cookie (`jwt.refresh_cookie = true`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObtainResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<String>,
    pub access: String,
}

impl fmt::Debug for ObtainResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObtainResponse")
            .field("refresh", &Redacted(self.refresh.is_some()))
            .field("access", &Redacted(true))
            .finish()
    }
}

/// A login's 401 when a second factor is owed (`code` [`CODE_MFA_REQUIRED`]) or must be
/// enrolled first ([`CODE_MFA_ENROLMENT_REQUIRED`]): nothing was issued; present `challenge`
/// with a code to [`paths::TOKEN_MFA`] within `expires_in` seconds, once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaChallenge {
    pub detail: String,
    pub code: String,
    pub challenge: String,
    /// What the completion takes: `"totp"`, `"recovery"`.
    pub methods: Vec<String>,
    pub expires_in: u64,
}

impl fmt::Debug for MfaChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaChallenge")
            .field("code", &self.code)
            .field("challenge", &Redacted(true))
            .field("methods", &self.methods)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// `POST /api/token/mfa/`: the challenge and exactly one of `code` (six digits) and
/// `recovery_code`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaCompleteRequest {
    pub challenge: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_code: Option<String>,
}

impl fmt::Debug for MfaCompleteRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaCompleteRequest")
            .field("challenge", &Redacted(true))
            .field("code", &Redacted(self.code.is_some()))
            .field("recovery_code", &Redacted(self.recovery_code.is_some()))
            .finish()
    }
}

/// `POST /api/token/refresh/` and `POST /api/token/blacklist/`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRequest {
    pub refresh: String,
}

impl fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshRequest")
            .field("refresh", &Redacted(true))
            .finish()
    }
}

/// The body of `POST /api/token/blacklist/`: the same shape as a refresh.
pub type BlacklistRequest = RefreshRequest;

/// The answer of `POST /api/token/refresh/`. `refresh` is the rotated successor, present when
/// the server rotates (the default); a client must store it, since the token it presented is
/// then spent.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshResponse {
    pub access: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<String>,
}

impl fmt::Debug for RefreshResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshResponse")
            .field("access", &Redacted(true))
            .field("refresh", &Redacted(self.refresh.is_some()))
            .finish()
    }
}

/// `POST /api/token/verify/`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyRequest {
    pub token: String,
}

impl fmt::Debug for VerifyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyRequest")
            .field("token", &Redacted(true))
            .finish()
    }
}

/// An error answer in DRF's and simplejwt's shape: `detail`, and for refused tokens `code`
/// (`token_not_valid`, `bad_authorization_header`, `user_not_found`, `user_inactive`) and, on
/// bearer calls, `messages`. A 400 for a missing field has neither: it maps field names to
/// messages, e.g. `{"refresh":["This field is required."]}` ([`FieldErrors`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<TokenMessage>>,
}

/// One entry of [`ErrorBody::messages`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    pub message: String,
}

/// DRF's 400 body: field name → messages.
pub type FieldErrors = std::collections::BTreeMap<String, Vec<String>>;

/// A user id as sekisho sends it: a number; Django-minted tokens may carry it as a string.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UserId {
    Number(i64),
    String(String),
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserId::Number(n) => write!(f, "{n}"),
            UserId::String(s) => f.write_str(s),
        }
    }
}

/// The user as `GET /api/auth/me/` returns it (Django's `auth.User` shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub is_staff: bool,
    #[serde(default)]
    pub is_superuser: bool,
    /// Group names.
    #[serde(default)]
    pub groups: Vec<String>,
    /// `app_label.codename` permissions, from the user's own grants and groups.
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// `access` or `refresh`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Refresh,
}

/// The claims of a sekisho token that a client may read — never trust: a client cannot verify
/// the signature and needs only the times, to plan its refresh. Unknown claims (`fid`, `iss`,
/// `aud`, …) are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub token_type: TokenType,
    /// Expiry, seconds since the Unix epoch (server clock).
    pub exp: i64,
    /// Issued at, seconds since the Unix epoch (server clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// 32 lowercase hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_second_factor_bodies_have_the_contract_field_names_and_hide_secrets() {
        let c: MfaChallenge = serde_json::from_value(json!({
            "detail": "Second factor required.", "code": "mfa_required", "mfa_required": true,
            "challenge": "0123456789abcdef0123456789abcdef", "methods": ["totp", "recovery"],
            "expires_in": 300
        }))
        .unwrap();
        assert_eq!(c.code, CODE_MFA_REQUIRED);
        assert_eq!(c.methods, ["totp", "recovery"]);
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
        let req = MfaCompleteRequest {
            challenge: "c0ffee".into(),
            code: None,
            recovery_code: Some("aaaaa-bbbbb-ccccc-ddddd".into()),
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({"challenge": "c0ffee", "recovery_code": "aaaaa-bbbbb-ccccc-ddddd"})
        );
        let shown = format!("{req:?}");
        assert!(
            !shown.contains("c0ffee") && !shown.contains("aaaaa"),
            "{shown}"
        );
    }

    #[test]
    fn bodies_have_the_contract_field_names() {
        let req = ObtainRequest {
            username: "alice".into(),
            password: " pw ".into(),
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({"username": "alice", "password": " pw "})
        );
        let r: RefreshResponse = serde_json::from_value(json!({"access": "a"})).unwrap();
        assert_eq!(r.refresh, None);
        let r: RefreshResponse =
            serde_json::from_value(json!({"access": "a", "refresh": "r", "extra": 1})).unwrap();
        assert_eq!(r.refresh.as_deref(), Some("r"));
        let o: ObtainResponse = serde_json::from_value(json!({"access": "a"})).unwrap();
        assert_eq!(o.refresh, None);
        assert_eq!(
            serde_json::to_value(RefreshRequest {
                refresh: "r".into()
            })
            .unwrap(),
            json!({"refresh": "r"})
        );
        assert_eq!(
            serde_json::to_value(VerifyRequest { token: "t".into() }).unwrap(),
            json!({"token": "t"})
        );
    }

    #[test]
    fn error_bodies_parse_in_every_shape() {
        let e: ErrorBody = serde_json::from_value(json!({
            "detail": "Given token not valid for any token type",
            "code": "token_not_valid",
            "messages": [{"token_class": "AccessToken", "token_type": "access", "message": "Token is expired"}],
        }))
        .unwrap();
        assert_eq!(e.code.as_deref(), Some(CODE_TOKEN_NOT_VALID));
        assert_eq!(e.messages.unwrap()[0].message, "Token is expired");
        let e: ErrorBody =
            serde_json::from_value(json!({"refresh": ["This field is required."]})).unwrap();
        assert_eq!(e, ErrorBody::default());
        let f: FieldErrors =
            serde_json::from_value(json!({"refresh": ["This field is required."]})).unwrap();
        assert_eq!(f["refresh"], vec!["This field is required.".to_string()]);
    }

    #[test]
    fn users_and_claims_accept_both_id_forms() {
        let u: User = serde_json::from_value(json!({
            "id": 7, "username": "alice", "email": "", "first_name": "", "last_name": "",
            "is_staff": false, "is_superuser": false, "groups": [], "permissions": ["shop.view_report"],
        }))
        .unwrap();
        assert_eq!(u.id, UserId::Number(7));
        assert_eq!(u.id.to_string(), "7");
        let c: Claims = serde_json::from_value(json!({
            "token_type": "access", "exp": 2, "iat": 1, "jti": "0".repeat(32), "user_id": "7", "fid": "x",
        }))
        .unwrap();
        assert_eq!(c.token_type, TokenType::Access);
        assert_eq!(c.user_id, Some(UserId::String("7".into())));
    }

    #[test]
    fn debug_never_prints_secrets() {
        let text = format!(
            "{:?} {:?} {:?} {:?} {:?}",
            ObtainRequest {
                username: "alice".into(),
                password: "hunter2-secret".into()
            },
            ObtainResponse {
                refresh: Some("refresh-secret".into()),
                access: "access-secret".into()
            },
            RefreshRequest {
                refresh: "refresh-secret".into()
            },
            RefreshResponse {
                access: "access-secret".into(),
                refresh: None
            },
            VerifyRequest {
                token: "token-secret".into()
            },
        );
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("alice"));
    }
}
