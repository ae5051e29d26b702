//! `server.ops_bind`: `/metrics` and `/api/openapi.json` on a listener of their own, off the
//! public port (JSON 404 there, also with the SPA mounted), while health checks answer on both.
mod common;
use common::*;
use reqwest::Method;

#[tokio::test]
async fn metrics_and_the_api_document_leave_the_public_port_for_the_ops_listener() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("index.html"), "<!doctype html><p>spa</p>").unwrap();
    let spa = root.path().display().to_string();
    let s = Server::start(&[
        ("SEKISHO_SERVER__OPS_BIND", "127.0.0.1:0"),
        ("SEKISHO_SERVER__STATIC_DIR", &spa),
    ]);
    let ops = s.ops.clone().expect("the operations listener's address");
    assert_ne!(ops, s.base);
    let c = client();
    for path in ["/metrics", "/api/openapi.json"] {
        for method in [Method::GET, Method::POST] {
            let r = s.send(method.clone(), path, &[], None).await;
            assert_eq!(
                r.status, 404,
                "{method} {path} on the public port: {}",
                r.body
            );
            assert_eq!(r.body["detail"], "Not found.", "{path}");
        }
    }
    let metrics = send(&c, Method::GET, &format!("{ops}/metrics"), &[], None).await;
    assert_eq!(metrics.status, 200);
    let doc = send(
        &c,
        Method::GET,
        &format!("{ops}/api/openapi.json"),
        &[],
        None,
    )
    .await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            s.send(Method::GET, path, &[], None).await.status,
            200,
            "{path}"
        );
        let r = send(&c, Method::GET, &format!("{ops}{path}"), &[], None).await;
        assert_eq!(r.status, 200, "{path} on the ops port");
    }
    // The API and the SPA stay on the public port only.
    s.create_user("alice", PASSWORD);
    let (access, _) = s.token_pair("alice", PASSWORD).await;
    assert_eq!(s.get_bearer("/api/auth/me/", &access).await.status, 200);
    let me = send(
        &c,
        Method::GET,
        &format!("{ops}/api/auth/me/"),
        &[("authorization", &format!("Bearer {access}"))],
        None,
    )
    .await;
    assert_eq!(me.status, 404);
    let page = c.get(s.url("/reports/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("spa"));
    let page = c.get(format!("{ops}/reports/")).send().await.unwrap();
    assert_eq!(page.status(), 404);
    // The login above is counted on the metrics the ops port serves.
    let text = c
        .get(format!("{ops}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("sekisho_logins_total"), "{text}");
}

#[tokio::test]
async fn without_ops_bind_everything_stays_on_one_port() {
    let s = Server::start(&[]);
    assert_eq!(s.ops, None);
    assert_eq!(s.send(Method::GET, "/metrics", &[], None).await.status, 200);
    assert_eq!(
        s.send(Method::GET, "/api/openapi.json", &[], None)
            .await
            .status,
        200
    );
}
