//! axum integration for sekisho: the auth endpoints as a router, the identity extractor an
//! application uses on its own routes, and the JSON error contract (DRF/simplejwt shapes) in
//! exactly one place ([`error`]).
//!
//! ```no_run
//! # async fn demo(state: sekisho_axum::AppState) {
//! use axum::{Router, routing::get};
//! use sekisho_axum::AuthUser;
//!
//! async fn orders(user: AuthUser) -> String {
//!     format!("orders of {}", user.username)
//! }
//!
//! let app: Router = Router::new()
//!     .route("/api/orders/", get(orders))
//!     .merge(sekisho_axum::router(state.clone()))
//!     .with_state(state);
//! # }
//! ```

pub mod body;
pub mod cookies;
pub mod csrf;
pub mod error;
pub mod identity;
pub mod openapi;
pub mod pipeline;
pub mod request;
mod routes;
mod session_routes;
pub mod spa;

pub use error::ApiError;
pub use identity::{AuthUser, Identity, MaybeUser};
pub use routes::{api_fallback, router, service_layers};

use sekisho_core::AuthService;
use std::sync::Arc;

/// Shared state of the auth endpoints and extractors. An application keeps it in its own state
/// (implement `FromRef`) or uses it as the state directly.
#[derive(Clone)]
pub struct AppState {
    pub auth: Arc<AuthService>,
    pub http: Arc<HttpSettings>,
    /// Renders the Prometheus exposition for `GET /metrics`; `None` (e.g. when the embedding
    /// application exports metrics itself) makes that path a 404.
    pub metrics: Option<MetricsRender>,
}

/// A function rendering the current metrics in the Prometheus text format.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// HTTP-only settings taken from config once.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub max_body_size: usize,
    /// 401 (default) or 403 for unauthenticated requests to protected routes.
    pub unauthenticated_status: u16,
    pub session_cookie: String,
    pub session_cookie_age: std::time::Duration,
    pub secure_cookies: SecureCookies,
    pub csrf_cookie: String,
    pub csrf_header: axum::http::HeaderName,
    pub trusted_origins: Vec<String>,
    pub trusted_proxies: Vec<String>,
    /// `Some(name)` when the refresh token also travels in an HttpOnly cookie (DESIGN §3.4).
    pub refresh_cookie: Option<String>,
}

impl HttpSettings {
    pub fn from_config(c: &sekisho_core::Config) -> Self {
        HttpSettings {
            max_body_size: c.server.max_body_size as usize,
            unauthenticated_status: c.auth.unauthenticated_status as u16,
            session_cookie: c.sessions.cookie_name.clone(),
            session_cookie_age: c.sessions.cookie_age.0,
            secure_cookies: c.sessions.secure_cookies,
            csrf_cookie: c.csrf.cookie_name.clone(),
            csrf_header: axum::http::HeaderName::from_bytes(
                c.csrf.header_name.to_ascii_lowercase().as_bytes(),
            )
            .unwrap_or(axum::http::HeaderName::from_static("x-csrftoken")),
            trusted_origins: c.csrf.trusted_origins.clone(),
            trusted_proxies: c.server.trusted_proxies.clone(),
            refresh_cookie: c
                .jwt
                .refresh_cookie
                .then(|| c.jwt.refresh_cookie_name.clone()),
        }
    }
}

use sekisho_core::config::SecureCookies;
