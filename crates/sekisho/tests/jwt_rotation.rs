//! Refresh rotation that cannot race (DESIGN §3.2), black-box over real HTTP.
mod common;
use common::*;

use serde_json::json;
use std::collections::HashSet;
use std::time::Instant;

const REFRESH: &str = "/api/token/refresh/";

fn started_with_user(env: &[(&str, &str)]) -> Server {
    let s = Server::start(env);
    s.create_user("alice", PASSWORD);
    s
}

async fn refresh(s: &Server, token: &str) -> Reply {
    s.post_nr(REFRESH, json!({"refresh": token})).await
}

/// Refreshes and expects success; returns the new refresh token.
#[track_caller]
fn ok_refresh(r: &Reply) -> String {
    assert_eq!(r.status, 200, "refresh failed: {}", r.body);
    r.str("refresh")
}

/// Fires `n` refreshes of `token` at once over one client; returns the replies.
async fn parallel_refreshes(s: &Server, token: &str, n: usize) -> Vec<Reply> {
    let client = client_no_redirect();
    let url = s.url(REFRESH);
    let body = json!({"refresh": token}).to_string();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (client, url, body, barrier) =
                (client.clone(), url.clone(), body.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                send(
                    &client,
                    reqwest::Method::POST,
                    &url,
                    &[("content-type", "application/json")],
                    Some(body.as_bytes()),
                )
                .await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_refreshes_all_succeed_and_agree() {
    let s = started_with_user(&[]);
    let (_, r0) = s.token_pair("alice", PASSWORD).await;
    let replies = parallel_refreshes(&s, &r0, 32).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert!(
        statuses.iter().all(|&c| c == 200),
        "statuses: {statuses:?}; first failure: {:?}",
        replies
            .iter()
            .find(|r| r.status != 200)
            .map(|r| r.body.clone())
    );
    let refreshes: HashSet<String> = replies.iter().map(|r| r.str("refresh")).collect();
    assert_eq!(
        refreshes.len(),
        1,
        "parallel refreshes minted {} different successors",
        refreshes.len()
    );
    let successor = refreshes.into_iter().next().unwrap();
    assert_ne!(successor, r0);
    // Every access token handed out works.
    for r in replies.iter().take(4) {
        assert_eq!(
            s.get_bearer("/api/auth/me/", &r.str("access")).await.status,
            200
        );
    }
    // The agreed successor rotates normally, and its own successor too.
    let next = ok_refresh(&refresh(&s, &successor).await);
    assert_ne!(next, successor);
    let after = ok_refresh(&refresh(&s, &next).await);
    assert_ne!(after, next);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_grace_exactly_one_parallel_refresh_wins() {
    let s = started_with_user(&[("SEKISHO_JWT__REUSE_GRACE", "0")]);
    let (_, r0) = s.token_pair("alice", PASSWORD).await;
    let replies = parallel_refreshes(&s, &r0, 32).await;
    let ok: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status == 401).collect();
    assert_eq!(
        ok.len(),
        1,
        "statuses: {:?}",
        replies
            .iter()
            .map(|r| r.status.as_u16())
            .collect::<Vec<_>>()
    );
    assert_eq!(refused.len(), 31);
    for r in &refused {
        assert_eq!(r.body, token_error("Token is blacklisted"));
        assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"api\""));
    }
    // The losers presented a rotated-away token: that is reuse, so the winner's family is gone.
    let winner = ok[0].str("refresh");
    assert_401(
        &refresh(&s, &winner).await,
        &token_error("Token is blacklisted"),
    );
}

#[tokio::test]
async fn sequential_reuse_without_grace_revokes_the_family() {
    let s = started_with_user(&[("SEKISHO_JWT__REUSE_GRACE", "0")]);
    let (_, a) = s.token_pair("alice", PASSWORD).await;
    let b = ok_refresh(&refresh(&s, &a).await);
    assert_401(&refresh(&s, &a).await, &token_error("Token is blacklisted"));
    assert_401(&refresh(&s, &b).await, &token_error("Token is blacklisted"));
}

