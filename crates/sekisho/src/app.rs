//! Wiring: config → key material and stores → the [`Auth`] facade → the HTTP app.

use anyhow::{Context, Result};
use axum::Router;
use sekisho_axum::AppState;
use sekisho_core::authz::policy::Policy;
use sekisho_core::clock::SystemClock;
use sekisho_core::token::managed::KEY_REFRESH_INTERVAL;
use sekisho_core::{Auth, Config};
use sekisho_store::Stores;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Reads the config file (explicit path, or `sekisho.toml` when present) and the environment.
pub fn load_config(path: Option<&Path>) -> Result<Config> {
    let text = match path {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read config file {}", p.display()))?,
        None if Path::new("sekisho.toml").exists() => {
            std::fs::read_to_string("sekisho.toml").context("cannot read sekisho.toml")?
        }
        None => String::new(),
    };
    Ok(Config::load(&text, std::env::vars())?)
}

pub async fn open_stores(config: &Config) -> Result<Stores> {
    Ok(sekisho_store::open(config, Arc::new(SystemClock)).await?)
}

/// The facade, exactly as `serve` and every CLI command use it. With managed keys its ring is
/// loaded by [`Auth::maintain_keys`], which `serve` runs before it listens (the CLI signs
/// nothing, and must not make a key as a side effect of, say, `user list`).
pub async fn build_auth(config: &Config) -> Result<Arc<Auth>> {
    let keys = crate::keys::load_or_create(config)?;
    let stores = open_stores(config).await?;
    let mut builder = Auth::builder(config).stores(stores).csrf_key(keys.csrf);
    if let Some(url) = &config.django.database_url {
        let live = sekisho_store::django::DjangoSource::open_live(url, config.database.timeout.0)
            .await
            .map_err(|e| anyhow::anyhow!("django.database_url: {e}"))?;
        builder = builder.django_sessions(Arc::new(live));
    }
    if let Some(secret) = &keys.mfa {
        builder = builder.mfa_secret(secret);
    }
    let builder = match keys.signing {
        crate::keys::Signing::Static(key, source) => {
            builder.signing_key(key).signing_key_source(source)
        }
        crate::keys::Signing::Managed(kek) => builder.managed_keys(kek),
    };
    Ok(Arc::new(builder.build()?))
}

/// Keeps the key ring current: the upkeep (rotation step, deleting expired keys, re-reading)
/// every [`KEY_REFRESH_INTERVAL`], and a re-read as soon as another process broadcasts a key
/// change. A failed round is logged and retried; the ring in memory keeps serving meanwhile.
pub fn spawn_key_upkeep(auth: Arc<Auth>) {
    if !auth.keys_are_managed() {
        return;
    }
    let mut changes = auth.key_changes();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(KEY_REFRESH_INTERVAL);
        tick.tick().await;
        loop {
            let broadcast = async {
                match changes.as_mut() {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            let result = tokio::select! {
                _ = tick.tick() => auth.maintain_keys().await,
                true = broadcast => auth.reload_keys().await,
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "signing keys: upkeep failed; the keys in memory stay in use");
            }
        }
    });
}

/// The access policy: the `[policy]` section plus `policy.file`, compiled (one-line errors).
pub fn load_policy(config: &Config) -> Result<Policy> {
    let text = match &config.policy.file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("policy.file: cannot read {}", p.display()))?,
        ),
        None => None,
    };
    Ok(Policy::compile(&config.policy, text.as_deref())?)
}

/// The router of `server.bind` and, when `server.ops_bind` is set, the operations router.
pub fn build_routers(config: &Config, auth: Arc<Auth>) -> Result<(Router, Option<Router>)> {
    use sekisho_axum::Listener;
    let state = AppState::new(auth, config)
        .with_metrics(metrics_recorder())
        .with_policy(load_policy(config)?);
    let static_dir = config.server.static_dir.clone();
    Ok(match config.server.ops_bind {
        None => (sekisho_axum::app(state, static_dir), None),
        Some(_) => (
            sekisho_axum::app_for(state.clone(), static_dir, Listener::Public),
            Some(sekisho_axum::app_for(state, None, Listener::Ops)),
        ),
    })
}

static METRICS: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
    std::sync::OnceLock::new();

