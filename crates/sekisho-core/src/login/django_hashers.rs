//! Django's stored password formats, so a Django user table can be imported as it is and every
//! user keeps their password. Each format has one function here; [`check`] picks it by prefix
//! the way Django's `identify_hasher` does.
//!
//! Rules that hold for every format:
//! - Only sekisho's own current format (Argon2id, v=19, the configured parameters) is left as
//!   it is; every other format that matches asks for an upgrade, so it is rehashed on the next
//!   successful login and the legacy hash disappears from the table.
//! - A stored value that is unusable (`!…`, Django's `set_unusable_password`), malformed, of a
//!   format not supported, or whose cost parameters are beyond the bounds below gives
//!   [`Checked::Unusable`]: it never matches, never asks for an upgrade and does no hashing
//!   (the caller then spends the cost of a real hash, as Django does, so the answer takes as
//!   long as a wrong password).
//! - Cost parameters come from the stored value, so they are bounded before any hashing: a
//!   crafted or corrupted row must not make one login burn minutes of CPU or gigabytes of
//!   memory. The bounds leave ample room above Django's defaults (noted at each constant) and
//!   never refuse sekisho's own configured Argon2 parameters.
//! - Results are compared in constant time.
//!
//! Not supported: `crypt$$…` (Django's `CryptPasswordHasher`, removed in Django 5.0). It is
//! traditional DES `crypt(3)` with a two-character salt, which uses only the first 8 bytes of
//! the password, and no maintained Rust implementation of DES crypt exists; such rows never
//! match and their users reset their password.

use super::password::{Argon2Params, argon2_raw_alg};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::Digest;
use subtle::ConstantTimeEq;

/// What checking a password against a stored value found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Checked {
    /// The stored value was understood and hashed against; `upgrade` when it is not sekisho's
    /// current format and parameters.
    Hashed { ok: bool, upgrade: bool },
    /// Unusable, malformed, unsupported or out of bounds: no hashing was done.
    Unusable,
}

/// Django's password column is 128 characters; anything far longer is not a stored hash.
const MAX_STORED_LEN: usize = 1024;

/// PBKDF2 iterations. Django 5.2 writes 1,000,000 and raises it with each release; ten times
/// that is a few seconds of one core at worst.
const PBKDF2_MAX_ITERATIONS: u32 = 10_000_000;

/// Argon2 memory (KiB): 1 GiB. Django writes 102,400 KiB (100 MiB).
const ARGON2_MAX_MEMORY_KIB: u32 = 1024 * 1024;
/// Argon2 passes. Django writes 2.
const ARGON2_MAX_TIME: u32 = 16;
/// Argon2 lanes. Django writes 8; lanes are computed one after another here, so they add no
/// memory, but the number is bounded all the same.
const ARGON2_MAX_LANES: u32 = 64;
/// Argon2 total work, memory × passes (KiB-passes): 4 GiB touched, about twenty times Django's
/// default, a few seconds.
const ARGON2_MAX_WORK: u64 = 4 * 1024 * 1024;

/// bcrypt cost (log2 of the rounds). Django writes 12; each step doubles the time, so 16 is
/// sixteen times the default, a few seconds.
const BCRYPT_MAX_COST: u32 = 16;

/// scrypt memory, 128·N·r bytes: 128 MiB. Django writes N=2^14, r=8 (16 MiB), and its own
/// verifier refuses more than 32 MiB (OpenSSL's default `maxmem`).
const SCRYPT_MAX_MEMORY: u64 = 128 * 1024 * 1024;
/// scrypt work, N·r·p: 2^24, about twenty-five times Django's default (2^14·8·5), a few seconds.
const SCRYPT_MAX_WORK: u64 = 1 << 24;

