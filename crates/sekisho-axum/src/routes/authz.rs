//! The check API for services that are not behind the proxy: `POST /api/authz/check/` (may
//! user U do P, on object O?) and `POST /api/authz/list/` (which objects of a type may U act
//! on with P?). The same rules as the forward-auth gate and the library's guards.
//!
//! A caller asks about itself by default; naming another `user` needs staff or the
//! `sekisho.check_permissions` permission (a service account's grant).

use crate::body::{Input, Trim};
use crate::error::{ApiError, FieldErrors, FieldProblem};
use crate::extract::identity::AuthUser;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use sekisho_core::AuthError;
use sekisho_core::account::User;
use sekisho_core::authz::{self, ObjectRef, object_type_of};
use serde_json::{Value, json};
use std::sync::Arc;

/// The permission that lets a caller ask about other users.
pub const CHECK_OTHERS: &str = "sekisho.check_permissions";

/// The page size of `list` when the caller names none.
const DEFAULT_LIST_LIMIT: u64 = 1000;

fn integer_field(input: &Input, name: &str) -> Result<Option<i64>, ApiError> {
    let invalid = || {
        ApiError::field(
            name,
            FieldProblem::Other("A valid integer is required.".into()),
        )
    };
    match input.0.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(invalid),
        Some(Value::String(s)) => s.trim().parse::<i64>().map(Some).map_err(|_| invalid()),
        Some(_) => Err(invalid()),
    }
}

/// An object id may be sent as a string or a number (`42` and `"42"` are the same row).
fn object_id_field(input: &Input) -> Result<Option<String>, ApiError> {
    match input.0.get("object_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => input.optional_string("object_id", Trim::No),
    }
}

/// The user the question is about: the caller, or (with the right) the named one.
async fn subject(
    state: &AppState,
    caller: &AuthUser,
    input: &Input,
) -> Result<Arc<User>, ApiError> {
    let Some(id) = integer_field(input, "user")? else {
        return Ok(caller.user.clone());
    };
    if id == caller.id {
        return Ok(caller.user.clone());
    }
    if !(authz::is_staff(caller) || authz::has_perm(caller, CHECK_OTHERS)) {
        return Err(AuthError::PermissionDenied.into());
    }
    state.auth.user(id).await?.ok_or_else(|| {
        ApiError::field(
            "user",
            FieldProblem::Other(format!("Invalid pk \"{id}\" - object does not exist.")),
        )
    })
}

fn object_type(input: &Input, permission: &str) -> Result<String, ApiError> {
    match input.optional_string("object_type", Trim::Yes)? {
        Some(t) => {
            authz::rules::validate_object_type(&t)
                .map_err(|m| ApiError::field("object_type", FieldProblem::Other(m)))?;
            Ok(t)
        }
        None => object_type_of(permission).ok_or_else(|| {
            ApiError::field(
                "object_type",
                FieldProblem::Other("This field is required for this permission.".into()),
            )
        }),
    }
}

fn permission(input: &Input) -> Result<String, ApiError> {
    let [p] = input.strings([("permission", Trim::Yes)])?;
    authz::rules::validate_codename(&p)
        .map_err(|m| ApiError::field("permission", FieldProblem::Other(m)))?;
    Ok(p)
}

/// `POST /api/authz/check/` `{permission, object_type?, object_id?, user?}` →
/// `{"allowed": bool}`. Without `object_id` it is Django's `has_perm`.
///
/// The caller is authenticated before the body is read (the extractors run in order), as on
/// every other authenticated endpoint: an anonymous request is 401 whatever its body.
pub async fn check(
    State(state): State<AppState>,
    caller: AuthUser,
    input: Input,
) -> Result<Json<Value>, ApiError> {
    let perm = permission(&input)?;
    let object_id = object_id_field(&input)?;
    let user = subject(&state, &caller, &input).await?;
    let allowed = match object_id {
        None => authz::has_perm(&user, &perm),
        Some(id) => {
            authz::rules::validate_object_id(&id)
                .map_err(|m| ApiError::field("object_id", FieldProblem::Other(m)))?;
            let object = ObjectRef {
                object_type: object_type(&input, &perm)?,
                object_id: id,
            };
            state.auth.has_object_perm(&user, &perm, &object).await?
        }
    };
    Ok(Json(json!({ "allowed": allowed })))
}

/// `POST /api/authz/list/` `{permission, object_type?, user?, after?, limit?}` →
/// `{"all": bool, "object_ids": [...], "next": cursor|null}`: `all` means every object of the
/// type (a superuser or a model-wide grant), so the caller should not filter at all.
/// Authenticated before the body is read, as `check`.
pub async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
    input: Input,
) -> Result<Json<Value>, ApiError> {
    let perm = permission(&input)?;
    let object_type = object_type(&input, &perm)?;
    let after = match input.0.get("after") {
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => input.optional_string("after", Trim::No)?,
    };
    let mut errors = FieldErrors::default();
    let limit = match integer_field(&input, "limit")? {
        None => DEFAULT_LIST_LIMIT,
        Some(n) if (1..=authz::MAX_OBJECT_PAGE as i64).contains(&n) => n as u64,
        Some(_) => {
            errors.add(
                "limit",
                FieldProblem::Other(format!(
                    "Ensure this value is between 1 and {}.",
                    authz::MAX_OBJECT_PAGE
                )),
            );
            0
        }
    };
    errors.check()?;
    let user = subject(&state, &caller, &input).await?;
    let ids = state
        .auth
        .objects_for(&user, &perm, &object_type, after.as_deref(), limit)
        .await?;
    Ok(Json(json!({
        "all": ids.all,
        "object_ids": ids.ids,
        "next": ids.next,
    })))
}
