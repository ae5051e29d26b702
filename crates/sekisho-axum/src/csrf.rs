//! CSRF enforcement and the `csrftoken` cookie (DESIGN §3.3).
//!
//! Enforced on unsafe methods of cookie-authenticated requests and on session login; never on
//! bearer requests (a browser never attaches an `Authorization` header on its own). The cookie
//! is (re)issued whenever it is missing or does not belong to the current session — on every
//! HTML page, `GET /api/auth/csrf/` and `GET /api/auth/me/` — so an SPA's first POST, and its
//! first POST after a session expired, carry a valid token.

use crate::cookies::{self, SameSite, SetCookie};
use crate::error::ApiError;
use crate::request::RequestMeta;
use crate::{AppState, HttpSettings};
use axum::http::{HeaderMap, Method, header};
use sekisho_core::config::SecureCookies;
use std::time::Duration;

/// Django's `CSRF_COOKIE_AGE`: one year.
pub const CSRF_COOKIE_AGE: Duration = Duration::from_secs(365 * 24 * 3600);

pub fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Checks `Origin` (when sent), then the cookie/header pair bound to `binding`.
pub fn enforce(
    headers: &HeaderMap,
    meta: &RequestMeta,
    state: &AppState,
    binding: &str,
) -> Result<(), ApiError> {
    let http = &state.http;
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        sekisho_core::csrf::check_origin(&origin, &meta.own_origin, &http.trusted_origins)
            .map_err(|f| ApiError::Csrf(f.reason()))?;
    }
    let cookie = cookies::get(headers, &http.csrf_cookie);
    let header = headers.get(&http.csrf_header).and_then(|v| v.to_str().ok());
    state
        .auth
        .csrf
        .check(cookie, header, binding)
        .map_err(|f| ApiError::Csrf(f.reason()))
}

/// The request's CSRF token if it is valid for `binding`; otherwise a fresh one and the
/// `Set-Cookie` to send with it.
pub fn token_for(headers: &HeaderMap, state: &AppState, binding: &str) -> (String, Option<String>) {
    if let Some(existing) = cookies::get(headers, &state.http.csrf_cookie)
        && state.auth.csrf.is_valid(existing, binding)
    {
        return (existing.to_string(), None);
    }
    let fresh = state.auth.csrf.mint(binding);
    (fresh.clone(), Some(fresh))
}

pub fn secure(http: &HttpSettings, meta: &RequestMeta) -> bool {
    match http.secure_cookies {
        SecureCookies::Always => true,
        SecureCookies::Never => false,
        SecureCookies::Auto => meta.secure,
    }
}

/// `csrftoken`: readable by JavaScript (the SPA copies it into the header), SameSite=Lax.
pub fn set_csrf_cookie(out: &mut HeaderMap, http: &HttpSettings, meta: &RequestMeta, token: &str) {
    SetCookie {
        name: &http.csrf_cookie,
        value: token,
        path: "/",
        max_age: Some(CSRF_COOKIE_AGE),
        http_only: false,
        secure: secure(http, meta),
        same_site: SameSite::Lax,
    }
    .append_to(out);
}

/// `sessionid`: HttpOnly, SameSite=Lax, Path=/; `max_age` ZERO deletes it.
pub fn set_session_cookie(
    out: &mut HeaderMap,
    http: &HttpSettings,
    meta: &RequestMeta,
    value: &str,
    max_age: Duration,
) {
    SetCookie {
        name: &http.session_cookie,
        value,
        path: "/",
        max_age: Some(max_age),
        http_only: true,
        secure: secure(http, meta),
        same_site: SameSite::Lax,
    }
    .append_to(out);
}
