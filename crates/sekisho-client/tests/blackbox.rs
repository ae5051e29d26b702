//! The client against the real `sekisho` binary on loopback (see `real/mod.rs`: build the
//! binary first with `cargo build -p sekisho`). Refresh calls are counted by the server itself
//! (`sekisho_refreshes_total` on `GET /metrics`).

mod real;

#[allow(dead_code)]
#[path = "../examples/login.rs"]
mod example;

use real::{PASSWORD, Server, base32_decode, claims, expired_copy, http, totp_code, totp_step_now};
use sekisho_client::{Client, Error, FileStore, MemoryStore, SecondFactor, TokenStore, Tokens};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TASKS: usize = 100;
const TIMEOUT: Duration = Duration::from_secs(10);

/// A user, an out-of-band login, and a client whose store holds the real refresh token with an
/// already expired copy of the access token.
async fn expired_login(s: &Server, proactive: bool) -> (Client, Arc<MemoryStore>, String) {
    s.create_user("alice");
    let (access, refresh) = s.token_pair("alice").await;
    let expired = expired_copy(&access);
    // The server itself refuses the forged token as expired: the test starts past expiry.
    let (status, body) = s.get_bearer("/api/auth/me/", &expired).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["messages"][0]["message"], "Token is expired", "{body}");
    let store = Arc::new(MemoryStore::with_tokens(Tokens::new(
        expired,
        refresh.clone(),
    )));
    let client = Client::builder(&s.base)
        .http_client(http())
        .storage_arc(store.clone())
        .proactive_refresh(proactive)
        .timeout(TIMEOUT)
        .build()
        .unwrap();
    (client, store, refresh)
}

