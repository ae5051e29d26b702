//! Forward-auth (DESIGN §3.6): `GET /api/auth/check/` for nginx `auth_request`, Traefik
//! `ForwardAuth` and Caddy `forward_auth`. The proxy asks before it forwards a request; the
//! answer is 200 with identity headers, or 401/403 (the only codes nginx accepts besides 2xx).
//!
//! The original method and URI come from `X-Forwarded-Method` / `X-Original-Method` and
//! `X-Original-URI` / `X-Forwarded-Uri`, believed only from `server.trusted_proxies`. Without
//! them (or from anyone else) the policy's default requirement applies to the check itself.
//! The caller is authenticated exactly as on the API (bearer first, then the session cookie),
//! with the CSRF check for cookie-authenticated unsafe original methods.

use crate::error::ApiError;
use crate::extract::identity::{self, Identity};
use crate::extract::request::{self, first_value};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sekisho_core::AuthError;
use sekisho_core::authz::policy::{CanonicalPath, Verdict};

/// What the proxy says the client asked for.
struct Original {
    method: Method,
    /// The raw request URI (path and query) as the client sent it.
    uri: Option<String>,
}

fn original(parts: &Parts, from_proxy: bool) -> Result<Original, ApiError> {
    if !from_proxy {
        return Ok(Original {
            method: parts.method.clone(),
            uri: None,
        });
    }
    let h = &parts.headers;
    let method = match first_value(h, "x-forwarded-method")
        .or_else(|| first_value(h, "x-original-method"))
    {
        None => parts.method.clone(),
        Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .ok()
            .filter(|m| {
                matches!(
                    m.as_str(),
                    "GET"
                        | "HEAD"
                        | "POST"
                        | "PUT"
                        | "PATCH"
                        | "DELETE"
                        | "OPTIONS"
                        | "TRACE"
                        | "CONNECT"
                )
            })
            .ok_or(ApiError::Auth(AuthError::PermissionDenied))?,
    };
    let uri = ["x-original-uri", "x-forwarded-uri"]
        .iter()
        .find_map(|n| h.get(*n))
        .map(|v| {
            v.to_str()
                .map(str::to_string)
                .map_err(|_| ApiError::Auth(AuthError::PermissionDenied))
        })
        .transpose()?;
    Ok(Original { method, uri })
}

pub async fn check(State(state): State<AppState>, req: Request) -> Response {
    match decide(&state, req).await {
        Ok(res) | Err(res) => no_store(res),
    }
}

async fn decide(state: &AppState, req: Request) -> Result<Response, Response> {
    let (mut parts, _body) = req.into_parts();
    let meta = request::meta(&mut parts, &state.http);
    let original = original(&parts, meta.from_proxy).map_err(IntoResponse::into_response)?;
    let path = match &original.uri {
        Some(uri) => Some(CanonicalPath::parse(uri).ok_or_else(|| {
            tracing::info!("forward-auth: ambiguous path refused");
            ApiError::Auth(AuthError::PermissionDenied).into_response()
        })?),
        None => None,
    };
    // Authenticate as the original request would be: the CSRF rule depends on its method.
    let check_method = std::mem::replace(&mut parts.method, original.method.clone());
    let identity = identity::resolve(&mut parts, state)
        .await
        .map_err(IntoResponse::into_response)?;
    parts.method = check_method;

    let policy = state.policy();
    let matched = match &path {
        Some(p) => policy.decide(original.method.as_str(), p),
        None => policy.decide_default(),
    };
    let user = identity.as_ref().map(Identity::user);
    let verdict = state
        .auth
        .evaluate(
            user,
            matched.require,
            original.method.as_str(),
            &matched.captures,
        )
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    tracing::debug!(
        method = %original.method,
        rule = matched.rule.unwrap_or("default"),
        ?verdict,
        "forward-auth"
    );
    if verdict == Verdict::Allow
        && let (Some(within), Some(id)) = (matched.mfa_within, identity.as_ref())
    {
        sekisho_core::mfa::require_recent_mfa(id.login(), within, state.auth.now())
            .map_err(|e| ApiError::from(e).into_response())?;
    }
    match verdict {
        Verdict::Allow => Ok(allowed(state, identity.as_ref())),
        Verdict::Forbidden => Err(ApiError::Auth(AuthError::PermissionDenied).into_response()),
        Verdict::Unauthenticated => Err(unauthenticated(
            state,
            &parts.headers,
            &original,
            wants_redirect(parts.uri.query()),
        )),
    }
}

