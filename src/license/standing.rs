//! Whether admin functions are open: the cached answer, aged against the lifecycle. An active
//! answer is good until its next check (at most [`RECHECK`] after it was given); when that
//! check cannot reach the server, [`GRACE`] more; then, or on any other status, admin
//! functions lock. The client area never locks.

use serde::Serialize;

use super::cache::Cached;
use super::protocol::{Answer, Status};
use crate::store::rfc3339;

/// How long an answer stands before it is verified again.
pub const RECHECK: i64 = 7 * 86_400;
/// How long past that an unreachable server is forgiven.
pub const GRACE: i64 = 3 * 86_400;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "standing", rename_all = "snake_case")]
pub enum Standing {
    /// No key configured: nothing is checked and nothing locks.
    Unlicensed,
    /// Verified and not yet due.
    Active { answer: Answer, due_at: String },
    /// Due, and not re-verified since: admin functions lock at `locks_at`.
    Grace { answer: Answer, due_at: String, locks_at: String, hours_left: i64 },
    /// Admin functions are locked, for `reason`.
    Locked { reason: String, answer: Option<Answer> },
}

impl Standing {
    pub fn name(&self) -> &'static str {
        match self {
            Standing::Unlicensed => "unlicensed",
            Standing::Active { .. } => "active",
            Standing::Grace { .. } => "grace",
            Standing::Locked { .. } => "locked",
        }
    }

    pub fn is_locked(&self) -> bool {
        matches!(self, Standing::Locked { .. })
    }
}

/// When an answer is due for its next check: the server's date, but never later than a week.
pub fn due_at(answer: &Answer) -> i64 {
    answer.next_check_at.timestamp().min(answer.checked_at.timestamp() + RECHECK)
}

/// The standing of a configured key, given what the cache holds, at `now`.
pub fn judge(cached: &Cached, now: i64) -> Standing {
    let locked = |reason: String| Standing::Locked { reason, answer: None };
    let answer = match cached {
        Cached::Missing => {
            return locked("the license has never been verified on this host (no signed answer cached)".into());
        }
        Cached::Unreadable(why) => return locked(format!("the cached license answer is unreadable: {why}")),
        Cached::Tampered(why) => return locked(format!("the cached license answer is not genuine: {why}")),
        Cached::OtherKey { key_id } => {
            return locked(format!("the cached license answer is for another key (id {key_id}): verify the new key"));
        }
        Cached::Answer(a) => a,
    };
    if answer.status != Status::Active {
        let why = if answer.reason.is_empty() { String::new() } else { format!(": {}", answer.reason) };
        return Standing::Locked {
            reason: format!("the license is {}{why}", answer.status),
            answer: Some(answer.clone()),
        };
    }
    let due = due_at(answer);
    if now < due {
        return Standing::Active { answer: answer.clone(), due_at: rfc3339(due) };
    }
    let locks = due + GRACE;
    if now < locks {
        return Standing::Grace {
            answer: answer.clone(),
            due_at: rfc3339(due),
            locks_at: rfc3339(locks),
            hours_left: (locks - now) / 3600,
        };
    }
    Standing::Locked {
        reason: format!(
            "the license has not been re-verified since {}: the licensing server was unreachable for the whole \
             3-day grace that ended {}",
            rfc3339(answer.checked_at.timestamp()),
            rfc3339(locks)
        ),
        answer: Some(answer.clone()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::license::protocol::Binding;

    fn answer(status: Status, checked: i64, next: i64) -> Answer {
        Answer {
            key_id: "k".into(),
            status,
            binding: Binding::default(),
            reason: "payment overdue".into(),
            checked_at: Utc.timestamp_opt(checked, 0).unwrap(),
            next_check_at: Utc.timestamp_opt(next, 0).unwrap(),
        }
    }

    #[test]
    fn an_active_answer_ages_through_grace_into_a_lock() {
        let t0 = 1_800_000_000;
        let cached = Cached::Answer(answer(Status::Active, t0, t0 + 30 * 86_400));
        assert_eq!(judge(&cached, t0 + RECHECK - 1).name(), "active", "a week at most, whatever the server says");
        let Standing::Grace { hours_left, .. } = judge(&cached, t0 + RECHECK) else { panic!("grace") };
        assert_eq!(hours_left, 72);
        let Standing::Grace { hours_left, .. } = judge(&cached, t0 + RECHECK + GRACE - 3600) else { panic!() };
        assert_eq!(hours_left, 1);
        let Standing::Locked { reason, .. } = judge(&cached, t0 + RECHECK + GRACE) else { panic!("locked") };
        assert!(reason.contains("3-day grace"), "{reason}");
    }

    #[test]
    fn a_verdict_other_than_active_locks_at_once_with_the_servers_reason() {
        for status in [Status::Invalid, Status::Suspended, Status::Expired] {
            let Standing::Locked { reason, .. } = judge(&Cached::Answer(answer(status, 0, 86_400)), 1) else {
                panic!("{status} must lock")
            };
            assert_eq!(reason, format!("the license is {status}: payment overdue"));
        }
    }

    #[test]
    fn no_genuine_answer_locks_and_says_which() {
        assert!(format!("{:?}", judge(&Cached::Missing, 0)).contains("never been verified"));
        assert!(format!("{:?}", judge(&Cached::Tampered("sig".into()), 0)).contains("not genuine"));
        assert!(format!("{:?}", judge(&Cached::OtherKey { key_id: "x".into() }, 0)).contains("another key"));
    }
}
