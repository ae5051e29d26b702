//! SQLite, embedded: the zero-setup default. WAL mode lets readers proceed during writes; every
//! read-modify-write runs inside `BEGIN IMMEDIATE`, which takes the write lock up front so
//! concurrent rotations serialise instead of failing on a lock upgrade.

use sekisho_core::store::{StoreError, StoreResult};
use sqlx::SqlitePool;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// One connection for every write: SQLite has a single writer anyway, and queueing here is
    /// far cheaper than contending for its lock (whose busy handler sleeps).
    writer: SqlitePool,
    deadline: Duration,
}

impl SqliteStore {
    /// Opens (and creates, with its parent directory) the database named by a `sqlite://` URL.
    pub async fn connect(url: &str, max_connections: u32, deadline: Duration) -> StoreResult<Self> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("database.url: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(deadline);
        let path = opts.get_filename();
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
            && path.to_str() != Some(":memory:")
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(deadline)
            .connect_with(opts.clone())
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot open the SQLite database: {e}"))
            })?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(deadline)
            .connect_with(opts)
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot open the SQLite database: {e}"))
            })?;
        Ok(SqliteStore {
            pool,
            writer,
            deadline,
        })
    }

    /// Applies pending migrations; safe to run on every start.
    pub async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

crate::sql::impl_sql_stores!(
    SqliteStore,
    SqliteRow,
    begin = "BEGIN IMMEDIATE",
    lock_family = "SELECT * FROM refresh_families WHERE id = $1"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn migrations_are_idempotent_and_create_parent_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/a/b/t.db", dir.path().display());
        let s = SqliteStore::connect(&url, 2, Duration::from_secs(5))
            .await
            .unwrap();
        s.migrate().await.unwrap();
        s.migrate().await.unwrap();
        assert!(dir.path().join("a/b/t.db").exists());
    }
}
