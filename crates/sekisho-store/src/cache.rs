//! A short-lived, per-instance read cache in front of the user and session stores, so the
//! identity check on an API call costs a hash-map lookup instead of a database round trip.
//!
//! Consistency: every change made through this instance removes the affected entries at once
//! (a logout, password change, deactivation or profile edit is seen by this instance's next
//! request). On PostgreSQL the same change is broadcast to every other process sharing the
//! database (other instances, the CLI) by [`crate::bus`], and the change's caller waits until
//! they have dropped it too, so it holds for the next request on *every* instance. Without the
//! broadcast (SQLite, or a process the broadcast could not reach) another process's change is
//! seen after at most `cache.ttl` (default 250 ms, capped at 1 s); `cache.ttl = 0` turns the
//! cache off.

use async_trait::async_trait;
use sekisho_core::account::{NewUser, ProfileUpdate, StoredUser, User, UserId};
use sekisho_core::authz::model::{
    AdminUserUpdate, Group, GroupId, ObjectGrant, ObjectGrantQuery, ObjectIds, ObjectRef, Page,
    Permission, Principal, UserQuery,
};
use sekisho_core::clock::{Clock, Timestamp};
use sekisho_core::family::{FamilyRecord, RevokeOutcome, RotateOutcome, RotateRequest};
use sekisho_core::import::{DjangoExport, Progress, StoreCounts};
use sekisho_core::session::SessionRecord;
use sekisho_core::store::{
    AuthzStore, FamilyStore, ImportStore, KeyStore, SessionStore, StoreResult, UserStore,
};
use sekisho_core::token::managed::KeyRecord;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const SHARDS: usize = 16;

/// A sharded map whose entries expire `ttl` after they were fetched. Bounded: a shard that
/// reaches its share of `capacity` drops its expired entries, or all of them if none expired.
pub struct TtlCache<K, V> {
    shards: Vec<Mutex<HashMap<K, (V, Timestamp)>>>,
    hasher: RandomState,
    ttl: Duration,
    per_shard: usize,
    clock: Arc<dyn Clock>,
}

impl<K: Hash + Eq + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, capacity: usize, clock: Arc<dyn Clock>) -> Self {
        TtlCache {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            ttl,
            per_shard: (capacity / SHARDS).max(1),
            clock,
        }
    }

    fn shard(&self, k: &K) -> &Mutex<HashMap<K, (V, Timestamp)>> {
        &self.shards[(self.hasher.hash_one(k) as usize) % SHARDS]
    }

    pub fn get(&self, k: &K) -> Option<V> {
        let now = self.clock.now();
        let map = self.shard(k).lock().unwrap_or_else(|e| e.into_inner());
        match map.get(k) {
            Some((v, at)) if now < at.plus(self.ttl) => Some(v.clone()),
            _ => None,
        }
    }

    pub fn insert(&self, k: K, v: V) {
        let now = self.clock.now();
        let mut map = self.shard(&k).lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.per_shard {
            let ttl = self.ttl;
            map.retain(|_, (_, at)| now < at.plus(ttl));
            if map.len() >= self.per_shard {
                map.clear();
            }
        }
        map.insert(k, (v, now));
    }

    pub fn remove(&self, k: &K) {
        self.shard(k)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(k);
    }

    pub fn clear(&self) {
        for s in &self.shards {
            s.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    /// Removes every entry whose value matches (rare operations such as "end all sessions").
    pub fn remove_where(&self, f: impl Fn(&V) -> bool) {
        for s in &self.shards {
            s.lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|_, (v, _)| !f(v));
        }
    }
}

/// What a change makes stale, here and (through [`crate::bus`]) on every other instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stale {
    /// One user: the account, its grants and memberships, its sessions and refresh families.
    User(UserId),
    /// Every cached user (a group's grants, a group or a permission going).
    AllUsers,
    /// One session, by the hash of its id.
    Session(String),
    /// One refresh family, by id.
    Family(String),
    /// The signing keys (every process re-reads its key ring).
    Keys,
    /// Everything (a process that may have missed broadcasts).
    Everything,
}

