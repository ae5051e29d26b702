use super::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use std::sync::Arc;

const KEY: &[u8] = b"a-django-secret-key-of-at-least-32-bytes!!";
const NOW: i64 = 1_800_000_000;

/// The policy for `cfg` with an HMAC key of `cfg.algorithm`, as the builder makes it.
fn policy_for(cfg: &JwtConfig, key: &[u8]) -> TokenPolicy {
    let alg = SignatureAlgorithm::parse(&cfg.algorithm).unwrap();
    TokenPolicy::new(cfg, std::sync::Arc::new(HmacKey::new(alg, key).unwrap()))
}

fn policy() -> TokenPolicy {
    policy_for(&JwtConfig::default(), KEY)
}

/// The JOSE crate's `Algorithm` for a policy (the reference verifier below speaks it).
fn jose_alg(p: &TokenPolicy) -> jsonwebtoken::Algorithm {
    jose(p.algorithm(now()).unwrap())
}

fn jose(a: SignatureAlgorithm) -> jsonwebtoken::Algorithm {
    match a {
        SignatureAlgorithm::HS256 => jsonwebtoken::Algorithm::HS256,
        SignatureAlgorithm::HS384 => jsonwebtoken::Algorithm::HS384,
        SignatureAlgorithm::HS512 => jsonwebtoken::Algorithm::HS512,
        SignatureAlgorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        SignatureAlgorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        SignatureAlgorithm::RS256 => jsonwebtoken::Algorithm::RS256,
    }
}

