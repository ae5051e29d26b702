//! What a login reads before it checks the password: only the credentials (one lookup), the
//! same for a known user as for an unknown one, so the answer's timing does not tell which
//! usernames exist. The groups and permissions are read after the password matched. Counted
//! on a real SQLite store wrapped by a counter of the full user loads.

use async_trait::async_trait;
use sekisho_core::account::{NewUser, ProfileUpdate, StoredUser, User, UserId};
use sekisho_core::clock::{SystemClock, Timestamp};
use sekisho_core::config::Config;
use sekisho_core::session::CsrfKey;
use sekisho_core::store::{StoreResult, Stores, UserStore};
use sekisho_core::token::{HmacKey, SignatureAlgorithm};
use sekisho_core::{Auth, AuthError};
use sekisho_store::sqlite::SqliteStore;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

struct Counting {
    inner: Arc<SqliteStore>,
    full_loads: AtomicUsize,
}

#[async_trait]
impl UserStore for Counting {
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
    async fn create_user(&self, u: &NewUser, hash: &str, now: Timestamp) -> StoreResult<User> {
        self.inner.create_user(u, hash, now).await
    }
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<StoredUser>> {
        self.full_loads.fetch_add(1, Ordering::SeqCst);
        self.inner.user_by_username(username).await
    }
    async fn credentials(
        &self,
        username: &str,
    ) -> StoreResult<Option<sekisho_core::account::Credentials>> {
        self.inner.credentials(username).await
    }
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<Arc<User>>> {
        self.full_loads.fetch_add(1, Ordering::SeqCst);
        self.inner.user_by_id(id).await
    }
    async fn set_password_hash(&self, id: UserId, hash: &str) -> StoreResult<bool> {
        self.inner.set_password_hash(id, hash).await
    }
    async fn set_active(&self, id: UserId, active: bool) -> StoreResult<bool> {
        self.inner.set_active(id, active).await
    }
    async fn record_login(&self, id: UserId, now: Timestamp) -> StoreResult<()> {
        self.inner.record_login(id, now).await
    }
    async fn list_users(&self) -> StoreResult<Vec<User>> {
        self.inner.list_users().await
    }
    async fn update_profile(&self, id: UserId, u: &ProfileUpdate) -> StoreResult<Option<User>> {
        self.inner.update_profile(id, u).await
    }
}

#[tokio::test]
async fn a_failed_login_reads_the_same_for_known_and_unknown_users() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let sqlite = Arc::new(
        SqliteStore::connect(&url, 4, Duration::from_secs(5))
            .await
            .unwrap(),
    );
    sqlite.migrate().await.unwrap();
    let users = Arc::new(Counting {
        inner: sqlite.clone(),
        full_loads: AtomicUsize::new(0),
    });
    let config = Config::load(
        "",
        [
            (
                "SEKISHO_PASSWORDS__ARGON2_MEMORY_KIB".to_string(),
                "256".to_string(),
            ),
            (
                "SEKISHO_PASSWORDS__ARGON2_ITERATIONS".to_string(),
                "1".to_string(),
            ),
        ],
    )
    .unwrap();
    let secret = [7u8; 32];
    let auth = Auth::builder(&config)
        .stores(Stores {
            users: users.clone(),
            families: sqlite.clone(),
            sessions: sqlite.clone(),
            authz: sqlite.clone(),
            audit: sqlite.clone(),
            keys: sqlite.clone(),
            mfa: sqlite.clone(),
            imports: sqlite,
        })
        .clock(Arc::new(SystemClock))
        .signing_key(Arc::new(
            HmacKey::new(SignatureAlgorithm::HS256, &secret).unwrap(),
        ))
        .csrf_key(CsrfKey::derive(&secret))
        .build()
        .unwrap();
    let new = NewUser {
        username: "known".into(),
        ..Default::default()
    };
    auth.create_user(&new, "the right password").await.unwrap();
    users.full_loads.store(0, Ordering::SeqCst);

    for name in ["known", "unknown"] {
        let r = auth.check_password(name, "a wrong password", "").await;
        assert!(
            matches!(r, Err(AuthError::InvalidCredentials)),
            "{name}: {r:?}"
        );
    }
    assert_eq!(
        users.full_loads.load(Ordering::SeqCst),
        0,
        "groups and permissions were read before the password was checked"
    );
    let user = auth
        .check_password("known", "the right password", "")
        .await
        .unwrap();
    assert_eq!(user.username, "known");
    assert_eq!(users.full_loads.load(Ordering::SeqCst), 1, "then read once");
}
