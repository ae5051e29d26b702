//! The domain's error type. Its messages are for logs and the CLI; the HTTP layer maps each
//! variant, once, to the JSON contract and its exact wording.

use crate::store::StoreError;
use crate::token::{TokenError, TokenType};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong username or password, or an inactive account (indistinguishable on purpose).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// A token presented to a token endpoint (refresh, verify, blacklist) was refused.
    #[error("{0}")]
    Token(TokenError),
    /// A bearer token on an API call was refused; reported per token class as simplejwt does.
    #[error("access token refused: {error}")]
    AccessToken { class: TokenType, error: TokenError },
    #[error("malformed Authorization header")]
    BadAuthorizationHeader,
    #[error("token without a user id")]
    NoUserIdentification,
    #[error("user not found")]
    UserNotFound,
    #[error("user inactive")]
    UserInactive,
    /// A refresh for a user who was disabled or deleted since the login.
    #[error("no active account for the token")]
    NoActiveAccount,
    #[error("not authenticated")]
    NotAuthenticated,
    #[error("permission denied")]
    PermissionDenied,
    /// The thing acted on (a user, group, permission or grant) does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Bad input outside of HTTP parsing (CLI arguments, username rules).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    /// Too many failed logins: try again after the given time.
    #[error("throttled")]
    Throttled(std::time::Duration),
    /// The password checked out and a second factor is owed: no session, no tokens yet.
    #[error("second factor required")]
    MfaRequired(crate::mfa::MfaChallenge),
    /// The password checked out, but policy (`mfa.required_for_staff`) wants a factor the
    /// user has not enrolled: the challenge lets them enrol, and confirming it logs them in.
    #[error("second factor enrolment required")]
    MfaEnrolmentRequired(crate::mfa::MfaChallenge),
    /// The challenge is unknown, expired, used, or of the other flow.
    #[error("second-factor challenge invalid or expired")]
    MfaChallengeInvalid,
    /// A wrong, replayed or malformed code.
    #[error("second-factor code invalid")]
    MfaCodeInvalid,
    #[error("a second factor is already enrolled")]
    MfaAlreadyEnrolled,
    #[error("no second factor enrolled")]
    MfaNotEnrolled,
    /// `[webauthn]` is not configured.
    #[error("passkeys are not enabled")]
    PasskeysDisabled,
    /// The passkey ceremony is unknown, expired, used, or of another kind or login.
    #[error("passkey ceremony invalid or expired")]
    PasskeyCeremonyInvalid,
    /// The browser's answer is not a WebAuthn credential response.
    #[error("passkey response malformed")]
    PasskeyResponseMalformed,
    /// The assertion or registration did not verify (wrong origin or RP, bad signature, an
    /// unknown or regressed key).
    #[error("passkey refused")]
    PasskeyRefused,
    /// The key proved presence only: one factor, not a login alone.
    #[error("passkey without user verification")]
    PasskeyUserVerificationRequired,
    #[error("passkey already registered")]
    PasskeyAlreadyRegistered,
    #[error("passkey name invalid")]
    PasskeyNameInvalid,
    /// The caller's login has no second factor recent enough for this action.
    #[error("recent second factor required")]
    MfaStepUpRequired,
    /// Storage is down or slow: fail closed.
    #[error("service temporarily unavailable")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => AuthError::Unavailable(m),
            StoreError::Conflict(m) => AuthError::Conflict(m),
            StoreError::Refused(m) => {
                tracing::info!(reason = %m, "input refused by storage");
                AuthError::Invalid("invalid input".into())
            }
        }
    }
}

impl From<TokenError> for AuthError {
    fn from(e: TokenError) -> Self {
        AuthError::Token(e)
    }
}
