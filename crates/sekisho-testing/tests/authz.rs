//! Authorization through HTTP, in process on every backend: the forward-auth gate's handling of
//! forwarded headers (trusted proxies only), its CSRF rule, bad input; the check and list API;
//! the axum guards an embedding application uses. Same answers whichever way the caller logged
//! in.

use axum::http::Method;
use sekisho_core::account::NewUser;
use sekisho_core::authz::admin::Admin;
use sekisho_core::authz::{ObjectGrant, ObjectRef, Principal};
use sekisho_testing::harness::{Harness, PASSWORD};
use serde_json::{Value, json};

const POLICY: &str = r#"
[policy]
default = "authenticated"

[[policy.rules]]
path = "/public/**"
require = "anonymous"

[[policy.rules]]
path = "/orders/{id}/"
require = "object:shop.change_order:{id}"
"#;

async fn gate(trusted: bool) -> Harness {
    let env: &[(&str, &str)] = if trusted {
        &[("SEKISHO_SERVER__TRUSTED_PROXIES", "127.0.0.1")]
    } else {
        &[]
    };
    Harness::start_toml(POLICY, env).await
}

async fn check(h: &Harness, headers: &[(&str, &str)]) -> (u16, Value) {
    let r = h.send(Method::GET, "/api/auth/check/", headers, None).await;
    assert_eq!(r.header("cache-control"), Some("no-store"));
    (r.status.as_u16(), r.body)
}

