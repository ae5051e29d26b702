//! Signing keys. Every algorithm sekisho can sign with is listed once, in
//! [`SignatureAlgorithm`]; every key is a [`TokenKey`], so the token policy, the key ring, the
//! key loader and the JWKS endpoint never special-case one family of keys.
//!
//! A key states whether its signatures are **deterministic**. The grace window (DESIGN §3.2)
//! promises racing refreshes the *identical* successor token, and sekisho keeps that promise by
//! re-signing the successor's claims with the key that signed it first instead of storing the
//! token. That gives the same bytes only when signing is deterministic: HMAC, Ed25519 (RFC 8032)
//! and RSASSA-PKCS1-v1_5 are by construction, and ES256 is made so here by signing with RFC 6979
//! nonces (the `p256` crate's ECDSA), which depend only on the key and the message, so every
//! instance sharing the key writes the same bytes. [`crate::Auth`]'s builder refuses a grace
//! window with a key that cannot keep the promise.
//!
//! The cryptography is the crates': aws-lc-rs for HMAC-free asymmetric work (Ed25519, RSA, the
//! AEAD that wraps stored private keys), RustCrypto's `p256` for deterministic ECDSA, `hmac`
//! for HS*. Nothing here implements a primitive.

use crate::config::ConfigError;
use aws_lc_rs::signature::{self as lc, KeyPair as _, ParsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

/// Minimum HMAC key length in bytes (RFC 7518 §3.2: at least the hash output size of HS256).
pub const MIN_HMAC_KEY_BYTES: usize = 32;

/// The RSA modulus sekisho generates, and the smallest it loads (RFC 7518 §3.3 asks for 2048).
pub const RSA_BITS: usize = 2048;

/// The `alg` values sekisho signs and verifies: the one list (config validation, key loading,
/// the token header and the JWKS all read it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    HS256,
    HS384,
    HS512,
    /// Ed25519 (RFC 8037): the recommended asymmetric choice — small keys, fast, deterministic.
    EdDSA,
    /// ECDSA P-256 with SHA-256, signed with RFC 6979 nonces.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, for verifiers that know nothing else.
    RS256,
}

impl SignatureAlgorithm {
    pub const ALL: [SignatureAlgorithm; 6] = [
        Self::HS256,
        Self::HS384,
        Self::HS512,
        Self::EdDSA,
        Self::ES256,
        Self::RS256,
    ];

    /// Parses a `jwt.algorithm` value. An unknown name is an error, never a fallback.
    pub fn parse(name: &str) -> Result<Self, ConfigError> {
        Self::from_name(name).ok_or_else(|| {
            let supported: Vec<&str> = Self::ALL.iter().map(|a| a.name()).collect();
            ConfigError(format!(
                "jwt.algorithm: {name:?} is not supported (supported: {})",
                supported.join(", ")
            ))
        })
    }

    /// The algorithm of a JOSE `alg` value, spelled exactly.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The JOSE `alg` header value.
    pub fn name(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
        }
    }

    /// Symmetric: the same secret signs and verifies, so every verifier can also mint tokens.
    pub fn is_symmetric(self) -> bool {
        matches!(self, Self::HS256 | Self::HS384 | Self::HS512)
    }
}

/// A key that signs and verifies JWS signatures (the compact form's third segment, raw bytes).
pub trait TokenKey: Send + Sync + 'static {
    fn algorithm(&self) -> SignatureAlgorithm;
    /// The `kid` header value every token signed with this key carries.
    fn kid(&self) -> &str;
    /// Whether signing the same input twice gives the same signature (see the module docs).
    fn deterministic(&self) -> bool;
    fn sign(&self, signing_input: &[u8]) -> Vec<u8>;
    /// Constant-time where the algorithm allows it.
    fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool;
    /// The public key as a JWK (RFC 7517) with `kid`, `alg` and `use`, for the JWKS; `None`
    /// for a secret key, which is never published.
    fn public_jwk(&self) -> Option<Map<String, Value>> {
        None
    }
}

