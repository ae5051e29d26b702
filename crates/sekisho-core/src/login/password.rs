//! Password hashing. Argon2id by default, stored in Django's `argon2$argon2id$…` format so a
//! user table can move between Django and sekisho in both directions; every other format Django
//! stores verifies too ([`super::django_hashers`]) and is upgraded on the next successful login.
//!
//! Hashing is deliberately slow, so it never runs on an async worker: every hash goes to a
//! blocking thread behind a semaphore that bounds how many run at once (a login flood then waits
//! in line instead of starving token and session checks). An unknown user is checked against a
//! dummy hash of the same cost, so timing does not reveal which usernames exist.

use super::django_hashers::Checked;
use crate::config::PasswordsConfig;
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use std::sync::Arc;
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    Mismatch,
    /// Correct; `upgrade` when the stored hash uses an older scheme or weaker parameters.
    Match {
        upgrade: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Argon2Params {
    pub(super) m: u32,
    pub(super) t: u32,
    pub(super) p: u32,
}

#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    params: Argon2Params,
    dummy: Arc<str>,
}

impl Passwords {
    pub fn new(cfg: &PasswordsConfig) -> Self {
        let n = if cfg.hash_concurrency == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        } else {
            cfg.hash_concurrency as usize
        };
        let params = Argon2Params {
            m: cfg.argon2_memory_kib as u32,
            t: cfg.argon2_iterations as u32,
            p: cfg.argon2_parallelism as u32,
        };
        if let Ok(p) = argon2::Params::new(params.m, params.t, params.p, None) {
            KEEP_BLOCKS.store(p.block_count(), std::sync::atomic::Ordering::Relaxed);
        }
        // A syntactically valid hash nobody knows the password of: verifying against it costs
        // exactly what verifying a real hash with the current parameters costs.
        let dummy = format_argon2(
            params,
            &crate::random::bytes::<16>(),
            &crate::random::bytes::<32>(),
        );
        Passwords {
            permits: Arc::new(Semaphore::new(n.max(1))),
            params,
            dummy: dummy.into(),
        }
    }

    /// A description for benchmarks and docs, e.g. `argon2id m=19456 t=2 p=1`.
    pub fn describe(&self) -> String {
        format!(
            "argon2id m={} t={} p={}",
            self.params.m, self.params.t, self.params.p
        )
    }

    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let params = self.params;
        let password = password.to_owned();
        self.blocking(move || {
            let salt = crate::random::bytes::<16>();
            let out = argon2_raw(params, password.as_bytes(), &salt, 32)?;
            Ok(format_argon2(params, &salt, &out))
        })
        .await
    }

    /// Verifies `password` against `stored`, or against the dummy hash when there is no user.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Verification {
        let is_real = stored.is_some();
        let stored = stored
            .map(str::to_owned)
            .unwrap_or_else(|| self.dummy.to_string());
        let password = password.to_owned();
        let current = self.params;
        let dummy = self.dummy.clone();
        let v = self
            .blocking(move || {
                Ok(verify_sync(current, &password, &stored).unwrap_or_else(|| {
                    // Nothing was hashed (an unusable or unreadable stored value): spend the
                    // time a real check takes, as Django does, then refuse.
                    let _ = verify_sync(current, &password, &dummy);
                    Verification::Mismatch
                }))
            })
            .await
            .unwrap_or(Verification::Mismatch);
        if is_real { v } else { Verification::Mismatch }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Hash("hasher closed".into()))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| PasswordError::Hash(e.to_string()))?
    }
}

fn argon2_raw(
    p: Argon2Params,
    password: &[u8],
    salt: &[u8],
    len: usize,
) -> Result<Vec<u8>, PasswordError> {
    argon2_raw_alg(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        p,
        password,
        salt,
        len,
    )
}

pub(super) fn argon2_raw_alg(
    alg: argon2::Algorithm,
    version: argon2::Version,
    p: Argon2Params,
    password: &[u8],
    salt: &[u8],
    len: usize,
) -> Result<Vec<u8>, PasswordError> {
    let params = argon2::Params::new(p.m, p.t, p.p, Some(len))
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    let ctx = argon2::Argon2::new(alg, version, params);
    let mut out = vec![0u8; len];
    let mut memory = WorkingMemory::take(ctx.params().block_count());
    let hashed = ctx.hash_password_into_with_memory(password, salt, &mut out, &mut memory.0[..]);
    memory.give_back();
    hashed.map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(out)
}

/// Argon2's working memory (19 MiB at the default cost), kept between hashes. Allocating it per
/// hash costs a page fault for each of its 4 KiB pages once the allocator hands large blocks
/// straight back to the system (`sekisho::memory`): measured, 256 concurrent logins took 1.9×
/// as long that way. Kept buffers are as many as hashes ever ran at once (bounded by
/// `passwords.hash_concurrency`), zeroed after each use so no derived material lingers; a
/// buffer of another size (a stored hash with other parameters) is made for that one hash and
/// freed after it.
struct WorkingMemory(Vec<argon2::Block>);

