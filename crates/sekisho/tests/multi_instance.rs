//! Several `sekisho serve` processes sharing their stores behave as one server (on every
//! backend the suite runs against: SQLite on one host, PostgreSQL, PostgreSQL + Redis).
mod common;
use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn sessions_and_logouts_are_seen_by_every_instance_at_once() {
    let a = Server::start(&[]);
    let b = a.start_sharing();
    a.create_user("multi", PASSWORD);
    let csrf = a
        .send(Method::GET, "/api/auth/csrf/", &[], None)
        .await
        .str("csrfToken");
    let cookie = format!("csrftoken={csrf}");
    let login = a
        .send(
            Method::POST,
            "/api/auth/login/",
            &[
                ("cookie", &cookie),
                ("x-csrftoken", &csrf),
                ("content-type", "application/json"),
            ],
            Some(
                json!({"username": "multi", "password": PASSWORD})
                    .to_string()
                    .as_bytes(),
            ),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.body);
    let sid = login.cookie("sessionid").unwrap();
    let session_csrf = login.cookie("csrftoken").unwrap();
    let jar = format!("sessionid={sid}; csrftoken={session_csrf}");
    let me_b = b
        .send(Method::GET, "/api/auth/me/", &[("cookie", &jar)], None)
        .await;
    assert_eq!(me_b.status, 200, "a session created on A is valid on B");
    assert_eq!(me_b.body["username"], "multi");
    // The CSRF token minted by A is accepted by B (shared key).
    let patch = b
        .send(
            Method::PATCH,
            "/api/auth/me/",
            &[
                ("cookie", &jar),
                ("x-csrftoken", &session_csrf),
                ("content-type", "application/json"),
            ],
            Some(br#"{"first_name":"Multi"}"#),
        )
        .await;
    assert_eq!(patch.status, 200, "{}", patch.body);
    let out = a
        .send(
            Method::POST,
            "/api/auth/logout/",
            &[("cookie", &jar), ("x-csrftoken", &session_csrf)],
            None,
        )
        .await;
    assert_eq!(out.status, 200);
    // And on A itself at once.
    let on_a = a
        .send(Method::GET, "/api/auth/me/", &[("cookie", &jar)], None)
        .await;
    assert_eq!(on_a.status, 401);
    // On SQLite, B may hold the session in its read cache and drops it within cache.ttl; that
    // bound is tested exactly on a manual clock (crates/sekisho-testing/tests/lifetimes.rs).
    // On PostgreSQL the change is broadcast and B drops it at once (cache_bus.rs in
    // sekisho-testing, forward_auth_nginx.rs). Here: it does take effect on the other process.
    let gone = eventually(std::time::Duration::from_secs(5), async || {
        b.send(Method::GET, "/api/auth/me/", &[("cookie", &jar)], None)
            .await
            .status
            == 401
    })
    .await;
    assert!(gone, "a logout on A takes effect on B");
}

#[tokio::test]
async fn revocations_on_one_instance_apply_on_the_other() {
    let a = Server::start(&[]);
    let b = a.start_sharing();
    a.create_user("rev", PASSWORD);
    let (_, refresh1) = a.token_pair("rev", PASSWORD).await;
    let (_, refresh2) = b.token_pair("rev", PASSWORD).await;
    let out = a
        .post_json("/api/token/blacklist/", json!({"refresh": refresh1}))
        .await;
    assert_eq!(out.status, 200);
    let r = b
        .post_json("/api/token/refresh/", json!({"refresh": refresh1}))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body["detail"].as_str()),
        (401, Some("Token is blacklisted"))
    );
    // Deactivation through the CLI ends the other login everywhere.
    let out = a.cli(&["user", "deactivate", "rev"], "");
    assert!(out.status.success());
    let r = b
        .post_json("/api/token/refresh/", json!({"refresh": refresh2}))
        .await;
    assert_eq!(r.status, 401);
}

async fn refresh_burst(a: &Server, b: &Server, token: &str, n: usize) -> Vec<Reply> {
    let client = client();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let url = if i % 2 == 0 {
                a.url("/api/token/refresh/")
            } else {
                b.url("/api/token/refresh/")
            };
            let body = json!({"refresh": token}).to_string();
            let client = client.clone();
            tokio::spawn(async move {
                send(
                    &client,
                    Method::POST,
                    &url,
                    &[("content-type", "application/json")],
                    Some(body.as_bytes()),
                )
                .await
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_refreshes_across_instances_agree_on_one_successor() {
    let a = Server::start(&[]);
    let b = a.start_sharing();
    a.create_user("race", PASSWORD);
    let (_, refresh) = a.token_pair("race", PASSWORD).await;
    let replies = refresh_burst(&a, &b, &refresh, 24).await;
    for r in &replies {
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let successors: std::collections::BTreeSet<String> =
        replies.iter().map(|r| r.str("refresh")).collect();
    assert_eq!(
        successors.len(),
        1,
        "one successor everywhere: {successors:?}"
    );
    let next = successors.into_iter().next().unwrap();
    let r = b
        .post_json("/api/token/refresh/", json!({"refresh": next}))
        .await;
    assert_eq!(r.status, 200, "the family survives: {}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_grace_exactly_one_instance_wins() {
    let a = Server::start(&[("SEKISHO_JWT__REUSE_GRACE", "0")]);
    let b = a.start_sharing();
    a.create_user("race0", PASSWORD);
    let (_, refresh) = a.token_pair("race0", PASSWORD).await;
    let replies = refresh_burst(&a, &b, &refresh, 16).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 1, "exactly one rotation across both instances");
    assert!(replies.iter().all(|r| r.status == 200 || r.status == 401));
}

#[tokio::test]
async fn a_successor_minted_on_one_instance_verifies_at_once_on_the_other() {
    // The longest cache allowed: B holds the family as it was before A rotated it.
    let a = Server::start(&[("SEKISHO_CACHE__TTL", "1s")]);
    let b = a.start_sharing();
    a.create_user("succ", PASSWORD);
    let (_, refresh) = a.token_pair("succ", PASSWORD).await;
    let r = b
        .post_json("/api/token/verify/", json!({"token": refresh}))
        .await;
    assert_eq!(r.status, 200, "B caches the family: {}", r.body);
    let rotated = a
        .post_json("/api/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let r = b
        .post_json(
            "/api/token/verify/",
            json!({"token": rotated.str("refresh")}),
        )
        .await;
    assert_eq!(
        r.status, 200,
        "the successor is not blacklisted on B: {}",
        r.body
    );
}
