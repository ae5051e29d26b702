//! The administration API under `/api/admin/`: users, groups, permissions, per-object grants
//! and the audit log. Every rule (who may do what, which changes need a superuser, what is
//! recorded) is in core's `authz::admin`; these handlers only translate HTTP to the `Auth`
//! methods and back, in DRF's shapes (field errors, `PageNumberPagination`, 201 / 204).
//!
//! The caller is authenticated like on every endpoint (bearer, or session with the CSRF check on
//! unsafe methods). The area's permission is checked before the input is, so a caller without
//! it learns nothing about the input or the rows (DRF checks permissions before validation).

mod audit;
mod groups;
mod permissions;
mod users;

pub use audit::audit;
pub use groups::{
    add_member, create_group, delete_group, grant_group, group, groups, members, remove_member,
    rename_group, revoke_group,
};
pub use permissions::{
    create_permission, delete_permission, grant_object, object_grants, permission, permissions,
    rename_permission, revoke_object,
};
pub use users::{
    create_user, deactivate, end_logins, grant_user, revoke_user, set_password, update_user, user,
    users,
};

use crate::body::{Input, Trim};
use crate::error::{ApiError, FieldErrors, FieldProblem};
use crate::extract::identity::AuthUser;
use crate::extract::request;
use crate::state::AppState;
use axum::extract::{FromRef, FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use sekisho_core::AuthError;
use sekisho_core::authz::Page;
use sekisho_core::authz::admin::{Admin, AdminArea, MAX_PAGE};
use serde_json::{Value, json};

/// DRF's `PAGE_SIZE` for the admin listings when the request names none.
pub const DEFAULT_PAGE_SIZE: u64 = 50;

/// The authenticated caller as an administrator: who, from which address, under which request
/// id (the audit log's "who" and "from where"), plus what paging links need.
pub struct Caller {
    admin: Admin,
    /// `scheme://host` as the client sees this server (for absolute `next`/`previous` links).
    origin: String,
    path: String,
    query: Query,
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        let app = AppState::from_ref(state);
        let meta = request::meta(parts, &app.http);
        // The pipeline has put the request's id (the client's when sane, else a new one) here.
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Ok(Caller {
            admin: Admin::user(user.user.clone(), meta.client_ip.clone(), request_id),
            origin: meta.own_origin.clone(),
            path: parts.uri.path().to_string(),
            query: Query::parse(parts.uri.query()),
        })
    }
}

impl Caller {
    /// The administrator, if they may work in `area` at all (core's rule; core checks again,
    /// together with the finer rules).
    fn admin(&self, area: AdminArea) -> Result<&Admin, ApiError> {
        if self.admin.may(area) {
            Ok(&self.admin)
        } else {
            Err(AuthError::PermissionDenied.into())
        }
    }

    fn query(&self) -> &Query {
        &self.query
    }

    /// The window a listing asks for, DRF's `PageNumberPagination`: `?page=` (a number from 1)
    /// and `?page_size=` (default 50, capped at [`MAX_PAGE`]).
    fn window(&self) -> Result<Window, ApiError> {
        let size = page_size(self.query.last("page_size"));
        let number = match self.query.last("page") {
            None => 1,
            Some(p) => parse_digits(p)
                .filter(|n| *n >= 1)
                .ok_or(ApiError::InvalidPage)?,
        };
        let offset = (number - 1)
            .checked_mul(size)
            .ok_or(ApiError::InvalidPage)?;
        Ok(Window {
            number,
            offset,
            size,
        })
    }

    /// `{"count", "next", "previous", "results"}` for the page fetched for `w`; a page past the
    /// end is 404 `Invalid page.` (Django's paginator: page 1 always exists, empty when there
    /// is nothing).
    fn page<T>(
        &self,
        w: &Window,
        page: Page<T>,
        view: impl Fn(&T) -> Value,
    ) -> Result<Value, ApiError> {
        if w.number > 1 && w.offset >= page.count {
            return Err(ApiError::InvalidPage);
        }
        let has_next = w.offset + (page.results.len() as u64) < page.count;
        let link = |n: Option<u64>| Value::String(self.page_link(n));
        Ok(json!({
            "count": page.count,
            "next": if has_next { link(Some(w.number + 1)) } else { Value::Null },
            "previous": match w.number {
                1 => Value::Null,
                2 => link(None),
                n => link(Some(n - 1)),
            },
            "results": page.results.iter().map(view).collect::<Vec<Value>>(),
        }))
    }

