//! The command line (DESIGN §4, §5): honours `--config` and the environment, exits non-zero
//! with one line on failure, never prints a secret.
mod common;
use common::*;

use serde_json::json;
use std::process::Output;

#[track_caller]
fn assert_no_secret(out: &Output, secret: &str) {
    assert!(
        !stdout_of(out).contains(secret),
        "stdout shows the secret: {}",
        stdout_of(out)
    );
    assert!(
        !stderr_of(out).contains(secret),
        "stderr shows the secret: {}",
        stderr_of(out)
    );
}

#[tokio::test]
async fn user_create_with_password_stdin_and_with_password() {
    let off = Server::offline(&[]);
    let pw_a = "stdin pass phrase 1";
    let pw_b = "argv-pass-phrase-2";
    let out = off.cli(
        &["user", "create", "alice", "--password-stdin"],
        &format!("{pw_a}\n"),
    );
    let stdout = assert_success(&out);
    assert!(stdout.contains("alice"), "{stdout}");
    assert_no_secret(&out, pw_a);
    let out = off.cli(
        &[
            "user",
            "create",
            "bob",
            "--email",
            "bob@example.com",
            "--password",
            pw_b,
        ],
        "",
    );
    let stdout = assert_success(&out);
    assert!(stdout.contains("bob"), "{stdout}");
    assert_no_secret(&out, pw_b);
    // Windows line endings on stdin: only the line ending is removed.
    let out = off.cli(
        &["user", "create", "carol", "--password-stdin"],
        "crlf pass\r\nsecond line ignored\n",
    );
    assert_success(&out);

    // The passwords really are the ones given: log in over HTTP.
    let s = Server::start_in(off.dir.clone(), &[]);
    for (user, pw) in [("alice", pw_a), ("bob", pw_b), ("carol", "crlf pass")] {
        let r = s
            .post_nr("/api/token/", json!({"username": user, "password": pw}))
            .await;
        assert_eq!(r.status, 200, "{user}: {}", r.body);
    }
    let r = s
        .post_nr(
            "/api/token/",
            json!({"username": "carol", "password": "crlf pass\r"}),
        )
        .await;
    assert_eq!(r.status, 401);
    let (access, _) = s.token_pair("bob", pw_b).await;
    let me = s.get_bearer("/api/auth/me/", &access).await;
    assert_eq!(me.body["email"], "bob@example.com");
    assert_eq!(me.body["is_staff"], false);
}

#[test]
fn duplicate_user_fails_with_one_line() {
    let off = Server::offline(&[]);
    assert_success(&off.cli(
        &["user", "create", "alice", "--password", "first-password"],
        "",
    ));
    let out = off.cli(
        &["user", "create", "alice", "--password-stdin"],
        "second-password\n",
    );
    let line = assert_one_line_failure(&out);
    assert_no_secret(&out, "second-password");
    assert_no_secret(&out, "first-password");
    assert!(
        line.contains("alice") || line.to_lowercase().contains("exist"),
        "{line}"
    );
    let out = off.cli(
        &["user", "create", "alice", "--password", "third-password"],
        "",
    );
    assert_one_line_failure(&out);
    assert_no_secret(&out, "third-password");
}

#[test]
fn bad_create_input_fails_with_one_line() {
    let off = Server::offline(&[]);
    // No password on stdin.
    assert_one_line_failure(&off.cli(&["user", "create", "alice", "--password-stdin"], ""));
    assert_one_line_failure(&off.cli(&["user", "create", "alice", "--password-stdin"], "\n"));
    // A username Django would refuse.
    let out = off.cli(
        &["user", "create", "has space", "--password-stdin"],
        "some-password\n",
    );
    assert_one_line_failure(&out);
    assert_no_secret(&out, "some-password");
    // Nothing was created.
    let list = assert_success(&off.cli(&["user", "list"], ""));
    assert!(
        !list.contains("alice") && !list.contains("has space"),
        "{list}"
    );
}

