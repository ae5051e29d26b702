//! Throwaway PostgreSQL databases and Redis key prefixes on the machine's real
//! services. URLs come from `SEKISHO_TEST_POSTGRES_URL` and `SEKISHO_TEST_REDIS_URL`; a missing
//! variable or an unreachable service fails the test (it is never skipped).

use sqlx::Connection;

pub fn postgres_url() -> String {
    std::env::var("SEKISHO_TEST_POSTGRES_URL")
        .expect("SEKISHO_TEST_POSTGRES_URL must name a PostgreSQL server (scripts/test.sh sets it)")
}

pub fn redis_url() -> String {
    std::env::var("SEKISHO_TEST_REDIS_URL")
        .expect("SEKISHO_TEST_REDIS_URL must name a Redis server (scripts/test.sh sets it)")
}

pub struct TestDatabase {
    pub url: String,
    name: String,
    admin: String,
}

/// Creates an empty database with a random name on the test server.
pub async fn fresh_pg_database() -> TestDatabase {
    fresh_pg_database_with("").await
}

/// The same, with `CREATE DATABASE` options (e.g. a collation other than the server's default).
pub async fn fresh_pg_database_with(options: &str) -> TestDatabase {
    let admin = postgres_url();
    let name = format!("sekisho_test_{}", &sekisho_core::random::hex128()[..16]);
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connect to the test PostgreSQL server");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE {name} {options}"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    let url = with_database(&admin, &name);
    TestDatabase { url, name, admin }
}

impl TestDatabase {
    pub async fn drop(self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

/// `postgres://user@host:port/db?params` with the database name replaced.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{db}?{q}"),
        None => format!("{root}/{db}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            super::with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            super::with_database("postgres://h/test?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
        assert_eq!(super::with_database("postgres://h", "x"), "postgres://h/x");
    }
}
