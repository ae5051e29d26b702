use super::*;

const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;

fn t(ms: i64) -> Timestamp {
    Timestamp(1_800_000_000_000 + ms)
}

fn settings() -> RotationSettings {
    RotationSettings {
        algorithm: SignatureAlgorithm::EdDSA,
        period: Duration::from_secs(30 * 86_400),
        publish_ahead: Duration::from_secs(600),
        verify_tail: Duration::from_secs(86_400),
    }
}

fn rec(kid: &str, generation: i64, created: i64, activate: Option<i64>) -> KeyRecord {
    KeyRecord {
        kid: kid.into(),
        generation,
        algorithm: "EdDSA".into(),
        public_jwk: "{}".into(),
        private_key: vec![],
        created_at: t(created),
        activate_at: activate.map(t),
        retired_at: None,
        revoked: false,
    }
}

#[test]
fn with_no_key_the_first_signs_at_once() {
    assert_eq!(
        plan_rotation(&[], t(0), &settings()),
        Some(KeyAction::Insert {
            generation: 1,
            algorithm: SignatureAlgorithm::EdDSA,
            activate_at: Some(t(0)),
        })
    );
}

#[test]
fn the_next_key_is_published_ahead_and_takes_over_at_the_end_of_the_period() {
    let s = settings();
    let keys = vec![rec("a", 1, 0, Some(0))];
    // Long before the end of the period: nothing to do.
    assert_eq!(plan_rotation(&keys, t(29 * DAY), &s), None);
    // Within publish-ahead of it: a new key, signing exactly when the period ends.
    assert_eq!(
        plan_rotation(&keys, t(30 * DAY - 10 * MIN), &s),
        Some(KeyAction::Insert {
            generation: 2,
            algorithm: SignatureAlgorithm::EdDSA,
            activate_at: Some(t(30 * DAY)),
        })
    );
    // Late (the instances were down): never sooner than publish-ahead after publishing.
    assert_eq!(
        plan_rotation(&keys, t(40 * DAY), &s),
        Some(KeyAction::Insert {
            generation: 2,
            algorithm: SignatureAlgorithm::EdDSA,
            activate_at: Some(t(40 * DAY + 10 * MIN)),
        })
    );
    // Once scheduled, nothing more until it signs.
    let scheduled = vec![
        rec("a", 1, 0, Some(0)),
        rec("b", 2, 40 * DAY, Some(40 * DAY + 10 * MIN)),
    ];
    assert_eq!(plan_rotation(&scheduled, t(40 * DAY + MIN), &s), None);
    // A key generated ahead is scheduled rather than a new one made.
    let standby = vec![
        rec("a", 1, 0, Some(0)),
        rec("b", 2, 29 * DAY + 23 * 60 * MIN, None),
    ];
    assert_eq!(
        plan_rotation(&standby, t(30 * DAY - 5 * MIN), &s),
        Some(KeyAction::Schedule {
            kid: "b".into(),
            was: None,
            at: t(30 * DAY),
        })
    );
    // No automatic rotation with a zero period.
    let off = RotationSettings {
        period: Duration::ZERO,
        ..settings()
    };
    assert_eq!(plan_rotation(&keys, t(400 * DAY), &off), None);
}

#[test]
fn a_changed_algorithm_rotates_after_publish_ahead() {
    let s = RotationSettings {
        algorithm: SignatureAlgorithm::ES256,
        ..settings()
    };
    assert_eq!(
        plan_rotation(&[rec("a", 1, 0, Some(0))], t(DAY), &s),
        Some(KeyAction::Insert {
            generation: 2,
            algorithm: SignatureAlgorithm::ES256,
            activate_at: Some(t(DAY + 10 * MIN)),
        })
    );
}

#[test]
fn signing_windows_follow_activation_and_old_keys_verify_for_the_tail() {
    let s = settings();
    let keys = vec![
        rec("a", 1, 0, Some(0)),
        rec("b", 2, 30 * DAY - 10 * MIN, Some(30 * DAY)),
    ];
    let sched = schedule(&keys, s.verify_tail);
    assert_eq!(sched[0].signs_from, Some(t(0)));
    assert_eq!(sched[0].signs_until, Some(t(30 * DAY)));
    assert_eq!(sched[0].verifies_until, Some(t(31 * DAY)));
    assert_eq!(sched[1].signs_until, None);
    assert_eq!(sched[1].verifies_until, None);
    assert_eq!(current_generation(&sched, t(30 * DAY - 1)), Some(1));
    assert_eq!(current_generation(&sched, t(30 * DAY)), Some(2));
    let states = |now| -> Vec<KeyState> {
        let c = current_generation(&sched, now);
        sched.iter().map(|k| k.state(now, c)).collect()
    };
    assert_eq!(
        states(t(30 * DAY - MIN)),
        [KeyState::Signing, KeyState::Next]
    );
    assert_eq!(
        states(t(30 * DAY + MIN)),
        [KeyState::Verifying, KeyState::Signing]
    );
    assert_eq!(
        states(t(31 * DAY + 1)),
        [KeyState::Expired, KeyState::Signing]
    );
}

