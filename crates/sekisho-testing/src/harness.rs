//! The in-process harness: the router the binary serves (`sekisho_axum::app`), built from the
//! same config keys, on real stores (SQLite, or PostgreSQL / PostgreSQL + Redis per
//! `SEKISHO_TEST_BACKEND`), with one [`ManualClock`] for every rule. Requests go through
//! `tower::ServiceExt::oneshot`: no sockets, no sleeps; a test moves time with
//! [`Harness::advance`], so a lifetime test cannot flake on a loaded machine.
//!
//! The clock starts at the real time and only moves forward, so Redis key expiry (absolute
//! timestamps from the domain) never runs ahead of the domain's own checks. Tests keep
//! lifetimes at minute scale, far above the real time a test takes.

use crate::services;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use sekisho_axum::AppState;
use sekisho_core::account::NewUser;
use sekisho_core::clock::{Clock, ManualClock, SystemClock};
use sekisho_core::session::CsrfKey;
use sekisho_core::token::managed::KeyEncryptionKey;
use sekisho_core::token::{HmacKey, SignatureAlgorithm};
use sekisho_core::{Auth, Config};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// The password [`Harness::user`] gives its users.
pub const PASSWORD: &str = "correct horse battery staple";

/// The signing key of every harness (tests that forge tokens need it).
pub const SIGNING_KEY: &str = "harness-signing-key-0123456789abcdef";

/// The key-encryption key of every harness with an asymmetric `jwt.algorithm` (its managed
/// keys are sealed with it).
pub const KEY_ENCRYPTION_KEY: &str = "harness-key-encryption-key-0123456789abcdef";

/// Where in-process requests come from.
pub const PEER: ([u8; 4], u16) = ([127, 0, 0, 1], 40000);

pub struct Harness {
    pub clock: ManualClock,
    pub auth: Arc<Auth>,
    pub config: Config,
    router: Router,
    _dir: tempfile::TempDir,
    pg: Option<services::TestDatabase>,
}

/// An answer: status, headers and the body as JSON (`Null` when it is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The value of cookie `name` set by this reply, if any.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookie(name)
            .map(|c| c.split(';').next().unwrap_or("")[name.len() + 1..].to_string())
    }

    /// The whole `Set-Cookie` value for `name`, if any.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.split_once('=').is_some_and(|(k, _)| k.trim() == name))
            .map(str::to_string)
    }

    /// The `Max-Age` of cookie `name` set by this reply.
    pub fn cookie_max_age(&self, name: &str) -> Option<u64> {
        let c = self.set_cookie(name)?;
        c.split(';')
            .find_map(|a| a.trim().strip_prefix("Max-Age="))
            .and_then(|v| v.parse().ok())
    }

    pub fn str(&self, field: &str) -> String {
        self.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("no string {field:?} in {}", self.body))
            .to_string()
    }
}

impl Harness {
    /// A fresh app on a fresh store, configured by `SEKISHO_…` pairs exactly as the binary reads
    /// them from its environment.
    pub async fn start(env: &[(&str, &str)]) -> Harness {
        Harness::start_toml("", env).await
    }

