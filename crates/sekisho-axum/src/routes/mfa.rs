//! Second factors: the caller's own TOTP factor and recovery codes under `/api/auth/mfa/`, and
//! the second step of each login (`POST /api/auth/login/mfa/`, `POST /api/token/mfa/`), which
//! answers exactly what the first step would have once the factor passed.

use super::parts_and_input;
use crate::body::{Input, Trim};
use crate::cookies::Jar;
use crate::error::{ApiError, FieldProblem};
use crate::extract::identity::{AuthUser, Identity};
use crate::extract::request;
use crate::routes::continued::continue_login;
use crate::routes::issued;
use crate::state::AppState;
use axum::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::response::{IntoResponse, Response};
use sekisho_core::AuthError;
use sekisho_core::mfa::{Factor, LoginMethod, TotpEnrolment, recovery, totp};
use serde_json::{Map, Value, json};

/// Which field a code came in, for field errors.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FactorField {
    Code,
    RecoveryCode,
}

/// The code of a request: `code` (six digits) or `recovery_code`, exactly one. Malformed codes
/// are 400 before anything is looked up.
fn presented_factor(input: &Input) -> Result<(FactorField, String), ApiError> {
    let code = input.optional_string("code", Trim::Yes)?;
    let rc = input.optional_string("recovery_code", Trim::Yes)?;
    match (code, rc) {
        (Some(c), None) if totp::plausible_code(&c) => Ok((FactorField::Code, c)),
        (Some(_), None) => Err(ApiError::field("code", FieldProblem::InvalidTotpCode)),
        (None, Some(r)) if recovery::normalize(&r).is_some() => Ok((FactorField::RecoveryCode, r)),
        (None, Some(_)) => Err(ApiError::field(
            "recovery_code",
            FieldProblem::InvalidRecoveryCode,
        )),
        (None, None) => Err(ApiError::field("code", FieldProblem::Required)),
        (Some(_), Some(_)) => Err(ApiError::field(
            "non_field_errors",
            FieldProblem::OneOf("code", "recovery_code"),
        )),
    }
}

/// What a login's second step presents: a code, or a passkey answer to the ceremony begun for
/// the challenge (`ceremony` and `credential`).
enum Presented {
    Code(FactorField, String),
    Passkey(String, Value),
}

fn presented_login_factor(input: &Input) -> Result<Presented, ApiError> {
    if input.0.contains_key("ceremony") || input.0.contains_key("credential") {
        let [ceremony] = input.strings([("ceremony", Trim::Yes)])?;
        let credential = super::passkey::credential_field(input)?;
        return Ok(Presented::Passkey(ceremony, credential));
    }
    presented_factor(input).map(|(f, v)| Presented::Code(f, v))
}

impl Presented {
    fn factor(&self) -> Factor<'_> {
        match self {
            Presented::Code(f, v) => factor(*f, v),
            Presented::Passkey(c, cred) => Factor::Passkey {
                ceremony: c,
                credential: cred,
            },
        }
    }
}

fn factor(field: FactorField, value: &str) -> Factor<'_> {
    match field {
        FactorField::Code => Factor::Totp(value),
        FactorField::RecoveryCode => Factor::Recovery(value),
    }
}

/// On the caller's own factor endpoints a wrong code is a field error (400): a 401 there would
/// read as "logged out" to an SPA's interceptor.
fn wrong_code_is_a_field_error(field: FactorField) -> impl Fn(AuthError) -> ApiError {
    move |e| match e {
        AuthError::MfaCodeInvalid => ApiError::field(
            match field {
                FactorField::Code => "code",
                FactorField::RecoveryCode => "recovery_code",
            },
            FieldProblem::WrongCode,
        ),
        other => other.into(),
    }
}

fn enrolment_body(e: TotpEnrolment) -> Value {
    json!({
        "secret": e.secret,
        "otpauth_uri": e.otpauth_uri,
        "qr_svg": e.qr_svg,
    })
}

/// `GET /api/auth/mfa/`: the caller's second factors.
pub async fn status(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Value>, ApiError> {
    let s = state.auth.mfa_status(&user).await?;
    let mut methods = Vec::new();
    if s.totp_confirmed {
        methods.push("totp");
        if s.recovery_codes_left > 0 {
            methods.push("recovery");
        }
    }
    if s.passkeys > 0 {
        methods.push("passkey");
    }
    Ok(Json(json!({
        "totp": s.totp_confirmed,
        "totp_pending": s.totp_pending,
        "recovery_codes_left": s.recovery_codes_left,
        "methods": methods,
    })))
}

/// `POST /api/auth/mfa/totp/`: starts an enrolment — for the logged-in caller, or, with
/// `{"challenge"}`, for the holder of an "enrolment required" login challenge.
pub async fn begin_totp(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, input) = parts_and_input(&state, req).await?;
    let enrolment = match input.optional_string("challenge", Trim::Yes)? {
        Some(challenge) => state.auth.begin_totp_for_challenge(&challenge).await?,
        None => {
            let user = AuthUser::from_request_parts(&mut parts, &state).await?;
            state.auth.begin_totp(&user).await?
        }
    };
    Ok(Json(enrolment_body(enrolment)).into_response())
}

