//! Whether admin functions are open: the cached answer, aged against the lifecycle. An active
//! answer is good until its next check (at most [`RECHECK`] after it was given); when that
//! check cannot reach the server, [`GRACE`] more; then, or on any other status, admin
//! functions lock. The client area never locks.

use serde::Serialize;

use super::cache::Cached;
use super::protocol::{Answer, Binding, Facts, Status};
use crate::store::rfc3339;

/// How long an answer stands before it is verified again.
pub const RECHECK: i64 = 7 * 86_400;
/// How long past that an unreachable server is forgiven (and how long a new key may wait for
/// its first answer).
pub const GRACE: i64 = 3 * 86_400;
/// How far an answer's date may lie ahead of this machine's time before it is not believed.
pub const SKEW: i64 = 300;

/// This install, as standing compares it with a cached answer.
#[derive(Debug, Clone)]
pub struct Here {
    /// Domain, directory and (once a verification ran in this process) the IP it came from.
    pub facts: Facts,
    /// When the first verification of this install was attempted, if one was.
    pub first_attempt_at: Option<i64>,
    /// The date of the newest answer applied here, if any: an older one is not believed.
    pub last_applied_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "standing", rename_all = "snake_case")]
pub enum Standing {
    /// No key configured: nothing is checked and nothing locks.
    Unlicensed,
    /// Verified and not yet due.
    Active { answer: Answer, due_at: String },
    /// Due, and not re-verified since: admin functions lock at `locks_at`.
    Grace { answer: Answer, due_at: String, locks_at: String, hours_left: i64 },
    /// A key whose first verification has not been answered yet: the same grace, counted from
    /// the first attempt.
    FirstVerification { since: String, locks_at: String, hours_left: i64 },
    /// Admin functions are locked, for `reason`.
    Locked { reason: String, answer: Option<Answer> },
}

