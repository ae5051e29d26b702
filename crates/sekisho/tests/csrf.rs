//! CSRF (DESIGN §3.3): the double-submit check bound to the session, the Origin check, the
//! bearer exemption, configurable names, and the first-load / after-expiry bootstrap.
mod common;
use common::*;

use reqwest::Method;
use serde_json::{Value, json};

const COOKIE_NOT_SET: &str = "CSRF Failed: CSRF cookie not set.";
const TOKEN_MISSING: &str = "CSRF Failed: CSRF token missing.";
const TOKEN_INCORRECT: &str = "CSRF Failed: CSRF token incorrect.";

fn creds(user: &str) -> Value {
    json!({"username": user, "password": PASSWORD})
}

fn started_with_users(env: &[(&str, &str)]) -> Server {
    let s = Server::start(env);
    s.create_user("alice", PASSWORD);
    s.create_user("bob", PASSWORD);
    s
}

#[track_caller]
fn assert_csrf(r: &Reply, detail: &str) {
    assert_eq!(
        r.status, 403,
        "expected CSRF 403, got {} {}",
        r.status, r.body
    );
    assert_json(r);
    assert_eq!(r.body, json!({"detail": detail}));
}

/// The unsafe session-authenticated requests the matrix runs on.
#[derive(Clone, Copy, Debug)]
enum Unsafe {
    PatchMe,
    Logout,
}

impl Unsafe {
    fn method(self) -> Method {
        match self {
            Unsafe::PatchMe => Method::PATCH,
            Unsafe::Logout => Method::POST,
        }
    }
    fn path(self) -> &'static str {
        match self {
            Unsafe::PatchMe => "/api/auth/me/",
            Unsafe::Logout => "/api/auth/logout/",
        }
    }
    fn body(self) -> Value {
        match self {
            Unsafe::PatchMe => json!({"first_name": "Mallory"}),
            Unsafe::Logout => json!({}),
        }
    }
}

/// Sends `u` with exactly the given session cookie, CSRF cookie, CSRF header and extra headers.
async fn send_raw(
    s: &Server,
    u: Unsafe,
    session: &str,
    csrf_cookie: Option<&str>,
    csrf_header: Option<&str>,
    extra: &[(&str, &str)],
) -> Reply {
    let mut b = Browser::with_cookies(s, &[("sessionid", session)]);
    if let Some(c) = csrf_cookie {
        b.set_cookie("csrftoken", c);
    }
    let mut headers: Vec<(&str, &str)> = extra.to_vec();
    if let Some(h) = csrf_header {
        headers.push(("X-CSRFToken", h));
    }
    b.send(u.method(), u.path(), &headers, Some(&u.body()))
        .await
}

/// Asserts the session is intact and its profile was not changed by a refused request.
async fn assert_untouched(s: &Server, session: &str) {
    let r = Browser::with_cookies(s, &[("sessionid", session)])
        .get("/api/auth/me/")
        .await;
    assert_eq!(
        r.status, 200,
        "session should survive a refused request: {}",
        r.body
    );
    assert_eq!(
        r.body["first_name"], "",
        "a refused request changed the profile"
    );
}

