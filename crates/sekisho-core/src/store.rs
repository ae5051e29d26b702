//! Storage traits, shaped by the domain's operations rather than a key-value API, so that each
//! backend can make every operation atomic its own way (a transaction, a conditional update, a
//! server-side script). Stores live in application state as `Arc<dyn …>`.

use crate::account::{NewUser, ProfileUpdate, StoredUser, User, UserId};
use crate::authz::model::{
    AdminUserUpdate, AuditEntry, AuditQuery, Group, GroupId, NewAuditEntry, ObjectGrant,
    ObjectGrantQuery, ObjectIds, ObjectRef, Page, Permission, Principal, UserQuery,
};
use crate::clock::Timestamp;
use crate::family::{FamilyRecord, RevokeOutcome, RotateOutcome, RotateRequest};
use crate::import::{DjangoExport, DualRun, Progress, StoreCounts};
use crate::mfa::passkey::{CeremonyRecord, PasskeyRecord};
use crate::mfa::{ChallengeRecord, TotpRecord};
use crate::session::SessionRecord;
use crate::token::managed::KeyRecord;
use async_trait::async_trait;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or timed out. Callers fail closed (503), never open.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule was broken (e.g. the username exists).
    #[error("{0}")]
    Conflict(String),
    /// The backend refused the input itself (e.g. PostgreSQL and a NUL byte in text). A
    /// client's bad input, never an outage: it must not look like one (no 503, no alert).
    #[error("input refused by storage: {0}")]
    Refused(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The stores an [`crate::Auth`] runs on.
#[derive(Clone)]
pub struct Stores {
    pub users: Arc<dyn UserStore>,
    pub families: Arc<dyn FamilyStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub authz: Arc<dyn AuthzStore>,
    pub audit: Arc<dyn AuditStore>,
    pub keys: Arc<dyn KeyStore>,
    pub mfa: Arc<dyn MfaStore>,
    pub imports: Arc<dyn ImportStore>,
}

#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    async fn ping(&self) -> StoreResult<()>;
    async fn create_user(
        &self,
        user: &NewUser,
        password_hash: &str,
        now: Timestamp,
    ) -> StoreResult<User>;
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<StoredUser>>;
    /// The id, password hash and active flag only (one lookup): what a login reads before it
    /// checks the password. The default goes through [`UserStore::user_by_username`].
    async fn credentials(
        &self,
        username: &str,
    ) -> StoreResult<Option<crate::account::Credentials>> {
        Ok(self
            .user_by_username(username)
            .await?
            .map(|s| crate::account::Credentials {
                id: s.user.id,
                password_hash: s.password_hash,
                is_active: s.user.is_active,
            }))
    }
    /// Shared, so a cache can hand out the same user to every request without copying it.
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<Arc<User>>>;
    /// Returns false when no such user exists.
    async fn set_password_hash(&self, id: UserId, hash: &str) -> StoreResult<bool>;
    async fn set_active(&self, id: UserId, active: bool) -> StoreResult<bool>;
    async fn record_login(&self, id: UserId, now: Timestamp) -> StoreResult<()>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// Changes the given profile fields; returns the updated user, `None` if there is none.
    async fn update_profile(&self, id: UserId, update: &ProfileUpdate)
    -> StoreResult<Option<User>>;
}

/// Refresh families: one bounded record per login, never a row per rotation.
#[async_trait]
pub trait FamilyStore: Send + Sync + 'static {
    async fn ping(&self) -> StoreResult<()>;
    /// Stores a new family unless one with its id exists (then nothing changes and the result
    /// is false): adopting a token minted elsewhere may race, and must never reset a family.
    async fn create_family(&self, family: &FamilyRecord) -> StoreResult<bool>;
    async fn family(&self, id: &str) -> StoreResult<Option<FamilyRecord>>;
    /// The family as stored now, bypassing any cache: a cached copy may predate a rotation made
    /// by another instance, so a refusal based on it is checked again here before it stands.
    async fn family_fresh(&self, id: &str) -> StoreResult<Option<FamilyRecord>> {
        self.family(id).await
    }
    /// Atomically applies [`crate::family::decide_rotation`] to the family: under any number of
    /// concurrent calls (from any number of server instances) exactly one rotation of a given
    /// token happens.
    async fn rotate(&self, request: &RotateRequest) -> StoreResult<RotateOutcome>;
    async fn revoke_family(
        &self,
        id: &str,
        now: Timestamp,
        reason: &str,
    ) -> StoreResult<RevokeOutcome>;
    /// Revokes every live family of a user; returns how many.
    async fn revoke_user_families(
        &self,
        user: UserId,
        now: Timestamp,
        reason: &str,
    ) -> StoreResult<u64>;
    /// Deletes records whose tokens have all expired; returns how many.
    async fn purge_expired_families(&self, now: Timestamp) -> StoreResult<u64>;
}

