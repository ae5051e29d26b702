//! Security headers: every response says nosniff, same-origin referrers and no framing; the
//! SPA's HTML pages carry `server.content_security_policy` when one is configured.

use axum::http::Method;
use sekisho_testing::harness::Harness;

fn assert_defaults(r: &sekisho_testing::Reply, what: &str) {
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("referrer-policy"), Some("same-origin"), "{what}");
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
}

#[tokio::test]
async fn every_response_carries_the_default_security_headers() {
    let h = Harness::start(&[]).await;
    for (method, path) in [
        (Method::GET, "/healthz"),
        (Method::GET, "/api/auth/me/"),
        (Method::POST, "/api/token/"),
        (Method::GET, "/nope"),
        (Method::PUT, "/api/token/"),
    ] {
        let r = h.send(method.clone(), path, &[], None).await;
        assert_defaults(&r, &format!("{method} {path} ({})", r.status));
        assert!(r.header("content-security-policy").is_none());
    }
}

#[tokio::test]
async fn api_answers_are_never_stored_by_a_cache() {
    let h = Harness::start(&[]).await;
    h.user("cached").await;
    let (access, refresh) = h
        .token_pair("cached", sekisho_testing::harness::PASSWORD)
        .await;
    let bearer = format!("Bearer {access}");
    let refresh_body = serde_json::json!({"refresh": refresh}).to_string();
    for (method, path, headers, body) in [
        (
            Method::GET,
            "/api/auth/me/",
            vec![("authorization", bearer.as_str())],
            None,
        ),
        (Method::GET, "/api/auth/csrf/", vec![], None),
        (
            Method::POST,
            "/api/token/refresh/",
            vec![("content-type", "application/json")],
            Some(refresh_body.clone().into_bytes()),
        ),
        (Method::GET, "/api/auth/me/", vec![], None),
    ] {
        let r = h.send(method.clone(), path, &headers, body).await;
        assert_eq!(
            r.header("cache-control"),
            Some("no-store"),
            "{method} {path} ({})",
            r.status
        );
    }
}

#[tokio::test]
async fn spa_pages_carry_the_configured_content_security_policy() {
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("index.html"), "<!doctype html><p>app</p>").unwrap();
    std::fs::create_dir(site.path().join("assets")).unwrap();
    std::fs::write(site.path().join("assets/app-0123abcd.js"), "console.log(1)").unwrap();
    let csp = "default-src 'self'; frame-ancestors 'none'";
    let dir = site.path().display().to_string();
    let h = Harness::start(&[
        ("SEKISHO_SERVER__STATIC_DIR", &dir),
        ("SEKISHO_SERVER__CONTENT_SECURITY_POLICY", csp),
    ])
    .await;
    for path in ["/", "/orders/42"] {
        let r = h.send(Method::GET, path, &[], None).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-security-policy"), Some(csp), "{path}");
        assert_defaults(&r, path);
    }
    let js = h
        .send(Method::GET, "/assets/app-0123abcd.js", &[], None)
        .await;
    assert_eq!(js.status, 200);
    assert!(
        js.header("content-security-policy").is_none(),
        "only HTML pages"
    );
    assert_defaults(&js, "asset");
}

#[tokio::test]
async fn a_policy_that_cannot_be_a_header_is_refused_at_start() {
    let e = sekisho_core::Config::load(
        "",
        vec![(
            "SEKISHO_SERVER__CONTENT_SECURITY_POLICY".to_string(),
            "default-src 'self'\n".to_string(),
        )],
    )
    .unwrap_err();
    assert!(e.0.starts_with("server.content_security_policy:"), "{e}");
}
