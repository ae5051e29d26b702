//! The caller's own account (DESIGN §3.3): `GET`/`PATCH /api/auth/me/` and
//! `POST /api/auth/password/`, with a session or a bearer token alike.

use crate::body::{Input, Trim};
use crate::cookies::Jar;
use crate::error::{ApiError, FieldErrors, FieldProblem};
use crate::extract::identity::{AuthUser, Identity, MaybeUser};
use crate::extract::{csrf, request};
use crate::state::AppState;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sekisho_core::AuthError;
use sekisho_core::account::{PasswordChangeError, ProfileUpdate, User};
use serde_json::{Map, Value};

/// The user in the shape a Django SPA expects (`id, username, email, first_name, last_name,
/// is_staff, is_superuser, groups, permissions`), serialised straight to the response (no
/// intermediate JSON tree on the hot path).
pub struct UserView<'a>(pub &'a User);

impl serde::Serialize for UserView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let u = self.0;
        let mut m = s.serialize_struct("User", 9)?;
        m.serialize_field("id", &u.id)?;
        m.serialize_field("username", &u.username)?;
        m.serialize_field("email", &u.email)?;
        m.serialize_field("first_name", &u.first_name)?;
        m.serialize_field("last_name", &u.last_name)?;
        m.serialize_field("is_staff", &u.is_staff)?;
        m.serialize_field("is_superuser", &u.is_superuser)?;
        m.serialize_field("groups", &u.groups)?;
        m.serialize_field("permissions", &u.permissions)?;
        m.end()
    }
}

impl IntoResponse for UserView<'_> {
    /// Serialised straight into a buffer sized for a typical user (axum's `Json` starts small and
    /// grows; this is the body of every `GET /api/auth/me/`).
    fn into_response(self) -> Response {
        let mut buf = Vec::with_capacity(256);
        match serde_json::to_writer(&mut buf, &self) {
            Ok(()) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                buf,
            )
                .into_response(),
            Err(e) => ApiError::from(AuthError::Internal(e.to_string())).into_response(),
        }
    }
}

pub async fn me(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, _) = req.into_parts();
    let MaybeUser(identity) = MaybeUser::from_request_parts(&mut parts, &state).await?;
    let mut jar = Jar::new(&state.http, request::meta(&mut parts, &state.http).secure);
    // First load (DESIGN §3.3): a cookie caller without a valid csrftoken gets one here.
    if !matches!(identity, Some(Identity::Bearer { .. })) {
        let binding = csrf::binding(&mut parts, &state).await?;
        csrf::ensure_cookie(&parts, &state, &binding, &mut jar);
    }
    let headers = jar.into_headers();
    match identity {
        Some(id) => Ok((headers, UserView(id.user())).into_response()),
        None => {
            let mut res = ApiError::NotAuthenticated {
                status: state.http.unauthenticated_status,
            }
            .into_response();
            res.headers_mut().extend(headers);
            Ok(res)
        }
    }
}

/// A profile field: optional; blank allowed (Django's `blank=True`); null or non-text refused.
fn profile_field(input: &Input, name: &str, errors: &mut FieldErrors) -> Option<String> {
    match input.0.get(name) {
        None => None,
        Some(Value::String(s)) if s.contains('\0') => {
            errors.add(name, FieldProblem::NullCharacters);
            None
        }
        Some(Value::String(s)) => Some(s.trim().to_string()),
        Some(Value::Null) => {
            errors.add(name, FieldProblem::Null);
            None
        }
        Some(_) => {
            errors.add(name, FieldProblem::NotAString);
            None
        }
    }
}

pub async fn update_me(
    State(state): State<AppState>,
    user: AuthUser,
    input: Input,
) -> Result<Response, ApiError> {
    let mut errors = FieldErrors::default();
    let update = ProfileUpdate {
        email: profile_field(&input, "email", &mut errors),
        first_name: profile_field(&input, "first_name", &mut errors),
        last_name: profile_field(&input, "last_name", &mut errors),
    };
    errors.check()?;
    match state.auth.update_profile(user.id, &update).await? {
        Ok(u) => Ok(UserView(&u).into_response()),
        Err((field, problem)) => Err(ApiError::field(
            field.name(),
            FieldProblem::Profile(problem),
        )),
    }
}

pub async fn change_password(
    State(state): State<AppState>,
    user: AuthUser,
    request::ClientMeta(meta): request::ClientMeta,
    input: Input,
) -> Result<Response, ApiError> {
    let [old, new] = input.strings([("old_password", Trim::No), ("new_password", Trim::No)])?;
    let keep = user.identity.session();
    match state
        .auth
        .change_password(&user, &old, &new, keep, &meta.client_ip)
        .await
    {
        Ok(()) => {}
        Err(PasswordChangeError::WrongOldPassword) => {
            return Err(ApiError::field(
                "old_password",
                FieldProblem::WrongOldPassword,
            ));
        }
        Err(PasswordChangeError::Weak(w)) => {
            return Err(ApiError::field(
                "new_password",
                FieldProblem::WeakPassword(w),
            ));
        }
        Err(PasswordChangeError::Auth(e)) => return Err(e.into()),
    }
    tracing::info!(
        user_id = user.id,
        "password changed; other sessions and all refresh families revoked"
    );
    super::continued::continue_login(&state, &user, None, meta.secure, Map::new()).await
}
