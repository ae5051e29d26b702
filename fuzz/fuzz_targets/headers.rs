//! The request headers sekisho reads before any handler: `Authorization` (bearer or not), and
//! the `Cookie` headers that carry the session id, the CSRF cookie and the refresh cookie.
//!
//! The whole input is one `Authorization` value (raw bytes, as a peer may send them); each of
//! its lines is also a `Cookie` header, and the last line an `X-CSRFToken` header, when HTTP
//! allows them as header values.

#![no_main]

use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use sekisho_axum::HttpSettings;
use sekisho_axum::{cookies, fuzzing};
use sekisho_core::Config;
use sekisho_core::session::{hash_session_id, plausible_session_id};
use std::sync::LazyLock;

/// The default settings, with the refresh cookie turned on so all three cookies are read.
static HTTP: LazyLock<HttpSettings> = LazyLock::new(|| {
    let mut config = Config::default();
    config.jwt.refresh_cookie = true;
    HttpSettings::from_config(&config)
});

fuzz_target!(|data: &[u8]| {
    authorization(data);
    let http = &*HTTP;
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(data) {
        headers.insert(AUTHORIZATION, v);
    }
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    for line in &lines {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, v);
        }
    }
    if let Some(Ok(v)) = lines.last().map(|l| HeaderValue::from_bytes(l)) {
        headers.insert(http.csrf_header.clone(), v);
    }
    if let Some(v) = headers.get(AUTHORIZATION) {
        authorization(v.as_bytes());
    }

    let refresh = http.refresh_cookie.as_deref().unwrap();
    for name in [http.session_cookie.as_str(), &http.csrf_cookie, refresh] {
        if let Some(value) = cookies::get(&headers, name) {
            assert!(!value.contains(';'), "{name}={value:?}");
            assert!(
                headers
                    .get_all(COOKIE)
                    .iter()
                    .any(|h| h.to_str().is_ok_and(|h| h.contains(value))),
                "{name}={value:?} is in no Cookie header"
            );
        }
    }
    // What the session lookup does with the cookie before it reaches a store.
    if let Some(id) = cookies::get(&headers, &http.session_cookie)
        && plausible_session_id(id)
    {
        let hash = hash_session_id(id);
        assert!(plausible_session_id(&hash));
        assert_ne!(hash, id);
    }
    let (cookie, header) = fuzzing::csrf_presented(&headers, http);
    assert_eq!(cookie, cookies::get(&headers, &http.csrf_cookie));
    if let Some(h) = header {
        assert!(h.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)));
    }
});

/// A bearer token is one run of visible ASCII taken from the header as sent.
fn authorization(value: &[u8]) {
    if let Ok(Some(token)) = fuzzing::authorization(value) {
        assert!(!token.is_empty());
        assert!(token.bytes().all(|b| b.is_ascii_graphic()), "{token:?}");
        assert!(
            value.windows(token.len()).any(|w| w == token.as_bytes()),
            "{token:?} is not in the header"
        );
    }
}
