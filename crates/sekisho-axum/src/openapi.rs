//! The OpenAPI 3.1 document served at `GET /api/openapi.json`. Written by hand next to the code
//! it describes; a test keeps its path list equal to the router's.

pub const DOCUMENT: &str = include_str!("../openapi.json");

/// Every path the auth router serves (with trailing slash), in the document's order.
pub const PATHS: &[&str] = &[
    "/api/token/",
    "/api/token/refresh/",
    "/api/token/verify/",
    "/api/token/blacklist/",
    "/api/token/mfa/",
    "/api/auth/csrf/",
    "/api/auth/login/",
    "/api/auth/login/mfa/",
    "/api/auth/logout/",
    "/api/auth/me/",
    "/api/auth/password/",
    "/api/auth/sessions/",
    "/api/auth/sessions/{id}/",
    "/api/auth/logout-all/",
    "/api/auth/mfa/",
    "/api/auth/mfa/totp/",
    "/api/auth/mfa/totp/confirm/",
    "/api/auth/mfa/totp/disable/",
    "/api/auth/mfa/recovery-codes/",
    "/api/auth/mfa/step-up/",
    "/api/auth/mfa/passkeys/",
    "/api/auth/mfa/passkeys/register/begin/",
    "/api/auth/mfa/passkeys/register/finish/",
    "/api/auth/mfa/passkeys/{id}/",
    "/api/auth/login/passkey/begin/",
    "/api/auth/login/passkey/",
    "/api/auth/login/mfa/passkey/",
    "/api/token/passkey/begin/",
    "/api/token/passkey/",
    "/api/token/mfa/passkey/",
    "/api/auth/check/",
    "/api/authz/check/",
    "/api/authz/list/",
    "/api/admin/users/",
    "/api/admin/users/{id}/",
    "/api/admin/users/{id}/password/",
    "/api/admin/users/{id}/deactivate/",
    "/api/admin/users/{id}/logout-all/",
    "/api/admin/users/{id}/permissions/",
    "/api/admin/users/{id}/permissions/{codename}/",
    "/api/admin/groups/",
    "/api/admin/groups/{id}/",
    "/api/admin/groups/{id}/members/",
    "/api/admin/groups/{id}/members/{user_id}/",
    "/api/admin/groups/{id}/permissions/",
    "/api/admin/groups/{id}/permissions/{codename}/",
    "/api/admin/permissions/",
    "/api/admin/permissions/{codename}/",
    "/api/admin/object-permissions/",
    "/api/admin/object-permissions/revoke/",
    "/api/admin/audit/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/openapi.json",
    "/.well-known/jwks.json",
];

#[cfg(test)]
mod tests {
    #[test]
    fn document_is_openapi_31_and_lists_every_path() {
        let doc: serde_json::Value = serde_json::from_str(super::DOCUMENT).expect("valid JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let paths: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(paths, super::PATHS);
    }
}
