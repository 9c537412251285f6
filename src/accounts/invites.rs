//! Invites: an owner (or an admin) invites an email address to a client with a set of
//! permissions. The link's token is 256 random bits, stored only as its SHA-256, valid for
//! `security.invite_ttl` and usable once. Accepting does not verify the email address.

use serde::Serialize;
use serde_json::json;

use super::AuditAction;
use super::Target;
use super::email::Email;
use super::users::NewUser;
use super::{Accounts, Actor, Membership, Permissions, audit};
use crate::error::{Code, Error, Result};
use crate::secrets::tokens;
use crate::store::{composed, is_unique_violation};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InviteStatus {
    Pending,
    Accepted,
    Cancelled,
    Expired,
}

#[derive(Debug, Clone, Serialize)]
pub struct Invite {
    pub id: i64,
    pub client_id: i64,
    pub email: String,
    pub permissions: Permissions,
    pub status: InviteStatus,
    pub invited_by_user_id: Option<i64>,
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub expires_at: i64,
    pub accepted_user_id: Option<i64>,
}

#[derive(sqlx_macros::FromRow)]
struct InviteRow {
    id: i64,
    client_id: i64,
    email: String,
    permissions: String,
    invited_by_user_id: Option<i64>,
    created_at: i64,
    expires_at: i64,
    accepted_at: Option<i64>,
    accepted_user_id: Option<i64>,
    cancelled_at: Option<i64>,
}

impl InviteRow {
    fn into_invite(self, at: i64) -> Invite {
        let status = if self.accepted_at.is_some() {
            InviteStatus::Accepted
        } else if self.cancelled_at.is_some() {
            InviteStatus::Cancelled
        } else if self.expires_at <= at {
            InviteStatus::Expired
        } else {
            InviteStatus::Pending
        };
        Invite {
            id: self.id,
            client_id: self.client_id,
            email: self.email,
            permissions: Permissions::from_stored(&self.permissions),
            status,
            invited_by_user_id: self.invited_by_user_id,
            created_at: self.created_at,
            expires_at: self.expires_at,
            accepted_user_id: self.accepted_user_id,
        }
    }
}

/// A new invite and its token, which is shown once (in the emailed link) and never again.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedInvite {
    #[serde(flatten)]
    pub invite: Invite,
    pub token: String,
}

/// How an invite is accepted.
#[derive(Debug, Clone)]
pub enum Acceptance {
    /// By a user who is already logged in.
    ExistingUser(i64),
    /// By registering a new user (the email need not be the invited one).
    NewUser(NewUser),
}

const INVITE_COLUMNS: &str = "id, client_id, email, permissions, invited_by_user_id, created_at, expires_at, \
     accepted_at, accepted_user_id, cancelled_at";

fn invite_invalid() -> Error {
    Error::refused(Code::InviteInvalid, "this invite link is not valid; it may have been used or cancelled")
}

