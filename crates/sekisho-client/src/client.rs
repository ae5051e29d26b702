//! The client: login, logout, the single-flight refresh, and requests that carry the token.

use crate::clock::{Clock, SystemClock, unix_ms};
use crate::flight::{self, SingleFlight};
use crate::jwt::{TokenTimes, estimate_skew, token_times};
use crate::store::{MemoryStore, TokenStore, Tokens};
use crate::{Error, Result};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Request, Response, StatusCode, Url};
use sekisho_proto as proto;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The default bound on every call to a token endpoint, on every wait for a refresh and on
/// every token-store operation.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// The proactive refresh runs at most this long before `exp` (less for short-lived tokens: a
/// quarter of their lifetime).
pub const MAX_DEFAULT_MARGIN: Duration = Duration::from_secs(30);

/// A 401 body larger than this is not read to look for `token_not_valid`.
const MAX_INSPECTED_BODY: u64 = 64 * 1024;

/// The paths of the endpoints the client calls, relative to the base URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    pub token: String,
    /// The token login's second step.
    pub token_mfa: String,
    pub refresh: String,
    pub blacklist: String,
    pub me: String,
}

impl Default for Paths {
    fn default() -> Paths {
        Paths {
            token: proto::paths::TOKEN.into(),
            token_mfa: proto::paths::TOKEN_MFA.into(),
            refresh: proto::paths::REFRESH.into(),
            blacklist: proto::paths::BLACKLIST.into(),
            me: proto::paths::ME.into(),
        }
    }
}

/// A code for the second step of a login ([`Client::complete_login`]).
#[derive(Clone, Copy)]
pub enum SecondFactor<'a> {
    /// The six digits an authenticator app shows now.
    Totp(&'a str),
    /// One of the account's single-use recovery codes.
    RecoveryCode(&'a str),
}

impl fmt::Debug for SecondFactor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecondFactor::Totp(_) => "Totp(…)",
            SecondFactor::RecoveryCode(_) => "RecoveryCode(…)",
        })
    }
}

/// Builds a [`Client`]; see [`Client::builder`].
pub struct ClientBuilder {
    base: String,
    http: Option<reqwest::Client>,
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    paths: Paths,
    margin: Option<Duration>,
    proactive: bool,
    timeout: Duration,
}

impl ClientBuilder {
    /// Where the tokens are kept (default: [`MemoryStore`], this process only).
    pub fn storage(mut self, store: impl TokenStore) -> Self {
        self.store = Arc::new(store);
        self
    }

    /// Like [`storage`](Self::storage), for a store the application also holds.
    pub fn storage_arc(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = store;
        self
    }

    /// The `reqwest::Client` to send every request with (default: a new one). Its settings —
    /// proxies, TLS roots, a default timeout — apply to every call.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The clock expiry is judged by (default: [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub fn paths(mut self, paths: Paths) -> Self {
        self.paths = paths;
        self
    }

    /// Refresh when the access token expires within `margin` (default: a quarter of the token's
    /// lifetime, at most 30 s).
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = Some(margin);
        self
    }

    /// Refresh before sending a token that expires within the margin (default `true`). With
    /// `false`, tokens are sent as they are and a refused one (401 `token_not_valid`) is
    /// refreshed and the request retried once.
    pub fn proactive_refresh(mut self, on: bool) -> Self {
        self.proactive = on;
        self
    }

    /// The bound on every call to a token endpoint, on every wait for a refresh and on every
    /// token-store operation (default 15 s). Nothing the client does waits longer.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn build(self) -> Result<Client> {
        let base = Url::parse(&self.base)
            .map_err(|e| Error::Config(format!("base URL {:?}: {e}", self.base)))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(Error::Config(format!(
                "base URL {:?}: not an http(s) URL",
                self.base
            )));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(Error::Config(format!(
                "base URL {:?}: no query or fragment allowed",
                self.base
            )));
        }
        let http = match self.http {
            Some(h) => h,
            None => reqwest::Client::builder()
                .build()
                .map_err(|e| Error::Config(format!("HTTP client: {e}")))?,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                prefix: base.as_str().trim_end_matches('/').to_string(),
                base,
                http,
                store: self.store,
                clock: self.clock,
                paths: self.paths,
                margin: self.margin,
                proactive: self.proactive,
                timeout: self.timeout,
                state: Mutex::new(State::default()),
                loaded: tokio::sync::OnceCell::new(),
                writes: tokio::sync::Mutex::new(()),
                flight: SingleFlight::new(),
            }),
        })
    }
}

