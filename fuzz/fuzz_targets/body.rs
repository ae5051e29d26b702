//! Request bodies: `body::parse` (JSON or form, by content type), then the field readers every
//! endpoint uses, with the field names of the login, token, password and profile endpoints,
//! and the rendering of whatever error comes out.
//!
//! Input: the first line is the `Content-Type` (an empty line means none), the rest the body.

#![no_main]

use axum::response::IntoResponse;
use libfuzzer_sys::fuzz_target;
use sekisho_axum::ApiError;
use sekisho_axum::body::{self, Input, Trim};

fuzz_target!(|data: &[u8]| {
    let (content_type, bytes) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    // A header value reaches the parser as lossy UTF-8, as `Input::from_request` makes it.
    let content_type = String::from_utf8_lossy(content_type);
    let content_type = (!content_type.is_empty()).then_some(&*content_type);
    let input = match body::parse(content_type, bytes) {
        Ok(map) => Input(map),
        Err(e) => return render(e),
    };
    check(input.strings([("username", Trim::Yes), ("password", Trim::No)]));
    check(input.strings([("refresh", Trim::Yes)]));
    check(input.strings([("token", Trim::Yes)]));
    check(input.strings([("old_password", Trim::No), ("new_password", Trim::No)]));
    for name in ["email", "first_name", "last_name", "object_id", "after"] {
        for trim in [Trim::Yes, Trim::No] {
            match input.optional_string(name, trim) {
                Ok(Some(v)) => check::<1>(Ok([v])),
                Ok(None) => assert!(!input.0.contains_key(name)),
                Err(e) => render(e),
            }
        }
    }
});

/// A value handed to a handler is never blank and never carries a NUL.
fn check<const N: usize>(fields: Result<[String; N], ApiError>) {
    match fields {
        Ok(values) => {
            for v in values {
                assert!(!v.is_empty() && !v.contains('\0'), "{v:?}");
            }
        }
        Err(e) => render(e),
    }
}

fn render(e: ApiError) {
    let response = e.into_response();
    assert!(response.status().is_client_error(), "{}", response.status());
}
