//! The command line (DESIGN §5). Every command honours `--config` and the environment, exits
//! non-zero with a one-line reason on failure and never prints a secret.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use sekisho_core::account::NewUser;
use std::io::Read;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "sekisho",
    version,
    about = "Authentication for single-page apps: sessions and JWT, at once"
)]
pub struct Cli {
    /// Config file (default: ./sekisho.toml when present). SEKISHO_<SECTION>__<KEY> overrides it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Create or upgrade the database schema.
    Migrate,
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate and print the effective configuration (secrets masked).
    Check,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user.
    Create {
        name: String,
        #[arg(long, default_value = "")]
        email: String,
        #[arg(long)]
        staff: bool,
        #[arg(long)]
        superuser: bool,
        /// Read the password from standard input (first line).
        #[arg(long, conflicts_with = "password")]
        password_stdin: bool,
        /// The password (visible to other local users in the process list; prefer --password-stdin).
        #[arg(long, required_unless_present = "password_stdin")]
        password: Option<String>,
    },
    /// Set a user's password (ends all of the user's refresh families).
    SetPassword {
        name: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Disable a user (ends all of the user's refresh families).
    Deactivate { name: String },
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("SEKISHO_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let json = std::env::var("SEKISHO_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}

fn read_password_stdin() -> Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("cannot read the password from standard input")?;
    // Only the line ending is removed: passwords are otherwise taken exactly as given.
    let line = s.split('\n').next().unwrap_or("");
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        bail!("no password on standard input");
    }
    Ok(line.to_string())
}

pub async fn run(cli: Cli) -> Result<()> {
    init_tracing();
    let config = crate::app::load_config(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => crate::app::serve(config).await,
        Command::Migrate => {
            crate::app::open_stores(&config).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            if let Some(path) = &config.jwt.signing_key_file {
                std::fs::metadata(path)
                    .with_context(|| format!("jwt.signing_key_file {}", path.display()))?;
            }
            println!("# configuration is valid; effective values (secrets masked):");
            print!("{}", config.to_masked_toml());
            Ok(())
        }
        Command::User { command } => user(config, command).await,
    }
}

async fn user(config: sekisho_core::Config, command: UserCommand) -> Result<()> {
    let auth = crate::app::build_auth(&config).await?;
    let find = |name: String| {
        let auth = auth.clone();
        async move {
            auth.find_user(&name)
                .await?
                .with_context(|| format!("no user named {name:?}"))
        }
    };
    match command {
        UserCommand::Create {
            name,
            email,
            staff,
            superuser,
            password_stdin,
            password,
        } => {
            let password = if password_stdin {
                read_password_stdin()?
            } else {
                password.unwrap_or_default()
            };
            let u = auth
                .create_user(
                    &NewUser {
                        username: name,
                        email,
                        is_staff: staff,
                        is_superuser: superuser,
                    },
                    &password,
                )
                .await?;
            println!("created user {:?} (id {})", u.username, u.id);
        }
        UserCommand::SetPassword { name, .. } => {
            let password = read_password_stdin()?;
            let u = find(name).await?;
            auth.set_password(u.id, &password).await?;
            println!(
                "password of {:?} changed; its refresh tokens are revoked",
                u.username
            );
        }
        UserCommand::List => {
            println!(
                "{:<6} {:<24} {:<28} {:<6} {:<5} {:<9}",
                "id", "username", "email", "active", "staff", "superuser"
            );
            for u in auth.list_users().await? {
                println!(
                    "{:<6} {:<24} {:<28} {:<6} {:<5} {:<9}",
                    u.id, u.username, u.email, u.is_active, u.is_staff, u.is_superuser
                );
            }
        }
        UserCommand::Deactivate { name } => {
            let u = find(name).await?;
            auth.deactivate(u.id).await?;
            println!(
                "user {:?} deactivated; its refresh tokens are revoked",
                u.username
            );
        }
    }
    Ok(())
}
