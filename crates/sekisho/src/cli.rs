//! The command line (DESIGN §5). Every command honours `--config` and the environment, exits
//! non-zero with a one-line reason on failure and never prints a secret.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};
use sekisho_core::account::NewUser;
use sekisho_core::authz::admin::Admin;
use sekisho_core::authz::{AuditQuery, Group, ObjectGrant, ObjectRef, Principal, object_type_of};
use sekisho_core::{Auth, AuthError};
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Manage groups, their members and their permissions.
    Group {
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// Manage permissions (the codename catalogue).
    Perm {
        #[command(subcommand)]
        command: PermCommand,
    },
    /// Read the audit log of administrative actions.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Manage the signing keys (EdDSA, ES256, RS256 keys kept in the database).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Import a Django project's users (with their password hashes and ids), groups,
    /// permissions, django-guardian object permissions and simplejwt's blacklisted tokens.
    ///
    /// Reads the Django database directly and never writes to it. Users keep their Django ids
    /// (simplejwt tokens name users by id), matched by id and username; a conflict is reported
    /// and skipped. Groups match by name, permissions by app_label.codename. Safe to re-run:
    /// only what Django changed since the last run is written (a user Django did not change
    /// keeps what sekisho has, e.g. a password already upgraded at login). Passwords are
    /// upgraded to Argon2id at each user's next login once the dual-run is finished. Everything
    /// but the blacklisted tokens is one transaction.
    ///
    /// The first import starts a dual-run: while Django still serves traffic, password hashes
    /// are kept as Django stored them and (with django.database_url and django.secret_key) a
    /// live Django sessionid is exchanged once for a sekisho session. `--finish` ends it.
    #[command(name = "import-django")]
    ImportDjango {
        /// The Django database: a path to its SQLite file, sqlite://PATH, or
        /// postgres://USER@HOST/DB (a password may come from PGPASSWORD instead of the URL).
        #[arg(long, value_name = "URL", required_unless_present = "finish")]
        from: Option<String>,
        /// Read and report what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// End the dual-run: password hashes are upgraded at each user's next login again and
        /// Django sessions are no longer exchanged.
        #[arg(long, conflicts_with = "from")]
        finish: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List the signing keys: what each does now and until when (never private material).
    List,
    /// Generate a key now (published in the JWKS at once); it signs once `keys rotate` (or the
    /// automatic rotation) schedules it.
    Generate {
        /// EdDSA, ES256 or RS256 (default: jwt.algorithm).
        #[arg(long, value_name = "ALG")]
        algorithm: Option<String>,
    },
    /// Schedule the next key to sign jwt.key_publish_ahead after it was published (the key
    /// generated ahead, or a new one).
    Rotate {
        /// Sign with it at once, even if verifiers may not have fetched it yet.
        #[arg(long)]
        now: bool,
    },
    /// Stop a key signing; it verifies the tokens it signed until they expire.
    Retire {
        kid: String,
        /// Compromised: verify nothing signed with it, from now on.
        #[arg(long)]
        revoke: bool,
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
    /// Grant a user a permission: model-wide, or on one object.
    Grant {
        name: String,
        perm: String,
        #[command(flatten)]
        object: ObjectArg,
    },
    /// Revoke a user's permission: model-wide, or on one object.
    Revoke {
        name: String,
        perm: String,
        #[command(flatten)]
        object: ObjectArg,
    },
}

/// One object for a per-object grant (django-guardian's), or none for a model-wide one.
#[derive(clap::Args)]
struct ObjectArg {
    /// The object as TYPE:ID, e.g. shop.order:42.
    #[arg(long, value_name = "TYPE:ID", conflicts_with = "object_id")]
    object: Option<String>,
    /// The object's id; its type is the permission's (shop.change_order -> shop.order).
    #[arg(long, value_name = "ID")]
    object_id: Option<String>,
}

#[derive(Subcommand)]
enum GroupCommand {
    /// Create a group.
    Create { name: String },
    /// Delete a group (its memberships and grants go with it).
    Delete { name: String },
    /// List groups with their member counts and permissions.
    List,
    /// Add a user to a group.
    AddMember { group: String, user: String },
    /// Remove a user from a group.
    RemoveMember { group: String, user: String },
    /// Grant a group a permission: model-wide, or on one object.
    Grant {
        group: String,
        perm: String,
        #[command(flatten)]
        object: ObjectArg,
    },
    /// Revoke a group's permission: model-wide, or on one object.
    Revoke {
        group: String,
        perm: String,
        #[command(flatten)]
        object: ObjectArg,
    },
}

#[derive(Subcommand)]
enum PermCommand {
    /// Create a permission (codename app.action_model).
    Create {
        codename: String,
        /// A human-readable label, e.g. "Can view order".
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Delete a permission and every grant of it.
    Delete { codename: String },
    /// List permissions.
    List,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// The newest entries first.
    List {
        /// How many entries (1 to 1000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=1000))]
        limit: u64,
    },
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
            let policy = crate::app::load_policy(&config)?;
            println!("\n# access policy (forward-auth), first match wins:");
            for line in policy.describe().lines() {
                println!("# {line}");
            }
            Ok(())
        }
        Command::User { command } => user(config, command).await,
        Command::Group { command } => group(config, command).await,
        Command::Perm { command } => perm(config, command).await,
        Command::Audit { command } => audit(config, command).await,
        Command::Keys { command } => keys(config, command).await,
        Command::ImportDjango {
            from,
            dry_run,
            finish,
        } => match from {
            Some(from) if !finish => import_django(config, &from, dry_run).await,
            _ => finish_dual_run(config, dry_run).await,
        },
    }
}

async fn import_django(config: sekisho_core::Config, from: &str, dry_run: bool) -> Result<()> {
    use sekisho_store::django::DjangoSource;
    let progress = |table: &str, rows: u64| eprintln!("import-django: {table}: {rows} rows");
    let source =
        DjangoSource::open(from, config.database.timeout.0.max(Duration::from_secs(5))).await?;
    // The source is checked before sekisho's own database is opened (and migrated): a wrong
    // --from changes nothing anywhere.
    let (guardian, blacklist) = source.check().await?;
    let export = source.read(&progress).await?;
    let auth = crate::app::build_auth(&config).await?;
    let report = auth.import_django(&export, dry_run, &progress).await?;
    print_import_report(source.url(), &report, guardian, blacklist);
    Ok(())
}

async fn finish_dual_run(config: sekisho_core::Config, dry_run: bool) -> Result<()> {
    use sekisho_core::import::FinishOutcome;
    let auth = crate::app::build_auth(&config).await?;
    match auth.finish_dual_run(dry_run).await? {
        FinishOutcome::NotStarted => {
            bail!("no dual-run to finish: import-django --from URL has not run here")
        }
        FinishOutcome::AlreadyFinished(at) => {
            println!(
                "the dual-run already finished at {}: nothing to do",
                utc(at.millis())
            );
        }
        FinishOutcome::Finished { was, exchanged } => {
            let since = was.started_at.map_or("-".into(), |t| utc(t.millis()));
            let what = format!(
                "the dual-run with Django (since {since}): password hashes are upgraded at each user's next login, Django sessions are no longer exchanged ({exchanged} exchanged keys forgotten)"
            );
            if dry_run {
                println!("dry run: --finish would end {what}; nothing was written");
            } else {
                println!("finished {what}");
            }
        }
    }
    Ok(())
}

fn print_import_report(
    url: &str,
    r: &sekisho_core::import::ImportReport,
    guardian: bool,
    blacklist: bool,
) {
    use sekisho_core::import::Counts;
    if r.dry_run {
        println!("dry run of the import from {url}: nothing was written");
    } else {
        println!("imported from {url}");
    }
    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>9}",
        "django table", "created", "updated", "unchanged", "skipped"
    );
    let line = |table: &str, c: &Counts| {
        println!(
            "{table:<36} {:>9} {:>9} {:>9} {:>9}",
            c.created, c.updated, c.unchanged, c.skipped
        );
    };
    let s = &r.store;
    line("auth_user", &s.users);
    line("auth_group", &s.groups);
    line("auth_permission", &s.permissions);
    line("auth_user_groups", &s.user_groups);
    line("auth_user_user_permissions", &s.user_permissions);
    line("auth_group_permissions", &s.group_permissions);
    if guardian {
        line("guardian_*objectpermission", &s.object_grants);
    } else {
        println!("guardian_*objectpermission: absent (django-guardian not installed): skipped");
    }
    if blacklist {
        line("token_blacklist_blacklistedtoken", &r.blacklisted_tokens);
    } else {
        println!("token_blacklist_*: absent (simplejwt's token_blacklist not installed): skipped");
    }
    for c in &s.conflicts {
        println!("skipped user: {c}");
    }
    match (r.dual_run.in_progress(), r.dual_run.started_at) {
        (true, Some(t)) => println!(
            "dual-run in progress since {}: password hashes stay Django's until `import-django --finish`",
            utc(t.millis())
        ),
        (false, None) => println!(
            "dual-run: would start (password hashes stay Django's until `import-django --finish`)"
        ),
        _ => println!("dual-run: finished; password hashes are upgraded at login"),
    }
    for (a, b) in &s.lookalikes {
        println!("lookalike usernames (both imported, as in Django): {a:?} and {b:?}");
    }
}

