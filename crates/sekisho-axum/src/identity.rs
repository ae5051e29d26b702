//! Who is calling (DESIGN §3.5), resolved in one place for sekisho's own endpoints and for the
//! routes of any application that embeds it:
//!
//! 1. an `Authorization` header with a scheme sekisho knows (`Bearer`, any case) → JWT only,
//!    with no fallback, so a bad token can never be rescued by a cookie; no CSRF check;
//! 2. otherwise the session cookie → a live session, with the CSRF check on unsafe methods
//!    (an invalid or expired session is anonymous);
//! 3. otherwise anonymous.
//!
//! The result is cached in the request's extensions so several extractors cost one check.

use crate::error::ApiError;
use crate::{AppState, cookies, csrf, request};
use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use sekisho_core::AuthError;
use sekisho_core::service::{AuthorizationHeader, parse_authorization};
use sekisho_core::session::SessionRecord;
use sekisho_core::token::Claims;
use sekisho_core::user::User;
use std::ops::Deref;
use std::sync::Arc;

/// How the caller proved who they are.
#[derive(Clone, Debug)]
pub enum Identity {
    // Shared, not copied: several extractors of one request see the same user.
    Bearer {
        user: Arc<User>,
        claims: Arc<Claims>,
    },
    Session {
        user: Arc<User>,
        session: Arc<SessionRecord>,
    },
}

impl Identity {
    pub fn user(&self) -> &User {
        self.user_arc()
    }

    pub fn user_arc(&self) -> &Arc<User> {
        match self {
            Identity::Bearer { user, .. } | Identity::Session { user, .. } => user,
        }
    }

    pub fn session(&self) -> Option<&SessionRecord> {
        match self {
            Identity::Session { session, .. } => Some(session),
            Identity::Bearer { .. } => None,
        }
    }
}

#[derive(Clone)]
struct Resolved(Option<Identity>);

/// Resolves (once per request) the caller's identity; errors are the contract's 401s and 403s.
pub async fn resolve(parts: &mut Parts, state: &AppState) -> Result<Option<Identity>, ApiError> {
    if let Some(Resolved(id)) = parts.extensions.get::<Resolved>() {
        return Ok(id.clone());
    }
    let identity = resolve_uncached(parts, state).await?;
    parts.extensions.insert(Resolved(identity.clone()));
    Ok(identity)
}

async fn resolve_uncached(parts: &Parts, state: &AppState) -> Result<Option<Identity>, ApiError> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        // Only the scheme decides whether the header is ours; the bytes of another scheme's
        // credentials (which need not be UTF-8) are none of our business.
        let bytes = value.as_bytes();
        let scheme = bytes
            .split(|b| b.is_ascii_whitespace())
            .find(|p| !p.is_empty())
            .unwrap_or_default();
        let ours = scheme.eq_ignore_ascii_case(b"bearer");
        let value = match value.to_str() {
            Ok(v) => v,
            Err(_) if ours => return Err(AuthError::BadAuthorizationHeader.into()),
            Err(_) => "",
        };
        if let AuthorizationHeader::Bearer(token) = parse_authorization(value)? {
            let b = state.auth.authenticate_bearer(token).await?;
            return Ok(Some(Identity::Bearer {
                user: b.user,
                claims: Arc::new(b.claims),
            }));
        }
    }
    let Some(cookie) = cookies::get(&parts.headers, &state.http.session_cookie) else {
        return Ok(None);
    };
    let Some(active) = state.auth.resolve_session(cookie).await? else {
        return Ok(None);
    };
    if csrf::is_unsafe(&parts.method) {
        let meta = request::meta(parts, &state.http);
        csrf::enforce(&parts.headers, &meta, state, &active.record.id_hash)?;
    }
    Ok(Some(Identity::Session {
        user: active.user,
        session: Arc::new(active.record),
    }))
}

/// An authenticated user; anonymous callers get 401 (or 403, per `auth.unauthenticated_status`).
#[derive(Clone, Debug)]
pub struct AuthUser {
    pub user: Arc<User>,
    pub identity: Identity,
}

impl Deref for AuthUser {
    type Target = User;
    fn deref(&self) -> &User {
        &self.user
    }
}

impl AuthUser {
    /// Django's `has_perm` as a guard: 403 unless the user holds `codename` (`app.action_model`)
    /// or is an active superuser — the same rule whichever way the caller logged in.
    pub fn require_perm(&self, codename: &str) -> Result<(), ApiError> {
        if self.user.has_perm(codename) {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied.into())
        }
    }

    /// DRF's `IsAdminUser`: staff only.
    pub fn require_staff(&self) -> Result<(), ApiError> {
        if self.user.is_staff {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied.into())
        }
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = AppState::from_ref(state);
        match resolve(parts, &state).await? {
            Some(identity) => Ok(AuthUser {
                user: identity.user_arc().clone(),
                identity,
            }),
            None => Err(ApiError::NotAuthenticated {
                status: state.http.unauthenticated_status,
            }),
        }
    }
}

/// The caller's identity if any; never rejects anonymous callers (but still rejects a bad
/// bearer token or a failed CSRF check, as DRF does on every endpoint).
#[derive(Clone, Debug)]
pub struct MaybeUser(pub Option<Identity>);

impl<S> FromRequestParts<S> for MaybeUser
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = AppState::from_ref(state);
        Ok(MaybeUser(resolve(parts, &state).await?))
    }
}
