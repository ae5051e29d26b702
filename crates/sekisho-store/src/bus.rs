//! Cache invalidation across processes sharing one PostgreSQL database, over LISTEN/NOTIFY.
//!
//! Every process (server instance or CLI) holds one dedicated connection that listens on
//! [`CHANNEL`] and [`ACK_CHANNEL`] and holds the advisory lock `(LOCK_CLASS, instance)`: the
//! lock is how a publisher knows which processes are live, and it goes away with the
//! connection. A change is published as `"<event> <origin> <what>"`; each other process drops
//! it from its caches and then acknowledges `"<event> <instance>"`. The publisher waits until
//! every process that was live when it published has acknowledged, or has gone (its lock
//! released), for at most [`ACK_WAIT`]; so when an admin call returns, the next request on any
//! instance sees the change. A process whose listening connection is down serves nothing from
//! its caches (it could be missing changes) and empties them when it reconnects.
//!
//! Past the bound (an instance stalled but connected), the change is still seen within
//! `cache.ttl` on the slow instance: the cache's own expiry stays as the backstop.

use crate::cache::{Caches, Stale};
use sekisho_core::account::UserId;
use sqlx::postgres::{PgListener, PgNotification};
use sqlx::{PgPool, Row};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::oneshot;

pub const CHANNEL: &str = "sekisho_cache_invalidate";
pub const ACK_CHANNEL: &str = "sekisho_cache_ack";
/// The first key of every instance's advisory lock (the second is the instance number).
const LOCK_CLASS: i64 = 0x5e_615e;
/// How long a publisher waits for the other processes' acknowledgements.
pub const ACK_WAIT: Duration = Duration::from_secs(1);
/// How often a waiting publisher re-reads which processes are live (one that died stops
/// being waited for).
const LIVENESS_POLL: Duration = Duration::from_millis(100);
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

const LIVE_SQL: &str = "SELECT objid::int8 AS instance FROM pg_locks \
     WHERE locktype = 'advisory' AND classid::int8 = $1 AND objsubid = 2 AND granted \
     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

struct Pending {
    waiting: HashSet<i64>,
    done: Option<oneshot::Sender<()>>,
}

struct Shared {
    /// The main pool: liveness queries and NOTIFY.
    pool: PgPool,
    /// This process's instance number while its listener is connected, else 0.
    instance: Mutex<i64>,
    pending: Mutex<HashMap<u64, Pending>>,
}

impl Shared {
    fn instance(&self) -> i64 {
        *self.instance.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn acked(&self, event: u64, from: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = pending.get_mut(&event) {
            p.waiting.remove(&from);
            if p.waiting.is_empty()
                && let Some(done) = p.done.take()
            {
                let _ = done.send(());
            }
        }
    }

    async fn live(&self) -> Result<HashSet<i64>, sqlx::Error> {
        let rows = sqlx::query(LIVE_SQL)
            .bind(LOCK_CLASS)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| r.get::<i64, _>("instance")).collect())
    }
}

/// The publishing half, owned by [`Caches`]; dropping it stops the listener.
pub struct Bus {
    shared: Arc<Shared>,
    _stop: oneshot::Sender<()>,
}

impl Bus {
    /// Connects the listener (on a pool of its own, `listen_pool`, one connection), then keeps
    /// it connected in the background, applying other processes' changes to `caches`.
    pub async fn start(
        pool: PgPool,
        listen_pool: PgPool,
        caches: &Arc<Caches>,
    ) -> Result<(), sqlx::Error> {
        let shared = Arc::new(Shared {
            pool,
            instance: Mutex::new(0),
            pending: Mutex::new(HashMap::new()),
        });
        let first = connect(&listen_pool, &shared).await?;
        let (stop_tx, stop_rx) = oneshot::channel();
        caches.attach(Bus {
            shared: shared.clone(),
            _stop: stop_tx,
        });
        tokio::spawn(run(
            listen_pool,
            shared,
            Arc::downgrade(caches),
            first,
            stop_rx,
        ));
        Ok(())
    }

    /// Publishes a change and waits (at most [`ACK_WAIT`]) until every other live process has
    /// dropped it. Never fails the caller: the change is committed already, and a process the
    /// broadcast misses still sees it within `cache.ttl`.
    pub async fn publish(&self, stale: &Stale) {
        let me = self.shared.instance();
        let event = u64::from_le_bytes(sekisho_core::random::bytes::<8>());
        let mut live = match self.shared.live().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cache invalidation not broadcast: PostgreSQL unreachable");
                return;
            }
        };
        live.remove(&me);
        let (done_tx, mut done_rx) = oneshot::channel();
        if !live.is_empty() {
            self.shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    event,
                    Pending {
                        waiting: live.clone(),
                        done: Some(done_tx),
                    },
                );
        }
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("{event} {me} {}", encode(stale)))
            .execute(&self.shared.pool)
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "cache invalidation not broadcast");
        } else if !live.is_empty() {
            let deadline = tokio::time::Instant::now() + ACK_WAIT;
            loop {
                let step = (tokio::time::Instant::now() + LIVENESS_POLL).min(deadline);
                match tokio::time::timeout_at(step, &mut done_rx).await {
                    Ok(_) => break,
                    Err(_) if tokio::time::Instant::now() >= deadline => {
                        let missing = self.waiting(event);
                        tracing::warn!(
                            instances = missing,
                            "cache invalidation not acknowledged within 1s; those instances see it within cache.ttl"
                        );
                        metrics::counter!("sekisho_cache_broadcast_timeouts_total").increment(1);
                        break;
                    }
                    Err(_) => {
                        // Stop waiting for processes that have gone meanwhile.
                        if let Ok(now_live) = self.shared.live().await {
                            let mut pending = self
                                .shared
                                .pending
                                .lock()
                                .unwrap_or_else(|e| e.into_inner());
                            if let Some(p) = pending.get_mut(&event) {
                                p.waiting.retain(|i| now_live.contains(i));
                                if p.waiting.is_empty() {
                                    break;
                                }
                            }
                        }
                    }
                }
            }
        }
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&event);
        metrics::counter!("sekisho_cache_broadcasts_total").increment(1);
    }

    fn waiting(&self, event: u64) -> usize {
        let pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        pending.get(&event).map_or(0, |p| p.waiting.len())
    }
}

