//! A bare axum "hello" server (no middleware, no state): the ceiling an axum service can reach
//! on the machine. `bench/compare.sh` measures it in the same run as sekisho's own floor, so the
//! cost of sekisho's request pipeline (request id, metrics, tracing span, panic guard) is a
//! figure rather than a guess.
//!
//! Usage: `axum-hello 127.0.0.1:PORT`

use axum::{Router, routing::get};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let app = Router::new().route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
