//! DESIGN §3.4: the refresh token in an HttpOnly cookie.
mod common;
use common::*;
use reqwest::Method;
use serde_json::json;

fn cookie_header(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test]
async fn refresh_token_travels_only_in_a_strict_httponly_cookie() {
    let s = Server::start(&[("SEKISHO_JWT__REFRESH_COOKIE", "true")]);
    s.create_user("carol", PASSWORD);
    let r = s
        .post_json(
            "/api/token/",
            json!({"username": "carol", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.get("refresh").is_none(),
        "body omits the refresh token: {}",
        r.body
    );
    assert!(r.body["access"].is_string());
    let set = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("refresh_token="))
        .expect("refresh cookie");
    for attr in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/api/token/",
        "Max-Age=86400",
    ] {
        assert!(set.contains(attr), "{attr} missing in {set}");
    }
    let refresh = r.cookie("refresh_token").unwrap();
    assert_eq!(claims(&refresh)["token_type"], "refresh");

    // Cookie-borne refresh needs the CSRF pair.
    let csrf = s
        .send(Method::GET, "/api/auth/csrf/", &[], None)
        .await
        .str("csrfToken");
    let no_header = s
        .send(
            Method::POST,
            "/api/token/refresh/",
            &[(
                "cookie",
                &cookie_header(&[("refresh_token", &refresh), ("csrftoken", &csrf)]),
            )],
            None,
        )
        .await;
    assert_eq!(no_header.status, 403);
    assert_eq!(
        no_header.body,
        json!({"detail": "CSRF Failed: CSRF token missing."})
    );

    let ok = s
        .send(
            Method::POST,
            "/api/token/refresh/",
            &[
                (
                    "cookie",
                    &cookie_header(&[("refresh_token", &refresh), ("csrftoken", &csrf)]),
                ),
                ("x-csrftoken", &csrf),
            ],
            None,
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body.get("refresh").is_none());
    let rotated = ok.cookie("refresh_token").expect("rotated refresh cookie");
    assert_ne!(rotated, refresh);

    // A token in the body still works (mobile clients) and needs no CSRF.
    let body = s
        .post_json("/api/token/refresh/", json!({"refresh": rotated}))
        .await;
    assert_eq!(body.status, 200, "{}", body.body);
    let latest = body.cookie("refresh_token").unwrap();

    // Logout by cookie clears it and revokes the family.
    let out = s
        .send(
            Method::POST,
            "/api/token/blacklist/",
            &[
                (
                    "cookie",
                    &cookie_header(&[("refresh_token", &latest), ("csrftoken", &csrf)]),
                ),
                ("x-csrftoken", &csrf),
            ],
            None,
        )
        .await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(
        out.set_cookies()
            .iter()
            .any(|c| c.starts_with("refresh_token=;") && c.contains("Max-Age=0"))
    );
    let after = s
        .post_json("/api/token/refresh/", json!({"refresh": latest}))
        .await;
    assert_eq!(after.status, 401);
    assert_eq!(after.body["detail"], "Token is blacklisted");

    // No body and no cookie: the usual field error.
    let none = s.post_json("/api/token/refresh/", json!({})).await;
    assert_eq!(none.status, 400);
    assert_eq!(none.body, json!({"refresh": ["This field is required."]}));
}

#[tokio::test]
async fn a_password_change_in_cookie_mode_renews_the_cookie_not_the_body() {
    let s = Server::start(&[("SEKISHO_JWT__REFRESH_COOKIE", "true")]);
    s.create_user("carol", PASSWORD);
    let r = s
        .post_json(
            "/api/token/",
            json!({"username": "carol", "password": PASSWORD}),
        )
        .await;
    let (access, old) = (r.str("access"), r.cookie("refresh_token").unwrap());
    let auth = format!("Bearer {access}");
    let body = json!({"old_password": PASSWORD, "new_password": "a-new-Passw0rd-here"});
    let r = s
        .send(
            Method::POST,
            "/api/auth/password/",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(body.to_string().as_bytes()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.get("refresh").is_none(),
        "the refresh token stays out of reach of scripts: {}",
        r.body
    );
    assert!(r.body["access"].is_string());
    let new = r.cookie("refresh_token").expect("a new refresh cookie");
    let again = s
        .post_json("/api/token/refresh/", json!({"refresh": old}))
        .await;
    assert_eq!(again.status, 401, "the old family ended: {}", again.body);
    let fresh = s
        .post_json("/api/token/refresh/", json!({"refresh": new}))
        .await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
}
