//! Who signs in: a user (the client area) or an admin (the admin area). Both prove who they are
//! with the same credentials — a password, a second factor (a TOTP key with its last accepted
//! step and one backup code, or Duo) — kept in the same columns of their own table. Everything
//! that checks or changes a credential takes the [`Principal`] kind and works for both, so a
//! sign-in step or a second factor is written once.
//!
//! Each write that matters for security is conditional on the value it replaces, so two
//! concurrent uses cannot both succeed.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::AnyConnection;

use super::{Accounts, Actor, Admin, AuditAction, Target, TwoFaMethod, User, audit};
use crate::error::Result;
use crate::secrets::passwords::{self, HashKind};
use crate::store::composed;

/// The kind of account a credential belongs to. Throttle counters, sessions and the audit
/// vocabulary are kept apart by it: no typed value of one kind can name the other's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Principal {
    #[default]
    User,
    Admin,
}

/// Something that happened to a principal's credential, as the audit log names it. The names
/// differ by kind (`twofa.totp_ok`, `admin.totp_ok`) and are kept as they were: support
/// engineers and the doctor search the log by them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialEvent {
    PasswordOk,
    LoginFailed,
    /// The attempt was refused unseen: a budget was full or locked.
    LoginLocked,
    /// This attempt locked a password scope.
    PasswordLockout,
    /// This attempt locked a second-factor scope.
    SecondFactorLockout,
    /// Fully signed in, every factor proven.
    SignedIn,
    TotpOk,
    TotpFailed,
    BackupCodeUsed,
    BackupCodeFailed,
    /// A second-factor check refused unseen.
    SecondFactorLocked,
    DuoOk,
    DuoFailed,
    TwoFaEnabled,
    TwoFaDisabled,
    PasswordRehashed,
    ConfirmFailed,
    ConfirmLocked,
    PasskeyAdded,
    PasskeyRemoved,
    /// A passkey proved who someone is (a sign-in, its second factor, a re-authentication).
    PasskeyOk,
    /// A passkey's answer was refused.
    PasskeyFailed,
}

