//! Administration of users, groups, permissions and grants. Every operation checks who may do
//! it (staff, or the area's `sekisho.*` permission; some changes only a superuser), validates
//! its input before storage, and writes one audit entry: a structured log line first (so an
//! outage never loses the record entirely), then the `audit_log` row.

use super::model::{
    Actor, AdminUserUpdate, AuditEntry, AuditQuery, Group, GroupId, NewAuditEntry, ObjectGrant,
    ObjectGrantQuery, Page, Permission, Principal, UserQuery,
};
use super::{has_perm, is_staff, rules};
use crate::account::{EndReason, NewUser, ProfileUpdate, User, UserId, rules as account_rules};
use crate::auth::Auth;
use crate::error::AuthError;
use serde_json::{Value, json};
use std::sync::Arc;

/// What an administrative operation touches; each has its own permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminArea {
    Users,
    Groups,
    Permissions,
    Audit,
}

impl AdminArea {
    /// The permission that grants the area to a user who is not staff.
    pub fn codename(self) -> &'static str {
        match self {
            AdminArea::Users => "sekisho.manage_users",
            AdminArea::Groups => "sekisho.manage_groups",
            AdminArea::Permissions => "sekisho.manage_permissions",
            AdminArea::Audit => "sekisho.view_audit",
        }
    }
}

/// Who is calling an administrative operation. `user` is `None` for the local CLI, which
/// has a superuser's power (it already holds the database).
#[derive(Clone, Debug)]
pub struct Admin {
    pub user: Option<Arc<User>>,
    pub actor: Actor,
}

impl Admin {
    /// The command line: a local operator.
    pub fn cli() -> Admin {
        let os_user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        Admin {
            user: None,
            actor: Actor {
                user_id: None,
                name: format!("cli:{os_user}"),
                ..Actor::default()
            },
        }
    }

    /// An authenticated user acting through the API.
    pub fn user(user: Arc<User>, remote_addr: String, request_id: String) -> Admin {
        Admin {
            actor: Actor {
                user_id: Some(user.id),
                name: user.username.clone(),
                remote_addr,
                request_id,
            },
            user: Some(user),
        }
    }

    /// Staff, or the area's permission.
    pub fn may(&self, area: AdminArea) -> bool {
        self.user
            .as_deref()
            .is_none_or(|u| is_staff(u) || has_perm(u, area.codename()))
    }

    fn is_superuser(&self) -> bool {
        self.user
            .as_deref()
            .is_none_or(|u| u.is_active && u.is_superuser)
    }

    fn require(&self, area: AdminArea) -> Result<(), AuthError> {
        if self.may(area) {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied)
        }
    }

    /// Changes that could raise someone's privileges above the caller's: only superusers.
    fn require_superuser(&self) -> Result<(), AuthError> {
        if self.is_superuser() {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied)
        }
    }
}

/// The permissions only a superuser may grant: they administer sekisho itself.
fn is_admin_codename(codename: &str) -> bool {
    codename.starts_with("sekisho.")
}

/// The most rows one admin listing returns.
pub const MAX_PAGE: u64 = 1000;

fn window(offset: u64, limit: u64) -> (u64, u64) {
    (offset, limit.clamp(1, MAX_PAGE))
}

impl Auth {
    async fn record(
        &self,
        admin: &Admin,
        action: &str,
        target: String,
        detail: Value,
    ) -> Result<(), AuthError> {
        let a = &admin.actor;
        tracing::info!(
            target: "sekisho::audit",
            actor = %a.name,
            actor_id = a.user_id,
            action,
            %target,
            detail = %detail,
            remote_addr = %a.remote_addr,
            request_id = %a.request_id,
            "admin action"
        );
        self.audit
            .append(&NewAuditEntry {
                at: self.now(),
                actor: a.clone(),
                action: action.to_string(),
                target,
                detail,
            })
            .await?;
        Ok(())
    }

    async fn existing_user(&self, id: UserId) -> Result<Arc<User>, AuthError> {
        self.users
            .user_by_id(id)
            .await?
            .ok_or(AuthError::NotFound("user"))
    }

    /// A superuser's account is changed only by a superuser.
    async fn target_user(&self, admin: &Admin, id: UserId) -> Result<Arc<User>, AuthError> {
        let user = self.existing_user(id).await?;
        if user.is_superuser {
            admin.require_superuser()?;
        }
        Ok(user)
    }

