//! Second factors: TOTP (RFC 6238) and single-use recovery codes, and the gate every
//! first-factor path goes through. Follow one login: the password checks out
//! ([`Auth::check_password`]'s first half), [`Auth::second_factor_gate`] sees a confirmed
//! factor and answers with a short-lived, single-use challenge instead of a session or tokens;
//! the completion call presents the challenge and a code, and only then is exactly what the
//! first step would have issued handed out, marked `amr = ["pwd", "otp"]`.
//!
//! Wrong codes count against the login throttle's per-account and per-address keys, exactly as
//! wrong passwords do, and a password that checks out does not reset the account's count while
//! a factor is still owed (else knowing the password would buy unlimited code guesses).

pub mod passkey;
pub mod recovery;
mod step_up;
pub mod totp;

use crate::account::{EndReason, User, UserId};
use crate::auth::Auth;
use crate::clock::Timestamp;
use crate::error::AuthError;
use crate::session::SessionRecord;
use crate::token::managed::KeyEncryptionKey;
use recovery::RecoveryKey;
use std::time::Duration;

/// Which first step a challenge continues: the completion answers in the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// `POST /api/auth/login/`: a session cookie and a CSRF token.
    Session,
    /// `POST /api/token/`: an access and refresh pair.
    Token,
}

impl Flow {
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Session => "session",
            Flow::Token => "token",
        }
    }

    pub fn parse(s: &str) -> Option<Flow> {
        match s {
            "session" => Some(Flow::Session),
            "token" => Some(Flow::Token),
            _ => None,
        }
    }
}

/// What a challenge lets its holder do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Present a code of the confirmed factor.
    Verify,
    /// Enrol a first factor (`mfa.required_for_staff`), then log in by confirming it.
    Enrol,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Verify => "verify",
            Purpose::Enrol => "enrol",
        }
    }

    pub fn parse(s: &str) -> Option<Purpose> {
        match s {
            "verify" => Some(Purpose::Verify),
            "enrol" => Some(Purpose::Enrol),
            _ => None,
        }
    }
}

/// A user's TOTP secret as stored: sealed, pending until confirmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotpRecord {
    pub user_id: UserId,
    /// AES-256-GCM sealed with the MFA key, bound to the user id.
    pub sealed_secret: Vec<u8>,
    pub created_at: Timestamp,
    /// `None` while the enrolment waits for its first code.
    pub confirmed_at: Option<Timestamp>,
    /// The last time step accepted (replay protection): only later steps count.
    pub last_step: Option<i64>,
}

/// A login waiting for its second factor. The holder's token is 128 random bits; only its
/// SHA-256 is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeRecord {
    pub id_hash: String,
    pub user_id: UserId,
    pub flow: Flow,
    pub purpose: Purpose,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Which factors a login passed. One model: a password is one factor, a one-time code or a
/// key that proved presence one more, and a passkey that verified the user (PIN, biometric)
/// two by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginFactors {
    /// `["pwd"]`.
    Password,
    /// A password and a TOTP or recovery code (both one-time passwords): `["pwd", "otp"]`.
    PasswordAndOtp,
    /// A password and a passkey assertion: `["pwd", "hwk"]`.
    PasswordAndKey,
    /// A passkey that verified the user, no password: `["hwk", "user", "mfa"]`.
    Passkey,
}

impl LoginFactors {
    /// RFC 8176 values.
    pub fn amr(self) -> &'static [&'static str] {
        match self {
            LoginFactors::Password => &["pwd"],
            LoginFactors::PasswordAndOtp => &["pwd", "otp"],
            LoginFactors::PasswordAndKey => &["pwd", "hwk"],
            LoginFactors::Passkey => &["hwk", "user", "mfa"],
        }
    }

    /// Two factors or more.
    pub fn multi_factor(self) -> bool {
        !matches!(self, LoginFactors::Password)
    }
}

/// How a login was authenticated, carried by its tokens (`amr`, `auth_time` claims) and its
/// session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginMethod {
    pub factors: LoginFactors,
    /// When the login completed, Unix seconds.
    pub auth_time: i64,
}

impl LoginMethod {
    pub fn new(factors: LoginFactors, at: Timestamp) -> Self {
        LoginMethod {
            factors,
            auth_time: at.secs(),
        }
    }