fn claims(tt: TokenType) -> Claims {
    Claims {
        token_type: tt,
        exp: NOW + 300,
        iat: NOW,
        jti: "0123456789abcdef0123456789abcdef".into(),
        user_id: Some("7".into()),
        family: Some("fam".into()),
        login: Some(crate::mfa::LoginMethod {
            factors: crate::mfa::LoginFactors::PasswordAndOtp,
            auth_time: NOW - 5,
        }),
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
    let t = p.sign(&claims(TokenType::Access)).unwrap();
    assert_eq!(
        p.verify(&t, Some(TokenType::Access), now()).unwrap(),
        claims(TokenType::Access)
    );
    assert_eq!(
        p.sign(&claims(TokenType::Access)).unwrap(),
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
    let t = p.sign(&claims(TokenType::Access)).unwrap();
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
    assert_eq!(
        p.verify(&p.sign(&c).unwrap(), None, now()),
        Err(TokenError::Expired)
    );
    let cfg = JwtConfig {
        leeway: crate::config::Dur::secs(10),
        ..Default::default()
    };
    let lenient = policy_for(&cfg, KEY);
    assert!(
        lenient
            .verify(&lenient.sign(&c).unwrap(), None, now())
            .is_ok()
    );
}

#[test]
fn audience_and_issuer_are_enforced_when_configured() {
    let cfg = JwtConfig {
        audience: Some("shop".into()),
        issuer: Some("https://auth.example".into()),
        ..Default::default()
    };
    let strict = policy_for(&cfg, KEY);
    let t = strict.sign(&claims(TokenType::Access)).unwrap();
    assert!(strict.verify(&t, None, now()).is_ok());
    let plain = policy().sign(&claims(TokenType::Access)).unwrap();
    assert_eq!(strict.verify(&plain, None, now()), Err(TokenError::Invalid));
    // Without an audience configured, a token naming one is for another service (PyJWT and
    // simplejwt refuse it too).
    assert_eq!(policy().verify(&t, None, now()), Err(TokenError::Invalid));
}

#[test]
fn short_keys_are_refused() {
    assert!(HmacKey::new(SignatureAlgorithm::HS256, b"short").is_err());
}

/// Tokens are byte-for-byte what the JOSE crate would sign for the same claims: the header
/// sekisho writes is the one PyJWT and simplejwt write, and older tokens keep verifying.
#[test]
fn signing_matches_the_jose_crate() {
    for alg in SignatureAlgorithm::ALL
        .into_iter()
        .filter(|a| a.is_symmetric())
    {
        let cfg = JwtConfig {
            algorithm: alg.name().into(),
            issuer: Some("iss".into()),
            ..Default::default()
        };
        let p = policy_for(&cfg, KEY);
        for tt in [TokenType::Access, TokenType::Refresh] {
            let c = claims(tt);
            let mut m = Map::new();
            m.insert("token_type".into(), Value::from(tt.as_str()));
            m.insert("exp".into(), Value::from(c.exp));
            m.insert("iat".into(), Value::from(c.iat));
            m.insert("jti".into(), Value::from(c.jti.as_str()));
            m.insert("user_id".into(), Value::from("7"));
            m.insert("fid".into(), Value::from("fam"));
            m.insert("amr".into(), Value::from(vec!["pwd", "otp"]));
            m.insert("auth_time".into(), Value::from(NOW - 5));
            m.insert("iss".into(), Value::from("iss"));
            let mut h = jsonwebtoken::Header::new(jose_alg(&p));
            h.typ = Some("JWT".into());
            h.kid = Some(HmacKey::new(alg, KEY).unwrap().kid().to_string());
            let jose =
                jsonwebtoken::encode(&h, &m, &jsonwebtoken::EncodingKey::from_secret(KEY)).unwrap();
            assert_eq!(p.sign(&c).unwrap(), jose, "{}", alg.name());
        }
    }
}

/// The verifier sekisho used before `compact`: the JOSE crate's `decode` into a JSON map, then
/// the same claim checks. Kept here as the oracle the fast path must agree with.
fn reference_verify(
    p: &TokenPolicy,
    key: &[u8],
    token: &str,
    expected: Option<TokenType>,
    now: Timestamp,
) -> Result<Claims, TokenError> {
    use TokenError::*;
    use jsonwebtoken::{DecodingKey, Validation};
    fn numeric(v: &Value) -> Option<i64> {
        match v {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.floor() as i64)
            }),
            _ => None,
        }
    }
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(Invalid);
    }
    let mut v = Validation::new(jose_alg(p));
    v.leeway = 0;
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims = Default::default();
    let data =
        jsonwebtoken::decode::<Map<String, Value>>(token, &DecodingKey::from_secret(key), &v)
            .map_err(|_| Invalid)?;
    let h = &data.header;
    let our_kid = p.ring().keys().next().map(|k| k.key.kid().to_string());
    if h.kid.is_some() && h.kid != our_kid {
        return Err(Invalid);
    }
    if h.alg != jose_alg(p)
        || h.jku.is_some()
        || h.jwk.is_some()
        || h.x5u.is_some()
        || h.x5c.is_some()
        || h.crit.is_some()
    {
        return Err(Invalid);
    }
    let c = data.claims;
    let now_s = now.secs();
    let exp = match c.get("exp") {
        None => None,
        Some(v) => Some(numeric(v).ok_or(Invalid)?),
    };
    if let Some(exp) = exp
        && exp <= now_s - p.leeway
    {
        return Err(Expired);
    }
    if let Some(v) = c.get("nbf")
        && numeric(v).ok_or(Invalid)? > now_s + p.leeway
    {
        return Err(Invalid);
    }
    let iat = match c.get("iat") {
        None => None,
        Some(v) => Some(numeric(v).ok_or(Invalid)?),
    };
    if iat.is_some_and(|iat| iat > now_s + p.leeway) {
        return Err(Invalid);
    }
    let aud_ok = match (&p.audience, c.get("aud")) {
        (None, aud) => aud.is_none(),
        (Some(want), Some(Value::String(a))) => a == want,
        (Some(want), Some(Value::Array(list))) => list.iter().any(|a| a.as_str() == Some(want)),
        (Some(_), _) => false,
    };
    if !aud_ok {
        return Err(Invalid);
    }
    if let Some(want) = &p.issuer
        && c.get("iss").and_then(Value::as_str) != Some(want)
    {
        return Err(Invalid);
    }
    let exp = exp.ok_or(NoExp)?;
    let jti = match c.get("jti") {
        None => return Err(NoId),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => return Err(Invalid),
    };
    let token_type = match c.get("token_type") {
        None => return Err(NoType),
        Some(Value::String(s)) if s == "access" => TokenType::Access,
        Some(Value::String(s)) if s == "refresh" => TokenType::Refresh,
        Some(_) => return Err(WrongType),
    };
    if let Some(want) = expected
        && want != token_type
    {
        return Err(WrongType);
    }
    let user_id = match c.get(&p.user_id_claim) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    };
    let family = match c.get("fid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(Invalid),
    };
    let login = match (c.get("amr"), c.get("auth_time").and_then(numeric)) {
        (Some(Value::Array(list)), Some(at)) => {
            let amr: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
            crate::mfa::LoginMethod::from_amr(&amr, at)
        }
        _ => None,
    };
    Ok(Claims {
        token_type,
        exp,
        iat: iat.unwrap_or(0),
        jti,
        user_id,
        family,
        login,
    })
}

