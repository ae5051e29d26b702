//! Passkeys through the whole app, in process with the manual clock, on the backend named by
//! `SEKISHO_TEST_BACKEND`: off unless configured; every new endpoint's bad input (never a
//! 500); ceremonies single use, short-lived and bound to their user, kind and challenge; CSRF on
//! the session-mode calls; nothing (no cookie, no token) issued before an assertion passes;
//! unknown names answered like known ones. The ceremonies with a real authenticator run in
//! Chromium (tests/browser/passkeys.test.mjs).

use axum::http::Method;
use sekisho_core::Clock;
use sekisho_core::mfa::totp;
use sekisho_testing::harness::{Harness, PASSWORD, Reply};
use serde_json::{Value, json};
use std::time::Duration;

const RP: [(&str, &str); 3] = [
    ("SEKISHO_WEBAUTHN__RP_ID", "localhost"),
    ("SEKISHO_WEBAUTHN__RP_NAME", "sekisho tests"),
    ("SEKISHO_WEBAUTHN__ORIGINS", "http://localhost:8000"),
];

async fn start() -> Harness {
    Harness::start(&RP).await
}

async fn bearer(h: &Harness, method: Method, path: &str, token: &str, body: &[u8]) -> Reply {
    let auth = format!("Bearer {token}");
    h.send(
        method,
        path,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(body.to_vec()),
    )
    .await
}

#[track_caller]
fn assert_nothing_issued(r: &Reply) {
    assert!(
        r.headers.get_all("set-cookie").iter().next().is_none(),
        "no cookie: {:?}",
        r.headers
    );
    assert!(r.body.get("access").is_none() && r.body.get("refresh").is_none());
    assert!(r.body.get("user").is_none(), "{}", r.body);
}

#[track_caller]
fn assert_json_4xx(r: &Reply, what: &str) {
    assert!(
        r.status.is_client_error(),
        "{what}: {} {}",
        r.status,
        r.body
    );
    assert!(r.body.is_object(), "{what}: a JSON body, got {}", r.body);
}

/// A well-formed answer no authenticator made: parses as a credential, verifies as nothing.
fn forged_assertion() -> Value {
    json!({
        "id": "AAAAAAAAAAAAAAAAAAAAAA",
        "rawId": "AAAAAAAAAAAAAAAAAAAAAA",
        "type": "public-key",
        "response": {
            "clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0In0",
            "authenticatorData": "AAAA",
            "signature": "AAAA",
            "userHandle": null
        },
        "extensions": {}
    })
}

#[tokio::test]
async fn passkeys_are_off_unless_configured() {
    let h = Harness::start(&[]).await;
    h.user("alice").await;
    let (access, _) = h.token_pair("alice", PASSWORD).await;
    let r = bearer(
        &h,
        Method::POST,
        "/api/auth/mfa/passkeys/register/begin/",
        &access,
        b"{}",
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.body["code"], "passkeys_disabled");
    let r = h
        .post_json("/api/token/passkey/begin/", json!({"username": "alice"}))
        .await;
    assert_eq!(r.status, 404);
    // The factor list and the gate are as before.
    let r = h.get_bearer("/api/auth/mfa/", &access).await;
    assert_eq!(r.body["methods"], json!([]));
}

