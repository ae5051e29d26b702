//! Time, injectable: expiry decisions read a [`Clock`], so tests move time instead of sleeping.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The client's source of wall-clock time, compared with the tokens' `exp` (after correcting
/// for the estimated skew between this machine and the server).
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;
}

/// The system clock (the default).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one place the client reads the system clock; everything else asks its `Clock`.
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<Mutex<SystemTime>>);

impl ManualClock {
    pub fn new(start: SystemTime) -> ManualClock {
        ManualClock(Arc::new(Mutex::new(start)))
    }

    /// Starts at the system clock's current time.
    pub fn starting_now() -> ManualClock {
        ManualClock::new(SystemClock.now())
    }

    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }

    pub fn set(&self, to: SystemTime) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Milliseconds since the Unix epoch (negative before it).
pub(crate) fn unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_clones_share_time() {
        let c = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(10));
        let d = c.clone();
        d.advance(Duration::from_millis(1500));
        assert_eq!(unix_ms(c.now()), 11_500);
        c.set(SystemTime::UNIX_EPOCH - Duration::from_secs(1));
        assert_eq!(unix_ms(d.now()), -1000);
    }
}
