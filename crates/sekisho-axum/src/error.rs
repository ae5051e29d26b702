//! The JSON error contract, mapped once. Handlers and extractors return [`ApiError`] with `?`;
//! this file is the only place that knows simplejwt's and DRF's status codes, codes and shapes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sekisho_core::AuthError;
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
    /// A CSRF check failed; the reason is Django's wording.
    Csrf(String),
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::Auth(e)
    }
}

impl ApiError {
    pub fn field(name: &str, message: &str) -> Self {
        let mut m = Map::new();
        m.insert(name.into(), json!([message]));
        ApiError::Fields(m)
    }
}

fn detail_code(detail: String, code: &str) -> Value {
    json!({ "detail": detail, "code": code })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            ApiError::Auth(AuthError::Throttled(w)) => {
                Some(w.as_secs() + u64::from(w.subsec_nanos() > 0))
            }
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
            ApiError::MethodNotAllowed(m) => (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({ "detail": format!("Method \"{m}\" not allowed.") }),
            ),
            ApiError::Csrf(reason) => {
                tracing::info!(%reason, "CSRF check failed");
                metrics::counter!("sekisho_csrf_failures_total").increment(1);
                (
                    StatusCode::FORBIDDEN,
                    json!({ "detail": format!("CSRF Failed: {reason}") }),
                )
            }
            ApiError::NotAuthenticated { status } => (
                StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED),
                json!({ "detail": AuthError::NotAuthenticated.to_string() }),
            ),
        };
        let mut res = json_response(status, body);
        if let Some(secs) = retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        res
    }
}

fn auth_error(e: AuthError) -> (StatusCode, Value) {
    use AuthError::*;
    let unauthorized = StatusCode::UNAUTHORIZED;
    match e {
        InvalidCredentials => (
            unauthorized,
            json!({ "detail": InvalidCredentials.to_string() }),
        ),
        Token(t) => (unauthorized, detail_code(t.message(), "token_not_valid")),
        AccessToken { class, error } => (
            unauthorized,
            json!({
                "detail": "Given token not valid for any token type",
                "code": "token_not_valid",
                "messages": [{
                    "token_class": class.class_name(),
                    "token_type": class.as_str(),
                    "message": error.message(),
                }],
            }),
        ),
        e @ BadAuthorizationHeader => (
            unauthorized,
            detail_code(e.to_string(), "bad_authorization_header"),
        ),
        e @ NoUserIdentification => (unauthorized, detail_code(e.to_string(), "token_not_valid")),
        e @ UserNotFound => (unauthorized, detail_code(e.to_string(), "user_not_found")),
        e @ UserInactive => (unauthorized, detail_code(e.to_string(), "user_inactive")),
        e @ NoActiveAccount => (
            unauthorized,
            detail_code(e.to_string(), "no_active_account"),
        ),
        e @ NotAuthenticated => (unauthorized, json!({ "detail": e.to_string() })),
        e @ PermissionDenied => (StatusCode::FORBIDDEN, json!({ "detail": e.to_string() })),
        Invalid(msg) => (StatusCode::BAD_REQUEST, json!({ "detail": msg })),
        Conflict(msg) => (StatusCode::CONFLICT, json!({ "detail": msg })),
        Throttled(wait) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            (
                StatusCode::TOO_MANY_REQUESTS,
                json!({ "detail": format!("Request was throttled. Expected available in {secs} seconds.") }),
            )
        }
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