#[tokio::test]
async fn an_invalid_relying_party_is_refused_at_start_up_in_one_line() {
    for (env, key) in [
        (
            vec![
                ("SEKISHO_WEBAUTHN__RP_ID", "example.com"),
                ("SEKISHO_WEBAUTHN__ORIGINS", "https://example.org"),
            ],
            "webauthn.origins",
        ),
        (
            vec![("SEKISHO_WEBAUTHN__RP_ID", "example.com")],
            "webauthn.origins",
        ),
        (
            vec![("SEKISHO_WEBAUTHN__ORIGINS", "https://example.com")],
            "webauthn.rp_id",
        ),
        (
            vec![
                ("SEKISHO_WEBAUTHN__RP_ID", "example.com"),
                ("SEKISHO_WEBAUTHN__ORIGINS", "https://example.com/login"),
            ],
            "webauthn.origins",
        ),
    ] {
        let vars = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let e = sekisho_core::Config::load("", vars).expect_err("refused");
        let msg = e.to_string();
        assert!(msg.starts_with(key), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
}

#[tokio::test]
async fn registration_options_and_a_ceremony_used_once() {
    let h = start().await;
    h.user("alice").await;
    let (access, _) = h.token_pair("alice", PASSWORD).await;
    let begin = "/api/auth/mfa/passkeys/register/begin/";
    let finish = "/api/auth/mfa/passkeys/register/finish/";
    let r = bearer(&h, Method::POST, begin, &access, b"{}").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let pk = &r.body["options"]["publicKey"];
    assert_eq!(pk["rp"]["id"], "localhost");
    assert_eq!(pk["rp"]["name"], "sekisho tests");
    assert_eq!(pk["user"]["name"], "alice");
    assert!(pk["challenge"].as_str().is_some_and(|c| c.len() >= 43));
    assert!(pk.get("hints").is_none());
    let ceremony = r.str("ceremony");
    assert!(sekisho_core::random::is_hex128(&ceremony));

    // A malformed answer uses the ceremony up.
    let body = json!({"ceremony": ceremony, "name": "laptop", "credential": {"id": 1}});
    let r = bearer(
        &h,
        Method::POST,
        finish,
        &access,
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body["credential"].is_array(), "{}", r.body);
    let body = json!({"ceremony": ceremony, "name": "laptop", "credential": forged_assertion()});
    let r = bearer(
        &h,
        Method::POST,
        finish,
        &access,
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body["ceremony"].is_array(), "used once: {}", r.body);

    // Another user cannot finish alice's ceremony.
    h.user("bob").await;
    let (bob, _) = h.token_pair("bob", PASSWORD).await;
    let r = bearer(&h, Method::POST, begin, &access, b"{}").await;
    let body =
        json!({"ceremony": r.str("ceremony"), "name": "x", "credential": forged_assertion()});
    let r = bearer(&h, Method::POST, finish, &bob, body.to_string().as_bytes()).await;
    assert_eq!(r.status, 400);
    assert!(r.body["ceremony"].is_array(), "{}", r.body);

    // Expired: driven by the manual clock.
    let r = bearer(&h, Method::POST, begin, &access, b"{}").await;
    let ceremony = r.str("ceremony");
    h.advance(Duration::from_secs(301));
    let (access, _) = h.token_pair("alice", PASSWORD).await;
    let body = json!({"ceremony": ceremony, "name": "x", "credential": forged_assertion()});
    let r = bearer(
        &h,
        Method::POST,
        finish,
        &access,
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body["ceremony"].is_array(), "expired: {}", r.body);

    let r = h.get_bearer("/api/auth/mfa/passkeys/", &access).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"passkeys": []}));
}