/// A sekisho JWT client. Cheap to clone (clones share tokens and the refresh); share one per
/// login across all tasks.
///
/// Guarantees:
///
/// - **Single flight.** However many tasks need a refresh at once, one call to
///   `POST /api/token/refresh/` is made, and every one of them gets its result: the new access
///   token, or the same error.
/// - **Nothing hangs.** Every call to a token endpoint, every wait for a refresh and every
///   token-store operation is bounded by [`ClientBuilder::timeout`].
/// - **A refused refresh ends the login once**: every waiter gets [`Error::SessionEnded`] and
///   the stored tokens are cleared. A refresh that fails otherwise (network, 5xx, 429) keeps the
///   tokens; a later call tries again.
/// - **The rotated refresh token is always stored**, before any waiter is released — even when
///   every caller has given up waiting (the refresh runs as its own task).
/// - **Proactive refresh**: a token that expires within the margin is refreshed before it is
///   sent (expiry read from the token's `exp`, unverified, corrected for clock skew).
/// - **Refused tokens are retried once**: a 401 with code `token_not_valid` gets one refresh
///   and one retry.
/// - **Tokens go only to the API**: requests to another origin are refused.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    base: Url,
    /// The base URL without its trailing `/`: paths are appended to it.
    prefix: String,
    http: reqwest::Client,
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    paths: Paths,
    margin: Option<Duration>,
    proactive: bool,
    timeout: Duration,
    state: Mutex<State>,
    /// Set once the store has been read (or a login or logout made reading it moot).
    loaded: tokio::sync::OnceCell<()>,
    /// Held while the tokens change in memory and in the store, so the store's writes happen in
    /// the order of the changes (a logout's clear is never overtaken by an earlier refresh's save).
    writes: tokio::sync::Mutex<()>,
    flight: SingleFlight<String>,
}

#[derive(Default)]
struct State {
    tokens: Option<Tokens>,
    /// Times of `tokens.access`.
    times: Option<TokenTimes>,
    /// Estimated `server clock − local clock`, in ms.
    skew_ms: i64,
    /// Bumped on every change of `tokens`: a refresh applies its result only if nothing else
    /// (a login, a logout) changed them meanwhile.
    generation: u64,
    /// Why there are no tokens, when a refused refresh ended the login: every later call gets
    /// that same error rather than a bare `NotLoggedIn`, until the next login.
    ended: Option<Error>,
    /// The last write to the store failed: it holds older tokens than memory, so it is not read
    /// back before a refresh (its refresh token may be spent).
    store_behind: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Freshness {
    Fresh,
    /// Expires within the margin, not yet expired.
    Expiring,
    Expired,
}

impl State {
    /// The error for "there are no tokens".
    fn logged_out(&self) -> Error {
        self.ended.clone().unwrap_or(Error::NotLoggedIn)
    }

    fn install(&mut self, tokens: Option<Tokens>) {
        self.times = tokens
            .as_ref()
            .and_then(|t| t.access.as_deref())
            .and_then(token_times);
        self.tokens = tokens;
    }