/// The three caches of one process, and the broadcast that keeps the other processes' caches
/// in step with this one's changes.
pub struct Caches {
    users: TtlCache<UserId, Arc<User>>,
    sessions: TtlCache<String, SessionRecord>,
    families: TtlCache<String, FamilyRecord>,
    /// False while the broadcast is attached but not connected: this process could miss other
    /// processes' changes, so it reads through instead of serving cached entries.
    serving: AtomicBool,
    bus: OnceLock<crate::bus::Bus>,
    /// Bumped when the signing keys change here or in another process.
    key_changes: tokio::sync::watch::Sender<u64>,
}

impl Caches {
    pub fn new(ttl: Duration, clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Caches {
            users: TtlCache::new(ttl, 100_000, clock.clone()),
            sessions: TtlCache::new(ttl, 200_000, clock.clone()),
            families: TtlCache::new(ttl, 200_000, clock),
            serving: AtomicBool::new(true),
            bus: OnceLock::new(),
            key_changes: tokio::sync::watch::Sender::new(0),
        })
    }

    /// Drops what `stale` names from this process's caches.
    pub fn apply(&self, stale: &Stale) {
        match stale {
            Stale::User(u) => {
                self.users.remove(u);
                self.sessions.remove_where(|s| s.user_id == *u);
                self.families.remove_where(|f| f.user_id == *u);
            }
            Stale::AllUsers => self.users.clear(),
            Stale::Session(h) => self.sessions.remove(h),
            Stale::Family(id) => self.families.remove(id),
            Stale::Keys => self.key_changes.send_modify(|n| *n += 1),
            Stale::Everything => {
                self.users.clear();
                self.sessions.clear();
                self.families.clear();
                self.key_changes.send_modify(|n| *n += 1);
            }
        }
    }

    /// A change was committed: drops it here, then (with a broadcast attached) on every other
    /// live process, returning once they have acknowledged it (or after the broadcast's bound).
    pub async fn changed(&self, stale: Stale) {
        self.apply(&stale);
        if let Some(bus) = self.bus.get() {
            bus.publish(&stale).await;
        }
    }

    pub(crate) fn attach(&self, bus: crate::bus::Bus) {
        let _ = self.bus.set(bus);
    }

    pub(crate) fn set_serving(&self, on: bool) {
        self.serving.store(on, Ordering::SeqCst);
        if !on {
            self.apply(&Stale::Everything);
        }
    }

    fn serving(&self) -> bool {
        self.serving.load(Ordering::SeqCst)
    }

    /// A cached entry, unless the cache is not serving.
    fn get<K: Hash + Eq + Clone, V: Clone>(&self, c: &TtlCache<K, V>, k: &K) -> Option<V> {
        if self.serving() { c.get(k) } else { None }
    }

    fn insert<K: Hash + Eq + Clone, V: Clone>(&self, c: &TtlCache<K, V>, k: K, v: V) {
        if self.serving() {
            c.insert(k, v);
        }
    }
}

/// Users by id, cached; every write through this store invalidates the user.
pub struct CachedUsers {
    inner: Arc<dyn UserStore>,
    caches: Arc<Caches>,
}

impl CachedUsers {
    pub fn new(inner: Arc<dyn UserStore>, caches: Arc<Caches>) -> Self {
        CachedUsers { inner, caches }
    }

    /// An authorization store whose changes drop the affected users from the caches.
    pub fn authz(&self, inner: Arc<dyn AuthzStore>) -> CachedAuthz {
        CachedAuthz {
            inner,
            caches: self.caches.clone(),
        }
    }
}

/// Writes through to the authorization store, then drops what they change from this
/// instance's user cache: a user's own grants and memberships drop that user; a group's
/// grants, a group or a permission going drop every cached user (rare, administrative).
pub struct CachedAuthz {
    inner: Arc<dyn AuthzStore>,
    caches: Arc<Caches>,
}