#[test]
fn user_list_shows_users_and_flags() {
    let off = Server::offline(&[]);
    assert_success(&off.cli(
        &[
            "user",
            "create",
            "alice",
            "--email",
            "alice@example.com",
            "--password",
            "pw-alice-1",
        ],
        "",
    ));
    assert_success(&off.cli(
        &[
            "user",
            "create",
            "root",
            "--staff",
            "--superuser",
            "--password-stdin",
        ],
        "pw-root-1\n",
    ));
    assert_success(&off.cli(
        &["user", "create", "gone", "--password-stdin"],
        "pw-gone-1\n",
    ));
    assert_success(&off.cli(&["user", "deactivate", "gone"], ""));
    let out = off.cli(&["user", "list"], "");
    let stdout = assert_success(&out);
    for pw in ["pw-alice-1", "pw-root-1", "pw-gone-1", "argon2"] {
        assert!(!stdout.contains(pw), "user list shows {pw:?}: {stdout}");
    }
    let row = |name: &str| -> Vec<String> {
        stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}: {stdout}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    let header: Vec<&str> = stdout.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        vec!["id", "username", "email", "active", "staff", "superuser"]
    );
    assert_eq!(
        row("alice")[1..],
        ["alice", "alice@example.com", "true", "false", "false"]
    );
    assert_eq!(row("root")[2..], ["true", "true", "true"]);
    assert_eq!(row("gone")[2..], ["false", "false", "false"]);
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
}

#[test]
fn config_check_masks_the_signing_key() {
    let off = Server::offline(&[]);
    let key = "Sup3r-S3cret-Signing-Key-That-Must-Not-Leak-0042";
    let out = off.cli_env(
        &[("SEKISHO_JWT__SIGNING_KEY", key)],
        &["config", "check"],
        "",
    );
    let stdout = assert_success(&out);
    assert_no_secret(&out, key);
    assert!(stdout.contains("********"), "{stdout}");
    assert!(stdout.contains("signing_key = \"********\""), "{stdout}");
    assert!(stdout.contains("[jwt]"), "{stdout}");
    // The effective values, defaults included.
    assert!(
        stdout.contains("access_token_lifetime = \"5m\""),
        "{stdout}"
    );
    assert!(stdout.contains("algorithm = \"HS256\""), "{stdout}");
    assert!(stdout.contains("unauthenticated_status = 401"), "{stdout}");
}

#[test]
fn config_check_refuses_a_short_key_naming_it() {
    let off = Server::offline(&[]);
    let out = off.cli_env(
        &[("SEKISHO_JWT__SIGNING_KEY", "Qz9short")],
        &["config", "check"],
        "",
    );
    let line = assert_one_line_failure(&out);
    assert!(line.contains("jwt.signing_key"), "{line}");
    assert_no_secret(&out, "Qz9short");
    // Every other command refuses the same config the same way.
    let out = off.cli_env(
        &[("SEKISHO_JWT__SIGNING_KEY", "Qz9short")],
        &["user", "list"],
        "",
    );
    assert!(assert_one_line_failure(&out).contains("jwt.signing_key"));
    assert_no_secret(&out, "Qz9short");
}

#[test]
fn config_check_refuses_a_grace_over_the_cap() {
    let off = Server::offline(&[]);
    for v in ["2m", "61s", "3600"] {
        let out = off.cli_env(&[("SEKISHO_JWT__REUSE_GRACE", v)], &["config", "check"], "");
        let line = assert_one_line_failure(&out);
        assert!(line.contains("jwt.reuse_grace"), "{v}: {line}");
    }
    let out = off.cli_env(
        &[("SEKISHO_JWT__REUSE_GRACE", "60s")],
        &["config", "check"],
        "",
    );
    let stdout = assert_success(&out);
    assert!(
        stdout.contains("reuse_grace = \"1m\"") || stdout.contains("reuse_grace = \"60s\""),
        "{stdout}"
    );
}

#[test]
fn config_check_refuses_other_bad_values_with_one_line() {
    let off = Server::offline(&[]);
    for (k, v, name) in [
        (
            "SEKISHO_JWT__ACCESS_TOKEN_LIFETIME",
            "soon",
            "access_token_lifetime",
        ),
        (
            "SEKISHO_JWT__ROTATE_REFRESH_TOKENS",
            "maybe",
            "rotate_refresh_tokens",
        ),
        (
            "SEKISHO_AUTH__UNAUTHENTICATED_STATUS",
            "500",
            "unauthenticated_status",
        ),
        (
            "SEKISHO_JWT__ACESS_TOKEN_LIFETIME",
            "5m",
            "acess_token_lifetime",
        ),
    ] {
        let out = off.cli_env(&[(k, v)], &["config", "check"], "");
        let line = assert_one_line_failure(&out);
        assert!(line.contains(name), "{k}={v}: {line}");
    }
}

