//! `gatehouse session list|revoke|gc|end-all`.

use clap::{Args, Subcommand};
use serde_json::json;

use super::output::{table, time};
use super::{Context, Output};
use crate::accounts::AuditAction;
use crate::accounts::Target;
use crate::error::{Error, Result};

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// A user's signed-in sessions
    List(UserArg),
    /// End one session of a user (by the id `session list` shows), or all of them with --all
    Revoke(RevokeArgs),
    /// Delete expired sessions now, in batches (what `cron` does), and print how many
    Gc,
    /// End everyone's client-area sessions now — session cookies you think were stolen, a
    /// secret that leaked: every user signs in again (their known devices are kept)
    #[command(name = "end-all")]
    EndAll {
        /// End the admin area's sessions too
        #[arg(long)]
        admins: bool,
    },
}

#[derive(Debug, Args)]
pub struct UserArg {
    /// User id or email
    #[arg(long)]
    pub user: String,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// User id or email
    #[arg(long)]
    pub user: String,
    /// Session id from `session list`
    #[arg(required_unless_present = "all")]
    pub id: Option<String>,
    /// End every session of the user
    #[arg(long)]
    pub all: bool,
}

pub async fn run(command: SessionCommand, ctx: &Context, out: &Output) -> Result<()> {
    match command {
        SessionCommand::List(a) => {
            let user_id = ctx.user_id(&a.user).await?;
            let list = ctx.sessions.for_user(user_id).await?;
            let rows: Vec<_> = list.iter().map(|s| s.summary()).collect();
            out.emit(&rows, || {
                table(
                    &["ID", "IP", "CLIENT", "STARTED", "LAST SEEN"],
                    list.iter()
                        .map(|s| {
                            vec![
                                s.handle().to_string(),
                                s.data.ip.clone(),
                                s.data.client_id.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
                                time(s.created_at),
                                time(s.last_seen_at),
                            ]
                        })
                        .collect(),
                )
            })
        }
        SessionCommand::Revoke(a) => {
            let user_id = ctx.user_id(&a.user).await?;
            let ended = match (&a.id, a.all) {
                (_, true) => ctx.sessions.end_for_user(user_id, None).await?,
                (Some(id), false) => {
                    if !ctx.sessions.revoke(user_id, id).await? {
                        return Err(Error::not_found("session", id));
                    }
                    1
                }
                (None, false) => unreachable!("clap requires an id or --all"),
            };
            ctx.accounts
                .record_event(
                    &ctx.actor,
                    AuditAction::SessionRevoke,
                    (Target::User, Some(user_id)),
                    json!({"ended": ended}),
                )
                .await?;
            out.emit(&json!({"user_id": user_id, "ended": ended}), || {
                format!("Ended {ended} session(s) of user {user_id}.")
            })
        }
        SessionCommand::EndAll { admins } => {
            let ended = ctx.sessions.end_everyone(admins, crate::cron::GC_BATCH).await?;
            let details = json!({"ended": ended, "admins": admins});
            let target = (Target::Session, None);
            ctx.accounts.record_event(&ctx.actor, AuditAction::SessionEndEveryone, target, details.clone()).await?;
            out.emit(&details, || match admins {
                true => format!("Ended {ended} session(s), the admin area's included: everyone signs in again."),
                false => format!("Ended {ended} client-area session(s): every user signs in again."),
            })
        }
        SessionCommand::Gc => {
            let removed = ctx.sessions.collect_all(crate::cron::GC_BATCH).await?;
            out.emit(&json!({"removed": removed}), || format!("Removed {removed} expired session(s)."))
        }
    }
}
