//! Reading a Django database for `sekisho import-django --from URL`: SQLite (a file path or
//! `sqlite://path`, opened read-only) or PostgreSQL (`postgres://…`), with the tables of
//! Django 4.2 and 5.x (`auth`, `contenttypes`), django-guardian and simplejwt's
//! `token_blacklist` when they exist. Nothing here writes to the source.
//!
//! The queries are portable SQL except the one thing the engines store differently: Django
//! keeps datetimes as `YYYY-MM-DD HH:MM:SS.ffffff` text (UTC) in SQLite and as `timestamptz`
//! in PostgreSQL; both are read as milliseconds since the epoch. Ids are cast to 64 bits:
//! Django's `auth` models use 32-bit `AutoField`s.

use sekisho_core::account::UserId;
use sekisho_core::clock::Timestamp;
use sekisho_core::import::{
    DjangoExport, DjangoGroup, DjangoObjectGrant, DjangoPermission, DjangoPrincipal, DjangoToken,
    DjangoUser, Progress,
};
use sekisho_core::store::{DjangoAccount, DjangoSessionRow, DjangoSessionSource, StoreResult};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, PgPool, Row, SqlitePool};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// What can go wrong reading the source, each in one line without a secret.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("--from {0}")]
    BadUrl(String),
    #[error("cannot reach the Django database {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "{url} is not a migrated Django database: no {missing} table (run `manage.py migrate` there first)"
    )]
    NotDjango { url: String, missing: String },
    #[error("reading {table} from {url}: {reason}")]
    Read {
        url: String,
        table: &'static str,
        reason: String,
    },
}

/// An open Django database.
pub enum DjangoSource {
    Sqlite { pool: SqlitePool, url: String },
    Postgres { pool: PgPool, url: String },
}

/// The tables every migrated Django project with `django.contrib.auth` has.
const REQUIRED: [&str; 7] = [
    "auth_user",
    "auth_group",
    "auth_permission",
    "django_content_type",
    "auth_user_groups",
    "auth_user_user_permissions",
    "auth_group_permissions",
];
const GUARDIAN: [&str; 2] = [
    "guardian_userobjectpermission",
    "guardian_groupobjectpermission",
];
const BLACKLIST: [&str; 2] = [
    "token_blacklist_outstandingtoken",
    "token_blacklist_blacklistedtoken",
];

/// `url` with any password replaced by `***`, for messages.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// The datetime column `col` as milliseconds since the epoch, per engine.
fn millis(sqlite: bool, col: &str) -> String {
    if sqlite {
        format!(
            "(CAST(strftime('%s', {col}) AS INTEGER) * 1000 + CAST(substr(strftime('%f', {col}), 4, 3) AS INTEGER))"
        )
    } else {
        format!("CAST(FLOOR(EXTRACT(EPOCH FROM {col}) * 1000) AS BIGINT)")
    }
}

/// Runs `$sql` on whichever engine `$src` is and maps every row with `|$r| $body` (the body is
/// written once and compiled for each engine's row type).
macro_rules! read_rows {
    ($src:expr, $table:literal, $sql:expr, |$r:ident| $body:expr) => {{
        let sql = AssertSqlSafe($sql);
        let rows = match $src {
            DjangoSource::Sqlite { pool, .. } => {
                sqlx::query(sql).fetch_all(pool).await.and_then(|rows| {
                    rows.iter()
                        .map(|$r| -> Result<_, sqlx::Error> { Ok($body) })
                        .collect::<Result<Vec<_>, sqlx::Error>>()
                })
            }
            DjangoSource::Postgres { pool, .. } => {
                sqlx::query(sql).fetch_all(pool).await.and_then(|rows| {
                    rows.iter()
                        .map(|$r| -> Result<_, sqlx::Error> { Ok($body) })
                        .collect::<Result<Vec<_>, sqlx::Error>>()
                })
            }
        };
        rows.map_err(|e| SourceError::Read {
            url: $src.url().to_string(),
            table: $table,
            reason: e.to_string(),
        })?
    }};
}

