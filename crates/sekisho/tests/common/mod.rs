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
        self.body[field].as_str().unwrap_or_else(|| panic!("no string {field:?} in {}", self.body)).to_string()
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
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut s = Server { base: String::new(), dir, env, child: None };
        s.spawn();
        s
    }

    fn base_env(&self) -> Vec<(String, String)> {
        let d = self.dir.path();
        let mut env = vec![
            ("SEKISHO_SERVER__BIND".to_string(), "127.0.0.1:0".to_string()),
            ("SEKISHO_SERVER__DATA_DIR".to_string(), d.join("data").display().to_string()),
            ("SEKISHO_DATABASE__URL".to_string(), format!("sqlite://{}/data/sekisho.db", d.display())),
            // Cheap hashes keep the suite fast; the default parameters are tested in core.
            ("SEKISHO_PASSWORDS__ARGON2_MEMORY_KIB".to_string(), "256".to_string()),
            ("SEKISHO_PASSWORDS__ARGON2_ITERATIONS".to_string(), "1".to_string()),
            ("SEKISHO_LOG".to_string(), "warn".to_string()),
        ];
        env.extend(self.env.iter().cloned());
        env
    }

    fn command(&self) -> Command {
        let mut c = Command::new(BIN);
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
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("sekisho listening on ") {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let base = rx.recv_timeout(Duration::from_secs(30)).expect("server did not start within 30s");
        self.base = base;
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
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run sekisho cli");
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn create_user(&self, name: &str, password: &str) {
        let out = self.cli(&["user", "create", name, "--password-stdin"], &format!("{password}\n"));
        assert!(out.status.success(), "user create failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
        send(&client(), method, &self.url(path), headers, body).await
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Reply {
        let b = body.to_string();
        self.send(Method::POST, path, &[("content-type", "application/json")], Some(b.as_bytes())).await
    }

    pub async fn get_bearer(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, &[("authorization", &format!("Bearer {token}"))], None).await
    }

    /// Logs in with `POST /api/token/` and returns (access, refresh).
    pub async fn token_pair(&self, user: &str, password: &str) -> (String, String) {
        let r = self.post_json("/api/token/", serde_json::json!({"username": user, "password": password})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        (r.str("access"), r.str("refresh"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(30)).no_proxy().build().unwrap()
}

pub async fn send(client: &Client, method: Method, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
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
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Reply { status, headers, body }
}

/// Decodes a JWT's payload without verifying it (tests inspect claims).
pub fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url");
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
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Server { base: String::new(), dir, env, child: None }
    }

    /// Like [`Server::cli`], with extra environment variables for this one command (they win
    /// over the server's own).
    pub fn cli_env(&self, extra_env: &[(&str, &str)], args: &[&str], stdin: &str) -> Output {
        let mut c = self.command();
        c.envs(extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut child = c
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run sekisho cli");
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Sends with a client that never follows redirects (so a redirect is seen as one).
    pub async fn send_nr(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
        send(&client_no_redirect(), method, &self.url(path), headers, body).await
    }

    /// POST a JSON value without following redirects.
    pub async fn post_nr(&self, path: &str, body: Value) -> Reply {
        let b = body.to_string();
        self.send_nr(Method::POST, path, &[("content-type", "application/json")], Some(b.as_bytes())).await
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
        self.base.trim_start_matches("http://").trim_end_matches('/').to_string()
    }

    /// Writes raw bytes on a fresh connection and returns (status, raw head, body bytes) of the
    /// response (the connection is closed by the request's `Connection: close`).
    pub async fn raw_http(&self, request: &[u8]) -> (u16, String, Vec<u8>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(self.authority()).await.expect("connect");
        s.write_all(request).await.expect("write");
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
        let split = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("no response head");
        let head = String::from_utf8_lossy(&buf[..split]).into_owned();
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status line");
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
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Reply { status, headers, body }
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
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h).expect("base64url");
    serde_json::from_slice(&bytes).expect("json header")
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

pub fn stdout_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
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
    assert!(ct.starts_with("application/json"), "content-type {ct:?} for {} {}", r.status, r.body);
}
