//! Hosting the SPA itself (`server.static_dir`): its files, history-mode fallback to
//! `index.html` for client-side routes, long-lived caching for hashed assets, and — the point —
//! a `csrftoken` cookie on every HTML page, so the app's very first POST already carries a
//! valid token (DESIGN §1.1).

use crate::cookies::Jar;
use crate::error::ApiError;
use crate::extract::{csrf, request};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::path::PathBuf;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

#[derive(Clone)]
pub struct Spa {
    pub dir: PathBuf,
}

/// Paths that are never the SPA: unknown ones answer JSON 404 instead of `index.html`.
fn is_api_path(path: &str) -> bool {
    path == "/api"
        || path.starts_with("/api/")
        || path.starts_with("/.well-known/")
        || matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// A file name with a content hash (`app.3f9a1c2e.js`, `index-BQ3x9_aZ.css`) or anything under
/// `/assets/` (Vite's output) never changes: cache it for a year.
fn is_immutable_asset(path: &str) -> bool {
    if path.starts_with("/assets/") {
        return true;
    }
    let name = path.rsplit('/').next().unwrap_or("");
    let stem = name.rsplit_once('.').map(|(s, _)| s).unwrap_or("");
    stem.rsplit(['.', '-']).next().is_some_and(|h| {
        h.len() >= 8 && h != stem && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

/// A path segment naming a hidden file (`.env`, `.git/`), also percent-encoded: never served.
fn names_a_dotfile(path: &str) -> bool {
    path.split('/').any(|seg| {
        let seg = seg.to_ascii_lowercase();
        seg.starts_with('.') || seg.starts_with("%2e")
    })
}

/// Whether the file a path names lies outside the directory once symlinks are resolved (a
/// link in the build output pointing at `/etc` or the data directory). Missing files are not
/// outside: they fall through to the 404 / `index.html` handling.
async fn leaves_the_directory(dir: &std::path::Path, path: &str) -> bool {
    let Ok(root) = tokio::fs::canonicalize(dir).await else {
        return true;
    };
    let rel = path.trim_start_matches('/');
    let decoded = percent_decode(rel);
    match tokio::fs::canonicalize(root.join(decoded)).await {
        Ok(target) => !target.starts_with(&root),
        Err(_) => false,
    }
}

/// `%XX` decoding as ServeDir applies it (invalid sequences are kept as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// The fallback handler: serves the SPA for non-API paths, JSON 404 for API paths.
pub async fn serve(State((state, spa)): State<(AppState, Spa)>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if is_api_path(&path) {
        return ApiError::NotFound.into_response();
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let mut res = ApiError::MethodNotAllowed(req.method().to_string()).into_response();
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    // Hidden files and links out of the directory are never served (a `.env` or `.git/` left
    // in the build output, a symlink to the data directory).
    if names_a_dotfile(&path) || leaves_the_directory(&spa.dir, &path).await {
        return ApiError::NotFound.into_response();
    }
    let (mut parts, _) = req.into_parts();
    let file_req = Request::from_parts(parts.clone(), Body::empty());
    let served = ServeDir::new(&spa.dir).oneshot(file_req).await;
    let mut fallback = false;
    let mut res = match served {
        // Only success and redirects/not-modified pass through; any error of the file system
        // (a name too long, a permission problem) is treated like a missing file, never a 500.
        Ok(r)
            if r.status().is_success()
                || r.status().is_redirection()
                || r.status() == StatusCode::RANGE_NOT_SATISFIABLE =>
        {
            r.map(Body::new)
        }
        _ => {
            // A client-side route (no file extension) gets index.html; a missing asset is 404.
            let last = path.rsplit('/').next().unwrap_or("");
            if last.contains('.') {
                return ApiError::NotFound.into_response();
            }
            let index_req = Request::from_parts(parts.clone(), Body::empty());
            fallback = true;
            match ServeFile::new(spa.dir.join("index.html"))
                .oneshot(index_req)
                .await
            {
                // 304: a reload of a client-side route revalidating its cached index.html.
                Ok(r) if r.status().is_success() || r.status() == StatusCode::NOT_MODIFIED => {
                    r.map(Body::new)
                }
                _ => return ApiError::NotFound.into_response(),
            }
        }
    };
    let not_modified = res.status() == StatusCode::NOT_MODIFIED;
    // A 304 carries no Content-Type: an HTML page is then known by what was asked for.
    let is_html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"))
        || (not_modified && (fallback || path.ends_with('/') || path.ends_with(".html")));
    let cache = if is_html || !res.status().is_success() {
        "no-cache"
    } else if is_immutable_asset(&path) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if is_html && let Some(csp) = &state.http.content_security_policy {
        res.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp.clone());
    }
    if is_html && (res.status().is_success() || not_modified) {
        let Ok(binding) = csrf::binding(&mut parts, &state).await else {
            // Storage down: still serve the page; the cookie comes with the next request.
            return res;
        };
        let mut jar = Jar::new(&state.http, request::meta(&mut parts, &state.http).secure);
        csrf::ensure_cookie(&parts, &state, &binding, &mut jar);
        res.headers_mut().extend(jar.into_headers());
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_assets_are_recognised() {
        assert!(is_immutable_asset("/assets/index-BQ3x9_aZ.js"));
        assert!(is_immutable_asset("/app.3f9a1c2e.js"));
        assert!(!is_immutable_asset("/favicon.ico"));
        assert!(!is_immutable_asset("/index.html"));
        assert!(!is_immutable_asset("/robots.txt"));
    }

    #[test]
    fn api_paths_never_fall_back() {
        assert!(is_api_path("/api/nope"));
        assert!(is_api_path("/healthz"));
        assert!(!is_api_path("/apiary"));
        assert!(!is_api_path("/orders/42"));
    }
}