impl DjangoSource {
    /// Opens `from`: `postgres://…` / `postgresql://…`, `sqlite://path`, `sqlite:path`, or a
    /// path to an SQLite file (which must exist: a typo must not read as an empty project).
    pub async fn open(from: &str, timeout: Duration) -> Result<DjangoSource, SourceError> {
        Self::connect(from, timeout, 1, false).await
    }

    /// `from` for a server's dual-run (`django.database_url`): a few connections, opened when
    /// first needed, so a Django database that is down costs only the requests that need it.
    pub async fn open_live(from: &str, timeout: Duration) -> Result<LiveDjango, SourceError> {
        Ok(LiveDjango {
            source: Self::connect(from, timeout, 4, true).await?,
            deadline: timeout,
        })
    }

    async fn connect(
        from: &str,
        timeout: Duration,
        max: u32,
        lazy: bool,
    ) -> Result<DjangoSource, SourceError> {
        let url = mask_url(from);
        let unreachable = |e: sqlx::Error| SourceError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        };
        if from.starts_with("postgres://") || from.starts_with("postgresql://") {
            let opts = sqlx::postgres::PgConnectOptions::from_str(from)
                .map_err(|e| SourceError::BadUrl(format!("{url}: {e}")))?
                .application_name("sekisho import-django");
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(timeout);
            let pool = if lazy {
                pool.connect_lazy_with(opts)
            } else {
                pool.connect_with(opts).await.map_err(unreachable)?
            };
            return Ok(DjangoSource::Postgres { pool, url });
        }
        let path = match from
            .strip_prefix("sqlite://")
            .or(from.strip_prefix("sqlite:"))
        {
            Some(p) => p,
            None if from.contains("://") => {
                return Err(SourceError::BadUrl(format!(
                    "{url}: expected a postgres:// URL, a sqlite:// URL or a path to an SQLite file"
                )));
            }
            None => from,
        };
        let path = PathBuf::from(path.split('?').next().unwrap_or(path));
        if !path.is_file() {
            return Err(SourceError::Unreachable {
                url,
                reason: "no such file".into(),
            });
        }
        let opts = SqliteConnectOptions::new().filename(&path).read_only(true);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(max)
            .acquire_timeout(timeout);
        let pool = if lazy {
            pool.connect_lazy_with(opts)
        } else {
            pool.connect_with(opts).await.map_err(unreachable)?
        };
        Ok(DjangoSource::Sqlite { pool, url })
    }

    /// The source as given, password masked.
    pub fn url(&self) -> &str {
        match self {
            DjangoSource::Sqlite { url, .. } | DjangoSource::Postgres { url, .. } => url,
        }
    }

    fn is_sqlite(&self) -> bool {
        matches!(self, DjangoSource::Sqlite { .. })
    }

    async fn has_table(&self, name: &str) -> Result<bool, SourceError> {
        let r = match self {
            DjangoSource::Sqlite { pool, .. } => {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
                )
                .bind(name)
                .fetch_one(pool)
                .await
            }
            DjangoSource::Postgres { pool, .. } => {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM information_schema.tables
                     WHERE table_name = $1 AND table_schema = ANY(current_schemas(false))",
                )
                .bind(name)
                .fetch_one(pool)
                .await
            }
        };
        r.map(|n| n > 0).map_err(|e| SourceError::Read {
            url: self.url().to_string(),
            table: "the table list",
            reason: e.to_string(),
        })
    }

    async fn has_all(&self, names: &[&str]) -> Result<Option<String>, SourceError> {
        for n in names {
            if !self.has_table(n).await? {
                return Ok(Some(n.to_string()));
            }
        }
        Ok(None)
    }

    /// Whether django-guardian's and simplejwt's blacklist tables exist (after the required
    /// tables were found).
    pub async fn check(&self) -> Result<(bool, bool), SourceError> {
        if let Some(missing) = self.has_all(&REQUIRED).await? {
            return Err(SourceError::NotDjango {
                url: self.url().to_string(),
                missing,
            });
        }
        Ok((
            self.has_all(&GUARDIAN).await?.is_none(),
            self.has_all(&BLACKLIST).await?.is_none(),
        ))
    }

    /// Reads everything the import needs.
    pub async fn read(&self, progress: Progress<'_>) -> Result<DjangoExport, SourceError> {
        let (guardian, blacklist) = self.check().await?;
        let sq = self.is_sqlite();
        let users = read_rows!(
            self,
            "auth_user",
            format!(
                "SELECT CAST(id AS BIGINT) AS id, username, password, email, first_name, last_name,
                 is_active, is_staff, is_superuser, {} AS date_joined, {} AS last_login
                 FROM auth_user ORDER BY id",
                millis(sq, "date_joined"),
                millis(sq, "last_login")
            ),
            |r| DjangoUser {
                id: r.try_get("id")?,
                username: r.try_get("username")?,
                password: r.try_get("password")?,
                email: r.try_get("email")?,
                first_name: r.try_get("first_name")?,
                last_name: r.try_get("last_name")?,
                is_active: r.try_get("is_active")?,
                is_staff: r.try_get("is_staff")?,
                is_superuser: r.try_get("is_superuser")?,
                date_joined: Timestamp(r.try_get("date_joined")?),
                last_login: r.try_get::<Option<i64>, _>("last_login")?.map(Timestamp),
            }
        );
        progress("auth_user (read)", users.len() as u64);
        let groups = read_rows!(
            self,
            "auth_group",
            "SELECT CAST(id AS BIGINT) AS id, name FROM auth_group ORDER BY id".to_string(),
            |r| DjangoGroup {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
            }
        );
        let permissions = read_rows!(
            self,
            "auth_permission",
            "SELECT CAST(p.id AS BIGINT) AS id, ct.app_label || '.' || p.codename AS codename, p.name
             FROM auth_permission p JOIN django_content_type ct ON ct.id = p.content_type_id
             ORDER BY p.id"
                .to_string(),
            |r| DjangoPermission {
                id: r.try_get("id")?,
                codename: r.try_get("codename")?,
                name: r.try_get("name")?,
            }
        );
        let pairs = |table: &str, a: &str, b: &str| {
            format!(
                "SELECT CAST({a} AS BIGINT) AS a, CAST({b} AS BIGINT) AS b FROM {table} ORDER BY id"
            )
        };
        let user_groups: Vec<(UserId, i64)> = read_rows!(
            self,
            "auth_user_groups",
            pairs("auth_user_groups", "user_id", "group_id"),
            |r| (r.try_get("a")?, r.try_get("b")?)
        );
        let user_permissions: Vec<(UserId, i64)> = read_rows!(
            self,
            "auth_user_user_permissions",
            pairs("auth_user_user_permissions", "user_id", "permission_id"),
            |r| (r.try_get("a")?, r.try_get("b")?)
        );
        let group_permissions: Vec<(i64, i64)> = read_rows!(
            self,
            "auth_group_permissions",
            pairs("auth_group_permissions", "group_id", "permission_id"),
            |r| (r.try_get("a")?, r.try_get("b")?)
        );
        let object_grants = if guardian {
            let grants = |table: &str, col: &str| {
                format!(
                    "SELECT CAST(o.{col} AS BIGINT) AS pid, CAST(o.permission_id AS BIGINT) AS perm,
                     ct.app_label || '.' || ct.model AS object_type, o.object_pk AS object_id
                     FROM {table} o JOIN django_content_type ct ON ct.id = o.content_type_id ORDER BY o.id"
                )
            };
            let mut all = read_rows!(
                self,
                "guardian_userobjectpermission",
                grants("guardian_userobjectpermission", "user_id"),
                |r| DjangoObjectGrant {
                    principal: DjangoPrincipal::User(r.try_get("pid")?),
                    permission: r.try_get("perm")?,
                    object_type: r.try_get("object_type")?,
                    object_id: r.try_get("object_id")?,
                }
            );
            all.extend(read_rows!(
                self,
                "guardian_groupobjectpermission",
                grants("guardian_groupobjectpermission", "group_id"),
                |r| DjangoObjectGrant {
                    principal: DjangoPrincipal::Group(r.try_get("pid")?),
                    permission: r.try_get("perm")?,
                    object_type: r.try_get("object_type")?,
                    object_id: r.try_get("object_id")?,
                }
            ));
            Some(all)
        } else {
            None
        };
        let tokens = if blacklist {
            let t = read_rows!(
                self,
                "token_blacklist_outstandingtoken",
                format!(
                    "SELECT t.jti, CAST(t.user_id AS BIGINT) AS user_id, {} AS created_at,
                     {} AS expires_at, {} AS blacklisted_at
                     FROM token_blacklist_outstandingtoken t
                     LEFT JOIN token_blacklist_blacklistedtoken b ON b.token_id = t.id ORDER BY t.id",
                    millis(sq, "t.created_at"),
                    millis(sq, "t.expires_at"),
                    millis(sq, "b.blacklisted_at")
                ),
                |r| {
                    let expires_at = Timestamp(r.try_get("expires_at")?);
                    DjangoToken {
                        jti: r.try_get("jti")?,
                        user_id: r.try_get("user_id")?,
                        created_at: r
                            .try_get::<Option<i64>, _>("created_at")?
                            .map_or(expires_at, Timestamp),
                        expires_at,
                        blacklisted_at: r
                            .try_get::<Option<i64>, _>("blacklisted_at")?
                            .map(Timestamp),
                    }
                }
            );
            progress("token_blacklist_outstandingtoken (read)", t.len() as u64);
            Some(t)
        } else {
            None
        };
        Ok(DjangoExport {
            users,
            groups,
            permissions,
            user_groups,
            user_permissions,
            group_permissions,
            object_grants,
            tokens,
        })
    }
}

