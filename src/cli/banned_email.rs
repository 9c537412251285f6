//! `gatehouse banned-email …`

use clap::Subcommand;
use serde_json::json;

use super::output::{table, time};
use super::{Context, Output};
use crate::error::Result;

#[derive(Debug, Subcommand)]
pub enum BannedEmailCommand {
    /// Ban a domain (and its subdomains when security.banned_email_subdomains is on)
    Add { domain: String },
    /// List banned domains with how many attempts each has blocked
    List,
    /// Lift a ban
    Remove { domain: String },
}

pub async fn run(command: BannedEmailCommand, ctx: &Context, out: &Output) -> Result<()> {
    if !matches!(command, BannedEmailCommand::List) {
        ctx.admin_write_allowed()?;
    }
    let accounts = &ctx.accounts;
    match command {
        BannedEmailCommand::Add { domain } => {
            let banned = accounts.ban_domain(&ctx.actor, &domain).await?;
            out.emit(&banned, || format!("Banned {}", banned.domain))
        }
        BannedEmailCommand::List => {
            let list = accounts.list_banned_domains().await?;
            out.emit(&list, || {
                table(
                    &["DOMAIN", "BLOCKED", "SINCE"],
                    list.iter()
                        .map(|b| vec![b.domain.clone(), b.blocked_count.to_string(), time(b.created_at)])
                        .collect(),
                )
            })
        }
        BannedEmailCommand::Remove { domain } => {
            accounts.unban_domain(&ctx.actor, &domain).await?;
            out.emit(&json!({"domain": domain, "banned": false}), || format!("Removed the ban on {domain}"))
        }
    }
}