#[test]
fn config_file_is_honoured_and_the_environment_overrides_it() {
    let off = Server::offline(&[]);
    let path = off.dir.path().join("custom.toml");
    std::fs::write(
        &path,
        "[jwt]\naccess_token_lifetime = \"7m\"\nreuse_grace = \"3s\"\n",
    )
    .unwrap();
    let p = path.to_str().unwrap();

    let stdout = assert_success(&off.cli(&["--config", p, "config", "check"], ""));
    assert!(
        stdout.contains("access_token_lifetime = \"7m\""),
        "{stdout}"
    );
    assert!(stdout.contains("reuse_grace = \"3s\""), "{stdout}");
    // `--config` is global: after the subcommand too.
    let stdout = assert_success(&off.cli(&["config", "check", "--config", p], ""));
    assert!(
        stdout.contains("access_token_lifetime = \"7m\""),
        "{stdout}"
    );

    let out = off.cli_env(
        &[("SEKISHO_JWT__ACCESS_TOKEN_LIFETIME", "2s")],
        &["--config", p, "config", "check"],
        "",
    );
    let stdout = assert_success(&out);
    assert!(
        stdout.contains("access_token_lifetime = \"2s\""),
        "{stdout}"
    );
    assert!(!stdout.contains("\"7m\""), "{stdout}");
    assert!(stdout.contains("reuse_grace = \"3s\""), "{stdout}");

    // Without --config, ./sekisho.toml is read when present (the CLI runs in the temp dir).
    let plain = assert_success(&off.cli(&["config", "check"], ""));
    assert!(plain.contains("access_token_lifetime = \"5m\""), "{plain}");
    std::fs::write(
        off.dir.path().join("sekisho.toml"),
        "[jwt]\naccess_token_lifetime = \"9m\"\n",
    )
    .unwrap();
    let stdout = assert_success(&off.cli(&["config", "check"], ""));
    assert!(
        stdout.contains("access_token_lifetime = \"9m\""),
        "{stdout}"
    );
    // An explicit --config wins over ./sekisho.toml.
    let stdout = assert_success(&off.cli(&["--config", p, "config", "check"], ""));
    assert!(
        stdout.contains("access_token_lifetime = \"7m\""),
        "{stdout}"
    );
}

#[test]
fn bad_config_files_fail_with_one_line() {
    let off = Server::offline(&[]);
    let missing = off.dir.path().join("missing.toml");
    let line = assert_one_line_failure(&off.cli(
        &["--config", missing.to_str().unwrap(), "config", "check"],
        "",
    ));
    assert!(line.contains("missing.toml"), "{line}");

    let typo = off.dir.path().join("typo.toml");
    std::fs::write(&typo, "[jwt]\nacess_token_lifetime = \"5m\"\n").unwrap();
    let line = assert_one_line_failure(
        &off.cli(&["--config", typo.to_str().unwrap(), "config", "check"], ""),
    );
    assert!(line.contains("acess_token_lifetime"), "{line}");

    let broken = off.dir.path().join("broken.toml");
    std::fs::write(&broken, "[jwt\naccess_token_lifetime = \n").unwrap();
    assert_one_line_failure(&off.cli(
        &["--config", broken.to_str().unwrap(), "config", "check"],
        "",
    ));

    // A secret in a file that fails validation is not echoed either.
    let leaky = off.dir.path().join("leaky.toml");
    std::fs::write(&leaky, "[jwt]\nsigning_key = \"Xy7shortish\"\n").unwrap();
    let out = off.cli(
        &["--config", leaky.to_str().unwrap(), "config", "check"],
        "",
    );
    assert!(assert_one_line_failure(&out).contains("jwt.signing_key"));
    assert_no_secret(&out, "Xy7shortish");
}

#[test]
fn migrate_succeeds_and_is_idempotent() {
    let off = Server::offline(&[]);
    let db = off.data_dir().join("sekisho.db");
    let sqlite = backend() == "sqlite";
    assert!(!db.exists());
    let stdout = assert_success(&off.cli(&["migrate"], ""));
    assert!(!stdout.trim().is_empty());
    if sqlite {
        assert!(db.exists(), "migrate did not create {}", db.display());
    }
    assert_success(&off.cli(&["migrate"], ""));
    // The schema is usable.
    assert_success(&off.cli(
        &["user", "create", "alice", "--password-stdin"],
        "pw-after-migrate\n",
    ));
    assert!(assert_success(&off.cli(&["user", "list"], "")).contains("alice"));
}