/// A Django database read live during a dual-run: its sessions and its users' current password
/// hashes, each read under the deadline (a slow or dead database is an outage: 503).
pub struct LiveDjango {
    source: DjangoSource,
    deadline: Duration,
}

/// Runs `$sql` with one bound `$arg` on whichever engine, under the deadline, mapping the
/// optional row with `|$r| $body`.
macro_rules! live_row {
    ($live:expr, $sql:expr, $arg:expr, |$r:ident| $body:expr) => {{
        let sql = AssertSqlSafe($sql);
        match &$live.source {
            DjangoSource::Sqlite { pool, .. } => {
                crate::bounded($live.deadline, async {
                    let row = sqlx::query(sql).bind($arg).fetch_optional(pool).await?;
                    row.map(|$r| -> Result<_, sqlx::Error> { Ok($body) })
                        .transpose()
                })
                .await
            }
            DjangoSource::Postgres { pool, .. } => {
                crate::bounded($live.deadline, async {
                    let row = sqlx::query(sql).bind($arg).fetch_optional(pool).await?;
                    row.map(|$r| -> Result<_, sqlx::Error> { Ok($body) })
                        .transpose()
                })
                .await
            }
        }
    }};
}

#[async_trait::async_trait]
impl DjangoSessionSource for LiveDjango {
    async fn django_session(&self, key: &str) -> StoreResult<Option<DjangoSessionRow>> {
        let sq = self.source.is_sqlite();
        live_row!(
            self,
            format!(
                "SELECT session_data, {} AS expire_ms FROM django_session WHERE session_key = $1",
                millis(sq, "expire_date")
            ),
            key,
            |r| DjangoSessionRow {
                session_data: r.try_get("session_data")?,
                expire_date: Timestamp(r.try_get("expire_ms")?),
            }
        )
    }

    async fn django_account(&self, id: UserId) -> StoreResult<Option<DjangoAccount>> {
        live_row!(
            self,
            "SELECT password, is_active FROM auth_user WHERE id = $1".to_string(),
            id,
            |r| DjangoAccount {
                password: r.try_get("password")?,
                is_active: r.try_get("is_active")?,
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::mask_url;

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(
            mask_url("postgres://app:s3cret@db.example:5432/shop"),
            "postgres://app:***@db.example:5432/shop"
        );
        assert_eq!(
            mask_url("postgres://app:p@ss@db/shop"),
            "postgres://app:***@db/shop"
        );
        assert_eq!(mask_url("postgres://app@db/shop"), "postgres://app@db/shop");
        assert_eq!(mask_url("/srv/db.sqlite3"), "/srv/db.sqlite3");
    }
}
