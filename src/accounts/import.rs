//! Bulk import of users with their existing password hashes (argon2, bcrypt or salted MD5),
//! so an operator can move users from another system. All or nothing: every row is validated
//! first, then all are inserted in one transaction.

use super::email::Email;
use super::users::require_name;
use super::{Accounts, Actor, NewUser, User};
use crate::error::Error;
use crate::secrets::passwords::{
    HashKind, MAX_ARGON2_LANES, MAX_ARGON2_MEMORY_KIB, MAX_ARGON2_PASSES, MAX_BCRYPT_COST,
};

/// One user to import; `password_hash` as stored by the old system, if any.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportedUser {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    #[serde(default)]
    pub language: String,
    #[serde(default)]
    pub password_hash: Option<String>,
}

/// A row that cannot be imported: its position (0-based) and why.
#[derive(Debug)]
pub struct RowError {
    pub row: usize,
    pub error: Error,
}

impl Accounts {
    /// Validates every row, then inserts them all in one transaction. Errors name the row.
    pub async fn import_users(
        &self,
        actor: &Actor,
        rows: Vec<ImportedUser>,
    ) -> std::result::Result<Vec<User>, RowError> {
        let mut prepared = Vec::with_capacity(rows.len());
        for (row, u) in rows.into_iter().enumerate() {
            let check = async {
                let email = Email::parse(&u.email)?;
                require_name("first_name", &u.first_name)?;
                require_name("last_name", &u.last_name)?;
                self.refuse_banned(&email).await?;
                let hash = u.password_hash.filter(|h| !h.trim().is_empty());
                match hash.as_deref().map(HashKind::of) {
                    Some(HashKind::Unknown) => {
                        return Err(Error::invalid(
                            "password_hash is not a recognised format (argon2 PHC, bcrypt $2a$/$2b$/$2y$, or md5hex:salt)",
                        ));
                    }
                    Some(HashKind::TooCostly) => {
                        return Err(Error::invalid(format!(
                            "password_hash costs more than gatehouse verifies (argon2: m ≤ {MAX_ARGON2_MEMORY_KIB} KiB, \
                             t ≤ {MAX_ARGON2_PASSES}, p ≤ {MAX_ARGON2_LANES}; bcrypt: cost ≤ {MAX_BCRYPT_COST}); leave it \
                             empty and send the user a password reset"
                        )));
                    }
                    _ => {}
                }
                let new = NewUser {
                    email: u.email,
                    first_name: u.first_name,
                    last_name: u.last_name,
                    language: u.language,
                    password: None,
                };
                Ok((new, email, hash))
            };
            prepared.push(check.await.map_err(|error| RowError { row, error })?);
        }
        let fail = |row, error| RowError { row, error };
        let mut tx = self.db.begin().await.map_err(|e| fail(0, e))?;
        let mut users = Vec::with_capacity(prepared.len());
        for (row, (new, email, hash)) in prepared.into_iter().enumerate() {
            users.push(
                Self::insert_user(&mut tx, self.db.now(), actor, &new, &email, hash).await.map_err(|e| fail(row, e))?,
            );
        }
        tx.commit().await.map_err(|e| fail(users.len().saturating_sub(1), e.into()))?;
        Ok(users)
    }
}