#[test]
fn unknown_users_fail_with_one_line() {
    let off = Server::offline(&[]);
    assert_success(&off.cli(&["migrate"], ""));
    let out = off.cli(
        &["user", "set-password", "ghost", "--password-stdin"],
        "ghost-secret-pw\n",
    );
    let line = assert_one_line_failure(&out);
    assert!(line.contains("ghost"), "{line}");
    assert_no_secret(&out, "ghost-secret-pw");
    let line = assert_one_line_failure(&off.cli(&["user", "deactivate", "ghost"], ""));
    assert!(line.contains("ghost"), "{line}");
}

#[tokio::test]
async fn no_command_prints_a_password() {
    let s = Server::start(&[]);
    let pw1 = "first-Secret-Pw-9876";
    let pw2 = "second-Secret-Pw-5432";
    let mut outputs = vec![
        s.cli(
            &["user", "create", "alice", "--password-stdin"],
            &format!("{pw1}\n"),
        ),
        s.cli(&["user", "create", "bob", "--password", pw1], ""),
        s.cli(&["user", "list"], ""),
        s.cli(
            &["user", "set-password", "alice", "--password-stdin"],
            &format!("{pw2}\n"),
        ),
        s.cli(&["user", "deactivate", "bob"], ""),
        s.cli(&["config", "check"], ""),
        s.cli(&["migrate"], ""),
    ];
    for o in &outputs {
        assert_success(o);
    }
    // Failing commands too.
    outputs.push(s.cli(&["user", "create", "alice", "--password", pw2], ""));
    outputs.push(s.cli(
        &["user", "set-password", "nobody", "--password-stdin"],
        &format!("{pw2}\n"),
    ));
    for o in &outputs {
        assert_no_secret(o, pw1);
        assert_no_secret(o, pw2);
    }
    // set-password took effect on the running server.
    assert_eq!(
        s.post_nr("/api/token/", json!({"username": "alice", "password": pw2}))
            .await
            .status,
        200
    );
    assert_eq!(
        s.post_nr("/api/token/", json!({"username": "alice", "password": pw1}))
            .await
            .status,
        401
    );
    assert_eq!(
        s.post_nr("/api/token/", json!({"username": "bob", "password": pw1}))
            .await
            .status,
        401
    );
    // The generated signing key is not printed by config check.
    let key = std::fs::read_to_string(s.data_dir().join("jwt-signing.key")).unwrap();
    let key = key.trim();
    assert!(key.len() >= 32);
    for o in &outputs {
        assert_no_secret(o, key);
    }
}

#[test]
fn config_check_prints_the_policy_and_names_a_bad_rule() {
    let off = Server::offline(&[]);
    let good = off.dir.path().join("policy.toml");
    std::fs::write(
        &good,
        "default = \"staff\"\n[[rules]]\npath = \"/orders/{id}/\"\nmethods = [\"get\"]\nrequire = \"object:shop.view_order:{id}\"\n",
    )
    .unwrap();
    let out = off.cli_env(
        &[("SEKISHO_POLICY__FILE", good.to_str().unwrap())],
        &["config", "check"],
        "",
    );
    let stdout = assert_success(&out);
    assert!(
        stdout.contains("# rule 1: GET /orders/{id}/ -> object:shop.view_order:{id}:shop.order"),
        "{stdout}"
    );
    assert!(stdout.contains("# default -> staff"), "{stdout}");

    let bad = off.dir.path().join("bad.toml");
    std::fs::write(&bad, "[[rules]]\npath = \"/a/\"\nrequire = \"staf\"\n").unwrap();
    let out = off.cli_env(
        &[("SEKISHO_POLICY__FILE", bad.to_str().unwrap())],
        &["config", "check"],
        "",
    );
    let line = assert_one_line_failure(&out);
    assert!(
        line.contains("rules[1].require: unknown requirement \"staf\""),
        "{line}"
    );
    // The server refuses to start on it the same way.
    let out = off.cli_env(
        &[("SEKISHO_POLICY__FILE", bad.to_str().unwrap())],
        &["serve"],
        "",
    );
    assert!(assert_one_line_failure(&out).contains("rules[1].require"));
    let out = off.cli_env(
        &[("SEKISHO_POLICY__FILE", "/nonexistent/policy.toml")],
        &["config", "check"],
        "",
    );
    assert!(assert_one_line_failure(&out).contains("policy.file: cannot read"));
}
