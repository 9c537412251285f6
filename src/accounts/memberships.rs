//! Memberships: which users may act on which clients, with what permissions, and who owns
//! each client.

use std::sync::LazyLock;

use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

use super::AuditAction;
use super::Target;
use super::{Accounts, Actor, ClientStatus, Permissions, User, audit};
use crate::error::{Code, Error, Result};
use crate::store::{composed, is_foreign_key_violation};

#[derive(Debug, Clone, Serialize)]
pub struct Membership {
    pub client_id: i64,
    pub user_id: i64,
    pub is_owner: bool,
    /// The owner always holds every permission, whatever is stored.
    pub permissions: Permissions,
    pub user_email: String,
    pub client_name: String,
    pub client_status: ClientStatus,
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub created_at: i64,
}

impl Membership {
    /// The client is open to its users: not closed.
    pub fn is_usable(&self) -> bool {
        self.client_status != ClientStatus::Closed
    }

    /// The membership of `client_id` among `memberships`, if its client is open: a closed
    /// client is kept for the records, never worked in — whatever client a session started in
    /// or switched to before it closed.
    pub fn usable_in(memberships: &[Membership], client_id: i64) -> Option<&Membership> {
        memberships.iter().find(|m| m.client_id == client_id && m.is_usable())
    }
}

/// A user with every client they belong to (closed ones too), by client id: what each client
/// area page starts from, read in one query.
#[derive(Debug, Clone)]
pub struct UserWithClients {
    pub user: User,
    pub memberships: Vec<Membership>,
}

#[derive(sqlx_macros::FromRow)]
struct MembershipRow {
    client_id: i64,
    user_id: i64,
    is_owner: i64,
    permissions: String,
    user_email: String,
    client_name: String,
    client_status: String,
    membership_created_at: i64,
}

impl From<MembershipRow> for Membership {
    fn from(r: MembershipRow) -> Self {
        let is_owner = r.is_owner != 0;
        Membership {
            client_id: r.client_id,
            user_id: r.user_id,
            is_owner,
            permissions: if is_owner { Permissions::all() } else { Permissions::from_stored(&r.permissions) },
            user_email: r.user_email,
            client_name: r.client_name,
            // The table's CHECK constraint admits only the statuses ClientStatus names.
            client_status: r.client_status.parse().unwrap_or_default(),
            created_at: r.membership_created_at,
        }
    }
}

/// A membership's columns, from `m` (memberships), `c` (its client) and `u` (its user). Named
/// apart from the users table's own columns, so a query may select both.
const MEMBERSHIP_COLUMNS: &str = "m.client_id, m.user_id, m.permissions, m.created_at AS membership_created_at, \
     CASE WHEN c.owner_user_id = m.user_id THEN 1 ELSE 0 END AS is_owner, \
     u.email AS user_email, \
     CASE WHEN c.company <> '' THEN c.company ELSE c.first_name || ' ' || c.last_name END AS client_name, \
     c.status AS client_status";

static SELECT_MEMBERSHIP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {MEMBERSHIP_COLUMNS} FROM memberships m JOIN clients c ON c.id = m.client_id JOIN users u ON u.id = m.user_id"
    )
});

/// `u`'s columns and one membership per row (a row of NULLs when there is none): the select
/// list for [`UserWithClients`], joined by [`MEMBERSHIPS_OF_U`].
pub(crate) static USER_WITH_CLIENTS_COLUMNS: LazyLock<String> = LazyLock::new(|| format!("u.*, {MEMBERSHIP_COLUMNS}"));

static USER_WITH_CLIENTS: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM users u {MEMBERSHIPS_OF_U} WHERE u.id = $1", *USER_WITH_CLIENTS_COLUMNS));
static USER_WITH_CLIENTS_BY_EMAIL: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {} FROM users u {MEMBERSHIPS_OF_U} WHERE u.email_norm = $1", *USER_WITH_CLIENTS_COLUMNS)
});
pub(crate) const MEMBERSHIPS_OF_U: &str =
    "LEFT JOIN memberships m ON m.user_id = u.id LEFT JOIN clients c ON c.id = m.client_id";

