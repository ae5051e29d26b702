//! Passkeys (WebAuthn, through webauthn-rs): registration, the passwordless login and the
//! passkey as a second factor. Every ceremony is two calls: the begin stores the library's
//! state server-side under the SHA-256 of a 128-bit id handed to the caller, and the finish
//! takes it (a delete: a ceremony is used once, whatever the outcome) before it checks the
//! browser's answer.
//!
//! One model of factors: every key is registered with user verification *preferred*, and what
//! the authenticator reports decides what it counts for. A key that verified the user (a PIN
//! or biometric) is two factors by itself (`amr = ["hwk", "user", "mfa"]`); one that only
//! proved presence is one, so it completes a password login (`["pwd", "hwk"]`) but is never a
//! login alone.

use super::{ChallengeRecord, Flow, LoginFactors, hash_challenge, throttle_name};
use crate::account::{User, UserId};
use crate::auth::Auth;
use crate::clock::Timestamp;
use crate::config::WebauthnConfig;
use crate::error::AuthError;
use serde_json::Value;
use std::sync::Arc;
use webauthn_rs::prelude::{
    PublicKeyCredential, RegisterPublicKeyCredential, SecurityKey, SecurityKeyAuthentication,
    SecurityKeyRegistration, Url, Uuid, Webauthn, WebauthnBuilder,
};

/// A registered passkey as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// Public id (128 random bits, hex), what the API names the key by.
    pub id: String,
    pub user_id: UserId,
    /// The WebAuthn credential id, base64url: unique across all users.
    pub credential_id: String,
    pub name: String,
    /// The library's serialized credential (public key, counter, flags).
    pub credential: String,
    /// The registration verified the user: this key counts as two factors.
    pub user_verified: bool,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// What a ceremony was begun for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CeremonyKind {
    /// Registering a key for a logged-in user.
    Register,
    /// A passwordless login of the given flow.
    Login(Flow),
    /// The second factor of a login challenge (its hash is on the ceremony).
    SecondFactor(Flow),
}

impl CeremonyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::Register => "register",
            CeremonyKind::Login(Flow::Session) => "login:session",
            CeremonyKind::Login(Flow::Token) => "login:token",
            CeremonyKind::SecondFactor(Flow::Session) => "mfa:session",
            CeremonyKind::SecondFactor(Flow::Token) => "mfa:token",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "register" => CeremonyKind::Register,
            "login:session" => CeremonyKind::Login(Flow::Session),
            "login:token" => CeremonyKind::Login(Flow::Token),
            "mfa:session" => CeremonyKind::SecondFactor(Flow::Session),
            "mfa:token" => CeremonyKind::SecondFactor(Flow::Token),
            _ => return None,
        })
    }
}

/// A begun ceremony as stored: only the hash of its id, the library's state as JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CeremonyRecord {
    pub id_hash: String,
    pub kind: CeremonyKind,
    /// `None` for a passwordless login of an unknown name (it can only fail).
    pub user_id: Option<UserId>,
    /// The login challenge a second-factor ceremony belongs to.
    pub challenge_hash: Option<String>,
    pub state: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A begun ceremony: the id to send back with the answer, and the options for
/// `navigator.credentials.create` / `.get` (`{"publicKey": …}`, binary fields base64url).
#[derive(Clone)]
pub struct CeremonyStart {
    pub ceremony: String,
    pub options: Value,
}

impl std::fmt::Debug for CeremonyStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CeremonyStart").finish_non_exhaustive()
    }
}

/// The relying party, built once from `[webauthn]`; `None` when passkeys are off.
#[derive(Clone)]
pub struct RelyingParty {
    webauthn: Arc<Webauthn>,
    rp_id: String,
    decoy_key: [u8; 32],
}

