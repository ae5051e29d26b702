//! Bearer authentication of an API call (simplejwt's `JWTAuthentication`): the access token is
//! verified statelessly; strict mode also asks the family store whether its login still lives.

use super::{Claims, TokenError, TokenType};
use crate::account::{User, UserId};
use crate::auth::Auth;
use crate::error::AuthError;
use std::sync::Arc;

/// An authenticated bearer request.
#[derive(Clone, Debug)]
pub struct BearerIdentity {
    pub user: Arc<User>,
    pub claims: Claims,
}

impl Auth {
    /// Authenticates the token of an `Authorization: Bearer` header.
    pub async fn authenticate_bearer(&self, token: &str) -> Result<BearerIdentity, AuthError> {
        let now = self.now();
        let claims = self
            .verify_token(token, Some(TokenType::Access), now)
            .await
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
        if self.token_settings.strict_access
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

    /// Verifies a token against the key ring. A token naming a key this instance does not
    /// hold (another instance, or the CLI, made it a moment ago) is checked again after the
    /// stored keys are read once more, before the refusal stands.
    pub(crate) async fn verify_token(
        &self,
        token: &str,
        expected: Option<TokenType>,
        now: crate::clock::Timestamp,
    ) -> Result<Claims, TokenError> {
        match self.tokens.verify_checked(token, expected, now) {
            Err(r) if r.unknown_key && self.reload_for_unknown_key().await => {
                self.tokens.verify(token, expected, now)
            }
            other => other.map_err(|r| r.error),
        }
    }

    /// Signs claims; no usable key is an outage (fail closed), never an unsigned token.
    pub(crate) fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        self.tokens
            .sign(claims)
            .map_err(|e| AuthError::Unavailable(e.to_string()))
    }
}