impl UserWithClients {
    /// From the rows of [`USER_WITH_CLIENTS_COLUMNS`], in any order; `None` when the user's
    /// columns are NULL (no such user). The memberships come out by client id, sorted here: an
    /// `ORDER BY` made PostgreSQL sort after its join on every page view (pgbench of the
    /// page-view query, 2 clients, Unix socket: 26,400–28,600 → 29,200–30,800 per second without).
    pub(crate) fn from_rows(rows: &[AnyRow]) -> Result<Option<Self>> {
        let Some(first) = rows.first() else { return Ok(None) };
        if first.try_get::<Option<i64>, _>("id")?.is_none() {
            return Ok(None);
        }
        let user = User::from_row(first)?;
        let mut memberships = Vec::with_capacity(rows.len());
        for row in rows {
            if row.try_get::<Option<i64>, _>("client_id")?.is_some() {
                memberships.push(MembershipRow::from_row(row)?.into());
            }
        }
        memberships.sort_unstable_by_key(|m: &Membership| m.client_id);
        Ok(Some(Self { user, memberships }))
    }
}

pub(crate) fn not_associated(user_id: i64, client_id: i64) -> Error {
    Error::refused(Code::NotAssociated, format!("user {user_id} is not associated with client {client_id}"))
}

fn owner_cannot_be_removed(user_id: i64, client_id: i64) -> Error {
    Error::refused(
        Code::OwnerCannotBeRemoved,
        format!("user {user_id} owns client {client_id}; make another user the owner first"),
    )
}

impl Accounts {
    pub async fn membership(&self, user_id: i64, client_id: i64) -> Result<Option<Membership>> {
        let row: Option<MembershipRow> =
            sqlx::query_as(composed(format!("{} WHERE m.user_id = $1 AND m.client_id = $2", *SELECT_MEMBERSHIP)))
                .bind(user_id)
                .bind(client_id)
                .fetch_optional(self.db.pool())
                .await?;
        Ok(row.map(Into::into))
    }

    /// The users of a client, owner first.
    pub async fn members_of_client(&self, client_id: i64) -> Result<Vec<Membership>> {
        self.client(client_id).await?;
        let rows: Vec<MembershipRow> = sqlx::query_as(composed(format!(
            "{} WHERE m.client_id = $1 ORDER BY is_owner DESC, m.user_id",
            *SELECT_MEMBERSHIP
        )))
        .bind(client_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The user and every client they belong to, in one query; `None` when there is no such user.
    pub async fn user_with_clients(&self, user_id: i64) -> Result<Option<UserWithClients>> {
        // Built once: on the files session store every page view runs it.
        let rows = sqlx::query(USER_WITH_CLIENTS.as_str()).bind(user_id).fetch_all(self.db.pool()).await?;
        UserWithClients::from_rows(&rows)
    }

    /// As [`Accounts::user_with_clients`], by email (any case): a sign-in reads the account
    /// and what it may sign in to in one query.
    pub async fn user_with_clients_by_email(&self, email: &str) -> Result<Option<UserWithClients>> {
        let rows = sqlx::query(USER_WITH_CLIENTS_BY_EMAIL.as_str())
            .bind(super::email::lookup_key(email))
            .fetch_all(self.db.pool())
            .await?;
        UserWithClients::from_rows(&rows)
    }

    /// The clients a user belongs to, by client id.
    pub async fn clients_of_user(&self, user_id: i64) -> Result<Vec<Membership>> {
        let user = self.user_with_clients(user_id).await?.ok_or_else(|| Error::not_found("user", user_id))?;
        Ok(user.memberships)
    }

    /// Gives an existing user access to a client with the given permissions.
    pub async fn associate(
        &self,
        actor: &Actor,
        user_id: i64,
        client_id: i64,
        permissions: &Permissions,
    ) -> Result<Membership> {
        self.user(user_id).await?;
        self.open_client(client_id).await?;
        let mut tx = self.db.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO memberships (client_id, user_id, permissions, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (client_id, user_id) DO NOTHING",
        )
        .bind(client_id)
        .bind(user_id)
        .bind(permissions.to_stored())
        .bind(self.db.now())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(Error::refused(
                Code::AlreadyAssociated,
                format!("user {user_id} is already associated with client {client_id}"),
            ));
        }
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::MembershipCreate,
            (Target::Client, Some(client_id)),
            json!({"user_id": user_id, "permissions": permissions}),
        )
        .await?;
        tx.commit().await?;
        self.membership(user_id, client_id).await?.ok_or_else(|| not_associated(user_id, client_id))
    }

