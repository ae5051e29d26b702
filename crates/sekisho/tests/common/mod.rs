//! Black-box harness: runs the real `sekisho` binary on a free loopback port with its own data
//! directory and talks to it over real HTTP.
#![allow(dead_code)]

use reqwest::header::HeaderMap;
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_sekisho");
pub const PASSWORD: &str = "correct horse battery staple";

/// A running server. Dropping it kills the process; the data directory lives as long as the
/// last clone of `dir`.
pub struct Server {
    pub base: String,
    /// The operations listener's base URL, when `server.ops_bind` is set.
    pub ops: Option<String>,
    pub dir: Arc<tempfile::TempDir>,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// All `Set-Cookie` header values.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(String::from))
            .collect()
    }
    /// The value of cookie `name` set by this reply, if any.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies().iter().find_map(|c| {
            let (k, rest) = c.split_once('=')?;
            (k.trim() == name).then(|| rest.split(';').next().unwrap_or("").to_string())
        })
    }
    pub fn str(&self, field: &str) -> String {
        self.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("no string {field:?} in {}", self.body))
            .to_string()
    }
}

impl Server {
    /// Starts a server with a fresh data directory and `env` (`SEKISHO_…` overrides).
    pub fn start(env: &[(&str, &str)]) -> Server {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        Server::start_in(dir, env)
    }

    /// Starts a server on an existing data directory (e.g. to test a restart).
    pub fn start_in(dir: Arc<tempfile::TempDir>, env: &[(&str, &str)]) -> Server {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut s = Server {
            base: String::new(),
            ops: None,
            dir,
            env,
            child: None,
        };
        s.spawn();
        s
    }

    fn base_env(&self) -> Vec<(String, String)> {
        let d = self.dir.path();
        let mut env = vec![
            (
                "SEKISHO_SERVER__BIND".to_string(),
                "127.0.0.1:0".to_string(),
            ),
            (
                "SEKISHO_SERVER__DATA_DIR".to_string(),
                d.join("data").display().to_string(),
            ),
            (
                "SEKISHO_DATABASE__URL".to_string(),
                format!("sqlite://{}/data/sekisho.db", d.display()),
            ),
            // Cheap hashes keep the suite fast; the default parameters are tested in core.
            (
                "SEKISHO_PASSWORDS__ARGON2_MEMORY_KIB".to_string(),
                "256".to_string(),
            ),
            (
                "SEKISHO_PASSWORDS__ARGON2_ITERATIONS".to_string(),
                "1".to_string(),
            ),
            ("SEKISHO_LOG".to_string(), "warn".to_string()),
        ];
        env.extend(backend_env(d));
        env.extend(self.env.iter().cloned());
        env
    }

    fn command(&self) -> Command {
        self.prepare(Command::new(BIN))
    }

