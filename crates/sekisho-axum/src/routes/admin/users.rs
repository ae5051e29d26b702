//! `/api/admin/users/…`: listing and searching users, creating them, changing their profile and
//! flags, their password, ending their logins, and their model-wide permission grants.

use super::{Caller, PathArgs, blank_text, bool_field, changed, codename_refused, required_text};
use crate::body::{Input, Trim};
use crate::error::{ApiError, FieldErrors, FieldProblem};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sekisho_core::account::{NewUser, ProfileUpdate, User, rules};
use sekisho_core::authz::admin::AdminArea;
use sekisho_core::authz::{AdminUserUpdate, Principal, UserQuery};
use serde_json::{Value, json};

/// A user as an administrator sees it: [`crate::routes::UserView`]'s fields plus `is_active`.
pub struct AdminUserView<'a>(pub &'a User);

impl serde::Serialize for AdminUserView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let u = self.0;
        let mut m = s.serialize_struct("AdminUser", 10)?;
        m.serialize_field("id", &u.id)?;
        m.serialize_field("username", &u.username)?;
        m.serialize_field("email", &u.email)?;
        m.serialize_field("first_name", &u.first_name)?;
        m.serialize_field("last_name", &u.last_name)?;
        m.serialize_field("is_active", &u.is_active)?;
        m.serialize_field("is_staff", &u.is_staff)?;
        m.serialize_field("is_superuser", &u.is_superuser)?;
        m.serialize_field("groups", &u.groups)?;
        m.serialize_field("permissions", &u.permissions)?;
        m.end()
    }
}

fn view(u: &User) -> Json<Value> {
    Json(json!(AdminUserView(u)))
}

/// Django's profile limits, as field errors (core checks them again).
fn check_profile(update: &ProfileUpdate, errors: &mut FieldErrors) {
    if let Err((field, problem)) = rules::validate_profile(update) {
        errors.add(field.name(), FieldProblem::Profile(problem));
    }
}

/// A new password, refused as the field's error when unusable (empty or huge).
fn check_password(password: &str, errors: &mut FieldErrors) {
    if !password.is_empty()
        && let Err(e) = rules::validate_password(password)
    {
        errors.add("password", FieldProblem::Other(e.to_string()));
    }
}

/// `GET /api/admin/users/?search=&page=&page_size=`.
pub async fn users(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let admin = caller.admin(AdminArea::Users)?;
    let mut errors = FieldErrors::default();
    let search = caller.query().text("search", &mut errors);
    errors.check()?;
    let w = caller.window()?;
    let q = UserQuery {
        search,
        offset: w.offset,
        limit: w.size,
    };
    let page = state.auth.admin_users(admin, &q).await?;
    let page = caller.page(&w, page, |u| json!(AdminUserView(u)))?;
    Ok(Json(page))
}

/// `POST /api/admin/users/` `{username, password, email?, is_staff?, is_superuser?}` → 201.
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    input: Input,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let admin = caller.admin(AdminArea::Users)?;
    let mut errors = FieldErrors::default();
    let username = required_text(&input, "username", Trim::Yes, &mut errors);
    let password = required_text(&input, "password", Trim::No, &mut errors);
    let email = blank_text(&input, "email", &mut errors);
    let is_staff = bool_field(&input, "is_staff", &mut errors).unwrap_or(false);
    let is_superuser = bool_field(&input, "is_superuser", &mut errors).unwrap_or(false);
    if !username.is_empty()
        && let Err(m) = rules::validate_username(&username)
    {
        errors.add("username", FieldProblem::Other(m));
    }
    check_password(&password, &mut errors);
    check_profile(
        &ProfileUpdate {
            email: email.clone(),
            ..ProfileUpdate::default()
        },
        &mut errors,
    );
    errors.check()?;
    let new = NewUser {
        username,
        email: email.unwrap_or_default(),
        is_staff,
        is_superuser,
    };
    let user = state.auth.admin_create_user(admin, &new, &password).await?;
    Ok((StatusCode::CREATED, view(&user)))
}

