//! Managed signing keys: asymmetric keys kept in the database, their private parts sealed with
//! AES-256-GCM under a key-encryption key from config, rotated on a schedule every instance
//! reads the same way.
//!
//! **The schedule is data.** Each stored key has a `generation` (unique: the compare-and-swap
//! that makes two instances rotating at once create one key, not two), when it was published
//! (`created_at`: from then on it is in the JWKS), when it starts signing (`activate_at`,
//! unset for a key generated ahead and not scheduled yet), and, when an operator retired it,
//! `retired_at`. From these alone, [`schedule`] tells when each key signs and until when it
//! verifies; every instance that has read the same rows signs with the same key at the same
//! moment, without talking to the others. A new key is scheduled to sign no earlier than
//! `jwt.key_publish_ahead` after it was published, so instances (which re-read the rows far
//! more often than that) and outside verifiers (which cache the JWKS) know it before the first
//! token it signs. A key that stopped signing keeps verifying for the longest token lifetime
//! (plus leeway), so no token it signed is refused before it expires; then it is deleted.
//!
//! **The rules are pure** ([`plan_rotation`], [`plan_manual_rotation`]); the facade methods
//! below read the rows, decide, write with a conditional statement, and re-read.

use super::keys::{AsymmetricKey, KeyError, SignatureAlgorithm, TokenKey};
use super::ring::{KeyRing, RingKey};
use crate::auth::Auth;
use crate::clock::Timestamp;
use crate::error::AuthError;
use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// One stored key, as the key store holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub kid: String,
    pub generation: i64,
    pub algorithm: String,
    /// The public JWK (JSON text), readable without the key-encryption key.
    pub public_jwk: String,
    /// The PKCS#8 private key sealed by [`KeyEncryptionKey::seal`].
    pub private_key: Vec<u8>,
    /// Published (in the JWKS) from this time.
    pub created_at: Timestamp,
    /// Signs from this time; `None` for a key generated ahead and not scheduled yet.
    pub activate_at: Option<Timestamp>,
    /// Stopped by an operator at this time.
    pub retired_at: Option<Timestamp>,
    /// Retired as compromised: verifies nothing from then on.
    pub revoked: bool,
}

/// The lowest accepted key-encryption secret, in bytes.
pub const MIN_KEK_BYTES: usize = 32;

/// The key that seals stored private keys (AES-256-GCM, derived from the configured secret by
/// HKDF-SHA256). Each sealed key binds its `kid` and algorithm as associated data, so a sealed
/// blob moved to another row does not open.
pub struct KeyEncryptionKey(LessSafeKey);

const SEALED_VERSION: u8 = 1;

impl KeyEncryptionKey {
    pub fn derive(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_KEK_BYTES {
            return Err(KeyError::TooShortKek(secret.len()));
        }
        let salt =
            aws_lc_rs::hkdf::Salt::new(aws_lc_rs::hkdf::HKDF_SHA256, b"sekisho key encryption");
        let prk = salt.extract(secret);
        let okm = prk
            .expand(&[b"aes-256-gcm v1"], &aead::AES_256_GCM)
            .map_err(|_| KeyError::Unusable)?;
        Ok(KeyEncryptionKey(LessSafeKey::new(UnboundKey::from(okm))))
    }

    fn aad(kid: &str, algorithm: &str) -> Vec<u8> {
        let mut a = Vec::with_capacity(kid.len() + algorithm.len() + 1);
        a.extend_from_slice(kid.as_bytes());
        a.push(0);
        a.extend_from_slice(algorithm.as_bytes());
        a
    }

