//! Everything that depends on time passing — token lifetimes, the grace window, family idle and
//! absolute lifetimes, session idle and absolute timeouts, login lockouts — driven through the
//! whole app in-process with a manual clock. Nothing sleeps, so nothing here can flake on a
//! loaded machine. Runs on the backend named by `SEKISHO_TEST_BACKEND` (scripts/test.sh runs it
//! on SQLite, PostgreSQL and PostgreSQL + Redis).

use axum::http::Method;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use sekisho_testing::harness::{Harness, PASSWORD, Reply, SIGNING_KEY};
use serde_json::{Value, json};
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&B64.decode(payload).expect("base64")).expect("JSON claims")
}

fn lifetime(token: &str) -> i64 {
    let c = claims(token);
    c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap()
}

fn token_error(message: &str) -> Value {
    json!({"detail": message, "code": "token_not_valid"})
}

fn bearer_error(message: &str) -> Value {
    json!({
        "detail": "Given token not valid for any token type",
        "code": "token_not_valid",
        "messages": [{"token_class": "AccessToken", "token_type": "access", "message": message}],
    })
}

#[track_caller]
fn assert_401(r: &Reply, body: &Value) {
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(&r.body, body);
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"api\""));
}

#[track_caller]
fn ok_refresh(r: &Reply) -> String {
    assert_eq!(r.status, 200, "refresh failed: {}", r.body);
    r.str("refresh")
}

async fn with_alice(env: &[(&str, &str)]) -> Harness {
    let h = Harness::start(env).await;
    h.user("alice").await;
    h
}

// ---------------------------------------------------------------------------------------------
// Access tokens
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_access_token_expires_at_its_lifetime_and_the_refresh_token_outlives_it() {
    let h = with_alice(&[("SEKISHO_JWT__ACCESS_TOKEN_LIFETIME", "5m")]).await;
    let (access, refresh) = h.token_pair("alice", PASSWORD).await;
    assert_eq!(lifetime(&access), 300);
    h.advance(secs(299));
    assert_eq!(h.get_bearer("/api/auth/me/", &access).await.status, 200);
    h.advance(secs(2));
    assert_401(
        &h.post_json("/api/token/verify/", json!({"token": access}))
            .await,
        &token_error("Token is expired"),
    );
    assert_401(
        &h.get_bearer("/api/auth/me/", &access).await,
        &bearer_error("Token is expired"),
    );
    // The refresh token (1 day) still gets a fresh access token, valid for its own 5 minutes.
    let r = h.refresh(&refresh).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let fresh = r.str("access");
    h.advance(secs(299));
    assert_eq!(h.get_bearer("/api/auth/me/", &fresh).await.status, 200);
}

// ---------------------------------------------------------------------------------------------
// The grace window
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn reuse_after_grace_revokes_only_that_family() {
    let h = with_alice(&[("SEKISHO_JWT__REUSE_GRACE", "10s")]).await;
    let (_, a) = h.token_pair("alice", PASSWORD).await;
    let (_, other) = h.token_pair("alice", PASSWORD).await;
    let b = ok_refresh(&h.refresh(&a).await);
    // Within the window the predecessor still agrees, to the byte.
    h.advance(secs(9));
    assert_eq!(ok_refresh(&h.refresh(&a).await), b);
    h.advance(secs(2));

    let blacklisted = token_error("Token is blacklisted");
    assert_401(&h.refresh(&a).await, &blacklisted);
    // Theft detection: the legitimate holder of B is logged out too.
    assert_401(&h.refresh(&b).await, &blacklisted);
    assert_401(
        &h.post_json("/api/token/verify/", json!({"token": b})).await,
        &blacklisted,
    );
    // Another login of the same user keeps working.
    let o2 = ok_refresh(&h.refresh(&other).await);
    ok_refresh(&h.refresh(&o2).await);
}

