//! Configuration: a TOML file overlaid by `SEKISHO_<SECTION>__<KEY>` environment variables
//! (DESIGN §4). Every key has a secure default, unknown keys are refused (a typo must not
//! silently fall back to a default), and validation errors are one line naming the key.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The largest accepted `jwt.reuse_grace`: a grace window is a concession to racing tabs, and a
/// long one would let a stolen, already-rotated token keep working.
pub const MAX_REUSE_GRACE: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub sessions: SessionsConfig,
    pub csrf: CsrfConfig,
    pub jwt: JwtConfig,
    pub auth: AuthConfig,
    pub passwords: PasswordsConfig,
    pub cache: CacheConfig,
    pub throttle: ThrottleConfig,
    pub policy: PolicyConfig,
    pub forward_auth: ForwardAuthConfig,
    pub mfa: MfaConfig,
    pub webauthn: WebauthnConfig,
    pub django: DjangoConfig,
}

/// Passkeys (WebAuthn). Off unless `rp_id` and `origins` are set.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebauthnConfig {
    /// The relying party id keys are bound to: the site's domain (never an IP address).
    /// Changing it orphans every registered key.
    pub rp_id: Option<String>,
    /// The name authenticators show; defaults to `rp_id`.
    pub rp_name: Option<String>,
    /// The exact origins (`scheme://host[:port]`) allowed to run ceremonies: no other port, no
    /// subdomain.
    #[serde(deserialize_with = "de::list")]
    pub origins: Vec<String>,
}

/// The Django deployment of a dual-run (see the README's cut-over procedure): while it is set
/// and the dual-run an import started is in progress, a live Django `sessionid` is exchanged
/// once for a sekisho session.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DjangoConfig {
    /// Django's database (as `import-django --from`), read live and read-only: sessions Django
    /// creates after the import are exchanged too.
    pub database_url: Option<String>,
    /// Django's `SECRET_KEY`, which signs its session data.
    pub secret_key: Option<Secret>,
    /// Django's `SECRET_KEY_FALLBACKS`.
    #[serde(deserialize_with = "de::secrets")]
    pub secret_key_fallbacks: Vec<Secret>,
}

/// Second factors (TOTP and recovery codes).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MfaConfig {
    /// The issuer authenticator apps show next to the account (`otpauth://` URI).
    pub issuer: String,
    /// How long the challenge of a login waiting for its second factor lives.
    pub challenge_lifetime: Dur,
    /// Staff and superusers without a confirmed factor cannot log in until they enrol: their
    /// first step answers "enrolment required" with a challenge that enrols and then logs in.
    #[serde(deserialize_with = "de::bool")]
    pub required_for_staff: bool,
}

impl Default for MfaConfig {
    fn default() -> Self {
        MfaConfig {
            issuer: "sekisho".into(),
            challenge_lifetime: Dur::secs(300),
            required_for_staff: false,
        }
    }
}

/// The longest a second-factor challenge may live.
pub const MAX_MFA_CHALLENGE_LIFETIME: Duration = Duration::from_secs(900);

/// The access policy of the forward-auth gate (`GET /api/auth/check/`); see
/// [`crate::authz::policy`]. Rules are tried in order, inline ones first, then the file's.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// A TOML file of further `[[rules]]` (and optionally `default`), relative to the working
    /// directory.
    pub file: Option<PathBuf>,
    /// The requirement when no rule matches.
    pub default: String,
    pub rules: Vec<RuleConfig>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            file: None,
            default: "authenticated".into(),
            rules: Vec::new(),
        }
    }
}

/// One policy rule: a path pattern, optional methods, a requirement.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub path: String,
    #[serde(default)]
    pub methods: Vec<String>,
    pub require: String,
    /// Step-up: the caller's login must have passed a second factor at most this long ago
    /// (`mfa_within = "15m"`); else 403.
    #[serde(default)]
    pub mfa_within: Option<Dur>,
}

/// How the forward-auth gate answers a proxy.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForwardAuthConfig {
    /// The identity headers of a 2xx answer (the proxy copies them to the upstream request).
    pub user_id_header: String,
    pub username_header: String,
    pub groups_header: String,
    /// Where a page navigation without credentials is sent (`302`, with `?next=` the original
    /// URI). Unset: a 401 for every caller. API calls (fetch/XHR) always get the 401 JSON.
    pub login_url: Option<String>,
}

impl Default for ForwardAuthConfig {
    fn default() -> Self {
        ForwardAuthConfig {
            user_id_header: "X-Auth-User-Id".into(),
            username_header: "X-Auth-Username".into(),
            groups_header: "X-Auth-Groups".into(),
            login_url: None,
        }
    }
}

/// Brute-force protection of the login endpoints (0 disables a limit).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    #[serde(deserialize_with = "de::u64")]
    pub max_failures_per_account: u64,
    #[serde(deserialize_with = "de::u64")]
    pub max_failures_per_ip: u64,
    pub window: Dur,
    pub lockout: Dur,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            max_failures_per_account: 10,
            max_failures_per_ip: 100,
            window: Dur::secs(300),
            lockout: Dur::secs(60),
        }
    }
}

