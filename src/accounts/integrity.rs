//! The accounts rules, checked on the stored data: what `accounts.integrity` reports. Each fact
//! is one query on indexed columns or on a table kept in step by triggers, so the check stays
//! fast however many users there are.

use std::collections::BTreeMap;

use super::{Accounts, Permission};
use crate::config::Backend;
use crate::error::Result;

/// The triggers of migration 0017 that keep `owner_not_member`, and how many there are on each
/// database.
const OWNER_TRIGGERS: &str = "owner_not_member_%";
const OWNER_TRIGGERS_SQLITE: i64 = 6;
const OWNER_TRIGGERS_POSTGRES: i64 = 4;

/// What breaks the accounts rules, and how much there is.
#[derive(Debug, Default)]
pub struct Integrity {
    /// Clients whose owner is not one of their members.
    pub owner_not_member: Vec<i64>,
    /// True when the triggers that list them were missing or disabled, so every client was
    /// read instead.
    pub owner_triggers_missing: bool,
    /// Open clients whose owner has no password (so cannot sign in).
    pub owner_without_password: Vec<i64>,
    /// Users whose email is in a banned domain (or, with `banned_email_subdomains`, under one).
    pub users_in_banned_domains: Vec<i64>,
    /// Permission keys stored in memberships that this version does not know, with how often.
    pub unknown_permission_keys: BTreeMap<String, usize>,
    /// Invitations past their expiry, neither accepted nor cancelled.
    pub stale_invites: i64,
    pub clients: i64,
    pub users: i64,
}

impl Accounts {
    /// The rules checked as of `now` (the caller's clock, for the invitations' expiry).
    pub async fn integrity(&self, now: i64) -> Result<Integrity> {
        let pool = self.db.pool();
        let ids = |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_all(pool).await };
        let owner_triggers_missing = !self.owner_triggers_in_place().await?;
        let mut owner_not_member = if owner_triggers_missing {
            // Unordered, so the clients are read from their owner index alone; sorted here.
            ids("SELECT c.id FROM clients c LEFT JOIN memberships m ON m.client_id = c.id AND m.user_id = c.owner_user_id \
                 WHERE m.user_id IS NULL")
            .await?
        } else {
            ids("SELECT client_id FROM owner_not_member ORDER BY client_id").await?
        };
        owner_not_member.sort_unstable();
        // From the few users without a password to their clients, by index (a join from
        // clients would read every client).
        let owner_without_password = ids("SELECT c.id FROM clients c WHERE c.status <> 'closed' \
             AND c.owner_user_id IN (SELECT id FROM users WHERE password_hash IS NULL) ORDER BY c.id")
        .await?;

        // One pass over the users for every banned domain together (the banned list is small
        // and read once), however many domains are banned — and none when none is: a domain
        // matched from the end of an address cannot be read from an index.
        let subdomains = if self.policy().banned_email_subdomains { 1 } else { 0 };
        let banned: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM (SELECT 1 FROM banned_email_domains LIMIT 1) AS any_ban")
                .fetch_one(pool)
                .await?;
        let users_in_banned_domains: Vec<i64> = if banned == 0 {
            Vec::new()
        } else {
            sqlx::query_scalar(
                "SELECT DISTINCT u.id FROM users u JOIN banned_email_domains b \
             ON u.email_norm LIKE '%@' || b.domain OR ($1 = 1 AND u.email_norm LIKE '%@%.' || b.domain) ORDER BY u.id",
            )
            .bind(subdomains)
            .fetch_all(pool)
            .await?
        };

        // Distinct permission sets are few however many memberships there are: they are read
        // by skipping through the index from one set to the next (not by reading every row),
        // and only a set holding an unknown key is counted.
        let sets: Vec<String> = sqlx::query_scalar(
            "WITH RECURSIVE sets(permissions) AS (SELECT MIN(permissions) FROM memberships UNION ALL \
             SELECT (SELECT MIN(m.permissions) FROM memberships m WHERE m.permissions > sets.permissions) \
             FROM sets WHERE sets.permissions IS NOT NULL) SELECT permissions FROM sets WHERE permissions IS NOT NULL",
        )
        .fetch_all(pool)
        .await?;
        let mut unknown_permission_keys: BTreeMap<String, usize> = BTreeMap::new();
        for set in &sets {
            let unknown: Vec<&str> =
                set.split(',').map(str::trim).filter(|k| !k.is_empty() && k.parse::<Permission>().is_err()).collect();
            if unknown.is_empty() {
                continue;
            }
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE permissions = $1")
                .bind(set)
                .fetch_one(pool)
                .await?;
            for key in unknown {
                *unknown_permission_keys.entry(key.to_string()).or_default() += count as usize;
            }
        }

        let stale_invites = sqlx::query_scalar(
            "SELECT COUNT(*) FROM invites WHERE accepted_at IS NULL AND cancelled_at IS NULL AND expires_at <= $1",
        )
        .bind(now)
        .fetch_one(pool)
        .await?;
        let clients = sqlx::query_scalar("SELECT COUNT(*) FROM clients").fetch_one(pool).await?;
        let users = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await?;
        Ok(Integrity {
            owner_not_member,
            owner_triggers_missing,
            owner_without_password,
            users_in_banned_domains,
            unknown_permission_keys,
            stale_invites,
            clients,
            users,
        })
    }

    /// Whether every trigger that keeps `owner_not_member` exists on its tables and fires for
    /// ordinary sessions. A dropped or disabled one (`ALTER TABLE … DISABLE TRIGGER`, or
    /// `ENABLE REPLICA TRIGGER`, which fires only for replication) would let the table fall
    /// behind, so the check then reads every client instead.
    async fn owner_triggers_in_place(&self) -> Result<bool> {
        let (sql, expected) = match self.db.backend() {
            Backend::Sqlite => (
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE $1 \
                 AND tbl_name IN ('clients', 'memberships')",
                OWNER_TRIGGERS_SQLITE,
            ),
            Backend::Postgres => (
                "SELECT COUNT(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
                 WHERE c.relnamespace = current_schema()::regnamespace AND c.relname IN ('clients', 'memberships') \
                 AND t.tgname LIKE $1 AND t.tgenabled IN ('O', 'A')",
                OWNER_TRIGGERS_POSTGRES,
            ),
        };
        let found: i64 = sqlx::query_scalar(sql).bind(OWNER_TRIGGERS).fetch_one(self.db.pool()).await?;
        Ok(found == expected)
    }
}
