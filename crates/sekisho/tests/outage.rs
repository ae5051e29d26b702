//! Fail closed: when a store is unreachable, requests that need it answer 503 with
//! `Retry-After` and a JSON body — never a 500, never a token whose state was not stored — and
//! service comes back by itself when the store does, with no restart of sekisho.
//!
//! These tests start private Redis and PostgreSQL servers on free loopback ports and stop them;
//! the machine's shared services are never touched.
mod common;
use common::*;
use reqwest::Method;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_millis(200),
    )
    .is_ok()
}

fn wait_for(mut f: impl FnMut() -> bool, what: &str) {
    for _ in 0..150 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start_on(port: u16) -> PrivateRedis {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        wait_for(|| port_open(port), "private redis-server");
        PrivateRedis {
            port,
            child: Some(child),
        }
    }
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        wait_for(|| !port_open(self.port), "redis-server to stop");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn assert_503(r: &Reply) {
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.header("retry-after").is_some(), "Retry-After on 503");
    assert!(r.body.is_object(), "JSON body on 503: {}", r.body);
}

async fn session_login(s: &Server, user: &str) -> String {
    let csrf = s
        .send(Method::GET, "/api/auth/csrf/", &[], None)
        .await
        .str("csrfToken");
    let r = s
        .send(
            Method::POST,
            "/api/auth/login/",
            &[
                ("cookie", &format!("csrftoken={csrf}")),
                ("x-csrftoken", &csrf),
                ("content-type", "application/json"),
            ],
            Some(
                json!({"username": user, "password": PASSWORD})
                    .to_string()
                    .as_bytes(),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    format!("sessionid={}", r.cookie("sessionid").unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_of_redis_fails_closed_and_recovers_without_restart() {
    let port = free_port();
    let mut redis = PrivateRedis::start_on(port);
    let url = format!("redis://127.0.0.1:{port}");
    let s = Server::start(&[
        ("SEKISHO_SESSIONS__STORE", &url),
        ("SEKISHO_DATABASE__TIMEOUT", "1s"),
    ]);
    s.create_user("ops", PASSWORD);
    let jar = session_login(&s, "ops").await;
    let (access, refresh) = s.token_pair("ops", PASSWORD).await;

    redis.stop();
    let ready = s.send(Method::GET, "/readyz", &[], None).await;
    assert_503(&ready);
    assert_eq!(ready.body["status"], "unavailable");
    assert_503(
        &s.send(Method::GET, "/api/auth/me/", &[("cookie", &jar)], None)
            .await,
    );
    // No token leaves the server without its family stored.
    assert_503(
        &s.post_json(
            "/api/token/",
            json!({"username": "ops", "password": PASSWORD}),
        )
        .await,
    );
    assert_503(
        &s.post_json("/api/token/refresh/", json!({"refresh": refresh}))
            .await,
    );
    assert_503(
        &s.post_json("/api/token/blacklist/", json!({"refresh": refresh}))
            .await,
    );
    // Stateless access tokens (users live in the SQL database) keep working.
    assert_eq!(s.get_bearer("/api/auth/me/", &access).await.status, 200);
    assert_eq!(s.send(Method::GET, "/healthz", &[], None).await.status, 200);

    let _redis = PrivateRedis::start_on(port);
    let recovered = eventually(Duration::from_secs(15), async || {
        s.send(Method::GET, "/readyz", &[], None).await.status == 200
    })
    .await;
    assert!(recovered, "readyz recovers with no restart");
    // This Redis keeps nothing on disk, so the old session and family are gone: both are
    // refused (never accepted without their state), and new logins work.
    assert_eq!(
        s.send(Method::GET, "/api/auth/me/", &[("cookie", &jar)], None)
            .await
            .status,
        401
    );
    assert_eq!(
        s.post_json("/api/token/refresh/", json!({"refresh": refresh}))
            .await
            .status,
        401
    );
    let jar2 = session_login(&s, "ops").await;
    assert_eq!(
        s.send(Method::GET, "/api/auth/me/", &[("cookie", &jar2)], None)
            .await
            .status,
        200
    );
    let (_, refresh2) = s.token_pair("ops", PASSWORD).await;
    assert_eq!(
        s.post_json("/api/token/refresh/", json!({"refresh": refresh2}))
            .await
            .status,
        200
    );
}

/// A private PostgreSQL cluster made with initdb, run as the `postgres` system user (the server
/// refuses to run as root).
struct PrivatePostgres {
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivatePostgres {
    fn bin(name: &str) -> String {
        let out = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .expect("pg_config");
        format!("{}/{name}", String::from_utf8_lossy(&out.stdout).trim())
    }

    fn as_postgres(args: &[&str]) -> std::process::Output {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .args(args)
            .output()
            .expect("runuser")
    }

    fn create() -> PrivatePostgres {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("chown")
            .args(["postgres", dir.path().to_str().unwrap()])
            .status()
            .unwrap();
        assert!(status.success());
        let data = dir.path().join("data");
        let out = Self::as_postgres(&[
            &Self::bin("initdb"),
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]);
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pg = PrivatePostgres {
            dir,
            port: free_port(),
        };
        pg.start();
        pg
    }

    fn start(&self) {
        let data = self.dir.path().join("data");
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log");
        let out = Self::as_postgres(&[
            &Self::bin("pg_ctl"),
            "-D",
            data.to_str().unwrap(),
            "-o",
            &opts,
            "-l",
            log.to_str().unwrap(),
            "-w",
            "start",
        ]);
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn stop(&self) {
        let data = self.dir.path().join("data");
        let out = Self::as_postgres(&[
            &Self::bin("pg_ctl"),
            "-D",
            data.to_str().unwrap(),
            "-m",
            "immediate",
            "-w",
            "stop",
        ]);
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = Self::as_postgres(&[
            &Self::bin("pg_ctl"),
            "-D",
            data.to_str().unwrap(),
            "-m",
            "immediate",
            "stop",
        ]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_of_postgres_fails_closed_and_recovers_without_restart() {
    let pg = PrivatePostgres::create();
    let url = pg.url();
    let s = Server::start(&[
        ("SEKISHO_DATABASE__URL", &url),
        ("SEKISHO_DATABASE__TIMEOUT", "1s"),
    ]);
    s.create_user("dba", PASSWORD);
    let jar = session_login(&s, "dba").await;
    let (access, refresh) = s.token_pair("dba", PASSWORD).await;

    pg.stop();
    assert_503(&s.send(Method::GET, "/readyz", &[], None).await);
    assert_503(
        &s.send(Method::GET, "/api/auth/me/", &[("cookie", &jar)], None)
            .await,
    );
    // The bearer check needs the user row: no answer is better than a wrong one.
    assert_503(&s.get_bearer("/api/auth/me/", &access).await);
    assert_503(
        &s.post_json(
            "/api/token/",
            json!({"username": "dba", "password": PASSWORD}),
        )
        .await,
    );
    assert_503(
        &s.post_json("/api/token/refresh/", json!({"refresh": refresh}))
            .await,
    );
    // The second login step reads its challenge from the database: 503, not "invalid".
    assert_503(
        &s.post_json(
            "/api/token/mfa/",
            json!({"challenge": "0123456789abcdef0123456789abcdef", "code": "123456"}),
        )
        .await,
    );

    pg.start();
    let recovered = eventually(Duration::from_secs(20), async || {
        s.send(Method::GET, "/readyz", &[], None).await.status == 200
    })
    .await;
    assert!(recovered, "readyz recovers with no restart");
    // PostgreSQL is durable: the session and the family survived the outage.
    assert_eq!(
        s.send(Method::GET, "/api/auth/me/", &[("cookie", &jar)], None)
            .await
            .status,
        200
    );
    assert_eq!(
        s.post_json("/api/token/refresh/", json!({"refresh": refresh}))
            .await
            .status,
        200
    );
}

/// 100 requests right after a store came back, alternating between `first` and `second` and
/// starting on `first`: logins and refreshes, each needing the store. Returns the failures.
async fn hundred_requests_after_recovery(
    first: &Server,
    second: &Server,
    user: &str,
) -> Vec<String> {
    let mut failures = Vec::new();
    for i in 0..50 {
        let (x, y) = if i % 2 == 0 {
            (first, second)
        } else {
            (second, first)
        };
        let login = x
            .post_json(
                "/api/token/",
                json!({"username": user, "password": PASSWORD}),
            )
            .await;
        if login.status != 200 {
            failures.push(format!("login {i}: {} {}", login.status, login.body));
            continue;
        }
        let refresh = y
            .post_json(
                "/api/token/refresh/",
                json!({"refresh": login.str("refresh")}),
            )
            .await;
        if refresh.status != 200 {
            failures.push(format!("refresh {i}: {} {}", refresh.status, refresh.body));
        }
    }
    failures
}

/// Two instances sharing the stores named by `store_env`, both having used them, and `user`.
async fn two_instances_in_use(store_env: (&str, &str), user: &str) -> (Server, Server) {
    let env = [
        store_env,
        ("SEKISHO_DATABASE__TIMEOUT", "2s"),
        ("SEKISHO_JWT__REUSE_GRACE", "0"),
    ];
    let a = Server::start(&env);
    let b = a.start_sharing();
    a.create_user(user, PASSWORD);
    let (_, r) = a.token_pair(user, PASSWORD).await;
    let r = b
        .post_json("/api/token/refresh/", json!({"refresh": r}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    (a, b)
}

/// The outage as one instance sees it: logins answer 503.
async fn assert_login_503(s: &Server, user: &str) {
    assert_503(
        &s.post_json(
            "/api/token/",
            json!({"username": user, "password": PASSWORD}),
        )
        .await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_of_redis_loses_no_request_once_it_is_back_on_two_instances() {
    let port = free_port();
    let mut redis = PrivateRedis::start_on(port);
    let url = format!("redis://127.0.0.1:{port}");
    let (a, b) = two_instances_in_use(("SEKISHO_SESSIONS__STORE", &url), "ops").await;
    redis.stop();
    // A sees the outage; B is not used during it (its connection breaks unnoticed).
    assert_login_503(&a, "ops").await;
    let _redis = PrivateRedis::start_on(port);
    // No warm-up request: the very first ones must succeed, on the idle instance first.
    let failures = hundred_requests_after_recovery(&b, &a, "ops").await;
    assert!(
        failures.is_empty(),
        "{} failed: {failures:#?}",
        failures.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_of_postgres_loses_no_request_once_it_is_back_on_two_instances() {
    let pg = PrivatePostgres::create();
    let url = pg.url();
    let (a, b) = two_instances_in_use(("SEKISHO_DATABASE__URL", &url), "dba").await;
    pg.stop();
    assert_login_503(&a, "dba").await;
    pg.start();
    let failures = hundred_requests_after_recovery(&b, &a, "dba").await;
    assert!(
        failures.is_empty(),
        "{} failed: {failures:#?}",
        failures.len()
    );
}
