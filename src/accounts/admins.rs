//! Admin users, roles (named sets of admin permissions) and API tokens for the admin API.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::json;
use sqlx::AnyConnection;

use super::AuditAction;
use super::Target;
use super::{Accounts, Actor, audit};
use crate::error::{Code, Error, Result};
use crate::secrets::{passwords, tokens};
use crate::store::{composed, is_unique_violation};

/// The name of the role `gatehouse init` creates with every permission.
pub const FULL_ROLE: &str = "Full Administrator";

macro_rules! admin_permissions {
    ($($variant:ident => $key:literal;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum AdminPermission { $($variant),* }
        impl AdminPermission {
            pub const ALL: &'static [AdminPermission] = &[$(AdminPermission::$variant),*];
            pub fn key(self) -> &'static str {
                match self { $(AdminPermission::$variant => $key),* }
            }
        }
        impl FromStr for AdminPermission {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s.trim() {
                    $($key => Ok(AdminPermission::$variant),)*
                    other => Err(Error::refused(
                        Code::InvalidPermission,
                        format!("unknown admin permission `{other}`; expected one of: {}", [$($key),*].join(", ")),
                    )),
                }
            }
        }
    };
}

admin_permissions! {
    ClientsView => "clients.view";
    ClientsCreate => "clients.create";
    ClientsManage => "clients.manage";
    UsersView => "users.view";
    UsersCreate => "users.create";
    UsersManage => "users.manage";
    UsersImpersonate => "users.impersonate";
    SessionsManage => "sessions.manage";
    SettingsManage => "settings.manage";
    HealthView => "health.view";
}

impl fmt::Display for AdminPermission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl Serialize for AdminPermission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.key())
    }
}

/// Parses `clients.view,users.view` (or `all`).
pub fn parse_admin_permissions(list: &str) -> Result<BTreeSet<AdminPermission>> {
    if list.trim() == "all" {
        return Ok(AdminPermission::ALL.iter().copied().collect());
    }
    super::split_csv(list).map(str::parse).collect()
}

fn stored_admin_permissions(stored: &str) -> BTreeSet<AdminPermission> {
    super::split_csv(stored).filter_map(|k| k.parse().ok()).collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct Role {
    pub id: i64,
    pub name: String,
    pub permissions: BTreeSet<AdminPermission>,
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub created_at: i64,
}

#[derive(sqlx_macros::FromRow)]
struct RoleRow {
    id: i64,
    name: String,
    permissions: String,
    created_at: i64,
}

impl From<RoleRow> for Role {
    fn from(r: RoleRow) -> Self {
        Role { id: r.id, name: r.name, permissions: stored_admin_permissions(&r.permissions), created_at: r.created_at }
    }
}

#[derive(Clone, Serialize, sqlx_macros::FromRow)]
pub struct Admin {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub role_id: Option<i64>,
    pub role_name: Option<String>,
    pub disabled: i64,
    #[serde(rename = "has_password", serialize_with = "is_set")]
    pub password_hash: Option<String>,
    /// How the admin proves the second factor; `None` when two-factor is off.
    #[serde(rename = "has_2fa", serialize_with = "is_set")]
    pub twofa_method: Option<super::TwoFaMethod>,
    #[serde(skip)]
    pub totp_secret: Option<String>,
    #[serde(skip)]
    pub totp_last_step: Option<i64>,
    #[serde(skip)]
    pub backup_code_hash: Option<String>,
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub created_at: i64,
}

/// Says which secrets are set, never what they are (as [`super::User`]'s).
impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role_id", &self.role_id)
            .field("disabled", &self.disabled)
            .field("twofa_method", &self.twofa_method)
            .field("password_hash", &super::secret_state(&self.password_hash))
            .field("totp_secret", &super::secret_state(&self.totp_secret))
            .field("backup_code_hash", &super::secret_state(&self.backup_code_hash))
            .finish_non_exhaustive()
    }
}

impl Admin {
    pub fn is_disabled(&self) -> bool {
        self.disabled != 0
    }

    /// Who did it, in the audit log, from `ip`.
    pub fn actor(&self, ip: &str) -> Actor {
        Actor::admin(self.id, &self.username).with_ip(ip)
    }
}

fn is_set<T, S: serde::Serializer>(v: &Option<T>, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_bool(v.is_some())
}

