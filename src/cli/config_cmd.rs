//! `gatehouse config check | show`.

use clap::Subcommand;
use serde_json::json;

use super::Output;
use crate::config::Loaded;
use crate::error::Result;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration file and environment overrides (exit 2 with FILE:LINE:COL if invalid)
    Check,
    /// Print the effective configuration, every secret replaced by ***
    Show,
}

pub fn run(command: ConfigCommand, loaded: &Loaded, out: &Output) -> Result<()> {
    let c = &loaded.config;
    match command {
        ConfigCommand::Check => out.emit(
            &json!({"valid": true, "source": loaded.source.to_string(), "database": c.database_url.backend()}),
            || {
                format!(
                    "ok: configuration from {} is valid (database: {} from {}, system_url: {})",
                    loaded.source,
                    c.database_url.redacted(),
                    loaded.origin("database_url"),
                    c.system_url
                )
            },
        ),
        ConfigCommand::Show => out.emit(&c.redacted(), || {
            format!(
                "# effective configuration (source: {}; secrets shown as ***)\n{}",
                loaded.source,
                c.to_redacted_yaml()
            )
        }),
    }
}