    /// `version ‖ nonce ‖ ciphertext ‖ tag`, with a random 96-bit nonce.
    pub fn seal(&self, kid: &str, algorithm: &str, plaintext: &[u8]) -> Vec<u8> {
        let nonce = crate::random::bytes::<12>();
        let mut data = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(kid, algorithm)),
                &mut data,
            )
            .expect("AES-GCM sealing of a small buffer");
        let mut out = Vec::with_capacity(1 + 12 + data.len());
        out.push(SEALED_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&data);
        data.iter_mut().for_each(|b| *b = 0);
        out
    }

    pub fn open(
        &self,
        kid: &str,
        algorithm: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if sealed.len() < 1 + 12 + 16 || sealed[0] != SEALED_VERSION {
            return Err(KeyError::Sealed);
        }
        let nonce =
            Nonce::try_assume_unique_for_key(&sealed[1..13]).map_err(|_| KeyError::Sealed)?;
        let mut data = Zeroizing::new(sealed[13..].to_vec());
        let len = self
            .0
            .open_in_place(nonce, Aad::from(Self::aad(kid, algorithm)), &mut data)
            .map_err(|_| KeyError::Sealed)?
            .len();
        data.truncate(len);
        Ok(data)
    }
}

/// How the managed keys rotate, from config.
#[derive(Clone, Debug)]
pub struct RotationSettings {
    /// The algorithm new keys get.
    pub algorithm: SignatureAlgorithm,
    /// How long a key signs before the next one takes over; zero: no automatic rotation.
    pub period: Duration,
    /// How long a new key is published before it signs.
    pub publish_ahead: Duration,
    /// How long a key verifies after it stopped signing: the longest token lifetime + leeway.
    pub verify_tail: Duration,
}

/// What a key does when, derived from the stored rows alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySchedule {
    pub kid: String,
    pub generation: i64,
    pub algorithm: String,
    pub created_at: Timestamp,
    pub signs_from: Option<Timestamp>,
    pub signs_until: Option<Timestamp>,
    /// `None`: verifies as long as it is stored (it has not stopped signing yet).
    pub verifies_until: Option<Timestamp>,
    pub revoked: bool,
}

/// A key's state at a given time, as `sekisho keys list` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Signs new tokens now.
    Signing,
    /// Published, scheduled to sign from `signs_from`.
    Next,
    /// Published, not scheduled (generated ahead; `keys rotate` schedules it).
    Standby,
    /// Stopped signing; still verifies the tokens it signed.
    Verifying,
    /// Verifies nothing any more (deleted at the next maintenance).
    Expired,
    /// Retired as compromised.
    Revoked,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Signing => "signing",
            KeyState::Next => "next",
            KeyState::Standby => "standby",
            KeyState::Verifying => "verifying",
            KeyState::Expired => "expired",
            KeyState::Revoked => "revoked",
        }
    }
}

impl KeySchedule {
    pub fn state(&self, now: Timestamp, current_generation: Option<i64>) -> KeyState {
        if self.revoked {
            return KeyState::Revoked;
        }
        if self.verifies_until.is_some_and(|u| now > u) {
            return KeyState::Expired;
        }
        match (self.signs_from, self.signs_until) {
            _ if current_generation == Some(self.generation) => KeyState::Signing,
            (None, _) => KeyState::Standby,
            (Some(from), _) if from > now => KeyState::Next,
            _ => KeyState::Verifying,
        }
    }
}

/// When each stored key signs and verifies. A key signs from its `activate_at` until the first
/// later generation that activates (or its own retirement, whichever comes first); it verifies
/// until `verify_tail` after that. A key retired before it ever signed verifies nothing past
/// its retirement; a revoked key verifies nothing.
pub fn schedule(records: &[KeyRecord], verify_tail: Duration) -> Vec<KeySchedule> {
    let activation = |r: &KeyRecord| -> Option<Timestamp> {
        let a = r.activate_at?;
        if r.revoked || r.retired_at.is_some_and(|t| t <= a) {
            return None;
        }
        Some(a)
    };
    records
        .iter()
        .map(|r| {
            let signs_from = activation(r);
            let next = records
                .iter()
                .filter(|o| o.generation > r.generation)
                .filter_map(activation)
                .min();
            let signs_until = match (next, r.retired_at) {
                (Some(n), Some(t)) => Some(n.min(t)),
                (n, t) => n.or(t),
            };
            let verifies_until = match (signs_from, signs_until) {
                (_, _) if r.revoked => Some(Timestamp(i64::MIN)),
                (None, _) => r.retired_at,
                (Some(_), until) => until.map(|u| u.plus(verify_tail)),
            };
            KeySchedule {
                kid: r.kid.clone(),
                generation: r.generation,
                algorithm: r.algorithm.clone(),
                created_at: r.created_at,
                signs_from,
                signs_until,
                verifies_until,
                revoked: r.revoked,
            }
        })
        .collect()
}

