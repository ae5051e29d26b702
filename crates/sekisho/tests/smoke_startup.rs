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
