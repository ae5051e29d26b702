//! Refresh tokens minted by an existing Django + simplejwt deployment (same SECRET_KEY, no
//! sekisho family claim) keep working: the first refresh adopts them into a family, after which
//! rotation, grace and reuse detection apply to them like to sekisho's own tokens.
mod common;
use common::*;
use serde_json::{Value, json};

const SECRET_KEY: &str = "django-insecure-9x!k2p^v@q9#m$w&z*r-t_y=u+i0o3a8s4d6f";

fn django_refresh(user_id: &str, jti: &str) -> String {
    let now = unix_now();
    let payload = json!({
        "token_type": "refresh",
        "exp": now + 86_400,
        "iat": now,
        "jti": jti,
        "user_id": user_id,
    });
    hs256_raw(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &payload.to_string(),
        SECRET_KEY.as_bytes(),
    )
}

fn user_id(s: &Server, name: &str) -> String {
    let out = s.cli(&["user", "list"], "");
    let list = String::from_utf8_lossy(&out.stdout).to_string();
    list.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .and_then(|l| l.split_whitespace().next())
        .expect("user in list")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_django_refresh_token_is_adopted_then_rotates_like_ours() {
    let s = Server::start(&[
        ("SEKISHO_JWT__SIGNING_KEY", SECRET_KEY),
        ("SEKISHO_JWT__REUSE_GRACE", "30s"),
    ]);
    s.create_user("legacy", PASSWORD);
    let uid = user_id(&s, "legacy");
    let token = django_refresh(&uid, "0123456789abcdef0123456789abcdef");
    assert_eq!(
        s.post_json("/api/token/verify/", json!({"token": token}))
            .await
            .status,
        200
    );

    // Parallel first uses agree on one adopted family and one successor.
    let client = client();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, body) = (
                client.clone(),
                s.url("/api/token/refresh/"),
                json!({"refresh": token}).to_string(),
            );
            tokio::spawn(async move {
                send(
                    &client,
                    reqwest::Method::POST,
                    &url,
                    &[("content-type", "application/json")],
                    Some(body.as_bytes()),
                )
                .await
            })
        })
        .collect();
    let mut successors = std::collections::BTreeSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        successors.insert(r.str("refresh"));
    }
    assert_eq!(successors.len(), 1);
    let next = successors.into_iter().next().unwrap();
    assert_eq!(
        claims(&next)["fid"],
        Value::from("legacy-0123456789abcdef0123456789abcdef")
    );
    assert_eq!(claims(&next)["user_id"], Value::from(uid.as_str()));

    // Reuse after the grace window, with the adopted family, is tested on a manual clock
    // (crates/sekisho-testing/tests/lifetimes.rs).
    let after = s
        .post_json("/api/token/refresh/", json!({"refresh": next}))
        .await;
    assert_eq!(after.status, 200, "the successor rotates: {}", after.body);
}

#[tokio::test]
async fn a_django_refresh_token_can_be_blacklisted() {
    let s = Server::start(&[("SEKISHO_JWT__SIGNING_KEY", SECRET_KEY)]);
    s.create_user("legacy2", PASSWORD);
    let token = django_refresh(&user_id(&s, "legacy2"), "fedcba9876543210fedcba9876543210");
    let out = s
        .post_json("/api/token/blacklist/", json!({"refresh": token}))
        .await;
    assert_eq!(out.status, 200, "{}", out.body);
    let r = s
        .post_json("/api/token/refresh/", json!({"refresh": token}))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body["detail"].as_str()),
        (401, Some("Token is blacklisted"))
    );
}
