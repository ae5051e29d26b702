//! Storage backends for sekisho. Each implements sekisho-core's store traits and makes every
//! trait operation atomic in its own way; the shared conformance suite (the dev-only
//! `sekisho-testing` crate) runs against each of them.

pub mod bus;
pub mod cache;
pub mod django;
pub mod postgres;
pub mod redis_store;
mod sql;
pub mod sqlite;

use sekisho_core::Config;
use sekisho_core::clock::Clock;
pub use sekisho_core::store::Stores;
use sekisho_core::store::{
    AuditStore, AuthzStore, FamilyStore, ImportStore, KeyStore, MfaStore, SessionStore, StoreError,
    StoreResult, UserStore,
};
use std::sync::Arc;
use std::time::Duration;

/// Opens (and migrates) the stores a deployment runs on, chosen by config: users in the SQL
/// database of `database.url`; sessions and refresh families there too, or in Redis when
/// `sessions.store` is a `redis://` URL; all behind the per-instance read cache (`cache.ttl`),
/// kept in step across processes by [`bus`] on PostgreSQL.
pub async fn open(config: &Config, clock: Arc<dyn Clock>) -> StoreResult<Stores> {
    let db = &config.database;
    let mut pg: Option<postgres::PgStore> = None;
    #[allow(clippy::type_complexity)]
    let (users, families, sessions, authz, audit, keys, mfa, imports): (
        Arc<dyn UserStore>,
        Arc<dyn FamilyStore>,
        Arc<dyn SessionStore>,
        Arc<dyn AuthzStore>,
        Arc<dyn AuditStore>,
        Arc<dyn KeyStore>,
        Arc<dyn MfaStore>,
        Arc<dyn ImportStore>,
    ) = if db.url.starts_with("sqlite:") {
        let s = Arc::new(
            sqlite::SqliteStore::connect(&db.url, db.max_connections as u32, db.timeout.0).await?,
        );
        s.migrate().await?;
        (
            s.clone(),
            s.clone(),
            s.clone(),
            s.clone(),
            s.clone(),
            s.clone(),
            s.clone(),
            s,
        )
    } else {
        let s = Arc::new(
            postgres::PgStore::connect(&db.url, db.max_connections as u32, db.timeout.0).await?,
        );
        s.migrate().await?;
        pg = Some((*s).clone());
        (
            s.clone(),
            s.clone(),
            s.clone(),
            s.clone(),
            s.clone(),
            s.clone(),
            s.clone(),
            s,
        )
    };
    let store = &config.sessions.store;
    let (families, sessions): (Arc<dyn FamilyStore>, Arc<dyn SessionStore>) =
        if store.starts_with("redis://") || store.starts_with("rediss://") {
            let r = Arc::new(
                redis_store::RedisStore::connect(store, &config.sessions.key_prefix, db.timeout.0)
                    .await?,
            );
            (r.clone(), r)
        } else {
            (families, sessions)
        };
    let ttl = config.cache.ttl.0;
    if ttl.is_zero() {
        return Ok(Stores {
            users,
            families,
            sessions,
            authz,
            audit,
            keys,
            mfa,
            imports,
        });
    }
    let caches = cache::Caches::new(ttl, clock);
    if let Some(pg) = pg {
        bus::Bus::start(pg.pool().clone(), pg.listen_pool(), &caches)
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot listen for cache invalidations: {e}"))
            })?;
    }
    let cached_users = cache::CachedUsers::new(users, caches.clone());
    Ok(Stores {
        authz: Arc::new(cached_users.authz(authz)),
        audit,
        mfa,
        keys: Arc::new(cache::CachedKeys::new(keys, caches.clone())),
        imports: Arc::new(cache::CachedImports::new(imports, caches.clone())),
        users: Arc::new(cached_users),
        families: Arc::new(cache::CachedFamilies::new(families, caches.clone())),
        sessions: Arc::new(cache::CachedSessions::new(sessions, caches)),
    })
}

/// Runs one storage call under a deadline. A slow or dead backend becomes
/// [`StoreError::Unavailable`], which the HTTP layer turns into 503: fail closed.
pub(crate) async fn bounded<T>(
    deadline: Duration,
    fut: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(deadline, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(map_sqlx(e)),
        Err(_) => Err(StoreError::Unavailable("storage call timed out".into())),
    }
}

/// Storage errors are classified once, here: a broken uniqueness rule is a conflict; input the
/// database refuses (SQLSTATE class 22, "data exception": a NUL byte in text, invalid UTF-8, a
/// value out of range) is the client's fault; everything else — connection lost, pool timed
/// out, server shutting down — is an outage, and the caller fails closed.
pub(crate) fn map_sqlx(e: sqlx::Error) -> StoreError {
    if let Some(db) = e.as_database_error() {
        if db.is_unique_violation() {
            return StoreError::Conflict("already exists".into());
        }
        if db.code().is_some_and(|c| c.starts_with("22")) {
            return StoreError::Refused(db.message().to_string());
        }
    }
    StoreError::Unavailable(e.to_string())
}
