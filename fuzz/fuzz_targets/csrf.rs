//! The CSRF check under `Auth::check_csrf` and `Auth::csrf_token_valid`: `CsrfKey::check` (the
//! cookie/header double submit plus the session binding), `CsrfKey::is_valid` and
//! `check_origin`.
//!
//! Input lines: cookie, header, binding, origin, the server's own origin (a missing line is a
//! missing cookie or header; the rest default to empty).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sekisho_core::session::csrf::check_origin;
use sekisho_core::session::{CsrfFailure, CsrfKey};
use std::sync::LazyLock;

static KEY: LazyLock<CsrfKey> = LazyLock::new(|| CsrfKey::derive(b"sekisho fuzz csrf secret"));

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let cookie = lines.next();
    let header = lines.next();
    let binding = lines.next().unwrap_or_default();
    let origin = lines.next().unwrap_or_default();
    let own = lines.next().unwrap_or_default();
    let key = &*KEY;

    match key.check(cookie, header, binding) {
        Ok(()) => {
            assert_eq!(cookie, header);
            assert!(key.is_valid(header.unwrap(), binding));
        }
        Err(CsrfFailure::CookieNotSet) => assert!(cookie.is_none_or(str::is_empty)),
        Err(CsrfFailure::TokenMissing) => assert!(header.is_none_or(str::is_empty)),
        Err(CsrfFailure::TokenIncorrect) => {
            assert!(cookie != header || !key.is_valid(header.unwrap(), binding));
        }
        Err(CsrfFailure::BadOrigin(_)) => unreachable!("the token check never judges origins"),
    }

    // A token minted for this binding passes for it and for no other binding.
    let minted = key.mint(binding);
    assert!(key.is_valid(&minted, binding));
    assert_eq!(key.check(Some(&minted), Some(&minted), binding), Ok(()));
    for other in [cookie, header].into_iter().flatten() {
        if other != binding {
            assert!(!key.is_valid(&minted, other), "{minted} valid for {other:?}");
        }
    }
    if let Some(c) = cookie.filter(|c| !c.is_empty() && *c != minted) {
        assert_eq!(
            key.check(Some(c), Some(&minted), binding),
            Err(CsrfFailure::TokenIncorrect)
        );
    }

    let trusted: Vec<String> = lines.map(String::from).collect();
    if let Err(CsrfFailure::BadOrigin(sent)) = check_origin(origin, own, &trusted) {
        assert_eq!(sent, origin);
        assert!(!origin.trim_end_matches('/').eq_ignore_ascii_case(own));
    }
});
