use super::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

const KEY: &[u8] = b"a-django-secret-key-of-at-least-32-bytes!!";
const NOW: i64 = 1_800_000_000;

fn policy() -> TokenPolicy {
    TokenPolicy::new(&JwtConfig::default(), KEY).unwrap()
}

fn claims(tt: TokenType) -> Claims {
    Claims {
        token_type: tt,
        exp: NOW + 300,
        iat: NOW,
        jti: "0123456789abcdef0123456789abcdef".into(),
        user_id: Some("7".into()),
        family: Some("fam".into()),
    }
}

fn now() -> Timestamp {
    Timestamp::from_secs(NOW)
}

/// Builds a token from raw header/payload JSON, signed with `key` using HMAC-SHA256.
fn raw(header: &str, payload: &str, key: &[u8]) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let h = B64.encode(header);
    let p = B64.encode(payload);
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{h}.{p}").as_bytes());
    format!("{h}.{p}.{}", B64.encode(mac.finalize().into_bytes()))
}

fn payload(extra: &str) -> String {
    format!(
        r#"{{"token_type":"access","exp":{},"iat":{NOW},"jti":"0123456789abcdef0123456789abcdef","user_id":"7"{extra}}}"#,
        NOW + 60
    )
}

const HS: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

#[test]
fn sign_then_verify_round_trips() {
    let p = policy();
    let t = p.sign(&claims(TokenType::Access));
    assert_eq!(
        p.verify(&t, Some(TokenType::Access), now()).unwrap(),
        claims(TokenType::Access)
    );
    assert_eq!(
        p.sign(&claims(TokenType::Access)),
        t,
        "signing is deterministic"
    );
}

#[test]
fn accepts_tokens_minted_by_simplejwt_with_the_same_secret() {
    // Hand-built exactly as PyJWT would encode simplejwt's payload; integer user ids too.
    let p = policy();
    let t = raw(HS, &payload(""), KEY);
    let c = p.verify(&t, Some(TokenType::Access), now()).unwrap();
    assert_eq!(c.user_id.as_deref(), Some("7"));
    let t = raw(
        HS,
        &payload("").replace(r#""user_id":"7""#, r#""user_id":7"#),
        KEY,
    );
    assert_eq!(
        p.verify(&t, None, now()).unwrap().user_id.as_deref(),
        Some("7")
    );
}

#[test]
fn forged_and_broken_tokens_are_refused_with_simplejwt_messages() {
    use TokenError::*;
    let p = policy();
    let cases: Vec<(String, TokenError)> = vec![
        ("".into(), Invalid),
        ("garbage".into(), Invalid),
        ("a.b.c".into(), Invalid),
        (
            raw(r#"{"alg":"none","typ":"JWT"}"#, &payload(""), KEY)
                .rsplit_once('.')
                .unwrap()
                .0
                .to_string()
                + ".",
            Invalid,
        ),
        (raw(r#"{"alg":"none"}"#, &payload(""), KEY), Invalid),
        (
            raw(HS, &payload(""), b"another-key-another-key-another-key!!"),
            Invalid,
        ),
        (
            raw(r#"{"alg":"HS512","typ":"JWT"}"#, &payload(""), KEY),
            Invalid,
        ),
        (
            raw(
                r#"{"alg":"HS256","jku":"https://evil.example/jwks"}"#,
                &payload(""),
                KEY,
            ),
            Invalid,
        ),
        (
            raw(r#"{"alg":"HS256","crit":["exp"]}"#, &payload(""), KEY),
            Invalid,
        ),
        (
            raw(HS, &payload(&format!(r#","nbf":{}"#, NOW + 100)), KEY),
            Invalid,
        ),
        (
            raw(
                HS,
                &payload("").replace(
                    &format!(r#""iat":{NOW}"#),
                    &format!(r#""iat":{}"#, NOW + 100),
                ),
                KEY,
            ),
            Invalid,
        ),
        (
            raw(
                HS,
                &payload("").replace(&format!(r#""exp":{}"#, NOW + 60), r#""exp":"soon""#),
                KEY,
            ),
            Invalid,
        ),
        (
            raw(
                HS,
                &payload("").replace(
                    &format!(r#""exp":{}"#, NOW + 60),
                    &format!(r#""exp":{NOW}"#),
                ),
                KEY,
            ),
            Expired,
        ),
        (
            raw(
                HS,
                &payload("").replace(&format!(r#""exp":{},"#, NOW + 60), ""),
                KEY,
            ),
            NoExp,
        ),
        (
            raw(
                HS,
                &payload("").replace(r#","jti":"0123456789abcdef0123456789abcdef""#, ""),
                KEY,
            ),
            NoId,
        ),
        (
            raw(
                HS,
                &payload("").replace(r#""token_type":"access","#, ""),
                KEY,
            ),
            NoType,
        ),
        (
            raw(
                HS,
                &payload("").replace(r#""token_type":"access""#, r#""token_type":"refresh""#),
                KEY,
            ),
            WrongType,
        ),
        ("x".repeat(MAX_TOKEN_LEN + 1), Invalid),
    ];
    for (i, (t, want)) in cases.iter().enumerate() {
        assert_eq!(
            p.verify(t, Some(TokenType::Access), now()),
            Err(*want),
            "case {i}"
        );
    }
}

#[test]
fn tampered_payload_is_refused() {
    let p = policy();
    let t = p.sign(&claims(TokenType::Access));
    let (h, rest) = t.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let forged = format!(
        "{h}.{}.{sig}",
        B64.encode(payload("").replace(r#""user_id":"7""#, r#""user_id":"1""#))
    );
    assert_eq!(p.verify(&forged, None, now()), Err(TokenError::Invalid));
}

#[test]
fn leeway_is_zero_by_default_and_configurable() {
    let p = policy();
    let mut c = claims(TokenType::Access);
    c.exp = NOW;
    assert_eq!(p.verify(&p.sign(&c), None, now()), Err(TokenError::Expired));
    let cfg = JwtConfig {
        leeway: crate::config::Dur::secs(10),
        ..Default::default()
    };
    let lenient = TokenPolicy::new(&cfg, KEY).unwrap();
    assert!(lenient.verify(&lenient.sign(&c), None, now()).is_ok());
}

#[test]
fn audience_and_issuer_are_enforced_when_configured() {
    let cfg = JwtConfig {
        audience: Some("shop".into()),
        issuer: Some("https://auth.example".into()),
        ..Default::default()
    };
    let strict = TokenPolicy::new(&cfg, KEY).unwrap();
    let t = strict.sign(&claims(TokenType::Access));
    assert!(strict.verify(&t, None, now()).is_ok());
    let plain = policy().sign(&claims(TokenType::Access));
    assert_eq!(strict.verify(&plain, None, now()), Err(TokenError::Invalid));
}

#[test]
fn short_keys_are_refused() {
    assert!(TokenPolicy::new(&JwtConfig::default(), b"short").is_err());
}