    /// This request's absolute URL with `page` set (or removed), the other parameters kept,
    /// sorted by name as DRF's `replace_query_param` writes them.
    fn page_link(&self, page: Option<u64>) -> String {
        let mut pairs: Vec<(&str, String)> = self
            .query
            .0
            .iter()
            .filter(|(k, _)| k != "page")
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        if let Some(n) = page {
            pairs.push(("page", n.to_string()));
        }
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        if query.is_empty() {
            format!("{}{}", self.origin, self.path)
        } else {
            format!("{}{}?{query}", self.origin, self.path)
        }
    }
}

/// DRF's `_positive_int(…, strict=True, cutoff=max_page_size)`: anything unusable falls back
/// to the default.
fn page_size(v: Option<&str>) -> u64 {
    match v.and_then(parse_digits) {
        Some(n) if n >= 1 => n.min(MAX_PAGE),
        _ => DEFAULT_PAGE_SIZE,
    }
}

/// Decimal digits only (no sign, no spaces), within `u64`.
fn parse_digits(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// A row id as Django's `<int:pk>` matches it: digits that fit an `i64`; anything else names
/// no row (404, never a 400 or a 500).
fn parse_id(s: &str) -> Option<i64> {
    parse_digits(s).and_then(|n| i64::try_from(n).ok())
}

/// Which page of a listing: its number (from 1), first row and size.
struct Window {
    number: u64,
    offset: u64,
    size: u64,
}

/// The query string, as decoded pairs in order.
pub struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Query {
        Query(
            q.and_then(|q| serde_urlencoded::from_str(q).ok())
                .unwrap_or_default(),
        )
    }

    /// The last value of a parameter, as Django's `QueryDict.get` gives it.
    fn last(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A text filter: `None` when absent or empty (django-filter ignores empty values).
    fn text(&self, name: &str, errors: &mut FieldErrors) -> Option<String> {
        match self.last(name) {
            Some(v) if v.contains('\0') => {
                errors.add(name, FieldProblem::NullCharacters);
                None
            }
            Some(v) if !v.is_empty() => Some(v.to_string()),
            _ => None,
        }
    }

    /// An integer filter: `None` when absent or empty.
    fn int(&self, name: &str, errors: &mut FieldErrors) -> Option<i64> {
        match self.last(name) {
            None | Some("") => None,
            Some(v) => v.trim().parse::<i64>().map_or_else(
                |_| {
                    errors.add(name, FieldProblem::NotAnInteger);
                    None
                },
                Some,
            ),
        }
    }
}

/// The route's path parameters. Never rejects: a value that is not UTF-8 simply names nothing
/// (the handler answers 404 after the permission check).
pub struct PathArgs(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for PathArgs {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(PathArgs(
            RawPathParams::from_request_parts(parts, state)
                .await
                .map(|p| {
                    p.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                })
                .unwrap_or_default(),
        ))
    }
}

impl PathArgs {
    fn text(&self, name: &str) -> Result<&str, ApiError> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or(ApiError::NotFound)
    }

    /// A numeric id; anything else is 404.
    fn id(&self, name: &str) -> Result<i64, ApiError> {
        self.text(name)
            .ok()
            .and_then(parse_id)
            .ok_or(ApiError::NotFound)
    }
}

/// A JSON integer, or a string of one (form bodies carry only strings), as DRF's
/// `IntegerField` reads it. `None` when absent or null.
fn int_field(input: &Input, name: &str, errors: &mut FieldErrors) -> Option<i64> {
    let parsed = match input.0.get(name) {
        None | Some(Value::Null) => return None,
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(_) => None,
    };
    if parsed.is_none() {
        errors.add(name, FieldProblem::NotAnInteger);
    }
    parsed
}