/// A listening connection holding this process's liveness lock.
async fn connect(listen_pool: &PgPool, shared: &Shared) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(listen_pool).await?;
    // A lost connection is reported (Ok(None)), not silently replaced: the lock went with it.
    listener.eager_reconnect(false);
    listener.listen_all([CHANNEL, ACK_CHANNEL]).await?;
    loop {
        // A random instance number; another process holding the same one is refused the lock.
        let n = i64::from(u32::from_le_bytes(sekisho_core::random::bytes::<4>()) >> 1).max(1);
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1::int4, $2::int4)")
            .bind(LOCK_CLASS as i32)
            .bind(n as i32)
            .fetch_one(&mut listener)
            .await?;
        if locked {
            *shared.instance.lock().unwrap_or_else(|e| e.into_inner()) = n;
            return Ok(listener);
        }
    }
}

async fn run(
    listen_pool: PgPool,
    shared: Arc<Shared>,
    caches: Weak<Caches>,
    first: PgListener,
    mut stop: oneshot::Receiver<()>,
) {
    let mut listener = Some(first);
    loop {
        let Some(l) = listener.as_mut() else {
            // Disconnected: serve nothing cached until listening again (changes may be missed).
            match caches.upgrade() {
                Some(c) => c.set_serving(false),
                None => return,
            }
            tokio::select! {
                _ = &mut stop => return,
                r = connect(&listen_pool, &shared) => match r {
                    Ok(l) => {
                        tracing::info!("cache invalidation listener reconnected");
                        listener = Some(l);
                        match caches.upgrade() {
                            Some(c) => {
                                c.apply(&Stale::Everything);
                                c.set_serving(true);
                            }
                            None => return,
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "cache invalidation listener: reconnect failed");
                        tokio::select! {
                            _ = &mut stop => return,
                            _ = tokio::time::sleep(RECONNECT_DELAY) => {}
                        }
                    }
                },
            }
            continue;
        };
        let received = tokio::select! {
            _ = &mut stop => return,
            r = l.try_recv() => r,
        };
        match received {
            Ok(Some(n)) => {
                let Some(c) = caches.upgrade() else { return };
                if let Err(e) = handle(l, &shared, &c, &n).await {
                    tracing::warn!(error = %e, "cache invalidation listener lost its connection");
                    listener = None;
                }
            }
            Ok(None) | Err(_) => {
                tracing::warn!("cache invalidation listener lost its connection; reconnecting");
                *shared.instance.lock().unwrap_or_else(|e| e.into_inner()) = 0;
                listener = None;
            }
        }
    }
}

async fn handle(
    listener: &mut PgListener,
    shared: &Shared,
    caches: &Caches,
    n: &PgNotification,
) -> Result<(), sqlx::Error> {
    let mut parts = n.payload().splitn(3, ' ');
    let event = parts.next().and_then(|e| e.parse::<u64>().ok());
    let from = parts.next().and_then(|o| o.parse::<i64>().ok());
    let (Some(event), Some(from)) = (event, from) else {
        tracing::debug!(
            payload = n.payload(),
            "ignoring a malformed cache notification"
        );
        return Ok(());
    };
    if n.channel() == ACK_CHANNEL {
        shared.acked(event, from);
        return Ok(());
    }
    let me = shared.instance();
    if from == me {
        return Ok(());
    }
    // Something this version does not know (a newer instance) drops everything: safe.
    let stale = decode(parts.next().unwrap_or("")).unwrap_or(Stale::Everything);
    caches.apply(&stale);
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(ACK_CHANNEL)
        .bind(format!("{event} {me}"))
        .execute(&mut *listener)
        .await?;
    Ok(())
}

fn encode(stale: &Stale) -> String {
    match stale {
        Stale::User(u) => format!("user {u}"),
        Stale::AllUsers => "users".into(),
        Stale::Session(h) => format!("session {h}"),
        Stale::Family(id) => format!("family {id}"),
        Stale::Keys => "keys".into(),
        Stale::Everything => "all".into(),
    }
}

fn decode(s: &str) -> Option<Stale> {
    let (kind, arg) = s.split_once(' ').unwrap_or((s, ""));
    Some(match kind {
        "user" => Stale::User(arg.parse::<UserId>().ok()?),
        "users" => Stale::AllUsers,
        "session" if !arg.is_empty() => Stale::Session(arg.to_string()),
        "family" if !arg.is_empty() => Stale::Family(arg.to_string()),
        "keys" => Stale::Keys,
        "all" => Stale::Everything,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_survives_the_payload_round_trip() {
        for s in [
            Stale::User(42),
            Stale::AllUsers,
            Stale::Session("ab12".into()),
            Stale::Family("f-1".into()),
            Stale::Keys,
            Stale::Everything,
        ] {
            assert_eq!(decode(&encode(&s)), Some(s));
        }
        assert_eq!(decode("user x"), None);
        assert_eq!(decode("session"), None);
        assert_eq!(decode("later-kind 1"), None);
    }
}