impl CachedAuthz {
    async fn changed<T>(&self, r: StoreResult<T>, stale: Stale) -> StoreResult<T> {
        // Published whatever the outcome: a failed call may still have committed.
        self.caches.changed(stale).await;
        r
    }

    fn of(p: Principal) -> Stale {
        match p {
            Principal::User(u) => Stale::User(u),
            Principal::Group(_) => Stale::AllUsers,
        }
    }
}

#[async_trait]
impl AuthzStore for CachedAuthz {
    async fn search_users(&self, q: &UserQuery) -> StoreResult<Page<User>> {
        self.inner.search_users(q).await
    }
    async fn update_user(&self, id: UserId, u: &AdminUserUpdate) -> StoreResult<Option<User>> {
        let r = self.inner.update_user(id, u).await;
        self.changed(r, Stale::User(id)).await
    }
    async fn create_group(&self, name: &str) -> StoreResult<Group> {
        self.inner.create_group(name).await
    }
    async fn groups(&self) -> StoreResult<Vec<Group>> {
        self.inner.groups().await
    }
    async fn group(&self, id: GroupId) -> StoreResult<Option<Group>> {
        self.inner.group(id).await
    }
    async fn group_by_name(&self, name: &str) -> StoreResult<Option<Group>> {
        self.inner.group_by_name(name).await
    }
    async fn rename_group(&self, id: GroupId, name: &str) -> StoreResult<bool> {
        let r = self.inner.rename_group(id, name).await;
        self.changed(r, Stale::AllUsers).await
    }
    async fn delete_group(&self, id: GroupId) -> StoreResult<bool> {
        let r = self.inner.delete_group(id).await;
        self.changed(r, Stale::AllUsers).await
    }
    async fn group_members(&self, id: GroupId) -> StoreResult<Vec<UserId>> {
        self.inner.group_members(id).await
    }
    async fn add_member(&self, group: GroupId, user: UserId) -> StoreResult<bool> {
        let r = self.inner.add_member(group, user).await;
        self.changed(r, Stale::User(user)).await
    }
    async fn remove_member(&self, group: GroupId, user: UserId) -> StoreResult<bool> {
        let r = self.inner.remove_member(group, user).await;
        self.changed(r, Stale::User(user)).await
    }
    async fn create_permission(&self, codename: &str, name: &str) -> StoreResult<Permission> {
        self.inner.create_permission(codename, name).await
    }
    async fn permissions(&self) -> StoreResult<Vec<Permission>> {
        self.inner.permissions().await
    }
    async fn permission(&self, codename: &str) -> StoreResult<Option<Permission>> {
        self.inner.permission(codename).await
    }
    async fn rename_permission(&self, codename: &str, name: &str) -> StoreResult<bool> {
        self.inner.rename_permission(codename, name).await
    }
    async fn delete_permission(&self, codename: &str) -> StoreResult<bool> {
        let r = self.inner.delete_permission(codename).await;
        self.changed(r, Stale::AllUsers).await
    }
    async fn grant(&self, to: Principal, codename: &str) -> StoreResult<bool> {
        let r = self.inner.grant(to, codename).await;
        self.changed(r, Self::of(to)).await
    }
    async fn revoke(&self, from: Principal, codename: &str) -> StoreResult<bool> {
        let r = self.inner.revoke(from, codename).await;
        self.changed(r, Self::of(from)).await
    }
    async fn grant_object(&self, g: &ObjectGrant) -> StoreResult<bool> {
        self.inner.grant_object(g).await
    }
    async fn revoke_object(&self, g: &ObjectGrant) -> StoreResult<bool> {
        self.inner.revoke_object(g).await
    }
    async fn object_grants(&self, q: &ObjectGrantQuery) -> StoreResult<Page<ObjectGrant>> {
        self.inner.object_grants(q).await
    }
    async fn has_object_grant(
        &self,
        user: UserId,
        codename: &str,
        object: &ObjectRef,
    ) -> StoreResult<bool> {
        self.inner.has_object_grant(user, codename, object).await
    }
    async fn object_ids(
        &self,
        user: UserId,
        codename: &str,
        object_type: &str,
        after: Option<&str>,
        limit: u64,
    ) -> StoreResult<ObjectIds> {
        self.inner
            .object_ids(user, codename, object_type, after, limit)
            .await
    }
}

