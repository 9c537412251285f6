//! `gatehouse report`: a support bundle; `gatehouse report diff OLD NEW`: what changed.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Output;
use super::output::table;
use crate::config::Loaded;
use crate::doctor::Doctor;
use crate::error::Result;
use crate::report::bundle::{self, BundleOptions};
use crate::report::diff;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub command: Option<ReportCommand>,
    /// Folder the bundle is written under
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub out: PathBuf,
    /// Write one .tar.gz instead of a folder
    #[arg(long)]
    pub archive: bool,
    /// Keep secrets, hashes, tokens and email addresses as they are (redacted by default)
    #[arg(long)]
    pub no_redact: bool,
    /// List exactly what would leave the machine (files, sizes, redactions, what is left out) and write nothing
    #[arg(long)]
    pub preview: bool,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Show the checks whose result changed between two bundles (folders, .tar.gz or report JSON)
    Diff { old: PathBuf, new: PathBuf },
}

pub async fn run(args: ReportArgs, loaded: Loaded, out: &Output) -> Result<i32> {
    if let Some(ReportCommand::Diff { old, new }) = args.command {
        let changes = diff::diff(&diff::load(&old)?, &diff::load(&new)?);
        out.emit(&changes, || {
            if changes.is_empty() {
                return "No results changed.".into();
            }
            let status = |s: Option<crate::doctor::Status>| s.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
            table(
                &["CHECK", "BEFORE", "AFTER", "", "NOW"],
                changes
                    .iter()
                    .map(|c| {
                        vec![c.id.clone(), status(c.before), status(c.after), c.direction().into(), c.message.clone()]
                    })
                    .collect(),
            )
        })?;
        return Ok(0);
    }
    let (report, ctx) = Doctor::new(&loaded).examine(loaded.clone()).await;
    let options = BundleOptions {
        out_dir: args.out,
        archive: args.archive,
        redact: !args.no_redact,
        preview: args.preview,
        progress: !out.quiet,
    };
    let written = bundle::write(&loaded, &ctx, &report, &options).await;
    ctx.close().await;
    let written = written?;
    let m = &written.manifest;
    if args.preview {
        return out.emit(&serde_json::json!({"preview": true, "manifest": m}), || preview(m)).map(|()| 0);
    }
    out.emit(&serde_json::json!({"path": written.path, "manifest": m}), || {
        let mut text = format!("Wrote {} ({} files", written.path.display(), m.files.len() + 1);
        if !m.skipped.is_empty() {
            text += &format!("; skipped {}", m.skipped.iter().map(|s| s.item.as_str()).collect::<Vec<_>>().join(", "));
        }
        text += ")\n";
        text += &if m.redacted {
            let what: Vec<String> = m.redactions.iter().map(|(k, n)| format!("{n} {k}")).collect();
            format!("Redacted: {}", if what.is_empty() { "nothing needed redacting".into() } else { what.join(", ") })
        } else {
            "NOT redacted (--no-redact): review before sharing".into()
        };
        text
    })?;
    Ok(0)
}

/// What a bundle would carry, file by file, before anything is written.
fn preview(m: &bundle::Manifest) -> String {
    let rows = m.files.iter().map(|f| vec![f.name.clone(), format!("{} bytes", f.bytes)]).collect();
    let mut text = format!("Would write (nothing has been written):\n{}", table(&["FILE", "SIZE"], rows));
    text += "  manifest.json, SHA256SUMS\n";
    if !m.skipped.is_empty() {
        text += "Left out:\n";
        for s in &m.skipped {
            text += &format!("  {}: {}\n", s.item, s.reason);
        }
    }
    text += &if m.redacted {
        let what: Vec<String> = m.redactions.iter().map(|(k, n)| format!("{n} {k}")).collect();
        format!("Redacted: {}", if what.is_empty() { "nothing needed redacting".into() } else { what.join(", ") })
    } else {
        "NOT redacted (--no-redact): secrets, hashes, tokens and email addresses would leave as they are".into()
    };
    text
}
