//! Operations endpoints: liveness, readiness (storage reachable), Prometheus metrics, the
//! OpenAPI document, and the public signing keys (JWKS).

use crate::error::{ApiError, json_response};
use crate::openapi;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::time::Duration;

/// How long `/readyz` waits for the stores before answering 503.
const READY_DEADLINE: Duration = Duration::from_secs(3);

pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(s): State<AppState>) -> Response {
    match tokio::time::timeout(READY_DEADLINE, s.auth.ready()).await {
        Ok(Ok(())) => Json(json!({ "status": "ok" })).into_response(),
        _ => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "unavailable", "detail": "storage is not reachable" }),
        ),
    }
}

pub async fn metrics_text(State(s): State<AppState>) -> Response {
    match &s.metrics {
        Some(render) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            render(),
        )
            .into_response(),
        None => ApiError::NotFound.into_response(),
    }
}

pub async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::DOCUMENT,
    )
        .into_response()
}

/// `GET /.well-known/jwks.json`: the public keys, cacheable for half the publish-ahead time.
pub async fn jwks(State(s): State<AppState>) -> Response {
    let cache = format!("public, max-age={}", s.auth.jwks_max_age().as_secs());
    (
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (header::CACHE_CONTROL, cache),
        ],
        s.auth.jwks().to_string(),
    )
        .into_response()
}
