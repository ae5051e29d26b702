//! The administration API under `/api/admin/`, against the real binary: who may do what (staff,
//! an area's `sekisho.*` permission, superuser-only changes), both ways of logging in, DRF's
//! pagination, the audit log, changes seen on the very next request, and bad input that is
//! always a 4xx.
mod common;
use common::*;

use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const DENIED: &str = "You do not have permission to perform this action.";

/// A server with `root` (superuser), `staff` (staff), `alice` (nobody) and `grouper` (holds
/// only `sekisho.manage_groups`).
fn start() -> Server {
    let s = Server::start(&[]);
    for (name, flags) in [
        ("root", &["--superuser", "--staff"][..]),
        ("staff", &["--staff"][..]),
        ("alice", &[][..]),
        ("grouper", &[][..]),
    ] {
        let mut args = vec!["user", "create", name, "--password-stdin"];
        args.extend_from_slice(flags);
        let out = s.cli(&args, &format!("{PASSWORD}\n"));
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    ensure_perm(&s, "sekisho.manage_groups");
    let out = s.cli(&["user", "grant", "grouper", "sekisho.manage_groups"], "");
    assert!(out.status.success(), "{}", stderr_of(&out));
    // The CLI is another process: the server sees its changes within the cache bound.
    std::thread::sleep(CACHE_BOUND + Duration::from_millis(100));
    s
}

/// Creates a permission unless the server already knows it.
fn ensure_perm(s: &Server, codename: &str) {
    let out = s.cli(&["perm", "create", codename], "");
    if !out.status.success() {
        let list = stdout_of(&s.cli(&["perm", "list"], ""));
        assert!(
            list.lines()
                .any(|l| l.split_whitespace().nth(1) == Some(codename)),
            "perm create {codename} failed: {}",
            stderr_of(&out)
        );
    }
    std::thread::sleep(CACHE_BOUND + Duration::from_millis(100));
}

async fn token(s: &Server, user: &str) -> String {
    s.token_pair(user, PASSWORD).await.0
}

/// A bearer-authenticated call with an optional JSON body.
async fn call(s: &Server, token: &str, method: Method, path: &str, body: Option<Value>) -> Reply {
    call_with(s, token, method, path, body, &[]).await
}

async fn call_with(
    s: &Server,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    extra: &[(&str, &str)],
) -> Reply {
    let auth = format!("Bearer {token}");
    let body = body.map(|b| b.to_string());
    let mut headers = vec![("authorization", auth.as_str())];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    headers.extend_from_slice(extra);
    let r = s
        .send(method, path, &headers, body.as_deref().map(str::as_bytes))
        .await;
    assert!(r.status.as_u16() < 500, "{path}: {} {}", r.status, r.body);
    r
}

async fn get(s: &Server, token: &str, path: &str) -> Reply {
    call(s, token, Method::GET, path, None).await
}

async fn post(s: &Server, token: &str, path: &str, body: Value) -> Reply {
    call(s, token, Method::POST, path, Some(body)).await
}

#[track_caller]
fn ok(r: &Reply, status: u16) -> &Value {
    assert_eq!(r.status, status, "{}", r.body);
    &r.body
}

#[track_caller]
fn denied(r: &Reply) {
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.body, json!({"detail": DENIED}));
}

