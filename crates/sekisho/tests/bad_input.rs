//! Hostile and malformed input (DESIGN §3, §3.1): DRF's 4xx shapes, simplejwt's token messages,
//! never a 5xx. Black-box over real HTTP.
mod common;
use common::*;

use reqwest::Method;
use serde_json::{Value, json};

const KEY: &str = "bad-input-suite-signing-key-0123456789-abcdef";
const NO_ACCOUNT: &str = "No active account found with the given credentials";

/// A server with a known signing key and a 2048-byte body limit.
fn start() -> Server {
    start_with(&[("SEKISHO_SERVER__MAX_BODY_SIZE", "2048")])
}

/// A server with a known signing key (and the default 64 KiB body limit unless overridden).
fn start_with(env: &[(&str, &str)]) -> Server {
    let mut all = vec![("SEKISHO_JWT__SIGNING_KEY", KEY)];
    all.extend_from_slice(env);
    let s = Server::start(&all);
    s.create_user("alice", PASSWORD);
    s
}

async fn post_raw(s: &Server, path: &str, content_type: Option<&str>, body: &[u8]) -> Reply {
    let headers: Vec<(&str, &str)> = content_type
        .map(|c| vec![("content-type", c)])
        .unwrap_or_default();
    s.send_nr(Method::POST, path, &headers, Some(body)).await
}

#[track_caller]
fn assert_400(r: &Reply, body: &Value) {
    assert_eq!(r.status, 400, "body: {}", r.body);
    assert_eq!(&r.body, body);
    assert_json(r);
}

#[tokio::test]
async fn malformed_json_is_a_parse_error() {
    let s = start();
    for (path, body) in [
        ("/api/token/", &b"{\"username\": "[..]),
        ("/api/token/", b"{username: 'alice'}"),
        ("/api/token/refresh/", b"not json"),
        ("/api/token/verify/", b"{\"token\": \"x\",}"),
        ("/api/token/blacklist/", b"\xff\xfe{}"),
    ] {
        let r = post_raw(&s, path, Some("application/json"), body).await;
        assert_eq!(
            r.status,
            400,
            "{path} {:?}: {}",
            String::from_utf8_lossy(body),
            r.body
        );
        assert_json(&r);
        let obj = r.body.as_object().expect("object body");
        assert_eq!(obj.len(), 1, "{}", r.body);
        let detail = r.body["detail"].as_str().expect("detail");
        assert!(detail.starts_with("JSON parse error"), "{detail:?}");
    }
}

#[tokio::test]
async fn non_object_json_bodies_are_non_field_errors() {
    let s = start();
    for (body, kind) in [
        ("[1, 2]", "list"),
        ("\"alice\"", "str"),
        ("42", "int"),
        ("1.5", "float"),
        ("true", "bool"),
    ] {
        for path in [
            "/api/token/",
            "/api/token/refresh/",
            "/api/token/verify/",
            "/api/token/blacklist/",
        ] {
            let r = post_raw(&s, path, Some("application/json"), body.as_bytes()).await;
            assert_400(
                &r,
                &json!({"non_field_errors": [format!("Invalid data. Expected a dictionary, but got {kind}.")]}),
            );
        }
    }
}