async fn keys(config: sekisho_core::Config, command: KeysCommand) -> Result<()> {
    use sekisho_core::token::SignatureAlgorithm;
    use sekisho_core::token::managed::KeyInfo;
    let auth = crate::app::build_auth(&config).await?;
    let when = |t: Option<sekisho_core::Timestamp>| t.map_or("-".to_string(), |t| utc(t.millis()));
    let describe = |k: &KeyInfo| {
        let mut line = format!("{} ({}, {})", k.kid, k.algorithm, k.state.as_str());
        if let Some(from) = k.signs_from {
            line.push_str(&format!(", signs from {}", utc(from.millis())));
        }
        line
    };
    match command {
        KeysCommand::List => {
            println!(
                "{:<44} {:<6} {:<10} {:<21} {:<21} {:<21} {:<21}",
                "kid", "alg", "state", "published", "signs from", "signs until", "verifies until"
            );
            for k in auth.list_keys().await? {
                if k.source != "database" {
                    println!(
                        "{:<44} {:<6} {:<10} from {}",
                        k.kid,
                        k.algorithm,
                        k.state.as_str(),
                        k.source
                    );
                    continue;
                }
                println!(
                    "{:<44} {:<6} {:<10} {:<21} {:<21} {:<21} {:<21}",
                    k.kid,
                    k.algorithm,
                    k.state.as_str(),
                    when(k.created_at),
                    when(k.signs_from),
                    when(k.signs_until),
                    when(k.verifies_until),
                );
            }
        }
        KeysCommand::Generate { algorithm } => {
            let algorithm =
                match algorithm {
                    Some(a) => Some(SignatureAlgorithm::parse(&a).map_err(|e| {
                        anyhow!("{}", e.0.replacen("jwt.algorithm", "--algorithm", 1))
                    })?),
                    None => None,
                };
            let k = auth.generate_key(algorithm).await?;
            println!(
                "generated {}; `sekisho keys rotate` schedules it",
                describe(&k)
            );
        }
        KeysCommand::Rotate { now } => {
            let k = auth.rotate_key(now).await?;
            println!("next key: {}", describe(&k));
        }
        KeysCommand::Retire { kid, revoke } => {
            let k = auth.retire_key(&kid, revoke).await?;
            match (revoke, k.verifies_until) {
                (true, _) => println!("revoked {}: tokens it signed are refused", k.kid),
                (false, Some(u)) => println!(
                    "retired {}: signs nothing more, verifies its tokens until {}",
                    k.kid,
                    utc(u.millis())
                ),
                (false, None) => println!("retired {}", k.kid),
            }
        }
    }
    Ok(())
}

