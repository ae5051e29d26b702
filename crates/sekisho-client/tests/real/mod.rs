//! Runs the real `sekisho` binary on a free loopback port, with its own data directory, SQLite
//! database and a known HS256 signing key, the way `crates/sekisho/tests/common` does.
//!
//! The binary is not built by this crate's tests: build it first with
//!
//! ```sh
//! cargo build -p sekisho
//! ```
//!
//! (`scripts/test.sh` runs `cargo test --workspace`, which builds it before any test runs.) It
//! is looked for at `$SEKISHO_BIN`, else `$CARGO_TARGET_DIR/debug/sekisho`, else next to this
//! test executable (`target/debug/sekisho`). A missing binary fails the test; it never skips.
#![allow(dead_code)]

use base64::Engine;
use sekisho_client::{Clock, SystemClock};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

pub const PASSWORD: &str = "correct horse battery staple";
/// The server's `jwt.signing_key`: tests forge tokens with it.
pub const SIGNING_KEY: &str = "sekisho-client-tests-hs256-key-of-more-than-32-bytes";

pub struct Server {
    pub base: String,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    child: Child,
}

pub fn binary() -> PathBuf {
    let candidates: Vec<PathBuf> = [
        std::env::var_os("SEKISHO_BIN").map(PathBuf::from),
        std::env::var_os("CARGO_TARGET_DIR").map(|d| PathBuf::from(d).join("debug/sekisho")),
        std::env::current_exe()
            .ok()
            .and_then(|e| Some(e.parent()?.parent()?.join("sekisho"))),
    ]
    .into_iter()
    .flatten()
    .collect();
    match candidates.iter().find(|p| p.is_file()) {
        Some(p) => p.clone(),
        None => panic!(
            "the sekisho binary was not found (looked at {candidates:?}); build it first with \
             `cargo build -p sekisho` (with the same CARGO_TARGET_DIR), or set SEKISHO_BIN"
        ),
    }
}

impl Server {
    /// Starts a server; `extra` are more `SEKISHO_…` settings.
    pub fn start(extra: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let mut env: Vec<(String, String)> = vec![
            ("SEKISHO_SERVER__BIND".into(), "127.0.0.1:0".into()),
            (
                "SEKISHO_SERVER__DATA_DIR".into(),
                d.join("data").display().to_string(),
            ),
            (
                "SEKISHO_DATABASE__URL".into(),
                format!("sqlite://{}/data/sekisho.db", d.display()),
            ),
            ("SEKISHO_JWT__SIGNING_KEY".into(), SIGNING_KEY.into()),
            // Cheap hashes keep the suite fast.
            ("SEKISHO_PASSWORDS__ARGON2_MEMORY_KIB".into(), "256".into()),
            ("SEKISHO_PASSWORDS__ARGON2_ITERATIONS".into(), "1".into()),
            ("SEKISHO_LOG".into(), "warn".into()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let bin = binary();
        let mut child = command(&bin, d, &env)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("sekisho listening on ") {
                    let _ = tx.send(addr.trim_end_matches('/').to_string());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("sekisho did not start within 30 s");
        Server {
            base,
            dir,
            env,
            child,
        }
    }

    /// Runs `sekisho ARGS` against this server's data, with `stdin` piped in.
    pub fn cli(&self, args: &[&str], stdin: &str) {
        let mut child = command(&binary(), self.dir.path(), &self.env)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the sekisho CLI");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "sekisho {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn create_user(&self, name: &str) {
        self.cli(
            &["user", "create", name, "--password-stdin"],
            &format!("{PASSWORD}\n"),
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs JSON with a plain HTTP client (out of band: not through the client under test).
    pub async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        let res = http()
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_bearer(&self, path: &str, token: &str) -> (u16, Value) {
        let res = http()
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// POSTs JSON with a bearer token, out of band.
    pub async fn post_bearer(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let res = http()
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// `POST /api/token/` out of band: (access, refresh).
    pub async fn token_pair(&self, user: &str) -> (String, String) {
        let (status, body) = self
            .post_json(
                "/api/token/",
                json!({"username": user, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        (
            body["access"].as_str().unwrap().to_string(),
            body["refresh"].as_str().unwrap().to_string(),
        )
    }

    /// The server's `sekisho_refreshes_total`, per `outcome` label.
    pub async fn refreshes(&self) -> Vec<(String, u64)> {
        let text = http()
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("sekisho_refreshes_total{outcome=\"")?;
                let (outcome, value) = rest.split_once("\"} ")?;
                Some((outcome.to_string(), value.trim().parse().ok()?))
            })
            .collect()
    }

    /// All refresh calls the server has counted, whatever their outcome.
    pub async fn refresh_count(&self) -> u64 {
        self.refreshes().await.iter().map(|(_, n)| n).sum()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(bin: &std::path::Path, dir: &std::path::Path, env: &[(String, String)]) -> Command {
    let mut c = Command::new(bin);
    c.current_dir(dir);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SEKISHO_")) {
        c.env_remove(k);
    }
    c.envs(env.iter().cloned());
    c
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(part: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url")
}

/// The claims of a token, unverified.
pub fn claims(token: &str) -> Value {
    serde_json::from_slice(&unb64(token.split('.').nth(1).unwrap())).unwrap()
}

/// A copy of the server's access token `real`, with the same header and claims but issued six
/// minutes ago and expired a minute ago, signed HS256 with the server's key: what a client
/// holds after its access token has run out.
pub fn expired_copy(real: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let header = String::from_utf8(unb64(real.split('.').next().unwrap())).unwrap();
    let mut c = claims(real);
    assert_eq!(c["token_type"], "access");
    let now = SystemClock
        .now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    c["iat"] = json!(now - 360);
    c["exp"] = json!(now - 60);
    let input = format!("{}.{}", b64(header), b64(c.to_string()));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SIGNING_KEY.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(mac.finalize().into_bytes()))
}

/// RFC 6238 (SHA-1, six digits, 30 s): the code of a time step, as an authenticator app
/// computes it. The test's own few lines, so that the server's are checked, not reused.
pub fn totp_code(secret: &[u8], step: u64) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).unwrap();
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let o = (h[19] & 0x0f) as usize;
    let n = u32::from_be_bytes([h[o] & 0x7f, h[o + 1], h[o + 2], h[o + 3]]);
    format!("{:06}", n % 1_000_000)
}

/// The time step of the system clock now (the real server's clock).
pub fn totp_step_now() -> u64 {
    SystemClock
        .now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30
}

/// RFC 4648 base32 without padding, as the enrolment answers the secret.
pub fn base32_decode(s: &str) -> Vec<u8> {
    let (mut bits, mut acc, mut out) = (0u32, 0u32, Vec::new());
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {s}"),
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
