//! `gatehouse lockout list|clear`: the lockout counters every node shares.

use clap::Subcommand;
use serde_json::json;

use super::output::{table, time};
use super::{Context, Output};
use crate::error::Result;

#[derive(Debug, Subcommand)]
pub enum LockoutCommand {
    /// Lockout counters, locked first: accounts, accounts at an IP, IPs, second factors, sign-ups
    List,
    /// End locks and forget failures: all of them, or those of one client IP
    Clear {
        /// Only the counters of this client IP (the IP alone, and accounts at it)
        #[arg(long)]
        ip: Option<String>,
    },
}

pub async fn run(command: LockoutCommand, ctx: &Context, out: &Output) -> Result<()> {
    let auth = &ctx.auth;
    match command {
        LockoutCommand::List => {
            let counters = auth.lockouts().await?;
            out.emit(&counters, || {
                if counters.is_empty() {
                    return "No failures counted and nothing locked.".into();
                }
                table(
                    &["SCOPE", "FAILURES", "WINDOW FROM", "LOCKED UNTIL"],
                    counters
                        .iter()
                        .map(|c| {
                            let until = if c.locked { time(c.locked_until) } else { "-".into() };
                            vec![c.scope.clone(), c.failures.to_string(), time(c.window_start), until]
                        })
                        .collect(),
                )
            })
        }
        LockoutCommand::Clear { ip } => {
            let removed = auth.clear_lockouts(&ctx.actor, ip.as_deref()).await?;
            out.emit(&json!({"removed": removed}), || match removed.len() {
                0 => "Nothing to clear.".into(),
                n => format!("Cleared {n} counter(s): {}", removed.join(", ")),
            })
        }
    }
}