#[tokio::test]
async fn verify_sees_rotated_away_tokens_as_blacklisted_after_grace() {
    let h = with_alice(&[("SEKISHO_JWT__REUSE_GRACE", "10s")]).await;
    let (_, a) = h.token_pair("alice", PASSWORD).await;
    let b = ok_refresh(&h.refresh(&a).await);
    h.advance(secs(10));
    let r = h.post_json("/api/token/verify/", json!({"token": a})).await;
    assert_eq!(
        (r.status.as_u16(), &r.body),
        (200, &json!({})),
        "predecessor at the end of the grace window"
    );
    h.advance(Duration::from_millis(1));
    assert_401(
        &h.post_json("/api/token/verify/", json!({"token": a})).await,
        &token_error("Token is blacklisted"),
    );
    // Verifying is read-only: it did not revoke the family.
    let r = h.post_json("/api/token/verify/", json!({"token": b})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    ok_refresh(&h.refresh(&b).await);
}

/// A refresh token minted by Django + simplejwt with the same `SECRET_KEY` (no family claim).
fn django_refresh(h: &Harness, user_id: i64, jti: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let now = h.auth.now().secs();
    let header = B64.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = B64.encode(
        json!({
            "token_type": "refresh",
            "exp": now + 86_400,
            "iat": now,
            "jti": jti,
            "user_id": user_id.to_string(),
        })
        .to_string(),
    );
    let input = format!("{header}.{payload}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SIGNING_KEY.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", B64.encode(mac.finalize().into_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_django_refresh_token_is_adopted_then_rotates_with_grace_like_ours() {
    let h = Harness::start(&[("SEKISHO_JWT__REUSE_GRACE", "30s")]).await;
    h.user("legacy").await;
    let uid = h.auth.find_user("legacy").await.unwrap().unwrap().id;
    let token = django_refresh(&h, uid, "0123456789abcdef0123456789abcdef");
    assert_eq!(
        h.post_json("/api/token/verify/", json!({"token": token}))
            .await
            .status,
        200
    );
    // Parallel first uses agree on one adopted family and one successor.
    let replies = futures::future::join_all((0..8).map(|_| h.refresh(&token))).await;
    let successors: std::collections::BTreeSet<String> = replies.iter().map(ok_refresh).collect();
    assert_eq!(successors.len(), 1);
    let next = successors.into_iter().next().unwrap();
    assert_eq!(
        claims(&next)["fid"],
        json!("legacy-0123456789abcdef0123456789abcdef")
    );
    assert_eq!(claims(&next)["user_id"], json!(uid.to_string()));

    // Rotated away: inside the window verify still accepts it, after the window it is revoked.
    h.advance(secs(29));
    let v = h
        .post_json("/api/token/verify/", json!({"token": token}))
        .await;
    assert_eq!(v.status, 200, "inside the grace window: {}", v.body);
    h.advance(secs(2));
    assert_401(
        &h.post_json("/api/token/verify/", json!({"token": token}))
            .await,
        &token_error("Token is blacklisted"),
    );
    // Replaying it now is reuse: the whole adopted family is revoked.
    assert_eq!(h.refresh(&token).await.status, 401);
    assert_401(
        &h.refresh(&next).await,
        &token_error("Token is blacklisted"),
    );
}

// ---------------------------------------------------------------------------------------------
// Family lifetimes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn rotation_never_extends_the_absolute_lifetime() {
    let h = with_alice(&[
        ("SEKISHO_JWT__REFRESH_ABSOLUTE_LIFETIME", "1h"),
        ("SEKISHO_JWT__REFRESH_TOKEN_LIFETIME", "1d"),
    ])
    .await;
    let (_, first) = h.token_pair("alice", PASSWORD).await;
    let login_iat = claims(&first)["iat"].as_i64().unwrap();
    assert_eq!(claims(&first)["exp"].as_i64().unwrap(), login_iat + 3600);
    // Rotate every 20 minutes: each successor's exp stays at the login's absolute expiry.
    let mut current = first;
    for _ in 0..2 {
        h.advance(secs(20 * 60));
        let next = ok_refresh(&h.refresh(&current).await);
        let c = claims(&next);
        assert_eq!(c["exp"].as_i64().unwrap(), login_iat + 3600, "{c}");
        assert!(c["iat"].as_i64().unwrap() > login_iat);
        current = next;
    }
    h.advance(secs(20 * 60));
    assert_401(&h.refresh(&current).await, &token_error("Token is expired"));
}

#[tokio::test]
async fn idle_lifetime_expires_an_unused_family_and_rotation_slides_it() {
    let h = with_alice(&[("SEKISHO_JWT__REFRESH_TOKEN_LIFETIME", "10m")]).await;
    let (_, first) = h.token_pair("alice", PASSWORD).await;
    assert_eq!(lifetime(&first), 600);
    let mut current = first.clone();
    for _ in 0..3 {
        h.advance(secs(8 * 60));
        let next = ok_refresh(&h.refresh(&current).await);
        assert_eq!(lifetime(&next), 600);
        current = next;
    }
    // 24 minutes after login: the login's own token is long past its lifetime; the family lives.
    assert_401(&h.refresh(&first).await, &token_error("Token is expired"));
    // Now stop using it for longer than the idle lifetime.
    h.advance(secs(10 * 60) + SECOND);
    assert_401(&h.refresh(&current).await, &token_error("Token is expired"));
    assert_401(
        &h.post_json("/api/token/verify/", json!({"token": current}))
            .await,
        &token_error("Token is expired"),
    );
}

// ---------------------------------------------------------------------------------------------
// Session timeouts
// ---------------------------------------------------------------------------------------------

async fn me_with_session(h: &Harness, sid: &str) -> Reply {
    h.send(
        Method::GET,
        "/api/auth/me/",
        &[("cookie", &format!("sessionid={sid}"))],
        None,
    )
    .await
}

#[track_caller]
fn assert_anonymous(r: &Reply) {
    assert_401(
        r,
        &json!({"detail": "Authentication credentials were not provided."}),
    );
}

#[tokio::test]
async fn idle_timeout_slides_with_use_and_expires_in_silence() {
    let h = with_alice(&[("SEKISHO_SESSIONS__IDLE_TIMEOUT", "20m")]).await;
    let mut b = h.browser();
    b.login("alice", PASSWORD).await;
    let sid = b.session().unwrap();

    h.advance(secs(12 * 60));
    assert_eq!(
        me_with_session(&h, &sid).await.status,
        200,
        "alive at 12 min"
    );
    h.advance(secs(12 * 60));
    // Past the original idle deadline: only alive because the request at 12 min renewed it.
    let r = me_with_session(&h, &sid).await;
    assert_eq!(
        r.status, 200,
        "sliding renewal failed at 24 min: {}",
        r.body
    );
    h.advance(secs(20 * 60) + SECOND);
    assert_anonymous(&me_with_session(&h, &sid).await);
    // The expired session is no longer listed anywhere (a new login sees only itself).
    let mut fresh = h.browser();
    fresh.login("alice", PASSWORD).await;
    let r = fresh.get("/api/auth/sessions/").await;
    assert_eq!(r.body.as_array().unwrap().len(), 1, "{}", r.body);
}

#[tokio::test]
async fn renewal_writes_at_most_once_per_interval() {
    // idle 20 min → renewal interval 1 min: requests within it do not move the deadline.
    let h = with_alice(&[("SEKISHO_SESSIONS__IDLE_TIMEOUT", "20m")]).await;
    let mut b = h.browser();
    b.login("alice", PASSWORD).await;
    let expires = |r: &Reply| r.body[0]["expires"].as_str().unwrap().to_string();
    let at_login = expires(&b.get("/api/auth/sessions/").await);
    h.advance(secs(30));
    assert_eq!(expires(&b.get("/api/auth/sessions/").await), at_login);
    h.advance(secs(31));
    assert_ne!(expires(&b.get("/api/auth/sessions/").await), at_login);
}

#[tokio::test]
async fn absolute_timeout_is_not_extended_by_use() {
    let h = with_alice(&[
        ("SEKISHO_SESSIONS__IDLE_TIMEOUT", "1h"),
        ("SEKISHO_SESSIONS__ABSOLUTE_TIMEOUT", "30m"),
    ])
    .await;
    let mut b = h.browser();
    let r = b.login("alice", PASSWORD).await;
    // The cookie does not outlive the session.
    assert_eq!(r.cookie_max_age("sessionid"), Some(1800));
    let sid = b.session().unwrap();
    for _ in 0..2 {
        h.advance(secs(10 * 60));
        assert_eq!(me_with_session(&h, &sid).await.status, 200);
    }
    h.advance(secs(10 * 60));
    assert_anonymous(&me_with_session(&h, &sid).await);
}

#[tokio::test]
async fn after_expiry_a_fresh_anonymous_token_makes_login_work() {
    let h = with_alice(&[("SEKISHO_SESSIONS__IDLE_TIMEOUT", "5m")]).await;
    let mut b = h.browser();
    b.login("alice", PASSWORD).await;
    let session_token = b.csrf().unwrap();
    h.advance(secs(5 * 60) + SECOND);
    assert_eq!(
        b.get("/api/auth/sessions/").await.status,
        401,
        "session should have expired"
    );
    // An expired session is anonymous, so an unsafe call is a 401, not a CSRF 403.
    let r = b
        .send(
            Method::PATCH,
            "/api/auth/me/",
            Some(&json!({"first_name": "Late"})),
        )
        .await;
    assert_anonymous(&r);
    // The browser still holds the session-bound token: a login with it is refused...
    let creds = json!({"username": "alice", "password": PASSWORD});
    let r = b.post("/api/auth/login/", &creds).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.body["detail"], "CSRF Failed: CSRF token incorrect.");
    // ... so the SPA asks for a fresh token, which is anonymous, and then logs in.
    let r = b.get("/api/auth/csrf/").await;
    let fresh = r.str("csrfToken");
    assert_ne!(fresh, session_token);
    assert_eq!(r.cookie("csrftoken").as_deref(), Some(fresh.as_str()));
    let old_sid = b.session().unwrap();
    let r = b.post("/api/auth/login/", &creds).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_ne!(b.session().unwrap(), old_sid);
    assert_eq!(b.get("/api/auth/me/").await.status, 200);
}

// ---------------------------------------------------------------------------------------------
// The read cache across instances
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_logout_on_one_instance_reaches_the_other_at_once_or_within_the_cache_ttl() {
    let a = with_alice(&[("SEKISHO_CACHE__TTL", "250ms")]).await;
    let b = a.start_sharing().await;
    let mut browser = a.browser();
    browser.login("alice", PASSWORD).await;
    let sid = browser.session().unwrap();
    assert_eq!(me_with_session(&b, &sid).await.status, 200);
    assert_eq!(
        browser.post("/api/auth/logout/", &json!({})).await.status,
        200
    );
    assert_anonymous(&me_with_session(&a, &sid).await);
    if sekisho_testing::harness::backend().starts_with("postgres") {
        // On PostgreSQL the logout is broadcast and acknowledged before it returns: B has
        // dropped the session already (crates/sekisho-testing/tests/cache_bus.rs).
        assert_anonymous(&me_with_session(&b, &sid).await);
        return;
    }
    // Without the broadcast (SQLite shared by two processes), B read the session just before
    // the logout: its cache may serve it until cache.ttl has passed on B's clock (this is what
    // the bound is about), and never after.
    assert_eq!(me_with_session(&b, &sid).await.status, 200, "cached on B");
    b.advance(Duration::from_millis(250));
    assert_anonymous(&me_with_session(&b, &sid).await);
}

#[tokio::test]
async fn a_revoked_family_is_refused_by_the_other_instance_at_once() {
    // Rotation never goes through the cache: a blacklist on A is final on B immediately.
    let a = with_alice(&[]).await;
    let b = a.start_sharing().await;
    let (_, refresh) = a.token_pair("alice", PASSWORD).await;
    assert_eq!(
        b.post_json("/api/token/verify/", json!({"token": refresh}))
            .await
            .status,
        200
    );
    let out = a
        .post_json("/api/token/blacklist/", json!({"refresh": refresh}))
        .await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert_401(
        &b.refresh(&refresh).await,
        &token_error("Token is blacklisted"),
    );
}

// ---------------------------------------------------------------------------------------------
// Login lockout
// ---------------------------------------------------------------------------------------------

async fn login(h: &Harness, user: &str, password: &str) -> Reply {
    h.post_json(
        "/api/token/",
        json!({"username": user, "password": password}),
    )
    .await
}

#[tokio::test]
async fn an_account_is_locked_after_repeated_failures_and_released_after_the_lockout() {
    let h = Harness::start(&[
        ("SEKISHO_THROTTLE__MAX_FAILURES_PER_ACCOUNT", "3"),
        ("SEKISHO_THROTTLE__LOCKOUT", "2m"),
    ])
    .await;
    h.user("target").await;
    h.user("bystander").await;
    for _ in 0..3 {
        assert_eq!(login(&h, "target", "wrong").await.status, 401);
    }
    // Even the right password is refused while locked, before any hashing.
    let r = login(&h, "target", PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("120"));
    assert_eq!(
        r.body,
        json!({"detail": "Request was throttled. Expected available in 120 seconds."})
    );
    h.advance(secs(90));
    let r = login(&h, "target", PASSWORD).await;
    assert_eq!(r.header("retry-after"), Some("30"), "the wait counts down");
    // The session login is covered by the same counter.
    let mut b = h.browser();
    b.get("/api/auth/csrf/").await;
    let r = b
        .post(
            "/api/auth/login/",
            &json!({"username": "target", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(
        login(&h, "bystander", PASSWORD).await.status,
        200,
        "other accounts are unaffected"
    );
    h.advance(secs(30));
    assert_eq!(login(&h, "target", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn a_login_past_the_per_user_cap_ends_the_oldest_session() {
    let h = Harness::start(&[("SEKISHO_SESSIONS__MAX_PER_USER", "3")]).await;
    h.user("many").await;
    h.user("other").await;
    let mut bystander = h.browser();
    assert_eq!(bystander.login("other", PASSWORD).await.status, 200);
    let mut browsers = Vec::new();
    for _ in 0..5 {
        let mut b = h.browser();
        assert_eq!(b.login("many", PASSWORD).await.status, 200);
        browsers.push(b);
        // Distinct creation times: "oldest" is well defined.
        h.advance(Duration::from_secs(1));
    }
    let mut alive = Vec::new();
    for b in &mut browsers {
        alive.push(b.get("/api/auth/me/").await.status == 200);
    }
    assert_eq!(
        alive,
        [false, false, true, true, true],
        "the two oldest ended"
    );
    let listed = browsers[4].get("/api/auth/sessions/").await;
    assert_eq!(
        listed.body.as_array().map(Vec::len),
        Some(3),
        "{}",
        listed.body
    );
    // Another user's session is not counted against this one.
    assert_eq!(bystander.get("/api/auth/me/").await.status, 200);
}
