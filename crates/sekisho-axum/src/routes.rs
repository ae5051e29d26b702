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
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

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
        .layer(middleware::from_fn(json_method_not_allowed))
        .layer(middleware::from_fn(record_request))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(middleware::from_fn(request_id))
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE]))
        .layer(CatchPanicLayer::custom(|_| {
            json_response(StatusCode::INTERNAL_SERVER_ERROR, json!({"detail": "A server error occurred."}))
        }))
}

/// Gives every request an id (kept from `X-Request-Id` when the client or proxy sent a sane one)
/// and echoes it on the response, so a log line and a user's report can be matched.
async fn request_id(mut req: Request, next: Next) -> Response {
    let incoming = req
        .headers()
        .get("x-request-id")
        .filter(|v| {
            v.len() <= 64
                && v.as_bytes()
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        })
        .cloned();
    let id = incoming.unwrap_or_else(|| {
        HeaderValue::from_str(&sekisho_core::random::hex128()).expect("hex is a valid header value")
    });
    req.headers_mut().insert("x-request-id", id.clone());
    let mut res = next.run(req).await;
    res.headers_mut().insert("x-request-id", id);
    res
}

/// Request count and latency by method and status class (low cardinality on purpose: paths
/// and users never become labels).
async fn record_request(req: Request, next: Next) -> Response {
    let method = match *req.method() {
        axum::http::Method::GET => "GET",
        axum::http::Method::POST => "POST",
        axum::http::Method::PATCH => "PATCH",
        axum::http::Method::DELETE => "DELETE",
        axum::http::Method::PUT => "PUT",
        _ => "other",
    };
    let started = std::time::Instant::now();
    let res = next.run(req).await;
    let class = match res.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics::histogram!("sekisho_http_request_duration_seconds", "method" => method, "status" => class)
        .record(started.elapsed().as_secs_f64());
    res
}

async fn json_method_not_allowed(req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let res = next.run(req).await;
    if res.status() != StatusCode::METHOD_NOT_ALLOWED
        || res.headers().contains_key(header::CONTENT_TYPE)
    {
        return res;
    }
    let allow = res.headers().get(header::ALLOW).cloned();
    let mut out = ApiError::MethodNotAllowed(method).into_response();
    if let Some(allow) = allow {
        out.headers_mut().insert(header::ALLOW, allow);
    }
    out
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