    /// Removes a user's access to a client. The owner can never be removed.
    pub async fn dissociate(&self, actor: &Actor, user_id: i64, client_id: i64) -> Result<()> {
        let member = self.membership(user_id, client_id).await?.ok_or_else(|| not_associated(user_id, client_id))?;
        if member.is_owner {
            return Err(owner_cannot_be_removed(user_id, client_id));
        }
        let mut tx = self.db.begin().await?;
        let removed = sqlx::query("DELETE FROM memberships WHERE client_id = $1 AND user_id = $2")
            .bind(client_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed == 0 {
            return Err(not_associated(user_id, client_id));
        }
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::MembershipDelete,
            (Target::Client, Some(client_id)),
            json!({"user_id": user_id}),
        )
        .await?;
        // The user may have become the owner meanwhile: the deferred ownership key refuses then.
        tx.commit().await.map_err(|e| match is_foreign_key_violation(&e) {
            true => owner_cannot_be_removed(user_id, client_id),
            false => e.into(),
        })
    }

    /// Replaces a user's permissions on a client. The owner's permissions are fixed (all).
    pub async fn set_permissions(
        &self,
        actor: &Actor,
        user_id: i64,
        client_id: i64,
        permissions: &Permissions,
    ) -> Result<Membership> {
        let member = self.membership(user_id, client_id).await?.ok_or_else(|| not_associated(user_id, client_id))?;
        if member.is_owner {
            return Err(Error::refused(
                Code::OwnerPermissionsFixed,
                format!("user {user_id} owns client {client_id} and always holds every permission"),
            ));
        }
        let mut tx = self.db.begin().await?;
        // Re-checked in the statement: the user may have become the owner since the read above.
        let updated = sqlx::query(
            "UPDATE memberships SET permissions = $1 WHERE client_id = $2 AND user_id = $3 \
             AND user_id <> (SELECT owner_user_id FROM clients WHERE id = $2)",
        )
        .bind(permissions.to_stored())
        .bind(client_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(Error::refused(
                Code::OwnerPermissionsFixed,
                format!("user {user_id} now owns client {client_id}"),
            ));
        }
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::MembershipPermissions,
            (Target::Client, Some(client_id)),
            json!({"user_id": user_id, "from": member.permissions, "to": permissions}),
        )
        .await?;
        tx.commit().await?;
        self.membership(user_id, client_id).await?.ok_or_else(|| not_associated(user_id, client_id))
    }

    /// Makes an associated user the client's owner; the previous owner stays associated with
    /// every permission until someone changes them.
    pub async fn make_owner(&self, actor: &Actor, user_id: i64, client_id: i64) -> Result<Membership> {
        let client = self.client(client_id).await?;
        self.membership(user_id, client_id).await?.ok_or_else(|| not_associated(user_id, client_id))?;
        let mut tx = self.db.begin().await?;
        let previous: i64 = sqlx::query_scalar("SELECT owner_user_id FROM clients WHERE id = $1")
            .bind(client_id)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query("UPDATE clients SET owner_user_id = $1, updated_at = $2 WHERE id = $3")
            .bind(user_id)
            .bind(self.db.now())
            .bind(client.id)
            .execute(&mut *tx)
            .await?;
        // The old owner keeps the full set it effectively had.
        sqlx::query("UPDATE memberships SET permissions = $1 WHERE client_id = $2 AND user_id IN ($3, $4)")
            .bind(Permissions::all().to_stored())
            .bind(client_id)
            .bind(user_id)
            .bind(previous)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::ClientOwnerChange,
            (Target::Client, Some(client_id)),
            json!({"from": previous, "to": user_id}),
        )
        .await?;
        // A concurrent dissociation of the new owner fails the deferred ownership key.
        tx.commit().await.map_err(|e| match is_foreign_key_violation(&e) {
            true => not_associated(user_id, client_id),
            false => e.into(),
        })?;
        self.membership(user_id, client_id).await?.ok_or_else(|| not_associated(user_id, client_id))
    }
}
