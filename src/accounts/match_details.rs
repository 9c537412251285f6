//! "Match user and client details": user and client contact details are separate and never
//! synchronised automatically; this explicit admin action copies them one way.

use std::str::FromStr;

use serde_json::json;

use super::AuditAction;
use super::Target;
use super::{Accounts, Actor, ClientUpdate, UserUpdate, audit};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyDirection {
    /// Copy the user's name, email and language onto the client.
    UserToClient,
    /// Copy the client's name, email and language onto the user.
    ClientToUser,
    /// Copy the client's name and language onto the user, keeping the user's login email (when
    /// the client's email is another login's).
    ClientNamesToUser,
}

impl FromStr for CopyDirection {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "user" => Ok(Self::UserToClient),
            "client" => Ok(Self::ClientToUser),
            "client_names" => Ok(Self::ClientNamesToUser),
            other => Err(Error::invalid(format!("`{other}` is not a source; expected user, client or client_names"))),
        }
    }
}

impl Accounts {
    /// Copies first name, last name, email and language between an associated user and client.
    /// Email rules (validity, banned domains, user uniqueness) apply to the copied address.
    pub async fn match_details(&self, actor: &Actor, user_id: i64, client_id: i64, from: CopyDirection) -> Result<()> {
        let user = self.user(user_id).await?;
        let client = self.client(client_id).await?;
        if self.membership(user_id, client_id).await?.is_none() {
            return Err(super::memberships::not_associated(user_id, client_id));
        }
        match from {
            CopyDirection::UserToClient => {
                let update = ClientUpdate {
                    first_name: Some(user.first_name),
                    last_name: Some(user.last_name),
                    email: Some(user.email),
                    language: Some(user.language),
                    ..Default::default()
                };
                self.update_client(actor, client_id, update).await?;
            }
            CopyDirection::ClientToUser | CopyDirection::ClientNamesToUser => {
                let update = UserUpdate {
                    first_name: Some(client.first_name),
                    last_name: Some(client.last_name),
                    email: (from == CopyDirection::ClientToUser).then_some(client.email),
                    language: Some(client.language),
                    timezone: None,
                };
                self.update_user(actor, user_id, update).await?;
            }
        }
        let mut conn = self.db.pool().acquire().await?;
        let direction = match from {
            CopyDirection::UserToClient => "user_to_client",
            CopyDirection::ClientToUser => "client_to_user",
            CopyDirection::ClientNamesToUser => "client_names_to_user",
        };
        audit::record(
            &mut conn,
            self.db.now(),
            actor,
            AuditAction::MatchDetails,
            (Target::Client, Some(client_id)),
            json!({"user_id": user_id, "direction": direction}),
        )
        .await?;
        Ok(())
    }
}