/// A required integer field.
fn required_int(input: &Input, name: &str, errors: &mut FieldErrors) -> Option<i64> {
    if input.0.get(name).is_none_or(Value::is_null) {
        let problem = if input.0.contains_key(name) {
            FieldProblem::Null
        } else {
            FieldProblem::Required
        };
        errors.add(name, problem);
        return None;
    }
    int_field(input, name, errors)
}

/// DRF's `BooleanField`: JSON booleans, 0/1, and the usual words (form bodies send text).
fn bool_field(input: &Input, name: &str, errors: &mut FieldErrors) -> Option<bool> {
    let v = match input.0.get(name)? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_u64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.as_str() {
            "t" | "T" | "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on"
            | "On" | "ON" | "1" => Some(true),
            "f" | "F" | "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off"
            | "Off" | "OFF" | "0" => Some(false),
            _ => None,
        },
        Value::Null => {
            errors.add(name, FieldProblem::Null);
            return None;
        }
        _ => None,
    };
    if v.is_none() {
        errors.add(name, FieldProblem::NotABoolean);
    }
    v
}

/// An optional text field that may be blank (Django's `blank=True`), trimmed; null, non-text
/// and NUL characters refused.
fn blank_text(input: &Input, name: &str, errors: &mut FieldErrors) -> Option<String> {
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

/// A required, non-blank text field, collected with the others.
fn required_text(input: &Input, name: &str, trim: Trim, errors: &mut FieldErrors) -> String {
    match input.strings([(name, trim)]) {
        Ok([v]) => v,
        Err(ApiError::Fields(m)) => {
            for (k, v) in m {
                let message = v[0].as_str().unwrap_or_default().to_string();
                errors.add(&k, FieldProblem::Other(message));
            }
            String::new()
        }
        Err(_) => String::new(),
    }
}

/// A permission codename in a body: unknown ones are the field's 400 (DRF's
/// `SlugRelatedField`), not a 404 of the URL.
fn codename_refused(e: AuthError, codename: &str) -> ApiError {
    match e {
        AuthError::NotFound("permission") => ApiError::field(
            "permission",
            FieldProblem::NoSuchSlug("codename", codename.to_string()),
        ),
        other => other.into(),
    }
}

/// A user or group id in a body: unknown ones are the field's 400 (DRF's
/// `PrimaryKeyRelatedField`).
fn pk_refused(e: AuthError, kind: &'static str, field: &str, id: i64) -> ApiError {
    match e {
        AuthError::NotFound(k) if k == kind => {
            ApiError::field(field, FieldProblem::NoSuchPk(id.to_string()))
        }
        other => other.into(),
    }
}

/// `{"changed": bool}`: whether a grant or membership changed (a repeat changes nothing).
fn changed(c: bool) -> axum::Json<Value> {
    axum::Json(json!({ "changed": c }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_digits_that_fit() {
        assert_eq!(parse_id("42"), Some(42));
        for bad in [
            "",
            "-1",
            "+1",
            " 1",
            "1.0",
            "abc",
            "99999999999999999999",
            "9223372036854775808",
        ] {
            assert_eq!(parse_id(bad), None, "{bad:?}");
        }
        assert_eq!(parse_id("9223372036854775807"), Some(i64::MAX));
    }

    #[test]
    fn page_sizes_fall_back_like_drf() {
        assert_eq!(page_size(None), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(Some("0")), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(Some("x")), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(Some("-3")), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(Some("7")), 7);
        assert_eq!(page_size(Some("100000")), MAX_PAGE);
        assert_eq!(
            page_size(Some("99999999999999999999999")),
            DEFAULT_PAGE_SIZE
        );
    }

    #[test]
    fn page_links_keep_the_query_sorted_and_replace_page() {
        let c = Caller {
            admin: sekisho_core::authz::admin::Admin::cli(),
            origin: "http://h:1".into(),
            path: "/api/admin/users/".into(),
            query: Query::parse(Some("search=a+b%25&page=2&page_size=1")),
        };
        assert_eq!(
            c.page_link(Some(3)),
            "http://h:1/api/admin/users/?page=3&page_size=1&search=a+b%25"
        );
        assert_eq!(
            c.page_link(None),
            "http://h:1/api/admin/users/?page_size=1&search=a+b%25"
        );
    }
}