async fn user(config: sekisho_core::Config, command: UserCommand) -> Result<()> {
    let auth = crate::app::build_auth(&config).await?;
    // The administration methods, so every change is in the audit log as `cli:<os user>`.
    let admin = Admin::cli();
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
                .admin_create_user(
                    &admin,
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
            auth.admin_set_password(&admin, u.id, &password).await?;
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
            auth.admin_deactivate(&admin, u.id).await?;
            println!(
                "user {:?} deactivated; its refresh tokens are revoked",
                u.username
            );
        }
        UserCommand::Grant { name, perm, object } => {
            let u = find(name).await?;
            let to = Grantee::user(&u);
            change_grant(&auth, &admin, to, &perm, object, true).await?;
        }
        UserCommand::Revoke { name, perm, object } => {
            let u = find(name).await?;
            let to = Grantee::user(&u);
            change_grant(&auth, &admin, to, &perm, object, false).await?;
        }
    }
    Ok(())
}

impl ObjectArg {
    /// The object named, if any; `--object-id` takes its type from the codename.
    fn resolve(self, perm: &str) -> Result<Option<ObjectRef>> {
        match (self.object, self.object_id) {
            (Some(o), _) => {
                let (t, id) = o
                    .split_once(':')
                    .context("--object must be TYPE:ID, e.g. shop.order:42")?;
                Ok(Some(ObjectRef {
                    object_type: t.to_string(),
                    object_id: id.to_string(),
                }))
            }
            (None, Some(id)) => {
                let t = object_type_of(perm).with_context(|| {
                    format!("permission {perm:?} names no object type; use --object TYPE:ID")
                })?;
                Ok(Some(ObjectRef {
                    object_type: t,
                    object_id: id,
                }))
            }
            (None, None) => Ok(None),
        }
    }
}

