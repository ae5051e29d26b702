//! The authentication service: the one place that combines stores, the token policy, password
//! hashing and the clock into the operations the HTTP layer and the CLI call.

use crate::clock::{Clock, Timestamp};
use crate::config::JwtConfig;
use crate::csrf::CsrfKey;
use crate::error::AuthError;
use crate::family::{FamilyRecord, RevokeOutcome, RotateOutcome, RotateRequest, Successor};
use crate::password::{Passwords, Verification};
use crate::random;
use crate::session::{
    Device, SessionRecord, SessionSettings, hash_session_id, new_session_id, plausible_session_id,
};
use crate::store::{FamilyStore, SessionStore, UserStore};
use crate::token::{Claims, TokenError, TokenPolicy, TokenType};
use crate::user::{NewUser, ProfileUpdate, User, UserId, validate_profile, validate_username};
use std::sync::Arc;
use std::time::Duration;

/// Lifetimes and switches for tokens, copied out of [`JwtConfig`] once.
#[derive(Clone, Debug)]
pub struct TokenSettings {
    pub access_lifetime: Duration,
    pub refresh_lifetime: Duration,
    pub absolute_lifetime: Duration,
    pub rotate: bool,
    pub grace: Duration,
    pub strict_access: bool,
}

impl From<&JwtConfig> for TokenSettings {
    fn from(c: &JwtConfig) -> Self {
        TokenSettings {
            access_lifetime: c.access_token_lifetime.0,
            refresh_lifetime: c.refresh_token_lifetime.0,
            absolute_lifetime: c.refresh_absolute_lifetime.0,
            rotate: c.rotate_refresh_tokens,
            grace: c.reuse_grace.0,
            strict_access: c.strict_access,
        }
    }
}

#[derive(Clone, Debug)]
pub struct TokenPair {
    pub access: String,
    pub refresh: String,
    /// The refresh token's `exp` (seconds), e.g. for a cookie's lifetime.
    pub refresh_exp: i64,
}

#[derive(Clone, Debug)]
pub struct Refreshed {
    pub access: String,
    /// The successor refresh token; `None` when rotation is off.
    pub refresh: Option<String>,
    /// The successor's `exp` (seconds), when there is one.
    pub refresh_exp: Option<i64>,
    /// True when this answer came from the grace window (a racing request rotated first).
    pub from_grace: bool,
}

/// What an `Authorization` header says.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthorizationHeader<'a> {
    /// Not a scheme sekisho handles (e.g. `Basic`): ignored, as simplejwt ignores it.
    Other,
    Bearer(&'a str),
}

/// Splits `Bearer <token>`; the scheme is matched case-insensitively.
pub fn parse_authorization(value: &str) -> Result<AuthorizationHeader<'_>, AuthError> {
    // simplejwt splits on any whitespace (`header.split()`).
    let mut parts = value.split_ascii_whitespace();
    let Some(scheme) = parts.next() else {
        return Ok(AuthorizationHeader::Other);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(AuthorizationHeader::Other);
    }
    match (parts.next(), parts.next()) {
        (Some(token), None) => Ok(AuthorizationHeader::Bearer(token)),
        _ => Err(AuthError::BadAuthorizationHeader),
    }
}

/// An authenticated bearer request.
#[derive(Clone, Debug)]
pub struct BearerIdentity {
    pub user: Arc<User>,
    pub claims: Claims,
}

pub struct AuthService {
    pub users: Arc<dyn UserStore>,
    pub families: Arc<dyn FamilyStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub tokens: TokenPolicy,
    pub csrf: CsrfKey,
    pub passwords: Passwords,
    pub clock: Arc<dyn Clock>,
    pub settings: TokenSettings,
    pub session_settings: SessionSettings,
    pub throttle: crate::throttle::LoginThrottle,
}

/// A session just created by a login.
#[derive(Clone, Debug)]
pub struct NewSession {
    /// The cookie value. Returned once, never stored.
    pub cookie: String,
    pub record: SessionRecord,
    pub user: User,
}

/// A request's live session.
#[derive(Clone, Debug)]
pub struct ActiveSession {
    pub user: Arc<User>,
    pub record: SessionRecord,
    /// True when this request slid the idle deadline (the cookie may be re-sent).
    pub renewed: bool,
}

