//! The session half of the contract (DESIGN §3.3, §3.5), black-box over real HTTP: the CSRF
//! bootstrap, login/logout, the session cookie's attributes and storage, fixation, profile and
//! password changes, the devices list, log-out-everywhere, timeouts and mixed session/bearer use.
mod common;
use common::*;

use reqwest::Method;
use serde_json::{Value, json};

const NO_ACCOUNT: &str = "No active account found with the given credentials";
const NOT_AUTHENTICATED: &str = "Authentication credentials were not provided.";
const NEW_PASSWORD: &str = "a brand new passphrase 42";

fn creds(user: &str, password: &str) -> Value {
    json!({"username": user, "password": password})
}

fn started_with_user(env: &[(&str, &str)]) -> Server {
    let s = Server::start(env);
    s.create_user("alice", PASSWORD);
    s
}

fn keys_of(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

/// The user object's exact shape.
#[track_caller]
fn assert_user(v: &Value, username: &str) {
    assert_eq!(
        keys_of(v),
        vec![
            "email",
            "first_name",
            "groups",
            "id",
            "is_staff",
            "is_superuser",
            "last_name",
            "permissions",
            "username"
        ],
        "user shape: {v}"
    );
    assert_eq!(v["username"], username);
    assert!(v["id"].is_number(), "id: {v}");
    assert!(v["groups"].is_array() && v["permissions"].is_array(), "{v}");
    assert_eq!(v["is_staff"], false);
    assert_eq!(v["is_superuser"], false);
}

/// A replayed cookie (or anything anonymous) on `GET /api/auth/me/`.
#[track_caller]
fn assert_anonymous(r: &Reply) {
    assert_401(r, &json!({"detail": NOT_AUTHENTICATED}));
}

async fn me_with_session(s: &Server, sessionid: &str) -> Reply {
    Browser::with_cookies(s, &[("sessionid", sessionid)])
        .get("/api/auth/me/")
        .await
}

async fn refresh_status(s: &Server, refresh: &str) -> Reply {
    s.post_json("/api/token/refresh/", json!({"refresh": refresh}))
        .await
}

// ---------------------------------------------------------------------------------------------
// CSRF bootstrap
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn csrf_endpoint_sets_a_readable_lax_cookie_and_keeps_it() {
    let s = Server::start(&[]);
    let mut b = Browser::new(&s);
    let r = b.get("/api/auth/csrf/").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_json(&r);
    assert_eq!(keys_of(&r.body), vec!["csrfToken"]);
    let token = r.str("csrfToken");
    assert!(is_lower_hex(&token, 64), "token {token:?}");

    let c = r.set_cookie_spec("csrftoken");
    assert_eq!(c.value, token, "cookie and body agree");
    assert_eq!(c.attr("path"), Some("/"));
    assert_eq!(c.attr("samesite"), Some("Lax"));
    assert!(
        !c.has("httponly"),
        "csrftoken must be readable by JS: {}",
        c.raw
    );
    assert!(!c.has("secure"), "no Secure over plain http: {}", c.raw);
    assert!(c.max_age().unwrap_or(1) > 0, "{}", c.raw);
    assert!(
        r.set_cookie_specs("sessionid").is_empty(),
        "no session before login"
    );

    // The same browser asks again: same token, no new cookie.
    let again = b.get("/api/auth/csrf/").await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, json!({"csrfToken": token}));
    assert!(
        again.set_cookies().is_empty(),
        "cookie re-set: {:?}",
        again.set_cookies()
    );

    // Without trailing slash too.
    let r = b.get("/api/auth/csrf").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"csrfToken": token}));

    // A different browser gets a different token.
    let other = Browser::new(&s).fetch_csrf().await;
    assert_ne!(other, token);
}

#[tokio::test]
async fn a_forged_csrf_cookie_is_replaced() {
    let s = Server::start(&[]);
    let forged = "ab".repeat(32);
    let mut b = Browser::with_cookies(&s, &[("csrftoken", &forged)]);
    let r = b.get("/api/auth/csrf/").await;
    assert_eq!(r.status, 200);
    let t = r.str("csrfToken");
    assert_ne!(t, forged);
    assert_eq!(r.set_cookie_spec("csrftoken").value, t);
}

