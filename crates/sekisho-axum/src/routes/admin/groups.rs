//! `/api/admin/groups/…`: groups (Django's `auth.Group`), their members and their model-wide
//! permissions.

use super::{Caller, PathArgs, changed, codename_refused, pk_refused, required_int, required_text};
use crate::body::{Input, Trim};
use crate::error::{ApiError, FieldErrors, FieldProblem};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sekisho_core::authz::admin::AdminArea;
use sekisho_core::authz::{Principal, rules};
use serde_json::{Value, json};

/// A group name from the body, checked as a field.
fn group_name(input: &Input) -> Result<String, ApiError> {
    let mut errors = FieldErrors::default();
    let name = required_text(input, "name", Trim::Yes, &mut errors);
    if !name.is_empty()
        && let Err(m) = rules::validate_group_name(&name)
    {
        errors.add("name", FieldProblem::Other(m));
    }
    errors.check()?;
    Ok(name)
}

/// `GET /api/admin/groups/` → `[{id, name, permissions}]`, by name.
pub async fn groups(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let admin = caller.admin(AdminArea::Groups)?;
    Ok(Json(json!(state.auth.admin_groups(admin).await?)))
}

/// `POST /api/admin/groups/` `{name}` → 201 the group.
pub async fn create_group(
    State(state): State<AppState>,
    caller: Caller,
    input: Input,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let admin = caller.admin(AdminArea::Groups)?;
    let name = group_name(&input)?;
    let group = state.auth.admin_create_group(admin, &name).await?;
    Ok((StatusCode::CREATED, Json(json!(group))))
}

/// `GET /api/admin/groups/{id}/`.
pub async fn group(
    State(state): State<AppState>,
    caller: Caller,
    args: PathArgs,
) -> Result<Json<Value>, ApiError> {
    let admin = caller.admin(AdminArea::Groups)?;
    let id = args.id("id")?;
    Ok(Json(json!(state.auth.admin_group(admin, id).await?)))
}

/// `PATCH /api/admin/groups/{id}/` `{name}`; without `name` nothing changes.
pub async fn rename_group(
    State(state): State<AppState>,
    caller: Caller,
    args: PathArgs,
    input: Input,
) -> Result<Json<Value>, ApiError> {
    let admin = caller.admin(AdminArea::Groups)?;
    let id = args.id("id")?;
    let group = if input.0.contains_key("name") {
        let name = group_name(&input)?;
        state.auth.admin_rename_group(admin, id, &name).await?
    } else {
        state.auth.admin_group(admin, id).await?
    };
    Ok(Json(json!(group)))
}

/// `DELETE /api/admin/groups/{id}/` → 204; memberships and grants of the group go with it.
pub async fn delete_group(
    State(state): State<AppState>,
    caller: Caller,
    args: PathArgs,
) -> Result<StatusCode, ApiError> {
    let admin = caller.admin(AdminArea::Groups)?;
    let id = args.id("id")?;
    state.auth.admin_delete_group(admin, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/admin/groups/{id}/members/` → `[{id, username}]`, by id.
pub async fn members(
    State(state): State<AppState>,
    caller: Caller,
    args: PathArgs,
) -> Result<Json<Value>, ApiError> {
    let admin = caller.admin(AdminArea::Groups)?;
    let id = args.id("id")?;
    let mut out = Vec::new();
    for uid in state.auth.admin_group_members(admin, id).await? {
        if let Some(u) = state.auth.user(uid).await? {
            out.push(json!({ "id": u.id, "username": u.username }));
        }
    }
    Ok(Json(Value::Array(out)))
}

/// `POST /api/admin/groups/{id}/members/` `{user_id}` → `{"changed": bool}`.
pub async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    args: PathArgs,
    input: Input,
) -> Result<Json<Value>, ApiError> {
    let admin = caller.admin(AdminArea::Groups)?;
    let id = args.id("id")?;
    let mut errors = FieldErrors::default();
    let user = required_int(&input, "user_id", &mut errors);
    errors.check()?;
    let user = user.unwrap_or_default();
    let c = state
        .auth
        .admin_add_member(admin, id, user)
        .await
        .map_err(|e| pk_refused(e, "user", "user_id", user))?;
    Ok(changed(c))
}

/// `DELETE /api/admin/groups/{id}/members/{user_id}/` → `{"changed": bool}`.
pub async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    args: PathArgs,
) -> Result<Json<Value>, ApiError> {
    let admin = caller.admin(AdminArea::Groups)?;
    let id = args.id("id")?;
    let user = args.id("user_id")?;
    Ok(changed(
        state.auth.admin_remove_member(admin, id, user).await?,
    ))
}

/// `POST /api/admin/groups/{id}/permissions/` `{permission}` → `{"changed": bool}`.
pub async fn grant_group(
    State(state): State<AppState>,
    caller: Caller,
    args: PathArgs,
    input: Input,
) -> Result<Json<Value>, ApiError> {
    let admin = caller.admin(AdminArea::Permissions)?;
    let id = args.id("id")?;
    let [codename] = input.strings([("permission", Trim::Yes)])?;
    let c = state
        .auth
        .admin_grant(admin, Principal::Group(id), &codename)
        .await
        .map_err(|e| codename_refused(e, &codename))?;
    Ok(changed(c))
}

/// `DELETE /api/admin/groups/{id}/permissions/{codename}/` → `{"changed": bool}`.
pub async fn revoke_group(
    State(state): State<AppState>,
    caller: Caller,
    args: PathArgs,
) -> Result<Json<Value>, ApiError> {
    let admin = caller.admin(AdminArea::Permissions)?;
    let id = args.id("id")?;
    let codename = args.text("codename")?;
    let c = state
        .auth
        .admin_revoke(admin, Principal::Group(id), codename)
        .await?;
    Ok(changed(c))
}