impl AuthService {
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub async fn ready(&self) -> Result<(), AuthError> {
        self.users.ping().await?;
        self.families.ping().await?;
        self.sessions.ping().await?;
        Ok(())
    }

    /// Checks a username and password. Unknown users and inactive users cost one full hash
    /// check too, and all failures look the same to the caller.
    pub async fn check_password(
        &self,
        username: &str,
        password: &str,
        client_ip: &str,
    ) -> Result<User, AuthError> {
        if let Err(wait) = self.throttle.check(username, client_ip) {
            metrics::counter!("sekisho_logins_total", "result" => "throttled").increment(1);
            return Err(AuthError::Throttled(wait));
        }
        let result = self.check_password_unthrottled(username, password).await;
        match &result {
            Ok(_) => {
                self.throttle.record_success(username);
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
        let stored = self.users.user_by_username(username).await?;
        let hash = stored.as_ref().map(|s| s.password_hash.as_str());
        let verdict = self.passwords.verify(password, hash).await;
        let (Some(stored), Verification::Match { upgrade }) = (stored, verdict) else {
            return Err(AuthError::InvalidCredentials);
        };
        if !stored.user.is_active {
            return Err(AuthError::InvalidCredentials);
        }
        if upgrade {
            // Re-hash with current parameters now that the plain password is at hand; a failure
            // here must not fail the login.
            match self.passwords.hash(password).await {
                Ok(h) => {
                    if let Err(e) = self.users.set_password_hash(stored.user.id, &h).await {
                        tracing::warn!(user_id = stored.user.id, error = %e, "password hash upgrade not saved");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "password hash upgrade failed"),
            }
        }
        self.users.record_login(stored.user.id, self.now()).await?;
        Ok(stored.user)
    }

    /// `POST /api/token/`: a new family (one login) and its first token pair.
    pub async fn obtain_pair(
        &self,
        username: &str,
        password: &str,
        client_ip: &str,
    ) -> Result<TokenPair, AuthError> {
        let user = self.check_password(username, password, client_ip).await?;
        self.issue_pair(&user).await
    }

    pub async fn issue_pair(&self, user: &User) -> Result<TokenPair, AuthError> {
        let now = self.now();
        let now_s = now.secs();
        let absolute_exp = now.plus(self.settings.absolute_lifetime).secs();
        let first = Successor {
            jti: random::hex128(),
            iat: now_s,
            exp: (now.plus(self.settings.refresh_lifetime).secs()).min(absolute_exp),
        };
        let family = FamilyRecord {
            id: random::hex128(),
            user_id: user.id,
            current_jti: first.jti.clone(),
            current_iat: first.iat,
            current_exp: first.exp,
            previous_jti: None,
            rotated_at: None,
            created_at: now,
            absolute_exp,
            revoked_at: None,
        };
        // Persist before handing anything out: a token whose state was not stored must never
        // leave the server.
        if !self.families.create_family(&family).await? {
            return Err(AuthError::Internal("family id collision".into()));
        }
        let uid = user.id.to_string();
        Ok(TokenPair {
            access: self.sign_access(&uid, &family.id, now),
            refresh: self.sign_refresh(&uid, &family.id, &first),
            refresh_exp: first.exp,
        })
    }

    fn sign_access(&self, user_id: &str, family: &str, now: Timestamp) -> String {
        self.tokens.sign(&Claims {
            token_type: TokenType::Access,
            exp: now.plus(self.settings.access_lifetime).secs(),
            iat: now.secs(),
            jti: random::hex128(),
            user_id: Some(user_id.to_string()),
            family: Some(family.to_string()),
        })
    }

    fn sign_refresh(&self, user_id: &str, family: &str, s: &Successor) -> String {
        self.tokens.sign(&Claims {
            token_type: TokenType::Refresh,
            exp: s.exp,
            iat: s.iat,
            jti: s.jti.clone(),
            user_id: Some(user_id.to_string()),
            family: Some(family.to_string()),
        })
    }

    /// `POST /api/token/refresh/`: rotate the family atomically. Parallel refreshes of one token
    /// all succeed and agree inside the grace window; older tokens revoke the family.
    pub async fn refresh(&self, token: &str) -> Result<Refreshed, AuthError> {
        let now = self.now();
        let claims = self.tokens.verify(token, Some(TokenType::Refresh), now)?;
        let uid = claims
            .user_id
            .clone()
            .ok_or(AuthError::Token(TokenError::Invalid))?;
        let user_id: UserId = uid
            .parse()
            .map_err(|_| AuthError::Token(TokenError::Invalid))?;
        match self.users.user_by_id(user_id).await? {
            Some(u) if u.is_active => {}
            _ => return Err(AuthError::NoActiveAccount),
        }
        let family = self.family_of(&claims).await?;
        let outcome = self
            .families
            .rotate(&RotateRequest {
                family_id: family.clone(),
                presented_jti: claims.jti.clone(),
                new_jti: random::hex128(),
                now,
                grace: self.settings.grace,
                idle_lifetime: self.settings.refresh_lifetime,
                rotate: self.settings.rotate,
            })
            .await?;
        let access = || self.sign_access(&uid, &family, now);
        let label = match &outcome {
            RotateOutcome::Rotated(_) => "rotated",
            RotateOutcome::Grace(_) => "grace",
            RotateOutcome::Unchanged(_) => "unchanged",
            RotateOutcome::ReuseDetected => "reuse",
            RotateOutcome::Revoked | RotateOutcome::NotFound => "revoked",
            RotateOutcome::Expired => "expired",
        };
        metrics::counter!("sekisho_refreshes_total", "outcome" => label).increment(1);
        if label == "reuse" {
            metrics::counter!("sekisho_reuse_detections_total").increment(1);
        }
        match outcome {
            RotateOutcome::Rotated(s) => Ok(Refreshed {
                access: access(),
                refresh: Some(self.sign_refresh(&uid, &family, &s)),
                refresh_exp: Some(s.exp),
                from_grace: false,
            }),
            RotateOutcome::Grace(s) => Ok(Refreshed {
                access: access(),
                refresh: Some(self.sign_refresh(&uid, &family, &s)),
                refresh_exp: Some(s.exp),
                from_grace: true,
            }),
            RotateOutcome::Unchanged(_) => Ok(Refreshed {
                access: access(),
                refresh: None,
                refresh_exp: None,
                from_grace: false,
            }),
            RotateOutcome::ReuseDetected => {
                tracing::warn!(user_id, family = %short(&family), "refresh token reuse detected; family revoked");
                Err(TokenError::Blacklisted.into())
            }
            RotateOutcome::Revoked | RotateOutcome::NotFound => Err(TokenError::Blacklisted.into()),
            RotateOutcome::Expired => Err(TokenError::Expired.into()),
        }
    }

    /// The family a refresh token belongs to. A token minted elsewhere with the same key (an
    /// existing Django deployment: no `fid` claim) is adopted on first use into a family named
    /// after its `jti`, created only if absent, so it rotates — and is caught on reuse — exactly
    /// like sekisho's own tokens, and racing first uses agree on one family.
    async fn family_of(&self, claims: &Claims) -> Result<String, AuthError> {
        if let Some(f) = &claims.family {
            return Ok(f.clone());
        }
        let user_id: UserId = claims
            .user_id
            .as_deref()
            .and_then(|u| u.parse().ok())
            .ok_or(AuthError::Token(TokenError::Invalid))?;
        let id = legacy_family_id(&claims.jti);
        let created = Timestamp::from_secs(claims.iat);
        self.families
            .create_family(&FamilyRecord {
                id: id.clone(),
                user_id,
                current_jti: claims.jti.clone(),
                current_iat: claims.iat,
                current_exp: claims.exp,
                previous_jti: None,
                rotated_at: None,
                created_at: created,
                absolute_exp: created.plus(self.settings.absolute_lifetime).secs(),
                revoked_at: None,
            })
            .await?;
        Ok(id)
    }

    /// `POST /api/token/verify/`: signature and lifetime, plus revocation state for tokens that
    /// belong to a family (a rotated-away refresh token counts as blacklisted, as in simplejwt).
    pub async fn verify(&self, token: &str) -> Result<(), AuthError> {
        let now = self.now();
        let claims = self.tokens.verify(token, None, now)?;
        let fid = match (&claims.family, claims.token_type) {
            (Some(f), _) => f.clone(),
            // A foreign refresh token counts as revoked once its adopted family says so.
            (None, TokenType::Refresh) => {
                let id = legacy_family_id(&claims.jti);
                match self.families.family(&id).await? {
                    Some(_) => id,
                    None => return Ok(()),
                }
            }
            (None, TokenType::Access) => return Ok(()),
        };
        let fid = &fid;
        let family = self.families.family(fid).await?;
        let live = match (&family, claims.token_type) {
            (None, _) => false,
            (Some(f), TokenType::Refresh) => f.accepts(&claims.jti, now, self.settings.grace),
            (Some(f), TokenType::Access) => !f.is_revoked(),
        };
        if live {
            Ok(())
        } else {
            Err(TokenError::Blacklisted.into())
        }
    }

    /// `POST /api/token/blacklist/`: log out the login the refresh token belongs to.
    pub async fn blacklist(&self, token: &str) -> Result<(), AuthError> {
        let now = self.now();
        let claims = self.tokens.verify(token, Some(TokenType::Refresh), now)?;
        let fid = &self.family_of(&claims).await?;
        match self.families.revoke_family(fid, now, "logout").await? {
            RevokeOutcome::Revoked => Ok(()),
            RevokeOutcome::AlreadyRevoked | RevokeOutcome::NotFound => {
                Err(TokenError::Blacklisted.into())
            }
        }
    }

    /// Authenticates a bearer token on an API call (simplejwt's `JWTAuthentication`).
    pub async fn authenticate_bearer(&self, token: &str) -> Result<BearerIdentity, AuthError> {
        let now = self.now();
        let claims = self
            .tokens
            .verify(token, Some(TokenType::Access), now)
            .map_err(|error| AuthError::AccessToken {
                class: TokenType::Access,
                error,
            })?;
        let uid = claims
            .user_id
            .as_deref()
            .ok_or(AuthError::NoUserIdentification)?;
        let id: UserId = uid.parse().map_err(|_| AuthError::UserNotFound)?;
        let user = self
            .users
            .user_by_id(id)
            .await?
            .ok_or(AuthError::UserNotFound)?;
        if !user.is_active {
            return Err(AuthError::UserInactive);
        }
        if self.settings.strict_access
            && let Some(fid) = &claims.family
        {
            let revoked = self
                .families
                .family(fid)
                .await?
                .is_none_or(|f| f.is_revoked());
            if revoked {
                return Err(AuthError::AccessToken {
                    class: TokenType::Access,
                    error: TokenError::Blacklisted,
                });
            }
        }
        Ok(BearerIdentity { user, claims })
    }

    pub async fn create_user(&self, new: &NewUser, password: &str) -> Result<User, AuthError> {
        validate_username(&new.username).map_err(AuthError::Invalid)?;
        validate_password(password)?;
        let hash = self
            .passwords
            .hash(password)
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        Ok(self.users.create_user(new, &hash, self.now()).await?)
    }

    /// Sets a new password and ends every refresh family of the user (DESIGN §3.2).
    pub async fn set_password(&self, user: UserId, password: &str) -> Result<(), AuthError> {
        validate_password(password)?;
        let hash = self
            .passwords
            .hash(password)
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        if !self.users.set_password_hash(user, &hash).await? {
            return Err(AuthError::UserNotFound);
        }
        self.families
            .revoke_user_families(user, self.now(), "password")
            .await?;
        self.sessions.delete_user_sessions(user, None).await?;
        Ok(())
    }

    /// Disables the account and ends every refresh family of the user.
    pub async fn deactivate(&self, user: UserId) -> Result<(), AuthError> {
        if !self.users.set_active(user, false).await? {
            return Err(AuthError::UserNotFound);
        }
        self.families
            .revoke_user_families(user, self.now(), "deactivated")
            .await?;
        self.sessions.delete_user_sessions(user, None).await?;
        Ok(())
    }

    pub async fn purge_expired(&self) -> Result<u64, AuthError> {
        let now = self.now();
        Ok(self.families.purge_expired_families(now).await?
            + self.sessions.purge_expired_sessions(now).await?)
    }

    /// `POST /api/auth/login/`: checks the password and creates a brand-new session. A session
    /// the request already carried is deleted, and its id is never adopted (fixation-safe).
    pub async fn login_session(
        &self,
        username: &str,
        password: &str,
        device: Device,
        previous_cookie: Option<&str>,
    ) -> Result<NewSession, AuthError> {
        let user = self.check_password(username, password, &device.ip).await?;
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
        };
        self.sessions.create_session(&record).await?;
        Ok(NewSession {
            cookie,
            record,
            user,
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

    pub async fn logout_session(&self, cookie: &str) -> Result<(), AuthError> {
        if plausible_session_id(cookie) {
            self.sessions
                .delete_session(&hash_session_id(cookie))
                .await?;
        }
        Ok(())
    }

    /// Ends every session and every refresh family of the user ("log out everywhere").
    pub async fn logout_everywhere(&self, user: UserId) -> Result<(), AuthError> {
        self.sessions.delete_user_sessions(user, None).await?;
        self.families
            .revoke_user_families(user, self.now(), "logout-all")
            .await?;
        Ok(())
    }

    /// A user changes their own password: the old one must match; every refresh family and
    /// every other session ends; the session `keep` (the caller's) stays.
    pub async fn change_password(
        &self,
        user: &User,
        old: &str,
        new: &str,
        keep: Option<&str>,
    ) -> Result<(), PasswordChangeError> {
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
            return Err(PasswordChangeError::WrongOldPassword);
        }
        if let Some(msg) = weak_password(new, user) {
            return Err(PasswordChangeError::Weak(msg));
        }
        let hash = self
            .passwords
            .hash(new)
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        self.users.set_password_hash(user.id, &hash).await?;
        self.families
            .revoke_user_families(user.id, self.now(), "password")
            .await?;
        self.sessions.delete_user_sessions(user.id, keep).await?;
        Ok(())
    }

    pub async fn update_profile(
        &self,
        user: UserId,
        update: &ProfileUpdate,
    ) -> Result<Result<User, (&'static str, String)>, AuthError> {
        if let Err(e) = validate_profile(update) {
            return Ok(Err(e));
        }
        Ok(Ok(self
            .users
            .update_profile(user, update)
            .await?
            .ok_or(AuthError::UserNotFound)?))
    }
}

/// Passwords are taken as given (never trimmed), but an empty one or one large enough to be a
/// denial of service is refused.
pub fn validate_password(password: &str) -> Result<(), AuthError> {
    if password.is_empty() {
        return Err(AuthError::Invalid("password must not be empty".into()));
    }
    if password.len() > 4096 {
        return Err(AuthError::Invalid(
            "password must be at most 4096 bytes".into(),
        ));
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    #[error("Your old password was entered incorrectly. Please enter it again.")]
    WrongOldPassword,
    #[error("{0}")]
    Weak(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl From<crate::store::StoreError> for PasswordChangeError {
    fn from(e: crate::store::StoreError) -> Self {
        PasswordChangeError::Auth(e.into())
    }
}

/// Django's default validators, in spirit: at least 8 characters, not all digits, not the
/// username. Returns Django's message for the first rule broken.
pub fn weak_password(password: &str, user: &User) -> Option<String> {
    if password.chars().count() < 8 {
        return Some("This password is too short. It must contain at least 8 characters.".into());
    }
    if password.len() > 4096 {
        return Some("This password is too long.".into());
    }
    if password.chars().all(|c| c.is_ascii_digit()) {
        return Some("This password is entirely numeric.".into());
    }
    if password.eq_ignore_ascii_case(&user.username) {
        return Some("The password is too similar to the username.".into());
    }
    None
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// The family id a foreign refresh token is adopted into.
pub fn legacy_family_id(jti: &str) -> String {
    format!("legacy-{jti}")
}

/// The first characters of an id, for logs that must not carry the whole identifier.
fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_header_parsing() {
        assert_eq!(
            parse_authorization("Bearer abc").unwrap(),
            AuthorizationHeader::Bearer("abc")
        );
        assert_eq!(
            parse_authorization("bearer abc").unwrap(),
            AuthorizationHeader::Bearer("abc")
        );
        assert_eq!(
            parse_authorization("BEARER abc").unwrap(),
            AuthorizationHeader::Bearer("abc")
        );
        assert_eq!(
            parse_authorization("Basic dXNlcjpwdw==").unwrap(),
            AuthorizationHeader::Other
        );
        assert_eq!(parse_authorization("").unwrap(), AuthorizationHeader::Other);
        assert!(matches!(
            parse_authorization("Bearer"),
            Err(AuthError::BadAuthorizationHeader)
        ));
        assert_eq!(
            parse_authorization("Bearer\tabc").unwrap(),
            AuthorizationHeader::Bearer("abc")
        );
        assert!(matches!(
            parse_authorization("Bearer a b"),
            Err(AuthError::BadAuthorizationHeader)
        ));
    }
}