/// `POST /api/auth/mfa/totp/confirm/` `{"code"}`: activates the pending factor; answers the
/// recovery codes, once.
pub async fn confirm_totp(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let (mut parts, input) = parts_and_input(&state, req).await?;
    let user = AuthUser::from_request_parts(&mut parts, &state).await?;
    let [code] = input.strings([("code", Trim::Yes)])?;
    if !totp::plausible_code(&code) {
        return Err(ApiError::field("code", FieldProblem::InvalidTotpCode));
    }
    let meta = request::meta(&mut parts, &state.http);
    let codes = state
        .auth
        .confirm_totp(&user, &code, &meta.client_ip, user.identity.session())
        .await
        .map_err(wrong_code_is_a_field_error(FactorField::Code))?;
    let mut body = Map::new();
    body.insert("recovery_codes".into(), json!(codes));
    let login = LoginMethod::second_factor(state.auth.now());
    continue_login(&state, &user, Some(login), meta.secure, body).await
}

/// `POST /api/auth/mfa/totp/disable/` `{"code"}` or `{"recovery_code"}`.
pub async fn disable_totp(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let (mut parts, input) = parts_and_input(&state, req).await?;
    let user = AuthUser::from_request_parts(&mut parts, &state).await?;
    let (field, value) = presented_factor(&input)?;
    let meta = request::meta(&mut parts, &state.http);
    state
        .auth
        .disable_totp(
            &user,
            factor(field, &value),
            &meta.client_ip,
            user.identity.session(),
        )
        .await
        .map_err(wrong_code_is_a_field_error(field))?;
    let login = LoginMethod::second_factor(state.auth.now());
    continue_login(&state, &user, Some(login), meta.secure, Map::new()).await
}

/// `POST /api/auth/mfa/step-up/` `{"code"}` or `{"recovery_code"}`: the caller's login counts
/// as a second-factor login from now on (for `mfa_within` rules). A session continues under a
/// new id (new cookies, `{}`); a bearer caller gets `{"access"}`, a new access token of the
/// same family marked `amr = ["pwd", "otp"]` with `auth_time` now.
pub async fn step_up(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, input) = parts_and_input(&state, req).await?;
    let user = AuthUser::from_request_parts(&mut parts, &state).await?;
    let (field, value) = presented_factor(&input)?;
    let meta = request::meta(&mut parts, &state.http);
    let login = state
        .auth
        .step_up(&user, factor(field, &value), &meta.client_ip)
        .await
        .map_err(wrong_code_is_a_field_error(field))?;
    match &user.identity {
        Identity::Session { session, .. } => {
            let s = state
                .auth
                .stepped_up_session(session, &user.user, login)
                .await?;
            let mut jar = Jar::new(&state.http, meta.secure);
            jar.set_session(&s.cookie, s.cookie_max_age);
            jar.set_csrf(&s.csrf_token);
            Ok((jar.into_headers(), Json(json!({}))).into_response())
        }
        Identity::Bearer { claims, .. } => {
            let access = state.auth.stepped_up_access(claims, login)?;
            Ok(Json(json!({ "access": access })).into_response())
        }
    }
}

/// `POST /api/auth/mfa/recovery-codes/` `{"code"}` or `{"recovery_code"}`: a new set.
pub async fn regenerate_recovery_codes(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let (mut parts, input) = parts_and_input(&state, req).await?;
    let user = AuthUser::from_request_parts(&mut parts, &state).await?;
    let (field, value) = presented_factor(&input)?;
    let meta = request::meta(&mut parts, &state.http);
    let codes = state
        .auth
        .regenerate_recovery_codes(&user, factor(field, &value), &meta.client_ip)
        .await
        .map_err(wrong_code_is_a_field_error(field))?;
    Ok(Json(json!({ "recovery_codes": codes })).into_response())
}

/// The recovery codes of an enrolment the second step confirmed, as the answer's extra field.
fn recovery_codes(codes: Option<Vec<String>>) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(codes) = codes {
        m.insert("recovery_codes".into(), json!(codes));
    }
    m
}

/// `POST /api/auth/login/mfa/` `{"challenge", "code" | "recovery_code"}`: the session login's
/// second step. CSRF-protected like the login itself; on success the same cookies and body.
pub async fn complete_session_login(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let r = issued::session_login_request(&state, req).await?;
    let [challenge] = r.input.strings([("challenge", Trim::Yes)])?;
    let presented = presented_login_factor(&r.input)?;
    let (s, codes) = state
        .auth
        .login_session_second_factor(
            &challenge,
            presented.factor(),
            r.device,
            r.previous.as_deref(),
        )
        .await?;
    tracing::info!(user_id = s.user.id, "session login with a second factor");
    issued::session_answer(&state, r.secure, &s, recovery_codes(codes))
}

/// `POST /api/token/mfa/` `{"challenge", "code" | "recovery_code"}`: the token login's second
/// step; on success the same pair (or, in refresh-cookie mode, the cookie and `access`).
pub async fn complete_token_login(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let (mut parts, input) = parts_and_input(&state, req).await?;
    let [challenge] = input.strings([("challenge", Trim::Yes)])?;
    let presented = presented_login_factor(&input)?;
    let meta = request::meta(&mut parts, &state.http);
    let (pair, codes) = state
        .auth
        .obtain_pair_second_factor(&challenge, presented.factor(), &meta.client_ip)
        .await?;
    Ok(issued::pair_answer(
        &state,
        meta.secure,
        pair,
        recovery_codes(codes),
    ))
}