const SELECT_ADMIN: &str = "SELECT a.id, a.username, a.email, a.role_id, r.name AS role_name, a.disabled, \
     a.password_hash, a.twofa_method, a.totp_secret, a.totp_last_step, a.backup_code_hash, a.created_at \
     FROM admins a LEFT JOIN roles r ON r.id = a.role_id";

/// An API token as listed: the secret itself is never stored or shown again.
#[derive(Debug, Clone, Serialize, sqlx_macros::FromRow)]
pub struct ApiToken {
    pub id: i64,
    pub admin_id: i64,
    pub name: String,
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::store::serialize_opt_ts")]
    pub last_used_at: Option<i64>,
    #[serde(serialize_with = "crate::store::serialize_opt_ts")]
    pub revoked_at: Option<i64>,
}

const TOKEN_COLUMNS: &str = "id, admin_id, name, created_at, last_used_at, revoked_at";

#[derive(Debug, Clone, Serialize)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub info: ApiToken,
    /// Shown once, at creation.
    pub token: String,
}

fn exists_err(what: &str, name: &str) -> impl FnOnce(sqlx::Error) -> Error {
    let message = format!("{what} `{name}` already exists");
    move |e| {
        if is_unique_violation(&e) { Error::refused(Code::AlreadyExists, message) } else { e.into() }
    }
}

/// Whether an admin may not sign in (disabled, or gone), read in the caller's transaction: a
/// sign-in completing reads it with the rows it writes, so a disable that committed first is
/// seen.
pub async fn admin_shut_out_in(conn: &mut AnyConnection, id: i64) -> Result<bool> {
    let disabled: Option<i64> =
        sqlx::query_scalar("SELECT disabled FROM admins WHERE id = $1").bind(id).fetch_optional(conn).await?;
    Ok(disabled.is_none_or(|d| d != 0))
}

/// How many admins can sign in: enabled, with a password or a passkey.
async fn admins_who_can_sign_in(conn: &mut AnyConnection) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM admins a WHERE a.disabled = 0 AND (a.password_hash IS NOT NULL \
         OR EXISTS (SELECT 1 FROM passkeys p WHERE p.principal = 'admin' AND p.account_id = a.id))",
    )
    .fetch_one(conn)
    .await?)
}

/// Who hands out admin permissions. The operator at the shell (`gatehouse admin …`) holds them
/// all; an admin holds their role's, and can never give a role, an admin or a token a
/// permission they do not hold — nor take over, or strip, an admin who holds more.
#[derive(Debug, Clone)]
pub enum Grantor {
    Operator,
    Admin { id: i64, holds: BTreeSet<AdminPermission> },
}

impl Grantor {
    fn missing(&self, wanted: &BTreeSet<AdminPermission>) -> Vec<AdminPermission> {
        match self {
            Grantor::Operator => Vec::new(),
            Grantor::Admin { holds, .. } => wanted.difference(holds).copied().collect(),
        }
    }

    fn is_admin(&self, id: i64) -> bool {
        matches!(self, Grantor::Admin { id: own, .. } if *own == id)
    }
}

impl Accounts {
    /// Refuses, and audits the refusal, when `wanted` holds a permission the grantor lacks.
    async fn require_held(
        &self,
        actor: &Actor,
        grantor: &Grantor,
        wanted: &BTreeSet<AdminPermission>,
        what: &str,
        target: (Target, Option<i64>),
    ) -> Result<()> {
        let missing = grantor.missing(wanted);
        if missing.is_empty() {
            return Ok(());
        }
        let keys: Vec<&str> = missing.iter().map(|p| p.key()).collect();
        audit::record(
            &mut *self.db.pool().acquire().await?,
            self.db.now(),
            actor,
            AuditAction::AdminGrantRefused,
            target,
            json!({"what": what, "missing": keys}),
        )
        .await?;
        Err(Error::refused(
            Code::Forbidden,
            format!(
                "{what} needs {}, which your role does not hold; nobody grants what they do not hold",
                keys.join(", ")
            ),
        ))
    }

