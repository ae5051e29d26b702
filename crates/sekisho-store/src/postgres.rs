//! PostgreSQL, for several instances sharing one database. Rotation locks the family row with
//! `SELECT … FOR UPDATE` inside a transaction, so concurrent refreshes on any number of
//! instances serialise on that row and exactly one of them rotates.

use sekisho_core::store::{StoreError, StoreResult};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The same pool: PostgreSQL handles concurrent writers itself.
    writer: PgPool,
    deadline: Duration,
    options: PgConnectOptions,
}

impl PgStore {
    /// Connects to a `postgres://` URL. Every storage call is bounded by `deadline`; a dead
    /// connection is replaced on the next call, so the service recovers by itself.
    pub async fn connect(url: &str, max_connections: u32, deadline: Duration) -> StoreResult<Self> {
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("database.url: {e}")))?
            .application_name("sekisho");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .min_connections(0)
            .acquire_timeout(deadline)
            .test_before_acquire(true)
            .connect_with(opts.clone())
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        Ok(PgStore {
            writer: pool.clone(),
            pool,
            deadline,
            options: opts,
        })
    }

    /// Applies pending migrations; safe to run on every start and from several instances at
    /// once (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))?;
        self.after_migrations().await
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A pool of one long-lived connection for the cache-invalidation listener
    /// ([`crate::bus`]), apart from the main pool so it never takes a request's connection.
    pub fn listen_pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(self.deadline)
            .connect_lazy_with(self.options.clone())
    }
}

crate::sql::impl_sql_stores!(
    PgStore,
    PgRow,
    begin = "BEGIN",
    lock_family = "SELECT * FROM refresh_families WHERE id = $1 FOR UPDATE",
    after_explicit_ids =
        "SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT MAX(id) FROM users))"
);
