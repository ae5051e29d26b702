//! Password hashes made by Django's own hashers (tests/django_hashers/generate.py) verify here
//! with their password, fail with another, and ask for an upgrade; unusable and unsupported
//! values never match. The committed fixture is read by default; scripts/django_hashers.sh
//! points `SEKISHO_DJANGO_HASH_VECTORS` at freshly generated vectors instead.

use sekisho_core::config::PasswordsConfig;
use sekisho_core::login::password::{Passwords, Verification};
use std::collections::BTreeMap;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/django_hashes.jsonl"
);

/// Formats a vector file must cover, so a generator that silently lost one fails here.
const REQUIRED: &[&str] = &[
    "pbkdf2_sha256",
    "pbkdf2_sha1",
    "argon2id",
    "argon2i",
    "argon2i_v16",
    "argon2i_noversion",
    "bcrypt_sha256",
    "bcrypt",
    "bcrypt_2a",
    "scrypt",
    "md5",
    "pbkdf2_sha256_default",
    "pbkdf2_sha1_default",
    "argon2_default",
    "bcrypt_sha256_default",
    "bcrypt_default",
    "scrypt_default",
    "sha1",
    "unsalted_sha1",
    "unsalted_md5",
    "unsalted_md5_prefixed",
    "unusable",
];

#[tokio::test]
async fn every_django_vector_verifies_and_asks_for_an_upgrade() {
    let path = std::env::var("SEKISHO_DJANGO_HASH_VECTORS").unwrap_or_else(|_| FIXTURE.into());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let passwords = Passwords::new(&PasswordsConfig {
        hash_concurrency: 2,
        argon2_memory_kib: 64,
        argon2_iterations: 1,
        argon2_parallelism: 1,
    });
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{path}:{}: {e}", n + 1));
        let field = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("{path}:{}: no {k}", n + 1))
                .to_owned()
        };
        let (hasher, password, wrong, encoded, expect) = (
            field("hasher"),
            field("password"),
            field("wrong"),
            field("encoded"),
            field("expect"),
        );
        *seen.entry(hasher.clone()).or_default() += 1;
        let right = passwords.verify(&password, Some(&encoded)).await;
        let other = passwords.verify(&wrong, Some(&encoded)).await;
        let want = match expect.as_str() {
            "upgrade" => Verification::Match { upgrade: true },
            "never" => Verification::Mismatch,
            e => panic!("{path}:{}: unknown expect {e}", n + 1),
        };
        if right != want || other != Verification::Mismatch {
            failures.push(format!(
                "line {} {hasher} {encoded}: right password {right:?} (want {want:?}), wrong password {other:?}",
                n + 1
            ));
        }
    }
    assert!(failures.is_empty(), "{path}:\n{}", failures.join("\n"));
    let missing: Vec<_> = REQUIRED
        .iter()
        .filter(|h| !seen.contains_key(**h))
        .collect();
    assert!(missing.is_empty(), "{path} has no vectors for {missing:?}");
    eprintln!("{path}: {seen:?}");
}
