//! The administration verbs of the command line (`group`, `perm`, `user grant|revoke`,
//! `audit list`): the same rules and audit log as the API, one-line failures, no secrets.
mod common;
use common::*;

use serde_json::json;
use std::time::Duration;

/// The whitespace-separated cells of the row whose `col`-th cell is `key`.
fn row(stdout: &str, col: usize, key: &str) -> Vec<String> {
    stdout
        .lines()
        .find(|l| l.split_whitespace().nth(col) == Some(key))
        .unwrap_or_else(|| panic!("no row for {key}: {stdout}"))
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn header(stdout: &str) -> Vec<&str> {
    stdout.lines().next().unwrap().split_whitespace().collect()
}

#[test]
fn perm_and_group_verbs_manage_the_catalogue() {
    let off = Server::offline(&[]);
    let ok = |args: &[&str]| assert_success(&off.cli(args, ""));
    let fails = |args: &[&str]| assert_one_line_failure(&off.cli(args, ""));

    let out = ok(&[
        "perm",
        "create",
        "shop.view_order",
        "--name",
        "Can view order",
    ]);
    assert!(out.contains("shop.view_order"), "{out}");
    ok(&["perm", "create", "shop.change_order"]);
    let line = fails(&["perm", "create", "shop.view_order"]);
    assert!(line.contains("shop.view_order"), "{line}");
    let line = fails(&["perm", "create", "nodot"]);
    assert!(line.contains("app.action_model"), "{line}");
    let list = ok(&["perm", "list"]);
    assert_eq!(header(&list), ["id", "codename", "name"]);
    assert_eq!(
        row(&list, 1, "shop.view_order")[1..],
        ["shop.view_order", "Can", "view", "order"]
    );
    assert_eq!(row(&list, 1, "shop.change_order").len(), 2, "{list}");

    ok(&["user", "create", "alice", "--password", "pw-alice-1"]);
    let out = ok(&["group", "create", "editors"]);
    assert!(out.contains("editors"), "{out}");
    let line = fails(&["group", "create", "editors"]);
    assert!(line.contains("editors"), "{line}");
    let line = fails(&["group", "create", "   "]);
    assert!(line.contains("group name"), "{line}");
    let list = ok(&["group", "list"]);
    assert_eq!(header(&list), ["id", "name", "members", "permissions"]);
    assert_eq!(row(&list, 1, "editors")[2..], ["0", "-"]);

    assert!(ok(&["group", "add-member", "editors", "alice"]).contains("added"));
    assert!(ok(&["group", "add-member", "editors", "alice"]).contains("already"));
    assert!(ok(&["group", "grant", "editors", "shop.view_order"]).contains("granted"));
    assert!(ok(&["group", "grant", "editors", "shop.change_order"]).contains("granted"));
    assert!(ok(&["group", "grant", "editors", "shop.view_order"]).contains("already"));
    let list = ok(&["group", "list"]);
    assert_eq!(
        row(&list, 1, "editors")[2..],
        ["1", "shop.change_order,shop.view_order"]
    );
    assert!(ok(&["group", "revoke", "editors", "shop.change_order"]).contains("revoked"));
    assert!(ok(&["group", "revoke", "editors", "shop.change_order"]).contains("does not have"));
    let out = ok(&[
        "group",
        "grant",
        "editors",
        "shop.change_order",
        "--object-id",
        "9",
    ]);
    assert!(out.contains("shop.order:9"), "{out}");

    // Unknown names, one line each, naming what is missing.
    let line = fails(&["group", "add-member", "ghosts", "alice"]);
    assert!(line.contains("no group named \"ghosts\""), "{line}");
    let line = fails(&["group", "add-member", "editors", "ghost"]);
    assert!(line.contains("no user named \"ghost\""), "{line}");
    let line = fails(&["group", "grant", "editors", "nope.nope"]);
    assert!(line.contains("no permission \"nope.nope\""), "{line}");
    let line = fails(&["group", "delete", "ghosts"]);
    assert!(line.contains("ghosts"), "{line}");
    let line = fails(&["perm", "delete", "nope.nope"]);
    assert!(line.contains("nope.nope"), "{line}");
    fails(&["group"]);
    fails(&["perm", "create"]);

    assert!(ok(&["group", "remove-member", "editors", "alice"]).contains("removed"));
    assert!(ok(&["group", "remove-member", "editors", "alice"]).contains("not in"));
    ok(&["perm", "delete", "shop.view_order"]);
    let list = ok(&["group", "list"]);
    assert_eq!(row(&list, 1, "editors")[2..], ["0", "-"]);
    ok(&["group", "delete", "editors"]);
    assert_eq!(ok(&["group", "list"]).lines().count(), 1);
    let list = ok(&["perm", "list"]);
    assert!(!list.contains("shop.view_order"), "{list}");
}

#[tokio::test]
async fn user_grant_and_revoke_reach_the_running_server() {
    let s = Server::start(&[]);
    s.create_user("alice", PASSWORD);
    let ok = |args: &[&str]| assert_success(&s.cli(args, ""));
    let fails = |args: &[&str]| assert_one_line_failure(&s.cli(args, ""));
    ok(&["perm", "create", "shop.view_order"]);
    ok(&["perm", "create", "shop.change_order"]);
    ok(&["perm", "create", "shop.order"]);
    let settle = || std::thread::sleep(CACHE_BOUND + Duration::from_millis(100));

    let (access, _) = s.token_pair("alice", PASSWORD).await;
    let perms = async || {
        let r = s.get_bearer("/api/auth/me/", &access).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["permissions"].clone()
    };
    let out = ok(&["user", "grant", "alice", "shop.view_order"]);
    assert!(
        out.contains("granted \"shop.view_order\" to user \"alice\""),
        "{out}"
    );
    assert!(ok(&["user", "grant", "alice", "shop.view_order"]).contains("already"));
    settle();
    assert_eq!(perms().await, json!(["shop.view_order"]));
    assert!(ok(&["user", "revoke", "alice", "shop.view_order"]).contains("revoked"));
    settle();
    assert_eq!(perms().await, json!([]));

    // Per object: the type from the codename, or given.
    let check = async |id: &str| {
        let r = s
            .send(
                reqwest::Method::POST,
                "/api/authz/check/",
                &[
                    ("authorization", &format!("Bearer {access}")),
                    ("content-type", "application/json"),
                ],
                Some(
                    json!({"permission": "shop.change_order", "object_id": id})
                        .to_string()
                        .as_bytes(),
                ),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["allowed"].clone()
    };
    let out = ok(&[
        "user",
        "grant",
        "alice",
        "shop.change_order",
        "--object-id",
        "42",
    ]);
    assert!(out.contains("on shop.order:42"), "{out}");
    let out = ok(&[
        "user",
        "grant",
        "alice",
        "shop.change_order",
        "--object",
        "shop.order:7",
    ]);
    assert!(out.contains("on shop.order:7"), "{out}");
    settle();
    assert_eq!(check("42").await, true);
    assert_eq!(check("7").await, true);
    assert_eq!(check("8").await, false);
    let out = ok(&[
        "user",
        "revoke",
        "alice",
        "shop.change_order",
        "--object-id",
        "42",
    ]);
    assert!(out.contains("revoked"), "{out}");
    settle();
    assert_eq!(check("42").await, false);
    assert_eq!(check("7").await, true);

    // Failures: one line naming the problem.
    let line = fails(&["user", "grant", "ghost", "shop.view_order"]);
    assert!(line.contains("no user named \"ghost\""), "{line}");
    let line = fails(&["user", "grant", "alice", "nope.nope"]);
    assert!(line.contains("no permission \"nope.nope\""), "{line}");
    let line = fails(&["user", "grant", "alice", "shop.order", "--object-id", "1"]);
    assert!(line.contains("--object TYPE:ID"), "{line}");
    let line = fails(&[
        "user",
        "grant",
        "alice",
        "shop.change_order",
        "--object",
        "nocolon",
    ]);
    assert!(line.contains("TYPE:ID"), "{line}");
    let line = fails(&[
        "user",
        "grant",
        "alice",
        "shop.change_order",
        "--object",
        "bad type:1",
    ]);
    assert!(line.contains("object type"), "{line}");
    let line = fails(&[
        "user",
        "grant",
        "alice",
        "shop.change_order",
        "--object-id",
        "a/b",
    ]);
    assert!(line.contains("object id"), "{line}");
    fails(&[
        "user",
        "grant",
        "alice",
        "shop.change_order",
        "--object",
        "shop.order:1",
        "--object-id",
        "1",
    ]);
    fails(&["user", "grant", "alice"]);
}

#[tokio::test]
async fn audit_list_shows_cli_and_api_actions_newest_first() {
    let s = Server::start(&[]);
    let out = s.cli(
        &["user", "create", "root", "--superuser", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert_success(&out);
    assert_success(&s.cli(&["group", "create", "ops"], ""));
    assert_success(&s.cli(&["perm", "create", "shop.view_order"], ""));
    std::thread::sleep(CACHE_BOUND + Duration::from_millis(100));
    let (root, _) = s.token_pair("root", PASSWORD).await;
    let r = s
        .send(
            reqwest::Method::POST,
            "/api/admin/groups/",
            &[
                ("authorization", &format!("Bearer {root}")),
                ("content-type", "application/json"),
            ],
            Some(br#"{"name": "from-api"}"#),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    let out = s.cli(&["audit", "list"], "");
    let stdout = assert_success(&out);
    assert_eq!(
        header(&stdout),
        ["id", "at", "actor", "action", "target", "from", "detail"]
    );
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let actions: Vec<&str> = rows.iter().map(|r| r[3]).collect();
    assert_eq!(
        actions,
        [
            "group.create",
            "permission.create",
            "group.create",
            "user.create"
        ],
        "{stdout}"
    );
    let cli_actor = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    assert_eq!(rows[0][2], "root");
    assert_eq!(rows[0][5], "127.0.0.1");
    assert!(rows[0][6..].join(" ").contains("from-api"), "{stdout}");
    for r in &rows[1..] {
        assert_eq!(r[2], cli_actor, "{stdout}");
        assert_eq!(r[5], "-", "{stdout}");
    }
    // `at` is UTC, to the second.
    let at = rows[0][1];
    assert!(
        at.len() == 20 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
        "{at}"
    );
    assert!(!stdout.contains(PASSWORD));

    let stdout = assert_success(&s.cli(&["audit", "list", "--limit", "1"], ""));
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(stdout.contains("from-api"), "{stdout}");
    for bad in ["0", "1001", "x"] {
        let line = assert_one_line_failure(&s.cli(&["audit", "list", "--limit", bad], ""));
        assert!(line.contains("limit"), "{line}");
    }
}
