//! The command line: a thin face over the services. Each command group lives in its own file.

mod admin;
mod audit;
mod banned_email;
mod client;
mod completions;
mod config_cmd;
mod doctor;
mod import;
mod init;
mod invite;
mod license;
mod licensing;
mod lockout;
pub mod output;
mod password;
mod question;
mod report;
mod serve;
mod session;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::accounts::Actor;
use crate::config::{self, Loaded};
use crate::error::Result;
use crate::services::Services;
use crate::store::Db;

pub use output::Output;

/// Account and authentication core of a hosting client area, with a diagnostic toolkit.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about, long_about = None, propagate_version = true)]
#[command(after_help = "Configuration is read from --config, $GATEHOUSE_CONFIG, ./gatehouse.yaml, or the embedded \
defaults (SQLite under ./gatehouse-data/). Any key can be overridden with GATEHOUSE_<KEY>, using __ between levels \
(GATEHOUSE_SESSIONS__STORE=files).")]
pub struct Cli {
    /// Configuration file (default: $GATEHOUSE_CONFIG, then ./gatehouse.yaml, then built-in defaults)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON instead of text (errors too: {"error":{"code","message"}} on stderr)
    #[arg(long, global = true)]
    pub json: bool,
    /// Colour: auto (a terminal, unless NO_COLOR or TERM=dumb), always, never
    #[arg(long, global = true, value_enum, default_value = "auto", value_name = "WHEN")]
    pub color: output::ColorChoice,
    /// No progress output (bars, spinners); results and errors are still printed
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process, so the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented config, create the database and the first admin (prints its API token once)
    Init(init::InitArgs),
    /// Apply pending database migrations
    Migrate,
    /// Serve the client area, the admin API and the health endpoints until SIGINT/SIGTERM
    Serve(serve::ServeArgs),
    /// Run the periodic jobs once (session GC, token purge, mail queue, license re-check, heartbeat)
    Cron(serve::CronArgs),
    /// List, end and collect sessions
    #[command(subcommand)]
    Session(session::SessionCommand),
    /// Run the diagnostic checks against this deployment and report what is wrong and how to fix it
    Doctor(doctor::DoctorArgs),
    /// Write a support bundle (doctor report, system facts, redacted config, database statistics,
    /// recent audit events), or compare two with `report diff OLD NEW`
    Report(report::ReportArgs),
    /// Validate or print the configuration
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Client accounts: add, list, show, update, close, delete
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Users (login identities) and their access to clients
    #[command(subcommand)]
    User(user::UserCommand),
    /// Invitations for users to join a client
    #[command(subcommand)]
    Invite(invite::InviteCommand),
    /// Email domains refused for new clients and users
    #[command(subcommand, name = "banned-email")]
    BannedEmail(banned_email::BannedEmailCommand),
    /// The security questions users can choose from
    #[command(subcommand, name = "security-question")]
    SecurityQuestion(question::QuestionCommand),
    /// Admin users, roles and API tokens
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Copy contact details between an associated user and client (they never sync by themselves)
    #[command(name = "match-details")]
    MatchDetails(user::MatchDetailsArgs),
    /// The license: its cached standing (`status`) or a verification now (`verify`)
    #[command(subcommand)]
    License(license::LicenseCommand),
    /// The vendor's side of licensing: signing key, issued keys, the licensing server
    #[command(subcommand)]
    Licensing(licensing::LicensingCommand),
    /// Show recent entries of the audit log
    Audit(audit::AuditArgs),
    /// Lockout counters: list them, clear them (all, or one client IP)
    #[command(subcommand)]
    Lockout(lockout::LockoutCommand),
    /// Print shell completions (bash, zsh, fish, elvish, powershell)
    Completions(completions::CompletionsArgs),
    /// Print the man page, or write one per command into a folder
    Man(completions::ManArgs),
}

/// Runs one command and returns the process exit code. Errors carry their own exit code;
/// `main` prints them — except for `doctor` in a machine format, whose reader parses stdout: a
/// run that cannot start still prints a report in that format, with the error as its one
/// result (and Nagios's UNKNOWN, exit 3, as its plugin convention wants).
pub async fn run(cli: Cli) -> Result<i32> {
    let format = match &cli.command {
        Command::Doctor(_) if cli.json => Some(crate::report::Format::Json),
        Command::Doctor(args) if args.format != crate::report::Format::Human => Some(args.format),
        _ => None,
    };
    let json = cli.json;
    match (run_command(cli).await, format) {
        (Err(e), Some(crate::report::Format::Nagios)) => {
            println!("GATEHOUSE UNKNOWN - {}", e.to_string().lines().next().unwrap_or_default());
            output::error(&e, json);
            Ok(3)
        }
        (Err(e), Some(format)) => {
            let report = crate::doctor::Report::could_not_start(&e.to_string());
            let options = crate::report::RenderOptions { fail_on: crate::report::FailOn::Fail, color: false };
            print!("{}", crate::report::render(format, &report, options));
            output::error(&e, json);
            Ok(e.exit_code())
        }
        (other, _) => other,
    }
}

