//! The HTTP/1.1 server: the accept loop and what each connection is allowed.
//!
//! `axum::serve` bounds neither how long a client may take to send a request nor how many
//! connections are open at once, so a slow or numerous client could hold every descriptor of
//! the process. This loop serves the same router the same way (HTTP/1.1 with keep-alive,
//! `ConnectInfo<SocketAddr>` on every request, graceful shutdown on the signal: no new
//! connections, idle ones closed, in-flight requests answered) and adds:
//!
//! - **Header timeout** (`server.header_read_timeout`): a request's line and headers must
//!   arrive within it — counted from the accept for the first request of a connection, from
//!   the request's first byte on a kept-alive one. Past it the connection is closed.
//! - **Idle timeout** (`server.idle_timeout`): a kept-alive connection may wait that long for
//!   its next request, counted from the end of the previous response; then it is closed.
//! - **Body timeout** (`server.body_read_timeout`): a handler reading a request body gets all
//!   of it within this time of its first read, or the request is answered 408 and the
//!   connection closed (a slow body cannot be dripped in forever).
//! - **Connection cap** (`server.max_connections`): at the cap, a new connection is accepted
//!   and closed at once, so the listen queue drains and the open connections keep being served;
//!   one warning per episode, `sekisho_connections_refused_total` per connection.
//! - **Accept errors** (the process out of descriptors: `EMFILE`/`ENFILE`): logged at most once
//!   a second, each followed by a 50 ms pause instead of a busy loop.
//! - **Listen queue** of 1024 instead of the standard library's 128, so a burst of connects is
//!   queued rather than dropped.
//!
//! Not bounded here: a client that stops reading a response it asked for (the connection is
//! busy while hyper waits to write). Bytes of a pipelined request that arrive while the
//! previous one is answered are timed from the end of that response, as an idle wait.
//!
//! Why not hyper's own `header_read_timeout`: in hyper 1.12 (`proto/h1/conn.rs`,
//! `poll_read_head`) its timer starts when the connection begins reading a head, which, on a
//! kept-alive connection, is right after the previous response (`State::idle` asks for the
//! next read at once). It therefore also bounds the idle wait for the next request: with it,
//! the idle timeout could never be longer than the header timeout. It is switched off here
//! (its default would be 30 s) and both bounds are kept by one per-connection watchdog
//! ([`Watch`]) that the connection's reads and requests move between phases, with one timer
//! reset at each change.

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::{Body as HttpBody, Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use sekisho_core::config::ServerConfig;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// The default connection cap when the open-file limit allows it.
pub const DEFAULT_MAX_CONNECTIONS: u64 = 10_000;
/// Descriptors the default cap leaves for everything but client connections: the listener,
/// the runtime, log output, SQLite files, Redis, the cache broadcast, files of the SPA being
/// served (plus `database.max_connections`).
const DESCRIPTOR_RESERVE: u64 = 256;
/// The pause after an accept error other than a failed handshake.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Accept errors are logged at most this often (the others are counted in the next line).
const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(1);
/// A cap episode's warning is logged at most this often, however the count flaps at the cap.
const CAP_WARN_EVERY: Duration = Duration::from_secs(10);

/// What each connection of this instance is allowed.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    /// The `server.` settings; an unset `max_connections` is derived from the open-file limit
    /// (`open_files`, as raised at start) by [`default_max_connections`].
    pub fn new(server: &ServerConfig, open_files: Option<u64>, database_pool: u64) -> Limits {
        let derived = open_files.map(|n| default_max_connections(n, database_pool));
        let max = match (server.max_connections, derived) {
            (Some(n), Some(fits)) if n > fits => {
                tracing::warn!(
                    max_connections = n,
                    open_files = open_files.unwrap_or_default(),
                    fits,
                    "server.max_connections leaves too few descriptors under the open-file \
                     limit; accepts may fail with \"Too many open files\""
                );
                n
            }
            (Some(n), _) => n,
            (None, Some(fits)) => fits,
            (None, None) => DEFAULT_MAX_CONNECTIONS,
        };
        Limits {
            header_read_timeout: server.header_read_timeout.0,
            body_read_timeout: server.body_read_timeout.0,
            idle_timeout: server.idle_timeout.0,
            max_connections: usize::try_from(max).unwrap_or(usize::MAX).max(1),
        }
    }
}

/// The default cap: [`DEFAULT_MAX_CONNECTIONS`], or fewer when the open-file limit is low —
/// the limit less [`DESCRIPTOR_RESERVE`] and the database pool, and never more than half the
/// limit is kept back.
pub fn default_max_connections(open_files: u64, database_pool: u64) -> u64 {
    let reserve = DESCRIPTOR_RESERVE.saturating_add(database_pool);
    let usable = open_files.saturating_sub(reserve).max(open_files / 2);
    usable.clamp(1, DEFAULT_MAX_CONNECTIONS)
}