#[tokio::test]
async fn missing_null_and_blank_fields_follow_drf() {
    let s = start();
    let required = "This field is required.";
    assert_400(
        &s.post_nr("/api/token/", json!({})).await,
        &json!({"username": [required], "password": [required]}),
    );
    assert_400(
        &s.post_nr("/api/token/", json!({"username": "alice"})).await,
        &json!({"password": [required]}),
    );
    assert_400(
        &s.post_nr("/api/token/", json!({"password": PASSWORD}))
            .await,
        &json!({"username": [required]}),
    );
    assert_400(
        &s.post_nr("/api/token/refresh/", json!({})).await,
        &json!({"refresh": [required]}),
    );
    assert_400(
        &s.post_nr("/api/token/verify/", json!({"refresh": "x"}))
            .await,
        &json!({"token": [required]}),
    );
    assert_400(
        &s.post_nr("/api/token/blacklist/", json!({"token": "x"}))
            .await,
        &json!({"refresh": [required]}),
    );
    // An empty body is an empty object, as in DRF.
    assert_400(
        &post_raw(&s, "/api/token/", Some("application/json"), b"").await,
        &json!({"username": [required], "password": [required]}),
    );
    assert_400(
        &post_raw(&s, "/api/token/refresh/", None, b"").await,
        &json!({"refresh": [required]}),
    );

    let not_null = "This field may not be null.";
    assert_400(
        &s.post_nr("/api/token/", json!({"username": null, "password": null}))
            .await,
        &json!({"username": [not_null], "password": [not_null]}),
    );
    assert_400(
        &s.post_nr("/api/token/refresh/", json!({"refresh": null}))
            .await,
        &json!({"refresh": [not_null]}),
    );
    assert_400(
        &s.post_nr("/api/token/verify/", json!({"token": null}))
            .await,
        &json!({"token": [not_null]}),
    );

    let blank = "This field may not be blank.";
    assert_400(
        &s.post_nr("/api/token/", json!({"username": "", "password": ""}))
            .await,
        &json!({"username": [blank], "password": [blank]}),
    );
    // The username is trimmed (as DRF's CharField does), so whitespace only is blank.
    assert_400(
        &s.post_nr(
            "/api/token/",
            json!({"username": "   ", "password": PASSWORD}),
        )
        .await,
        &json!({"username": [blank]}),
    );
    assert_400(
        &s.post_nr("/api/token/refresh/", json!({"refresh": " "}))
            .await,
        &json!({"refresh": [blank]}),
    );
    assert_400(
        &s.post_nr("/api/token/blacklist/", json!({"refresh": ""}))
            .await,
        &json!({"refresh": [blank]}),
    );
    // The password is not trimmed: whitespace only is a (wrong) password, not a blank one.
    assert_401(
        &s.post_nr(
            "/api/token/",
            json!({"username": "alice", "password": "   "}),
        )
        .await,
        &json!({"detail": NO_ACCOUNT}),
    );
}

#[tokio::test]
async fn non_string_values_are_not_valid_strings() {
    let s = start();
    let bad = "Not a valid string.";
    for v in [
        json!(["alice"]),
        json!({"a": 1}),
        json!(true),
        json!(false),
        json!([]),
    ] {
        assert_400(
            &s.post_nr("/api/token/", json!({"username": v, "password": v}))
                .await,
            &json!({"username": [bad], "password": [bad]}),
        );
        assert_400(
            &s.post_nr("/api/token/refresh/", json!({"refresh": v}))
                .await,
            &json!({"refresh": [bad]}),
        );
        assert_400(
            &s.post_nr("/api/token/verify/", json!({"token": v})).await,
            &json!({"token": [bad]}),
        );
        assert_400(
            &s.post_nr("/api/token/blacklist/", json!({"refresh": v}))
                .await,
            &json!({"refresh": [bad]}),
        );
    }
}