#[async_trait]
impl UserStore for CachedUsers {
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
    async fn create_user(&self, user: &NewUser, hash: &str, now: Timestamp) -> StoreResult<User> {
        self.inner.create_user(user, hash, now).await
    }
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<StoredUser>> {
        // Logins read the password hash fresh: never from the cache.
        self.inner.user_by_username(username).await
    }
    async fn credentials(
        &self,
        username: &str,
    ) -> StoreResult<Option<sekisho_core::account::Credentials>> {
        // Logins read the password hash fresh: never from the cache.
        self.inner.credentials(username).await
    }
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<Arc<User>>> {
        let c = &self.caches;
        if let Some(u) = c.get(&c.users, &id) {
            return Ok(Some(u));
        }
        let u = self.inner.user_by_id(id).await?;
        if let Some(u) = &u {
            c.insert(&c.users, id, u.clone());
        }
        Ok(u)
    }
    async fn set_password_hash(&self, id: UserId, hash: &str) -> StoreResult<bool> {
        self.caches.apply(&Stale::User(id));
        let r = self.inner.set_password_hash(id, hash).await;
        self.caches.changed(Stale::User(id)).await;
        r
    }
    async fn set_active(&self, id: UserId, active: bool) -> StoreResult<bool> {
        self.caches.apply(&Stale::User(id));
        let r = self.inner.set_active(id, active).await;
        self.caches.changed(Stale::User(id)).await;
        r
    }
    async fn record_login(&self, id: UserId, now: Timestamp) -> StoreResult<()> {
        self.inner.record_login(id, now).await
    }
    async fn list_users(&self) -> StoreResult<Vec<User>> {
        self.inner.list_users().await
    }
    async fn update_profile(
        &self,
        id: UserId,
        update: &ProfileUpdate,
    ) -> StoreResult<Option<User>> {
        self.caches.apply(&Stale::User(id));
        let r = self.inner.update_profile(id, update).await;
        self.caches.changed(Stale::User(id)).await;
        r
    }
}

/// An import changes any number of users, groups and grants: every cached user goes, here and
/// on every other instance, once it committed.
pub struct CachedImports {
    inner: Arc<dyn ImportStore>,
    caches: Arc<Caches>,
}

impl CachedImports {
    pub fn new(inner: Arc<dyn ImportStore>, caches: Arc<Caches>) -> Self {
        CachedImports { inner, caches }
    }
}

#[async_trait]
impl ImportStore for CachedImports {
    async fn import_django(
        &self,
        export: &DjangoExport,
        now: Timestamp,
        dry_run: bool,
        progress: Progress<'_>,
    ) -> StoreResult<StoreCounts> {
        let r = self
            .inner
            .import_django(export, now, dry_run, progress)
            .await;
        if !dry_run {
            self.caches.changed(Stale::AllUsers).await;
        }
        r
    }

    // The dual-run state and the exchange are read fresh: `--finish` on one instance must
    // hold on every other at once.
    async fn dual_run(&self) -> StoreResult<sekisho_core::import::DualRun> {
        self.inner.dual_run().await
    }

    async fn finish_dual_run(&self, now: Timestamp) -> StoreResult<bool> {
        self.inner.finish_dual_run(now).await
    }

    async fn exchanged_django_sessions(&self) -> StoreResult<u64> {
        self.inner.exchanged_django_sessions().await
    }

    async fn imported_credentials(
        &self,
        id: UserId,
    ) -> StoreResult<Option<sekisho_core::account::Credentials>> {
        self.inner.imported_credentials(id).await
    }

