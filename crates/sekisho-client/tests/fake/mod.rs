//! A fake sekisho on a loopback port for the client's behaviour tests: the token endpoints and
//! a protected route, with counters and switches (a slow, hanging, failing or refusing
//! refresh). Its tokens are unsigned JWT-shaped strings with real `exp`/`iat`: the client never
//! verifies signatures. (The tests against the real server are in `blackbox.rs`.)
#![allow(dead_code)]

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use sekisho_client::{Clock, SystemClock};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

pub const USER: &str = "alice";
pub const PASSWORD: &str = "a long password";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshMode {
    /// 200 with a new access token and a rotated refresh token.
    Rotate,
    /// 200 with a new access token only.
    NoRotate,
    /// 401 `token_not_valid`, `Token is blacklisted`.
    Refuse,
    /// 503.
    Unavailable,
    /// Never answers.
    Hang,
}

pub struct Fake {
    pub refresh_calls: AtomicUsize,
    pub blacklist_calls: AtomicUsize,
    /// 401s answered on the protected routes.
    pub refused_calls: AtomicUsize,
    pub protected_calls: AtomicUsize,
    pub mode: Mutex<RefreshMode>,
    /// How long a refresh takes before answering.
    pub refresh_delay: Mutex<Duration>,
    pub access_lifetime: Mutex<Duration>,
    /// Access tokens the protected routes accept.
    pub valid_access: Mutex<HashSet<String>>,
    /// The one refresh token the refresh endpoint accepts.
    pub live_refresh: Mutex<Option<String>>,
    pub last_authorization: Mutex<Option<String>>,
    /// Makes the protected routes refuse every token.
    pub refuse_all: std::sync::atomic::AtomicBool,
    minted: AtomicUsize,
}

pub struct FakeServer {
    pub base: String,
    pub state: Arc<Fake>,
}

fn now_secs() -> i64 {
    SystemClock
        .now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl Fake {
    pub fn mint_access(&self) -> String {
        let n = self.minted.fetch_add(1, Ordering::SeqCst);
        let life = self.access_lifetime.lock().unwrap().as_secs() as i64;
        let iat = now_secs();
        let token = token(
            json!({"token_type": "access", "exp": iat + life, "iat": iat, "jti": format!("{n:032x}"), "user_id": "1"}),
        );
        self.valid_access.lock().unwrap().insert(token.clone());
        token
    }

    pub fn mint_refresh(&self) -> String {
        let n = self.minted.fetch_add(1, Ordering::SeqCst);
        let iat = now_secs();
        let token = token(
            json!({"token_type": "refresh", "exp": iat + 86_400, "iat": iat, "jti": format!("{n:032x}"), "user_id": "1"}),
        );
        *self.live_refresh.lock().unwrap() = Some(token.clone());
        token
    }

    /// Makes the protected routes refuse every access token minted so far.
    pub fn revoke_access_tokens(&self) {
        self.valid_access.lock().unwrap().clear();
    }

    pub fn set_mode(&self, m: RefreshMode) {
        *self.mode.lock().unwrap() = m;
    }

    pub fn set_refresh_delay(&self, d: Duration) {
        *self.refresh_delay.lock().unwrap() = d;
    }

    pub fn refreshes(&self) -> usize {
        self.refresh_calls.load(Ordering::SeqCst)
    }
}

/// An unsigned JWT-shaped token with these claims.
pub fn token(claims: Value) -> String {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.unsigned",
        e.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
        e.encode(claims.to_string())
    )
}

fn refused(detail: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [("www-authenticate", "Bearer realm=\"api\"")],
        Json(json!({"detail": detail, "code": "token_not_valid"})),
    )
        .into_response()
}

async fn obtain(State(f): State<Arc<Fake>>, Json(body): Json<Value>) -> Response {
    if body["username"] == USER && body["password"] == PASSWORD {
        Json(json!({"refresh": f.mint_refresh(), "access": f.mint_access()})).into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": "No active account found with the given credentials"})),
        )
            .into_response()
    }
}

