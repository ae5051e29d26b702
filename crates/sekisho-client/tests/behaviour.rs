//! The client's guarantees, against a fake server on loopback whose refresh can be made slow,
//! hanging, failing or refusing at will.

mod fake;

use fake::{FakeServer, PASSWORD, RefreshMode, USER, http};
use sekisho_client::{Client, Error, FileStore, ManualClock, MemoryStore, TokenStore, Tokens};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

async fn logged_in(s: &FakeServer, store: Arc<dyn TokenStore>) -> Client {
    let c = Client::builder(&s.base)
        .http_client(http())
        .storage_arc(store)
        .build()
        .unwrap();
    c.login(USER, PASSWORD).await.unwrap();
    c
}

/// Runs `n` concurrent `GET /api/thing/` calls and returns their results.
async fn burst(c: &Client, n: usize) -> Vec<Result<Value, Error>> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.get_json::<Value>("/api/thing/").await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test]
async fn login_stores_the_pair_and_requests_carry_it() {
    let s = FakeServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let c = logged_in(&s, store.clone()).await;
    let stored = store.load().await.unwrap().expect("stored after login");
    assert_eq!(
        stored.refresh,
        s.state.live_refresh.lock().unwrap().clone().unwrap()
    );
    let v: Value = c.get_json("/api/thing/").await.unwrap();
    assert_eq!(v["token"].as_str(), stored.access.as_deref());
    assert_eq!(s.state.refreshes(), 0);
    assert!(c.is_logged_in().await.unwrap());
}

#[tokio::test]
async fn a_wrong_password_is_invalid_credentials() {
    let s = FakeServer::start().await;
    let c = Client::builder(&s.base)
        .http_client(http())
        .build()
        .unwrap();
    let e = c.login(USER, "wrong").await.unwrap_err();
    assert!(matches!(e, Error::InvalidCredentials { .. }), "{e:?}");
    assert_eq!(
        e.detail(),
        Some("No active account found with the given credentials")
    );
    assert!(matches!(c.access_token().await, Err(Error::NotLoggedIn)));
    assert!(matches!(
        c.get_json::<Value>("/api/thing/").await,
        Err(Error::NotLoggedIn)
    ));
}

#[tokio::test]
async fn a_hundred_refused_calls_share_one_refresh_and_are_each_retried_once() {
    let s = FakeServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let c = logged_in(&s, store.clone()).await;
    // The access token still looks fresh to the client, but the server refuses it: the 401
    // path, not the proactive one. A slow refresh makes every call wait for the same one.
    s.state.revoke_access_tokens();
    s.state.set_refresh_delay(Duration::from_millis(200));
    let results = burst(&c, 100).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(s.state.refreshes(), 1);
    let stored = store.load().await.unwrap().unwrap();
    for r in &results {
        assert_eq!(
            r.as_ref().unwrap()["token"].as_str(),
            stored.access.as_deref()
        );
    }
    // Rotation: the successor is stored, and it is the one the server now accepts.
    assert_eq!(
        Some(stored.refresh),
        s.state.live_refresh.lock().unwrap().clone()
    );
    // Each call was refused at most once: 100 first attempts, at most 100 retries.
    assert!(s.state.protected_calls.load(Ordering::SeqCst) <= 200);
}

#[tokio::test]
async fn a_refresh_without_rotation_keeps_the_refresh_token() {
    let s = FakeServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let c = logged_in(&s, store.clone()).await;
    let before = store.load().await.unwrap().unwrap();
    s.state.set_mode(RefreshMode::NoRotate);
    let access = c.refresh().await.unwrap();
    let after = store.load().await.unwrap().unwrap();
    assert_eq!(after.refresh, before.refresh);
    assert_eq!(after.access.as_deref(), Some(access.as_str()));
    assert_ne!(after.access, before.access);
}