#[tokio::test]
async fn only_the_immediate_predecessor_gets_grace() {
    let s = started_with_user(&[]);

    // Family 1: A→B→C, then the immediate predecessor B (within the grace window) gets C.
    let (_, a) = s.token_pair("alice", PASSWORD).await;
    let b = ok_refresh(&refresh(&s, &a).await);
    let c = ok_refresh(&refresh(&s, &b).await);
    let again = refresh(&s, &b).await;
    assert_eq!(
        ok_refresh(&again),
        c,
        "the predecessor in grace must get the same successor"
    );
    assert_eq!(
        s.get_bearer("/api/auth/me/", &again.str("access"))
            .await
            .status,
        200
    );
    // ... and the family keeps going from C.
    let d = ok_refresh(&refresh(&s, &c).await);

    // Family 2: A→B→C, then A (two rotations old) is reuse: the family is revoked.
    let (access2, a2) = s.token_pair("alice", PASSWORD).await;
    let b2 = ok_refresh(&refresh(&s, &a2).await);
    let c2 = ok_refresh(&refresh(&s, &b2).await);
    let blacklisted = token_error("Token is blacklisted");
    assert_401(&refresh(&s, &a2).await, &blacklisted);
    assert_401(&refresh(&s, &c2).await, &blacklisted);
    assert_401(&refresh(&s, &b2).await, &blacklisted);
    assert_401(
        &s.post_nr("/api/token/verify/", json!({"token": c2})).await,
        &blacklisted,
    );
    assert_401(
        &s.post_nr("/api/token/verify/", json!({"token": access2}))
            .await,
        &blacklisted,
    );

    // Family 1 was not affected by family 2's revocation.
    ok_refresh(&refresh(&s, &d).await);
}

#[tokio::test]
async fn families_survive_a_restart() {
    let mut s = started_with_user(&[]);
    // Family 1 rotated twice before the restart; family 2 fresh.
    let (_, a1) = s.token_pair("alice", PASSWORD).await;
    let b1 = ok_refresh(&refresh(&s, &a1).await);
    let c1 = ok_refresh(&refresh(&s, &b1).await);
    let (access2, a2) = s.token_pair("alice", PASSWORD).await;
    // Family 3 blacklisted before the restart.
    let (_, a3) = s.token_pair("alice", PASSWORD).await;
    assert_eq!(
        s.post_nr("/api/token/blacklist/", json!({"refresh": a3}))
            .await
            .status,
        200
    );

    s.restart();

    // Tokens signed before the restart are still valid (the key persisted).
    assert_eq!(s.get_bearer("/api/auth/me/", &access2).await.status, 200);
    let b2 = ok_refresh(&refresh(&s, &a2).await);
    ok_refresh(&refresh(&s, &b2).await);
    let d1 = ok_refresh(&refresh(&s, &c1).await);
    // A token rotated away before the restart is still seen as reuse after it.
    let blacklisted = token_error("Token is blacklisted");
    assert_401(&refresh(&s, &a1).await, &blacklisted);
    assert_401(&refresh(&s, &d1).await, &blacklisted);
    // The logout done before the restart still holds.
    assert_401(&refresh(&s, &a3).await, &blacklisted);
}