impl Accounts {
    pub async fn create_invite(
        &self,
        actor: &Actor,
        client_id: i64,
        email: &str,
        permissions: &Permissions,
        invited_by_user_id: Option<i64>,
    ) -> Result<CreatedInvite> {
        self.open_client(client_id).await?;
        let email = Email::parse(email)?;
        let token = tokens::mint(tokens::TokenKind::Invite);
        let ts = self.db.now();
        let mut tx = self.db.begin().await?;
        let row: InviteRow = sqlx::query_as(composed(format!(
            "INSERT INTO invites (client_id, email, permissions, token_hash, invited_by_user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {INVITE_COLUMNS}"
        )))
        .bind(client_id)
        .bind(&email.display)
        .bind(permissions.to_stored())
        .bind(&token.hash)
        .bind(invited_by_user_id)
        .bind(ts)
        .bind(ts + self.policy.invite_ttl_secs)
        .fetch_one(&mut *tx)
        .await?;
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::InviteCreate,
            (Target::Client, Some(client_id)),
            json!({"invite_id": row.id, "email": email.display, "permissions": permissions}),
        )
        .await?;
        tx.commit().await?;
        Ok(CreatedInvite { invite: row.into_invite(ts), token: token.raw })
    }

    /// Invites of one client (or all), newest first.
    pub async fn list_invites(&self, client_id: Option<i64>) -> Result<Vec<Invite>> {
        let rows: Vec<InviteRow> = sqlx::query_as(composed(format!(
            "SELECT {INVITE_COLUMNS} FROM invites WHERE ($1 = 0 OR client_id = $1) ORDER BY id DESC"
        )))
        .bind(client_id.unwrap_or(0))
        .fetch_all(self.db.pool())
        .await?;
        let at = self.db.now();
        Ok(rows.into_iter().map(|r| r.into_invite(at)).collect())
    }

    pub async fn cancel_invite(&self, actor: &Actor, id: i64) -> Result<Invite> {
        let mut tx = self.db.begin().await?;
        let row: Option<InviteRow> = sqlx::query_as(composed(format!(
            "UPDATE invites SET cancelled_at = $1 WHERE id = $2 AND accepted_at IS NULL AND cancelled_at IS NULL \
             RETURNING {INVITE_COLUMNS}"
        )))
        .bind(self.db.now())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT id FROM invites WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
            return Err(match exists {
                Some(_) => {
                    Error::refused(Code::InviteInvalid, format!("invite {id} was already accepted or cancelled"))
                }
                None => Error::not_found("invite", id),
            });
        };
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::InviteCancel,
            (Target::Client, Some(row.client_id)),
            json!({"invite_id": id}),
        )
        .await?;
        tx.commit().await?;
        Ok(row.into_invite(self.db.now()))
    }

    /// The pending invite a token belongs to, for showing the invite page before accepting.
    pub async fn invite_by_token(&self, token: &str) -> Result<Invite> {
        let row: Option<InviteRow> =
            sqlx::query_as(composed(format!("SELECT {INVITE_COLUMNS} FROM invites WHERE token_hash = $1")))
                .bind(tokens::digest(token))
                .fetch_optional(self.db.pool())
                .await?;
        let invite = row.ok_or_else(invite_invalid)?.into_invite(self.db.now());
        match invite.status {
            InviteStatus::Pending => Ok(invite),
            InviteStatus::Expired => {
                Err(Error::refused(Code::InviteExpired, "this invite link has expired; ask for a new one"))
            }
            _ => Err(invite_invalid()),
        }
    }

    /// Accepts an invite: the (existing or newly registered) user joins the client with the
    /// invited permissions. The token is spent atomically, so it works exactly once.
    pub async fn accept_invite(&self, actor: &Actor, token: &str, acceptance: Acceptance) -> Result<Membership> {
        let invite = self.invite_by_token(token).await?;
        let prepared = match &acceptance {
            Acceptance::ExistingUser(id) => {
                self.user(*id).await?;
                None
            }
            Acceptance::NewUser(new) => Some(self.prepare_user(actor, new).await?),
        };
        let mut tx = self.db.begin().await?;
        let at = self.db.now();
        let spent = sqlx::query(
            "UPDATE invites SET accepted_at = $1 WHERE token_hash = $2 AND accepted_at IS NULL \
             AND cancelled_at IS NULL AND expires_at > $1",
        )
        .bind(at)
        .bind(tokens::digest(token))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if spent == 0 {
            return Err(invite_invalid());
        }
        let user_id = match (acceptance, prepared) {
            (Acceptance::ExistingUser(id), _) => id,
            (Acceptance::NewUser(new), Some((email, hash))) => {
                // An address that already has a login: the invite is spent as if it had been
                // accepted, so that trying it again cannot tell which addresses have logins.
                if self.user_by_email(&email.display).await?.is_some() {
                    let details = json!({"invite_id": invite.id});
                    audit::record(
                        &mut tx,
                        self.db.now(),
                        actor,
                        AuditAction::InviteEmailTaken,
                        (Target::Client, Some(invite.client_id)),
                        details,
                    )
                    .await?;
                    tx.commit().await?;
                    return Err(Error::refused(Code::UserExists, "a user with that email already exists"));
                }
                Self::insert_user(&mut tx, self.db.now(), actor, &new, &email, hash).await?.id
            }
            (Acceptance::NewUser(_), None) => unreachable!("prepared above"),
        };
        let joined = sqlx::query(
            "INSERT INTO memberships (client_id, user_id, permissions, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (client_id, user_id) DO NOTHING",
        )
        .bind(invite.client_id)
        .bind(user_id)
        .bind(invite.permissions.to_stored())
        .bind(at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if joined == 0 {
            return Err(Error::refused(
                Code::AlreadyAssociated,
                format!("user {user_id} is already associated with client {}", invite.client_id),
            ));
        }
        sqlx::query("UPDATE invites SET accepted_user_id = $1 WHERE id = $2")
            .bind(user_id)
            .bind(invite.id)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::InviteAccept,
            (Target::Client, Some(invite.client_id)),
            json!({"invite_id": invite.id, "user_id": user_id}),
        )
        .await?;
        tx.commit().await.map_err(|e| match is_unique_violation(&e) {
            true => Error::refused(Code::UserExists, "a user with that email already exists"),
            false => e.into(),
        })?;
        self.membership(user_id, invite.client_id)
            .await?
            .ok_or_else(|| Error::Internal("membership vanished after accepting an invite".into()))
    }
}
