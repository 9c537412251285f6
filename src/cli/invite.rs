//! `gatehouse invite …`

use clap::Subcommand;

use super::output::{opt_time, table, time};
use super::{Context, Output};
use crate::accounts::Permissions;
use crate::error::Result;

#[derive(Debug, Subcommand)]
pub enum InviteCommand {
    /// Invite an email address to a client; prints the single-use token once
    Create {
        #[arg(long)]
        client: i64,
        #[arg(long)]
        email: String,
        /// Comma-separated permission keys
        #[arg(long, default_value = "")]
        permissions: String,
    },
    /// List invites, newest first
    List {
        /// Only the invites of this client
        #[arg(long)]
        client: Option<i64>,
    },
    /// Cancel a pending invite
    Cancel { id: i64 },
}

pub async fn run(command: InviteCommand, ctx: &Context, out: &Output) -> Result<()> {
    if !matches!(command, InviteCommand::List { .. }) {
        ctx.admin_write_allowed()?;
    }
    let accounts = &ctx.accounts;
    match command {
        InviteCommand::Create { client, email, permissions } => {
            let perms = Permissions::parse_list(&permissions)?;
            let created = accounts.create_invite(&ctx.actor, client, &email, &perms, None).await?;
            out.emit(&created, || {
                format!(
                    "Created invite {} for {} to client {} (expires {})\nToken (shown once): {}",
                    created.invite.id,
                    created.invite.email,
                    client,
                    time(created.invite.expires_at),
                    created.token
                )
            })
        }
        InviteCommand::List { client } => {
            let invites = accounts.list_invites(client).await?;
            out.emit(&invites, || {
                table(
                    &["ID", "CLIENT", "EMAIL", "STATUS", "EXPIRES", "ACCEPTED BY"],
                    invites
                        .iter()
                        .map(|i| {
                            vec![
                                i.id.to_string(),
                                i.client_id.to_string(),
                                i.email.clone(),
                                serde_json::to_value(i.status)
                                    .unwrap_or_default()
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_string(),
                                opt_time(Some(i.expires_at)),
                                i.accepted_user_id.map(|u| u.to_string()).unwrap_or_else(|| "-".into()),
                            ]
                        })
                        .collect(),
                )
            })
        }
        InviteCommand::Cancel { id } => {
            let invite = accounts.cancel_invite(&ctx.actor, id).await?;
            out.emit(&invite, || format!("Cancelled invite {id}"))
        }
    }
}
