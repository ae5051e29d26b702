//! Refresh families and the rotation rule (DESIGN §3.2), the heart of sekisho.
//!
//! A family is one login. It remembers only its current token id, the one just rotated away and
//! when, so its state is bounded however often it rotates. The rule itself is this pure function;
//! stores apply it atomically (SQL stores as a compare-and-swap on `current_jti`, re-deciding
//! under the row lock when the swap loses a race; Redis inside a script) so two refreshes of one
//! token can never both mint successors.

use crate::account::UserId;
use crate::clock::Timestamp;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyRecord {
    pub id: String,
    pub user_id: UserId,
    /// The live refresh token's `jti`, `iat` and `exp` (seconds). Keeping `iat`/`exp` lets the
    /// server re-sign the identical successor for a racing request inside the grace window
    /// without ever storing a token.
    pub current_jti: String,
    pub current_iat: i64,
    pub current_exp: i64,
    pub previous_jti: Option<String>,
    pub rotated_at: Option<Timestamp>,
    pub created_at: Timestamp,
    /// Login time + `jwt.refresh_absolute_lifetime`, in seconds; rotation never extends it.
    pub absolute_exp: i64,
    pub revoked_at: Option<Timestamp>,
}

impl FamilyRecord {
    pub fn current(&self) -> Successor {
        Successor {
            jti: self.current_jti.clone(),
            iat: self.current_iat,
            exp: self.current_exp,
        }
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }

    /// Whether `jti` may still be used: the current token, or the previous one inside the grace
    /// window. Anything else has been rotated away.
    pub fn accepts(&self, jti: &str, now: Timestamp, grace: Duration) -> bool {
        !self.is_revoked() && (self.current_jti == jti || self.in_grace(jti, now, grace))
    }

    fn in_grace(&self, jti: &str, now: Timestamp, grace: Duration) -> bool {
        match (&self.previous_jti, self.rotated_at) {
            (Some(prev), Some(at)) => !grace.is_zero() && prev == jti && now <= at.plus(grace),
            _ => false,
        }
    }
}

/// The `jti`/`iat`/`exp` of a refresh token to hand out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Successor {
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Clone, Debug)]
pub struct RotateRequest {
    pub family_id: String,
    pub presented_jti: String,
    /// Fresh id for the successor, used only if this call wins the rotation.
    pub new_jti: String,
    pub now: Timestamp,
    pub grace: Duration,
    pub idle_lifetime: Duration,
    pub rotate: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RotateOutcome {
    /// This call rotated the family; hand out the new token.
    Rotated(Successor),
    /// The presented token was rotated away moments ago by a racing request: hand out the same
    /// successor that request got.
    Grace(Successor),
    /// Rotation is off: the presented token stays the family's token.
    Unchanged(Successor),
    /// An old token came back: the family has just been revoked (theft detection).
    ReuseDetected,
    Revoked,
    Expired,
    NotFound,
}

/// What a store must write after [`decide_rotation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    None,
    Rotate {
        new: Successor,
        previous_jti: String,
        rotated_at: Timestamp,
    },
    Revoke {
        at: Timestamp,
    },
}

