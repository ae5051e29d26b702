//! [`Auth`]: the one object the HTTP layer, the CLI and embedding applications talk to.
//!
//! Its state is private; it is built once by [`AuthBuilder`] from config, the stores, one clock
//! and the signing key, and every operation is a method. The methods live with their concept
//! (`login`, `token`, `family`, `session`, `account`; `authz` next), each in an `impl Auth` block
//! of that module, so a new capability adds one file per layer instead of growing this one.

use crate::clock::{Clock, SystemClock, Timestamp};
use crate::config::{Config, ConfigError, JwtConfig, SessionsConfig};
use crate::error::AuthError;
use crate::login::password::Passwords;
use crate::login::throttle::LoginThrottle;
use crate::mfa::{MfaKeys, MfaSettings};
use crate::session::csrf::CsrfKey;
use crate::store::{
    AuditStore, AuthzStore, FamilyStore, ImportStore, KeyStore, MfaStore, SessionStore, Stores,
    UserStore,
};
use crate::token::managed::{KeyEncryptionKey, ManagedKeys, RotationSettings};
use crate::token::{KeyRing, SignatureAlgorithm, TokenKey, TokenPolicy};
use std::sync::Arc;
use std::time::Duration;

/// Lifetimes and switches for tokens, copied out of [`JwtConfig`] once.
#[derive(Clone, Debug)]
pub(crate) struct TokenSettings {
    pub access_lifetime: Duration,
    pub refresh_lifetime: Duration,
    pub absolute_lifetime: Duration,
    pub rotate: bool,
    pub grace: Duration,
    pub strict_access: bool,
    pub algorithm: SignatureAlgorithm,
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
            algorithm: SignatureAlgorithm::parse(&c.algorithm).unwrap_or(SignatureAlgorithm::HS256),
        }
    }
}

/// Session timeouts, copied out of [`SessionsConfig`] once.
#[derive(Clone, Debug)]
pub(crate) struct SessionSettings {
    pub cookie_age: Duration,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    pub max_per_user: usize,
}

impl From<&SessionsConfig> for SessionSettings {
    fn from(c: &SessionsConfig) -> Self {
        SessionSettings {
            cookie_age: c.cookie_age.0,
            idle_timeout: c.idle_timeout.0,
            absolute_timeout: c.absolute_timeout.0,
            max_per_user: usize::try_from(c.max_per_user).unwrap_or(usize::MAX),
        }
    }
}

impl SessionSettings {
    /// How stale `last_seen` may get before a request writes it: a twentieth of the idle
    /// timeout, between 1 s and 5 min. An active user's session never lapses, and a busy API
    /// does not turn every read into a write.
    pub fn renew_after(&self) -> Duration {
        (self.idle_timeout / 20).clamp(Duration::from_secs(1), Duration::from_secs(300))
    }
}

pub struct Auth {
    pub(crate) users: Arc<dyn UserStore>,
    pub(crate) families: Arc<dyn FamilyStore>,
    pub(crate) sessions: Arc<dyn SessionStore>,
    pub(crate) authz: Arc<dyn AuthzStore>,
    pub(crate) audit: Arc<dyn AuditStore>,
    pub(crate) key_store: Arc<dyn KeyStore>,
    pub(crate) mfa: Arc<dyn MfaStore>,
    pub(crate) mfa_keys: MfaKeys,
    pub(crate) mfa_settings: MfaSettings,
    /// The WebAuthn relying party; `None` when `[webauthn]` is not configured.
    pub(crate) passkeys: Option<crate::mfa::passkey::RelyingParty>,
    pub(crate) imports: Arc<dyn ImportStore>,
    /// The Django deployment of a dual-run, when `django.*` is configured.
    pub(crate) django: Option<crate::import::DjangoSessions>,
    pub(crate) tokens: TokenPolicy,
    /// Keys kept in the database and rotated; `None` with a configured secret or PEM file.
    pub(crate) managed_keys: Option<ManagedKeys>,
    /// The config key a configured key came from (for `keys list` and refusals).
    pub(crate) static_key_source: &'static str,
    pub(crate) csrf: CsrfKey,
    pub(crate) passwords: Passwords,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) token_settings: TokenSettings,
    pub(crate) session_settings: SessionSettings,
    pub(crate) throttle: LoginThrottle,
}

impl Auth {
    pub fn builder(config: &Config) -> AuthBuilder {
        AuthBuilder {
            config: config.clone(),
            stores: None,
            clock: None,
            key: None,
            key_source: "jwt.signing_key",
            kek: None,
            csrf: None,
            mfa_secret: None,
            django: None,
        }
    }

