//! `accounts.password_hashes`: legacy or below-policy password hashes, upgraded at each
//! user's next login.

use std::collections::BTreeMap;

use super::accounts_integrity::EVIDENCE_IDS;
use super::sample;
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome, judged};
use crate::doctor::context::Context;

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
            let pool = accounts.db().pool();
            let failed = |e: sqlx::Error| Outcome::error(format!("cannot read users: {e}"));
            // Only the hashes not made at the policy — few, and fewer with each login that
            // upgrades one — are read; the rest are counted from indexes (all users, less
            // those without a password), so the check reads one column once.
            let at_policy = format!("{}%", crate::secrets::passwords::POLICY_PREFIX);
            let (total,): (i64,) = sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM users) - (SELECT COUNT(*) FROM users WHERE password_hash IS NULL)",
            )
            .fetch_one(pool)
            .await
            .map_err(failed)?;
            let rows: Vec<(i64, String)> = sqlx::query_as(
                "SELECT id, password_hash FROM users WHERE password_hash IS NOT NULL AND password_hash NOT LIKE $1 \
                 ORDER BY id",
            )
            .bind(&at_policy)
            .fetch_all(pool)
            .await
            .map_err(failed)?;
            let current = total - rows.len() as i64;
            let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
            if current > 0 {
                kinds.insert("argon2id", current as usize);
            }
            let mut legacy = Vec::new();
            let mut unknown = Vec::new();
            for (id, hash) in &rows {
                let kind = crate::secrets::passwords::hash_kind(hash);
                *kinds.entry(kind).or_default() += 1;
                match kind {
                    "argon2id" => {}
                    "unknown" => unknown.push(*id),
                    _ => legacy.push(*id),
                }
            }
            let outcome = if !unknown.is_empty() {
                Outcome::fail(format!(
                    "{} user(s) have a password hash in no known format: they cannot log in",
                    unknown.len()
                ))
                .remediation("Send those users a password reset; check how they were imported.")
            } else if !legacy.is_empty() {
                Outcome::warn(format!(
                    "{} user(s) have legacy or below-policy hashes, upgraded at their next login",
                    legacy.len()
                ))
            } else {
                Outcome::pass(format!("all {total} password hash(es) are argon2id at or above the policy"))
            };
            Ok(outcome
                .with("by_kind", &kinds)
                .with("legacy_users", sample(&legacy, EVIDENCE_IDS))
                .with("unknown_format_users", sample(&unknown, EVIDENCE_IDS)))
        })
    }
}