    async fn existing_group(&self, id: GroupId) -> Result<Group, AuthError> {
        self.authz
            .group(id)
            .await?
            .ok_or(AuthError::NotFound("group"))
    }

    async fn existing_permission(&self, codename: &str) -> Result<Permission, AuthError> {
        rules::validate_codename(codename).map_err(|_| AuthError::NotFound("permission"))?;
        self.authz
            .permission(codename)
            .await?
            .ok_or(AuthError::NotFound("permission"))
    }

    // ---- users -------------------------------------------------------------------------

    pub async fn admin_users(&self, admin: &Admin, q: &UserQuery) -> Result<Page<User>, AuthError> {
        admin.require(AdminArea::Users)?;
        let (offset, limit) = window(q.offset, q.limit);
        Ok(self
            .authz
            .search_users(&UserQuery {
                search: q.search.clone().filter(|s| !s.is_empty()),
                offset,
                limit,
            })
            .await?)
    }

    pub async fn admin_user(&self, admin: &Admin, id: UserId) -> Result<Arc<User>, AuthError> {
        admin.require(AdminArea::Users)?;
        self.existing_user(id).await
    }

    pub async fn admin_create_user(
        &self,
        admin: &Admin,
        new: &NewUser,
        password: &str,
    ) -> Result<User, AuthError> {
        admin.require(AdminArea::Users)?;
        if new.is_staff || new.is_superuser {
            admin.require_superuser()?;
        }
        let user = self.create_user(new, password).await?;
        self.record(
            admin,
            "user.create",
            format!("user:{}", user.id),
            json!({"username": user.username, "is_staff": user.is_staff, "is_superuser": user.is_superuser}),
        )
        .await?;
        Ok(user)
    }

    /// Changes profile fields and flags. Deactivating ends every login of the user.
    pub async fn admin_update_user(
        &self,
        admin: &Admin,
        id: UserId,
        update: &AdminUserUpdate,
    ) -> Result<User, AuthError> {
        admin.require(AdminArea::Users)?;
        let before = self.target_user(admin, id).await?;
        if update.is_staff.is_some() || update.is_superuser.is_some() {
            admin.require_superuser()?;
        }
        account_rules::validate_profile(&ProfileUpdate {
            email: update.email.clone(),
            first_name: update.first_name.clone(),
            last_name: update.last_name.clone(),
        })
        .map_err(|(field, problem)| AuthError::Invalid(format!("{}: {problem:?}", field.name())))?;
        let user = self
            .authz
            .update_user(id, update)
            .await?
            .ok_or(AuthError::NotFound("user"))?;
        if before.is_active && !user.is_active {
            self.end_all_logins(id, EndReason::Deactivated, None)
                .await?;
        }
        self.record(
            admin,
            "user.update",
            format!("user:{id}"),
            update_detail(update),
        )
        .await?;
        Ok(user)
    }

    pub async fn admin_set_password(
        &self,
        admin: &Admin,
        id: UserId,
        password: &str,
    ) -> Result<(), AuthError> {
        admin.require(AdminArea::Users)?;
        self.target_user(admin, id).await?;
        self.set_password(id, password).await?;
        self.record(admin, "user.set_password", format!("user:{id}"), json!({}))
            .await
    }

    pub async fn admin_deactivate(&self, admin: &Admin, id: UserId) -> Result<(), AuthError> {
        admin.require(AdminArea::Users)?;
        self.target_user(admin, id).await?;
        self.deactivate(id).await?;
        self.record(admin, "user.deactivate", format!("user:{id}"), json!({}))
            .await
    }

    pub async fn admin_end_logins(&self, admin: &Admin, id: UserId) -> Result<(), AuthError> {
        admin.require(AdminArea::Users)?;
        self.target_user(admin, id).await?;
        self.end_all_logins(id, EndReason::Admin, None).await?;
        self.record(admin, "user.end_logins", format!("user:{id}"), json!({}))
            .await
    }

    // ---- groups ------------------------------------------------------------------------

    pub async fn admin_groups(&self, admin: &Admin) -> Result<Vec<Group>, AuthError> {
        admin.require(AdminArea::Groups)?;
        Ok(self.authz.groups().await?)
    }