/// The claims sekisho reads (and `sub`, which the JOSE crate pre-parses): a repeat of any of
/// them is refused.
const READ_CLAIMS: [&str; 11] = [
    "amr",
    "auth_time",
    "exp",
    "nbf",
    "iat",
    "aud",
    "iss",
    "jti",
    "token_type",
    "fid",
    "sub",
];

/// A small deterministic generator (xorshift64*), so a failure names a reproducible case.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[(self.next() % xs.len() as u64) as usize]
    }
    fn chance(&mut self, in_n: u64) -> bool {
        self.next().is_multiple_of(in_n)
    }
}

/// A claim value of any JSON shape a token might carry, right or wrong.
fn any_value(g: &mut Gen, good: &[String]) -> String {
    let odd = [
        "null".to_string(),
        "true".into(),
        "\"\"".into(),
        "\"soon\"".into(),
        "[]".into(),
        "[\"shop\",1,[\"x\"]]".into(),
        "{\"a\":[1,{}]}".into(),
        "-5".into(),
        "0".into(),
        "1.5e300".into(),
        "18446744073709551615".into(),
        "99999999999999999999999".into(),
        format!("{}.75", NOW + 30),
        format!("{}.25", NOW - 30),
        "\"\\u0037\"".into(),
        "\"caf\\u00e9\"".into(),
    ];
    if g.chance(3) {
        g.pick(&odd).clone()
    } else {
        g.pick(good).clone()
    }
}