/// Server-side sessions, keyed by the hash of the cookie value.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    async fn ping(&self) -> StoreResult<()>;
    async fn create_session(&self, session: &SessionRecord) -> StoreResult<()>;
    async fn session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>>;
    /// Slides the idle deadline, but only when `last_seen` is older than `older_than`, so that
    /// concurrent requests write at most once per renewal interval.
    async fn touch_session(
        &self,
        id_hash: &str,
        now: Timestamp,
        idle_expires_at: Timestamp,
        older_than: Timestamp,
    ) -> StoreResult<bool>;
    async fn delete_session(&self, id_hash: &str) -> StoreResult<bool>;
    /// Deletes the user's session named by its public id (the devices list's DELETE).
    async fn delete_session_by_public_id(&self, user: UserId, public_id: &str)
    -> StoreResult<bool>;
    async fn list_sessions(&self, user: UserId) -> StoreResult<Vec<SessionRecord>>;
    /// Deletes every session of the user except `keep` (an id hash); returns how many.
    async fn delete_user_sessions(&self, user: UserId, keep: Option<&str>) -> StoreResult<u64>;
    async fn purge_expired_sessions(&self, now: Timestamp) -> StoreResult<u64>;
}

/// Groups, permissions and grants (model-wide and per object), plus the administrator's view
/// of users. Every change here must be seen by the *next* request on every instance: a
/// caching wrapper invalidates the affected users locally and on every other instance before
/// the call returns.
#[async_trait]
pub trait AuthzStore: Send + Sync + 'static {
    // Users, as an administrator sees them.
    async fn search_users(&self, query: &UserQuery) -> StoreResult<Page<User>>;
    /// Applies the given fields; `None` if there is no such user.
    async fn update_user(&self, id: UserId, update: &AdminUserUpdate) -> StoreResult<Option<User>>;

    // Groups.
    async fn create_group(&self, name: &str) -> StoreResult<Group>;
    async fn groups(&self) -> StoreResult<Vec<Group>>;
    async fn group(&self, id: GroupId) -> StoreResult<Option<Group>>;
    async fn group_by_name(&self, name: &str) -> StoreResult<Option<Group>>;
    /// `false` if there is no such group; `Conflict` if the name is taken.
    async fn rename_group(&self, id: GroupId, name: &str) -> StoreResult<bool>;
    async fn delete_group(&self, id: GroupId) -> StoreResult<bool>;
    /// Member user ids, ascending.
    async fn group_members(&self, id: GroupId) -> StoreResult<Vec<UserId>>;
    /// `false` when the membership already existed (nothing changed).
    async fn add_member(&self, group: GroupId, user: UserId) -> StoreResult<bool>;
    /// `false` when there was no such membership.
    async fn remove_member(&self, group: GroupId, user: UserId) -> StoreResult<bool>;

    // Permissions (the codename catalogue).
    async fn create_permission(&self, codename: &str, name: &str) -> StoreResult<Permission>;
    async fn permissions(&self) -> StoreResult<Vec<Permission>>;
    async fn permission(&self, codename: &str) -> StoreResult<Option<Permission>>;
    async fn rename_permission(&self, codename: &str, name: &str) -> StoreResult<bool>;
    /// Deletes the permission and every grant of it.
    async fn delete_permission(&self, codename: &str) -> StoreResult<bool>;

    // Model-wide grants. The permission must exist (callers check); `false` when nothing
    // changed (already granted / not granted).
    async fn grant(&self, to: Principal, codename: &str) -> StoreResult<bool>;
    async fn revoke(&self, from: Principal, codename: &str) -> StoreResult<bool>;

    // Per-object grants (django-guardian's UserObjectPermission / GroupObjectPermission).
    async fn grant_object(&self, grant: &ObjectGrant) -> StoreResult<bool>;
    async fn revoke_object(&self, grant: &ObjectGrant) -> StoreResult<bool>;
    async fn object_grants(&self, query: &ObjectGrantQuery) -> StoreResult<Page<ObjectGrant>>;
    /// Whether the user holds the object permission directly or through one of their groups
    /// (only per-object grants; model-wide grants and superusers are the domain's rule).
    async fn has_object_grant(
        &self,
        user: UserId,
        codename: &str,
        object: &ObjectRef,
    ) -> StoreResult<bool>;
    /// The object ids of `object_type` the user holds `codename` on (directly or through a
    /// group), ascending, strictly after `after`, at most `limit`. `all` is left false.
    async fn object_ids(
        &self,
        user: UserId,
        codename: &str,
        object_type: &str,
        after: Option<&str>,
        limit: u64,
    ) -> StoreResult<ObjectIds>;
}

