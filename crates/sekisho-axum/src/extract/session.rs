//! The request's session: the cookie's live session, looked up once per request and shared by
//! identity resolution and the CSRF binding.

use crate::cookies;
use crate::error::ApiError;
use crate::state::AppState;
use axum::http::request::Parts;
use sekisho_core::session::ActiveSession;
use std::sync::Arc;

#[derive(Clone)]
struct SessionLookup(Option<Arc<ActiveSession>>);

/// The live session the request's cookie names, looked up once per request (identity
/// resolution and the CSRF binding share it).
pub async fn session_of(
    parts: &mut Parts,
    state: &AppState,
) -> Result<Option<Arc<ActiveSession>>, ApiError> {
    if let Some(SessionLookup(s)) = parts.extensions.get::<SessionLookup>() {
        return Ok(s.clone());
    }
    let found = match cookies::get(&parts.headers, &state.http.session_cookie) {
        Some(cookie) => match state.auth.resolve_session(cookie).await? {
            Some(s) => Some(Arc::new(s)),
            // Not a sekisho session: during a dual-run, perhaps a Django one.
            None if state.auth.exchanges_django_sessions() => {
                let cookie = cookie.to_string();
                super::exchange::exchange(parts, state, &cookie)
                    .await?
                    .map(Arc::new)
            }
            None => None,
        },
        None => None,
    };
    parts.extensions.insert(SessionLookup(found.clone()));
    Ok(found)
}