/// The rotation rule. Pure: the store passes in the record it read and applies the returned
/// write only if the record is still as read (under a lock, or as a compare-and-swap).
pub fn decide_rotation(
    record: Option<&FamilyRecord>,
    req: &RotateRequest,
) -> (RotateOutcome, Write) {
    let Some(f) = record else {
        return (RotateOutcome::NotFound, Write::None);
    };
    if f.is_revoked() {
        return (RotateOutcome::Revoked, Write::None);
    }
    let now_s = req.now.secs();
    if f.current_jti == req.presented_jti {
        if f.current_exp <= now_s || f.absolute_exp <= now_s {
            return (RotateOutcome::Expired, Write::None);
        }
        if !req.rotate {
            return (RotateOutcome::Unchanged(f.current()), Write::None);
        }
        let exp = (now_s + req.idle_lifetime.as_secs() as i64).min(f.absolute_exp);
        if exp <= now_s {
            return (RotateOutcome::Expired, Write::None);
        }
        let new = Successor {
            jti: req.new_jti.clone(),
            iat: now_s,
            exp,
        };
        return (
            RotateOutcome::Rotated(new.clone()),
            Write::Rotate {
                new,
                previous_jti: f.current_jti.clone(),
                rotated_at: req.now,
            },
        );
    }
    if f.in_grace(&req.presented_jti, req.now, req.grace) {
        if f.current_exp <= now_s {
            return (RotateOutcome::Expired, Write::None);
        }
        return (RotateOutcome::Grace(f.current()), Write::None);
    }
    // A token of this family that is neither current nor the just-rotated predecessor: someone
    // kept an old copy. Revoke everything so neither the thief nor the victim keeps going.
    (RotateOutcome::ReuseDetected, Write::Revoke { at: req.now })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevokeOutcome {
    Revoked,
    AlreadyRevoked,
    NotFound,
}

/// When a record may be deleted: all of its tokens have expired (the predecessor's `exp` is never
/// later than the current one's), so nothing can be replayed against it any more.
pub fn purgeable_before(now: Timestamp) -> i64 {
    now.secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(5);
    const IDLE: Duration = Duration::from_secs(100);

    fn family() -> FamilyRecord {
        FamilyRecord {
            id: "f".into(),
            user_id: 1,
            current_jti: "a".into(),
            current_iat: 1_000,
            current_exp: 1_100,
            previous_jti: None,
            rotated_at: None,
            created_at: Timestamp::from_secs(1_000),
            absolute_exp: 1_250,
            revoked_at: None,
        }
    }

    fn req(presented: &str, new: &str, now_s: i64) -> RotateRequest {
        RotateRequest {
            family_id: "f".into(),
            presented_jti: presented.into(),
            new_jti: new.into(),
            now: Timestamp::from_secs(now_s),
            grace: GRACE,
            idle_lifetime: IDLE,
            rotate: true,
        }
    }

    fn step(f: &mut FamilyRecord, r: &RotateRequest) {
        let w = decide_rotation(Some(f), r).1;
        apply(f, w);
    }

    fn apply(f: &mut FamilyRecord, w: Write) {
        match w {
            Write::None => {}
            Write::Rotate {
                new,
                previous_jti,
                rotated_at,
            } => {
                f.previous_jti = Some(previous_jti);
                f.rotated_at = Some(rotated_at);
                f.current_jti = new.jti;
                f.current_iat = new.iat;
                f.current_exp = new.exp;
            }
            Write::Revoke { at } => f.revoked_at = Some(at),
        }
    }

    #[test]
    fn current_token_rotates_once_then_racers_get_the_same_successor() {
        let mut f = family();
        let (o, w) = decide_rotation(Some(&f), &req("a", "b", 1_010));
        let Some(succ) = (match &o {
            RotateOutcome::Rotated(s) => Some(s.clone()),
            _ => None,
        }) else {
            panic!("{o:?}")
        };
        assert_eq!(
            succ,
            Successor {
                jti: "b".into(),
                iat: 1_010,
                exp: 1_110
            }
        );
        apply(&mut f, w);
        for new in ["c", "d", "e"] {
            let (o, w) = decide_rotation(Some(&f), &req("a", new, 1_012));
            assert_eq!(o, RotateOutcome::Grace(succ.clone()));
            assert_eq!(w, Write::None);
        }
    }

    #[test]
    fn predecessor_after_grace_is_reuse() {
        let mut f = family();
        step(&mut f, &req("a", "b", 1_010));
        let (o, w) = decide_rotation(Some(&f), &req("a", "x", 1_016));
        assert_eq!(o, RotateOutcome::ReuseDetected);
        assert!(matches!(w, Write::Revoke { .. }));
        apply(&mut f, w);
        assert_eq!(
            decide_rotation(Some(&f), &req("b", "y", 1_017)).0,
            RotateOutcome::Revoked
        );
    }

    #[test]
    fn only_the_immediate_predecessor_gets_grace() {
        let mut f = family();
        step(&mut f, &req("a", "b", 1_010));
        step(&mut f, &req("b", "c", 1_011));
        assert_eq!(
            decide_rotation(Some(&f), &req("b", "z", 1_011)).0,
            RotateOutcome::Grace(f.current())
        );
        assert_eq!(
            decide_rotation(Some(&f), &req("a", "z", 1_011)).0,
            RotateOutcome::ReuseDetected
        );
    }

    #[test]
    fn zero_grace_means_exactly_one_winner() {
        let mut f = family();
        let mut r = req("a", "b", 1_010);
        r.grace = Duration::ZERO;
        step(&mut f, &r);
        let mut r2 = req("a", "c", 1_010);
        r2.grace = Duration::ZERO;
        assert_eq!(
            decide_rotation(Some(&f), &r2).0,
            RotateOutcome::ReuseDetected
        );
    }

    #[test]
    fn rotation_never_passes_the_absolute_lifetime() {
        let mut f = family();
        step(&mut f, &req("a", "b", 1_090));
        assert_eq!(f.current_exp, 1_190);
        step(&mut f, &req("b", "c", 1_180));
        assert_eq!(f.current_exp, 1_250, "capped at the absolute expiry");
        assert_eq!(
            decide_rotation(Some(&f), &req("c", "d", 1_250)).0,
            RotateOutcome::Expired
        );
    }

    #[test]
    fn idle_expiry_and_missing_family() {
        let f = family();
        assert_eq!(
            decide_rotation(Some(&f), &req("a", "b", 1_100)).0,
            RotateOutcome::Expired
        );
        assert_eq!(
            decide_rotation(None, &req("a", "b", 1_000)).0,
            RotateOutcome::NotFound
        );
    }

    #[test]
    fn without_rotation_the_token_stays() {
        let f = family();
        let mut r = req("a", "b", 1_010);
        r.rotate = false;
        assert_eq!(
            decide_rotation(Some(&f), &r),
            (RotateOutcome::Unchanged(f.current()), Write::None)
        );
    }

    #[test]
    fn accepts_current_and_predecessor_in_grace_only() {
        let mut f = family();
        step(&mut f, &req("a", "b", 1_010));
        let now = Timestamp::from_secs(1_012);
        assert!(f.accepts("b", now, GRACE));
        assert!(f.accepts("a", now, GRACE));
        assert!(!f.accepts("a", Timestamp::from_secs(1_020), GRACE));
        assert!(!f.accepts("zz", now, GRACE));
    }
}