    /// The clock every rule of this instance reads (one clock: throttle, tokens, sessions).
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// `GET /readyz`: every store answers.
    pub async fn ready(&self) -> Result<(), AuthError> {
        self.users.ping().await?;
        self.families.ping().await?;
        self.sessions.ping().await?;
        Ok(())
    }

    /// Deletes expired refresh families and sessions (backends with native expiry delete
    /// nothing here); returns how many records went.
    pub async fn purge_expired(&self) -> Result<u64, AuthError> {
        let now = self.now();
        Ok(self.families.purge_expired_families(now).await?
            + self.sessions.purge_expired_sessions(now).await?
            + self.mfa.purge_expired_challenges(now).await?)
    }
}

/// Builds an [`Auth`]. Stores, the signing key and the CSRF key are required; the clock
/// defaults to the system clock.
pub struct AuthBuilder {
    config: Config,
    stores: Option<Stores>,
    clock: Option<Arc<dyn Clock>>,
    key: Option<Arc<dyn TokenKey>>,
    key_source: &'static str,
    kek: Option<KeyEncryptionKey>,
    csrf: Option<CsrfKey>,
    mfa_secret: Option<zeroize::Zeroizing<Vec<u8>>>,
    django: Option<Arc<dyn crate::store::DjangoSessionSource>>,
}

impl AuthBuilder {
    /// The secret second factors are protected with (TOTP secrets sealed, recovery codes
    /// hashed): the key-encryption secret where one is configured. Without it, a key derived
    /// from the CSRF key is used, so every instance sharing that secret shares this one too.
    pub fn mfa_secret(mut self, secret: &[u8]) -> Self {
        self.mfa_secret = Some(zeroize::Zeroizing::new(secret.to_vec()));
        self
    }

    /// The Django database of a dual-run (`django.database_url`); its secrets come from
    /// `django.secret_key` and `django.secret_key_fallbacks`.
    pub fn django_sessions(mut self, source: Arc<dyn crate::store::DjangoSessionSource>) -> Self {
        self.django = Some(source);
        self
    }

    pub fn stores(mut self, stores: Stores) -> Self {
        self.stores = Some(stores);
        self
    }

    /// The one clock of the instance (tests pass a [`crate::clock::ManualClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// A configured key (an HMAC secret, or an asymmetric key from a PEM file) that signs and
    /// verifies for ever. `source` names where it came from, for `keys list`.
    pub fn signing_key(mut self, key: Arc<dyn TokenKey>) -> Self {
        self.key = Some(key);
        self
    }

    /// Where the configured key came from (`jwt.signing_key`, `jwt.signing_key_file`, or the
    /// generated file), for `keys list`.
    pub fn signing_key_source(mut self, source: &'static str) -> Self {
        self.key_source = source;
        self
    }

    /// Managed keys instead of a configured one: asymmetric keys of `jwt.algorithm` kept in
    /// the key store, sealed with `kek`, rotated per `jwt.key_rotation_period`. The ring is
    /// empty until [`Auth::maintain_keys`] has run once (the server runs it before it listens).
    pub fn managed_keys(mut self, kek: KeyEncryptionKey) -> Self {
        self.kek = Some(kek);
        self
    }

    /// The key CSRF tokens are bound with. Every instance behind one site must share it.
    pub fn csrf_key(mut self, key: CsrfKey) -> Self {
        self.csrf = Some(key);
        self
    }

