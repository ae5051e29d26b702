//! The session endpoints (DESIGN §3.3): Django's conventions, for SPAs that log in with a
//! cookie, and the devices list. Each handler is a thin translation between HTTP and `Auth`.

use crate::body::Trim;
use crate::cookies::{self, Jar};
use crate::error::ApiError;
use crate::extract::identity::{AuthUser, Identity, MaybeUser};
use crate::extract::{csrf, request};
use crate::state::AppState;
use axum::Json;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use sekisho_core::Timestamp;
use sekisho_core::session::ANONYMOUS;
use serde_json::{Value, json};
use std::time::Duration;

fn with_cookies(body: Value, jar: Jar) -> Response {
    (jar.into_headers(), Json(body)).into_response()
}

fn jar<'a>(parts: &mut Parts, state: &'a AppState) -> Jar<'a> {
    Jar::new(&state.http, request::meta(parts, &state.http).secure)
}

pub async fn csrf_token(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, _) = req.into_parts();
    let binding = csrf::binding(&mut parts, &state).await?;
    let mut jar = jar(&mut parts, &state);
    let token = csrf::ensure_cookie(&parts, &state, &binding, &mut jar);
    Ok(with_cookies(json!({ "csrfToken": token }), jar))
}

pub async fn login(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let r = super::issued::session_login_request(&state, req).await?;
    let [username, password] = r
        .input
        .strings([("username", Trim::Yes), ("password", Trim::No)])?;
    let s = state
        .auth
        .login_session(&username, &password, r.device, r.previous.as_deref())
        .await?;
    tracing::info!(user_id = s.user.id, "session login");
    super::issued::session_answer(&state, r.secure, &s, serde_json::Map::new())
}

/// Clears the session cookie and hands out an anonymous CSRF token in its place.
fn end_session_cookies(jar: &mut Jar, state: &AppState) {
    jar.clear_session();
    jar.set_csrf(&state.auth.mint_csrf(ANONYMOUS));
}

pub async fn logout(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, _) = req.into_parts();
    let MaybeUser(identity) = MaybeUser::from_request_parts(&mut parts, &state).await?;
    let cookie = cookies::get(&parts.headers, &state.http.session_cookie).map(str::to_string);
    let mut jar = jar(&mut parts, &state);
    if let Some(c) = cookie {
        // A bearer-authenticated logout leaves a live session alone (the cookie is only
        // cleared when the session it names is really gone); otherwise the session ends.
        let clear = match identity {
            Some(Identity::Session { .. }) => {
                state.auth.logout_session(&c).await?;
                true
            }
            Some(Identity::Bearer { .. }) => {
                crate::extract::session::session_of(&mut parts, &state)
                    .await?
                    .is_none()
            }
            None => true,
        };
        if clear {
            end_session_cookies(&mut jar, &state);
        }
    }
    Ok(with_cookies(json!({}), jar))
}

fn rfc3339(t: Timestamp) -> String {
    let st = std::time::UNIX_EPOCH + Duration::from_millis(t.millis().max(0) as u64);
    humantime::format_rfc3339_millis(st).to_string()
}

pub async fn list_sessions(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Value>, ApiError> {
    let current = user.identity.session().map(|s| s.public_id.clone());
    let list: Vec<Value> = state
        .auth
        .list_sessions(&user)
        .await?
        .into_iter()
        .map(|s| {
            json!({
                "id": s.public_id,
                "created": rfc3339(s.created_at),
                "last_seen": rfc3339(s.last_seen),
                "expires": rfc3339(s.idle_expires_at.min(s.absolute_expires_at)),
                "user_agent": s.user_agent,
                "ip": s.ip,
                "current": current.as_deref() == Some(s.public_id.as_str()),
            })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

pub async fn delete_session(
    State(state): State<AppState>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
    req: Request,
) -> Result<Response, ApiError> {
    // An id that is not even UTF-8 names no session: JSON 404, not axum's plain-text 400.
    let Ok(Path(id)) = id else {
        return Err(ApiError::NotFound);
    };
    let (mut parts, _) = req.into_parts();
    let user = AuthUser::from_request_parts(&mut parts, &state).await?;
    let id = id.trim_end_matches('/');
    // Public ids are 128-bit hex: anything else names no session and never reaches storage.
    if !sekisho_core::random::is_hex128(id) || !state.auth.end_session(&user, id).await? {
        return Err(ApiError::NotFound);
    }
    let mut jar = jar(&mut parts, &state);
    if user.identity.session().is_some_and(|s| s.public_id == id) {
        end_session_cookies(&mut jar, &state);
    }
    Ok(with_cookies(json!({}), jar))
}

pub async fn logout_all(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, _) = req.into_parts();
    let user = AuthUser::from_request_parts(&mut parts, &state).await?;
    state
        .auth
        .end_all_logins(
            user.id,
            sekisho_core::account::EndReason::LogoutEverywhere,
            None,
        )
        .await?;
    tracing::info!(user_id = user.id, "logged out everywhere");
    let mut jar = jar(&mut parts, &state);
    if cookies::get(&parts.headers, &state.http.session_cookie).is_some() {
        end_session_cookies(&mut jar, &state);
    }
    Ok(with_cookies(json!({}), jar))
}