/// The per-instance read cache of users and sessions.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// How long another process's change (another instance, the CLI) may take to be seen by
    /// this instance; changes made through this instance are seen at once. `0` disables.
    pub ttl: Dur,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            ttl: Dur(Duration::from_millis(250)),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    pub static_dir: Option<PathBuf>,
    #[serde(deserialize_with = "de::list")]
    pub trusted_proxies: Vec<String>,
    /// Where the generated signing key (and the default SQLite file) live.
    pub data_dir: PathBuf,
    /// Largest accepted request body, in bytes; larger bodies get 413.
    #[serde(deserialize_with = "de::u64")]
    pub max_body_size: u64,
    /// `Content-Security-Policy` sent with the SPA's HTML pages (unset: none; only the app knows
    /// which scripts, styles and API origins it needs).
    pub content_security_policy: Option<String>,
    /// How long a client has to send a request's line and headers: from the accept for the
    /// first request of a connection, from the request's first byte on a kept-alive one. Past
    /// it the connection is closed.
    pub header_read_timeout: Dur,
    /// How long a handler may wait for a request's body, from its first read; past it the
    /// request is answered 408 and the connection closed.
    pub body_read_timeout: Dur,
    /// How long a kept-alive connection may wait, idle, for its next request.
    pub idle_timeout: Dur,
    /// Concurrent connections per instance; beyond it new connections are closed at once.
    /// Unset: derived from the open-file limit at start (at most 10000).
    #[serde(deserialize_with = "de::opt_u64")]
    pub max_connections: Option<u64>,
    /// A listener of its own for `/metrics` and `/api/openapi.json` (with `/healthz` and
    /// `/readyz`), e.g. `127.0.0.1:9100`: when set, the main listener answers those two paths
    /// 404, so what they tell (traffic, failure rates, the whole API surface) stays off the
    /// public port. Unset: everything on `server.bind`.
    pub ops_bind: Option<String>,
}

/// The shortest and longest accepted connection timeouts (`server.*_timeout`).
pub const MIN_CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
pub const MAX_CONNECTION_TIMEOUT: Duration = Duration::from_secs(3600);
/// The largest accepted `server.max_connections`.
pub const MAX_CONNECTIONS: u64 = 1_000_000;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8000".into(),
            static_dir: None,
            trusted_proxies: Vec::new(),
            data_dir: PathBuf::from("./sekisho-data"),
            max_body_size: 64 * 1024,
            content_security_policy: None,
            header_read_timeout: Dur::secs(10),
            body_read_timeout: Dur::secs(30),
            idle_timeout: Dur::secs(60),
            max_connections: None,
            ops_bind: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    #[serde(deserialize_with = "de::u64")]
    pub max_connections: u64,
    /// Upper bound on any single storage call; past it the request fails closed with 503.
    pub timeout: Dur,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://./sekisho-data/sekisho.db".into(),
            max_connections: 8,
            timeout: Dur::secs(5),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecureCookies {
    Auto,
    Always,
    Never,
}

impl Serialize for SecureCookies {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            SecureCookies::Auto => "auto",
            SecureCookies::Always => "true",
            SecureCookies::Never => "false",
        })
    }
}