#[tokio::test]
async fn numeric_username_unknown_fields_and_form_bodies() {
    let s = start();
    s.create_user("12345", PASSWORD);
    let r = s
        .post_nr(
            "/api/token/",
            json!({"username": 12345, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        s.get_bearer("/api/auth/me/", &r.str("access")).await.body["username"],
        "12345"
    );

    // Unknown fields are ignored.
    let r = s
        .post_nr(
            "/api/token/",
            json!({"username": "alice", "password": PASSWORD, "remember": true, "x": [1]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Form bodies, as DRF's FormParser accepts them.
    let form = format!("username=alice&password={}", PASSWORD.replace(' ', "+"));
    let r = post_raw(
        &s,
        "/api/token/",
        Some("application/x-www-form-urlencoded"),
        form.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let refresh = r.str("refresh");
    let r = post_raw(
        &s,
        "/api/token/refresh",
        Some("application/x-www-form-urlencoded; charset=utf-8"),
        format!("refresh={refresh}").as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post_raw(
        &s,
        "/api/token/",
        Some("application/x-www-form-urlencoded"),
        b"username=alice&password=nope",
    )
    .await;
    assert_401(&r, &json!({"detail": NO_ACCOUNT}));
    let r = post_raw(
        &s,
        "/api/token/",
        Some("application/x-www-form-urlencoded"),
        b"username=alice",
    )
    .await;
    assert_400(&r, &json!({"password": ["This field is required."]}));
    // JSON with a charset parameter.
    let body = json!({"username": "alice", "password": PASSWORD}).to_string();
    let r = post_raw(
        &s,
        "/api/token/",
        Some("application/json; charset=utf-8"),
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn other_media_types_are_415() {
    let s = start();
    let body = json!({"username": "alice", "password": PASSWORD}).to_string();
    for ct in [
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
    ] {
        let r = post_raw(&s, "/api/token/", Some(ct), body.as_bytes()).await;
        assert_eq!(r.status, 415, "{ct}: {}", r.body);
        assert_json(&r);
        let media = ct.split(';').next().unwrap();
        let detail = r.body["detail"].as_str().expect("detail");
        assert!(
            detail.starts_with(&format!("Unsupported media type \"{media}")),
            "{detail:?}"
        );
        assert!(detail.ends_with("\" in request."), "{detail:?}");
    }
    let r = post_raw(&s, "/api/token/", Some("text/plain"), body.as_bytes()).await;
    assert_eq!(
        r.body,
        json!({"detail": "Unsupported media type \"text/plain\" in request."})
    );
    // A body with no content type at all.
    let r = post_raw(&s, "/api/token/", None, body.as_bytes()).await;
    assert_eq!(r.status, 415, "{}", r.body);
    assert_json(&r);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let s = start();
    // Just under the 2048-byte limit still works (unknown padding field is ignored).
    let pad = "p".repeat(1900);
    let body = json!({"username": "alice", "password": PASSWORD, "pad": pad}).to_string();
    assert!(body.len() < 2048);
    let r = post_raw(&s, "/api/token/", Some("application/json"), body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let too_large =
        json!({"username": "alice", "password": PASSWORD, "pad": "p".repeat(4000)}).to_string();
    for path in [
        "/api/token/",
        "/api/token/refresh/",
        "/api/token/verify/",
        "/api/token/blacklist/",
    ] {
        let r = post_raw(&s, path, Some("application/json"), too_large.as_bytes()).await;
        assert_eq!(r.status, 413, "{path}: {}", r.body);
        assert_eq!(r.body, json!({"detail": "Request body is too large."}));
        assert_json(&r);
    }
    // The limit is inclusive: exactly 2048 bytes is read, 2049 is refused.
    let exact = |n: usize| {
        let base = json!({"username": "alice", "password": PASSWORD, "pad": ""}).to_string();
        let pad = "q".repeat(n - base.len());
        let b = json!({"username": "alice", "password": PASSWORD, "pad": pad}).to_string();
        assert_eq!(b.len(), n);
        b
    };
    let r = post_raw(
        &s,
        "/api/token/",
        Some("application/json"),
        exact(2048).as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post_raw(
        &s,
        "/api/token/",
        Some("application/json"),
        exact(2049).as_bytes(),
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.body);
    // The same without a Content-Length (chunked): the limit holds while reading.
    let chunk = "p".repeat(3000);
    let payload = format!("{{\"username\":\"alice\",\"password\":\"x\",\"pad\":\"{chunk}\"}}");
    let req = format!(
        "POST /api/token/ HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{payload}\r\n0\r\n\r\n",
        s.authority(),
        payload.len()
    );
    let (status, head, body) = s.raw_http(req.as_bytes()).await;
    assert_eq!(status, 413, "{head}");
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    assert_eq!(
        body,
        json!({"detail": "Request body is too large."}),
        "{head}"
    );
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow() {
    let s = start();
    for path in [
        "/api/token/",
        "/api/token",
        "/api/token/refresh/",
        "/api/token/verify",
        "/api/token/blacklist/",
    ] {
        for method in [Method::GET, Method::PUT, Method::DELETE, Method::PATCH] {
            let r = s.send_nr(method.clone(), path, &[], None).await;
            assert_eq!(r.status, 405, "{method} {path}: {}", r.body);
            assert_eq!(r.header("allow"), Some("POST"), "{method} {path}");
            assert_eq!(
                r.body,
                json!({"detail": format!("Method \"{method}\" not allowed.")})
            );
            assert_json(&r);
        }
    }
    let r = s
        .send_nr(
            Method::POST,
            "/api/auth/me/",
            &[("content-type", "application/json")],
            Some(b"{}"),
        )
        .await;
    assert_eq!(r.status, 405, "{}", r.body);
    assert_eq!(r.body, json!({"detail": "Method \"POST\" not allowed."}));
    let allow = r.header("allow").unwrap_or("");
    assert!(allow.contains("GET"), "Allow: {allow:?}");
    assert!(!allow.contains("POST"), "Allow: {allow:?}");
}

#[tokio::test]
async fn unknown_paths_are_json_404() {
    let s = start();
    for (method, path) in [
        (Method::GET, "/nope"),
        (Method::GET, "/api/"),
        (Method::POST, "/api/token/obtain/"),
        (Method::GET, "/api/auth/me/extra/"),
        (Method::DELETE, "/.env"),
    ] {
        let r = s.send_nr(method.clone(), path, &[], None).await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.body);
        assert_eq!(r.body, json!({"detail": "Not found."}));
        assert_json(&r);
    }
}

// ---------------------------------------------------------------------------------------------
// Forged and broken tokens.
// ---------------------------------------------------------------------------------------------

const HS256: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

fn sign(header: &str, payload: &Value) -> String {
    hs256_raw(header, &payload.to_string(), KEY.as_bytes())
}

fn hs512(header: &str, payload: &Value, key: &[u8]) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let input = format!("{}.{}", b64url(header), b64url(payload.to_string()));
    let mut mac = Hmac::<sha2::Sha512>::new_from_slice(key).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64url(mac.finalize().into_bytes()))
}

fn with(base: &Value, key: &str, v: Value) -> Value {
    let mut m = base.clone();
    m[key] = v;
    m
}

fn without(base: &Value, key: &str) -> Value {
    let mut m = base.clone();
    m.as_object_mut().unwrap().remove(key);
    m
}

/// Every forgery of `base` (a genuine token's claims) with simplejwt's message for it.
fn forgeries(genuine: &str, base: &Value) -> Vec<(&'static str, String, &'static str)> {
    let now = unix_now();
    let (h, rest) = genuine.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let none_unsigned = format!(
        "{}.{}.",
        b64url(r#"{"alg":"none"}"#),
        b64url(base.to_string())
    );
    let none_typ = format!(
        "{}.{}.",
        b64url(r#"{"alg":"none","typ":"JWT"}"#),
        b64url(base.to_string())
    );
    let tampered = format!(
        "{h}.{}.{sig}",
        b64url(with(base, "user_id", json!("2")).to_string())
    );
    let flipped_sig = {
        let mut t = genuine.to_string();
        let last = t.pop().unwrap();
        t.push(if last == 'A' { 'B' } else { 'A' });
        t
    };
    let padded = sign(HS256, &with(base, "pad", json!("x".repeat(10 * 1024))));
    vec![
        (
            "alg none, empty signature",
            none_unsigned,
            "Token is invalid",
        ),
        (
            "alg none with typ, empty signature",
            none_typ,
            "Token is invalid",
        ),
        (
            "alg none, HS256 signature",
            hs256_raw(r#"{"alg":"none"}"#, &base.to_string(), KEY.as_bytes()),
            "Token is invalid",
        ),
        (
            "wrong key",
            hs256_raw(
                HS256,
                &base.to_string(),
                b"some-other-key-some-other-key-some-other-key",
            ),
            "Token is invalid",
        ),
        (
            "HS512 header signed with HS512",
            hs512(r#"{"alg":"HS512","typ":"JWT"}"#, base, KEY.as_bytes()),
            "Token is invalid",
        ),
        (
            "HS512 header signed with HS256",
            sign(r#"{"alg":"HS512","typ":"JWT"}"#, base),
            "Token is invalid",
        ),
        (
            "RS256 header",
            sign(r#"{"alg":"RS256","typ":"JWT"}"#, base),
            "Token is invalid",
        ),
        (
            "jku header",
            sign(
                r#"{"alg":"HS256","typ":"JWT","jku":"https://evil.example/jwks.json"}"#,
                base,
            ),
            "Token is invalid",
        ),
        (
            "jwk header",
            sign(
                r#"{"alg":"HS256","typ":"JWT","jwk":{"kty":"oct","k":"ZXZpbC1rZXktZXZpbC1rZXktZXZpbC1rZXktZXZpbA"}}"#,
                base,
            ),
            "Token is invalid",
        ),
        (
            "x5u header",
            sign(
                r#"{"alg":"HS256","typ":"JWT","x5u":"https://evil.example/cert.pem"}"#,
                base,
            ),
            "Token is invalid",
        ),
        (
            "crit header",
            sign(r#"{"alg":"HS256","typ":"JWT","crit":["exp"]}"#, base),
            "Token is invalid",
        ),
        ("tampered payload", tampered, "Token is invalid"),
        ("flipped signature", flipped_sig, "Token is invalid"),
        (
            "two parts",
            genuine.rsplit_once('.').unwrap().0.to_string(),
            "Token is invalid",
        ),
        ("four parts", format!("{genuine}.x"), "Token is invalid"),
        ("not base64", "!!!.@@@.###".to_string(), "Token is invalid"),
        (
            "payload not JSON",
            hs256_raw(HS256, "not json", KEY.as_bytes()),
            "Token is invalid",
        ),
        (
            "payload a JSON array",
            hs256_raw(HS256, "[1,2]", KEY.as_bytes()),
            "Token is invalid",
        ),
        (
            "missing exp",
            sign(HS256, &without(base, "exp")),
            "Token has no 'exp' claim",
        ),
        (
            "missing jti",
            sign(HS256, &without(base, "jti")),
            "Token has no id",
        ),
        (
            "missing token_type",
            sign(HS256, &without(base, "token_type")),
            "Token has no type",
        ),
        (
            "unknown token_type",
            sign(HS256, &with(base, "token_type", json!("sliding"))),
            "Token has wrong type",
        ),
        (
            "nbf in the future",
            sign(HS256, &with(base, "nbf", json!(now + 600))),
            "Token is invalid",
        ),
        (
            "iat in the future",
            sign(HS256, &with(base, "iat", json!(now + 600))),
            "Token is invalid",
        ),
        (
            "exp as a string",
            sign(HS256, &with(base, "exp", json!((now + 600).to_string()))),
            "Token is invalid",
        ),
        (
            "exp null",
            sign(HS256, &with(base, "exp", Value::Null)),
            "Token is invalid",
        ),
        (
            "exp in the past",
            sign(HS256, &with(base, "exp", json!(now - 10))),
            "Token is expired",
        ),
        ("10 KB token", padded, "Token is invalid"),
    ]
}

#[tokio::test]
async fn forged_tokens_are_refused_everywhere_with_simplejwt_messages() {
    // Default body limit: a 10 KB token must reach the token check, not the body limit.
    let s = start_with(&[]);
    let (access, refresh) = s.token_pair("alice", PASSWORD).await;
    let (ca, cr) = (claims(&access), claims(&refresh));

    // Controls: the same claims, hand-signed with the right key, are accepted — so every refusal
    // below is caused by its forgery alone.
    let ok = s
        .post_nr("/api/token/verify/", json!({"token": sign(HS256, &ca)}))
        .await;
    assert_eq!((ok.status.as_u16(), &ok.body), (200, &json!({})));
    let ok = s.get_bearer("/api/auth/me/", &sign(HS256, &ca)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    for (name, token, message) in forgeries(&access, &ca) {
        let r = s
            .post_nr("/api/token/verify/", json!({"token": token}))
            .await;
        assert_eq!(r.status, 401, "verify, {name}: {}", r.body);
        assert_eq!(r.body, token_error(message), "verify, {name}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"api\""),
            "verify, {name}"
        );

        let r = s.get_bearer("/api/auth/me/", &token).await;
        assert_eq!(r.status, 401, "bearer, {name}: {}", r.body);
        assert_eq!(r.body, bearer_error(message), "bearer, {name}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"api\""),
            "bearer, {name}"
        );
    }
    for (name, token, message) in forgeries(&refresh, &cr) {
        for path in ["/api/token/refresh/", "/api/token/blacklist/"] {
            let r = s.post_nr(path, json!({"refresh": token})).await;
            assert_eq!(r.status, 401, "{path}, {name}: {}", r.body);
            assert_eq!(r.body, token_error(message), "{path}, {name}");
            assert_eq!(
                r.header("www-authenticate"),
                Some("Bearer realm=\"api\""),
                "{path}, {name}"
            );
        }
    }
    // None of the forgeries touched the family: the genuine refresh token still rotates (done
    // last, hand-signed, as the refresh control).
    let r = s
        .post_nr("/api/token/refresh/", json!({"refresh": sign(HS256, &cr)}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn bearer_tokens_without_a_usable_user() {
    let s = start_with(&[]);
    let (access, _) = s.token_pair("alice", PASSWORD).await;
    let ca = claims(&access);
    let no_uid = sign(HS256, &without(&ca, "user_id"));
    assert_401(
        &s.get_bearer("/api/auth/me/", &no_uid).await,
        &json!({"detail": "Token contained no recognizable user identification", "code": "token_not_valid"}),
    );
    for uid in [json!("424242"), json!(424242), json!("not-a-number")] {
        let t = sign(HS256, &with(&ca, "user_id", uid.clone()));
        assert_401(
            &s.get_bearer("/api/auth/me/", &t).await,
            &json!({"detail": "User not found", "code": "user_not_found"}),
        );
    }
}

#[tokio::test]
async fn oversized_and_non_utf8_authorization_headers() {
    let s = start_with(&[]);
    let (access, _) = s.token_pair("alice", PASSWORD).await;
    let ca = claims(&access);
    // A 20 KB Authorization header carrying a validly signed (but oversized) token.
    let big = sign(HS256, &with(&ca, "pad", json!("y".repeat(20 * 1024))));
    let header = format!("Bearer {big}");
    assert!(header.len() > 20 * 1024);
    let r = s.get_bearer("/api/auth/me/", &big).await;
    assert_401(&r, &bearer_error("Token is invalid"));
    // 20 KB of junk.
    let junk = format!("Bearer {}", "z".repeat(20 * 1024));
    let r = s
        .send_nr(
            Method::GET,
            "/api/auth/me/",
            &[("authorization", &junk)],
            None,
        )
        .await;
    assert_401(&r, &bearer_error("Token is invalid"));

    let bad_header = json!({
        "detail": "Authorization header must contain two space-delimited values",
        "code": "bad_authorization_header",
    });
    let mut raw = b"Bearer ".to_vec();
    raw.extend_from_slice(b"\xff\xfe\x80abc");
    let r = s.get_with_authorization_bytes("/api/auth/me/", &raw).await;
    assert_401(&r, &bad_header);
    let mut raw = b"Bearer ".to_vec();
    raw.extend_from_slice(access.as_bytes());
    raw.push(0xe9);
    let r = s.get_with_authorization_bytes("/api/auth/me/", &raw).await;
    assert_401(&r, &bad_header);
    // The same request with the genuine token still works.
    assert_eq!(s.get_bearer("/api/auth/me/", &access).await.status, 200);
}

#[tokio::test]
async fn non_utf8_bytes_under_another_scheme_are_ignored_like_any_other_scheme() {
    // DESIGN §3.5: only a header with a scheme sekisho knows (`Bearer`) switches to JWT; any
    // other scheme is ignored, whatever bytes follow it (simplejwt compares the scheme bytes and
    // returns None for other schemes). So this request is simply anonymous.
    let s = start_with(&[]);
    let not_provided = json!({"detail": "Authentication credentials were not provided."});
    let r = s
        .get_with_authorization_bytes("/api/auth/me/", b"Basic YWxpY2U6c2VjcmV0")
        .await;
    assert_401(&r, &not_provided);
    let r = s
        .get_with_authorization_bytes("/api/auth/me/", b"Digest realm=\"caf\xe9\"")
        .await;
    assert_401(&r, &not_provided);
    let r = s
        .get_with_authorization_bytes("/api/auth/me/", b"Basic \xe9t\xe9")
        .await;
    assert_401(&r, &not_provided);
}

#[tokio::test]
async fn passwords_are_not_trimmed() {
    let s = start();
    let out = s.cli(
        &["user", "create", "spacey", "--password-stdin"],
        " pw x \n",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let r = s
        .post_nr(
            "/api/token/",
            json!({"username": "spacey", "password": " pw x "}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for wrong in ["pw x", " pw x", "pw x ", " pw x  "] {
        let r = s
            .post_nr(
                "/api/token/",
                json!({"username": "spacey", "password": wrong}),
            )
            .await;
        assert_401(&r, &json!({"detail": NO_ACCOUNT}));
    }
    // The username, unlike the password, is trimmed.
    let r = s
        .post_nr(
            "/api/token/",
            json!({"username": "  spacey ", "password": " pw x "}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}
