//! The auth endpoints (DESIGN §3.1, §3.3, §3.6), one file per group: [`token`] (simplejwt's
//! four), [`session`] (Django-style session login and devices), [`me`] (the caller's own
//! account), [`mfa`] (second factors and the second step of each login), [`admin`] (administration under `/api/admin/`), [`ops`] (health, metrics, OpenAPI). Every path answers with and without its
//! trailing slash, with no redirect (a redirected POST loses its body).

mod admin;
mod authz;
mod continued;
mod forward;
mod issued;
mod me;
mod mfa;
mod ops;
mod passkey;
mod session;
mod token;

pub use me::UserView;

use crate::body::Input;
use crate::error::ApiError;
use crate::openapi;
use crate::state::AppState;
use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::http::request::Parts;
use axum::routing::{MethodRouter, delete, get, patch, post};

/// The handlers of one documented path. Registration walks [`openapi::PATHS`], so a route
/// cannot exist without its OpenAPI entry, nor an entry without its route.
fn endpoint(path: &str) -> MethodRouter<AppState> {
    match path {
        "/api/token/" => post(token::obtain),
        "/api/token/refresh/" => post(token::refresh),
        "/api/token/verify/" => post(token::verify),
        "/api/token/blacklist/" => post(token::blacklist),
        "/api/token/mfa/" => post(mfa::complete_token_login),
        "/api/auth/csrf/" => get(session::csrf_token),
        "/api/auth/login/" => post(session::login),
        "/api/auth/login/mfa/" => post(mfa::complete_session_login),
        "/api/auth/logout/" => post(session::logout),
        "/api/auth/me/" => get(me::me).patch(me::update_me),
        "/api/auth/password/" => post(me::change_password),
        "/api/auth/sessions/" => get(session::list_sessions),
        "/api/auth/sessions/{id}/" => delete(session::delete_session),
        "/api/auth/logout-all/" => post(session::logout_all),
        "/api/auth/mfa/" => get(mfa::status),
        "/api/auth/mfa/totp/" => post(mfa::begin_totp),
        "/api/auth/mfa/totp/confirm/" => post(mfa::confirm_totp),
        "/api/auth/mfa/totp/disable/" => post(mfa::disable_totp),
        "/api/auth/mfa/recovery-codes/" => post(mfa::regenerate_recovery_codes),
        "/api/auth/mfa/step-up/" => post(mfa::step_up),
        "/api/auth/mfa/passkeys/" => get(passkey::list),
        "/api/auth/mfa/passkeys/register/begin/" => post(passkey::register_begin),
        "/api/auth/mfa/passkeys/register/finish/" => post(passkey::register_finish),
        "/api/auth/mfa/passkeys/{id}/" => patch(passkey::rename).delete(passkey::delete),
        "/api/auth/login/passkey/begin/" => post(passkey::session_login_begin),
        "/api/auth/login/passkey/" => post(passkey::session_login),
        "/api/auth/login/mfa/passkey/" => post(passkey::session_challenge_begin),
        "/api/token/passkey/begin/" => post(passkey::token_login_begin),
        "/api/token/passkey/" => post(passkey::token_login),
        "/api/token/mfa/passkey/" => post(passkey::token_challenge_begin),
        "/api/auth/check/" => get(forward::check),
        "/api/authz/check/" => post(authz::check),
        "/api/authz/list/" => post(authz::list),
        "/api/admin/users/" => get(admin::users).post(admin::create_user),
        "/api/admin/users/{id}/" => get(admin::user).patch(admin::update_user),
        "/api/admin/users/{id}/password/" => post(admin::set_password),
        "/api/admin/users/{id}/deactivate/" => post(admin::deactivate),
        "/api/admin/users/{id}/logout-all/" => post(admin::end_logins),
        "/api/admin/users/{id}/permissions/" => post(admin::grant_user),
        "/api/admin/users/{id}/permissions/{codename}/" => delete(admin::revoke_user),
        "/api/admin/groups/" => get(admin::groups).post(admin::create_group),
        "/api/admin/groups/{id}/" => get(admin::group)
            .patch(admin::rename_group)
            .delete(admin::delete_group),
        "/api/admin/groups/{id}/members/" => get(admin::members).post(admin::add_member),
        "/api/admin/groups/{id}/members/{user_id}/" => delete(admin::remove_member),
        "/api/admin/groups/{id}/permissions/" => post(admin::grant_group),
        "/api/admin/groups/{id}/permissions/{codename}/" => delete(admin::revoke_group),
        "/api/admin/permissions/" => get(admin::permissions).post(admin::create_permission),
        "/api/admin/permissions/{codename}/" => get(admin::permission)
            .patch(admin::rename_permission)
            .delete(admin::delete_permission),
        "/api/admin/object-permissions/" => get(admin::object_grants).post(admin::grant_object),
        "/api/admin/object-permissions/revoke/" => post(admin::revoke_object),
        "/api/admin/audit/" => get(admin::audit),
        "/healthz" => get(ops::healthz),
        "/readyz" => get(ops::readyz),
        "/metrics" => get(ops::metrics_text),
        "/api/openapi.json" => get(ops::openapi_json),
        "/.well-known/jwks.json" => get(ops::jwks),
        other => unreachable!("documented path {other} has no handler"),
    }
}

/// The paths that move to the operations listener when `server.ops_bind` is set.
pub const OPS_ONLY_PATHS: [&str; 2] = ["/metrics", "/api/openapi.json"];

/// Where a documented path is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// One listener serves everything (the default).
    All,
    /// The public listener of a split set-up: everything but [`OPS_ONLY_PATHS`], which answer
    /// a JSON 404 here (not the SPA's `index.html`).
    Public,
    /// The operations listener: [`OPS_ONLY_PATHS`] plus `/healthz` and `/readyz`.
    Ops,
}

impl Listener {
    fn serves(self, path: &str) -> bool {
        match self {
            Listener::All => true,
            Listener::Public => !OPS_ONLY_PATHS.contains(&path),
            Listener::Ops => {
                OPS_ONLY_PATHS.contains(&path) || path == "/healthz" || path == "/readyz"
            }
        }
    }
}

/// The sekisho endpoints, ready to merge into an application's router. Paths ending in `/`
/// also answer without it.
pub fn router<S>(state: AppState) -> Router<S> {
    router_for(state, Listener::All)
}

/// The endpoints one listener serves (see [`Listener`]).
pub fn router_for<S>(state: AppState, listener: Listener) -> Router<S> {
    let mut r = Router::new();
    for path in openapi::PATHS {
        if !listener.serves(path) {
            if listener == Listener::Public {
                r = r.route(path, axum::routing::any(api_fallback));
            }
            continue;
        }
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

/// Splits a request into its parts (for extractors and cookies) and its parsed body.
async fn parts_and_input(s: &AppState, req: Request) -> Result<(Parts, Input), ApiError> {
    let (parts, body) = req.into_parts();
    let input = Input::from_request(Request::from_parts(parts.clone(), body), s).await?;
    Ok((parts, input))
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
