//! The JWT reader behind every bearer request and refresh: `TokenPolicy::verify` (the compact
//! reader, then the claim checks).
//!
//! Random bytes almost never carry a valid MAC, and the reader stops at the signature, so each
//! input is tried three ways to reach the JSON readers too:
//!
//! 1. as a token, verbatim (splitting, base64, the MAC check);
//! 2. as `HEADER_JSON\nPAYLOAD_JSON`, base64-encoded and signed with the policy's key (an empty
//!    header line uses the policy's own header, its fast path);
//! 3. as a signing input `HEADER.PAYLOAD` (any text), signed as it is.
//!
//! Whatever verifies must re-sign to a token that verifies to the same claims, fail as the
//! other token type, and fail once its signature is tampered with.

#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use libfuzzer_sys::fuzz_target;
use sekisho_core::clock::Timestamp;
use sekisho_core::config::{Dur, JwtConfig};
use sekisho_core::token::{HmacKey, SignatureAlgorithm, TokenKey, TokenPolicy, TokenType};
use std::sync::{Arc, LazyLock};

/// The seed corpus's tokens are signed with this key and valid at [`NOW`].
const KEY: &[u8] = b"sekisho-fuzz-signing-key-0123456789abcdef";
const NOW: i64 = 1_800_000_000;

struct Setup {
    key: Arc<HmacKey>,
    /// The default policy, and one with issuer, audience, leeway and `sub` as the user id claim
    /// (the claim name the reader also checks for repeats).
    policies: [TokenPolicy; 2],
    own_header: String,
}

static SETUP: LazyLock<Setup> = LazyLock::new(|| {
    let key = Arc::new(HmacKey::new(SignatureAlgorithm::HS256, KEY).unwrap());
    let plain = TokenPolicy::new(&JwtConfig::default(), key.clone());
    let strict = JwtConfig {
        issuer: Some("https://issuer.example".into()),
        audience: Some("sekisho".into()),
        leeway: Dur::secs(30),
        user_id_claim: "sub".into(),
        ..JwtConfig::default()
    };
    let strict = TokenPolicy::new(&strict, key.clone());
    let probe = plain.sign(&sekisho_core::token::Claims {
        token_type: TokenType::Access,
        exp: 0,
        iat: 0,
        jti: "x".into(),
        user_id: None,
        family: None,
        login: None,
    })
    .expect("a configured key always signs");
    let own_header = probe.split('.').next().unwrap().to_string();
    Setup {
        key,
        policies: [plain, strict],
        own_header,
    }
});

fuzz_target!(|data: &[u8]| {
    let s = &*SETUP;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check(s, text);
    if let Some((header, payload)) = text.split_once('\n') {
        let header = if header.is_empty() {
            s.own_header.clone()
        } else {
            B64.encode(header)
        };
        check(s, &signed(s, &format!("{header}.{}", B64.encode(payload))));
    }
    check(s, &signed(s, text));
});

fn signed(s: &Setup, signing_input: &str) -> String {
    let signature = B64.encode(s.key.sign(signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

fn check(s: &Setup, token: &str) {
    let now = Timestamp::from_secs(NOW);
    for policy in &s.policies {
        let Ok(claims) = policy.verify(token, None, now) else {
            continue;
        };
        let other = match claims.token_type {
            TokenType::Access => TokenType::Refresh,
            TokenType::Refresh => TokenType::Access,
        };
        assert_eq!(
            policy.verify(token, Some(claims.token_type), now).as_ref(),
            Ok(&claims)
        );
        assert_eq!(
            policy.verify(token, Some(other), now),
            Err(sekisho_core::token::TokenError::WrongType)
        );
        let resigned = policy.sign(&claims).expect("a configured key always signs");
        assert_eq!(
            policy.verify(&resigned, None, now),
            Ok(claims.clone()),
            "a verified token must survive re-signing: {token:?} -> {resigned:?}"
        );
        // Change the signature's first character: its six bits all land in the first byte.
        let at = token.rfind('.').unwrap() + 1;
        let mut tampered = token.to_string();
        let first = tampered.as_bytes()[at];
        let replacement = if first == b'A' { "B" } else { "A" };
        tampered.replace_range(at..at + 1, replacement);
        assert!(
            policy.verify(&tampered, None, now).is_err(),
            "a tampered signature verified: {tampered:?}"
        );
    }
}