/// An HMAC key with its inner and outer pads already absorbed: each use clones that state
/// instead of re-keying (a measurable share of the bearer hot path otherwise).
#[derive(Clone)]
pub struct HmacKey {
    algorithm: SignatureAlgorithm,
    mac: Mac3,
    kid: String,
}

#[derive(Clone)]
enum Mac3 {
    Hs256(Hmac<sha2::Sha256>),
    Hs384(Hmac<sha2::Sha384>),
    Hs512(Hmac<sha2::Sha512>),
}

impl HmacKey {
    /// `secret` is used as raw bytes: a configured string key is its UTF-8 bytes, exactly as
    /// Django's `SECRET_KEY` is used by simplejwt. The only place the minimum length is checked.
    pub fn new(algorithm: SignatureAlgorithm, secret: &[u8]) -> Result<Self, KeyError> {
        if !algorithm.is_symmetric() {
            return Err(KeyError::WrongAlgorithm(algorithm));
        }
        if secret.len() < MIN_HMAC_KEY_BYTES {
            return Err(KeyError::TooShort {
                algorithm,
                len: secret.len(),
            });
        }
        let bad = |_| KeyError::Unusable;
        let mac = match algorithm {
            SignatureAlgorithm::HS384 => Mac3::Hs384(Hmac::new_from_slice(secret).map_err(bad)?),
            SignatureAlgorithm::HS512 => Mac3::Hs512(Hmac::new_from_slice(secret).map_err(bad)?),
            _ => Mac3::Hs256(Hmac::new_from_slice(secret).map_err(bad)?),
        };
        Ok(HmacKey {
            algorithm,
            mac,
            kid: hmac_kid(algorithm, secret),
        })
    }
}

/// The `kid` of a secret: a MAC of a fixed label under the secret (128 bits, base64url). It
/// names the secret without revealing anything about it, and every instance sharing the secret
/// derives the same one.
fn hmac_kid(algorithm: SignatureAlgorithm, secret: &[u8]) -> String {
    let mut m = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret).expect("any key length");
    m.update(b"sekisho key id\0");
    m.update(algorithm.name().as_bytes());
    let tag = m.finalize().into_bytes();
    format!("hs-{}", URL_SAFE_NO_PAD.encode(&tag[..16]))
}

/// Why key material cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("an {} key must be at least {MIN_HMAC_KEY_BYTES} bytes (got {len})", algorithm.name())]
    TooShort {
        algorithm: SignatureAlgorithm,
        len: usize,
    },
    #[error("the key is not usable for this algorithm")]
    Unusable,
    #[error("this kind of key cannot sign {}", .0.name())]
    WrongAlgorithm(SignatureAlgorithm),
    #[error(
        "not a PEM private key (expected -----BEGIN PRIVATE KEY-----, PKCS#8; convert with `openssl pkcs8 -topk8 -nocrypt`)"
    )]
    NotPem,
    #[error("not a {} private key in PKCS#8 form", .0.name())]
    BadPrivateKey(SignatureAlgorithm),
    #[error("an RSA key must have at least {RSA_BITS} bits (got {0})")]
    RsaTooSmall(usize),
    #[error("key generation failed")]
    Generation,
    #[error("a key-encryption key must be at least 32 bytes (got {0})")]
    TooShortKek(usize),
    #[error("the sealed private key does not open with this key-encryption key")]
    Sealed,
}

impl TokenKey for HmacKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn kid(&self) -> &str {
        &self.kid
    }

    fn deterministic(&self) -> bool {
        true
    }

    fn sign(&self, signing_input: &[u8]) -> Vec<u8> {
        fn tag<M: Mac + Clone>(m: &M, input: &[u8]) -> Vec<u8> {
            let mut m = m.clone();
            m.update(input);
            m.finalize().into_bytes().to_vec()
        }
        match &self.mac {
            Mac3::Hs256(m) => tag(m, signing_input),
            Mac3::Hs384(m) => tag(m, signing_input),
            Mac3::Hs512(m) => tag(m, signing_input),
        }
    }

    fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        fn check<M: Mac + Clone>(m: &M, input: &[u8], sig: &[u8]) -> bool {
            let mut m = m.clone();
            m.update(input);
            m.verify_slice(sig).is_ok()
        }
        match &self.mac {
            Mac3::Hs256(m) => check(m, signing_input, signature),
            Mac3::Hs384(m) => check(m, signing_input, signature),
            Mac3::Hs512(m) => check(m, signing_input, signature),
        }
    }
}