#[tokio::test]
async fn the_csrf_matrix_on_session_requests() {
    let s = started_with_users(&[]);
    for u in [Unsafe::PatchMe, Unsafe::Logout] {
        let mut alice = Browser::new(&s);
        let pre_login = alice.fetch_csrf().await;
        assert_eq!(alice.login("alice", PASSWORD).await.status, 200);
        let sid = alice.session().unwrap();
        let token = alice.csrf().unwrap();
        assert_ne!(token, pre_login);
        // Another session (another user, and another session of the same user).
        let bob = Browser::logged_in(&s, "bob", PASSWORD).await;
        let alice2 = Browser::logged_in(&s, "alice", PASSWORD).await;

        // No cookie at all.
        assert_csrf(
            &send_raw(&s, u, &sid, None, None, &[]).await,
            COOKIE_NOT_SET,
        );
        // No cookie but a header: still "cookie not set".
        assert_csrf(
            &send_raw(&s, u, &sid, None, Some(&token), &[]).await,
            COOKIE_NOT_SET,
        );
        // Cookie but no header.
        assert_csrf(
            &send_raw(&s, u, &sid, Some(&token), None, &[]).await,
            TOKEN_MISSING,
        );
        // Empty header.
        assert_csrf(
            &send_raw(&s, u, &sid, Some(&token), Some(""), &[]).await,
            TOKEN_MISSING,
        );
        // Header differs from cookie.
        let mut other = token.clone();
        other.replace_range(0..1, if token.starts_with('0') { "1" } else { "0" });
        assert_csrf(
            &send_raw(&s, u, &sid, Some(&token), Some(&other), &[]).await,
            TOKEN_INCORRECT,
        );
        assert_csrf(
            &send_raw(&s, u, &sid, Some(&token), Some(&token.to_uppercase()), &[]).await,
            TOKEN_INCORRECT,
        );
        // Same arbitrary value in both (plain double submit is not enough: it must be minted).
        let forged = "cd".repeat(32);
        assert_csrf(
            &send_raw(&s, u, &sid, Some(&forged), Some(&forged), &[]).await,
            TOKEN_INCORRECT,
        );
        // A token minted for another session, in both cookie and header.
        for foreign in [bob.csrf().unwrap(), alice2.csrf().unwrap()] {
            assert_csrf(
                &send_raw(&s, u, &sid, Some(&foreign), Some(&foreign), &[]).await,
                TOKEN_INCORRECT,
            );
        }
        // The pre-login (anonymous) token after login.
        assert_csrf(
            &send_raw(&s, u, &sid, Some(&pre_login), Some(&pre_login), &[]).await,
            TOKEN_INCORRECT,
        );
        // A foreign Origin, even with a good token.
        let r = send_raw(
            &s,
            u,
            &sid,
            Some(&token),
            Some(&token),
            &[("origin", "https://evil.example")],
        )
        .await;
        assert_csrf(
            &r,
            "CSRF Failed: Origin checking failed - https://evil.example does not match any trusted origins.",
        );
        // "null" (sandboxed iframes, some redirects) is not trusted either.
        let r = send_raw(
            &s,
            u,
            &sid,
            Some(&token),
            Some(&token),
            &[("origin", "null")],
        )
        .await;
        assert_csrf(
            &r,
            "CSRF Failed: Origin checking failed - null does not match any trusted origins.",
        );
        // A lookalike of our own origin with another scheme or port.
        let https_self = s.base.replacen("http://", "https://", 1);
        let r = send_raw(
            &s,
            u,
            &sid,
            Some(&token),
            Some(&token),
            &[("origin", &https_self)],
        )
        .await;
        assert_eq!(r.status, 403, "{u:?} {https_self}: {}", r.body);

        assert_untouched(&s, &sid).await;

        // Finally the correct request, with the server's own Origin: allowed.
        let r = send_raw(
            &s,
            u,
            &sid,
            Some(&token),
            Some(&token),
            &[("origin", &s.base)],
        )
        .await;
        assert_eq!(r.status, 200, "{u:?}: {}", r.body);
        match u {
            Unsafe::PatchMe => assert_eq!(r.body["first_name"], "Mallory"),
            Unsafe::Logout => assert_eq!(r.body, json!({})),
        }
        // Reset the profile for the next round.
        let _ = alice
            .patch("/api/auth/me/", &json!({"first_name": ""}))
            .await;
    }
}