impl<'de> Deserialize<'de> for SecureCookies {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match de::Scalar::deserialize(d)? {
            de::Scalar::Bool(true) => Ok(SecureCookies::Always),
            de::Scalar::Bool(false) => Ok(SecureCookies::Never),
            de::Scalar::Str(s) => match s.to_ascii_lowercase().as_str() {
                "auto" => Ok(SecureCookies::Auto),
                "true" | "1" | "yes" | "on" => Ok(SecureCookies::Always),
                "false" | "0" | "no" | "off" => Ok(SecureCookies::Never),
                _ => Err(serde::de::Error::custom(format!(
                    "expected auto, true or false, got {s:?}"
                ))),
            },
            other => Err(serde::de::Error::custom(format!(
                "expected auto, true or false, got {other}"
            ))),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionsConfig {
    /// `database` (the SQL database of `database.url`) or a `redis://` / `rediss://` URL, which
    /// then also holds the refresh families.
    pub store: String,
    /// Prefix of every Redis key, so several deployments can share one Redis.
    pub key_prefix: String,
    pub cookie_name: String,
    pub cookie_age: Dur,
    pub idle_timeout: Dur,
    pub absolute_timeout: Dur,
    pub secure_cookies: SecureCookies,
    /// Live sessions one user may hold; a login past it ends that user's oldest session (so a
    /// script logging in in a loop cannot fill the store). `0`: no limit.
    #[serde(deserialize_with = "de::u64")]
    pub max_per_user: u64,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            store: "database".into(),
            key_prefix: "sekisho".into(),
            cookie_name: "sessionid".into(),
            cookie_age: Dur::days(14),
            idle_timeout: Dur::days(14),
            absolute_timeout: Dur::days(30),
            secure_cookies: SecureCookies::Auto,
            max_per_user: 100,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CsrfConfig {
    pub cookie_name: String,
    pub header_name: String,
    #[serde(deserialize_with = "de::list")]
    pub trusted_origins: Vec<String>,
    /// The HMAC secret CSRF tokens are bound with. Unset: derived from the HS signing secret
    /// (configured or generated), which with an asymmetric `jwt.algorithm` is kept or generated
    /// in the data directory for this purpose alone.
    pub secret: Option<Secret>,
    pub secret_file: Option<PathBuf>,
}

impl Default for CsrfConfig {
    fn default() -> Self {
        CsrfConfig {
            cookie_name: "csrftoken".into(),
            header_name: "X-CSRFToken".into(),
            trusted_origins: Vec::new(),
            secret: None,
            secret_file: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    pub algorithm: String,
    pub signing_key: Option<Secret>,
    /// HS*: a file holding the secret. EdDSA/ES256/RS256: a PEM private key (PKCS#8) that
    /// signs for ever, instead of managed, rotated keys in the database.
    pub signing_key_file: Option<PathBuf>,
    /// The secret that seals managed private keys in the database (every instance sharing
    /// the database needs the same one). Unset: generated into the data directory.
    pub key_encryption_key: Option<Secret>,
    pub key_encryption_key_file: Option<PathBuf>,
    /// How long a managed key signs before the next takes over; `0`: no automatic rotation.
    pub key_rotation_period: Dur,
    /// How long a new managed key is published in the JWKS before it signs.
    pub key_publish_ahead: Dur,
    pub access_token_lifetime: Dur,
    pub refresh_token_lifetime: Dur,
    pub refresh_absolute_lifetime: Dur,
    #[serde(deserialize_with = "de::bool")]
    pub rotate_refresh_tokens: bool,
    pub reuse_grace: Dur,
    pub leeway: Dur,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub user_id_claim: String,
    /// Also hand out the refresh token as an HttpOnly, SameSite=Strict cookie scoped to
    /// `/api/token/`, accept it there, and leave it out of JSON bodies (DESIGN §3.4).
    #[serde(deserialize_with = "de::bool")]
    pub refresh_cookie: bool,
    pub refresh_cookie_name: String,
    /// Also reject access tokens of revoked families and disabled users (one store lookup per
    /// request instead of a signature check alone).
    #[serde(deserialize_with = "de::bool")]
    pub strict_access: bool,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            algorithm: "HS256".into(),
            signing_key: None,
            signing_key_file: None,
            key_encryption_key: None,
            key_encryption_key_file: None,
            key_rotation_period: Dur::days(30),
            key_publish_ahead: Dur::secs(600),
            access_token_lifetime: Dur::secs(5 * 60),
            refresh_token_lifetime: Dur::days(1),
            refresh_absolute_lifetime: Dur::days(30),
            rotate_refresh_tokens: true,
            reuse_grace: Dur::secs(5),
            leeway: Dur::secs(0),
            issuer: None,
            audience: None,
            user_id_claim: "user_id".into(),
            refresh_cookie: false,
            refresh_cookie_name: "refresh_token".into(),
            strict_access: false,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(deserialize_with = "de::u64")]
    pub unauthenticated_status: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            unauthenticated_status: 401,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordsConfig {
    /// How many password hashes may run at once (each on a blocking thread, never on an async
    /// worker). 0 means the number of CPUs.
    #[serde(deserialize_with = "de::u64")]
    pub hash_concurrency: u64,
    /// Argon2id memory cost in KiB, time cost and parallelism (OWASP's first recommendation).
    #[serde(deserialize_with = "de::u64")]
    pub argon2_memory_kib: u64,
    #[serde(deserialize_with = "de::u64")]
    pub argon2_iterations: u64,
    #[serde(deserialize_with = "de::u64")]
    pub argon2_parallelism: u64,
}

impl Default for PasswordsConfig {
    fn default() -> Self {
        PasswordsConfig {
            hash_concurrency: 0,
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            argon2_parallelism: 1,
        }
    }
}

/// A secret string: never printed by `Debug`, masked when the config is shown.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(********)")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("********")
    }
}

/// A duration written as `300` (seconds), `300s`, `5m`, `1d`, `1h 30m`, `250ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl Dur {
    pub const fn secs(s: u64) -> Self {
        Dur(Duration::from_secs(s))
    }
    pub const fn days(d: u64) -> Self {
        Dur(Duration::from_secs(d * 86_400))
    }
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("empty duration".into());
        }
        if let Ok(n) = t.parse::<u64>() {
            return Ok(Dur::secs(n));
        }
        humantime::parse_duration(t)
            .map(Dur)
            .map_err(|_| format!("invalid duration {s:?} (use e.g. 300, 30s, 5m, 1d)"))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            return f.write_str("0s");
        }
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string().replace(' ', ""))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match de::Scalar::deserialize(d)? {
            de::Scalar::Int(n) if n >= 0 => Ok(Dur::secs(n as u64)),
            de::Scalar::Str(s) => Dur::parse(&s).map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!(
                "expected a duration such as 300, 30s, 5m or 1d, got {other}"
            ))),
        }
    }
}