static KEPT: std::sync::Mutex<Vec<Vec<argon2::Block>>> = std::sync::Mutex::new(Vec::new());

/// The size of buffer worth keeping: the configured cost's (set by [`Passwords::new`]).
static KEEP_BLOCKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl WorkingMemory {
    fn take(blocks: usize) -> WorkingMemory {
        let kept = KEPT.lock().ok().and_then(|mut k| {
            k.iter()
                .position(|b| b.len() == blocks)
                .map(|i| k.swap_remove(i))
        });
        WorkingMemory(kept.unwrap_or_else(|| vec![argon2::Block::default(); blocks]))
    }

    fn give_back(mut self) {
        if self.0.len() != KEEP_BLOCKS.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        self.0.fill(argon2::Block::default());
        if let Ok(mut k) = KEPT.lock() {
            k.push(std::mem::take(&mut self.0));
        }
    }
}

fn format_argon2(p: Argon2Params, salt: &[u8], hash: &[u8]) -> String {
    format!(
        "argon2$argon2id$v=19$m={},t={},p={}${}${}",
        p.m,
        p.t,
        p.p,
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(hash)
    )
}

/// `None` when the stored value is unusable, malformed, unsupported or out of bounds, so that
/// the caller can spend a real hash's time on it.
fn verify_sync(current: Argon2Params, password: &str, stored: &str) -> Option<Verification> {
    match super::django_hashers::check(current, password, stored) {
        Checked::Hashed { ok: true, upgrade } => Some(Verification::Match { upgrade }),
        Checked::Hashed { ok: false, .. } => Some(Verification::Mismatch),
        Checked::Unusable => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn fast() -> Passwords {
        Passwords::new(&PasswordsConfig {
            hash_concurrency: 2,
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            argon2_parallelism: 1,
        })
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let p = fast();
        let h = p.hash("correct horse").await.unwrap();
        assert!(h.starts_with("argon2$argon2id$v=19$m=64,t=1,p=1$"));
        assert_eq!(
            p.verify("correct horse", Some(&h)).await,
            Verification::Match { upgrade: false }
        );
        assert_eq!(
            p.verify("correct horse ", Some(&h)).await,
            Verification::Mismatch,
            "no trimming"
        );
        assert_eq!(p.verify("wrong", Some(&h)).await, Verification::Mismatch);
    }

    #[tokio::test]
    async fn unknown_user_never_matches_even_with_the_dummy_password() {
        let p = fast();
        assert_eq!(p.verify("", None).await, Verification::Mismatch);
        assert_eq!(p.verify("anything", None).await, Verification::Mismatch);
    }

    #[tokio::test]
    async fn weaker_params_ask_for_an_upgrade() {
        let weak = fast();
        let h = weak.hash("pw").await.unwrap();
        let strong = Passwords::new(&PasswordsConfig {
            argon2_memory_kib: 128,
            ..PasswordsConfig::default()
        });
        assert_eq!(
            strong.verify("pw", Some(&h)).await,
            Verification::Match { upgrade: true }
        );
    }

    #[tokio::test]
    async fn verifies_django_pbkdf2_and_argon2_hashes() {
        let p = fast();
        let mut dk = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"hunter2", b"saltsaltsalt", 1000, &mut dk);
        let django = format!("pbkdf2_sha256$1000$saltsaltsalt${}", STANDARD.encode(dk));
        assert_eq!(
            p.verify("hunter2", Some(&django)).await,
            Verification::Match { upgrade: true }
        );
        assert_eq!(
            p.verify("hunter3", Some(&django)).await,
            Verification::Mismatch
        );
        // Computed independently with Python's hashlib.pbkdf2_hmac, which Django itself calls.
        let vector = "pbkdf2_sha256$100000$seasalt$BNZ6eyaNc8qFTJPjrAq99hSYb73EgAdytAtdBg2Sdcc=";
        assert!(matches!(
            p.verify("lètmein", Some(vector)).await,
            Verification::Match { .. }
        ));

        let params = Argon2Params { m: 64, t: 1, p: 1 };
        let out = argon2_raw_alg(
            argon2::Algorithm::Argon2i,
            argon2::Version::V0x13,
            params,
            b"hunter2",
            b"somesaltsalt",
            32,
        )
        .unwrap();
        let argon2i = format!(
            "argon2$argon2i$v=19$m=64,t=1,p=1${}${}",
            STANDARD_NO_PAD.encode(b"somesaltsalt"),
            STANDARD_NO_PAD.encode(out)
        );
        assert_eq!(
            p.verify("hunter2", Some(&argon2i)).await,
            Verification::Match { upgrade: true }
        );
    }

    #[tokio::test]
    async fn unusable_and_malformed_hashes_never_match() {
        let p = fast();
        for h in [
            "!unusable",
            "",
            "argon2$argon2id$v=19$m=x$a$b",
            "pbkdf2_sha256$0$s$",
            "md5$x$y",
            "argon2$argon2id$v=19$m=99999999,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(p.verify("x", Some(h)).await, Verification::Mismatch, "{h}");
        }
    }
}
