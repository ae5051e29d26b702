//! The caller's own login after a credential change (a new password, a second factor added
//! or removed) ended every other login of the user: a session continues under a new id with a
//! CSRF token bound to it (Django's `update_session_auth_hash`), a bearer caller — whose
//! refresh family was revoked with the others — gets a new pair, its refresh token in the
//! cookie in refresh-cookie mode, exactly as `POST /api/token/` would answer.

use crate::cookies::Jar;
use crate::error::ApiError;
use crate::extract::identity::{AuthUser, Identity};
use crate::routes::issued::{add_pair, set_session_cookies};
use crate::state::AppState;
use axum::Json;
use axum::response::{IntoResponse, Response};
use sekisho_core::mfa::LoginMethod;
use serde_json::{Map, Value};

/// Answers `body` plus what keeps the caller logged in. `login` marks the continued login
/// (a second factor just passed); `None` keeps the method the caller's login had.
pub(super) async fn continue_login(
    state: &AppState,
    user: &AuthUser,
    login: Option<LoginMethod>,
    secure: bool,
    mut body: Map<String, Value>,
) -> Result<Response, ApiError> {
    let mut jar = Jar::new(&state.http, secure);
    match &user.identity {
        Identity::Session { session, .. } => {
            let login = login.unwrap_or(session.login);
            let s = state
                .auth
                .cycle_session_as(session, &user.user, login)
                .await?;
            set_session_cookies(&mut jar, &s);
        }
        Identity::Bearer { claims, .. } => {
            let login = login
                .or(claims.login)
                .unwrap_or_else(|| LoginMethod::password(state.auth.now()));
            let pair = state.auth.issue_pair_as(&user.user, login).await?;
            add_pair(state, &mut jar, pair, &mut body);
        }
    }
    Ok((jar.into_headers(), Json(Value::Object(body))).into_response())
}
