//! Text no store can hold (a NUL byte) never looks like an outage: every endpoint answers the
//! contract's 400/401/404 before storage is asked, on every backend (PostgreSQL refuses NUL in
//! text; before this was checked, a login with one answered 503).

use axum::http::Method;
use sekisho_testing::harness::{Harness, PASSWORD};
use serde_json::json;

const NUL_FIELD: &str = "Null characters are not allowed.";

#[tokio::test]
async fn nul_bytes_in_login_fields_are_field_errors_not_outages() {
    let h = Harness::start(&[]).await;
    h.user("alice").await;
    for path in ["/api/token/", "/api/auth/login/"] {
        let mut b = h.browser();
        b.get("/api/auth/csrf/").await;
        let r = b
            .post(
                path,
                &json!({"username": "ali\u{0}ce", "password": "pw\u{0}"}),
            )
            .await;
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert_eq!(
            r.body,
            json!({"username": [NUL_FIELD], "password": [NUL_FIELD]}),
            "{path}"
        );
    }
    // Form bodies too.
    let r = h
        .send(
            Method::POST,
            "/api/token/",
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(b"username=a%00&password=x".to_vec()),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body, json!({"username": [NUL_FIELD]}));
    // The account still works.
    h.token_pair("alice", PASSWORD).await;
}

#[tokio::test]
async fn a_nul_byte_below_the_http_layer_is_an_unknown_user() {
    let h = Harness::start(&[]).await;
    h.user("alice").await;
    let e = h
        .auth
        .check_password("alice\u{0}", PASSWORD, "127.0.0.1")
        .await
        .unwrap_err();
    assert!(
        matches!(e, sekisho_core::AuthError::InvalidCredentials),
        "{e:?}"
    );
}

#[tokio::test]
async fn nul_bytes_in_profile_fields_session_ids_and_token_bodies() {
    let h = Harness::start(&[]).await;
    h.user("alice").await;
    let (access, refresh) = h.token_pair("alice", PASSWORD).await;
    let auth = format!("Bearer {access}");
    let patch = |field: &'static str| {
        let body = json!({ field: "x\u{0}y" }).to_string().into_bytes();
        let auth = auth.clone();
        let h = &h;
        async move {
            h.send(
                Method::PATCH,
                "/api/auth/me/",
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                Some(body),
            )
            .await
        }
    };
    for field in ["email", "first_name", "last_name"] {
        let r = patch(field).await;
        assert_eq!(r.status, 400, "{field}: {}", r.body);
        assert_eq!(r.body, json!({ field: [NUL_FIELD] }));
    }
    let r = h
        .send(
            Method::DELETE,
            "/api/auth/sessions/ab%00cd/",
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    // Not even UTF-8: still the JSON 404, never a plain-text rejection.
    let r = h
        .send(
            Method::DELETE,
            "/api/auth/sessions/%FF%FE/",
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), &r.body),
        (404, &json!({"detail": "Not found."}))
    );
    for (path, field) in [
        ("/api/token/refresh/", "refresh"),
        ("/api/token/verify/", "token"),
        ("/api/token/blacklist/", "refresh"),
    ] {
        let r = h.post_json(path, json!({ field: "a\u{0}b" })).await;
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert_eq!(r.body, json!({ field: [NUL_FIELD] }));
    }
    // A session cookie with a NUL-free but impossible value is simply anonymous.
    let r = h
        .send(
            Method::GET,
            "/api/auth/me/",
            &[("cookie", "sessionid=%00%00")],
            None,
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(h.refresh(&refresh).await.status, 200);
}