/// Raises the soft open-file limit (`RLIMIT_NOFILE`) to the hard limit and returns the limit
/// in force, logged at info. `None` where the platform has no such limit or it cannot be read.
pub fn raise_open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let (before, hard) = match rlimit::Resource::NOFILE.get() {
            Ok(limits) => limits,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the open-file limit");
                return None;
            }
        };
        let now = if before < hard {
            match rlimit::increase_nofile_limit(hard) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, soft = before, hard, "cannot raise the open-file limit");
                    before
                }
            }
        } else {
            before
        };
        if now > before {
            tracing::info!(
                open_files = now,
                was = before,
                hard,
                "open-file limit raised from {before} to {now} (the hard limit)"
            );
        } else {
            tracing::info!(open_files = now, hard, "open-file limit {now}");
        }
        Some(now)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The listen queue: connections the kernel completes before the accept loop takes them. The
/// standard library's 128 overflows when a few hundred clients connect at once (a dropped SYN
/// costs its client a one-second retransmission); the kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 1024;

/// Binds `addr` as `TcpListener::bind` does (address reuse on Unix), with a longer listen queue.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, lets each
/// connection finish its request in flight and returns when all are closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Dropping `signal_tx` tells every connection to shut down gracefully; every connection
    // holds a `close_rx`, so `close_tx.closed()` is when the last one has ended.
    let (signal_tx, signal_rx) = watch::channel(());
    let (close_tx, close_rx) = watch::channel(());
    let mut cap = CapEpisodes::new(limits.max_connections);
    let mut errors = AcceptErrors::default();
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            // The client gave up during the handshake: nothing is wrong with the listener.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                errors.report(&e);
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    () = &mut shutdown => break,
                }
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            cap.refused();
            drop(stream);
            continue;
        };
        cap.accepted(limits.max_connections - slots.available_permits());
        tokio::spawn(connection(
            stream,
            peer,
            app.clone(),
            limits,
            Open::new(slot),
            signal_rx.clone(),
            close_rx.clone(),
        ));
    }
    drop(listener);
    drop(signal_rx);
    drop(signal_tx);
    drop(close_rx);
    close_tx.closed().await;
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Rate-limited logging of accept errors.
#[derive(Default)]
struct AcceptErrors {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    fn report(&mut self, e: &io::Error) {
        metrics::counter!("sekisho_accept_errors_total").increment(1);
        if self
            .last_logged
            .is_some_and(|t| t.elapsed() < ACCEPT_ERROR_LOG_EVERY)
        {
            self.unlogged += 1;
            return;
        }
        tracing::error!(
            error = %e,
            since_last_line = self.unlogged,
            "accept error: {e}; pausing accepts for {}ms (out of descriptors? see server.max_connections)",
            ACCEPT_BACKOFF.as_millis()
        );
        self.last_logged = Some(Instant::now());
        self.unlogged = 0;
    }
}

/// Logs the connection cap by episode, not by connection: a warning when connections start
/// being refused, an info line with the count once the open connections are back under 90 % of
/// the cap (so a count hovering at the cap is one episode).
struct CapEpisodes {
    cap: usize,
    in_episode: bool,
    announced: bool,
    refused: u64,
    last_warned: Option<Instant>,
}

impl CapEpisodes {
    fn new(cap: usize) -> Self {
        CapEpisodes {
            cap,
            in_episode: false,
            announced: false,
            refused: 0,
            last_warned: None,
        }
    }

    fn refused(&mut self) {
        metrics::counter!("sekisho_connections_refused_total").increment(1);
        self.refused += 1;
        if self.in_episode {
            return;
        }
        self.in_episode = true;
        self.announced = self
            .last_warned
            .is_none_or(|t| t.elapsed() >= CAP_WARN_EVERY);
        if self.announced {
            self.last_warned = Some(Instant::now());
            tracing::warn!(
                max_connections = self.cap,
                "connection cap reached: new connections are closed at once until some end \
                 (server.max_connections)"
            );
        }
    }

    fn accepted(&mut self, open: usize) {
        if self.in_episode && open <= self.cap - self.cap / 10 {
            if self.announced {
                tracing::info!(
                    refused = self.refused,
                    open,
                    "connections under the cap again"
                );
            }
            self.in_episode = false;
            self.refused = 0;
        }
    }
}

/// One open connection: its slot under the cap and its place in `sekisho_connections_open`.
struct Open {
    _slot: OwnedSemaphorePermit,
}

