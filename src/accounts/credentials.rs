//! The credential columns of a user: password hash upgrades and replacement, and the two-factor
//! settings (TOTP secret, last accepted step, backup code). Each write that matters for security
//! is conditional on the value it replaces, so two concurrent uses cannot both succeed.

use serde_json::{Value, json};
use sqlx::AnyConnection;

use super::{Accounts, Actor, TwoFaMethod, audit};
use crate::error::Result;

/// Appends an audit entry inside the caller's transaction (for services outside `accounts`).
pub async fn record_in(
    conn: &mut AnyConnection,
    now: i64,
    actor: &Actor,
    action: &str,
    target: (&str, Option<i64>),
    details: Value,
) -> Result<()> {
    audit::record(conn, now, actor, action, target, details).await
}

/// Replaces the password hash inside the caller's transaction, with an audit entry.
pub async fn store_password_hash_in(
    conn: &mut AnyConnection,
    now: i64,
    actor: &Actor,
    user_id: i64,
    hash: &str,
    action: &str,
) -> Result<()> {
    sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(hash)
        .bind(now)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    revoke_reset_links(conn, user_id).await?;
    audit::record(conn, now, actor, action, ("user", Some(user_id)), json!({})).await
}

/// A reset link asked for before the password or the email changed is for a state that no
/// longer holds: every link still out is deleted with the change.
pub async fn revoke_reset_links(conn: &mut AnyConnection, user_id: i64) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM one_time_tokens WHERE user_id = $1 AND purpose = 'password_reset' AND used_at IS NULL")
        .bind(user_id)
        .execute(conn)
        .await?
        .rows_affected())
}

impl Accounts {
    /// Appends one audit entry on its own (security events that change nothing else).
    pub async fn record_event(
        &self,
        actor: &Actor,
        action: &str,
        target: (&str, Option<i64>),
        details: Value,
    ) -> Result<()> {
        let mut conn = self.db.pool().acquire().await?;
        audit::record(&mut conn, self.db.now(), actor, action, target, details).await
    }

    pub async fn store_password_hash(&self, actor: &Actor, user_id: i64, hash: &str) -> Result<()> {
        let mut tx = self.db.begin().await?;
        store_password_hash_in(&mut tx, self.db.now(), actor, user_id, hash, "user.password_changed").await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a legacy or weak hash that just verified by a fresh argon2id hash, unless the
    /// password changed meanwhile.
    pub async fn upgrade_password_hash(&self, actor: &Actor, user_id: i64, old: &str, new: &str) -> Result<bool> {
        let mut tx = self.db.begin().await?;
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3")
            .bind(new)
            .bind(user_id)
            .bind(old)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if done {
            let kind = crate::secrets::passwords::HashKind::of(old);
            audit::record(
                &mut tx,
                self.db.now(),
                actor,
                "user.password_rehashed",
                ("user", Some(user_id)),
                json!({"from": kind}),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Records `step` as the last accepted TOTP step; false if it (or a later one) was already used.
    pub async fn advance_totp_step(&self, user_id: i64, step: i64) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
        )
        .bind(step)
        .bind(user_id)
        .execute(self.db.pool())
        .await?
        .rows_affected()
            == 1)
    }

    /// Swaps the backup code hash; false if the old code was already spent by someone else.
    pub async fn replace_backup_code(&self, user_id: i64, old_hash: &str, new_hash: &str) -> Result<bool> {
        Ok(sqlx::query("UPDATE users SET backup_code_hash = $1 WHERE id = $2 AND backup_code_hash = $3")
            .bind(new_hash)
            .bind(user_id)
            .bind(old_hash)
            .execute(self.db.pool())
            .await?
            .rows_affected()
            == 1)
    }

    pub async fn set_totp(
        &self,
        actor: &Actor,
        user_id: i64,
        secret: &str,
        step: i64,
        backup_hash: &str,
    ) -> Result<()> {
        let mut tx = self.db.begin().await?;
        sqlx::query(
            "UPDATE users SET twofa_method = $1, totp_secret = $2, totp_last_step = $3, backup_code_hash = $4, \
             updated_at = $5 WHERE id = $6",
        )
        .bind(TwoFaMethod::Totp.as_str())
        .bind(secret)
        .bind(step)
        .bind(backup_hash)
        .bind(self.db.now())
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            "twofa.enabled",
            ("user", Some(user_id)),
            json!({"method": TwoFaMethod::Totp}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Makes Duo the user's second factor (enrolment with Duo happens at Duo's prompt).
    pub async fn set_duo(&self, actor: &Actor, user_id: i64) -> Result<()> {
        let mut tx = self.db.begin().await?;
        sqlx::query("UPDATE users SET twofa_method = $1, updated_at = $2 WHERE id = $3")
            .bind(TwoFaMethod::Duo.as_str())
            .bind(self.db.now())
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            "twofa.enabled",
            ("user", Some(user_id)),
            json!({"method": TwoFaMethod::Duo}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Turns every second factor of the user off (the user with the password, or an admin).
    pub async fn clear_twofa(&self, actor: &Actor, user_id: i64) -> Result<()> {
        self.user(user_id).await?;
        let mut tx = self.db.begin().await?;
        sqlx::query(
            "UPDATE users SET twofa_method = NULL, totp_secret = NULL, totp_last_step = NULL, backup_code_hash = NULL, \
             updated_at = $1 WHERE id = $2",
        )
        .bind(self.db.now())
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        audit::record(&mut tx, self.db.now(), actor, "twofa.disabled", ("user", Some(user_id)), json!({})).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The password hashes as the policy sees them, read so that a large user table costs one
/// index count and the few hashes not made at the policy.
#[derive(Debug, Default)]
pub struct HashCensus {
    /// Users with a password.
    pub with_password: i64,
    /// `(user id, hash)` for each hash that does not begin with the policy's parameters, by id.
    pub off_policy: Vec<(i64, String)>,
}

impl Accounts {
    pub async fn password_hash_census(&self) -> Result<HashCensus> {
        let pool = self.db.pool();
        // All users less those without a password: both counted from indexes.
        let with_password: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM users) - (SELECT COUNT(*) FROM users WHERE password_hash IS NULL)",
        )
        .fetch_one(pool)
        .await?;
        let off_policy = sqlx::query_as(
            "SELECT id, password_hash FROM users WHERE password_hash IS NOT NULL AND password_hash NOT LIKE $1 \
             ORDER BY id",
        )
        .bind(format!("{}%", crate::secrets::passwords::POLICY_PREFIX))
        .fetch_all(pool)
        .await?;
        Ok(HashCensus { with_password, off_policy })
    }
}