/// Installs the process-wide Prometheus recorder (once) and returns its renderer.
fn metrics_recorder() -> sekisho_axum::MetricsRender {
    let handle = METRICS.get_or_init(|| {
        let buckets = [
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ];
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(
                    "sekisho_http_request_duration_seconds".into(),
                ),
                &buckets,
            )
            .ok()?
            .install_recorder()
            .ok()
    });
    match handle.clone() {
        Some(h) => Arc::new(move || h.render()),
        None => Arc::new(String::new),
    }
}

/// The exporter buffers every histogram sample until something drains it; without this a
/// server nobody scrapes would keep one sample per request forever (measured: ~18 bytes per
/// request, 11 MB after 630k requests). A plain thread, not a task: a drain of a second's
/// samples takes a few milliseconds, which on an async worker would stall the requests queued
/// behind it.
pub fn spawn_metrics_upkeep(every: Duration) {
    if let Some(Some(handle)) = METRICS.get() {
        let handle = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("sekisho-metrics".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    handle.run_upkeep();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "metrics upkeep thread not started; /metrics scrapes still drain");
        }
    }
}

/// Deletes expired refresh families in the background: state stays bounded without an
/// operator running anything.
pub fn spawn_purge(auth: Arc<Auth>, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match auth.purge_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "expired refresh families purged"),
                Err(e) => tracing::warn!(error = %e, "purge of expired refresh families failed"),
            }
        }
    });
}

/// Concurrent connections of the operations listener (`server.ops_bind`).
const OPS_MAX_CONNECTIONS: usize = 64;

pub async fn serve(config: Config) -> Result<()> {
    if let Some(dir) = &config.server.static_dir {
        if !dir.is_dir() {
            anyhow::bail!("server.static_dir: {} is not a directory", dir.display());
        }
        if !dir.join("index.html").is_file() {
            tracing::warn!(dir = %dir.display(), "server.static_dir has no index.html; client-side routes will 404");
        }
    }
    let open_files = crate::listen::raise_open_file_limit();
    let limits =
        crate::listen::Limits::new(&config.server, open_files, config.database.max_connections);
    let auth = build_auth(&config).await?;
    auth.maintain_keys().await?;
    let listener = config
        .server
        .bind
        .parse::<std::net::SocketAddr>()
        .map_err(std::io::Error::other)
        .and_then(crate::listen::bind)
        .with_context(|| format!("cannot listen on {}", config.server.bind))?;
    let addr = listener.local_addr()?;
    let ops_listener = match &config.server.ops_bind {
        Some(ops) => Some(
            ops.parse::<std::net::SocketAddr>()
                .map_err(std::io::Error::other)
                .and_then(crate::listen::bind)
                .with_context(|| format!("cannot listen on {ops} (server.ops_bind)"))?,
        ),
        None => None,
    };
    spawn_purge(auth.clone(), Duration::from_secs(60));
    spawn_key_upkeep(auth.clone());
    let (app, ops_app) = build_routers(&config, auth)?;
    spawn_metrics_upkeep(Duration::from_secs(1));
    // One shutdown signal for both listeners.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    tokio::spawn(async move {
        shutdown_signal().await;
        drop(stop_tx);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<()>| async move {
        while rx.changed().await.is_ok() {}
    };
    let ops_task = match (ops_listener, ops_app) {
        (Some(l), Some(ops_app)) => {
            let ops_addr = l.local_addr()?;
            tracing::info!(addr = %ops_addr, "operations endpoints (/metrics, /api/openapi.json, /healthz, /readyz) listening");
            println!("sekisho operations endpoints on http://{ops_addr}");
            // A scraper or two: a small, separate connection budget.
            let ops_limits = crate::listen::Limits {
                max_connections: limits.max_connections.min(OPS_MAX_CONNECTIONS),
                ..limits
            };
            Some(tokio::spawn(crate::listen::serve(
                l,
                ops_app,
                ops_limits,
                stopped(stop_rx.clone()),
            )))
        }
        _ => None,
    };
    tracing::info!(
        %addr,
        max_connections = limits.max_connections,
        header_read_timeout = %config.server.header_read_timeout,
        body_read_timeout = %config.server.body_read_timeout,
        idle_timeout = %config.server.idle_timeout,
        "sekisho listening"
    );
    println!("sekisho listening on http://{addr}");
    crate::listen::serve(listener, app, limits, stopped(stop_rx)).await;
    if let Some(t) = ops_task {
        let _ = t.await;
    }
    tracing::info!("sekisho stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