/// The generation signing at `now`, from a schedule.
pub fn current_generation(schedule: &[KeySchedule], now: Timestamp) -> Option<i64> {
    schedule
        .iter()
        .filter(|s| {
            !s.revoked
                && s.signs_from.is_some_and(|f| f <= now)
                && s.signs_until.is_none_or(|u| now < u)
        })
        .map(|s| s.generation)
        .max()
}

/// A change to the stored keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyAction {
    /// Generate a key of generation `generation`, signing from `activate_at` (`None`: generated
    /// ahead, not scheduled).
    Insert {
        generation: i64,
        algorithm: SignatureAlgorithm,
        activate_at: Option<Timestamp>,
    },
    /// Schedule the key `kid` (not scheduled yet, or scheduled at `was`) to sign from `at`.
    Schedule {
        kid: String,
        was: Option<Timestamp>,
        at: Timestamp,
    },
}

/// The key after the signing one: the newest generation above it that is neither retired nor
/// revoked and has not signed yet.
fn pending(records: &[KeyRecord], current: Option<i64>, now: Timestamp) -> Option<&KeyRecord> {
    records
        .iter()
        .filter(|r| current.is_none_or(|c| r.generation > c))
        .filter(|r| !r.revoked && r.retired_at.is_none())
        .filter(|r| r.activate_at.is_none_or(|a| a > now))
        .max_by_key(|r| r.generation)
}

fn next_generation(records: &[KeyRecord]) -> i64 {
    records.iter().map(|r| r.generation).max().unwrap_or(0) + 1
}

/// The automatic rule, run by every instance on every key maintenance: with no key signing,
/// one is made (or the waiting one scheduled) at once; otherwise, when the signing key's period
/// is nearly over (or it is of another algorithm than configured) and nothing is scheduled yet,
/// the next key is scheduled to take over at the end of the period, but never sooner than
/// `publish_ahead` after it was published.
pub fn plan_rotation(
    records: &[KeyRecord],
    now: Timestamp,
    s: &RotationSettings,
) -> Option<KeyAction> {
    let sched = schedule(records, s.verify_tail);
    let current = current_generation(&sched, now);
    let pending = pending(records, current, now);
    let Some(cur) = current.and_then(|g| records.iter().find(|r| r.generation == g)) else {
        return Some(match pending {
            Some(p) => KeyAction::Schedule {
                kid: p.kid.clone(),
                was: p.activate_at,
                at: now,
            },
            None => KeyAction::Insert {
                generation: next_generation(records),
                algorithm: s.algorithm,
                activate_at: Some(now),
            },
        });
    };
    if pending.is_some_and(|p| p.activate_at.is_some()) {
        return None;
    }
    let other_algorithm = cur.algorithm != s.algorithm.name();
    let started = cur.activate_at.unwrap_or(now);
    let period_over = !s.period.is_zero() && now.plus(s.publish_ahead) >= started.plus(s.period);
    if !(other_algorithm || period_over) {
        return None;
    }
    // The period's end, but no sooner than publish-ahead after the key was published (a key
    // made now, or the one generated ahead), nor in the past.
    let end = if other_algorithm {
        now
    } else {
        started.plus(s.period).max(now)
    };
    match pending {
        Some(p) if p.algorithm == s.algorithm.name() => Some(KeyAction::Schedule {
            kid: p.kid.clone(),
            was: None,
            at: end.max(p.created_at.plus(s.publish_ahead)),
        }),
        Some(_) => None,
        None => Some(KeyAction::Insert {
            generation: next_generation(records),
            algorithm: s.algorithm,
            activate_at: Some(end.max(now.plus(s.publish_ahead))),
        }),
    }
}