/// Creates a permission and grants `user` the object permission on `id`.
async fn grant_object(h: &Harness, user: &str, codename: &str, id: &str) {
    let admin = Admin::cli();
    if h.auth.admin_permission(&admin, codename).await.is_err() {
        h.auth
            .admin_create_permission(&admin, codename, "")
            .await
            .unwrap();
    }
    let u = h.auth.find_user(user).await.unwrap().unwrap();
    h.auth
        .admin_grant_object(
            &admin,
            &ObjectGrant {
                principal: Principal::User(u.id),
                permission: codename.into(),
                object: ObjectRef {
                    object_type: "shop.order".into(),
                    object_id: id.into(),
                },
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn forwarded_headers_count_only_from_trusted_proxies() {
    let trusted = gate(true).await;
    let untrusted = gate(false).await;
    let public = [("x-original-uri", "/public/page")];
    assert_eq!(
        check(&trusted, &public).await.0,
        200,
        "the public rule applies"
    );
    // From an untrusted peer the header is ignored: the default (authenticated) applies.
    assert_eq!(check(&untrusted, &public).await.0, 401);
    // Traefik's and Caddy's spelling.
    assert_eq!(
        check(
            &trusted,
            &[
                ("x-forwarded-uri", "/public/a"),
                ("x-forwarded-method", "DELETE")
            ]
        )
        .await
        .0,
        200
    );
    // Without an original URI the default applies.
    let (status, body) = check(&trusted, &[]).await;
    assert_eq!(status, 401);
    assert_eq!(
        body["detail"],
        "Authentication credentials were not provided."
    );
}

#[tokio::test]
async fn the_gate_authenticates_like_the_api_and_sends_identity_headers() {
    let h = gate(true).await;
    h.user("ann").await;
    grant_object(&h, "ann", "shop.change_order", "7").await;
    let (access, _) = h.token_pair("ann", PASSWORD).await;
    let bearer = format!("Bearer {access}");
    let r = h
        .send(
            Method::GET,
            "/api/auth/check/",
            &[("authorization", &bearer), ("x-original-uri", "/orders/7/")],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-auth-username"), Some("ann"));
    let id = h
        .auth
        .find_user("ann")
        .await
        .unwrap()
        .unwrap()
        .id
        .to_string();
    assert_eq!(r.header("x-auth-user-id"), Some(id.as_str()));
    assert_eq!(r.header("x-auth-groups"), Some(""));
    let other = [
        ("authorization", bearer.as_str()),
        ("x-original-uri", "/orders/8/"),
    ];
    assert_eq!(check(&h, &other).await.0, 403);
    // A bad token is the API's 401, not anonymous.
    let (status, body) = check(
        &h,
        &[
            ("authorization", "Bearer nonsense"),
            ("x-original-uri", "/public/x"),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "token_not_valid");

    // Session mode: a cookie-authenticated unsafe original method needs the CSRF header.
    let mut b = h.browser();
    assert_eq!(b.login("ann", PASSWORD).await.status, 200);
    let jar = format!(
        "sessionid={}; csrftoken={}",
        b.session().unwrap(),
        b.csrf().unwrap()
    );
    let csrf = b.csrf().unwrap();
    let patch = [
        ("cookie", jar.as_str()),
        ("x-original-uri", "/orders/7/"),
        ("x-original-method", "PATCH"),
    ];
    let (status, body) = check(&h, &patch).await;
    assert_eq!(status, 403);
    assert_eq!(body["detail"], "CSRF Failed: CSRF token missing.");
    let mut with_csrf = patch.to_vec();
    with_csrf.push(("x-csrftoken", csrf.as_str()));
    assert_eq!(check(&h, &with_csrf).await.0, 200);
    // Reading needs no CSRF token.
    assert_eq!(
        check(
            &h,
            &[("cookie", jar.as_str()), ("x-original-uri", "/orders/7/")]
        )
        .await
        .0,
        200
    );
}

#[tokio::test]
async fn bad_forwarded_input_is_refused_never_a_server_error() {
    let h = gate(true).await;
    for headers in [
        vec![("x-original-uri", "/public/../admin/")],
        vec![("x-original-uri", "/public//x")],
        vec![("x-original-uri", "/public/%2e%2e/x")],
        vec![("x-original-uri", "/public/a%2fb")],
        vec![("x-original-uri", "/public/%00")],
        vec![("x-original-uri", "/public/%zz")],
        vec![("x-original-uri", "relative")],
        vec![
            ("x-original-uri", "/public/x"),
            ("x-original-method", "FETCH"),
        ],
    ] {
        let (status, _) = check(&h, &headers).await;
        assert_eq!(status, 403, "{headers:?}");
    }
    // Percent-encoded ordinary characters are decoded before matching.
    assert_eq!(check(&h, &[("x-original-uri", "/p%75blic/x")]).await.0, 200);
}

#[tokio::test]
async fn check_and_list_answer_the_same_in_both_modes() {
    let h = Harness::start(&[]).await;
    h.user("bo").await;
    h.user("cy").await;
    for id in ["3", "10", "2", "x-1"] {
        grant_object(&h, "bo", "shop.change_order", id).await;
    }
    let (access, _) = h.token_pair("bo", PASSWORD).await;
    let bearer = format!("Bearer {access}");
    let mut b = h.browser();
    b.login("bo", PASSWORD).await;
    let post = async |b: &mut sekisho_testing::harness::Browser<'_>, path: &str, body: Value| {
        let s = b.post(path, &body).await;
        let j = h
            .send(
                Method::POST,
                path,
                &[
                    ("authorization", &bearer),
                    ("content-type", "application/json"),
                ],
                Some(body.to_string().into_bytes()),
            )
            .await;
        assert_eq!(
            s.status, j.status,
            "{path} {body}: {} vs {}",
            s.body, j.body
        );
        assert_eq!(s.body, j.body);
        (s.status.as_u16(), s.body)
    };
    let (s, r) = post(
        &mut b,
        "/api/authz/check/",
        json!({"permission": "shop.change_order", "object_id": 3}),
    )
    .await;
    assert_eq!((s, r), (200, json!({"allowed": true})));
    let (_, r) = post(
        &mut b,
        "/api/authz/check/",
        json!({"permission": "shop.change_order", "object_id": "4"}),
    )
    .await;
    assert_eq!(r, json!({"allowed": false}));
    let (_, r) = post(
        &mut b,
        "/api/authz/check/",
        json!({"permission": "shop.change_order"}),
    )
    .await;
    assert_eq!(r, json!({"allowed": false}), "no model-wide grant");
    // Pages in text order, with a cursor.
    let (_, r) = post(
        &mut b,
        "/api/authz/list/",
        json!({"permission": "shop.change_order", "limit": 2}),
    )
    .await;
    assert_eq!(
        r,
        json!({"all": false, "object_ids": ["10", "2"], "next": "2"})
    );
    let (_, r) = post(
        &mut b,
        "/api/authz/list/",
        json!({"permission": "shop.change_order", "limit": 2, "after": "2"}),
    )
    .await;
    assert_eq!(
        r,
        json!({"all": false, "object_ids": ["3", "x-1"], "next": null})
    );
    // Asking about someone else needs staff or sekisho.check_permissions.
    let cy = h.auth.find_user("cy").await.unwrap().unwrap().id;
    let (s, _) = post(
        &mut b,
        "/api/authz/check/",
        json!({"permission": "shop.change_order", "object_id": 3, "user": cy}),
    )
    .await;
    assert_eq!(s, 403);
    // Bad input: 400 with the field named, never a 5xx.
    for (body, field) in [
        (json!({}), "permission"),
        (json!({"permission": "nodot"}), "permission"),
        (
            json!({"permission": "shop.x", "object_id": "1"}),
            "object_type",
        ),
        (
            json!({"permission": "shop.change_order", "object_id": "a\u{0}b"}),
            "object_id",
        ),
        (
            json!({"permission": "shop.change_order", "object_id": "a/b"}),
            "object_id",
        ),
        (
            json!({"permission": "shop.change_order", "user": "me"}),
            "user",
        ),
        (
            json!({"permission": "shop.change_order", "user": 1e40}),
            "user",
        ),
        (
            json!({"permission": "shop.change_order", "object_id": [1]}),
            "object_id",
        ),
    ] {
        let (s, r) = post(&mut b, "/api/authz/check/", body.clone()).await;
        assert_eq!(s, 400, "{body}: {r}");
        assert!(r.get(field).is_some(), "{body}: {r}");
    }
    let (s, r) = post(
        &mut b,
        "/api/authz/list/",
        json!({"permission": "shop.change_order", "limit": 0}),
    )
    .await;
    assert_eq!(s, 400, "{r}");
    let (s, _) = post(
        &mut b,
        "/api/authz/list/",
        json!({"permission": "shop.change_order", "after": {"x": 1}}),
    )
    .await;
    assert_eq!(s, 400);
    // Anonymous callers are told to authenticate, whatever the body: the caller is checked
    // before the body is read, as on every authenticated endpoint.
    let r = h
        .post_json(
            "/api/authz/check/",
            json!({"permission": "shop.change_order"}),
        )
        .await;
    assert_eq!(r.status, 401);
    for path in ["/api/authz/check/", "/api/authz/list/"] {
        let r = h
            .send(
                Method::POST,
                path,
                &[("content-type", "application/json")],
                Some(b"{not json".to_vec()),
            )
            .await;
        assert_eq!(r.status, 401, "{path}: {}", r.body);
    }
    // An unparseable body from an authenticated caller is DRF's `detail` 400 (documented).
    let r = h
        .send(
            Method::POST,
            "/api/authz/check/",
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            Some(b"{not json".to_vec()),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body["detail"].is_string(), "{}", r.body);
}

#[tokio::test]
async fn superusers_and_model_wide_grants_cover_every_object() {
    let h = Harness::start(&[]).await;
    h.auth
        .create_user(
            &NewUser {
                username: "root".into(),
                is_superuser: true,
                ..NewUser::default()
            },
            PASSWORD,
        )
        .await
        .unwrap();
    let (access, _) = h.token_pair("root", PASSWORD).await;
    let r = h
        .send(
            Method::POST,
            "/api/authz/list/",
            &[
                ("authorization", &format!("Bearer {access}")),
                ("content-type", "application/json"),
            ],
            Some(br#"{"permission":"shop.change_order"}"#.to_vec()),
        )
        .await;
    assert_eq!(r.body, json!({"all": true, "object_ids": [], "next": null}));
}

mod guards {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::Request;
    use axum::routing::get;
    use sekisho_axum::{AppState, ObjectPermission, Permission, RequireObjectPerm, RequirePerm};
    use std::net::SocketAddr;
    use tower::ServiceExt;

    struct ChangeOrder;
    impl ObjectPermission for ChangeOrder {
        const CODENAME: &'static str = "shop.change_order";
        const SEGMENT: &'static str = "id";
    }
    struct ViewReport;
    impl Permission for ViewReport {
        const CODENAME: &'static str = "shop.view_report";
    }

    async fn call(app: &Router, path: &str, bearer: Option<&str>) -> u16 {
        let mut req = Request::builder().uri(path);
        if let Some(t) = bearer {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let mut req = req.body(Body::empty()).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 1))));
        app.clone().oneshot(req).await.unwrap().status().as_u16()
    }

    #[tokio::test]
    async fn an_embedding_app_guards_routes_with_the_same_rules() {
        let h = Harness::start(&[]).await;
        h.user("dee").await;
        grant_object(&h, "dee", "shop.change_order", "5").await;
        let app = Router::new()
            .route(
                "/orders/{id}/",
                get(
                    |RequireObjectPerm(user, id, ..): RequireObjectPerm<ChangeOrder>| async move {
                        format!("{} may change {id}", user.username)
                    },
                ),
            )
            .route(
                "/reports/",
                get(|_: RequirePerm<ViewReport>| async { "ok" }),
            )
            .with_state(AppState::new(h.auth.clone(), &h.config));
        let (access, _) = h.token_pair("dee", PASSWORD).await;
        assert_eq!(call(&app, "/orders/5/", Some(&access)).await, 200);
        assert_eq!(call(&app, "/orders/6/", Some(&access)).await, 403);
        assert_eq!(call(&app, "/orders/5/", None).await, 401);
        assert_eq!(call(&app, "/reports/", Some(&access)).await, 403);
    }
}
