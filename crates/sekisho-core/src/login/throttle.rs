//! Brute-force protection (DESIGN §6): failed logins are counted per account and per client
//! address; past a limit within the window, further attempts are refused for the lockout period
//! *before* any password is hashed, so a flood costs the server almost nothing.
//!
//! Counts are kept per instance (N instances allow up to N times the limit); a success resets
//! the account's count.

use crate::clock::{Clock, Timestamp};
use crate::config::ThrottleConfig;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MAX_ENTRIES: usize = 100_000;

#[derive(Clone, Debug)]
struct Entry {
    failures: u32,
    window_start: Timestamp,
    locked_until: Option<Timestamp>,
}

pub struct LoginThrottle {
    per_account: u32,
    per_ip: u32,
    window: Duration,
    lockout: Duration,
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<String, Entry>>,
}

/// The account's key: the username as the login normalised it (NFKC, case kept), the same
/// rule the account lookup uses, so `Alice` and `alice` (two accounts) are throttled apart.
fn account_key(username: &str) -> String {
    format!("u:{username}")
}

fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

impl LoginThrottle {
    pub fn new(c: &ThrottleConfig, clock: Arc<dyn Clock>) -> Self {
        LoginThrottle {
            per_account: c.max_failures_per_account as u32,
            per_ip: c.max_failures_per_ip as u32,
            window: c.window.0,
            lockout: c.lockout.0,
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn keys(&self, username: &str, ip: &str) -> Vec<(String, u32)> {
        let mut keys = Vec::with_capacity(2);
        if self.per_account > 0 {
            keys.push((account_key(username), self.per_account));
        }
        if self.per_ip > 0 && !ip.is_empty() {
            keys.push((ip_key(ip), self.per_ip));
        }
        keys
    }

    /// `Err(wait)` while the account or the address is locked out.
    pub fn check(&self, username: &str, ip: &str) -> Result<(), Duration> {
        let now = self.clock.now();
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = Duration::ZERO;
        for (k, _) in self.keys(username, ip) {
            if let Some(until) = map.get(&k).and_then(|e| e.locked_until)
                && until > now
            {
                wait = wait.max(Duration::from_millis(
                    (until.millis() - now.millis()) as u64,
                ));
            }
        }
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    pub fn record_failure(&self, username: &str, ip: &str) {
        let now = self.clock.now();
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ENTRIES {
            let (window, lockout) = (self.window, self.lockout);
            map.retain(|_, e| {
                now < e.window_start.plus(window)
                    || e.locked_until.is_some_and(|u| u.plus(lockout) > now)
            });
        }
        // Logs say that a lockout happened, never for which username.
        for (k, limit) in self.keys(username, ip) {
            let e = map.entry(k).or_insert(Entry {
                failures: 0,
                window_start: now,
                locked_until: None,
            });
            if now >= e.window_start.plus(self.window) {
                *e = Entry {
                    failures: 0,
                    window_start: now,
                    locked_until: None,
                };
            }
            e.failures += 1;
            if e.failures >= limit {
                e.locked_until = Some(now.plus(self.lockout));
                e.failures = 0;
                e.window_start = now;
                tracing::warn!(limit, "login attempts locked out for an account or address");
            }
        }
    }

    pub fn record_success(&self, username: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&account_key(username));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::config::Dur;

    fn throttle(clock: &ManualClock) -> LoginThrottle {
        LoginThrottle::new(
            &ThrottleConfig {
                max_failures_per_account: 3,
                max_failures_per_ip: 5,
                window: Dur::secs(60),
                lockout: Dur::secs(30),
            },
            Arc::new(clock.clone()),
        )
    }

    #[test]
    fn locks_an_account_after_the_limit_then_releases_it() {
        let clock = ManualClock::at(Timestamp::from_secs(1_000));
        let t = throttle(&clock);
        for _ in 0..2 {
            t.record_failure("alice", "10.0.0.1");
        }
        assert!(t.check("alice", "10.0.0.2").is_ok());
        t.record_failure("alice", "10.0.0.3");
        assert_eq!(t.check("alice", "10.0.0.9"), Err(Duration::from_secs(30)));
        assert!(
            t.check("bob", "10.0.0.9").is_ok(),
            "other accounts are unaffected"
        );
        // Usernames are case-sensitive (Django's rule): `Alice` is another account, and the
        // failures against `alice` do not lock it.
        assert!(t.check("Alice", "10.0.0.9").is_ok());
        clock.advance(Duration::from_secs(30));
        assert!(t.check("alice", "10.0.0.9").is_ok());
    }

    #[test]
    fn locks_an_address_spraying_many_accounts() {
        let clock = ManualClock::at(Timestamp::from_secs(1_000));
        let t = throttle(&clock);
        for i in 0..5 {
            t.record_failure(&format!("user{i}"), "10.0.0.7");
        }
        assert!(t.check("someone-else", "10.0.0.7").is_err());
        assert!(t.check("someone-else", "10.0.0.8").is_ok());
    }

    #[test]
    fn failures_outside_the_window_and_successes_reset_the_count() {
        let clock = ManualClock::at(Timestamp::from_secs(1_000));
        let t = throttle(&clock);
        t.record_failure("carol", "");
        t.record_failure("carol", "");
        clock.advance(Duration::from_secs(61));
        t.record_failure("carol", "");
        assert!(t.check("carol", "").is_ok());
        t.record_failure("carol", "");
        t.record_success("carol");
        t.record_failure("carol", "");
        assert!(t.check("carol", "").is_ok());
    }
}
