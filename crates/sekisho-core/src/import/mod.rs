//! Moving a Django deployment into sekisho (`sekisho import-django`): its users (password
//! hashes as stored, verified and upgraded at their next login), groups, permissions, the
//! links between them, django-guardian's object grants and simplejwt's blacklist.
//!
//! Users keep their Django ids. simplejwt tokens name their user by `user_id`, so a token
//! minted by Django before the move must name the same person in sekisho; an id is never
//! reassigned. A user is matched by id *and* username: the same id with the same name is the
//! same user (updated to Django's values), anything else is a conflict that is reported and
//! skipped, never merged. Groups are matched by name, permissions by `app_label.codename`.
//! Re-running the import brings over what Django changed since the last run and nothing else:
//! a user whose Django row is as last imported keeps what sekisho has (a password upgraded at
//! login, a profile edit), and existing links are never duplicated. So it can be repeated up
//! to the cut-over.
//!
//! What is read from Django is [`DjangoExport`] (the binary's reader fills it); the store
//! applies it in one transaction ([`crate::store::ImportStore`]), deciding each user with
//! [`decide_user`]; revoked tokens go to the family store, whichever backend holds families.

pub mod dualrun;
pub mod signing;

pub use dualrun::{DjangoSessions, DualRun, FinishOutcome};

use crate::account::UserId;
use crate::auth::Auth;
use crate::clock::Timestamp;
use crate::error::AuthError;
use crate::family::{FamilyRecord, RevokeOutcome, legacy_family_id};
use serde::Serialize;
use std::collections::HashSet;

/// One row of Django's `auth_user`, every field as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DjangoUser {
    pub id: UserId,
    pub username: String,
    /// The hash exactly as Django stored it (`pbkdf2_sha256$…`, `argon2$…`, `!…` unusable).
    pub password: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub date_joined: Timestamp,
    pub last_login: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DjangoGroup {
    /// Django's id, used only to resolve the link tables.
    pub id: i64,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DjangoPermission {
    /// Django's id, used only to resolve the link tables.
    pub id: i64,
    /// `app_label.codename`, from `django_content_type`.
    pub codename: String,
    pub name: String,
}

/// Who a Django grant is for, by Django id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DjangoPrincipal {
    User(UserId),
    Group(i64),
}

/// One row of `guardian_userobjectpermission` or `guardian_groupobjectpermission`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DjangoObjectGrant {
    pub principal: DjangoPrincipal,
    pub permission: i64,
    /// `app_label.model` of the content type.
    pub object_type: String,
    pub object_id: String,
}

/// One row of simplejwt's `token_blacklist_outstandingtoken`, with its blacklisting if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DjangoToken {
    pub jti: String,
    /// `NULL` once Django deleted the user.
    pub user_id: Option<UserId>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub blacklisted_at: Option<Timestamp>,
}

/// Everything read from one Django database.
#[derive(Clone, Debug, Default)]
pub struct DjangoExport {
    pub users: Vec<DjangoUser>,
    pub groups: Vec<DjangoGroup>,
    pub permissions: Vec<DjangoPermission>,
    /// (user id, group id), Django ids.
    pub user_groups: Vec<(UserId, i64)>,
    /// (user id, permission id), Django ids.
    pub user_permissions: Vec<(UserId, i64)>,
    /// (group id, permission id), Django ids.
    pub group_permissions: Vec<(i64, i64)>,
    /// `None` when django-guardian's tables are absent.
    pub object_grants: Option<Vec<DjangoObjectGrant>>,
    /// `None` when simplejwt's `token_blacklist` tables are absent.
    pub tokens: Option<Vec<DjangoToken>>,
}

/// What happens to one Django user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserDecision {
    Create,
    /// The same id and username, and Django's row changed since the last import: Django's
    /// values replace sekisho's.
    Update,
    Unchanged,
    /// A conflict: the reason, for the report.
    Skip(String),
}

impl DjangoUser {
    /// A digest of every field as Django stores it. The store records it per imported user, so
    /// a re-run can tell "Django changed this user" from "sekisho changed it since" (a password
    /// upgraded to Argon2id at login, a profile edit): only the first is imported again.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        let fields: [String; 9] = [
            self.id.to_string(),
            self.username.clone(),
            self.password.clone(),
            self.email.clone(),
            self.first_name.clone(),
            self.last_name.clone(),
            format!("{}{}{}", self.is_active, self.is_staff, self.is_superuser),
            self.date_joined.millis().to_string(),
            self.last_login
                .map_or(String::new(), |t| t.millis().to_string()),
        ];
        for field in &fields {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field.as_bytes());
        }
        crate::random::hex(&h.finalize())
    }
}

