//! `sekisho import-django`: a Django database made from Django 5.2's own DDL
//! (`tests/fixtures/django_5_2_{sqlite,postgres}.sql`, dumped from `manage.py migrate`), filled
//! with rows as Django writes them, imported by the real binary, then used over HTTP: every
//! Django password format logs in (and is rewritten to Argon2id), ids, groups, permissions and
//! guardian grants arrive, simplejwt tokens keep naming the same user, blacklisted ones stay
//! refused; re-runs change nothing, a dry run writes nothing, failures are one line.
mod common;
use common::*;

use serde_json::{Value, json};
use sqlx::AssertSqlSafe;
use std::path::{Path, PathBuf};
use std::process::Output;

const SECRET_KEY: &str = "django-insecure-import-test-3f!k2p^v@q9#m$w&z*r-t_y=u+i0o";
const SQLITE_DDL: &str = include_str!("fixtures/django_5_2_sqlite.sql");
const POSTGRES_DDL: &str = include_str!("fixtures/django_5_2_postgres.sql");
const HASHES: &str = include_str!("../../sekisho-core/tests/fixtures/django_hashes.jsonl");

/// One password vector from Django's own hashers.
#[derive(Clone, Debug)]
struct Vector {
    hasher: String,
    password: String,
    wrong: String,
    encoded: String,
}

/// The first vector of each format that logs in (non-empty password), plus one unusable hash.
fn vectors() -> (Vec<Vector>, Vector) {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut unusable = None;
    for line in HASHES.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        let vector = Vector {
            hasher: v["hasher"].as_str().unwrap().to_string(),
            password: v["password"].as_str().unwrap().to_string(),
            wrong: v["wrong"].as_str().unwrap().to_string(),
            encoded: v["encoded"].as_str().unwrap().to_string(),
        };
        match v["expect"].as_str().unwrap() {
            "upgrade" if !vector.password.is_empty() && seen.insert(vector.hasher.clone()) => {
                out.push(vector)
            }
            "never" if vector.hasher == "unusable" && unusable.is_none() => unusable = Some(vector),
            _ => {}
        }
    }
    assert!(out.len() >= 15, "every format: {out:?}");
    (out, unusable.expect("an unusable hash"))
}

/// A row of `auth_user`.
#[derive(Clone, Debug)]
struct DjUser {
    id: i64,
    username: String,
    hash: String,
    active: bool,
}

fn dj_user(id: i64, username: &str, hash: &str) -> DjUser {
    DjUser {
        id,
        username: username.into(),
        hash: hash.into(),
        active: true,
    }
}

/// A row of `token_blacklist_outstandingtoken` (and of the blacklist when `blacklisted`).
struct DjToken {
    jti: String,
    user_id: i64,
    exp: i64,
    blacklisted: bool,
}

/// Which engine the Django database is on.
#[derive(Clone, Copy, PartialEq)]
enum Engine {
    Sqlite,
    Postgres,
}

/// A datetime as Django stores it: naive UTC text on SQLite, `timestamptz` on PostgreSQL.
fn dt(engine: Engine, secs: i64) -> String {
    let day = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (the proleptic Gregorian calendar).
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let text = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.250000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    match engine {
        Engine::Sqlite => format!("'{text}'"),
        Engine::Postgres => format!("'{text}+00'"),
    }
}

fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The rows of a small Django project: content types and permissions as `migrate` makes them
/// (plus a custom `shop.refund_order`), two groups, the given users (the first in `clerks`,
/// the second with `shop.refund_order`, the third with guardian's `change_order` on order 42;
/// `clerks` may view order 7), and the given outstanding tokens.
fn seed_sql(engine: Engine, users: &[DjUser], tokens: &[DjToken], guardian: bool) -> String {
    let now = unix_now();
    let mut sql = String::from(
        "INSERT INTO django_content_type (id, app_label, model) VALUES
           (1, 'auth', 'permission'), (2, 'auth', 'group'), (3, 'auth', 'user'), (4, 'shop', 'order');
         INSERT INTO auth_permission (id, name, content_type_id, codename) VALUES
           (1, 'Can view order', 4, 'view_order'), (2, 'Can change order', 4, 'change_order'),
           (3, 'Can refund order', 4, 'refund_order'), (4, 'Can add user', 3, 'add_user');
         INSERT INTO auth_group (id, name) VALUES (1, 'clerks'), (2, 'auditors');
         INSERT INTO auth_group_permissions (id, group_id, permission_id) VALUES (1, 1, 1), (2, 1, 2), (3, 2, 1);\n",
    );
    for (i, u) in users.iter().enumerate() {
        let last_login = if i % 2 == 0 {
            dt(engine, now - 3600)
        } else {
            "NULL".into()
        };
        sql.push_str(&format!(
            "INSERT INTO auth_user (id, password, last_login, is_superuser, username, first_name, last_name, email,
               is_staff, is_active, date_joined)
             VALUES ({}, {}, {last_login}, FALSE, {}, 'First', 'Last', {}, FALSE, {}, {});\n",
            u.id,
            q(&u.hash),
            q(&u.username),
            q(&format!("{}@example.com", u.username)),
            if u.active { "TRUE" } else { "FALSE" },
            dt(engine, now - 86_400 * 400),
        ));
    }
    if let Some(u) = users.first() {
        sql.push_str(&format!(
            "INSERT INTO auth_user_groups (id, user_id, group_id) VALUES (1, {}, 1);\n",
            u.id
        ));
    }
    if let Some(u) = users.get(1) {
        sql.push_str(&format!(
            "INSERT INTO auth_user_user_permissions (id, user_id, permission_id) VALUES (1, {}, 3);\n",
            u.id
        ));
    }
    if guardian {
        if let Some(u) = users.get(2) {
            sql.push_str(&format!(
                "INSERT INTO guardian_userobjectpermission (id, object_pk, content_type_id, permission_id, user_id)
                 VALUES (1, '42', 4, 2, {});\n",
                u.id
            ));
        }
        sql.push_str(
            "INSERT INTO guardian_groupobjectpermission (id, object_pk, content_type_id, group_id, permission_id)
             VALUES (1, '7', 4, 1, 1);\n",
        );
    }
    for (i, t) in tokens.iter().enumerate() {
        let id = i + 1;
        sql.push_str(&format!(
            "INSERT INTO token_blacklist_outstandingtoken (id, token, created_at, expires_at, user_id, jti)
             VALUES ({id}, 'eyJ...', {}, {}, {}, {});\n",
            dt(engine, t.exp - 86_400),
            dt(engine, t.exp),
            t.user_id,
            q(&t.jti)
        ));
        if t.blacklisted {
            sql.push_str(&format!(
                "INSERT INTO token_blacklist_blacklistedtoken (id, blacklisted_at, token_id) VALUES ({id}, {}, {id});\n",
                dt(engine, now - 60)
            ));
        }
    }
    sql
}

