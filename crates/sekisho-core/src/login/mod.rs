//! The first factor: a username and password, checked against the stored hash with brute-force
//! throttling in front (DESIGN §6). Both ways of logging in (session and token) check it with
//! [`Auth::first_factor`] and then pass the second-factor gate ([`crate::mfa`]).

mod django_hashers;
pub mod password;
pub mod throttle;

use crate::account::User;
use crate::auth::Auth;
use crate::error::AuthError;
use password::Verification;

/// Whether a login name could be stored at all: no NUL, no other control character (the
/// account rules allow neither). Anything else is looked up.
fn plausible_username(name: &str) -> bool {
    !name.is_empty() && name.len() <= 1024 && !name.chars().any(char::is_control)
}

impl Auth {
    /// Checks a username and password. Unknown users and inactive users cost one full hash
    /// check too, and all failures look the same to the caller. Locked-out accounts and
    /// addresses are refused before any hashing.
    pub async fn check_password(
        &self,
        username: &str,
        password: &str,
        client_ip: &str,
    ) -> Result<User, AuthError> {
        let user = self.first_factor(username, password, client_ip).await?;
        self.throttle
            .record_success(&crate::account::rules::normalize_username(username));
        Ok(user)
    }

    /// [`Auth::check_password`] without resetting the account's failure count on success:
    /// a login that still owes a second factor has not succeeded yet, and resetting here would
    /// let whoever knows the password guess codes without limit.
    pub(crate) async fn first_factor(
        &self,
        username: &str,
        password: &str,
        client_ip: &str,
    ) -> Result<User, AuthError> {
        // One normalisation for the lookup and the throttle (NFKC, case kept: Django's rule).
        let username = &crate::account::rules::normalize_username(username);
        if let Err(wait) = self.throttle.check(username, client_ip) {
            metrics::counter!("sekisho_logins_total", "result" => "throttled").increment(1);
            return Err(AuthError::Throttled(wait));
        }
        let result = self.check_password_unthrottled(username, password).await;
        match &result {
            Ok(_) => {
                metrics::counter!("sekisho_logins_total", "result" => "success").increment(1);
            }
            Err(AuthError::InvalidCredentials) => {
                self.throttle.record_failure(username, client_ip);
                metrics::counter!("sekisho_logins_total", "result" => "failure").increment(1);
            }
            Err(_) => {}
        }
        result
    }

    async fn check_password_unthrottled(
        &self,
        username: &str,
        password: &str,
    ) -> Result<User, AuthError> {
        // A username no store can hold (a NUL byte, say) names nobody: the same hash cost and
        // the same answer as an unknown user, never a storage error.
        // Only the credentials before the hash check: a known user costs the same lookup as
        // an unknown one; the groups and permissions are read once the password matched.
        let stored = if plausible_username(username) {
            self.users.credentials(username).await?
        } else {
            None
        };
        let hash = stored.as_ref().map(|s| s.password_hash.as_str());
        let verdict = self.passwords.verify(password, hash).await;
        let (Some(stored), Verification::Match { upgrade }) = (stored, verdict) else {
            return Err(AuthError::InvalidCredentials);
        };
        if !stored.is_active {
            return Err(AuthError::InvalidCredentials);
        }
        // Held during a dual-run with Django (see `import::dualrun`).
        if upgrade && !self.holds_rehash().await {
            // Re-hash with current parameters now that the plain password is at hand; a failure
            // here must not fail the login.
            match self.passwords.hash(password).await {
                Ok(h) => {
                    if let Err(e) = self.users.set_password_hash(stored.id, &h).await {
                        tracing::warn!(user_id = stored.id, error = %e, "password hash upgrade not saved");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "password hash upgrade failed"),
            }
        }
        self.users.record_login(stored.id, self.now()).await?;
        match self.users.user_by_id(stored.id).await? {
            Some(user) if user.is_active => Ok((*user).clone()),
            _ => Err(AuthError::InvalidCredentials),
        }
    }
}
