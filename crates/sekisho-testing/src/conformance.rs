//! One behaviour suite for every store backend: each backend's tests call [`run_all`] with its
//! own instances, so SQLite, PostgreSQL and Redis are held to exactly the same contract.

use sekisho_core::account::{NewUser, ProfileUpdate};
use sekisho_core::clock::Timestamp;
use sekisho_core::family::{FamilyRecord, RevokeOutcome, RotateOutcome, RotateRequest};
use sekisho_core::random::hex128;
use sekisho_core::session::SessionRecord;
use sekisho_core::store::{FamilyStore, SessionStore, StoreError, UserStore};
use std::sync::Arc;
use std::time::Duration;

const T0: i64 = 1_900_000_000;

/// How a backend gets rid of expired state.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// `purge_expired_*` deletes it (SQL).
    Purge,
    /// The backend expires keys by itself (Redis TTLs); checked against the real clock.
    Ttl,
}

pub async fn run_all(
    users: Arc<dyn UserStore>,
    families: Arc<dyn FamilyStore>,
    sessions: Arc<dyn SessionStore>,
    expiry: Expiry,
) {
    users_round_trip(&*users).await;
    sessions_lifecycle(&*users, &*sessions, expiry).await;
    rotation_sequence(&*users, &*families).await;
    parallel_rotation_has_one_winner(&*users, families.clone(), Duration::from_secs(5)).await;
    parallel_rotation_has_one_winner(&*users, families.clone(), Duration::ZERO).await;
    revocation_and_purge(&*users, &*families, expiry).await;
    refused_input_is_not_an_outage(&*users, &*families, &*sessions).await;
    if expiry == Expiry::Ttl {
        state_expires_by_itself(&*users, &*families, &*sessions).await;
    }
}

