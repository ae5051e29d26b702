//! Step-up: a caller who is already logged in presents a current code and their login counts
//! as a second-factor login from now on, for the `mfa_within` rules that guard sensitive
//! actions. A session continues under a new id (a privilege change, so fixation-safe like a
//! login); a bearer caller gets a new access token of the same family. Refreshes keep the
//! family's original method: the step-up lasts as long as that access token.

use super::{Factor, LoginMethod};
use crate::account::User;
use crate::auth::Auth;
use crate::error::AuthError;
use crate::session::{NewSession, SessionRecord};
use crate::token::{Claims, TokenError};

impl Auth {
    /// Checks and uses up a code of the user's confirmed factor (behind the login throttle,
    /// like every code); the login method a step-up gives.
    pub async fn step_up(
        &self,
        user: &User,
        factor: Factor<'_>,
        client_ip: &str,
    ) -> Result<LoginMethod, AuthError> {
        if !self.has_confirmed_totp(user.id).await? {
            return Err(AuthError::MfaNotEnrolled);
        }
        self.throttled_factor(user, factor, client_ip).await?;
        tracing::info!(user_id = user.id, "second factor passed for a step-up");
        Ok(LoginMethod::second_factor(self.now()))
    }

    /// The session after a step-up: a new id, the same deadlines, marked with `login`.
    pub async fn stepped_up_session(
        &self,
        current: &SessionRecord,
        user: &User,
        login: LoginMethod,
    ) -> Result<NewSession, AuthError> {
        self.cycle_session_as(current, user, login).await
    }

    /// A new access token for the caller of `claims` (an access token), marked with `login`.
    pub fn stepped_up_access(
        &self,
        claims: &Claims,
        login: LoginMethod,
    ) -> Result<String, AuthError> {
        let user_id = claims
            .user_id
            .as_deref()
            .ok_or(AuthError::Token(TokenError::Invalid))?;
        self.sign_access(user_id, claims.family.as_deref(), self.now(), Some(login))
    }
}
