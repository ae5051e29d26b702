//! axum integration for sekisho: the auth endpoints as a router, the identity extractors an
//! application uses on its own routes, SPA hosting, and the JSON error contract (DRF/simplejwt
//! shapes and wording) in exactly one place ([`error`]).
//!
//! Layout: [`state`] (what handlers share) → [`extract`] (request details, identity, CSRF
//! binding; each computed once per request) → [`routes`] (one file per endpoint group). All
//! cookies are in [`cookies`]; [`body`] parses JSON and form bodies; [`pipeline`] is the layer
//! every response passes.
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
pub mod error;
pub mod extract;
#[doc(hidden)]
pub mod fuzzing;
pub mod openapi;
pub mod pipeline;
pub mod routes;
pub mod spa;
pub mod state;

pub use error::ApiError;
pub use extract::{
    AuthUser, Identity, MaybeUser, ObjectPermission, Permission, RequireObjectPerm, RequirePerm,
};
pub use routes::{Listener, OPS_ONLY_PATHS, api_fallback, router, router_for};
pub use state::{AppState, HttpSettings, MetricsRender};

use axum::Router;
use std::path::PathBuf;
use tower_http::catch_panic::CatchPanicLayer;

/// The layers every sekisho-served response goes through: request ids, traces without secrets,
/// the latency histogram, JSON bodies for 405s the router produces, and a JSON 500 if a handler
/// ever panics.
pub fn service_layers(router: Router) -> Router {
    router
        .layer(pipeline::PipelineLayer::new())
        .layer(CatchPanicLayer::custom(|_| error::panic_response()))
}

/// The whole sekisho server as one router: the endpoints, then either the SPA in `static_dir`
/// (history fallback to `index.html`) or JSON 404s, behind [`service_layers`]. The binary serves
/// exactly this; tests drive it in-process.
pub fn app(state: AppState, static_dir: Option<PathBuf>) -> Router {
    app_for(state, static_dir, Listener::All)
}

/// [`app`] for one listener of a split set-up (`server.ops_bind`): the public one keeps the SPA,
/// the operations one answers JSON 404s beyond its few paths.
pub fn app_for(state: AppState, static_dir: Option<PathBuf>, listener: Listener) -> Router {
    let static_dir = static_dir.filter(|_| listener != Listener::Ops);
    let mut app = Router::new().merge(router_for(state.clone(), listener));
    if state.auth.exchanges_django_sessions() {
        app = app.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            extract::exchange::layer,
        ));
    }
    let app = match static_dir {
        Some(dir) => app.fallback_service(
            Router::new()
                .fallback(spa::serve)
                .with_state((state, spa::Spa { dir })),
        ),
        None => app.fallback(api_fallback),
    };
    service_layers(app)
}
