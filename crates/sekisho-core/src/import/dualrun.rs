//! The dual-run: the weeks in which Django still serves part of the traffic while sekisho takes
//! over. It starts with the first import and ends with `import-django --finish`; the state is
//! stored (not configured), so every instance and every restart agrees on it. Meanwhile:
//!
//! - a live Django `sessionid` is exchanged, once, for a sekisho session
//!   ([`Auth::exchange_django_session`]), checked exactly as Django checks it;
//! - password hashes are not upgraded at login: Django ties a session to the stored hash (its
//!   `_auth_user_hash`), and the exchange compares against the hash sekisho holds, so a
//!   rehash would end the user's Django sessions here.

use super::signing::{self, DjangoSecrets};
use crate::auth::Auth;
use crate::clock::Timestamp;
use crate::error::AuthError;
use crate::mfa::LoginMethod;
use crate::session::{Device, NewSession};
use crate::store::DjangoSessionSource;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Where the dual-run stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DualRun {
    /// When the first import ran; `None` before any.
    pub started_at: Option<Timestamp>,
    /// When `import-django --finish` ended it.
    pub finished_at: Option<Timestamp>,
}

impl DualRun {
    pub fn in_progress(&self) -> bool {
        self.started_at.is_some() && self.finished_at.is_none()
    }
}

/// The Django deployment sessions are exchanged from: its database and its secrets.
#[derive(Clone)]
pub struct DjangoSessions {
    pub source: Arc<dyn DjangoSessionSource>,
    pub secrets: DjangoSecrets,
}

/// What `import-django --finish` did (or, in a dry run, would do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishOutcome {
    /// No import has run: there is nothing to finish.
    NotStarted,
    AlreadyFinished(Timestamp),
    /// Ended now (or would be): the dual-run as it was, and how many exchanged keys went.
    Finished {
        was: DualRun,
        exchanged: u64,
    },
}

/// Why a Django session was not exchanged, for the log (never the key).
#[derive(Clone, Copy, Debug)]
enum Refusal {
    NoSuchSession,
    Expired,
    BadSignature,
    NoLogin,
    NotImported,
    Inactive,
    PasswordChanged,
    SecondFactor,
    Replayed,
}

impl Auth {
    pub async fn dual_run(&self) -> Result<DualRun, AuthError> {
        Ok(self.imports.dual_run().await?)
    }

    /// Whether a login must leave the stored hash as it is. When the state cannot be read the
    /// answer is yes: a missed upgrade costs nothing, a premature one logs users out of Django.
    pub(crate) async fn holds_rehash(&self) -> bool {
        match self.imports.dual_run().await {
            Ok(d) => d.in_progress(),
            Err(e) => {
                tracing::warn!(error = %e, "dual-run state unreadable: password hash upgrade held");
                true
            }
        }
    }

    /// Whether Django sessions can be exchanged here at all (`django.*` configured); whether
    /// one is also depends on the stored dual-run state.
    pub fn exchanges_django_sessions(&self) -> bool {
        self.django.is_some()
    }

    /// `import-django --finish`: rehash at login resumes, Django sessions stop being exchanged.
    pub async fn finish_dual_run(&self, dry_run: bool) -> Result<FinishOutcome, AuthError> {
        let was = self.imports.dual_run().await?;
        match (was.started_at, was.finished_at) {
            (None, _) => return Ok(FinishOutcome::NotStarted),
            (Some(_), Some(at)) => return Ok(FinishOutcome::AlreadyFinished(at)),
            _ => {}
        }
        let exchanged = self.imports.exchanged_django_sessions().await?;
        if !dry_run && !self.imports.finish_dual_run(self.now()).await? {
            // Another process finished it in between.
            let now = self.imports.dual_run().await?;
            return Ok(FinishOutcome::AlreadyFinished(
                now.finished_at.unwrap_or(self.now()),
            ));
        }
        Ok(FinishOutcome::Finished { was, exchanged })
    }

