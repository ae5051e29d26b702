//! The load driver for what `wrk` cannot express, used by `bench/compare.sh` against sekisho and
//! the Django reference alike (both speak simplejwt's HTTP shapes):
//!
//! * `pool` — obtains refresh tokens over HTTP (`POST /api/token/`), one login each, and writes
//!   them one per line: the pool the refresh workload consumes (each token is single-use);
//! * `pageload` — the "SPA page load": each virtual user refreshes its token pair, then fires
//!   `fanout` parallel authenticated `GET /api/auth/me/` calls with the new access token, and
//!   repeats. Prints page loads/s and page-load latency percentiles as one JSON line.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "HTTP load driver for bench/compare.sh")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Obtain COUNT refresh tokens and write them, one per line, to OUT. With `--users N` the
    /// logins are spread over the users USERNAME0 … USERNAME{N-1} (all with PASSWORD).
    Pool {
        #[arg(long)]
        base: String,
        #[arg(long)]
        username: String,
        #[arg(long)]
        users: Option<usize>,
        #[arg(long)]
        password: String,
        #[arg(long)]
        count: u64,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Run the page-load scenario for SECONDS with one refresh token per user from TOKENS.
    Pageload {
        #[arg(long)]
        base: String,
        #[arg(long)]
        tokens: std::path::PathBuf,
        #[arg(long, default_value_t = 3)]
        users: usize,
        #[arg(long, default_value_t = 10)]
        fanout: usize,
        #[arg(long)]
        seconds: f64,
    },
}

fn client(max_idle: usize) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(max_idle)
        .timeout(Duration::from_secs(60))
        .build()?)
}

async fn post_json(c: &reqwest::Client, url: &str, body: &Value) -> Result<Value> {
    let res = c.post(url).json(body).send().await?;
    let status = res.status();
    if !status.is_success() {
        bail!("{url}: HTTP {status}");
    }
    Ok(res.json().await?)
}

fn text(v: &Value, field: &str) -> Result<String> {
    v.get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .with_context(|| format!("response has no {field:?}"))
}

#[allow(clippy::too_many_arguments)]
async fn pool(
    base: String,
    username: String,
    users: Option<usize>,
    password: String,
    count: u64,
    concurrency: usize,
    out: std::path::PathBuf,
) -> Result<()> {
    let c = client(concurrency)?;
    let url = format!("{base}/api/token/");
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let name = match users {
            Some(n) => format!("{username}{}", i % n.max(1)),
            None => username.clone(),
        };
        let body = json!({ "username": name, "password": password });
        let (c, url, next) = (c.clone(), url.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let v = post_json(&c, &url, &body).await?;
                got.push(text(&v, "refresh")?);
            }
            anyhow::Ok(got)
        }));
    }
    let mut all = Vec::with_capacity(count as usize);
    for t in tasks {
        all.extend(t.await??);
    }
    let mut text_out = all.join("\n");
    text_out.push('\n');
    std::fs::write(&out, text_out).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!(
        "pool: {} tokens in {:.1}s",
        all.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

struct UserRun {
    pages: Vec<u64>,
    requests: u64,
    error: Option<String>,
}

async fn one_user(
    base: Arc<str>,
    mut refresh: String,
    fanout: usize,
    deadline: Instant,
) -> Result<UserRun> {
    let c = client(fanout + 1)?;
    let refresh_url = format!("{base}/api/token/refresh/");
    let me_url = format!("{base}/api/auth/me/");
    let mut run = UserRun {
        pages: Vec::new(),
        requests: 0,
        error: None,
    };
    while Instant::now() < deadline {
        let t0 = Instant::now();
        let v = match post_json(&c, &refresh_url, &json!({ "refresh": refresh })).await {
            Ok(v) => v,
            Err(e) => {
                run.error = Some(format!("refresh: {e}"));
                break;
            }
        };
        run.requests += 1;
        let access = text(&v, "access")?;
        refresh = text(&v, "refresh")?;
        let bearer = format!("Bearer {access}");
        let calls = (0..fanout).map(|_| {
            let req = c.get(&me_url).header("authorization", &bearer);
            async move {
                let res = req.send().await?;
                let status = res.status();
                let _ = res.bytes().await?;
                if !status.is_success() {
                    bail!("me: HTTP {status}");
                }
                anyhow::Ok(())
            }
        });
        let results = futures::future::join_all(calls).await;
        run.requests += fanout as u64;
        if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
            run.error = Some(e.to_string());
            break;
        }
        run.pages.push(t0.elapsed().as_micros() as u64);
    }
    Ok(run)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn pageload(
    base: String,
    tokens: std::path::PathBuf,
    users: usize,
    fanout: usize,
    seconds: f64,
) -> Result<()> {
    let text_in = std::fs::read_to_string(&tokens)
        .with_context(|| format!("cannot read {}", tokens.display()))?;
    let refresh: Vec<String> = text_in
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if refresh.len() < users {
        bail!(
            "{} holds {} tokens, need {users}",
            tokens.display(),
            refresh.len()
        );
    }
    let base: Arc<str> = base.into();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = refresh
        .into_iter()
        .take(users)
        .map(|r| tokio::spawn(one_user(base.clone(), r, fanout, deadline)))
        .collect();
    let mut pages = Vec::new();
    let mut requests = 0;
    let mut errors = Vec::new();
    for t in tasks {
        let run = t.await??;
        pages.extend(run.pages);
        requests += run.requests;
        errors.extend(run.error);
    }
    let elapsed = started.elapsed().as_secs_f64();
    pages.sort_unstable();
    let out = json!({
        "pages": pages.len(),
        "seconds": elapsed,
        "pages_per_s": pages.len() as f64 / elapsed,
        "requests_per_s": requests as f64 / elapsed,
        "p50_us": percentile(&pages, 50.0),
        "p90_us": percentile(&pages, 90.0),
        "p99_us": percentile(&pages, 99.0),
        "max_us": pages.last().copied().unwrap_or(0),
        "errors": errors,
    });
    println!("BENCH_JSON {out}");
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        match cli.command {
            Command::Pool {
                base,
                username,
                users,
                password,
                count,
                concurrency,
                out,
            } => pool(base, username, users, password, count, concurrency, out).await,
            Command::Pageload {
                base,
                tokens,
                users,
                fanout,
                seconds,
            } => pageload(base, tokens, users, fanout, seconds).await,
        }
    })
}
