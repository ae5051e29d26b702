//! Reading — never verifying — a token's times. The client cannot check a signature (it has no
//! key) and does not need to: it only plans its refresh from `exp` and `iat`. The server
//! verifies every token it is sent.

use base64::Engine;
use serde_json::Value;

/// `exp` and `iat` of a JWT, in seconds since the epoch (server clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TokenTimes {
    pub exp: i64,
    pub iat: Option<i64>,
}

/// The payload's times, or `None` for anything that is not a JWT with a numeric `exp`.
pub(crate) fn token_times(token: &str) -> Option<TokenTimes> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let secs = |v: &Value| v.as_i64().or_else(|| v.as_f64().map(|f| f.floor() as i64));
    Some(TokenTimes {
        exp: secs(claims.get("exp")?)?,
        iat: claims.get("iat").and_then(secs),
    })
}

/// Estimates `server clock − local clock` in milliseconds from a token's `iat`, minted between
/// `sent_ms` and `received_ms` (local clock). `iat` has one-second resolution, so an estimate
/// within the resolution plus half the round trip is noise and counts as zero. (The browser
/// client's rule, so both behave alike.)
pub(crate) fn estimate_skew(iat: i64, sent_ms: i64, received_ms: i64) -> i64 {
    let server_mid = iat.saturating_mul(1000).saturating_add(500);
    let local_mid = sent_ms / 2 + received_ms / 2;
    let skew = server_mid.saturating_sub(local_mid);
    let noise = 1000 + received_ms.saturating_sub(sent_ms).max(0) / 2;
    if skew.abs() <= noise { 0 } else { skew }
}

#[cfg(test)]
pub(crate) fn fake_token(exp: i64, iat: Option<i64>) -> String {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims = serde_json::json!({"token_type": "access", "exp": exp});
    if let Some(iat) = iat {
        claims["iat"] = iat.into();
    }
    format!(
        "{}.{}.sig",
        e.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
        e.encode(claims.to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exp_and_iat() {
        assert_eq!(
            token_times(&fake_token(200, Some(100))),
            Some(TokenTimes {
                exp: 200,
                iat: Some(100)
            })
        );
        assert_eq!(
            token_times(&fake_token(200, None)),
            Some(TokenTimes {
                exp: 200,
                iat: None
            })
        );
    }

    #[test]
    fn anything_else_has_no_times() {
        for t in ["", "abc", "a.b.c", "a.!!!.c", "a.e30.c" /* {} */] {
            assert_eq!(token_times(t), None, "{t}");
        }
    }

    #[test]
    fn skew_inside_the_noise_is_zero() {
        // Minted at 100.x s server time, seen between 100.2 and 100.4 s local time.
        assert_eq!(estimate_skew(100, 100_200, 100_400), 0);
        // The server is an hour ahead.
        assert_eq!(estimate_skew(3_700, 100_000, 100_000), 3_600_500);
        // The server is a minute behind.
        assert_eq!(estimate_skew(40, 100_000, 100_000), -59_500);
    }
}
