//! Server-side sessions (DESIGN §3.3) and the CSRF tokens bound to them. Follow one request:
//! the cookie value is checked for shape, hashed, looked up, checked against both deadlines and
//! the user's state, and its idle deadline slid at most once per renewal interval.

pub mod csrf;
mod record;

pub use csrf::{ANONYMOUS, CsrfFailure, CsrfKey};
pub use record::{Device, SessionRecord, hash_session_id, new_session_id, plausible_session_id};

use crate::account::User;
use crate::auth::Auth;
use crate::clock::Timestamp;
use crate::error::AuthError;
use crate::mfa::{Factor, Flow, LoginMethod};
use crate::random;
use std::sync::Arc;
use std::time::Duration;

/// A session just created by a login.
#[derive(Clone, Debug)]
pub struct NewSession {
    /// The cookie value. Returned once, never stored.
    pub cookie: String,
    /// The cookie's lifetime: `sessions.cookie_age`, never past the absolute timeout.
    pub cookie_max_age: Duration,
    pub record: SessionRecord,
    pub user: User,
    /// A CSRF token bound to the new session (the pre-login one is bound to "anonymous").
    pub csrf_token: String,
}

/// A request's live session.
#[derive(Clone, Debug)]
pub struct ActiveSession {
    pub user: Arc<User>,
    pub record: SessionRecord,
    /// True when this request slid the idle deadline (the cookie may be re-sent).
    pub renewed: bool,
}