/// Lenient scalar deserializers: environment variables are always strings, so a boolean or a
/// number may arrive as text.
mod de {
    use serde::{Deserialize, Deserializer};
    use std::fmt;

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum Scalar {
        Bool(bool),
        Int(i64),
        Float(f64),
        Str(String),
        List(Vec<toml::Value>),
        Table(#[allow(dead_code)] toml::Table),
    }

    impl fmt::Display for Scalar {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Scalar::Bool(b) => write!(f, "{b}"),
                Scalar::Int(n) => write!(f, "{n}"),
                Scalar::Float(n) => write!(f, "{n}"),
                Scalar::Str(s) => write!(f, "{s:?}"),
                Scalar::List(_) => f.write_str("a list"),
                Scalar::Table(_) => f.write_str("a table"),
            }
        }
    }

    pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match Scalar::deserialize(d)? {
            Scalar::Bool(b) => Ok(b),
            Scalar::Str(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(serde::de::Error::custom(format!(
                    "expected true or false, got {s:?}"
                ))),
            },
            other => Err(serde::de::Error::custom(format!(
                "expected true or false, got {other}"
            ))),
        }
    }

    pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match Scalar::deserialize(d)? {
            Scalar::Int(n) if n >= 0 => Ok(n as u64),
            Scalar::Str(s) => s.trim().parse().map_err(|_| {
                serde::de::Error::custom(format!("expected a whole number, got {s:?}"))
            }),
            other => Err(serde::de::Error::custom(format!(
                "expected a whole number, got {other}"
            ))),
        }
    }

    /// An optional whole number (the field is absent when unset).
    pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        u64(d).map(Some)
    }

    /// A list, or (from the environment) a comma-separated string.
    pub fn secrets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<super::Secret>, D::Error> {
        Ok(list(d)?.into_iter().map(super::Secret::new).collect())
    }

    pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        match Scalar::deserialize(d)? {
            Scalar::List(items) => items
                .into_iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s),
                    other => Err(serde::de::Error::custom(format!(
                        "expected a list of strings, found {other}"
                    ))),
                })
                .collect(),
            Scalar::Str(s) => Ok(s
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect()),
            other => Err(serde::de::Error::custom(format!(
                "expected a list of strings, got {other}"
            ))),
        }
    }
}