/// A Django SQLite database at `dir/db.sqlite3` with Django's DDL (without django-guardian's
/// tables unless `guardian`) and the seed rows.
async fn sqlite_project(
    dir: &Path,
    users: &[DjUser],
    tokens: &[DjToken],
    guardian: bool,
) -> PathBuf {
    let path = dir.join("db.sqlite3");
    let ddl: String = SQLITE_DDL
        .lines()
        .filter(|l| !l.starts_with("--") && (guardian || !l.contains("guardian_")))
        .collect::<Vec<_>>()
        .join("\n");
    let pool = sqlite_pool(&path, true).await;
    sqlx::raw_sql(AssertSqlSafe(ddl))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::raw_sql(AssertSqlSafe(seed_sql(
        Engine::Sqlite,
        users,
        tokens,
        guardian,
    )))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    path
}

async fn sqlite_pool(path: &Path, create: bool) -> sqlx::SqlitePool {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(create);
    sqlx::SqlitePool::connect_with(opts).await.unwrap()
}

/// Runs one statement against a Django database (to change it between imports).
async fn on_django(url_or_path: &str, sql: &str) {
    if url_or_path.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url_or_path).await.unwrap();
        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    } else {
        let pool = sqlite_pool(Path::new(url_or_path), false).await;
        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
}

/// The password hash sekisho stores for `username` (whichever backend the suite runs on).
async fn stored_hash(s: &Server, username: &str) -> Option<String> {
    let url = s.database_url();
    let sql = "SELECT password FROM users WHERE username = $1";
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let h = sqlx::query_scalar(sql)
            .bind(username)
            .fetch_optional(&pool)
            .await
            .unwrap();
        pool.close().await;
        h
    } else {
        let path = url.trim_start_matches("sqlite://");
        let pool = sqlite_pool(Path::new(path), false).await;
        let h = sqlx::query_scalar(sql)
            .bind(username)
            .fetch_optional(&pool)
            .await
            .unwrap();
        pool.close().await;
        h
    }
}

/// How many users sekisho stores.
async fn stored_users(s: &Server) -> i64 {
    let url = s.database_url();
    let sql = "SELECT COUNT(*) FROM users";
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let n = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    } else {
        let pool = sqlite_pool(Path::new(url.trim_start_matches("sqlite://")), false).await;
        let n = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    }
}

/// The summary's (created, updated, unchanged, skipped) for one Django table.
#[track_caller]
fn counts(stdout: &str, table: &str) -> [u64; 4] {
    let cells: Vec<u64> = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(table))
        .unwrap_or_else(|| panic!("no row for {table}: {stdout}"))
        .split_whitespace()
        .skip(1)
        .map(|c| c.parse().unwrap())
        .collect();
    cells.try_into().unwrap()
}

fn import(s: &Server, from: &str, extra: &[&str]) -> Output {
    let mut args = vec!["import-django", "--from", from];
    args.extend_from_slice(extra);
    s.cli(&args, "")
}

/// A token as simplejwt mints it with `SECRET_KEY` (no sekisho family claim).
fn django_token(kind: &str, user_id: i64, jti: &str, exp: i64) -> String {
    let payload = json!({
        "token_type": kind,
        "exp": exp,
        "iat": unix_now().min(exp - 1),
        "jti": jti,
        "user_id": user_id.to_string(),
    });
    hs256_raw(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &payload.to_string(),
        SECRET_KEY.as_bytes(),
    )
}