/// `TASKS` concurrent `GET /api/auth/me/`, started together.
async fn burst(client: &Client) -> Vec<Result<sekisho_client::proto::User, Error>> {
    let start = Arc::new(tokio::sync::Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (c, start) = (client.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                c.me().await
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

async fn assert_all_succeed_after_one_refresh(proactive: bool) {
    let s = Server::start(&[]);
    let (client, store, first_refresh) = expired_login(&s, proactive).await;
    assert_eq!(s.refresh_count().await, 0);
    let started = Instant::now();
    let results = burst(&client).await;
    let took = started.elapsed();
    let failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} failed: {failures:?}",
        failures.len()
    );
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap().username == "alice")
    );
    assert_eq!(
        s.refreshes().await,
        vec![("rotated".to_string(), 1)],
        "exactly one refresh, and it rotated"
    );
    // The rotated successor is what the store holds, with the new access token.
    let stored = store.load().await.unwrap().unwrap();
    assert_ne!(stored.refresh, first_refresh);
    assert_eq!(claims(&stored.refresh)["token_type"], "refresh");
    let (status, _) = s
        .get_bearer("/api/auth/me/", stored.access.as_deref().unwrap())
        .await;
    assert_eq!(status, 200);
    eprintln!(
        "{TASKS} tasks after expiry (proactive: {proactive}): 1 refresh, all succeeded in {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_tasks_after_expiry_make_one_refresh_and_all_succeed() {
    assert_all_succeed_after_one_refresh(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_tasks_sending_an_expired_token_share_one_refresh_on_the_401() {
    // Proactive refresh off: all 100 send the expired token, get 401 token_not_valid, and
    // wait for the same refresh.
    assert_all_succeed_after_one_refresh(false).await;
}

async fn assert_all_fail_promptly(what: &str, s: &Server, client: &Client, store: &MemoryStore) {
    let started = Instant::now();
    let results = burst(client).await;
    let took = started.elapsed();
    for r in &results {
        match r {
            Err(e @ Error::SessionEnded { status: 401, .. }) => {
                assert_eq!(e.code(), Some("token_not_valid"), "{e:?}");
            }
            other => panic!("expected SessionEnded, got {other:?}"),
        }
    }
    assert!(
        took < TIMEOUT,
        "every task failed within the timeout ({took:?})"
    );
    assert_eq!(s.refresh_count().await, 1, "exactly one refresh attempt");
    assert_eq!(store.load().await.unwrap(), None, "the store was cleared");
    assert!(matches!(
        client.me().await,
        Err(Error::SessionEnded { status: 401, .. })
    ));
    assert_eq!(s.refresh_count().await, 1);
    eprintln!("{TASKS} tasks, {what}: 1 refresh attempt, all failed in {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_family_fails_every_task_promptly() {
    let s = Server::start(&[]);
    let (client, store, refresh) = expired_login(&s, true).await;
    // Logged out elsewhere: the family is blacklisted out of band.
    let (status, body) = s
        .post_json("/api/token/blacklist/", json!({"refresh": refresh}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_all_fail_promptly("family blacklisted", &s, &client, &store).await;
    let results = s.refreshes().await;
    assert_eq!(results, vec![("revoked".to_string(), 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_family_fails_every_task_promptly_on_the_401_path_too() {
    let s = Server::start(&[]);
    // All 100 send the expired token; the refused ones that arrive after the refresh has
    // failed get the same error without another attempt.
    let (client, store, refresh) = expired_login(&s, false).await;
    let (status, _) = s
        .post_json("/api/token/blacklist/", json!({"refresh": refresh}))
        .await;
    assert_eq!(status, 200);
    assert_all_fail_promptly("family blacklisted, 401 path", &s, &client, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_changed_elsewhere_fails_every_task_promptly() {
    // No read cache, so the CLI's change is seen at once without waiting out `cache.ttl`.
    let s = Server::start(&[("SEKISHO_CACHE__TTL", "0")]);
    let (client, store, _) = expired_login(&s, true).await;
    s.cli(
        &["user", "set-password", "alice", "--password-stdin"],
        "another long password\n",
    );
    assert_all_fail_promptly("password changed", &s, &client, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_refresh_and_logout_with_a_token_file() {
    let s = Server::start(&[]);
    s.create_user("bob");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let client = Client::builder(&s.base)
        .http_client(http())
        .storage(FileStore::new(&path))
        .build()
        .unwrap();
    let e = client.login("bob", "wrong password").await.unwrap_err();
    assert!(matches!(e, Error::InvalidCredentials { .. }), "{e:?}");
    client.login("bob", PASSWORD).await.unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert_eq!(client.me().await.unwrap().username, "bob");
    assert_eq!(client.clock_skew_ms(), 0, "same machine, no skew");

    let before = FileStore::new(&path).load().await.unwrap().unwrap();
    client.refresh().await.unwrap();
    let after = FileStore::new(&path).load().await.unwrap().unwrap();
    assert_ne!(
        after.refresh, before.refresh,
        "the rotated token was stored"
    );
    // A second client on the same file starts from the stored login.
    let other = Client::builder(&s.base)
        .http_client(http())
        .storage(FileStore::new(&path))
        .build()
        .unwrap();
    assert_eq!(other.me().await.unwrap().username, "bob");

    client.logout().await.unwrap();
    assert!(!path.exists(), "the token file is removed");
    // The family is revoked on the server: the last refresh token is refused.
    let (status, body) = s
        .post_json("/api/token/refresh/", json!({"refresh": after.refresh}))
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(s.refresh_count().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_example_runs_against_the_server() {
    let s = Server::start(&[]);
    s.create_user("carol");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens.json");
    let first = example::run(&s.base, "carol", &file, false, || Ok(PASSWORD.into()))
        .await
        .unwrap();
    assert_eq!(first[0], "logged in as carol");
    assert!(first[1].starts_with("user carol (id "), "{first:?}");
    assert_eq!(first[2], "20 of 20 concurrent calls succeeded");
    let second = example::run(&s.base, "carol", &file, false, || {
        panic!("the stored login is reused")
    })
    .await
    .unwrap();
    assert_eq!(second[0], "using the stored login");
    let last = example::run(&s.base, "carol", &file, true, || unreachable!())
        .await
        .unwrap();
    assert_eq!(last, vec!["logged out".to_string()]);
    assert!(!file.exists());
}

#[tokio::test]
async fn a_login_with_a_second_factor_is_finished_with_a_code() {
    let s = Server::start(&[]);
    s.create_user("alice");
    let (access, _) = s.token_pair("alice").await;
    let (status, body) = s
        .post_bearer("/api/auth/mfa/totp/", &access, json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let secret = base32_decode(body["secret"].as_str().unwrap());
    let confirmed_at = totp_step_now();
    let (status, body) = s
        .post_bearer(
            "/api/auth/mfa/totp/confirm/",
            &access,
            json!({"code": totp_code(&secret, confirmed_at)}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let recovery: Vec<String> = serde_json::from_value(body["recovery_codes"].clone()).unwrap();

    let store = Arc::new(MemoryStore::new());
    let client = Client::builder(&s.base)
        .http_client(http())
        .storage_arc(store.clone())
        .timeout(TIMEOUT)
        .build()
        .unwrap();
    let challenge = match client.login("alice", PASSWORD).await {
        Err(Error::MfaRequired(c)) => c,
        other => panic!("expected a second-factor challenge, got {other:?}"),
    };
    assert_eq!(challenge.methods, ["totp", "recovery"]);
    assert!(
        !client.is_logged_in().await.unwrap(),
        "nothing before the factor"
    );
    assert!(store.load().await.unwrap().is_none());
    assert!(!format!("{challenge:?}").contains(&challenge.challenge));

    // A wrong code is refused and leaves the challenge usable.
    let right = totp_code(&secret, confirmed_at + 1);
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    let e = client
        .complete_login(&challenge, SecondFactor::Totp(&wrong))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::SecondFactorRefused { .. }), "{e:?}");
    assert_eq!(e.code(), Some("mfa_code_invalid"));
    // The next step's code: the confirmation used this one, and one step of skew is accepted.
    let next = totp_code(&secret, totp_step_now().max(confirmed_at) + 1);
    client
        .complete_login(&challenge, SecondFactor::Totp(&next))
        .await
        .unwrap();
    assert_eq!(client.me().await.unwrap().username, "alice");
    let tokens = store.load().await.unwrap().expect("stored tokens");
    assert_eq!(
        claims(tokens.access.as_deref().unwrap())["amr"],
        json!(["pwd", "otp"])
    );
    // A challenge logs in once.
    let e = client
        .complete_login(&challenge, SecondFactor::RecoveryCode(&recovery[0]))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::SecondFactorRefused { .. }), "{e:?}");

    // A recovery code finishes another login, once.
    let other = Client::builder(&s.base)
        .http_client(http())
        .timeout(TIMEOUT)
        .build()
        .unwrap();
    for attempt in 0..2 {
        let Err(Error::MfaRequired(c)) = other.login("alice", PASSWORD).await else {
            panic!("expected a challenge");
        };
        let r = other
            .complete_login(&c, SecondFactor::RecoveryCode(&recovery[0]))
            .await;
        match attempt {
            0 => r.unwrap(),
            _ => assert!(matches!(r, Err(Error::SecondFactorRefused { .. })), "{r:?}"),
        }
    }
    // A wrong password stays what it was.
    let e = other.login("alice", "wrong").await.unwrap_err();
    assert!(matches!(e, Error::InvalidCredentials { .. }), "{e:?}");
}