/// `GET /api/admin/users/{id}/`.
pub async fn user(
    State(state): State<AppState>,
    caller: Caller,
    args: PathArgs,
) -> Result<Json<Value>, ApiError> {
    let admin = caller.admin(AdminArea::Users)?;
    let id = args.id("id")?;
    let u = state.auth.admin_user(admin, id).await?;
    Ok(view(&u))
}

/// `PATCH /api/admin/users/{id}/`: any of `email, first_name, last_name, is_active, is_staff,
/// is_superuser`; the others are ignored. Deactivating ends every login of the user.
pub async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    args: PathArgs,
    input: Input,
) -> Result<Json<Value>, ApiError> {
    let admin = caller.admin(AdminArea::Users)?;
    let id = args.id("id")?;
    let mut errors = FieldErrors::default();
    let update = AdminUserUpdate {
        email: blank_text(&input, "email", &mut errors),
        first_name: blank_text(&input, "first_name", &mut errors),
        last_name: blank_text(&input, "last_name", &mut errors),
        is_active: bool_field(&input, "is_active", &mut errors),
        is_staff: bool_field(&input, "is_staff", &mut errors),
        is_superuser: bool_field(&input, "is_superuser", &mut errors),
    };
    check_profile(
        &ProfileUpdate {
            email: update.email.clone(),
            first_name: update.first_name.clone(),
            last_name: update.last_name.clone(),
        },
        &mut errors,
    );
    errors.check()?;
    Ok(view(
        &state.auth.admin_update_user(admin, id, &update).await?,
    ))
}

/// `POST /api/admin/users/{id}/password/` `{password}` → `{}`; every login of the user ends.
pub async fn set_password(
    State(state): State<AppState>,
    caller: Caller,
    args: PathArgs,
    input: Input,
) -> Result<Json<Value>, ApiError> {
    let admin = caller.admin(AdminArea::Users)?;
    let id = args.id("id")?;
    let mut errors = FieldErrors::default();
    let password = required_text(&input, "password", Trim::No, &mut errors);
    check_password(&password, &mut errors);
    errors.check()?;
    state.auth.admin_set_password(admin, id, &password).await?;
    Ok(Json(json!({})))
}

/// `POST /api/admin/users/{id}/deactivate/` → the user, now inactive, logged out everywhere.
pub async fn deactivate(
    State(state): State<AppState>,
    caller: Caller,
    args: PathArgs,
) -> Result<Json<Value>, ApiError> {
    let admin = caller.admin(AdminArea::Users)?;
    let id = args.id("id")?;
    state.auth.admin_deactivate(admin, id).await?;
    let u = state.auth.admin_user(admin, id).await?;
    Ok(view(&u))
}

/// `POST /api/admin/users/{id}/logout-all/` → `{}`: every session and refresh family ends.
pub async fn end_logins(
    State(state): State<AppState>,
    caller: Caller,
    args: PathArgs,
) -> Result<Json<Value>, ApiError> {
    let admin = caller.admin(AdminArea::Users)?;
    let id = args.id("id")?;
    state.auth.admin_end_logins(admin, id).await?;
    Ok(Json(json!({})))
}

/// `POST /api/admin/users/{id}/permissions/` `{permission}` → `{"changed": bool}` (model-wide).
pub async fn grant_user(
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
        .admin_grant(admin, Principal::User(id), &codename)
        .await
        .map_err(|e| codename_refused(e, &codename))?;
    Ok(changed(c))
}

/// `DELETE /api/admin/users/{id}/permissions/{codename}/` → `{"changed": bool}`.
pub async fn revoke_user(
    State(state): State<AppState>,
    caller: Caller,
    args: PathArgs,
) -> Result<Json<Value>, ApiError> {
    let admin = caller.admin(AdminArea::Permissions)?;
    let id = args.id("id")?;
    let codename = args.text("codename")?;
    let c = state
        .auth
        .admin_revoke(admin, Principal::User(id), codename)
        .await?;
    Ok(changed(c))
}
