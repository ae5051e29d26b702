//! Hosting the SPA (`server.static_dir`, DESIGN §3.3 "First load", §4): files, history
//! fallback, caching, the csrftoken cookie on HTML pages, JSON for API paths, and no escape from
//! the directory.
mod common;
use common::*;

use reqwest::Method;
use serde_json::json;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

const INDEX: &str = "<!doctype html><html><body>app</body></html>";
const JS: &str = "console.log('sekisho spa asset');";
const SECRET: &str = "TOP-SECRET-6f1d2c-never-serve-me";

/// A temp tree: `<root>/static/{index.html, assets/index-AbCd1234.js, favicon.ico}` and
/// `<root>/secret.txt` outside the served directory.
struct Site {
    root: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("static");
        std::fs::create_dir_all(dir.join("assets")).unwrap();
        std::fs::write(dir.join("index.html"), INDEX).unwrap();
        std::fs::write(dir.join("assets/index-AbCd1234.js"), JS).unwrap();
        std::fs::write(dir.join("favicon.ico"), [0u8, 0, 1, 0, 1, 0]).unwrap();
        std::fs::write(root.path().join("secret.txt"), SECRET).unwrap();
        assert!(dir.parent().unwrap().join("secret.txt").exists());
        Site { root }
    }
    fn dir(&self) -> PathBuf {
        self.root.path().join("static")
    }
    fn start(&self, extra: &[(&str, &str)]) -> Server {
        let d = self.dir().display().to_string();
        let mut env = vec![("SEKISHO_SERVER__STATIC_DIR", d.as_str())];
        env.extend_from_slice(extra);
        let s = Server::start(&env);
        s.create_user("alice", PASSWORD);
        s
    }
}