impl Principal {
    /// The table its accounts live in, and the audit log's target type.
    pub fn table(self) -> &'static str {
        match self {
            Principal::User => "users",
            Principal::Admin => "admins",
        }
    }

    pub fn target_type(self) -> Target {
        match self {
            Principal::User => Target::User,
            Principal::Admin => Target::Admin,
        }
    }

    /// The audit action for `event`.
    pub fn action(self, event: CredentialEvent) -> AuditAction {
        use CredentialEvent as E;
        match (self, event) {
            (Principal::User, E::PasswordOk) => AuditAction::LoginPasswordOk,
            (Principal::User, E::LoginFailed) => AuditAction::LoginFailed,
            (Principal::User, E::LoginLocked) => AuditAction::LoginLocked,
            (Principal::User, E::PasswordLockout) => AuditAction::LoginLockout,
            (Principal::User, E::SecondFactorLockout) => AuditAction::TwofaLockout,
            (Principal::User, E::SignedIn) => AuditAction::LoginSignedIn,
            (Principal::User, E::TotpOk) => AuditAction::TwofaTotpOk,
            (Principal::User, E::TotpFailed) => AuditAction::TwofaTotpFailed,
            (Principal::User, E::BackupCodeUsed) => AuditAction::TwofaBackupCodeUsed,
            (Principal::User, E::BackupCodeFailed) => AuditAction::TwofaBackupCodeFailed,
            (Principal::User, E::SecondFactorLocked) => AuditAction::TwofaLocked,
            (Principal::User, E::DuoOk) => AuditAction::TwofaDuoOk,
            (Principal::User, E::DuoFailed) => AuditAction::TwofaDuoFailed,
            (Principal::User, E::TwoFaEnabled) => AuditAction::TwofaEnabled,
            (Principal::User, E::TwoFaDisabled) => AuditAction::TwofaDisabled,
            (Principal::User, E::PasswordRehashed) => AuditAction::UserPasswordRehashed,
            (Principal::User, E::ConfirmFailed) => AuditAction::PasswordConfirmFailed,
            (Principal::User, E::ConfirmLocked) => AuditAction::PasswordConfirmLocked,
            (Principal::User, E::PasskeyAdded) => AuditAction::PasskeyAdded,
            (Principal::User, E::PasskeyRemoved) => AuditAction::PasskeyRemoved,
            (Principal::User, E::PasskeyOk) => AuditAction::PasskeyOk,
            (Principal::User, E::PasskeyFailed) => AuditAction::PasskeyFailed,
            (Principal::Admin, E::PasswordOk) => AuditAction::AdminLoginPasswordOk,
            (Principal::Admin, E::LoginFailed) => AuditAction::AdminLoginFailed,
            (Principal::Admin, E::LoginLocked) => AuditAction::AdminLoginLocked,
            (Principal::Admin, E::PasswordLockout | E::SecondFactorLockout) => AuditAction::AdminLockout,
            (Principal::Admin, E::SignedIn) => AuditAction::AdminLogin,
            (Principal::Admin, E::TotpOk) => AuditAction::AdminTotpOk,
            (Principal::Admin, E::TotpFailed) => AuditAction::AdminTotpFailed,
            (Principal::Admin, E::BackupCodeUsed) => AuditAction::AdminBackupCodeOk,
            (Principal::Admin, E::BackupCodeFailed) => AuditAction::AdminBackupCodeFailed,
            (Principal::Admin, E::SecondFactorLocked) => AuditAction::AdminTotpLocked,
            (Principal::Admin, E::DuoOk) => AuditAction::AdminDuoOk,
            (Principal::Admin, E::DuoFailed) => AuditAction::AdminDuoFailed,
            (Principal::Admin, E::TwoFaEnabled) => AuditAction::AdminTwofaEnabled,
            (Principal::Admin, E::TwoFaDisabled) => AuditAction::AdminTwofaDisabled,
            (Principal::Admin, E::PasswordRehashed) => AuditAction::AdminPasswordRehashed,
            (Principal::Admin, E::ConfirmFailed) => AuditAction::AdminPasswordConfirmFailed,
            (Principal::Admin, E::ConfirmLocked) => AuditAction::AdminPasswordConfirmLocked,
            (Principal::Admin, E::PasskeyAdded) => AuditAction::AdminPasskeyAdded,
            (Principal::Admin, E::PasskeyRemoved) => AuditAction::AdminPasskeyRemoved,
            (Principal::Admin, E::PasskeyOk) => AuditAction::AdminPasskeyOk,
            (Principal::Admin, E::PasskeyFailed) => AuditAction::AdminPasskeyFailed,
        }
    }
}

/// One account's credentials, whatever its kind: what a sign-in and a re-authentication check.
#[derive(Clone)]
pub struct Credentials {
    pub who: Principal,
    pub id: i64,
    /// The name the person signs in with — a user's email, an admin's username: their throttle
    /// scopes are keyed by it, and Duo knows them by it.
    pub login: String,
    pub password_hash: Option<String>,
    pub twofa_method: Option<TwoFaMethod>,
    pub totp_secret: Option<String>,
    pub totp_last_step: Option<i64>,
    pub backup_code_hash: Option<String>,
}

/// Says which secrets are set, never what they are.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("who", &self.who)
            .field("id", &self.id)
            .field("login", &self.login)
            .field("twofa_method", &self.twofa_method)
            .field("password_hash", &super::secret_state(&self.password_hash))
            .field("totp_secret", &super::secret_state(&self.totp_secret))
            .field("backup_code_hash", &super::secret_state(&self.backup_code_hash))
            .finish()
    }
}

impl Credentials {
    /// Who did it, in the audit log, from `ip`.
    pub fn actor(&self, ip: &str) -> Actor {
        match self.who {
            Principal::User => Actor::user(self.id, &self.login),
            Principal::Admin => Actor::admin(self.id, &self.login),
        }
        .with_ip(ip)
    }

    /// The audit log's target.
    pub fn target(&self) -> (Target, Option<i64>) {
        (self.who.target_type(), Some(self.id))
    }

    /// Whether a code (TOTP, or the backup code) is what proves the second factor: a TOTP key
    /// is enrolled and Duo is not the chosen method.
    pub fn proves_with_code(&self) -> bool {
        self.totp_secret.is_some() && self.twofa_method != Some(TwoFaMethod::Duo)
    }
}

