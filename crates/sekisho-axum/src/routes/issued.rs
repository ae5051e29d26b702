//! What every way of logging in shares: the CSRF-checked request of a session login (its
//! body, the device, the session cookie it carried, to be replaced), and the two answers a
//! completed login gives — a session (`sessionid`, a `csrftoken` bound to it, `{"user"}`) or a
//! token pair (as `POST /api/token/` answers it, the refresh token in its cookie in
//! refresh-cookie mode). One place each, so a password, a code and a passkey log in alike.

use crate::body::Input;
use crate::cookies::{self, Jar};
use crate::error::ApiError;
use crate::extract::{csrf, request};
use crate::routes::UserView;
use crate::state::AppState;
use axum::Json;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use sekisho_core::family::TokenPair;
use sekisho_core::session::{Device, NewSession};
use serde_json::{Map, Value};

/// A session login's request, CSRF-checked (login CSRF would sign the victim into the
/// attacker's account).
pub(super) struct SessionLoginRequest {
    pub input: Input,
    pub device: Device,
    /// The session cookie the request carried: deleted, never adopted (fixation-safe).
    pub previous: Option<String>,
    pub secure: bool,
}

pub(super) async fn session_login_request(
    state: &AppState,
    req: Request,
) -> Result<SessionLoginRequest, ApiError> {
    let (mut parts, body) = req.into_parts();
    let meta = request::meta(&mut parts, &state.http);
    let previous = cookies::get(&parts.headers, &state.http.session_cookie).map(str::to_string);
    let binding = csrf::binding(&mut parts, state).await?;
    csrf::enforce(&mut parts, state, &binding)?;
    let input = Input::from_request(Request::from_parts(parts, body), state).await?;
    Ok(SessionLoginRequest {
        input,
        device: Device {
            user_agent: meta.user_agent.clone(),
            ip: meta.client_ip.clone(),
        },
        previous,
        secure: meta.secure,
    })
}

/// Sets a new session's cookies on `jar`: the session id, and a CSRF token bound to it (the
/// one from before the login was bound to "anonymous" or to the old session).
pub(super) fn set_session_cookies(jar: &mut Jar, s: &NewSession) {
    jar.set_session(&s.cookie, s.cookie_max_age);
    jar.set_csrf(&s.csrf_token);
}

/// A completed session login: the cookies and `{"user"}` plus `extra`.
pub(super) fn session_answer(
    state: &AppState,
    secure: bool,
    s: &NewSession,
    mut extra: Map<String, Value>,
) -> Result<Response, ApiError> {
    let mut jar = Jar::new(&state.http, secure);
    set_session_cookies(&mut jar, s);
    let user = serde_json::to_value(UserView(&s.user))
        .map_err(|e| ApiError::from(sekisho_core::AuthError::Internal(e.to_string())))?;
    extra.insert("user".into(), user);
    Ok((jar.into_headers(), Json(Value::Object(extra))).into_response())
}

/// Adds a pair to `body` as `POST /api/token/` answers it: `refresh` and `access`, or in
/// refresh-cookie mode the refresh token in its cookie on `jar` and only `access`.
pub(super) fn add_pair(
    state: &AppState,
    jar: &mut Jar,
    pair: TokenPair,
    body: &mut Map<String, Value>,
) {
    if state.http.refresh_cookie.is_some() {
        jar.set_refresh(&pair.refresh, pair.refresh_max_age);
    } else {
        body.insert("refresh".into(), Value::String(pair.refresh));
    }
    body.insert("access".into(), Value::String(pair.access));
}

/// A completed token login: the pair (see [`add_pair`]) plus `extra`.
pub(super) fn pair_answer(
    state: &AppState,
    secure: bool,
    pair: TokenPair,
    mut extra: Map<String, Value>,
) -> Response {
    let mut jar = Jar::new(&state.http, secure);
    add_pair(state, &mut jar, pair, &mut extra);
    (jar.into_headers(), Json(Value::Object(extra))).into_response()
}
