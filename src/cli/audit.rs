//! `gatehouse audit`: the most recent audit log entries.

use clap::Args;

use super::output::{table, time};
use super::{Context, Output};
use crate::error::{Error, Result};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries about this client
    #[arg(long, conflicts_with = "user")]
    pub client: Option<i64>,
    /// Only entries about this user (id or email)
    #[arg(long)]
    pub user: Option<String>,
    /// How many entries, newest first
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
}

pub async fn run(args: AuditArgs, ctx: &Context, out: &Output) -> Result<()> {
    if args.limit < 1 {
        return Err(Error::Usage("--limit must be at least 1".into()));
    }
    let target = match (args.client, &args.user) {
        (Some(id), _) => Some(("client", id)),
        (None, Some(user)) => Some(("user", ctx.user_id(user).await?)),
        (None, None) => None,
    };
    let entries = ctx.accounts.audit_log(target, args.limit).await?;
    out.emit(&entries, || {
        table(
            &["ID", "AT", "ACTOR", "ACTION", "TARGET", "IP", "DETAILS"],
            entries
                .iter()
                .map(|e| {
                    vec![
                        e.id.to_string(),
                        time(e.at),
                        format!(
                            "{}:{}",
                            e.actor_type,
                            if e.actor_label.is_empty() {
                                e.actor_id.map(|i| i.to_string()).unwrap_or_default()
                            } else {
                                e.actor_label.clone()
                            }
                        ),
                        e.action.clone(),
                        format!("{} {}", e.target_type, e.target_id.map(|i| i.to_string()).unwrap_or_default()),
                        e.ip.clone().unwrap_or_else(|| "-".into()),
                        e.details.clone(),
                    ]
                })
                .collect(),
        )
    })
}