    /// Freshness of the current access token at `now_ms` (local clock). A token whose expiry
    /// cannot be read counts as fresh: the server's 401 is then the only signal.
    fn freshness(&self, now_ms: i64, margin: Option<Duration>) -> Freshness {
        let Some(t) = self.times else {
            return Freshness::Fresh;
        };
        let exp_ms = t.exp.saturating_mul(1000).saturating_sub(self.skew_ms);
        let margin_ms = match margin {
            Some(m) => m.as_millis() as i64,
            None => {
                let max = MAX_DEFAULT_MARGIN.as_millis() as i64;
                match t.iat {
                    Some(iat) if t.exp > iat => ((t.exp - iat) * 1000 / 4).min(max),
                    _ => max,
                }
            }
        };
        if now_ms >= exp_ms {
            Freshness::Expired
        } else if now_ms.saturating_add(margin_ms) >= exp_ms {
            Freshness::Expiring
        } else {
            Freshness::Fresh
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base.as_str())
            .field("logged_in", &self.inner.state().tokens.is_some())
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> i64 {
        unix_ms(self.clock.now())
    }

    fn url(&self, path: &str) -> Result<Url> {
        let text = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else if path.starts_with('/') {
            format!("{}{path}", self.prefix)
        } else {
            format!("{}/{path}", self.prefix)
        };
        Url::parse(&text).map_err(|e| Error::Config(format!("URL {text:?}: {e}")))
    }

    fn is_api_url(&self, url: &Url) -> bool {
        url.scheme() == self.base.scheme()
            && url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default()
    }

    /// Runs a token-store operation within the timeout.
    async fn bounded<T>(&self, f: impl Future<Output = std::io::Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(r) => r.map_err(Error::store),
            Err(_) => Err(Error::Timeout(self.timeout)),
        }
    }

    async fn write_lock(&self) -> Result<tokio::sync::MutexGuard<'_, ()>> {
        tokio::time::timeout(self.timeout, self.writes.lock())
            .await
            .map_err(|_| Error::Timeout(self.timeout))
    }

    async fn ensure_loaded(&self) -> Result<()> {
        self.loaded
            .get_or_try_init(|| async {
                let stored = self.bounded(self.store.load()).await?;
                let mut st = self.state();
                // A login or logout may have happened while the store was read.
                if st.generation == 0 {
                    st.install(stored);
                }
                Ok::<(), Error>(())
            })
            .await
            .map(|_| ())
    }

    /// POSTs `body` as JSON to one of sekisho's own endpoints (no token, no retry), within the
    /// timeout; the status and the JSON body (`Null` if none).
    async fn call(&self, path: &str, body: &impl Serialize) -> Result<(StatusCode, Value)> {
        let url = self.url(path)?;
        let res = self
            .http
            .post(url)
            .json(body)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| Error::http(e, self.timeout))?;
        let status = res.status();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| Error::http(e, self.timeout))?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    fn note_skew(st: &mut State, access: &str, sent_ms: i64, received_ms: i64) {
        if let Some(TokenTimes { iat: Some(iat), .. }) = token_times(access) {
            st.skew_ms = estimate_skew(iat, sent_ms, received_ms);
        }
    }

    /// The current access token if it is usable; otherwise the login is gone.
    fn current_access(&self) -> Result<String> {
        let st = self.state();
        match &st.tokens {
            Some(Tokens {
                access: Some(a), ..
            }) if st.freshness(self.now_ms(), Some(Duration::ZERO)) != Freshness::Expired => {
                Ok(a.clone())
            }
            _ => Err(st.logged_out()),
        }
    }

    /// Saves `tokens` (or clears the store), noting whether the store is now behind memory.
    async fn persist(&self, tokens: Option<&Tokens>) -> Result<()> {
        let r = match tokens {
            Some(t) => self.bounded(self.store.save(t)).await,
            None => self.bounded(self.store.clear()).await,
        };
        self.state().store_behind = r.is_err();
        r
    }

    /// The refresh itself: one run per flight.
    async fn refresh_op(self: Arc<Inner>) -> Result<String> {
        let (generation, in_memory, store_behind) = {
            let st = self.state();
            (st.generation, st.tokens.clone(), st.store_behind)
        };
        // Another process sharing the store may have refreshed already: its refresh token is
        // the live one (ours is spent), and its access token may be good to use as it is.
        let stored = if store_behind {
            None
        } else {
            self.bounded(self.store.load()).await.ok().flatten()
        };
        let current = match (stored, in_memory) {
            (Some(s), Some(m)) if s.refresh != m.refresh => {
                let mut probe = State {
                    skew_ms: self.state().skew_ms,
                    ..State::default()
                };
                probe.install(Some(s.clone()));
                if let Some(access) = s.access.clone()
                    && probe.freshness(self.now_ms(), self.margin) == Freshness::Fresh
                {
                    let _w = self.write_lock().await?;
                    let mut st = self.state();
                    if st.generation != generation {
                        drop(st);
                        return self.current_access();
                    }
                    st.generation += 1;
                    st.install(Some(s));
                    return Ok(access);
                }
                s
            }
            (_, Some(m)) => m,
            (Some(s), None) => s,
            (None, None) => return Err(self.state().logged_out()),
        };

        let sent = self.now_ms();
        let (status, body) = self
            .call(
                &self.paths.refresh,
                &proto::RefreshRequest {
                    refresh: current.refresh.clone(),
                },
            )
            .await?;
        let received = self.now_ms();

        if status.is_success() {
            let r: proto::RefreshResponse = serde_json::from_value(body).map_err(|e| {
                Error::Protocol(format!("{} answered without an access token: {e}", status))
            })?;
            let tokens = Tokens {
                access: Some(r.access.clone()),
                // Rotation: the presented token is spent; keep it only if no successor came.
                refresh: r.refresh.unwrap_or(current.refresh),
            };
            let _w = self.write_lock().await?;
            {
                let mut st = self.state();
                if st.generation != generation {
                    // Logged out or in again meanwhile: that change stands.
                    drop(st);
                    return self.current_access();
                }
                st.generation += 1;
                st.install(Some(tokens.clone()));
                st.ended = None;
                Inner::note_skew(&mut st, &r.access, sent, received);
            }
            self.persist(Some(&tokens)).await?;
            return Ok(r.access);
        }

        if matches!(status.as_u16(), 400 | 401 | 403) {
            let ended = Error::SessionEnded {
                status: status.as_u16(),
                body,
            };
            let _w = self.write_lock().await?;
            {
                let mut st = self.state();
                if st.generation != generation {
                    drop(st);
                    return self.current_access();
                }
                st.generation += 1;
                st.install(None);
                st.ended = Some(ended.clone());
            }
            // The tokens are dead either way; a failure to forget them is not the news.
            let _ = self.persist(None).await;
            return Err(ended);
        }
        // 5xx, 429, …: the login may be fine; keep it, and let a later call try again.
        Err(Error::Api {
            status: status.as_u16(),
            body,
        })
    }
}

