//! The JSON error contract, mapped once. Handlers and extractors return [`ApiError`] with `?`;
//! this file is the only place that knows simplejwt's, DRF's and Django's status codes, codes,
//! shapes and wording (DESIGN §3). The domain's errors carry no contract text.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sekisho_core::AuthError;
use sekisho_core::account::{ProfileProblem, WeakPassword};
use sekisho_core::session::CsrfFailure;
use sekisho_core::token::{TokenError, TokenType};
use serde_json::{Map, Value, json};

/// `WWW-Authenticate` on every 401, as DRF sends it for bearer authentication.
pub const WWW_AUTHENTICATE: &str = "Bearer realm=\"api\"";

#[derive(Debug)]
pub enum ApiError {
    Auth(AuthError),
    /// Field errors in DRF's shape: `{"field": ["message"]}`.
    Fields(Map<String, Value>),
    /// A body that is not valid JSON.
    Parse(String),
    UnsupportedMediaType(String),
    PayloadTooLarge,
    NotFound,
    MethodNotAllowed(String),
    /// 401 vs 403 for anonymous callers is configurable (`auth.unauthenticated_status`).
    NotAuthenticated {
        status: u16,
    },
    Csrf(CsrfFailure),
    /// A page number that is not a number, below 1 or past the last page (DRF's
    /// `PageNumberPagination`).
    InvalidPage,
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::Auth(e)
    }
}

impl From<CsrfFailure> for ApiError {
    fn from(f: CsrfFailure) -> Self {
        ApiError::Csrf(f)
    }
}

/// Why one request field was refused; [`FieldProblem::message`] is DRF's or Django's wording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldProblem {
    Required,
    Null,
    Blank,
    NotAString,
    /// DRF's `ProhibitNullCharactersValidator`, on every text field.
    NullCharacters,
    /// The body is JSON but not an object; carries Python's name for what it is.
    NotAnObject(&'static str),
    Profile(ProfileProblem),
    WrongOldPassword,
    WeakPassword(WeakPassword),
    /// DRF's `IntegerField`.
    NotAnInteger,
    /// DRF's `BooleanField`.
    NotABoolean,
    /// DRF's `PrimaryKeyRelatedField`: no row has this id.
    NoSuchPk(String),
    /// DRF's `SlugRelatedField`: no row has this slug (`field=value`).
    NoSuchSlug(&'static str, String),
    /// Two fields of which exactly one must be given (reported under `non_field_errors`).
    OneOf(&'static str, &'static str),
    /// Not six ASCII digits.
    InvalidTotpCode,
    /// Not the shape of a recovery code.
    InvalidRecoveryCode,
    /// A well-formed code that is wrong or was already used.
    WrongCode,
    /// An embedding application's own rule, in its own words.
    Other(String),
}

impl FieldProblem {
    pub fn message(&self) -> String {
        match self {
            FieldProblem::Required => "This field is required.".into(),
            FieldProblem::Null => "This field may not be null.".into(),
            FieldProblem::Blank => "This field may not be blank.".into(),
            FieldProblem::NotAString => "Not a valid string.".into(),
            FieldProblem::NullCharacters => "Null characters are not allowed.".into(),
            FieldProblem::NotAnObject(t) => {
                format!("Invalid data. Expected a dictionary, but got {t}.")
            }
            FieldProblem::Profile(ProfileProblem::TooLong) => {
                "Ensure this field has no more than 150 characters.".into()
            }
            FieldProblem::Profile(ProfileProblem::InvalidEmail) => {
                "Enter a valid email address.".into()
            }
            FieldProblem::WrongOldPassword => {
                "Your old password was entered incorrectly. Please enter it again.".into()
            }
            FieldProblem::NotAnInteger => "A valid integer is required.".into(),
            FieldProblem::NotABoolean => "Must be a valid boolean.".into(),
            FieldProblem::NoSuchPk(pk) => format!("Invalid pk \"{pk}\" - object does not exist."),
            FieldProblem::NoSuchSlug(field, value) => {
                format!("Object with {field}={value} does not exist.")
            }
            FieldProblem::OneOf(a, b) => format!("Give exactly one of {a} and {b}."),
            FieldProblem::InvalidTotpCode => "Enter a valid 6-digit code.".into(),
            FieldProblem::InvalidRecoveryCode => "Enter a valid recovery code.".into(),
            FieldProblem::WrongCode => "The code is incorrect or has already been used.".into(),
            FieldProblem::Other(message) => message.clone(),
            FieldProblem::WeakPassword(w) => match w {
                WeakPassword::TooShort => {
                    "This password is too short. It must contain at least 8 characters.".into()
                }
                WeakPassword::TooLong => "This password is too long.".into(),
                WeakPassword::EntirelyNumeric => "This password is entirely numeric.".into(),
                WeakPassword::SimilarToUsername => {
                    "The password is too similar to the username.".into()
                }
            },
        }
    }
}

/// Collects field errors the way DRF does: every field's first problem, reported together.
#[derive(Debug, Default)]
pub struct FieldErrors(Map<String, Value>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, problem: FieldProblem) {
        self.0.insert(field.into(), json!([problem.message()]));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was added, else the 400.
    pub fn check(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Fields(self.0))
        }
    }
}