/// `aud`: the policy under test expects an audience (otherwise a token naming one is refused,
/// so it is generated only now and then, to keep both outcomes common).
fn arbitrary_token(g: &mut Gen, key: &[u8], uid_claim: &str, aud: bool) -> String {
    let algs = [
        r#""alg":"HS256""#,
        r#""alg":"HS256""#,
        r#""alg":"HS256""#,
        r#""alg":"HS256""#,
        r#""alg":"HS256""#,
        r#""alg":"HS256""#,
        r#""alg":"HS256""#,
        r#""alg":"HS384""#,
        r#""alg":"none""#,
        r#""alg":"RS256""#,
        r#""alg":"hs256""#,
        r#""alg":null"#,
    ];
    let extras = [
        "",
        "",
        r#","typ":"JWT""#,
        r#","kid":"k1""#,
        r#","jku":"https://evil.example/jwks""#,
        r#","jku":null"#,
        r#","x5u":"https://evil.example/x""#,
        r#","crit":["exp"]"#,
        r#","cty":"JWT""#,
    ];
    let mut header = format!("{{{}", g.pick(&algs));
    for _ in 0..(g.next() % 3) {
        let extra: &&str = g.pick(&extras);
        header.push_str(extra);
    }
    header.push('}');
    if g.chance(3) {
        // The exact header sekisho and PyJWT write (the verifier's matched path).
        header = r#"{"typ":"JWT","alg":"HS256"}"#.into();
    }
    if g.chance(40) {
        header = "[1,2]".into();
    }
    let times = [
        format!("{}", NOW + 60),
        format!("{}", NOW - 1),
        format!("{NOW}"),
        format!("{}", NOW + 1),
        format!("{}", NOW + 3600),
    ];
    let strings = [
        "\"0123456789abcdef0123456789abcdef\"".to_string(),
        "\"access\"".into(),
        "\"refresh\"".into(),
        "\"7\"".into(),
        "7".into(),
        "\"shop\"".into(),
        "\"https://auth.example\"".into(),
    ];
    let mut names: Vec<&str> = READ_CLAIMS.to_vec();
    names.extend([uid_claim, "user_id", "extra", "\\u0065xp"]);
    let mut members: Vec<(String, String)> = Vec::new();
    // Usually a well-formed token, then a few claims of any shape (now and then repeated).
    if !g.chance(5) {
        members.push(("token_type".into(), g.pick(&strings[1..3]).clone()));
        members.push(("exp".into(), g.pick(&times).clone()));
        members.push(("iat".into(), g.pick(&times[1..3]).clone()));
        members.push(("jti".into(), strings[0].clone()));
        if uid_claim != "jti" {
            members.push((uid_claim.into(), g.pick(&strings[3..5]).clone()));
        }
        if if aud { !g.chance(4) } else { g.chance(8) } {
            members.push(("aud".into(), "\"shop\"".into()));
            members.push(("iss".into(), "\"https://auth.example\"".into()));
        }
    }
    for _ in 0..(g.next() % 4) {
        let name = *g.pick(&names);
        let mut value = if ["exp", "nbf", "iat"].contains(&name) {
            any_value(g, &times)
        } else {
            any_value(g, &strings)
        };
        // The JOSE crate's own pre-parse of `exp`/`nbf`/`sub`/`iss` fails the whole token on
        // an array or object there (a quirk: the token is refused either way, only the message
        // can differ), so those stay scalar.
        if ["exp", "nbf", "sub", "iss"].contains(&name)
            && (value.starts_with('[') || value.starts_with('{'))
        {
            value = "\"x\"".into();
        }
        match members.iter_mut().find(|(n, _)| n == name) {
            Some(m) if !g.chance(10) => m.1 = value,
            _ => members.push((name.into(), value)),
        }
    }
    let mut members: Vec<String> = members
        .into_iter()
        .map(|(n, v)| format!(r#""{n}":{v}"#))
        .collect();
    if g.chance(8) {
        let i = (g.next() as usize) % (members.len() + 1);
        members.insert(i, r#""fid":"fam""#.into());
    }
    let mut payload = format!("{{{}}}", members.join(","));
    if g.chance(50) {
        payload.push('x');
    }
    if g.chance(50) {
        payload = "\"not an object\"".into();
    }
    let mut t = raw(
        &header,
        &payload,
        if g.chance(10) {
            b"wrong-key-wrong-key-wrong-key-wrong!!"
        } else {
            key
        },
    );
    match g.next() % 40 {
        0 => t.push('.'),
        1 => t.push_str(".AAAA"),
        2 => t = t.replacen('.', "..", 1),
        3 => {
            t.pop();
        }
        4 => t.push('='),
        5 => t = t.replace('-', "+"),
        _ => {}
    }
    t
}

#[test]
fn the_fast_verifier_agrees_with_the_jose_crate_on_arbitrary_tokens() {
    for (cfg, uid_claim) in [
        (JwtConfig::default(), "user_id"),
        (
            JwtConfig {
                audience: Some("shop".into()),
                issuer: Some("https://auth.example".into()),
                leeway: crate::config::Dur::secs(5),
                user_id_claim: "sub".into(),
                ..Default::default()
            },
            "sub",
        ),
        (
            JwtConfig {
                user_id_claim: "jti".into(),
                ..Default::default()
            },
            "jti",
        ),
    ] {
        let p = policy_for(&cfg, KEY);
        let mut g = Gen(0x9E37_79B9_7F4A_7C15);
        let (mut ok, mut refused) = (0, 0);
        for i in 0..20_000 {
            let t = arbitrary_token(&mut g, KEY, uid_claim, cfg.audience.is_some());
            for expected in [None, Some(TokenType::Access), Some(TokenType::Refresh)] {
                let fast = p.verify(&t, expected, now());
                let slow = reference_verify(&p, KEY, &t, expected, now());
                if repeats_a_claim(&t, uid_claim) {
                    // Stricter on purpose: the JOSE crate refuses only some repeats.
                    assert_eq!(fast, Err(TokenError::Invalid), "case {i}: {t}");
                    continue;
                }
                assert_eq!(fast, slow, "case {i} ({uid_claim}): {t}");
                if fast.is_ok() {
                    ok += 1;
                } else {
                    refused += 1;
                }
            }
        }
        // The generator must exercise both outcomes, or the comparison proves little.
        assert!(
            ok > 2_000 && refused > 2_000,
            "{uid_claim}: ok {ok}, refused {refused}"
        );
    }
}

#[test]
fn hs384_and_hs512_sign_and_verify_with_their_own_mac() {
    for alg in ["HS384", "HS512"] {
        let cfg = JwtConfig {
            algorithm: alg.into(),
            ..Default::default()
        };
        let p = policy_for(&cfg, KEY);
        let t = p.sign(&claims(TokenType::Refresh)).unwrap();
        assert_eq!(
            p.verify(&t, None, now()),
            reference_verify(&p, KEY, &t, None, now())
        );
        assert!(p.verify(&t, None, now()).is_ok());
        // A token of another HMAC size is refused even with the same key.
        assert_eq!(
            p.verify(
                &policy().sign(&claims(TokenType::Refresh)).unwrap(),
                None,
                now()
            ),
            Err(TokenError::Invalid)
        );
    }
}

/// The member names of a JSON object, repeats kept.
struct Keys(Vec<String>);

impl<'de> serde::Deserialize<'de> for Keys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some((k, _)) = m.next_entry::<String, serde::de::IgnoredAny>()? {
                    keys.push(k);
                }
                Ok(Keys(keys))
            }
        }
        d.deserialize_map(V)
    }
}