    pub fn build(self) -> Result<Auth, ConfigError> {
        let csrf = self
            .csrf
            .ok_or_else(|| ConfigError("auth: no CSRF key given".into()))?;
        let config = &self.config;
        let algorithm = SignatureAlgorithm::parse(&config.jwt.algorithm)?;
        let (tokens, managed_keys) = match (self.key, self.kek) {
            (Some(_), Some(_)) => {
                return Err(ConfigError(
                    "auth: a configured signing key and managed keys are exclusive".into(),
                ));
            }
            (None, None) => return Err(ConfigError("auth: no signing key given".into())),
            (Some(key), None) => {
                if key.algorithm() != algorithm {
                    return Err(ConfigError(format!(
                        "jwt.algorithm: {} does not match the signing key ({})",
                        config.jwt.algorithm,
                        key.algorithm().name()
                    )));
                }
                // The grace window hands racing refreshes the identical successor by
                // re-signing it; a key whose signatures differ each time would hand out two
                // different tokens.
                if !key.deterministic() && !config.jwt.reuse_grace.0.is_zero() {
                    return Err(ConfigError(format!(
                        "jwt.reuse_grace: {} signatures are not deterministic; set jwt.reuse_grace = 0",
                        key.algorithm().name()
                    )));
                }
                (TokenPolicy::new(&config.jwt, key), None)
            }
            (None, Some(kek)) => {
                if algorithm.is_symmetric() {
                    return Err(ConfigError(format!(
                        "jwt.algorithm: {} keys are configured secrets; managed keys are EdDSA, ES256 or RS256",
                        algorithm.name()
                    )));
                }
                let jwt = &config.jwt;
                let settings = RotationSettings {
                    algorithm,
                    period: jwt.key_rotation_period.0,
                    publish_ahead: jwt.key_publish_ahead.0,
                    verify_tail: jwt
                        .refresh_token_lifetime
                        .0
                        .max(jwt.access_token_lifetime.0)
                        + jwt.leeway.0,
                };
                (
                    TokenPolicy::with_ring(jwt, KeyRing::default()),
                    Some(ManagedKeys {
                        kek,
                        settings,
                        reloaded: tokio::sync::Mutex::new(None),
                    }),
                )
            }
        };
        let stores = self
            .stores
            .ok_or_else(|| ConfigError("auth: no stores given".into()))?;
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let mfa_keys = match &self.mfa_secret {
            Some(secret) => MfaKeys::derive(secret)
                .map_err(|e| ConfigError(format!("mfa: the key-encryption secret: {e}")))?,
            None => MfaKeys::derive(&csrf.derive_subkey(b"sekisho mfa key v1")[..])
                .map_err(|e| ConfigError(format!("mfa: {e}")))?,
        };
        Ok(Auth {
            users: stores.users,
            families: stores.families,
            sessions: stores.sessions,
            authz: stores.authz,
            audit: stores.audit,
            key_store: stores.keys,
            mfa: stores.mfa,
            mfa_keys,
            mfa_settings: MfaSettings::from(&config.mfa),
            passkeys: crate::mfa::passkey::RelyingParty::from_config(&config.webauthn)
                .map_err(ConfigError)?,
            imports: stores.imports,
            django: match (self.django, &config.django.secret_key) {
                (Some(source), Some(key)) => Some(crate::import::DjangoSessions {
                    source,
                    secrets: crate::import::signing::DjangoSecrets::new(
                        key.expose(),
                        &config
                            .django
                            .secret_key_fallbacks
                            .iter()
                            .map(|s| s.expose().to_string())
                            .collect::<Vec<_>>(),
                    ),
                }),
                (Some(_), None) => {
                    return Err(ConfigError(
                        "django.secret_key: required to read Django's sessions".into(),
                    ));
                }
                (None, _) => None,
            },
            tokens,
            managed_keys,
            static_key_source: self.key_source,
            csrf,
            passwords: Passwords::new(&config.passwords),
            throttle: LoginThrottle::new(&config.throttle, clock.clone()),
            clock,
            token_settings: TokenSettings::from(&config.jwt),
            session_settings: SessionSettings::from(&config.sessions),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_interval_is_bounded() {
        let s = |idle| {
            SessionSettings {
                cookie_age: idle,
                idle_timeout: idle,
                absolute_timeout: idle,
                max_per_user: 0,
            }
            .renew_after()
        };
        assert_eq!(s(Duration::from_secs(2)), Duration::from_secs(1));
        assert_eq!(s(Duration::from_secs(1200)), Duration::from_secs(60));
        assert_eq!(s(Duration::from_secs(14 * 86400)), Duration::from_secs(300));
    }

    /// A key that signs differently each time, as ECDSA does.
    struct Randomised;
    impl TokenKey for Randomised {
        fn algorithm(&self) -> crate::token::SignatureAlgorithm {
            crate::token::SignatureAlgorithm::HS256
        }
        fn kid(&self) -> &str {
            "randomised"
        }
        fn deterministic(&self) -> bool {
            false
        }
        fn sign(&self, _: &[u8]) -> Vec<u8> {
            crate::random::bytes::<32>().to_vec()
        }
        fn verify(&self, _: &[u8], _: &[u8]) -> bool {
            false
        }
    }

    #[test]
    fn a_grace_window_needs_deterministic_signatures() {
        let build = |grace: &str| {
            let mut c = Config::default();
            c.jwt.reuse_grace = crate::config::Dur::parse(grace).unwrap();
            Auth::builder(&c)
                .signing_key(Arc::new(Randomised))
                .csrf_key(CsrfKey::derive(b"k"))
                .build()
                .err()
                .unwrap()
                .0
        };
        assert!(
            build("5s").starts_with("jwt.reuse_grace:"),
            "{}",
            build("5s")
        );
        // With no grace window the key is acceptable; only the missing stores stop the build.
        assert_eq!(build("0s"), "auth: no stores given");
    }
}