impl Standing {
    pub fn name(&self) -> &'static str {
        match self {
            Standing::Unlicensed => "unlicensed",
            Standing::Active { .. } => "active",
            Standing::Grace { .. } | Standing::FirstVerification { .. } => "grace",
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

/// The standing of a configured key, given what the cache holds, for this install, at `now`
/// (never earlier than the high-water mark: see `memory`).
pub fn judge(cached: &Cached, here: &Here, now: i64) -> Standing {
    let locked = |reason: String| Standing::Locked { reason, answer: None };
    let answer = match cached {
        Cached::Missing => {
            return match here.first_attempt_at {
                Some(first) if now < first + GRACE => Standing::FirstVerification {
                    since: rfc3339(first),
                    locks_at: rfc3339(first + GRACE),
                    hours_left: (first + GRACE - now) / 3600,
                },
                Some(first) => locked(format!(
                    "the license has never been verified on this host: no answer since the first attempt at {}, \
                     and the 3-day grace for a first verification has ended",
                    rfc3339(first)
                )),
                None => locked("the license has never been verified on this host (no signed answer cached)".into()),
            };
        }
        Cached::Unreadable(why) => return locked(format!("the cached license answer is unreadable: {why}")),
        Cached::Tampered(why) => return locked(format!("the cached license answer is not genuine: {why}")),
        Cached::OtherKey { key_id } => {
            return locked(format!("the cached license answer is for another key (id {key_id}): verify the new key"));
        }
        Cached::Answer(a) => a,
    };
    if here.last_applied_at.is_some_and(|newest| answer.checked_at.timestamp() < newest) {
        return Standing::Locked {
            reason: format!(
                "the cached answer (of {}) is older than the newest one this install applied (of {}): a cache \
                 restored from a copy, or an answer replayed; verify the license",
                rfc3339(answer.checked_at.timestamp()),
                rfc3339(here.last_applied_at.unwrap_or_default())
            ),
            answer: Some(answer.clone()),
        };
    }
    if answer.checked_at.timestamp() > now + SKEW {
        return Standing::Locked {
            reason: format!(
                "the cached answer is dated {}, later than this machine's time {}: a clock turned back, or an \
                 answer that is not genuine",
                rfc3339(answer.checked_at.timestamp()),
                rfc3339(now)
            ),
            answer: Some(answer.clone()),
        };
    }
    // A copied cache speaks for the install it was answered to, not for this one. The IP is
    // compared once a verification in this process has told which address reaches the server.
    let binding = match here.facts.ip {
        Some(_) => answer.binding.clone(),
        None => Binding { ips: Vec::new(), ..answer.binding.clone() },
    };
    let elsewhere = binding.mismatches(&here.facts, "this install");
    if !elsewhere.is_empty() {
        return Standing::Locked {
            reason: format!(
                "the cached answer was given to another installation ({}): verify the license here, or ask the \
                 vendor to reissue it",
                elsewhere.join("; ")
            ),
            answer: Some(answer.clone()),
        };
    }
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

    fn here() -> Here {
        Here {
            facts: Facts { domain: Some("portal.example.com".into()), ip: None, directory: "/srv/gatehouse".into() },
            first_attempt_at: None,
            last_applied_at: None,
        }
    }

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
        assert_eq!(
            judge(&cached, &here(), t0 + RECHECK - 1).name(),
            "active",
            "a week at most, whatever the server says"
        );
        let Standing::Grace { hours_left, .. } = judge(&cached, &here(), t0 + RECHECK) else { panic!("grace") };
        assert_eq!(hours_left, 72);
        let Standing::Grace { hours_left, .. } = judge(&cached, &here(), t0 + RECHECK + GRACE - 3600) else { panic!() };
        assert_eq!(hours_left, 1);
        let Standing::Locked { reason, .. } = judge(&cached, &here(), t0 + RECHECK + GRACE) else { panic!("locked") };
        assert!(reason.contains("3-day grace"), "{reason}");
    }

    #[test]
    fn a_verdict_other_than_active_locks_at_once_with_the_servers_reason() {
        for status in [Status::Invalid, Status::Suspended, Status::Expired] {
            let Standing::Locked { reason, .. } = judge(&Cached::Answer(answer(status, 0, 86_400)), &here(), 1) else {
                panic!("{status} must lock")
            };
            assert_eq!(reason, format!("the license is {status}: payment overdue"));
        }
    }

    #[test]
    fn no_genuine_answer_locks_and_says_which() {
        assert!(format!("{:?}", judge(&Cached::Missing, &here(), 0)).contains("never been verified"));
        assert!(format!("{:?}", judge(&Cached::Tampered("sig".into()), &here(), 0)).contains("not genuine"));
        assert!(format!("{:?}", judge(&Cached::OtherKey { key_id: "x".into() }, &here(), 0)).contains("another key"));
    }

    #[test]
    fn a_copied_cache_counts_only_where_its_binding_matches() {
        let t0 = 1_800_000_000;
        let mut bound = answer(Status::Active, t0, t0 + 86_400);
        bound.binding = Binding { directories: vec!["/srv/site1".into()], ..Binding::default() };
        let Standing::Locked { reason, .. } = judge(&Cached::Answer(bound.clone()), &here(), t0 + 60) else {
            panic!("a cache bound to another directory must lock")
        };
        assert!(
            reason.contains("licensed for directory /srv/site1; this install runs from /srv/gatehouse"),
            "{reason}"
        );
        bound.binding.directories = vec!["/srv/gatehouse".into()];
        bound.binding.ips = vec!["203.0.113.7".into()];
        assert_eq!(judge(&Cached::Answer(bound.clone()), &here(), t0 + 60).name(), "active", "IP not known yet");
        let mut known = here();
        known.facts.ip = Some("198.51.100.1".into());
        assert_eq!(judge(&Cached::Answer(bound), &known, t0 + 60).name(), "locked", "an IP known to differ");
    }

    #[test]
    fn an_answer_from_the_future_is_not_believed() {
        let t0 = 1_800_000_000;
        let cached = Cached::Answer(answer(Status::Active, t0, t0 + 86_400));
        assert_eq!(judge(&cached, &here(), t0 - SKEW).name(), "active", "a little skew is forgiven");
        let Standing::Locked { reason, .. } = judge(&cached, &here(), t0 - SKEW - 1) else { panic!("locked") };
        assert!(reason.contains("clock turned back"), "{reason}");
    }

    #[test]
    fn a_first_verification_gets_the_grace_from_its_first_attempt() {
        let t0 = 1_800_000_000;
        let waiting = Here { first_attempt_at: Some(t0), ..here() };
        let Standing::FirstVerification { hours_left, .. } = judge(&Cached::Missing, &waiting, t0 + 3600) else {
            panic!("grace")
        };
        assert_eq!(hours_left, 71);
        assert_eq!(judge(&Cached::Missing, &waiting, t0 + GRACE).name(), "locked");
    }

    #[test]
    fn an_answer_older_than_the_newest_applied_is_not_believed() {
        let t0 = 1_800_000_000;
        let old = Cached::Answer(answer(Status::Active, t0, t0 + 86_400));
        let newer_seen = Here { last_applied_at: Some(t0 + 60), ..here() };
        let Standing::Locked { reason, .. } = judge(&old, &newer_seen, t0 + 120) else { panic!("locked") };
        assert!(reason.contains("older than the newest one this install applied"), "{reason}");
        assert_eq!(judge(&old, &Here { last_applied_at: Some(t0), ..here() }, t0 + 120).name(), "active");
    }
}
