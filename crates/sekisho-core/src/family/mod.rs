//! Refresh families (DESIGN §3.2): one per login, rotated atomically by the store. Follow one
//! refresh: [`Auth::refresh`] verifies the token against the policy, asks the store to apply
//! [`decide_rotation`] as one compare-and-swap, and signs whatever the outcome hands out — a new
//! successor, the same successor again inside the grace window, or nothing (reuse revokes).

mod rotation;

pub use rotation::{
    FamilyRecord, RevokeOutcome, RotateOutcome, RotateRequest, Successor, Write, decide_rotation,
    purgeable_before,
};

use crate::account::{User, UserId};
use crate::auth::Auth;
use crate::clock::Timestamp;
use crate::error::AuthError;
use crate::mfa::{Factor, Flow, LoginMethod};
use crate::random;
use crate::token::{Claims, TokenError, TokenType};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct TokenPair {
    pub access: String,
    pub refresh: String,
    /// How long the refresh token lives from now (e.g. for a cookie's `Max-Age`).
    pub refresh_max_age: Duration,
}

#[derive(Clone, Debug)]
pub struct Refreshed {
    pub access: String,
    /// The successor refresh token; `None` when rotation is off.
    pub refresh: Option<String>,
    /// How long the successor lives from now, when there is one.
    pub refresh_max_age: Option<Duration>,
    /// True when this answer came from the grace window (a racing request rotated first).
    pub from_grace: bool,
}

/// The family id a refresh token minted elsewhere (an existing Django deployment: no `fid`
/// claim) is adopted into.
pub fn legacy_family_id(jti: &str) -> String {
    format!("legacy-{jti}")
}

/// Seconds from `now` to `exp`, never negative.
fn max_age(exp: i64, now: Timestamp) -> Duration {
    Duration::from_secs((exp - now.secs()).max(0) as u64)
}

/// The first characters of an id, for logs that must not carry the whole identifier.
fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

impl Auth {
    /// `POST /api/token/`: checks the password, then starts a family (one login). A user with
    /// a second factor gets [`AuthError::MfaRequired`] instead (no tokens yet).
    pub async fn obtain_pair(
        &self,
        username: &str,
        password: &str,
        client_ip: &str,
    ) -> Result<TokenPair, AuthError> {
        let user = self.first_factor(username, password, client_ip).await?;
        self.second_factor_gate(&user, Flow::Token).await?;
        self.issue_pair(&user).await
    }

    /// `POST /api/token/mfa/`: the second step of a token login. The family and its first pair
    /// are created only now, their tokens marked `amr = ["pwd", "otp"]`. The second element
    /// holds the recovery codes of an enrolment it confirmed.
    pub async fn obtain_pair_second_factor(
        &self,
        challenge: &str,
        factor: Factor<'_>,
        client_ip: &str,
    ) -> Result<(TokenPair, Option<Vec<String>>), AuthError> {
        let passed = self
            .pass_challenge(challenge, Flow::Token, factor, client_ip)
            .await?;
        let pair = self
            .issue_pair_as(&passed.user, LoginMethod::new(passed.factors, self.now()))
            .await?;
        Ok((pair, passed.recovery_codes))
    }

    /// `POST /api/token/passkey/`: a passwordless token login; the family starts only once
    /// the assertion passed with user verification.
    pub async fn obtain_pair_passkey(
        &self,
        ceremony: &str,
        credential: &serde_json::Value,
        client_ip: &str,
    ) -> Result<TokenPair, AuthError> {
        let user = self
            .finish_passkey_login(ceremony, Flow::Token, credential, client_ip)
            .await?;
        self.issue_pair_as(
            &user,
            LoginMethod::new(crate::mfa::LoginFactors::Passkey, self.now()),
        )
        .await
    }

    /// A new family for a user who just proved their password, and its first token pair.
    pub async fn issue_pair(&self, user: &User) -> Result<TokenPair, AuthError> {
        self.issue_pair_as(user, LoginMethod::password(self.now()))
            .await
    }

