//! The session endpoints (DESIGN §3.3): Django's conventions, for SPAs that log in with a
//! cookie. Each handler is a thin translation between HTTP and `AuthService`.

use crate::body::{Input, Trim};
use crate::error::ApiError;
use crate::identity::{AuthUser, Identity, MaybeUser};
use crate::routes::user_json;
use crate::{AppState, cookies, csrf, request};
use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use sekisho_core::AuthError;
use sekisho_core::csrf::ANONYMOUS;
use sekisho_core::service::PasswordChangeError;
use sekisho_core::session::Device;
use sekisho_core::user::ProfileUpdate;
use serde_json::{Map, Value, json};
use std::time::Duration;

fn with_headers(body: Value, headers: HeaderMap) -> Response {
    (headers, Json(body)).into_response()
}

/// The CSRF binding for a request: its live session's, or anonymous.
async fn binding_of(parts: &Parts, state: &AppState) -> Result<String, ApiError> {
    let cookie = cookies::get(&parts.headers, &state.http.session_cookie);
    Ok(match cookie {
        Some(c) => state
            .auth
            .resolve_session(c)
            .await?
            .map(|a| a.record.id_hash)
            .unwrap_or_else(|| ANONYMOUS.into()),
        None => ANONYMOUS.into(),
    })
}

/// Adds a `csrftoken` cookie to `out` when the request has none valid for `binding`; returns
/// the token the client should use.
pub(crate) fn ensure_csrf_cookie(
    parts: &Parts,
    state: &AppState,
    binding: &str,
    out: &mut HeaderMap,
) -> String {
    let (token, fresh) = csrf::token_for(&parts.headers, state, binding);
    if fresh.is_some() {
        let meta = request::meta(parts, &state.http);
        csrf::set_csrf_cookie(out, &state.http, &meta, &token);
    }
    token
}

pub async fn csrf_token(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (parts, _) = req.into_parts();
    let binding = binding_of(&parts, &state).await?;
    let mut headers = HeaderMap::new();
    let token = ensure_csrf_cookie(&parts, &state, &binding, &mut headers);
    Ok(with_headers(json!({ "csrfToken": token }), headers))
}

pub async fn login(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let meta = request::meta(&parts, &state.http);
    let previous = cookies::get(&parts.headers, &state.http.session_cookie).map(str::to_string);
    // Login is CSRF-protected too (login CSRF would sign the victim into the attacker's account).
    let binding = binding_of(&parts, &state).await?;
    csrf::enforce(&parts.headers, &meta, &state, &binding)?;
    let input = Input::from_request(Request::from_parts(parts, body), &state).await?;
    let [username, password] = input.strings([("username", Trim::Yes), ("password", Trim::No)])?;
    let device = Device {
        user_agent: meta.user_agent.clone(),
        ip: meta.client_ip.clone(),
    };
    let s = state
        .auth
        .login_session(&username, &password, device, previous.as_deref())
        .await?;
    let mut headers = HeaderMap::new();
    let age = state.http.session_cookie_age.min(Duration::from_millis(
        (s.record.absolute_expires_at.millis() - s.record.created_at.millis()).max(0) as u64,
    ));
    csrf::set_session_cookie(&mut headers, &state.http, &meta, &s.cookie, age);
    // The pre-login token is bound to "anonymous"; the session gets its own.
    csrf::set_csrf_cookie(
        &mut headers,
        &state.http,
        &meta,
        &state.auth.csrf.mint(&s.record.id_hash),
    );
    tracing::info!(user_id = s.user.id, "session login");
    Ok(with_headers(json!({ "user": user_json(&s.user) }), headers))
}

fn clear_session(parts: &Parts, state: &AppState, headers: &mut HeaderMap) {
    let meta = request::meta(parts, &state.http);
    csrf::set_session_cookie(headers, &state.http, &meta, "", Duration::ZERO);
    csrf::set_csrf_cookie(
        headers,
        &state.http,
        &meta,
        &state.auth.csrf.mint(ANONYMOUS),
    );
}

pub async fn logout(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, _) = req.into_parts();
    let MaybeUser(identity) = MaybeUser::from_request_parts(&mut parts, &state).await?;
    let cookie = cookies::get(&parts.headers, &state.http.session_cookie).map(str::to_string);
    let mut headers = HeaderMap::new();
    if let Some(c) = cookie {
        // A bearer-authenticated logout leaves a live session alone (the cookie is only
        // cleared when the session it names is really gone); otherwise the session ends.
        let clear = match identity {
            Some(Identity::Session { .. }) => {
                state.auth.logout_session(&c).await?;
                true
            }
            Some(Identity::Bearer { .. }) => state.auth.resolve_session(&c).await?.is_none(),
            None => true,
        };
        if clear {
            clear_session(&parts, &state, &mut headers);
        }
    }
    Ok(with_headers(json!({}), headers))
}

