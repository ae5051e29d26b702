//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP): HMAC-SHA-1, 6 digits, 30 s
//! steps — the only parameters every authenticator app agrees on. Pure functions: the caller
//! passes the time and keeps the last used step (replay protection lives in the store).

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// Seconds per time step.
pub const STEP_SECS: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the current one (clock drift between phone and server).
pub const SKEW_STEPS: i64 = 1;
/// Secret length: 160 bits, the HMAC-SHA-1 output size RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;

/// The time step holding `unix_secs`.
pub fn step_at(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// HOTP (RFC 4226 §5.3) with `digits` digits, as a number.
fn hotp_value(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = (h[h.len() - 1] & 0x0f) as usize;
    let bin = u32::from_be_bytes([
        h[offset] & 0x7f,
        h[offset + 1],
        h[offset + 2],
        h[offset + 3],
    ]);
    bin % 10u32.pow(digits)
}

/// The code for `step`, zero-padded to [`DIGITS`].
pub fn code_at_step(secret: &[u8], step: i64) -> String {
    format!(
        "{:0width$}",
        hotp_value(secret, step.max(0) as u64, DIGITS),
        width = DIGITS as usize
    )
}

/// Whether `code` has the shape of a code: exactly [`DIGITS`] ASCII digits.
pub fn plausible_code(code: &str) -> bool {
    code.len() == DIGITS as usize && code.bytes().all(|b| b.is_ascii_digit())
}

/// The step `code` is valid for at `unix_secs`, within ±[`SKEW_STEPS`], and strictly after
/// `last_used` (a code — a step — counts once; an older step after a newer one is refused too,
/// as RFC 6238 §5.2 recommends). Every candidate is compared in constant time.
pub fn matching_step(
    secret: &[u8],
    code: &str,
    unix_secs: i64,
    last_used: Option<i64>,
) -> Option<i64> {
    if !plausible_code(code) {
        return None;
    }
    let now = step_at(unix_secs);
    let mut found = None;
    for step in now - SKEW_STEPS..=now + SKEW_STEPS {
        let ok: bool = code_at_step(secret, step)
            .as_bytes()
            .ct_eq(code.as_bytes())
            .into();
        if ok && last_used.is_none_or(|last| step > last) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding (what `otpauth://` URIs carry).
pub fn base32(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Reads [`base32`] back (upper or lower case, no padding); `None` for anything else.
pub fn from_base32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = BASE32.iter().position(|&b| b == c.to_ascii_uppercase())? as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
        buf &= (1 << bits) - 1;
    }
    Some(out)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The key URI authenticator apps import (Google Authenticator's `otpauth://` format).
pub fn otpauth_uri(issuer: &str, account: &str, secret_b32: &str) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        percent(issuer),
        percent(account),
        percent(issuer),
    )
}

/// The URI as a QR code, an SVG document (for an `<img src="data:image/svg+xml,…">`).
pub fn qr_svg(uri: &str) -> Option<String> {
    let code =
        qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows: the 20-byte ASCII secret, 8-digit codes.
    #[test]
    fn rfc6238_appendix_b_sha1_vectors() {
        let secret = b"12345678901234567890";
        for (t, want) in [
            (59i64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp_value(secret, step_at(t) as u64, 8), want, "T = {t}");
        }
        // The same rows at 6 digits are the last six.
        assert_eq!(code_at_step(secret, step_at(59)), "287082");
        assert_eq!(code_at_step(secret, step_at(1111111109)), "081804");
    }

    /// RFC 4226 Appendix D: HOTP counters 0 and 9.
    #[test]
    fn rfc4226_hotp_vectors() {
        let secret = b"12345678901234567890";
        assert_eq!(hotp_value(secret, 0, 6), 755224);
        assert_eq!(hotp_value(secret, 9, 6), 520489);
    }

    #[test]
    fn one_step_of_skew_either_way_and_no_more() {
        let secret = b"12345678901234567890";
        let t = 1_111_111_111;
        let now = step_at(t);
        for d in -1..=1 {
            let code = code_at_step(secret, now + d);
            assert_eq!(matching_step(secret, &code, t, None), Some(now + d));
        }
        for d in [-2, 2] {
            let code = code_at_step(secret, now + d);
            assert_eq!(matching_step(secret, &code, t, None), None);
        }
    }

    #[test]
    fn a_used_step_and_older_ones_are_refused() {
        let secret = b"12345678901234567890";
        let t = 1_111_111_111;
        let now = step_at(t);
        let code = code_at_step(secret, now);
        assert_eq!(matching_step(secret, &code, t, Some(now)), None);
        assert_eq!(matching_step(secret, &code, t, Some(now - 1)), Some(now));
        let older = code_at_step(secret, now - 1);
        assert_eq!(matching_step(secret, &older, t, Some(now)), None);
    }

    #[test]
    fn only_six_ascii_digits_are_codes() {
        for bad in [
            "",
            "12345",
            "1234567",
            "12345a",
            "١٢٣٤٥٦",
            "12 345",
            "123\u{0}56",
        ] {
            assert!(!plausible_code(bad), "{bad:?}");
            assert_eq!(matching_step(b"k", bad, 0, None), None);
        }
    }

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foob"), "MZXW6YQ");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(
            base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        for data in [&b""[..], b"f", b"foob", b"foobar", &[0xff; 20]] {
            assert_eq!(from_base32(&base32(data)).as_deref(), Some(data));
        }
        assert_eq!(from_base32("MZXW6YQ!"), None);
    }

    #[test]
    fn the_uri_names_issuer_account_and_parameters() {
        let uri = otpauth_uri("Acme Corp", "alice@example.com", "ABC");
        assert_eq!(
            uri,
            "otpauth://totp/Acme%20Corp:alice%40example.com?secret=ABC&issuer=Acme%20Corp&algorithm=SHA1&digits=6&period=30"
        );
        let svg = qr_svg(&uri).expect("a QR code");
        assert!(svg.contains("<svg"), "{}", &svg[..80.min(svg.len())]);
    }
}