    /// Like [`Harness::start`], with a config file's text too (for keys the environment
    /// cannot carry, such as `[[policy.rules]]`).
    pub async fn start_toml(toml: &str, env: &[(&str, &str)]) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut vars: Vec<(String, String)> = vec![
            (
                "SEKISHO_DATABASE__URL".into(),
                format!("sqlite://{}/sekisho.db", dir.path().display()),
            ),
            (
                "SEKISHO_SERVER__DATA_DIR".into(),
                dir.path().display().to_string(),
            ),
            ("SEKISHO_JWT__SIGNING_KEY".into(), SIGNING_KEY.into()),
            // Cheap hashes keep the suite fast; the default parameters are tested in core.
            ("SEKISHO_PASSWORDS__ARGON2_MEMORY_KIB".into(), "256".into()),
            ("SEKISHO_PASSWORDS__ARGON2_ITERATIONS".into(), "1".into()),
        ];
        let backend = backend();
        let mut pg = None;
        if backend.starts_with("postgres") {
            let db = services::fresh_pg_database().await;
            vars.push(("SEKISHO_DATABASE__URL".into(), db.url.clone()));
            pg = Some(db);
        }
        if backend.ends_with("+redis") {
            vars.push(("SEKISHO_SESSIONS__STORE".into(), services::redis_url()));
            vars.push((
                "SEKISHO_SESSIONS__KEY_PREFIX".into(),
                format!("sekisho-h-{}", &sekisho_core::random::hex128()[..16]),
            ));
        }
        // An asymmetric algorithm signs with managed keys: no HMAC secret for tokens, one for
        // CSRF, a key-encryption key for the stored keys.
        let asymmetric = env
            .iter()
            .rev()
            .find(|(k, _)| *k == "SEKISHO_JWT__ALGORITHM")
            .is_some_and(|(_, v)| SignatureAlgorithm::parse(v).is_ok_and(|a| !a.is_symmetric()));
        if asymmetric {
            vars.retain(|(k, _)| k != "SEKISHO_JWT__SIGNING_KEY");
            vars.push(("SEKISHO_CSRF__SECRET".into(), SIGNING_KEY.into()));
            vars.push((
                "SEKISHO_JWT__KEY_ENCRYPTION_KEY".into(),
                KEY_ENCRYPTION_KEY.into(),
            ));
        }
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = Config::load(toml, vars).expect("harness config");
        let clock = ManualClock::at(SystemClock.now());
        let (auth, router) = build(&config, &clock).await;
        Harness {
            clock,
            auth,
            config,
            router,
            _dir: dir,
            pg,
        }
    }

    /// A second instance on the same stores and keys (two servers behind one load balancer),
    /// with its own clock and read cache; its clock starts where this one's is now.
    pub async fn start_sharing(&self) -> Harness {
        let clock = ManualClock::at(self.clock.now());
        let (auth, router) = build(&self.config, &clock).await;
        Harness {
            clock,
            auth,
            config: self.config.clone(),
            router,
            _dir: tempfile::tempdir().expect("tempdir"),
            pg: None,
        }
    }

    /// Moves this instance's clock forward.
    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    /// One round of the key upkeep the server runs every 30 s (rotation step, expired keys
    /// deleted, ring re-read), on this instance's clock.
    pub async fn maintain_keys(&self) {
        self.auth.maintain_keys().await.expect("key upkeep");
    }

    /// Creates an ordinary user with [`PASSWORD`].
    pub async fn user(&self, name: &str) {
        self.auth
            .create_user(
                &NewUser {
                    username: name.into(),
                    ..Default::default()
                },
                PASSWORD,
            )
            .await
            .expect("create user");
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .expect("request");
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(PEER)));
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .expect("body");
        Reply {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Reply {
        self.send(
            Method::POST,
            path,
            &[("content-type", "application/json")],
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    pub async fn get_bearer(&self, path: &str, token: &str) -> Reply {
        let auth = format!("Bearer {token}");
        self.send(Method::GET, path, &[("authorization", &auth)], None)
            .await
    }

    /// `POST /api/token/`; panics unless it succeeds.
    pub async fn token_pair(&self, user: &str, password: &str) -> (String, String) {
        let r = self
            .post_json(
                "/api/token/",
                serde_json::json!({"username": user, "password": password}),
            )
            .await;
        assert_eq!(r.status, 200, "token pair for {user}: {}", r.body);
        (r.str("access"), r.str("refresh"))
    }

    /// `POST /api/token/refresh/` with `refresh` in the body.
    pub async fn refresh(&self, refresh: &str) -> Reply {
        self.post_json(
            "/api/token/refresh/",
            serde_json::json!({ "refresh": refresh }),
        )
        .await
    }

    pub fn browser(&self) -> Browser<'_> {
        Browser {
            h: self,
            cookies: Vec::new(),
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(db) = self.pg.take() {
            // The test's runtime may be shutting down: drop the database from a runtime of its
            // own on a plain thread.
            let _ = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|rt| rt.block_on(db.drop()))
            })
            .join();
        }
    }
}

