//! The accounts core: clients, users, memberships with permissions and exactly one owner,
//! invites, banned email domains, security questions, admins with roles and API tokens, and
//! the audit log every write appends to.
//!
//! `Accounts` is the one service the CLI, the web faces and the doctor use. Each write runs in
//! a single transaction together with its audit entry.

pub mod admins;
mod audit;
mod audit_action;
mod banned_emails;
mod clients;
mod credentials;
mod email;
mod import;
mod integrity;
mod invites;
mod listing;
mod match_details;
mod memberships;
mod permissions;
mod principal;
mod questions;
mod users;

pub use admins::{Admin, AdminPermission, ApiToken, CreatedToken, Grantor, Role, admin_shut_out_in};
pub use audit::{Actor, ActorKind, AuditEntry, Target};
pub use audit_action::AuditAction;
pub use banned_emails::BannedDomain;
pub use clients::{
    Client, ClientStatus, ClientUpdate, DeletedClient, EMAIL_KINDS, EmailPrefs, NewClient, OwnerSpec, countries,
};
pub use credentials::{HashCensus, record_in};
pub use email::looks_like_email;
pub use import::{ImportedUser, RowError};
pub use integrity::Integrity;
pub use invites::{Acceptance, CreatedInvite, Invite, InviteStatus};
pub use listing::Listing;
pub use match_details::CopyDirection;
pub(crate) use memberships::{MEMBERSHIPS_OF_U, USER_WITH_CLIENTS_COLUMNS};
pub use memberships::{Membership, UserWithClients};
pub use permissions::{Permission, Permissions};
pub use principal::{
    CredentialEvent, Credentials, Principal, replace_backup_code_in, revoke_reset_links, store_password_hash_in,
};
pub use questions::SecurityQuestion;
pub(crate) use users::refuse_control_characters;
pub use users::{NewUser, TwoFaMethod, User, UserUpdate};

use crate::config::Config;

/// How `Debug` shows a stored secret (a hash, a TOTP key): whether it is set, never what it is.
fn secret_state(secret: &Option<String>) -> &'static str {
    if secret.is_some() { "set" } else { "none" }
}
use crate::store::Db;

/// Policy values the accounts rules depend on, taken from the configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    pub password_min_length: usize,
    pub invite_ttl_secs: i64,
    pub banned_email_subdomains: bool,
}

impl From<&Config> for Policy {
    fn from(c: &Config) -> Self {
        Policy {
            password_min_length: c.security.password_min_length,
            invite_ttl_secs: c.security.invite_ttl.as_secs(),
            banned_email_subdomains: c.security.banned_email_subdomains,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Accounts {
    db: Db,
    policy: Policy,
}

impl Accounts {
    pub fn new(db: Db, policy: Policy) -> Self {
        Self { db, policy }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

/// Joins values into the comma-separated form stored in TEXT columns.
fn join_csv<I: IntoIterator<Item = S>, S: AsRef<str>>(items: I) -> String {
    items.into_iter().map(|s| s.as_ref().to_string()).collect::<Vec<_>>().join(",")
}

/// Splits a stored comma-separated column.
fn split_csv(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty())
}