async fn run_command(cli: Cli) -> Result<i32> {
    let out = Output { json: cli.json, color: cli.color, quiet: cli.quiet };
    match cli.command {
        Command::Init(args) => return init::run(args, &out).await.map(|()| 0),
        Command::Completions(args) => return completions::completions(args).map(|()| 0),
        Command::Man(args) => return completions::man(args).map(|()| 0),
        Command::Licensing(c) => return licensing::run(c, &out).await.map(|()| 0),
        _ => {}
    }
    let loaded = config::load(cli.config.as_deref(), std::env::vars())?;
    match cli.command {
        Command::Doctor(args) => doctor::run(args, loaded, &out).await,
        Command::Report(args) => report::run(args, loaded, &out).await,
        Command::Config(c) => config_cmd::run(c, &loaded, &out).map(|()| 0),
        Command::Migrate => migrate(&loaded, &out).await.map(|()| 0),
        Command::Serve(args) => serve::serve(args, loaded).await,
        Command::Cron(args) => {
            let ctx = Context::open(loaded).await?;
            let result = serve::cron(args, &ctx, &out).await;
            ctx.accounts.db().close().await;
            result
        }
        Command::License(c) => {
            let ctx = Context::open(loaded).await?;
            let result = license::run(c, &ctx, &out).await;
            ctx.accounts.db().close().await;
            result
        }
        other => {
            let ctx = Context::open(loaded).await?;
            let result = dispatch(other, &ctx, &out).await;
            ctx.accounts.db().close().await;
            result.map(|()| 0)
        }
    }
}

async fn dispatch(command: Command, ctx: &Context, out: &Output) -> Result<()> {
    match command {
        Command::Client(c) => client::run(c, ctx, out).await,
        Command::User(c) => user::run(c, ctx, out).await,
        Command::Invite(c) => invite::run(c, ctx, out).await,
        Command::BannedEmail(c) => banned_email::run(c, ctx, out).await,
        Command::SecurityQuestion(c) => question::run(c, ctx, out).await,
        Command::Admin(c) => admin::run(c, ctx, out).await,
        Command::MatchDetails(a) => {
            ctx.admin_write_allowed()?;
            user::match_details(a, ctx, out).await
        }
        Command::Audit(a) => audit::run(a, ctx, out).await,
        Command::Session(c) => session::run(c, ctx, out).await,
        Command::Lockout(c) => lockout::run(c, ctx, out).await,
        Command::Init(_)
        | Command::Config(_)
        | Command::Migrate
        | Command::Doctor(_)
        | Command::Report(_)
        | Command::Serve(_)
        | Command::License(_)
        | Command::Licensing(_)
        | Command::Completions(_)
        | Command::Man(_)
        | Command::Cron(_) => {
            unreachable!("handled in run")
        }
    }
}

async fn migrate(loaded: &Loaded, out: &Output) -> Result<()> {
    let db = Db::connect(&loaded.config.database_url, loaded.origin("database_url")).await?;
    let applied = db.migrate().await?;
    let status = db.migration_status().await?;
    db.close().await;
    out.emit(&serde_json::json!({"applied": applied, "version": status.latest}), || {
        if applied.is_empty() {
            format!("Database is up to date (version {}).", status.latest)
        } else {
            format!("Applied {} migration(s); database is at version {}.", applied.len(), status.latest)
        }
    })
}

/// What every data command needs: the configuration, the services over the deployment's
/// database, and who is acting.
pub struct Context {
    pub loaded: Loaded,
    pub services: Services,
    pub actor: Actor,
}

/// A command reaches each service by its name: `ctx.accounts`, `ctx.sessions`, `ctx.auth`.
impl std::ops::Deref for Context {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.services
    }
}

impl Context {
    async fn open(loaded: Loaded) -> Result<Self> {
        let services = Services::open(&loaded).await?;
        let who = std::env::var("USER").unwrap_or_else(|_| "operator".into());
        Ok(Self { loaded, services, actor: Actor::system(&format!("cli:{who}")) })
    }

    /// Refuses a command that changes accounts data while the license locks admin functions
    /// (`license_invalid`); reading, and operations (sessions, lockouts, doctor), stay open.
    pub fn admin_write_allowed(&self) -> Result<()> {
        self.license.require_unlocked()
    }
}

impl Context {
    /// A user given as a numeric id or an email address.
    pub async fn user_id(&self, reference: &str) -> Result<i64> {
        if let Ok(id) = reference.trim().parse::<i64>() {
            return Ok(id);
        }
        match self.accounts.user_by_email(reference).await? {
            Some(user) => Ok(user.id),
            None => Err(crate::Error::not_found("user", reference)),
        }
    }
}

/// The process: parse the command line, set up logging and the runtime, run, map errors to
/// exit codes. (Here rather than in `main.rs`, so the binary only links what the library has
/// already compiled.)
pub fn main() -> ExitCode {
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
    let default_level = if matches!(cli.command, Command::Serve(_)) { "info" } else { "warn,sqlx::query=error" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG").unwrap_or_else(|_| default_level.into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match std::env::var("GATEHOUSE_LOG_FORMAT").as_deref() {
        // One JSON object per line, for log shippers.
        Ok("json") => logs.json().flatten_event(true).with_current_span(false).init(),
        // Log lines in a file or a journal stay plain text.
        _ => logs.with_ansi(output::colour(cli.color, std::io::IsTerminal::is_terminal(&std::io::stderr()))).init(),
    }
    let json_errors = cli.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error[internal]: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(3)),
        Err(e) => {
            output::error(&e, json_errors);
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(3))
        }
    }
}
