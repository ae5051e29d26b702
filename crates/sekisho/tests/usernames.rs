//! Usernames are normalised as Django does (NFKC, case kept) on creation and at login, and the
//! login throttle counts per account by the same rule.
mod common;
use common::*;
use serde_json::json;

#[tokio::test]
async fn a_lookalike_cannot_be_created_next_to_an_account_nor_reach_another() {
    let s = Server::start(&[]);
    s.create_user("alice", PASSWORD);
    s.create_user("fi", PASSWORD);
    for lookalike in ["ａｌｉｃｅ", "ﬁ"] {
        let out = s.cli(&["user", "create", lookalike, "--password", PASSWORD], "");
        assert!(
            !out.status.success(),
            "{lookalike} was created next to its original"
        );
    }
    // The fullwidth spelling logs in to `alice` itself, as with Django's forms.
    let r = s
        .post_json(
            "/api/token/",
            json!({"username": "ａｌｉｃｅ", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let me = s.get_bearer("/api/auth/me/", &r.str("access")).await;
    assert_eq!(me.body["username"], "alice");
    // A name created in a compatibility form is stored normalised.
    s.create_user("ｂｏｂ", PASSWORD);
    let r = s
        .post_json(
            "/api/token/",
            json!({"username": "bob", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn failures_against_one_account_do_not_lock_its_case_variant() {
    let s = Server::start(&[("SEKISHO_THROTTLE__MAX_FAILURES_PER_ACCOUNT", "3")]);
    s.create_user("alice", PASSWORD);
    s.create_user("Alice", PASSWORD);
    for _ in 0..3 {
        let r = s
            .post_json(
                "/api/token/",
                json!({"username": "alice", "password": "wrong"}),
            )
            .await;
        assert_eq!(r.status, 401);
    }
    let locked = s
        .post_json(
            "/api/token/",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(locked.status, 429);
    let other = s
        .post_json(
            "/api/token/",
            json!({"username": "Alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(other.status, 200, "{}", other.body);
}

#[tokio::test]
async fn a_cross_script_lookalike_is_refused_by_the_cli_and_the_admin_api() {
    let s = Server::start(&[]);
    let out = s.cli(
        &["user", "create", "root", "--superuser", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    s.create_user("alice", PASSWORD);
    s.create_user("mary", PASSWORD);
    // A Cyrillic а in front; every letter Cyrillic; `rn` for `m`. NFKC leaves all three alone.
    let lookalikes = [
        "\u{430}lice",
        "\u{430}\u{4cf}\u{456}\u{441}\u{435}",
        "rnary",
    ];
    for name in lookalikes {
        let out = s.cli(&["user", "create", name, "--password", PASSWORD], "");
        assert!(
            !out.status.success(),
            "{name:?} was created next to its original"
        );
        assert!(
            stderr_of(&out).contains("already exists"),
            "{}",
            stderr_of(&out)
        );
    }
    let (access, _) = s.token_pair("root", PASSWORD).await;
    for name in lookalikes {
        let body = json!({"username": name, "password": PASSWORD}).to_string();
        let r = s
            .send(
                reqwest::Method::POST,
                "/api/admin/users/",
                &[
                    ("authorization", &format!("Bearer {access}")),
                    ("content-type", "application/json"),
                ],
                Some(body.as_bytes()),
            )
            .await;
        assert_eq!(r.status, 409, "{name:?}: {}", r.body);
    }
    // None of them exists, so none can be logged in to.
    let r = s
        .post_json(
            "/api/token/",
            json!({"username": "\u{430}lice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    // Names that merely differ are still free, and case still makes another name.
    s.create_user("alicia", PASSWORD);
    s.create_user("Alice", PASSWORD);
}
