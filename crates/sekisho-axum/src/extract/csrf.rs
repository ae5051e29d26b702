//! CSRF enforcement (DESIGN §3.3).
//!
//! Enforced on unsafe methods of cookie-authenticated requests, on session login and on
//! cookie-borne refresh; never on bearer requests (a browser never attaches an `Authorization`
//! header on its own). The `csrftoken` cookie is (re)issued whenever it is missing or does not
//! belong to the current session — on every HTML page, `GET /api/auth/csrf/` and
//! `GET /api/auth/me/` — so an SPA's first POST, and its first POST after a session expired,
//! carry a valid token.

use super::request;
use super::session::session_of;
use crate::cookies::{self, Jar};
use crate::error::ApiError;
use crate::state::{AppState, HttpSettings};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use sekisho_core::session::ANONYMOUS;

pub fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// What the request's CSRF token must be bound to: its live session, or anonymous. The one
/// place that answers this (the session lookup is shared with identity resolution).
pub async fn binding(parts: &mut Parts, state: &AppState) -> Result<String, ApiError> {
    Ok(match session_of(parts, state).await? {
        Some(active) => active.csrf_binding().to_string(),
        None => ANONYMOUS.to_string(),
    })
}

/// Checks `Origin` (when sent), then the cookie/header pair bound to `binding`.
pub fn enforce(parts: &mut Parts, state: &AppState, binding: &str) -> Result<(), ApiError> {
    let http = &state.http;
    if let Some(origin) = parts.headers.get(header::ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
        let meta = request::meta(parts, http);
        sekisho_core::session::csrf::check_origin(
            &origin,
            &meta.own_origin,
            &http.trusted_origins,
        )?;
    }
    let (cookie, header) = presented(&parts.headers, http);
    Ok(state.auth.check_csrf(cookie, header, binding)?)
}

/// The CSRF cookie and header a request presents (either may be missing; a header that is not
/// visible ASCII counts as missing).
pub(crate) fn presented<'h>(
    headers: &'h HeaderMap,
    http: &HttpSettings,
) -> (Option<&'h str>, Option<&'h str>) {
    let cookie = cookies::get(headers, &http.csrf_cookie);
    let header = headers.get(&http.csrf_header).and_then(|v| v.to_str().ok());
    (cookie, header)
}

/// Adds a `csrftoken` cookie to `jar` when the request has none valid for `binding`; returns
/// the token the client should use.
pub fn ensure_cookie(parts: &Parts, state: &AppState, binding: &str, jar: &mut Jar) -> String {
    if let Some(existing) = cookies::get(&parts.headers, &state.http.csrf_cookie)
        && state.auth.csrf_token_valid(existing, binding)
    {
        return existing.to_string();
    }
    let fresh = state.auth.mint_csrf(binding);
    jar.set_csrf(&fresh);
    fresh
}
