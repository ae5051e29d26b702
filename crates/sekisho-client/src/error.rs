//! The one error type of the client.

use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Everything that can go wrong. `Clone`, so that every task waiting for one refresh gets the
/// same error.
///
/// What to do about each:
///
/// - [`Error::SessionEnded`]: the login is gone (the refresh was refused: revoked, expired,
///   reused, password changed, account disabled). The stored tokens have been cleared. Log in
///   again.
/// - [`Error::NotLoggedIn`]: there are no tokens. Log in.
/// - [`Error::InvalidCredentials`]: `login` with a wrong username or password.
/// - [`Error::MfaRequired`]: the password was right and the account has a second factor:
///   nothing was issued yet; finish with [`complete_login`](crate::Client::complete_login).
///   [`Error::MfaEnrolmentRequired`]: the account must enrol one first (in a browser or app
///   that shows the QR code), then finish the same way.
/// - [`Error::SecondFactorRefused`]: `complete_login` with a wrong or used code, or a challenge
///   that expired or was used: log in again for a new challenge.
/// - [`Error::Http`], [`Error::Timeout`]: the server could not be reached or did not answer in
///   time. Tokens are kept; trying again later may work.
/// - [`Error::Api`]: any other non-2xx answer (a 429 with `Retry-After`, a 5xx, or a non-2xx
///   answer to [`get_json`](crate::Client::get_json)).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No tokens are stored: log in first.
    #[error("not logged in")]
    NotLoggedIn,
    /// The server refused the refresh token (400, 401 or 403). The stored tokens have been
    /// cleared; log in again.
    #[error("the login has ended: the refresh was refused ({}); log in again", describe(*status, body))]
    SessionEnded {
        status: u16,
        /// The answer's JSON body (`Value::Null` when it had none).
        body: Value,
    },
    /// `POST /api/token/` answered 401: no active account with these credentials.
    #[error("no active account found with the given credentials")]
    InvalidCredentials { body: Value },
    /// `POST /api/token/` answered 401 `mfa_required`: the password was right, a second factor
    /// is owed. Nothing was issued or stored.
    #[error("a second factor is required to finish the login")]
    MfaRequired(Arc<sekisho_proto::MfaChallenge>),
    /// `POST /api/token/` answered 401 `mfa_enrolment_required`: the account must enrol a second
    /// factor before it can log in.
    #[error("the account must enrol a second factor before it can log in")]
    MfaEnrolmentRequired(Arc<sekisho_proto::MfaChallenge>),
    /// `POST /api/token/mfa/` answered 401: a wrong or used code, or a challenge that is
    /// invalid, expired or used.
    #[error("the second factor was refused ({})", describe(401, body))]
    SecondFactorRefused { body: Value },
    /// A non-2xx answer that is neither of the above.
    #[error("the server answered {}", describe(*status, body))]
    Api { status: u16, body: Value },
    /// The request could not be sent or its answer not read.
    #[error("HTTP request failed: {0}")]
    Http(#[source] Arc<reqwest::Error>),
    /// A call to a token endpoint, a wait for a refresh or a token-store operation took longer
    /// than the client's timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The token store failed.
    #[error("token store: {0}")]
    Store(#[source] Arc<std::io::Error>),
    /// The server's answer did not have the contract's shape.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// The client was built or called with something invalid (a bad base URL or path).
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl Error {
    /// The HTTP status of an answer the server gave, if this error is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::SessionEnded { status, .. } | Error::Api { status, .. } => Some(*status),
            Error::InvalidCredentials { .. }
            | Error::MfaRequired(_)
            | Error::MfaEnrolmentRequired(_)
            | Error::SecondFactorRefused { .. } => Some(401),
            Error::Http(e) => e.status().map(|s| s.as_u16()),
            _ => None,
        }
    }

    /// The body of an answer the server gave, if this error is one.
    pub fn body(&self) -> Option<&Value> {
        match self {
            Error::SessionEnded { body, .. }
            | Error::Api { body, .. }
            | Error::InvalidCredentials { body }
            | Error::SecondFactorRefused { body } => Some(body),
            _ => None,
        }
    }

    /// The `detail` string of a DRF error body, if any.
    pub fn detail(&self) -> Option<&str> {
        self.body()?.get("detail")?.as_str()
    }

    /// The `code` of a simplejwt error body (`token_not_valid`, …; `mfa_required`, …), if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::MfaRequired(c) | Error::MfaEnrolmentRequired(c) => Some(&c.code),
            _ => self.body()?.get("code")?.as_str(),
        }
    }

    /// Whether the login is gone ([`Error::SessionEnded`] or [`Error::NotLoggedIn`]): the user
    /// must log in again.
    pub fn is_logged_out(&self) -> bool {
        matches!(self, Error::SessionEnded { .. } | Error::NotLoggedIn)
    }

    pub(crate) fn http(e: reqwest::Error, timeout: Duration) -> Error {
        if e.is_timeout() {
            Error::Timeout(timeout)
        } else {
            Error::Http(Arc::new(e.without_url()))
        }
    }

    pub(crate) fn store(e: std::io::Error) -> Error {
        Error::Store(Arc::new(e))
    }
}

fn describe(status: u16, body: &Value) -> String {
    match body.get("detail").and_then(Value::as_str) {
        Some(d) => format!("{status}: {d}"),
        None => format!("HTTP {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_carry_status_and_detail() {
        let e = Error::SessionEnded {
            status: 401,
            body: json!({"detail": "Token is blacklisted", "code": "token_not_valid"}),
        };
        assert_eq!(
            e.to_string(),
            "the login has ended: the refresh was refused (401: Token is blacklisted); log in again"
        );
        assert_eq!(e.code(), Some("token_not_valid"));
        assert_eq!(e.status(), Some(401));
        assert!(e.is_logged_out());
        let e = Error::Api {
            status: 503,
            body: Value::Null,
        };
        assert_eq!(e.to_string(), "the server answered HTTP 503");
        assert_eq!(e.detail(), None);
        assert!(!e.is_logged_out());
    }
}