    /// `c` with this server's directory and environment (and no inherited `SEKISHO_` variable).
    pub fn prepare(&self, mut c: Command) -> Command {
        c.current_dir(self.dir.path());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SEKISHO_")) {
            c.env_remove(k);
        }
        c.envs(self.base_env());
        c
    }

    fn spawn(&mut self) {
        let mut child = self
            .command()
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start sekisho");
        let (base, ops) = announced_addresses(child.stdout.take().unwrap())
            .expect("server did not start within 30s");
        self.base = base;
        self.ops = ops;
        self.child = Some(child);
    }

    /// Stops the process (SIGKILL: nothing may depend on a clean shutdown) and starts it again
    /// on the same data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs a CLI command against this server's config, with `stdin` piped in.
    pub fn cli(&self, args: &[&str], stdin: &str) -> Output {
        self.cli_env(&[], args, stdin)
    }

    pub fn create_user(&self, name: &str, password: &str) {
        let out = self.cli(
            &["user", "create", name, "--password-stdin"],
            &format!("{password}\n"),
        );
        assert!(
            out.status.success(),
            "user create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The server process's id (for reading its /proc entries).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    /// The `database.url` this server runs on (whichever backend the suite selected).
    pub fn database_url(&self) -> String {
        self.base_env()
            .into_iter()
            .rev()
            .find(|(k, _)| k == "SEKISHO_DATABASE__URL")
            .map(|(_, v)| v)
            .expect("a database URL")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        send(&client(), method, &self.url(path), headers, body).await
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Reply {
        let b = body.to_string();
        self.send(
            Method::POST,
            path,
            &[("content-type", "application/json")],
            Some(b.as_bytes()),
        )
        .await
    }

    pub async fn get_bearer(&self, path: &str, token: &str) -> Reply {
        self.send(
            Method::GET,
            path,
            &[("authorization", &format!("Bearer {token}"))],
            None,
        )
        .await
    }

    /// Logs in with `POST /api/token/` and returns (access, refresh).
    pub async fn token_pair(&self, user: &str, password: &str) -> (String, String) {
        let r = self
            .post_json(
                "/api/token/",
                serde_json::json!({"username": user, "password": password}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        (r.str("access"), r.str("refresh"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if Arc::strong_count(&self.dir) == 1 {
            drop_backend(self.dir.path());
        }
    }
}

/// Reads a starting server's stdout for the base URLs it announces: the main listener's and,
/// printed before it when `server.ops_bind` is set, the operations listener's. `None` when the
/// main one is not announced within 30 s.
pub fn announced_addresses(stdout: std::process::ChildStdout) -> Option<(String, Option<String>)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("sekisho listening on ") {
                let _ = tx.send((true, addr.to_string()));
            } else if let Some(addr) = line.strip_prefix("sekisho operations endpoints on ") {
                let _ = tx.send((false, addr.to_string()));
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ops = None;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match rx.recv_timeout(left).ok()? {
            (true, base) => return Some((base, ops)),
            (false, addr) => ops = Some(addr),
        }
    }
}

pub fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .unwrap()
}

pub async fn send(
    client: &Client,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    let mut rb = client.request(method, url);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    if let Some(b) = body {
        rb = rb.body(b.to_vec());
    }
    let res = rb.send().await.expect("request failed");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// Decodes a JWT's payload without verifying it (tests inspect claims).
pub fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json payload")
}

/// Waits until `f` is true or `limit` passes.
pub async fn eventually(limit: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

pub fn path_exists(p: &Path) -> bool {
    p.exists()
}

// ---------------------------------------------------------------------------------------------
// Helpers added for the contract suites (jwt_contract, jwt_rotation, bad_input, cli).
// ---------------------------------------------------------------------------------------------

impl Server {
    /// A server's directory and environment without a running process: for CLI-only tests.
    pub fn offline(env: &[(&str, &str)]) -> Server {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Server {
            base: String::new(),
            ops: None,
            dir,
            env,
            child: None,
        }
    }

    /// Like [`Server::cli`], with extra environment variables for this one command (they win
    /// over the server's own).
    pub fn cli_env(&self, extra_env: &[(&str, &str)], args: &[&str], stdin: &str) -> Output {
        let mut c = self.command();
        c.envs(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let mut child = c
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run sekisho cli");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        settle_after_cli(args);
        out
    }

    /// Sends with a client that never follows redirects (so a redirect is seen as one).
    pub async fn send_nr(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        send(
            &client_no_redirect(),
            method,
            &self.url(path),
            headers,
            body,
        )
        .await
    }

    /// POST a JSON value without following redirects.
    pub async fn post_nr(&self, path: &str, body: Value) -> Reply {
        let b = body.to_string();
        self.send_nr(
            Method::POST,
            path,
            &[("content-type", "application/json")],
            Some(b.as_bytes()),
        )
        .await
    }

    /// GET with an arbitrary (possibly non-UTF-8) `Authorization` header value.
    pub async fn get_with_authorization_bytes(&self, path: &str, value: &[u8]) -> Reply {
        let v = reqwest::header::HeaderValue::from_bytes(value).expect("header value bytes");
        let res = client_no_redirect()
            .get(self.url(path))
            .header(reqwest::header::AUTHORIZATION, v)
            .send()
            .await
            .expect("request failed");
        into_reply(res).await
    }

    /// The server's `host:port`.
    pub fn authority(&self) -> String {
        self.base
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string()
    }

    /// Writes raw bytes on a fresh connection and returns (status, raw head, body bytes) of the
    /// response (the connection is closed by the request's `Connection: close`).
    pub async fn raw_http(&self, request: &[u8]) -> (u16, String, Vec<u8>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(self.authority())
            .await
            .expect("connect");
        s.write_all(request).await.expect("write");
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
        let split = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("no response head");
        let head = String::from_utf8_lossy(&buf[..split]).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status line");
        (status, head, buf[split + 4..].to_vec())
    }
}

pub fn client_no_redirect() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub async fn into_reply(res: reqwest::Response) -> Reply {
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Reply {
        status,
        headers,
        body,
    }
}

pub fn b64url(bytes: impl AsRef<[u8]>) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Builds a JWT from raw header and payload JSON text, signed with HMAC-SHA256 under `key`
/// (whatever `alg` the header claims) — exactly what PyJWT does for a Django deployment.
pub fn hs256_raw(header: &str, payload: &str, key: &[u8]) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let signing_input = format!("{}.{}", b64url(header), b64url(payload));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", b64url(mac.finalize().into_bytes()))
}

/// Decodes a JWT's header without verifying it.
pub fn jwt_header(token: &str) -> Value {
    use base64::Engine;
    let h = token.split('.').next().expect("header part");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(h)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json header")
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    use sekisho_core::clock::Clock;
    sekisho_core::clock::SystemClock.now().secs()
}

pub fn stdout_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a command succeeded; returns its stdout.
#[track_caller]
pub fn assert_success(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}; stdout: {}; stderr: {}",
        out.status.code(),
        stdout_of(out),
        stderr_of(out)
    );
    stdout_of(out)
}

/// Asserts a failed command: non-zero exit, exactly one line on stderr starting `sekisho: `;
/// returns that line.
#[track_caller]
pub fn assert_one_line_failure(out: &Output) -> String {
    let (stdout, stderr) = (stdout_of(out), stderr_of(out));
    assert!(
        !out.status.success(),
        "expected failure; stdout: {stdout:?} stderr: {stderr:?}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "stderr must be one line: {stderr:?}");
    assert!(lines[0].starts_with("sekisho: "), "{:?}", lines[0]);
    assert!(stderr.ends_with('\n'));
    lines[0].to_string()
}

/// simplejwt's body for a refused token on a token endpoint.
pub fn token_error(message: &str) -> Value {
    serde_json::json!({"detail": message, "code": "token_not_valid"})
}

/// simplejwt's body for a refused bearer access token on an API call.
pub fn bearer_error(message: &str) -> Value {
    serde_json::json!({
        "detail": "Given token not valid for any token type",
        "code": "token_not_valid",
        "messages": [{"token_class": "AccessToken", "token_type": "access", "message": message}],
    })
}

/// Asserts a 401 with exactly `body` and the contract's `WWW-Authenticate`.
#[track_caller]
pub fn assert_401(r: &Reply, body: &Value) {
    assert_eq!(r.status, 401, "body: {}", r.body);
    assert_eq!(&r.body, body);
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"api\""));
    assert_json(r);
}

/// Asserts the response is declared as JSON.
#[track_caller]
pub fn assert_json(r: &Reply) {
    let ct = r.header("content-type").unwrap_or("");
    assert!(
        ct.starts_with("application/json"),
        "content-type {ct:?} for {} {}",
        r.status,
        r.body
    );
}

// ---------------------------------------------------------------------------------------------
// Helpers added for the session suites (session_contract, csrf, spa_hosting).
// ---------------------------------------------------------------------------------------------

/// One parsed `Set-Cookie` header value.
#[derive(Clone, Debug)]
pub struct SetCookieSpec {
    pub raw: String,
    pub name: String,
    pub value: String,
    /// Attribute names lower-cased, values as sent.
    pub attrs: Vec<(String, Option<String>)>,
}

impl SetCookieSpec {
    pub fn parse(raw: &str) -> SetCookieSpec {
        let mut parts = raw.split(';');
        let (name, value) = parts
            .next()
            .unwrap_or("")
            .split_once('=')
            .unwrap_or((raw, ""));
        let attrs = parts
            .map(|a| {
                let a = a.trim();
                match a.split_once('=') {
                    Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_string())),
                    None => (a.to_ascii_lowercase(), None),
                }
            })
            .collect();
        SetCookieSpec {
            raw: raw.to_string(),
            name: name.trim().to_string(),
            value: value.trim().to_string(),
            attrs,
        }
    }

    /// Whether attribute `name` (case-insensitive) is present.
    pub fn has(&self, name: &str) -> bool {
        self.attrs.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
    }

    /// The value of attribute `name` (case-insensitive), if present with a value.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_deref())
    }

    pub fn max_age(&self) -> Option<i64> {
        self.attr("max-age").map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("bad Max-Age in {}", self.raw))
        })
    }

    /// A cookie that tells the browser to delete it.
    pub fn is_deletion(&self) -> bool {
        self.max_age().is_some_and(|a| a <= 0)
    }
}

