//! simplejwt's endpoints (DESIGN §3.1): obtain, refresh, verify, blacklist; with the optional
//! refresh-token cookie (§3.4). The answers are `sekisho-proto`'s types, the ones the Rust
//! client reads, so the two cannot drift apart.

use super::parts_and_input;
use crate::body::{Input, Trim};
use crate::cookies::{self, Jar};
use crate::error::ApiError;
use crate::extract::{csrf, request};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use sekisho_proto::{ObtainResponse, RefreshResponse};
use serde_json::{Value, json};

/// The refresh token of a request: the JSON/form field, or — in cookie mode, when the body has
/// none — the cookie, which then needs the CSRF header like any cookie-borne credential.
async fn presented_refresh(
    parts: &mut Parts,
    s: &AppState,
    input: &Input,
) -> Result<String, ApiError> {
    if let Some(name) = &s.http.refresh_cookie
        && !input.0.contains_key("refresh")
        && let Some(token) = cookies::get(&parts.headers, name).filter(|t| !t.is_empty())
    {
        let token = token.to_string();
        let binding = csrf::binding(parts, s).await?;
        csrf::enforce(parts, s, &binding)?;
        return Ok(token);
    }
    let [token] = input.strings([("refresh", Trim::Yes)])?;
    Ok(token)
}

pub async fn obtain(State(s): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, input) = parts_and_input(&s, req).await?;
    let [username, password] = input.strings([("username", Trim::Yes), ("password", Trim::No)])?;
    let meta = request::meta(&mut parts, &s.http);
    let pair = s
        .auth
        .obtain_pair(&username, &password, &meta.client_ip)
        .await?;
    if s.http.refresh_cookie.is_some() {
        let mut jar = Jar::new(&s.http, meta.secure);
        jar.set_refresh(&pair.refresh, pair.refresh_max_age);
        let body = ObtainResponse {
            refresh: None,
            access: pair.access,
        };
        return Ok((jar.into_headers(), Json(body)).into_response());
    }
    Ok(Json(ObtainResponse {
        refresh: Some(pair.refresh),
        access: pair.access,
    })
    .into_response())
}

pub async fn refresh(State(s): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, input) = parts_and_input(&s, req).await?;
    let token = presented_refresh(&mut parts, &s, &input).await?;
    let r = s.auth.refresh(&token).await?;
    let access_only = |access| RefreshResponse {
        access,
        refresh: None,
    };
    Ok(match (r.refresh, r.refresh_max_age) {
        (Some(refresh), Some(max_age)) if s.http.refresh_cookie.is_some() => {
            let mut jar = Jar::new(&s.http, request::meta(&mut parts, &s.http).secure);
            jar.set_refresh(&refresh, max_age);
            (jar.into_headers(), Json(access_only(r.access))).into_response()
        }
        (Some(refresh), _) => Json(RefreshResponse {
            access: r.access,
            refresh: Some(refresh),
        })
        .into_response(),
        (None, _) => Json(access_only(r.access)).into_response(),
    })
}

pub async fn verify(State(s): State<AppState>, input: Input) -> Result<Json<Value>, ApiError> {
    let [token] = input.strings([("token", Trim::Yes)])?;
    s.auth.verify(&token).await?;
    Ok(Json(json!({})))
}

pub async fn blacklist(State(s): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, input) = parts_and_input(&s, req).await?;
    let token = presented_refresh(&mut parts, &s, &input).await?;
    let result = s.auth.blacklist(&token).await;
    // Logging out clears the cookie even when the token had already been revoked.
    let mut jar = Jar::new(&s.http, request::meta(&mut parts, &s.http).secure);
    jar.clear_refresh();
    let headers = jar.into_headers();
    match result {
        Ok(()) => Ok((headers, Json(json!({}))).into_response()),
        Err(e) => {
            let mut res = ApiError::from(e).into_response();
            res.headers_mut().extend(headers);
            Ok(res)
        }
    }
}