/// The facade and the app, as the binary builds them, on `clock`.
async fn build(config: &Config, clock: &ManualClock) -> (Arc<Auth>, Router) {
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let stores = sekisho_store::open(config, shared.clone())
        .await
        .expect("open stores");
    let algorithm = SignatureAlgorithm::parse(&config.jwt.algorithm).expect("algorithm");
    let builder = Auth::builder(config).stores(stores).clock(shared);
    let auth = if algorithm.is_symmetric() {
        let secret = config
            .jwt
            .signing_key
            .as_ref()
            .expect("a signing key")
            .expose()
            .as_bytes()
            .to_vec();
        builder
            .signing_key(Arc::new(HmacKey::new(algorithm, &secret).expect("key")))
            .csrf_key(CsrfKey::derive(&secret))
            .build()
            .expect("auth")
    } else {
        let kek = config.jwt.key_encryption_key.as_ref().expect("a KEK");
        let csrf = config.csrf.secret.as_ref().expect("a CSRF secret");
        let auth = builder
            .managed_keys(KeyEncryptionKey::derive(kek.expose().as_bytes()).expect("KEK"))
            .mfa_secret(kek.expose().as_bytes())
            .csrf_key(CsrfKey::derive(csrf.expose().as_bytes()))
            .build()
            .expect("auth");
        auth.maintain_keys().await.expect("first key upkeep");
        auth
    };
    let auth = Arc::new(auth);
    let router = sekisho_axum::app(
        AppState::new(auth.clone(), config),
        config.server.static_dir.clone(),
    );
    (auth, router)
}

/// `sqlite` (default), `postgres` or `postgres+redis`.
pub fn backend() -> String {
    std::env::var("SEKISHO_TEST_BACKEND").unwrap_or_else(|_| "sqlite".into())
}

/// A cookie-keeping client, as a browser would be: sends its cookies, keeps what replies set,
/// copies `csrftoken` into `X-CSRFToken` on unsafe requests (the SPA pattern).
pub struct Browser<'h> {
    h: &'h Harness,
    cookies: Vec<(String, String)>,
}

impl Browser<'_> {
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    pub fn session(&self) -> Option<String> {
        self.cookie(&self.h.config.sessions.cookie_name)
    }

    pub fn csrf(&self) -> Option<String> {
        self.cookie(&self.h.config.csrf.cookie_name)
    }

    fn absorb(&mut self, r: &Reply) {
        for c in r.headers.get_all("set-cookie").iter() {
            let Some((k, rest)) = c.to_str().ok().and_then(|c| c.split_once('=')) else {
                continue;
            };
            let value = rest.split(';').next().unwrap_or("").to_string();
            let deleted = rest.contains("Max-Age=0");
            self.cookies.retain(|(n, _)| n != k.trim());
            if !deleted {
                self.cookies.push((k.trim().to_string(), value));
            }
        }
    }

    pub async fn send(&mut self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let cookie_header = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let csrf = self.csrf().unwrap_or_default();
        let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/json")];
        if !cookie_header.is_empty() {
            headers.push(("cookie", &cookie_header));
        }
        let unsafe_method = !matches!(method, Method::GET | Method::HEAD);
        let csrf_header = self.h.config.csrf.header_name.clone();
        if unsafe_method && !csrf.is_empty() {
            headers.push((&csrf_header, &csrf));
        }
        let r = self
            .h
            .send(
                method,
                path,
                &headers,
                body.map(|b| b.to_string().into_bytes()),
            )
            .await;
        self.absorb(&r);
        r
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&mut self, path: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    /// Fetches a CSRF token, then logs in by session; panics unless the login succeeds.
    pub async fn login(&mut self, user: &str, password: &str) -> Reply {
        let r = self.attempt_login(user, password).await;
        assert_eq!(r.status, 200, "session login of {user}: {}", r.body);
        r
    }

    /// The SPA's session login (a CSRF cookie first, then the login with its header), whatever
    /// it answers: e.g. a second factor required.
    pub async fn attempt_login(&mut self, user: &str, password: &str) -> Reply {
        self.get("/api/auth/csrf/").await;
        self.post(
            "/api/auth/login/",
            &serde_json::json!({"username": user, "password": password}),
        )
        .await
    }
}