/// Whether a token's header repeats a parameter, or its payload names a claim sekisho reads
/// (or `sub`) more than once.
fn repeats_a_claim(token: &str, uid_claim: &str) -> bool {
    let Some(header) = token.split('.').next() else {
        return false;
    };
    if let Ok(Keys(keys)) = B64
        .decode(header)
        .map_err(|_| ())
        .and_then(|b| serde_json::from_slice::<Keys>(&b).map_err(|_| ()))
        && keys
            .iter()
            .any(|k| keys.iter().filter(|x| *x == k).count() > 1)
    {
        return true;
    }
    let Some(payload) = token.split('.').nth(1) else {
        return false;
    };
    let Ok(bytes) = B64.decode(payload) else {
        return false;
    };
    let Ok(Keys(keys)) = serde_json::from_slice::<Keys>(&bytes) else {
        return false;
    };
    READ_CLAIMS
        .iter()
        .chain([&uid_claim])
        .any(|name| keys.iter().filter(|k| k == name).count() > 1)
}

#[test]
fn a_repeated_claim_is_refused() {
    let p = policy();
    for dup in [
        format!(r#","exp":{}"#, NOW + 9999),
        r#","user_id":"1""#.to_string(),
        r#","token_type":"refresh""#.to_string(),
        r#","\u0065xp":1"#.to_string(),
        r#","sub":"a","sub":"b""#.to_string(),
    ] {
        let t = raw(HS, &payload(&dup), KEY);
        assert_eq!(p.verify(&t, None, now()), Err(TokenError::Invalid), "{dup}");
    }
    // Claims sekisho does not read may repeat.
    let t = raw(HS, &payload(r#","x":1,"x":2"#), KEY);
    assert!(p.verify(&t, None, now()).is_ok());
}

#[test]
fn own_header_is_what_signing_writes_and_other_header_spellings_still_verify() {
    let p = policy();
    let kid = HmacKey::new(SignatureAlgorithm::HS256, KEY)
        .unwrap()
        .kid()
        .to_string();
    let t = p.sign(&claims(TokenType::Access)).unwrap();
    let header: Value =
        serde_json::from_slice(&B64.decode(t.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(
        header,
        serde_json::json!({"typ": "JWT", "alg": "HS256", "kid": kid})
    );
    let ring = p.ring();
    assert!(ring.by_header(t.split('.').next().unwrap()).is_some());
    // PyJWT (simplejwt) writes no kid; its header is matched too (the legacy form).
    let pyjwt = raw(r#"{"typ":"JWT","alg":"HS256"}"#, &payload(""), KEY);
    assert!(ring.by_header(pyjwt.split('.').next().unwrap()).is_some());
    assert!(p.verify(&pyjwt, Some(TokenType::Access), now()).is_ok());
    // Another spelling of the same header is parsed instead of matched, and verifies.
    let other = raw(r#"{"alg":"HS256","typ":"JWT"}"#, &payload(""), KEY);
    assert!(ring.by_header(other.split('.').next().unwrap()).is_none());
    assert!(p.verify(&other, Some(TokenType::Access), now()).is_ok());
    let named = raw(
        &format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#),
        &payload(""),
        KEY,
    );
    assert!(p.verify(&named, Some(TokenType::Access), now()).is_ok());
    // A kid naming no key of this ring is refused, whatever the signature.
    let elsewhere = raw(
        r#"{"alg":"HS256","kid":"hs-someone-else"}"#,
        &payload(""),
        KEY,
    );
    assert_eq!(
        p.verify_checked(&elsewhere, None, now()).unwrap_err(),
        Refusal {
            error: TokenError::Invalid,
            unknown_key: true
        }
    );
}

// ---- Asymmetric keys, the key ring and forged tokens. ----

const ASYMMETRIC: [SignatureAlgorithm; 3] = [
    SignatureAlgorithm::EdDSA,
    SignatureAlgorithm::ES256,
    SignatureAlgorithm::RS256,
];

fn asymmetric(alg: SignatureAlgorithm) -> Arc<AsymmetricKey> {
    Arc::new(AsymmetricKey::generate(alg).unwrap().0)
}

fn policy_with(key: Arc<dyn TokenKey>) -> TokenPolicy {
    let cfg = JwtConfig {
        algorithm: key.algorithm().name().into(),
        ..Default::default()
    };
    TokenPolicy::new(&cfg, key)
}

/// A compact token from raw header/payload JSON and a signature over them made by `sign`.
fn raw_signed(header: &str, payload: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let h = B64.encode(header);
    let p = B64.encode(payload);
    let sig = sign(format!("{h}.{p}").as_bytes());
    format!("{h}.{p}.{}", B64.encode(sig))
}

/// The JOSE crate verifies sekisho's asymmetric tokens with nothing but the published JWK.
#[test]
fn asymmetric_tokens_verify_here_and_with_the_jose_crate_from_the_jwks() {
    for alg in ASYMMETRIC {
        let key = asymmetric(alg);
        let p = policy_with(key.clone());
        let t = p.sign(&claims(TokenType::Access)).unwrap();
        assert_eq!(
            p.verify(&t, Some(TokenType::Access), now()).unwrap(),
            claims(TokenType::Access)
        );
        assert_eq!(
            t,
            p.sign(&claims(TokenType::Access)).unwrap(),
            "{alg:?} is deterministic"
        );
        let header: Value =
            serde_json::from_slice(&B64.decode(t.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(
            header,
            serde_json::json!({"typ": "JWT", "alg": alg.name(), "kid": key.kid()})
        );
        let jwks = p.ring().jwks(now());
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
        let mut v = jsonwebtoken::Validation::new(jose(alg));
        v.validate_exp = false;
        v.required_spec_claims = Default::default();
        let data = jsonwebtoken::decode::<Map<String, Value>>(
            &t,
            &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
            &v,
        )
        .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(data.header.kid.as_deref(), Some(key.kid()));
        assert_eq!(data.claims["user_id"], "7");
    }
}

#[test]
fn forged_asymmetric_tokens_are_refused() {
    use TokenError::Invalid;
    for alg in ASYMMETRIC {
        let key = asymmetric(alg);
        let p = policy_with(key.clone());
        let kid = key.kid();
        let good = payload("");
        let jwk = Value::Object(key.public_jwk().unwrap());
        let mut forged: Vec<(String, String)> = Vec::new();
        // Algorithm switching: HMAC with the public key as the secret, in every form a
        // confused verifier might use (the JWK text, its members, their decoded bytes).
        let mut secrets: Vec<Vec<u8>> = vec![jwk.to_string().into_bytes()];
        for m in ["x", "y", "n", "e"] {
            if let Some(v) = jwk[m].as_str() {
                secrets.push(v.as_bytes().to_vec());
                secrets.push(B64.decode(v).unwrap());
            }
        }
        for secret in &secrets {
            for hs in ["HS256", "HS384", "HS512"] {
                let h = format!(r#"{{"typ":"JWT","alg":"{hs}","kid":"{kid}"}}"#);
                // (A secret too short for an HMAC key here is padded by repeating it; the
                // forgery is refused for its algorithm, not its length.)
                let secret = secret.repeat(32 / secret.len() + 1);
                let mac = HmacKey::new(SignatureAlgorithm::parse(hs).unwrap(), &secret).unwrap();
                forged.push((
                    format!("{hs} with the public key"),
                    raw_signed(&h, &good, |m| mac.sign(m)),
                ));
            }
        }
        // An HS token with no kid (what Django mints) is not accepted by an asymmetric ring.
        forged.push(("no kid, HS256".into(), raw(HS, &good, KEY)));
        // Our own header, signed by another key of the same algorithm.
        let other = asymmetric(alg);
        let own_header = format!(r#"{{"typ":"JWT","alg":"{}","kid":"{kid}"}}"#, alg.name());
        forged.push((
            "another key".into(),
            raw_signed(&own_header, &good, |m| other.sign(m)),
        ));
        // Another asymmetric algorithm under our kid, signed by a key of that algorithm.
        for switch in ASYMMETRIC.into_iter().filter(|a| *a != alg) {
            let k = asymmetric(switch);
            let h = format!(r#"{{"alg":"{}","kid":"{kid}"}}"#, switch.name());
            forged.push((
                format!("as {switch:?}"),
                raw_signed(&h, &good, |m| k.sign(m)),
            ));
        }
        // A kid that points nowhere, and a header without one.
        let h = format!(r#"{{"alg":"{}","kid":"nowhere"}}"#, alg.name());
        forged.push(("kid nowhere".into(), raw_signed(&h, &good, |m| key.sign(m))));
        let h = format!(r#"{{"alg":"{}"}}"#, alg.name());
        forged.push(("no kid".into(), raw_signed(&h, &good, |m| key.sign(m))));
        forged.push((
            "kid not a string".into(),
            raw_signed(
                &format!(r#"{{"alg":"{}","kid":7}}"#, alg.name()),
                &good,
                |m| key.sign(m),
            ),
        ));
        // Header parameters pointing at the attacker's key: refused even with our signature.
        let attacker = Value::Object(other.public_jwk().unwrap());
        for (name, value) in [
            ("jwk", attacker.to_string()),
            ("jku", r#""https://evil.example/jwks.json""#.into()),
            ("x5u", r#""https://evil.example/cert.pem""#.into()),
            ("x5c", r#"["MIIB"]"#.into()),
            ("crit", r#"["exp"]"#.into()),
        ] {
            let h = format!(
                r#"{{"alg":"{}","kid":"{kid}","{name}":{value}}}"#,
                alg.name()
            );
            forged.push((
                format!("{name} (our signature)"),
                raw_signed(&h, &good, |m| key.sign(m)),
            ));
            let h = format!(r#"{{"alg":"{}","{name}":{value}}}"#, alg.name());
            forged.push((
                format!("{name} (their signature)"),
                raw_signed(&h, &good, |m| other.sign(m)),
            ));
        }
        // A repeated kid, "none", an empty or truncated signature.
        let h = format!(r#"{{"alg":"{}","kid":"{kid}","kid":"{kid}"}}"#, alg.name());
        forged.push((
            "repeated kid".into(),
            raw_signed(&h, &good, |m| key.sign(m)),
        ));
        let h = format!(r#"{{"alg":"none","kid":"{kid}"}}"#);
        forged.push(("none".into(), raw_signed(&h, &good, |_| Vec::new())));
        let t = p.sign(&claims(TokenType::Access)).unwrap();
        let (signed, sig) = t.rsplit_once('.').unwrap();
        forged.push(("empty signature".into(), format!("{signed}.")));
        let bytes = B64.decode(sig).unwrap();
        forged.push((
            "short signature".into(),
            format!("{signed}.{}", B64.encode(&bytes[1..])),
        ));
        let mut long = bytes.clone();
        long.push(0);
        forged.push((
            "long signature".into(),
            format!("{signed}.{}", B64.encode(&long)),
        ));
        // The payload swapped under a valid signature.
        let (h, _) = t.split_once('.').unwrap();
        let swapped = B64.encode(payload("").replace(r#""user_id":"7""#, r#""user_id":"1""#));
        forged.push(("swapped payload".into(), format!("{h}.{swapped}.{sig}")));
        if alg == SignatureAlgorithm::ES256 {
            // The same ECDSA signature DER-encoded instead of r ‖ s (RFC 7518 §3.4).
            let s = p256::ecdsa::Signature::from_slice(&bytes).unwrap();
            forged.push((
                "DER signature".into(),
                format!("{signed}.{}", B64.encode(s.to_der().as_bytes())),
            ));
        }
        for (what, token) in &forged {
            assert_eq!(
                p.verify(token, Some(TokenType::Access), now()),
                Err(Invalid),
                "{alg:?}: {what}"
            );
        }
        assert!(forged.len() > 20);
        // Only the kid pointing nowhere is worth re-reading the stored keys for.
        let unknown: Vec<&str> = forged
            .iter()
            .filter(|(_, t)| p.verify_checked(t, None, now()).unwrap_err().unknown_key)
            .map(|(w, _)| w.as_str())
            .collect();
        assert_eq!(unknown, ["kid nowhere"], "{alg:?}");
    }
}

/// An HS ring keeps accepting Django's tokens (no kid) and refuses asymmetric-looking ones.
#[test]
fn an_hmac_ring_refuses_asymmetric_algorithms_under_its_kid() {
    let p = policy();
    let kid = HmacKey::new(SignatureAlgorithm::HS256, KEY)
        .unwrap()
        .kid()
        .to_string();
    for alg in ASYMMETRIC {
        let k = asymmetric(alg);
        let h = format!(r#"{{"alg":"{}","kid":"{kid}"}}"#, alg.name());
        let t = raw_signed(&h, &payload(""), |m| k.sign(m));
        assert_eq!(
            p.verify(&t, None, now()),
            Err(TokenError::Invalid),
            "{alg:?}"
        );
        let h = format!(r#"{{"alg":"{}"}}"#, alg.name());
        let t = raw_signed(&h, &payload(""), |m| k.sign(m));
        assert_eq!(
            p.verify(&t, None, now()),
            Err(TokenError::Invalid),
            "{alg:?}"
        );
    }
    assert_eq!(p.ring().jwks(now()), serde_json::json!({"keys": []}));
}

/// Rotation inside the policy: tokens are signed by the key whose window holds their `iat`,
/// old keys verify until their tail ends, the JWKS lists what verifies (the next key too).
#[test]
fn the_ring_signs_by_issue_time_and_verifies_until_the_tail() {
    for alg in ASYMMETRIC {
        let (old, new) = (asymmetric(alg), asymmetric(alg));
        let switch = Timestamp::from_secs(NOW + 600);
        let tail_end = switch.plus(std::time::Duration::from_secs(86_400));
        let ring = || {
            KeyRing::new(vec![
                RingKey {
                    key: old.clone(),
                    generation: 1,
                    signs_from: Some(Timestamp::from_secs(NOW - 86_400)),
                    signs_until: Some(switch),
                    verifies_until: Some(tail_end),
                },
                RingKey {
                    key: new.clone(),
                    generation: 2,
                    signs_from: Some(switch),
                    signs_until: None,
                    verifies_until: None,
                },
            ])
        };
        let p = policy_with(old.clone());
        let before = p.sign(&claims(TokenType::Refresh)).unwrap();
        p.replace_ring(ring());
        // Before the switch the old key signs; the same claims give the same bytes after the
        // ring changed (the grace window's identical successor).
        assert_eq!(
            p.sign(&claims(TokenType::Refresh)).unwrap(),
            before,
            "{alg:?}"
        );
        let jwks = p.ring().jwks(now());
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(
            kids,
            [new.kid(), old.kid()],
            "the next key is published ahead"
        );
        let mut later = claims(TokenType::Refresh);
        later.iat = switch.secs();
        later.exp = later.iat + 300;
        let after = p.sign(&later).unwrap();
        let kid_of = |t: &str| {
            let h: Value =
                serde_json::from_slice(&B64.decode(t.split('.').next().unwrap()).unwrap()).unwrap();
            h["kid"].as_str().unwrap().to_string()
        };
        assert_eq!(kid_of(&before), old.kid());
        assert_eq!(kid_of(&after), new.kid());
        let at = |t: Timestamp, c: &str| p.verify(c, None, t);
        assert!(at(switch, &after).is_ok());
        // The old key's token verifies up to the end of its tail (its own exp permitting).
        let mut long = claims(TokenType::Refresh);
        long.exp = tail_end.secs() + 10;
        let long = {
            p.replace_ring(KeyRing::single(old.clone()));
            let t = p.sign(&long).unwrap();
            p.replace_ring(ring());
            t
        };
        assert!(at(tail_end, &long).is_ok(), "{alg:?}");
        assert_eq!(
            at(tail_end.plus(std::time::Duration::from_millis(1)), &long),
            Err(TokenError::Invalid)
        );
        let jwks = p
            .ring()
            .jwks(tail_end.plus(std::time::Duration::from_secs(1)));
        assert_eq!(
            jwks["keys"].as_array().unwrap().len(),
            1,
            "the old key left the JWKS"
        );
        // An empty ring signs nothing (fail closed).
        p.replace_ring(KeyRing::default());
        assert_eq!(p.sign(&claims(TokenType::Access)), Err(NoSigningKey));
    }
}
