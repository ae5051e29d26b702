//! The authorization data model, shaped like Django's `auth` app (groups, permissions with
//! `app.action_model` codenames) and django-guardian (per-object grants: permission + object
//! type + object id, to a user or a group), so that a Django team recognises every row.

use crate::account::UserId;
use crate::clock::Timestamp;
use serde::Serialize;

pub type GroupId = i64;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Group {
    pub id: GroupId,
    pub name: String,
    /// Codenames granted to the group, sorted.
    pub permissions: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Permission {
    pub id: i64,
    /// `app.action_model`, e.g. `shop.view_order`.
    pub codename: String,
    /// A human-readable label (Django's `Permission.name`).
    pub name: String,
}

/// Who a grant is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Principal {
    User(UserId),
    Group(GroupId),
}

/// One object in guardian's sense: a type (`app.model`) and its primary key as text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    pub object_type: String,
    pub object_id: String,
}

/// A per-object grant as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectGrant {
    pub principal: Principal,
    pub permission: String,
    pub object: ObjectRef,
}

/// Filters for listing object grants (administration); every field narrows.
#[derive(Clone, Debug, Default)]
pub struct ObjectGrantQuery {
    pub principal: Option<Principal>,
    pub permission: Option<String>,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub offset: u64,
    pub limit: u64,
}

/// One page of object ids a user may act on, in ascending order. `next` is the cursor for
/// the following page (the last id of this one), `None` at the end.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ObjectIds {
    /// The user may act on every object of the type (a superuser, or a model-wide grant):
    /// the ids are then not enumerated.
    pub all: bool,
    pub ids: Vec<String>,
    pub next: Option<String>,
}

/// A page of results (DRF's `PageNumberPagination` shape is built from it by the HTTP layer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub count: u64,
    pub results: Vec<T>,
}

/// Listing users: a case-insensitive substring search over username, email, first and last
/// name, then an offset/limit window, ordered by id.
#[derive(Clone, Debug, Default)]
pub struct UserQuery {
    pub search: Option<String>,
    pub offset: u64,
    pub limit: u64,
}

/// The fields an administrator may change on a user. `None` leaves a field alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdminUserUpdate {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub is_active: Option<bool>,
    pub is_staff: Option<bool>,
    pub is_superuser: Option<bool>,
}

/// Who did an administrative action and from where (the audit log's "who" and "from where").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Actor {
    /// `None` for the CLI (a local operator, not a user).
    pub user_id: Option<UserId>,
    /// The username, or `cli:<os user>` for the command line.
    pub name: String,
    /// The client address (after trusted-proxy handling), empty for the CLI.
    pub remote_addr: String,
    pub request_id: String,
}

/// One administrative action, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    #[serde(serialize_with = "serialize_ms")]
    pub at: Timestamp,
    pub actor_id: Option<UserId>,
    pub actor: String,
    /// A dotted verb, e.g. `user.create`, `group.grant`, `object.revoke`.
    pub action: String,
    /// What was acted on, e.g. `user:42`, `group:7`, `permission:shop.view_order`.
    pub target: String,
    /// A JSON object with the action's details (never a secret).
    pub detail: serde_json::Value,
    pub remote_addr: String,
    pub request_id: String,
}

fn serialize_ms<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(t.millis())
}

/// An audit entry before it is stored (the store assigns the id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditEntry {
    pub at: Timestamp,
    pub actor: Actor,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
}

#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub offset: u64,
    pub limit: u64,
}

/// The object type a codename is about, Django style: `shop.change_order` → `shop.order`.
/// `None` when the codename has no `action_model` part.
pub fn object_type_of(codename: &str) -> Option<String> {
    let (app, action_model) = codename.split_once('.')?;
    let (_, model) = action_model.split_once('_')?;
    (!app.is_empty() && !model.is_empty()).then(|| format!("{app}.{model}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_type_follows_djangos_naming() {
        assert_eq!(
            object_type_of("shop.change_order").as_deref(),
            Some("shop.order")
        );
        assert_eq!(
            object_type_of("shop.view_order_line").as_deref(),
            Some("shop.order_line")
        );
        assert_eq!(object_type_of("shop.order"), None);
        assert_eq!(object_type_of("nodot_x"), None);
        assert_eq!(object_type_of(".view_x"), None);
    }
}
