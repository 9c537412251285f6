//! `accounts.password_hashes`: legacy or below-policy password hashes, upgraded at each
//! user's next login.

use std::collections::BTreeMap;

use super::accounts_integrity::EVIDENCE_IDS;
use super::sample;
use crate::accounts::HashCensus;
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome, judged};
use crate::doctor::context::Context;
use crate::secrets::passwords::HashKind;

pub struct PasswordHashes;

static HASHES: Meta = Meta {
    id: "accounts.password_hashes",
    title: "Password hashes meet the policy",
    tags: &["accounts", "security"],
    symptom: "None visible: weak hashes only matter once the database leaks.",
    cause: "Users imported from an older system keep bcrypt or salted-MD5 hashes, or argon2 hashes made with \
            weaker parameters, until they next log in.",
    next_steps: "Nothing is required: each such hash is upgraded to argon2id at the user's next login. To hurry \
                 it, send those users a password reset.",
    prerequisites: &["database.connectivity"],
    ..Meta::BASE
};

impl Check for PasswordHashes {
    fn meta(&self) -> &'static Meta {
        &HASHES
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        judged(async move {
            let accounts = ctx.accounts().await?;
            let census =
                accounts.password_hash_census().await.map_err(|e| Outcome::error(format!("cannot read users: {e}")))?;
            Ok(judge(&census))
        })
    }
}

/// The verdict on the stored hashes: one in no known format fails (that user cannot log in);
/// legacy or below-policy ones warn (each is upgraded at its user's next login).
fn judge(census: &HashCensus) -> Outcome {
    let current = census.with_password - census.off_policy.len() as i64;
    let mut kinds: BTreeMap<HashKind, usize> = BTreeMap::new();
    if current > 0 {
        kinds.insert(HashKind::Argon2id, current as usize);
    }
    let mut legacy = Vec::new();
    let mut unknown = Vec::new();
    for (id, hash) in &census.off_policy {
        let kind = HashKind::of(hash);
        *kinds.entry(kind).or_default() += 1;
        match kind {
            HashKind::Argon2id => {}
            HashKind::Unknown | HashKind::TooCostly => unknown.push(*id),
            _ => legacy.push(*id),
        }
    }
    let outcome = if !unknown.is_empty() {
        Outcome::fail(format!(
            "{} user(s) have a password hash in no known format, or costlier than gatehouse verifies: they cannot log in",
            unknown.len()
        ))
            .remediation("Send those users a password reset; check how they were imported.")
    } else if !legacy.is_empty() {
        Outcome::warn(format!(
            "{} user(s) have legacy or below-policy hashes, upgraded at their next login",
            legacy.len()
        ))
    } else {
        Outcome::pass(format!("all {} password hash(es) are argon2id at or above the policy", census.with_password))
    };
    outcome
        .with("by_kind", &kinds)
        .with("legacy_users", sample(&legacy, EVIDENCE_IDS))
        .with("unknown_format_users", sample(&unknown, EVIDENCE_IDS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::model::Status;

    const BCRYPT: &str = "$2y$10$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01";
    /// An argon2id hash above the policy (more memory), so not at its exact prefix.
    const STRONGER: &str = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA";

    fn census(with_password: i64, off_policy: &[(i64, &str)]) -> HashCensus {
        HashCensus { with_password, off_policy: off_policy.iter().map(|(id, h)| (*id, h.to_string())).collect() }
    }

    #[test]
    fn hashes_at_or_above_the_policy_pass() {
        let outcome = judge(&census(10, &[(3, STRONGER)]));
        assert_eq!(outcome.status, Status::Pass);
        assert_eq!(outcome.message, "all 10 password hash(es) are argon2id at or above the policy");
        assert_eq!(outcome.evidence["by_kind"]["argon2id"], 10);
    }

    #[test]
    fn legacy_hashes_warn_and_unknown_ones_fail_naming_the_users() {
        let legacy = judge(&census(10, &[(4, BCRYPT)]));
        assert_eq!(legacy.status, Status::Warn);
        assert_eq!(legacy.evidence["legacy_users"], serde_json::json!([4]));
        assert_eq!(legacy.evidence["by_kind"], serde_json::json!({"argon2id": 9, "bcrypt": 1}));
        let unknown = judge(&census(10, &[(4, BCRYPT), (7, "plaintext?")]));
        assert_eq!(unknown.status, Status::Fail);
        assert_eq!(unknown.evidence["unknown_format_users"], serde_json::json!([7]));
    }
}
