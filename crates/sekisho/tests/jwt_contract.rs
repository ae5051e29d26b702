//! The simplejwt-compatible JWT contract (DESIGN §3.1, §3.5, §3.6), black-box over real HTTP.
mod common;
use common::*;

use reqwest::Method;
use serde_json::{Value, json};

const NO_ACCOUNT: &str = "No active account found with the given credentials";

fn login_body(user: &str, password: &str) -> Value {
    json!({"username": user, "password": password})
}

fn keys_of(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

fn is_lower_hex32(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn started_with_user(env: &[(&str, &str)]) -> Server {
    let s = Server::start(env);
    s.create_user("alice", PASSWORD);
    s
}

#[tokio::test]
async fn obtain_returns_exactly_refresh_and_access() {
    let s = started_with_user(&[]);
    let r = s
        .post_nr("/api/token/", login_body("alice", PASSWORD))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_json(&r);
    assert_eq!(keys_of(&r.body), vec!["access", "refresh"]);
    assert!(r.body["access"].as_str().unwrap().split('.').count() == 3);
    assert!(r.body["refresh"].as_str().unwrap().split('.').count() == 3);
    assert_ne!(r.body["access"], r.body["refresh"]);
}

#[tokio::test]
async fn bad_credentials_are_one_indistinguishable_401() {
    let s = started_with_user(&[]);
    s.create_user("bob", PASSWORD);
    let want = json!({"detail": NO_ACCOUNT});

    let wrong_pw = s
        .post_nr("/api/token/", login_body("alice", "wrong password"))
        .await;
    assert_401(&wrong_pw, &want);
    let unknown = s
        .post_nr("/api/token/", login_body("nobody", PASSWORD))
        .await;
    assert_401(&unknown, &want);
    // Case matters for the password.
    let upper = s
        .post_nr("/api/token/", login_body("alice", &PASSWORD.to_uppercase()))
        .await;
    assert_401(&upper, &want);

    // An inactive account looks exactly like a wrong password.
    let out = s.cli(&["user", "deactivate", "bob"], "");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let inactive = s.post_nr("/api/token/", login_body("bob", PASSWORD)).await;
    assert_401(&inactive, &want);
    // ... while alice is unaffected.
    assert_eq!(
        s.post_nr("/api/token/", login_body("alice", PASSWORD))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn every_token_path_answers_with_and_without_trailing_slash_without_redirect() {
    let s = started_with_user(&[]);
    for obtain in ["/api/token/", "/api/token"] {
        let r = s.post_nr(obtain, login_body("alice", PASSWORD)).await;
        assert_eq!(r.status, 200, "{obtain}: {}", r.body);
        assert!(r.header("location").is_none(), "{obtain} redirected");
        let (access, refresh) = (r.str("access"), r.str("refresh"));

        for verify in ["/api/token/verify/", "/api/token/verify"] {
            let r = s.post_nr(verify, json!({"token": access})).await;
            assert_eq!((r.status.as_u16(), &r.body), (200, &json!({})), "{verify}");
            assert!(r.header("location").is_none());
        }
        for me in ["/api/auth/me/", "/api/auth/me"] {
            let r = s
                .send_nr(
                    Method::GET,
                    me,
                    &[("authorization", &format!("Bearer {access}"))],
                    None,
                )
                .await;
            assert_eq!(r.status, 200, "{me}: {}", r.body);
            assert_eq!(r.body["username"], "alice");
        }
        let mut current = refresh;
        for path in ["/api/token/refresh/", "/api/token/refresh"] {
            let r = s.post_nr(path, json!({"refresh": current})).await;
            assert_eq!(r.status, 200, "{path}: {}", r.body);
            assert!(r.header("location").is_none());
            current = r.str("refresh");
        }
        let blacklist = if obtain.ends_with('/') {
            "/api/token/blacklist/"
        } else {
            "/api/token/blacklist"
        };
        let r = s.post_nr(blacklist, json!({"refresh": current})).await;
        assert_eq!(
            (r.status.as_u16(), &r.body),
            (200, &json!({})),
            "{blacklist}"
        );
        assert!(r.header("location").is_none());
    }
}

#[tokio::test]
async fn claims_of_both_tokens_follow_simplejwt() {
    let s = started_with_user(&[
        ("SEKISHO_JWT__ACCESS_TOKEN_LIFETIME", "90s"),
        ("SEKISHO_JWT__REFRESH_TOKEN_LIFETIME", "2h"),
    ]);
    let before = unix_now();
    let (access, refresh) = s.token_pair("alice", PASSWORD).await;
    let after = unix_now();
    let (a, r) = (claims(&access), claims(&refresh));

    assert_eq!(a["token_type"], "access");
    assert_eq!(r["token_type"], "refresh");
    for (c, lifetime) in [(&a, 90), (&r, 7200)] {
        let iat = c["iat"].as_i64().expect("integer iat");
        let exp = c["exp"].as_i64().expect("integer exp");
        assert!(
            iat >= before && iat <= after,
            "iat {iat} not in [{before}, {after}]"
        );
        assert_eq!(exp - iat, lifetime, "{c}");
        let jti = c["jti"].as_str().expect("string jti");
        assert!(is_lower_hex32(jti), "jti {jti:?}");
        let uid = c["user_id"].as_str().expect("user_id is a string");
        assert!(uid.parse::<i64>().is_ok(), "user_id {uid:?}");
        assert!(
            c.get("iss").is_none() && c.get("aud").is_none(),
            "iss/aud only when configured: {c}"
        );
    }
    assert_ne!(a["jti"], r["jti"]);
    assert_eq!(a["user_id"], r["user_id"]);
    for t in [&access, &refresh] {
        let h = jwt_header(t);
        assert_eq!(h["alg"], "HS256");
        assert_eq!(h["typ"], "JWT");
    }
    // The user id is the same one /me reports.
    let me = s.get_bearer("/api/auth/me/", &access).await;
    assert_eq!(me.status, 200);
    assert_eq!(
        me.body["id"].as_i64().unwrap().to_string(),
        a["user_id"].as_str().unwrap()
    );
}

#[tokio::test]
async fn refresh_rotates_by_default() {
    let s = started_with_user(&[
        ("SEKISHO_JWT__ACCESS_TOKEN_LIFETIME", "90s"),
        ("SEKISHO_JWT__REFRESH_TOKEN_LIFETIME", "2h"),
    ]);
    let (_, refresh) = s.token_pair("alice", PASSWORD).await;
    let r = s
        .post_nr("/api/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_json(&r);
    assert_eq!(keys_of(&r.body), vec!["access", "refresh"]);
    let (access2, refresh2) = (r.str("access"), r.str("refresh"));
    assert_ne!(refresh2, refresh);
    let (a, n, old) = (claims(&access2), claims(&refresh2), claims(&refresh));
    assert_eq!(a["token_type"], "access");
    assert_eq!(n["token_type"], "refresh");
    assert_ne!(n["jti"], old["jti"]);
    assert!(is_lower_hex32(n["jti"].as_str().unwrap()));
    assert_eq!(n["user_id"], old["user_id"]);
    assert_eq!(a["exp"].as_i64().unwrap() - a["iat"].as_i64().unwrap(), 90);
    assert_eq!(
        n["exp"].as_i64().unwrap() - n["iat"].as_i64().unwrap(),
        7200
    );
    // The new pair works.
    assert_eq!(s.get_bearer("/api/auth/me/", &access2).await.status, 200);
    let r = s
        .post_nr("/api/token/refresh/", json!({"refresh": refresh2}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn refresh_without_rotation_returns_only_access_and_the_token_stays_valid() {
    let s = started_with_user(&[("SEKISHO_JWT__ROTATE_REFRESH_TOKENS", "false")]);
    let (_, refresh) = s.token_pair("alice", PASSWORD).await;
    for _ in 0..3 {
        let r = s
            .post_nr("/api/token/refresh/", json!({"refresh": refresh}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(keys_of(&r.body), vec!["access"]);
        assert_eq!(claims(&r.str("access"))["token_type"], "access");
        assert_eq!(
            s.get_bearer("/api/auth/me/", &r.str("access")).await.status,
            200
        );
    }
    let r = s
        .post_nr("/api/token/verify/", json!({"token": refresh}))
        .await;
    assert_eq!((r.status.as_u16(), &r.body), (200, &json!({})));
}

#[tokio::test]
async fn verify_accepts_both_token_types_and_refuses_garbage() {
    let s = started_with_user(&[]);
    let (access, refresh) = s.token_pair("alice", PASSWORD).await;
    for t in [&access, &refresh] {
        let r = s.post_nr("/api/token/verify/", json!({"token": t})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body, json!({}));
        assert_json(&r);
    }
    for garbage in [
        "garbage",
        "a.b.c",
        "eyJhbGciOiJIUzI1NiJ9.e30.AAAA",
        &format!("{access}x"),
    ] {
        let r = s
            .post_nr("/api/token/verify/", json!({"token": garbage}))
            .await;
        assert_401(&r, &token_error("Token is invalid"));
    }
}

#[tokio::test]
async fn blacklist_ends_the_family() {
    let s = started_with_user(&[]);
    let (access, refresh) = s.token_pair("alice", PASSWORD).await;
    let (other_access, other_refresh) = s.token_pair("alice", PASSWORD).await;

    let r = s
        .post_nr("/api/token/blacklist/", json!({"refresh": refresh}))
        .await;
    assert_eq!((r.status.as_u16(), &r.body), (200, &json!({})));
    assert_json(&r);

    let blacklisted = token_error("Token is blacklisted");
    assert_401(
        &s.post_nr("/api/token/refresh/", json!({"refresh": refresh}))
            .await,
        &blacklisted,
    );
    assert_401(
        &s.post_nr("/api/token/verify/", json!({"token": refresh}))
            .await,
        &blacklisted,
    );
    assert_401(
        &s.post_nr("/api/token/verify/", json!({"token": access}))
            .await,
        &blacklisted,
    );
    assert_401(
        &s.post_nr("/api/token/blacklist/", json!({"refresh": refresh}))
            .await,
        &blacklisted,
    );

    // Another login of the same user is untouched.
    let r = s
        .post_nr("/api/token/verify/", json!({"token": other_access}))
        .await;
    assert_eq!(r.status, 200);
    let r = s
        .post_nr("/api/token/refresh/", json!({"refresh": other_refresh}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn blacklist_of_a_rotated_family_revokes_its_current_token() {
    let s = started_with_user(&[]);
    let (_, r1) = s.token_pair("alice", PASSWORD).await;
    let r = s
        .post_nr("/api/token/refresh/", json!({"refresh": r1}))
        .await;
    assert_eq!(r.status, 200);
    let (a2, r2) = (r.str("access"), r.str("refresh"));
    let r = s
        .post_nr("/api/token/blacklist/", json!({"refresh": r2}))
        .await;
    assert_eq!((r.status.as_u16(), &r.body), (200, &json!({})));
    let blacklisted = token_error("Token is blacklisted");
    assert_401(
        &s.post_nr("/api/token/refresh/", json!({"refresh": r2}))
            .await,
        &blacklisted,
    );
    assert_401(
        &s.post_nr("/api/token/verify/", json!({"token": a2})).await,
        &blacklisted,
    );
}

#[tokio::test]
async fn wrong_token_type_is_refused() {
    let s = started_with_user(&[]);
    let (access, refresh) = s.token_pair("alice", PASSWORD).await;
    let wrong = token_error("Token has wrong type");
    assert_401(
        &s.post_nr("/api/token/refresh/", json!({"refresh": access}))
            .await,
        &wrong,
    );
    assert_401(
        &s.post_nr("/api/token/blacklist/", json!({"refresh": access}))
            .await,
        &wrong,
    );
    assert_401(
        &s.get_bearer("/api/auth/me/", &refresh).await,
        &bearer_error("Token has wrong type"),
    );
    // None of that consumed the refresh token.
    assert_eq!(
        s.post_nr("/api/token/refresh/", json!({"refresh": refresh}))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn me_with_bearer_returns_the_user() {
    let s = Server::start(&[]);
    let out = s.cli(
        &[
            "user",
            "create",
            "carol",
            "--email",
            "carol@example.com",
            "--staff",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let (access, _) = s.token_pair("carol", PASSWORD).await;
    let r = s.get_bearer("/api/auth/me/", &access).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_json(&r);
    let id = r.body["id"].as_i64().expect("integer id");
    assert_eq!(
        r.body,
        json!({
            "id": id,
            "username": "carol",
            "email": "carol@example.com",
            "first_name": "",
            "last_name": "",
            "is_staff": true,
            "is_superuser": false,
            "groups": [],
            "permissions": [],
        })
    );
    assert_eq!(id.to_string(), claims(&access)["user_id"].as_str().unwrap());
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let s = started_with_user(&[]);
    let (access, _) = s.token_pair("alice", PASSWORD).await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let r = s
            .send_nr(
                Method::GET,
                "/api/auth/me/",
                &[("authorization", &format!("{scheme} {access}"))],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{scheme}: {}", r.body);
        assert_eq!(r.body["username"], "alice");
    }
}

#[tokio::test]
async fn malformed_authorization_headers() {
    let s = started_with_user(&[]);
    let (access, _) = s.token_pair("alice", PASSWORD).await;
    let bad = json!({
        "detail": "Authorization header must contain two space-delimited values",
        "code": "bad_authorization_header",
    });
    for value in [
        "Bearer".to_string(),
        "Bearer ".to_string(),
        "bearer".to_string(),
        format!("Bearer {access} extra"),
        "Bearer a b".to_string(),
    ] {
        let r = s
            .send_nr(
                Method::GET,
                "/api/auth/me/",
                &[("authorization", &value)],
                None,
            )
            .await;
        assert_401(&r, &bad);
    }
}

#[tokio::test]
async fn anonymous_and_unknown_schemes_are_not_authenticated() {
    let s = started_with_user(&[]);
    let want = json!({"detail": "Authentication credentials were not provided."});
    let r = s.send_nr(Method::GET, "/api/auth/me/", &[], None).await;
    assert_401(&r, &want);
    let r = s
        .send_nr(
            Method::GET,
            "/api/auth/me/",
            &[("authorization", "Basic YWxpY2U6c2VjcmV0")],
            None,
        )
        .await;
    assert_401(&r, &want);
}

#[tokio::test]
async fn an_empty_authorization_header_is_anonymous() {
    let s = started_with_user(&[]);
    let r = s
        .send_nr(Method::GET, "/api/auth/me/", &[("authorization", "")], None)
        .await;
    assert_401(
        &r,
        &json!({"detail": "Authentication credentials were not provided."}),
    );
}

#[tokio::test]
async fn token_endpoints_ignore_the_authorization_header() {
    // simplejwt's token views have no authentication classes: a stale or broken bearer header
    // sent along by an SPA's HTTP client must not break login or refresh.
    let s = started_with_user(&[]);
    let (access, refresh) = s.token_pair("alice", PASSWORD).await;
    for auth in [
        "Bearer garbage",
        "Bearer",
        "Bearer a b",
        "Basic YWxpY2U6c2VjcmV0",
    ] {
        let h = [
            ("content-type", "application/json"),
            ("authorization", auth),
        ];
        let body = json!({"username": "alice", "password": PASSWORD}).to_string();
        let r = s
            .send_nr(Method::POST, "/api/token/", &h, Some(body.as_bytes()))
            .await;
        assert_eq!(r.status, 200, "obtain with {auth:?}: {}", r.body);
        let body = json!({"token": access}).to_string();
        let r = s
            .send_nr(
                Method::POST,
                "/api/token/verify/",
                &h,
                Some(body.as_bytes()),
            )
            .await;
        assert_eq!(r.status, 200, "verify with {auth:?}: {}", r.body);
    }
    let h = [
        ("content-type", "application/json"),
        ("authorization", "Bearer garbage"),
    ];
    let body = json!({"refresh": refresh}).to_string();
    let r = s
        .send_nr(
            Method::POST,
            "/api/token/refresh/",
            &h,
            Some(body.as_bytes()),
        )
        .await;
    assert_eq!(r.status, 200, "refresh: {}", r.body);
    let body = json!({"refresh": r.str("refresh")}).to_string();
    let r = s
        .send_nr(
            Method::POST,
            "/api/token/blacklist/",
            &h,
            Some(body.as_bytes()),
        )
        .await;
    assert_eq!(r.status, 200, "blacklist: {}", r.body);
}

#[tokio::test]
async fn access_tokens_are_stateless_by_default_and_checked_in_strict_mode() {
    // Default (fast path): a logged-out family's access token still authenticates until it
    // expires; /verify reports it as blacklisted.
    let s = started_with_user(&[]);
    let (access, refresh) = s.token_pair("alice", PASSWORD).await;
    assert_eq!(
        s.post_nr("/api/token/blacklist/", json!({"refresh": refresh}))
            .await
            .status,
        200
    );
    assert_eq!(s.get_bearer("/api/auth/me/", &access).await.status, 200);
    drop(s);

    let s = started_with_user(&[("SEKISHO_JWT__STRICT_ACCESS", "true")]);
    let (access, refresh) = s.token_pair("alice", PASSWORD).await;
    let (other_access, _) = s.token_pair("alice", PASSWORD).await;
    assert_eq!(s.get_bearer("/api/auth/me/", &access).await.status, 200);
    assert_eq!(
        s.post_nr("/api/token/blacklist/", json!({"refresh": refresh}))
            .await
            .status,
        200
    );
    assert_401(
        &s.get_bearer("/api/auth/me/", &access).await,
        &bearer_error("Token is blacklisted"),
    );
    assert_eq!(
        s.get_bearer("/api/auth/me/", &other_access).await.status,
        200
    );
    // A disabled user is refused in strict mode too.
    assert!(s.cli(&["user", "deactivate", "alice"], "").status.success());
    assert_401(
        &s.get_bearer("/api/auth/me/", &other_access).await,
        &json!({"detail": "User is inactive", "code": "user_inactive"}),
    );
}

#[tokio::test]
async fn blacklisting_with_a_rotated_away_token_never_leaves_the_family_alive() {
    let s = started_with_user(&[("SEKISHO_JWT__REUSE_GRACE", "0")]);
    let (_, a) = s.token_pair("alice", PASSWORD).await;
    let r = s
        .post_nr("/api/token/refresh/", json!({"refresh": a}))
        .await;
    assert_eq!(r.status, 200);
    let b = r.str("refresh");
    // Logging out with the stale token either logs the family out (200) or is refused as
    // blacklisted; in no case may the current token keep working.
    let r = s
        .post_nr("/api/token/blacklist/", json!({"refresh": a}))
        .await;
    assert!(
        r.status == 200 && r.body == json!({})
            || r.status == 401 && r.body == token_error("Token is blacklisted"),
        "{} {}",
        r.status,
        r.body
    );
    assert_401(
        &s.post_nr("/api/token/refresh/", json!({"refresh": b}))
            .await,
        &token_error("Token is blacklisted"),
    );
}

#[tokio::test]
async fn unauthenticated_status_can_be_403() {
    let s = started_with_user(&[("SEKISHO_AUTH__UNAUTHENTICATED_STATUS", "403")]);
    let want = json!({"detail": "Authentication credentials were not provided."});
    for headers in [vec![], vec![("authorization", "Basic YWxpY2U6c2VjcmV0")]] {
        let r = s
            .send_nr(Method::GET, "/api/auth/me/", &headers, None)
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(r.body, want);
        assert!(
            r.header("www-authenticate").is_none(),
            "no WWW-Authenticate on a 403"
        );
        assert_json(&r);
    }
    // A bad token is still a 401 (it is not "unauthenticated", it is refused).
    let r = s.get_bearer("/api/auth/me/", "garbage").await;
    assert_401(&r, &bearer_error("Token is invalid"));
}

#[tokio::test]
async fn deactivated_user_loses_bearer_access_and_refresh() {
    let s = started_with_user(&[]);
    let (access, refresh) = s.token_pair("alice", PASSWORD).await;
    assert_eq!(s.get_bearer("/api/auth/me/", &access).await.status, 200);
    let out = s.cli(&["user", "deactivate", "alice"], "");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!stdout_of(&out).contains(PASSWORD));

    let r = s.get_bearer("/api/auth/me/", &access).await;
    assert_401(
        &r,
        &json!({"detail": "User is inactive", "code": "user_inactive"}),
    );
    let r = s
        .post_nr("/api/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"api\""));
    assert!(r.body["detail"].is_string(), "{}", r.body);
    // simplejwt 5.5's TokenRefreshSerializer answer for a disabled user.
    assert_eq!(
        r.body,
        json!({"detail": "No active account found for the given token.", "code": "no_active_account"})
    );
    assert_401(
        &s.post_nr("/api/token/", login_body("alice", PASSWORD))
            .await,
        &json!({"detail": NO_ACCOUNT}),
    );
}

#[tokio::test]
async fn set_password_revokes_refresh_tokens() {
    let s = started_with_user(&[]);
    let (_, refresh) = s.token_pair("alice", PASSWORD).await;
    let (_, refresh2) = s.token_pair("alice", PASSWORD).await;
    let new_pw = "a brand new passphrase";
    let out = s.cli(
        &["user", "set-password", "alice", "--password-stdin"],
        &format!("{new_pw}\n"),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!stdout_of(&out).contains(new_pw) && !stderr_of(&out).contains(new_pw));

    for t in [&refresh, &refresh2] {
        let r = s
            .post_nr("/api/token/refresh/", json!({"refresh": t}))
            .await;
        assert_401(&r, &token_error("Token is blacklisted"));
    }
    assert_401(
        &s.post_nr("/api/token/", login_body("alice", PASSWORD))
            .await,
        &json!({"detail": NO_ACCOUNT}),
    );
    let r = s.post_nr("/api/token/", login_body("alice", new_pw)).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// A 50-character Django `SECRET_KEY` (from Django's own alphabet).
const DJANGO_SECRET_KEY: &str = "x7(k!p2^v@q9#m$w&z*r-t_y=u+i0o3a8s4d6f1g5h%j)l+c*b";

fn django_access_token(user_id: Value, key: &str) -> String {
    // Exactly as simplejwt 5.5 + PyJWT encode an access token (PyJWT's header and key order).
    let now = unix_now();
    let payload = json!({
        "token_type": "access",
        "exp": now + 300,
        "iat": now,
        "jti": "3f2b8c1d9e0a4b5c6d7e8f9012345678",
        "user_id": user_id,
    });
    hs256_raw(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &payload.to_string(),
        key.as_bytes(),
    )
}

#[tokio::test]
async fn tokens_minted_by_django_with_the_same_secret_key_are_accepted() {
    assert_eq!(DJANGO_SECRET_KEY.len(), 50);
    let s = started_with_user(&[("SEKISHO_JWT__SIGNING_KEY", DJANGO_SECRET_KEY)]);
    let (own, _) = s.token_pair("alice", PASSWORD).await;
    let uid: i64 = claims(&own)["user_id"].as_str().unwrap().parse().unwrap();

    for user_id in [json!(uid.to_string()), json!(uid)] {
        let t = django_access_token(user_id.clone(), DJANGO_SECRET_KEY);
        let r = s.get_bearer("/api/auth/me/", &t).await;
        assert_eq!(r.status, 200, "user_id {user_id}: {}", r.body);
        assert_eq!(r.body["username"], "alice");
        assert_eq!(r.body["id"], json!(uid));
        let r = s.post_nr("/api/token/verify/", json!({"token": t})).await;
        assert_eq!(
            (r.status.as_u16(), &r.body),
            (200, &json!({})),
            "verify user_id {user_id}"
        );
    }
    // The same token under another key is refused.
    let forged = django_access_token(
        json!(uid.to_string()),
        "another-fifty-character-secret-key-0123456789abcde",
    );
    assert_401(
        &s.get_bearer("/api/auth/me/", &forged).await,
        &bearer_error("Token is invalid"),
    );
    // A Django token for a user that does not exist.
    let ghost = django_access_token(json!("999999"), DJANGO_SECRET_KEY);
    assert_401(
        &s.get_bearer("/api/auth/me/", &ghost).await,
        &json!({"detail": "User not found", "code": "user_not_found"}),
    );
}

#[tokio::test]
async fn health_readiness_and_openapi() {
    let s = Server::start(&[]);
    for path in ["/healthz", "/readyz"] {
        let r = s.send_nr(Method::GET, path, &[], None).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body, json!({"status": "ok"}));
        assert_json(&r);
    }
    let r = s.send_nr(Method::GET, "/api/openapi.json", &[], None).await;
    assert_eq!(r.status, 200);
    assert_json(&r);
    assert!(r.body.is_object(), "openapi.json is not JSON: {}", r.body);
    assert_eq!(r.body["openapi"], "3.1.0");
    let paths = r.body["paths"].as_object().expect("paths");
    for p in [
        "/api/token/",
        "/api/token/refresh/",
        "/api/token/verify/",
        "/api/token/blacklist/",
        "/api/auth/me/",
    ] {
        assert!(paths.contains_key(p), "openapi lacks {p}");
    }
}

#[tokio::test]
async fn issuer_audience_user_id_claim_and_algorithm_are_configurable() {
    let key = "configurable-claims-signing-key-0123456789";
    let s = started_with_user(&[
        ("SEKISHO_JWT__SIGNING_KEY", key),
        ("SEKISHO_JWT__ISSUER", "https://auth.example"),
        ("SEKISHO_JWT__AUDIENCE", "shop"),
        ("SEKISHO_JWT__USER_ID_CLAIM", "uid"),
        ("SEKISHO_JWT__ALGORITHM", "HS512"),
    ]);
    let (access, refresh) = s.token_pair("alice", PASSWORD).await;
    for t in [&access, &refresh] {
        let c = claims(t);
        assert_eq!(c["iss"], "https://auth.example", "{c}");
        assert_eq!(c["aud"], "shop", "{c}");
        assert!(c["uid"].is_string(), "{c}");
        assert!(c.get("user_id").is_none(), "{c}");
        assert_eq!(jwt_header(t)["alg"], "HS512");
    }
    assert_eq!(s.get_bearer("/api/auth/me/", &access).await.status, 200);
    let r = s
        .post_nr("/api/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // An HS256 token under the same key, with every claim right, is refused (one algorithm).
    let c = claims(&access);
    let hs256 = hs256_raw(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &c.to_string(),
        key.as_bytes(),
    );
    assert_401(
        &s.get_bearer("/api/auth/me/", &hs256).await,
        &bearer_error("Token is invalid"),
    );
    drop(s);

    // Missing or wrong audience / issuer are refused.

    let s = started_with_user(&[
        ("SEKISHO_JWT__SIGNING_KEY", key),
        ("SEKISHO_JWT__ISSUER", "https://auth.example"),
        ("SEKISHO_JWT__AUDIENCE", "shop"),
    ]);
    let (access, _) = s.token_pair("alice", PASSWORD).await;
    let good = claims(&access);
    let hs = |v: &Value| {
        hs256_raw(
            r#"{"alg":"HS256","typ":"JWT"}"#,
            &v.to_string(),
            key.as_bytes(),
        )
    };
    assert_eq!(s.get_bearer("/api/auth/me/", &hs(&good)).await.status, 200);
    let mut variants = Vec::new();
    for (k, v) in [
        ("aud", Some(json!("other"))),
        ("aud", None),
        ("iss", Some(json!("https://evil.example"))),
        ("iss", None),
    ] {
        let mut c = good.clone();
        match v {
            Some(v) => c[k] = v,
            None => {
                c.as_object_mut().unwrap().remove(k);
            }
        }
        variants.push(c);
    }
    for c in variants {
        assert_401(
            &s.get_bearer("/api/auth/me/", &hs(&c)).await,
            &bearer_error("Token is invalid"),
        );
        let r = s
            .post_nr("/api/token/verify/", json!({"token": hs(&c)}))
            .await;
        assert_401(&r, &token_error("Token is invalid"));
    }
    // An audience list containing ours is accepted, as PyJWT does.
    let mut c = good.clone();
    c["aud"] = json!(["other", "shop"]);
    assert_eq!(s.get_bearer("/api/auth/me/", &hs(&c)).await.status, 200);
}