    pub fn password(at: Timestamp) -> Self {
        Self::new(LoginFactors::Password, at)
    }

    /// A password and a one-time code.
    pub fn second_factor(at: Timestamp) -> Self {
        Self::new(LoginFactors::PasswordAndOtp, at)
    }

    /// RFC 8176 values.
    pub fn amr(self) -> &'static [&'static str] {
        self.factors.amr()
    }

    /// Reads an `amr` list back; unknown lists are `None` (no claim about the login).
    pub fn from_amr<S: AsRef<str>>(amr: &[S], auth_time: i64) -> Option<Self> {
        let v: Vec<&str> = amr.iter().map(AsRef::as_ref).collect();
        let factors = match v.as_slice() {
            ["pwd"] => LoginFactors::Password,
            ["pwd", "otp"] => LoginFactors::PasswordAndOtp,
            ["pwd", "hwk"] => LoginFactors::PasswordAndKey,
            ["hwk", "user", "mfa"] => LoginFactors::Passkey,
            _ => return None,
        };
        Some(LoginMethod { factors, auth_time })
    }

    /// Whether the login passed two factors at most `within` before `now` (a step-up
    /// requirement).
    pub fn recent_second_factor(self, within: Duration, now: Timestamp) -> bool {
        self.factors.multi_factor() && now.secs() - self.auth_time <= within.as_secs() as i64
    }
}

/// The step-up rule for a caller's login method (`None`: the login says nothing, e.g. a token
/// minted elsewhere): refused unless a second factor passed within `within`.
pub fn require_recent_mfa(
    method: Option<LoginMethod>,
    within: Duration,
    now: Timestamp,
) -> Result<(), AuthError> {
    if method.is_some_and(|m| m.recent_second_factor(within, now)) {
        Ok(())
    } else {
        Err(AuthError::MfaStepUpRequired)
    }
}

/// What a first step answers instead of a login: present it (with a code) to the completion
/// endpoint of the same flow. The token is a secret: `Debug` does not print it.
#[derive(Clone)]
pub struct MfaChallenge {
    pub token: String,
    pub methods: &'static [&'static str],
    pub expires_in: Duration,
}

impl std::fmt::Debug for MfaChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaChallenge")
            .field("methods", &self.methods)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// A code presented as a second factor.
#[derive(Clone, Copy, Debug)]
pub enum Factor<'a> {
    Totp(&'a str),
    Recovery(&'a str),
    /// A passkey assertion answering the ceremony begun for the challenge (login only).
    Passkey {
        ceremony: &'a str,
        credential: &'a serde_json::Value,
    },
}

/// A passed second step.
#[derive(Clone, Debug)]
pub struct Passed {
    pub user: User,
    /// What the whole login passed.
    pub factors: LoginFactors,
    /// The recovery codes of an enrolment this step confirmed (shown once).
    pub recovery_codes: Option<Vec<String>>,
}

/// A TOTP enrolment: what an authenticator app needs, shown once.
#[derive(Clone, Debug)]
pub struct TotpEnrolment {
    /// Base32, no padding.
    pub secret: String,
    pub otpauth_uri: String,
    /// The URI as a QR code (an SVG document).
    pub qr_svg: String,
}

/// A user's second factors, for `GET /api/auth/mfa/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MfaStatus {
    pub totp_confirmed: bool,
    /// Registered passkeys (0 when passkeys are off).
    pub passkeys: u64,
    /// An enrolment waits for its first code.
    pub totp_pending: bool,
    pub recovery_codes_left: u64,
}

/// The keys of the second factors: the sealing key of stored TOTP secrets (the same AES-256-GCM
/// sealing as managed signing keys) and the key recovery codes are hashed with.
pub struct MfaKeys {
    seal: KeyEncryptionKey,
    recovery: RecoveryKey,
}

impl MfaKeys {
    /// From a server secret of at least 32 bytes (`jwt.key_encryption_key` where configured).
    pub fn derive(secret: &[u8]) -> Result<Self, crate::token::KeyError> {
        Ok(MfaKeys {
            seal: KeyEncryptionKey::derive(secret)?,
            recovery: RecoveryKey::derive(secret),
        })
    }
}

