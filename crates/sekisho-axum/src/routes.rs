//! The auth endpoints (DESIGN §3.1, §3.6). Every path answers with and without its trailing
//! slash, with no redirect (a redirected POST loses its body).

use crate::body::{Input, Trim};
use crate::cookies::{SameSite, SetCookie};
use crate::error::{ApiError, json_response};
use crate::{AppState, cookies, csrf, openapi, request, session_routes};
use axum::extract::{FromRequest, Request, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;

/// The handlers of one documented path. Registration walks [`openapi::PATHS`], so a route
/// cannot exist without its OpenAPI entry, nor an entry without its route.
fn endpoint(path: &str) -> MethodRouter<AppState> {
    match path {
        "/api/token/" => post(obtain),
        "/api/token/refresh/" => post(refresh),
        "/api/token/verify/" => post(verify),
        "/api/token/blacklist/" => post(blacklist),
        "/api/auth/csrf/" => get(session_routes::csrf_token),
        "/api/auth/login/" => post(session_routes::login),
        "/api/auth/logout/" => post(session_routes::logout),
        "/api/auth/me/" => get(session_routes::me).patch(session_routes::update_me),
        "/api/auth/password/" => post(session_routes::change_password),
        "/api/auth/sessions/" => get(session_routes::list_sessions),
        "/api/auth/sessions/{id}/" => delete(session_routes::delete_session),
        "/api/auth/logout-all/" => post(session_routes::logout_all),
        "/healthz" => get(healthz),
        "/readyz" => get(readyz),
        "/metrics" => get(metrics_text),
        "/api/openapi.json" => get(openapi_json),
        other => unreachable!("documented path {other} has no handler"),
    }
}

/// The sekisho endpoints, ready to merge into an application's router. Paths ending in `/`
/// also answer without it.
pub fn router<S>(state: AppState) -> Router<S> {
    let mut r = Router::new();
    for path in openapi::PATHS {
        r = r.route(path, endpoint(path));
        if path.len() > 1 && path.ends_with('/') {
            r = r.route(path.trim_end_matches('/'), endpoint(path));
        }
    }
    r.with_state(state)
}

/// JSON 404 for unknown paths (DRF's body).
pub async fn api_fallback() -> ApiError {
    ApiError::NotFound
}

/// The layers every sekisho-served response goes through: request ids, traces without secrets,
/// JSON bodies for 405s the router produces, and a JSON 500 if a handler ever panics.
pub fn service_layers(router: Router) -> Router {
    router
        .layer(crate::pipeline::PipelineLayer::new())
        .layer(CatchPanicLayer::custom(|_| {
            json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"detail": "A server error occurred."}),
            )
        }))
}

/// Where refresh tokens travel as a cookie: every token endpoint, and nothing else.
const REFRESH_COOKIE_PATH: &str = "/api/token/";

fn set_refresh_cookie(
    out: &mut HeaderMap,
    parts: &Parts,
    s: &AppState,
    name: &str,
    value: &str,
    exp: Option<i64>,
) {
    let meta = request::meta(parts, &s.http);
    let now = s.auth.now().secs();
    let max_age = exp
        .map(|e| Duration::from_secs((e - now).max(0) as u64))
        .unwrap_or(Duration::ZERO);
    SetCookie {
        name,
        value,
        path: REFRESH_COOKIE_PATH,
        max_age: Some(max_age),
        http_only: true,
        secure: csrf::secure(&s.http, &meta),
        same_site: SameSite::Strict,
    }
    .append_to(out);
}

/// The refresh token of a request: the JSON/form field, or — in cookie mode, when the body has
/// none — the cookie, which then needs the CSRF header like any cookie-borne credential.
async fn presented_refresh(
    parts: &Parts,
    s: &AppState,
    input: &Input,
) -> Result<(String, bool), ApiError> {
    if let Some(name) = &s.http.refresh_cookie
        && !input.0.contains_key("refresh")
        && let Some(token) = cookies::get(&parts.headers, name).filter(|t| !t.is_empty())
    {
        let meta = request::meta(parts, &s.http);
        let binding = match cookies::get(&parts.headers, &s.http.session_cookie) {
            Some(c) => s.auth.resolve_session(c).await?.map(|a| a.record.id_hash),
            None => None,
        }
        .unwrap_or_else(|| sekisho_core::csrf::ANONYMOUS.to_string());
        csrf::enforce(&parts.headers, &meta, s, &binding)?;
        return Ok((token.to_string(), true));
    }
    let [token] = input.strings([("refresh", Trim::Yes)])?;
    Ok((token, false))
}

async fn split_input(s: &AppState, req: Request) -> Result<(Parts, Input), ApiError> {
    let (parts, body) = req.into_parts();
    let input = Input::from_request(Request::from_parts(parts.clone(), body), s).await?;
    Ok((parts, input))
}