fn server() -> Server {
    Server::start(&[("SEKISHO_JWT__SIGNING_KEY", SECRET_KEY)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_hash_format_logs_in_with_its_django_id_groups_and_grants() {
    let (vectors, unusable) = vectors();
    let mut users: Vec<DjUser> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| dj_user(100 + 3 * i as i64, &format!("u_{}", v.hasher), &v.encoded))
        .collect();
    users.push(dj_user(1, "AnonymousUser", &unusable.encoded));
    let mut sleeper = dj_user(50, "sleeper", &vectors[0].encoded);
    sleeper.active = false;
    users.push(sleeper);
    let src = tempfile::tempdir().unwrap();
    let db = sqlite_project(src.path(), &users, &[], true).await;
    let s = server();

    let out = assert_success(&import(&s, db.to_str().unwrap(), &[]));
    assert_eq!(
        counts(&out, "auth_user"),
        [users.len() as u64, 0, 0, 0],
        "{out}"
    );
    assert_eq!(counts(&out, "auth_group"), [2, 0, 0, 0]);
    assert_eq!(counts(&out, "auth_permission"), [4, 0, 0, 0]);
    assert_eq!(counts(&out, "auth_user_groups"), [1, 0, 0, 0]);
    assert_eq!(counts(&out, "auth_user_user_permissions"), [1, 0, 0, 0]);
    assert_eq!(counts(&out, "auth_group_permissions"), [3, 0, 0, 0]);
    assert_eq!(counts(&out, "guardian_*objectpermission"), [2, 0, 0, 0]);
    assert_eq!(
        counts(&out, "token_blacklist_blacklistedtoken"),
        [0, 0, 0, 0]
    );

    // During the dual-run every format logs in and its hash stays Django's.
    assert!(out.contains("dual-run in progress since"), "{out}");
    for (v, u) in vectors.iter().zip(&users) {
        let r = s
            .post_json(
                "/api/token/",
                json!({"username": u.username, "password": v.password}),
            )
            .await;
        assert_eq!(r.status, 200, "{} must log in: {}", v.hasher, r.body);
        let held = stored_hash(&s, &u.username).await.unwrap();
        assert_eq!(held, v.encoded, "{}: no rehash before --finish", v.hasher);
    }
    let finished = assert_success(&s.cli(&["import-django", "--finish"], ""));
    assert!(finished.starts_with("finished the dual-run"), "{finished}");

    for (v, u) in vectors.iter().zip(&users) {
        let stored = stored_hash(&s, &u.username).await.unwrap();
        assert_eq!(stored, v.encoded, "imported as stored");
        let wrong = s
            .post_json(
                "/api/token/",
                json!({"username": u.username, "password": v.wrong}),
            )
            .await;
        assert_eq!(wrong.status, 401, "{}: {}", v.hasher, wrong.body);
        let r = s
            .post_json(
                "/api/token/",
                json!({"username": u.username, "password": v.password}),
            )
            .await;
        assert_eq!(r.status, 200, "{} must log in: {}", v.hasher, r.body);
        assert_eq!(claims(&r.str("access"))["user_id"], u.id.to_string());
        let upgraded = stored_hash(&s, &u.username).await.unwrap();
        assert!(
            upgraded.starts_with("argon2$argon2id$"),
            "{}: rehashed on login, got {upgraded}",
            v.hasher
        );
        // The new hash verifies the same password.
        let again = s
            .post_json(
                "/api/token/",
                json!({"username": u.username, "password": v.password}),
            )
            .await;
        assert_eq!(again.status, 200, "{}", v.hasher);
    }
    for (name, password) in [
        ("AnonymousUser", "any password at all"),
        ("sleeper", vectors[0].password.as_str()),
    ] {
        let r = s
            .post_json(
                "/api/token/",
                json!({"username": name, "password": password}),
            )
            .await;
        assert_eq!(r.status, 401, "{name}: {}", r.body);
    }

    // Groups and permissions, through the token of the first user (in `clerks`).
    let (access, _) = s.token_pair(&users[0].username, &vectors[0].password).await;
    let me = s.get_bearer("/api/auth/me/", &access).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["id"], users[0].id);
    assert_eq!(
        me.body["email"],
        format!("{}@example.com", users[0].username)
    );
    assert_eq!(me.body["groups"], json!(["clerks"]));
    assert_eq!(
        me.body["permissions"],
        json!(["shop.change_order", "shop.view_order"])
    );
    let (access, _) = s.token_pair(&users[1].username, &vectors[1].password).await;
    let me = s.get_bearer("/api/auth/me/", &access).await;
    assert_eq!(me.body["permissions"], json!(["shop.refund_order"]));

    // guardian's grant: the third user may change order 42, and only that one.
    let (access, _) = s.token_pair(&users[2].username, &vectors[2].password).await;
    for (object, allowed) in [("42", true), ("43", false)] {
        let r = s
            .send(
                reqwest::Method::POST,
                "/api/authz/check/",
                &[
                    ("authorization", &format!("Bearer {access}")),
                    ("content-type", "application/json"),
                ],
                Some(
                    json!({"permission": "shop.change_order", "object_type": "shop.order", "object_id": object})
                        .to_string()
                        .as_bytes(),
                ),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["allowed"], allowed, "order {object}");
    }
    let groups = assert_success(&s.cli(&["group", "list"], ""));
    assert!(
        groups
            .lines()
            .any(|l| l.contains("clerks") && l.contains("shop.change_order,shop.view_order")),
        "{groups}"
    );

    // Re-running after those logins keeps the upgraded hashes: Django did not change them.
    let again = assert_success(&import(&s, db.to_str().unwrap(), &[]));
    assert_eq!(
        counts(&again, "auth_user"),
        [0, 0, users.len() as u64, 0],
        "{again}"
    );
    let kept = stored_hash(&s, &users[0].username).await.unwrap();
    assert!(kept.starts_with("argon2$argon2id$"), "{kept}");

    // A user made in sekisho afterwards gets an id no Django user had.
    s.create_user("newcomer", PASSWORD);
    let list = assert_success(&s.cli(&["user", "list"], ""));
    let id: i64 = list
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("newcomer"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let max = users.iter().map(|u| u.id).max().unwrap();
    assert!(
        id > max,
        "new id {id} must follow the imported ones (max {max})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dry_run_writes_nothing_and_re_runs_change_only_what_differs() {
    let (vectors, _) = vectors();
    let users = vec![
        dj_user(10, "ann", &vectors[0].encoded),
        dj_user(11, "ben", &vectors[1].encoded),
        dj_user(12, "cat", &vectors[2].encoded),
    ];
    let exp = unix_now() + 86_400;
    let tokens = [DjToken {
        jti: "a".repeat(32),
        user_id: 10,
        exp,
        blacklisted: true,
    }];
    let src = tempfile::tempdir().unwrap();
    let db = sqlite_project(src.path(), &users, &tokens, true).await;
    let from = format!("sqlite://{}", db.display());
    let s = server();
    let revoked = django_token("refresh", 10, &"a".repeat(32), exp);

    let dry = assert_success(&import(&s, &from, &["--dry-run"]));
    assert!(dry.contains("nothing was written"), "{dry}");
    assert_eq!(counts(&dry, "auth_user"), [3, 0, 0, 0]);
    assert_eq!(counts(&dry, "auth_group_permissions"), [3, 0, 0, 0]);
    assert_eq!(
        counts(&dry, "token_blacklist_blacklistedtoken"),
        [1, 0, 0, 0]
    );
    assert_eq!(stored_users(&s).await, 0, "a dry run writes no user");
    let r = s
        .post_json(
            "/api/token/",
            json!({"username": "ann", "password": vectors[0].password}),
        )
        .await;
    assert_eq!(r.status, 401);
    let v = s
        .post_json("/api/token/verify/", json!({"token": revoked}))
        .await;
    assert_eq!(v.status, 200, "nothing revoked yet: {}", v.body);

    let first = assert_success(&import(&s, &from, &[]));
    assert_eq!(counts(&first, "auth_user"), [3, 0, 0, 0]);
    assert_eq!(
        counts(&first, "token_blacklist_blacklistedtoken"),
        [1, 0, 0, 0]
    );
    let v = s
        .post_json("/api/token/verify/", json!({"token": revoked}))
        .await;
    assert_eq!(v.status, 401, "{}", v.body);

    let again = assert_success(&import(&s, &from, &[]));
    for (table, n) in [
        ("auth_user", 3),
        ("auth_group", 2),
        ("auth_permission", 4),
        ("auth_user_groups", 1),
        ("auth_user_user_permissions", 1),
        ("auth_group_permissions", 3),
        ("guardian_*objectpermission", 2),
        ("token_blacklist_blacklistedtoken", 1),
    ] {
        assert_eq!(counts(&again, table), [0, 0, n, 0], "{table}: {again}");
    }
    assert_eq!(stored_users(&s).await, 3);

    // Django moves on before the cut-over: one e-mail changes, one user and a group join.
    on_django(
        db.to_str().unwrap(),
        &format!(
            "UPDATE auth_user SET email = 'ben@new.example' WHERE id = 11;
             INSERT INTO auth_user (id, password, last_login, is_superuser, username, first_name, last_name,
               email, is_staff, is_active, date_joined)
             VALUES (13, {}, NULL, TRUE, 'dan', '', '', '', TRUE, TRUE, '2025-01-01 00:00:00');
             INSERT INTO auth_group (id, name) VALUES (3, 'managers');",
            q(&vectors[3].encoded)
        ),
    )
    .await;
    let third = assert_success(&import(&s, &from, &[]));
    assert_eq!(counts(&third, "auth_user"), [1, 1, 2, 0], "{third}");
    assert_eq!(counts(&third, "auth_group"), [1, 0, 2, 0]);
    let (access, _) = s.token_pair("ben", &vectors[1].password).await;
    let me = s.get_bearer("/api/auth/me/", &access).await;
    assert_eq!(me.body["email"], "ben@new.example");
    let (access, _) = s.token_pair("dan", &vectors[3].password).await;
    let me = s.get_bearer("/api/auth/me/", &access).await;
    assert_eq!(
        (me.body["id"].clone(), me.body["is_superuser"].clone()),
        (json!(13), json!(true))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simplejwt_tokens_keep_their_user_and_the_blacklist_holds() {
    let (vectors, _) = vectors();
    let users = vec![dj_user(42, "tokens", &vectors[0].encoded)];
    let exp = unix_now() + 86_400;
    let (revoked_jti, live_jti, old_jti) = ("b".repeat(32), "c".repeat(32), "d".repeat(32));
    let tokens = [
        DjToken {
            jti: revoked_jti.clone(),
            user_id: 42,
            exp,
            blacklisted: true,
        },
        DjToken {
            jti: live_jti.clone(),
            user_id: 42,
            exp,
            blacklisted: false,
        },
        // Expired already: refused by its signature check, nothing to record.
        DjToken {
            jti: old_jti,
            user_id: 42,
            exp: unix_now() - 60,
            blacklisted: true,
        },
    ];
    let src = tempfile::tempdir().unwrap();
    let db = sqlite_project(src.path(), &users, &tokens, true).await;
    let s = server();
    let out = assert_success(&import(&s, db.to_str().unwrap(), &[]));
    assert_eq!(
        counts(&out, "token_blacklist_blacklistedtoken"),
        [1, 0, 0, 1],
        "{out}"
    );

    // Django's access token names user 42: the same person here.
    let access = django_token("access", 42, &"e".repeat(32), unix_now() + 300);
    let me = s.get_bearer("/api/auth/me/", &access).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(
        (me.body["id"].clone(), me.body["username"].clone()),
        (json!(42), json!("tokens"))
    );

    // The blacklisted refresh stays refused, wherever it is presented.
    let revoked = django_token("refresh", 42, &revoked_jti, exp);
    for path in ["/api/token/refresh/", "/api/token/blacklist/"] {
        let r = s.post_json(path, json!({"refresh": revoked})).await;
        assert_401(&r, &token_error("Token is blacklisted"));
    }
    let r = s
        .post_json("/api/token/verify/", json!({"token": revoked}))
        .await;
    assert_eq!(r.status, 401, "{}", r.body);

    // The live one refreshes, for the same user.
    let live = django_token("refresh", 42, &live_jti, exp);
    let r = s
        .post_json("/api/token/refresh/", json!({"refresh": live}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(claims(&r.str("access"))["user_id"], "42");

    let again = assert_success(&import(&s, db.to_str().unwrap(), &[]));
    assert_eq!(
        counts(&again, "token_blacklist_blacklistedtoken"),
        [0, 0, 1, 1]
    );

    // Tokens Django mints after the import work too: nothing about them was imported.
    let later_jti = "9".repeat(32);
    let later = django_token("refresh", 42, &later_jti, exp);
    let r = s
        .post_json("/api/token/refresh/", json!({"refresh": later}))
        .await;
    assert_eq!(
        r.status, 200,
        "a refresh minted after the import: {}",
        r.body
    );
    let successor = r.str("refresh");
    let later_access = django_token("access", 42, &"8".repeat(32), unix_now() + 300);
    assert_eq!(
        s.get_bearer("/api/auth/me/", &later_access).await.status,
        200
    );

    // Django blacklists it (and the live one) after the import: the next run revokes their
    // families here, including what sekisho rotated them into.
    let db_path = db.to_str().unwrap();
    for (id, jti) in [(4, &later_jti), (2, &live_jti)] {
        if id == 4 {
            on_django(
                db_path,
                &format!(
                    "INSERT INTO token_blacklist_outstandingtoken (id, token, created_at, expires_at, user_id, jti)
                     VALUES (4, 'eyJ...', {}, {}, 42, {})",
                    dt(Engine::Sqlite, unix_now()),
                    dt(Engine::Sqlite, exp),
                    q(jti)
                ),
            )
            .await;
        }
        on_django(
            db_path,
            &format!(
                "INSERT INTO token_blacklist_blacklistedtoken (id, blacklisted_at, token_id) VALUES ({id}, {}, {id})",
                dt(Engine::Sqlite, unix_now())
            ),
        )
        .await;
    }
    let third = assert_success(&import(&s, db_path, &[]));
    assert_eq!(
        counts(&third, "token_blacklist_blacklistedtoken"),
        [0, 2, 1, 1],
        "both adopted families revoked: {third}"
    );
    for token in [&later, &successor, &live] {
        let r = s
            .post_json("/api/token/refresh/", json!({"refresh": token}))
            .await;
        assert_401(&r, &token_error("Token is blacklisted"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflicts_and_lookalikes_are_reported_and_never_abort() {
    let (vectors, _) = vectors();
    let s = server();
    s.create_user("alice", PASSWORD); // id 1 in sekisho
    let users = vec![
        dj_user(5, "alice", &vectors[0].encoded),
        dj_user(1, "zed", &vectors[0].encoded),
        dj_user(6, "paypal", &vectors[1].encoded),
        dj_user(7, "paypaI", &vectors[2].encoded),
    ];
    let src = tempfile::tempdir().unwrap();
    let db = sqlite_project(src.path(), &users, &[], false).await;
    let out = assert_success(&import(&s, db.to_str().unwrap(), &[]));
    assert_eq!(counts(&out, "auth_user"), [2, 0, 0, 2], "{out}");
    assert!(
        out.contains(r#"skipped user: username "alice" is sekisho user id 1, not 5"#),
        "{out}"
    );
    assert!(
        out.contains(r#"skipped user: id 1 is sekisho user "alice", not "zed""#),
        "{out}"
    );
    assert!(
        out.contains(r#"lookalike usernames (both imported, as in Django): "paypal" and "paypaI""#),
        "{out}"
    );
    // The skipped Django user's links are skipped with it.
    assert_eq!(counts(&out, "auth_user_groups"), [0, 0, 0, 1]);
    assert!(out.contains("guardian_*objectpermission: absent"), "{out}");
    // sekisho's alice keeps her own password; both lookalikes log in.
    s.token_pair("alice", PASSWORD).await;
    s.token_pair("paypal", &vectors[1].password).await;
    s.token_pair("paypaI", &vectors[2].password).await;
}

#[test]
fn bad_sources_fail_in_one_line_without_a_secret_or_a_write() {
    let off = Server::offline(&[]);
    let dir = tempfile::tempdir().unwrap();
    let line = assert_one_line_failure(&import(&off, "/nonexistent/db.sqlite3", &[]));
    assert!(line.contains("no such file"), "{line}");
    let line = assert_one_line_failure(&import(&off, "mysql://app:hunter2@db/shop", &[]));
    assert!(!line.contains("hunter2") && line.contains("***"), "{line}");
    let line = assert_one_line_failure(&import(
        &off,
        "postgres://app:hunter2@127.0.0.1:9/shop",
        &[],
    ));
    assert!(
        !line.contains("hunter2") && line.contains("cannot reach") && line.contains("***"),
        "{line}"
    );
    // An SQLite file that is not a Django project.
    let empty = dir.path().join("empty.sqlite3");
    std::fs::write(&empty, b"").unwrap();
    let line = assert_one_line_failure(&import(&off, empty.to_str().unwrap(), &[]));
    assert!(
        line.contains("not a migrated Django database: no auth_user table"),
        "{line}"
    );
    assert!(
        !path_exists(&off.data_dir().join("sekisho.db")),
        "a failed import opens no sekisho database"
    );
}

/// A scratch PostgreSQL database for the Django tables, dropped at the end.
struct ScratchDb {
    admin: String,
    name: String,
    url: String,
}

impl ScratchDb {
    async fn create() -> ScratchDb {
        let admin = std::env::var("SEKISHO_TEST_POSTGRES_URL")
            .expect("SEKISHO_TEST_POSTGRES_URL is required (a PostgreSQL the tests may use)");
        let name = format!("django_src_{}_{}", std::process::id(), unix_now());
        let pool = sqlx::PgPool::connect(&admin).await.unwrap();
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let root = admin.rsplit_once('/').unwrap().0;
        let url = format!("{root}/{name}");
        ScratchDb { admin, name, url }
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args([
                self.admin.as_str(),
                "-tAc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgresql_django_database_imports_the_same() {
    let (vectors, _) = vectors();
    let users: Vec<DjUser> = vectors
        .iter()
        .take(4)
        .enumerate()
        .map(|(i, v)| dj_user(200 + i as i64, &format!("pg_{}", v.hasher), &v.encoded))
        .collect();
    let exp = unix_now() + 86_400;
    let tokens = [DjToken {
        jti: "f".repeat(32),
        user_id: 200,
        exp,
        blacklisted: true,
    }];
    let db = ScratchDb::create().await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(POSTGRES_DDL.to_string()))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::raw_sql(AssertSqlSafe(seed_sql(
        Engine::Postgres,
        &users,
        &tokens,
        true,
    )))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let s = server();
    let out = assert_success(&import(&s, &db.url, &[]));
    assert_eq!(counts(&out, "auth_user"), [4, 0, 0, 0], "{out}");
    assert_eq!(counts(&out, "auth_permission"), [4, 0, 0, 0]);
    assert_eq!(counts(&out, "guardian_*objectpermission"), [2, 0, 0, 0]);
    assert_eq!(
        counts(&out, "token_blacklist_blacklistedtoken"),
        [1, 0, 0, 0]
    );
    for (v, u) in vectors.iter().zip(&users) {
        let (access, _) = s.token_pair(&u.username, &v.password).await;
        assert_eq!(claims(&access)["user_id"], u.id.to_string());
    }
    let (access, _) = s.token_pair(&users[0].username, &vectors[0].password).await;
    let me = s.get_bearer("/api/auth/me/", &access).await;
    assert_eq!(me.body["groups"], json!(["clerks"]));
    let revoked = django_token("refresh", 200, &"f".repeat(32), exp);
    let r = s
        .post_json("/api/token/refresh/", json!({"refresh": revoked}))
        .await;
    assert_401(&r, &token_error("Token is blacklisted"));

    // Re-running against PostgreSQL changes nothing.
    let again = assert_success(&import(&s, &db.url, &[]));
    assert_eq!(counts(&again, "auth_user"), [0, 0, 4, 0], "{again}");
    on_django(
        &db.url,
        "UPDATE auth_user SET first_name = 'Renamed' WHERE id = 201",
    )
    .await;
    let third = assert_success(&import(&s, &db.url, &[]));
    assert_eq!(counts(&third, "auth_user"), [0, 1, 3, 0], "{third}");
}

// ---------------------------------------------------------------------------------------------
// The dual-run: Django sessions exchanged once, rehash held until --finish.
// ---------------------------------------------------------------------------------------------

const DJANGO_SESSION_DDL_SQLITE: &str = r#"CREATE TABLE "django_session" ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expire_date" datetime NOT NULL);"#;
const DJANGO_SESSION_DDL_POSTGRES: &str = r#"CREATE TABLE "django_session" ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expire_date" timestamp with time zone NOT NULL);"#;

/// Session data as Django's database backend signs it for a login of `user` (hash over
/// `password_hash`), with `secret`.
fn django_login_data(user: i64, password_hash: &str, secret: &str) -> String {
    use sekisho_core::import::signing::{DjangoSecrets, session_auth_hash, sign_session};
    let data = json!({
        "_auth_user_id": user.to_string(),
        "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
        "_auth_user_hash": session_auth_hash(password_hash, secret),
    });
    sign_session(&data, &DjangoSecrets::new(secret, &[]), unix_now() as u64)
}

/// A `django_session` row.
fn session_row(engine: Engine, key: &str, data: &str, expires: i64) -> String {
    format!(
        "INSERT INTO django_session (session_key, session_data, expire_date) VALUES ({}, {}, {});\n",
        q(key),
        q(data),
        dt(engine, expires)
    )
}

/// A random Django-shaped session key (32 of [a-z0-9]).
fn django_key(tag: &str) -> String {
    let mut k = format!("{tag}{}", "0".repeat(32));
    k.truncate(32);
    k
}

fn dual_run_server(django_db: &str) -> Server {
    Server::start(&[
        ("SEKISHO_JWT__SIGNING_KEY", SECRET_KEY),
        ("SEKISHO_DJANGO__DATABASE_URL", django_db),
        ("SEKISHO_DJANGO__SECRET_KEY", SECRET_KEY),
    ])
}

/// GET /api/auth/me/ with `sessionid` set to `cookie`: the reply and the browser after it.
async fn me_with_session(s: &Server, cookie: &str) -> (Reply, Browser) {
    let mut b = Browser::with_cookies(s, &[("sessionid", cookie)]);
    let r = b.get("/api/auth/me/").await;
    (r, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_django_session_is_exchanged_once_and_hashes_wait_for_finish() {
    let (vectors, _) = vectors();
    let (alice_v, bob_v, carol_v, dave_v) = (&vectors[0], &vectors[1], &vectors[2], &vectors[3]);
    let mut carol = dj_user(12, "carol", &carol_v.encoded);
    carol.active = false;
    let users = vec![
        dj_user(10, "alice", &alice_v.encoded),
        dj_user(11, "bob", &bob_v.encoded),
        carol,
        dj_user(13, "dave", &dave_v.encoded),
    ];
    let src = tempfile::tempdir().unwrap();
    let db = sqlite_project(src.path(), &users, &[], true).await;
    let db_path = db.to_str().unwrap().to_string();
    let later = unix_now() + 3600;
    let alice_data = django_login_data(10, &alice_v.encoded, SECRET_KEY);
    let mut tampered = alice_data.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let anonymous = sekisho_core::import::signing::sign_session(
        &json!({"cart": [1, 2]}),
        &sekisho_core::import::signing::DjangoSecrets::new(SECRET_KEY, &[]),
        unix_now() as u64,
    );
    let rows = [
        ("alice", alice_data.clone(), later),
        (
            "bob",
            django_login_data(11, &bob_v.encoded, SECRET_KEY),
            later,
        ),
        ("tampered", tampered, later),
        (
            "wrongsecret",
            django_login_data(10, &alice_v.encoded, "another-secret"),
            later,
        ),
        (
            "expired",
            django_login_data(10, &alice_v.encoded, SECRET_KEY),
            unix_now() - 60,
        ),
        (
            "carol",
            django_login_data(12, &carol_v.encoded, SECRET_KEY),
            later,
        ),
        (
            "dave",
            django_login_data(13, &dave_v.encoded, SECRET_KEY),
            later,
        ),
        (
            "stranger",
            django_login_data(99, &alice_v.encoded, SECRET_KEY),
            later,
        ),
        ("anonymous", anonymous, later),
        (
            "nothash",
            django_login_data(10, "pbkdf2_sha256$1$x$y", SECRET_KEY),
            later,
        ),
    ];
    let mut sql = DJANGO_SESSION_DDL_SQLITE.to_string();
    for (tag, data, exp) in &rows {
        sql.push_str(&session_row(Engine::Sqlite, &django_key(tag), data, *exp));
    }
    on_django(&db_path, &sql).await;
    let s = dual_run_server(&db_path);

    // Before any import there is no dual-run: nothing is exchanged.
    let (r, _) = me_with_session(&s, &django_key("alice")).await;
    assert_eq!(r.status, 401, "{}", r.body);

    let out = assert_success(&import(&s, &db_path, &[]));
    assert!(out.contains("dual-run in progress since"), "{out}");

    // The same cookie, no login: a sekisho session of the same user, fresh cookies.
    let (r, mut b) = me_with_session(&s, &django_key("alice")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.body["id"].clone(), r.body["username"].clone()),
        (json!(10), json!("alice"))
    );
    let new_id = r.cookie("sessionid").expect("a sekisho session cookie");
    assert!(is_lower_hex(&new_id, 64), "{new_id}");
    assert_ne!(new_id, django_key("alice"));
    let spec = r.set_cookie_spec("sessionid");
    assert!(
        spec.has("HttpOnly") && spec.attr("SameSite") == Some("Lax"),
        "{spec:?}"
    );
    assert!(r.cookie("csrftoken").is_some(), "{:?}", r.set_cookies());
    assert_eq!(b.session(), Some(new_id.clone()));
    // ... which is an ordinary sekisho session now, CSRF token included.
    let again = b.get("/api/auth/me/").await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(again.cookie("sessionid").is_none(), "no second exchange");
    let patched = b
        .patch("/api/auth/me/", &json!({"first_name": "Alice"}))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let sessions = b.get("/api/auth/sessions/").await;
    assert_eq!(sessions.status, 200, "{}", sessions.body);

    // The Django key is spent: replaying it is no session, on any route.
    for path in ["/api/auth/me/", "/api/auth/sessions/"] {
        let mut replay = Browser::with_cookies(&s, &[("sessionid", &django_key("alice"))]);
        let r = replay.get(path).await;
        assert_eq!(r.status, 401, "replay at {path}: {}", r.body);
        assert!(r.cookie("sessionid").is_none());
    }

    // Everything Django itself would refuse is refused here.
    for tag in [
        "tampered",
        "wrongsecret",
        "expired",
        "carol",
        "stranger",
        "anonymous",
        "nothash",
        "unknown",
    ] {
        let (r, _) = me_with_session(&s, &django_key(tag)).await;
        assert_eq!(r.status, 401, "{tag}: {}", r.body);
        assert!(r.cookie("sessionid").is_none(), "{tag}");
    }
    // A password changed here since the import ends dave's Django session.
    assert_success(&s.cli(
        &["user", "set-password", "dave", "--password-stdin"],
        "new-pass-1\n",
    ));
    let (r, _) = me_with_session(&s, &django_key("dave")).await;
    assert_eq!(r.status, 401, "dave after a password change: {}", r.body);

    // Cookies no Django key could be: no session, never a 500.
    for bad in [
        "a".repeat(40),
        "z".repeat(4000),
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345".into(),
        "' OR '1'='1".into(),
        "\u{e9}t\u{e9}".into(),
    ] {
        let r = s
            .send(
                reqwest::Method::GET,
                "/api/auth/me/",
                &[("cookie", &format!("sessionid={bad}"))],
                None,
            )
            .await;
        assert_eq!(r.status, 401, "{bad:?}: {}", r.body);
    }
    let (status, _, _) = s
        .raw_http(b"GET /api/auth/me/ HTTP/1.1\r\nHost: x\r\nCookie: sessionid=abc\x00defghijklmnopqrstuvwxyz01\r\nConnection: close\r\n\r\n")
        .await;
    assert!(status == 400 || status == 401, "NUL byte: {status}");

    // No rehash during the dual-run.
    let r = s
        .post_json(
            "/api/token/",
            json!({"username": "bob", "password": bob_v.password}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(stored_hash(&s, "bob").await.unwrap(), bob_v.encoded);

    // --finish --dry-run says what would change, and changes nothing.
    let dry = assert_success(&s.cli(&["import-django", "--finish", "--dry-run"], ""));
    assert!(
        dry.starts_with("dry run: --finish would end the dual-run"),
        "{dry}"
    );
    assert!(dry.contains("1 exchanged keys"), "{dry}");
    assert_eq!(dry.lines().count(), 1, "{dry}");
    let r = s
        .post_json(
            "/api/token/",
            json!({"username": "bob", "password": bob_v.password}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(stored_hash(&s, "bob").await.unwrap(), bob_v.encoded);

    let done = assert_success(&s.cli(&["import-django", "--finish"], ""));
    assert!(done.starts_with("finished the dual-run"), "{done}");
    assert_eq!(done.lines().count(), 1, "{done}");
    // Rehash resumes; the exchange stops (bob's Django session is no longer taken).
    let r = s
        .post_json(
            "/api/token/",
            json!({"username": "bob", "password": bob_v.password}),
        )
        .await;
    assert_eq!(r.status, 200);
    let upgraded = stored_hash(&s, "bob").await.unwrap();
    assert!(upgraded.starts_with("argon2$argon2id$"), "{upgraded}");
    let (r, _) = me_with_session(&s, &django_key("bob")).await;
    assert_eq!(r.status, 401, "no exchange after --finish: {}", r.body);
    // The session made from alice's Django one lives on.
    assert_eq!(b.get("/api/auth/me/").await.status, 200);
    let twice = assert_success(&s.cli(&["import-django", "--finish"], ""));
    assert!(
        twice.starts_with("the dual-run already finished"),
        "{twice}"
    );
    // A later import does not restart it.
    let rerun = assert_success(&import(&s, &db_path, &[]));
    assert!(rerun.contains("dual-run: finished"), "{rerun}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn finish_without_an_import_fails_in_one_line() {
    let s = server();
    let out = assert_one_line_failure(&s.cli(&["import-django", "--finish"], ""));
    assert!(out.contains("no dual-run to finish"), "{out}");
    let both = s.cli(&["import-django", "--finish", "--from", "x"], "");
    assert!(!both.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_django_database_down_fails_closed_only_for_django_cookies() {
    let (vectors, _) = vectors();
    let users = vec![dj_user(10, "alice", &vectors[0].encoded)];
    let src = tempfile::tempdir().unwrap();
    let db = sqlite_project(src.path(), &users, &[], true).await;
    let db_path = db.to_str().unwrap().to_string();
    let mut sql = DJANGO_SESSION_DDL_SQLITE.to_string();
    let data = django_login_data(10, &vectors[0].encoded, SECRET_KEY);
    sql.push_str(&session_row(
        Engine::Sqlite,
        &django_key("alice"),
        &data,
        unix_now() + 3600,
    ));
    on_django(&db_path, &sql).await;
    let s = dual_run_server(&db_path);
    assert_success(&import(&s, &db_path, &[]));
    let own = Browser::logged_in(&s, "alice", &vectors[0].password).await;

    std::fs::remove_file(&db).unwrap();
    let (r, _) = me_with_session(&s, &django_key("alice")).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    // Nothing else needs Django's database.
    let mut own = own;
    assert_eq!(own.get("/api/auth/me/").await.status, 200);
    assert_eq!(Browser::new(&s).get("/api/auth/me/").await.status, 401);
    let (r, _) = me_with_session(&s, &"a".repeat(64)).await;
    assert_eq!(r.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgresql_django_session_is_exchanged_too() {
    let (vectors, _) = vectors();
    let users = vec![dj_user(300, "pgsession", &vectors[0].encoded)];
    let db = ScratchDb::create().await;
    let mut sql = POSTGRES_DDL.to_string();
    sql.push_str(&seed_sql(Engine::Postgres, &users, &[], true));
    sql.push_str(DJANGO_SESSION_DDL_POSTGRES);
    let data = django_login_data(300, &vectors[0].encoded, SECRET_KEY);
    sql.push_str(&session_row(
        Engine::Postgres,
        &django_key("pg"),
        &data,
        unix_now() + 3600,
    ));
    sql.push_str(&session_row(
        Engine::Postgres,
        &django_key("pgold"),
        &data,
        unix_now() - 5,
    ));
    on_django(&db.url, &sql).await;
    let s = dual_run_server(&db.url);
    assert_success(&import(&s, &db.url, &[]));
    let (r, _) = me_with_session(&s, &django_key("pgold")).await;
    assert_eq!(r.status, 401, "{}", r.body);
    let (r, mut b) = me_with_session(&s, &django_key("pg")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["id"], 300);
    assert_eq!(b.get("/api/auth/me/").await.status, 200);
    let (r, _) = me_with_session(&s, &django_key("pg")).await;
    assert_eq!(r.status, 401, "replayed: {}", r.body);
}
