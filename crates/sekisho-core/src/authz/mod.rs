//! Authorization: what an authenticated user may do — the same rules whichever way the caller
//! logged in (DESIGN §1.6). Django's `has_perm` and DRF's `IsAdminUser` over model-wide
//! permissions, django-guardian's per-object grants, the policy a forward-auth gate applies
//! ([`policy`]), and the administration of all of it ([`admin`], every change audited).

pub mod admin;
pub mod model;
pub mod policy;
pub mod rules;

pub use model::{
    Actor, AdminUserUpdate, AuditEntry, AuditQuery, Group, GroupId, ObjectGrant, ObjectGrantQuery,
    ObjectIds, ObjectRef, Page, Permission, Principal, UserQuery, object_type_of,
};

use crate::account::User;
use crate::auth::Auth;
use crate::error::AuthError;

/// Django's `has_perm`: active superusers have every permission; inactive users none.
pub fn has_perm(user: &User, codename: &str) -> bool {
    user.is_active && (user.is_superuser || user.permissions.iter().any(|p| p == codename))
}

/// DRF's `IsAdminUser`: active staff.
pub fn is_staff(user: &User) -> bool {
    user.is_active && user.is_staff
}

/// Whether the user is an active member of the group.
pub fn in_group(user: &User, group: &str) -> bool {
    user.is_active && user.groups.iter().any(|g| g == group)
}

/// The most ids one `objects_for` page returns.
pub const MAX_OBJECT_PAGE: u64 = 10_000;

impl Auth {
    /// May the user act on the object? guardian's checker with global permissions accepted:
    /// an active superuser may; a model-wide grant of the permission covers every object;
    /// otherwise a per-object grant to the user or one of their groups. Inactive users may
    /// not.
    pub async fn has_object_perm(
        &self,
        user: &User,
        codename: &str,
        object: &ObjectRef,
    ) -> Result<bool, AuthError> {
        if !user.is_active {
            return Ok(false);
        }
        if has_perm(user, codename) {
            return Ok(true);
        }
        if rules::validate_codename(codename).is_err()
            || rules::validate_object_type(&object.object_type).is_err()
            || rules::validate_object_id(&object.object_id).is_err()
        {
            // No grant can exist for a malformed name: refused, without asking storage.
            return Ok(false);
        }
        Ok(self
            .authz
            .has_object_grant(user.id, codename, object)
            .await?)
    }

    /// The ids of `object_type` the user may act on with `codename` (for filtering a list):
    /// `all` when a superuser or a model-wide grant covers every object; otherwise the
    /// per-object grants, ascending, one page of at most `limit` after the cursor `after`.
    pub async fn objects_for(
        &self,
        user: &User,
        codename: &str,
        object_type: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<ObjectIds, AuthError> {
        rules::validate_codename(codename).map_err(AuthError::Invalid)?;
        rules::validate_object_type(object_type).map_err(AuthError::Invalid)?;
        if !user.is_active {
            return Ok(ObjectIds::default());
        }
        if has_perm(user, codename) {
            return Ok(ObjectIds {
                all: true,
                ..ObjectIds::default()
            });
        }
        let limit = limit.clamp(1, MAX_OBJECT_PAGE);
        Ok(self
            .authz
            .object_ids(user.id, codename, object_type, after, limit)
            .await?)
    }
}
