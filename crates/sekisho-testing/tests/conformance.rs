//! The store conformance suite on every backend: SQLite, PostgreSQL, Redis (sessions and
//! families; users in SQLite) and the per-instance read cache in front of SQLite. Real servers;
//! URLs from `SEKISHO_TEST_POSTGRES_URL` / `SEKISHO_TEST_REDIS_URL` (a missing one fails).

use sekisho_core::clock::{Clock, SystemClock};
use sekisho_store::cache::{CachedFamilies, CachedSessions, CachedUsers, Caches};
use sekisho_store::postgres::PgStore;
use sekisho_store::redis_store::RedisStore;
use sekisho_store::sqlite::SqliteStore;
use sekisho_testing::conformance::{Expiry, mfa_store, run_all};
use sekisho_testing::services;
use std::sync::Arc;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(5);

async fn sqlite(dir: &tempfile::TempDir) -> Arc<SqliteStore> {
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let s = SqliteStore::connect(&url, 4, DEADLINE).await.unwrap();
    s.migrate().await.unwrap();
    Arc::new(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let s = sqlite(&dir).await;
    mfa_store(&*s, &*s).await;
    run_all(s.clone(), s.clone(), s, Expiry::Purge).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_passes_the_conformance_suite() {
    let db = services::fresh_pg_database().await;
    let s = PgStore::connect(&db.url, 8, DEADLINE).await.unwrap();
    s.migrate().await.unwrap();
    s.migrate().await.unwrap();
    let s = Arc::new(s);
    mfa_store(&*s, &*s).await;
    run_all(s.clone(), s.clone(), s, Expiry::Purge).await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let users = sqlite(&dir).await;
    let prefix = format!("sekisho-test-{}", &sekisho_core::random::hex128()[..12]);
    let redis = Arc::new(
        RedisStore::connect(&services::redis_url(), &prefix, DEADLINE)
            .await
            .unwrap(),
    );
    run_all(users, redis.clone(), redis, Expiry::Ttl).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cached_stores_pass_the_conformance_suite() {
    // Writes through the cache must be visible at once: the suite reads after every write.
    let dir = tempfile::tempdir().unwrap();
    let s = sqlite(&dir).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ttl = Duration::from_secs(1);
    let caches = Caches::new(ttl, clock);
    let users = Arc::new(CachedUsers::new(s.clone(), caches.clone()));
    let sessions = Arc::new(CachedSessions::new(s.clone(), caches.clone()));
    let families = Arc::new(CachedFamilies::new(s, caches));
    run_all(users, families, sessions, Expiry::Purge).await;
}
