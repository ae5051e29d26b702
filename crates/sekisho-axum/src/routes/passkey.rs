//! Passkeys: the caller's keys under `/api/auth/mfa/passkeys/`, the passwordless login of each
//! mode (`/api/auth/login/passkey/`, `/api/token/passkey/`, each after its `begin/`), and the
//! begin of a passkey answer to a login challenge (`/api/auth/login/mfa/passkey/`,
//! `/api/token/mfa/passkey/`; the answer itself goes to the challenge's completion endpoint).
//! Every session-mode call is CSRF-checked like the login.

use super::parts_and_input;
use crate::body::{Input, Trim};
use crate::error::{ApiError, FieldProblem};
use crate::extract::identity::AuthUser;
use crate::extract::{csrf, request};
use crate::routes::continued::continue_login;
use crate::routes::issued;
use crate::state::AppState;
use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use sekisho_core::AuthError;
use sekisho_core::mfa::Flow;
use sekisho_core::mfa::passkey::{CeremonyStart, PasskeyRecord};
use serde_json::{Value, json};

fn key_view(p: &PasskeyRecord) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "user_verified": p.user_verified,
        "created_at": p.created_at.secs(),
        "last_used_at": p.last_used_at.map(|t| t.secs()),
    })
}

fn ceremony_body(c: CeremonyStart) -> Value {
    json!({ "ceremony": c.ceremony, "options": c.options })
}

/// The browser's answer: a JSON object (what `PublicKeyCredential.toJSON()` gives).
pub(super) fn credential_field(input: &Input) -> Result<Value, ApiError> {
    match input.0.get("credential") {
        None => Err(ApiError::field("credential", FieldProblem::Required)),
        Some(Value::Null) => Err(ApiError::field("credential", FieldProblem::Null)),
        Some(v @ Value::Object(_)) => Ok(v.clone()),
        Some(_) => Err(AuthError::PasskeyResponseMalformed.into()),
    }
}

/// A session-mode call: CSRF first, then the body.
async fn csrf_checked(state: &AppState, req: Request) -> Result<(Parts, Input), ApiError> {
    let (mut parts, body) = req.into_parts();
    let binding = csrf::binding(&mut parts, state).await?;
    csrf::enforce(&mut parts, state, &binding)?;
    let input = Input::from_request(Request::from_parts(parts.clone(), body), state).await?;
    Ok((parts, input))
}

/// On the caller's own key endpoints a refused answer is a 400: a 401 there would read as
/// "logged out" to an SPA's interceptor.
fn refusal_is_a_field_error(e: AuthError) -> ApiError {
    match e {
        AuthError::PasskeyCeremonyInvalid => ApiError::field(
            "ceremony",
            FieldProblem::Other("The passkey ceremony is invalid or has expired.".into()),
        ),
        AuthError::PasskeyRefused | AuthError::PasskeyUserVerificationRequired => ApiError::field(
            "credential",
            FieldProblem::Other("The passkey was not accepted.".into()),
        ),
        other => other.into(),
    }
}

/// `GET /api/auth/mfa/passkeys/`: the caller's keys.
pub async fn list(State(state): State<AppState>, user: AuthUser) -> Result<Json<Value>, ApiError> {
    let keys = state.auth.list_passkeys(&user).await?;
    Ok(Json(
        json!({ "passkeys": keys.iter().map(key_view).collect::<Vec<_>>() }),
    ))
}

/// `POST /api/auth/mfa/passkeys/register/begin/`: options for `navigator.credentials.create`.
pub async fn register_begin(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let (mut parts, _input) = parts_and_input(&state, req).await?;
    let user = AuthUser::from_request_parts(&mut parts, &state).await?;
    let c = state
        .auth
        .begin_passkey_registration(&user, user.identity.login())
        .await?;
    Ok(Json(ceremony_body(c)).into_response())
}

/// `POST /api/auth/mfa/passkeys/register/finish/` `{"ceremony", "credential", "name"}`.
pub async fn register_finish(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let (mut parts, input) = parts_and_input(&state, req).await?;
    let user = AuthUser::from_request_parts(&mut parts, &state).await?;
    let [ceremony, name] = input.strings([("ceremony", Trim::Yes), ("name", Trim::Yes)])?;
    let credential = credential_field(&input)?;
    let key = state
        .auth
        .finish_passkey_registration(
            &user,
            &ceremony,
            &credential,
            &name,
            user.identity.login(),
            user.identity.session(),
        )
        .await
        .map_err(refusal_is_a_field_error)?;
    let mut body = serde_json::Map::new();
    body.insert("passkey".into(), key_view(&key));
    let secure = request::meta(&mut parts, &state.http).secure;
    let mut res = continue_login(&state, &user, None, secure, body).await?;
    *res.status_mut() = axum::http::StatusCode::CREATED;
    Ok(res)
}

