//! Cache invalidation across processes on PostgreSQL (sekisho-store's `bus`): two store sets
//! opened on one database stand for two instances. Their caches run on a manual clock that
//! never moves, so without the broadcast a cached entry would be served forever: every
//! "seen at once" below is the broadcast's doing, not the cache's expiry.

use sekisho_core::Config;
use sekisho_core::account::NewUser;
use sekisho_core::authz::Principal;
use sekisho_core::clock::{Clock, ManualClock, Timestamp};
use sekisho_core::session::SessionRecord;
use sekisho_core::store::Stores;
use sekisho_testing::services;
use sqlx::Connection;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NOW: Timestamp = Timestamp(1_800_000_000_000);

async fn instance(url: &str) -> Stores {
    let vars = [
        ("SEKISHO_DATABASE__URL".to_string(), url.to_string()),
        ("SEKISHO_CACHE__TTL".to_string(), "1s".to_string()),
    ];
    let config = Config::load("", vars).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::at(NOW));
    sekisho_store::open(&config, clock).await.unwrap()
}

async fn user(s: &Stores, name: &str) -> i64 {
    let u = NewUser {
        username: name.into(),
        email: format!("{name}@example.com"),
        is_staff: false,
        is_superuser: false,
    };
    s.users.create_user(&u, "!", NOW).await.unwrap().id
}

/// The permissions instance `s` reads for user `id`.
async fn perms(s: &Stores, id: i64) -> Vec<String> {
    s.users
        .user_by_id(id)
        .await
        .unwrap()
        .unwrap()
        .permissions
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_instance_is_seen_by_the_others_next_read() {
    let db = services::fresh_pg_database().await;
    let a = instance(&db.url).await;
    let b = instance(&db.url).await;
    let id = user(&a, "bus-user").await;
    a.authz
        .create_permission("shop.view_report", "")
        .await
        .unwrap();
    let g = a.authz.create_group("readers").await.unwrap();
    a.authz.add_member(g.id, id).await.unwrap();

    // B caches the user, then A changes it: B's next read sees each change.
    assert!(perms(&b, id).await.is_empty());
    a.authz
        .grant(Principal::Group(g.id), "shop.view_report")
        .await
        .unwrap();
    assert_eq!(perms(&b, id).await, ["shop.view_report"], "a group grant");
    a.authz
        .revoke(Principal::Group(g.id), "shop.view_report")
        .await
        .unwrap();
    assert!(perms(&b, id).await.is_empty());
    a.authz
        .grant(Principal::User(id), "shop.view_report")
        .await
        .unwrap();
    assert_eq!(perms(&b, id).await, ["shop.view_report"], "a direct grant");
    a.users.set_active(id, false).await.unwrap();
    assert!(!b.users.user_by_id(id).await.unwrap().unwrap().is_active);

    // A session B has cached, deleted through A.
    let s = SessionRecord {
        id_hash: "ab".repeat(32),
        public_id: "p1".into(),
        user_id: id,
        created_at: NOW,
        last_seen: NOW,
        idle_expires_at: NOW.plus(Duration::from_secs(3600)),
        absolute_expires_at: NOW.plus(Duration::from_secs(7200)),
        user_agent: String::new(),
        ip: String::new(),
        login: sekisho_core::mfa::LoginMethod::password(NOW),
    };
    a.sessions.create_session(&s).await.unwrap();
    assert!(b.sessions.session(&s.id_hash).await.unwrap().is_some());
    a.sessions.delete_session(&s.id_hash).await.unwrap();
    assert!(b.sessions.session(&s.id_hash).await.unwrap().is_none());
    // And all of a user's sessions ended through A.
    a.sessions.create_session(&s).await.unwrap();
    assert!(b.sessions.session(&s.id_hash).await.unwrap().is_some());
    a.sessions.delete_user_sessions(id, None).await.unwrap();
    assert!(b.sessions.session(&s.id_hash).await.unwrap().is_none());
    drop((a, b));
    db.drop().await;
}

/// Holds an instance's liveness lock without listening: a process that is live but stalled.
async fn stalled_instance(url: &str) -> sqlx::PgConnection {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1::int4, 7)")
        .bind(0x5e_615e_i32)
        .execute(&mut c)
        .await
        .unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_instance_delays_a_change_by_the_bound_and_no_more() {
    let db = services::fresh_pg_database().await;
    let a = instance(&db.url).await;
    let id = user(&a, "bus-stall").await;
    let stalled = stalled_instance(&db.url).await;
    let t = Instant::now();
    a.users.set_active(id, false).await.unwrap();
    let waited = t.elapsed();
    // It waited for the acknowledgement that never came, then gave up at the bound.
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    stalled.close().await.unwrap();
    // A process that has gone is not waited for.
    let t = Instant::now();
    a.users.set_active(id, true).await.unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    drop(a);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_lost_its_listener_reads_through_then_resumes() {
    let db = services::fresh_pg_database().await;
    let a = instance(&db.url).await;
    let b = instance(&db.url).await;
    let id = user(&a, "bus-reconnect").await;
    assert!(b.users.user_by_id(id).await.unwrap().unwrap().is_active);
    // Every listener loses its connection (as in a PostgreSQL restart), then a change is made
    // that no broadcast announces: written straight to the table.
    let mut admin = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_locks \
         WHERE locktype = 'advisory' AND classid::int8 = $1 AND objsubid = 2 \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .bind(0x5e_615e_i64)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(killed, [true, true], "two listeners");
    sqlx::query("UPDATE users SET is_active = FALSE WHERE id = $1")
        .bind(id)
        .execute(&mut admin)
        .await
        .unwrap();
    // B must not keep serving the cached copy: it reads through while disconnected and empties
    // its cache when it is back (bounded wait for the listener to notice).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if !b.users.user_by_id(id).await.unwrap().unwrap().is_active {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B served its stale copy for 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Once reconnected, broadcasts work again: B caches, A changes, B sees it.
    let reconnected = Instant::now() + Duration::from_secs(20);
    loop {
        let locks: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks \
             WHERE locktype = 'advisory' AND classid::int8 = $1 AND objsubid = 2 AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .bind(0x5e_615e_i64)
        .fetch_one(&mut admin)
        .await
        .unwrap();
        if locks == 2 {
            break;
        }
        assert!(
            Instant::now() < reconnected,
            "the listeners did not come back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!b.users.user_by_id(id).await.unwrap().unwrap().is_active);
    a.users.set_active(id, true).await.unwrap();
    assert!(b.users.user_by_id(id).await.unwrap().unwrap().is_active);
    drop((a, b, admin));
    db.drop().await;
}
