//! `/api/admin/permissions/…` (the codename catalogue, Django's `auth.Permission`) and
//! `/api/admin/object-permissions/…` (per-object grants, django-guardian's rows).

use super::{
    Caller, PathArgs, blank_text, changed, codename_refused, int_field, pk_refused, required_text,
};
use crate::body::{Input, Trim};
use crate::error::{ApiError, FieldErrors, FieldProblem};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sekisho_core::AuthError;
use sekisho_core::authz::admin::AdminArea;
use sekisho_core::authz::{
    ObjectGrant, ObjectGrantQuery, ObjectRef, Principal, object_type_of, rules,
};
use serde_json::{Value, json};

/// A permission's label from the body (blank allowed), checked as a field.
fn permission_name(input: &Input, errors: &mut FieldErrors) -> Option<String> {
    let name = blank_text(input, "name", errors)?;
    if let Err(m) = rules::validate_permission_name(&name) {
        errors.add("name", FieldProblem::Other(m));
    }
    Some(name)
}

/// `GET /api/admin/permissions/` → `[{id, codename, name}]`, by codename.
pub async fn permissions(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let admin = caller.admin(AdminArea::Permissions)?;
    Ok(Json(json!(state.auth.admin_permissions(admin).await?)))
}

/// `POST /api/admin/permissions/` `{codename, name?}` → 201 the permission.
pub async fn create_permission(
    State(state): State<AppState>,
    caller: Caller,
    input: Input,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let admin = caller.admin(AdminArea::Permissions)?;
    let mut errors = FieldErrors::default();
    let codename = required_text(&input, "codename", Trim::Yes, &mut errors);
    if !codename.is_empty()
        && let Err(m) = rules::validate_codename(&codename)
    {
        errors.add("codename", FieldProblem::Other(m));
    }
    let name = permission_name(&input, &mut errors).unwrap_or_default();
    errors.check()?;
    let p = state
        .auth
        .admin_create_permission(admin, &codename, &name)
        .await?;
    Ok((StatusCode::CREATED, Json(json!(p))))
}

/// `GET /api/admin/permissions/{codename}/`.
pub async fn permission(
    State(state): State<AppState>,
    caller: Caller,
    args: PathArgs,
) -> Result<Json<Value>, ApiError> {
    let admin = caller.admin(AdminArea::Permissions)?;
    let codename = args.text("codename")?;
    Ok(Json(json!(
        state.auth.admin_permission(admin, codename).await?
    )))
}

/// `PATCH /api/admin/permissions/{codename}/` `{name}`; without `name` nothing changes.
pub async fn rename_permission(
    State(state): State<AppState>,
    caller: Caller,
    args: PathArgs,
    input: Input,
) -> Result<Json<Value>, ApiError> {
    let admin = caller.admin(AdminArea::Permissions)?;
    let codename = args.text("codename")?;
    let mut errors = FieldErrors::default();
    let name = permission_name(&input, &mut errors);
    errors.check()?;
    let p = match name {
        Some(name) => {
            state
                .auth
                .admin_rename_permission(admin, codename, &name)
                .await?
        }
        None => state.auth.admin_permission(admin, codename).await?,
    };
    Ok(Json(json!(p)))
}