    pub async fn admin_group(&self, admin: &Admin, id: GroupId) -> Result<Group, AuthError> {
        admin.require(AdminArea::Groups)?;
        self.existing_group(id).await
    }

    pub async fn admin_group_by_name(&self, admin: &Admin, name: &str) -> Result<Group, AuthError> {
        admin.require(AdminArea::Groups)?;
        self.authz
            .group_by_name(name)
            .await?
            .ok_or(AuthError::NotFound("group"))
    }

    pub async fn admin_create_group(&self, admin: &Admin, name: &str) -> Result<Group, AuthError> {
        admin.require(AdminArea::Groups)?;
        rules::validate_group_name(name).map_err(AuthError::Invalid)?;
        let group = self.authz.create_group(name).await?;
        self.record(
            admin,
            "group.create",
            format!("group:{}", group.id),
            json!({"name": name}),
        )
        .await?;
        Ok(group)
    }

    pub async fn admin_rename_group(
        &self,
        admin: &Admin,
        id: GroupId,
        name: &str,
    ) -> Result<Group, AuthError> {
        admin.require(AdminArea::Groups)?;
        rules::validate_group_name(name).map_err(AuthError::Invalid)?;
        if !self.authz.rename_group(id, name).await? {
            return Err(AuthError::NotFound("group"));
        }
        self.record(
            admin,
            "group.rename",
            format!("group:{id}"),
            json!({"name": name}),
        )
        .await?;
        self.existing_group(id).await
    }

    pub async fn admin_delete_group(&self, admin: &Admin, id: GroupId) -> Result<(), AuthError> {
        admin.require(AdminArea::Groups)?;
        let group = self.existing_group(id).await?;
        if group.permissions.iter().any(|p| is_admin_codename(p)) {
            admin.require_superuser()?;
        }
        if !self.authz.delete_group(id).await? {
            return Err(AuthError::NotFound("group"));
        }
        self.record(
            admin,
            "group.delete",
            format!("group:{id}"),
            json!({"name": group.name}),
        )
        .await
    }

    pub async fn admin_group_members(
        &self,
        admin: &Admin,
        id: GroupId,
    ) -> Result<Vec<UserId>, AuthError> {
        admin.require(AdminArea::Groups)?;
        self.existing_group(id).await?;
        Ok(self.authz.group_members(id).await?)
    }

    /// Adds a member. A group that carries an administration permission is joined only by a
    /// superuser's hand.
    pub async fn admin_add_member(
        &self,
        admin: &Admin,
        group: GroupId,
        user: UserId,
    ) -> Result<bool, AuthError> {
        admin.require(AdminArea::Groups)?;
        let g = self.existing_group(group).await?;
        if g.permissions.iter().any(|p| is_admin_codename(p)) {
            admin.require_superuser()?;
        }
        self.target_user(admin, user).await?;
        let added = self.authz.add_member(group, user).await?;
        if added {
            self.record(
                admin,
                "group.add_member",
                format!("group:{group}"),
                json!({"user_id": user}),
            )
            .await?;
        }
        Ok(added)
    }

    pub async fn admin_remove_member(
        &self,
        admin: &Admin,
        group: GroupId,
        user: UserId,
    ) -> Result<bool, AuthError> {
        admin.require(AdminArea::Groups)?;
        self.existing_group(group).await?;
        let removed = self.authz.remove_member(group, user).await?;
        if removed {
            self.record(
                admin,
                "group.remove_member",
                format!("group:{group}"),
                json!({"user_id": user}),
            )
            .await?;
        }
        Ok(removed)
    }

    // ---- permissions -------------------------------------------------------------------

    pub async fn admin_permissions(&self, admin: &Admin) -> Result<Vec<Permission>, AuthError> {
        admin.require(AdminArea::Permissions)?;
        Ok(self.authz.permissions().await?)
    }

    pub async fn admin_permission(
        &self,
        admin: &Admin,
        codename: &str,
    ) -> Result<Permission, AuthError> {
        admin.require(AdminArea::Permissions)?;
        self.existing_permission(codename).await
    }