/// One request prepared by [`Client::prepare`]: the request with its `Authorization`, a copy
/// for the retry (when the body can be copied), and the token sent.
pub(crate) struct Prepared {
    pub request: Request,
    pub retry: Option<Request>,
    pub token: String,
}

/// What to do with a response: hand it back, or send the retry.
pub(crate) enum After {
    Done(Response),
    Retry(Request),
}

impl Client {
    /// A builder for a client of the sekisho server at `base_url` (e.g.
    /// `https://auth.example.com`, or `https://example.com/auth` when it is mounted under a
    /// path: the endpoint paths are appended).
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base: base_url.into(),
            http: None,
            store: Arc::new(MemoryStore::new()),
            clock: Arc::new(SystemClock),
            paths: Paths::default(),
            margin: None,
            proactive: true,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The base URL.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The underlying `reqwest::Client` (for calls that need no token).
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// The absolute URL of `path` (a path is appended to the base URL; an absolute URL is taken
    /// as it is).
    pub fn url(&self, path: &str) -> Result<Url> {
        self.inner.url(path)
    }

    /// Whether the token may be sent to `url`: it has the base URL's scheme, host and port.
    pub fn is_api_url(&self, url: &Url) -> bool {
        self.inner.is_api_url(url)
    }

    /// Logs in with `POST /api/token/` and stores the token pair. The password is sent as
    /// typed (sekisho does not trim it).
    pub async fn login(&self, username: &str, password: &str) -> Result<()> {
        let inner = &self.inner;
        // A broken store must not prevent logging in: the login overwrites it.
        let _ = inner.ensure_loaded().await;
        let sent = inner.now_ms();
        let (status, body) = inner
            .call(
                &inner.paths.token,
                &proto::ObtainRequest {
                    username: username.to_string(),
                    password: password.to_string(),
                },
            )
            .await?;
        let received = inner.now_ms();
        if status == StatusCode::UNAUTHORIZED {
            let code = body.get("code").and_then(|c| c.as_str());
            let required = code == Some(proto::CODE_MFA_REQUIRED);
            if required || code == Some(proto::CODE_MFA_ENROLMENT_REQUIRED) {
                let challenge: proto::MfaChallenge = serde_json::from_value(body)
                    .map_err(|e| Error::Protocol(format!("second-factor challenge: {e}")))?;
                let challenge = Arc::new(challenge);
                return Err(if required {
                    Error::MfaRequired(challenge)
                } else {
                    Error::MfaEnrolmentRequired(challenge)
                });
            }
            return Err(Error::InvalidCredentials { body });
        }
        self.store_obtained(status, body, sent, received).await
    }

