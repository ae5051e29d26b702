//! Hostile clients on loopback: request heads and bodies dripped in slowly, kept-alive
//! connections left idle, floods of connections beyond the cap, a process out of descriptors.
//! Every test is bounded in time and count, and they run one at a time (`SERIAL`): each loads
//! the machine on purpose, and the latency assertions must not measure another test's load.
mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A server started like the harness's, with its stderr kept (and echoed) so tests can count
/// log lines, optionally under a shell `ulimit` prefix. `server` is the harness's offline
/// handle on the same directory and environment: its CLI and HTTP helpers talk to this
/// process, and dropping it drops the backend's database.
struct Captured {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    server: Server,
}

impl Captured {
    fn start(env: &[(&str, &str)]) -> Captured {
        Captured::start_under(env, None)
    }

    /// `ulimit`: e.g. `-S -n 256`, run by `sh` before it execs the server (same pid).
    fn start_under(env: &[(&str, &str)], ulimit: Option<&str>) -> Captured {
        let mut server = Server::offline(env);
        let c = match ulimit {
            Some(args) => {
                let mut c = Command::new("sh");
                c.args(["-c", &format!("ulimit {args} && exec \"$0\" serve"), BIN]);
                c
            }
            None => {
                let mut c = Command::new(BIN);
                c.arg("serve");
                c
            }
        };
        let mut c = server.prepare(c);
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sekisho");
        let stdout = child.stdout.take().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                eprintln!("[sekisho] {line}");
                lines.lock().unwrap().push(line);
            }
        });
        server.base = match announced_addresses(stdout) {
            Some((base, _)) => base,
            None => {
                let _ = child.kill();
                panic!(
                    "server did not start within 30s: {:?}",
                    stderr.lock().unwrap()
                );
            }
        };
        Captured {
            child,
            stderr,
            server,
        }
    }

    /// How many stderr lines so far contain `needle`.
    fn log_lines(&self, needle: &str) -> usize {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for the process to exit.
    fn exit_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Captured {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that opens a new connection for every request.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// The value of one sample (`name` with its labels, as the exporter writes it) in `/metrics`.
async fn metric(client: &reqwest::Client, s: &Server, sample: &str) -> f64 {
    let text = client
        .get(s.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .unwrap();
    sample_value(&text, sample)
}

fn sample_value(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(sample)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// One kept-alive connection made before a flood. A raw socket, not a pooled client: at the
/// cap, a client pool that opens a second connection (it may, while the first one is being
/// checked back in) is refused, and the test would measure the pool instead of the server.
struct Kept(TcpStream);

impl Kept {
    async fn open(s: &Server) -> Self {
        let mut kept = Kept(TcpStream::connect(s.authority()).await.unwrap());
        assert_eq!(kept.get("/healthz").await.0, 200);
        kept
    }

    /// Status and body of `GET path` on this connection; panics when the server closed it.
    async fn get(&mut self, path: &str) -> (u16, String) {
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        self.0.write_all(request.as_bytes()).await.unwrap();
        read_full_response(&mut self.0)
            .await
            .unwrap_or_else(|| panic!("GET {path}: the kept-alive connection was closed"))
    }

    async fn metric(&mut self, sample: &str) -> f64 {
        let (status, text) = self.get("/metrics").await;
        assert_eq!(status, 200);
        sample_value(&text, sample)
    }
}

/// Reads one response from a kept-alive connection: its status, or `None` when the server
/// closed the connection first.
async fn read_response(conn: &mut TcpStream) -> Option<u16> {
    read_full_response(conn).await.map(|(status, _)| status)
}

/// Status and body (by `Content-Length`) of one response, or `None` when the server closed the
/// connection first.
async fn read_full_response(conn: &mut TcpStream) -> Option<(u16, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
    Some((status, body))
}

/// Opens `n` connections that send nothing; each connect must complete within 3 s (the listen
/// queue takes them even while the server does not accept).
async fn connect_many(s: &Server, n: usize) -> Vec<TcpStream> {
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let conn = tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(s.authority()))
            .await
            .unwrap_or_else(|_| panic!("connect {i} of {n} took over 3s"))
            .expect("connect");
        conns.push(conn);
    }
    conns
}

/// Waits for the server to close `conn` (EOF or reset); `None` if it is still open at `limit`.
/// A kept-alive client that has made one request (it holds a slot), then `n` raw connections
/// at once: the client, the connections, and how many of them stayed open for 3 s.
async fn flood(s: &Server, n: usize) -> (Kept, Vec<TcpStream>, usize) {
    let keep = Kept::open(s).await;
    let mut conns = connect_many(s, n).await;
    let verdicts = futures::future::join_all(
        conns
            .iter_mut()
            .map(|conn| closed_within(conn, Duration::from_secs(3))),
    )
    .await;
    let held = verdicts.iter().filter(|v| v.is_none()).count();
    (keep, conns, held)
}

async fn closed_within(conn: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut chunk = [0u8; 1024];
    let wait = async {
        loop {
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, wait)
        .await
        .ok()
        .map(|()| start.elapsed())
}

/// One slowloris slot: a connection that drips a never-ending request head, a byte a second,
/// reconnecting whenever the server closes it, until `end`. Returns how long each closed
/// connection lived, and the age of the one still open at `end` (if any).
async fn slowloris(authority: String, end: Instant) -> (Vec<Duration>, Option<Duration>) {
    const HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
    let mut lifetimes = Vec::new();
    while Instant::now() < end {
        let Ok(mut conn) = TcpStream::connect(&authority).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let opened = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut sent = 0usize;
        let mut chunk = [0u8; 256];
        let closed = loop {
            tokio::select! {
                r = conn.read(&mut chunk) => match r {
                    Ok(0) | Err(_) => break true,
                    // The server answers nothing to a head that never ends.
                    Ok(_) => panic!("a response to an incomplete request head"),
                },
                _ = tick.tick() => {
                    let byte = HEAD.get(sent).copied().unwrap_or(b'a');
                    sent += 1;
                    if conn.write_all(&[byte]).await.is_err() {
                        break true;
                    }
                }
                () = tokio::time::sleep_until(end.into()) => break false,
            }
        };
        if !closed {
            return (lifetimes, Some(opened.elapsed()));
        }
        lifetimes.push(opened.elapsed());
    }
    (lifetimes, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_heads_are_cut_off_while_other_clients_are_answered() {
    let _serial = SERIAL.lock().await;
    let header_timeout = Duration::from_secs(2);
    let c = Captured::start(&[("SEKISHO_SERVER__HEADER_READ_TIMEOUT", "2s")]);
    let s = &c.server;
    s.create_user("alice", PASSWORD);
    let (access, _) = s.token_pair("alice", PASSWORD).await;

    let run = Duration::from_secs(20);
    let end = Instant::now() + run;
    let slots: Vec<_> = (0..300)
        .map(|_| tokio::spawn(slowloris(s.authority(), end)))
        .collect();

    // Throughout, a fresh connection's /healthz and a kept-alive connection's bearer /me are
    // answered at once, each sampled every 250 ms.
    let fresh = fresh_client();
    let pooled = client();
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut i = 0u32;
    while Instant::now() < end {
        tick.tick().await;
        let t = Instant::now();
        let (what, status) = if i.is_multiple_of(2) {
            let r = fresh.get(s.url("/healthz")).send().await;
            ("GET /healthz", r.map(|r| r.status().as_u16()))
        } else {
            let r = pooled
                .get(s.url("/api/auth/me/"))
                .bearer_auth(&access)
                .send()
                .await;
            ("GET /api/auth/me/", r.map(|r| r.status().as_u16()))
        };
        samples.push((what, status.map_err(|e| e.to_string()), t.elapsed()));
        i += 1;
    }
    assert!(samples.len() >= 60, "only {} samples", samples.len());
    eprintln!(
        "{} samples under slowloris, slowest {:?}",
        samples.len(),
        samples.iter().map(|s| s.2).max()
    );
    for (what, status, took) in &samples {
        assert_eq!(status, &Ok(200), "{what} under slowloris");
        assert!(
            *took < Duration::from_millis(200),
            "{what} took {took:?} under slowloris; all samples: {:?}",
            samples.iter().map(|s| s.2).collect::<Vec<_>>()
        );
    }

    // Every slow connection was closed by the server, not before about the timeout (50 %
    // slack) and long before the run ended; one still open at the end is a young one.
    let mut closed = 0;
    for slot in slots {
        let (lifetimes, open_at_end) = slot.await.unwrap();
        assert!(
            !lifetimes.is_empty(),
            "a slow connection was never closed (open {open_at_end:?} at the end)"
        );
        for l in &lifetimes {
            assert!(
                *l >= header_timeout / 2 && *l < Duration::from_secs(10),
                "a slow connection lived {l:?} (header timeout {header_timeout:?})"
            );
        }
        if let Some(age) = open_at_end {
            assert!(
                age < Duration::from_secs(10),
                "still open at the end after {age:?}"
            );
        }
        closed += lifetimes.len();
    }
    assert!(closed >= 300, "{closed} closures");
    let counted = metric(
        &pooled,
        s,
        "sekisho_connection_timeouts_total{kind=\"header\"}",
    )
    .await;
    assert!(counted >= 300.0, "header timeouts counted: {counted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_beyond_the_cap_is_closed_at_once_and_the_server_keeps_answering() {
    let _serial = SERIAL.lock().await;
    let c = Captured::start(&[
        ("SEKISHO_SERVER__MAX_CONNECTIONS", "50"),
        ("SEKISHO_SERVER__HEADER_READ_TIMEOUT", "1m"),
    ]);
    let s = &c.server;
    // One kept-alive connection before the flood holds one of the 50 slots; the connections
    // beyond the cap are closed at once, the others stay open.
    let (mut keep, flood, held) = flood(s, 200).await;
    assert!(
        (45..=49).contains(&held),
        "{held} of 200 flood connections held open under a cap of 50 (one slot in use)"
    );

    // The existing connection is answered throughout, and says what happened.
    for _ in 0..3 {
        let t = Instant::now();
        assert_eq!(keep.get("/healthz").await.0, 200);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    }
    let refused = keep.metric("sekisho_connections_refused_total").await;
    assert!(refused >= (200 - held) as f64, "refused counted: {refused}");
    assert_eq!(keep.metric("sekisho_connections_open").await, 50.0);
    // A new connection at the cap is closed without an answer.
    assert!(fresh_client().get(s.url("/healthz")).send().await.is_err());

    // The flood ends: a new connection is answered again at once.
    drop(flood);
    let t = Instant::now();
    let fresh = fresh_client();
    let ok = eventually(
        Duration::from_secs(2),
        async || matches!(fresh.get(s.url("/healthz")).send().await, Ok(r) if r.status() == 200),
    )
    .await;
    assert!(ok, "no answer within 2s of the flood's end");
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(c.log_lines("accept error"), 0);
    let warned = c.log_lines("connection cap reached");
    assert!((1..=3).contains(&warned), "{warned} cap warnings");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let _serial = SERIAL.lock().await;
    let idle = Duration::from_secs(3);
    let c = Captured::start(&[
        ("SEKISHO_SERVER__HEADER_READ_TIMEOUT", "1s"),
        ("SEKISHO_SERVER__IDLE_TIMEOUT", "3s"),
    ]);
    let s = &c.server;
    let mut conn = TcpStream::connect(s.authority()).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    conn.write_all(request).await.unwrap();
    assert_eq!(read_response(&mut conn).await, Some(200));
    // Idle for longer than the header timeout: the wait for the next request is the idle
    // timeout's, and the request resets it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    conn.write_all(request).await.unwrap();
    assert_eq!(
        read_response(&mut conn).await,
        Some(200),
        "kept-alive connection closed after 1.5s idle (idle timeout 3s)"
    );
    let after = closed_within(&mut conn, Duration::from_secs(12))
        .await
        .expect("an idle connection still open after 12s (idle timeout 3s)");
    assert!(
        after >= idle / 2,
        "closed after {after:?} idle (idle timeout {idle:?})"
    );
    let counted = metric(
        &client(),
        s,
        "sekisho_connection_timeouts_total{kind=\"idle\"}",
    )
    .await;
    assert!(counted >= 1.0, "idle timeouts counted: {counted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_body_is_answered_408_and_the_connection_closed() {
    let _serial = SERIAL.lock().await;
    let limit = Duration::from_secs(2);
    let c = Captured::start(&[("SEKISHO_SERVER__BODY_READ_TIMEOUT", "2s")]);
    let s = &c.server;
    s.create_user("alice", PASSWORD);
    let body = serde_json::json!({"username": "alice", "password": PASSWORD}).to_string();
    let head = format!(
        "POST /api/token/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );

    // A body that stops halfway: 408 after about the timeout, then the connection closes.
    let mut conn = TcpStream::connect(s.authority()).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body.as_bytes()[..10]).await.unwrap();
    let t = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(15), read_response(&mut conn))
        .await
        .expect("no answer to a stalled body within 15s");
    let took = t.elapsed();
    assert_eq!(status, Some(408));
    assert!(
        took >= limit / 2 && took < Duration::from_secs(10),
        "408 after {took:?} (body timeout {limit:?})"
    );
    assert!(
        closed_within(&mut conn, Duration::from_secs(5))
            .await
            .is_some(),
        "connection kept open after the 408"
    );

    // A slow body that completes within the timeout is served as usual.
    let mut conn = TcpStream::connect(s.authority()).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body.as_bytes()[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    conn.write_all(&body.as_bytes()[10..]).await.unwrap();
    assert_eq!(read_response(&mut conn).await, Some(200));

    let counted = metric(
        &client(),
        s,
        "sekisho_connection_timeouts_total{kind=\"body\"}",
    )
    .await;
    assert_eq!(counted, 1.0, "body timeouts counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_idle_connections_answers_the_request_in_flight_and_stops() {
    let _serial = SERIAL.lock().await;
    let mut c = Captured::start(&[("SEKISHO_LOG", "info")]);
    let s = &c.server;
    s.create_user("alice", PASSWORD);
    let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut kept = TcpStream::connect(s.authority()).await.unwrap();
    kept.write_all(request).await.unwrap();
    assert_eq!(read_response(&mut kept).await, Some(200));
    let mut silent = TcpStream::connect(s.authority()).await.unwrap();
    let body = serde_json::json!({"username": "alice", "password": PASSWORD}).to_string();
    let mut in_flight = TcpStream::connect(s.authority()).await.unwrap();
    in_flight
        .write_all(
            format!(
                "POST /api/token/ HTTP/1.1\r\nHost: localhost\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    in_flight.write_all(&body.as_bytes()[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let kill = Command::new("kill")
        .args(["-TERM", &c.pid().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    for (name, conn) in [("kept-alive", &mut kept), ("silent", &mut silent)] {
        assert!(
            closed_within(conn, Duration::from_secs(3)).await.is_some(),
            "{name} connection still open 3s after SIGTERM"
        );
    }
    // The request in flight is answered, then the process exits cleanly.
    in_flight.write_all(&body.as_bytes()[10..]).await.unwrap();
    assert_eq!(read_response(&mut in_flight).await, Some(200));
    let status = c
        .exit_within(Duration::from_secs(5))
        .expect("still running 5s after SIGTERM with no request in flight");
    assert!(status.success(), "{status:?}");
    assert_eq!(c.log_lines("sekisho stopped"), 1);
}

#[test]
fn connection_limits_refuse_zero_and_nonsense_with_one_line() {
    let off = Server::offline(&[]);
    let out = off.cli(&["config", "check"], "");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let shown = stdout_of(&out);
    for line in [
        "header_read_timeout = \"10s\"",
        "body_read_timeout = \"30s\"",
        "idle_timeout = \"1m\"",
    ] {
        assert!(shown.contains(line), "{line} not in {shown}");
    }
    let mut cases = Vec::new();
    for key in ["header_read_timeout", "body_read_timeout", "idle_timeout"] {
        for bad in ["0", "0s", "200ms", "2h", "soon", "-3"] {
            cases.push((key, bad));
        }
    }
    for bad in ["0", "-1", "lots", "1.5", "99999999"] {
        cases.push(("max_connections", bad));
    }
    for (key, bad) in cases {
        let var = format!("SEKISHO_SERVER__{}", key.to_ascii_uppercase());
        for cmd in [&["config", "check"][..], &["serve"][..]] {
            let out = off.cli_env(&[(var.as_str(), bad)], cmd, "");
            let stderr = stderr_of(&out);
            assert!(!out.status.success(), "{var}={bad} {cmd:?} accepted");
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(lines.len(), 1, "{var}={bad} {cmd:?}: {stderr:?}");
            assert!(
                lines[0].starts_with(&format!("sekisho: server.{key}")),
                "{var}={bad} {cmd:?}: {stderr:?}"
            );
        }
    }
}

/// The soft limit and the hard limit of `Max open files` in `/proc/PID/limits`.
#[cfg(target_os = "linux")]
fn open_file_limits(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut figures = line["Max open files".len()..]
        .split_whitespace()
        .map(|f| f.parse::<u64>().unwrap_or(u64::MAX));
    (figures.next().unwrap(), figures.next().unwrap())
}

/// CPU time (user + system) the process has used so far.
#[cfg(target_os = "linux")]
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses); utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f[11] + f[12];
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100u64);
    Duration::from_millis(ticks * 1000 / hz)
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soft_open_file_limit_is_raised_to_the_hard_limit() {
    let _serial = SERIAL.lock().await;
    let c = Captured::start_under(&[("SEKISHO_LOG", "info")], Some("-S -n 256"));
    let (soft, hard) = open_file_limits(c.pid());
    assert_eq!(soft, hard, "soft limit {soft} not raised to the hard limit");
    let r = c
        .server
        .send(reqwest::Method::GET, "/healthz", &[], None)
        .await;
    assert_eq!(r.status, 200);
    if hard > 256 {
        assert_eq!(
            c.log_lines(&format!("open-file limit raised from 256 to {hard}")),
            1
        );
    }
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_accept_errors_are_paced_and_logged_once_a_second() {
    let _serial = SERIAL.lock().await;
    // A cap the descriptors cannot back: accepts fail with EMFILE.
    let c = Captured::start_under(
        &[
            ("SEKISHO_SERVER__MAX_CONNECTIONS", "1000"),
            ("SEKISHO_SERVER__HEADER_READ_TIMEOUT", "1m"),
        ],
        Some("-n 128"),
    );
    let s = &c.server;
    assert_eq!(c.log_lines("leaves too few descriptors"), 1);
    let flood = connect_many(s, 300).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        c.log_lines("accept error") >= 1,
        "the flood did not exhaust the descriptors"
    );
    let (lines_before, cpu_before) = (c.log_lines("accept error"), cpu_time(c.pid()));
    let hold = Duration::from_secs(4);
    tokio::time::sleep(hold).await;
    let spent = cpu_time(c.pid()).saturating_sub(cpu_before);
    let logged = c.log_lines("accept error") - lines_before;
    assert!(logged <= 6, "{logged} accept-error lines in {hold:?}");
    assert!(
        spent < Duration::from_secs(1),
        "the accept loop spent {spent:?} of CPU in {hold:?} out of descriptors"
    );
    drop(flood);
    let fresh = fresh_client();
    let ok = eventually(
        Duration::from_secs(3),
        async || matches!(fresh.get(s.url("/healthz")).send().await, Ok(r) if r.status() == 200),
    )
    .await;
    assert!(ok, "no answer within 3s of the flood's end");
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_cap_fits_a_low_open_file_limit() {
    let _serial = SERIAL.lock().await;
    // 160 descriptors: the default cap is 80, which leaves the rest for the server itself.
    let c = Captured::start_under(
        &[("SEKISHO_SERVER__HEADER_READ_TIMEOUT", "1m")],
        Some("-n 160"),
    );
    let s = &c.server;
    let (mut keep, _flood, held) = flood(s, 300).await;
    assert!(
        held <= 79,
        "{held} flood connections held under the default cap of 80"
    );
    assert_eq!(keep.get("/healthz").await.0, 200);
    assert_eq!(keep.metric("sekisho_connections_open").await, 80.0);
    assert_eq!(c.log_lines("accept error"), 0);
    assert_eq!(c.log_lines("connection cap reached"), 1);
}
