//! Time is injected so that lifetimes, grace windows and timeouts are tested without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Milliseconds since the Unix epoch. JWT claims use whole seconds; grace windows need finer
/// resolution than that, so the domain keeps milliseconds and converts at the token edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(1000))
    }
    pub fn millis(self) -> i64 {
        self.0
    }
    /// Whole seconds, rounded down (what `iat`/`exp` carry).
    pub fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }
    /// `YYYY-MM-DDTHH:MM:SSZ` (whole seconds, rounded down), for logs and the CLI. Clamped to
    /// 1970–9999, the range the format can write.
    pub fn rfc3339(self) -> String {
        const LAST: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
        let secs = self.secs().clamp(0, LAST) as u64;
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        humantime::format_rfc3339_seconds(t).to_string()
    }
    pub fn plus(self, d: std::time::Duration) -> Self {
        Timestamp(
            self.0
                .saturating_add(d.as_millis().min(i64::MAX as u128) as i64),
        )
    }
}

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The real clock; the only place the crate reads the system time.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_millis() as i64)
    }
}

/// A clock tests move by hand.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn at(t: Timestamp) -> Self {
        ManualClock(Arc::new(AtomicI64::new(t.0)))
    }
    pub fn advance(&self, d: std::time::Duration) {
        self.0.fetch_add(d.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::Timestamp;

    #[test]
    fn rfc3339_writes_civil_dates_and_clamps_what_it_cannot_write() {
        assert_eq!(Timestamp(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp(951_782_400_000).rfc3339(), "2000-02-29T00:00:00Z");
        assert_eq!(
            Timestamp(1_767_225_599_999).rfc3339(),
            "2025-12-31T23:59:59Z"
        );
        assert_eq!(Timestamp(-5).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp(i64::MAX).rfc3339(), "9999-12-31T23:59:59Z");
    }
}