    /// The second step of a login that answered [`Error::MfaRequired`] (or, once the account
    /// enrolled, [`Error::MfaEnrolmentRequired`]): the challenge and a code, with
    /// `POST /api/token/mfa/`; stores the pair exactly as [`login`](Client::login) would have.
    /// A wrong or used code, or a spent challenge, is [`Error::SecondFactorRefused`].
    pub async fn complete_login(
        &self,
        challenge: &proto::MfaChallenge,
        factor: SecondFactor<'_>,
    ) -> Result<()> {
        let inner = &self.inner;
        let _ = inner.ensure_loaded().await;
        let (code, recovery_code) = match factor {
            SecondFactor::Totp(c) => (Some(c.to_string()), None),
            SecondFactor::RecoveryCode(c) => (None, Some(c.to_string())),
        };
        let sent = inner.now_ms();
        let (status, body) = inner
            .call(
                &inner.paths.token_mfa,
                &proto::MfaCompleteRequest {
                    challenge: challenge.challenge.clone(),
                    code,
                    recovery_code,
                },
            )
            .await?;
        let received = inner.now_ms();
        if status == StatusCode::UNAUTHORIZED {
            return Err(Error::SecondFactorRefused { body });
        }
        self.store_obtained(status, body, sent, received).await
    }

    /// Stores the pair of a successful obtain (either login step).
    async fn store_obtained(
        &self,
        status: StatusCode,
        body: Value,
        sent: i64,
        received: i64,
    ) -> Result<()> {
        if !status.is_success() {
            return Err(Error::Api {
                status: status.as_u16(),
                body,
            });
        }
        let pair: proto::ObtainResponse = serde_json::from_value(body)
            .map_err(|e| Error::Protocol(format!("login answer: {e}")))?;
        let Some(refresh) = pair.refresh else {
            return Err(Error::Protocol(
                "the login answer has no refresh token (a server with jwt.refresh_cookie = true \
                 keeps it in a browser cookie, which this client does not use)"
                    .into(),
            ));
        };
        let tokens = Tokens::new(pair.access.clone(), refresh);
        self.replace(Some(tokens), Some((&pair.access, sent, received)))
            .await
    }

    /// Uses `tokens` obtained elsewhere (another client, an earlier run) as the login, and
    /// stores them.
    pub async fn set_tokens(&self, tokens: Tokens) -> Result<()> {
        let _ = self.inner.ensure_loaded().await;
        self.replace(Some(tokens), None).await
    }

    async fn replace(
        &self,
        tokens: Option<Tokens>,
        timing: Option<(&str, i64, i64)>,
    ) -> Result<()> {
        let inner = &self.inner;
        let _w = inner.write_lock().await?;
        {
            let mut st = inner.state();
            st.generation += 1;
            st.install(tokens.clone());
            st.ended = None;
            st.skew_ms = 0;
            if let Some((access, sent, received)) = timing {
                Inner::note_skew(&mut st, access, sent, received);
            }
        }
        let _ = inner.loaded.set(());
        inner.persist(tokens.as_ref()).await
    }

    /// Logs out: the login's refresh family is revoked with `POST /api/token/blacklist/`, and
    /// the tokens are forgotten here and cleared from the store — even if the server could not
    /// be told, in which case that error is returned. A refresh token the server already
    /// refuses counts as logged out.
    pub async fn logout(&self) -> Result<()> {
        let inner = &self.inner;
        let _ = inner.ensure_loaded().await;
        let refresh = inner.state().tokens.as_ref().map(|t| t.refresh.clone());
        let told = match refresh {
            Some(refresh) => match inner
                .call(&inner.paths.blacklist, &proto::RefreshRequest { refresh })
                .await
            {
                Ok((s, _)) if s.is_success() || matches!(s.as_u16(), 400 | 401) => Ok(()),
                Ok((s, body)) => Err(Error::Api {
                    status: s.as_u16(),
                    body,
                }),
                Err(e) => Err(e),
            },
            None => Ok(()),
        };
        let cleared = self.replace(None, None).await;
        told.and(cleared)
    }