#[tokio::test]
async fn a_refused_refresh_ends_the_login_for_every_waiter_at_once() {
    let s = FakeServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let c = logged_in(&s, store.clone()).await;
    s.state.revoke_access_tokens();
    s.state.set_mode(RefreshMode::Refuse);
    s.state.set_refresh_delay(Duration::from_millis(200));
    let started = Instant::now();
    let results = burst(&c, 100).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(s.state.refreshes(), 1);
    for r in &results {
        match r {
            Err(Error::SessionEnded { status: 401, body }) => {
                assert_eq!(body["detail"], "Token is blacklisted");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(store.load().await.unwrap(), None, "stored tokens cleared");
    assert!(!c.is_logged_in().await.unwrap());
    // Later calls get the same news, without asking the server again, until the next login.
    let later = c.get_json::<Value>("/api/thing/").await.unwrap_err();
    assert!(
        matches!(&later, Error::SessionEnded { status: 401, .. }),
        "{later:?}"
    );
    assert_eq!(s.state.refreshes(), 1);
    c.login(USER, PASSWORD).await.unwrap();
    s.state.set_mode(RefreshMode::Rotate);
    assert!(c.get_json::<Value>("/api/thing/").await.is_ok());
    c.logout().await.unwrap();
    assert!(matches!(c.access_token().await, Err(Error::NotLoggedIn)));
}

#[tokio::test]
async fn a_failing_server_keeps_the_login_and_every_waiter_gets_the_same_error() {
    let s = FakeServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let c = logged_in(&s, store.clone()).await;
    let before = store.load().await.unwrap();
    s.state.revoke_access_tokens();
    s.state.set_mode(RefreshMode::Unavailable);
    s.state.set_refresh_delay(Duration::from_millis(200));
    let results = burst(&c, 100).await;
    assert_eq!(s.state.refreshes(), 1);
    for r in &results {
        assert!(matches!(r, Err(Error::Api { status: 503, .. })), "{r:?}");
    }
    assert_eq!(store.load().await.unwrap(), before, "tokens kept");
    // The server is back: the next call refreshes again and succeeds.
    s.state.set_mode(RefreshMode::Rotate);
    s.state.set_refresh_delay(Duration::ZERO);
    assert!(c.get_json::<Value>("/api/thing/").await.is_ok());
    assert_eq!(s.state.refreshes(), 2);
}

#[tokio::test]
async fn a_hung_refresh_releases_every_waiter_within_the_timeout() {
    let s = FakeServer::start().await;
    let c = Client::builder(&s.base)
        .http_client(http())
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    c.login(USER, PASSWORD).await.unwrap();
    s.state.revoke_access_tokens();
    s.state.set_mode(RefreshMode::Hang);
    let started = Instant::now();
    let results = burst(&c, 100).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(s.state.refreshes(), 1);
    for r in &results {
        assert!(matches!(r, Err(Error::Timeout(_))), "{r:?}");
    }
    assert!(c.is_logged_in().await.unwrap(), "a timeout keeps the login");
}

#[tokio::test]
async fn the_rotated_token_is_stored_even_when_every_caller_gave_up() {
    let s = FakeServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let c = logged_in(&s, store.clone()).await;
    s.state.set_refresh_delay(Duration::from_millis(300));
    // The only caller stops waiting long before the server answers.
    let gave_up = tokio::time::timeout(Duration::from_millis(50), c.refresh()).await;
    assert!(gave_up.is_err());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let live = s.state.live_refresh.lock().unwrap().clone();
        let stored = store.load().await.unwrap().map(|t| t.refresh);
        if s.state.refreshes() == 1 && stored == live {
            break;
        }
        assert!(Instant::now() < deadline, "the successor was never stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And the next call uses it without another refresh.
    assert!(c.get_json::<Value>("/api/thing/").await.is_ok());
    assert_eq!(s.state.refreshes(), 1);
}

#[tokio::test]
async fn proactive_refresh_runs_before_expiry_on_the_injected_clock() {
    let s = FakeServer::start().await;
    let clock = ManualClock::starting_now();
    let c = Client::builder(&s.base)
        .http_client(http())
        .clock(clock.clone())
        .refresh_margin(Duration::from_secs(60))
        .build()
        .unwrap();
    c.login(USER, PASSWORD).await.unwrap();
    let first = c.access_token().await.unwrap();
    // 5 min tokens, 60 s margin: at +3 min nothing happens.
    clock.advance(Duration::from_secs(180));
    assert_eq!(c.access_token().await.unwrap(), first);
    assert_eq!(s.state.refreshes(), 0);
    // At +4 min 30 s the token is within the margin: 100 tasks, one refresh, no 401 at all.
    clock.advance(Duration::from_secs(90));
    let results = burst(&c, 100).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(s.state.refreshes(), 1);
    assert_eq!(s.state.refused_calls.load(Ordering::SeqCst), 0);
    let second = c.access_token().await.unwrap();
    assert_ne!(second, first);
    // The new token was minted at the server's (real) time, 4.5 min behind this clock: the
    // skew estimate keeps it fresh instead of refreshing on every call.
    assert!(c.clock_skew_ms() < -200_000, "{}", c.clock_skew_ms());
    assert!(c.get_json::<Value>("/api/thing/").await.is_ok());
    assert_eq!(s.state.refreshes(), 1);
}

#[tokio::test]
async fn a_failed_proactive_refresh_still_sends_the_valid_token() {
    let s = FakeServer::start().await;
    let clock = ManualClock::starting_now();
    let c = Client::builder(&s.base)
        .http_client(http())
        .clock(clock.clone())
        .build()
        .unwrap();
    c.login(USER, PASSWORD).await.unwrap();
    s.state.set_mode(RefreshMode::Unavailable);
    clock.advance(Duration::from_secs(290)); // 10 s before exp; the default margin is 30 s
    assert!(c.get_json::<Value>("/api/thing/").await.is_ok());
    assert_eq!(s.state.refreshes(), 1);
    // Once it has expired, the failure is the caller's.
    clock.advance(Duration::from_secs(20));
    assert!(matches!(
        c.get_json::<Value>("/api/thing/").await,
        Err(Error::Api { status: 503, .. })
    ));
}

#[tokio::test]
async fn without_proactive_refresh_an_expired_token_is_sent_and_rescued_by_the_401() {
    let s = FakeServer::start().await;
    let clock = ManualClock::starting_now();
    let c = Client::builder(&s.base)
        .http_client(http())
        .clock(clock.clone())
        .proactive_refresh(false)
        .build()
        .unwrap();
    c.login(USER, PASSWORD).await.unwrap();
    clock.advance(Duration::from_secs(3600));
    s.state.revoke_access_tokens(); // what the server does with an expired token
    let v: Value = c.post_json("/api/echo/", &json!({"n": 1})).await.unwrap();
    assert_eq!(v, json!({"echo": {"n": 1}}), "the retry carried the body");
    assert_eq!(s.state.refreshes(), 1);
    assert_eq!(s.state.refused_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn another_processs_refresh_is_adopted_from_a_shared_file() {
    let s = FakeServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let clock = ManualClock::starting_now();
    let build = || {
        Client::builder(&s.base)
            .http_client(http())
            .clock(clock.clone())
            .storage(FileStore::new(&path))
            .build()
            .unwrap()
    };
    let a = build();
    a.login(USER, PASSWORD).await.unwrap();
    let b = build();
    assert!(b.is_logged_in().await.unwrap(), "b read a's login");
    // a refreshes; b still holds the spent refresh token in memory.
    a.refresh().await.unwrap();
    assert_eq!(s.state.refreshes(), 1);
    // b is refused (its access token was revoked) and refreshes: it finds a's newer tokens in
    // the file and uses them instead of presenting its spent refresh token.
    let a_access = a.tokens().await.unwrap().unwrap().access.unwrap();
    s.state
        .valid_access
        .lock()
        .unwrap()
        .retain(|t| *t == a_access);
    let v: Value = b.get_json("/api/thing/").await.unwrap();
    assert_eq!(s.state.refreshes(), 1, "no second refresh");
    assert_eq!(
        v["token"].as_str(),
        FileStore::new(&path)
            .load()
            .await
            .unwrap()
            .unwrap()
            .access
            .as_deref()
    );
}

#[tokio::test]
async fn logout_blacklists_the_family_and_clears_the_store() {
    let s = FakeServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let c = logged_in(&s, store.clone()).await;
    c.logout().await.unwrap();
    assert_eq!(s.state.blacklist_calls.load(Ordering::SeqCst), 1);
    assert_eq!(*s.state.live_refresh.lock().unwrap(), None);
    assert_eq!(store.load().await.unwrap(), None);
    assert!(matches!(c.access_token().await, Err(Error::NotLoggedIn)));
    // Logged out already: nothing to tell the server.
    c.logout().await.unwrap();
    assert_eq!(s.state.blacklist_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn logout_forgets_the_tokens_even_when_the_server_is_unreachable() {
    let store = Arc::new(MemoryStore::with_tokens(Tokens::new("a", "r")));
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = Client::builder(format!("http://127.0.0.1:{port}"))
        .http_client(http())
        .storage_arc(store.clone())
        .build()
        .unwrap();
    assert!(c.is_logged_in().await.unwrap());
    let e = c.logout().await.unwrap_err();
    assert!(matches!(e, Error::Http(_)), "{e:?}");
    assert_eq!(store.load().await.unwrap(), None);
}

#[tokio::test]
async fn the_token_never_goes_to_another_origin() {
    let s = FakeServer::start().await;
    let other = FakeServer::start().await;
    let c = logged_in(&s, Arc::new(MemoryStore::new())).await;
    let e = c
        .get(&format!("{}/open/", other.base))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert_eq!(*other.state.last_authorization.lock().unwrap(), None);
}

#[tokio::test]
async fn a_401_that_is_not_about_the_token_is_handed_back_untouched() {
    let s = FakeServer::start().await;
    let c = logged_in(&s, Arc::new(MemoryStore::new())).await;
    let res = c.get("/api/other-401/").send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.url().path(), "/api/other-401/");
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"detail": "Upstream says no"})
    );
    assert_eq!(s.state.refreshes(), 0);
    assert_eq!(
        s.state.protected_calls.load(Ordering::SeqCst),
        1,
        "no retry"
    );
}

#[tokio::test]
async fn a_token_refused_again_after_the_refresh_is_not_retried_twice() {
    let s = FakeServer::start().await;
    let c = logged_in(&s, Arc::new(MemoryStore::new())).await;
    s.state.refuse_all.store(true, Ordering::SeqCst);
    let res = c.get("/api/thing/").send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "token_not_valid"
    );
    assert_eq!(s.state.protected_calls.load(Ordering::SeqCst), 2);
    assert_eq!(s.state.refreshes(), 1);
}

/// A memory store whose saves fail while `fail` is set.
#[derive(Default)]
struct FlakyStore {
    inner: MemoryStore,
    fail: AtomicBool,
}

#[async_trait::async_trait]
impl TokenStore for FlakyStore {
    async fn load(&self) -> std::io::Result<Option<Tokens>> {
        self.inner.load().await
    }
    async fn save(&self, tokens: &Tokens) -> std::io::Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("disk full"));
        }
        self.inner.save(tokens).await
    }
    async fn clear(&self) -> std::io::Result<()> {
        self.inner.clear().await
    }
}

#[tokio::test]
async fn a_failed_save_is_reported_and_the_rotated_token_in_memory_stays_live() {
    let s = FakeServer::start().await;
    let store = Arc::new(FlakyStore::default());
    let c = logged_in(&s, store.clone()).await;
    store.fail.store(true, Ordering::SeqCst);
    let e = c.refresh().await.unwrap_err();
    assert!(matches!(e, Error::Store(_)), "{e:?}");
    // The store still holds the spent refresh token; memory holds its successor, and the
    // next refresh presents that one (the fake accepts only the live token).
    let spent = store.load().await.unwrap().unwrap().refresh;
    assert_ne!(Some(spent), s.state.live_refresh.lock().unwrap().clone());
    assert!(c.get_json::<Value>("/api/thing/").await.is_ok());
    store.fail.store(false, Ordering::SeqCst);
    c.refresh().await.unwrap();
    assert_eq!(s.state.refreshes(), 2);
    assert_eq!(
        store.load().await.unwrap().map(|t| t.refresh),
        s.state.live_refresh.lock().unwrap().clone(),
        "in sync again"
    );
}