impl Open {
    fn new(slot: OwnedSemaphorePermit) -> Self {
        metrics::gauge!("sekisho_connections_open").increment(1.0);
        Open { _slot: slot }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        metrics::gauge!("sekisho_connections_open").decrement(1.0);
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    _open: Open,
    mut signal: watch::Receiver<()>,
    _close: watch::Receiver<()>,
) {
    let watch = Arc::new(Watch::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        watch: watch.clone(),
    });
    let service = {
        let watch = watch.clone();
        hyper::service::service_fn(move |req| {
            let in_flight = InFlight::begin(watch.clone());
            request(req, app.clone(), peer, limits.body_read_timeout, in_flight)
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .header_read_timeout(None)
        .serve_connection(io, service);
    let mut conn = pin!(conn);
    let mut expiry = pin!(watch.expiry(&limits));
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            kind = expiry.as_mut() => {
                metrics::counter!("sekisho_connection_timeouts_total", "kind" => kind.label())
                    .increment(1);
                tracing::debug!(%peer, kind = kind.label(), "connection timed out; closed");
                break;
            }
            _ = signal.changed(), if !shutting_down => {
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// One request: the body under its timeout, the peer address, the router; a body that stalled
/// turns the handler's answer into a 408 that closes the connection.
async fn request(
    req: Request<Incoming>,
    app: Router,
    peer: SocketAddr,
    body_timeout: Duration,
    in_flight: InFlight,
) -> Result<Response<Tracked>, Infallible> {
    let stalled = Arc::new(AtomicBool::new(false));
    let mut req = req.map(|body| {
        axum::body::Body::new(TimedBody {
            inner: body,
            limit: body_timeout,
            deadline: None,
            timer: None,
            stalled: stalled.clone(),
            done: false,
        })
    });
    req.extensions_mut().insert(ConnectInfo(peer));
    let res = match app.oneshot(req).await {
        Ok(res) => res,
        Err(never) => match never {},
    };
    let res = if stalled.load(Ordering::Relaxed) {
        tracing::debug!(%peer, "request body not received in time: 408");
        body_timed_out(res)
    } else {
        res
    };
    Ok(res.map(|body| Tracked {
        body,
        _in_flight: in_flight,
    }))
}

/// The handler's answer to a body it could not read (whatever error it made of it) becomes a
/// 408 that closes the connection; the pipeline's headers (request id, security headers) stay.
fn body_timed_out(res: Response<axum::body::Body>) -> Response<axum::body::Body> {
    let (mut parts, _) = res.into_parts();
    parts.status = StatusCode::REQUEST_TIMEOUT;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts
        .headers
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    Response::from_parts(
        parts,
        axum::body::Body::from(r#"{"detail":"The request body was not received in time."}"#),
    )
}

/// Why a connection was closed by its watchdog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expired {
    Header,
    Idle,
}

impl Expired {
    fn label(self) -> &'static str {
        match self {
            Expired::Header => "header",
            Expired::Idle => "idle",
        }
    }
}

/// Where a connection is between requests, which decides its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Accepted, no request yet: its head is due a header timeout after the accept.
    Fresh { since: Instant },
    /// Kept alive after a response, nothing received since: due an idle timeout after it.
    Idle { since: Instant },
    /// The first bytes of a new request have arrived: its head is due a header timeout after.
    Head { since: Instant },
    /// Requests being answered: no connection deadline (the body timeout bounds reading).
    Busy { requests: usize },
}

impl Phase {
    fn deadline(self, limits: &Limits) -> Option<(Instant, Expired)> {
        match self {
            Phase::Fresh { since } | Phase::Head { since } => {
                Some((since + limits.header_read_timeout, Expired::Header))
            }
            Phase::Idle { since } => Some((since + limits.idle_timeout, Expired::Idle)),
            Phase::Busy { .. } => None,
        }
    }
}

/// A connection's watchdog state, moved by its reads ([`Watched`]) and its requests
/// ([`InFlight`]).
struct Watch {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Watch {
    fn new() -> Self {
        Watch {
            phase: Mutex::new(Phase::Fresh {
                since: Instant::now(),
            }),
            changed: Notify::new(),
        }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes were read from the client.
    fn received(&self) {
        let mut phase = self.phase();
        if let Phase::Idle { .. } = *phase {
            *phase = Phase::Head {
                since: Instant::now(),
            };
            drop(phase);
            self.changed.notify_one();
        }
    }

    /// A request's head is complete and the request goes to the router. No wake-up: being
    /// busy only removes the deadline, and the watchdog re-reads the phase when its timer ends.
    fn begin(&self) {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Busy { requests } => Phase::Busy {
                requests: requests + 1,
            },
            _ => Phase::Busy { requests: 1 },
        };
    }

    /// A response has been sent (or its request abandoned).
    fn end(&self) {
        let mut phase = self.phase();
        if let Phase::Busy { requests } = *phase {
            *phase = if requests > 1 {
                Phase::Busy {
                    requests: requests - 1,
                }
            } else {
                Phase::Idle {
                    since: Instant::now(),
                }
            };
            drop(phase);
            self.changed.notify_one();
        }
    }

    /// Resolves when the connection's current deadline passes.
    async fn expiry(&self, limits: &Limits) -> Expired {
        let mut timer = pin!(tokio::time::sleep(limits.idle_timeout));
        loop {
            // Created before the phase is read: a change made in between leaves a permit.
            let changed = self.changed.notified();
            let deadline = self.phase().deadline(limits);
            match deadline {
                None => changed.await,
                Some((at, why)) => {
                    if at <= Instant::now() {
                        return why;
                    }
                    timer.as_mut().reset(at);
                    tokio::select! {
                        () = changed => {}
                        () = timer.as_mut() => {}
                    }
                }
            }
        }
    }
}

/// Marks a request as in flight from its head until its response body is dropped (sent, or the
/// connection gone).
struct InFlight(Arc<Watch>);

impl InFlight {
    fn begin(watch: Arc<Watch>) -> Self {
        watch.begin();
        InFlight(watch)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// The client's socket, reporting reads to the connection's [`Watch`].
struct Watched {
    inner: TcpStream,
    watch: Arc<Watch>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.watch.received();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The error a stalled body ends with (the handler sees a failed read; the client a 408).
#[derive(Debug)]
struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body not received within server.body_read_timeout")
    }
}

impl std::error::Error for BodyTimeout {}

/// A request body that must be complete within `limit` of its first read. The timer is only
/// set up when a read has to wait, so bodies already received cost no timer.
struct TimedBody {
    inner: Incoming,
    limit: Duration,
    deadline: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
    stalled: Arc<AtomicBool>,
    done: bool,
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let deadline = *this
            .deadline
            .get_or_insert_with(|| Instant::now() + this.limit);
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.done = true;
        this.stalled.store(true, Ordering::Relaxed);
        metrics::counter!("sekisho_connection_timeouts_total", "kind" => "body").increment(1);
        Poll::Ready(Some(Err(Box::new(BodyTimeout))))
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request [`InFlight`] until it is dropped.
struct Tracked {
    body: axum::body::Body,
    _in_flight: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_leaves_descriptors_for_the_rest() {
        assert_eq!(
            default_max_connections(1_048_576, 8),
            DEFAULT_MAX_CONNECTIONS
        );
        assert_eq!(default_max_connections(20_000, 8), DEFAULT_MAX_CONNECTIONS);
        assert_eq!(default_max_connections(4096, 8), 4096 - 264);
        assert_eq!(default_max_connections(1024, 8), 1024 - 264);
        // A low limit keeps at most half back.
        assert_eq!(default_max_connections(256, 8), 128);
        assert_eq!(default_max_connections(1, 8), 1);
        assert_eq!(default_max_connections(0, 8), 1);
    }

    #[test]
    fn deadlines_follow_the_phase() {
        let limits = Limits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1,
        };
        let t = Instant::now();
        let at = |s| t + Duration::from_secs(s);
        assert_eq!(
            Phase::Fresh { since: t }.deadline(&limits),
            Some((at(10), Expired::Header))
        );
        assert_eq!(
            Phase::Idle { since: t }.deadline(&limits),
            Some((at(60), Expired::Idle))
        );
        assert_eq!(
            Phase::Head { since: t }.deadline(&limits),
            Some((at(10), Expired::Header))
        );
        assert_eq!(Phase::Busy { requests: 1 }.deadline(&limits), None);
    }

    #[test]
    fn reads_and_requests_move_the_phase() {
        let w = Watch::new();
        assert!(matches!(*w.phase(), Phase::Fresh { .. }));
        // Bytes of the first request do not restart the accept's header deadline.
        w.received();
        assert!(matches!(*w.phase(), Phase::Fresh { .. }));
        w.begin();
        w.received();
        assert_eq!(*w.phase(), Phase::Busy { requests: 1 });
        w.end();
        assert!(matches!(*w.phase(), Phase::Idle { .. }));
        w.received();
        assert!(matches!(*w.phase(), Phase::Head { .. }));
        w.begin();
        w.begin();
        w.end();
        assert_eq!(*w.phase(), Phase::Busy { requests: 1 });
    }

    #[test]
    fn the_cap_is_one_episode_until_well_under_it() {
        let mut c = CapEpisodes::new(50);
        c.refused();
        assert!(c.in_episode && c.announced);
        c.accepted(50);
        c.refused();
        c.accepted(46);
        assert!(c.in_episode, "hovering at the cap is the same episode");
        assert!(c.announced, "the episode's warning stands for all of it");
        assert_eq!(c.refused, 2);
        c.accepted(45);
        assert!(!c.in_episode);
        // A new episode within the warning interval is counted but not announced.
        c.refused();
        assert!(c.in_episode && !c.announced);
    }
}
