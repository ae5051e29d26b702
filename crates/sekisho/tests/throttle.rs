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

#[tokio::test]
async fn a_client_behind_a_trusted_proxy_cannot_escape_the_address_throttle() {
    // The proxy appends the address it saw; the client controls only what is left of it.
    let s = Server::start(&[
        ("SEKISHO_THROTTLE__MAX_FAILURES_PER_IP", "4"),
        ("SEKISHO_SERVER__TRUSTED_PROXIES", "127.0.0.1"),
    ]);
    s.create_user("real", PASSWORD);
    let attempt = async |i: usize, user: &str, password: &str| {
        let forwarded = format!("10.9.{i}.1, 203.0.113.7");
        let body = json!({"username": user, "password": password}).to_string();
        s.send(
            reqwest::Method::POST,
            "/api/token/",
            &[
                ("content-type", "application/json"),
                ("x-forwarded-for", &forwarded),
            ],
            Some(body.as_bytes()),
        )
        .await
    };
    for i in 0..4 {
        assert_eq!(attempt(i, &format!("guess{i}"), "wrong").await.status, 401);
    }
    let r = attempt(99, "real", PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.body);
}

#[tokio::test]
async fn wrong_old_passwords_count_as_failed_logins() {
    // A stolen token must not be a way to guess the account's password unthrottled.
    let s = Server::start(&[("SEKISHO_THROTTLE__MAX_FAILURES_PER_ACCOUNT", "5")]);
    s.create_user("victim", PASSWORD);
    let (access, _) = s.token_pair("victim", PASSWORD).await;
    let bearer = format!("Bearer {access}");
    let change = async |old: &str| {
        let body = json!({"old_password": old, "new_password": "a brand new passphrase 42"});
        s.send(
            reqwest::Method::POST,
            "/api/auth/password/",
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            Some(body.to_string().as_bytes()),
        )
        .await
    };
    for i in 0..5 {
        let r = change(&format!("guess {i}")).await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body["old_password"].is_array(), "{}", r.body);
    }
    // Locked: even the right old password is refused now, and so is a login.
    let r = change(PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    assert_eq!(login(&s, "victim", PASSWORD).await.status, 429);
}