/// An asymmetric private key (Ed25519, P-256 or RSA) with its public half prepared for
/// verification, its JWK and its `kid`: the RFC 7638 thumbprint of the public JWK (SHA-256,
/// base64url), so the same key has the same `kid` on every instance and in every verifier.
pub struct AsymmetricKey {
    algorithm: SignatureAlgorithm,
    inner: Inner,
    jwk: Map<String, Value>,
    kid: String,
}

enum Inner {
    Ed25519 {
        pair: lc::Ed25519KeyPair,
        public: ParsedPublicKey,
    },
    /// Signed by `p256` (RFC 6979: deterministic), verified by aws-lc-rs (measured ~5x faster
    /// than `p256`'s verification on the benchmark machine; verification needs no determinism).
    Es256 {
        signing: p256::ecdsa::SigningKey,
        public: ParsedPublicKey,
    },
    Rs256 {
        pair: aws_lc_rs::rsa::KeyPair,
        public: ParsedPublicKey,
        signature_len: usize,
    },
}

impl AsymmetricKey {
    /// Loads a PKCS#8 (DER) private key of `algorithm`.
    pub fn from_pkcs8(algorithm: SignatureAlgorithm, der: &[u8]) -> Result<Self, KeyError> {
        let bad = || KeyError::BadPrivateKey(algorithm);
        let b64 = |b: &[u8]| Value::from(URL_SAFE_NO_PAD.encode(b));
        let mut jwk = Map::new();
        let inner = match algorithm {
            SignatureAlgorithm::EdDSA => {
                let pair =
                    lc::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|_| bad())?;
                let x = pair.public_key().as_ref().to_vec();
                let public = ParsedPublicKey::new(&lc::ED25519, &x).map_err(|_| bad())?;
                jwk.insert("crv".into(), "Ed25519".into());
                jwk.insert("kty".into(), "OKP".into());
                jwk.insert("x".into(), b64(&x));
                Inner::Ed25519 { pair, public }
            }
            SignatureAlgorithm::ES256 => {
                use p256::pkcs8::DecodePrivateKey;
                let signing = p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|_| bad())?;
                let point = signing.verifying_key().to_encoded_point(false);
                let public = ParsedPublicKey::new(&lc::ECDSA_P256_SHA256_FIXED, point.as_bytes())
                    .map_err(|_| bad())?;
                let (Some(x), Some(y)) = (point.x(), point.y()) else {
                    return Err(bad());
                };
                jwk.insert("crv".into(), "P-256".into());
                jwk.insert("kty".into(), "EC".into());
                jwk.insert("x".into(), b64(x));
                jwk.insert("y".into(), b64(y));
                Inner::Es256 { signing, public }
            }
            SignatureAlgorithm::RS256 => {
                let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(der).map_err(|_| bad())?;
                let bits = pair.public_modulus_len() * 8;
                if bits < RSA_BITS {
                    return Err(KeyError::RsaTooSmall(bits));
                }
                let pk = pair.public_key();
                let public = ParsedPublicKey::new(&lc::RSA_PKCS1_2048_8192_SHA256, pk.as_ref())
                    .map_err(|_| bad())?;
                jwk.insert(
                    "e".into(),
                    b64(pk.exponent().big_endian_without_leading_zero()),
                );
                jwk.insert("kty".into(), "RSA".into());
                jwk.insert(
                    "n".into(),
                    b64(pk.modulus().big_endian_without_leading_zero()),
                );
                Inner::Rs256 {
                    signature_len: pair.public_modulus_len(),
                    pair,
                    public,
                }
            }
            other => return Err(KeyError::WrongAlgorithm(other)),
        };
        let kid = thumbprint(&jwk);
        jwk.insert("kid".into(), Value::from(kid.as_str()));
        jwk.insert("alg".into(), Value::from(algorithm.name()));
        jwk.insert("use".into(), Value::from("sig"));
        Ok(AsymmetricKey {
            algorithm,
            inner,
            jwk,
            kid,
        })
    }

    /// Loads a PEM `PRIVATE KEY` (PKCS#8), as `openssl genpkey` writes it.
    pub fn from_pem(algorithm: SignatureAlgorithm, pem: &str) -> Result<Self, KeyError> {
        Self::from_pkcs8(algorithm, &pem_decode(pem)?)
    }

    /// A new random key and its PKCS#8 encoding (to be stored, encrypted).
    pub fn generate(algorithm: SignatureAlgorithm) -> Result<(Self, Zeroizing<Vec<u8>>), KeyError> {
        let der: Zeroizing<Vec<u8>> = match algorithm {
            SignatureAlgorithm::EdDSA => {
                let doc = lc::Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
                    .map_err(|_| KeyError::Generation)?;
                Zeroizing::new(doc.as_ref().to_vec())
            }
            SignatureAlgorithm::ES256 => {
                use p256::pkcs8::EncodePrivateKey;
                let key = loop {
                    let bytes = Zeroizing::new(crate::random::bytes::<32>());
                    if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&bytes[..]) {
                        break k;
                    }
                };
                let doc = key.to_pkcs8_der().map_err(|_| KeyError::Generation)?;
                Zeroizing::new(doc.as_bytes().to_vec())
            }
            SignatureAlgorithm::RS256 => {
                use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
                let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| KeyError::Generation)?;
                let doc: Pkcs8V1Der = pair.as_der().map_err(|_| KeyError::Generation)?;
                Zeroizing::new(doc.as_ref().to_vec())
            }
            other => return Err(KeyError::WrongAlgorithm(other)),
        };
        Ok((Self::from_pkcs8(algorithm, &der)?, der))
    }
}