impl Reply {
    /// Every `Set-Cookie` of this reply for cookie `name`, parsed.
    pub fn set_cookie_specs(&self, name: &str) -> Vec<SetCookieSpec> {
        self.set_cookies()
            .iter()
            .map(|c| SetCookieSpec::parse(c))
            .filter(|c| c.name == name)
            .collect()
    }

    /// The single `Set-Cookie` for `name`; panics if there is none or more than one.
    #[track_caller]
    pub fn set_cookie_spec(&self, name: &str) -> SetCookieSpec {
        let mut v = self.set_cookie_specs(name);
        assert_eq!(
            v.len(),
            1,
            "expected exactly one Set-Cookie for {name:?}, got {:?}",
            self.set_cookies()
        );
        v.remove(0)
    }
}

pub fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A browser-like client with a hand-kept cookie jar (no automatic cookie store): cookies are
/// taken from `Set-Cookie` (Max-Age ≤ 0 deletes) and sent back on every request; unsafe calls
/// copy the CSRF cookie into the CSRF header, as an SPA does.
pub struct Browser {
    pub base: String,
    client: Client,
    pub jar: std::collections::BTreeMap<String, String>,
    pub session_cookie: String,
    pub csrf_cookie: String,
    pub csrf_header: String,
    pub user_agent: Option<String>,
}