pub async fn me(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, _) = req.into_parts();
    let MaybeUser(identity) = MaybeUser::from_request_parts(&mut parts, &state).await?;
    let mut headers = HeaderMap::new();
    let binding = match &identity {
        Some(Identity::Session { session, .. }) => Some(session.id_hash.clone()),
        Some(Identity::Bearer { .. }) => None,
        None => Some(ANONYMOUS.to_string()),
    };
    if let Some(b) = binding {
        ensure_csrf_cookie(&parts, &state, &b, &mut headers);
    }
    match identity {
        Some(id) => Ok((headers, crate::routes::UserView(id.user())).into_response()),
        None => {
            let mut res = ApiError::NotAuthenticated {
                status: state.http.unauthenticated_status,
            }
            .into_response();
            res.headers_mut().extend(headers);
            Ok(res)
        }
    }
}

/// A profile field: optional; blank allowed (Django's `blank=True`); null or non-text refused.
fn profile_field(input: &Input, name: &str, errors: &mut Map<String, Value>) -> Option<String> {
    match input.0.get(name) {
        None => None,
        Some(Value::String(s)) => Some(s.trim().to_string()),
        Some(Value::Null) => {
            errors.insert(name.into(), json!(["This field may not be null."]));
            None
        }
        Some(_) => {
            errors.insert(name.into(), json!(["Not a valid string."]));
            None
        }
    }
}

pub async fn update_me(
    State(state): State<AppState>,
    user: AuthUser,
    input: Input,
) -> Result<Json<Value>, ApiError> {
    let mut errors = Map::new();
    let update = ProfileUpdate {
        email: profile_field(&input, "email", &mut errors),
        first_name: profile_field(&input, "first_name", &mut errors),
        last_name: profile_field(&input, "last_name", &mut errors),
    };
    if !errors.is_empty() {
        return Err(ApiError::Fields(errors));
    }
    match state.auth.update_profile(user.id, &update).await? {
        Ok(u) => Ok(Json(user_json(&u))),
        Err((field, msg)) => Err(ApiError::field(field, &msg)),
    }
}

pub async fn change_password(
    State(state): State<AppState>,
    user: AuthUser,
    input: Input,
) -> Result<Json<Value>, ApiError> {
    let [old, new] = input.strings([("old_password", Trim::No), ("new_password", Trim::No)])?;
    let keep = user.identity.session().map(|s| s.id_hash.clone());
    match state
        .auth
        .change_password(&user, &old, &new, keep.as_deref())
        .await
    {
        Ok(()) => {}
        Err(PasswordChangeError::WrongOldPassword) => {
            return Err(ApiError::field(
                "old_password",
                &PasswordChangeError::WrongOldPassword.to_string(),
            ));
        }
        Err(PasswordChangeError::Weak(msg)) => return Err(ApiError::field("new_password", &msg)),
        Err(PasswordChangeError::Auth(e)) => return Err(e.into()),
    }
    tracing::info!(
        user_id = user.id,
        "password changed; other sessions and all refresh families revoked"
    );
    Ok(Json(match user.identity {
        // A bearer caller's refresh family was just revoked with the others: hand it a new one
        // so the caller stays logged in.
        Identity::Bearer { .. } => {
            let pair = state.auth.issue_pair(&user.user).await?;
            json!({ "refresh": pair.refresh, "access": pair.access })
        }
        Identity::Session { .. } => json!({}),
    }))
}

fn rfc3339(t: sekisho_core::Timestamp) -> String {
    let st = std::time::UNIX_EPOCH + Duration::from_millis(t.millis().max(0) as u64);
    humantime::format_rfc3339_millis(st).to_string()
}

pub async fn list_sessions(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Value>, ApiError> {
    let current = user.identity.session().map(|s| s.public_id.clone());
    let now = state.auth.now();
    let list: Vec<Value> = state
        .auth
        .sessions
        .list_sessions(user.id)
        .await
        .map_err(AuthError::from)?
        .into_iter()
        .filter(|s| s.is_live(now))
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
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (mut parts, _) = req.into_parts();
    let user = AuthUser::from_request_parts(&mut parts, &state).await?;
    let id = id.trim_end_matches('/');
    if !state
        .auth
        .sessions
        .delete_session_by_public_id(user.id, id)
        .await
        .map_err(AuthError::from)?
    {
        return Err(ApiError::NotFound);
    }
    let mut headers = HeaderMap::new();
    if user.identity.session().is_some_and(|s| s.public_id == id) {
        clear_session(&parts, &state, &mut headers);
    }
    Ok(with_headers(json!({}), headers))
}

pub async fn logout_all(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, _) = req.into_parts();
    let user = AuthUser::from_request_parts(&mut parts, &state).await?;
    state.auth.logout_everywhere(user.id).await?;
    tracing::info!(user_id = user.id, "logged out everywhere");
    let mut headers = HeaderMap::new();
    if cookies::get(&parts.headers, &state.http.session_cookie).is_some() {
        clear_session(&parts, &state, &mut headers);
    }
    Ok(with_headers(json!({}), headers))
}