/// Why a manual key change was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    #[error("key {0} is already scheduled to sign from {1}; use --now to make it sign at once")]
    AlreadyScheduled(String, String),
    #[error("key {0} is already the next key")]
    NextExists(String),
    #[error("no key {0}")]
    NoSuchKey(String),
    #[error("key {0} is signing now; run `sekisho keys rotate --now` first")]
    Signing(String),
    #[error("key {0} is already retired")]
    AlreadyRetired(String),
}

/// `sekisho keys rotate`: schedule the next key — the one generated ahead, or a new one — to
/// sign `publish_ahead` after it was published (at once with `immediately`, or when nothing
/// signs).
pub fn plan_manual_rotation(
    records: &[KeyRecord],
    now: Timestamp,
    s: &RotationSettings,
    immediately: bool,
) -> Result<KeyAction, KeyProblem> {
    let sched = schedule(records, s.verify_tail);
    let current = current_generation(&sched, now);
    // "At once" is the next whole second: every token issued so far (whole-second `iat`)
    // keeps the key that signed it, so re-signing one inside the grace window still gives
    // the same bytes. With nothing signing, it is now.
    let at = |published: Timestamp| {
        if current.is_none() {
            now
        } else if immediately {
            now.plus(Duration::from_secs(1))
        } else {
            published
                .plus(s.publish_ahead)
                .max(now.plus(Duration::from_secs(1)))
        }
    };
    match pending(records, current, now) {
        Some(p) if p.activate_at.is_some() && !immediately && current.is_some() => Err(
            KeyProblem::AlreadyScheduled(p.kid.clone(), format_time(p.activate_at.unwrap_or(now))),
        ),
        Some(p) => Ok(KeyAction::Schedule {
            kid: p.kid.clone(),
            was: p.activate_at,
            at: at(p.created_at),
        }),
        None => Ok(KeyAction::Insert {
            generation: next_generation(records),
            algorithm: s.algorithm,
            activate_at: Some(at(now)),
        }),
    }
}

/// A UTC time as `2026-12-03 12:00:00 UTC`.
pub fn format_time(t: Timestamp) -> String {
    let iso = t.rfc3339();
    format!("{} {} UTC", &iso[..10], &iso[11..19])
}

/// What `keys list` and the other key commands report about a key (never private material).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub kid: String,
    pub algorithm: String,
    pub state: KeyState,
    pub created_at: Option<Timestamp>,
    pub signs_from: Option<Timestamp>,
    pub signs_until: Option<Timestamp>,
    pub verifies_until: Option<Timestamp>,
    /// Where the key lives: `database`, or the config key naming it.
    pub source: &'static str,
}

/// The managed-key part of an [`Auth`].
pub(crate) struct ManagedKeys {
    pub kek: KeyEncryptionKey,
    pub settings: RotationSettings,
    /// Serialises maintenance and holds when the keys were last read.
    pub reloaded: tokio::sync::Mutex<Option<Timestamp>>,
}

/// How often an instance re-reads the stored keys by itself (a change broadcast by another
/// process, or a token naming an unknown key, makes it read them sooner). Far below the
/// smallest useful `jwt.key_publish_ahead`, so every instance knows a key before it signs.
pub const KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// The least time between two re-reads caused by tokens naming unknown keys.
const UNKNOWN_KEY_RELOAD_GAP: Duration = Duration::from_secs(1);

impl Auth {
    fn managed(&self) -> Result<&ManagedKeys, AuthError> {
        self.managed_keys.as_ref().ok_or_else(|| {
            AuthError::Invalid(format!(
                "keys are not managed here: jwt.algorithm {} with {} (managed keys need EdDSA, ES256 or RS256 without jwt.signing_key_file)",
                self.token_settings.algorithm.name(),
                self.static_key_source
            ))
        })
    }