impl ApiError {
    pub fn field(name: &str, problem: FieldProblem) -> Self {
        let mut e = FieldErrors::default();
        e.add(name, problem);
        ApiError::Fields(e.0)
    }
}

/// Python's name for a JSON value's type, as DRF's messages say it.
pub fn python_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// simplejwt's message for each token refusal.
fn token_message(e: TokenError) -> &'static str {
    match e {
        TokenError::Invalid => "Token is invalid",
        TokenError::Expired => "Token is expired",
        TokenError::WrongType => "Token has wrong type",
        TokenError::NoType => "Token has no type",
        TokenError::NoId => "Token has no id",
        TokenError::NoExp => "Token has no 'exp' claim",
        TokenError::Blacklisted => "Token is blacklisted",
    }
}

/// simplejwt's class name, used in the `messages` list of API authentication failures.
fn token_class(t: TokenType) -> &'static str {
    match t {
        TokenType::Access => "AccessToken",
        TokenType::Refresh => "RefreshToken",
    }
}

/// Django's reason for each CSRF failure (after `CSRF Failed: `).
fn csrf_reason(f: &CsrfFailure) -> String {
    match f {
        CsrfFailure::BadOrigin(o) => {
            format!("Origin checking failed - {o} does not match any trusted origins.")
        }
        CsrfFailure::CookieNotSet => "CSRF cookie not set.".into(),
        CsrfFailure::TokenMissing => "CSRF token missing.".into(),
        CsrfFailure::TokenIncorrect => "CSRF token incorrect.".into(),
    }
}

const NOT_AUTHENTICATED: &str = "Authentication credentials were not provided.";
const INVALID_CREDENTIALS: &str = "No active account found with the given credentials";

fn detail_code(detail: &str, code: &str) -> Value {
    json!({ "detail": detail, "code": code })
}

/// Whole seconds to wait, rounded up (never 0: `Retry-After: 0` invites a hot loop).
fn wait_secs(w: std::time::Duration) -> u64 {
    (w.as_secs() + u64::from(w.subsec_nanos() > 0)).max(1)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            ApiError::Auth(AuthError::Throttled(w)) => Some(wait_secs(*w)),
            _ => None,
        };
        let (status, body) = match self {
            ApiError::Auth(e) => auth_error(e),
            ApiError::Fields(m) => (StatusCode::BAD_REQUEST, Value::Object(m)),
            ApiError::Parse(msg) => (
                StatusCode::BAD_REQUEST,
                json!({ "detail": format!("JSON parse error - {msg}") }),
            ),
            ApiError::UnsupportedMediaType(ct) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                json!({ "detail": format!("Unsupported media type \"{ct}\" in request.") }),
            ),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({ "detail": "Request body is too large." }),
            ),
            ApiError::NotFound => (StatusCode::NOT_FOUND, json!({ "detail": "Not found." })),
            ApiError::InvalidPage => (StatusCode::NOT_FOUND, json!({ "detail": "Invalid page." })),
            ApiError::MethodNotAllowed(m) => (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({ "detail": format!("Method \"{m}\" not allowed.") }),
            ),
            ApiError::Csrf(failure) => {
                let reason = csrf_reason(&failure);
                tracing::info!(%reason, "CSRF check failed");
                metrics::counter!("sekisho_csrf_failures_total").increment(1);
                (
                    StatusCode::FORBIDDEN,
                    json!({ "detail": format!("CSRF Failed: {reason}") }),
                )
            }
            ApiError::NotAuthenticated { status } => (
                StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED),
                json!({ "detail": NOT_AUTHENTICATED }),
            ),
        };
        let mut res = json_response(status, body);
        if let Some(secs) = retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