/// The RFC 7638 thumbprint of a JWK's required members (given in lexicographic order, as
/// [`AsymmetricKey::from_pkcs8`] inserts them): SHA-256 of their compact JSON, base64url.
fn thumbprint(required: &Map<String, Value>) -> String {
    use sha2::Digest as _;
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(
        Value::Object(required.clone()).to_string(),
    ))
}

/// The DER inside a PEM `PRIVATE KEY` block.
fn pem_decode(pem: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";
    let start = pem.find(BEGIN).ok_or(KeyError::NotPem)? + BEGIN.len();
    let len = pem[start..].find(END).ok_or(KeyError::NotPem)?;
    let body: Zeroizing<String> = Zeroizing::new(
        pem[start..start + len]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect(),
    );
    STANDARD
        .decode(body.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| KeyError::NotPem)
}

impl TokenKey for AsymmetricKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn kid(&self) -> &str {
        &self.kid
    }

    fn deterministic(&self) -> bool {
        // Ed25519 and PKCS#1 v1.5 by construction; ECDSA through RFC 6979 (module docs).
        true
    }

    fn sign(&self, signing_input: &[u8]) -> Vec<u8> {
        match &self.inner {
            Inner::Ed25519 { pair, .. } => pair.sign(signing_input).as_ref().to_vec(),
            Inner::Es256 { signing, .. } => {
                use p256::ecdsa::signature::Signer;
                let sig: p256::ecdsa::Signature = signing.sign(signing_input);
                sig.to_bytes().to_vec()
            }
            Inner::Rs256 {
                pair,
                signature_len,
                ..
            } => {
                let mut sig = vec![0u8; *signature_len];
                // PKCS#1 v1.5 padding takes no randomness; the generator is the API's.
                pair.sign(
                    &lc::RSA_PKCS1_SHA256,
                    &aws_lc_rs::rand::SystemRandom::new(),
                    signing_input,
                    &mut sig,
                )
                .expect("an RSA signature into a buffer of the modulus size");
                sig
            }
        }
    }

    fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        match &self.inner {
            Inner::Ed25519 { public, .. } => public.verify_sig(signing_input, signature).is_ok(),
            Inner::Es256 { public, .. } => {
                // JWS carries r ‖ s, 32 bytes each (RFC 7518 §3.4), never DER.
                signature.len() == 64 && public.verify_sig(signing_input, signature).is_ok()
            }
            Inner::Rs256 { public, .. } => public.verify_sig(signing_input, signature).is_ok(),
        }
    }

    fn public_jwk(&self) -> Option<Map<String, Value>> {
        Some(self.jwk.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASYMMETRIC: [SignatureAlgorithm; 3] = [
        SignatureAlgorithm::EdDSA,
        SignatureAlgorithm::ES256,
        SignatureAlgorithm::RS256,
    ];

    #[test]
    fn unknown_algorithms_are_refused_not_defaulted() {
        assert_eq!(
            SignatureAlgorithm::parse("HS384").unwrap(),
            SignatureAlgorithm::HS384
        );
        for alg in SignatureAlgorithm::ALL {
            assert_eq!(SignatureAlgorithm::parse(alg.name()).unwrap(), alg);
        }
        let e = SignatureAlgorithm::parse("PS256").unwrap_err();
        assert!(e.0.starts_with("jwt.algorithm: \"PS256\""), "{e}");
        assert!(e.0.contains("EdDSA, ES256, RS256"), "{e}");
        for bad in ["hs256", "none", "eddsa", "Ed25519", "ES384", ""] {
            assert!(SignatureAlgorithm::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn short_secrets_are_refused_in_one_place() {
        let e = HmacKey::new(SignatureAlgorithm::HS256, b"short")
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "an HS256 key must be at least 32 bytes (got 5)"
        );
        assert!(HmacKey::new(SignatureAlgorithm::HS512, &[7; 32]).is_ok());
        assert!(HmacKey::new(SignatureAlgorithm::EdDSA, &[7; 32]).is_err());
    }

    #[test]
    fn hmac_signatures_are_deterministic_and_verify() {
        let k = HmacKey::new(SignatureAlgorithm::HS256, &[1; 32]).unwrap();
        assert!(k.deterministic());
        let a = k.sign(b"input");
        assert_eq!(a, k.sign(b"input"));
        assert!(k.verify(b"input", &a));
        assert!(!k.verify(b"inpu7", &a));
        assert!(!k.verify(b"input", &a[..31]));
        let other = HmacKey::new(SignatureAlgorithm::HS256, &[2; 32]).unwrap();
        assert!(!other.verify(b"input", &a));
        assert!(k.public_jwk().is_none(), "a secret is never published");
    }

    #[test]
    fn an_hmac_kid_names_the_secret_without_revealing_it() {
        let a = HmacKey::new(SignatureAlgorithm::HS256, &[1; 32]).unwrap();
        let again = HmacKey::new(SignatureAlgorithm::HS256, &[1; 32]).unwrap();
        let b = HmacKey::new(SignatureAlgorithm::HS256, &[2; 32]).unwrap();
        let c = HmacKey::new(SignatureAlgorithm::HS512, &[1; 32]).unwrap();
        assert_eq!(a.kid(), again.kid());
        assert_ne!(a.kid(), b.kid());
        assert_ne!(a.kid(), c.kid());
        assert!(
            a.kid().starts_with("hs-") && a.kid().len() == 3 + 22,
            "{}",
            a.kid()
        );
    }

    #[test]
    fn asymmetric_keys_sign_verify_and_refuse_tampering() {
        for alg in ASYMMETRIC {
            let (k, _) = AsymmetricKey::generate(alg).unwrap();
            let sig = k.sign(b"header.payload");
            assert!(k.verify(b"header.payload", &sig), "{alg:?}");
            assert!(!k.verify(b"header.payloaD", &sig), "{alg:?}");
            let mut flipped = sig.clone();
            flipped[3] ^= 1;
            assert!(!k.verify(b"header.payload", &flipped), "{alg:?}");
            assert!(
                !k.verify(b"header.payload", &sig[..sig.len() - 1]),
                "{alg:?}"
            );
            assert!(!k.verify(b"header.payload", &[]), "{alg:?}");
            let (other, _) = AsymmetricKey::generate(alg).unwrap();
            assert!(!other.verify(b"header.payload", &sig), "{alg:?}");
            assert_ne!(k.kid(), other.kid());
        }
    }

    /// The grace window re-signs a successor, maybe on another instance: the bytes must be the
    /// same for the same key (loaded twice from its stored form) and the same input.
    #[test]
    fn every_algorithm_signs_deterministically_across_loads_of_one_key() {
        for alg in ASYMMETRIC {
            let (k, der) = AsymmetricKey::generate(alg).unwrap();
            assert!(k.deterministic());
            let twin = AsymmetricKey::from_pkcs8(alg, &der).unwrap();
            let a = k.sign(b"the same claims");
            assert_eq!(a, k.sign(b"the same claims"), "{alg:?}");
            assert_eq!(a, twin.sign(b"the same claims"), "{alg:?}");
            assert_ne!(a, k.sign(b"other claims"), "{alg:?}");
            assert_eq!(k.kid(), twin.kid());
            let len = match alg {
                SignatureAlgorithm::RS256 => 256,
                _ => 64,
            };
            assert_eq!(a.len(), len, "{alg:?}");
        }
    }

    #[test]
    fn jwks_entries_have_the_rfc_7517_shape_and_public_parts_only() {
        for alg in ASYMMETRIC {
            let (k, _) = AsymmetricKey::generate(alg).unwrap();
            let jwk = Value::Object(k.public_jwk().unwrap());
            assert_eq!(jwk["kid"], k.kid());
            assert_eq!(jwk["alg"], alg.name());
            assert_eq!(jwk["use"], "sig");
            let mut members: Vec<&str> = jwk
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            members.sort_unstable();
            let want: &[&str] = match alg {
                SignatureAlgorithm::EdDSA => &["alg", "crv", "kid", "kty", "use", "x"],
                SignatureAlgorithm::ES256 => &["alg", "crv", "kid", "kty", "use", "x", "y"],
                _ => &["alg", "e", "kid", "kty", "n", "use"],
            };
            assert_eq!(members, want, "{alg:?}: no private member (d, p, q, …)");
            match alg {
                SignatureAlgorithm::EdDSA => {
                    assert_eq!(
                        (&jwk["kty"], &jwk["crv"]),
                        (&"OKP".into(), &"Ed25519".into())
                    )
                }
                SignatureAlgorithm::ES256 => {
                    assert_eq!((&jwk["kty"], &jwk["crv"]), (&"EC".into(), &"P-256".into()))
                }
                _ => {
                    assert_eq!(jwk["kty"], "RSA");
                    assert_eq!(jwk["e"], "AQAB");
                    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
                    assert_eq!(n.len() * 8, RSA_BITS);
                }
            }
        }
    }

    /// RFC 7638 §3.1's example key and thumbprint.
    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint() {
        let mut jwk = Map::new();
        jwk.insert("e".into(), "AQAB".into());
        jwk.insert("kty".into(), "RSA".into());
        jwk.insert("n".into(), "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into());
        assert_eq!(
            thumbprint(&jwk),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn pem_private_keys_load_and_other_shapes_are_refused() {
        for alg in ASYMMETRIC {
            let (k, der) = AsymmetricKey::generate(alg).unwrap();
            let body = STANDARD.encode(&der[..]);
            let lines: Vec<&str> = body
                .as_bytes()
                .chunks(64)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            let pem = format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                lines.join("\n")
            );
            assert_eq!(AsymmetricKey::from_pem(alg, &pem).unwrap().kid(), k.kid());
            // A key of one algorithm is not a key of another.
            for other in ASYMMETRIC.into_iter().filter(|a| *a != alg) {
                assert!(
                    AsymmetricKey::from_pem(other, &pem).is_err(),
                    "{alg:?} as {other:?}"
                );
            }
            let sec1 = pem.replace("PRIVATE KEY", "EC PRIVATE KEY");
            assert_eq!(
                AsymmetricKey::from_pem(alg, &sec1).err(),
                Some(KeyError::NotPem)
            );
        }
        assert!(AsymmetricKey::from_pem(SignatureAlgorithm::HS256, "x").is_err());
    }
}
