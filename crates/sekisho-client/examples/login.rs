//! A small CLI on sekisho-client: logs in (once — the tokens are kept in a 0600 file, and the
//! next run reuses them), shows who is logged in, makes 20 concurrent API calls that share the
//! token (and any refresh), and logs out with `--logout`.
//!
//! ```sh
//! cargo run -p sekisho-client --example login -- http://127.0.0.1:8000 alice
//! # Password: (read from stdin, only when no login is stored)
//! cargo run -p sekisho-client --example login -- http://127.0.0.1:8000 alice --logout
//! ```
//!
//! The token file is `sekisho-tokens.json` in the current directory, or `$SEKISHO_TOKEN_FILE`.

use sekisho_client::{Client, FileStore};
use std::path::{Path, PathBuf};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let logout = args.iter().any(|a| a == "--logout");
    let positional: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let [base, username] = positional[..] else {
        eprintln!("usage: login BASE_URL USERNAME [--logout]");
        std::process::exit(2);
    };
    let token_file = std::env::var_os("SEKISHO_TOKEN_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("sekisho-tokens.json"));
    let password = || {
        eprint!("Password: ");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    };
    match run(base, username, &token_file, logout, password).await {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

/// The example's work, returning what it prints. `password` is asked only when no login is
/// stored.
pub async fn run(
    base: &str,
    username: &str,
    token_file: &Path,
    logout: bool,
    password: impl FnOnce() -> std::io::Result<String>,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let client = Client::builder(base)
        .storage(FileStore::new(token_file))
        .build()?;
    let mut out = Vec::new();
    if logout {
        client.logout().await?;
        out.push("logged out".to_string());
        return Ok(out);
    }
    if client.is_logged_in().await? {
        out.push("using the stored login".to_string());
    } else {
        client.login(username, &password()?).await?;
        out.push(format!("logged in as {username}"));
    }
    // Every request carries the token; a refresh, if one is due, is made once for all of them.
    let me = match client.me().await {
        Ok(me) => me,
        Err(e) if e.is_logged_out() => {
            return Err(format!("{e} (run with --logout, then log in again)").into());
        }
        Err(e) => return Err(e.into()),
    };
    out.push(format!(
        "user {} (id {}), staff: {}, permissions: {}",
        me.username,
        me.id,
        me.is_staff,
        me.permissions.len()
    ));
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.get_json::<serde_json::Value>("/api/auth/me/").await })
        })
        .collect();
    let mut ok = 0;
    for call in calls {
        if call.await?.is_ok() {
            ok += 1;
        }
    }
    out.push(format!("{ok} of 20 concurrent calls succeeded"));
    Ok(out)
}