impl RelyingParty {
    /// From config; an invalid rp_id/origin pair is a one-line error naming the key.
    pub fn from_config(c: &WebauthnConfig) -> Result<Option<Self>, String> {
        let Some(rp_id) = c.rp_id.as_deref() else {
            if c.origins.is_empty() {
                return Ok(None);
            }
            return Err("webauthn.rp_id: must be set when webauthn.origins is".into());
        };
        if c.origins.is_empty() {
            return Err(
                "webauthn.origins: must list at least one origin when webauthn.rp_id is set".into(),
            );
        }
        let mut urls = Vec::new();
        for o in &c.origins {
            let url =
                Url::parse(o).map_err(|e| format!("webauthn.origins: {o:?} is not a URL ({e})"))?;
            if !matches!(url.scheme(), "https" | "http")
                || url.host_str().is_none()
                || url.path() != "/"
                || url.query().is_some()
                || url.fragment().is_some()
                || !url.username().is_empty()
            {
                return Err(format!(
                    "webauthn.origins: {o:?} is not an origin (scheme://host[:port], no path)"
                ));
            }
            let host = url.host_str().unwrap_or_default();
            if host != rp_id && !host.ends_with(&format!(".{rp_id}")) {
                return Err(format!(
                    "webauthn.origins: {o:?} is not within webauthn.rp_id {rp_id:?}"
                ));
            }
            urls.push(url);
        }
        let mut b = WebauthnBuilder::new(rp_id, &urls[0])
            .map_err(|e| {
                format!(
                    "webauthn.rp_id: {rp_id:?} does not fit {:?}: {e}",
                    c.origins[0]
                )
            })?
            // Exact origins only: no sibling subdomain, no other port.
            .allow_subdomains(false)
            .allow_any_port(false)
            .rp_name(c.rp_name.as_deref().unwrap_or(rp_id));
        for u in &urls[1..] {
            b = b.append_allowed_origin(u);
        }
        let webauthn = b
            .build()
            .map_err(|e| format!("webauthn: invalid relying party: {e}"))?;
        Ok(Some(RelyingParty {
            webauthn: Arc::new(webauthn),
            rp_id: rp_id.to_string(),
            decoy_key: crate::random::bytes::<32>(),
        }))
    }

    /// Assertion options naming a credential no authenticator holds: stable per name for this
    /// process, so asking twice does not tell a decoy from a real key.
    fn decoy_options(&self, name: &str) -> Value {
        use base64::Engine;
        use hmac::{Hmac, KeyInit, Mac};
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&self.decoy_key)
            .expect("HMAC takes any key length");
        mac.update(name.as_bytes());
        let id = mac.finalize().into_bytes();
        serde_json::json!({
            "publicKey": {
                "challenge": b64.encode(crate::random::bytes::<32>()),
                "timeout": 300000,
                "rpId": self.rp_id,
                "allowCredentials": [{"type": "public-key", "id": b64.encode(&id[..16])}],
                "userVerification": "preferred",
            }
        })
    }
}

/// How recent a two-factor login must be to delete the last factor.
pub const LAST_FACTOR_RECENCY: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The longest name a key can be given.
pub const MAX_NAME_CHARS: usize = 64;

/// A key name as stored: trimmed, printable, 1 to 64 characters.
pub fn valid_name(name: &str) -> Option<String> {
    let n = name.trim();
    (!n.is_empty() && n.chars().count() <= MAX_NAME_CHARS && !n.chars().any(char::is_control))
        .then(|| n.to_string())
}

fn credential_id_of(key: &SecurityKey) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.cred_id().as_ref())
}

/// The WebAuthn user handle: derived from the user id (stable, no PII), as a UUID.
fn user_handle(user: UserId) -> Uuid {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("sekisho user {user}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    Uuid::from_bytes(b)
}

fn internal(what: &str) -> impl Fn(serde_json::Error) -> AuthError + '_ {
    move |e| AuthError::Internal(format!("passkey {what}: {e}"))
}

impl Auth {
    fn relying_party(&self) -> Result<&RelyingParty, AuthError> {
        self.passkeys.as_ref().ok_or(AuthError::PasskeysDisabled)
    }

    /// Whether passkeys are configured (`[webauthn]`).
    pub fn passkeys_enabled(&self) -> bool {
        self.passkeys.is_some()
    }