/// The rule for one user: `by_id` is the sekisho user with the Django id, `by_name` the one
/// with the Django username (the same row when both match), `last_import` the fingerprint
/// recorded when this user was last imported. Keeping ids is what keeps Django-minted tokens
/// naming the right person, so an id held by someone else, or a name held under another id, is
/// never merged: it is skipped and reported. A user Django has not changed since the last
/// import is left as sekisho has it.
pub fn decide_user(
    django: &DjangoUser,
    by_id: Option<&DjangoUser>,
    by_name: Option<&DjangoUser>,
    last_import: Option<&str>,
) -> UserDecision {
    match (by_id, by_name) {
        (None, None) => UserDecision::Create,
        (Some(u), _) if u.username != django.username => UserDecision::Skip(format!(
            "id {} is sekisho user {:?}, not {:?}",
            django.id, u.username, django.username
        )),
        (None, Some(u)) => UserDecision::Skip(format!(
            "username {:?} is sekisho user id {}, not {}",
            django.username, u.id, django.id
        )),
        (Some(u), _) if u == django => UserDecision::Unchanged,
        (Some(_), _) if last_import == Some(django.fingerprint().as_str()) => {
            UserDecision::Unchanged
        }
        (Some(_), _) => UserDecision::Update,
    }
}

/// Counts for one table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub skipped: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.created + self.updated + self.unchanged + self.skipped
    }
}

/// What the store did (or, in a dry run, would have done) with the tables it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StoreCounts {
    pub users: Counts,
    pub groups: Counts,
    pub permissions: Counts,
    pub user_groups: Counts,
    pub user_permissions: Counts,
    pub group_permissions: Counts,
    pub object_grants: Counts,
    /// Why users were skipped, one line each.
    pub conflicts: Vec<String>,
    /// Pairs of imported usernames that look alike (UTS #39 skeleton): both are kept, as they
    /// were in Django, and reported so an administrator can look at them.
    pub lookalikes: Vec<(String, String)>,
    /// The Django ids of the users imported (created, updated or unchanged): in a dry run the
    /// only record of who would exist afterwards.
    #[serde(skip)]
    pub imported: Vec<UserId>,
}

/// The whole report of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub dry_run: bool,
    pub store: StoreCounts,
    /// False when the source has no django-guardian tables (object grants were skipped).
    pub guardian_present: bool,
    /// False when the source has no simplejwt `token_blacklist` tables.
    pub blacklist_present: bool,
    pub blacklisted_tokens: Counts,
    /// The dual-run after this run (a dry run shows it as it was).
    #[serde(skip)]
    pub dual_run: DualRun,
}

/// Progress callback: a table name and how many of its rows are done.
pub type Progress<'a> = &'a (dyn Fn(&str, u64) + Send + Sync);

/// How often progress is reported, in rows.
pub const PROGRESS_EVERY: u64 = 10_000;

/// Reports progress after row `index` (from 0) of `table`, every [`PROGRESS_EVERY`] rows.
pub fn tick(progress: Progress<'_>, table: &str, index: usize) {
    let done = index as u64 + 1;
    if done.is_multiple_of(PROGRESS_EVERY) {
        progress(table, done);
    }
}

impl Auth {
    /// Applies a Django export: accounts and grants in one transaction of the user store
    /// (rolled back when `dry_run`), then the blacklisted tokens as revoked families.
    pub async fn import_django(
        &self,
        export: &DjangoExport,
        dry_run: bool,
        progress: Progress<'_>,
    ) -> Result<ImportReport, AuthError> {
        let store = self
            .imports
            .import_django(export, self.now(), dry_run, progress)
            .await?;
        let mut report = ImportReport {
            dry_run,
            store,
            guardian_present: export.object_grants.is_some(),
            blacklist_present: export.tokens.is_some(),
            blacklisted_tokens: Counts::default(),
            dual_run: DualRun::default(),
        };
        if let Some(tokens) = &export.tokens {
            let imported: HashSet<UserId> = report.store.imported.iter().copied().collect();
            report.blacklisted_tokens = self
                .import_blacklist(tokens, &imported, dry_run, progress)
                .await?;
        }
        report.dual_run = self.imports.dual_run().await?;
        Ok(report)
    }

