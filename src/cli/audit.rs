//! `gatehouse audit`: the most recent audit log entries.

use clap::Args;

use super::output::{table, time};
use super::{Context, Output};
use crate::accounts::{AuditAction, Target};
use crate::error::{Error, Result};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries about this client
    #[arg(long, conflicts_with = "user")]
    pub client: Option<i64>,
    /// Only entries about this user (id or email)
    #[arg(long)]
    pub user: Option<String>,
    /// Only entries of this action (`--actions` lists them), e.g. login.failed
    #[arg(long, value_parser = parse_action)]
    pub action: Option<AuditAction>,
    /// List every action the log records, with what it means, and exit
    #[arg(long, conflicts_with_all = ["client", "user", "action"])]
    pub actions: bool,
    /// How many entries, newest first
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
}

/// An action of the vocabulary, or the nearest names for a typo.
fn parse_action(name: &str) -> std::result::Result<AuditAction, String> {
    if let Some(action) = AuditAction::named(name.trim()) {
        return Ok(action);
    }
    let mut near: Vec<(f64, &str)> =
        AuditAction::ALL.iter().map(|a| (strsim::jaro_winkler(a.as_str(), name), a.as_str())).collect();
    near.sort_by(|a, b| b.0.total_cmp(&a.0));
    let names: Vec<&str> = near.iter().take(3).map(|(_, n)| *n).collect();
    Err(format!("no such action; the nearest are {} (`gatehouse audit --actions` lists all)", names.join(", ")))
}

/// The vocabulary, as a table or as JSON.
fn list_actions(out: &Output) -> Result<()> {
    let rows: Vec<serde_json::Value> =
        AuditAction::ALL.iter().map(|a| serde_json::json!({"action": a.as_str(), "meaning": a.meaning()})).collect();
    out.emit(&rows, || {
        table(
            &["ACTION", "MEANING"],
            AuditAction::ALL.iter().map(|a| vec![a.to_string(), a.meaning().into()]).collect(),
        )
    })
}

pub async fn run(args: AuditArgs, ctx: &Context, out: &Output) -> Result<()> {
    if args.actions {
        return list_actions(out);
    }
    if args.limit < 1 {
        return Err(Error::Usage("--limit must be at least 1".into()));
    }
    let target = match (args.client, &args.user) {
        (Some(id), _) => Some((Target::Client, id)),
        (None, Some(user)) => Some((Target::User, ctx.user_id(user).await?)),
        (None, None) => None,
    };
    let entries = ctx.accounts.audit_search(target, args.action, args.limit).await?;
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
