//! `gatehouse license status|verify`.

use clap::Subcommand;

use super::output::{fields, table, time};
use super::{Context, Output};
use crate::error::Result;
use crate::license::{self, Reply, Standing, records};

#[derive(Debug, Subcommand)]
pub enum LicenseCommand {
    /// Show the cached answer: standing, status, binding, last and next check, grace left, and
    /// the last verification of each context (web, cron, cli). Asks nobody.
    Status,
    /// Ask the licensing server now. Exit 0 when the license is active, 1 when it is not (or no
    /// answer came: the failing network phase is named), 2 when the key or configuration is unusable.
    Verify,
}

pub async fn run(command: LicenseCommand, ctx: &Context, out: &Output) -> Result<i32> {
    match command {
        LicenseCommand::Status => status(ctx, out).await.map(|()| 0),
        LicenseCommand::Verify => verify(ctx, out).await,
    }
}

async fn status(ctx: &Context, out: &Output) -> Result<()> {
    let license = &ctx.license;
    license.refresh().await?;
    let standing = license.standing();
    let checks = records::all(ctx.accounts.db()).await?;
    let key_id = license.key().and_then(|k| k.ok()).map(|k| k.id());
    let value = serde_json::json!({
        "standing": &standing,
        "key_id": key_id,
        "server": license.server().map(|u| u.as_str()),
        "verifying_key": license.key_source(),
        "cache": license.cache_path(),
        "verifications": &checks,
    });
    out.emit(&value, || {
        let mut pairs = vec![("standing", standing.name().to_string())];
        match &standing {
            Standing::Unlicensed => {
                pairs.push(("note", "license.key is not set: unlicensed mode, nothing locks".into()));
            }
            Standing::Active { answer, due_at } | Standing::Grace { answer, due_at, .. } => {
                pairs.push(("status", answer.status.to_string()));
                pairs.push(("licensed for", answer.binding.to_string()));
                pairs.push(("last check", answer.checked_at.to_rfc3339()));
                pairs.push(("next check due", due_at.clone()));
            }
            Standing::FirstVerification { since, locks_at, hours_left } => {
                pairs.push((
                    "first verification",
                    format!(
                        "not answered since {since}; admin functions lock at {locks_at} ({hours_left} h left) \
                         unless the licensing server answers"
                    ),
                ));
            }
            Standing::Locked { reason, answer } => {
                pairs.push(("admin functions", format!("LOCKED: {reason}")));
                if let Some(answer) = answer {
                    pairs.push(("licensed for", answer.binding.to_string()));
                    pairs.push(("last check", answer.checked_at.to_rfc3339()));
                }
            }
        }
        if let Standing::Grace { locks_at, hours_left, .. } = &standing {
            pairs.push((
                "grace",
                format!("the server was not reached; admin functions lock at {locks_at} ({hours_left} h left)"),
            ));
        }
        if let Some(id) = &key_id {
            pairs.push(("key id", id.clone()));
        }
        pairs.push(("cache", license.cache_path().display().to_string()));
        pairs.push((
            "verifying key",
            match license.key_source() {
                "embedded" => "the vendor's, built into this gatehouse".to_string(),
                _ => "license.public_key (this build embeds none)".to_string(),
            },
        ));
        let rows = checks
            .iter()
            .map(|r| {
                vec![
                    r.context.to_string(),
                    r.host.clone(),
                    r.outcome.to_string(),
                    if r.applied == 1 { "yes" } else { "no" }.into(),
                    r.directory.clone(),
                    time(r.at),
                ]
            })
            .collect();
        format!(
            "{}\nVerifications (last per context and host):\n{}",
            fields(&pairs),
            table(&["CONTEXT", "HOST", "OUTCOME", "APPLIED", "DIRECTORY", "AT"], rows)
        )
    })
}

async fn verify(ctx: &Context, out: &Output) -> Result<i32> {
    let verification = ctx.license.verify(license::Context::Cli).await?;
    let valid = matches!(&verification.reply, Reply::Answered { answer, .. } if answer.status == license::Status::Active)
        && verification.applied;
    out.emit(&verification, || {
        let phases: Vec<String> = verification
            .phases
            .iter()
            .map(|p| format!("{} {:.0} ms {}", p.name, p.ms, if p.ok { "ok" } else { "FAILED" }))
            .collect();
        let mut pairs = match &verification.reply {
            Reply::Answered { answer, .. } => {
                let mut pairs =
                    vec![("status", answer.status.to_string()), ("licensed for", answer.binding.to_string())];
                if !answer.reason.is_empty() {
                    pairs.push(("reason", answer.reason.clone()));
                }
                pairs
            }
            Reply::NoAnswer { phase, why } => vec![("no answer", format!("{phase}: {why}"))],
        };
        if let Some(why) = &verification.not_applied {
            pairs.push(("applied", why.clone()));
        }
        pairs.push(("phases", phases.join(", ")));
        fields(&pairs)
    })?;
    Ok(if valid { 0 } else { 1 })
}
