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
        if path.to_str() != Some(":memory:") {
            create_private(path)?;
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
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))?;
        self.after_migrations().await
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

crate::sql::impl_sql_stores!(
    SqliteStore,
    SqliteRow,
    begin = "BEGIN IMMEDIATE",
    lock_family = "SELECT * FROM refresh_families WHERE id = $1",
    after_explicit_ids = "SELECT 1"
);

/// Creates the database file readable by its owner only (0600) if it does not exist yet, so
/// SQLite opens it instead of creating it with the umask's mode (typically 0644: the password
/// hashes readable by every local user). SQLite gives its `-wal` and `-shm` files the database
/// file's mode. An existing file keeps the mode its owner chose.
fn create_private(path: &std::path::Path) -> StoreResult<()> {
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    match open.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Unavailable(format!(
            "cannot create {}: {e}",
            path.display()
        ))),
    }
}

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

    #[tokio::test]
    async fn users_from_before_the_lookalike_check_get_their_skeleton_at_start() {
        use sekisho_core::account::NewUser;
        use sekisho_core::clock::Timestamp;
        use sekisho_core::store::{StoreError, UserStore};
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let s = SqliteStore::connect(&url, 2, Duration::from_secs(5))
            .await
            .unwrap();
        s.migrate().await.unwrap();
        let new = |name: &str| NewUser {
            username: name.into(),
            ..NewUser::default()
        };
        s.create_user(&new("alice"), "!", Timestamp(0))
            .await
            .unwrap();
        // As a database migrated from before the column existed.
        sqlx::query("UPDATE users SET username_skeleton = NULL")
            .execute(s.pool())
            .await
            .unwrap();
        s.migrate().await.unwrap();
        let e = s.create_user(&new("\u{430}lice"), "!", Timestamp(0)).await;
        assert!(matches!(e, Err(StoreError::Conflict(_))), "{e:?}");
        s.create_user(&new("bob"), "!", Timestamp(0)).await.unwrap();
    }
}
