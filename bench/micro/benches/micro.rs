//! Micro-benchmarks of the pieces on sekisho's hot paths: token sign and verify, the CSRF check,
//! session-id hashing, password hashing, and one refresh rotation in each store.
//!
//! `cargo bench -p sekisho-bench` runs them. The store benchmarks need the services the test
//! suite uses (`SEKISHO_TEST_POSTGRES_URL`, `SEKISHO_TEST_REDIS_URL`); without a URL that store
//! is skipped. Under `cargo test --all-targets` divan runs each benchmark once, untimed.

use divan::{Bencher, black_box};
use sekisho_core::account::NewUser;
use sekisho_core::clock::{Clock, SystemClock, Timestamp};
use sekisho_core::config::{JwtConfig, PasswordsConfig};
use sekisho_core::family::{FamilyRecord, RotateOutcome, RotateRequest};
use sekisho_core::login::password::Passwords;
use sekisho_core::random::hex128;
use sekisho_core::session::{CsrfKey, hash_session_id, new_session_id};
use sekisho_core::store::{FamilyStore, UserStore};
use sekisho_core::token::{
    AsymmetricKey, Claims, HmacKey, SignatureAlgorithm, TokenPolicy, TokenType,
};
use std::sync::Arc;
use std::time::Duration;

fn main() {
    divan::main();
}

const KEY: &[u8] = b"a benchmark signing key of at least 32 bytes";

fn now() -> Timestamp {
    SystemClock.now()
}

fn policy() -> TokenPolicy {
    let key = HmacKey::new(SignatureAlgorithm::HS256, KEY).expect("HS256 key");
    TokenPolicy::new(&JwtConfig::default(), Arc::new(key))
}

fn access_claims() -> Claims {
    let t = now().secs();
    Claims {
        token_type: TokenType::Access,
        exp: t + 300,
        iat: t,
        jti: hex128(),
        user_id: Some("42".into()),
        family: Some(hex128()),
        login: Some(sekisho_core::mfa::LoginMethod::password(now())),
    }
}

/// Token sign and verify per algorithm: HS256 (the default), EdDSA (recommended), ES256 and
/// RS256 (2048-bit), each through the `TokenPolicy` the server uses, on an access token.
#[divan::bench_group]
mod token {
    use super::*;

    const ALGS: [&str; 4] = ["HS256", "EdDSA", "ES256", "RS256"];

    fn policy_of(alg: &str) -> TokenPolicy {
        let alg = SignatureAlgorithm::parse(alg).expect("algorithm");
        if alg.is_symmetric() {
            return policy();
        }
        let key = AsymmetricKey::generate(alg).expect("key").0;
        let cfg = JwtConfig {
            algorithm: alg.name().into(),
            ..JwtConfig::default()
        };
        TokenPolicy::new(&cfg, Arc::new(key))
    }

    #[divan::bench(args = ALGS)]
    fn sign(b: Bencher, alg: &str) {
        let p = policy_of(alg);
        let c = access_claims();
        b.bench_local(|| p.sign(black_box(&c)).expect("signed"));
    }

    #[divan::bench(args = ALGS)]
    fn verify(b: Bencher, alg: &str) {
        let p = policy_of(alg);
        let token = p.sign(&access_claims()).expect("signed");
        let at = now();
        b.bench_local(|| {
            p.verify(black_box(&token), Some(TokenType::Access), at)
                .expect("valid token")
        });
    }
}

mod csrf {
    use super::*;

    #[divan::bench]
    fn check(b: Bencher) {
        let key = CsrfKey::derive(KEY);
        let binding = hash_session_id(&new_session_id());
        let t = key.mint(&binding);
        b.bench_local(|| {
            key.check(Some(black_box(&t)), Some(black_box(&t)), &binding)
                .expect("valid CSRF token")
        });
    }
}

mod session {
    use super::*;

    #[divan::bench]
    fn hash_id(b: Bencher) {
        let id = new_session_id();
        b.bench_local(|| hash_session_id(black_box(&id)));
    }
}

mod password {
    use super::*;

