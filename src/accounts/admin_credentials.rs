//! An admin's credentials for the admin area in the browser: password, TOTP key and backup
//! code. The same rules as users' (`credentials.rs`), on the `admins` table.

use serde_json::json;

use super::{Accounts, Actor, audit};
use crate::error::Result;
use crate::secrets::passwords;

impl Accounts {
    /// Sets an admin's password (the policy's minimum length applies), audited as `action`.
    pub async fn set_admin_password(&self, actor: &Actor, admin_id: i64, password: &str) -> Result<()> {
        self.admin(admin_id).await?;
        let hash = passwords::hash_new_password_async(password, self.policy.password_min_length).await?;
        let mut tx = self.db.begin().await?;
        sqlx::query("UPDATE admins SET password_hash = $1 WHERE id = $2")
            .bind(&hash)
            .bind(admin_id)
            .execute(&mut *tx)
            .await?;
        audit::record(&mut tx, self.db.now(), actor, "admin.password_set", ("admin", Some(admin_id)), json!({}))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a legacy hash that just verified, unless the password changed meanwhile.
    pub async fn upgrade_admin_password_hash(&self, admin_id: i64, old: &str, new: &str) -> Result<()> {
        sqlx::query("UPDATE admins SET password_hash = $1 WHERE id = $2 AND password_hash = $3")
            .bind(new)
            .bind(admin_id)
            .bind(old)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Records the step of an accepted TOTP code; false if it (or a later one) was used already.
    pub async fn advance_admin_totp_step(&self, admin_id: i64, step: i64) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE admins SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
        )
        .bind(step)
        .bind(admin_id)
        .execute(self.db.pool())
        .await?
        .rows_affected()
            == 1)
    }

    /// Swaps the backup code hash; false if the old code was already spent.
    pub async fn replace_admin_backup_code(&self, admin_id: i64, old_hash: &str, new_hash: &str) -> Result<bool> {
        Ok(sqlx::query("UPDATE admins SET backup_code_hash = $1 WHERE id = $2 AND backup_code_hash = $3")
            .bind(new_hash)
            .bind(admin_id)
            .bind(old_hash)
            .execute(self.db.pool())
            .await?
            .rows_affected()
            == 1)
    }

    /// Turns TOTP on for an admin, with the hash of the backup code they were shown.
    pub async fn set_admin_totp(
        &self,
        actor: &Actor,
        admin_id: i64,
        secret: &str,
        step: i64,
        backup_hash: &str,
    ) -> Result<()> {
        let mut tx = self.db.begin().await?;
        sqlx::query("UPDATE admins SET totp_secret = $1, totp_last_step = $2, backup_code_hash = $3 WHERE id = $4")
            .bind(secret)
            .bind(step)
            .bind(backup_hash)
            .bind(admin_id)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            "admin.twofa_enabled",
            ("admin", Some(admin_id)),
            json!({"method": "totp"}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Turns an admin's second factor off (the one who lost their device, from the CLI).
    pub async fn clear_admin_twofa(&self, actor: &Actor, admin_id: i64) -> Result<()> {
        self.admin(admin_id).await?;
        let mut tx = self.db.begin().await?;
        sqlx::query(
            "UPDATE admins SET totp_secret = NULL, totp_last_step = NULL, backup_code_hash = NULL WHERE id = $1",
        )
        .bind(admin_id)
        .execute(&mut *tx)
        .await?;
        audit::record(&mut tx, self.db.now(), actor, "admin.twofa_disabled", ("admin", Some(admin_id)), json!({}))
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