    pub async fn admin_create_permission(
        &self,
        admin: &Admin,
        codename: &str,
        name: &str,
    ) -> Result<Permission, AuthError> {
        admin.require(AdminArea::Permissions)?;
        rules::validate_codename(codename).map_err(AuthError::Invalid)?;
        rules::validate_permission_name(name).map_err(AuthError::Invalid)?;
        if is_admin_codename(codename) {
            admin.require_superuser()?;
        }
        let p = self.authz.create_permission(codename, name).await?;
        self.record(
            admin,
            "permission.create",
            format!("permission:{codename}"),
            json!({"name": name}),
        )
        .await?;
        Ok(p)
    }

    pub async fn admin_rename_permission(
        &self,
        admin: &Admin,
        codename: &str,
        name: &str,
    ) -> Result<Permission, AuthError> {
        admin.require(AdminArea::Permissions)?;
        rules::validate_permission_name(name).map_err(AuthError::Invalid)?;
        self.existing_permission(codename).await?;
        self.authz.rename_permission(codename, name).await?;
        self.record(
            admin,
            "permission.rename",
            format!("permission:{codename}"),
            json!({"name": name}),
        )
        .await?;
        self.existing_permission(codename).await
    }

    /// Deletes the permission and every grant of it, model-wide and per object.
    pub async fn admin_delete_permission(
        &self,
        admin: &Admin,
        codename: &str,
    ) -> Result<(), AuthError> {
        admin.require(AdminArea::Permissions)?;
        self.existing_permission(codename).await?;
        if is_admin_codename(codename) {
            admin.require_superuser()?;
        }
        if !self.authz.delete_permission(codename).await? {
            return Err(AuthError::NotFound("permission"));
        }
        self.record(
            admin,
            "permission.delete",
            format!("permission:{codename}"),
            json!({}),
        )
        .await
    }

    async fn check_principal(&self, admin: &Admin, p: Principal) -> Result<(), AuthError> {
        match p {
            Principal::User(id) => self.target_user(admin, id).await.map(|_| ()),
            Principal::Group(id) => self.existing_group(id).await.map(|_| ()),
        }
    }

    /// Grants a permission model-wide (every object). `sekisho.*` permissions only by a
    /// superuser.
    pub async fn admin_grant(
        &self,
        admin: &Admin,
        to: Principal,
        codename: &str,
    ) -> Result<bool, AuthError> {
        admin.require(AdminArea::Permissions)?;
        if is_admin_codename(codename) {
            admin.require_superuser()?;
        }
        self.existing_permission(codename).await?;
        self.check_principal(admin, to).await?;
        let changed = self.authz.grant(to, codename).await?;
        if changed {
            self.record(
                admin,
                "permission.grant",
                principal_target(to),
                json!({"permission": codename}),
            )
            .await?;
        }
        Ok(changed)
    }

    /// Revokes a model-wide grant; takes effect on the next request on every instance.
    pub async fn admin_revoke(
        &self,
        admin: &Admin,
        from: Principal,
        codename: &str,
    ) -> Result<bool, AuthError> {
        admin.require(AdminArea::Permissions)?;
        if is_admin_codename(codename) {
            admin.require_superuser()?;
        }
        self.existing_permission(codename).await?;
        self.check_principal(admin, from).await?;
        let changed = self.authz.revoke(from, codename).await?;
        if changed {
            self.record(
                admin,
                "permission.revoke",
                principal_target(from),
                json!({"permission": codename}),
            )
            .await?;
        }
        Ok(changed)
    }

    fn check_grant_shape(grant: &ObjectGrant) -> Result<(), AuthError> {
        rules::validate_object_type(&grant.object.object_type).map_err(AuthError::Invalid)?;
        rules::validate_object_id(&grant.object.object_id).map_err(AuthError::Invalid)?;
        Ok(())
    }

    pub async fn admin_grant_object(
        &self,
        admin: &Admin,
        grant: &ObjectGrant,
    ) -> Result<bool, AuthError> {
        admin.require(AdminArea::Permissions)?;
        Self::check_grant_shape(grant)?;
        if is_admin_codename(&grant.permission) {
            admin.require_superuser()?;
        }
        self.existing_permission(&grant.permission).await?;
        self.check_principal(admin, grant.principal).await?;
        let changed = self.authz.grant_object(grant).await?;
        if changed {
            self.record(
                admin,
                "object.grant",
                principal_target(grant.principal),
                grant_detail(grant),
            )
            .await?;
        }
        Ok(changed)
    }

