//! The `gatehouse` binary: parse the command line, run, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use gatehouse::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Whatever gatehouse creates is its own user's alone: the config holds secrets, the database
    // TOTP secrets and password hashes, session files and spooled mail live tokens. Files 0600,
    // directories 0700, whatever umask the shell or service manager had.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    // One TLS implementation for every client in the process (database, HTTP, SMTP): rustls on ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A server logs its requests by default; one-shot commands only warnings, and not sqlx's
    // "slow statement" notes: on a busy machine they would come before a command's own error
    // or output on stderr (`GATEHOUSE_LOG=warn` shows them).
    let default_level = if matches!(cli.command, cli::Command::Serve(_)) { "info" } else { "warn,sqlx::query=error" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG").unwrap_or_else(|_| default_level.into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match std::env::var("GATEHOUSE_LOG_FORMAT").as_deref() {
        // One JSON object per line, for log shippers.
        Ok("json") => logs.json().flatten_event(true).with_current_span(false).init(),
        // Log lines in a file or a journal stay plain text.
        _ => {
            logs.with_ansi(cli::output::colour(cli.color, std::io::IsTerminal::is_terminal(&std::io::stderr()))).init()
        }
    }
    let json_errors = cli.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error[internal]: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(3)),
        Err(e) => {
            cli::output::error(&e, json_errors);
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(3))
        }
    }
}
