//! Second factors through the whole app, in process with the manual clock, on the backend
//! named by `SEKISHO_TEST_BACKEND`: TOTP enrolment, confirmation and removal; the gate on both
//! first-factor paths (no session cookie, no CSRF rotation and no tokens before the factor);
//! challenge expiry and single use; replay and the skew window; recovery codes; throttling;
//! bad input; `amr`/`auth_time`; the step-up rule of the forward-auth policy; and the
//! enrolment required of staff by `mfa.required_for_staff`.

use axum::http::Method;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use sekisho_core::Clock;
use sekisho_core::account::NewUser;
use sekisho_core::mfa::totp;
use sekisho_testing::harness::{Harness, PASSWORD, Reply};
use serde_json::{Value, json};
use std::time::Duration;

const STEP: Duration = Duration::from_secs(30);

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&B64.decode(payload).expect("base64")).expect("JSON claims")
}

/// The code an authenticator app shows now, `steps` steps away.
fn code(h: &Harness, secret: &[u8], steps: i64) -> String {
    totp::code_at_step(secret, totp::step_at(h.clock.now().secs()) + steps)
}

async fn bearer_post(h: &Harness, path: &str, token: &str, body: Value) -> Reply {
    let auth = format!("Bearer {token}");
    h.send(
        Method::POST,
        path,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(body.to_string().into_bytes()),
    )
    .await
}