    async fn store_ceremony(
        &self,
        kind: CeremonyKind,
        user_id: Option<UserId>,
        challenge_hash: Option<String>,
        state: String,
        options: Value,
    ) -> Result<CeremonyStart, AuthError> {
        let now = self.now();
        let id = crate::random::hex128();
        self.mfa
            .create_ceremony(&CeremonyRecord {
                id_hash: hash_challenge(&id),
                kind,
                user_id,
                challenge_hash,
                state,
                created_at: now,
                expires_at: now.plus(self.mfa_settings.challenge_lifetime),
            })
            .await?;
        Ok(CeremonyStart {
            ceremony: id,
            options,
        })
    }

    /// Takes (deletes) the live ceremony an id names, of the given kind.
    async fn take_ceremony(
        &self,
        id: &str,
        kind: CeremonyKind,
    ) -> Result<CeremonyRecord, AuthError> {
        if !crate::random::is_hex128(id) {
            return Err(AuthError::PasskeyCeremonyInvalid);
        }
        let now = self.now();
        self.mfa
            .take_ceremony(&hash_challenge(id))
            .await?
            .filter(|c| c.kind == kind && now < c.expires_at)
            .ok_or(AuthError::PasskeyCeremonyInvalid)
    }

    async fn user_keys(
        &self,
        user: UserId,
    ) -> Result<Vec<(PasskeyRecord, SecurityKey)>, AuthError> {
        let mut out = Vec::new();
        for rec in self.mfa.passkeys(user).await? {
            match serde_json::from_str::<SecurityKey>(&rec.credential) {
                Ok(k) => out.push((rec, k)),
                Err(e) => {
                    tracing::warn!(user_id = user, passkey = %rec.id, error = %e, "a stored passkey does not parse; skipped")
                }
            }
        }
        Ok(out)
    }

    /// The user's registered passkeys.
    pub async fn list_passkeys(&self, user: &User) -> Result<Vec<PasskeyRecord>, AuthError> {
        self.relying_party()?;
        Ok(self.mfa.passkeys(user.id).await?)
    }

    /// A new key for an account that already has a second factor needs a login that passed
    /// two factors within [`LAST_FACTOR_RECENCY`] (`POST /api/auth/mfa/step-up/`, or a passkey
    /// login): else a stolen password-only session could plant a key of its own and log in
    /// without the password from then on.
    async fn may_add_a_key(
        &self,
        user: &User,
        login: Option<super::LoginMethod>,
    ) -> Result<(), AuthError> {
        let has_factor = self.has_confirmed_totp(user.id).await?
            || !self.mfa.passkeys(user.id).await?.is_empty();
        if has_factor {
            super::require_recent_mfa(login, LAST_FACTOR_RECENCY, self.now())?;
        }
        Ok(())
    }

    /// Starts registering a key for the logged-in user (their keys are excluded, so one
    /// authenticator is not registered twice). `login` is how the caller logged in.
    pub async fn begin_passkey_registration(
        &self,
        user: &User,
        login: Option<super::LoginMethod>,
    ) -> Result<CeremonyStart, AuthError> {
        let rp = self.relying_party()?;
        self.may_add_a_key(user, login).await?;
        let keys = self.user_keys(user.id).await?;
        let exclude: Vec<_> = keys.iter().map(|(_, k)| k.cred_id().clone()).collect();
        let (options, state) = rp
            .webauthn
            .start_securitykey_registration(
                user_handle(user.id),
                &user.username,
                &user.username,
                Some(exclude),
                None,
                None,
            )
            .map_err(|e| AuthError::Internal(format!("passkey registration options: {e}")))?;
        let options = without_hints(serde_json::to_value(&options).map_err(internal("options"))?);
        let state = serde_json::to_string(&state).map_err(internal("state"))?;
        self.store_ceremony(CeremonyKind::Register, Some(user.id), None, state, options)
            .await
    }