impl Browser {
    pub fn new(s: &Server) -> Browser {
        Browser::with_names(s, "sessionid", "csrftoken", "X-CSRFToken")
    }

    pub fn with_names(
        s: &Server,
        session_cookie: &str,
        csrf_cookie: &str,
        csrf_header: &str,
    ) -> Browser {
        Browser {
            base: s.base.clone(),
            client: client_no_redirect(),
            jar: Default::default(),
            session_cookie: session_cookie.into(),
            csrf_cookie: csrf_cookie.into(),
            csrf_header: csrf_header.into(),
            user_agent: None,
        }
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.get(name).cloned()
    }
    pub fn session(&self) -> Option<String> {
        self.cookie(&self.session_cookie)
    }
    pub fn csrf(&self) -> Option<String> {
        self.cookie(&self.csrf_cookie)
    }
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.jar.insert(name.into(), value.into());
    }
    pub fn remove_cookie(&mut self, name: &str) {
        self.jar.remove(name);
    }

    /// The `Cookie` header this browser would send.
    pub fn cookie_header(&self) -> Option<String> {
        (!self.jar.is_empty()).then(|| {
            self.jar
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// Sends with the jar's cookies and `headers` (and no CSRF header unless given); a JSON
    /// body when `body` is given. Updates the jar from the reply.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Reply {
        let mut rb = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(c) = self.cookie_header() {
            rb = rb.header("cookie", c);
        }
        if let Some(ua) = &self.user_agent {
            rb = rb.header("user-agent", ua.as_str());
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let r = into_reply(rb.send().await.expect("request failed")).await;
        self.absorb(&r);
        r
    }

    /// Takes the reply's cookies into the jar.
    pub fn absorb(&mut self, r: &Reply) {
        for c in r.set_cookies().iter().map(|c| SetCookieSpec::parse(c)) {
            if c.is_deletion() {
                self.jar.remove(&c.name);
            } else {
                self.jar.insert(c.name, c.value);
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.send(Method::GET, path, &[], None).await
    }

    /// An unsafe request as an SPA sends it: the CSRF cookie's value copied into the header.
    pub async fn unsafe_req(&mut self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let token = self.csrf().unwrap_or_default();
        let name = self.csrf_header.clone();
        self.send(method, path, &[(name.as_str(), token.as_str())], body)
            .await
    }

    pub async fn post(&mut self, path: &str, body: &Value) -> Reply {
        self.unsafe_req(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&mut self, path: &str, body: &Value) -> Reply {
        self.unsafe_req(Method::PATCH, path, Some(body)).await
    }

    /// `GET /api/auth/csrf/`; returns the token in the body.
    pub async fn fetch_csrf(&mut self) -> String {
        let r = self.get("/api/auth/csrf/").await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.str("csrfToken")
    }

    /// Session login the SPA way: fetch a CSRF token when the jar has none, then POST.
    pub async fn login(&mut self, user: &str, password: &str) -> Reply {
        if self.csrf().is_none() {
            self.fetch_csrf().await;
        }
        self.post(
            "/api/auth/login/",
            &serde_json::json!({"username": user, "password": password}),
        )
        .await
    }

    /// A fresh browser logged in as `user`.
    pub async fn logged_in(s: &Server, user: &str, password: &str) -> Browser {
        let mut b = Browser::new(s);
        let r = b.login(user, password).await;
        assert_eq!(r.status, 200, "login failed: {}", r.body);
        assert!(b.session().is_some(), "no session cookie after login");
        b
    }

    /// A browser carrying only the given cookies.
    pub fn with_cookies(s: &Server, cookies: &[(&str, &str)]) -> Browser {
        let mut b = Browser::new(s);
        for (k, v) in cookies {
            b.set_cookie(k, v);
        }
        b
    }
}

// ---------------------------------------------------------------------------------------------
// Storage backends: the whole black-box suite runs once per backend (scripts/test.sh sets
// SEKISHO_TEST_BACKEND); each server gets its own database and Redis key prefix.
// ---------------------------------------------------------------------------------------------

/// `sqlite` (default), `postgres` or `postgres+redis`.
pub fn backend() -> String {
    std::env::var("SEKISHO_TEST_BACKEND").unwrap_or_else(|_| "sqlite".into())
}

fn backend_tag(dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    std::process::id().hash(&mut h);
    format!("{:016x}", h.finish())
}

fn pg_admin_url() -> String {
    std::env::var("SEKISHO_TEST_POSTGRES_URL")
        .expect("SEKISHO_TEST_POSTGRES_URL is required for the postgres backends")
}

fn psql(sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            pg_admin_url().as_str(),
            "-v",
            "ON_ERROR_STOP=1",
            "-tAc",
            sql,
        ])
        .output()
        .expect("psql must be installed for the postgres backends");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Environment for the selected backend; creates the server's PostgreSQL database on first use.
pub fn backend_env(dir: &Path) -> Vec<(String, String)> {
    let b = backend();
    let mut env = Vec::new();
    if b.starts_with("postgres") {
        let db = format!("sekisho_t_{}", backend_tag(dir));
        if psql(&format!("SELECT 1 FROM pg_database WHERE datname = '{db}'")).is_empty() {
            psql(&format!("CREATE DATABASE {db}"));
        }
        let admin = pg_admin_url();
        let root = admin
            .rsplit_once('/')
            .map(|(r, _)| r.to_string())
            .unwrap_or(admin);
        env.push(("SEKISHO_DATABASE__URL".to_string(), format!("{root}/{db}")));
    }
    if b.ends_with("+redis") {
        let url = std::env::var("SEKISHO_TEST_REDIS_URL")
            .expect("SEKISHO_TEST_REDIS_URL is required for the redis backend");
        env.push(("SEKISHO_SESSIONS__STORE".to_string(), url));
        env.push((
            "SEKISHO_SESSIONS__KEY_PREFIX".to_string(),
            format!("sekisho-t-{}", backend_tag(dir)),
        ));
    }
    env
}

fn drop_backend(dir: &Path) {
    if backend().starts_with("postgres") {
        let db = format!("sekisho_t_{}", backend_tag(dir));
        let _ = Command::new("psql")
            .args([
                pg_admin_url().as_str(),
                "-tAc",
                &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
            ])
            .output();
    }
}

impl Server {
    /// Another instance sharing this one's stores and signing key (same data directory, same
    /// database, same Redis prefix) — two servers behind one load balancer.
    pub fn start_sharing(&self) -> Server {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Server::start_in(self.dir.clone(), &env)
    }
}

/// The CLI is another process: a running server sees its changes to users after at most
/// `cache.ttl` (250 ms by default). Tests wait out that documented bound after such commands.
pub const CACHE_BOUND: Duration = Duration::from_millis(250);

fn settle_after_cli(args: &[&str]) {
    let mutates = args
        .windows(2)
        .any(|w| w[0] == "user" && matches!(w[1], "deactivate" | "set-password"));
    if mutates {
        std::thread::sleep(CACHE_BOUND + Duration::from_millis(100));
    }
}

/// Everything the server's stores hold, as bytes, whichever backend the suite runs on (SQLite
/// files; PostgreSQL rows as text; Redis keys and hash fields of this server's prefix).
pub fn storage_dump(s: &Server) -> Vec<u8> {
    let b = backend();
    let mut out = Vec::new();
    if b == "sqlite" {
        for f in ["sekisho.db", "sekisho.db-wal"] {
            if let Ok(bytes) = std::fs::read(s.data_dir().join(f)) {
                out.extend(bytes);
            }
        }
        return out;
    }
    let tag = backend_tag(s.dir.path());
    let admin = pg_admin_url();
    let root = admin
        .rsplit_once('/')
        .map(|(r, _)| r.to_string())
        .unwrap_or(admin);
    let url = format!("{root}/sekisho_t_{tag}");
    for table in ["users", "sessions", "refresh_families"] {
        let o = Command::new("psql")
            .args([url.as_str(), "-tAc", &format!("SELECT * FROM {table}")])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        out.extend(o.stdout);
    }
    if b.ends_with("+redis") {
        let redis = std::env::var("SEKISHO_TEST_REDIS_URL").unwrap();
        let keys = Command::new("redis-cli")
            .args([
                "-u",
                &redis,
                "--scan",
                "--pattern",
                &format!("sekisho-t-{tag}:*"),
            ])
            .output()
            .unwrap();
        for key in String::from_utf8_lossy(&keys.stdout).lines() {
            out.extend(key.as_bytes());
            out.push(b'\n');
            let kind = Command::new("redis-cli")
                .args(["-u", &redis, "TYPE", key])
                .output()
                .unwrap();
            let cmd = if String::from_utf8_lossy(&kind.stdout).trim() == "hash" {
                "HGETALL"
            } else {
                "SMEMBERS"
            };
            let v = Command::new("redis-cli")
                .args(["-u", &redis, cmd, key])
                .output()
                .unwrap();
            out.extend(v.stdout);
        }
    }
    out
}

/// A PostgreSQL database of its own, whatever the selected backend (for tests that need
/// several instances with the cross-instance cache bus); dropped with the value.
pub struct OwnPgDatabase {
    pub name: String,
    pub url: String,
}

impl OwnPgDatabase {
    pub fn create(tag: &str) -> OwnPgDatabase {
        let name = format!(
            "sekisho_{tag}_{:08x}_{}",
            std::process::id(),
            Instant::now().elapsed().subsec_nanos() ^ rand_u32()
        );
        psql(&format!("CREATE DATABASE {name}"));
        let admin = pg_admin_url();
        let root = admin
            .rsplit_once('/')
            .map(|(r, _)| r.to_string())
            .unwrap_or(admin);
        OwnPgDatabase {
            url: format!("{root}/{name}"),
            name,
        }
    }
}

impl Drop for OwnPgDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                pg_admin_url().as_str(),
                "-tAc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded randomly per instance: enough to keep database names apart.
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish() as u32
}
