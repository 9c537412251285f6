//! `sessions.storage`: can the configured store keep a session? ("redirected back to login",
//! "invalid CSRF token").

use std::path::Path;

use crate::auth::sessions::{Session, SessionData, Sessions, Store};
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome, judged};
use crate::doctor::context::Context;
use crate::doctor::fix::Fix;
use crate::doctor::model::CheckResult;
use crate::secrets::tokens;

pub struct Storage;

static META: Meta = Meta {
    id: "sessions.storage",
    title: "Sessions can be stored",
    tags: &["sessions"],
    symptom: "Logging in redirects back to the login page; forms fail with \"invalid CSRF token\".",
    cause: "Sessions are not persisted: the session directory is missing or not writable, the disk is full, or \
            the session table cannot be written.",
    next_steps: "Create `sessions.dir` owned by the user gatehouse runs as (mode 0700) and make sure its disk has \
                 free space; for the database store, check database.connectivity.",
    prerequisites: &["database.connectivity"],
    config: &["sessions"],
    ..Meta::BASE
};

impl Check for Storage {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn fix(&self, ctx: &Context, _found: &CheckResult) -> Option<Fix> {
        let dir = std::path::PathBuf::from(&ctx.config().sessions.dir);
        (!dir.exists()).then_some(Fix::CreateSessionDir(dir))
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        judged(async move {
            let accounts = ctx.accounts().await?;
            let sessions = Sessions::from_config(ctx.config(), accounts.db());
            let dir = match sessions.store() {
                Store::Files(dir) => Some(dir.clone()),
                Store::Database(_) => None,
            };
            let probe = Session {
                key: format!("doctor-{}", tokens::random().hash),
                created_at: ctx.now(),
                last_seen_at: ctx.now(),
                data: SessionData::default(),
            };
            let base = |o: Outcome| {
                let o = o.with("store", if dir.is_some() { "files" } else { "database" });
                match &dir {
                    Some(d) => o.with("dir", d.display().to_string()).with("dir_exists", d.is_dir()),
                    None => o,
                }
            };
            Ok(match sessions.probe(&probe).await {
                Ok(()) => base(Outcome::pass("a probe session was written, read back and deleted")),
                Err(e) => {
                    let failed = base(Outcome::fail(format!("sessions cannot be stored: {e}")))
                        .with("error", e.to_string())
                        .remediation(META.next_steps);
                    match &dir {
                        Some(d) if !Path::new(d).exists() => {
                            failed.fixable(format!("create {} with mode 0700", d.display()))
                        }
                        _ => failed,
                    }
                }
            })
        })
    }
}
