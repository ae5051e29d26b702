//! Storage backends for sekisho. Each implements sekisho-core's store traits and makes every
//! trait operation atomic in its own way; the shared conformance suite in [`conformance`] runs
//! against each of them.

pub mod conformance;
pub mod sqlite;

use sekisho_core::store::StoreError;
use std::time::Duration;

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

pub(crate) fn map_sqlx(e: sqlx::Error) -> StoreError {
    if let Some(db) = e.as_database_error()
        && db.is_unique_violation()
    {
        return StoreError::Conflict("already exists".into());
    }
    StoreError::Unavailable(e.to_string())
}