/// Names what an administration error is about, in one line.
fn named(e: AuthError, perm: &str) -> anyhow::Error {
    match e {
        AuthError::NotFound("permission") => anyhow!("no permission {perm:?}"),
        other => other.into(),
    }
}

/// Who a grant is for, and how to name them in the output.
struct Grantee {
    principal: Principal,
    who: String,
}

impl Grantee {
    fn user(u: &sekisho_core::account::User) -> Grantee {
        Grantee {
            principal: Principal::User(u.id),
            who: format!("user {:?}", u.username),
        }
    }

    fn group(g: &Group) -> Grantee {
        Grantee {
            principal: Principal::Group(g.id),
            who: format!("group {:?}", g.name),
        }
    }
}

/// Grants or revokes `perm` (model-wide, or on one object) and says whether anything changed.
async fn change_grant(
    auth: &Auth,
    admin: &Admin,
    grantee: Grantee,
    perm: &str,
    object: ObjectArg,
    grant: bool,
) -> Result<()> {
    let Grantee { principal: to, who } = grantee;
    let object = object.resolve(perm)?;
    let changed = match &object {
        None if grant => auth.admin_grant(admin, to, perm).await,
        None => auth.admin_revoke(admin, to, perm).await,
        Some(o) => {
            let g = ObjectGrant {
                principal: to,
                permission: perm.to_string(),
                object: o.clone(),
            };
            if grant {
                auth.admin_grant_object(admin, &g).await
            } else {
                auth.admin_revoke_object(admin, &g).await
            }
        }
    }
    .map_err(|e| named(e, perm))?;
    let on = object
        .map(|o| format!(" on {}:{}", o.object_type, o.object_id))
        .unwrap_or_default();
    match (grant, changed) {
        (true, true) => println!("granted {perm:?}{on} to {who}"),
        (true, false) => println!("{who} already has {perm:?}{on}"),
        (false, true) => println!("revoked {perm:?}{on} from {who}"),
        (false, false) => println!("{who} does not have {perm:?}{on}"),
    }
    Ok(())
}

async fn find_group(auth: &Auth, admin: &Admin, name: &str) -> Result<Group> {
    auth.admin_group_by_name(admin, name)
        .await
        .map_err(|e| match e {
            AuthError::NotFound(_) => anyhow!("no group named {name:?}"),
            other => other.into(),
        })
}

async fn find_user(auth: &Auth, name: &str) -> Result<sekisho_core::account::User> {
    auth.find_user(name)
        .await?
        .with_context(|| format!("no user named {name:?}"))
}