    /// A Django session key presented as the session cookie, exchanged for a brand-new sekisho
    /// session (its id is random, never derived from the key: fixation-safe) if Django itself
    /// would accept it now: the row exists and has not expired, its data is signed with
    /// Django's secret, it names a user imported from Django who is active here and there, and
    /// its `_auth_user_hash` matches the password hash both hold. Then the key is recorded (as
    /// a hash) so it is never accepted again. `Ok(None)` is "no session"; only storage
    /// failures on the way are errors (503).
    pub async fn exchange_django_session(
        &self,
        key: &str,
        device: Device,
    ) -> Result<Option<NewSession>, AuthError> {
        let Some(django) = &self.django else {
            return Ok(None);
        };
        if !signing::plausible_django_key(key) || !self.imports.dual_run().await?.in_progress() {
            return Ok(None);
        }
        match self.check_django_session(django, key).await? {
            Ok((user_id, expires)) => {
                let now = self.now();
                let claimed = self
                    .imports
                    .claim_django_session(&signing::hash_django_key(key), user_id, now, expires)
                    .await?;
                if !claimed {
                    return Ok(self.refused(Refusal::Replayed, Some(user_id)));
                }
                let Some(user) = self.users.user_by_id(user_id).await? else {
                    return Ok(self.refused(Refusal::NotImported, Some(user_id)));
                };
                let session = self
                    .start_session((*user).clone(), device, None, LoginMethod::password(now))
                    .await?;
                metrics::counter!("sekisho_django_sessions_total", "result" => "exchanged")
                    .increment(1);
                tracing::info!(user_id, "Django session exchanged for a sekisho session");
                Ok(Some(session))
            }
            Err((why, user)) => Ok(self.refused(why, user)),
        }
    }

    fn refused(&self, why: Refusal, user_id: Option<i64>) -> Option<NewSession> {
        metrics::counter!("sekisho_django_sessions_total", "result" => "refused").increment(1);
        tracing::info!(?user_id, reason = ?why, "Django session not exchanged");
        None
    }

    /// Django's own checks, in its order; the inner error says why not (and for whom).
    async fn check_django_session(
        &self,
        django: &DjangoSessions,
        key: &str,
    ) -> Result<Result<(i64, Timestamp), (Refusal, Option<i64>)>, AuthError> {
        let Some(row) = django.source.django_session(key).await? else {
            return Ok(Err((Refusal::NoSuchSession, None)));
        };
        if row.expire_date <= self.now() {
            return Ok(Err((Refusal::Expired, None)));
        }
        let Some(data) = signing::unsign_session(&row.session_data, &django.secrets) else {
            return Ok(Err((Refusal::BadSignature, None)));
        };
        let Some(login) = signing::login_of(&data) else {
            return Ok(Err((Refusal::NoLogin, None)));
        };
        let id = Some(login.user_id);
        let Some(here) = self.imports.imported_credentials(login.user_id).await? else {
            return Ok(Err((Refusal::NotImported, id)));
        };
        let Some(there) = django.source.django_account(login.user_id).await? else {
            return Ok(Err((Refusal::NotImported, id)));
        };
        if !here.is_active || !there.is_active {
            return Ok(Err((Refusal::Inactive, id)));
        }
        // The hash sekisho holds must still be Django's (a password changed on either side
        // since the import ends the session, as a change in Django does there), and the
        // session must have been made for it.
        let same = here.password_hash.len() == there.password.len()
            && bool::from(
                here.password_hash
                    .as_bytes()
                    .ct_eq(there.password.as_bytes()),
            );
        if !same
            || !signing::auth_hash_matches(&login.auth_hash, &here.password_hash, &django.secrets)
        {
            return Ok(Err((Refusal::PasswordChanged, id)));
        }
        // Django never asked this user for sekisho's second factor.
        if self
            .mfa
            .totp(login.user_id)
            .await?
            .is_some_and(|t| t.confirmed_at.is_some())
        {
            return Ok(Err((Refusal::SecondFactor, id)));
        }
        Ok(Ok((login.user_id, row.expire_date)))
    }
}