    /// The current tokens (after reading the store on first use), or `None` when logged out.
    pub async fn tokens(&self) -> Result<Option<Tokens>> {
        self.inner.ensure_loaded().await?;
        Ok(self.inner.state().tokens.clone())
    }

    /// Whether there is a login (tokens are held; the server may still refuse them).
    pub async fn is_logged_in(&self) -> Result<bool> {
        Ok(self.tokens().await?.is_some())
    }

    /// Estimated `server clock − local clock`, in ms, from the last login or refresh (0 within
    /// the measurement's noise of about a second).
    pub fn clock_skew_ms(&self) -> i64 {
        self.inner.state().skew_ms
    }

    /// A usable access token: the current one, or — when it has expired, or expires within the
    /// margin and proactive refresh is on — a fresh one from the single-flight refresh. If a
    /// proactive refresh fails for a reason other than the end of the login (network, 5xx)
    /// while the current token is still valid, the current token is returned.
    pub async fn access_token(&self) -> Result<String> {
        let inner = &self.inner;
        inner.ensure_loaded().await?;
        let (access, freshness) = {
            let st = inner.state();
            let Some(t) = &st.tokens else {
                return Err(st.logged_out());
            };
            (t.access.clone(), st.freshness(inner.now_ms(), inner.margin))
        };
        match (access, freshness) {
            (Some(a), Freshness::Fresh) => Ok(a),
            (Some(a), _) if !inner.proactive => Ok(a),
            (Some(a), Freshness::Expiring) => match self.refresh().await {
                Ok(fresh) => Ok(fresh),
                Err(e) if e.is_logged_out() => Err(e),
                Err(_) => Ok(a),
            },
            _ => self.refresh().await,
        }
    }

    /// Refreshes now, joining the refresh in progress if there is one: one call to
    /// `POST /api/token/refresh/` for every caller. Returns the new access token. Bounded by the
    /// timeout.
    pub async fn refresh(&self) -> Result<String> {
        let inner = self.inner.clone();
        let flight = self.inner.flight.join_or_start(move || inner.refresh_op());
        flight::wait(flight, self.inner.timeout).await
    }

    /// After `used` was refused: the token that replaced it if another task already refreshed,
    /// else the single-flight refresh.
    pub(crate) async fn refresh_after(&self, used: &str) -> Result<String> {
        {
            let st = self.inner.state();
            if let Some(Tokens {
                access: Some(a), ..
            }) = &st.tokens
                && a != used
                && st.freshness(self.inner.now_ms(), Some(Duration::ZERO)) != Freshness::Expired
            {
                return Ok(a.clone());
            }
        }
        self.refresh().await
    }

    /// Attaches a usable access token to `request`, keeping a copy for the retry.
    pub(crate) async fn prepare(&self, mut request: Request) -> Result<Prepared> {
        let token = self.access_token().await?;
        let retry = request.try_clone();
        set_bearer(&mut request, &token)?;
        Ok(Prepared {
            request,
            retry,
            token,
        })
    }