    /// simplejwt's blacklist, as sekisho keeps revocation: a token Django minted has no family
    /// claim, so its first use here adopts it into the family `legacy-<jti>`
    /// ([`legacy_family_id`]); that family is created already revoked, or revoked if it exists.
    /// Expired tokens, and tokens of users who are not in sekisho, need nothing: they are
    /// refused anyway.
    async fn import_blacklist(
        &self,
        tokens: &[DjangoToken],
        imported: &HashSet<UserId>,
        dry_run: bool,
        progress: Progress<'_>,
    ) -> Result<Counts, AuthError> {
        let now = self.now();
        let mut counts = Counts::default();
        for (i, t) in tokens.iter().enumerate() {
            tick(progress, "token_blacklist_outstandingtoken", i);
            let Some(at) = t.blacklisted_at else {
                continue;
            };
            let user = match t.user_id {
                Some(u) if t.expires_at > now && imported.contains(&u) => Some(u),
                Some(u) if t.expires_at > now => self.users.user_by_id(u).await?.map(|u| u.id),
                _ => None,
            };
            let Some(user_id) = user else {
                counts.skipped += 1;
                continue;
            };
            let id = legacy_family_id(&t.jti);
            let existing = self.families.family(&id).await?;
            match existing {
                Some(f) if f.is_revoked() => counts.unchanged += 1,
                Some(_) => {
                    counts.updated += 1;
                    if !dry_run {
                        self.families
                            .revoke_family(&id, at, "django-blacklist")
                            .await?;
                    }
                }
                None => {
                    counts.created += 1;
                    if dry_run {
                        continue;
                    }
                    let created = self
                        .families
                        .create_family(&FamilyRecord {
                            id: id.clone(),
                            user_id,
                            current_jti: t.jti.clone(),
                            current_iat: t.created_at.secs(),
                            current_exp: t.expires_at.secs(),
                            previous_jti: None,
                            rotated_at: None,
                            created_at: t.created_at,
                            absolute_exp: t.expires_at.secs(),
                            revoked_at: Some(at),
                        })
                        .await?;
                    // Adopted by a refresh since it was read: revoke it instead.
                    if !created
                        && self
                            .families
                            .revoke_family(&id, at, "django-blacklist")
                            .await?
                            == RevokeOutcome::NotFound
                    {
                        return Err(AuthError::Internal(format!(
                            "family {id} vanished during the import"
                        )));
                    }
                }
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64, name: &str) -> DjangoUser {
        DjangoUser {
            id,
            username: name.into(),
            password: "pbkdf2_sha256$1$s$h".into(),
            email: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            is_active: true,
            is_staff: false,
            is_superuser: false,
            date_joined: Timestamp(1),
            last_login: None,
        }
    }

    #[test]
    fn users_keep_their_ids_and_conflicts_are_never_merged() {
        let d = user(7, "alice");
        assert_eq!(decide_user(&d, None, None, None), UserDecision::Create);
        assert_eq!(
            decide_user(&d, Some(&d), Some(&d), None),
            UserDecision::Unchanged
        );
        // sekisho's copy differs: Django's values win, unless Django's row is the one
        // imported last time (then the difference is sekisho's own: a login's rehash).
        let mut rehashed = d.clone();
        rehashed.password = "argon2$argon2id$v=19$m=19456,t=2,p=1$s$h".into();
        assert_eq!(
            decide_user(&d, Some(&rehashed), Some(&rehashed), None),
            UserDecision::Update
        );
        let fp = d.fingerprint();
        assert_eq!(
            decide_user(&d, Some(&rehashed), Some(&rehashed), Some(&fp)),
            UserDecision::Unchanged
        );
        let mut moved_on = d.clone();
        moved_on.email = "a@example.com".into();
        assert_ne!(moved_on.fingerprint(), fp);
        assert_eq!(
            decide_user(&moved_on, Some(&rehashed), Some(&rehashed), Some(&fp)),
            UserDecision::Update
        );
        // The id belongs to someone else.
        let other = user(7, "mallory");
        assert!(matches!(
            decide_user(&d, Some(&other), None, None),
            UserDecision::Skip(r) if r.contains("mallory")
        ));
        // The name lives under another id: tokens naming 7 must not reach user 3.
        let moved = user(3, "alice");
        assert!(matches!(
            decide_user(&d, None, Some(&moved), None),
            UserDecision::Skip(r) if r.contains("id 3")
        ));
        assert!(matches!(
            decide_user(&d, Some(&other), Some(&moved), None),
            UserDecision::Skip(_)
        ));
    }
}
