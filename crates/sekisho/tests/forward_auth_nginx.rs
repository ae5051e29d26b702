//! Forward-auth behind real nginx (Debian's package, `auth_request`): every requirement kind of
//! the policy allowed and refused, in session mode and in JWT mode with identical answers; the
//! identity headers reach the upstream and a client cannot forge them; refused requests get
//! sekisho's JSON (or the login redirect) through nginx's `error_page` fallback.
//!
//! Two sekisho instances share a PostgreSQL database of their own, whatever backend the rest
//! of the suite runs on: nginx asks one (B), the tests administer through the other (A). Both
//! cache users for the longest `cache.ttl` allowed (1 s), so a change made on A that B did not
//! drop at once would still be allowed on B's next request.
mod common;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NGINX: &str = "/usr/sbin/nginx";

const POLICY: &str = r#"
default = "authenticated"

[[rules]]
path = "/public/**"
require = "anonymous"

[[rules]]
path = "/staff/**"
require = "staff"

[[rules]]
path = "/super/**"
require = "superuser"

[[rules]]
path = "/reports/**"
require = "perm:shop.view_report"

[[rules]]
path = "/editors/**"
require = "group:editors"

[[rules]]
path = "/orders/"
require = "model:shop.order"

[[rules]]
path = "/orders/{id}/"
methods = ["GET", "PATCH"]
require = "object:shop.change_order:{id}"
"#;