async fn obtain(State(s): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (parts, input) = split_input(&s, req).await?;
    let [username, password] = input.strings([("username", Trim::Yes), ("password", Trim::No)])?;
    let ip = request::meta(&parts, &s.http).client_ip;
    let pair = s.auth.obtain_pair(&username, &password, &ip).await?;
    Ok(match &s.http.refresh_cookie {
        Some(name) => {
            let mut headers = HeaderMap::new();
            set_refresh_cookie(
                &mut headers,
                &parts,
                &s,
                name,
                &pair.refresh,
                Some(pair.refresh_exp),
            );
            (headers, Json(json!({ "access": pair.access }))).into_response()
        }
        None => Json(json!({ "refresh": pair.refresh, "access": pair.access })).into_response(),
    })
}

async fn refresh(State(s): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (parts, input) = split_input(&s, req).await?;
    let (token, _) = presented_refresh(&parts, &s, &input).await?;
    let r = s.auth.refresh(&token).await?;
    Ok(match (&s.http.refresh_cookie, r.refresh) {
        (Some(name), Some(refresh)) => {
            let mut headers = HeaderMap::new();
            set_refresh_cookie(&mut headers, &parts, &s, name, &refresh, r.refresh_exp);
            (headers, Json(json!({ "access": r.access }))).into_response()
        }
        (None, Some(refresh)) => {
            Json(json!({ "access": r.access, "refresh": refresh })).into_response()
        }
        (_, None) => Json(json!({ "access": r.access })).into_response(),
    })
}

async fn verify(State(s): State<AppState>, input: Input) -> Result<Json<Value>, ApiError> {
    let [token] = input.strings([("token", Trim::Yes)])?;
    s.auth.verify(&token).await?;
    Ok(Json(json!({})))
}

async fn blacklist(State(s): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (parts, input) = split_input(&s, req).await?;
    let (token, _) = presented_refresh(&parts, &s, &input).await?;
    let result = s.auth.blacklist(&token).await;
    let mut headers = HeaderMap::new();
    if let Some(name) = &s.http.refresh_cookie {
        // Logging out clears the cookie even when the token had already been revoked.
        set_refresh_cookie(&mut headers, &parts, &s, name, "", None);
    }
    match result {
        Ok(()) => Ok((headers, Json(json!({}))).into_response()),
        Err(e) => {
            let mut res = ApiError::from(e).into_response();
            res.headers_mut().extend(headers);
            Ok(res)
        }
    }
}

/// The user in the shape a Django SPA expects (`id, username, email, first_name, last_name,
/// is_staff, is_superuser, groups, permissions`).
pub fn user_json(u: &sekisho_core::user::User) -> Value {
    serde_json::to_value(UserView(u)).unwrap_or(Value::Null)
}

/// The user serialised straight to the response (no intermediate JSON tree on the hot path).
pub struct UserView<'a>(pub &'a sekisho_core::user::User);

impl serde::Serialize for UserView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let u = self.0;
        let mut m = s.serialize_struct("User", 9)?;
        m.serialize_field("id", &u.id)?;
        m.serialize_field("username", &u.username)?;
        m.serialize_field("email", &u.email)?;
        m.serialize_field("first_name", &u.first_name)?;
        m.serialize_field("last_name", &u.last_name)?;
        m.serialize_field("is_staff", &u.is_staff)?;
        m.serialize_field("is_superuser", &u.is_superuser)?;
        m.serialize_field("groups", &u.groups)?;
        m.serialize_field("permissions", &u.permissions)?;
        m.end()
    }
}

impl IntoResponse for UserView<'_> {
    /// Serialised straight into a buffer sized for a typical user (axum's `Json` starts small and
    /// grows; this is the body of every `GET /api/auth/me/`).
    fn into_response(self) -> Response {
        let mut buf = Vec::with_capacity(256);
        match serde_json::to_writer(&mut buf, &self) {
            Ok(()) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                buf,
            )
                .into_response(),
            Err(e) => {
                ApiError::from(sekisho_core::AuthError::Internal(e.to_string())).into_response()
            }
        }
    }
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(s): State<AppState>) -> Response {
    match tokio::time::timeout(Duration::from_secs(3), s.auth.ready()).await {
        Ok(Ok(())) => Json(json!({ "status": "ok" })).into_response(),
        _ => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "unavailable", "detail": "storage is not reachable" }),
        ),
    }
}

async fn metrics_text(State(s): State<AppState>) -> Response {
    match &s.metrics {
        Some(render) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            render(),
        )
            .into_response(),
        None => ApiError::NotFound.into_response(),
    }
}

async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::DOCUMENT,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_documented_path_has_a_handler() {
        for p in crate::openapi::PATHS {
            let _ = super::endpoint(p);
        }
    }
}
