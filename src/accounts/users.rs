//! Users: login identities. Email is unique case-insensitively; the password is optional until
//! the user sets one (an owner created by an admin, an invitee who has not registered yet).

use serde::Serialize;
use serde_json::json;
use sqlx::AnyConnection;

use super::AuditAction;
use super::Target;
use super::email::Email;
use super::{Accounts, Actor, audit};
use crate::error::{Code, Error, Result};
use crate::secrets::passwords;
use crate::store::is_unique_violation;

#[derive(Clone, Serialize, sqlx_macros::FromRow)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub language: String,
    /// IANA time zone the user reads times in; "" for the site's `timezone:`.
    pub timezone: String,
    /// Serialized as `has_password: bool`; the hash itself never leaves the service.
    #[serde(rename = "has_password", serialize_with = "is_set")]
    pub password_hash: Option<String>,
    pub security_question_id: Option<i64>,
    #[serde(skip)]
    pub security_answer_hash: Option<String>,
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub updated_at: i64,
    #[serde(skip)]
    pub email_norm: String,
    /// How the user proves the second factor; `None` when two-factor is off.
    pub twofa_method: Option<TwoFaMethod>,
    #[serde(skip)]
    pub totp_secret: Option<String>,
    #[serde(skip)]
    pub totp_last_step: Option<i64>,
    #[serde(skip)]
    pub backup_code_hash: Option<String>,
}

fn is_set<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bool(v.is_some())
}

/// Says which secrets are set, never what they are: a `User` rides along with every signed-in
/// request, and a `{:?}` in a log line must not carry a hash or a TOTP key with it.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("twofa_method", &self.twofa_method)
            .field("password_hash", &super::secret_state(&self.password_hash))
            .field("security_answer_hash", &super::secret_state(&self.security_answer_hash))
            .field("totp_secret", &super::secret_state(&self.totp_secret))
            .field("backup_code_hash", &super::secret_state(&self.backup_code_hash))
            .finish_non_exhaustive()
    }
}

impl User {
    pub fn has_password(&self) -> bool {
        self.password_hash.is_some()
    }
}

#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub language: String,
    pub password: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub language: Option<String>,
    pub timezone: Option<String>,
}

pub(crate) fn require_name(field: &str, value: &str) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(Error::invalid(format!("{field} must not be empty")));
    }
    refuse_control_characters(field, v)?;
    if v.chars().count() > MAX_NAME_CHARS {
        return Err(Error::invalid(format!("{field} is longer than {MAX_NAME_CHARS} characters")));
    }
    Ok(v.to_string())
}

/// How a user proves the second factor (stored and shown as `totp` or `duo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TwoFaMethod {
    Totp,
    Duo,
}

impl TwoFaMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            TwoFaMethod::Totp => "totp",
            TwoFaMethod::Duo => "duo",
        }
    }
}

impl TryFrom<String> for TwoFaMethod {
    type Error = String;
    fn try_from(stored: String) -> std::result::Result<Self, String> {
        match stored.as_str() {
            "totp" => Ok(TwoFaMethod::Totp),
            "duo" => Ok(TwoFaMethod::Duo),
            other => Err(format!("unknown two-factor method `{other}`")),
        }
    }
}

crate::stored_as!(TwoFaMethod, String);

/// What names a deleted user without a foreign key (the tables serve users and admins alike):
/// their known devices, "this wasn't me" links and passkeys go with them.
pub(crate) async fn forget_traces(conn: &mut sqlx::AnyConnection, user_id: i64) -> Result<()> {
    for sql in [
        "DELETE FROM device_tokens WHERE principal = 'user' AND account_id = $1",
        "DELETE FROM not_me_links WHERE principal = 'user' AND account_id = $1",
        "DELETE FROM passkeys WHERE principal = 'user' AND account_id = $1",
    ] {
        sqlx::query(sql).bind(user_id).execute(&mut *conn).await?;
    }
    Ok(())
}

/// The longest name kept (a person's, a role's, a token's): enough for any real one.
pub const MAX_NAME_CHARS: usize = 200;