/// Managed signing keys (see [`crate::token::managed`]). Every write is conditional, so
/// processes racing to rotate agree on one outcome.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Every stored key, in generation order.
    async fn keys(&self) -> StoreResult<Vec<KeyRecord>>;
    /// Stores a key unless its generation (or `kid`) is taken; false then (another process
    /// rotated first).
    async fn insert_key(&self, key: &KeyRecord) -> StoreResult<bool>;
    /// Sets the key's `activate_at` to `at` if it is still `was` and the key is not retired.
    async fn schedule_key(
        &self,
        kid: &str,
        was: Option<Timestamp>,
        at: Timestamp,
    ) -> StoreResult<bool>;
    /// Marks the key retired at `at` (and revoked, when asked); false if there is no such key.
    async fn retire_key(&self, kid: &str, at: Timestamp, revoke: bool) -> StoreResult<bool>;
    async fn delete_key(&self, kid: &str) -> StoreResult<bool>;
    /// Tells the other processes sharing the store that the keys changed (a cross-instance
    /// broadcast where there is one); returns when they have been told.
    async fn changed(&self) {}
    /// Fires when another process says the keys changed; `None` without a broadcast.
    fn subscribe(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

/// Bulk writes of an import from Django (see [`crate::import`]).
#[async_trait]
pub trait ImportStore: Send + Sync + 'static {
    /// Applies the export's users (keeping their ids, each decided by
    /// [`crate::import::decide_user`] against the fingerprint recorded at its last import, which
    /// is then recorded anew), groups, permissions, links and object grants in one
    /// transaction: all or nothing, and rolled back at the end when `dry_run`, so a dry run
    /// counts exactly what a real run would do and writes nothing. Idempotent: rows that exist
    /// and match are counted unchanged, never written twice.
    async fn import_django(
        &self,
        export: &DjangoExport,
        now: Timestamp,
        dry_run: bool,
        progress: Progress<'_>,
    ) -> StoreResult<StoreCounts>;
    /// Where the dual-run with Django stands (see [`crate::import::dualrun`]). The import
    /// starts it (in its transaction); only [`ImportStore::finish_dual_run`] ends it.
    async fn dual_run(&self) -> StoreResult<DualRun>;
    /// Ends a dual-run in progress and forgets the exchanged Django session keys (none is
    /// accepted any more); false when none was in progress.
    async fn finish_dual_run(&self, now: Timestamp) -> StoreResult<bool>;
    /// How many Django session keys were exchanged so far.
    async fn exchanged_django_sessions(&self) -> StoreResult<u64>;
    /// The password hash and active flag of a user who came from Django (`None` for a user
    /// created in sekisho or never imported).
    async fn imported_credentials(
        &self,
        id: UserId,
    ) -> StoreResult<Option<crate::account::Credentials>>;
    /// Records a Django session key (its hash) as exchanged, unless it already is: false
    /// then. One conditional insert, so two racing requests cannot both exchange one key.
    async fn claim_django_session(
        &self,
        key_hash: &str,
        user: UserId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<bool>;
}

/// One row of Django's `django_session`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DjangoSessionRow {
    pub session_data: String,
    pub expire_date: Timestamp,
}