/// `DELETE /api/admin/permissions/{codename}/` → 204, with every grant of it.
pub async fn delete_permission(
    State(state): State<AppState>,
    caller: Caller,
    args: PathArgs,
) -> Result<StatusCode, ApiError> {
    let admin = caller.admin(AdminArea::Permissions)?;
    let codename = args.text("codename")?;
    state.auth.admin_delete_permission(admin, codename).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn grant_view(g: &ObjectGrant) -> Value {
    let (user, group) = match g.principal {
        Principal::User(id) => (Some(id), None),
        Principal::Group(id) => (None, Some(id)),
    };
    json!({
        "user": user,
        "group": group,
        "permission": g.permission,
        "object_type": g.object.object_type,
        "object_id": g.object.object_id,
    })
}

/// `GET /api/admin/object-permissions/?user=&group=&permission=&object_type=&object_id=`,
/// paginated.
pub async fn object_grants(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let admin = caller.admin(AdminArea::Permissions)?;
    let q = caller.query();
    let mut errors = FieldErrors::default();
    let user = q.int("user", &mut errors);
    let group = q.int("group", &mut errors);
    let principal = match (user, group) {
        (Some(_), Some(_)) => {
            errors.add("non_field_errors", FieldProblem::OneOf("user", "group"));
            None
        }
        (Some(u), None) => Some(Principal::User(u)),
        (None, Some(g)) => Some(Principal::Group(g)),
        (None, None) => None,
    };
    let permission = q.text("permission", &mut errors);
    let object_type = q.text("object_type", &mut errors);
    let object_id = q.text("object_id", &mut errors);
    errors.check()?;
    let w = caller.window()?;
    let filter = ObjectGrantQuery {
        principal,
        permission,
        object_type,
        object_id,
        offset: w.offset,
        limit: w.size,
    };
    let page = state.auth.admin_object_grants(admin, &filter).await?;
    let page = caller.page(&w, page, grant_view)?;
    Ok(Json(page))
}

/// `{user | group, permission, object_type?, object_id}`; the type defaults to the codename's
/// (`shop.change_order` → `shop.order`).
fn object_grant(input: &Input) -> Result<ObjectGrant, ApiError> {
    let mut errors = FieldErrors::default();
    let user = int_field(input, "user", &mut errors);
    let group = int_field(input, "group", &mut errors);
    let principal = match (user, group) {
        (Some(u), None) => Some(Principal::User(u)),
        (None, Some(g)) => Some(Principal::Group(g)),
        _ => {
            if errors.is_empty() {
                errors.add("non_field_errors", FieldProblem::OneOf("user", "group"));
            }
            None
        }
    };
    let permission = required_text(input, "permission", Trim::Yes, &mut errors);
    let object_id = match input.0.get("object_id") {
        Some(Value::Number(n)) => n.to_string(),
        _ => required_text(input, "object_id", Trim::No, &mut errors),
    };
    if !object_id.is_empty()
        && let Err(m) = rules::validate_object_id(&object_id)
    {
        errors.add("object_id", FieldProblem::Other(m));
    }
    let object_type = match input.0.get("object_type") {
        None | Some(Value::Null) => {
            let t = object_type_of(&permission);
            if t.is_none() && !permission.is_empty() {
                errors.add("object_type", FieldProblem::Required);
            }
            t
        }
        Some(_) => {
            let t = required_text(input, "object_type", Trim::Yes, &mut errors);
            if !t.is_empty()
                && let Err(m) = rules::validate_object_type(&t)
            {
                errors.add("object_type", FieldProblem::Other(m));
            }
            Some(t)
        }
    };
    errors.check()?;
    match (principal, object_type) {
        (Some(principal), Some(object_type)) => Ok(ObjectGrant {
            principal,
            permission,
            object: ObjectRef {
                object_type,
                object_id,
            },
        }),
        // Unreachable: a missing part was reported above.
        _ => Err(ApiError::field("non_field_errors", FieldProblem::Required)),
    }
}

/// Unknown users, groups and permissions named in the body are the field's 400.
fn body_refused(e: AuthError, g: &ObjectGrant) -> ApiError {
    match (e, g.principal) {
        (e @ AuthError::NotFound("user"), Principal::User(id)) => pk_refused(e, "user", "user", id),
        (e @ AuthError::NotFound("group"), Principal::Group(id)) => {
            pk_refused(e, "group", "group", id)
        }
        (e, _) => codename_refused(e, &g.permission),
    }
}

/// `POST /api/admin/object-permissions/` → `{"changed": bool}`.
pub async fn grant_object(
    State(state): State<AppState>,
    caller: Caller,
    input: Input,
) -> Result<Json<Value>, ApiError> {
    let admin = caller.admin(AdminArea::Permissions)?;
    let grant = object_grant(&input)?;
    let c = state
        .auth
        .admin_grant_object(admin, &grant)
        .await
        .map_err(|e| body_refused(e, &grant))?;
    Ok(changed(c))
}

/// `POST /api/admin/object-permissions/revoke/` (same body) → `{"changed": bool}`.
pub async fn revoke_object(
    State(state): State<AppState>,
    caller: Caller,
    input: Input,
) -> Result<Json<Value>, ApiError> {
    let admin = caller.admin(AdminArea::Permissions)?;
    let grant = object_grant(&input)?;
    let c = state
        .auth
        .admin_revoke_object(admin, &grant)
        .await
        .map_err(|e| body_refused(e, &grant))?;
    Ok(changed(c))
}
