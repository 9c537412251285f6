//! `accounts.integrity`: the accounts rules, checked on the data itself.

use std::collections::BTreeMap;

use super::sample;
use crate::accounts::Permission;
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
    symptom: "\"Access denied\" when an admin logs in as a client; users who should not exist; invites that never work.",
    cause: "Data written around the service (imports, manual SQL): clients whose owner has no password or is not \
            a member, users in banned domains, permission keys this version does not know, invites left to expire.",
    next_steps: "Inspect the records listed in the evidence with `gatehouse client show ID` / `gatehouse user show \
                 ID`; set a password for owners (`gatehouse user set-password`), and fix or remove the rest.",
    prerequisites: &["database.connectivity"],
    thresholds: &[],
};

impl Check for Integrity {
    fn meta(&self) -> &'static Meta {
        &INTEGRITY
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        judged(async move {
            let accounts = ctx.accounts().await?;
            let pool = accounts.db().pool();
            let query_ids = |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_all(pool).await };

            let ownerless = query_ids(
                "SELECT c.id FROM clients c LEFT JOIN memberships m ON m.client_id = c.id AND m.user_id = c.owner_user_id \
                 WHERE m.user_id IS NULL ORDER BY c.id",
            )
            .await
            .map_err(|e| Outcome::error(format!("cannot read clients: {e}")))?;
            let passwordless_owners = query_ids(
                "SELECT c.id FROM clients c JOIN users u ON u.id = c.owner_user_id \
                 WHERE u.password_hash IS NULL AND c.status <> 'closed' ORDER BY c.id",
            )
            .await
            .unwrap_or_default();

            let banned: Vec<String> = accounts
                .list_banned_domains()
                .await
                .map(|b| b.into_iter().map(|d| d.domain).collect())
                .unwrap_or_default();
            let subdomains = accounts.policy().banned_email_subdomains;
            let emails: Vec<(i64, String)> = sqlx::query_as("SELECT id, email_norm FROM users ORDER BY id")
                .fetch_all(pool)
                .await
                .unwrap_or_default();
            let banned_users: Vec<i64> = emails
                .iter()
                .filter(|(_, email)| {
                    let domain = email.rsplit('@').next().unwrap_or_default();
                    banned.iter().any(|b| domain == b || (subdomains && domain.ends_with(&format!(".{b}"))))
                })
                .map(|(id, _)| *id)
                .collect();

            let stored: Vec<(i64, i64, String)> =
                sqlx::query_as("SELECT client_id, user_id, permissions FROM memberships")
                    .fetch_all(pool)
                    .await
                    .unwrap_or_default();
            let mut unknown: BTreeMap<String, usize> = BTreeMap::new();
            for (_, _, perms) in &stored {
                for key in perms.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                    if key.parse::<Permission>().is_err() {
                        *unknown.entry(key.to_string()).or_default() += 1;
                    }
                }
            }
            let stale_invites: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM invites WHERE accepted_at IS NULL AND cancelled_at IS NULL AND expires_at <= $1",
            )
            .bind(ctx.now())
            .fetch_one(pool)
            .await
            .unwrap_or(0);
            let clients: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clients").fetch_one(pool).await.unwrap_or(0);
            let users = emails.len();

            let mut status = Status::Pass;
            let mut problems = Vec::new();
            let mut flag = |s: Status, text: String| {
                status = status.max(s);
                problems.push(text);
            };
            if !ownerless.is_empty() {
                flag(Status::Fail, format!("{} client(s) whose owner is not a member", ownerless.len()));
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
            if !passwordless_owners.is_empty() {
                flag(
                    Status::Warn,
                    format!(
                        "{} open client(s) whose owner has no password (admin login-as-client is denied)",
                        passwordless_owners.len()
                    ),
                );
            }
            if !banned_users.is_empty() {
                flag(Status::Warn, format!("{} user(s) with an email in a banned domain", banned_users.len()));
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
                .with("clients_owner_not_member", sample(&ownerless, EVIDENCE_IDS))
                .with("clients_owner_without_password", sample(&passwordless_owners, EVIDENCE_IDS))
                .with("users_in_banned_domains", sample(&banned_users, EVIDENCE_IDS))
                .with("unknown_permission_keys", &unknown)
                .with("stale_invites", stale_invites);
            Ok(outcome)
        })
    }
}