fn auth_error(e: AuthError) -> (StatusCode, Value) {
    use AuthError::*;
    let unauthorized = StatusCode::UNAUTHORIZED;
    match e {
        InvalidCredentials => (unauthorized, json!({ "detail": INVALID_CREDENTIALS })),
        Token(t) => (
            unauthorized,
            detail_code(token_message(t), "token_not_valid"),
        ),
        AccessToken { class, error } => (
            unauthorized,
            json!({
                "detail": "Given token not valid for any token type",
                "code": "token_not_valid",
                "messages": [{
                    "token_class": token_class(class),
                    "token_type": class.as_str(),
                    "message": token_message(error),
                }],
            }),
        ),
        BadAuthorizationHeader => (
            unauthorized,
            detail_code(
                "Authorization header must contain two space-delimited values",
                "bad_authorization_header",
            ),
        ),
        NoUserIdentification => (
            unauthorized,
            detail_code(
                "Token contained no recognizable user identification",
                "token_not_valid",
            ),
        ),
        UserNotFound => (
            unauthorized,
            detail_code("User not found", "user_not_found"),
        ),
        UserInactive => (
            unauthorized,
            detail_code("User is inactive", "user_inactive"),
        ),
        NoActiveAccount => (
            unauthorized,
            detail_code(
                "No active account found for the given token.",
                "no_active_account",
            ),
        ),
        NotAuthenticated => (unauthorized, json!({ "detail": NOT_AUTHENTICATED })),
        PermissionDenied => (
            StatusCode::FORBIDDEN,
            json!({ "detail": "You do not have permission to perform this action." }),
        ),
        NotFound(_) => (StatusCode::NOT_FOUND, json!({ "detail": "Not found." })),
        Invalid(msg) => (StatusCode::BAD_REQUEST, json!({ "detail": msg })),
        Conflict(msg) => (StatusCode::CONFLICT, json!({ "detail": msg })),
        Throttled(wait) => (
            StatusCode::TOO_MANY_REQUESTS,
            json!({ "detail": format!("Request was throttled. Expected available in {} seconds.", wait_secs(wait)) }),
        ),
        MfaRequired(c) => (
            unauthorized,
            json!({
                "detail": "Second factor required.",
                "code": "mfa_required",
                "mfa_required": true,
                "challenge": c.token,
                "methods": c.methods,
                "expires_in": c.expires_in.as_secs(),
            }),
        ),
        MfaEnrolmentRequired(c) => (
            unauthorized,
            json!({
                "detail": "Second factor enrolment required.",
                "code": "mfa_enrolment_required",
                "mfa_enrolment_required": true,
                "challenge": c.token,
                "methods": c.methods,
                "expires_in": c.expires_in.as_secs(),
            }),
        ),
        MfaChallengeInvalid => (
            unauthorized,
            detail_code(
                "The second-factor challenge is invalid or has expired.",
                "mfa_challenge_invalid",
            ),
        ),
        MfaCodeInvalid => (
            unauthorized,
            detail_code(
                "The code is incorrect or has already been used.",
                "mfa_code_invalid",
            ),
        ),
        MfaAlreadyEnrolled => (
            StatusCode::CONFLICT,
            detail_code(
                "A second factor is already enrolled.",
                "mfa_already_enrolled",
            ),
        ),
        MfaNotEnrolled => (
            StatusCode::BAD_REQUEST,
            detail_code("No second factor is enrolled.", "mfa_not_enrolled"),
        ),
        PasskeysDisabled => (
            StatusCode::NOT_FOUND,
            detail_code("Passkeys are not enabled.", "passkeys_disabled"),
        ),
        PasskeyCeremonyInvalid => (
            unauthorized,
            detail_code(
                "The passkey ceremony is invalid or has expired.",
                "passkey_ceremony_invalid",
            ),
        ),
        PasskeyResponseMalformed => (
            StatusCode::BAD_REQUEST,
            json!({ "credential": ["Not a valid passkey response."] }),
        ),
        PasskeyRefused => (
            unauthorized,
            detail_code("The passkey was not accepted.", "passkey_refused"),
        ),
        PasskeyUserVerificationRequired => (
            unauthorized,
            detail_code(
                "This passkey did not verify the user; sign in with a password first.",
                "passkey_user_verification_required",
            ),
        ),
        PasskeyAlreadyRegistered => (
            StatusCode::CONFLICT,
            detail_code(
                "This passkey is already registered.",
                "passkey_already_registered",
            ),
        ),
        PasskeyNameInvalid => (
            StatusCode::BAD_REQUEST,
            json!({ "name": ["Enter a name of 1 to 64 printable characters."] }),
        ),
        MfaStepUpRequired => (
            StatusCode::FORBIDDEN,
            detail_code(
                "This action requires a recent second-factor login.",
                "mfa_step_up_required",
            ),
        ),
        Unavailable(reason) => {
            tracing::error!(%reason, "storage unavailable; failing closed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "detail": "Service temporarily unavailable, try again later.", "code": "service_unavailable" }),
            )
        }
        Internal(reason) => {
            tracing::error!(%reason, "internal error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "detail": "A server error occurred." }),
            )
        }
    }
}

/// A JSON response with the headers the contract ties to its status.
pub fn json_response(status: StatusCode, body: Value) -> Response {
    let mut res = (status, axum::Json(body)).into_response();
    let h = res.headers_mut();
    if status == StatusCode::UNAUTHORIZED {
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(WWW_AUTHENTICATE),
        );
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    res
}

/// The JSON 500 a panicking handler turns into (no stack trace ever leaves the server).
pub fn panic_response() -> Response {
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({"detail": "A server error occurred."}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_waits_round_up_and_never_say_zero() {
        use std::time::Duration;
        assert_eq!(wait_secs(Duration::from_millis(1)), 1);
        assert_eq!(wait_secs(Duration::from_millis(1001)), 2);
        assert_eq!(wait_secs(Duration::from_secs(30)), 30);
        assert_eq!(wait_secs(Duration::ZERO), 1);
    }

    #[test]
    fn csrf_reasons_are_djangos() {
        assert_eq!(
            csrf_reason(&CsrfFailure::BadOrigin("https://evil.example".into())),
            "Origin checking failed - https://evil.example does not match any trusted origins."
        );
        assert_eq!(
            csrf_reason(&CsrfFailure::TokenMissing),
            "CSRF token missing."
        );
    }
}