    async fn claim_django_session(
        &self,
        key_hash: &str,
        user: UserId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<bool> {
        self.inner
            .claim_django_session(key_hash, user, now, expires_at)
            .await
    }
}

/// Sessions by id hash, cached; deletions and renewals through this store invalidate.
pub struct CachedSessions {
    inner: Arc<dyn SessionStore>,
    caches: Arc<Caches>,
}

impl CachedSessions {
    pub fn new(inner: Arc<dyn SessionStore>, caches: Arc<Caches>) -> Self {
        CachedSessions { inner, caches }
    }
}

#[async_trait]
impl SessionStore for CachedSessions {
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
    async fn create_session(&self, s: &SessionRecord) -> StoreResult<()> {
        self.inner.create_session(s).await
    }
    async fn session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        let c = &self.caches;
        let key = id_hash.to_string();
        if let Some(s) = c.get(&c.sessions, &key) {
            return Ok(Some(s));
        }
        let s = self.inner.session(id_hash).await?;
        if let Some(s) = &s {
            c.insert(&c.sessions, key, s.clone());
        }
        Ok(s)
    }
    async fn touch_session(
        &self,
        id_hash: &str,
        now: Timestamp,
        idle: Timestamp,
        older_than: Timestamp,
    ) -> StoreResult<bool> {
        // A renewal only moves the expiry forward: other processes may keep the older copy.
        let r = self
            .inner
            .touch_session(id_hash, now, idle, older_than)
            .await;
        self.caches.apply(&Stale::Session(id_hash.to_string()));
        r
    }
    async fn delete_session(&self, id_hash: &str) -> StoreResult<bool> {
        let stale = Stale::Session(id_hash.to_string());
        self.caches.apply(&stale);
        let r = self.inner.delete_session(id_hash).await;
        self.caches.changed(stale).await;
        r
    }
    async fn delete_session_by_public_id(
        &self,
        user: UserId,
        public_id: &str,
    ) -> StoreResult<bool> {
        let r = self
            .inner
            .delete_session_by_public_id(user, public_id)
            .await;
        // Other processes know the session by its hash only: drop the user's sessions there.
        self.caches
            .sessions
            .remove_where(|s| s.public_id == public_id);
        self.caches.changed(Stale::User(user)).await;
        r
    }
    async fn list_sessions(&self, user: UserId) -> StoreResult<Vec<SessionRecord>> {
        self.inner.list_sessions(user).await
    }
    async fn delete_user_sessions(&self, user: UserId, keep: Option<&str>) -> StoreResult<u64> {
        let r = self.inner.delete_user_sessions(user, keep).await;
        self.caches.changed(Stale::User(user)).await;
        r
    }
    async fn purge_expired_sessions(&self, now: Timestamp) -> StoreResult<u64> {
        // Expired entries are refused by their own expiry on every process: nothing to publish.
        self.caches.sessions.remove_where(|s| !s.is_live(now));
        self.inner.purge_expired_sessions(now).await
    }
}

/// Refresh families by id, cached for `verify` and strict access checks. Rotation itself always
/// runs on the store (it is the atomic compare-and-swap); every write through this instance
/// drops the affected entries, and revocations are broadcast.
pub struct CachedFamilies {
    inner: Arc<dyn FamilyStore>,
    caches: Arc<Caches>,
}

impl CachedFamilies {
    pub fn new(inner: Arc<dyn FamilyStore>, caches: Arc<Caches>) -> Self {
        CachedFamilies { inner, caches }
    }
}