    /// Finishes a registration: the browser's answer to the ceremony's options. The new key is
    /// stored under `name`, and every other login of the user ends, as on any factor change
    /// (`keep` is the caller's session).
    pub async fn finish_passkey_registration(
        &self,
        user: &User,
        ceremony: &str,
        credential: &Value,
        name: &str,
        login: Option<super::LoginMethod>,
        keep: Option<&crate::session::SessionRecord>,
    ) -> Result<PasskeyRecord, AuthError> {
        let rp = self.relying_party()?;
        self.may_add_a_key(user, login).await?;
        let name = valid_name(name).ok_or(AuthError::PasskeyNameInvalid)?;
        let rec = self.take_ceremony(ceremony, CeremonyKind::Register).await?;
        if rec.user_id != Some(user.id) {
            return Err(AuthError::PasskeyCeremonyInvalid);
        }
        let answer: RegisterPublicKeyCredential = serde_json::from_value(credential.clone())
            .map_err(|_| AuthError::PasskeyResponseMalformed)?;
        let state: SecurityKeyRegistration =
            serde_json::from_str(&rec.state).map_err(internal("state"))?;
        let key = rp
            .webauthn
            .finish_securitykey_registration(&answer, &state)
            .map_err(|e| {
                tracing::info!(user_id = user.id, error = %e, "passkey registration refused");
                AuthError::PasskeyRefused
            })?;
        let user_verified = registered_with_user_verification(&key);
        let record = PasskeyRecord {
            id: crate::random::hex128(),
            user_id: user.id,
            credential_id: credential_id_of(&key),
            name,
            credential: serde_json::to_string(&key).map_err(internal("credential"))?,
            user_verified,
            created_at: self.now(),
            last_used_at: None,
        };
        match self.mfa.add_passkey(&record).await {
            Ok(()) => {}
            Err(crate::store::StoreError::Conflict(_)) => {
                return Err(AuthError::PasskeyAlreadyRegistered);
            }
            Err(e) => return Err(e.into()),
        }
        self.end_all_logins(user.id, crate::account::EndReason::FactorChanged, keep)
            .await?;
        tracing::info!(
            user_id = user.id,
            user_verified,
            "passkey registered; other logins ended"
        );
        Ok(record)
    }

    pub async fn rename_passkey(
        &self,
        user: &User,
        id: &str,
        name: &str,
    ) -> Result<PasskeyRecord, AuthError> {
        self.relying_party()?;
        let name = valid_name(name).ok_or(AuthError::PasskeyNameInvalid)?;
        if !crate::random::is_hex128(id) || !self.mfa.rename_passkey(user.id, id, &name).await? {
            return Err(AuthError::NotFound("passkey"));
        }
        self.mfa
            .passkeys(user.id)
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or(AuthError::NotFound("passkey"))
    }

    /// Deletes one of the caller's keys. Removing their last factor needs a login that passed
    /// two factors within [`LAST_FACTOR_RECENCY`] (the rule TOTP removal follows by asking for a code):
    /// a stolen password-only session must not strip the account of its protection.
    /// Every other login of the user ends (`keep` is the caller's session).
    pub async fn delete_passkey(
        &self,
        user: &User,
        id: &str,
        login: Option<super::LoginMethod>,
        keep: Option<&crate::session::SessionRecord>,
    ) -> Result<(), AuthError> {
        self.relying_party()?;
        let keys = self.mfa.passkeys(user.id).await?;
        if !crate::random::is_hex128(id) || !keys.iter().any(|p| p.id == id) {
            return Err(AuthError::NotFound("passkey"));
        }
        let last = keys.len() == 1 && !self.has_confirmed_totp(user.id).await?;
        if last {
            super::require_recent_mfa(login, LAST_FACTOR_RECENCY, self.now())?;
        }
        if !self.mfa.delete_passkey(user.id, id).await? {
            return Err(AuthError::NotFound("passkey"));
        }
        self.end_all_logins(user.id, crate::account::EndReason::FactorChanged, keep)
            .await?;
        tracing::info!(
            user_id = user.id,
            last_factor = last,
            "passkey deleted; other logins ended"
        );
        Ok(())
    }

