//! Signing keys through the whole app, on a manual clock, on every backend: the grace window's
//! identical successor with every algorithm (also across a rotation and across instances),
//! rotation with its publish-ahead and verify tail, instances rotating at once, retirement,
//! and the JWKS.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use sekisho_core::token::managed::KeyState;
use sekisho_testing::harness::{Harness, PASSWORD};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

const ALGS: [&str; 4] = ["HS256", "EdDSA", "ES256", "RS256"];
const ASYMMETRIC: [&str; 3] = ["EdDSA", "ES256", "RS256"];
const MIN: u64 = 60;
const DAY: u64 = 86_400;

fn header(token: &str) -> Value {
    serde_json::from_slice(&B64.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
}

fn kid(token: &str) -> String {
    header(token)["kid"]
        .as_str()
        .expect("every token carries a kid")
        .to_string()
}

async fn start(alg: &str, extra: &[(&str, &str)]) -> Harness {
    let mut env = vec![
        ("SEKISHO_JWT__ALGORITHM", alg),
        ("SEKISHO_JWT__REUSE_GRACE", "30s"),
    ];
    env.extend_from_slice(extra);
    let h = Harness::start(&env).await;
    h.user("alice").await;
    h
}

async fn jwks_kids(h: &Harness) -> Vec<String> {
    let r = h
        .send(axum::http::Method::GET, "/.well-known/jwks.json", &[], None)
        .await;
    assert_eq!(r.status, 200);
    r.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn racing_refreshes_get_the_identical_successor_with_every_algorithm() {
    for alg in ALGS {
        let h = start(alg, &[]).await;
        let (access, refresh) = h.token_pair("alice", PASSWORD).await;
        assert_eq!(header(&access)["alg"], alg);
        let replies = futures::future::join_all((0..8).map(|_| h.refresh(&refresh))).await;
        let mut successors = BTreeSet::new();
        for r in &replies {
            assert_eq!(r.status, 200, "{alg}: {}", r.body);
            successors.insert(r.str("refresh"));
        }
        assert_eq!(successors.len(), 1, "{alg}: racing refreshes disagree");
        let successor = successors.into_iter().next().unwrap();
        // Another instance sharing the stores and keys hands out the same bytes.
        let other = h.start_sharing().await;
        let r = other.refresh(&refresh).await;
        assert_eq!(r.status, 200, "{alg}: {}", r.body);
        assert_eq!(
            r.str("refresh"),
            successor,
            "{alg}: the other instance disagrees"
        );
        // After the window the predecessor is reuse.
        h.advance(Duration::from_secs(31));
        assert_eq!(h.refresh(&refresh).await.status, 401, "{alg}");
    }
}

#[tokio::test]
async fn the_grace_successor_is_identical_across_a_key_rotation() {
    for alg in ASYMMETRIC {
        let h = start(alg, &[]).await;
        let other = h.start_sharing().await;
        let (first_access, refresh) = h.token_pair("alice", PASSWORD).await;
        let old_kid = kid(&first_access);
        let successor = h.refresh(&refresh).await.str("refresh");
        assert_eq!(kid(&successor), old_kid);
        // A new key signs from now on, here and (once it has re-read the keys) there.
        let next = h.auth.rotate_key(true).await.unwrap();
        assert_ne!(next.kid, old_kid);
        // `--now` means from the next whole second: tokens of this second keep their key.
        let r = h.refresh(&refresh).await;
        assert_eq!(r.str("refresh"), successor, "{alg}");
        assert_eq!(kid(&r.str("access")), old_kid, "{alg}");
        h.advance(Duration::from_secs(1));
        other.advance(Duration::from_secs(2));
        other.maintain_keys().await;
        let (access, _) = h.token_pair("alice", PASSWORD).await;
        assert_eq!(kid(&access), next.kid, "{alg}");
        let (access, _) = other.token_pair("alice", PASSWORD).await;
        assert_eq!(kid(&access), next.kid, "{alg}");
        // The racing refresh still gets the successor signed by the old key, byte for byte.
        for instance in [&h, &other] {
            let r = instance.refresh(&refresh).await;
            assert_eq!(r.status, 200, "{alg}: {}", r.body);
            assert_eq!(r.str("refresh"), successor, "{alg}");
            assert_eq!(kid(&r.str("access")), next.kid, "{alg}: new access tokens");
        }
        assert_eq!(
            h.get_bearer("/api/auth/me/", &first_access).await.status,
            200
        );
    }
}

#[tokio::test]
async fn a_new_key_is_published_ahead_signs_on_time_and_the_old_one_verifies_until_its_tokens_expire()
 {
    let h = start(
        "EdDSA",
        &[
            ("SEKISHO_JWT__KEY_ROTATION_PERIOD", "2d"),
            ("SEKISHO_JWT__KEY_PUBLISH_AHEAD", "10m"),
            ("SEKISHO_JWT__REFRESH_TOKEN_LIFETIME", "1d"),
        ],
    )
    .await;
    let (a0, _) = h.token_pair("alice", PASSWORD).await;
    let a = kid(&a0);
    assert_eq!(jwks_kids(&h).await, std::slice::from_ref(&a));
    h.advance(Duration::from_secs(2 * DAY - 11 * MIN));
    h.maintain_keys().await;
    assert_eq!(jwks_kids(&h).await.len(), 1, "not yet within publish-ahead");
    h.advance(Duration::from_secs(MIN));
    h.maintain_keys().await;
    let kids = jwks_kids(&h).await;
    assert_eq!(kids.len(), 2, "published ahead of signing");
    let b = kids[0].clone();
    assert_eq!(kids[1], a);
    let states: Vec<KeyState> = h
        .auth
        .list_keys()
        .await
        .unwrap()
        .iter()
        .map(|k| k.state)
        .collect();
    assert_eq!(states, [KeyState::Next, KeyState::Signing]);
    // Up to the end of the period the old key signs; from then on the new one.
    h.advance(Duration::from_secs(10 * MIN - 1));
    h.maintain_keys().await;
    let (_, last_of_a) = h.token_pair("alice", PASSWORD).await;
    assert_eq!(kid(&last_of_a), a);
    h.advance(Duration::from_secs(1));
    h.maintain_keys().await;
    let (first_of_b, _) = h.token_pair("alice", PASSWORD).await;
    assert_eq!(kid(&first_of_b), b);
    // The old key's last refresh token lives one more day, and verifies all of it.
    h.advance(Duration::from_secs(DAY - 2));
    h.maintain_keys().await;
    assert!(jwks_kids(&h).await.contains(&a));
    let r = h.refresh(&last_of_a).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(kid(&r.str("refresh")), b);
    // Then the old key goes: out of the JWKS, out of the store.
    h.advance(Duration::from_secs(3));
    h.maintain_keys().await;
    assert_eq!(jwks_kids(&h).await, std::slice::from_ref(&b));
    let listed: Vec<String> = h
        .auth
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(listed, [b]);
}

#[tokio::test]
async fn instances_rotating_at_once_make_one_key_and_switch_together() {
    let h = start(
        "ES256",
        &[
            ("SEKISHO_JWT__KEY_ROTATION_PERIOD", "1h"),
            ("SEKISHO_JWT__KEY_PUBLISH_AHEAD", "10m"),
        ],
    )
    .await;
    let others = [h.start_sharing().await, h.start_sharing().await];
    let step = |d: u64| {
        h.advance(Duration::from_secs(d));
        for o in &others {
            o.advance(Duration::from_secs(d));
        }
    };
    step(50 * MIN);
    for _ in 0..3 {
        futures::join!(
            h.maintain_keys(),
            others[0].maintain_keys(),
            others[1].maintain_keys()
        );
    }
    let keys = h.auth.list_keys().await.unwrap();
    assert_eq!(
        keys.len(),
        2,
        "one next key, however many instances rotated: {keys:?}"
    );
    step(10 * MIN);
    futures::join!(
        h.maintain_keys(),
        others[0].maintain_keys(),
        others[1].maintain_keys()
    );
    let mut kids = BTreeSet::new();
    for instance in [&h, &others[0], &others[1]] {
        kids.insert(kid(&instance.token_pair("alice", PASSWORD).await.0));
    }
    assert_eq!(kids.len(), 1, "every instance signs with the same key");
    assert_eq!(kids.first(), Some(&keys[0].kid));
}

#[tokio::test]
async fn a_token_naming_a_key_made_elsewhere_is_checked_after_re_reading_the_keys() {
    let h = start("EdDSA", &[]).await;
    let other = h.start_sharing().await;
    let next = h.auth.rotate_key(true).await.unwrap();
    h.advance(Duration::from_secs(1));
    let (access, _) = h.token_pair("alice", PASSWORD).await;
    assert_eq!(kid(&access), next.kid);
    other.advance(Duration::from_secs(2));
    let r = other.get_bearer("/api/auth/me/", &access).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn retired_keys_verify_until_their_tokens_expire_and_revoked_keys_verify_nothing() {
    let h = start("RS256", &[]).await;
    let (old_access, _) = h.token_pair("alice", PASSWORD).await;
    let old = kid(&old_access);
    let e = h.auth.retire_key(&old, false).await.unwrap_err();
    assert!(e.to_string().contains("signing now"), "{e}");
    let next = h.auth.rotate_key(true).await.unwrap();
    h.advance(Duration::from_secs(1));
    let info = h.auth.retire_key(&old, false).await.unwrap();
    assert_eq!(info.state, KeyState::Verifying);
    assert_eq!(h.get_bearer("/api/auth/me/", &old_access).await.status, 200);
    let info = h.auth.retire_key(&old, true).await.unwrap();
    assert_eq!(info.state, KeyState::Revoked);
    let r = h.get_bearer("/api/auth/me/", &old_access).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(jwks_kids(&h).await, std::slice::from_ref(&next.kid));
    let e = h.auth.retire_key("no-such-kid", false).await.unwrap_err();
    assert!(e.to_string().contains("no key"), "{e}");
}

#[tokio::test]
async fn the_jwks_lists_public_keys_with_cache_headers() {
    for alg in ALGS {
        let h = start(alg, &[]).await;
        let r = h
            .send(axum::http::Method::GET, "/.well-known/jwks.json", &[], None)
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=300"),
            "{alg}"
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
        let keys = r.body["keys"].as_array().unwrap();
        if alg == "HS256" {
            assert!(keys.is_empty(), "a secret is never published: {}", r.body);
            continue;
        }
        assert_eq!(keys.len(), 1, "{}", r.body);
        let k = &keys[0];
        let (access, _) = h.token_pair("alice", PASSWORD).await;
        assert_eq!(k["kid"], kid(&access).as_str());
        assert_eq!(
            (&k["alg"], &k["use"]),
            (&Value::from(alg), &Value::from("sig"))
        );
        let kty = match alg {
            "EdDSA" => "OKP",
            "ES256" => "EC",
            _ => "RSA",
        };
        assert_eq!(k["kty"], kty);
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(k.get(private).is_none(), "{alg}: {private} published");
        }
    }
}