#[tokio::test]
async fn bad_input_on_every_endpoint_is_a_json_4xx_never_500() {
    let h = start().await;
    h.user("alice").await;
    let (access, _) = h.token_pair("alice", PASSWORD).await;
    let unknown = sekisho_core::random::hex128();
    let bodies: Vec<Vec<u8>> = vec![
        b"{not json".to_vec(),
        b"[]".to_vec(),
        b"\"text\"".to_vec(),
        b"{}".to_vec(),
        json!({"ceremony": 5, "credential": "x", "name": [], "username": {}, "challenge": true})
            .to_string()
            .into_bytes(),
        json!({"ceremony": null, "credential": null, "name": null, "username": null, "challenge": null})
            .to_string()
            .into_bytes(),
        json!({"ceremony": "a\u{0}b", "credential": {"id": "\u{0}"}, "name": "n\u{0}", "username": "a\u{0}", "challenge": "\u{0}"})
            .to_string()
            .into_bytes(),
        json!({"ceremony": unknown, "credential": forged_assertion(), "name": "k", "username": "nobody", "challenge": unknown})
            .to_string()
            .into_bytes(),
        json!({"ceremony": "not-hex", "credential": [1, 2], "name": "x".repeat(65), "username": "", "challenge": "zz"})
            .to_string()
            .into_bytes(),
        json!({"ceremony": unknown, "credential": {"id": "x", "rawId": "x", "type": "public-key", "response": 7}, "name": " "})
            .to_string()
            .into_bytes(),
    ];
    let posts = [
        "/api/auth/mfa/passkeys/register/begin/",
        "/api/auth/mfa/passkeys/register/finish/",
        "/api/auth/login/passkey/begin/",
        "/api/auth/login/passkey/",
        "/api/auth/login/mfa/passkey/",
        "/api/token/passkey/begin/",
        "/api/token/passkey/",
        "/api/token/mfa/passkey/",
        "/api/token/mfa/",
    ];
    for path in posts {
        for body in &bodies {
            let r = bearer(&h, Method::POST, path, &access, body).await;
            let text = String::from_utf8_lossy(body);
            if r.status == 200 {
                // Only the begins answer 200: options, never a login.
                assert!(
                    path.ends_with("begin/") || path.ends_with("mfa/passkey/"),
                    "{path} {text}"
                );
                assert!(
                    r.body["options"]["publicKey"].is_object(),
                    "{path} {text}: {}",
                    r.body
                );
            } else {
                assert_json_4xx(&r, &format!("{path} {text}"));
            }
            assert_nothing_issued(&r);
            // Also anonymous (no bearer): still JSON, still no 500.
            let r = h
                .send(
                    Method::POST,
                    path,
                    &[("content-type", "application/json")],
                    Some(body.clone()),
                )
                .await;
            assert!(
                r.status.as_u16() < 500,
                "{path} {text}: {} {}",
                r.status,
                r.body
            );
            assert!(r.body.is_object());
        }
    }
    for body in &bodies {
        for method in [Method::PATCH, Method::DELETE] {
            for id in [unknown.as_str(), "not-an-id", "%00", "a%20b"] {
                let path = format!("/api/auth/mfa/passkeys/{id}/");
                let r = bearer(&h, method.clone(), &path, &access, body).await;
                assert_json_4xx(&r, &format!("{method} {path}"));
            }
        }
    }
}