async fn state_expires_by_itself(
    users: &dyn UserStore,
    families: &dyn FamilyStore,
    sessions: &dyn SessionStore,
) {
    #[allow(clippy::disallowed_methods)] // TTLs run on the server's real clock.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let now_s = now_ms / 1000;
    let uid = new_user(users).await;
    let mut f = family(uid);
    f.current_iat = now_s;
    f.current_exp = now_s + 1;
    f.absolute_exp = now_s + 100;
    families.create_family(&f).await.unwrap();
    let mut s = session(uid, now_s);
    s.idle_expires_at = Timestamp(now_ms + 1000);
    sessions.create_session(&s).await.unwrap();
    assert!(families.family(&f.id).await.unwrap().is_some());
    assert!(sessions.session(&s.id_hash).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert!(
        families.family(&f.id).await.unwrap().is_none(),
        "family expired with its token"
    );
    assert!(
        sessions.session(&s.id_hash).await.unwrap().is_none(),
        "session expired at its idle deadline"
    );
    assert!(sessions.list_sessions(uid).await.unwrap().is_empty());
}

async fn new_user(users: &dyn UserStore) -> i64 {
    let name = format!("u{}", &hex128()[..12]);
    users
        .create_user(
            &NewUser {
                username: name,
                ..Default::default()
            },
            "!",
            Timestamp::from_secs(T0),
        )
        .await
        .unwrap()
        .id
}

fn family(user_id: i64) -> FamilyRecord {
    FamilyRecord {
        id: hex128(),
        user_id,
        current_jti: hex128(),
        current_iat: T0,
        current_exp: T0 + 100,
        previous_jti: None,
        rotated_at: None,
        created_at: Timestamp::from_secs(T0),
        absolute_exp: T0 + 1000,
        revoked_at: None,
    }
}

fn req(f: &FamilyRecord, presented: &str, now_s: i64, grace: Duration) -> RotateRequest {
    RotateRequest {
        family_id: f.id.clone(),
        presented_jti: presented.to_string(),
        new_jti: hex128(),
        now: Timestamp::from_secs(now_s),
        grace,
        idle_lifetime: Duration::from_secs(100),
        rotate: true,
    }
}

async fn users_round_trip(users: &dyn UserStore) {
    users.ping().await.unwrap();
    let new = NewUser {
        username: format!("alice{}", &hex128()[..6]),
        email: "a@example.com".into(),
        is_staff: true,
        is_superuser: false,
    };
    let u = users
        .create_user(&new, "hash-1", Timestamp::from_secs(T0))
        .await
        .unwrap();
    assert_eq!(u.username, new.username);
    assert!(u.is_active && u.is_staff && !u.is_superuser);
    assert!(matches!(
        users
            .create_user(&new, "hash-2", Timestamp::from_secs(T0))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let stored = users
        .user_by_username(&new.username)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.password_hash, "hash-1");
    assert_eq!(stored.user, u);
    assert!(
        users
            .user_by_username("nobody-here")
            .await
            .unwrap()
            .is_none()
    );
    assert!(users.set_password_hash(u.id, "hash-3").await.unwrap());
    assert_eq!(
        users
            .user_by_username(&new.username)
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "hash-3"
    );
    assert!(users.set_active(u.id, false).await.unwrap());
    assert!(!users.user_by_id(u.id).await.unwrap().unwrap().is_active);
    assert!(!users.set_active(i64::MAX, false).await.unwrap());
    users
        .record_login(u.id, Timestamp::from_secs(T0 + 1))
        .await
        .unwrap();
    assert!(
        users
            .list_users()
            .await
            .unwrap()
            .iter()
            .any(|x| x.id == u.id)
    );
    let changed = users
        .update_profile(
            u.id,
            &ProfileUpdate {
                first_name: Some("Alice".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (changed.first_name.as_str(), changed.email.as_str()),
        ("Alice", "a@example.com")
    );
    assert!(
        users
            .update_profile(i64::MAX, &ProfileUpdate::default())
            .await
            .unwrap()
            .is_none()
    );
}

async fn rotation_sequence(users: &dyn UserStore, families: &dyn FamilyStore) {
    let f = family(new_user(users).await);
    assert!(families.create_family(&f).await.unwrap());
    assert_eq!(families.family(&f.id).await.unwrap().unwrap(), f);
    assert!(
        !families.create_family(&f).await.unwrap(),
        "an existing family is never replaced"
    );
    let g = Duration::from_secs(5);
    let RotateOutcome::Rotated(s1) = families
        .rotate(&req(&f, &f.current_jti, T0 + 10, g))
        .await
        .unwrap()
    else {
        panic!("first rotation must win")
    };
    assert_eq!((s1.iat, s1.exp), (T0 + 10, T0 + 110));
    // The racer inside the grace window gets the same successor.
    assert_eq!(
        families
            .rotate(&req(&f, &f.current_jti, T0 + 11, g))
            .await
            .unwrap(),
        RotateOutcome::Grace(s1.clone())
    );
    let after = families.family(&f.id).await.unwrap().unwrap();
    assert_eq!(after.current_jti, s1.jti);
    // Re-creating a rotated family (two adoptions of one foreign token racing) resets nothing.
    assert!(!families.create_family(&f).await.unwrap());
    assert_eq!(families.family(&f.id).await.unwrap().unwrap(), after);
    assert_eq!(after.previous_jti.as_deref(), Some(f.current_jti.as_str()));
    // After the window, the predecessor is reuse: the whole family goes.
    assert_eq!(
        families
            .rotate(&req(&f, &f.current_jti, T0 + 20, g))
            .await
            .unwrap(),
        RotateOutcome::ReuseDetected
    );
    assert_eq!(
        families
            .rotate(&req(&f, &s1.jti, T0 + 21, g))
            .await
            .unwrap(),
        RotateOutcome::Revoked
    );
    let missing = FamilyRecord {
        id: hex128(),
        ..f.clone()
    };
    assert_eq!(
        families
            .rotate(&req(&missing, &f.current_jti, T0, g))
            .await
            .unwrap(),
        RotateOutcome::NotFound
    );
}

async fn parallel_rotation_has_one_winner(
    users: &dyn UserStore,
    families: Arc<dyn FamilyStore>,
    grace: Duration,
) {
    let f = family(new_user(users).await);
    families.create_family(&f).await.unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let families = families.clone();
            let r = req(&f, &f.current_jti, T0 + 10, grace);
            tokio::spawn(async move { families.rotate(&r).await.unwrap() })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let winners: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            RotateOutcome::Rotated(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(winners.len(), 1, "exactly one rotation: {outcomes:?}");
    for o in &outcomes {
        match o {
            RotateOutcome::Rotated(_) => {}
            RotateOutcome::Grace(s) => {
                assert!(!grace.is_zero());
                assert_eq!(s, &winners[0], "every racer gets the one successor");
            }
            RotateOutcome::ReuseDetected | RotateOutcome::Revoked => {
                assert!(grace.is_zero(), "{o:?}")
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn revocation_and_purge(users: &dyn UserStore, families: &dyn FamilyStore, expiry: Expiry) {
    let uid = new_user(users).await;
    let a = family(uid);
    let b = family(uid);
    let other = family(new_user(users).await);
    for f in [&a, &b, &other] {
        families.create_family(f).await.unwrap();
    }
    let now = Timestamp::from_secs(T0 + 1);
    assert_eq!(
        families.revoke_family(&a.id, now, "logout").await.unwrap(),
        RevokeOutcome::Revoked
    );
    assert_eq!(
        families.revoke_family(&a.id, now, "logout").await.unwrap(),
        RevokeOutcome::AlreadyRevoked
    );
    assert_eq!(
        families
            .revoke_family(&hex128(), now, "logout")
            .await
            .unwrap(),
        RevokeOutcome::NotFound
    );
    assert_eq!(
        families
            .revoke_user_families(uid, now, "password")
            .await
            .unwrap(),
        1,
        "only b was still live"
    );
    assert!(families.family(&b.id).await.unwrap().unwrap().is_revoked());
    assert!(
        !families
            .family(&other.id)
            .await
            .unwrap()
            .unwrap()
            .is_revoked()
    );
    if expiry == Expiry::Ttl {
        return;
    }
    // Nothing is purged while a token could still be presented; everything once all expired.
    families
        .purge_expired_families(Timestamp::from_secs(T0 + 99))
        .await
        .unwrap();
    assert!(families.family(&other.id).await.unwrap().is_some());
    let purged = families
        .purge_expired_families(Timestamp::from_secs(T0 + 101))
        .await
        .unwrap();
    assert!(purged >= 3);
    for f in [&a, &b, &other] {
        assert!(families.family(&f.id).await.unwrap().is_none());
    }
}

fn session(user_id: i64, created_s: i64) -> SessionRecord {
    let t = Timestamp::from_secs(created_s);
    SessionRecord {
        id_hash: hex128() + &hex128(),
        public_id: hex128(),
        user_id,
        created_at: t,
        last_seen: t,
        idle_expires_at: Timestamp::from_secs(created_s + 100),
        absolute_expires_at: Timestamp::from_secs(created_s + 1000),
        user_agent: "Mozilla/5.0 test".into(),
        ip: "127.0.0.1".into(),
        // Not the default, so the round trip shows the store keeps it.
        login: sekisho_core::mfa::LoginMethod::second_factor(t),
    }
}

async fn sessions_lifecycle(users: &dyn UserStore, sessions: &dyn SessionStore, expiry: Expiry) {
    sessions.ping().await.unwrap();
    let uid = new_user(users).await;
    let a = session(uid, T0);
    let b = session(uid, T0 + 1);
    let c = session(uid, T0 + 2);
    let other = session(new_user(users).await, T0);
    for s in [&a, &b, &c, &other] {
        sessions.create_session(s).await.unwrap();
    }
    assert_eq!(sessions.session(&a.id_hash).await.unwrap().unwrap(), a);
    assert!(sessions.session("nope").await.unwrap().is_none());
    // Touch writes only when last_seen is older than the threshold.
    let later = Timestamp::from_secs(T0 + 50);
    assert!(
        !sessions
            .touch_session(
                &a.id_hash,
                later,
                Timestamp::from_secs(T0 + 150),
                Timestamp::from_secs(T0 - 1)
            )
            .await
            .unwrap()
    );
    assert!(
        sessions
            .touch_session(
                &a.id_hash,
                later,
                Timestamp::from_secs(T0 + 150),
                Timestamp::from_secs(T0 + 40)
            )
            .await
            .unwrap()
    );
    let touched = sessions.session(&a.id_hash).await.unwrap().unwrap();
    assert_eq!(
        (touched.last_seen, touched.idle_expires_at),
        (later, Timestamp::from_secs(T0 + 150))
    );
    let listed: Vec<_> = sessions
        .list_sessions(uid)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.public_id)
        .collect();
    assert_eq!(
        listed,
        vec![
            a.public_id.clone(),
            b.public_id.clone(),
            c.public_id.clone()
        ]
    );
    // A user cannot delete another user's session by its public id.
    assert!(
        !sessions
            .delete_session_by_public_id(uid, &other.public_id)
            .await
            .unwrap()
    );
    assert!(
        sessions
            .delete_session_by_public_id(uid, &b.public_id)
            .await
            .unwrap()
    );
    assert!(sessions.delete_session(&c.id_hash).await.unwrap());
    assert!(!sessions.delete_session(&c.id_hash).await.unwrap());
    let d = session(uid, T0 + 3);
    sessions.create_session(&d).await.unwrap();
    assert_eq!(
        sessions
            .delete_user_sessions(uid, Some(&a.id_hash))
            .await
            .unwrap(),
        1
    );
    assert!(sessions.session(&a.id_hash).await.unwrap().is_some());
    assert_eq!(sessions.delete_user_sessions(uid, None).await.unwrap(), 1);
    assert!(sessions.list_sessions(uid).await.unwrap().is_empty());
    if expiry == Expiry::Ttl {
        return;
    }
    // Purge removes only expired sessions (idle or absolute).
    sessions
        .purge_expired_sessions(Timestamp::from_secs(T0 + 99))
        .await
        .unwrap();
    assert!(sessions.session(&other.id_hash).await.unwrap().is_some());
    sessions
        .purge_expired_sessions(Timestamp::from_secs(T0 + 100))
        .await
        .unwrap();
    assert!(sessions.session(&other.id_hash).await.unwrap().is_none());
}

/// Input a backend cannot hold (PostgreSQL refuses NUL in text) is the caller's fault: either
/// nothing is found or the store says it refused the input — never "unavailable", which would
/// turn a client's bad request into a 503 and an outage alert.
async fn refused_input_is_not_an_outage(
    users: &dyn UserStore,
    families: &dyn FamilyStore,
    sessions: &dyn SessionStore,
) {
    fn fine<T: std::fmt::Debug>(what: &str, r: Result<T, StoreError>, absent: impl Fn(&T) -> bool) {
        match r {
            Ok(v) if absent(&v) => {}
            Err(StoreError::Refused(_)) => {}
            other => panic!("{what}: {other:?}"),
        }
    }
    let uid = new_user(users).await;
    for bad in ["nul\0byte", "\0", "caf\u{e9}\0"] {
        fine(
            "user_by_username",
            users.user_by_username(bad).await,
            Option::is_none,
        );
        fine("session", sessions.session(bad).await, Option::is_none);
        fine("family", families.family(bad).await, Option::is_none);
        fine(
            "delete_session_by_public_id",
            sessions.delete_session_by_public_id(uid, bad).await,
            |deleted| !deleted,
        );
        fine("delete_session", sessions.delete_session(bad).await, |d| !d);
    }
    let mut profile = ProfileUpdate {
        first_name: Some("a\0b".into()),
        ..Default::default()
    };
    match users.update_profile(uid, &profile).await {
        // SQLite and Redis-backed users keep the bytes as given; PostgreSQL refuses them.
        Ok(_) | Err(StoreError::Refused(_)) => {}
        other => panic!("update_profile: {other:?}"),
    }
    profile.first_name = Some("Ann".into());
    assert!(users.update_profile(uid, &profile).await.unwrap().is_some());
}

/// The second-factor store: a pending secret, its confirmation, steps used once, recovery codes
/// used once, challenges consumed once and purged when expired. (SQL backends: MFA state lives
/// with the users.)
pub async fn mfa_store(users: &dyn UserStore, mfa: &dyn sekisho_core::store::MfaStore) {
    use sekisho_core::mfa::{ChallengeRecord, Flow, Purpose};
    let uid = new_user(users).await;
    let t = Timestamp::from_secs(T0);
    assert_eq!(mfa.totp(uid).await.unwrap(), None);
    assert!(mfa.begin_totp(uid, b"sealed-1", t).await.unwrap());
    // A pending secret is replaced by a new enrolment.
    assert!(mfa.begin_totp(uid, b"sealed-2", t).await.unwrap());
    let pending = mfa.totp(uid).await.unwrap().unwrap();
    assert_eq!(pending.sealed_secret, b"sealed-2");
    assert_eq!(pending.confirmed_at, None);
    assert!(
        !mfa.use_totp_step(uid, 5).await.unwrap(),
        "a pending secret verifies nothing"
    );
    let hashes: Vec<String> = (0..3).map(|i| format!("hash-{i}")).collect();
    assert!(mfa.confirm_totp(uid, 10, t, &hashes).await.unwrap());
    assert!(!mfa.confirm_totp(uid, 11, t, &hashes).await.unwrap());
    assert!(
        !mfa.begin_totp(uid, b"sealed-3", t).await.unwrap(),
        "confirmed stays"
    );
    let confirmed = mfa.totp(uid).await.unwrap().unwrap();
    assert_eq!(confirmed.sealed_secret, b"sealed-2");
    assert_eq!(confirmed.confirmed_at, Some(t));
    assert_eq!(confirmed.last_step, Some(10));
    assert!(
        !mfa.use_totp_step(uid, 10).await.unwrap(),
        "the confirming step is used"
    );
    assert!(mfa.use_totp_step(uid, 11).await.unwrap());
    assert!(
        !mfa.use_totp_step(uid, 11).await.unwrap(),
        "a step counts once"
    );
    assert!(
        !mfa.use_totp_step(uid, 9).await.unwrap(),
        "no older step after a newer one"
    );
    assert_eq!(mfa.recovery_codes_left(uid).await.unwrap(), 3);
    assert!(mfa.use_recovery_code(uid, "hash-1").await.unwrap());
    assert!(
        !mfa.use_recovery_code(uid, "hash-1").await.unwrap(),
        "a code works once"
    );
    let other = new_user(users).await;
    assert!(
        !mfa.use_recovery_code(other, "hash-0").await.unwrap(),
        "codes are per user"
    );
    assert_eq!(mfa.recovery_codes_left(uid).await.unwrap(), 2);
    mfa.replace_recovery_codes(uid, &["new".to_string()], t)
        .await
        .unwrap();
    assert!(!mfa.use_recovery_code(uid, "hash-0").await.unwrap());
    assert_eq!(mfa.recovery_codes_left(uid).await.unwrap(), 1);
    assert!(mfa.delete_totp(uid).await.unwrap());
    assert!(!mfa.delete_totp(uid).await.unwrap());
    assert_eq!(mfa.recovery_codes_left(uid).await.unwrap(), 0);
    assert_eq!(mfa.totp(uid).await.unwrap(), None);

    let c = ChallengeRecord {
        id_hash: hex128() + &hex128(),
        user_id: uid,
        flow: Flow::Token,
        purpose: Purpose::Verify,
        created_at: t,
        expires_at: Timestamp::from_secs(T0 + 300),
    };
    mfa.create_challenge(&c).await.unwrap();
    assert_eq!(mfa.challenge(&c.id_hash).await.unwrap(), Some(c.clone()));
    assert!(mfa.consume_challenge(&c.id_hash).await.unwrap());
    assert!(
        !mfa.consume_challenge(&c.id_hash).await.unwrap(),
        "consumed once"
    );
    assert_eq!(mfa.challenge(&c.id_hash).await.unwrap(), None);
    let old = ChallengeRecord {
        id_hash: hex128() + &hex128(),
        flow: Flow::Session,
        purpose: Purpose::Enrol,
        ..c.clone()
    };
    mfa.create_challenge(&old).await.unwrap();
    assert_eq!(
        mfa.challenge(&old.id_hash).await.unwrap(),
        Some(old.clone())
    );
    assert!(
        mfa.purge_expired_challenges(Timestamp::from_secs(T0 + 300))
            .await
            .unwrap()
            >= 1
    );
    assert_eq!(mfa.challenge(&old.id_hash).await.unwrap(), None);
    passkey_store(users, mfa).await;
}

/// Passkeys: a credential id registered once across users, rename and delete scoped to the
/// owner, a use recorded only over the credential it read (compare-and-swap), ceremonies taken
/// once and purged when expired.
pub async fn passkey_store(users: &dyn UserStore, mfa: &dyn sekisho_core::store::MfaStore) {
    use sekisho_core::mfa::Flow;
    use sekisho_core::mfa::passkey::{CeremonyKind, CeremonyRecord, PasskeyRecord};
    use sekisho_core::store::StoreError;
    let uid = new_user(users).await;
    let other = new_user(users).await;
    let t = Timestamp::from_secs(T0);
    assert_eq!(mfa.passkeys(uid).await.unwrap(), vec![]);
    let key = PasskeyRecord {
        id: hex128(),
        user_id: uid,
        credential_id: format!("cred-{}", hex128()),
        name: "laptop".into(),
        credential: "{\"counter\":1}".into(),
        user_verified: true,
        created_at: t,
        last_used_at: None,
    };
    mfa.add_passkey(&key).await.unwrap();
    let copy = PasskeyRecord {
        id: hex128(),
        user_id: other,
        ..key.clone()
    };
    assert!(
        matches!(mfa.add_passkey(&copy).await, Err(StoreError::Conflict(_))),
        "a credential id belongs to one account"
    );
    let second = PasskeyRecord {
        id: hex128(),
        credential_id: format!("cred-{}", hex128()),
        name: "usb key".into(),
        user_verified: false,
        created_at: Timestamp::from_secs(T0 + 1),
        ..key.clone()
    };
    mfa.add_passkey(&second).await.unwrap();
    assert_eq!(
        mfa.passkeys(uid).await.unwrap(),
        vec![key.clone(), second.clone()]
    );
    assert_eq!(mfa.passkeys(other).await.unwrap(), vec![]);

    assert!(
        !mfa.rename_passkey(other, &key.id, "mine").await.unwrap(),
        "owner only"
    );
    assert!(
        mfa.rename_passkey(uid, &key.id, "work laptop")
            .await
            .unwrap()
    );
    let used_at = Timestamp::from_secs(T0 + 10);
    assert!(
        mfa.use_passkey(&key.id, &key.credential, "{\"counter\":2}", used_at)
            .await
            .unwrap()
    );
    assert!(
        !mfa.use_passkey(&key.id, &key.credential, "{\"counter\":2}", used_at)
            .await
            .unwrap(),
        "a use over a stale read loses"
    );
    let now = mfa.passkeys(uid).await.unwrap();
    assert_eq!(now[0].name, "work laptop");
    assert_eq!(now[0].credential, "{\"counter\":2}");
    assert_eq!(now[0].last_used_at, Some(used_at));
    assert!(
        !mfa.delete_passkey(other, &key.id).await.unwrap(),
        "owner only"
    );
    assert!(mfa.delete_passkey(uid, &key.id).await.unwrap());
    assert!(!mfa.delete_passkey(uid, &key.id).await.unwrap());
    assert_eq!(mfa.passkeys(uid).await.unwrap(), vec![second]);

    let c = CeremonyRecord {
        id_hash: hex128() + &hex128(),
        kind: CeremonyKind::SecondFactor(Flow::Session),
        user_id: Some(uid),
        challenge_hash: Some(hex128() + &hex128()),
        state: "{\"ast\":{}}".into(),
        created_at: t,
        expires_at: Timestamp::from_secs(T0 + 300),
    };
    mfa.create_ceremony(&c).await.unwrap();
    assert_eq!(
        mfa.take_ceremony(&c.id_hash).await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(
        mfa.take_ceremony(&c.id_hash).await.unwrap(),
        None,
        "taken once"
    );
    let anonymous = CeremonyRecord {
        id_hash: hex128() + &hex128(),
        kind: CeremonyKind::Login(Flow::Token),
        user_id: None,
        challenge_hash: None,
        ..c.clone()
    };
    mfa.create_ceremony(&anonymous).await.unwrap();
    let expired = CeremonyRecord {
        id_hash: hex128() + &hex128(),
        kind: CeremonyKind::Register,
        ..anonymous.clone()
    };
    mfa.create_ceremony(&expired).await.unwrap();
    assert!(
        mfa.purge_expired_challenges(Timestamp::from_secs(T0 + 300))
            .await
            .unwrap()
            >= 2
    );
    assert_eq!(mfa.take_ceremony(&expired.id_hash).await.unwrap(), None);
    assert_eq!(mfa.take_ceremony(&anonymous.id_hash).await.unwrap(), None);
}