async fn user_id(s: &Server, root: &str, name: &str) -> i64 {
    let r = get(s, root, &format!("/api/admin/users/?search={name}")).await;
    ok(&r, 200)["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == name)
        .unwrap_or_else(|| panic!("no user {name}: {}", r.body))["id"]
        .as_i64()
        .unwrap()
}

async fn me_permissions(s: &Server, token: &str) -> Vec<String> {
    let r = s.get_bearer("/api/auth/me/", token).await;
    serde_json::from_value(ok(&r, 200)["permissions"].clone()).unwrap()
}

#[tokio::test]
async fn staff_non_staff_and_area_permission_holders() {
    let s = start();
    let (root, staff, alice, grouper) = (
        token(&s, "root").await,
        token(&s, "staff").await,
        token(&s, "alice").await,
        token(&s, "grouper").await,
    );
    // Anonymous: DRF's 401; a user without any admin right: 403 everywhere.
    let anon = s.send(Method::GET, "/api/admin/users/", &[], None).await;
    assert_401(
        &anon,
        &json!({"detail": "Authentication credentials were not provided."}),
    );
    for path in [
        "/api/admin/users/",
        "/api/admin/groups/",
        "/api/admin/permissions/",
        "/api/admin/object-permissions/",
        "/api/admin/audit/",
        "/api/admin/users/1/",
        "/api/admin/users/abc/",
    ] {
        denied(&get(&s, &alice, path).await);
    }
    denied(&post(&s, &alice, "/api/admin/groups/", json!({"name": "x"})).await);
    // Permission comes before validation: no hint about the input.
    denied(&post(&s, &alice, "/api/admin/users/", json!({})).await);

    // Staff administer every area.
    let users = get(&s, &staff, "/api/admin/users/").await;
    assert_eq!(ok(&users, 200)["count"], 4);
    let u = &users.body["results"][0];
    for k in [
        "id",
        "username",
        "email",
        "first_name",
        "last_name",
        "is_active",
        "is_staff",
        "is_superuser",
        "groups",
        "permissions",
    ] {
        assert!(u.get(k).is_some(), "no {k} in {u}");
    }
    ok(&get(&s, &staff, "/api/admin/audit/").await, 200);
    ok(&get(&s, &staff, "/api/admin/permissions/").await, 200);

    // sekisho.manage_groups: groups and members, nothing else.
    let g = post(
        &s,
        &grouper,
        "/api/admin/groups/",
        json!({"name": "editors"}),
    )
    .await;
    let gid = ok(&g, 201)["id"].as_i64().unwrap();
    assert_eq!(
        g.body,
        json!({"id": gid, "name": "editors", "permissions": []})
    );
    let listed = get(&s, &grouper, "/api/admin/groups/").await;
    assert_eq!(ok(&listed, 200), &json!([g.body]));
    denied(&get(&s, &grouper, "/api/admin/users/").await);
    denied(&get(&s, &grouper, "/api/admin/audit/").await);
    denied(&get(&s, &grouper, "/api/admin/permissions/").await);
    let alice_id = user_id(&s, &root, "alice").await;
    let members = format!("/api/admin/groups/{gid}/members/");
    let add = post(&s, &grouper, &members, json!({"user_id": alice_id})).await;
    assert_eq!(ok(&add, 200), &json!({"changed": true}));
    let again = post(&s, &grouper, &members, json!({"user_id": alice_id})).await;
    assert_eq!(ok(&again, 200), &json!({"changed": false}));
    let listed = get(&s, &grouper, &members).await;
    assert_eq!(
        ok(&listed, 200),
        &json!([{"id": alice_id, "username": "alice"}])
    );
    // Granting a group a permission is the permissions area.
    ensure_perm(&s, "shop.view_order");
    denied(
        &post(
            &s,
            &grouper,
            &format!("/api/admin/groups/{gid}/permissions/"),
            json!({"permission": "shop.view_order"}),
        )
        .await,
    );
    let renamed = call(
        &s,
        &grouper,
        Method::PATCH,
        &format!("/api/admin/groups/{gid}/"),
        Some(json!({"name": "writers"})),
    )
    .await;
    assert_eq!(ok(&renamed, 200)["name"], "writers");
    let gone = call(
        &s,
        &grouper,
        Method::DELETE,
        &format!("/api/admin/groups/{gid}/"),
        None,
    )
    .await;
    assert_eq!(gone.status, 204, "{}", gone.body);
    assert_eq!(
        get(&s, &grouper, &format!("/api/admin/groups/{gid}/"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn privileges_are_raised_only_by_a_superuser() {
    let s = start();
    let (root, staff) = (token(&s, "root").await, token(&s, "staff").await);
    let alice_id = user_id(&s, &root, "alice").await;
    let root_id = user_id(&s, &root, "root").await;

    for flag in ["is_staff", "is_superuser"] {
        let body = json!({"username": "boss", "password": PASSWORD, flag: true});
        denied(&post(&s, &staff, "/api/admin/users/", body.clone()).await);
        denied(
            &call(
                &s,
                &staff,
                Method::PATCH,
                &format!("/api/admin/users/{alice_id}/"),
                Some(json!({flag: true})),
            )
            .await,
        );
    }
    let created = post(
        &s,
        &staff,
        "/api/admin/users/",
        json!({"username": "carol", "password": PASSWORD, "email": "carol@example.com"}),
    )
    .await;
    let c = ok(&created, 201);
    assert_eq!(c["username"], "carol");
    assert_eq!(c["email"], "carol@example.com");
    assert_eq!(c["is_active"], true);
    assert_eq!(c["is_staff"], false);
    assert_eq!(c["is_superuser"], false);
    // The new user can log in with the password the administrator set.
    token(&s, "carol").await;

    // A superuser's account is changed only by a superuser.
    let patch_root = format!("/api/admin/users/{root_id}/");
    denied(
        &call(
            &s,
            &staff,
            Method::PATCH,
            &patch_root,
            Some(json!({"first_name": "R"})),
        )
        .await,
    );
    denied(
        &post(
            &s,
            &staff,
            &format!("/api/admin/users/{root_id}/deactivate/"),
            json!({}),
        )
        .await,
    );
    denied(
        &post(
            &s,
            &staff,
            &format!("/api/admin/users/{root_id}/password/"),
            json!({"password": "another pass phrase"}),
        )
        .await,
    );
    let patched = call(
        &s,
        &staff,
        Method::PATCH,
        &format!("/api/admin/users/{alice_id}/"),
        Some(json!({"first_name": "  Alice ", "last_name": "Liddell", "is_active": true})),
    )
    .await;
    assert_eq!(ok(&patched, 200)["first_name"], "Alice");
    assert_eq!(patched.body["last_name"], "Liddell");

    // sekisho.* permissions: created and granted only by a superuser.
    denied(
        &post(
            &s,
            &staff,
            "/api/admin/permissions/",
            json!({"codename": "sekisho.extra"}),
        )
        .await,
    );
    let p = post(
        &s,
        &staff,
        "/api/admin/permissions/",
        json!({"codename": "shop.view_order", "name": "Can view order"}),
    )
    .await;
    assert_eq!(ok(&p, 201)["codename"], "shop.view_order");
    assert_eq!(p.body["name"], "Can view order");
    ensure_perm(&s, "sekisho.manage_users");
    let grants = format!("/api/admin/users/{alice_id}/permissions/");
    denied(
        &post(
            &s,
            &staff,
            &grants,
            json!({"permission": "sekisho.manage_users"}),
        )
        .await,
    );
    denied(
        &post(
            &s,
            &staff,
            "/api/admin/object-permissions/",
            json!({"user": alice_id, "permission": "sekisho.manage_users", "object_type": "auth.user", "object_id": "1"}),
        )
        .await,
    );
    let g = post(
        &s,
        &staff,
        &grants,
        json!({"permission": "shop.view_order"}),
    )
    .await;
    assert_eq!(ok(&g, 200), &json!({"changed": true}));
    let g = post(
        &s,
        &root,
        &grants,
        json!({"permission": "sekisho.manage_users"}),
    )
    .await;
    assert_eq!(ok(&g, 200), &json!({"changed": true}));

    // A group that carries a sekisho.* permission is joined only by a superuser's hand.
    let admins = post(&s, &root, "/api/admin/groups/", json!({"name": "admins"})).await;
    let gid = ok(&admins, 201)["id"].as_i64().unwrap();
    let gp = post(
        &s,
        &root,
        &format!("/api/admin/groups/{gid}/permissions/"),
        json!({"permission": "sekisho.manage_users"}),
    )
    .await;
    assert_eq!(ok(&gp, 200), &json!({"changed": true}));
    let members = format!("/api/admin/groups/{gid}/members/");
    denied(&post(&s, &staff, &members, json!({"user_id": alice_id})).await);
    let add = post(&s, &root, &members, json!({"user_id": alice_id})).await;
    assert_eq!(ok(&add, 200), &json!({"changed": true}));
    denied(
        &call(
            &s,
            &staff,
            Method::DELETE,
            &format!("/api/admin/groups/{gid}/"),
            None,
        )
        .await,
    );

    let promoted = call(
        &s,
        &root,
        Method::PATCH,
        &format!("/api/admin/users/{alice_id}/"),
        Some(json!({"is_staff": true})),
    )
    .await;
    assert_eq!(ok(&promoted, 200)["is_staff"], true);
    assert_eq!(promoted.body["groups"], json!(["admins"]));

    // Names are unique: 409.
    let dup = post(&s, &root, "/api/admin/groups/", json!({"name": "admins"})).await;
    assert_eq!(dup.status, 409, "{}", dup.body);
    let dup = post(
        &s,
        &root,
        "/api/admin/users/",
        json!({"username": "carol", "password": PASSWORD}),
    )
    .await;
    assert_eq!(dup.status, 409, "{}", dup.body);
    let dup = post(
        &s,
        &root,
        "/api/admin/permissions/",
        json!({"codename": "shop.view_order"}),
    )
    .await;
    assert_eq!(dup.status, 409, "{}", dup.body);
}

#[tokio::test]
async fn session_with_csrf_and_bearer_both_work() {
    let s = start();
    let mut b = Browser::logged_in(&s, "staff", PASSWORD).await;
    let r = b.get("/api/admin/users/").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["count"], 4);
    let r = b
        .post("/api/admin/groups/", &json!({"name": "by-cookie"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // A cookie-authenticated POST without the CSRF header is refused before anything happens.
    let r = b
        .send(
            Method::POST,
            "/api/admin/groups/",
            &[],
            Some(&json!({"name": "forged"})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"detail": "CSRF Failed: CSRF token missing."})
    );
    let r = b
        .send(
            Method::DELETE,
            "/api/admin/users/1/permissions/shop.view_order/",
            &[("X-CSRFToken", "0123456789abcdef0123456789abcdef")],
            None,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"detail": "CSRF Failed: CSRF token incorrect."})
    );
    // The same administrator by bearer token: no CSRF needed.
    let t = token(&s, "staff").await;
    let r = post(&s, &t, "/api/admin/groups/", json!({"name": "by-bearer"})).await;
    assert_eq!(ok(&r, 201)["name"], "by-bearer");
    let names: Vec<Value> = get(&s, &t, "/api/admin/groups/")
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].clone())
        .collect();
    assert!(names.contains(&json!("by-cookie")), "{names:?}");
    assert!(!names.contains(&json!("forged")), "{names:?}");
    // Paths answer without the trailing slash too.
    let r = get(&s, &t, "/api/admin/groups").await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn paging_and_search_follow_drf() {
    let s = start();
    let root = token(&s, "root").await;
    for i in 1..=5 {
        let r = post(
            &s,
            &root,
            "/api/admin/users/",
            json!({"username": format!("pg{i}"), "password": PASSWORD}),
        )
        .await;
        ok(&r, 201);
    }
    // 9 users in all.
    let r = get(&s, &root, "/api/admin/users/?page_size=4").await;
    let b = ok(&r, 200);
    assert_eq!(b["count"], 9);
    assert_eq!(b["results"].as_array().unwrap().len(), 4);
    assert_eq!(b["previous"], Value::Null);
    let next = b["next"].as_str().unwrap().to_string();
    assert_eq!(next, s.url("/api/admin/users/?page=2&page_size=4"));
    // Following the links walks every user once, in id order.
    let r = get(&s, &root, next.trim_start_matches(&s.base)).await;
    let b = ok(&r, 200);
    assert_eq!(b["previous"], json!(s.url("/api/admin/users/?page_size=4")));
    assert_eq!(
        b["next"],
        json!(s.url("/api/admin/users/?page=3&page_size=4"))
    );
    let r = get(&s, &root, "/api/admin/users/?page=3&page_size=4").await;
    let b = ok(&r, 200);
    assert_eq!(b["results"].as_array().unwrap().len(), 1);
    assert_eq!(b["next"], Value::Null);
    assert_eq!(
        b["previous"],
        json!(s.url("/api/admin/users/?page=2&page_size=4"))
    );
    let mut ids = Vec::new();
    for page in 1..=3 {
        let r = get(
            &s,
            &root,
            &format!("/api/admin/users/?page={page}&page_size=4"),
        )
        .await;
        for u in ok(&r, 200)["results"].as_array().unwrap() {
            ids.push(u["id"].as_i64().unwrap());
        }
    }
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted);
    assert_eq!(ids.len(), 9);

    // Past the end, zero, negative or not a number: DRF's 404.
    for q in [
        "page=4&page_size=4",
        "page=0",
        "page=-1",
        "page=x",
        "page=99999999999999999999999",
    ] {
        let r = get(&s, &root, &format!("/api/admin/users/?{q}")).await;
        assert_eq!(r.status, 404, "{q}: {}", r.body);
        assert_eq!(r.body, json!({"detail": "Invalid page."}), "{q}");
    }
    // An unusable page size falls back to the default; a huge one is capped.
    for q in [
        "page_size=0",
        "page_size=x",
        "page_size=-5",
        "page_size=100000",
    ] {
        let r = get(&s, &root, &format!("/api/admin/users/?{q}")).await;
        assert_eq!(ok(&r, 200)["results"].as_array().unwrap().len(), 9, "{q}");
    }
    // An empty listing still has page 1.
    let r = get(&s, &root, "/api/admin/users/?search=nobody-at-all").await;
    assert_eq!(
        ok(&r, 200),
        &json!({"count": 0, "next": null, "previous": null, "results": []})
    );

    // Search: case-insensitive substrings of username, email and names; % and _ are literal.
    let pg = async |i: i64| user_id(&s, &root, &format!("pg{i}")).await;
    for (i, patch) in [
        (1, json!({"first_name": "100% sure"})),
        (2, json!({"first_name": "1000 sure"})),
        (3, json!({"email": "x_y@example.com"})),
        (4, json!({"email": "xay@example.com"})),
        (5, json!({"last_name": "MacDonald"})),
    ] {
        let id = pg(i).await;
        let r = call(
            &s,
            &root,
            Method::PATCH,
            &format!("/api/admin/users/{id}/"),
            Some(patch),
        )
        .await;
        ok(&r, 200);
    }
    let found = async |q: &str| -> Vec<String> {
        let r = get(&s, &root, &format!("/api/admin/users/?search={q}")).await;
        ok(&r, 200)["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(found("0%25").await, ["pg1"]);
    assert_eq!(found("x_y").await, ["pg3"]);
    assert_eq!(found("macdonald").await, ["pg5"]);
    assert_eq!(found("PG").await.len(), 5);
    assert_eq!(found("%25").await, ["pg1"]);
    assert_eq!(found("_").await, ["pg3"]);
    // The query is kept in the links, sorted by name as DRF writes them.
    let r = get(&s, &root, "/api/admin/users/?search=pg&page_size=2").await;
    assert_eq!(
        ok(&r, 200)["next"],
        json!(s.url("/api/admin/users/?page=2&page_size=2&search=pg"))
    );
}

#[tokio::test]
async fn every_change_is_in_the_audit_log() {
    let s = start();
    let root = token(&s, "root").await;
    let root_id = user_id(&s, &root, "root").await;
    let alice = user_id(&s, &root, "alice").await;
    let rid = [("x-request-id", "audit-req-1")];
    let call = async |m: Method, path: &str, body: Option<Value>| {
        call_with(&s, &root, m, path, body, &rid).await
    };
    let g = call(
        Method::POST,
        "/api/admin/groups/",
        Some(json!({"name": "ops"})),
    )
    .await;
    let gid = ok(&g, 201)["id"].as_i64().unwrap();
    let carol = call(
        Method::POST,
        "/api/admin/users/",
        Some(json!({"username": "carol", "password": PASSWORD})),
    )
    .await;
    let carol = ok(&carol, 201)["id"].as_i64().unwrap();
    let steps: Vec<(Method, String, Option<Value>, &str, String)> = vec![
        (
            Method::POST,
            format!("/api/admin/groups/{gid}/members/"),
            Some(json!({"user_id": alice})),
            "group.add_member",
            format!("group:{gid}"),
        ),
        (
            Method::PATCH,
            format!("/api/admin/groups/{gid}/"),
            Some(json!({"name": "ops2"})),
            "group.rename",
            format!("group:{gid}"),
        ),
        (
            Method::POST,
            "/api/admin/permissions/".into(),
            Some(json!({"codename": "shop.change_order", "name": "Can change order"})),
            "permission.create",
            "permission:shop.change_order".into(),
        ),
        (
            Method::PATCH,
            "/api/admin/permissions/shop.change_order/".into(),
            Some(json!({"name": "Change orders"})),
            "permission.rename",
            "permission:shop.change_order".into(),
        ),
        (
            Method::POST,
            format!("/api/admin/users/{alice}/permissions/"),
            Some(json!({"permission": "shop.change_order"})),
            "permission.grant",
            format!("user:{alice}"),
        ),
        (
            Method::DELETE,
            format!("/api/admin/users/{alice}/permissions/shop.change_order/"),
            None,
            "permission.revoke",
            format!("user:{alice}"),
        ),
        (
            Method::POST,
            format!("/api/admin/groups/{gid}/permissions/"),
            Some(json!({"permission": "shop.change_order"})),
            "permission.grant",
            format!("group:{gid}"),
        ),
        (
            Method::DELETE,
            format!("/api/admin/groups/{gid}/permissions/shop.change_order/"),
            None,
            "permission.revoke",
            format!("group:{gid}"),
        ),
        (
            Method::POST,
            "/api/admin/object-permissions/".into(),
            Some(json!({"user": alice, "permission": "shop.change_order", "object_id": 42})),
            "object.grant",
            format!("user:{alice}"),
        ),
        (
            Method::POST,
            "/api/admin/object-permissions/revoke/".into(),
            Some(json!({"user": alice, "permission": "shop.change_order", "object_id": "42"})),
            "object.revoke",
            format!("user:{alice}"),
        ),
        (
            Method::DELETE,
            format!("/api/admin/groups/{gid}/members/{alice}/"),
            None,
            "group.remove_member",
            format!("group:{gid}"),
        ),
        (
            Method::PATCH,
            format!("/api/admin/users/{carol}/"),
            Some(json!({"email": "secret.carol@example.com"})),
            "user.update",
            format!("user:{carol}"),
        ),
        (
            Method::POST,
            format!("/api/admin/users/{carol}/password/"),
            Some(json!({"password": "a new pass phrase"})),
            "user.set_password",
            format!("user:{carol}"),
        ),
        (
            Method::POST,
            format!("/api/admin/users/{carol}/logout-all/"),
            None,
            "user.end_logins",
            format!("user:{carol}"),
        ),
        (
            Method::POST,
            format!("/api/admin/users/{carol}/deactivate/"),
            None,
            "user.deactivate",
            format!("user:{carol}"),
        ),
        (
            Method::DELETE,
            format!("/api/admin/groups/{gid}/"),
            None,
            "group.delete",
            format!("group:{gid}"),
        ),
        (
            Method::DELETE,
            "/api/admin/permissions/shop.change_order/".into(),
            None,
            "permission.delete",
            "permission:shop.change_order".into(),
        ),
    ];
    for (m, path, body, _, _) in &steps {
        let r = call(m.clone(), path, body.clone()).await;
        assert!(r.status.is_success(), "{path}: {} {}", r.status, r.body);
        if let Some(c) = r.body.get("changed") {
            assert_eq!(c, true, "{path}");
        }
    }
    // A repeat that changes nothing records nothing.
    let r = call(
        Method::POST,
        "/api/admin/object-permissions/revoke/",
        Some(json!({"user": alice, "permission": "shop.view_x", "object_id": "1"})),
    )
    .await;
    assert_eq!(r.status, 400, "no such permission: {}", r.body);
    let r = call(
        Method::DELETE,
        &format!("/api/admin/users/{alice}/permissions/sekisho.manage_groups/"),
        None,
    )
    .await;
    assert_eq!(ok(&r, 200), &json!({"changed": false}));

    let r = get(&s, &root, "/api/admin/audit/?actor=root&page_size=100").await;
    let entries = ok(&r, 200)["results"].as_array().unwrap().clone();
    assert_eq!(r.body["count"], steps.len() + 2, "{:#}", r.body);
    let now_ms = unix_now() * 1000;
    // Newest first: the steps in reverse, then carol's creation, then the group's.
    let mut expected: Vec<(String, String)> = steps
        .iter()
        .map(|(_, _, _, a, t)| (a.to_string(), t.clone()))
        .collect();
    expected.insert(0, ("user.create".into(), format!("user:{carol}")));
    expected.insert(0, ("group.create".into(), format!("group:{gid}")));
    expected.reverse();
    let got: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["target"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    for e in &entries {
        assert_eq!(e["actor"], "root");
        assert_eq!(e["actor_id"], root_id);
        assert_eq!(e["remote_addr"], "127.0.0.1");
        assert_eq!(e["request_id"], "audit-req-1");
        let at = e["at"].as_i64().unwrap();
        assert!((now_ms - 120_000..=now_ms + 5_000).contains(&at), "{e}");
        assert!(e["detail"].is_object(), "{e}");
        assert!(
            !e.to_string().contains("secret.carol"),
            "a profile value in {e}"
        );
        assert!(
            !e.to_string().contains("a new pass phrase"),
            "a password in {e}"
        );
    }
    let create = entries
        .iter()
        .find(|e| e["action"] == "group.create")
        .unwrap();
    assert_eq!(create["detail"], json!({"name": "ops"}));
    let grant = entries
        .iter()
        .find(|e| e["action"] == "object.grant")
        .unwrap();
    assert_eq!(
        grant["detail"],
        json!({"permission": "shop.change_order", "object_type": "shop.order", "object_id": "42"})
    );
    // Filters.
    let r = get(
        &s,
        &root,
        "/api/admin/audit/?action=permission.grant&actor=root",
    )
    .await;
    assert_eq!(ok(&r, 200)["count"], 2);
    let r = get(&s, &root, "/api/admin/audit/?action=permission.grant").await;
    assert_eq!(ok(&r, 200)["count"], 3, "with the CLI's grant at start-up");
    let r = get(&s, &root, &format!("/api/admin/audit/?target=user:{carol}")).await;
    assert_eq!(ok(&r, 200)["count"], 5);
    let r = get(&s, &root, "/api/admin/audit/?page_size=3").await;
    assert_eq!(ok(&r, 200)["results"].as_array().unwrap().len(), 3);
    assert!(r.body["next"].as_str().unwrap().contains("page=2"));
    // The command line is in the same log, as cli:<os user>.
    let out = s.cli(&["group", "create", "from-cli"], "");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let r = get(&s, &root, "/api/admin/audit/?action=group.create").await;
    let newest = &ok(&r, 200)["results"][0];
    assert!(
        newest["actor"].as_str().unwrap().starts_with("cli:"),
        "{newest}"
    );
    assert_eq!(newest["actor_id"], Value::Null);
    assert_eq!(newest["detail"], json!({"name": "from-cli"}));
}

#[tokio::test]
async fn a_revoked_permission_is_gone_on_the_next_request() {
    let s = start();
    let root = token(&s, "root").await;
    let alice_id = user_id(&s, &root, "alice").await;
    let alice = token(&s, "alice").await;
    let mut browser = Browser::logged_in(&s, "alice", PASSWORD).await;
    let session_perms = async |b: &mut Browser| -> Value {
        let r = b.get("/api/auth/me/").await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["permissions"].clone()
    };
    ok(
        &post(
            &s,
            &root,
            "/api/admin/permissions/",
            json!({"codename": "shop.view_order"}),
        )
        .await,
        201,
    );
    let grants = format!("/api/admin/users/{alice_id}/permissions/");
    ok(
        &post(&s, &root, &grants, json!({"permission": "shop.view_order"})).await,
        200,
    );
    assert_eq!(me_permissions(&s, &alice).await, ["shop.view_order"]);
    assert_eq!(
        session_perms(&mut browser).await,
        json!(["shop.view_order"])
    );
    let r = call(
        &s,
        &root,
        Method::DELETE,
        &format!("{grants}shop.view_order/"),
        None,
    )
    .await;
    assert_eq!(ok(&r, 200), &json!({"changed": true}));
    assert!(me_permissions(&s, &alice).await.is_empty());
    assert_eq!(session_perms(&mut browser).await, json!([]));
    let r = call(
        &s,
        &root,
        Method::DELETE,
        &format!("{grants}shop.view_order/"),
        None,
    )
    .await;
    assert_eq!(ok(&r, 200), &json!({"changed": false}));

    // Through a group: membership and the group's grant both count, and both revoke at once.
    let g = post(&s, &root, "/api/admin/groups/", json!({"name": "viewers"})).await;
    let gid = ok(&g, 201)["id"].as_i64().unwrap();
    ok(
        &post(
            &s,
            &root,
            &format!("/api/admin/groups/{gid}/permissions/"),
            json!({"permission": "shop.view_order"}),
        )
        .await,
        200,
    );
    ok(
        &post(
            &s,
            &root,
            &format!("/api/admin/groups/{gid}/members/"),
            json!({"user_id": alice_id}),
        )
        .await,
        200,
    );
    assert_eq!(me_permissions(&s, &alice).await, ["shop.view_order"]);
    let me = s.get_bearer("/api/auth/me/", &alice).await;
    assert_eq!(me.body["groups"], json!(["viewers"]));
    let r = call(
        &s,
        &root,
        Method::DELETE,
        &format!("/api/admin/groups/{gid}/members/{alice_id}/"),
        None,
    )
    .await;
    assert_eq!(ok(&r, 200), &json!({"changed": true}));
    assert!(me_permissions(&s, &alice).await.is_empty());
    ok(
        &post(
            &s,
            &root,
            &format!("/api/admin/groups/{gid}/members/"),
            json!({"user_id": alice_id}),
        )
        .await,
        200,
    );
    assert_eq!(me_permissions(&s, &alice).await, ["shop.view_order"]);
    // Deleting the permission removes every grant of it.
    let r = call(
        &s,
        &root,
        Method::DELETE,
        "/api/admin/permissions/shop.view_order/",
        None,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(me_permissions(&s, &alice).await.is_empty());
    assert_eq!(session_perms(&mut browser).await, json!([]));

    // Object grants are visible to the check API on the next request too.
    ok(
        &post(
            &s,
            &root,
            "/api/admin/permissions/",
            json!({"codename": "shop.change_order"}),
        )
        .await,
        201,
    );
    let grant = json!({"user": alice_id, "permission": "shop.change_order", "object_id": "7"});
    let r = post(&s, &root, "/api/admin/object-permissions/", grant.clone()).await;
    assert_eq!(ok(&r, 200), &json!({"changed": true}));
    let listed = get(
        &s,
        &root,
        &format!("/api/admin/object-permissions/?user={alice_id}"),
    )
    .await;
    assert_eq!(
        ok(&listed, 200)["results"],
        json!([{"user": alice_id, "group": null, "permission": "shop.change_order", "object_type": "shop.order", "object_id": "7"}])
    );
    let check = json!({"permission": "shop.change_order", "object_id": "7"});
    let r = post(&s, &alice, "/api/authz/check/", check.clone()).await;
    assert_eq!(ok(&r, 200), &json!({"allowed": true}));
    let r = post(&s, &root, "/api/admin/object-permissions/revoke/", grant).await;
    assert_eq!(ok(&r, 200), &json!({"changed": true}));
    let r = post(&s, &alice, "/api/authz/check/", check).await;
    assert_eq!(ok(&r, 200), &json!({"allowed": false}));
}

#[tokio::test]
async fn deactivate_and_logout_all_end_every_login() {
    let s = start();
    let root = token(&s, "root").await;
    let alice_id = user_id(&s, &root, "alice").await;
    let mut browser = Browser::logged_in(&s, "alice", PASSWORD).await;
    let (_, refresh) = s.token_pair("alice", PASSWORD).await;
    assert_eq!(browser.get("/api/auth/me/").await.status, 200);

    let r = post(
        &s,
        &root,
        &format!("/api/admin/users/{alice_id}/logout-all/"),
        json!({}),
    )
    .await;
    assert_eq!(ok(&r, 200), &json!({}));
    assert_eq!(browser.get("/api/auth/me/").await.status, 401);
    let r = s
        .post_nr("/api/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status, 401, "{}", r.body);

    let mut browser = Browser::logged_in(&s, "alice", PASSWORD).await;
    let (access, refresh) = s.token_pair("alice", PASSWORD).await;
    let r = post(
        &s,
        &root,
        &format!("/api/admin/users/{alice_id}/deactivate/"),
        json!({}),
    )
    .await;
    let u = ok(&r, 200);
    assert_eq!(u["is_active"], false);
    assert_eq!(u["username"], "alice");
    assert_eq!(browser.get("/api/auth/me/").await.status, 401);
    let r = s
        .post_nr("/api/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = s.get_bearer("/api/auth/me/", &access).await;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = s
        .post_nr(
            "/api/token/",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 401);

    // Reactivated, the account logs in again; a new password ends the new logins.
    let r = call(
        &s,
        &root,
        Method::PATCH,
        &format!("/api/admin/users/{alice_id}/"),
        Some(json!({"is_active": true})),
    )
    .await;
    assert_eq!(ok(&r, 200)["is_active"], true);
    let mut browser = Browser::logged_in(&s, "alice", PASSWORD).await;
    let r = post(
        &s,
        &root,
        &format!("/api/admin/users/{alice_id}/password/"),
        json!({"password": "a brand new pass phrase"}),
    )
    .await;
    assert_eq!(ok(&r, 200), &json!({}));
    assert_eq!(browser.get("/api/auth/me/").await.status, 401);
    s.token_pair("alice", "a brand new pass phrase").await;
    // PATCH is_active=false ends the logins as well.
    let (access, _) = s.token_pair("alice", "a brand new pass phrase").await;
    let r = call(
        &s,
        &root,
        Method::PATCH,
        &format!("/api/admin/users/{alice_id}/"),
        Some(json!({"is_active": "false"})),
    )
    .await;
    assert_eq!(ok(&r, 200)["is_active"], false);
    assert_eq!(s.get_bearer("/api/auth/me/", &access).await.status, 401);
}

#[tokio::test]
async fn bad_input_is_a_4xx_never_a_5xx() {
    let s = start();
    let root = token(&s, "root").await;
    let alice = user_id(&s, &root, "alice").await;
    ensure_perm(&s, "shop.view_order");
    let not_found = json!({"detail": "Not found."});
    for path in [
        "/api/admin/users/abc/".to_string(),
        "/api/admin/users/-1/".into(),
        "/api/admin/users/+1/".into(),
        "/api/admin/users/1.0/".into(),
        "/api/admin/users/99999999999999999999999/".into(),
        "/api/admin/users/9223372036854775807/".into(),
        "/api/admin/users/%FF/".into(),
        "/api/admin/users/%00/".into(),
        "/api/admin/groups/abc/".into(),
        "/api/admin/groups/424242/members/".into(),
        "/api/admin/permissions/nope.nope/".into(),
        "/api/admin/permissions/no%00pe/".into(),
        "/api/admin/permissions/%FF/".into(),
        "/api/admin/permissions/bad/".into(),
    ] {
        let r = get(&s, &root, &path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert_eq!(r.body, not_found, "{path}");
        assert_json(&r);
    }
    let cases: Vec<(Method, String, Value, u16, Value)> = vec![
        (
            Method::POST,
            "/api/admin/users/".into(),
            json!({}),
            400,
            json!({"username": ["This field is required."], "password": ["This field is required."]}),
        ),
        (
            Method::POST,
            "/api/admin/users/".into(),
            json!({"username": "a\u{0}b", "password": "x y z w v"}),
            400,
            json!({"username": ["Null characters are not allowed."]}),
        ),
        (
            Method::POST,
            "/api/admin/users/".into(),
            json!({"username": ["x"], "password": {"a": 1}}),
            400,
            json!({"username": ["Not a valid string."], "password": ["Not a valid string."]}),
        ),
        (
            Method::POST,
            "/api/admin/users/".into(),
            json!({"username": "ok", "password": "pw pw pw pw", "is_staff": 1e300}),
            400,
            json!({"is_staff": ["Must be a valid boolean."]}),
        ),
        (
            Method::POST,
            "/api/admin/users/".into(),
            json!({"username": "ok", "password": "pw pw pw pw", "email": "not-an-email"}),
            400,
            json!({"email": ["Enter a valid email address."]}),
        ),
        (
            Method::PATCH,
            format!("/api/admin/users/{alice}/"),
            json!({"is_staff": "maybe"}),
            400,
            json!({"is_staff": ["Must be a valid boolean."]}),
        ),
        (
            Method::PATCH,
            format!("/api/admin/users/{alice}/"),
            json!({"email": 5, "first_name": null}),
            400,
            json!({"email": ["Not a valid string."], "first_name": ["This field may not be null."]}),
        ),
        (
            Method::PATCH,
            format!("/api/admin/users/{alice}/"),
            json!({"last_name": "x\u{0}"}),
            400,
            json!({"last_name": ["Null characters are not allowed."]}),
        ),
        (
            Method::PATCH,
            format!("/api/admin/users/{alice}/"),
            json!({"first_name": "x".repeat(151)}),
            400,
            json!({"first_name": ["Ensure this field has no more than 150 characters."]}),
        ),
        (
            Method::POST,
            format!("/api/admin/users/{alice}/password/"),
            json!({"password": ""}),
            400,
            json!({"password": ["This field may not be blank."]}),
        ),
        (
            Method::POST,
            "/api/admin/groups/".into(),
            json!({"name": "a\u{0}"}),
            400,
            json!({"name": ["Null characters are not allowed."]}),
        ),
        (
            Method::POST,
            "/api/admin/groups/".into(),
            json!({"name": 12.5e300}),
            201,
            Value::Null,
        ),
        (
            Method::POST,
            "/api/admin/groups/".into(),
            json!({"name": true}),
            400,
            json!({"name": ["Not a valid string."]}),
        ),
        (
            Method::POST,
            format!("/api/admin/users/{alice}/permissions/"),
            json!({"permission": "nope.nope"}),
            400,
            json!({"permission": ["Object with codename=nope.nope does not exist."]}),
        ),
        (
            Method::POST,
            format!("/api/admin/users/{alice}/permissions/"),
            json!({"permission": "bad codename\u{0}"}),
            400,
            json!({"permission": ["Null characters are not allowed."]}),
        ),
        (
            Method::POST,
            format!("/api/admin/users/{alice}/permissions/"),
            json!({"permission": "not a codename"}),
            400,
            json!({"permission": ["Object with codename=not a codename does not exist."]}),
        ),
        (
            Method::POST,
            "/api/admin/users/424242/permissions/".into(),
            json!({"permission": "shop.view_order"}),
            404,
            not_found.clone(),
        ),
        (
            Method::DELETE,
            format!("/api/admin/users/{alice}/permissions/nope.nope/"),
            Value::Null,
            404,
            not_found.clone(),
        ),
        (
            Method::DELETE,
            format!("/api/admin/users/{alice}/permissions/%FF/"),
            Value::Null,
            404,
            not_found.clone(),
        ),
        (
            Method::POST,
            "/api/admin/permissions/".into(),
            json!({"codename": "nodot"}),
            400,
            Value::Null,
        ),
        (
            Method::POST,
            "/api/admin/permissions/".into(),
            json!({"codename": "shop.x", "name": "bell\u{7}"}),
            400,
            Value::Null,
        ),
        (
            Method::POST,
            "/api/admin/object-permissions/".into(),
            json!({"user": alice, "group": 1, "permission": "shop.view_order", "object_id": "1"}),
            400,
            json!({"non_field_errors": ["Give exactly one of user and group."]}),
        ),
        (
            Method::POST,
            "/api/admin/object-permissions/".into(),
            json!({"permission": "shop.view_order", "object_id": "1"}),
            400,
            json!({"non_field_errors": ["Give exactly one of user and group."]}),
        ),
        (
            Method::POST,
            "/api/admin/object-permissions/".into(),
            json!({"user": "abc", "permission": "shop.view_order", "object_id": "1"}),
            400,
            json!({"user": ["A valid integer is required."]}),
        ),
        (
            Method::POST,
            "/api/admin/object-permissions/".into(),
            json!({"user": 99999999999999999999u128 as f64, "permission": "shop.view_order", "object_id": "1"}),
            400,
            json!({"user": ["A valid integer is required."]}),
        ),
        (
            Method::POST,
            "/api/admin/object-permissions/".into(),
            json!({"user": 424242, "permission": "shop.view_order", "object_id": "1"}),
            400,
            json!({"user": ["Invalid pk \"424242\" - object does not exist."]}),
        ),
        (
            Method::POST,
            "/api/admin/object-permissions/".into(),
            json!({"group": 424242, "permission": "shop.view_order", "object_id": "1"}),
            400,
            json!({"group": ["Invalid pk \"424242\" - object does not exist."]}),
        ),
        (
            Method::POST,
            "/api/admin/object-permissions/".into(),
            json!({"user": alice, "permission": "shop.order", "object_id": "1"}),
            400,
            json!({"object_type": ["This field is required."]}),
        ),
        (
            Method::POST,
            "/api/admin/object-permissions/".into(),
            json!({"user": alice, "permission": "shop.view_order", "object_id": "a/b"}),
            400,
            Value::Null,
        ),
        (
            Method::POST,
            "/api/admin/object-permissions/".into(),
            json!({"user": alice, "permission": "shop.view_order", "object_id": "1\u{0}"}),
            400,
            json!({"object_id": ["Null characters are not allowed."]}),
        ),
        (
            Method::POST,
            "/api/admin/object-permissions/".into(),
            json!({"user": alice, "permission": "shop.view_order", "object_type": "bad type", "object_id": "1"}),
            400,
            Value::Null,
        ),
        (
            Method::POST,
            "/api/admin/object-permissions/".into(),
            json!({"user": alice, "permission": "nope.view_x", "object_id": "1"}),
            400,
            json!({"permission": ["Object with codename=nope.view_x does not exist."]}),
        ),
        (
            Method::POST,
            "/api/admin/groups/424242/members/".into(),
            json!({"user_id": alice}),
            404,
            not_found.clone(),
        ),
        (
            Method::POST,
            "/api/admin/groups/424242/members/".into(),
            json!({"user_id": "abc"}),
            400,
            json!({"user_id": ["A valid integer is required."]}),
        ),
    ];
    for (m, path, body, status, expected) in cases {
        let body = (!body.is_null()).then_some(body);
        let r = call(&s, &root, m.clone(), &path, body.clone()).await;
        assert_eq!(r.status, status, "{m} {path} {body:?}: {}", r.body);
        if !expected.is_null() {
            assert_eq!(r.body, expected, "{m} {path} {body:?}");
        }
        assert_json(&r);
    }
    // An existing group, then its members endpoint with bad user ids.
    let g = post(&s, &root, "/api/admin/groups/", json!({"name": "g"})).await;
    let gid = ok(&g, 201)["id"].as_i64().unwrap();
    let members = format!("/api/admin/groups/{gid}/members/");
    for (body, expected) in [
        (json!({}), json!({"user_id": ["This field is required."]})),
        (
            json!({"user_id": null}),
            json!({"user_id": ["This field may not be null."]}),
        ),
        (
            json!({"user_id": [1]}),
            json!({"user_id": ["A valid integer is required."]}),
        ),
        (
            json!({"user_id": 424242}),
            json!({"user_id": ["Invalid pk \"424242\" - object does not exist."]}),
        ),
    ] {
        let r = post(&s, &root, &members, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.body, expected, "{body}");
    }
    let r = call(&s, &root, Method::DELETE, &format!("{members}abc/"), None).await;
    assert_eq!(r.status, 404);
    // Query parameters.
    for q in [
        "/api/admin/audit/?actor=%00",
        "/api/admin/users/?search=a%00b",
        "/api/admin/object-permissions/?user=abc",
        "/api/admin/object-permissions/?user=1&group=2",
        "/api/admin/object-permissions/?object_id=%00",
    ] {
        let r = get(&s, &root, q).await;
        assert_eq!(r.status, 400, "{q}: {}", r.body);
        assert_json(&r);
    }
    for q in [
        "/api/admin/users/?search=%FF%FE",
        "/api/admin/users/?search=%25%25%25",
        "/api/admin/audit/?target=%27%3B--",
        "/api/admin/object-permissions/?object_type=x&permission=%25",
        "/api/admin/users/?page_size=1&page_size=2&page=1",
    ] {
        let r = get(&s, &root, q).await;
        assert_eq!(r.status, 200, "{q}: {}", r.body);
    }
    // Bodies that are not JSON objects, or not JSON.
    let auth = format!("Bearer {root}");
    for (ct, body, status) in [
        ("application/json", &b"{"[..], 400),
        ("application/json", &b"[1, 2]"[..], 400),
        ("application/json", &b"{\"name\": 1e400}"[..], 400),
        ("text/plain", &b"name=x"[..], 415),
        ("application/x-www-form-urlencoded", &b"name=%00"[..], 400),
    ] {
        let r = s
            .send(
                Method::POST,
                "/api/admin/groups/",
                &[("authorization", &auth), ("content-type", ct)],
                Some(body),
            )
            .await;
        assert_eq!(r.status, status, "{ct} {body:?}: {}", r.body);
        assert_json(&r);
    }
    // Form bodies work like JSON ones (booleans and integers as text).
    let r = s
        .send(
            Method::PATCH,
            &format!("/api/admin/users/{alice}/"),
            &[
                ("authorization", &auth),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            Some(b"first_name=Al&is_active=true"),
        )
        .await;
    assert_eq!(ok(&r, 200)["first_name"], "Al");
    let r = s
        .send(
            Method::POST,
            &members,
            &[
                ("authorization", &auth),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            Some(format!("user_id={alice}").as_bytes()),
        )
        .await;
    assert_eq!(ok(&r, 200), &json!({"changed": true}));
    // Wrong methods: 405 with Allow.
    let r = call(&s, &root, Method::PUT, "/api/admin/users/", Some(json!({}))).await;
    assert_eq!(r.status, 405);
    assert!(r.header("allow").is_some());
}