    /// A 401 `token_not_valid` for `token` gets the (single-flight) refresh and, when the
    /// request could be copied, one retry with the new token. Anything else is handed back.
    pub(crate) async fn after(
        &self,
        response: Response,
        token: &str,
        retry: Option<Request>,
    ) -> Result<After> {
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(After::Done(response));
        }
        let (response, refused) = token_refused(response).await?;
        if !refused {
            return Ok(After::Done(response));
        }
        let fresh = self.refresh_after(token).await?;
        match retry {
            Some(mut again) => {
                set_bearer(&mut again, &fresh)?;
                Ok(After::Retry(again))
            }
            None => Ok(After::Done(response)),
        }
    }

    /// Sends `request` with the access token: refreshed first if it (nearly) expired, refreshed
    /// and retried once on a 401 `token_not_valid`. Any status is returned as a `Response`;
    /// errors are the client's own (not logged in, the login ended, the network). A request to
    /// another origin than the base URL's is refused ([`Error::Config`]): the token goes only to
    /// the API.
    pub async fn execute(&self, request: Request) -> Result<Response> {
        if !self.is_api_url(request.url()) {
            return Err(Error::Config(format!(
                "{} is not on {}: the token is sent to the API only",
                request.url().origin().ascii_serialization(),
                self.inner.base.origin().ascii_serialization()
            )));
        }
        let p = self.prepare(request).await?;
        let send = |r: Request| async {
            self.inner
                .http
                .execute(r)
                .await
                .map_err(|e| Error::Http(Arc::new(e)))
        };
        let res = send(p.request).await?;
        match self.after(res, &p.token, p.retry).await? {
            After::Done(res) => Ok(res),
            After::Retry(r) => send(r).await,
        }
    }

    /// A request to `path` (appended to the base URL) that carries the token when sent.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        RequestBuilder {
            client: self.clone(),
            inner: self
                .inner
                .url(path)
                .map(|u| self.inner.http.request(method, u)),
        }
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }

    pub fn put(&self, path: &str) -> RequestBuilder {
        self.request(Method::PUT, path)
    }

    pub fn patch(&self, path: &str) -> RequestBuilder {
        self.request(Method::PATCH, path)
    }

    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.request(Method::DELETE, path)
    }

    /// `GET path` with the token, the 2xx answer's JSON decoded; a non-2xx answer is
    /// [`Error::Api`].
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.get(path).send_json().await
    }

    /// `POST path` with `body` as JSON and the token, the 2xx answer's JSON decoded; a non-2xx
    /// answer is [`Error::Api`].
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.post(path).json(body).send_json().await
    }

    /// The logged-in user: `GET /api/auth/me/`.
    pub async fn me(&self) -> Result<proto::User> {
        let path = self.inner.paths.me.clone();
        self.get_json(&path).await
    }
}

/// A request being built by [`Client::request`]; [`send`](Self::send) attaches the token.
pub struct RequestBuilder {
    client: Client,
    inner: Result<reqwest::RequestBuilder>,
}

impl RequestBuilder {
    /// Changes the underlying `reqwest::RequestBuilder` (for anything not offered here).
    pub fn map(
        mut self,
        f: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Self {
        self.inner = self.inner.map(f);
        self
    }

    pub fn header<K, V>(self, key: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        self.map(|b| b.header(key, value))
    }

    pub fn headers(self, headers: HeaderMap) -> Self {
        self.map(|b| b.headers(headers))
    }

    /// A JSON body (and `Content-Type: application/json`).
    pub fn json<T: Serialize + ?Sized>(self, body: &T) -> Self {
        self.map(|b| b.json(body))
    }

    pub fn body(self, body: impl Into<reqwest::Body>) -> Self {
        self.map(|b| b.body(body))
    }

    /// A timeout for this request (each attempt).
    pub fn timeout(self, timeout: Duration) -> Self {
        self.map(|b| b.timeout(timeout))
    }

    /// Sends it with the token; see [`Client::execute`].
    pub async fn send(self) -> Result<Response> {
        let request = self.inner?.build().map_err(|e| Error::Http(Arc::new(e)))?;
        self.client.execute(request).await
    }

    /// Sends it and decodes a 2xx answer's JSON; a non-2xx answer is [`Error::Api`].
    pub async fn send_json<T: DeserializeOwned>(self) -> Result<T> {
        let res = self.send().await?;
        let status = res.status();
        let bytes = res.bytes().await.map_err(|e| Error::Http(Arc::new(e)))?;
        if !status.is_success() {
            return Err(Error::Api {
                status: status.as_u16(),
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            });
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Protocol(format!("{status} answer is not the expected JSON: {e}")))
    }
}

fn set_bearer(request: &mut Request, token: &str) -> Result<()> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Error::Protocol("the access token is not a valid header value".into()))?;
    value.set_sensitive(true);
    request.headers_mut().insert(AUTHORIZATION, value);
    Ok(())
}

