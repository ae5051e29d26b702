//! Key material: the JWT signing key from config, from a file, or generated into the data
//! directory on first start (32 random bytes as 64 hex characters, file mode 0600) so a fresh
//! install is secure with no set-up and keeps its tokens valid across restarts.
//!
//! The CSRF key is derived from the same HMAC secret (with its own label), so every instance
//! that shares the signing secret also accepts every other instance's CSRF tokens. The secret's
//! rules (length) are checked once, by the key's constructor in sekisho-core.

use anyhow::{Context, Result};
use sekisho_core::config::Config;
use sekisho_core::session::CsrfKey;
use sekisho_core::token::{HmacKey, SignatureAlgorithm, TokenKey};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What [`load_or_create`] hands the facade's builder.
pub struct KeyMaterial {
    pub signing: Arc<dyn TokenKey>,
    pub csrf: CsrfKey,
}

pub const GENERATED_KEY_FILE: &str = "jwt-signing.key";

pub fn generated_key_path(config: &Config) -> PathBuf {
    config.server.data_dir.join(GENERATED_KEY_FILE)
}

/// The configured (or generated) signing key and the CSRF key derived from it.
pub fn load_or_create(config: &Config) -> Result<KeyMaterial> {
    let algorithm = SignatureAlgorithm::parse(&config.jwt.algorithm)?;
    let (secret, origin) = load_or_create_secret(config)?;
    let signing = HmacKey::new(algorithm, &secret).with_context(|| origin.clone())?;
    Ok(KeyMaterial {
        signing: Arc::new(signing),
        csrf: CsrfKey::derive(&secret),
    })
}

/// The HMAC secret and where it came from (for error messages, never the value).
fn load_or_create_secret(config: &Config) -> Result<(Vec<u8>, String)> {
    let secret = secret_bytes(config)?;
    let origin = match (&config.jwt.signing_key, &config.jwt.signing_key_file) {
        (Some(_), _) => "jwt.signing_key".to_string(),
        (None, Some(p)) => format!("jwt.signing_key_file {}", p.display()),
        (None, None) => format!("signing key {}", generated_key_path(config).display()),
    };
    Ok((secret, origin))
}

/// Returns the key bytes, generating the key file when no key is configured and none exists.
fn secret_bytes(config: &Config) -> Result<Vec<u8>> {
    if let Some(k) = &config.jwt.signing_key {
        return Ok(k.expose().as_bytes().to_vec());
    }
    if let Some(path) = &config.jwt.signing_key_file {
        return read_key(path).with_context(|| format!("jwt.signing_key_file {}", path.display()));
    }
    let path = generated_key_path(config);
    if path.exists() {
        return read_key(&path).with_context(|| format!("signing key {}", path.display()));
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
    match opts.open(&path) {
        Ok(mut f) => {
            f.write_all(key.as_bytes())
                .and_then(|_| f.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a new JWT signing key");
            Ok(key.into_bytes())
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key(&path),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

fn read_key(path: &Path) -> Result<Vec<u8>> {
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
            tracing::warn!(path = %path.display(), "signing key file is readable by other users; chmod 600 it");
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