#[tokio::test]
async fn a_thousand_sequential_refreshes() {
    let s = started_with_user(&[]);
    let (_, mut current) = s.token_pair("alice", PASSWORD).await;
    let client = client_no_redirect();
    let url = s.url(REFRESH);
    let start = Instant::now();
    for _ in 0..1000 {
        let body = json!({"refresh": current}).to_string();
        let r = send(
            &client,
            reqwest::Method::POST,
            &url,
            &[("content-type", "application/json")],
            Some(body.as_bytes()),
        )
        .await;
        current = ok_refresh(&r);
    }
    let elapsed = start.elapsed();
    println!(
        "1000 sequential refreshes took {:.3} s ({:.3} ms each)",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    ok_refresh(&refresh(&s, &current).await);
}

/// Fires `n` refreshes of `token` at once, alternating between two instances.
async fn parallel_refreshes_across(s1: &Server, s2: &Server, token: &str, n: usize) -> Vec<Reply> {
    let client = client_no_redirect();
    let body = json!({"refresh": token}).to_string();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let url = if i % 2 == 0 {
                s1.url(REFRESH)
            } else {
                s2.url(REFRESH)
            };
            let (client, body, barrier) = (client.clone(), body.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                send(
                    &client,
                    reqwest::Method::POST,
                    &url,
                    &[("content-type", "application/json")],
                    Some(body.as_bytes()),
                )
                .await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_is_atomic_across_instances_sharing_storage() {
    let s1 = started_with_user(&[]);
    let s2 = Server::start_in(s1.dir.clone(), &[]);
    let (_, r0) = s1.token_pair("alice", PASSWORD).await;
    let replies = parallel_refreshes_across(&s1, &s2, &r0, 32).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert!(statuses.iter().all(|&c| c == 200), "statuses: {statuses:?}");
    let refreshes: HashSet<String> = replies.iter().map(|r| r.str("refresh")).collect();
    assert_eq!(
        refreshes.len(),
        1,
        "two instances minted {} successors",
        refreshes.len()
    );
    let successor = refreshes.into_iter().next().unwrap();
    // Rotate on one instance, then reuse is detected on the other.
    let next = ok_refresh(&refresh(&s2, &successor).await);
    let (_, other) = s2.token_pair("alice", PASSWORD).await;
    // Revocation is seen by every instance at once.
    assert_eq!(
        s1.post_nr("/api/token/blacklist/", json!({"refresh": next}))
            .await
            .status,
        200
    );
    assert_401(
        &refresh(&s2, &next).await,
        &token_error("Token is blacklisted"),
    );
    assert_401(
        &s2.post_nr("/api/token/verify/", json!({"token": next}))
            .await,
        &token_error("Token is blacklisted"),
    );
    ok_refresh(&refresh(&s1, &other).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_grace_exactly_one_wins_across_instances() {
    let s1 = started_with_user(&[("SEKISHO_JWT__REUSE_GRACE", "0")]);
    let s2 = Server::start_in(s1.dir.clone(), &[("SEKISHO_JWT__REUSE_GRACE", "0")]);
    let (_, r0) = s1.token_pair("alice", PASSWORD).await;
    let replies = parallel_refreshes_across(&s1, &s2, &r0, 32).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|&&c| c == 200).count(),
        1,
        "statuses: {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&c| c == 401).count(),
        31,
        "statuses: {statuses:?}"
    );
}

#[tokio::test]
async fn grace_survives_a_restart() {
    let mut s = started_with_user(&[("SEKISHO_JWT__REUSE_GRACE", "30s")]);
    let (_, a) = s.token_pair("alice", PASSWORD).await;
    let b = ok_refresh(&refresh(&s, &a).await);
    s.restart();
    // The predecessor, presented within the window after the restart, still gets B.
    assert_eq!(ok_refresh(&refresh(&s, &a).await), b);
    ok_refresh(&refresh(&s, &b).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_logins_and_refreshes_of_many_families_all_succeed() {
    let s = started_with_user(&[]);
    let client = client_no_redirect();
    let login = json!({"username": "alice", "password": PASSWORD}).to_string();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (client, url, body) = (client.clone(), s.url("/api/token/"), login.clone());
            tokio::spawn(async move {
                send(
                    &client,
                    reqwest::Method::POST,
                    &url,
                    &[("content-type", "application/json")],
                    Some(body.as_bytes()),
                )
                .await
            })
        })
        .collect();
    let mut refreshes = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "parallel login: {}", r.body);
        refreshes.push(r.str("refresh"));
    }
    let families: HashSet<String> = refreshes
        .iter()
        .map(|t| claims(t)["jti"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(families.len(), 32);
    let tasks: Vec<_> = refreshes
        .iter()
        .map(|t| {
            let (client, url, body) = (
                client.clone(),
                s.url(REFRESH),
                json!({"refresh": t}).to_string(),
            );
            tokio::spawn(async move {
                send(
                    &client,
                    reqwest::Method::POST,
                    &url,
                    &[("content-type", "application/json")],
                    Some(body.as_bytes()),
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(
            r.status, 200,
            "parallel refresh of distinct families: {}",
            r.body
        );
    }
}
