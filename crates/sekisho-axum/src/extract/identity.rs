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

use super::csrf;
use super::session::session_of;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use sekisho_core::AuthError;
use sekisho_core::account::User;
use sekisho_core::mfa::LoginMethod;
use sekisho_core::session::SessionRecord;
use sekisho_core::token::Claims;
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

    /// How the caller's login was authenticated: the session's record, or the access token's
    /// `amr`/`auth_time` claims (`None` for a token minted elsewhere, without them).
    pub fn login(&self) -> Option<LoginMethod> {
        match self {
            Identity::Session { session, .. } => Some(session.login),
            Identity::Bearer { claims, .. } => claims.login,
        }
    }
}

#[derive(Clone)]
struct Resolved(Option<Identity>);

/// What an `Authorization` header says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AuthorizationHeader<'a> {
    /// Not a scheme sekisho handles (e.g. `Basic`): ignored, as simplejwt ignores it.
    Other,
    Bearer(&'a str),
}

/// Reads an `Authorization` header: the one place it is parsed. The scheme is matched
/// case-insensitively; only the scheme decides whether the header is ours, so the bytes of
/// another scheme's credentials (which need not be UTF-8) are none of our business.
pub(crate) fn parse_authorization(value: &[u8]) -> Result<AuthorizationHeader<'_>, AuthError> {
    // simplejwt splits on any whitespace (`header.split()`).
    let mut parts = value
        .split(|b| b.is_ascii_whitespace())
        .filter(|p| !p.is_empty());
    let Some(scheme) = parts.next() else {
        return Ok(AuthorizationHeader::Other);
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Ok(AuthorizationHeader::Other);
    }
    match (parts.next(), parts.next()) {
        // A header value is visible ASCII; anything else in our scheme is malformed.
        (Some(token), None) if token.iter().all(|b| b.is_ascii_graphic()) => {
            std::str::from_utf8(token)
                .map(AuthorizationHeader::Bearer)
                .map_err(|_| AuthError::BadAuthorizationHeader)
        }
        _ => Err(AuthError::BadAuthorizationHeader),
    }
}

/// Resolves (once per request) the caller's identity; errors are the contract's 401s and 403s.
pub async fn resolve(parts: &mut Parts, state: &AppState) -> Result<Option<Identity>, ApiError> {
    if let Some(Resolved(id)) = parts.extensions.get::<Resolved>() {
        return Ok(id.clone());
    }
    let identity = resolve_uncached(parts, state).await?;
    parts.extensions.insert(Resolved(identity.clone()));
    Ok(identity)
}

async fn resolve_uncached(
    parts: &mut Parts,
    state: &AppState,
) -> Result<Option<Identity>, ApiError> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION)
        && let AuthorizationHeader::Bearer(token) = parse_authorization(value.as_bytes())?
    {
        let b = state.auth.authenticate_bearer(token).await?;
        return Ok(Some(Identity::Bearer {
            user: b.user,
            claims: Arc::new(b.claims),
        }));
    }
    let Some(active) = session_of(parts, state).await? else {
        return Ok(None);
    };
    if csrf::is_unsafe(&parts.method) {
        csrf::enforce(parts, state, active.csrf_binding())?;
    }
    Ok(Some(Identity::Session {
        user: active.user.clone(),
        session: Arc::new(active.record.clone()),
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
        if sekisho_core::authz::has_perm(&self.user, codename) {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied.into())
        }
    }

    /// Step-up: 403 (`mfa_step_up_required`) unless the caller's login passed a second factor
    /// at most `within` ago. Pass the app's clock (`AppState::auth.now()`).
    pub fn require_recent_mfa(
        &self,
        within: std::time::Duration,
        now: sekisho_core::Timestamp,
    ) -> Result<(), ApiError> {
        sekisho_core::mfa::require_recent_mfa(self.identity.login(), within, now)
            .map_err(ApiError::from)
    }

    /// DRF's `IsAdminUser`: staff only.
    pub fn require_staff(&self) -> Result<(), ApiError> {
        if sekisho_core::authz::is_staff(&self.user) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_header_parsing() {
        let p = parse_authorization;
        assert_eq!(
            p(b"Bearer abc").unwrap(),
            AuthorizationHeader::Bearer("abc")
        );
        assert_eq!(
            p(b"bearer abc").unwrap(),
            AuthorizationHeader::Bearer("abc")
        );
        assert_eq!(
            p(b"BEARER abc").unwrap(),
            AuthorizationHeader::Bearer("abc")
        );
        assert_eq!(
            p(b"Bearer\tabc").unwrap(),
            AuthorizationHeader::Bearer("abc")
        );
        assert_eq!(
            p(b"Basic dXNlcjpwdw==").unwrap(),
            AuthorizationHeader::Other
        );
        assert_eq!(p(b"Basic \xff\xfe").unwrap(), AuthorizationHeader::Other);
        assert_eq!(p(b"").unwrap(), AuthorizationHeader::Other);
        assert!(matches!(
            p(b"Bearer"),
            Err(AuthError::BadAuthorizationHeader)
        ));
        assert!(matches!(
            p(b"Bearer a b"),
            Err(AuthError::BadAuthorizationHeader)
        ));
        assert!(matches!(
            p(b"Bearer \xff"),
            Err(AuthError::BadAuthorizationHeader)
        ));
        assert!(matches!(
            p("Bearer é".as_bytes()),
            Err(AuthError::BadAuthorizationHeader)
        ));
    }
}
