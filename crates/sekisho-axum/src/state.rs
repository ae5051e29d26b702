//! What every handler and extractor shares: the [`Auth`] facade and the HTTP settings taken
//! from config once. An application keeps an [`AppState`] in its own state (implement
//! `FromRef`) or uses it as the state directly.

use axum::http::HeaderName;
use sekisho_core::authz::policy::{Policy, Requirement};
use sekisho_core::config::SecureCookies;
use sekisho_core::{Auth, Config};
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub(crate) auth: Arc<Auth>,
    pub(crate) http: Arc<HttpSettings>,
    /// Renders the Prometheus exposition for `GET /metrics`; `None` (e.g. when the embedding
    /// application exports metrics itself) makes that path a 404.
    pub(crate) metrics: Option<MetricsRender>,
    /// The forward-auth policy (`GET /api/auth/check/`).
    pub(crate) policy: Arc<Policy>,
}

impl AppState {
    pub fn new(auth: Arc<Auth>, config: &Config) -> Self {
        AppState {
            auth,
            http: Arc::new(HttpSettings::from_config(config)),
            metrics: None,
            // The inline rules were validated with the config; should they not compile, the
            // gate fails closed (superusers only) rather than open.
            policy: Arc::new(Policy::compile(&config.policy, None).unwrap_or(Policy {
                rules: Vec::new(),
                default: Requirement::Superuser,
            })),
        }
    }

    /// Replaces the policy (the server compiles it with `policy.file` included).
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = Arc::new(policy);
        self
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Serves `GET /metrics` with `render`.
    pub fn with_metrics(mut self, render: MetricsRender) -> Self {
        self.metrics = Some(render);
        self
    }

    pub fn auth(&self) -> &Arc<Auth> {
        &self.auth
    }

    pub fn http(&self) -> &HttpSettings {
        &self.http
    }
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
    pub secure_cookies: SecureCookies,
    pub csrf_cookie: String,
    pub csrf_header: HeaderName,
    pub trusted_origins: Vec<String>,
    pub trusted_proxies: Vec<String>,
    /// `Some(name)` when the refresh token also travels in an HttpOnly cookie (DESIGN §3.4).
    pub refresh_cookie: Option<String>,
    /// `server.content_security_policy`, for the SPA's HTML pages.
    pub content_security_policy: Option<axum::http::HeaderValue>,
    /// Forward-auth: the identity headers of an allowed request, and where page navigations
    /// without credentials are sent.
    pub forward_user_id: HeaderName,
    pub forward_username: HeaderName,
    pub forward_groups: HeaderName,
    pub login_url: Option<String>,
}

impl HttpSettings {
    pub fn from_config(c: &Config) -> Self {
        HttpSettings {
            max_body_size: c.server.max_body_size as usize,
            unauthenticated_status: c.auth.unauthenticated_status as u16,
            session_cookie: c.sessions.cookie_name.clone(),
            secure_cookies: c.sessions.secure_cookies,
            csrf_cookie: c.csrf.cookie_name.clone(),
            csrf_header: HeaderName::from_bytes(c.csrf.header_name.to_ascii_lowercase().as_bytes())
                .unwrap_or(HeaderName::from_static("x-csrftoken")),
            trusted_origins: c.csrf.trusted_origins.clone(),
            trusted_proxies: c.server.trusted_proxies.clone(),
            refresh_cookie: c
                .jwt
                .refresh_cookie
                .then(|| c.jwt.refresh_cookie_name.clone()),
            // Validated with the config: one line of printable ASCII.
            content_security_policy: c
                .server
                .content_security_policy
                .as_deref()
                .and_then(|v| axum::http::HeaderValue::from_str(v).ok()),
            // Validated with the config: letters, digits, '-' and '_'.
            forward_user_id: header_name(&c.forward_auth.user_id_header, "x-auth-user-id"),
            forward_username: header_name(&c.forward_auth.username_header, "x-auth-username"),
            forward_groups: header_name(&c.forward_auth.groups_header, "x-auth-groups"),
            login_url: c.forward_auth.login_url.clone(),
        }
    }
}

fn header_name(name: &str, fallback: &'static str) -> HeaderName {
    HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
        .unwrap_or(HeaderName::from_static(fallback))
}