/// A name is shown on pages, in mails and on operators' terminals: control characters (a
/// terminal's escape sequences among them) have no place in one.
pub(crate) fn refuse_control_characters(field: &str, value: &str) -> Result<()> {
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(format!("{field} must not contain control characters")));
    }
    Ok(())
}

fn user_exists(email: &str) -> Error {
    Error::refused(Code::UserExists, format!("a user with email {email} already exists"))
}

impl Accounts {
    /// Validates a new user's fields and refuses banned domains; returns what to insert.
    pub(crate) async fn prepare_user(&self, actor: &Actor, new: &NewUser) -> Result<(Email, Option<String>)> {
        let email = Email::parse(&new.email)?;
        require_name("first name", &new.first_name)?;
        require_name("last name", &new.last_name)?;
        self.refuse_banned(&email).await?;
        let hash = match &new.password {
            // On the hashing pool, as logins are: sign-ups must not stall the async workers.
            Some(p) => {
                Some(passwords::hash_new_password_async(p, self.policy.password_min_length, actor.requester()).await?)
            }
            None => None,
        };
        Ok((email, hash))
    }

    /// Inserts a prepared user inside the caller's transaction.
    pub(crate) async fn insert_user(
        conn: &mut AnyConnection,
        now: i64,
        actor: &Actor,
        new: &NewUser,
        email: &Email,
        password_hash: Option<String>,
    ) -> Result<User> {
        let ts = now;
        let user: User = sqlx::query_as(
            "INSERT INTO users (email, email_norm, first_name, last_name, language, password_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING *",
        )
        .bind(&email.display)
        .bind(&email.norm)
        .bind(new.first_name.trim())
        .bind(new.last_name.trim())
        .bind(new.language.trim())
        .bind(password_hash)
        .bind(ts)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| if is_unique_violation(&e) { user_exists(&email.display) } else { e.into() })?;
        audit::record(
            conn,
            now,
            actor,
            AuditAction::UserCreate,
            (Target::User, Some(user.id)),
            json!({"email": user.email}),
        )
        .await?;
        Ok(user)
    }

    pub async fn create_user(&self, actor: &Actor, new: NewUser) -> Result<User> {
        let (email, hash) = self.prepare_user(actor, &new).await?;
        let mut tx = self.db.begin().await?;
        let user = Self::insert_user(&mut tx, self.db.now(), actor, &new, &email, hash).await?;
        tx.commit().await.map_err(|e| if is_unique_violation(&e) { user_exists(&email.display) } else { e.into() })?;
        Ok(user)
    }

    pub async fn user(&self, id: i64) -> Result<User> {
        sqlx::query_as("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or_else(|| Error::not_found("user", id))
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE email_norm = $1")
            .bind(super::email::lookup_key(email))
            .fetch_optional(self.db.pool())
            .await?)
    }

    /// Users whose email or name contains `search` (case-insensitive), by id.
    pub async fn list_users(&self, search: Option<&str>) -> Result<Vec<User>> {
        let pattern = format!("%{}%", search.unwrap_or("").trim().to_lowercase());
        Ok(sqlx::query_as(
            "SELECT * FROM users WHERE email_norm LIKE $1 OR LOWER(first_name || ' ' || last_name) LIKE $1 ORDER BY id",
        )
        .bind(pattern)
        .fetch_all(self.db.pool())
        .await?)
    }

    pub async fn update_user(&self, actor: &Actor, id: i64, update: UserUpdate) -> Result<User> {
        let mut user = self.user(id).await?;
        let mut changed = serde_json::Map::new();
        if let Some(raw) = &update.email {
            let email = Email::parse(raw)?;
            if email.norm != user.email_norm {
                self.refuse_banned(&email).await?;
            }
            if email.display != user.email {
                changed.insert("email".into(), json!({"from": user.email, "to": email.display}));
                user.email = email.display;
                user.email_norm = email.norm;
            }
        }
        for (field, new, slot) in [
            ("first_name", &update.first_name, &mut user.first_name),
            ("last_name", &update.last_name, &mut user.last_name),
        ] {
            if let Some(v) = new {
                let v = require_name(field, v)?;
                if *slot != v {
                    changed.insert(field.into(), json!({"from": slot, "to": v}));
                    *slot = v;
                }
            }
        }
        if let Some(lang) = &update.language
            && lang.trim() != user.language
        {
            changed.insert("language".into(), json!({"from": user.language, "to": lang.trim()}));
            user.language = lang.trim().to_string();
        }
        if let Some(tz) = &update.timezone
            && tz.trim() != user.timezone
        {
            let tz = tz.trim();
            if !tz.is_empty() && tz.parse::<chrono_tz::Tz>().is_err() {
                return Err(Error::invalid(format!("unknown time zone `{tz}`; choose one such as Europe/London")));
            }
            changed.insert("timezone".into(), json!({"from": user.timezone, "to": tz}));
            user.timezone = tz.to_string();
        }
        if changed.is_empty() {
            return Ok(user);
        }
        let mut tx = self.db.begin().await?;
        let updated: User = sqlx::query_as(
            "UPDATE users SET email = $1, email_norm = $2, first_name = $3, last_name = $4, language = $5, \
             timezone = $6, updated_at = $7 WHERE id = $8 RETURNING *",
        )
        .bind(&user.email)
        .bind(&user.email_norm)
        .bind(&user.first_name)
        .bind(&user.last_name)
        .bind(&user.language)
        .bind(&user.timezone)
        .bind(self.db.now())
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| if is_unique_violation(&e) { user_exists(&user.email) } else { e.into() })?;
        if changed.contains_key("email") {
            super::principal::revoke_reset_links(&mut tx, id).await?;
        }
        audit::record(&mut tx, self.db.now(), actor, AuditAction::UserUpdate, (Target::User, Some(id)), changed.into())
            .await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Deletes a user who belongs to no client any more.
    pub async fn delete_user(&self, actor: &Actor, id: i64) -> Result<()> {
        let user = self.user(id).await?;
        let mut tx = self.db.begin().await?;
        let clients: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE user_id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if clients > 0 {
            return Err(Error::refused(
                Code::UserHasClients,
                format!("user {id} still belongs to {clients} client(s); dissociate them first"),
            ));
        }
        sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&mut *tx).await?;
        // Its known devices name nothing now (the table serves users and admins: no foreign key).
        forget_traces(&mut tx, id).await?;
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::UserDelete,
            (Target::User, Some(id)),
            json!({"email": user.email}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets the user's security question and answer; the answer is stored argon2id-hashed
    /// after trimming and lower-casing.
    pub async fn set_security_answer(&self, actor: &Actor, user_id: i64, question_id: i64, answer: &str) -> Result<()> {
        self.user(user_id).await?;
        self.security_question(question_id).await?;
        let normalized = passwords::normalize_answer(answer);
        if normalized.is_empty() {
            return Err(Error::invalid("the security answer must not be empty"));
        }
        // On the hashing threads: argon2 here would hold an async worker for the whole hash.
        let hash = passwords::hash_async(&normalized, actor.requester()).await?;
        let mut tx = self.db.begin().await?;
        sqlx::query(
            "UPDATE users SET security_question_id = $1, security_answer_hash = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(question_id)
        .bind(hash)
        .bind(self.db.now())
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::UserSecurityQuestionSet,
            (Target::User, Some(user_id)),
            json!({"question_id": question_id}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{TwoFaMethod, User};

    #[test]
    fn debug_names_which_secrets_are_set_and_shows_none_of_them() {
        let user = User {
            id: 7,
            email: "ann@example.com".into(),
            first_name: "Ann".into(),
            last_name: "Lee".into(),
            language: String::new(),
            timezone: String::new(),
            password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            security_question_id: None,
            security_answer_hash: None,
            created_at: 0,
            updated_at: 0,
            email_norm: "ann@example.com".into(),
            twofa_method: Some(TwoFaMethod::Totp),
            totp_secret: Some("JBSWY3DPEHPK3PXP".into()),
            totp_last_step: None,
            backup_code_hash: None,
        };
        let shown = format!("{user:?}");
        assert!(!shown.contains("argon2id") && !shown.contains("JBSWY3DP"), "{shown}");
        assert!(shown.contains(r#"password_hash: "set""#) && shown.contains(r#"backup_code_hash: "none""#), "{shown}");
    }
}