    pub async fn create_role(
        &self,
        actor: &Actor,
        grantor: &Grantor,
        name: &str,
        permissions: &BTreeSet<AdminPermission>,
    ) -> Result<Role> {
        let name = super::users::require_name("role name", name)?;
        self.require_held(actor, grantor, permissions, "creating this role", (Target::Role, None)).await?;
        let stored = super::join_csv(permissions.iter().map(|p| p.key()));
        let mut tx = self.db.begin().await?;
        let row: RoleRow =
            sqlx::query_as("INSERT INTO roles (name, permissions, created_at) VALUES ($1, $2, $3) RETURNING *")
                .bind(&name)
                .bind(&stored)
                .bind(self.db.now())
                .fetch_one(&mut *tx)
                .await
                .map_err(exists_err("role", &name))?;
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::RoleCreate,
            (Target::Role, Some(row.id)),
            json!({"name": name, "permissions": stored}),
        )
        .await?;
        tx.commit().await?;
        Ok(row.into())
    }

    pub async fn role_by_name(&self, name: &str) -> Result<Role> {
        let row: Option<RoleRow> = sqlx::query_as("SELECT * FROM roles WHERE name = $1")
            .bind(name.trim())
            .fetch_optional(self.db.pool())
            .await?;
        row.map(Into::into).ok_or_else(|| Error::not_found("role", name))
    }

    pub async fn list_roles(&self) -> Result<Vec<Role>> {
        let rows: Vec<RoleRow> = sqlx::query_as("SELECT * FROM roles ORDER BY id").fetch_all(self.db.pool()).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn set_role_permissions(
        &self,
        actor: &Actor,
        grantor: &Grantor,
        name: &str,
        permissions: &BTreeSet<AdminPermission>,
    ) -> Result<Role> {
        let role = self.role_by_name(name).await?;
        // Both what the role gives now (to change it is to act for its holders) and what it would.
        let touched = role.permissions.union(permissions).copied().collect();
        self.require_held(actor, grantor, &touched, "changing this role", (Target::Role, Some(role.id))).await?;
        let stored = super::join_csv(permissions.iter().map(|p| p.key()));
        let mut tx = self.db.begin().await?;
        sqlx::query("UPDATE roles SET permissions = $1 WHERE id = $2")
            .bind(&stored)
            .bind(role.id)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::RolePermissions,
            (Target::Role, Some(role.id)),
            json!({"permissions": stored}),
        )
        .await?;
        tx.commit().await?;
        self.role_by_name(name).await
    }

    pub async fn create_admin(
        &self,
        actor: &Actor,
        grantor: &Grantor,
        username: &str,
        email: &str,
        role: &str,
        password: Option<&str>,
    ) -> Result<Admin> {
        let username = super::users::require_name("username", username)?;
        let email = email.trim().to_string();
        let role = self.role_by_name(role).await?;
        self.require_held(actor, grantor, &role.permissions, "an admin with this role", (Target::Admin, None)).await?;
        let hash = match password {
            Some(p) => {
                Some(passwords::hash_new_password_async(p, self.policy.password_min_length, actor.requester()).await?)
            }
            None => None,
        };
        let mut tx = self.db.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO admins (username, username_norm, email, role_id, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&username)
        .bind(username.to_lowercase())
        .bind(&email)
        .bind(role.id)
        .bind(hash)
        .bind(self.db.now())
        .fetch_one(&mut *tx)
        .await
        .map_err(exists_err("admin", &username))?;
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::AdminCreate,
            (Target::Admin, Some(id)),
            json!({"username": username, "role": role.name}),
        )
        .await?;
        tx.commit().await?;
        self.admin(id).await
    }

    pub async fn admin(&self, id: i64) -> Result<Admin> {
        sqlx::query_as(composed(format!("{SELECT_ADMIN} WHERE a.id = $1")))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or_else(|| Error::not_found("admin", id))
    }

    pub async fn admin_by_username(&self, username: &str) -> Result<Admin> {
        sqlx::query_as(composed(format!("{SELECT_ADMIN} WHERE a.username_norm = $1")))
            .bind(username.trim().to_lowercase())
            .fetch_optional(self.db.pool())
            .await?
            .ok_or_else(|| Error::not_found("admin", username))
    }

    pub async fn list_admins(&self) -> Result<Vec<Admin>> {
        Ok(sqlx::query_as(composed(format!("{SELECT_ADMIN} ORDER BY a.id"))).fetch_all(self.db.pool()).await?)
    }

    pub async fn set_admin_role(&self, actor: &Actor, grantor: &Grantor, admin_id: i64, role: &str) -> Result<Admin> {
        let admin = self.admin(admin_id).await?;
        let role = self.role_by_name(role).await?;
        // The role's, disabled or not: a disabled admin keeps it for when they are enabled.
        let touched = self.role_permissions(&admin).await?.union(&role.permissions).copied().collect();
        self.require_held(actor, grantor, &touched, "this role change", (Target::Admin, Some(admin_id))).await?;
        let mut tx = self.db.begin().await?;
        sqlx::query("UPDATE admins SET role_id = $1 WHERE id = $2")
            .bind(role.id)
            .bind(admin_id)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::AdminRole,
            (Target::Admin, Some(admin_id)),
            json!({"role": role.name}),
        )
        .await?;
        tx.commit().await?;
        self.admin(admin_id).await
    }

    /// The permissions an admin holds through their role (none without a role, or when disabled).
    pub async fn admin_permissions(&self, admin: &Admin) -> Result<BTreeSet<AdminPermission>> {
        if admin.disabled != 0 {
            return Ok(BTreeSet::new());
        }
        self.role_permissions(admin).await
    }

    /// The permissions of an admin's role, disabled or not.
    async fn role_permissions(&self, admin: &Admin) -> Result<BTreeSet<AdminPermission>> {
        match &admin.role_name {
            Some(name) => Ok(self.role_by_name(name).await?.permissions),
            None => Ok(BTreeSet::new()),
        }
    }

    /// Refuses, and audits, an action on another admin by a grantor who does not hold everything
    /// that admin's role holds — disabled or not, as they would hold it once enabled. One's own
    /// account is one's own.
    pub async fn may_act_on_admin(&self, actor: &Actor, grantor: &Grantor, admin: &Admin, what: &str) -> Result<()> {
        if grantor.is_admin(admin.id) {
            return Ok(());
        }
        let theirs = self.role_permissions(admin).await?;
        self.require_held(actor, grantor, &theirs, what, (Target::Admin, Some(admin.id))).await
    }

    /// Whether an admin may open a session as a user now: enabled, their role holding
    /// `users.impersonate`. A link, and every session it opened, acts for its admin only while
    /// this holds.
    pub async fn may_impersonate(&self, admin_id: i64) -> Result<bool> {
        match self.admin(admin_id).await {
            Ok(admin) => Ok(self.admin_permissions(&admin).await?.contains(&AdminPermission::UsersImpersonate)),
            Err(Error::Refused { code: Code::NotFound, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Disables an admin (staff who left, an account suspected taken over), or enables them
    /// again. A disabled admin signs in to nothing: the admin area sends their sessions to the
    /// sign-in page, which refuses them, and their API tokens are refused; their role, tokens
    /// and second factor are kept for when they are enabled. Only a grantor holding everything
    /// the admin's role holds may do either — nobody disables, or brings back, an admin who
    /// holds more — and nobody disables themself or the last admin who can sign in. The caller
    /// ends a disabled admin's sessions.
    pub(crate) async fn set_admin_disabled(
        &self,
        actor: &Actor,
        grantor: &Grantor,
        admin_id: i64,
        disabled: bool,
    ) -> Result<Admin> {
        let admin = self.admin(admin_id).await?;
        let what = if disabled { "disabling this admin" } else { "enabling this admin" };
        self.may_act_on_admin(actor, grantor, &admin, what).await?;
        if disabled && grantor.is_admin(admin_id) {
            return Err(Error::refused(Code::Forbidden, "you cannot disable yourself; another admin can"));
        }
        let mut tx = self.db.begin().await?;
        // One row every change of this kind locks first (a write that changes nothing, on both
        // databases): two admins disabled at once are then decided one after the other on
        // PostgreSQL too — each later statement reads what the first committed — so the last
        // one who can sign in is never disabled by both. One row, so never a deadlock.
        sqlx::query("UPDATE admins SET disabled = disabled WHERE id = (SELECT MIN(id) FROM admins)")
            .execute(&mut *tx)
            .await?;
        let before = admins_who_can_sign_in(&mut tx).await?;
        let done = sqlx::query("UPDATE admins SET disabled = $1 WHERE id = $2 AND disabled <> $1")
            .bind(i64::from(disabled))
            .bind(admin_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            // Already so: nothing to record.
            return Ok(admin);
        }
        if disabled && before > 0 && admins_who_can_sign_in(&mut tx).await? == 0 {
            return Err(Error::refused(
                Code::Forbidden,
                format!(
                    "{} is the last admin who can sign in; add or enable another first (`gatehouse admin add`)",
                    admin.username
                ),
            ));
        }
        let action = if disabled { AuditAction::AdminDisabled } else { AuditAction::AdminEnabled };
        let target = (Target::Admin, Some(admin_id));
        audit::record(&mut tx, self.db.now(), actor, action, target, json!({"username": admin.username})).await?;
        tx.commit().await?;
        self.admin(admin_id).await
    }

    /// A token acts as its admin: an admin makes tokens for themself; one for another admin
    /// needs every permission that admin holds.
    pub async fn create_api_token(
        &self,
        actor: &Actor,
        grantor: &Grantor,
        admin_id: i64,
        name: &str,
    ) -> Result<CreatedToken> {
        let admin = self.admin(admin_id).await?;
        let name = super::users::require_name("token name", name)?;
        self.may_act_on_admin(actor, grantor, &admin, &format!("a token acting as {}", admin.username)).await?;
        let token = tokens::mint(tokens::TokenKind::Api);
        let mut tx = self.db.begin().await?;
        let info: ApiToken = sqlx::query_as(composed(format!(
            "INSERT INTO api_tokens (admin_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING {TOKEN_COLUMNS}"
        )))
        .bind(admin_id)
        .bind(&name)
        .bind(&token.hash)
        .bind(self.db.now())
        .fetch_one(&mut *tx)
        .await?;
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::ApiTokenCreate,
            (Target::Admin, Some(admin_id)),
            json!({"token_id": info.id, "name": name}),
        )
        .await?;
        tx.commit().await?;
        Ok(CreatedToken { info, token: token.raw })
    }

    pub async fn list_api_tokens(&self, admin_id: Option<i64>) -> Result<Vec<ApiToken>> {
        Ok(sqlx::query_as(composed(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE ($1 = 0 OR admin_id = $1) ORDER BY id"
        )))
        .bind(admin_id.unwrap_or(0))
        .fetch_all(self.db.pool())
        .await?)
    }

    /// Revokes a token. Another admin's only for a grantor holding everything their role holds:
    /// nobody takes away the tools of an admin who holds more.
    pub async fn revoke_api_token(&self, actor: &Actor, grantor: &Grantor, id: i64) -> Result<ApiToken> {
        let owner: Option<i64> = sqlx::query_scalar("SELECT admin_id FROM api_tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        let owner = self.admin(owner.ok_or_else(|| Error::not_found("active API token", id))?).await?;
        self.may_act_on_admin(actor, grantor, &owner, "revoking this admin's token").await?;
        let mut tx = self.db.begin().await?;
        let info: ApiToken = sqlx::query_as(composed(format!(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING {TOKEN_COLUMNS}"
        )))
        .bind(self.db.now())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::not_found("active API token", id))?;
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::ApiTokenRevoke,
            (Target::Admin, Some(info.admin_id)),
            json!({"token_id": id}),
        )
        .await?;
        tx.commit().await?;
        Ok(info)
    }

    /// Resolves a presented bearer token to its admin, recording when it was last used.
    pub async fn authenticate_api_token(&self, raw: &str) -> Result<Admin> {
        let invalid = || Error::refused(Code::InvalidToken, "the API token is not valid");
        let presented = tokens::digest(raw.trim());
        let row: Option<(i64, i64, String)> = sqlx::query_as(
            "SELECT id, admin_id, token_hash FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(&presented)
        .fetch_optional(self.db.pool())
        .await?;
        let (id, admin_id, stored) = row.ok_or_else(invalid)?;
        if !tokens::ct_eq(&stored, &presented) {
            return Err(invalid());
        }
        let admin = self.admin(admin_id).await?;
        if admin.disabled != 0 {
            return Err(invalid());
        }
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(self.db.now())
            .bind(id)
            .execute(self.db.pool())
            .await?;
        Ok(admin)
    }

    /// First-run set-up: the full-permission role, the first admin and an API token for them.
    /// Refused once any admin exists.
    pub async fn bootstrap_admin(&self, actor: &Actor, username: &str, email: &str) -> Result<(Admin, CreatedToken)> {
        let admins: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM admins").fetch_one(self.db.pool()).await?;
        if admins > 0 {
            return Err(Error::refused(Code::AlreadyInitialized, "this database already has admin users"));
        }
        if self.role_by_name(FULL_ROLE).await.is_err() {
            self.create_role(actor, &Grantor::Operator, FULL_ROLE, &AdminPermission::ALL.iter().copied().collect())
                .await?;
        }
        let admin = self.create_admin(actor, &Grantor::Operator, username, email, FULL_ROLE, None).await?;
        let token = self.create_api_token(actor, &Grantor::Operator, admin.id, "initial token").await?;
        Ok((admin, token))
    }
}