    /// One Argon2id hash at the default parameters (m=19456 KiB, t=2, p=1), as a login pays it.
    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn argon2id_default(b: Bencher) {
        let rt = runtime();
        let p = Passwords::new(&PasswordsConfig::default());
        b.bench_local(|| rt.block_on(p.hash(black_box("correct horse battery staple"))));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Rotates one family over and over, each call presenting the token the previous one minted:
/// the full compare-and-swap of a real refresh (read under lock, decide, write, commit).
fn bench_rotation(
    b: Bencher,
    rt: &tokio::runtime::Runtime,
    store: Arc<dyn FamilyStore>,
    user: i64,
) {
    let t = now();
    let family = FamilyRecord {
        id: hex128(),
        user_id: user,
        current_jti: hex128(),
        current_iat: t.secs(),
        current_exp: t.secs() + 600,
        previous_jti: None,
        rotated_at: None,
        created_at: t,
        absolute_exp: t.secs() + 600,
        revoked_at: None,
    };
    assert!(
        rt.block_on(store.create_family(&family))
            .expect("create family")
    );
    let mut current = family.current_jti.clone();
    b.bench_local(|| {
        let req = RotateRequest {
            family_id: family.id.clone(),
            presented_jti: current.clone(),
            new_jti: hex128(),
            now: now(),
            grace: Duration::from_secs(5),
            idle_lifetime: Duration::from_secs(600),
            rotate: true,
        };
        match rt.block_on(store.rotate(&req)).expect("rotate") {
            RotateOutcome::Rotated(s) => current = s.jti,
            other => panic!("unexpected rotation outcome {other:?}"),
        }
    });
}

async fn bench_user(users: &dyn UserStore) -> i64 {
    let user = NewUser {
        username: format!("bench-{}", &hex128()[..12]),
        email: String::new(),
        is_staff: false,
        is_superuser: false,
    };
    users
        .create_user(&user, "!", now())
        .await
        .expect("create user")
        .id
}

mod rotate {
    use super::*;
    use sekisho_store::postgres::PgStore;
    use sekisho_store::redis_store::RedisStore;
    use sekisho_store::sqlite::SqliteStore;

    const DEADLINE: Duration = Duration::from_secs(5);

    #[divan::bench]
    fn sqlite(b: Bencher) {
        let rt = runtime();
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/bench.db", dir.path().display());
        let store = rt.block_on(async {
            let s = SqliteStore::connect(&url, 8, DEADLINE)
                .await
                .expect("SQLite");
            s.migrate().await.expect("migrate");
            Arc::new(s)
        });
        let user = rt.block_on(bench_user(store.as_ref()));
        bench_rotation(b, &rt, store, user);
    }

    #[divan::bench]
    fn postgres(b: Bencher) {
        if std::env::var_os("SEKISHO_TEST_POSTGRES_URL").is_none() {
            eprintln!("rotate::postgres skipped: SEKISHO_TEST_POSTGRES_URL is not set");
            return;
        }
        let rt = runtime();
        let db = rt.block_on(sekisho_testing::services::fresh_pg_database());
        let store = rt.block_on(async {
            let s = PgStore::connect(&db.url, 8, DEADLINE)
                .await
                .expect("PostgreSQL");
            s.migrate().await.expect("migrate");
            Arc::new(s)
        });
        let user = rt.block_on(bench_user(store.as_ref()));
        bench_rotation(b, &rt, store.clone(), user);
        drop(store);
        rt.block_on(db.drop());
    }

    #[divan::bench]
    fn redis(b: Bencher) {
        let Ok(url) = std::env::var("SEKISHO_TEST_REDIS_URL") else {
            eprintln!("rotate::redis skipped: SEKISHO_TEST_REDIS_URL is not set");
            return;
        };
        let rt = runtime();
        let prefix = format!("sekisho-bench-{}", &hex128()[..12]);
        let store = rt.block_on(async {
            Arc::new(
                RedisStore::connect(&url, &prefix, DEADLINE)
                    .await
                    .expect("Redis"),
            )
        });
        // Families need no user row in Redis; the id only names the user's index set.
        bench_rotation(b, &rt, store, 1);
        rt.block_on(async {
            let client = redis::Client::open(url.as_str()).expect("Redis URL");
            let mut c = client
                .get_multiplexed_async_connection()
                .await
                .expect("Redis");
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}:*"))
                .query_async(&mut c)
                .await
                .expect("KEYS");
            if !keys.is_empty() {
                let _: () = redis::cmd("DEL")
                    .arg(&keys)
                    .query_async(&mut c)
                    .await
                    .expect("DEL");
            }
        });
    }
}