async fn refresh(State(f): State<Arc<Fake>>, Json(body): Json<Value>) -> Response {
    f.refresh_calls.fetch_add(1, Ordering::SeqCst);
    let delay = *f.refresh_delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let mode = *f.mode.lock().unwrap();
    match mode {
        RefreshMode::Hang => futures::future::pending().await,
        RefreshMode::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"detail": "Service unavailable"})),
        )
            .into_response(),
        RefreshMode::Refuse => refused("Token is blacklisted"),
        RefreshMode::Rotate | RefreshMode::NoRotate => {
            let live = f.live_refresh.lock().unwrap().clone();
            if body["refresh"].as_str() != live.as_deref() {
                return refused("Token is blacklisted");
            }
            let access = f.mint_access();
            if mode == RefreshMode::Rotate {
                Json(json!({"access": access, "refresh": f.mint_refresh()})).into_response()
            } else {
                Json(json!({"access": access})).into_response()
            }
        }
    }
}

async fn blacklist(State(f): State<Arc<Fake>>, Json(body): Json<Value>) -> Response {
    f.blacklist_calls.fetch_add(1, Ordering::SeqCst);
    let mut live = f.live_refresh.lock().unwrap();
    if body["refresh"].as_str() == live.as_deref() {
        *live = None;
        Json(json!({})).into_response()
    } else {
        refused("Token is blacklisted")
    }
}

/// The bearer token if the protected routes accept it.
fn check(f: &Fake, headers: &HeaderMap) -> Option<String> {
    f.protected_calls.fetch_add(1, Ordering::SeqCst);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    *f.last_authorization.lock().unwrap() = auth.clone();
    let token = auth
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or("");
    if !f.refuse_all.load(Ordering::SeqCst) && f.valid_access.lock().unwrap().contains(token) {
        Some(token.to_string())
    } else {
        f.refused_calls.fetch_add(1, Ordering::SeqCst);
        None
    }
}

async fn thing(State(f): State<Arc<Fake>>, headers: HeaderMap) -> Response {
    match check(&f, &headers) {
        Some(t) => Json(json!({"ok": true, "token": t})).into_response(),
        None => refused("Given token not valid for any token type"),
    }
}

async fn echo(State(f): State<Arc<Fake>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    match check(&f, &headers) {
        Some(_) => Json(json!({"echo": body})).into_response(),
        None => refused("Given token not valid for any token type"),
    }
}

/// A 401 that is not about the token.
async fn other_401(State(f): State<Arc<Fake>>) -> Response {
    f.protected_calls.fetch_add(1, Ordering::SeqCst);
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"detail": "Upstream says no"})),
    )
        .into_response()
}

/// Records the `Authorization` header it was sent (for requests that must not carry one).
async fn open(State(f): State<Arc<Fake>>, headers: HeaderMap) -> Response {
    *f.last_authorization.lock().unwrap() = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    Json(json!({"open": true})).into_response()
}

impl FakeServer {
    pub async fn start() -> FakeServer {
        let state = Arc::new(Fake {
            refresh_calls: AtomicUsize::new(0),
            blacklist_calls: AtomicUsize::new(0),
            refused_calls: AtomicUsize::new(0),
            protected_calls: AtomicUsize::new(0),
            mode: Mutex::new(RefreshMode::Rotate),
            refresh_delay: Mutex::new(Duration::ZERO),
            access_lifetime: Mutex::new(Duration::from_secs(300)),
            valid_access: Mutex::new(HashSet::new()),
            live_refresh: Mutex::new(None),
            last_authorization: Mutex::new(None),
            refuse_all: std::sync::atomic::AtomicBool::new(false),
            minted: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/api/token/", post(obtain))
            .route("/api/token/refresh/", post(refresh))
            .route("/api/token/blacklist/", post(blacklist))
            .route("/api/thing/", get(thing))
            .route("/api/echo/", post(echo))
            .route("/api/other-401/", get(other_401))
            .route("/open/", get(open))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeServer {
            base: format!("http://{addr}"),
            state,
        }
    }
}

/// A `reqwest::Client` that ignores proxy settings (everything here is on loopback).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}