/// Checks `password` against a stored value in any of Django's formats.
pub(super) fn check(current: Argon2Params, password: &str, stored: &str) -> Checked {
    if stored.len() > MAX_STORED_LEN || stored.starts_with('!') {
        return Checked::Unusable;
    }
    let result = match stored.split_once('$') {
        // Ancient Django stored a bare MD5 hex digest.
        None if stored.len() == 32 => unsalted_md5(password, stored),
        None => None,
        Some(("argon2", rest)) => return argon2(current, password, rest),
        Some(("pbkdf2_sha256", _)) => pbkdf2_sha256(password, stored),
        Some(("pbkdf2_sha1", _)) => pbkdf2_sha1(password, stored),
        Some(("bcrypt_sha256", rest)) => bcrypt_sha256(password, rest),
        Some(("bcrypt", rest)) => bcrypt(password, rest),
        Some(("scrypt", _)) => scrypt(password, stored),
        // `md5$$hex` is Django's unsalted MD5; `md5$salt$hex` the salted one. With an empty
        // salt they compute the same digest, so one function serves both.
        Some(("md5", _)) => salted_md5(password, stored),
        // `sha1$$hex` (unsalted SHA-1) and `sha1$salt$hex`, likewise.
        Some(("sha1", _)) => salted_sha1(password, stored),
        Some(_) => None,
    };
    match result {
        Some(ok) => Checked::Hashed { ok, upgrade: true },
        None => Checked::Unusable,
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    // Lengths are public (they follow from the format); the contents are compared in constant
    // time. `subtle` answers false for different lengths.
    bool::from(a.ct_eq(b))
}

/// `argon2$argon2id$v=19$m=…,t=…,p=…$salt$hash`, also `argon2i` (Django 1.10 to 3.1 wrote
/// argon2i) and the versionless `argon2$argon2i$m=…,t=…,p=…$…` of argon2-cffi before 16.0,
/// which means version 0x10. Salt and hash are unpadded base64, as argon2-cffi writes them.
fn argon2(current: Argon2Params, password: &str, rest: &str) -> Checked {
    match argon2_inner(current, password, rest) {
        Some((ok, is_current)) => Checked::Hashed {
            ok,
            upgrade: !is_current,
        },
        None => Checked::Unusable,
    }
}

fn argon2_inner(current: Argon2Params, password: &str, rest: &str) -> Option<(bool, bool)> {
    let mut parts = rest.split('$');
    let alg = match parts.next()? {
        "argon2id" => argon2::Algorithm::Argon2id,
        "argon2i" => argon2::Algorithm::Argon2i,
        _ => return None,
    };
    let mut field = parts.next()?;
    let version = match field {
        "v=19" => argon2::Version::V0x13,
        "v=16" => argon2::Version::V0x10,
        _ if field.starts_with("m=") => argon2::Version::V0x10,
        _ => return None,
    };
    if field.starts_with("v=") {
        field = parts.next()?;
    }
    let (mut m, mut t, mut p) = (None, None, None);
    for kv in field.split(',') {
        let (k, v) = kv.split_once('=')?;
        let v: u32 = v.parse().ok()?;
        let slot = match k {
            "m" => &mut m,
            "t" => &mut t,
            "p" => &mut p,
            _ => return None,
        };
        if slot.replace(v).is_some() {
            return None;
        }
    }
    let params = Argon2Params {
        m: m?,
        t: t?,
        p: p?,
    };
    let salt = STANDARD_NO_PAD.decode(parts.next()?).ok()?;
    let expected = STANDARD_NO_PAD.decode(parts.next()?).ok()?;
    if parts.next().is_some() || !(4..=64).contains(&expected.len()) || salt.len() < 8 {
        return None;
    }
    if !argon2_within_bounds(params, current) {
        return None;
    }
    let got = argon2_raw_alg(
        alg,
        version,
        params,
        password.as_bytes(),
        &salt,
        expected.len(),
    )
    .ok()?;
    let is_current = alg == argon2::Algorithm::Argon2id
        && version == argon2::Version::V0x13
        && params == current;
    Some((ct_eq(&got, &expected), is_current))
}

/// The Argon2 bounds, raised to sekisho's configured parameters where those are higher (its
/// own hashes must always verify).
fn argon2_within_bounds(s: Argon2Params, current: Argon2Params) -> bool {
    let work = |p: Argon2Params| u64::from(p.m) * u64::from(p.t);
    s.m <= ARGON2_MAX_MEMORY_KIB.max(current.m)
        && s.t <= ARGON2_MAX_TIME.max(current.t)
        && s.p <= ARGON2_MAX_LANES.max(current.p)
        && work(s) <= ARGON2_MAX_WORK.max(work(current))
}

/// `pbkdf2_sha256$iterations$salt$base64(hash)`: Django's default hasher before sekisho's
/// Argon2id, and still the default of a Django project.
fn pbkdf2_sha256(password: &str, stored: &str) -> Option<bool> {
    pbkdf2_generic::<sha2::Sha256>("pbkdf2_sha256", password, stored)
}

/// `pbkdf2_sha1$iterations$salt$base64(hash)`: Django's `PBKDF2SHA1PasswordHasher`.
fn pbkdf2_sha1(password: &str, stored: &str) -> Option<bool> {
    pbkdf2_generic::<sha1::Sha1>("pbkdf2_sha1", password, stored)
}

/// Django's verifier re-encodes with the stored salt and iterations and compares the whole
/// string; so does this one, so exactly the values Django accepts are accepted. The derived
/// key is the digest's size, as in Django.
fn pbkdf2_generic<D: Digest + hmac::EagerHash>(
    algorithm: &str,
    password: &str,
    stored: &str,
) -> Option<bool> {
    let mut parts = stored.splitn(4, '$');
    parts.next()?;
    let iterations: u32 = parts.next()?.parse().ok()?;
    let salt = parts.next()?;
    parts.next()?;
    if iterations == 0 || iterations > PBKDF2_MAX_ITERATIONS || salt.is_empty() {
        return None;
    }
    let mut dk = vec![0u8; <D as Digest>::output_size()];
    pbkdf2::pbkdf2_hmac::<D>(password.as_bytes(), salt.as_bytes(), iterations, &mut dk);
    let again = format!("{algorithm}${iterations}${salt}${}", STANDARD.encode(&dk));
    Some(ct_eq(again.as_bytes(), stored.as_bytes()))
}

/// `bcrypt_sha256$$2b$12$…`: bcrypt of the hex SHA-256 of the password (64 ASCII bytes, so
/// bcrypt's 72-byte limit never truncates it).
fn bcrypt_sha256(password: &str, rest: &str) -> Option<bool> {
    let hex = hex_lower(&sha2::Sha256::digest(password.as_bytes()));
    bcrypt_raw(hex.as_bytes(), rest)
}

/// `bcrypt$$2b$12$…`: plain bcrypt. Like bcrypt everywhere before Python's bcrypt 5.0, only the
/// first 72 bytes of the password count, which is how such a stored hash was made.
fn bcrypt(password: &str, rest: &str) -> Option<bool> {
    bcrypt_raw(password.as_bytes(), rest)
}

/// `rest` is `$2b$NN$` + 53 characters (after Django's `algorithm$`). `$2a$` and `$2y$` compute
/// the same as `$2b$` for any password up to 72 bytes; `$2x$` (a buggy variant) is refused.
fn bcrypt_raw(password: &[u8], rest: &str) -> Option<bool> {
    if rest.len() != 60 || !rest.is_ascii() {
        return None;
    }
    if !matches!(&rest[..4], "$2a$" | "$2b$" | "$2y$") || &rest[6..7] != "$" {
        return None;
    }
    let cost = &rest[4..6];
    if !cost.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let cost: u32 = cost.parse().ok()?;
    if !(4..=BCRYPT_MAX_COST).contains(&cost) {
        return None;
    }
    // The crate truncates at 72 bytes and compares in constant time.
    ::bcrypt::verify(password, rest).ok()
}

/// `scrypt$N$salt$r$p$base64(hash)`, a 64-byte key, compared as Django does by re-encoding.
fn scrypt(password: &str, stored: &str) -> Option<bool> {
    let parts: Vec<&str> = stored.split('$').collect();
    let [_, n, salt, r, p, _] = parts[..] else {
        return None;
    };
    let (n, r, p): (u64, u32, u32) = (n.parse().ok()?, r.parse().ok()?, p.parse().ok()?);
    if n < 2 || !n.is_power_of_two() || r == 0 || p == 0 || salt.is_empty() {
        return None;
    }
    let memory = 128u64.checked_mul(n)?.checked_mul(u64::from(r))?;
    let work = n.checked_mul(u64::from(r))?.checked_mul(u64::from(p))?;
    if memory > SCRYPT_MAX_MEMORY || work > SCRYPT_MAX_WORK {
        return None;
    }
    let params = ::scrypt::Params::new(n.trailing_zeros() as u8, r, p).ok()?;
    let mut dk = [0u8; 64];
    ::scrypt::scrypt(password.as_bytes(), salt.as_bytes(), &params, &mut dk).ok()?;
    let again = format!("scrypt${n}${salt}${r}${p}${}", STANDARD.encode(dk));
    Some(ct_eq(again.as_bytes(), stored.as_bytes()))
}

/// `md5$salt$hex`: MD5 of salt + password (`MD5PasswordHasher`, still in Django, meant for
/// tests). `md5$$hex` is the unsalted form of ancient Django.
fn salted_md5(password: &str, stored: &str) -> Option<bool> {
    salted_hex::<md5::Md5>("md5", password, stored)
}

/// `sha1$salt$hex`: SHA-1 of salt + password (`SHA1PasswordHasher`, removed in Django 5.1);
/// `sha1$$hex` is `UnsaltedSHA1PasswordHasher`.
fn salted_sha1(password: &str, stored: &str) -> Option<bool> {
    salted_hex::<sha1::Sha1>("sha1", password, stored)
}

fn salted_hex<D: Digest>(algorithm: &str, password: &str, stored: &str) -> Option<bool> {
    let mut parts = stored.splitn(3, '$');
    parts.next()?;
    let salt = parts.next()?;
    parts.next()?;
    let mut d = D::new();
    d.update(salt.as_bytes());
    d.update(password.as_bytes());
    let again = format!("{algorithm}${salt}${}", hex_lower(&d.finalize()));
    Some(ct_eq(again.as_bytes(), stored.as_bytes()))
}

/// A bare 32-character MD5 hex digest (`UnsaltedMD5PasswordHasher`, removed in Django 5.1).
fn unsalted_md5(password: &str, stored: &str) -> Option<bool> {
    let again = hex_lower(&md5::Md5::digest(password.as_bytes()));
    Some(ct_eq(again.as_bytes(), stored.as_bytes()))
}

fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const CUR: Argon2Params = Argon2Params { m: 64, t: 1, p: 1 };

    /// One valid vector per format (from tests/fixtures/django_hashes.jsonl), password "hunter2".
    const VALID: &[&str] = &[
        "pbkdf2_sha256$1000$BcToKwTYPrNxn2u1CPvtcz$d5+2FKru8fO2fWI60pkhyZCMoreOF0gErlODTt7/PhA=",
        "argon2$argon2id$v=19$m=64,t=1,p=2$V0dRT1R3eFNGMEZMMHFIa3V2VWtzSA$A3ado4fewQmNIg0ZFEJTFhtDqJp357xun8IC0Ug8vc4",
        "bcrypt_sha256$$2b$04$nfBUS2k31RoEK9B/wiYaQuBmWAC/LjqH6L7OVzBm5i11QhAQXzRwe",
        "sha1$JF84aqV9nWqnICHKc0xIXC$6d5c55e500f8e2b55b95fd9af2c4f2cf4befed59",
    ];

    #[test]
    fn valid_vectors_match() {
        for v in VALID {
            assert_eq!(
                check(CUR, "hunter2", v),
                Checked::Hashed {
                    ok: true,
                    upgrade: true
                },
                "{v}"
            );
        }
    }

    #[test]
    fn truncated_or_altered_values_never_match_and_never_panic() {
        for v in VALID {
            for cut in 0..v.len() {
                let s = &v[..cut];
                assert!(
                    !matches!(check(CUR, "hunter2", s), Checked::Hashed { ok: true, .. }),
                    "{s}"
                );
            }
            // Every character changed in turn (including a multi-byte one mid-string).
            for (i, _) in v.char_indices() {
                for repl in ["$", "é", "0", "="] {
                    let s = format!("{}{repl}{}", &v[..i], &v[i + 1..]);
                    if s == *v {
                        continue;
                    }
                    assert!(
                        !matches!(check(CUR, "hunter2", &s), Checked::Hashed { ok: true, .. }),
                        "{s}"
                    );
                }
            }
        }
    }

    #[test]
    fn unusable_unsupported_and_malformed_values_do_no_hashing() {
        for s in [
            "",
            "!",
            "!Zr4lFgCKRQWNQj2kmjGK0ZzuTwRm3PElzD4VqpbD",
            "crypt$$MnDgobUnVuuWE",
            "argon2$argon2d$v=19$m=64,t=1,p=1$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "argon2$argon2id$v=18$m=64,t=1,p=1$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "argon2$argon2id$v=19$m=64,m=64,t=1,p=1$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "argon2$argon2id$v=19$m=64,t=1$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "argon2$argon2id$v=19$m=1,t=1,p=1$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "pbkdf2_sha256$0$salt$AAAA",
            "pbkdf2_sha256$-1$salt$AAAA",
            "pbkdf2_sha256$1000$$AAAA",
            "pbkdf2_sha256$1000$salt",
            "bcrypt$$2x$04$nfBUS2k31RoEK9B/wiYaQuBmWAC/LjqH6L7OVzBm5i11QhAQXzRwe",
            "bcrypt$$2b$03$nfBUS2k31RoEK9B/wiYaQuBmWAC/LjqH6L7OVzBm5i11QhAQXzRwe",
            "bcrypt$$2b$+4$nfBUS2k31RoEK9B/wiYaQuBmWAC/LjqH6L7OVzBm5i11QhAQXzRwe",
            "bcrypt$$2b$04$é",
            "scrypt$1000$salt$8$1$AAAA",
            "scrypt$1024$salt$0$1$AAAA",
            "scrypt$1024$salt$8$0$AAAA",
            "scrypt$1024$salt$8$1",
            "scrypt$1024$salt$8$1$AAAA$extra",
            "unsalted_md5$$5f4dcc3b5aa765d61d8327deb882cf99",
            "deadbeef",
            "no-dollar-sign-at-all-and-33-chrs",
            "md5",
            "sha1$",
        ] {
            assert_eq!(check(CUR, "hunter2", s), Checked::Unusable, "{s}");
        }
        let long = format!("md5$$${}", "a".repeat(MAX_STORED_LEN));
        assert_eq!(check(CUR, "x", &long), Checked::Unusable);
    }

    #[test]
    fn absurd_cost_parameters_are_refused_before_hashing() {
        // Each would take minutes or gigabytes if it were computed; refused at once.
        let start = std::time::Instant::now();
        for s in [
            "pbkdf2_sha256$4294967295$salt$AAAA",
            "pbkdf2_sha1$10000001$salt$AAAA",
            "argon2$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "argon2$argon2id$v=19$m=1048576,t=5,p=1$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "argon2$argon2id$v=19$m=64,t=4294967295,p=1$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "argon2$argon2i$m=64,t=1,p=16777215$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "bcrypt$$2b$31$nfBUS2k31RoEK9B/wiYaQuBmWAC/LjqH6L7OVzBm5i11QhAQXzRwe",
            "bcrypt_sha256$$2b$17$nfBUS2k31RoEK9B/wiYaQuBmWAC/LjqH6L7OVzBm5i11QhAQXzRwe",
            "scrypt$1073741824$salt$8$1$AAAA",
            "scrypt$1048576$salt$8$1$AAAA",
            "scrypt$16384$salt$8$1000$AAAA",
            "scrypt$9223372036854775808$salt$4294967295$4294967295$AAAA",
        ] {
            assert_eq!(check(CUR, "hunter2", s), Checked::Unusable, "{s}");
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn the_configured_argon2_parameters_are_never_out_of_bounds() {
        let big = Argon2Params {
            m: 4 * 1024 * 1024,
            t: 64,
            p: 16,
        };
        assert!(argon2_within_bounds(big, big));
        assert!(!argon2_within_bounds(big, CUR));
        // Django's default is well inside.
        let django = Argon2Params {
            m: 102_400,
            t: 2,
            p: 8,
        };
        assert!(argon2_within_bounds(django, CUR));
    }

    #[test]
    fn only_the_current_argon2id_asks_for_no_upgrade() {
        let salt = b"somesaltsalt";
        let out = argon2_raw_alg(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            CUR,
            b"pw",
            salt,
            32,
        )
        .unwrap();
        let s = format!(
            "argon2$argon2id$v=19$m=64,t=1,p=1${}${}",
            STANDARD_NO_PAD.encode(salt),
            STANDARD_NO_PAD.encode(out)
        );
        assert_eq!(
            check(CUR, "pw", &s),
            Checked::Hashed {
                ok: true,
                upgrade: false
            }
        );
        let other = Argon2Params { m: 128, t: 1, p: 1 };
        assert_eq!(
            check(other, "pw", &s),
            Checked::Hashed {
                ok: true,
                upgrade: true
            }
        );
    }

    #[test]
    fn legacy_digests_are_computed_as_django_does() {
        // md5("password") and sha1("password"), the well-known values.
        let md5 = "5f4dcc3b5aa765d61d8327deb882cf99";
        let sha1 = "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8";
        let ok = Checked::Hashed {
            ok: true,
            upgrade: true,
        };
        assert_eq!(check(CUR, "password", md5), ok);
        assert_eq!(check(CUR, "password", &format!("md5$${md5}")), ok);
        assert_eq!(check(CUR, "password", &format!("sha1$${sha1}")), ok);
        // Django compares the lowercase hex it writes; an uppercased digest is not its value.
        assert_eq!(
            check(CUR, "password", &md5.to_uppercase()),
            Checked::Hashed {
                ok: false,
                upgrade: true
            }
        );
    }
}
