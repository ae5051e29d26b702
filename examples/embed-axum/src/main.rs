//! An axum application that embeds sekisho: its own API routes get the same identity (session
//! cookie with CSRF, or bearer token) and the same permission rules as sekisho's endpoints.
//!
//! Run: `cargo run -p embed-axum` then, e.g.
//! `curl -s localhost:3000/api/token/ -H 'content-type: application/json' \
//!    -d '{"username":"demo","password":"demo-password"}'`

use anyhow::Result;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use sekisho_axum::{AppState, AuthUser, HttpSettings};
use sekisho_core::clock::SystemClock;
use sekisho_core::csrf::CsrfKey;
use sekisho_core::password::Passwords;
use sekisho_core::service::TokenSettings;
use sekisho_core::session::SessionSettings;
use sekisho_core::token::TokenPolicy;
use sekisho_core::user::NewUser;
use sekisho_core::{AuthService, Config};
use sekisho_store::sqlite::SqliteStore;
use serde_json::{Value, json};
use std::sync::Arc;

/// Any signed-in user.
async fn orders(user: AuthUser) -> Json<Value> {
    Json(json!({ "owner": user.username, "orders": [{ "id": 1, "total": "12.50" }] }))
}

/// Only users holding the Django-style permission `shop.view_report` (or superusers).
async fn report(user: AuthUser) -> Result<Json<Value>, sekisho_axum::ApiError> {
    user.require_perm("shop.view_report")?;
    Ok(Json(json!({ "revenue": "1234.00" })))
}

async fn hello(State(_): State<AppState>) -> &'static str {
    "public"
}

pub async fn build(config: &Config, key: &[u8]) -> Result<(Router, Arc<AuthService>)> {
    let store =
        Arc::new(SqliteStore::connect(&config.database.url, 4, config.database.timeout.0).await?);
    store.migrate().await?;
    let auth = Arc::new(AuthService {
        users: store.clone(),
        families: store.clone(),
        sessions: store,
        tokens: TokenPolicy::new(&config.jwt, key)?,
        csrf: CsrfKey::derive(key),
        passwords: Passwords::new(&config.passwords),
        clock: Arc::new(SystemClock),
        settings: TokenSettings::from(&config.jwt),
        session_settings: SessionSettings::from(&config.sessions),
    });
    let state = AppState {
        auth: auth.clone(),
        http: Arc::new(HttpSettings::from_config(config)),
    };
    let app = Router::new()
        .route("/api/orders/", get(orders))
        .route("/api/reports/", get(report))
        .route("/", get(hello))
        .merge(sekisho_axum::router(state.clone()))
        .fallback(sekisho_axum::api_fallback)
        .with_state(state);
    Ok((sekisho_axum::service_layers(app), auth))
}

#[tokio::main]
async fn main() -> Result<()> {
    let config = Config::load(
        "[database]\nurl = \"sqlite://./embed-data/app.db\"\n",
        std::env::vars(),
    )?;
    // A real deployment loads its key from a file or secret store; see the README.
    let key = std::env::var("APP_SIGNING_KEY")
        .unwrap_or_else(|_| "example-only-signing-key-change-me-0123456789".into());
    let (app, auth) = build(&config, key.as_bytes()).await?;
    if auth.users.user_by_username("demo").await?.is_none() {
        let new = NewUser {
            username: "demo".into(),
            ..Default::default()
        };
        auth.create_user(&new, "demo-password").await?;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("example app on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    async fn call(app: &Router, path: &str, bearer: Option<&str>) -> (StatusCode, Value) {
        let mut req = Request::get(path);
        if let Some(t) = bearer {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let res = app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn the_apps_own_routes_use_sekisho_identity_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let toml = format!(
            "[database]\nurl = \"sqlite://{}/app.db\"\n[passwords]\nargon2_memory_kib = 64\nargon2_iterations = 1\n",
            dir.path().display()
        );
        let config = Config::load(&toml, Vec::new()).unwrap();
        let (app, auth) = build(&config, b"test-signing-key-test-signing-key-0123")
            .await
            .unwrap();
        let user = auth
            .create_user(
                &NewUser {
                    username: "ann".into(),
                    ..Default::default()
                },
                "ann-password",
            )
            .await
            .unwrap();
        let pair = auth.issue_pair(&user).await.unwrap();

        assert_eq!(
            call(&app, "/api/orders/", None).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (status, body) = call(&app, "/api/orders/", Some(&pair.access)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["owner"], "ann");
        let (status, body) = call(&app, "/api/reports/", Some(&pair.access)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            body["detail"],
            "You do not have permission to perform this action."
        );
        assert_eq!(
            call(&app, "/api/orders/", Some("garbage")).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (status, _) = call(&app, "/api/auth/me/", Some(&pair.access)).await;
        assert_eq!(status, StatusCode::OK);
    }
}
