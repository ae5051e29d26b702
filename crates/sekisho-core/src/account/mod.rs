//! Accounts: creating users, their profile, their password, disabling them — and the one
//! operation every "log this user out" path shares, [`Auth::end_all_logins`].

pub mod rules;
mod user;

pub use rules::{ProfileField, ProfileProblem, WeakPassword};
pub use user::{Credentials, NewUser, ProfileUpdate, StoredUser, User, UserId};

use crate::auth::Auth;
use crate::error::AuthError;
use crate::login::password::Verification;
use crate::session::SessionRecord;
use std::sync::Arc;

/// Why a user's own password change was refused.
#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    #[error("the old password does not match")]
    WrongOldPassword,
    #[error("the new password is too weak: {0:?}")]
    Weak(WeakPassword),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl From<crate::store::StoreError> for PasswordChangeError {
    fn from(e: crate::store::StoreError) -> Self {
        PasswordChangeError::Auth(e.into())
    }
}

/// Why every login of a user ends (recorded on the revoked refresh families).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    PasswordChanged,
    Deactivated,
    LogoutEverywhere,
    /// An administrator ended them.
    Admin,
    /// A second factor was added or removed.
    FactorChanged,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::PasswordChanged => "password",
            EndReason::Deactivated => "deactivated",
            EndReason::LogoutEverywhere => "logout-all",
            EndReason::Admin => "admin",
            EndReason::FactorChanged => "mfa",
        }
    }
}

impl Auth {
    /// Checks a password set by an administrator or the CLI and hashes it (off the async
    /// workers, like every hash).
    async fn hash_new_password(&self, password: &str) -> Result<String, AuthError> {
        rules::validate_password(password)?;
        self.passwords
            .hash(password)
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))
    }

    pub async fn create_user(&self, new: &NewUser, password: &str) -> Result<User, AuthError> {
        let new = NewUser {
            username: rules::normalize_username(&new.username),
            ..new.clone()
        };
        rules::validate_username(&new.username).map_err(AuthError::Invalid)?;
        let hash = self.hash_new_password(password).await?;
        Ok(self.users.create_user(&new, &hash, self.now()).await?)
    }

    pub async fn find_user(&self, username: &str) -> Result<Option<User>, AuthError> {
        let username = rules::normalize_username(username);
        Ok(self
            .users
            .user_by_username(&username)
            .await?
            .map(|s| s.user))
    }

    pub async fn user(&self, id: UserId) -> Result<Option<Arc<User>>, AuthError> {
        Ok(self.users.user_by_id(id).await?)
    }

    pub async fn list_users(&self) -> Result<Vec<User>, AuthError> {
        Ok(self.users.list_users().await?)
    }

    /// Ends every login of the user: all refresh families are revoked and all sessions deleted,
    /// except `keep` (the caller's own session, on a password change).
    /// Used by password and second-factor changes, deactivation, "log out everywhere" and
    /// administrators.
    pub async fn end_all_logins(
        &self,
        user: UserId,
        reason: EndReason,
        keep: Option<&SessionRecord>,
    ) -> Result<(), AuthError> {
        self.families
            .revoke_user_families(user, self.now(), reason.as_str())
            .await?;
        self.sessions
            .delete_user_sessions(user, keep.map(|s| s.id_hash.as_str()))
            .await?;
        Ok(())
    }

    /// An administrator sets a password: no old password needed; every login of the user ends.
    pub async fn set_password(&self, user: UserId, password: &str) -> Result<(), AuthError> {
        let hash = self.hash_new_password(password).await?;
        if !self.users.set_password_hash(user, &hash).await? {
            return Err(AuthError::UserNotFound);
        }
        self.end_all_logins(user, EndReason::PasswordChanged, None)
            .await
    }

    /// Disables the account and ends every login of the user.
    pub async fn deactivate(&self, user: UserId) -> Result<(), AuthError> {
        if !self.users.set_active(user, false).await? {
            return Err(AuthError::UserNotFound);
        }
        self.end_all_logins(user, EndReason::Deactivated, None)
            .await
    }

    /// A user changes their own password: the old one must match; every refresh family and
    /// every other session ends; `keep` (the caller's session) stays.
    pub async fn change_password(
        &self,
        user: &User,
        old: &str,
        new: &str,
        keep: Option<&SessionRecord>,
        client_ip: &str,
    ) -> Result<(), PasswordChangeError> {
        // A wrong old password counts as a failed login of the account (and the address): a
        // stolen session or token must not become a way to guess the password unthrottled.
        if let Err(wait) = self.throttle.check(&user.username, client_ip) {
            return Err(AuthError::Throttled(wait).into());
        }
        let stored = self
            .users
            .user_by_username(&user.username)
            .await?
            .ok_or(AuthError::UserNotFound)?;
        if !matches!(
            self.passwords
                .verify(old, Some(&stored.password_hash))
                .await,
            Verification::Match { .. }
        ) {
            self.throttle.record_failure(&user.username, client_ip);
            return Err(PasswordChangeError::WrongOldPassword);
        }
        self.throttle.record_success(&user.username);
        if let Some(problem) = rules::weak_password(new, user) {
            return Err(PasswordChangeError::Weak(problem));
        }
        let hash = self
            .passwords
            .hash(new)
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        self.users.set_password_hash(user.id, &hash).await?;
        self.end_all_logins(user.id, EndReason::PasswordChanged, keep)
            .await?;
        Ok(())
    }

    /// `PATCH /api/auth/me/`: the outer error is the service's, the inner one a broken rule.
    pub async fn update_profile(
        &self,
        user: UserId,
        update: &ProfileUpdate,
    ) -> Result<Result<User, (ProfileField, ProfileProblem)>, AuthError> {
        if let Err(e) = rules::validate_profile(update) {
            return Ok(Err(e));
        }
        Ok(Ok(self
            .users
            .update_profile(user, update)
            .await?
            .ok_or(AuthError::UserNotFound)?))
    }
}