#[tokio::test]
async fn anonymous_me_is_401_and_still_sets_the_csrf_cookie() {
    let s = Server::start(&[]);
    let mut b = Browser::new(&s);
    let r = b.get("/api/auth/me/").await;
    assert_anonymous(&r);
    let c = r.set_cookie_spec("csrftoken");
    assert!(is_lower_hex(&c.value, 64));
    // ... and that token is good for the first POST (login of nobody → 401, not 403).
    let r = b.post("/api/auth/login/", &creds("nobody", PASSWORD)).await;
    assert_401(&r, &json!({"detail": NO_ACCOUNT}));
}

// ---------------------------------------------------------------------------------------------
// Login
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn login_sets_session_cookie_and_rotates_csrf() {
    let s = started_with_user(&[]);
    let mut b = Browser::new(&s);
    let pre = b.fetch_csrf().await;
    let r = b.login("alice", PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_json(&r);
    assert_eq!(keys_of(&r.body), vec!["user"]);
    assert_user(&r.body["user"], "alice");
    assert_eq!(r.body["user"]["email"], "");

    let sc = r.set_cookie_spec("sessionid");
    assert!(is_lower_hex(&sc.value, 64), "session id {:?}", sc.value);
    assert!(sc.has("httponly"), "{}", sc.raw);
    assert_eq!(sc.attr("samesite"), Some("Lax"), "{}", sc.raw);
    assert_eq!(sc.attr("path"), Some("/"), "{}", sc.raw);
    assert_eq!(sc.max_age(), Some(1_209_600), "{}", sc.raw);
    assert!(
        !sc.has("secure"),
        "no Secure over plain http with secure_cookies=auto: {}",
        sc.raw
    );

    let cc = r.set_cookie_spec("csrftoken");
    assert!(is_lower_hex(&cc.value, 64));
    assert_ne!(cc.value, pre, "login must rotate the CSRF token");
    assert!(!cc.has("httponly"));
    assert_eq!(cc.attr("samesite"), Some("Lax"));
    assert_eq!(cc.attr("path"), Some("/"));

    // The session works, and GET /api/auth/csrf/ now hands out the rotated token unchanged.
    let me = b.get("/api/auth/me/").await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_json(&me);
    assert_user(&me.body, "alice");
    assert_eq!(me.body, r.body["user"]);
    assert!(me.set_cookies().is_empty(), "{:?}", me.set_cookies());
    let r = b.get("/api/auth/csrf/").await;
    assert_eq!(r.body, json!({"csrfToken": cc.value}));
    assert!(r.set_cookies().is_empty());

    // Without trailing slash as well.
    assert_eq!(b.get("/api/auth/me").await.status, 200);
}

#[tokio::test]
async fn secure_cookies_true_marks_both_cookies_secure() {
    let s = started_with_user(&[("SEKISHO_SESSIONS__SECURE_COOKIES", "true")]);
    let mut b = Browser::new(&s);
    let r = b.get("/api/auth/csrf/").await;
    assert!(r.set_cookie_spec("csrftoken").has("secure"));
    let r = b.login("alice", PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let sc = r.set_cookie_spec("sessionid");
    assert!(sc.has("secure"), "{}", sc.raw);
    assert!(sc.has("httponly"));
    assert!(r.set_cookie_spec("csrftoken").has("secure"));
}

#[tokio::test]
async fn cookie_age_is_configurable() {
    let s = started_with_user(&[("SEKISHO_SESSIONS__COOKIE_AGE", "1h")]);
    let mut b = Browser::new(&s);
    let r = b.login("alice", PASSWORD).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.set_cookie_spec("sessionid").max_age(), Some(3600));
}

#[tokio::test]
async fn wrong_password_is_401_with_the_simplejwt_message() {
    let s = started_with_user(&[]);
    let mut b = Browser::new(&s);
    let r = b.login("alice", "not the password").await;
    assert_401(&r, &json!({"detail": NO_ACCOUNT}));
    assert!(r.set_cookie_specs("sessionid").is_empty());
    let r = b.login("nobody", PASSWORD).await;
    assert_401(&r, &json!({"detail": NO_ACCOUNT}));
    // Passwords are not trimmed.
    let r = b.login("alice", &format!(" {PASSWORD}")).await;
    assert_401(&r, &json!({"detail": NO_ACCOUNT}));
    assert!(b.session().is_none());
}

#[tokio::test]
async fn missing_fields_are_drf_400s() {
    let s = started_with_user(&[]);
    let mut b = Browser::new(&s);
    b.fetch_csrf().await;
    let r = b.post("/api/auth/login/", &json!({})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_json(&r);
    assert_eq!(
        r.body,
        json!({"username": ["This field is required."], "password": ["This field is required."]})
    );
    let r = b
        .post("/api/auth/login/", &json!({"username": "alice"}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body, json!({"password": ["This field is required."]}));
    let r = b
        .post(
            "/api/auth/login/",
            &json!({"username": "", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"username": ["This field may not be blank."]})
    );
    let r = b
        .post(
            "/api/auth/login/",
            &json!({"username": null, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body, json!({"username": ["This field may not be null."]}));
    assert!(b.session().is_none());
}

#[tokio::test]
async fn login_accepts_a_form_body_and_the_no_slash_path() {
    let s = started_with_user(&[]);
    let mut b = Browser::new(&s);
    let t = b.fetch_csrf().await;
    let body = format!("username=alice&password={}", PASSWORD.replace(' ', "+"));
    let mut rb = client_no_redirect()
        .post(s.url("/api/auth/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("csrftoken={t}"))
        .header("x-csrftoken", &t)
        .body(body);
    rb = rb.header("user-agent", "form-test");
    let r = into_reply(rb.send().await.unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_user(&r.body["user"], "alice");
    assert!(is_lower_hex(&r.set_cookie_spec("sessionid").value, 64));
}

// ---------------------------------------------------------------------------------------------
// Storage and fixation
// ---------------------------------------------------------------------------------------------

fn hex_sha256(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[tokio::test]
async fn only_the_hash_of_the_session_id_is_stored() {
    let s = started_with_user(&[]);
    let b = Browser::logged_in(&s, "alice", PASSWORD).await;
    let sid = b.session().unwrap();
    assert!(is_lower_hex(&sid, 64));
    let bytes = storage_dump(&s);
    assert!(
        !contains(&bytes, &sid),
        "the raw session id is in the database"
    );
    // Positive control: we are looking at the right bytes (the hash is there).
    assert!(
        contains(&bytes, &hex_sha256(&sid)),
        "the session's hash was not found in the database files"
    );
}

#[tokio::test]
async fn login_never_adopts_a_planted_session_id() {
    let s = started_with_user(&[]);
    let planted = "0123456789abcdef".repeat(4);
    let mut b = Browser::with_cookies(&s, &[("sessionid", &planted)]);
    let r = b.login("alice", PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let sid = r.set_cookie_spec("sessionid").value;
    assert_ne!(sid, planted);
    assert!(is_lower_hex(&sid, 64));
    assert_anonymous(&me_with_session(&s, &planted).await);
    assert_eq!(me_with_session(&s, &sid).await.status, 200);

    // Not even with a non-hex planted value.
    let mut b = Browser::with_cookies(&s, &[("sessionid", "attacker-chosen")]);
    let r = b.login("alice", PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_ne!(r.set_cookie_spec("sessionid").value, "attacker-chosen");
}

#[tokio::test]
async fn a_planted_real_session_is_deleted_by_login() {
    let s = started_with_user(&[]);
    s.create_user("mallory", PASSWORD);
    // The attacker logs in and plants their own live session id in the victim's browser.
    let attacker = Browser::logged_in(&s, "mallory", PASSWORD).await;
    let planted = attacker.session().unwrap();
    assert_eq!(me_with_session(&s, &planted).await.status, 200);

    let mut victim = Browser::with_cookies(&s, &[("sessionid", &planted)]);
    let r = victim.login("alice", PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let sid = r.set_cookie_spec("sessionid").value;
    assert_ne!(sid, planted);
    let me = me_with_session(&s, &sid).await;
    assert_eq!(me.body["username"], "alice");
    // The planted session is gone server-side.
    assert_anonymous(&me_with_session(&s, &planted).await);
}

// ---------------------------------------------------------------------------------------------
// Logout
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn logout_deletes_the_session_and_clears_the_cookie() {
    let s = started_with_user(&[]);
    let mut b = Browser::logged_in(&s, "alice", PASSWORD).await;
    let old = b.session().unwrap();
    let r = b.post("/api/auth/logout/", &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_json(&r);
    assert_eq!(r.body, json!({}));
    let sc = r.set_cookie_spec("sessionid");
    assert_eq!(sc.max_age(), Some(0), "{}", sc.raw);
    assert_eq!(sc.value, "");
    assert_eq!(sc.attr("path"), Some("/"));
    assert!(b.session().is_none());

    // The server forgot it: replaying the old cookie is anonymous.
    let r = me_with_session(&s, &old).await;
    assert_anonymous(&r);

    // Logging out again (no session) is still 200 {}.
    let r = b.post("/api/auth/logout", &json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({}));
}

// ---------------------------------------------------------------------------------------------
// Profile
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn patch_me_updates_profile_fields_only() {
    let s = started_with_user(&[]);
    let mut b = Browser::logged_in(&s, "alice", PASSWORD).await;
    let r = b
        .patch(
            "/api/auth/me/",
            &json!({"first_name": "Ann", "email": "ann@example.com", "is_superuser": true, "is_staff": true, "username": "root"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_json(&r);
    assert_user(&r.body, "alice");
    assert_eq!(r.body["first_name"], "Ann");
    assert_eq!(r.body["email"], "ann@example.com");
    assert_eq!(r.body["last_name"], "");
    assert_eq!(r.body["is_superuser"], false);

    // Persisted.
    let me = b.get("/api/auth/me/").await;
    assert_eq!(me.body, r.body);

    let r = b
        .patch("/api/auth/me/", &json!({"email": "not-an-email"}))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_json(&r);
    assert_eq!(r.body, json!({"email": ["Enter a valid email address."]}));
    assert_eq!(
        b.get("/api/auth/me/").await.body["email"],
        "ann@example.com"
    );

    // Anonymous PATCH is 401.
    let r = Browser::new(&s)
        .patch("/api/auth/me/", &json!({"first_name": "X"}))
        .await;
    assert_anonymous(&r);
}

// ---------------------------------------------------------------------------------------------
// Password change
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn password_change_validation() {
    let s = started_with_user(&[]);
    let mut b = Browser::logged_in(&s, "alice", PASSWORD).await;
    let r = b
        .post(
            "/api/auth/password/",
            &json!({"old_password": "wrong", "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_json(&r);
    assert_eq!(keys_of(&r.body), vec!["old_password"]);
    assert!(r.body["old_password"][0].is_string(), "{}", r.body);

    let r = b
        .post(
            "/api/auth/password/",
            &json!({"old_password": PASSWORD, "new_password": "short"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"new_password": ["This password is too short. It must contain at least 8 characters."]})
    );

    let r = b.post("/api/auth/password/", &json!({})).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"old_password": ["This field is required."], "new_password": ["This field is required."]})
    );
    // Nothing changed.
    assert_eq!(Browser::new(&s).login("alice", PASSWORD).await.status, 200);
    // Anonymous → 401.
    let r = Browser::new(&s)
        .post(
            "/api/auth/password/",
            &json!({"old_password": PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_anonymous(&r);
}

#[tokio::test]
async fn password_change_keeps_the_caller_and_ends_everything_else() {
    let s = started_with_user(&[]);
    s.create_user("bob", PASSWORD);
    let mut b = Browser::logged_in(&s, "alice", PASSWORD).await;
    let other = Browser::logged_in(&s, "alice", PASSWORD).await;
    let bobs = Browser::logged_in(&s, "bob", PASSWORD).await;
    let (_, refresh) = s.token_pair("alice", PASSWORD).await;
    let (_, bob_refresh) = s.token_pair("bob", PASSWORD).await;
    let (old_session, old_csrf) = (b.session().unwrap(), b.csrf().unwrap());

    let r = b
        .post(
            "/api/auth/password/",
            &json!({"old_password": PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_json(&r);
    assert_eq!(r.body, json!({}));
    assert!(
        r.set_cookie_specs("sessionid")
            .iter()
            .all(|c| !c.is_deletion()),
        "{:?}",
        r.set_cookies()
    );

    // The caller stays logged in, under a new session id and a CSRF token bound to it (as
    // Django's update_session_auth_hash); the old id is dead.
    let (new_session, new_csrf) = (b.session().unwrap(), b.csrf().unwrap());
    assert_ne!(new_session, old_session);
    assert_ne!(new_csrf, old_csrf);
    assert_anonymous(&me_with_session(&s, &old_session).await);
    let me = b.get("/api/auth/me/").await;
    assert_eq!(me.status, 200, "{}", me.body);
    let patch = b
        .patch("/api/auth/me/", &json!({"first_name": "After"}))
        .await;
    assert_eq!(
        patch.status, 200,
        "the new CSRF token works: {}",
        patch.body
    );
    // Another session of the same user is gone.
    assert_anonymous(&me_with_session(&s, &other.session().unwrap()).await);
    // Every refresh family of the user is revoked.
    let r = refresh_status(&s, &refresh).await;
    assert_401(&r, &token_error("Token is blacklisted"));
    // Other users are untouched.
    assert_eq!(
        me_with_session(&s, &bobs.session().unwrap()).await.status,
        200
    );
    assert_eq!(refresh_status(&s, &bob_refresh).await.status, 200);

    // Old password refused, new accepted, for both login styles.
    assert_401(
        &Browser::new(&s).login("alice", PASSWORD).await,
        &json!({"detail": NO_ACCOUNT}),
    );
    assert_eq!(
        Browser::new(&s).login("alice", NEW_PASSWORD).await.status,
        200
    );
    assert_eq!(
        s.post_json("/api/token/", creds("alice", PASSWORD))
            .await
            .status,
        401
    );
    assert_eq!(
        s.post_json("/api/token/", creds("alice", NEW_PASSWORD))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn password_change_by_bearer_returns_a_fresh_pair() {
    let s = started_with_user(&[]);
    let (access, refresh) = s.token_pair("alice", PASSWORD).await;
    let session = Browser::logged_in(&s, "alice", PASSWORD).await;
    let body = json!({"old_password": PASSWORD, "new_password": NEW_PASSWORD}).to_string();
    let r = s
        .send(
            Method::POST,
            "/api/auth/password/",
            &[
                ("authorization", &format!("Bearer {access}")),
                ("content-type", "application/json"),
            ],
            Some(body.as_bytes()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_json(&r);
    assert_eq!(keys_of(&r.body), vec!["access", "refresh"]);
    assert!(r.set_cookies().is_empty(), "{:?}", r.set_cookies());
    let (new_access, new_refresh) = (r.str("access"), r.str("refresh"));
    assert_eq!(claims(&new_access)["token_type"], "access");
    assert_eq!(claims(&new_refresh)["token_type"], "refresh");

    let me = s.get_bearer("/api/auth/me/", &new_access).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["username"], "alice");
    // The old family is dead; the new one lives.
    assert_401(
        &refresh_status(&s, &refresh).await,
        &token_error("Token is blacklisted"),
    );
    let r = refresh_status(&s, &new_refresh).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A bearer caller has no session to keep: every session of the user ends.
    assert_anonymous(&me_with_session(&s, &session.session().unwrap()).await);
    assert_eq!(
        Browser::new(&s).login("alice", NEW_PASSWORD).await.status,
        200
    );
}

// ---------------------------------------------------------------------------------------------
// Devices list, revoke one, revoke all
// ---------------------------------------------------------------------------------------------

fn is_rfc3339(s: &str) -> bool {
    s.len() >= 20
        && s.as_bytes()[4] == b'-'
        && s.as_bytes()[10] == b'T'
        && (s.ends_with('Z') || s.contains('+'))
}

#[tokio::test]
async fn sessions_list_shows_the_users_devices() {
    let s = started_with_user(&[]);
    s.create_user("bob", PASSWORD);
    let mut me = Browser::new(&s);
    me.user_agent = Some("SekishoTest/1.0 (laptop)".into());
    assert_eq!(me.login("alice", PASSWORD).await.status, 200);
    let mut phone = Browser::new(&s);
    phone.user_agent = Some("SekishoTest/2.0 (phone)".into());
    assert_eq!(phone.login("alice", PASSWORD).await.status, 200);
    let _bob = Browser::logged_in(&s, "bob", PASSWORD).await;

    let r = me.get("/api/auth/sessions/").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_json(&r);
    let list = r.body.as_array().expect("a JSON array").clone();
    assert_eq!(list.len(), 2, "only alice's two sessions: {}", r.body);
    for e in &list {
        for k in ["id", "created", "last_seen", "user_agent", "ip", "current"] {
            assert!(e.get(k).is_some(), "{k} missing in {e}");
        }
        let id = e["id"].as_str().unwrap();
        assert!(is_lower_hex(id, 32), "id {id:?}");
        assert_ne!(id, me.session().unwrap());
        assert_ne!(id, &hex_sha256(&me.session().unwrap())[..32]);
        assert!(is_rfc3339(e["created"].as_str().unwrap()), "{e}");
        assert!(is_rfc3339(e["last_seen"].as_str().unwrap()), "{e}");
        assert_eq!(e["ip"], "127.0.0.1");
    }
    let current: Vec<&Value> = list.iter().filter(|e| e["current"] == true).collect();
    assert_eq!(current.len(), 1, "{}", r.body);
    assert_eq!(current[0]["user_agent"], "SekishoTest/1.0 (laptop)");
    let other: Vec<&Value> = list.iter().filter(|e| e["current"] == false).collect();
    assert_eq!(other[0]["user_agent"], "SekishoTest/2.0 (phone)");
    assert_ne!(current[0]["id"], other[0]["id"]);

    // From the phone, its own entry is current.
    let r = phone.get("/api/auth/sessions").await;
    assert_eq!(r.status, 200);
    let cur: Vec<Value> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["current"] == true)
        .cloned()
        .collect();
    assert_eq!(cur.len(), 1);
    assert_eq!(cur[0]["user_agent"], "SekishoTest/2.0 (phone)");

    // Anonymous → 401.
    assert_anonymous(&Browser::new(&s).get("/api/auth/sessions/").await);
}

async fn session_ids(b: &mut Browser) -> (String, Vec<String>) {
    let r = b.get("/api/auth/sessions/").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut current = None;
    let mut others = vec![];
    for e in r.body.as_array().unwrap() {
        let id = e["id"].as_str().unwrap().to_string();
        if e["current"] == true {
            current = Some(id)
        } else {
            others.push(id)
        }
    }
    (current.expect("a current session"), others)
}

#[tokio::test]
async fn deleting_a_session_revokes_it() {
    let s = started_with_user(&[]);
    s.create_user("bob", PASSWORD);
    let mut me = Browser::logged_in(&s, "alice", PASSWORD).await;
    let second = Browser::logged_in(&s, "alice", PASSWORD).await;
    let third = Browser::logged_in(&s, "alice", PASSWORD).await;
    let mut bob = Browser::logged_in(&s, "bob", PASSWORD).await;
    let (_, others) = session_ids(&mut me).await;
    assert_eq!(others.len(), 2);

    // Which id is the second browser's? Ask from there.
    let (second_id, _) = session_ids(&mut Browser::with_cookies(
        &s,
        &[("sessionid", &second.session().unwrap())],
    ))
    .await;
    let third_id = others.iter().find(|i| **i != second_id).unwrap().clone();

    let r = me
        .unsafe_req(
            Method::DELETE,
            &format!("/api/auth/sessions/{second_id}/"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_json(&r);
    assert_eq!(r.body, json!({}));
    assert!(
        r.set_cookie_specs("sessionid").is_empty(),
        "the caller's cookie is not touched: {:?}",
        r.set_cookies()
    );
    assert_anonymous(&me_with_session(&s, &second.session().unwrap()).await);
    assert_eq!(me.get("/api/auth/me/").await.status, 200);

    // Deleting it again, or an unknown id → 404.
    let r = me
        .unsafe_req(
            Method::DELETE,
            &format!("/api/auth/sessions/{second_id}/"),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.body, json!({"detail": "Not found."}));
    let r = me
        .unsafe_req(
            Method::DELETE,
            &format!("/api/auth/sessions/{}/", "0".repeat(32)),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, json!({"detail": "Not found."}));

    // Another user's session can't be revoked (404, and it stays alive).
    let (bob_id, _) = session_ids(&mut bob).await;
    let r = me
        .unsafe_req(
            Method::DELETE,
            &format!("/api/auth/sessions/{bob_id}/"),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(bob.get("/api/auth/me/").await.status, 200);

    // Without trailing slash.
    let r = me
        .unsafe_req(
            Method::DELETE,
            &format!("/api/auth/sessions/{third_id}"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, json!({}));
    assert_anonymous(&me_with_session(&s, &third.session().unwrap()).await);

    // Deleting one's own current session logs out and clears the cookie.
    let (mine, others) = session_ids(&mut me).await;
    assert!(others.is_empty());
    let old = me.session().unwrap();
    let r = me
        .unsafe_req(Method::DELETE, &format!("/api/auth/sessions/{mine}/"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.set_cookie_spec("sessionid").max_age(), Some(0));
    assert_anonymous(&me_with_session(&s, &old).await);
}

#[tokio::test]
async fn logout_all_ends_every_session_and_refresh_family() {
    let s = started_with_user(&[]);
    s.create_user("bob", PASSWORD);
    let mut me = Browser::logged_in(&s, "alice", PASSWORD).await;
    let other = Browser::logged_in(&s, "alice", PASSWORD).await;
    let (_, refresh1) = s.token_pair("alice", PASSWORD).await;
    let (_, refresh2) = s.token_pair("alice", PASSWORD).await;
    let bob = Browser::logged_in(&s, "bob", PASSWORD).await;
    let (_, bob_refresh) = s.token_pair("bob", PASSWORD).await;
    let mine = me.session().unwrap();

    let r = me.post("/api/auth/logout-all/", &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_json(&r);
    assert_eq!(r.body, json!({}));
    assert_eq!(r.set_cookie_spec("sessionid").max_age(), Some(0));

    assert_anonymous(&me_with_session(&s, &mine).await);
    assert_anonymous(&me_with_session(&s, &other.session().unwrap()).await);
    assert_401(
        &refresh_status(&s, &refresh1).await,
        &token_error("Token is blacklisted"),
    );
    assert_401(
        &refresh_status(&s, &refresh2).await,
        &token_error("Token is blacklisted"),
    );
    // Bob is untouched.
    assert_eq!(
        me_with_session(&s, &bob.session().unwrap()).await.status,
        200
    );
    assert_eq!(refresh_status(&s, &bob_refresh).await.status, 200);
    // The user can log in again.
    assert_eq!(Browser::new(&s).login("alice", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn logout_all_works_by_bearer_too() {
    let s = started_with_user(&[]);
    let b = Browser::logged_in(&s, "alice", PASSWORD).await;
    let (access, refresh) = s.token_pair("alice", PASSWORD).await;
    let r = s
        .send(
            Method::POST,
            "/api/auth/logout-all",
            &[("authorization", &format!("Bearer {access}"))],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, json!({}));
    assert_anonymous(&me_with_session(&s, &b.session().unwrap()).await);
    assert_401(
        &refresh_status(&s, &refresh).await,
        &token_error("Token is blacklisted"),
    );
}

#[tokio::test]
async fn deactivating_a_user_ends_its_sessions() {
    let s = started_with_user(&[]);
    let b = Browser::logged_in(&s, "alice", PASSWORD).await;
    let sid = b.session().unwrap();
    assert_eq!(me_with_session(&s, &sid).await.status, 200);
    let out = s.cli(&["user", "deactivate", "alice"], "");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_anonymous(&me_with_session(&s, &sid).await);
    assert_401(
        &Browser::new(&s).login("alice", PASSWORD).await,
        &json!({"detail": NO_ACCOUNT}),
    );
}

// Timeouts (idle, absolute, sliding renewal) are tested in-process on a manual clock:
// crates/sekisho-testing/tests/lifetimes.rs.

// ---------------------------------------------------------------------------------------------
// Who is calling: both modes at once
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_same_user_by_session_and_by_bearer_at_once() {
    let s = started_with_user(&[]);
    let mut b = Browser::logged_in(&s, "alice", PASSWORD).await;
    let (access, _) = s.token_pair("alice", PASSWORD).await;
    let by_session = b.get("/api/auth/me/").await;
    let by_bearer = s.get_bearer("/api/auth/me/", &access).await;
    assert_eq!(by_session.status, 200);
    assert_eq!(by_bearer.status, 200);
    assert_eq!(by_session.body, by_bearer.body);
    // A bearer GET of /me does not hand out a csrftoken cookie (it is not a browser session).
    assert!(by_bearer.set_cookie_specs("sessionid").is_empty());
    // Both still work after each other.
    assert_eq!(b.get("/api/auth/me/").await.status, 200);
    assert_eq!(s.get_bearer("/api/auth/me/", &access).await.status, 200);
}

#[tokio::test]
async fn a_bad_bearer_token_never_falls_back_to_the_cookie() {
    let s = started_with_user(&[]);
    let mut b = Browser::logged_in(&s, "alice", PASSWORD).await;
    let (access, _) = s.token_pair("alice", PASSWORD).await;
    let mut tampered = access.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let r = b
        .send(
            Method::GET,
            "/api/auth/me/",
            &[("authorization", &format!("Bearer {tampered}"))],
            None,
        )
        .await;
    assert_401(&r, &bearer_error("Token is invalid"));
    let r = b
        .send(
            Method::GET,
            "/api/auth/me/",
            &[("authorization", "Bearer not-a-jwt")],
            None,
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.body["code"], "token_not_valid");
    // The cookie alone still works.
    assert_eq!(b.get("/api/auth/me/").await.status, 200);
}

#[tokio::test]
async fn an_unknown_authorization_scheme_leaves_the_session_in_charge() {
    let s = started_with_user(&[]);
    let mut b = Browser::logged_in(&s, "alice", PASSWORD).await;
    let r = b
        .send(
            Method::GET,
            "/api/auth/me/",
            &[("authorization", "Basic YWxpY2U6cHc=")],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["username"], "alice");
    // ... and such a request is CSRF-checked as a cookie request.
    let r = b
        .send(
            Method::PATCH,
            "/api/auth/me/",
            &[("authorization", "Basic YWxpY2U6cHc=")],
            Some(&json!({"first_name": "X"})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"detail": "CSRF Failed: CSRF token missing."})
    );
}

#[tokio::test]
async fn unauthenticated_status_can_be_403() {
    let s = started_with_user(&[("SEKISHO_AUTH__UNAUTHENTICATED_STATUS", "403")]);
    let r = Browser::new(&s).get("/api/auth/me/").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_json(&r);
    assert_eq!(r.body, json!({"detail": NOT_AUTHENTICATED}));
    assert_eq!(r.header("www-authenticate"), None);
    let r = Browser::new(&s).get("/api/auth/sessions/").await;
    assert_eq!(r.status, 403);
    // Logged in: fine.
    assert_eq!(
        Browser::logged_in(&s, "alice", PASSWORD)
            .await
            .get("/api/auth/me/")
            .await
            .status,
        200
    );
}

// ---------------------------------------------------------------------------------------------
// Re-login and proxies
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn logging_in_again_replaces_the_current_session() {
    let s = started_with_user(&[]);
    s.create_user("bob", PASSWORD);
    let mut b = Browser::logged_in(&s, "alice", PASSWORD).await;
    let first = b.session().unwrap();
    let first_token = b.csrf().unwrap();
    // Switch account in the same browser (the session-bound token is the one to send).
    let r = b.login("bob", PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["user"]["username"], "bob");
    let second = b.session().unwrap();
    assert_ne!(second, first);
    assert_ne!(b.csrf().unwrap(), first_token);
    assert_anonymous(&me_with_session(&s, &first).await);
    assert_eq!(me_with_session(&s, &second).await.body["username"], "bob");
}

#[tokio::test]
async fn forwarded_headers_count_only_from_trusted_proxies() {
    // Untrusted peer: X-Forwarded-* are ignored (no Secure, real peer address).
    let s = started_with_user(&[]);
    let fwd = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-for", "203.0.113.7"),
    ];
    let mut b = Browser::new(&s);
    let t = b.fetch_csrf().await;
    let mut h = fwd.to_vec();
    h.push(("X-CSRFToken", &t));
    let r = b
        .send(
            Method::POST,
            "/api/auth/login/",
            &h,
            Some(&creds("alice", PASSWORD)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        !r.set_cookie_spec("sessionid").has("secure"),
        "spoofed X-Forwarded-Proto believed"
    );
    let r = b.get("/api/auth/sessions/").await;
    assert_eq!(
        r.body[0]["ip"], "127.0.0.1",
        "spoofed X-Forwarded-For believed: {}",
        r.body
    );

    // Trusted proxy: https is honoured (Secure cookies under secure_cookies=auto) and the
    // client address is the forwarded one.
    let s = started_with_user(&[("SEKISHO_SERVER__TRUSTED_PROXIES", "127.0.0.1")]);
    let mut b = Browser::new(&s);
    let r = b.send(Method::GET, "/api/auth/csrf/", &fwd, None).await;
    assert!(
        r.set_cookie_spec("csrftoken").has("secure"),
        "{:?}",
        r.set_cookies()
    );
    let t = b.csrf().unwrap();
    let mut h = fwd.to_vec();
    h.push(("X-CSRFToken", &t));
    let r = b
        .send(
            Method::POST,
            "/api/auth/login/",
            &h,
            Some(&creds("alice", PASSWORD)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.set_cookie_spec("sessionid").has("secure"),
        "{:?}",
        r.set_cookies()
    );
    let r = b.send(Method::GET, "/api/auth/sessions/", &fwd, None).await;
    assert_eq!(r.body[0]["ip"], "203.0.113.7", "{}", r.body);
}
