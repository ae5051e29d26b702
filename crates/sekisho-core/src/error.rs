//! The domain's error type. The HTTP layer maps each variant, once, to the JSON contract.

use crate::store::StoreError;
use crate::token::{TokenError, TokenType};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong username or password, or an inactive account (indistinguishable on purpose).
    #[error("No active account found with the given credentials")]
    InvalidCredentials,
    /// A token presented to a token endpoint (refresh, verify, blacklist) was refused.
    #[error("{0}")]
    Token(TokenError),
    /// A bearer token on an API call was refused; reported per token class as simplejwt does.
    #[error("Given token not valid for any token type")]
    AccessToken { class: TokenType, error: TokenError },
    #[error("Authorization header must contain two space-delimited values")]
    BadAuthorizationHeader,
    #[error("Token contained no recognizable user identification")]
    NoUserIdentification,
    #[error("User not found")]
    UserNotFound,
    #[error("User is inactive")]
    UserInactive,
    /// A refresh for a user who was disabled or deleted since the login.
    #[error("No active account found for the given token.")]
    NoActiveAccount,
    #[error("Authentication credentials were not provided.")]
    NotAuthenticated,
    #[error("You do not have permission to perform this action.")]
    PermissionDenied,
    /// Bad input outside of HTTP parsing (CLI arguments, username rules).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    /// Too many failed logins: try again after the given time.
    #[error("Request was throttled.")]
    Throttled(std::time::Duration),
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
        }
    }
}

impl From<TokenError> for AuthError {
    fn from(e: TokenError) -> Self {
        AuthError::Token(e)
    }
}