impl User {
    pub fn credentials(&self) -> Credentials {
        Credentials {
            who: Principal::User,
            id: self.id,
            login: self.email.clone(),
            password_hash: self.password_hash.clone(),
            twofa_method: self.twofa_method,
            totp_secret: self.totp_secret.clone(),
            totp_last_step: self.totp_last_step,
            backup_code_hash: self.backup_code_hash.clone(),
        }
    }
}

impl Admin {
    pub fn credentials(&self) -> Credentials {
        Credentials {
            who: Principal::Admin,
            id: self.id,
            login: self.username.clone(),
            password_hash: self.password_hash.clone(),
            twofa_method: self.twofa_method,
            totp_secret: self.totp_secret.clone(),
            totp_last_step: self.totp_last_step,
            backup_code_hash: self.backup_code_hash.clone(),
        }
    }
}

/// Replaces a password hash inside the caller's transaction, with an audit entry `action`. A
/// user's reset links still out are revoked with it: they were asked for another password.
pub async fn store_password_hash_in(
    conn: &mut AnyConnection,
    now: i64,
    actor: &Actor,
    (who, id): (Principal, i64),
    hash: &str,
    action: AuditAction,
) -> Result<()> {
    sqlx::query(composed(format!("UPDATE {} SET password_hash = $1, updated_at = $2 WHERE id = $3", who.table())))
        .bind(hash)
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if who == Principal::User {
        revoke_reset_links(conn, id).await?;
    }
    audit::record(conn, now, actor, action, (who.target_type(), Some(id)), json!({})).await
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

/// Swaps the backup code hash in the caller's transaction; false if the old code was already
/// spent by someone else.
pub async fn replace_backup_code_in(
    conn: &mut AnyConnection,
    (who, id): (Principal, i64),
    old_hash: &str,
    new_hash: &str,
) -> Result<bool> {
    let sql = format!("UPDATE {} SET backup_code_hash = $1 WHERE id = $2 AND backup_code_hash = $3", who.table());
    let done = sqlx::query(composed(sql)).bind(new_hash).bind(id).bind(old_hash).execute(conn).await?;
    Ok(done.rows_affected() == 1)
}

impl Accounts {
    /// The credentials of one account of either kind.
    pub async fn credentials(&self, who: Principal, id: i64) -> Result<Credentials> {
        Ok(match who {
            Principal::User => self.user(id).await?.credentials(),
            Principal::Admin => self.admin(id).await?.credentials(),
        })
    }

    /// Sets a password chosen for the account (an admin's form, the CLI): the policy's minimum
    /// length applies. Audited as `user.password_set` or `admin.password_set`.
    pub async fn set_password(&self, actor: &Actor, (who, id): (Principal, i64), password: &str) -> Result<()> {
        self.credentials(who, id).await?;
        let hash =
            passwords::hash_new_password_async(password, self.policy.password_min_length, actor.requester()).await?;
        let action = match who {
            Principal::User => AuditAction::UserPasswordSet,
            Principal::Admin => AuditAction::AdminPasswordSet,
        };
        self.store_password_hash(actor, (who, id), &hash, action).await
    }

    /// Replaces the password hash, audited as `action`.
    pub async fn store_password_hash(
        &self,
        actor: &Actor,
        who: (Principal, i64),
        hash: &str,
        action: AuditAction,
    ) -> Result<()> {
        let mut tx = self.db.begin().await?;
        store_password_hash_in(&mut tx, self.db.now(), actor, who, hash, action).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a legacy or weak hash that just verified by a fresh argon2id hash, unless the
    /// password changed meanwhile.
    pub async fn upgrade_password_hash(
        &self,
        actor: &Actor,
        creds: &Credentials,
        old: &str,
        new: &str,
    ) -> Result<bool> {
        let mut tx = self.db.begin().await?;
        let sql = format!("UPDATE {} SET password_hash = $1 WHERE id = $2 AND password_hash = $3", creds.who.table());
        let done =
            sqlx::query(composed(sql)).bind(new).bind(creds.id).bind(old).execute(&mut *tx).await?.rows_affected() == 1;
        if done {
            let (action, kind) = (creds.who.action(CredentialEvent::PasswordRehashed), HashKind::of(old));
            audit::record(&mut tx, self.db.now(), actor, action, creds.target(), json!({"from": kind})).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Records `step` as the last accepted TOTP step; false if it (or a later one) was already used.
    pub async fn advance_totp_step(&self, (who, id): (Principal, i64), step: i64) -> Result<bool> {
        let sql = format!(
            "UPDATE {} SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
            who.table()
        );
        Ok(sqlx::query(composed(sql)).bind(step).bind(id).execute(self.db.pool()).await?.rows_affected() == 1)
    }

    /// Turns TOTP on, with the hash of the backup code the person was shown.
    pub async fn set_totp(
        &self,
        actor: &Actor,
        (who, id): (Principal, i64),
        secret: &str,
        step: i64,
        backup_hash: &str,
    ) -> Result<()> {
        let mut tx = self.db.begin().await?;
        let sql = format!(
            "UPDATE {} SET twofa_method = $1, totp_secret = $2, totp_last_step = $3, backup_code_hash = $4, \
             updated_at = $5 WHERE id = $6",
            who.table()
        );
        let query =
            sqlx::query(composed(sql)).bind(TwoFaMethod::Totp.as_str()).bind(secret).bind(step).bind(backup_hash);
        query.bind(self.db.now()).bind(id).execute(&mut *tx).await?;
        self.record_twofa_enabled(&mut tx, actor, (who, id), TwoFaMethod::Totp).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Makes Duo the second factor (enrolment with Duo happens at Duo's prompt).
    pub async fn set_duo(&self, actor: &Actor, (who, id): (Principal, i64)) -> Result<()> {
        let mut tx = self.db.begin().await?;
        let sql = format!("UPDATE {} SET twofa_method = $1, updated_at = $2 WHERE id = $3", who.table());
        sqlx::query(composed(sql))
            .bind(TwoFaMethod::Duo.as_str())
            .bind(self.db.now())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.record_twofa_enabled(&mut tx, actor, (who, id), TwoFaMethod::Duo).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_twofa_enabled(
        &self,
        conn: &mut AnyConnection,
        actor: &Actor,
        (who, id): (Principal, i64),
        method: TwoFaMethod,
    ) -> Result<()> {
        let action = who.action(CredentialEvent::TwoFaEnabled);
        audit::record(conn, self.db.now(), actor, action, (who.target_type(), Some(id)), json!({"method": method}))
            .await
    }

    /// Whether the account is told of sign-ins from new devices.
    pub async fn new_device_notices(&self, (who, id): (Principal, i64)) -> Result<bool> {
        let sql = format!("SELECT notify_new_device FROM {} WHERE id = $1", who.table());
        let on: Option<i64> = sqlx::query_scalar(composed(sql)).bind(id).fetch_optional(self.db.pool()).await?;
        Ok(on.unwrap_or(1) != 0)
    }

    /// Chooses whether the account is told of sign-ins from new devices (credential changes
    /// are always told).
    pub async fn set_new_device_notices(&self, actor: &Actor, (who, id): (Principal, i64), on: bool) -> Result<()> {
        let mut tx = self.db.begin().await?;
        let sql = format!("UPDATE {} SET notify_new_device = $1 WHERE id = $2", who.table());
        sqlx::query(composed(sql)).bind(i64::from(on)).bind(id).execute(&mut *tx).await?;
        let details = json!({"new_device": on});
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::NotificationsChanged,
            (who.target_type(), Some(id)),
            details,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Turns every second factor off (the person with their password, an admin, or the CLI for
    /// one who lost their device).
    pub async fn clear_twofa(&self, actor: &Actor, (who, id): (Principal, i64)) -> Result<()> {
        self.credentials(who, id).await?;
        let mut tx = self.db.begin().await?;
        let sql = format!(
            "UPDATE {} SET twofa_method = NULL, totp_secret = NULL, totp_last_step = NULL, backup_code_hash = NULL, \
             updated_at = $1 WHERE id = $2",
            who.table()
        );
        sqlx::query(composed(sql)).bind(self.db.now()).bind(id).execute(&mut *tx).await?;
        let action = who.action(CredentialEvent::TwoFaDisabled);
        audit::record(&mut tx, self.db.now(), actor, action, (who.target_type(), Some(id)), json!({})).await?;
        tx.commit().await?;
        Ok(())
    }
}