    /// A new family for an already authenticated user, its tokens saying how they logged in.
    pub async fn issue_pair_as(
        &self,
        user: &User,
        login: LoginMethod,
    ) -> Result<TokenPair, AuthError> {
        let s = &self.token_settings;
        let now = self.now();
        let absolute_exp = now.plus(s.absolute_lifetime).secs();
        let first = Successor {
            jti: random::hex128(),
            iat: now.secs(),
            exp: (now.plus(s.refresh_lifetime).secs()).min(absolute_exp),
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
            access: self.sign_access(&uid, Some(&family.id), now, Some(login))?,
            refresh: self.sign_refresh(&uid, &family.id, &first, Some(login))?,
            refresh_max_age: max_age(first.exp, now),
        })
    }

    /// An access token of `family` (`None`: a token minted elsewhere, which names none).
    pub(crate) fn sign_access(
        &self,
        user_id: &str,
        family: Option<&str>,
        now: Timestamp,
        login: Option<LoginMethod>,
    ) -> Result<String, AuthError> {
        self.sign(&Claims {
            token_type: TokenType::Access,
            exp: now.plus(self.token_settings.access_lifetime).secs(),
            iat: now.secs(),
            jti: random::hex128(),
            user_id: Some(user_id.to_string()),
            family: family.map(str::to_string),
            login,
        })
    }

    /// Signs a refresh token with the key whose window holds its `iat`: the grace window's
    /// re-signing of a successor picks the key that signed it first. `login` is the family's
    /// (every token of one login carries the same), so the re-signed successor is identical.
    fn sign_refresh(
        &self,
        user_id: &str,
        family: &str,
        s: &Successor,
        login: Option<LoginMethod>,
    ) -> Result<String, AuthError> {
        self.sign(&Claims {
            token_type: TokenType::Refresh,
            exp: s.exp,
            iat: s.iat,
            jti: s.jti.clone(),
            user_id: Some(user_id.to_string()),
            family: Some(family.to_string()),
            login,
        })
    }

    /// `POST /api/token/refresh/`: rotate the family atomically. Parallel refreshes of one token
    /// all succeed and agree inside the grace window; older tokens revoke the family.
    pub async fn refresh(&self, token: &str) -> Result<Refreshed, AuthError> {
        let now = self.now();
        let claims = self
            .verify_token(token, Some(TokenType::Refresh), now)
            .await?;
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
        // The login's method rides along from token to token of the family.
        let login = claims.login;
        let s = &self.token_settings;
        let outcome = self
            .families
            .rotate(&RotateRequest {
                family_id: family.clone(),
                presented_jti: claims.jti.clone(),
                new_jti: random::hex128(),
                now,
                grace: s.grace,
                idle_lifetime: s.refresh_lifetime,
                rotate: s.rotate,
            })
            .await?;
        let label = match &outcome {
            RotateOutcome::Rotated(_) => "rotated",
            RotateOutcome::Grace(_) => "grace",
            RotateOutcome::Unchanged(_) => "unchanged",
            RotateOutcome::ReuseDetected => "reuse",
            RotateOutcome::Revoked | RotateOutcome::NotFound => "revoked",
            RotateOutcome::Expired => "expired",
        };
        metrics::counter!("sekisho_refreshes_total", "outcome" => label).increment(1);
        let successor = |succ: &Successor, from_grace| -> Result<Refreshed, AuthError> {
            Ok(Refreshed {
                access: self.sign_access(&uid, Some(&family), now, login)?,
                refresh: Some(self.sign_refresh(&uid, &family, succ, login)?),
                refresh_max_age: Some(max_age(succ.exp, now)),
                from_grace,
            })
        };
        match outcome {
            RotateOutcome::Rotated(succ) => successor(&succ, false),
            RotateOutcome::Grace(succ) => successor(&succ, true),
            RotateOutcome::Unchanged(_) => Ok(Refreshed {
                access: self.sign_access(&uid, Some(&family), now, login)?,
                refresh: None,
                refresh_max_age: None,
                from_grace: false,
            }),
            RotateOutcome::ReuseDetected => {
                metrics::counter!("sekisho_reuse_detections_total").increment(1);
                tracing::warn!(user_id, family = %short(&family), "refresh token reuse detected; family revoked");
                Err(TokenError::Blacklisted.into())
            }
            RotateOutcome::Revoked | RotateOutcome::NotFound => Err(TokenError::Blacklisted.into()),
            RotateOutcome::Expired => Err(TokenError::Expired.into()),
        }
    }

    /// The family a refresh token belongs to. A token minted elsewhere with the same key (no
    /// `fid` claim) is adopted on first use into a family named after its `jti`, created only
    /// if absent, so it rotates — and is caught on reuse — exactly like sekisho's own tokens,
    /// and racing first uses agree on one family.
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
                absolute_exp: created.plus(self.token_settings.absolute_lifetime).secs(),
                revoked_at: None,
            })
            .await?;
        Ok(id)
    }

    /// `POST /api/token/verify/`: signature and lifetime, plus revocation state for tokens that
    /// belong to a family (a rotated-away refresh token counts as blacklisted, as in simplejwt).
    pub async fn verify(&self, token: &str) -> Result<(), AuthError> {
        let now = self.now();
        let claims = self.verify_token(token, None, now).await?;
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
        let grace = self.token_settings.grace;
        let live = |family: &Option<FamilyRecord>| match (family, claims.token_type) {
            (None, _) => false,
            (Some(f), TokenType::Refresh) => f.accepts(&claims.jti, now, grace),
            (Some(f), TokenType::Access) => !f.is_revoked(),
        };
        let family = self.families.family(&fid).await?;
        // A refusal from a cached copy is checked against the store: the token may be the
        // successor of a rotation another instance just made.
        if live(&family) || live(&self.families.family_fresh(&fid).await?) {
            Ok(())
        } else {
            Err(TokenError::Blacklisted.into())
        }
    }

    /// `POST /api/token/blacklist/`: log out the login the refresh token belongs to.
    pub async fn blacklist(&self, token: &str) -> Result<(), AuthError> {
        let now = self.now();
        let claims = self
            .verify_token(token, Some(TokenType::Refresh), now)
            .await?;
        let fid = &self.family_of(&claims).await?;
        match self.families.revoke_family(fid, now, "logout").await? {
            RevokeOutcome::Revoked => Ok(()),
            RevokeOutcome::AlreadyRevoked | RevokeOutcome::NotFound => {
                Err(TokenError::Blacklisted.into())
            }
        }
    }
}
