//! `accounts.integrity`: the accounts rules, checked on the data itself.

use super::sample;
use crate::accounts::Integrity as Facts;
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome, judged};
use crate::doctor::context::Context;
use crate::doctor::model::Status;

/// How many record ids a finding lists as evidence.
pub(super) const EVIDENCE_IDS: usize = 20;

pub struct Integrity;

static INTEGRITY: Meta = Meta {
    id: "accounts.integrity",
    title: "Accounts data consistent",
    tags: &["accounts"],
    symptom: "An account owner who cannot sign in; users who should not exist; invites that never work.",
    cause: "Data written around the service (imports, manual SQL): clients whose owner has no password or is not \
            a member, users in banned domains, permission keys this version does not know, invites left to expire.",
    next_steps: "Inspect the records listed in the evidence with `gatehouse client show ID` / `gatehouse user show \
                 ID`; set a password for owners (`gatehouse user set-password`), and fix or remove the rest.",
    prerequisites: &["database.connectivity"],
    ..Meta::BASE
};

impl Check for Integrity {
    fn meta(&self) -> &'static Meta {
        &INTEGRITY
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        judged(async move {
            let accounts = ctx.accounts().await?;
            let facts = accounts
                .integrity(ctx.now())
                .await
                .map_err(|e| Outcome::error(format!("cannot read the accounts: {e}")))?;
            Ok(judge(facts))
        })
    }
}

/// The verdict on the accounts rules: a client its owner is not a member of, or a permission
/// this version does not know, fails; what only gets in someone's way warns.
fn judge(facts: Facts) -> Outcome {
    let Facts {
        owner_not_member,
        owner_triggers_missing,
        owner_without_password,
        users_in_banned_domains,
        unknown_permission_keys: unknown,
        stale_invites,
        clients,
        users,
    } = facts;
    let mut status = Status::Pass;
    let mut problems = Vec::new();
    let mut flag = |s: Status, text: String| {
        status = status.max(s);
        problems.push(text);
    };
    if !owner_not_member.is_empty() {
        flag(Status::Fail, format!("{} client(s) whose owner is not a member", owner_not_member.len()));
    }
    if owner_triggers_missing {
        // The answer above is still right (every client was read); what is lost is its speed,
        // and a schema someone changed by hand is worth knowing about.
        flag(
            Status::Warn,
            "the triggers that list clients whose owner is not a member are missing or disabled, so every \
             client was read (`gatehouse migrate` does not restore a dropped trigger: restore the schema \
             from migration 0017, or re-enable it with `ALTER TABLE … ENABLE TRIGGER`)"
                .to_string(),
        );
    }
    if !unknown.is_empty() {
        flag(
            Status::Fail,
            format!(
                "unknown permission keys in memberships: {}",
                unknown.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        );
    }
    if !owner_without_password.is_empty() {
        flag(
            Status::Warn,
            format!(
                "{} open client(s) whose owner has no password and so cannot sign in (send them a reset: \
                 `gatehouse user reset-password`)",
                owner_without_password.len()
            ),
        );
    }
    if !users_in_banned_domains.is_empty() {
        flag(Status::Warn, format!("{} user(s) with an email in a banned domain", users_in_banned_domains.len()));
    }
    if stale_invites > 0 {
        flag(Status::Warn, format!("{stale_invites} invite(s) expired without being accepted or cancelled"));
    }
    let mut outcome = if problems.is_empty() {
        Outcome::pass(format!("{clients} client(s) and {users} user(s) are consistent"))
    } else {
        let mut o = Outcome::fail(problems.join("; "));
        o.status = status;
        o
    };
    outcome = outcome
        .with("clients", clients)
        .with("users", users)
        .with("clients_owner_not_member", sample(&owner_not_member, EVIDENCE_IDS))
        .with("owner_triggers_missing", owner_triggers_missing)
        .with("clients_owner_without_password", sample(&owner_without_password, EVIDENCE_IDS))
        .with("users_in_banned_domains", sample(&users_in_banned_domains, EVIDENCE_IDS))
        .with("unknown_permission_keys", &unknown)
        .with("stale_invites", stale_invites);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistent_accounts_pass() {
        let outcome = judge(Facts { clients: 3, users: 5, ..Facts::default() });
        assert_eq!(outcome.status, Status::Pass);
        assert_eq!(outcome.message, "3 client(s) and 5 user(s) are consistent");
    }

    #[test]
    fn a_broken_rule_fails_and_an_obstacle_warns() {
        let obstacles = Facts { users_in_banned_domains: vec![7], stale_invites: 2, ..Facts::default() };
        let outcome = judge(obstacles);
        assert_eq!(outcome.status, Status::Warn);
        assert_eq!(
            outcome.message,
            "1 user(s) with an email in a banned domain; 2 invite(s) expired without being accepted or cancelled"
        );
        let broken = Facts {
            owner_not_member: vec![1],
            unknown_permission_keys: [("billing.rob".to_string(), 3)].into(),
            stale_invites: 1,
            ..Facts::default()
        };
        let outcome = judge(broken);
        assert_eq!(outcome.status, Status::Fail);
        assert!(outcome.message.contains("unknown permission keys in memberships: billing.rob"), "{}", outcome.message);
        assert_eq!(outcome.evidence["clients_owner_not_member"], serde_json::json!([1]));
    }

    #[test]
    fn evidence_names_at_most_a_sample_of_the_ids() {
        let many = Facts { owner_without_password: (1..=1000).collect(), ..Facts::default() };
        let outcome = judge(many);
        assert!(outcome.message.starts_with("1000 open client(s) whose owner has no password"), "{}", outcome.message);
        assert_eq!(outcome.evidence["clients_owner_without_password"].as_array().map(Vec::len), Some(EVIDENCE_IDS));
    }
}
