//! Key material, from config, from files, or generated into the data directory on first start
//! (file mode 0600), so a fresh install is secure with no set-up and keeps its tokens valid
//! across restarts:
//!
//! * **HS256/384/512**: the HMAC secret (`jwt.signing_key`, `jwt.signing_key_file`, or 32
//!   random bytes as 64 hex characters in `jwt-signing.key`).
//! * **EdDSA/ES256/RS256**: a PEM private key (`jwt.signing_key_file`) that signs for ever, or,
//!   by default, managed keys in the database, sealed with the key-encryption key
//!   (`jwt.key_encryption_key`, `jwt.key_encryption_key_file`, or generated in
//!   `key-encryption.key` for a single instance).
//!
//! The CSRF key always comes from an HMAC secret: `csrf.secret` / `csrf.secret_file` when set,
//! else the HS secret above — with an asymmetric algorithm, the data directory's
//! `jwt-signing.key` is kept (or generated) for this alone — so every instance sharing that
//! secret accepts every other instance's CSRF tokens. The rules of each secret (length) are
//! checked once, by its constructor in sekisho-core.

use anyhow::{Context, Result};
use sekisho_core::config::Config;
use sekisho_core::session::CsrfKey;
use sekisho_core::token::managed::KeyEncryptionKey;
use sekisho_core::token::{AsymmetricKey, HmacKey, SignatureAlgorithm, TokenKey};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How tokens are signed.
pub enum Signing {
    /// One configured key, signing for ever; the config key it came from.
    Static(Arc<dyn TokenKey>, &'static str),
    /// Keys in the database, sealed with this key.
    Managed(KeyEncryptionKey),
}

/// What [`load_or_create`] hands the facade's builder.
pub struct KeyMaterial {
    pub signing: Signing,
    pub csrf: CsrfKey,
    /// The secret second factors are sealed and hashed with: the key-encryption secret when
    /// there is one (managed keys, or `jwt.key_encryption_key[_file]` set with an HS
    /// algorithm); `None` lets the facade derive one from the CSRF key.
    pub mfa: Option<Vec<u8>>,
}

pub const GENERATED_KEY_FILE: &str = "jwt-signing.key";
pub const GENERATED_KEK_FILE: &str = "key-encryption.key";

pub fn generated_key_path(config: &Config) -> PathBuf {
    config.server.data_dir.join(GENERATED_KEY_FILE)
}

pub fn generated_kek_path(config: &Config) -> PathBuf {
    config.server.data_dir.join(GENERATED_KEK_FILE)
}

/// The configured (or generated) signing keys and the CSRF key.
pub fn load_or_create(config: &Config) -> Result<KeyMaterial> {
    let algorithm = SignatureAlgorithm::parse(&config.jwt.algorithm)?;
    let jwt = &config.jwt;
    let mut mfa = None;
    let (signing, hmac_secret) = if algorithm.is_symmetric() {
        let (secret, origin, source) = hmac_secret(config)?;
        let key = HmacKey::new(algorithm, &secret).with_context(|| origin.clone())?;
        if let Some(k) = &jwt.key_encryption_key {
            mfa = Some(k.expose().as_bytes().to_vec());
        } else if let Some(path) = &jwt.key_encryption_key_file {
            let s = read_secret_file(path)
                .with_context(|| format!("jwt.key_encryption_key_file {}", path.display()))?;
            KeyEncryptionKey::derive(&s)
                .with_context(|| format!("jwt.key_encryption_key_file {}", path.display()))?;
            mfa = Some(s);
        }
        (Signing::Static(Arc::new(key), source), Some(secret))
    } else if let Some(path) = &jwt.signing_key_file {
        let what = || format!("jwt.signing_key_file {}", path.display());
        let pem = read_secret_file(path).with_context(what)?;
        let pem = String::from_utf8(pem)
            .map_err(|_| anyhow::anyhow!("not a PEM file"))
            .with_context(what)?;
        let key = AsymmetricKey::from_pem(algorithm, &pem).with_context(what)?;
        (Signing::Static(Arc::new(key), "jwt.signing_key_file"), None)
    } else {
        let (secret, origin) = if let Some(k) = &jwt.key_encryption_key {
            (
                k.expose().as_bytes().to_vec(),
                "jwt.key_encryption_key".to_string(),
            )
        } else if let Some(path) = &jwt.key_encryption_key_file {
            (
                read_secret_file(path)
                    .with_context(|| format!("jwt.key_encryption_key_file {}", path.display()))?,
                format!("jwt.key_encryption_key_file {}", path.display()),
            )
        } else {
            let path = generated_kek_path(config);
            (
                load_or_generate(config, &path, "key-encryption key")?,
                format!("key-encryption key {}", path.display()),
            )
        };
        let kek = KeyEncryptionKey::derive(&secret).with_context(|| origin)?;
        mfa = Some(secret);
        (Signing::Managed(kek), None)
    };
    let csrf = match (&config.csrf.secret, &config.csrf.secret_file, hmac_secret) {
        (Some(s), _, _) => CsrfKey::derive(s.expose().as_bytes()),
        (None, Some(path), _) => {
            let s = read_secret_file(path)
                .with_context(|| format!("csrf.secret_file {}", path.display()))?;
            if s.len() < sekisho_core::token::keys::MIN_HMAC_KEY_BYTES {
                anyhow::bail!(
                    "csrf.secret_file {}: must hold at least 32 bytes",
                    path.display()
                );
            }
            CsrfKey::derive(&s)
        }
        (None, None, Some(secret)) => CsrfKey::derive(&secret),
        (None, None, None) => CsrfKey::derive(&load_or_generate(
            config,
            &generated_key_path(config),
            "HMAC secret (CSRF)",
        )?),
    };
    Ok(KeyMaterial { signing, csrf, mfa })
}

/// The HMAC secret, where it came from (for error messages, never the value) and the config
/// key naming it.
fn hmac_secret(config: &Config) -> Result<(Vec<u8>, String, &'static str)> {
    if let Some(k) = &config.jwt.signing_key {
        return Ok((
            k.expose().as_bytes().to_vec(),
            "jwt.signing_key".into(),
            "jwt.signing_key",
        ));
    }
    if let Some(path) = &config.jwt.signing_key_file {
        let what = format!("jwt.signing_key_file {}", path.display());
        let secret = read_secret_file(path).with_context(|| what.clone())?;
        return Ok((secret, what, "jwt.signing_key_file"));
    }
    let path = generated_key_path(config);
    let secret = load_or_generate(config, &path, "JWT signing key")?;
    Ok((
        secret,
        format!("signing key {}", path.display()),
        "generated (server.data_dir)",
    ))
}

/// The secret in `path`, generating it (32 random bytes as 64 hex characters, mode 0600) when
/// the file does not exist.
fn load_or_generate(config: &Config, path: &Path, what: &str) -> Result<Vec<u8>> {
    if path.exists() {
        return read_secret_file(path).with_context(|| format!("{what} {}", path.display()));
    }
    create_dir_private(&config.server.data_dir)?;
    let key = sekisho_core::random::hex(&sekisho_core::random::bytes::<32>());
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(mut f) => {
            f.write_all(key.as_bytes())
                .and_then(|_| f.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a new {what}");
            Ok(key.into_bytes())
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_secret_file(path),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

/// A secret file's bytes (one trailing newline dropped); warns when other users may read it.
fn read_secret_file(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).context("cannot read the key file")?;
    let trimmed = raw
        .strip_suffix(b"\r\n")
        .or_else(|| raw.strip_suffix(b"\n"))
        .unwrap_or(&raw)
        .to_vec();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "key file is readable by other users; chmod 600 it");
        }
    }
    Ok(trimmed)
}

pub fn create_dir_private(dir: &Path) -> Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))
}
