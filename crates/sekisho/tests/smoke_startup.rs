mod common;
use common::*;

#[tokio::test]
async fn fresh_start_generates_a_private_key_and_serves_health() {
    let s = Server::start(&[]);
    let r = s.send(reqwest::Method::GET, "/healthz", &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, serde_json::json!({"status": "ok"}));
    let key = s.data_dir().join("jwt-signing.key");
    assert!(key.exists());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(std::fs::read(&key).unwrap().len() >= 32);
}

#[tokio::test]
async fn metrics_count_logins_refreshes_and_csrf_failures() {
    let s = Server::start(&[]);
    s.create_user("m", PASSWORD);
    let (_, refresh) = s.token_pair("m", PASSWORD).await;
    let wrong = s
        .post_json(
            "/api/token/",
            serde_json::json!({"username": "m", "password": "nope"}),
        )
        .await;
    assert_eq!(wrong.status, 401);
    let r = s
        .post_json(
            "/api/token/refresh/",
            serde_json::json!({"refresh": refresh}),
        )
        .await;
    assert_eq!(r.status, 200);
    let m = s.send(reqwest::Method::GET, "/metrics", &[], None).await;
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    let text = m.body.as_str().expect("text body").to_string();
    for needle in [
        "sekisho_logins_total{result=\"success\"} 1",
        "sekisho_logins_total{result=\"failure\"} 1",
        "sekisho_refreshes_total{outcome=\"rotated\"} 1",
        "sekisho_http_request_duration_seconds_bucket",
    ] {
        assert!(text.contains(needle), "{needle} missing in:\n{text}");
    }
    assert!(!text.contains(&refresh), "no secrets in metrics");
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let s = Server::start(&[]);
    let mut seen = std::collections::HashSet::new();
    for path in ["/healthz", "/api/auth/me/", "/no-such-path"] {
        let r = s.send(reqwest::Method::GET, path, &[], None).await;
        let id = r.header("x-request-id").expect("x-request-id").to_string();
        assert_eq!(id.len(), 32, "{path}: {id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        assert!(seen.insert(id), "ids are distinct");
    }
    // A proxy's sane id is kept (log lines match across hops); anything else is replaced.
    let r = s
        .send(
            reqwest::Method::GET,
            "/healthz",
            &[("x-request-id", "lb-7f3a-01")],
            None,
        )
        .await;
    assert_eq!(r.header("x-request-id"), Some("lb-7f3a-01"));
    let r = s
        .send(
            reqwest::Method::GET,
            "/healthz",
            &[("x-request-id", "a;b")],
            None,
        )
        .await;
    assert_eq!(r.header("x-request-id").map(str::len), Some(32));
    // Also on the router's own answers (405 as JSON, with Allow).
    let r = s.send(reqwest::Method::DELETE, "/healthz", &[], None).await;
    assert_eq!(r.status, 405);
    assert!(r.header("allow").is_some());
    assert!(r.header("x-request-id").is_some());
}

#[tokio::test]
async fn a_sqlite_database_anywhere_is_created_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    // Outside the data directory (whose own mode protects what is inside it).
    let elsewhere = tempfile::tempdir().unwrap();
    let db = elsewhere.path().join("auth.sqlite3");
    let url = format!("sqlite://{}", db.display());
    let s = Server::start(&[("SEKISHO_DATABASE__URL", url.as_str())]);
    s.create_user("owner", PASSWORD);
    let _ = s.token_pair("owner", PASSWORD).await;
    for name in ["auth.sqlite3", "auth.sqlite3-wal", "auth.sqlite3-shm"] {
        let path = elsewhere.path().join(name);
        if name == "auth.sqlite3" || path.exists() {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name}: {mode:o}");
        }
    }
}