/// A configuration problem, one line, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Parses TOML text, overlays `vars` (typically `std::env::vars()`), and validates.
    pub fn load(
        toml_text: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table = toml::from_str(toml_text)
            .map_err(|e| ConfigError(format!("config file: {}", one_line(&e.to_string()))))?;
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix("SEKISHO_") else {
                continue;
            };
            let Some((section, key)) = rest.split_once("__") else {
                continue;
            };
            let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
            if section.is_empty() || key.is_empty() {
                continue;
            }
            let entry = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => {
                    t.insert(key, toml::Value::String(value));
                }
                _ => return Err(ConfigError(format!("{name}: `{section}` is not a section"))),
            }
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let path = e.path().to_string();
                let msg = one_line(&e.inner().to_string());
                if path == "." {
                    ConfigError(msg)
                } else {
                    ConfigError(format!("{path}: {msg}"))
                }
            })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |s: String| Err(ConfigError(s));
        if self.server.bind.parse::<std::net::SocketAddr>().is_err() {
            return err(format!(
                "server.bind: {:?} is not an address such as 127.0.0.1:8000",
                self.server.bind
            ));
        }
        if let Some(csp) = &self.server.content_security_policy
            && (csp.trim().is_empty() || !csp.bytes().all(|b| b == b' ' || b.is_ascii_graphic()))
        {
            return err(
                "server.content_security_policy: must be one line of printable ASCII".into(),
            );
        }
        if self.server.max_body_size < 1024 {
            return err("server.max_body_size: must be at least 1024 bytes".into());
        }
        for (name, d) in [
            (
                "server.header_read_timeout",
                self.server.header_read_timeout,
            ),
            ("server.body_read_timeout", self.server.body_read_timeout),
            ("server.idle_timeout", self.server.idle_timeout),
        ] {
            if d.0 < MIN_CONNECTION_TIMEOUT || d.0 > MAX_CONNECTION_TIMEOUT {
                return err(format!(
                    "{name}: must be between {} and {} (got {d})",
                    Dur(MIN_CONNECTION_TIMEOUT),
                    Dur(MAX_CONNECTION_TIMEOUT)
                ));
            }
        }
        if let Some(n) = self.server.max_connections
            && !(1..=MAX_CONNECTIONS).contains(&n)
        {
            return err(format!(
                "server.max_connections: must be between 1 and {MAX_CONNECTIONS} (got {n})"
            ));
        }
        if let Some(ops) = &self.server.ops_bind {
            match ops.parse::<std::net::SocketAddr>() {
                Err(_) => {
                    return err(format!(
                        "server.ops_bind: {ops:?} is not an address such as 127.0.0.1:9100"
                    ));
                }
                Ok(a) if a.port() != 0 && Some(a) == self.server.bind.parse().ok() => {
                    return err("server.ops_bind: must differ from server.bind".into());
                }
                Ok(_) => {}
            }
        }
        let db = self.database.url.as_str();
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            return err(format!(
                "database.url: unsupported scheme in {:?} (supported: sqlite://, postgres://)",
                mask_url(db)
            ));
        }
        if self.database.max_connections == 0 {
            return err("database.max_connections: must be at least 1".into());
        }
        let jwt = &self.jwt;
        let algorithm = crate::token::SignatureAlgorithm::parse(&jwt.algorithm)?;
        if let Some(key) = &jwt.signing_key {
            if !algorithm.is_symmetric() {
                return err(format!(
                    "jwt.signing_key: a secret signs only HS256, HS384 or HS512; an {} key is a PEM file (jwt.signing_key_file) or managed in the database (leave both unset)",
                    algorithm.name()
                ));
            }
            // The key's own constructor holds the rules (length, shape): checked once, there.
            if let Err(e) = crate::token::HmacKey::new(algorithm, key.expose().as_bytes()) {
                return err(format!("jwt.signing_key: {e}"));
            }
            if jwt.signing_key_file.is_some() {
                return err(
                    "jwt.signing_key and jwt.signing_key_file are both set; choose one".into(),
                );
            }
        }
        if let Some(kek) = &jwt.key_encryption_key {
            if let Err(e) = crate::token::managed::KeyEncryptionKey::derive(kek.expose().as_bytes())
            {
                return err(format!("jwt.key_encryption_key: {e}"));
            }
            if jwt.key_encryption_key_file.is_some() {
                return err("jwt.key_encryption_key and jwt.key_encryption_key_file are both set; choose one".into());
            }
        }
        if !algorithm.is_symmetric()
            && jwt.signing_key_file.is_some()
            && (jwt.key_encryption_key.is_some() || jwt.key_encryption_key_file.is_some())
        {
            return err("jwt.key_encryption_key: unused with jwt.signing_key_file (a PEM key is not stored in the database); set one of them".into());
        }
        if jwt.key_publish_ahead.0 > Duration::from_secs(86_400) {
            return err("jwt.key_publish_ahead: must be at most 1d".into());
        }
        let period = jwt.key_rotation_period.0;
        if !period.is_zero()
            && (period < Duration::from_secs(3600) || period < 2 * jwt.key_publish_ahead.0)
        {
            return err(format!(
                "jwt.key_rotation_period: must be 0 (no automatic rotation) or at least 1h and twice jwt.key_publish_ahead (got {})",
                jwt.key_rotation_period
            ));
        }
        if let Some(secret) = &self.csrf.secret {
            if secret.expose().len() < crate::token::keys::MIN_HMAC_KEY_BYTES {
                return err(format!(
                    "csrf.secret: must be at least {} bytes",
                    crate::token::keys::MIN_HMAC_KEY_BYTES
                ));
            }
            if self.csrf.secret_file.is_some() {
                return err("csrf.secret and csrf.secret_file are both set; choose one".into());
            }
        }
        for (name, d) in [
            ("jwt.access_token_lifetime", jwt.access_token_lifetime),
            ("jwt.refresh_token_lifetime", jwt.refresh_token_lifetime),
            (
                "jwt.refresh_absolute_lifetime",
                jwt.refresh_absolute_lifetime,
            ),
        ] {
            if d.0.as_secs() < 1 {
                return err(format!("{name}: must be at least 1s"));
            }
        }
        if jwt.reuse_grace.0 > MAX_REUSE_GRACE {
            return err(format!(
                "jwt.reuse_grace: {} is above the cap of {}",
                jwt.reuse_grace,
                Dur(MAX_REUSE_GRACE)
            ));
        }
        if jwt.leeway.0 > Duration::from_secs(300) {
            return err("jwt.leeway: must be at most 5m".into());
        }
        if jwt.user_id_claim.trim().is_empty() {
            return err("jwt.user_id_claim: must not be empty".into());
        }
        if matches!(
            jwt.user_id_claim.as_str(),
            "token_type"
                | "exp"
                | "iat"
                | "jti"
                | "fid"
                | "iss"
                | "aud"
                | "nbf"
                | "amr"
                | "auth_time"
        ) {
            return err(format!(
                "jwt.user_id_claim: {:?} is a reserved claim",
                jwt.user_id_claim
            ));
        }
        let dj = &self.django;
        match (&dj.database_url, &dj.secret_key) {
            (Some(_), Some(k)) if k.expose().is_empty() => {
                return err("django.secret_key: must not be empty".into());
            }
            (Some(_), None) => {
                return err(
                    "django.secret_key: required with django.database_url (Django's SECRET_KEY signs its sessions)"
                        .into(),
                );
            }
            (None, Some(_)) => {
                return err(
                    "django.database_url: required with django.secret_key (the database the sessions are read from)"
                        .into(),
                );
            }
            _ => {}
        }
        let mfa = &self.mfa;
        if mfa.issuer.trim().is_empty()
            || mfa.issuer.len() > 64
            || mfa.issuer.contains(':')
            || mfa.issuer.chars().any(char::is_control)
        {
            return err("mfa.issuer: must be 1 to 64 printable characters without ':'".into());
        }
        if mfa.challenge_lifetime.0 < Duration::from_secs(30)
            || mfa.challenge_lifetime.0 > MAX_MFA_CHALLENGE_LIFETIME
        {
            return err(format!(
                "mfa.challenge_lifetime: must be between 30s and {} (got {})",
                Dur(MAX_MFA_CHALLENGE_LIFETIME),
                mfa.challenge_lifetime
            ));
        }
        if let Err(e) = crate::mfa::passkey::RelyingParty::from_config(&self.webauthn) {
            return err(e);
        }
        if self.cache.ttl.0 > Duration::from_secs(1) {
            return err(
                "cache.ttl: must be at most 1s (it bounds how stale a revocation may be)".into(),
            );
        }
        if !matches!(self.auth.unauthenticated_status, 401 | 403) {
            return err("auth.unauthenticated_status: must be 401 or 403".into());
        }
        let store = self.sessions.store.as_str();
        if !(store == "database" || store.starts_with("redis://") || store.starts_with("rediss://"))
        {
            return err(format!(
                "sessions.store: {:?} is not supported (use database or a redis:// URL)",
                mask_url(store)
            ));
        }
        if self.sessions.key_prefix.is_empty() || self.sessions.key_prefix.contains(['{', '}', ' '])
        {
            return err("sessions.key_prefix: must be non-empty without braces or spaces".into());
        }
        for (name, v) in [
            ("sessions.cookie_name", &self.sessions.cookie_name),
            ("csrf.cookie_name", &self.csrf.cookie_name),
            ("csrf.header_name", &self.csrf.header_name),
            ("jwt.refresh_cookie_name", &self.jwt.refresh_cookie_name),
        ] {
            if v.is_empty()
                || !v
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return err(format!("{name}: {v:?} must be letters, digits, '-' or '_'"));
            }
        }
        for (name, v) in [
            (
                "forward_auth.user_id_header",
                &self.forward_auth.user_id_header,
            ),
            (
                "forward_auth.username_header",
                &self.forward_auth.username_header,
            ),
            (
                "forward_auth.groups_header",
                &self.forward_auth.groups_header,
            ),
        ] {
            if v.is_empty()
                || !v
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return err(format!("{name}: {v:?} must be letters, digits, '-' or '_'"));
            }
        }
        if let Some(url) = &self.forward_auth.login_url
            && (url.is_empty()
                || !(url.starts_with('/')
                    || url.starts_with("https://")
                    || url.starts_with("http://"))
                || !url.bytes().all(|b| b.is_ascii_graphic()))
        {
            return err(format!(
                "forward_auth.login_url: {url:?} must be a path or an http(s) URL"
            ));
        }
        // The inline rules are checked here; `policy.file` when the server reads it.
        crate::authz::policy::Policy::compile(&self.policy, None)?;
        let p = &self.passwords;
        if !(8..=4 * 1024 * 1024).contains(&p.argon2_memory_kib)
            || !(1..=64).contains(&p.argon2_iterations)
            || !(1..=16).contains(&p.argon2_parallelism)
        {
            return err("passwords: argon2 parameters out of range".into());
        }
        Ok(())
    }

    /// The effective configuration as TOML with every secret masked (for `config check`).
    pub fn to_masked_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database.url = mask_url(&shown.database.url);
        shown.sessions.store = mask_url(&shown.sessions.store);
        shown.django.database_url = shown.django.database_url.as_deref().map(mask_url);
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

