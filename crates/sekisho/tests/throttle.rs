//! Brute-force protection (DESIGN §6): 429 with Retry-After after too many failed logins.
mod common;
use common::*;
use reqwest::Method;
use serde_json::json;

async fn login(s: &Server, user: &str, password: &str) -> Reply {
    s.post_json(
        "/api/token/",
        json!({"username": user, "password": password}),
    )
    .await
}

#[tokio::test]
async fn an_account_is_locked_after_repeated_failures() {
    let s = Server::start(&[
        ("SEKISHO_THROTTLE__MAX_FAILURES_PER_ACCOUNT", "3"),
        ("SEKISHO_THROTTLE__LOCKOUT", "2s"),
    ]);
    s.create_user("target", PASSWORD);
    s.create_user("bystander", PASSWORD);
    for _ in 0..3 {
        assert_eq!(login(&s, "target", "wrong").await.status, 401);
    }
    // Even the right password is refused while locked, before any hashing.
    let r = login(&s, "target", PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(
        r.body,
        json!({"detail": "Request was throttled. Expected available in 2 seconds."})
    );
    // The session login is covered by the same counter.
    let csrf = s
        .send(Method::GET, "/api/auth/csrf/", &[], None)
        .await
        .str("csrfToken");
    let r = s
        .send(
            Method::POST,
            "/api/auth/login/",
            &[
                ("cookie", &format!("csrftoken={csrf}")),
                ("x-csrftoken", &csrf),
                ("content-type", "application/json"),
            ],
            Some(
                json!({"username": "target", "password": PASSWORD})
                    .to_string()
                    .as_bytes(),
            ),
        )
        .await;
    assert_eq!(r.status, 429);
    assert_eq!(
        login(&s, "bystander", PASSWORD).await.status,
        200,
        "other accounts are unaffected"
    );
    // The release after the lockout is tested on a manual clock
    // (crates/sekisho-testing/tests/lifetimes.rs).
}

#[tokio::test]
async fn an_address_spraying_many_accounts_is_locked() {
    let s = Server::start(&[("SEKISHO_THROTTLE__MAX_FAILURES_PER_IP", "4")]);
    s.create_user("real", PASSWORD);
    for i in 0..4 {
        assert_eq!(login(&s, &format!("guess{i}"), "wrong").await.status, 401);
    }
    assert_eq!(login(&s, "real", PASSWORD).await.status, 429);
}