#[test]
fn retired_and_revoked_keys() {
    let s = settings();
    let mut keys = vec![rec("a", 1, 0, Some(0)), rec("b", 2, DAY, Some(2 * DAY))];
    keys[0].retired_at = Some(t(3 * DAY));
    let sched = schedule(&keys, s.verify_tail);
    // Retiring a key that already stopped signing changes nothing of its window.
    assert_eq!(sched[0].signs_until, Some(t(2 * DAY)));
    keys[0].revoked = true;
    let sched = schedule(&keys, s.verify_tail);
    assert_eq!(sched[0].state(t(3 * DAY), Some(2)), KeyState::Revoked);
    assert!(sched[0].verifies_until.is_some_and(|u| u < t(0)));
    // A next key retired before it signs never signs.
    let mut keys = vec![rec("a", 1, 0, Some(0)), rec("b", 2, DAY, Some(2 * DAY))];
    keys[1].retired_at = Some(t(DAY + MIN));
    let sched = schedule(&keys, s.verify_tail);
    assert_eq!(sched[1].signs_from, None);
    assert_eq!(sched[0].signs_until, None, "the old key keeps signing");
    assert_eq!(current_generation(&sched, t(3 * DAY)), Some(1));
}

#[test]
fn manual_rotation() {
    let s = settings();
    let one = vec![rec("a", 1, 0, Some(0))];
    assert_eq!(
        plan_manual_rotation(&one, t(DAY), &s, false),
        Ok(KeyAction::Insert {
            generation: 2,
            algorithm: SignatureAlgorithm::EdDSA,
            activate_at: Some(t(DAY + 10 * MIN)),
        })
    );
    assert_eq!(
        plan_manual_rotation(&one, t(DAY), &s, true),
        Ok(KeyAction::Insert {
            generation: 2,
            algorithm: SignatureAlgorithm::EdDSA,
            activate_at: Some(t(DAY + 1000)),
        })
    );
    // A key generated an hour ago has been published long enough: it signs from the next
    // second (tokens of this second keep their key).
    let standby = vec![rec("a", 1, 0, Some(0)), rec("b", 2, DAY - 60 * MIN, None)];
    assert_eq!(
        plan_manual_rotation(&standby, t(DAY), &s, false),
        Ok(KeyAction::Schedule {
            kid: "b".into(),
            was: None,
            at: t(DAY + 1000),
        })
    );
    let scheduled = vec![
        rec("a", 1, 0, Some(0)),
        rec("b", 2, DAY, Some(DAY + 10 * MIN)),
    ];
    assert!(matches!(
        plan_manual_rotation(&scheduled, t(DAY), &s, false),
        Err(KeyProblem::AlreadyScheduled(k, _)) if k == "b"
    ));
    assert_eq!(
        plan_manual_rotation(&scheduled, t(DAY), &s, true),
        Ok(KeyAction::Schedule {
            kid: "b".into(),
            was: Some(t(DAY + 10 * MIN)),
            at: t(DAY + 1000),
        })
    );
}

#[test]
fn sealed_keys_open_only_with_their_kek_and_row() {
    let kek = KeyEncryptionKey::derive(&[7; 32]).unwrap();
    let sealed = kek.seal("kid-1", "EdDSA", b"private");
    assert_eq!(
        &kek.open("kid-1", "EdDSA", &sealed).unwrap()[..],
        b"private"
    );
    assert_ne!(
        sealed,
        kek.seal("kid-1", "EdDSA", b"private"),
        "fresh nonce each time"
    );
    assert!(!sealed.windows(7).any(|w| w == b"private"));
    assert_eq!(
        kek.open("kid-2", "EdDSA", &sealed).err(),
        Some(KeyError::Sealed)
    );
    assert_eq!(
        kek.open("kid-1", "ES256", &sealed).err(),
        Some(KeyError::Sealed)
    );
    let other = KeyEncryptionKey::derive(&[8; 32]).unwrap();
    assert_eq!(
        other.open("kid-1", "EdDSA", &sealed).err(),
        Some(KeyError::Sealed)
    );
    let mut broken = sealed.clone();
    *broken.last_mut().unwrap() ^= 1;
    assert!(kek.open("kid-1", "EdDSA", &broken).is_err());
    assert!(kek.open("kid-1", "EdDSA", &sealed[..10]).is_err());
    assert!(KeyEncryptionKey::derive(&[7; 31]).is_err());
}

#[test]
fn times_print_in_utc() {
    assert_eq!(format_time(Timestamp(0)), "1970-01-01 00:00:00 UTC");
    assert_eq!(
        format_time(Timestamp::from_secs(1_800_000_000)),
        "2027-01-15 08:00:00 UTC"
    );
    assert_eq!(
        format_time(Timestamp::from_secs(951_782_400)),
        "2000-02-29 00:00:00 UTC"
    );
}