#[tokio::test]
async fn a_request_without_origin_is_allowed_with_a_good_token() {
    let s = started_with_users(&[]);
    let mut b = Browser::logged_in(&s, "alice", PASSWORD).await;
    let r = b
        .patch("/api/auth/me/", &json!({"last_name": "Liddell"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["last_name"], "Liddell");
    // DELETE of a session needs it too.
    let r = b
        .send(
            Method::DELETE,
            &format!("/api/auth/sessions/{}/", "0".repeat(32)),
            &[],
            None,
        )
        .await;
    assert_csrf(&r, TOKEN_MISSING);
    // And logout-all.
    let r = b
        .send(Method::POST, "/api/auth/logout-all/", &[], Some(&json!({})))
        .await;
    assert_csrf(&r, TOKEN_MISSING);
    assert_eq!(
        b.get("/api/auth/me/").await.status,
        200,
        "refused logout-all must not log out"
    );
    // And the password change.
    let r = b
        .send(
            Method::POST,
            "/api/auth/password/",
            &[],
            Some(&json!({"old_password": PASSWORD, "new_password": "another passphrase"})),
        )
        .await;
    assert_csrf(&r, TOKEN_MISSING);
    assert_eq!(
        Browser::new(&s).login("alice", PASSWORD).await.status,
        200,
        "password must be unchanged"
    );
}

#[tokio::test]
async fn the_csrf_matrix_on_login() {
    let s = started_with_users(&[]);
    let mut b = Browser::new(&s);
    let t = b.fetch_csrf().await;
    let login = |cookie: Option<String>, header: Option<String>, origin: Option<&'static str>| {
        let s = &s;
        async move {
            let mut b = Browser::new(s);
            if let Some(c) = cookie {
                b.set_cookie("csrftoken", &c);
            }
            let mut h: Vec<(&str, String)> = vec![];
            if let Some(v) = header {
                h.push(("X-CSRFToken", v));
            }
            if let Some(o) = origin {
                h.push(("origin", o.to_string()));
            }
            let hs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            b.send(Method::POST, "/api/auth/login/", &hs, Some(&creds("alice")))
                .await
        }
    };
    let r = login(None, None, None).await;
    assert_csrf(&r, COOKIE_NOT_SET);
    assert!(r.set_cookie_specs("sessionid").is_empty());
    assert_csrf(&login(Some(t.clone()), None, None).await, TOKEN_MISSING);
    assert_csrf(
        &login(Some(t.clone()), Some("ab".repeat(32)), None).await,
        TOKEN_INCORRECT,
    );
    assert_csrf(
        &login(Some("ab".repeat(32)), Some("ab".repeat(32)), None).await,
        TOKEN_INCORRECT,
    );
    assert_csrf(
        &login(
            Some(t.clone()),
            Some(t.clone()),
            Some("https://evil.example"),
        )
        .await,
        "CSRF Failed: Origin checking failed - https://evil.example does not match any trusted origins.",
    );
    // A session-bound token (from someone else's session) does not work for an anonymous login.
    let bob = Browser::logged_in(&s, "bob", PASSWORD).await;
    let bt = bob.csrf().unwrap();
    assert_csrf(
        &login(Some(bt.clone()), Some(bt), None).await,
        TOKEN_INCORRECT,
    );
    // Wrong CSRF is checked before the password: a bad password with no CSRF is still a 403.
    let mut nb = Browser::new(&s);
    let r = nb
        .send(
            Method::POST,
            "/api/auth/login/",
            &[],
            Some(&json!({"username": "alice", "password": "x"})),
        )
        .await;
    assert_csrf(&r, COOKIE_NOT_SET);

    // The right token succeeds.
    let r = login(Some(t.clone()), Some(t.clone()), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A token is reusable by its browser (it is not single use).
    let r = login(Some(t.clone()), Some(t), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn own_origin_and_trusted_origins_are_allowed() {
    let s = started_with_users(&[("SEKISHO_CSRF__TRUSTED_ORIGINS", "https://app.example")]);
    // Own origin, exactly as a browser writes it from the Host.
    let mut b = Browser::new(&s);
    b.fetch_csrf().await;
    let t = b.csrf().unwrap();
    let own = format!("http://{}", s.authority());
    let r = b
        .send(
            Method::POST,
            "/api/auth/login/",
            &[("X-CSRFToken", &t), ("origin", &own)],
            Some(&creds("alice")),
        )
        .await;
    assert_eq!(r.status, 200, "own origin {own}: {}", r.body);

    // The trusted origin, on login and on a session request.
    let mut b = Browser::new(&s);
    let t = b.fetch_csrf().await;
    let r = b
        .send(
            Method::POST,
            "/api/auth/login/",
            &[("X-CSRFToken", &t), ("origin", "https://app.example")],
            Some(&creds("alice")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t = b.csrf().unwrap();
    let r = b
        .send(
            Method::PATCH,
            "/api/auth/me/",
            &[("X-CSRFToken", &t), ("origin", "https://app.example")],
            Some(&json!({"first_name": "Trusted"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["first_name"], "Trusted");

    // Untrusted ones are still refused, including a sub-domain and another scheme.
    for bad in [
        "https://evil.example",
        "https://evil.app.example",
        "http://app.example",
        "https://app.example:8443",
    ] {
        let r = b
            .send(
                Method::PATCH,
                "/api/auth/me/",
                &[("X-CSRFToken", &t), ("origin", bad)],
                Some(&json!({"first_name": "No"})),
            )
            .await;
        assert_csrf(
            &r,
            &format!(
                "CSRF Failed: Origin checking failed - {bad} does not match any trusted origins."
            ),
        );
    }
    assert_eq!(b.get("/api/auth/me/").await.body["first_name"], "Trusted");
}

#[tokio::test]
async fn bearer_requests_are_exempt() {
    let s = started_with_users(&[]);
    let (access, _) = s.token_pair("alice", PASSWORD).await;
    let auth = format!("Bearer {access}");
    let r = s
        .send(
            Method::PATCH,
            "/api/auth/me/",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(json!({"first_name": "Bea"}).to_string().as_bytes()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["first_name"], "Bea");
    // Even with a foreign Origin (a browser never adds Authorization by itself).
    let r = s
        .send(
            Method::PATCH,
            "/api/auth/me/",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
                ("origin", "https://evil.example"),
            ],
            Some(json!({"last_name": "Bearer"}).to_string().as_bytes()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Even with a session cookie present but no CSRF: bearer wins, no CSRF check.
    let b = Browser::logged_in(&s, "alice", PASSWORD).await;
    let cookie = format!("sessionid={}", b.session().unwrap());
    let r = s
        .send(
            Method::POST,
            "/api/auth/password/",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
                ("cookie", &cookie),
            ],
            Some(
                json!({"old_password": PASSWORD, "new_password": "a fresh passphrase"})
                    .to_string()
                    .as_bytes(),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body["access"].is_string() && r.body["refresh"].is_string(),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn safe_methods_need_no_csrf() {
    let s = started_with_users(&[]);
    let b = Browser::logged_in(&s, "alice", PASSWORD).await;
    // Only the session cookie, a foreign Origin, no CSRF anything.
    let cookie = format!("sessionid={}", b.session().unwrap());
    for path in ["/api/auth/me/", "/api/auth/sessions/"] {
        let r = s
            .send(
                Method::GET,
                path,
                &[("cookie", &cookie), ("origin", "https://evil.example")],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    let r = s
        .send(Method::HEAD, "/api/auth/me/", &[("cookie", &cookie)], None)
        .await;
    assert_eq!(r.status, 200, "HEAD");
}

#[tokio::test]
async fn me_reissues_a_session_bound_token_when_the_cookie_is_lost() {
    let s = started_with_users(&[]);
    let mut b = Browser::logged_in(&s, "alice", PASSWORD).await;
    let old = b.csrf().unwrap();
    b.remove_cookie("csrftoken");
    let r = b.get("/api/auth/me/").await;
    assert_eq!(r.status, 200);
    let fresh = r.set_cookie_spec("csrftoken").value;
    assert!(is_lower_hex(&fresh, 64));
    let r = b
        .patch("/api/auth/me/", &json!({"first_name": "Again"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The old one was bound to the same session, so it still works too (not single-use).
    b.set_cookie("csrftoken", &old);
    let r = b
        .patch("/api/auth/me/", &json!({"first_name": "Old"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // A browser holding an anonymous token alongside a live session gets the session's token
    // from GET /api/auth/csrf/ and GET /api/auth/me/.
    let anon = Browser::new(&s).fetch_csrf().await;
    b.set_cookie("csrftoken", &anon);
    let r = b.get("/api/auth/csrf/").await;
    let t = r.str("csrfToken");
    assert_ne!(t, anon);
    assert_eq!(r.set_cookie_spec("csrftoken").value, t);
    assert_eq!(
        b.patch("/api/auth/me/", &json!({"first_name": "Bound"}))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn configurable_cookie_and_header_names_work_end_to_end() {
    let s = started_with_users(&[
        ("SEKISHO_CSRF__COOKIE_NAME", "xsrf"),
        ("SEKISHO_CSRF__HEADER_NAME", "X-XSRF-TOKEN"),
        ("SEKISHO_SESSIONS__COOKIE_NAME", "sid"),
    ]);
    let mut b = Browser::with_names(&s, "sid", "xsrf", "X-XSRF-TOKEN");
    let r = b.get("/api/auth/csrf/").await;
    assert_eq!(r.status, 200);
    let t = r.str("csrfToken");
    assert_eq!(r.set_cookie_spec("xsrf").value, t);
    assert!(
        r.set_cookie_specs("csrftoken").is_empty(),
        "{:?}",
        r.set_cookies()
    );

    // The default header name is not accepted any more.
    let r = b
        .send(
            Method::POST,
            "/api/auth/login/",
            &[("X-CSRFToken", &t)],
            Some(&creds("alice")),
        )
        .await;
    assert_csrf(&r, TOKEN_MISSING);
    // Nor the default cookie name.
    let mut wrong = Browser::with_cookies(&s, &[("csrftoken", &t)]);
    let r = wrong
        .send(
            Method::POST,
            "/api/auth/login/",
            &[("X-XSRF-TOKEN", &t)],
            Some(&creds("alice")),
        )
        .await;
    assert_csrf(&r, COOKIE_NOT_SET);

    let r = b.login("alice", PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let sc = r.set_cookie_spec("sid");
    assert!(sc.has("httponly"));
    assert!(is_lower_hex(&sc.value, 64));
    assert!(r.set_cookie_specs("sessionid").is_empty());
    assert_ne!(r.set_cookie_spec("xsrf").value, t);

    assert_eq!(b.get("/api/auth/me/").await.status, 200);
    let r = b
        .patch("/api/auth/me/", &json!({"first_name": "Named"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The session under the default name is not recognised.
    let sid = b.session().unwrap();
    let r = Browser::with_cookies(&s, &[("sessionid", &sid)])
        .get("/api/auth/me/")
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    // Logout clears the renamed cookie.
    let r = b.post("/api/auth/logout/", &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.set_cookie_spec("sid").max_age(), Some(0));
    let r = Browser::with_names(&s, "sid", "xsrf", "X-XSRF-TOKEN");
    let mut r = r;
    r.set_cookie("sid", &sid);
    assert_eq!(r.get("/api/auth/me/").await.status, 401);
}

#[tokio::test]
async fn logout_of_a_dead_session_needs_no_csrf() {
    // An expired/unknown session is anonymous: logout then just clears the cookie.
    let s = started_with_users(&[]);
    let mut b = Browser::with_cookies(&s, &[("sessionid", &"ef".repeat(32))]);
    let r = b.send(Method::POST, "/api/auth/logout/", &[], None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, json!({}));
    assert_eq!(r.set_cookie_spec("sessionid").max_age(), Some(0));
}