impl ActiveSession {
    /// What this session's CSRF tokens are bound to.
    pub fn csrf_binding(&self) -> &str {
        &self.record.id_hash
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

impl Auth {
    /// `POST /api/auth/login/`: checks the password and creates a brand-new session. A session
    /// the request already carried is deleted, and its id is never adopted (fixation-safe).
    /// A user with a second factor gets [`AuthError::MfaRequired`] instead (no session yet).
    pub async fn login_session(
        &self,
        username: &str,
        password: &str,
        device: Device,
        previous_cookie: Option<&str>,
    ) -> Result<NewSession, AuthError> {
        let user = self.first_factor(username, password, &device.ip).await?;
        self.second_factor_gate(&user, Flow::Session).await?;
        let login = LoginMethod::password(self.now());
        self.start_session(user, device, previous_cookie, login)
            .await
    }

    /// `POST /api/auth/login/mfa/`: the second step of a session login. The session is created
    /// only now, exactly as the first step would have, marked as authenticated with a second
    /// factor. The second element holds the recovery codes of an enrolment it confirmed.
    pub async fn login_session_second_factor(
        &self,
        challenge: &str,
        factor: Factor<'_>,
        device: Device,
        previous_cookie: Option<&str>,
    ) -> Result<(NewSession, Option<Vec<String>>), AuthError> {
        let passed = self
            .pass_challenge(challenge, Flow::Session, factor, &device.ip)
            .await?;
        let login = LoginMethod::new(passed.factors, self.now());
        let session = self
            .start_session(passed.user, device, previous_cookie, login)
            .await?;
        Ok((session, passed.recovery_codes))
    }

    /// `POST /api/auth/login/passkey/`: a passwordless session login, created only once the
    /// assertion passed with user verification.
    pub async fn login_session_passkey(
        &self,
        ceremony: &str,
        credential: &serde_json::Value,
        device: Device,
        previous_cookie: Option<&str>,
    ) -> Result<NewSession, AuthError> {
        let user = self
            .finish_passkey_login(ceremony, Flow::Session, credential, &device.ip)
            .await?;
        let login = LoginMethod::new(crate::mfa::LoginFactors::Passkey, self.now());
        self.start_session(user, device, previous_cookie, login)
            .await
    }

    pub(crate) async fn start_session(
        &self,
        user: User,
        device: Device,
        previous_cookie: Option<&str>,
        login: LoginMethod,
    ) -> Result<NewSession, AuthError> {
        if let Some(prev) = previous_cookie.filter(|c| plausible_session_id(c)) {
            self.sessions.delete_session(&hash_session_id(prev)).await?;
        }
        let now = self.now();
        let cookie = new_session_id();
        let s = &self.session_settings;
        let absolute = now.plus(s.absolute_timeout);
        let record = SessionRecord {
            id_hash: hash_session_id(&cookie),
            public_id: random::hex128(),
            user_id: user.id,
            created_at: now,
            last_seen: now,
            idle_expires_at: now.plus(s.idle_timeout).min(absolute),
            absolute_expires_at: absolute,
            user_agent: truncate(&device.user_agent, 256),
            ip: truncate(&device.ip, 64),
            login,
        };
        self.sessions.create_session(&record).await?;
        self.evict_past_the_cap(&record, now).await?;
        Ok(NewSession {
            cookie,
            cookie_max_age: s.cookie_age.min(s.absolute_timeout),
            csrf_token: self.csrf.mint(&record.id_hash),
            record,
            user,
        })
    }

    /// Ends the user's oldest live sessions beyond `sessions.max_per_user` (the newest, just
    /// created, always stays).
    async fn evict_past_the_cap(
        &self,
        newest: &SessionRecord,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        let cap = self.session_settings.max_per_user;
        if cap == 0 {
            return Ok(());
        }
        let mut others: Vec<SessionRecord> = self
            .sessions
            .list_sessions(newest.user_id)
            .await?
            .into_iter()
            .filter(|s| s.is_live(now) && s.id_hash != newest.id_hash)
            .collect();
        if others.len() < cap {
            return Ok(());
        }
        others.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        for old in &others[cap - 1..] {
            self.sessions.delete_session(&old.id_hash).await?;
        }
        tracing::info!(
            user_id = newest.user_id,
            ended = others.len() + 1 - cap,
            "oldest sessions ended: sessions.max_per_user reached"
        );
        Ok(())
    }

    /// A new id for a live session (Django's `cycle_key` after a password change): the same
    /// login under a new cookie, its deadlines unchanged; the old id stops working. An id that
    /// may have been seen (a shared machine, a log) is worth nothing once the password changed.
    pub async fn cycle_session(
        &self,
        current: &SessionRecord,
        user: &User,
    ) -> Result<NewSession, AuthError> {
        self.cycle_session_as(current, user, current.login).await
    }

    /// [`Auth::cycle_session`], the new session marked with `login` (a step-up or a factor
    /// change just proved a second factor).
    pub async fn cycle_session_as(
        &self,
        current: &SessionRecord,
        user: &User,
        login: LoginMethod,
    ) -> Result<NewSession, AuthError> {
        let cookie = new_session_id();
        let record = SessionRecord {
            id_hash: hash_session_id(&cookie),
            public_id: random::hex128(),
            login,
            ..current.clone()
        };
        self.sessions.create_session(&record).await?;
        self.sessions.delete_session(&current.id_hash).await?;
        let s = &self.session_settings;
        let left = Duration::from_millis(
            (record.absolute_expires_at.millis() - self.now().millis()).max(0) as u64,
        );
        Ok(NewSession {
            cookie,
            cookie_max_age: s.cookie_age.min(left),
            csrf_token: self.csrf.mint(&record.id_hash),
            record,
            user: user.clone(),
        })
    }

    /// The live session a cookie names, if any. Expired sessions, unknown ids and disabled
    /// users are anonymous. Slides the idle deadline at most once per renewal interval.
    pub async fn resolve_session(&self, cookie: &str) -> Result<Option<ActiveSession>, AuthError> {
        if !plausible_session_id(cookie) {
            return Ok(None);
        }
        let hash = hash_session_id(cookie);
        let Some(mut record) = self.sessions.session(&hash).await? else {
            return Ok(None);
        };
        let now = self.now();
        if !record.is_live(now) {
            return Ok(None);
        }
        let Some(user) = self.users.user_by_id(record.user_id).await? else {
            return Ok(None);
        };
        if !user.is_active {
            return Ok(None);
        }
        let s = &self.session_settings;
        let mut renewed = false;
        let stale_before = Timestamp(now.millis() - s.renew_after().as_millis() as i64);
        if record.last_seen <= stale_before {
            let idle = now.plus(s.idle_timeout).min(record.absolute_expires_at);
            renewed = self
                .sessions
                .touch_session(&hash, now, idle, stale_before)
                .await?;
            if renewed {
                record.last_seen = now;
                record.idle_expires_at = idle;
            }
        }
        Ok(Some(ActiveSession {
            user,
            record,
            renewed,
        }))
    }

    /// Ends the session a cookie names (if it names one).
    pub async fn logout_session(&self, cookie: &str) -> Result<(), AuthError> {
        if plausible_session_id(cookie) {
            self.sessions
                .delete_session(&hash_session_id(cookie))
                .await?;
        }
        Ok(())
    }

    /// The user's live sessions (the devices list).
    pub async fn list_sessions(&self, user: &User) -> Result<Vec<SessionRecord>, AuthError> {
        let now = self.now();
        let mut list = self.sessions.list_sessions(user.id).await?;
        list.retain(|s| s.is_live(now));
        Ok(list)
    }

    /// Ends one of the user's own sessions, named by its public id; false if there is none.
    pub async fn end_session(&self, user: &User, public_id: &str) -> Result<bool, AuthError> {
        Ok(self
            .sessions
            .delete_session_by_public_id(user.id, public_id)
            .await?)
    }

    /// A fresh CSRF token bound to `binding` (a session's [`ActiveSession::csrf_binding`], or
    /// [`ANONYMOUS`]).
    pub fn mint_csrf(&self, binding: &str) -> String {
        self.csrf.mint(binding)
    }

    /// Whether `token` is a CSRF token of this server for `binding`.
    pub fn csrf_token_valid(&self, token: &str, binding: &str) -> bool {
        self.csrf.is_valid(token, binding)
    }

    /// The double-submit check (cookie, then header, then comparison) plus the binding check.
    pub fn check_csrf(
        &self,
        cookie: Option<&str>,
        header: Option<&str>,
        binding: &str,
    ) -> Result<(), CsrfFailure> {
        self.csrf.check(cookie, header, binding)
    }
}