/// Settings copied out of `MfaConfig` once.
#[derive(Clone, Debug)]
pub(crate) struct MfaSettings {
    pub issuer: String,
    pub challenge_lifetime: Duration,
    pub required_for_staff: bool,
}

impl From<&crate::config::MfaConfig> for MfaSettings {
    fn from(c: &crate::config::MfaConfig) -> Self {
        MfaSettings {
            issuer: c.issuer.clone(),
            challenge_lifetime: c.challenge_lifetime.0,
            required_for_staff: c.required_for_staff,
        }
    }
}

/// The methods a verify challenge offers: by what the user has.
pub const METHODS: &[&str] = &["totp", "recovery"];
const METHODS_WITH_PASSKEY: &[&str] = &["totp", "recovery", "passkey"];
const PASSKEY_ONLY: &[&str] = &["passkey"];
/// What an enrolment challenge offers.
pub const ENROL_METHODS: &[&str] = &["totp"];

/// What the sealed secret is bound to: a blob copied to another user's row does not open.
fn seal_label(user: UserId) -> String {
    format!("totp:{user}")
}
const SEAL_ALGORITHM: &str = "TOTP-SHA1";

fn hash_challenge(token: &str) -> String {
    use sha2::{Digest, Sha256};
    crate::random::hex(&Sha256::digest(token.as_bytes()))
}

/// The throttle's account key for a user (the login's normalisation of the stored name).
fn throttle_name(user: &User) -> String {
    crate::account::rules::normalize_username(&user.username)
}

impl Auth {
    /// After a password checked out: `Ok` when the login may complete now (the account's
    /// failure count is then reset), else the challenge the caller must answer.
    pub(crate) async fn second_factor_gate(
        &self,
        user: &User,
        flow: Flow,
    ) -> Result<(), AuthError> {
        let totp = self
            .mfa
            .totp(user.id)
            .await?
            .is_some_and(|t| t.confirmed_at.is_some());
        let passkey = self.has_passkey(user.id).await?;
        let purpose = match totp {
            _ if totp || passkey => Purpose::Verify,
            _ if self.mfa_settings.required_for_staff && (user.is_staff || user.is_superuser) => {
                Purpose::Enrol
            }
            _ => {
                self.throttle.record_success(&throttle_name(user));
                return Ok(());
            }
        };
        let now = self.now();
        let token = crate::random::hex128();
        let lifetime = self.mfa_settings.challenge_lifetime;
        self.mfa
            .create_challenge(&ChallengeRecord {
                id_hash: hash_challenge(&token),
                user_id: user.id,
                flow,
                purpose,
                created_at: now,
                expires_at: now.plus(lifetime),
            })
            .await?;
        metrics::counter!("sekisho_mfa_challenges_total", "purpose" => purpose.as_str())
            .increment(1);
        match purpose {
            Purpose::Verify => Err(AuthError::MfaRequired(MfaChallenge {
                token,
                methods: match (totp, passkey) {
                    (true, true) => METHODS_WITH_PASSKEY,
                    (false, true) => PASSKEY_ONLY,
                    _ => METHODS,
                },
                expires_in: lifetime,
            })),
            Purpose::Enrol => Err(AuthError::MfaEnrolmentRequired(MfaChallenge {
                token,
                methods: ENROL_METHODS,
                expires_in: lifetime,
            })),
        }
    }

    fn mfa_keys(&self) -> &MfaKeys {
        &self.mfa_keys
    }

    /// The live challenge a token names for `flow`, and its user (active).
    async fn live_challenge(
        &self,
        token: &str,
        flow: Flow,
    ) -> Result<(ChallengeRecord, std::sync::Arc<User>), AuthError> {
        if !crate::random::is_hex128(token) {
            return Err(AuthError::MfaChallengeInvalid);
        }
        let now = self.now();
        let rec = self
            .mfa
            .challenge(&hash_challenge(token))
            .await?
            .filter(|c| c.flow == flow && now < c.expires_at)
            .ok_or(AuthError::MfaChallengeInvalid)?;
        let user = self
            .users
            .user_by_id(rec.user_id)
            .await?
            .filter(|u| u.is_active)
            .ok_or(AuthError::MfaChallengeInvalid)?;
        Ok((rec, user))
    }