#[tokio::test]
async fn the_passwordless_begin_looks_the_same_for_unknown_names_and_issues_nothing() {
    // alice exists without a key, nobody does not exist: neither answer tells (the browser
    // test compares with a user who has a key).
    let h = start().await;
    h.user("alice").await;
    let a = h
        .post_json("/api/token/passkey/begin/", json!({"username": "alice"}))
        .await;
    let b = h
        .post_json("/api/token/passkey/begin/", json!({"username": "nobody"}))
        .await;
    for r in [&a, &b] {
        assert_eq!(r.status, 200, "{}", r.body);
        assert_nothing_issued(r);
        let pk = &r.body["options"]["publicKey"];
        assert_eq!(pk["rpId"], "localhost");
        assert_eq!(pk["allowCredentials"].as_array().map(Vec::len), Some(1));
        assert_eq!(pk["userVerification"], "preferred");
    }
    let keys = |r: &Reply| {
        let mut k: Vec<String> = r.body["options"]["publicKey"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys(&a), keys(&b));
    // The same name gets the same decoy key twice (a real key would not change either).
    let again = h
        .post_json("/api/token/passkey/begin/", json!({"username": "nobody"}))
        .await;
    assert_eq!(
        again.body["options"]["publicKey"]["allowCredentials"],
        b.body["options"]["publicKey"]["allowCredentials"]
    );
    // Finishing either: refused, nothing issued, and each ceremony is gone afterwards.
    for r in [&a, &b] {
        let body = json!({"ceremony": r.str("ceremony"), "credential": forged_assertion()});
        let f = h.post_json("/api/token/passkey/", body.clone()).await;
        assert_eq!(f.status, 401, "{}", f.body);
        assert_nothing_issued(&f);
        let f = h.post_json("/api/token/passkey/", body).await;
        assert_eq!(f.status, 401);
        assert_eq!(f.body["code"], "passkey_ceremony_invalid", "{}", f.body);
    }
    // A token ceremony is not a session one.
    let r = h
        .post_json("/api/token/passkey/begin/", json!({"username": "alice"}))
        .await;
    let mut browser = h.browser();
    browser.get("/api/auth/csrf/").await;
    let f = browser
        .post(
            "/api/auth/login/passkey/",
            &json!({"ceremony": r.str("ceremony"), "credential": forged_assertion()}),
        )
        .await;
    assert_eq!(f.status, 401);
    assert_eq!(f.body["code"], "passkey_ceremony_invalid");
    assert!(browser.session().is_none());
}

#[tokio::test]
async fn session_mode_calls_are_csrf_protected() {
    let h = start().await;
    h.user("alice").await;
    let mut browser = h.browser();
    browser.login("alice", PASSWORD).await;
    let session = browser.session().expect("a session");
    let csrf = browser.csrf().expect("a CSRF token");
    let cookie = format!("sessionid={session}; csrftoken={csrf}");
    let unknown = sekisho_core::random::hex128();
    let cases: Vec<(Method, String)> = vec![
        (
            Method::POST,
            "/api/auth/mfa/passkeys/register/begin/".into(),
        ),
        (
            Method::POST,
            "/api/auth/mfa/passkeys/register/finish/".into(),
        ),
        (Method::PATCH, format!("/api/auth/mfa/passkeys/{unknown}/")),
        (Method::DELETE, format!("/api/auth/mfa/passkeys/{unknown}/")),
        (Method::POST, "/api/auth/login/passkey/begin/".into()),
        (Method::POST, "/api/auth/login/passkey/".into()),
        (Method::POST, "/api/auth/login/mfa/passkey/".into()),
        (Method::POST, "/api/auth/login/mfa/".into()),
    ];
    let body = json!({"username": "alice", "ceremony": unknown, "challenge": unknown, "name": "n", "credential": forged_assertion()}).to_string();
    for (method, path) in &cases {
        for headers in [
            vec![
                ("cookie", cookie.as_str()),
                ("content-type", "application/json"),
            ],
            vec![
                ("cookie", cookie.as_str()),
                ("content-type", "application/json"),
                (
                    "x-csrftoken",
                    "wrong-token-wrong-token-wrong-token-wrong-token-wrong-token12",
                ),
            ],
        ] {
            let r = h
                .send(
                    method.clone(),
                    path,
                    &headers,
                    Some(body.clone().into_bytes()),
                )
                .await;
            assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
            assert!(
                r.body["detail"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("CSRF Failed"),
                "{method} {path}: {}",
                r.body
            );
            assert_nothing_issued(&r);
        }
    }
    // With the header the same calls get past CSRF (the begin answers options).
    let r = browser
        .post("/api/auth/mfa/passkeys/register/begin/", &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Enrols TOTP for `user` (by token) so its password login answers a challenge.
async fn enrol_totp(h: &Harness, user: &str) -> Vec<u8> {
    let (access, _) = h.token_pair(user, PASSWORD).await;
    let r = bearer(h, Method::POST, "/api/auth/mfa/totp/", &access, b"{}").await;
    let secret = totp::from_base32(&r.str("secret")).expect("base32");
    let code = totp::code_at_step(&secret, totp::step_at(h.clock.now().secs()));
    let body = json!({ "code": code }).to_string();
    let r = bearer(
        h,
        Method::POST,
        "/api/auth/mfa/totp/confirm/",
        &access,
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    h.advance(Duration::from_secs(30));
    secret
}

#[tokio::test]
async fn a_challenge_ceremony_belongs_to_its_challenge_and_issues_nothing_until_it_passes() {
    let h = start().await;
    h.user("alice").await;
    h.user("bob").await;
    enrol_totp(&h, "alice").await;
    enrol_totp(&h, "bob").await;
    let first = |user: &'static str| {
        let h = &h;
        async move {
            let r = h
                .post_json(
                    "/api/token/",
                    json!({"username": user, "password": PASSWORD}),
                )
                .await;
            assert_eq!(r.status, 401);
            // No passkey: the challenge offers the codes only.
            assert_eq!(r.body["methods"], json!(["totp", "recovery"]));
            r.str("challenge")
        }
    };
    let alice = first("alice").await;
    let bob = first("bob").await;
    let r = h
        .post_json("/api/token/mfa/passkey/", json!({"challenge": alice}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_nothing_issued(&r);
    let ceremony = r.str("ceremony");
    // Bob's challenge with alice's ceremony: refused, and alice's ceremony is used up.
    let f = h
        .post_json(
            "/api/token/mfa/",
            json!({"challenge": bob, "ceremony": ceremony, "credential": forged_assertion()}),
        )
        .await;
    assert_eq!(f.status, 401, "{}", f.body);
    assert_nothing_issued(&f);
    let f = h
        .post_json(
            "/api/token/mfa/",
            json!({"challenge": alice, "ceremony": ceremony, "credential": forged_assertion()}),
        )
        .await;
    assert_eq!(f.status, 401, "{}", f.body);
    assert_eq!(f.body["code"], "passkey_ceremony_invalid");
    assert_nothing_issued(&f);
    // A ceremony of the token flow does not answer a session challenge's begin.
    let f = h
        .post_json("/api/auth/login/mfa/passkey/", json!({"challenge": alice}))
        .await;
    assert!(f.status == 403 || f.status == 401, "{}", f.body);
    // The begin of an unknown or expired challenge.
    let f = h
        .post_json(
            "/api/token/mfa/passkey/",
            json!({"challenge": sekisho_core::random::hex128()}),
        )
        .await;
    assert_eq!(f.status, 401);
    assert_eq!(f.body["code"], "mfa_challenge_invalid");
    h.advance(Duration::from_secs(301));
    let f = h
        .post_json("/api/token/mfa/passkey/", json!({"challenge": bob}))
        .await;
    assert_eq!(f.status, 401);
    assert_eq!(f.body["code"], "mfa_challenge_invalid");
}

#[tokio::test]
async fn a_new_key_on_an_account_with_a_factor_needs_a_recent_second_factor() {
    let h = Harness::start(&[
        RP[0],
        RP[1],
        RP[2],
        ("SEKISHO_JWT__ACCESS_TOKEN_LIFETIME", "2h"),
    ])
    .await;
    h.user("alice").await;
    h.user("bob").await;
    let begin = "/api/auth/mfa/passkeys/register/begin/";
    // No factor yet: a password login may add the first one.
    let (bob, _) = h.token_pair("bob", PASSWORD).await;
    let r = bearer(&h, Method::POST, begin, &bob, b"{}").await;
    assert_eq!(r.status, 200, "{}", r.body);

    // A password-only login (from before the factor) must not plant a key of its own.
    let (password_only, _) = h.token_pair("alice", PASSWORD).await;
    let secret = enrol_totp(&h, "alice").await;
    let r = bearer(&h, Method::POST, begin, &password_only, b"{}").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.body["code"], "mfa_step_up_required");
    let finish = json!({"ceremony": "0".repeat(32), "credential": {}, "name": "x"}).to_string();
    let r = bearer(
        &h,
        Method::POST,
        "/api/auth/mfa/passkeys/register/finish/",
        &password_only,
        finish.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 403, "the finish checks it too: {}", r.body);

    // A step-up makes it possible; sixteen minutes later it is stale again.
    let code = totp::code_at_step(&secret, totp::step_at(h.clock.now().secs()));
    let body = json!({ "code": code }).to_string();
    let r = bearer(
        &h,
        Method::POST,
        "/api/auth/mfa/step-up/",
        &password_only,
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let stepped = r.str("access");
    let r = bearer(&h, Method::POST, begin, &stepped, b"{}").await;
    assert_eq!(r.status, 200, "{}", r.body);
    h.advance(Duration::from_secs(16 * 60));
    let r = bearer(&h, Method::POST, begin, &stepped, b"{}").await;
    assert_eq!(r.status, 403, "{}", r.body);
}