/// The upstream: echoes what nginx forwarded (path, method and the identity headers).
async fn start_upstream() -> u16 {
    use axum::extract::Request;
    let app = axum::Router::new().fallback(|req: Request| async move {
        let h = req.headers();
        let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        axum::Json(json!({
            "method": req.method().as_str(),
            "path": req.uri().path(),
            "user_id": get("x-auth-user-id"),
            "username": get("x-auth-username"),
            "groups": get("x-auth-groups"),
        }))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx in front of `app` (the upstream), asking `auth` (a sekisho instance) about every
/// request, and proxying sekisho's own `/api/` to `api` (same origin for the SPA).
fn start_nginx(app: u16, auth: &str, api: &str) -> Nginx {
    assert!(
        Path::new(NGINX).exists(),
        "{NGINX} is missing: scripts/test.sh installs Debian's nginx"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    for attempt in 0..5 {
        let port = free_port();
        let conf = format!(
            r#"
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  upstream app {{ server 127.0.0.1:{app}; keepalive 8; }}
  upstream auth {{ server {auth}; keepalive 8; }}
  upstream api {{ server {api}; keepalive 8; }}
  server {{
    listen 127.0.0.1:{port};
    location = /_sekisho_check {{
      internal;
      proxy_pass http://auth/api/auth/check/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header Host $host;
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
    }}
    # nginx answers a refused auth_request with its own error page; asking again as an ordinary
    # proxied request hands the client sekisho's JSON (or, for page navigations with
    # forward_auth.login_url set, the redirect).
    location @sekisho_denied {{
      rewrite ^ /api/auth/check/?redirect=1? break;
      proxy_pass http://auth;
      proxy_method GET;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header Host $host;
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
    }}
    location /api/ {{
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }}
    location / {{
      auth_request /_sekisho_check;
      error_page 401 403 = @sekisho_denied;
      auth_request_set $sekisho_user_id $upstream_http_x_auth_user_id;
      auth_request_set $sekisho_username $upstream_http_x_auth_username;
      auth_request_set $sekisho_groups $upstream_http_x_auth_groups;
      proxy_set_header X-Auth-User-Id $sekisho_user_id;
      proxy_set_header X-Auth-Username $sekisho_username;
      proxy_set_header X-Auth-Groups $sekisho_groups;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://app;
    }}
  }}
}}
"#
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let mut child = Command::new(NGINX)
            .args(["-p", &d.to_string(), "-c", &path.display().to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
            .spawn()
            .expect("start nginx");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = child.try_wait() {
                break; // exited: the port was taken; try another
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Nginx {
                    child,
                    port,
                    _dir: dir,
                };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        eprintln!(
            "nginx attempt {attempt} failed: {}",
            std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default()
        );
    }
    panic!("nginx did not start");
}

struct Site {
    a: Server,
    _b: Server,
    nginx: Nginx,
    _db: OwnPgDatabase,
}

impl Site {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.nginx.port, path)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        send(
            &client_no_redirect(),
            method,
            &self.url(path),
            headers,
            body,
        )
        .await
    }

    fn cli(&self, args: &[&str]) {
        let out = self.a.cli(args, "");
        assert!(
            out.status.success(),
            "sekisho {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

async fn site() -> Site {
    let db = OwnPgDatabase::create("fwd");
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let policy = policy.display().to_string();
    let env = [
        ("SEKISHO_DATABASE__URL", db.url.as_str()),
        ("SEKISHO_SESSIONS__STORE", "database"),
        ("SEKISHO_SERVER__TRUSTED_PROXIES", "127.0.0.1"),
        ("SEKISHO_POLICY__FILE", policy.as_str()),
        ("SEKISHO_FORWARD_AUTH__LOGIN_URL", "/login/"),
        ("SEKISHO_CACHE__TTL", "1s"),
        (
            "SEKISHO_JWT__SIGNING_KEY",
            "forward-auth-test-signing-key-0123456789",
        ),
    ];
    let a = Server::start(&env);
    let b = a.start_sharing();
    let upstream = start_upstream().await;
    let nginx = start_nginx(upstream, &b.authority(), &a.authority());
    std::mem::forget(dir); // the policy file must outlive the servers; tempdirs are reaped by the OS
    Site {
        a,
        _b: b,
        nginx,
        _db: db,
    }
}

/// One caller, two ways: a session cookie (+ CSRF for unsafe methods) and a bearer token.
struct Caller {
    cookie: String,
    csrf: String,
    bearer: String,
}

async fn login(site: &Site, user: &str) -> Caller {
    let csrf = site
        .send(Method::GET, "/api/auth/csrf/", &[], None)
        .await
        .str("csrfToken");
    let body = json!({"username": user, "password": PASSWORD}).to_string();
    let r = site
        .send(
            Method::POST,
            "/api/auth/login/",
            &[
                ("cookie", &format!("csrftoken={csrf}")),
                ("x-csrftoken", &csrf),
                ("content-type", "application/json"),
            ],
            Some(body.as_bytes()),
        )
        .await;
    assert_eq!(r.status, 200, "session login {user}: {}", r.body);
    let sid = r.cookie("sessionid").unwrap();
    let csrf = r.cookie("csrftoken").unwrap();
    let t = site
        .send(
            Method::POST,
            "/api/token/",
            &[("content-type", "application/json")],
            Some(body.as_bytes()),
        )
        .await;
    assert_eq!(t.status, 200, "token login {user}: {}", t.body);
    Caller {
        cookie: format!("sessionid={sid}; csrftoken={csrf}"),
        csrf,
        bearer: format!("Bearer {}", t.str("access")),
    }
}

/// The answer through nginx in session mode and in JWT mode; they must be identical.
async fn both(site: &Site, who: &Caller, method: Method, path: &str) -> (u16, Value) {
    let unsafe_method = !matches!(method, Method::GET | Method::HEAD);
    let mut session_headers: Vec<(&str, &str)> = vec![("cookie", &who.cookie)];
    if unsafe_method {
        session_headers.push(("x-csrftoken", &who.csrf));
    }
    let s = site
        .send(method.clone(), path, &session_headers, None)
        .await;
    let j = site
        .send(
            method.clone(),
            path,
            &[("authorization", &who.bearer)],
            None,
        )
        .await;
    assert_eq!(
        s.status, j.status,
        "{method} {path}: session {} vs bearer {}",
        s.status, j.status
    );
    if s.status == 200 {
        assert_eq!(
            s.body, j.body,
            "{method} {path}: the upstream saw the same identity"
        );
    }
    (s.status.as_u16(), s.body)
}

#[tokio::test]
async fn every_requirement_kind_through_nginx_in_both_modes() {
    let site = site().await;
    for (name, flags) in [
        ("plain", &[][..]),
        ("staffer", &["--staff"][..]),
        ("root", &["--superuser", "--staff"][..]),
        ("reporter", &[][..]),
        ("editor", &[][..]),
        ("clerk", &[][..]),
    ] {
        let mut args = vec!["user", "create", name, "--password", PASSWORD];
        args.extend_from_slice(flags);
        site.cli(&args);
    }
    for p in [
        "shop.view_report",
        "shop.view_order",
        "shop.add_order",
        "shop.change_order",
    ] {
        site.cli(&["perm", "create", p]);
    }
    site.cli(&["user", "grant", "reporter", "shop.view_report"]);
    site.cli(&["group", "create", "editors"]);
    site.cli(&["group", "add-member", "editors", "editor"]);
    site.cli(&["user", "grant", "clerk", "shop.view_order"]);
    site.cli(&[
        "user",
        "grant",
        "clerk",
        "shop.change_order",
        "--object-id",
        "7",
    ]);

    // Anonymous: the public tree passes without identity headers; everything else is 401 JSON.
    let r = site.send(Method::GET, "/public/x", &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["user_id"], Value::Null);
    let r = site
        .send(
            Method::GET,
            "/anything",
            &[("accept", "application/json")],
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.body["detail"],
        "Authentication credentials were not provided."
    );
    // A page navigation is sent to the login page, with where it was going.
    let r = site
        .send(
            Method::GET,
            "/home/?tab=2",
            &[("accept", "text/html"), ("sec-fetch-mode", "navigate")],
            None,
        )
        .await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/login/?next=/home/%3Ftab%3D2"));
    // A client cannot forge the identity headers: nginx overwrites them.
    let r = site
        .send(
            Method::GET,
            "/public/x",
            &[("x-auth-user-id", "1"), ("x-auth-username", "root")],
            None,
        )
        .await;
    assert_eq!(r.body["user_id"], Value::Null, "{}", r.body);
    assert_eq!(r.body["username"], Value::Null);

    let mut callers = std::collections::HashMap::new();
    for name in ["plain", "staffer", "root", "reporter", "editor", "clerk"] {
        callers.insert(name, login(&site, name).await);
    }
    // (method, path, the users allowed); everyone else who is logged in gets 403.
    let table: &[(Method, &str, &[&str])] = &[
        (
            Method::GET,
            "/public/x",
            &["plain", "staffer", "root", "reporter", "editor", "clerk"],
        ),
        (
            Method::GET,
            "/home/",
            &["plain", "staffer", "root", "reporter", "editor", "clerk"],
        ),
        (Method::GET, "/staff/panel", &["staffer", "root"]),
        (Method::GET, "/super/x", &["root"]),
        (Method::GET, "/reports/q3", &["root", "reporter"]),
        // Membership is a fact, not a permission: a superuser outside the group is refused.
        (Method::GET, "/editors/doc", &["editor"]),
        // model: reading needs view_ (no DRF read-for-everyone), writing add_.
        (Method::GET, "/orders/", &["root", "clerk"]),
        (Method::POST, "/orders/", &["root"]),
        (Method::GET, "/orders/7/", &["root", "clerk"]),
        (Method::PATCH, "/orders/7/", &["root", "clerk"]),
        (Method::GET, "/orders/8/", &["root"]),
    ];
    for (method, path, allowed) in table {
        for (name, who) in &callers {
            let (status, body) = both(&site, who, method.clone(), path).await;
            let expect = if allowed.contains(name) { 200 } else { 403 };
            assert_eq!(status, expect, "{name}: {method} {path}: {body}");
            if status == 200 {
                assert_eq!(body["username"], *name, "identity header for {name}");
                assert_eq!(body["path"], *path);
            }
        }
    }
    let editor = &callers["editor"];
    let (_, body) = both(&site, editor, Method::GET, "/editors/doc").await;
    assert_eq!(body["groups"], "editors");

    // Cookie-authenticated unsafe requests need the CSRF header at the gate too.
    let clerk = &callers["clerk"];
    let r = site
        .send(
            Method::PATCH,
            "/orders/7/",
            &[("cookie", &clerk.cookie)],
            None,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    // Paths whose meaning depends on normalisation are refused, not matched.
    let r = site
        .send(
            Method::GET,
            "/public/%2e%2e/super/x",
            &[("cookie", &clerk.cookie)],
            None,
        )
        .await;
    assert_eq!(r.status, 403);
}

/// An admin API call sent to instance A through nginx's `/api/` location (bearer, JSON).
async fn admin(site: &Site, boss: &Caller, method: Method, path: &str, body: Option<Value>) {
    let body = body.map(|b| b.to_string());
    let r = site
        .send(
            method.clone(),
            path,
            &[
                ("authorization", &boss.bearer),
                ("content-type", "application/json"),
            ],
            body.as_deref().map(str::as_bytes),
        )
        .await;
    assert!(
        r.status.is_success(),
        "{method} {path}: {} {}",
        r.status,
        r.body
    );
}

#[tokio::test]
async fn a_change_made_on_one_instance_holds_for_the_very_next_request_on_the_other() {
    let site = site().await;
    site.cli(&[
        "user",
        "create",
        "boss",
        "--password",
        PASSWORD,
        "--staff",
        "--superuser",
    ]);
    site.cli(&["user", "create", "reporter", "--password", PASSWORD]);
    site.cli(&["perm", "create", "shop.view_report"]);
    site.cli(&["user", "grant", "reporter", "shop.view_report"]);
    let boss = login(&site, "boss").await;
    let reporter = login(&site, "reporter").await;
    let me = site
        .send(
            Method::GET,
            "/api/auth/me/",
            &[("authorization", &reporter.bearer)],
            None,
        )
        .await;
    let id = me.body["id"].as_i64().expect("the user's id");
    let report = "/reports/q3";
    // B now holds the reporter in its cache, with the permission.
    assert_eq!(both(&site, &reporter, Method::GET, report).await.0, 200);

    // A direct grant revoked on A: refused by B on the very next request, in both modes.
    let perm = format!("/api/admin/users/{id}/permissions/shop.view_report/");
    admin(&site, &boss, Method::DELETE, &perm, None).await;
    assert_eq!(both(&site, &reporter, Method::GET, report).await.0, 403);

    // Granted again on A: allowed at once.
    let perms = format!("/api/admin/users/{id}/permissions/");
    let grant = json!({"permission": "shop.view_report"});
    admin(&site, &boss, Method::POST, &perms, Some(grant.clone())).await;
    assert_eq!(both(&site, &reporter, Method::GET, report).await.0, 200);
    admin(&site, &boss, Method::DELETE, &perm, None).await;

    // Through a group: the group's grant revoked on A.
    site.cli(&["group", "create", "readers"]);
    site.cli(&["group", "add-member", "readers", "reporter"]);
    site.cli(&["group", "grant", "readers", "shop.view_report"]);
    assert_eq!(both(&site, &reporter, Method::GET, report).await.0, 200);
    let groups = site
        .send(
            Method::GET,
            "/api/admin/groups/",
            &[("authorization", &boss.bearer)],
            None,
        )
        .await;
    let gid = groups
        .body
        .as_array()
        .and_then(|g| g.iter().find(|g| g["name"] == "readers"))
        .and_then(|g| g["id"].as_i64())
        .expect("the group's id");
    let group_perm = format!("/api/admin/groups/{gid}/permissions/shop.view_report/");
    admin(&site, &boss, Method::DELETE, &group_perm, None).await;
    assert_eq!(both(&site, &reporter, Method::GET, report).await.0, 403);

    // Deactivated on A: every login of the account ends on B at once.
    assert_eq!(both(&site, &reporter, Method::GET, "/home/").await.0, 200);
    let deactivate = format!("/api/admin/users/{id}/deactivate/");
    admin(&site, &boss, Method::POST, &deactivate, None).await;
    assert_eq!(both(&site, &reporter, Method::GET, "/home/").await.0, 401);
}