/// `PATCH /api/auth/mfa/passkeys/{id}/` `{"name"}`; `DELETE` removes the key.
pub async fn rename(
    State(state): State<AppState>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
    req: Request,
) -> Result<Response, ApiError> {
    let Ok(Path(id)) = id else {
        return Err(ApiError::NotFound);
    };
    let (mut parts, input) = parts_and_input(&state, req).await?;
    let user = AuthUser::from_request_parts(&mut parts, &state).await?;
    let [name] = input.strings([("name", Trim::Yes)])?;
    let key = state
        .auth
        .rename_passkey(&user, id.trim_end_matches('/'), &name)
        .await?;
    Ok(Json(json!({ "passkey": key_view(&key) })).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
    req: Request,
) -> Result<Response, ApiError> {
    let Ok(Path(id)) = id else {
        return Err(ApiError::NotFound);
    };
    let (mut parts, _) = req.into_parts();
    let user = AuthUser::from_request_parts(&mut parts, &state).await?;
    state
        .auth
        .delete_passkey(
            &user,
            id.trim_end_matches('/'),
            user.identity.login(),
            user.identity.session(),
        )
        .await?;
    let secure = request::meta(&mut parts, &state.http).secure;
    continue_login(&state, &user, None, secure, serde_json::Map::new()).await
}

/// `POST /api/auth/login/passkey/begin/` `{"username"}`.
pub async fn session_login_begin(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let (_, input) = csrf_checked(&state, req).await?;
    let [username] = input.strings([("username", Trim::Yes)])?;
    let c = state
        .auth
        .begin_passkey_login(&username, Flow::Session)
        .await?;
    Ok(Json(ceremony_body(c)).into_response())
}

/// `POST /api/auth/login/passkey/` `{"ceremony", "credential"}`: the same cookies and body as
/// `POST /api/auth/login/`.
pub async fn session_login(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let r = issued::session_login_request(&state, req).await?;
    let [ceremony] = r.input.strings([("ceremony", Trim::Yes)])?;
    let credential = credential_field(&r.input)?;
    let s = state
        .auth
        .login_session_passkey(&ceremony, &credential, r.device, r.previous.as_deref())
        .await?;
    tracing::info!(user_id = s.user.id, "session login with a passkey");
    issued::session_answer(&state, r.secure, &s, serde_json::Map::new())
}

/// `POST /api/token/passkey/begin/` `{"username"}`.
pub async fn token_login_begin(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let (_, input) = parts_and_input(&state, req).await?;
    let [username] = input.strings([("username", Trim::Yes)])?;
    let c = state
        .auth
        .begin_passkey_login(&username, Flow::Token)
        .await?;
    Ok(Json(ceremony_body(c)).into_response())
}

/// `POST /api/token/passkey/` `{"ceremony", "credential"}`: the same answer as
/// `POST /api/token/` (in refresh-cookie mode, the cookie and `access`).
pub async fn token_login(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let (mut parts, input) = parts_and_input(&state, req).await?;
    let [ceremony] = input.strings([("ceremony", Trim::Yes)])?;
    let credential = credential_field(&input)?;
    let meta = request::meta(&mut parts, &state.http);
    let pair = state
        .auth
        .obtain_pair_passkey(&ceremony, &credential, &meta.client_ip)
        .await?;
    Ok(issued::pair_answer(
        &state,
        meta.secure,
        pair,
        serde_json::Map::new(),
    ))
}

/// `POST /api/auth/login/mfa/passkey/` `{"challenge"}`: options to answer a session login's
/// challenge with a passkey.
pub async fn session_challenge_begin(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let (_, input) = csrf_checked(&state, req).await?;
    let [challenge] = input.strings([("challenge", Trim::Yes)])?;
    let c = state
        .auth
        .begin_passkey_second_factor(&challenge, Flow::Session)
        .await?;
    Ok(Json(ceremony_body(c)).into_response())
}

/// `POST /api/token/mfa/passkey/` `{"challenge"}`: the same for a token login.
pub async fn token_challenge_begin(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let (_, input) = parts_and_input(&state, req).await?;
    let [challenge] = input.strings([("challenge", Trim::Yes)])?;
    let c = state
        .auth
        .begin_passkey_second_factor(&challenge, Flow::Token)
        .await?;
    Ok(Json(ceremony_body(c)).into_response())
}