/// 200 with the identity headers (none for an anonymous caller allowed by the policy).
fn allowed(state: &AppState, identity: Option<&Identity>) -> Response {
    let mut res = StatusCode::OK.into_response();
    if let Some(id) = identity {
        let u = id.user();
        let http = &state.http;
        let h = res.headers_mut();
        h.insert(http.forward_user_id.clone(), HeaderValue::from(u.id));
        for (name, value) in [
            (&http.forward_username, encode_header(&u.username)),
            (
                &http.forward_groups,
                u.groups
                    .iter()
                    .map(|g| encode_header(g))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name.clone(), v);
            }
        }
    }
    res
}

/// Header values are visible ASCII: UTF-8 names are percent-encoded, and so are `%` and `,`
/// (the group list's separator), so every value decodes back to the exact name.
fn encode_header(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_graphic() && b != b'%' && b != b',' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `?redirect=1`: the proxy passes a 302 on to the client (Traefik, Caddy, nginx's
/// `error_page` fallback). nginx's `auth_request` itself accepts only 2xx/401/403, so a plain
/// check never redirects.
fn wants_redirect(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|kv| kv == "redirect=1" || kv == "redirect=true")
    })
}

/// A page navigation goes to the login page when one is configured and the proxy asked for
/// redirects; API calls (fetch, XHR) and everything else get the 401 JSON.
fn unauthenticated(
    state: &AppState,
    headers: &HeaderMap,
    original: &Original,
    redirect: bool,
) -> Response {
    let http = &state.http;
    if redirect
        && let Some(login) = &http.login_url
        && is_navigation(headers, &original.method)
    {
        let next = original.uri.as_deref().unwrap_or("/");
        let sep = if login.contains('?') { '&' } else { '?' };
        let location = format!("{login}{sep}next={}", encode_query(next));
        if let Ok(v) = HeaderValue::from_str(&location) {
            return (StatusCode::FOUND, [(header::LOCATION, v)]).into_response();
        }
    }
    ApiError::NotAuthenticated {
        status: http.unauthenticated_status,
    }
    .into_response()
}

/// A browser loading a page: `Sec-Fetch-Mode: navigate`, or (older browsers) a GET that
/// accepts HTML and was not sent by script.
fn is_navigation(headers: &HeaderMap, method: &Method) -> bool {
    if let Some(mode) = headers.get("sec-fetch-mode") {
        return mode.as_bytes() == b"navigate";
    }
    *method == Method::GET
        && headers.get("x-requested-with").is_none()
        && headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
}

fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_headers_round_trip_any_name() {
        assert_eq!(encode_header("alice"), "alice");
        assert_eq!(encode_header("a,b%c"), "a%2Cb%25c");
        assert_eq!(encode_header("José Ng"), "Jos%C3%A9%20Ng");
    }

    #[test]
    fn navigations_are_told_apart_from_api_calls() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        assert!(is_navigation(
            &h(&[("sec-fetch-mode", "navigate")]),
            &Method::GET
        ));
        assert!(!is_navigation(
            &h(&[("sec-fetch-mode", "cors")]),
            &Method::GET
        ));
        assert!(is_navigation(
            &h(&[("accept", "text/html,*/*")]),
            &Method::GET
        ));
        assert!(!is_navigation(
            &h(&[
                ("accept", "text/html"),
                ("x-requested-with", "XMLHttpRequest")
            ]),
            &Method::GET
        ));
        assert!(!is_navigation(
            &h(&[("accept", "application/json")]),
            &Method::GET
        ));
        assert!(!is_navigation(
            &h(&[("accept", "text/html")]),
            &Method::POST
        ));
        assert_eq!(encode_query("/a b?x=1&y"), "/a%20b%3Fx%3D1%26y");
        assert!(wants_redirect(Some("redirect=1")));
        assert!(wants_redirect(Some("a=b&redirect=true")));
        assert!(!wants_redirect(Some("redirect=0")));
        assert!(!wants_redirect(None));
    }
}
