//! What every response goes through, as one tower layer: a request id, a tracing span without
//! secrets, the request-duration histogram, and a JSON body for the 405s the router produces.
//!
//! One hand-written layer rather than four `from_fn` middlewares: each of those clones the
//! inner service and boxes a future per request, and measured under load (perf, `GET /healthz`)
//! the four cost about a third of the server's CPU; this does the same work with one box.

use crate::error::ApiError;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics::Histogram;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;
use tower::{Layer, Service};
use tracing::Instrument;

const REQUEST_ID: &str = "x-request-id";

/// Headers every response carries unless the handler chose its own (Django's defaults): no
/// content sniffing (a JSON body is never run as a script), no referrer sent to other origins
/// (URLs may carry ids), and no framing (clickjacking of the SPA's forms).
fn security_headers(h: &mut axum::http::HeaderMap) {
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
}
const METHODS: [&str; 6] = ["GET", "POST", "PATCH", "DELETE", "PUT", "other"];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The layer. Build it after the metrics recorder is installed: its histogram handles are
/// registered once, here, instead of being looked up by name on every request.
#[derive(Clone)]
pub struct PipelineLayer {
    histograms: std::sync::Arc<[[Histogram; CLASSES.len()]; METHODS.len()]>,
}

impl PipelineLayer {
    pub fn new() -> Self {
        let histograms = METHODS.map(|method| {
            CLASSES.map(|status| {
                metrics::histogram!(
                    "sekisho_http_request_duration_seconds",
                    "method" => method,
                    "status" => status
                )
            })
        });
        PipelineLayer {
            histograms: std::sync::Arc::new(histograms),
        }
    }
}

impl Default for PipelineLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for PipelineLayer {
    type Service = Pipeline<S>;
    fn layer(&self, inner: S) -> Pipeline<S> {
        Pipeline {
            inner,
            histograms: self.histograms.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Pipeline<S> {
    inner: S,
    histograms: std::sync::Arc<[[Histogram; CLASSES.len()]; METHODS.len()]>,
}

impl<S> Service<Request> for Pipeline<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let started = Instant::now();
        let id = request_id(&req);
        let headers = req.headers_mut();
        headers.insert(REQUEST_ID, id.clone());
        // Credentials never appear in a trace or a debug print of the request.
        for name in [header::AUTHORIZATION, header::COOKIE] {
            if let header::Entry::Occupied(mut e) = headers.entry(name) {
                for v in e.iter_mut() {
                    v.set_sensitive(true);
                }
            }
        }
        let method = req.method().clone();
        // API answers carry tokens, user data or permission decisions: no cache (a browser's,
        // a proxy's) keeps them, unless the handler chose its own policy.
        let api = req.uri().path().starts_with("/api/");
        let span = tracing::info_span!(
            "request",
            method = %req.method(),
            path = %req.uri().path(),
            request_id = id.to_str().unwrap_or("-"),
        );
        let fut = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        let histograms = self.histograms.clone();
        Box::pin(
            async move {
                let Ok(mut res) = fut.await;
                if res.status() == StatusCode::METHOD_NOT_ALLOWED
                    && !res.headers().contains_key(header::CONTENT_TYPE)
                {
                    res = json_405(&method, res);
                }
                res.headers_mut().insert(REQUEST_ID, id);
                security_headers(res.headers_mut());
                if api {
                    res.headers_mut()
                        .entry(header::CACHE_CONTROL)
                        .or_insert(HeaderValue::from_static("no-store"));
                }
                let m = METHODS
                    .iter()
                    .position(|m| *m == method.as_str())
                    .unwrap_or(METHODS.len() - 1);
                let c = match res.status().as_u16() {
                    100..=199 => 0,
                    200..=299 => 1,
                    300..=399 => 2,
                    400..=499 => 3,
                    _ => 4,
                };
                histograms[m][c].record(started.elapsed().as_secs_f64());
                if res.status().is_server_error() {
                    tracing::error!(status = res.status().as_u16(), "response failed");
                } else {
                    tracing::debug!(status = res.status().as_u16(), "response");
                }
                Ok(res)
            }
            .instrument(span),
        )
    }
}

/// The router's bare 405, as DRF's JSON (keeping its `Allow` header).
fn json_405(method: &Method, res: Response) -> Response {
    let allow = res.headers().get(header::ALLOW).cloned();
    let mut out = ApiError::MethodNotAllowed(method.to_string()).into_response();
    if let Some(allow) = allow {
        out.headers_mut().insert(header::ALLOW, allow);
    }
    out
}

/// The request's id: the one the client or proxy sent when it is sane (≤ 64 of `[A-Za-z0-9-]`),
/// else a new one. Ids only correlate log lines with reports, they guard nothing, so they come
/// from a per-process random prefix and a counter (unique, cheap) rather than the OS RNG.
fn request_id(req: &Request) -> HeaderValue {
    if let Some(v) = req.headers().get(REQUEST_ID)
        && !v.is_empty()
        && v.len() <= 64
        && v.as_bytes()
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    {
        return v.clone();
    }
    static PREFIX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| u64::from_le_bytes(sekisho_core::random::bytes::<8>()));
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut buf = [0u8; 32];
    hex16(prefix, &mut buf[..16]);
    hex16(n, &mut buf[16..]);
    HeaderValue::from_bytes(&buf).expect("hex is a valid header value")
}

fn hex16(v: u64, out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, o) in out.iter_mut().enumerate() {
        *o = HEX[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_32_hex_and_distinct() {
        let req = Request::new(axum::body::Body::empty());
        let a = request_id(&req);
        let b = request_id(&req);
        assert_ne!(a, b);
        for id in [&a, &b] {
            let s = id.to_str().unwrap();
            assert_eq!(s.len(), 32);
            assert!(
                s.bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
        }
        assert_eq!(
            a.as_bytes()[..16],
            b.as_bytes()[..16],
            "one prefix per process"
        );
    }

    #[test]
    fn a_sane_incoming_id_is_kept_and_others_replaced() {
        let with = |v: &str| {
            let mut r = Request::new(axum::body::Body::empty());
            r.headers_mut()
                .insert(REQUEST_ID, HeaderValue::from_str(v).unwrap());
            request_id(&r)
        };
        assert_eq!(with("abc-123"), "abc-123");
        for bad in ["", "a b", "x;y", &"a".repeat(65)] {
            assert_ne!(with(bad), bad, "{bad:?}");
            assert_eq!(with(bad).len(), 32);
        }
    }

    #[test]
    fn hex_is_big_endian_nibbles() {
        let mut b = [0u8; 16];
        hex16(0x0123_4567_89ab_cdef, &mut b);
        assert_eq!(&b, b"0123456789abcdef");
    }
}