    /// Fires when another process broadcasts a key change (`None` without a broadcast).
    pub fn key_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.managed_keys.as_ref()?;
        self.key_store.subscribe()
    }

    /// Whether this instance keeps its signing keys in the database.
    pub fn keys_are_managed(&self) -> bool {
        self.managed_keys.is_some()
    }

    /// Key upkeep, run at start (it makes the first key) and then every
    /// [`KEY_REFRESH_INTERVAL`] by the server: applies [`plan_rotation`], deletes keys that
    /// verify nothing any more, and loads the stored keys into the ring. A no-op with a
    /// configured key.
    pub async fn maintain_keys(&self) -> Result<(), AuthError> {
        let Some(m) = &self.managed_keys else {
            return Ok(());
        };
        let mut reloaded = m.reloaded.lock().await;
        let now = self.now();
        let mut records = self.key_store.keys().await?;
        if let Some(action) = plan_rotation(&records, now, &m.settings) {
            if self.apply_key_action(&action, now).await? {
                tracing::info!(?action, "signing keys: rotation step applied");
                self.key_store.changed().await;
            }
            records = self.key_store.keys().await?;
        }
        let sched = schedule(&records, m.settings.verify_tail);
        for (r, s) in records.iter().zip(&sched) {
            let gone = match (r.revoked, r.retired_at) {
                // A revoked key stays listed for the verify tail, verifying nothing.
                (true, Some(t)) => now > t.plus(m.settings.verify_tail),
                _ => s.verifies_until.is_some_and(|u| now > u),
            };
            if gone && self.key_store.delete_key(&r.kid).await? {
                tracing::info!(kid = %r.kid, "signing keys: expired key deleted");
            }
        }
        self.load_ring(&records, now)?;
        *reloaded = Some(now);
        Ok(())
    }

    /// Re-reads the stored keys into the ring (no rotation step).
    pub async fn reload_keys(&self) -> Result<(), AuthError> {
        let Some(m) = &self.managed_keys else {
            return Ok(());
        };
        let mut reloaded = m.reloaded.lock().await;
        let now = self.now();
        let records = self.key_store.keys().await?;
        self.load_ring(&records, now)?;
        *reloaded = Some(now);
        Ok(())
    }

    /// A token named a key this instance does not hold: read the keys again, at most once per
    /// [`UNKNOWN_KEY_RELOAD_GAP`]; true when it did.
    pub(crate) async fn reload_for_unknown_key(&self) -> bool {
        let Some(m) = &self.managed_keys else {
            return false;
        };
        {
            let last = m.reloaded.lock().await;
            if last.is_some_and(|t| self.now() < t.plus(UNKNOWN_KEY_RELOAD_GAP)) {
                return false;
            }
        }
        match self.reload_keys().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "signing keys: re-reading for an unknown kid failed");
                false
            }
        }
    }

    /// Builds the ring from the stored rows, reusing keys already loaded (decrypting and parsing
    /// only new ones).
    fn load_ring(&self, records: &[KeyRecord], now: Timestamp) -> Result<(), AuthError> {
        let m = self.managed()?;
        let loaded: HashMap<String, Arc<dyn TokenKey>> = self
            .tokens
            .ring()
            .keys()
            .map(|k| (k.key.kid().to_string(), k.key.clone()))
            .collect();
        let mut keys = Vec::new();
        for s in schedule(records, m.settings.verify_tail) {
            if s.revoked || s.verifies_until.is_some_and(|u| now > u) {
                continue;
            }
            let key = match loaded.get(&s.kid) {
                Some(k) => k.clone(),
                None => {
                    let r = records.iter().find(|r| r.kid == s.kid).expect("scheduled");
                    match open_record(&m.kek, r) {
                        Ok(k) => k,
                        Err(e) => {
                            tracing::error!(kid = %r.kid, error = %e, "signing keys: a stored key cannot be used");
                            continue;
                        }
                    }
                }
            };
            keys.push(RingKey {
                key,
                generation: s.generation,
                signs_from: s.signs_from,
                signs_until: s.signs_until,
                verifies_until: s.verifies_until,
            });
        }
        let ring = KeyRing::new(keys);
        if ring.current(now).is_none() {
            return Err(AuthError::Unavailable(
                "no stored signing key can be used (is jwt.key_encryption_key the one that sealed them?)".into(),
            ));
        }
        self.tokens.replace_ring(ring);
        Ok(())
    }

    /// Writes one planned change; false when another process changed the keys first (the
    /// compare-and-swap lost: the caller re-reads).
    async fn apply_key_action(
        &self,
        action: &KeyAction,
        now: Timestamp,
    ) -> Result<bool, AuthError> {
        let m = self.managed()?;
        // Tokens carry whole seconds and the signer is chosen by `iat`: a key scheduled at a
        // second's start signs every token issued in that second.
        let whole = |t: Timestamp| Timestamp::from_secs(t.secs());
        match action {
            KeyAction::Insert {
                generation,
                algorithm,
                activate_at,
            } => {
                let (key, der) = AsymmetricKey::generate(*algorithm)
                    .map_err(|e| AuthError::Internal(e.to_string()))?;
                let jwk = key.public_jwk().expect("asymmetric keys have a JWK");
                let record = KeyRecord {
                    kid: key.kid().to_string(),
                    generation: *generation,
                    algorithm: algorithm.name().to_string(),
                    public_jwk: serde_json::Value::Object(jwk).to_string(),
                    private_key: m.kek.seal(key.kid(), algorithm.name(), &der),
                    created_at: now,
                    activate_at: activate_at.map(whole),
                    retired_at: None,
                    revoked: false,
                };
                Ok(self.key_store.insert_key(&record).await?)
            }
            KeyAction::Schedule { kid, was, at } => {
                Ok(self.key_store.schedule_key(kid, *was, whole(*at)).await?)
            }
        }
    }

    /// The keys and what they do now (`sekisho keys list`).
    pub async fn list_keys(&self) -> Result<Vec<KeyInfo>, AuthError> {
        let now = self.now();
        let Some(m) = &self.managed_keys else {
            let ring = self.tokens.ring();
            return Ok(ring
                .keys()
                .map(|k| KeyInfo {
                    kid: k.key.kid().to_string(),
                    algorithm: k.key.algorithm().name().to_string(),
                    state: KeyState::Signing,
                    created_at: None,
                    signs_from: None,
                    signs_until: None,
                    verifies_until: None,
                    source: self.static_key_source,
                })
                .collect());
        };
        let records = self.key_store.keys().await?;
        Ok(infos(&records, now, &m.settings))
    }

    /// `sekisho keys generate`: a new key published now, signing only once `keys rotate` (or
    /// the automatic rotation) schedules it.
    pub async fn generate_key(
        &self,
        algorithm: Option<SignatureAlgorithm>,
    ) -> Result<KeyInfo, AuthError> {
        let m = self.managed()?;
        let algorithm = algorithm.unwrap_or(m.settings.algorithm);
        if algorithm.is_symmetric() {
            return Err(AuthError::Invalid(format!(
                "--algorithm: {} keys are secrets from config, not generated keys",
                algorithm.name()
            )));
        }
        let now = self.now();
        loop {
            let records = self.key_store.keys().await?;
            let sched = schedule(&records, m.settings.verify_tail);
            if let Some(p) = pending(&records, current_generation(&sched, now), now) {
                return Err(AuthError::Conflict(
                    KeyProblem::NextExists(p.kid.clone()).to_string(),
                ));
            }
            let action = KeyAction::Insert {
                generation: next_generation(&records),
                algorithm,
                activate_at: None,
            };
            if self.apply_key_action(&action, now).await? {
                return self.after_key_change(next_generation(&records)).await;
            }
        }
    }

    /// `sekisho keys rotate [--now]` (see [`plan_manual_rotation`]); returns the key that will
    /// sign.
    pub async fn rotate_key(&self, immediately: bool) -> Result<KeyInfo, AuthError> {
        let m = self.managed()?;
        let now = self.now();
        loop {
            let records = self.key_store.keys().await?;
            let action = plan_manual_rotation(&records, now, &m.settings, immediately)
                .map_err(|p| AuthError::Conflict(p.to_string()))?;
            let generation = match &action {
                KeyAction::Insert { generation, .. } => *generation,
                KeyAction::Schedule { kid, .. } => records
                    .iter()
                    .find(|r| &r.kid == kid)
                    .map_or(0, |r| r.generation),
            };
            if self.apply_key_action(&action, now).await? {
                return self.after_key_change(generation).await;
            }
        }
    }

    /// `sekisho keys retire KID [--revoke]`: the key signs nothing more; it keeps verifying
    /// the tokens it signed until they expire, or, revoked, verifies nothing from now on.
    pub async fn retire_key(&self, kid: &str, revoke: bool) -> Result<KeyInfo, AuthError> {
        let m = self.managed()?;
        let now = self.now();
        let records = self.key_store.keys().await?;
        let Some(r) = records.iter().find(|r| r.kid == kid) else {
            return Err(AuthError::Invalid(
                KeyProblem::NoSuchKey(kid.to_string()).to_string(),
            ));
        };
        let sched = schedule(&records, m.settings.verify_tail);
        if current_generation(&sched, now) == Some(r.generation) {
            return Err(AuthError::Conflict(
                KeyProblem::Signing(kid.to_string()).to_string(),
            ));
        }
        if (r.retired_at.is_some() && !revoke) || r.revoked {
            return Err(AuthError::Conflict(
                KeyProblem::AlreadyRetired(kid.to_string()).to_string(),
            ));
        }
        self.key_store
            .retire_key(kid, r.retired_at.unwrap_or(now), revoke)
            .await?;
        self.after_key_change(r.generation).await
    }

    /// After a manual change: tell the other processes, reload here, report the key.
    async fn after_key_change(&self, generation: i64) -> Result<KeyInfo, AuthError> {
        self.key_store.changed().await;
        let m = self.managed()?;
        let records = self.key_store.keys().await?;
        // A CLI process may hold no usable ring; a server reloads here and is told by the bus
        // or finds out at its next maintenance.
        let _ = self.load_ring(&records, self.now());
        infos(&records, self.now(), &m.settings)
            .into_iter()
            .find(|i| {
                records
                    .iter()
                    .any(|r| r.kid == i.kid && r.generation == generation)
            })
            .ok_or_else(|| AuthError::Internal("the changed key vanished".into()))
    }

    /// `GET /.well-known/jwks.json`: the public keys that verify now (`{"keys":[]}` with a
    /// secret key).
    pub fn jwks(&self) -> serde_json::Value {
        self.tokens.ring().jwks(self.now())
    }

    /// How long a verifier may cache the JWKS: half the publish-ahead time, so a key appears in
    /// every verifier's cache well before it signs (5 minutes with configured keys).
    pub fn jwks_max_age(&self) -> Duration {
        match &self.managed_keys {
            Some(m) => (m.settings.publish_ahead / 2).min(Duration::from_secs(3600)),
            None => Duration::from_secs(300),
        }
    }
}