    /// Options to authenticate with one of `user`'s keys (`None`: an unknown name, or no
    /// key — the answer then looks the same, and the finish can only fail).
    async fn begin_assertion(
        &self,
        user: Option<&User>,
        kind: CeremonyKind,
        challenge_hash: Option<String>,
    ) -> Result<CeremonyStart, AuthError> {
        let rp = self.relying_party()?;
        let keys = match user {
            Some(u) => self.user_keys(u.id).await?,
            None => Vec::new(),
        };
        let keys: Vec<SecurityKey> = keys.into_iter().map(|(_, k)| k).collect();
        if keys.is_empty() {
            // An unknown name or a user without a key gets options of the same shape, so the
            // begin does not tell which names exist; the finish can only fail.
            let options = rp.decoy_options(user.map_or("", |u| u.username.as_str()));
            return self
                .store_ceremony(kind, None, challenge_hash, String::new(), options)
                .await;
        }
        let (options, state) = rp
            .webauthn
            .start_securitykey_authentication(&keys)
            .map_err(|e| AuthError::Internal(format!("passkey authentication options: {e}")))?;
        let options = without_hints(serde_json::to_value(&options).map_err(internal("options"))?);
        let state = serde_json::to_string(&state).map_err(internal("state"))?;
        self.store_ceremony(kind, user.map(|u| u.id), challenge_hash, state, options)
            .await
    }

    /// Checks an assertion against a taken ceremony's state, then records the use (the new
    /// counter) with a compare-and-swap: a regressed counter (a cloned key) or a racing use of
    /// the same assertion is refused. Returns the key's factor count as observed now.
    async fn check_assertion(
        &self,
        user: &User,
        rec: &CeremonyRecord,
        credential: &Value,
    ) -> Result<bool, AuthError> {
        let rp = self.relying_party()?;
        let answer: PublicKeyCredential = serde_json::from_value(credential.clone())
            .map_err(|_| AuthError::PasskeyResponseMalformed)?;
        let state: SecurityKeyAuthentication =
            serde_json::from_str(&rec.state).map_err(internal("state"))?;
        let result = rp
            .webauthn
            .finish_securitykey_authentication(&answer, &state)
            .map_err(|e| {
                tracing::info!(user_id = user.id, error = %e, "passkey assertion refused");
                AuthError::PasskeyRefused
            })?;
        let (stored, mut key) = self
            .user_keys(user.id)
            .await?
            .into_iter()
            .find(|(_, k)| k.cred_id() == result.cred_id())
            .ok_or(AuthError::PasskeyRefused)?;
        // `Some(false)` would be "not this key"; `None` a key the result does not update.
        key.update_credential(&result);
        let updated = serde_json::to_string(&key).map_err(internal("credential"))?;
        if !self
            .mfa
            .use_passkey(&stored.id, &stored.credential, &updated, self.now())
            .await?
        {
            return Err(AuthError::PasskeyRefused);
        }
        Ok(result.user_verified())
    }