/// Hides the secrets of a connection URL: the password of `scheme://user:password@host` (the
/// user information ends at the *last* `@` before the query, as URL parsers read it, so a
/// password holding `@` is hidden whole) and the values of `password` / `sslpassword` query
/// parameters.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (head, query) = match rest.find(['?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let head = match head.rsplit_once('@') {
        Some((creds, host)) => match creds.split_once(':') {
            Some((user, _)) => format!("{user}:********@{host}"),
            None => head.to_string(),
        },
        None => head.to_string(),
    };
    let query = query
        .split_inclusive(['&', '?', '#'])
        .map(|part| match part.split_once('=') {
            Some((key, value))
                if key.eq_ignore_ascii_case("password")
                    || key.eq_ignore_ascii_case("sslpassword") =>
            {
                let sep = if value.ends_with(['&', '#']) {
                    &value[value.len() - 1..]
                } else {
                    ""
                };
                format!("{key}=********{sep}")
            }
            _ => part.to_string(),
        })
        .collect::<String>();
    format!("{scheme}://{head}{query}")
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_the_contract() {
        let c = Config::load("", vec![]).unwrap();
        assert_eq!(c.server.bind, "127.0.0.1:8000");
        assert_eq!(c.database.url, "sqlite://./sekisho-data/sekisho.db");
        assert_eq!(c.sessions.cookie_name, "sessionid");
        assert_eq!(c.sessions.cookie_age, Dur::days(14));
        assert_eq!(c.csrf.header_name, "X-CSRFToken");
        assert_eq!(c.jwt.access_token_lifetime, Dur::secs(300));
        assert_eq!(c.jwt.refresh_token_lifetime, Dur::days(1));
        assert_eq!(c.jwt.refresh_absolute_lifetime, Dur::days(30));
        assert!(c.jwt.rotate_refresh_tokens);
        assert_eq!(c.jwt.leeway, Dur::secs(0));
        assert_eq!(c.auth.unauthenticated_status, 401);
        assert_eq!(c.server.header_read_timeout, Dur::secs(10));
        assert_eq!(c.server.body_read_timeout, Dur::secs(30));
        assert_eq!(c.server.idle_timeout, Dur::secs(60));
        assert_eq!(c.server.max_connections, None);
        assert_eq!(c.jwt.algorithm, "HS256");
        assert_eq!(c.jwt.key_publish_ahead, Dur::secs(600));
        assert_eq!(c.jwt.key_rotation_period, Dur::days(30));
    }

    #[test]
    fn signing_key_settings_are_checked_by_name() {
        for alg in ["HS256", "HS384", "HS512", "EdDSA", "ES256", "RS256"] {
            let c = Config::load("", vars(&[("SEKISHO_JWT__ALGORITHM", alg)])).unwrap();
            assert_eq!(c.jwt.algorithm, alg);
        }
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("SEKISHO_JWT__ALGORITHM", "PS256")],
                "jwt.algorithm: \"PS256\" is not supported",
            ),
            (&[("SEKISHO_JWT__ALGORITHM", "eddsa")], "jwt.algorithm:"),
            (
                &[
                    ("SEKISHO_JWT__ALGORITHM", "EdDSA"),
                    ("SEKISHO_JWT__SIGNING_KEY", &"k".repeat(40)),
                ],
                "jwt.signing_key: a secret signs only HS256",
            ),
            (
                &[("SEKISHO_JWT__KEY_ENCRYPTION_KEY", "short")],
                "jwt.key_encryption_key: ",
            ),
            (
                &[
                    ("SEKISHO_JWT__ALGORITHM", "ES256"),
                    ("SEKISHO_JWT__SIGNING_KEY_FILE", "k.pem"),
                    ("SEKISHO_JWT__KEY_ENCRYPTION_KEY", &"k".repeat(40)),
                ],
                "jwt.key_encryption_key: unused with jwt.signing_key_file",
            ),
            (
                &[("SEKISHO_JWT__KEY_ROTATION_PERIOD", "10m")],
                "jwt.key_rotation_period:",
            ),
            (
                &[
                    ("SEKISHO_JWT__KEY_ROTATION_PERIOD", "1h"),
                    ("SEKISHO_JWT__KEY_PUBLISH_AHEAD", "40m"),
                ],
                "jwt.key_rotation_period:",
            ),
            (
                &[("SEKISHO_JWT__KEY_PUBLISH_AHEAD", "2d")],
                "jwt.key_publish_ahead:",
            ),
            (
                &[("SEKISHO_CSRF__SECRET", "short")],
                "csrf.secret: must be at least 32 bytes",
            ),
        ];
        for (env, want) in cases {
            let e = Config::load("", vars(env)).unwrap_err();
            assert!(e.0.starts_with(want), "{env:?}: {e}");
            assert!(!e.0.contains('\n'));
        }
        let c = Config::load(
            "",
            vars(&[
                ("SEKISHO_JWT__ALGORITHM", "EdDSA"),
                ("SEKISHO_JWT__KEY_ROTATION_PERIOD", "0"),
                ("SEKISHO_JWT__KEY_ENCRYPTION_KEY", &"e".repeat(40)),
                ("SEKISHO_CSRF__SECRET", &"c".repeat(40)),
            ]),
        )
        .unwrap();
        let shown = c.to_masked_toml();
        assert!(!shown.contains(&"e".repeat(40)) && !shown.contains(&"c".repeat(40)));
    }

    #[test]
    fn connection_limits_refuse_zero_and_nonsense() {
        for key in ["HEADER_READ_TIMEOUT", "BODY_READ_TIMEOUT", "IDLE_TIMEOUT"] {
            let var = format!("SEKISHO_SERVER__{key}");
            let name = format!("server.{}", key.to_ascii_lowercase());
            for bad in ["0", "0s", "500ms", "2h", "soon", "-1"] {
                let e = Config::load("", vars(&[(&var, bad)])).unwrap_err();
                assert!(e.0.starts_with(&name), "{var}={bad}: {e}");
                assert!(!e.0.contains('\n'));
            }
            let c = Config::load("", vars(&[(&var, "2s")])).unwrap();
            assert_eq!(c.to_masked_toml().matches("\"2s\"").count(), 1);
        }
        for bad in ["0", "-5", "many", "1000001"] {
            let e =
                Config::load("", vars(&[("SEKISHO_SERVER__MAX_CONNECTIONS", bad)])).unwrap_err();
            assert!(e.0.starts_with("server.max_connections"), "{bad}: {e}");
        }
        let c = Config::load("[server]\nmax_connections = 50\n", vec![]).unwrap();
        assert_eq!(c.server.max_connections, Some(50));
        assert!(c.to_masked_toml().contains("max_connections = 50"));
        assert_eq!(c.server.ops_bind, None);
        for (bad, why) in [
            ("localhost:9100", "is not an address"),
            ("127.0.0.1:8000", "must differ from server.bind"),
        ] {
            let e = Config::load(&format!("[server]\nops_bind = {bad:?}\n"), vec![]).unwrap_err();
            assert!(
                e.0.starts_with("server.ops_bind") && e.0.contains(why),
                "{e}"
            );
        }
        let c = Config::load("", vars(&[("SEKISHO_SERVER__OPS_BIND", "127.0.0.1:9100")])).unwrap();
        assert_eq!(c.server.ops_bind.as_deref(), Some("127.0.0.1:9100"));
    }

    #[test]
    fn durations_accept_all_spellings() {
        assert_eq!(Dur::parse("300").unwrap(), Dur::secs(300));
        assert_eq!(Dur::parse("300s").unwrap(), Dur::secs(300));
        assert_eq!(Dur::parse("5m").unwrap(), Dur::secs(300));
        assert_eq!(Dur::parse("1d").unwrap(), Dur::days(1));
        assert!(Dur::parse("five").is_err());
        assert!(Dur::parse("").is_err());
    }

    #[test]
    fn environment_overrides_file() {
        let c = Config::load(
            "[jwt]\naccess_token_lifetime = \"10m\"\nrotate_refresh_tokens = true\n",
            vars(&[
                ("SEKISHO_JWT__ACCESS_TOKEN_LIFETIME", "2s"),
                ("SEKISHO_JWT__ROTATE_REFRESH_TOKENS", "false"),
                (
                    "SEKISHO_CSRF__TRUSTED_ORIGINS",
                    "https://a.example, https://b.example",
                ),
                ("SEKISHO_AUTH__UNAUTHENTICATED_STATUS", "403"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.jwt.access_token_lifetime, Dur::secs(2));
        assert!(!c.jwt.rotate_refresh_tokens);
        assert_eq!(
            c.csrf.trusted_origins,
            vec!["https://a.example", "https://b.example"]
        );
        assert_eq!(c.auth.unauthenticated_status, 403);
    }

    #[test]
    fn bad_values_give_one_line_naming_the_key() {
        let e = Config::load("", vars(&[("SEKISHO_JWT__SIGNING_KEY", "short")])).unwrap_err();
        assert!(e.0.starts_with("jwt.signing_key:"), "{e}");
        let e = Config::load("[jwt]\nreuse_grace = \"2m\"\n", vec![]).unwrap_err();
        assert!(e.0.starts_with("jwt.reuse_grace:"), "{e}");
        let e = Config::load("[jwt]\naccess_token_lifetime = \"soon\"\n", vec![]).unwrap_err();
        assert!(e.0.contains("jwt.access_token_lifetime"), "{e}");
        let e = Config::load("[jwt]\nacess_token_lifetime = \"5m\"\n", vec![]).unwrap_err();
        assert!(e.0.contains("acess_token_lifetime"), "{e}");
        let e =
            Config::load("", vars(&[("SEKISHO_JWT__ROTATE_REFRESH_TOKENS", "maybe")])).unwrap_err();
        assert!(e.0.contains("rotate_refresh_tokens"), "{e}");
        assert!(!e.0.contains('\n'));
    }

    #[test]
    fn masked_output_hides_secrets() {
        let key = "k".repeat(40);
        let c = Config::load("", vars(&[("SEKISHO_JWT__SIGNING_KEY", &key)])).unwrap();
        let shown = c.to_masked_toml();
        assert!(!shown.contains(&key));
        assert!(shown.contains("********"));
        assert!(!format!("{c:?}").contains(&key));
        assert_eq!(
            mask_url("postgres://u:pw@h/db"),
            "postgres://u:********@h/db"
        );
        // A password holding `@` or `:` is hidden whole; so are password query parameters.
        assert_eq!(
            mask_url("postgres://u:p@ss:w0rd@h:5432/db?sslmode=require"),
            "postgres://u:********@h:5432/db?sslmode=require"
        );
        assert_eq!(
            mask_url("postgres://h/db?user=u&password=s3cret&sslpassword=k3y#x"),
            "postgres://h/db?user=u&password=********&sslpassword=********#x"
        );
        assert_eq!(
            mask_url("sqlite://data/db.sqlite"),
            "sqlite://data/db.sqlite"
        );
        assert_eq!(mask_url("redis://:pw@h:6379"), "redis://:********@h:6379");
    }
}