/// Whether a 401 is sekisho refusing the token (`code: token_not_valid`), and the response
/// rebuilt from the bytes read to find out.
async fn token_refused(response: Response) -> Result<(Response, bool)> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_INSPECTED_BODY)
    {
        return Ok((response, false));
    }
    let status = response.status();
    let version = response.version();
    let url = response.url().clone();
    let headers = response.headers().clone();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| Error::Http(Arc::new(e)))?;
    let refused = serde_json::from_slice::<proto::ErrorBody>(&bytes)
        .ok()
        .and_then(|b| b.code)
        .is_some_and(|c| c == proto::CODE_TOKEN_NOT_VALID);
    use reqwest::ResponseBuilderExt;
    let mut rebuilt = http::Response::builder()
        .status(status)
        .version(version)
        .url(url)
        .body(bytes)
        .map_err(|e| Error::Protocol(format!("rebuilding the response: {e}")))?;
    *rebuilt.headers_mut() = headers;
    Ok((Response::from(rebuilt), refused))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::fake_token;

    fn state_with(exp: i64, iat: Option<i64>, skew_ms: i64) -> State {
        let mut st = State {
            skew_ms,
            ..State::default()
        };
        st.install(Some(Tokens::new(fake_token(exp, iat), "r")));
        st
    }

    #[test]
    fn freshness_uses_a_quarter_of_the_lifetime_capped_at_30s() {
        // 8 s lifetime → 2 s margin.
        let st = state_with(108, Some(100), 0);
        assert_eq!(st.freshness(105_999, None), Freshness::Fresh);
        assert_eq!(st.freshness(106_000, None), Freshness::Expiring);
        assert_eq!(st.freshness(108_000, None), Freshness::Expired);
        // 5 min lifetime → 30 s margin.
        let st = state_with(400, Some(100), 0);
        assert_eq!(st.freshness(369_999, None), Freshness::Fresh);
        assert_eq!(st.freshness(370_000, None), Freshness::Expiring);
        // A configured margin wins.
        assert_eq!(
            st.freshness(390_000, Some(Duration::from_secs(5))),
            Freshness::Fresh
        );
        // No iat: 30 s.
        let st = state_with(400, None, 0);
        assert_eq!(st.freshness(370_000, None), Freshness::Expiring);
    }

    #[test]
    fn freshness_corrects_for_skew_and_trusts_unreadable_tokens() {
        // The server is 60 s ahead: its exp 400 is local 340.
        let st = state_with(400, Some(100), 60_000);
        assert_eq!(st.freshness(340_000, None), Freshness::Expired);
        assert_eq!(st.freshness(309_999, None), Freshness::Fresh);
        let mut st = State::default();
        st.install(Some(Tokens::new("opaque", "r")));
        assert_eq!(st.freshness(i64::MAX, None), Freshness::Fresh);
    }

    #[test]
    fn urls_append_to_the_base_and_stay_on_its_origin() {
        let c = Client::builder("http://127.0.0.1:8000/auth/")
            .build()
            .unwrap();
        assert_eq!(
            c.url("/api/token/").unwrap().as_str(),
            "http://127.0.0.1:8000/auth/api/token/"
        );
        assert_eq!(
            c.url("api/x").unwrap().as_str(),
            "http://127.0.0.1:8000/auth/api/x"
        );
        assert!(c.is_api_url(&c.url("http://127.0.0.1:8000/other").unwrap()));
        assert!(!c.is_api_url(&c.url("http://127.0.0.1:8001/").unwrap()));
        assert!(!c.is_api_url(&c.url("https://127.0.0.1:8000/").unwrap()));
        assert!(!c.is_api_url(&c.url("http://localhost:8000/").unwrap()));
        let c = Client::builder("https://example.com").build().unwrap();
        assert!(c.is_api_url(&Url::parse("https://example.com:443/x").unwrap()));
    }

    #[test]
    fn bad_base_urls_are_refused() {
        for base in [
            "",
            "example.com",
            "ftp://example.com",
            "http://x/?a=1",
            "http://x/#f",
        ] {
            assert!(
                matches!(Client::builder(base).build(), Err(Error::Config(_))),
                "{base}"
            );
        }
    }
}