#[async_trait]
impl FamilyStore for CachedFamilies {
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
    async fn create_family(&self, f: &FamilyRecord) -> StoreResult<bool> {
        let r = self.inner.create_family(f).await;
        self.caches.apply(&Stale::Family(f.id.clone()));
        r
    }
    async fn family(&self, id: &str) -> StoreResult<Option<FamilyRecord>> {
        let c = &self.caches;
        let key = id.to_string();
        if let Some(f) = c.get(&c.families, &key) {
            return Ok(Some(f));
        }
        let f = self.inner.family(id).await?;
        if let Some(f) = &f {
            c.insert(&c.families, key, f.clone());
        }
        Ok(f)
    }
    async fn family_fresh(&self, id: &str) -> StoreResult<Option<FamilyRecord>> {
        let f = self.inner.family(id).await?;
        match &f {
            Some(f) => self
                .caches
                .insert(&self.caches.families, id.to_string(), f.clone()),
            None => self.caches.families.remove(&id.to_string()),
        }
        Ok(f)
    }
    async fn rotate(&self, request: &RotateRequest) -> StoreResult<RotateOutcome> {
        // The hot path: not broadcast. Rotation itself always runs on the store; another
        // process's cached copy is only read by `verify`, which checks a refusal fresh.
        let r = self.inner.rotate(request).await;
        self.caches.apply(&Stale::Family(request.family_id.clone()));
        r
    }
    async fn revoke_family(
        &self,
        id: &str,
        now: Timestamp,
        reason: &str,
    ) -> StoreResult<RevokeOutcome> {
        let r = self.inner.revoke_family(id, now, reason).await;
        self.caches.changed(Stale::Family(id.to_string())).await;
        r
    }
    async fn revoke_user_families(
        &self,
        user: UserId,
        now: Timestamp,
        reason: &str,
    ) -> StoreResult<u64> {
        let r = self.inner.revoke_user_families(user, now, reason).await;
        self.caches.changed(Stale::User(user)).await;
        r
    }
    async fn purge_expired_families(&self, now: Timestamp) -> StoreResult<u64> {
        self.caches
            .families
            .remove_where(|f| f.current_exp < now.secs());
        self.inner.purge_expired_families(now).await
    }
}

/// The key store, with key changes broadcast: every other process re-reads its key ring when
/// this one rotates or retires a key (the keys themselves are not cached here; each process
/// holds its ring).
pub struct CachedKeys {
    inner: Arc<dyn KeyStore>,
    caches: Arc<Caches>,
}

impl CachedKeys {
    pub fn new(inner: Arc<dyn KeyStore>, caches: Arc<Caches>) -> Self {
        CachedKeys { inner, caches }
    }
}

#[async_trait]
impl KeyStore for CachedKeys {
    async fn keys(&self) -> StoreResult<Vec<KeyRecord>> {
        self.inner.keys().await
    }
    async fn insert_key(&self, key: &KeyRecord) -> StoreResult<bool> {
        self.inner.insert_key(key).await
    }
    async fn schedule_key(
        &self,
        kid: &str,
        was: Option<Timestamp>,
        at: Timestamp,
    ) -> StoreResult<bool> {
        self.inner.schedule_key(kid, was, at).await
    }
    async fn retire_key(&self, kid: &str, at: Timestamp, revoke: bool) -> StoreResult<bool> {
        self.inner.retire_key(kid, at, revoke).await
    }
    async fn delete_key(&self, kid: &str) -> StoreResult<bool> {
        self.inner.delete_key(kid).await
    }
    async fn changed(&self) {
        // Only the other processes: this one's caller reloads its own ring.
        if let Some(bus) = self.caches.bus.get() {
            bus.publish(&Stale::Keys).await;
        }
    }
    fn subscribe(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.caches.bus.get()?;
        Some(self.caches.key_changes.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sekisho_core::clock::ManualClock;

    #[test]
    fn entries_expire_after_the_ttl_and_the_map_stays_bounded() {
        let clock = ManualClock::at(Timestamp(1_000));
        let c: TtlCache<u32, &str> =
            TtlCache::new(Duration::from_millis(250), 32, Arc::new(clock.clone()));
        c.insert(1, "a");
        assert_eq!(c.get(&1), Some("a"));
        clock.advance(Duration::from_millis(249));
        assert_eq!(c.get(&1), Some("a"));
        clock.advance(Duration::from_millis(1));
        assert_eq!(c.get(&1), None);
        for i in 0..10_000 {
            c.insert(i, "x");
        }
        let total: usize = c.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(total <= 32, "bounded: {total}");
        c.insert(7, "y");
        c.remove_where(|v| *v == "y");
        assert_eq!(c.get(&7), None);
    }
}
