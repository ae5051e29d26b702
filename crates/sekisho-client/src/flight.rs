//! Single flight: at most one operation in progress; everyone who asks while it runs joins it
//! and gets its result.
//!
//! The operation runs as its own task, so it finishes — and its effects (storing a rotated
//! refresh token) happen — even when every caller waiting for it has given up or been
//! cancelled. Waiting is bounded; a panic in the operation reaches every waiter as an error and
//! does not wedge the slot.

use crate::Error;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Flight<T> = Shared<BoxFuture<'static, Result<T, Error>>>;

pub(crate) struct SingleFlight<T: Clone + Send + Sync + 'static> {
    slot: Arc<Mutex<Slot<T>>>,
}

struct Slot<T: Clone + Send + Sync + 'static> {
    current: Option<(u64, Flight<T>)>,
    next_id: u64,
}

/// Clears the slot when the operation's task ends, however it ends (value, error or panic),
/// before its result is published, so a caller woken by the result never joins the finished
/// flight again.
struct ClearOnDrop<T: Clone + Send + Sync + 'static> {
    slot: Arc<Mutex<Slot<T>>>,
    id: u64,
}

impl<T: Clone + Send + Sync + 'static> Drop for ClearOnDrop<T> {
    fn drop(&mut self) {
        let mut s = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if s.current.as_ref().is_some_and(|(id, _)| *id == self.id) {
            s.current = None;
        }
    }
}

impl<T: Clone + Send + Sync + 'static> SingleFlight<T> {
    pub(crate) fn new() -> Self {
        SingleFlight {
            slot: Arc::new(Mutex::new(Slot {
                current: None,
                next_id: 0,
            })),
        }
    }

    /// Joins the operation in progress, or starts `start()` as a new one. Must be called inside
    /// a Tokio runtime.
    pub(crate) fn join_or_start<F>(&self, start: impl FnOnce() -> F) -> Flight<T>
    where
        F: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let mut s = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, f)) = &s.current {
            return f.clone();
        }
        let id = s.next_id;
        s.next_id += 1;
        let guard = ClearOnDrop {
            slot: self.slot.clone(),
            id,
        };
        let op = start();
        // The slot's lock is held until the flight is in it, so the task cannot clear the slot
        // before it is set.
        let task = tokio::spawn(async move {
            let _guard = guard;
            op.await
        });
        let flight = async move {
            match task.await {
                Ok(r) => r,
                Err(e) => Err(Error::Protocol(format!("the refresh task failed: {e}"))),
            }
        }
        .boxed()
        .shared();
        s.current = Some((id, flight.clone()));
        flight
    }

    /// Whether an operation is in progress.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> bool {
        self.slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .current
            .is_some()
    }
}

/// Waits for `flight`, at most `bound`.
pub(crate) async fn wait<T: Clone>(
    flight: Shared<BoxFuture<'static, Result<T, Error>>>,
    bound: Duration,
) -> Result<T, Error> {
    match tokio::time::timeout(bound, flight).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout(bound)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::Notify;

    const BOUND: Duration = Duration::from_secs(5);

    /// An operation that counts its starts and finishes only when `gate` is notified.
    fn gated(
        starts: &Arc<AtomicUsize>,
        gate: &Arc<Notify>,
        result: Result<u32, Error>,
    ) -> impl FnOnce() -> BoxFuture<'static, Result<u32, Error>> {
        let starts = starts.clone();
        let gate = gate.clone();
        move || {
            starts.fetch_add(1, Ordering::SeqCst);
            async move {
                gate.notified().await;
                result
            }
            .boxed()
        }
    }

    async fn hundred_waiters(
        f: &Arc<SingleFlight<u32>>,
        starts: &Arc<AtomicUsize>,
        gate: &Arc<Notify>,
        result: Result<u32, Error>,
    ) -> Vec<Result<u32, Error>> {
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let flight = f.join_or_start(gated(starts, gate, result.clone()));
            tasks.push(tokio::spawn(wait(flight, BOUND)));
        }
        tokio::task::yield_now().await;
        assert!(f.in_flight());
        gate.notify_one();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_hundred_callers_share_one_operation_and_its_value() {
        let f = Arc::new(SingleFlight::new());
        let starts = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Notify::new());
        let results = hundred_waiters(&f, &starts, &gate, Ok(7)).await;
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        assert!(results.iter().all(|r| matches!(r, Ok(7))), "{results:?}");
        assert!(!f.in_flight());
        // The next call starts a new operation.
        let results = hundred_waiters(&f, &starts, &gate, Ok(8)).await;
        assert_eq!(starts.load(Ordering::SeqCst), 2);
        assert!(results.iter().all(|r| matches!(r, Ok(8))));
    }

    #[tokio::test]
    async fn on_failure_every_caller_gets_the_one_error() {
        let f = Arc::new(SingleFlight::new());
        let starts = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Notify::new());
        let ended = Error::SessionEnded {
            status: 401,
            body: serde_json::json!({"detail": "Token is blacklisted"}),
        };
        let results = hundred_waiters(&f, &starts, &gate, Err(ended)).await;
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        assert_eq!(results.len(), 100);
        for r in &results {
            match r {
                Err(Error::SessionEnded { status: 401, body }) => {
                    assert_eq!(body["detail"], "Token is blacklisted")
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(!f.in_flight());
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_operation_releases_every_waiter_at_the_bound() {
        let f = Arc::new(SingleFlight::<u32>::new());
        let started = tokio::time::Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let flight = f.join_or_start(|| futures::future::pending().boxed());
            tasks.push(tokio::spawn(wait(flight, BOUND)));
        }
        for t in tasks {
            assert!(matches!(t.await.unwrap(), Err(Error::Timeout(b)) if b == BOUND));
        }
        // Paused time: the waiters were released exactly at the bound, not later.
        assert_eq!(started.elapsed(), BOUND);
    }

    #[tokio::test]
    async fn the_operation_finishes_when_every_waiter_has_gone() {
        let f = SingleFlight::<u32>::new();
        let done = Arc::new(Notify::new());
        let gate = Arc::new(Notify::new());
        let (d, g) = (done.clone(), gate.clone());
        let flight = f.join_or_start(move || async move {
            g.notified().await;
            d.notify_one();
            Ok(1)
        });
        // The only waiter gives up at once.
        assert!(matches!(
            wait(flight, Duration::ZERO).await,
            Err(Error::Timeout(_))
        ));
        gate.notify_one();
        tokio::time::timeout(BOUND, done.notified())
            .await
            .expect("the operation ran to the end");
    }

    #[tokio::test]
    async fn a_panic_reaches_every_waiter_and_frees_the_slot() {
        let f = SingleFlight::<u32>::new();
        let a = f.join_or_start(|| async { panic!("boom") });
        let b = f.join_or_start(|| async { Ok(2) });
        assert!(matches!(wait(a, BOUND).await, Err(Error::Protocol(_))));
        assert!(matches!(wait(b, BOUND).await, Err(Error::Protocol(_))));
        assert!(!f.in_flight());
        assert!(matches!(
            wait(f.join_or_start(|| async { Ok(3) }), BOUND).await,
            Ok(3)
        ));
    }
}
