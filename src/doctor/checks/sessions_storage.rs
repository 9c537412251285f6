//! `sessions.storage`: can the configured store keep a session? ("redirected back to login",
//! "invalid CSRF token").

use std::path::Path;

use crate::auth::sessions::{Session, SessionData, Store};
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome, judged};
use crate::doctor::context::Context;
use crate::doctor::fix::Fix;
use crate::secrets::tokens;

use super::service_account::{AccountWrites, service_accounts};

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

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        judged(async move {
            let sessions = &ctx.services().await?.sessions;
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
            let stored = sessions.probe(&probe).await.map_err(|e| e.to_string());
            let others = match &dir {
                Some(d) => service_accounts(ctx, "sessions.dir", d).await,
                None => Vec::new(),
            };
            Ok(judge(stored, dir.as_deref().map(|d| (d, Folder::at(d))), &others))
        })
    }
}

/// What is at the files store's path.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Folder {
    Present,
    Missing,
    /// Something else is there (a file): nothing `--fix` may replace.
    Blocked,
}

impl Folder {
    fn at(path: &Path) -> Self {
        match (path.is_dir(), path.exists()) {
            (true, _) => Self::Present,
            (false, false) => Self::Missing,
            (false, true) => Self::Blocked,
        }
    }
}

/// The verdict on a probe session's round trip, for the files store in `dir` (with what is
/// there) or the database store (`None`), and on whether the accounts the running processes use
/// (`others`) can write the folder: a missing folder is the one fault `--fix` mends; a folder
/// the service account cannot write is named with the account and the `chown` that mends it.
fn judge(stored: Result<(), String>, dir: Option<(&Path, Folder)>, others: &[AccountWrites]) -> Outcome {
    let refused: Vec<&AccountWrites> = others.iter().filter(|a| a.error.is_some()).collect();
    let outcome = match (&stored, refused.first(), dir) {
        (Err(e), _, _) => {
            Outcome::fail(format!("sessions cannot be stored: {e}")).with("error", e).remediation(META.next_steps)
        }
        (Ok(()), Some(account), Some((d, _))) => Outcome::fail(format!(
            "{} run(s) as {} (uid {}), which cannot write the sessions folder {}: {} ({}) — every session it \
             starts is lost, so logins loop back to the login page (the doctor's own probe, as another account, \
             passed)",
            account.processes.join(", "),
            account.run_as,
            account.uid,
            d.display(),
            account.error.as_deref().unwrap_or_default(),
            account.how
        ))
        .remediation(format!(
            "Give the folder to the account the service runs as: `chown -R {}: {}` (and keep it 0700).",
            account.run_as,
            d.display()
        )),
        (Ok(()), _, _) => Outcome::pass(if others.is_empty() {
            "a probe session was written, read back and deleted".to_string()
        } else {
            format!(
                "a probe session was written, read back and deleted; {} can write the folder too",
                others.iter().map(|a| a.run_as.as_str()).collect::<Vec<_>>().join(", ")
            )
        }),
    };
    let outcome = if others.is_empty() { outcome } else { outcome.with("service_accounts", others) };
    let outcome = outcome.with("store", if dir.is_some() { "files" } else { "database" });
    match dir {
        Some((d, folder)) => {
            let outcome = outcome.with("dir", d.display().to_string()).with("dir_exists", folder == Folder::Present);
            if stored.is_err() && folder == Folder::Missing {
                outcome.fixable(Fix::CreateSessionDir(d.to_path_buf()))
            } else {
                outcome
            }
        }
        None => outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::model::Status;

    #[test]
    fn a_missing_session_folder_fails_and_is_fixable() {
        let outcome =
            judge(Err("No such file or directory".into()), Some((Path::new("/srv/sessions"), Folder::Missing)), &[]);
        assert_eq!(outcome.status, Status::Fail);
        assert_eq!(outcome.fix, Some(Fix::CreateSessionDir("/srv/sessions".into())));
        assert_eq!(outcome.evidence["dir_exists"], false);
    }

    #[test]
    fn an_unwritable_folder_or_table_fails_with_nothing_to_create() {
        let full =
            judge(Err("No space left on device".into()), Some((Path::new("/srv/sessions"), Folder::Present)), &[]);
        assert_eq!(full.status, Status::Fail);
        assert!(full.fix.is_none());
        let file = judge(Err("Not a directory".into()), Some((Path::new("/srv/sessions"), Folder::Blocked)), &[]);
        assert_eq!((file.fix, &file.evidence["dir_exists"]), (None, &serde_json::json!(false)));
        let table = judge(Err("no such table: sessions".into()), None, &[]);
        assert_eq!((table.status, table.evidence["store"].as_str()), (Status::Fail, Some("database")));
    }

    #[test]
    fn what_is_at_the_path_is_told_apart() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("sessions");
        assert_eq!(Folder::at(&file), Folder::Missing);
        std::fs::write(&file, "").expect("written");
        assert_eq!(Folder::at(&file), Folder::Blocked);
        assert_eq!(Folder::at(dir.path()), Folder::Present);
    }

    #[test]
    fn a_round_trip_passes() {
        assert_eq!(judge(Ok(()), None, &[]).status, Status::Pass);
    }

    #[test]
    fn a_service_account_that_cannot_write_fails_although_the_doctor_could() {
        let nobody = AccountWrites {
            processes: vec!["web on node-a (pid 7)".into()],
            run_as: "www-data".into(),
            uid: 33,
            error: Some("Permission denied".into()),
            how: "tested as www-data just now".into(),
        };
        let dir = Some((Path::new("/srv/sessions"), Folder::Present));
        let outcome = judge(Ok(()), dir, std::slice::from_ref(&nobody));
        assert_eq!(outcome.status, Status::Fail);
        assert!(outcome.message.starts_with("web on node-a (pid 7) run(s) as www-data (uid 33), which cannot write"));
        assert_eq!(
            outcome.remediation.as_deref(),
            Some(
                "Give the folder to the account the service runs as: `chown -R www-data: /srv/sessions` (and keep it 0700)."
            )
        );
        let able = AccountWrites { error: None, ..nobody };
        assert_eq!(judge(Ok(()), dir, &[able]).status, Status::Pass);
    }
}