    /// Checks a code against the user's confirmed factor and uses it up: a TOTP step is
    /// recorded as used (only later steps count from then on), a recovery code is deleted.
    /// `false` for a wrong, replayed or malformed code.
    async fn use_factor(&self, user: UserId, factor: Factor<'_>) -> Result<bool, AuthError> {
        match factor {
            Factor::Totp(code) => {
                if !totp::plausible_code(code) {
                    return Ok(false);
                }
                let Some(rec) = self.mfa.totp(user).await? else {
                    return Ok(false);
                };
                if rec.confirmed_at.is_none() {
                    return Ok(false);
                }
                let secret = self.open_secret(user, &rec)?;
                match totp::matching_step(&secret, code, self.now().secs(), rec.last_step) {
                    Some(step) => Ok(self.mfa.use_totp_step(user, step).await?),
                    None => Ok(false),
                }
            }
            Factor::Recovery(code) => match recovery::normalize(code) {
                Some(n) => Ok(self
                    .mfa
                    .use_recovery_code(user, &self.mfa_keys().recovery.hash(&n))
                    .await?),
                None => Ok(false),
            },
            // Only a login challenge takes a passkey (see `pass_challenge`).
            Factor::Passkey { .. } => Ok(false),
        }
    }

    fn open_secret(
        &self,
        user: UserId,
        rec: &TotpRecord,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, AuthError> {
        self.mfa_keys()
            .seal
            .open(&seal_label(user), SEAL_ALGORITHM, &rec.sealed_secret)
            .map_err(|_| {
                AuthError::Internal(format!(
                    "the TOTP secret of user {user} does not open with the configured key"
                ))
            })
    }

    /// A factor check behind the login throttle: locked-out accounts and addresses are refused
    /// before any check, and a wrong code counts as a failed login.
    async fn throttled_factor(
        &self,
        user: &User,
        factor: Factor<'_>,
        client_ip: &str,
    ) -> Result<(), AuthError> {
        let name = throttle_name(user);
        if let Err(wait) = self.throttle.check(&name, client_ip) {
            metrics::counter!("sekisho_mfa_checks_total", "result" => "throttled").increment(1);
            return Err(AuthError::Throttled(wait));
        }
        if self.use_factor(user.id, factor).await? {
            metrics::counter!("sekisho_mfa_checks_total", "result" => "success").increment(1);
            Ok(())
        } else {
            self.throttle.record_failure(&name, client_ip);
            metrics::counter!("sekisho_mfa_checks_total", "result" => "failure").increment(1);
            Err(AuthError::MfaCodeInvalid)
        }
    }

    /// The second step of a login: the challenge of `flow` plus a code. On success the
    /// challenge is used up and the user returned, for the caller to issue what the first step
    /// would have (with the recovery codes of an enrolment the challenge completed).
    pub(crate) async fn pass_challenge(
        &self,
        token: &str,
        flow: Flow,
        factor: Factor<'_>,
        client_ip: &str,
    ) -> Result<Passed, AuthError> {
        let (rec, user) = self.live_challenge(token, flow).await?;
        let mut factors = LoginFactors::PasswordAndOtp;
        let recovery_codes = match rec.purpose {
            Purpose::Verify => {
                if let Factor::Passkey {
                    ceremony,
                    credential,
                } = factor
                {
                    factors = self
                        .passkey_second_factor(&rec, &user, ceremony, credential, client_ip)
                        .await?;
                } else {
                    self.throttled_factor(&user, factor, client_ip).await?;
                }
                None
            }
            Purpose::Enrol => {
                let Factor::Totp(code) = factor else {
                    return Err(AuthError::MfaCodeInvalid);
                };
                // Confirming the enrolment is the factor check; logins from before the factor
                // end, as on any factor change (the one this challenge completes follows).
                let codes = recovery::generate();
                self.confirm_pending(&user, code, client_ip, &codes).await?;
                self.end_all_logins(user.id, EndReason::FactorChanged, None)
                    .await?;
                Some(codes)
            }
        };
        if !self.mfa.consume_challenge(&rec.id_hash).await? {
            // Another request completed it first: a challenge logs in once.
            return Err(AuthError::MfaChallengeInvalid);
        }
        self.throttle.record_success(&throttle_name(&user));
        Ok(Passed {
            user: (*user).clone(),
            factors,
            recovery_codes,
        })
    }

    /// Starts (or restarts) a TOTP enrolment: a new secret, pending until a code confirms it.
    /// Refused while a confirmed one exists (disable it first).
    pub async fn begin_totp(&self, user: &User) -> Result<TotpEnrolment, AuthError> {
        let secret = zeroize::Zeroizing::new(crate::random::bytes::<{ totp::SECRET_BYTES }>());
        let sealed = self
            .mfa_keys()
            .seal
            .seal(&seal_label(user.id), SEAL_ALGORITHM, &secret[..]);
        if !self.mfa.begin_totp(user.id, &sealed, self.now()).await? {
            return Err(AuthError::MfaAlreadyEnrolled);
        }
        let b32 = totp::base32(&secret[..]);
        let uri = totp::otpauth_uri(&self.mfa_settings.issuer, &user.username, &b32);
        let qr_svg = totp::qr_svg(&uri)
            .ok_or_else(|| AuthError::Internal("the key URI does not fit a QR code".into()))?;
        Ok(TotpEnrolment {
            secret: b32,
            otpauth_uri: uri,
            qr_svg,
        })
    }

    /// Begins the enrolment an "enrolment required" challenge asks for (the holder is not
    /// logged in yet; the challenge is their proof of the password).
    pub async fn begin_totp_for_challenge(&self, token: &str) -> Result<TotpEnrolment, AuthError> {
        for flow in [Flow::Session, Flow::Token] {
            match self.live_challenge(token, flow).await {
                Ok((rec, user)) if rec.purpose == Purpose::Enrol => {
                    return self.begin_totp(&user).await;
                }
                Ok(_) => return Err(AuthError::MfaChallengeInvalid),
                Err(AuthError::MfaChallengeInvalid) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(AuthError::MfaChallengeInvalid)
    }

    /// Confirms the pending enrolment with its first code: the factor is active from now on,
    /// and a fresh set of recovery codes is returned (shown once). Every other login of the
    /// user ends, as on a password change: one made with the password alone (perhaps by
    /// whoever else knows it) must not outlive the new factor. `keep` is the caller's session.
    pub async fn confirm_totp(
        &self,
        user: &User,
        code: &str,
        client_ip: &str,
        keep: Option<&SessionRecord>,
    ) -> Result<Vec<String>, AuthError> {
        let codes = recovery::generate();
        self.confirm_pending(user, code, client_ip, &codes).await?;
        self.end_all_logins(user.id, EndReason::FactorChanged, keep)
            .await?;
        Ok(codes)
    }

    /// Confirms a pending secret with a code and stores `codes` (hashed) as the recovery set.
    async fn confirm_pending(
        &self,
        user: &User,
        code: &str,
        client_ip: &str,
        codes: &[String],
    ) -> Result<(), AuthError> {
        let name = throttle_name(user);
        if let Err(wait) = self.throttle.check(&name, client_ip) {
            return Err(AuthError::Throttled(wait));
        }
        let rec = match self.mfa.totp(user.id).await? {
            None => return Err(AuthError::MfaNotEnrolled),
            Some(r) if r.confirmed_at.is_some() => return Err(AuthError::MfaAlreadyEnrolled),
            Some(r) => r,
        };
        let secret = self.open_secret(user.id, &rec)?;
        let Some(step) = totp::matching_step(&secret, code, self.now().secs(), None) else {
            self.throttle.record_failure(&name, client_ip);
            return Err(AuthError::MfaCodeInvalid);
        };
        let key = &self.mfa_keys().recovery;
        let hashes: Vec<String> = codes
            .iter()
            .filter_map(|c| recovery::normalize(c))
            .map(|n| key.hash(&n))
            .collect();
        if !self
            .mfa
            .confirm_totp(user.id, step, self.now(), &hashes)
            .await?
        {
            return Err(AuthError::MfaNotEnrolled);
        }
        tracing::info!(user_id = user.id, "TOTP factor confirmed; other logins end");
        Ok(())
    }

    /// Removes the user's TOTP factor and recovery codes; needs a current code of either.
    /// Every other login ends (`keep` is the caller's session), as on enrolment.
    pub async fn disable_totp(
        &self,
        user: &User,
        factor: Factor<'_>,
        client_ip: &str,
        keep: Option<&SessionRecord>,
    ) -> Result<(), AuthError> {
        if !self.has_confirmed_totp(user.id).await? {
            // A pending enrolment is simply dropped.
            return if self.mfa.delete_totp(user.id).await? {
                Ok(())
            } else {
                Err(AuthError::MfaNotEnrolled)
            };
        }
        self.throttled_factor(user, factor, client_ip).await?;
        self.mfa.delete_totp(user.id).await?;
        self.end_all_logins(user.id, EndReason::FactorChanged, keep)
            .await?;
        tracing::info!(
            user_id = user.id,
            "TOTP factor disabled; other logins ended"
        );
        Ok(())
    }

    /// A new set of recovery codes in place of the old (all of which stop working); needs a
    /// current code.
    pub async fn regenerate_recovery_codes(
        &self,
        user: &User,
        factor: Factor<'_>,
        client_ip: &str,
    ) -> Result<Vec<String>, AuthError> {
        if !self.has_confirmed_totp(user.id).await? {
            return Err(AuthError::MfaNotEnrolled);
        }
        self.throttled_factor(user, factor, client_ip).await?;
        let codes = recovery::generate();
        let key = &self.mfa_keys().recovery;
        let hashes: Vec<String> = codes
            .iter()
            .filter_map(|c| recovery::normalize(c))
            .map(|n| key.hash(&n))
            .collect();
        self.mfa
            .replace_recovery_codes(user.id, &hashes, self.now())
            .await?;
        Ok(codes)
    }

    pub(crate) async fn has_confirmed_totp(&self, user: UserId) -> Result<bool, AuthError> {
        Ok(self
            .mfa
            .totp(user)
            .await?
            .is_some_and(|t| t.confirmed_at.is_some()))
    }

    pub async fn mfa_status(&self, user: &User) -> Result<MfaStatus, AuthError> {
        let totp = self.mfa.totp(user.id).await?;
        Ok(MfaStatus {
            totp_confirmed: totp.as_ref().is_some_and(|t| t.confirmed_at.is_some()),
            totp_pending: totp.as_ref().is_some_and(|t| t.confirmed_at.is_none()),
            passkeys: if self.passkeys.is_some() {
                self.mfa.passkeys(user.id).await?.len() as u64
            } else {
                0
            },
            recovery_codes_left: self.mfa.recovery_codes_left(user.id).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amr_round_trips_and_recency_needs_the_factor() {
        let now = Timestamp::from_secs(10_000);
        let pwd = LoginMethod::password(now);
        let otp = LoginMethod::second_factor(now);
        assert_eq!(pwd.amr(), ["pwd"]);
        assert_eq!(otp.amr(), ["pwd", "otp"]);
        assert_eq!(LoginMethod::from_amr(otp.amr(), otp.auth_time), Some(otp));
        assert_eq!(LoginMethod::from_amr(&["otp"], 1), None);
        for f in [
            LoginFactors::Password,
            LoginFactors::PasswordAndOtp,
            LoginFactors::PasswordAndKey,
            LoginFactors::Passkey,
        ] {
            let m = LoginMethod::new(f, now);
            assert_eq!(LoginMethod::from_amr(m.amr(), m.auth_time), Some(m));
            assert_eq!(
                m.recent_second_factor(Duration::from_secs(60), now),
                f != LoginFactors::Password
            );
        }
        let later = now.plus(Duration::from_secs(900));
        assert!(otp.recent_second_factor(Duration::from_secs(900), later));
        assert!(!otp.recent_second_factor(Duration::from_secs(899), later));
        assert!(!pwd.recent_second_factor(Duration::from_secs(900), now));
        assert!(require_recent_mfa(None, Duration::from_secs(60), now).is_err());
    }

    #[test]
    fn a_challenge_does_not_print_its_token() {
        let c = MfaChallenge {
            token: "0123456789abcdef0123456789abcdef".into(),
            methods: METHODS,
            expires_in: Duration::from_secs(300),
        };
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
    }
}