    /// A passkey check behind the login throttle (a failed assertion counts like a wrong
    /// password).
    async fn throttled_assertion(
        &self,
        user: &User,
        rec: &CeremonyRecord,
        credential: &Value,
        client_ip: &str,
    ) -> Result<bool, AuthError> {
        let name = throttle_name(user);
        if let Err(wait) = self.throttle.check(&name, client_ip) {
            return Err(AuthError::Throttled(wait));
        }
        match self.check_assertion(user, rec, credential).await {
            Ok(uv) => {
                metrics::counter!("sekisho_passkey_checks_total", "result" => "success")
                    .increment(1);
                Ok(uv)
            }
            Err(e @ (AuthError::PasskeyRefused | AuthError::PasskeyResponseMalformed)) => {
                self.throttle.record_failure(&name, client_ip);
                metrics::counter!("sekisho_passkey_checks_total", "result" => "failure")
                    .increment(1);
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Begins a passwordless login of `flow` for `username`.
    pub async fn begin_passkey_login(
        &self,
        username: &str,
        flow: Flow,
    ) -> Result<CeremonyStart, AuthError> {
        self.relying_party()?;
        let user = match self.users.credentials(username).await? {
            Some(c) if c.is_active => self.users.user_by_id(c.id).await?,
            _ => None,
        };
        self.begin_assertion(user.as_deref(), CeremonyKind::Login(flow), None)
            .await
    }

    /// Finishes a passwordless login: only a key that verified the user logs in alone.
    pub(crate) async fn finish_passkey_login(
        &self,
        ceremony: &str,
        flow: Flow,
        credential: &Value,
        client_ip: &str,
    ) -> Result<User, AuthError> {
        let rec = self
            .take_ceremony(ceremony, CeremonyKind::Login(flow))
            .await?;
        let user = match rec.user_id {
            Some(id) => self.users.user_by_id(id).await?.filter(|u| u.is_active),
            None => None,
        }
        .ok_or(AuthError::PasskeyRefused)?;
        let uv = self
            .throttled_assertion(&user, &rec, credential, client_ip)
            .await?;
        if !uv {
            // Presence alone is one factor: not a login.
            return Err(AuthError::PasskeyUserVerificationRequired);
        }
        self.throttle.record_success(&throttle_name(&user));
        Ok((*user).clone())
    }

    /// Begins the passkey answer to a login challenge of `flow`.
    pub async fn begin_passkey_second_factor(
        &self,
        challenge: &str,
        flow: Flow,
    ) -> Result<CeremonyStart, AuthError> {
        self.relying_party()?;
        let (rec, user) = self.live_challenge(challenge, flow).await?;
        if rec.purpose != super::Purpose::Verify {
            return Err(AuthError::MfaChallengeInvalid);
        }
        self.begin_assertion(
            Some(&user),
            CeremonyKind::SecondFactor(flow),
            Some(rec.id_hash),
        )
        .await
    }

    /// The passkey as the second factor of a challenge: the ceremony must belong to it.
    pub(super) async fn passkey_second_factor(
        &self,
        challenge: &ChallengeRecord,
        user: &User,
        ceremony: &str,
        credential: &Value,
        client_ip: &str,
    ) -> Result<LoginFactors, AuthError> {
        let rec = self
            .take_ceremony(ceremony, CeremonyKind::SecondFactor(challenge.flow))
            .await?;
        if rec.challenge_hash.as_deref() != Some(challenge.id_hash.as_str())
            || rec.user_id != Some(user.id)
        {
            return Err(AuthError::PasskeyCeremonyInvalid);
        }
        self.throttled_assertion(user, &rec, credential, client_ip)
            .await?;
        Ok(LoginFactors::PasswordAndKey)
    }

    /// Asks the store even with passkeys off: turning `[webauthn]` off must not let a
    /// password alone into an account protected by a key (fail closed).
    pub(super) async fn has_passkey(&self, user: UserId) -> Result<bool, AuthError> {
        Ok(!self.mfa.passkeys(user).await?.is_empty())
    }
}

/// The library's security-key flow hints "security-key"; the same flow registers platform
/// passkeys here, so the browser is left to offer every kind of authenticator. It also asks
/// (unenforced) for credProtect "user verification required", which browsers refuse next to
/// user verification *preferred* — the policy that lets presence-only keys register — so that
/// request goes too: what a key counts for is read from its flags, not from credProtect.
fn without_hints(mut options: Value) -> Value {
    if let Some(pk) = options.get_mut("publicKey").and_then(Value::as_object_mut) {
        pk.remove("hints");
        if let Some(ext) = pk.get_mut("extensions").and_then(Value::as_object_mut) {
            ext.remove("credentialProtectionPolicy");
            ext.remove("enforceCredentialProtectionPolicy");
        }
    }
    options
}

/// Whether the registration verified the user, as the library recorded it.
fn registered_with_user_verification(key: &SecurityKey) -> bool {
    let cred: webauthn_rs::prelude::Credential = key.clone().into();
    cred.user_verified
}