async fn group(config: sekisho_core::Config, command: GroupCommand) -> Result<()> {
    let auth = crate::app::build_auth(&config).await?;
    let admin = Admin::cli();
    match command {
        GroupCommand::Create { name } => {
            let g = auth
                .admin_create_group(&admin, &name)
                .await
                .with_context(|| format!("cannot create group {name:?}"))?;
            println!("created group {:?} (id {})", g.name, g.id);
        }
        GroupCommand::Delete { name } => {
            let g = find_group(&auth, &admin, &name).await?;
            auth.admin_delete_group(&admin, g.id).await?;
            println!("deleted group {:?}", g.name);
        }
        GroupCommand::List => {
            println!("{:<6} {:<24} {:<7} permissions", "id", "name", "members");
            for g in auth.admin_groups(&admin).await? {
                let members = auth.admin_group_members(&admin, g.id).await?.len();
                let perms = if g.permissions.is_empty() {
                    "-".to_string()
                } else {
                    g.permissions.join(",")
                };
                println!("{:<6} {:<24} {:<7} {}", g.id, g.name, members, perms);
            }
        }
        GroupCommand::AddMember { group, user } => {
            let g = find_group(&auth, &admin, &group).await?;
            let u = find_user(&auth, &user).await?;
            if auth.admin_add_member(&admin, g.id, u.id).await? {
                println!("added {:?} to group {:?}", u.username, g.name);
            } else {
                println!("{:?} is already in group {:?}", u.username, g.name);
            }
        }
        GroupCommand::RemoveMember { group, user } => {
            let g = find_group(&auth, &admin, &group).await?;
            let u = find_user(&auth, &user).await?;
            if auth.admin_remove_member(&admin, g.id, u.id).await? {
                println!("removed {:?} from group {:?}", u.username, g.name);
            } else {
                println!("{:?} is not in group {:?}", u.username, g.name);
            }
        }
        GroupCommand::Grant {
            group,
            perm,
            object,
        } => {
            let g = find_group(&auth, &admin, &group).await?;
            let to = Grantee::group(&g);
            change_grant(&auth, &admin, to, &perm, object, true).await?;
        }
        GroupCommand::Revoke {
            group,
            perm,
            object,
        } => {
            let g = find_group(&auth, &admin, &group).await?;
            let to = Grantee::group(&g);
            change_grant(&auth, &admin, to, &perm, object, false).await?;
        }
    }
    Ok(())
}

async fn perm(config: sekisho_core::Config, command: PermCommand) -> Result<()> {
    let auth = crate::app::build_auth(&config).await?;
    let admin = Admin::cli();
    match command {
        PermCommand::Create { codename, name } => {
            let p = auth
                .admin_create_permission(&admin, &codename, &name)
                .await
                .with_context(|| format!("cannot create permission {codename:?}"))?;
            println!("created permission {:?} (id {})", p.codename, p.id);
        }
        PermCommand::Delete { codename } => {
            auth.admin_delete_permission(&admin, &codename)
                .await
                .map_err(|e| named(e, &codename))?;
            println!("deleted permission {codename:?} and every grant of it");
        }
        PermCommand::List => {
            println!("{:<6} {:<40} name", "id", "codename");
            for p in auth.admin_permissions(&admin).await? {
                println!("{:<6} {:<40} {}", p.id, p.codename, p.name);
            }
        }
    }
    Ok(())
}

async fn audit(config: sekisho_core::Config, command: AuditCommand) -> Result<()> {
    let auth = crate::app::build_auth(&config).await?;
    let admin = Admin::cli();
    let AuditCommand::List { limit } = command;
    let page = auth
        .admin_audit(
            &admin,
            &AuditQuery {
                limit,
                ..AuditQuery::default()
            },
        )
        .await?;
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    println!(
        "{:<6} {:<20} {:<20} {:<22} {:<28} {:<16} detail",
        "id", "at", "actor", "action", "target", "from"
    );
    for e in page.results {
        println!(
            "{:<6} {:<20} {:<20} {:<22} {:<28} {:<16} {}",
            e.id,
            utc(e.at.millis()),
            dash(&e.actor),
            e.action,
            dash(&e.target),
            dash(&e.remote_addr),
            e.detail
        );
    }
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SSZ` for milliseconds since the epoch.
fn utc(ms: i64) -> String {
    sekisho_core::Timestamp(ms).rfc3339()
}