/// Enrols and confirms TOTP for `user` (logged in by token); returns the secret and the
/// recovery codes. Moves the clock one step on, so the confirming code is not current.
async fn enrol(h: &Harness, user: &str) -> (Vec<u8>, Vec<String>) {
    let (access, _) = h.token_pair(user, PASSWORD).await;
    let r = bearer_post(h, "/api/auth/mfa/totp/", &access, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let secret = totp::from_base32(&r.str("secret")).expect("base32 secret");
    assert_eq!(secret.len(), 20);
    let r = bearer_post(
        h,
        "/api/auth/mfa/totp/confirm/",
        &access,
        json!({"code": code(h, &secret, 0)}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let codes: Vec<String> = r.body["recovery_codes"]
        .as_array()
        .expect("recovery codes")
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    h.advance(STEP);
    (secret, codes)
}

#[track_caller]
fn assert_mfa_required(r: &Reply) -> String {
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.body["code"], "mfa_required");
    assert_eq!(r.body["mfa_required"], true);
    assert_eq!(r.body["methods"], json!(["totp", "recovery"]));
    assert_eq!(r.body["expires_in"], 300);
    assert!(r.body.get("access").is_none() && r.body.get("refresh").is_none());
    assert!(r.body.get("user").is_none());
    assert!(
        r.headers.get_all("set-cookie").iter().next().is_none(),
        "no cookie before the second factor: {:?}",
        r.headers
    );
    r.str("challenge")
}

async fn token_challenge(h: &Harness, user: &str) -> String {
    let r = h
        .post_json(
            "/api/token/",
            json!({"username": user, "password": PASSWORD}),
        )
        .await;
    assert_mfa_required(&r)
}

#[tokio::test]
async fn totp_is_enrolled_confirmed_and_disabled() {
    let h = Harness::start(&[]).await;
    h.user("alice").await;
    let (access, _) = h.token_pair("alice", PASSWORD).await;
    let status = h.get_bearer("/api/auth/mfa/", &access).await;
    assert_eq!(status.status, 200);
    assert_eq!(
        status.body,
        json!({"totp": false, "totp_pending": false, "recovery_codes_left": 0, "methods": []})
    );

    let r = bearer_post(&h, "/api/auth/mfa/totp/", &access, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let uri = r.str("otpauth_uri");
    assert!(
        uri.starts_with("otpauth://totp/sekisho:alice?secret="),
        "{uri}"
    );
    assert!(uri.ends_with("&issuer=sekisho&algorithm=SHA1&digits=6&period=30"));
    assert!(r.str("qr_svg").contains("<svg"));
    let secret = totp::from_base32(&r.str("secret")).unwrap();
    // Pending: logins are not gated yet.
    h.token_pair("alice", PASSWORD).await;
    let pending = h.get_bearer("/api/auth/mfa/", &access).await;
    assert_eq!(pending.body["totp_pending"], true);
    assert_eq!(pending.body["totp"], false);

    let wrong = format!(
        "{:06}",
        (code(&h, &secret, 0).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    let r = bearer_post(
        &h,
        "/api/auth/mfa/totp/confirm/",
        &access,
        json!({"code": wrong}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"code": ["The code is incorrect or has already been used."]})
    );
    let r = bearer_post(
        &h,
        "/api/auth/mfa/totp/confirm/",
        &access,
        json!({"code": code(&h, &secret, 0)}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["recovery_codes"].as_array().unwrap().len(), 10);

    // Active: a second enrolment is refused until this one is disabled.
    let r = bearer_post(&h, "/api/auth/mfa/totp/", &access, json!({})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["code"], "mfa_already_enrolled");
    let status = h.get_bearer("/api/auth/mfa/", &access).await;
    assert_eq!(
        status.body,
        json!({"totp": true, "totp_pending": false, "recovery_codes_left": 10, "methods": ["totp", "recovery"]})
    );
    token_challenge(&h, "alice").await;

    // Disabling needs a current factor; the confirming code was used already.
    let r = bearer_post(&h, "/api/auth/mfa/totp/disable/", &access, json!({})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body, json!({"code": ["This field is required."]}));
    let r = bearer_post(
        &h,
        "/api/auth/mfa/totp/disable/",
        &access,
        json!({"code": code(&h, &secret, 0)}),
    )
    .await;
    assert_eq!(r.status, 400, "a used code does not disable: {}", r.body);
    h.advance(STEP);
    let r = bearer_post(
        &h,
        "/api/auth/mfa/totp/disable/",
        &access,
        json!({"code": code(&h, &secret, 0)}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let status = h.get_bearer("/api/auth/mfa/", &access).await;
    assert_eq!(status.body["totp"], false);
    assert_eq!(status.body["recovery_codes_left"], 0);
    // Back to a password-only login.
    h.token_pair("alice", PASSWORD).await;
    let r = bearer_post(
        &h,
        "/api/auth/mfa/totp/disable/",
        &access,
        json!({"code": "123456"}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["code"], "mfa_not_enrolled");
}

#[tokio::test]
async fn the_token_login_issues_nothing_before_the_factor_and_records_amr() {
    let h = Harness::start(&[]).await;
    h.user("alice").await;
    // Password-only logins say so.
    let (plain, _) = h.token_pair("alice", PASSWORD).await;
    assert_eq!(claims(&plain)["amr"], json!(["pwd"]));
    assert_eq!(claims(&plain)["auth_time"], h.clock.now().secs());

    let (secret, _) = enrol(&h, "alice").await;
    let challenge = token_challenge(&h, "alice").await;
    h.advance(Duration::from_secs(10));
    let r = h
        .post_json(
            "/api/token/mfa/",
            json!({"challenge": challenge, "code": code(&h, &secret, 0)}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["access", "refresh"]);
    let access = r.str("access");
    let c = claims(&access);
    assert_eq!(c["amr"], json!(["pwd", "otp"]));
    assert_eq!(c["auth_time"], h.clock.now().secs());
    assert_eq!(c["token_type"], "access");
    assert_eq!(h.get_bearer("/api/auth/me/", &access).await.status, 200);
    // A refresh keeps the login's method and time.
    h.advance(Duration::from_secs(60));
    let refreshed = h.refresh(&r.str("refresh")).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let rc = claims(&refreshed.str("access"));
    assert_eq!(rc["amr"], json!(["pwd", "otp"]));
    assert_eq!(rc["auth_time"], c["auth_time"]);
    assert_eq!(
        claims(&refreshed.str("refresh"))["amr"],
        json!(["pwd", "otp"])
    );

    // Single use: the same challenge logs in once.
    h.advance(STEP);
    let again = h
        .post_json(
            "/api/token/mfa/",
            json!({"challenge": challenge, "code": code(&h, &secret, 0)}),
        )
        .await;
    assert_eq!(again.status, 401);
    assert_eq!(again.body["code"], "mfa_challenge_invalid");
    assert_eq!(
        again.header("www-authenticate"),
        Some("Bearer realm=\"api\"")
    );
}

#[tokio::test]
async fn the_session_login_sets_no_cookie_before_the_factor() {
    let h = Harness::start(&[]).await;
    h.user("alice").await;
    let (secret, _) = enrol(&h, "alice").await;
    let mut b = h.browser();
    b.get("/api/auth/csrf/").await;
    let anonymous_csrf = b.csrf().expect("a CSRF cookie");
    let r = b
        .post(
            "/api/auth/login/",
            &json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    let challenge = assert_mfa_required(&r);
    assert_eq!(b.session(), None);
    assert_eq!(
        b.csrf(),
        Some(anonymous_csrf.clone()),
        "CSRF not rotated yet"
    );
    assert_eq!(b.get("/api/auth/me/").await.body["username"], Value::Null);

    // A token-flow completion does not take a session challenge.
    let r = h
        .post_json(
            "/api/token/mfa/",
            json!({"challenge": challenge, "code": code(&h, &secret, 0)}),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["code"], "mfa_challenge_invalid");

    let r = b
        .post(
            "/api/auth/login/mfa/",
            &json!({"challenge": challenge, "code": code(&h, &secret, 0)}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["user"]["username"], "alice");
    assert!(b.session().is_some());
    assert_ne!(b.csrf(), Some(anonymous_csrf), "CSRF rotated at login");
    let me = b.get("/api/auth/me/").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["username"], "alice");
}

#[tokio::test]
async fn the_session_completion_is_csrf_protected() {
    let h = Harness::start(&[]).await;
    h.user("alice").await;
    let (secret, _) = enrol(&h, "alice").await;
    let mut b = h.browser();
    let r = b.attempt_login("alice", PASSWORD).await;
    let challenge = assert_mfa_required(&r);
    // Without the CSRF cookie and header (a cross-site form post).
    let r = h
        .post_json(
            "/api/auth/login/mfa/",
            json!({"challenge": challenge, "code": code(&h, &secret, 0)}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"detail": "CSRF Failed: CSRF cookie not set."})
    );
}

#[tokio::test]
async fn a_challenge_expires() {
    let h = Harness::start(&[("SEKISHO_MFA__CHALLENGE_LIFETIME", "2m")]).await;
    h.user("alice").await;
    let (secret, _) = enrol(&h, "alice").await;
    let r = h
        .post_json(
            "/api/token/",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.body["expires_in"], 120);
    let challenge = r.str("challenge");
    h.advance(Duration::from_secs(120));
    let r = h
        .post_json(
            "/api/token/mfa/",
            json!({"challenge": challenge, "code": code(&h, &secret, 0)}),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.body["code"], "mfa_challenge_invalid");
    // Expired challenges are purged with the other expired state.
    assert!(h.auth.purge_expired().await.unwrap() >= 1);
}

#[tokio::test]
async fn a_code_counts_once_within_one_step_of_skew() {
    let h = Harness::start(&[]).await;
    h.user("alice").await;
    let (secret, _) = enrol(&h, "alice").await;
    let complete = |challenge: String, code: String| {
        let h = &h;
        async move {
            h.post_json(
                "/api/token/mfa/",
                json!({"challenge": challenge, "code": code}),
            )
            .await
        }
    };
    // One step on from the enrolment, so the step behind is not the confirming one.
    h.advance(STEP);
    // Two steps behind or ahead: refused (and the challenge stays usable).
    let c = token_challenge(&h, "alice").await;
    for steps in [-2, 2] {
        let r = complete(c.clone(), code(&h, &secret, steps)).await;
        assert_eq!(r.status, 401, "{steps}: {}", r.body);
        assert_eq!(r.body["code"], "mfa_code_invalid");
    }
    // One step behind: accepted.
    let behind = code(&h, &secret, -1);
    assert_eq!(complete(c, behind.clone()).await.status, 200);
    // The same code again: a replay.
    let c = token_challenge(&h, "alice").await;
    let r = complete(c.clone(), behind).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["code"], "mfa_code_invalid");
    // One step ahead: accepted; then the current step, older, no longer counts.
    let ahead = code(&h, &secret, 1);
    assert_eq!(complete(c, ahead).await.status, 200);
    let c = token_challenge(&h, "alice").await;
    assert_eq!(complete(c.clone(), code(&h, &secret, 0)).await.status, 401);
    h.advance(STEP * 2);
    assert_eq!(complete(c, code(&h, &secret, 0)).await.status, 200);
}

#[tokio::test]
async fn recovery_codes_work_once_and_are_replaced_on_request() {
    let h = Harness::start(&[]).await;
    h.user("alice").await;
    let (secret, codes) = enrol(&h, "alice").await;
    let c = token_challenge(&h, "alice").await;
    // Typed in upper case with spaces, as a user might.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let r = h
        .post_json(
            "/api/token/mfa/",
            json!({"challenge": c, "recovery_code": typed}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let access = r.str("access");
    assert_eq!(claims(&access)["amr"], json!(["pwd", "otp"]));
    let c = token_challenge(&h, "alice").await;
    let r = h
        .post_json(
            "/api/token/mfa/",
            json!({"challenge": c, "recovery_code": codes[0]}),
        )
        .await;
    assert_eq!(r.status, 401, "a recovery code works once: {}", r.body);
    assert_eq!(r.body["code"], "mfa_code_invalid");
    assert_eq!(
        h.get_bearer("/api/auth/mfa/", &access).await.body["recovery_codes_left"],
        9
    );

    // A new set needs a factor, and the old codes stop working.
    let r = bearer_post(&h, "/api/auth/mfa/recovery-codes/", &access, json!({})).await;
    assert_eq!(r.status, 400);
    let r = bearer_post(
        &h,
        "/api/auth/mfa/recovery-codes/",
        &access,
        json!({"code": code(&h, &secret, 0)}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let fresh = r.body["recovery_codes"].as_array().unwrap().clone();
    assert_eq!(fresh.len(), 10);
    let r = h
        .post_json(
            "/api/token/mfa/",
            json!({"challenge": c, "recovery_code": codes[1]}),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = h
        .post_json(
            "/api/token/mfa/",
            json!({"challenge": c, "recovery_code": fresh[0]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn wrong_codes_are_throttled_like_wrong_passwords() {
    let h = Harness::start(&[
        ("SEKISHO_THROTTLE__MAX_FAILURES_PER_ACCOUNT", "3"),
        ("SEKISHO_THROTTLE__LOCKOUT", "60s"),
    ])
    .await;
    h.user("alice").await;
    let (secret, _) = enrol(&h, "alice").await;
    let c = token_challenge(&h, "alice").await;
    let right = code(&h, &secret, 0);
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    for _ in 0..3 {
        let r = h
            .post_json("/api/token/mfa/", json!({"challenge": c, "code": wrong}))
            .await;
        assert_eq!(r.status, 401, "{}", r.body);
    }
    // Locked: even the right code is refused, and so is the password.
    let r = h
        .post_json("/api/token/mfa/", json!({"challenge": c, "code": right}))
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    let r = h
        .post_json(
            "/api/token/",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 429);
    h.advance(Duration::from_secs(60));
    let r = h
        .post_json(
            "/api/token/mfa/",
            json!({"challenge": c, "code": code(&h, &secret, 0)}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn a_correct_password_does_not_reset_the_count_of_wrong_codes() {
    let h = Harness::start(&[("SEKISHO_THROTTLE__MAX_FAILURES_PER_ACCOUNT", "3")]).await;
    h.user("alice").await;
    let (secret, _) = enrol(&h, "alice").await;
    let wrong = format!(
        "{:06}",
        (code(&h, &secret, 0).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    for _ in 0..3 {
        let c = token_challenge(&h, "alice").await;
        let r = h
            .post_json("/api/token/mfa/", json!({"challenge": c, "code": wrong}))
            .await;
        assert_eq!(r.status, 401);
    }
    let r = h
        .post_json(
            "/api/token/",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
}

#[tokio::test]
async fn bad_input_is_400_or_401_json_never_500() {
    let h = Harness::start(&[]).await;
    h.user("alice").await;
    let (secret, _) = enrol(&h, "alice").await;
    let c = token_challenge(&h, "alice").await;
    let now = code(&h, &secret, 0);
    let cases: Vec<(Value, u16, Value)> = vec![
        (
            json!({"code": now}),
            400,
            json!({"challenge": ["This field is required."]}),
        ),
        (
            json!({"challenge": c}),
            400,
            json!({"code": ["This field is required."]}),
        ),
        (
            json!({"challenge": c, "code": "12345a"}),
            400,
            json!({"code": ["Enter a valid 6-digit code."]}),
        ),
        (
            json!({"challenge": c, "code": "١٢٣٤٥٦"}),
            400,
            json!({"code": ["Enter a valid 6-digit code."]}),
        ),
        (
            json!({"challenge": c, "code": "123\u{0}56"}),
            400,
            json!({"code": ["Null characters are not allowed."]}),
        ),
        (
            json!({"challenge": "ab\u{0}cd", "code": now}),
            400,
            json!({"challenge": ["Null characters are not allowed."]}),
        ),
        (
            json!({"challenge": c, "code": [1, 2]}),
            400,
            json!({"code": ["Not a valid string."]}),
        ),
        (
            json!({"challenge": c, "recovery_code": "not-a-code"}),
            400,
            json!({"recovery_code": ["Enter a valid recovery code."]}),
        ),
        (
            json!({"challenge": c, "code": now, "recovery_code": "aaaaa-aaaaa-aaaaa-aaaaa"}),
            400,
            json!({"non_field_errors": ["Give exactly one of code and recovery_code."]}),
        ),
        (
            json!({"challenge": "garbage", "code": now}),
            401,
            json!({"detail": "The second-factor challenge is invalid or has expired.", "code": "mfa_challenge_invalid"}),
        ),
        (
            json!({"challenge": "0".repeat(32), "code": now}),
            401,
            json!({"detail": "The second-factor challenge is invalid or has expired.", "code": "mfa_challenge_invalid"}),
        ),
        (
            json!({"challenge": "é".repeat(5000), "code": now}),
            401,
            json!({"detail": "The second-factor challenge is invalid or has expired.", "code": "mfa_challenge_invalid"}),
        ),
    ];
    for (body, status, want) in cases {
        for path in ["/api/token/mfa/", "/api/token/mfa"] {
            let r = h.post_json(path, body.clone()).await;
            assert_eq!(r.status.as_u16(), status, "{path} {body}: {}", r.body);
            assert_eq!(r.body, want, "{path} {body}");
        }
    }
    let r = h
        .send(
            Method::POST,
            "/api/token/mfa/",
            &[("content-type", "application/json")],
            Some(b"{not json".to_vec()),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = h.send(Method::GET, "/api/token/mfa/", &[], None).await;
    assert_eq!(r.status, 405);
    // After all that, the untouched challenge still logs in (none of it was a wrong code).
    let r = h
        .post_json("/api/token/mfa/", json!({"challenge": c, "code": now}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The factor endpoints need a login.
    for path in [
        "/api/auth/mfa/totp/",
        "/api/auth/mfa/totp/confirm/",
        "/api/auth/mfa/totp/disable/",
        "/api/auth/mfa/recovery-codes/",
    ] {
        assert_eq!(h.post_json(path, json!({})).await.status, 401, "{path}");
    }
    assert_eq!(
        h.send(Method::GET, "/api/auth/mfa/", &[], None)
            .await
            .status,
        401
    );
}

const STEP_UP_POLICY: &str = r#"
[policy]
default = "authenticated"

[[policy.rules]]
path = "/admin/**"
require = "authenticated"
mfa_within = "15m"
"#;

#[tokio::test]
async fn the_forward_auth_policy_can_require_a_recent_second_factor() {
    let h = Harness::start_toml(
        STEP_UP_POLICY,
        &[("SEKISHO_SERVER__TRUSTED_PROXIES", "127.0.0.1")],
    )
    .await;
    h.user("alice").await;
    let (password_only, _) = h.token_pair("alice", PASSWORD).await;
    let check = |token: String, uri: &'static str| {
        let h = &h;
        async move {
            let auth = format!("Bearer {token}");
            h.send(
                Method::GET,
                "/api/auth/check/",
                &[("authorization", &auth), ("x-original-uri", uri)],
                None,
            )
            .await
        }
    };
    assert_eq!(check(password_only.clone(), "/shop/").await.status, 200);
    let r = check(password_only, "/admin/users").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"detail": "This action requires a recent second-factor login.", "code": "mfa_step_up_required"})
    );

    let (secret, _) = enrol(&h, "alice").await;
    let c = token_challenge(&h, "alice").await;
    let r = h
        .post_json(
            "/api/token/mfa/",
            json!({"challenge": c, "code": code(&h, &secret, 0)}),
        )
        .await;
    let (access, refresh) = (r.str("access"), r.str("refresh"));
    assert_eq!(check(access, "/admin/users").await.status, 200);
    // Fifteen minutes on, a refreshed token still says when the factor passed: too long ago.
    h.advance(Duration::from_secs(15 * 60 + 1));
    let fresh = h.refresh(&refresh).await.str("access");
    assert_eq!(check(fresh, "/admin/users").await.status, 403);

    // The same rule with a session.
    let mut b = h.browser();
    let r = b.attempt_login("alice", PASSWORD).await;
    let c = assert_mfa_required(&r);
    h.advance(STEP);
    let r = b
        .post(
            "/api/auth/login/mfa/",
            &json!({"challenge": c, "code": code(&h, &secret, 0)}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let cookie = format!("sessionid={}", b.session().unwrap());
    let r = h
        .send(
            Method::GET,
            "/api/auth/check/",
            &[("cookie", &cookie), ("x-original-uri", "/admin/x")],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    h.advance(Duration::from_secs(16 * 60));
    let r = h
        .send(
            Method::GET,
            "/api/auth/check/",
            &[("cookie", &cookie), ("x-original-uri", "/admin/x")],
            None,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
}

#[tokio::test]
async fn staff_without_a_factor_must_enrol_when_the_config_says_so() {
    let h = Harness::start(&[("SEKISHO_MFA__REQUIRED_FOR_STAFF", "true")]).await;
    h.user("alice").await;
    h.auth
        .create_user(
            &NewUser {
                username: "boss".into(),
                is_staff: true,
                ..Default::default()
            },
            PASSWORD,
        )
        .await
        .unwrap();
    // Ordinary users are not affected.
    h.token_pair("alice", PASSWORD).await;
    let r = h
        .post_json(
            "/api/token/",
            json!({"username": "boss", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.body["code"], "mfa_enrolment_required");
    assert_eq!(r.body["methods"], json!(["totp"]));
    assert!(r.body.get("access").is_none());
    let c = r.str("challenge");
    // The challenge starts the enrolment (no login yet) ...
    let e = h
        .post_json("/api/auth/mfa/totp/", json!({"challenge": c}))
        .await;
    assert_eq!(e.status, 200, "{}", e.body);
    let secret = totp::from_base32(&e.str("secret")).unwrap();
    // ... and confirming it completes the login, with the recovery codes shown once.
    let r = h
        .post_json(
            "/api/token/mfa/",
            json!({"challenge": c, "code": code(&h, &secret, 0)}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["recovery_codes"].as_array().unwrap().len(), 10);
    assert_eq!(claims(&r.str("access"))["amr"], json!(["pwd", "otp"]));
    // From now on the factor is asked for like anyone's.
    token_challenge(&h, "boss").await;
}

#[tokio::test]
async fn users_without_a_factor_log_in_as_before() {
    let h = Harness::start(&[]).await;
    h.user("alice").await;
    let mut b = h.browser();
    let r = b.login("alice", PASSWORD).await;
    assert!(b.session().is_some());
    assert_eq!(r.body["user"]["username"], "alice");
    let (access, refresh) = h.token_pair("alice", PASSWORD).await;
    assert_eq!(h.get_bearer("/api/auth/me/", &access).await.status, 200);
    assert_eq!(h.refresh(&refresh).await.status, 200);
}

/// `GET /api/auth/check/` for `/admin/…` (the step-up rule of [`STEP_UP_POLICY`]) with `auth`
/// as the one credential header.
async fn admin_check(h: &Harness, auth: (&str, &str)) -> Reply {
    h.send(
        Method::GET,
        "/api/auth/check/",
        &[auth, ("x-original-uri", "/admin/users")],
        None,
    )
    .await
}

#[tokio::test]
async fn a_step_up_makes_a_live_login_count_as_a_second_factor() {
    let h = Harness::start_toml(
        STEP_UP_POLICY,
        &[
            ("SEKISHO_SERVER__TRUSTED_PROXIES", "127.0.0.1"),
            // Access tokens outlive the rule's 15 minutes here, so age is what is judged.
            ("SEKISHO_JWT__ACCESS_TOKEN_LIFETIME", "2h"),
        ],
    )
    .await;
    h.user("alice").await;
    h.user("bob").await;
    let (secret, mut recovery) = enrol(&h, "alice").await;

    // Bearer: a second-factor login, too long ago for the rule.
    let c = token_challenge(&h, "alice").await;
    let r = h
        .post_json(
            "/api/token/mfa/",
            json!({"challenge": c, "code": code(&h, &secret, 0)}),
        )
        .await;
    let (access, refresh) = (r.str("access"), r.str("refresh"));
    h.advance(Duration::from_secs(16 * 60));
    let auth = format!("Bearer {access}");
    assert_eq!(admin_check(&h, ("authorization", &auth)).await.status, 403);

    // A used code, a wrong code and bad input step nothing up.
    let r = bearer_post(&h, "/api/auth/mfa/step-up/", &access, json!({})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body, json!({"code": ["This field is required."]}));
    let now = code(&h, &secret, 0);
    let wrong = format!("{:06}", (now.parse::<u32>().unwrap() + 1) % 1_000_000);
    let r = bearer_post(
        &h,
        "/api/auth/mfa/step-up/",
        &access,
        json!({"code": wrong}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"code": ["The code is incorrect or has already been used."]})
    );
    let r = bearer_post(
        &h,
        "/api/auth/mfa/step-up/",
        &access,
        json!({"code": "12\u{0}456"}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);

    let r = bearer_post(&h, "/api/auth/mfa/step-up/", &access, json!({"code": now})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.get("refresh").is_none(), "{}", r.body);
    let stepped = r.str("access");
    let (old, new) = (claims(&access), claims(&stepped));
    assert_eq!(new["amr"], json!(["pwd", "otp"]));
    assert_eq!(new["auth_time"], json!(h.clock.now().secs()));
    assert_eq!(new["user_id"], old["user_id"]);
    assert_eq!(new["fid"], old["fid"], "the same login, not a new one");
    let auth = format!("Bearer {stepped}");
    assert_eq!(admin_check(&h, ("authorization", &auth)).await.status, 200);
    // The same code again is a replay.
    let r = bearer_post(&h, "/api/auth/mfa/step-up/", &stepped, json!({"code": now})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    // The family's refresh still works and keeps the login's own method.
    let fresh = h.refresh(&refresh).await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    let auth = format!("Bearer {}", fresh.str("access"));
    assert_eq!(admin_check(&h, ("authorization", &auth)).await.status, 403);

    // Session: a password-and-code login, too old; a recovery code steps it up.
    let mut b = h.browser();
    let c = assert_mfa_required(&b.attempt_login("alice", PASSWORD).await);
    h.advance(STEP);
    let r = b
        .post(
            "/api/auth/login/mfa/",
            &json!({"challenge": c, "code": code(&h, &secret, 0)}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    h.advance(Duration::from_secs(16 * 60));
    let old_cookie = format!("sessionid={}", b.session().unwrap());
    assert_eq!(admin_check(&h, ("cookie", &old_cookie)).await.status, 403);
    // CSRF-protected like every session write.
    let r = h
        .send(
            Method::POST,
            "/api/auth/mfa/step-up/",
            &[
                ("cookie", &old_cookie),
                ("content-type", "application/json"),
            ],
            Some(
                json!({"recovery_code": recovery[0]})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = b
        .post(
            "/api/auth/mfa/step-up/",
            &json!({"recovery_code": recovery[0]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, json!({}));
    recovery.remove(0);
    let new_cookie = format!("sessionid={}", b.session().unwrap());
    assert_ne!(new_cookie, old_cookie, "a step-up is a new session id");
    assert_eq!(admin_check(&h, ("cookie", &new_cookie)).await.status, 200);
    assert_eq!(admin_check(&h, ("cookie", &old_cookie)).await.status, 401);
    assert_eq!(b.get("/api/auth/me/").await.str("username"), "alice");
    h.advance(Duration::from_secs(16 * 60));
    assert_eq!(admin_check(&h, ("cookie", &new_cookie)).await.status, 403);

    // Without a factor there is nothing to step up with; without a login, nothing to step up.
    let (bob, _) = h.token_pair("bob", PASSWORD).await;
    let r = bearer_post(
        &h,
        "/api/auth/mfa/step-up/",
        &bob,
        json!({"code": "123456"}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["code"], "mfa_not_enrolled");
    let r = h
        .post_json("/api/auth/mfa/step-up/", json!({"code": "123456"}))
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
}

#[tokio::test]
async fn adding_or_removing_a_factor_ends_every_other_login() {
    let h = Harness::start(&[]).await;
    h.user("alice").await;
    // Logins from before the factor: a session and a token pair elsewhere.
    let mut elsewhere = h.browser();
    elsewhere.login("alice", PASSWORD).await;
    let (_, other_refresh) = h.token_pair("alice", PASSWORD).await;

    // Enrolment from a session: that session continues under a new id.
    let mut b = h.browser();
    b.login("alice", PASSWORD).await;
    let before = b.session().unwrap();
    let r = b.post("/api/auth/mfa/totp/", &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let secret = totp::from_base32(&r.str("secret")).unwrap();
    let r = b
        .post(
            "/api/auth/mfa/totp/confirm/",
            &json!({"code": code(&h, &secret, 0)}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["recovery_codes"].as_array().unwrap().len(), 10);
    assert!(r.body.get("access").is_none(), "{}", r.body);
    assert_ne!(b.session().unwrap(), before);
    assert_eq!(b.get("/api/auth/me/").await.status, 200);
    assert_eq!(elsewhere.get("/api/auth/me/").await.status, 401);
    assert_eq!(h.refresh(&other_refresh).await.status, 401);
    h.advance(STEP);

    // Two token logins with the factor; one of them removes it and gets a new pair.
    let mut pairs = Vec::new();
    for _ in 0..2 {
        let c = token_challenge(&h, "alice").await;
        let r = h
            .post_json(
                "/api/token/mfa/",
                json!({"challenge": c, "code": code(&h, &secret, 0)}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        pairs.push((r.str("access"), r.str("refresh")));
        h.advance(STEP);
    }
    let r = bearer_post(
        &h,
        "/api/auth/mfa/totp/disable/",
        &pairs[0].0,
        json!({"code": code(&h, &secret, 0)}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (access, refresh) = (r.str("access"), r.str("refresh"));
    assert_eq!(claims(&access)["amr"], json!(["pwd", "otp"]));
    for (_, old) in &pairs {
        assert_eq!(h.refresh(old).await.status, 401, "an older family ended");
    }
    assert_eq!(b.get("/api/auth/me/").await.status, 401);
    assert_eq!(h.refresh(&refresh).await.status, 200);
    assert_eq!(h.get_bearer("/api/auth/me/", &access).await.status, 200);
    // Recovery codes renewed are no factor change: nothing ends.
    let r = bearer_post(&h, "/api/auth/mfa/totp/", &access, json!({})).await;
    let secret = totp::from_base32(&r.str("secret")).unwrap();
    h.advance(STEP);
    let r = bearer_post(
        &h,
        "/api/auth/mfa/totp/confirm/",
        &access,
        json!({"code": code(&h, &secret, 0)}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (access, refresh) = (r.str("access"), r.str("refresh"));
    h.advance(STEP);
    let r = bearer_post(
        &h,
        "/api/auth/mfa/recovery-codes/",
        &access,
        json!({"code": code(&h, &secret, 0)}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.get("access").is_none(), "{}", r.body);
    assert_eq!(h.refresh(&refresh).await.status, 200);
}