fn infos(records: &[KeyRecord], now: Timestamp, s: &RotationSettings) -> Vec<KeyInfo> {
    let sched = schedule(records, s.verify_tail);
    let current = current_generation(&sched, now);
    let mut out: Vec<KeyInfo> = sched
        .iter()
        .map(|k| KeyInfo {
            kid: k.kid.clone(),
            algorithm: k.algorithm.clone(),
            state: k.state(now, current),
            created_at: Some(k.created_at),
            signs_from: k.signs_from,
            signs_until: k.signs_until,
            verifies_until: k.verifies_until.filter(|_| !k.revoked),
            source: "database",
        })
        .collect();
    out.sort_by_key(|i| {
        std::cmp::Reverse(
            sched
                .iter()
                .find(|k| k.kid == i.kid)
                .map_or(0, |k| k.generation),
        )
    });
    out
}

/// Opens a stored key: unseal, parse, and check it is the key its row says.
fn open_record(kek: &KeyEncryptionKey, r: &KeyRecord) -> Result<Arc<dyn TokenKey>, KeyError> {
    let algorithm = SignatureAlgorithm::from_name(&r.algorithm)
        .filter(|a| !a.is_symmetric())
        .ok_or(KeyError::BadPrivateKey(SignatureAlgorithm::EdDSA))?;
    let der = kek.open(&r.kid, &r.algorithm, &r.private_key)?;
    let key = AsymmetricKey::from_pkcs8(algorithm, &der)?;
    if key.kid() != r.kid {
        return Err(KeyError::Sealed);
    }
    Ok(Arc::new(key))
}

#[cfg(test)]
mod tests;