    pub async fn admin_revoke_object(
        &self,
        admin: &Admin,
        grant: &ObjectGrant,
    ) -> Result<bool, AuthError> {
        admin.require(AdminArea::Permissions)?;
        Self::check_grant_shape(grant)?;
        if is_admin_codename(&grant.permission) {
            admin.require_superuser()?;
        }
        self.existing_permission(&grant.permission).await?;
        self.check_principal(admin, grant.principal).await?;
        let changed = self.authz.revoke_object(grant).await?;
        if changed {
            self.record(
                admin,
                "object.revoke",
                principal_target(grant.principal),
                grant_detail(grant),
            )
            .await?;
        }
        Ok(changed)
    }

    pub async fn admin_object_grants(
        &self,
        admin: &Admin,
        q: &ObjectGrantQuery,
    ) -> Result<Page<ObjectGrant>, AuthError> {
        admin.require(AdminArea::Permissions)?;
        let (offset, limit) = window(q.offset, q.limit);
        Ok(self
            .authz
            .object_grants(&ObjectGrantQuery {
                offset,
                limit,
                ..q.clone()
            })
            .await?)
    }

    // ---- audit -------------------------------------------------------------------------

    pub async fn admin_audit(
        &self,
        admin: &Admin,
        q: &AuditQuery,
    ) -> Result<Page<AuditEntry>, AuthError> {
        admin.require(AdminArea::Audit)?;
        let (offset, limit) = window(q.offset, q.limit);
        Ok(self
            .audit
            .entries(&AuditQuery {
                offset,
                limit,
                ..q.clone()
            })
            .await?)
    }
}

fn principal_target(p: Principal) -> String {
    match p {
        Principal::User(id) => format!("user:{id}"),
        Principal::Group(id) => format!("group:{id}"),
    }
}

fn grant_detail(g: &ObjectGrant) -> Value {
    json!({
        "permission": g.permission,
        "object_type": g.object.object_type,
        "object_id": g.object.object_id,
    })
}

/// The changed fields (values of flags; profile fields by name only — they may be personal).
fn update_detail(u: &AdminUserUpdate) -> Value {
    let mut d = serde_json::Map::new();
    for (k, v) in [
        ("is_active", u.is_active),
        ("is_staff", u.is_staff),
        ("is_superuser", u.is_superuser),
    ] {
        if let Some(v) = v {
            d.insert(k.into(), json!(v));
        }
    }
    let profile: Vec<&str> = [
        ("email", u.email.is_some()),
        ("first_name", u.first_name.is_some()),
        ("last_name", u.last_name.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, set)| set.then_some(k))
    .collect();
    if !profile.is_empty() {
        d.insert("profile".into(), json!(profile));
    }
    Value::Object(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(staff: bool, superuser: bool, perms: &[&str]) -> Arc<User> {
        Arc::new(User {
            id: 1,
            username: "a".into(),
            email: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            is_active: true,
            is_staff: staff,
            is_superuser: superuser,
            groups: vec![],
            permissions: perms.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn staff_or_the_areas_permission_administers() {
        let a = |u| Admin::user(u, String::new(), String::new());
        assert!(a(user(true, false, &[])).may(AdminArea::Users));
        assert!(!a(user(false, false, &[])).may(AdminArea::Users));
        let groups_only = a(user(false, false, &["sekisho.manage_groups"]));
        assert!(groups_only.may(AdminArea::Groups));
        assert!(!groups_only.may(AdminArea::Users));
        assert!(!groups_only.may(AdminArea::Audit));
        assert!(groups_only.require_superuser().is_err());
        assert!(a(user(false, true, &[])).require_superuser().is_ok());
        assert!(Admin::cli().may(AdminArea::Audit));
        let mut inactive = (*user(true, true, &[])).clone();
        inactive.is_active = false;
        let inactive = a(Arc::new(inactive));
        assert!(!inactive.may(AdminArea::Users));
        assert!(inactive.require_superuser().is_err());
    }

    #[test]
    fn audit_detail_names_profile_fields_without_their_values() {
        let d = update_detail(&AdminUserUpdate {
            email: Some("secret@example.com".into()),
            is_active: Some(false),
            ..AdminUserUpdate::default()
        });
        assert_eq!(d, json!({"is_active": false, "profile": ["email"]}));
        assert!(!d.to_string().contains("secret@"));
    }
}
