//! The reqwest-middleware adapter (feature `reqwest-middleware`), against the fake server.

mod fake;

use fake::{FakeServer, PASSWORD, USER, http};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use sekisho_client::{Client, Error};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

/// A reqwest-middleware client carrying a sekisho client's tokens (logged in, or not).
async fn through_middleware(s: &FakeServer, logged_in: bool) -> ClientWithMiddleware {
    let c = Client::builder(&s.base)
        .http_client(http())
        .build()
        .unwrap();
    if logged_in {
        c.login(USER, PASSWORD).await.unwrap();
    }
    ClientBuilder::new(http()).with(c.middleware()).build()
}

#[tokio::test]
async fn calls_through_the_middleware_carry_the_token_and_share_one_refresh() {
    let s = FakeServer::start().await;
    let api = through_middleware(&s, true).await;
    let res = api
        .get(format!("{}/api/thing/", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Refused tokens: 50 calls, one refresh, each retried once with its body.
    s.state.revoke_access_tokens();
    s.state
        .set_refresh_delay(std::time::Duration::from_millis(200));
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let (api, url) = (api.clone(), format!("{}/api/echo/", s.base));
            tokio::spawn(async move {
                let body = json!({ "i": i }).to_string();
                let res = api
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                let v: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
                assert_eq!(v, json!({"echo": {"i": i}}));
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap();
    }
    assert_eq!(s.state.refreshes(), 1);
}

#[tokio::test]
async fn other_origins_pass_through_without_the_token() {
    let s = FakeServer::start().await;
    let other = FakeServer::start().await;
    let api = through_middleware(&s, true).await;
    let res = api
        .get(format!("{}/open/", other.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(*other.state.last_authorization.lock().unwrap(), None);
    assert_eq!(s.state.protected_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_clients_errors_come_back_as_middleware_errors() {
    let s = FakeServer::start().await;
    let api = through_middleware(&s, false).await;
    let e = api
        .get(format!("{}/api/thing/", s.base))
        .send()
        .await
        .unwrap_err();
    match e {
        reqwest_middleware::Error::Middleware(inner) => {
            assert!(matches!(
                inner.downcast_ref::<Error>(),
                Some(Error::NotLoggedIn)
            ));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.state.protected_calls.load(Ordering::SeqCst), 0);
}
