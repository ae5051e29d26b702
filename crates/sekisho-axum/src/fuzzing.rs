//! Entry points for the fuzz targets in `fuzz/`: the request parsers that are private to this
//! crate, reached through the functions real requests go through (nothing here parses on its
//! own). Hidden from the docs and not part of the API; it may change with any release.

use crate::extract::{csrf, identity};
use crate::state::HttpSettings;
use axum::http::HeaderMap;
use sekisho_core::AuthError;

/// An `Authorization` header value as identity resolution reads it: `Ok(Some(token))` for a
/// bearer token, `Ok(None)` for a scheme sekisho ignores, `Err` for a malformed bearer header.
pub fn authorization(value: &[u8]) -> Result<Option<&str>, AuthError> {
    Ok(match identity::parse_authorization(value)? {
        identity::AuthorizationHeader::Bearer(token) => Some(token),
        identity::AuthorizationHeader::Other => None,
    })
}

/// The CSRF cookie and header a request presents, as the CSRF check reads them.
pub fn csrf_presented<'h>(
    headers: &'h HeaderMap,
    http: &HttpSettings,
) -> (Option<&'h str>, Option<&'h str>) {
    csrf::presented(headers, http)
}