/// A user as Django's `auth_user` holds it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DjangoAccount {
    pub password: String,
    pub is_active: bool,
}

/// The Django database of a dual-run, read live (read-only): sessions Django creates after the
/// import are exchanged too, and Django's current password hash is checked as Django checks it.
#[async_trait]
pub trait DjangoSessionSource: Send + Sync + 'static {
    async fn django_session(&self, key: &str) -> StoreResult<Option<DjangoSessionRow>>;
    async fn django_account(&self, id: UserId) -> StoreResult<Option<DjangoAccount>>;
}

/// The append-only record of administrative actions.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    async fn append(&self, entry: &NewAuditEntry) -> StoreResult<AuditEntry>;
    /// Newest first.
    async fn entries(&self, query: &AuditQuery) -> StoreResult<Page<AuditEntry>>;
}

/// Second factors and the challenges of logins waiting for one (see [`crate::mfa`]). Every
/// "use" is one conditional write, so two requests racing with one code (or one challenge)
/// cannot both succeed.
#[async_trait]
pub trait MfaStore: Send + Sync + 'static {
    async fn totp(&self, user: UserId) -> StoreResult<Option<TotpRecord>>;
    /// Stores a pending secret (replacing a pending one); false when a confirmed one exists.
    async fn begin_totp(&self, user: UserId, sealed: &[u8], now: Timestamp) -> StoreResult<bool>;
    /// Confirms the pending secret with `step` as its last used step, and replaces the
    /// recovery codes with `recovery_hashes`, in one transaction; false when nothing is pending.
    async fn confirm_totp(
        &self,
        user: UserId,
        step: i64,
        now: Timestamp,
        recovery_hashes: &[String],
    ) -> StoreResult<bool>;
    /// Records `step` as used if the confirmed secret's last used step is older; false
    /// otherwise (a replay, or a racing request used it first).
    async fn use_totp_step(&self, user: UserId, step: i64) -> StoreResult<bool>;
    /// Removes the secret (pending or confirmed) and the recovery codes; false when there was
    /// no secret.
    async fn delete_totp(&self, user: UserId) -> StoreResult<bool>;
    async fn replace_recovery_codes(
        &self,
        user: UserId,
        hashes: &[String],
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Deletes the code with this hash; false when the user has no such (unused) code.
    async fn use_recovery_code(&self, user: UserId, hash: &str) -> StoreResult<bool>;
    async fn recovery_codes_left(&self, user: UserId) -> StoreResult<u64>;
    async fn create_challenge(&self, challenge: &ChallengeRecord) -> StoreResult<()>;
    async fn challenge(&self, id_hash: &str) -> StoreResult<Option<ChallengeRecord>>;
    /// Deletes the challenge; false when it was already gone (used by a racing request).
    async fn consume_challenge(&self, id_hash: &str) -> StoreResult<bool>;
    /// Deletes expired challenges and passkey ceremonies.
    async fn purge_expired_challenges(&self, now: Timestamp) -> StoreResult<u64>;

    /// The user's passkeys, oldest first.
    async fn passkeys(&self, user: UserId) -> StoreResult<Vec<PasskeyRecord>>;
    /// `Conflict` when the credential id is registered already (to anyone).
    async fn add_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<()>;
    /// false when the user has no such key.
    async fn rename_passkey(&self, user: UserId, id: &str, name: &str) -> StoreResult<bool>;
    async fn delete_passkey(&self, user: UserId, id: &str) -> StoreResult<bool>;
    /// Records a use: the stored credential becomes `updated` if it is still `was` (a
    /// compare-and-swap: of two racing uses of one counter value, one wins).
    async fn use_passkey(
        &self,
        id: &str,
        was: &str,
        updated: &str,
        now: Timestamp,
    ) -> StoreResult<bool>;
    async fn create_ceremony(&self, ceremony: &CeremonyRecord) -> StoreResult<()>;
    /// Deletes the ceremony and returns it: a ceremony is read once.
    async fn take_ceremony(&self, id_hash: &str) -> StoreResult<Option<CeremonyRecord>>;
}