fn body_text(r: &Reply) -> String {
    match &r.body {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[track_caller]
fn assert_index(r: &Reply) {
    assert_eq!(r.status, 200, "{}", r.body);
    let ct = r.header("content-type").unwrap_or("");
    assert!(ct.starts_with("text/html"), "content-type {ct:?}");
    assert_eq!(body_text(r), INDEX);
    assert_eq!(r.header("cache-control"), Some("no-cache"));
}

#[tokio::test]
async fn index_sets_a_csrf_cookie_that_works_for_the_first_post() {
    let site = Site::new();
    let s = site.start(&[]);
    let mut b = Browser::new(&s);
    let r = b.get("/").await;
    assert_index(&r);
    let c = r.set_cookie_spec("csrftoken");
    assert!(is_lower_hex(&c.value, 64), "{}", c.raw);
    assert!(!c.has("httponly"));
    assert_eq!(c.attr("samesite"), Some("Lax"));
    assert_eq!(c.attr("path"), Some("/"));
    assert!(r.set_cookie_specs("sessionid").is_empty());

    // The first-load pattern: the SPA's very first POST is the login, with that token.
    let r = b
        .post(
            "/api/auth/login/",
            &json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        r.status, 200,
        "first POST after loading index.html: {}",
        r.body
    );
    assert_eq!(r.body["user"]["username"], "alice");

    // Logged in, a reload gets no new cookie: the rotated token is the session's.
    let r = b.get("/").await;
    assert_index(&r);
    assert!(r.set_cookies().is_empty(), "{:?}", r.set_cookies());
    assert_eq!(
        b.patch("/api/auth/me/", &json!({"first_name": "Spa"}))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_second_load_does_not_reset_the_cookie() {
    let site = Site::new();
    let s = site.start(&[]);
    let mut b = Browser::new(&s);
    let t = b.get("/").await.set_cookie_spec("csrftoken").value;
    let r = b.get("/").await;
    assert_index(&r);
    assert!(r.set_cookies().is_empty(), "{:?}", r.set_cookies());
    let r = b.get("/orders/42").await;
    assert_index(&r);
    assert!(r.set_cookies().is_empty(), "{:?}", r.set_cookies());
    assert_eq!(b.csrf().unwrap(), t);
    // /index.html itself is a page too.
    let mut fresh = Browser::new(&s);
    let r = fresh.get("/index.html").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(body_text(&r), INDEX);
    assert_eq!(r.set_cookie_specs("csrftoken").len(), 1);
}

#[tokio::test]
async fn deep_links_fall_back_to_index() {
    let site = Site::new();
    let s = site.start(&[]);
    for path in [
        "/orders/42",
        "/orders/42/",
        "/settings/profile",
        "/apiary",
        "/a/b/c/d",
    ] {
        let mut b = Browser::new(&s);
        let r = b.get(path).await;
        assert_index(&r);
        assert_eq!(
            r.set_cookie_specs("csrftoken").len(),
            1,
            "{path}: {:?}",
            r.set_cookies()
        );
    }
}

#[tokio::test]
async fn hashed_assets_are_immutable_and_missing_ones_404() {
    let site = Site::new();
    let s = site.start(&[]);
    let r = s
        .send(Method::GET, "/assets/index-AbCd1234.js", &[], None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(body_text(&r), JS);
    let cc = r.header("cache-control").unwrap_or("");
    assert!(
        cc.contains("max-age=31536000") && cc.contains("immutable"),
        "cache-control {cc:?}"
    );
    let ct = r.header("content-type").unwrap_or("");
    assert!(ct.contains("javascript"), "content-type {ct:?}");
    assert!(
        r.set_cookies().is_empty(),
        "assets set no cookies: {:?}",
        r.set_cookies()
    );

    // A plain file is served but not marked immutable.
    let r = s.send(Method::GET, "/favicon.ico", &[], None).await;
    assert_eq!(r.status, 200);
    let cc = r.header("cache-control").unwrap_or("");
    assert!(!cc.contains("immutable"), "favicon cache-control {cc:?}");

    for path in [
        "/assets/missing-Zz99.js",
        "/missing.css",
        "/assets/nope/index-AbCd1234.js",
    ] {
        let r = s.send(Method::GET, path, &[], None).await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert_json(&r);
        assert_eq!(r.body, json!({"detail": "Not found."}), "{path}");
        assert!(
            !r.header("cache-control")
                .unwrap_or("")
                .contains("immutable"),
            "{path}: a 404 must not be cached forever"
        );
    }
}

#[tokio::test]
async fn api_paths_never_fall_back_to_html() {
    let site = Site::new();
    let s = site.start(&[]);
    for path in [
        "/api/unknown",
        "/api/unknown/",
        "/api",
        "/api/auth/nope/",
        "/.well-known/nope",
    ] {
        let r = s.send(Method::GET, path, &[], None).await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert_json(&r);
        assert_eq!(r.body, json!({"detail": "Not found."}), "{path}");
    }
    // Real API routes still answer.
    let r = s.send(Method::GET, "/api/auth/csrf/", &[], None).await;
    assert_eq!(r.status, 200);
    assert!(r.body["csrfToken"].is_string());
    let r = s.send(Method::GET, "/healthz", &[], None).await;
    assert_eq!(r.status, 200);
    assert_json(&r);
}

#[tokio::test]
async fn unsafe_methods_on_pages_are_json_405() {
    let site = Site::new();
    let s = site.start(&[]);
    for (m, path) in [
        (Method::POST, "/some/page"),
        (Method::PUT, "/"),
        (Method::DELETE, "/orders/42"),
    ] {
        let r = s
            .send(
                m.clone(),
                path,
                &[("content-type", "application/json")],
                Some(b"{}"),
            )
            .await;
        assert_eq!(r.status, 405, "{m} {path}: {}", r.body);
        assert_json(&r);
        assert_eq!(
            r.body,
            json!({"detail": format!("Method \"{m}\" not allowed.")})
        );
        let allow = r.header("allow").unwrap_or("");
        assert!(allow.contains("GET"), "Allow {allow:?}");
    }
}

/// Sends `GET <path>` byte for byte (no client-side normalisation) and returns the raw response
/// (empty when the server closed the connection without answering).
fn raw_get(authority: &str, path: &str) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(authority).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf
}

fn status_of(raw: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(raw);
    text.lines().next()?.split(' ').nth(1)?.parse().ok()
}

#[tokio::test]
async fn path_traversal_never_escapes_the_static_dir() {
    let site = Site::new();
    let s = site.start(&[]);
    let authority = s.authority();
    let paths = [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/assets/../../secret.txt",
        "/assets/%2e%2e/%2e%2e/secret.txt",
        "/assets/..%2f..%2fsecret.txt",
        "/..%2fsecret.txt",
        "/..%5csecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/static/../../secret.txt",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
        "/../../../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/....//secret.txt",
        "/.%2e/secret.txt",
    ];
    for path in paths {
        let a = authority.clone();
        let p = path.to_string();
        let raw = tokio::task::spawn_blocking(move || raw_get(&a, &p))
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(!text.contains(SECRET), "{path} served the secret:\n{text}");
        assert!(
            !text.contains("root:x:0:0"),
            "{path} served /etc/passwd:\n{text}"
        );
        if let Some(status) = status_of(&raw) {
            assert!(status < 500, "{path}: {status}\n{text}");
            // Anything served is the SPA shell (history fallback), never a file from outside.
            if status == 200 {
                assert!(
                    text.ends_with(INDEX),
                    "{path}: 200 with something other than index.html:\n{text}"
                );
            }
        }
    }
    // Sanity: the raw client itself works (a real file comes back).
    let a = authority.clone();
    let raw = tokio::task::spawn_blocking(move || raw_get(&a, "/assets/index-AbCd1234.js"))
        .await
        .unwrap();
    assert_eq!(status_of(&raw), Some(200));
    assert!(String::from_utf8_lossy(&raw).contains(JS));
}

#[tokio::test]
async fn hidden_files_and_links_out_of_the_directory_are_never_served() {
    let site = Site::new();
    let dir = site.dir();
    std::fs::write(dir.join(".env"), SECRET).unwrap();
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    std::fs::write(dir.join(".git/config"), SECRET).unwrap();
    std::fs::write(dir.join("assets/.secret.js"), SECRET).unwrap();
    std::os::unix::fs::symlink(site.root.path().join("secret.txt"), dir.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(site.root.path(), dir.join("up")).unwrap();
    // A link that stays inside the directory is fine.
    std::os::unix::fs::symlink(dir.join("assets/index-AbCd1234.js"), dir.join("app.js")).unwrap();
    let s = site.start(&[]);
    let authority = s.authority();
    for path in [
        "/.env",
        "/%2eenv",
        "/%2Eenv",
        "/.git/config",
        "/assets/.secret.js",
        "/leak.txt",
        "/up/secret.txt",
    ] {
        let (a, p) = (authority.clone(), path.to_string());
        let raw = tokio::task::spawn_blocking(move || raw_get(&a, &p))
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(!text.contains(SECRET), "{path} served the secret:\n{text}");
        assert_eq!(status_of(&raw), Some(404), "{path}:\n{text}");
    }
    let r = s.send(Method::GET, "/app.js", &[], None).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn without_static_dir_pages_are_json_404() {
    let s = Server::start(&[]);
    for path in ["/", "/orders/42", "/index.html"] {
        let r = s.send(Method::GET, path, &[], None).await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert_json(&r);
        assert_eq!(r.body, json!({"detail": "Not found."}));
    }
}

#[tokio::test]
async fn a_page_reissues_a_session_bound_token_when_the_cookie_is_gone() {
    let site = Site::new();
    let s = site.start(&[]);
    let mut b = Browser::logged_in(&s, "alice", PASSWORD).await;
    b.remove_cookie("csrftoken");
    let r = b.get("/orders/7").await;
    assert_index(&r);
    let t = r.set_cookie_spec("csrftoken").value;
    assert!(is_lower_hex(&t, 64));
    let r = b
        .patch("/api/auth/me/", &json!({"first_name": "Reloaded"}))
        .await;
    assert_eq!(
        r.status, 200,
        "token from the page must be valid for the session: {}",
        r.body
    );

    // With an anonymous token next to a live session, the page swaps it for the session's.
    let anon = Browser::new(&s).fetch_csrf().await;
    b.set_cookie("csrftoken", &anon);
    let r = b.get("/").await;
    let t = r.set_cookie_spec("csrftoken").value;
    assert_ne!(t, anon);
    assert_eq!(
        b.patch("/api/auth/me/", &json!({"first_name": "Again"}))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn head_requests_serve_pages_without_a_body() {
    let site = Site::new();
    let s = site.start(&[]);
    let r = s.send(Method::HEAD, "/orders/42", &[], None).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/html")
    );
    assert_eq!(r.body, serde_json::Value::Null);
}

#[tokio::test]
async fn odd_file_names_are_never_a_server_error() {
    let site = Site::new();
    let s = site.start(&[]);
    let long = "a".repeat(300);
    // (path, expected status, whether a 200 is the SPA shell)
    let cases: Vec<(String, u16)> = vec![
        // Deep links (no extension) get the SPA shell, whatever the file system thinks of them.
        (format!("/{long}"), 200),
        (format!("/orders/{long}"), 200),
        ("/index.html/orders".to_string(), 200),
        // Missing files get the JSON 404.
        (format!("/{long}.js"), 404),
        (format!("/assets/{long}.js"), 404),
        ("/favicon.ico/x.png".to_string(), 404),
        ("/index.html%00.js".to_string(), 404),
    ];
    let mut failures = vec![];
    for (path, want) in cases {
        let r = s.send(Method::GET, &path, &[], None).await;
        let ct = r.header("content-type").unwrap_or("").to_string();
        let ok = r.status == want
            && if want == 200 {
                body_text(&r) == INDEX
            } else {
                ct.starts_with("application/json") && r.body == json!({"detail": "Not found."})
            };
        if !ok {
            failures.push(format!(
                "GET {path} -> {} {ct:?} {} (want {want})",
                r.status, r.body
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A browser reloading a client-side route revalidates its cached index.html: the 304 must be
/// a 304 (not a JSON 404), and a revalidated page without a csrftoken still gets one.
#[tokio::test]
async fn revalidated_pages_are_not_modified_and_still_get_a_csrf_cookie() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><html><body>app</body></html>",
    )
    .unwrap();
    let s = Server::start(&[("SEKISHO_SERVER__STATIC_DIR", dir.path().to_str().unwrap())]);
    let first = s.send(reqwest::Method::GET, "/", &[], None).await;
    let etag = first
        .header("etag")
        .or(first.header("last-modified"))
        .expect("a validator")
        .to_string();
    let (name, value) = if first.header("etag").is_some() {
        ("if-none-match", etag)
    } else {
        ("if-modified-since", etag)
    };
    for path in ["/", "/orders/42"] {
        let r = s
            .send(reqwest::Method::GET, path, &[(name, value.as_str())], None)
            .await;
        assert_eq!(r.status, 304, "{path}: {}", r.body);
        assert!(
            r.cookie("csrftoken").is_some(),
            "{path}: csrftoken on a revalidated page"
        );
    }
}
