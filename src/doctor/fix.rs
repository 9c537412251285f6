//! Automatic fixes for `gatehouse doctor --fix`. Only changes that are safe to make unattended
//! are offered; each says exactly what it will change (a diff for configuration edits), and
//! anything rewritten is backed up first.

use std::path::{Path, PathBuf};

use super::context::Context;
use crate::store::Db;

/// A fix ready to describe or apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// Create the database if needed and apply the pending migrations.
    Migrate,
    /// Delete the expired sessions now, in batches.
    CollectSessions,
    /// Put failed outgoing messages back in the queue.
    RequeueMail,
    /// Create the missing session directory (mode 0700).
    CreateSessionDir(PathBuf),
    /// Make these files 0600 and folders 0700.
    RestrictPermissions(Vec<PathBuf>),
    /// Set settings of the deployment's configuration file in place — `(dotted key, YAML
    /// literal)` — with one backup and one diff, keeping the rest of the file as it was.
    SetConfig(Vec<(String, String)>),
    /// Several fixes, applied in order (a setting turned back on, and its backlog cleared).
    All(Vec<Fix>),
}

/// A fix planned for a check's finding, with whether that check's fix must be named (it changes
/// who is trusted or where the site lives).
pub struct Planned<'a> {
    pub check: &'a str,
    pub explicit: bool,
    pub fix: &'a Fix,
}

/// The plans that can be applied together, and why the others are not. Two fixes that set one
/// setting to different values would leave whichever ran last (a site moved out of a sub-path
/// gets both "add the trailing slash" and "move to /"): the one whose check had to be named
/// wins, since the operator asked for it by name; with no such winner neither is applied.
pub fn settle(plans: Vec<Planned<'_>>) -> (Vec<Planned<'_>>, Vec<String>) {
    // The first setting both write, to different values.
    let clash = |a: &Planned, b: &Planned| -> Option<String> {
        let theirs = b.fix.settings();
        a.fix
            .settings()
            .into_iter()
            .find(|(key, value)| theirs.iter().any(|(k, v)| k == key && v != value))
            .map(|(k, _)| k.clone())
    };
    let mut dropped = Vec::new();
    let mut refused = vec![false; plans.len()];
    for i in 0..plans.len() {
        for j in i + 1..plans.len() {
            let Some(key) = clash(&plans[i], &plans[j]) else { continue };
            let (a, b) = (&plans[i], &plans[j]);
            // This pair's decision: the named one wins, else neither.
            let winner = match (a.explicit, b.explicit) {
                (true, false) => Some((j, a, b)),
                (false, true) => Some((i, b, a)),
                _ => None,
            };
            dropped.push(match winner {
                Some((loser, won, lost)) => {
                    refused[loser] = true;
                    format!(
                        "not fixing {}: its fix sets {key} too, to another value than {}'s, which was named and is applied",
                        lost.check, won.check
                    )
                }
                None => {
                    (refused[i], refused[j]) = (true, true);
                    format!(
                        "not fixing {} or {}: both set {key}, to different values; name the one you want with --fix",
                        a.check, b.check
                    )
                }
            });
        }
    }
    let kept = plans.into_iter().zip(refused).filter(|(_, r)| !r).map(|(p, _)| p).collect();
    (kept, dropped)
}

impl Fix {
    /// The configuration settings it writes, `(dotted key, YAML literal)`, its parts' included.
    fn settings(&self) -> Vec<&(String, String)> {
        match self {
            Fix::SetConfig(settings) => settings.iter().collect(),
            Fix::All(fixes) => fixes.iter().flat_map(Fix::settings).collect(),
            _ => Vec::new(),
        }
    }

    /// Sets the dotted `key` to `value` (written as a YAML literal) in the configuration file.
    pub fn set(key: &str, value: impl serde::Serialize) -> Fix {
        let literal = serde_json::to_string(&value).expect("a setting serialises");
        Fix::SetConfig(vec![(key.into(), literal)])
    }

    /// Why the fix cannot be applied to this deployment, when it cannot: a configuration edit
    /// needs a file to edit, and does not count where the environment overrides the section.
    pub fn blocked_here(&self, ctx: &Context) -> Option<String> {
        let settings = self.settings();
        if settings.is_empty() {
            return None;
        }
        if config_file(ctx).is_none() {
            return Some("the configuration is the embedded default: there is no file to edit".into());
        }
        settings.iter().find_map(|(key, _)| {
            let top = key.split('.').next().unwrap_or_default();
            match ctx.loaded.origin(top) {
                crate::config::Origin::Env(var) => {
                    Some(format!("{top} is set by the environment ({var}): an edit of the file would not count"))
                }
                _ => None,
            }
        })
    }

    /// What the fix changes, in one line.
    pub fn summary(&self, ctx: &Context) -> String {
        match self {
            Fix::Migrate => format!(
                "create the database {} if it does not exist and apply the pending migrations",
                ctx.config().database_url.redacted()
            ),
            Fix::CollectSessions => "delete the expired sessions now, 1,000 per statement".into(),
            Fix::CreateSessionDir(dir) => format!("create the session directory {} with mode 0700", dir.display()),
            Fix::RequeueMail => "put the failed messages back in the outbox for the next `gatehouse cron`".into(),
            Fix::RestrictPermissions(paths) => format!(
                "chmod 0600 (files) / 0700 (folders): {}",
                paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
            Fix::SetConfig(settings) => {
                let what = settings.iter().map(|(k, v)| format!("{k} to {v}")).collect::<Vec<_>>().join(", ");
                match config_file(ctx) {
                    Some(file) => format!("set {what} in {}", file.display()),
                    None => format!("set {what} in the configuration file"),
                }
            }
            Fix::All(fixes) => fixes.iter().map(|f| f.summary(ctx)).collect::<Vec<_>>().join("; then "),
        }
    }

    /// What the fix changes, in full: for a configuration edit, the diff.
    pub fn describe(&self, ctx: &Context) -> String {
        match self {
            Fix::SetConfig(settings) => {
                let summary = self.summary(ctx);
                let Some(file) = config_file(ctx) else { return summary };
                match std::fs::read_to_string(file).map_err(|e| e.to_string()).and_then(|old| {
                    let new = edited(file, &old, settings)?;
                    Ok(diff(file, &old, &new))
                }) {
                    Ok(diff) => format!("{summary} (a backup is kept)\n{diff}"),
                    Err(e) => format!("cannot plan to {summary}: {e}"),
                }
            }
            Fix::All(fixes) => fixes.iter().map(|f| f.describe(ctx)).collect::<Vec<_>>().join("; then "),
            other => other.summary(ctx),
        }
    }

    /// Applies the fix and says what was done.
    pub async fn apply(&self, ctx: &Context) -> Result<String, String> {
        match self {
            Fix::Migrate => {
                let config = ctx.config();
                let db = Db::connect(&config.database_url, ctx.loaded.origin("database_url"))
                    .await
                    .map_err(|e| e.to_string())?;
                let applied = db.migrate().await.map_err(|e| e.to_string());
                db.close().await;
                Ok(format!("applied migrations {:?}", applied?))
            }
            Fix::CollectSessions => {
                let services = ctx.services().await.map_err(|o| o.message())?;
                let removed = services.sessions.collect_all(crate::cron::GC_BATCH).await.map_err(|e| e.to_string())?;
                Ok(format!("removed {removed} expired session(s)"))
            }
            Fix::CreateSessionDir(dir) => {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                Ok(format!("created {}", dir.display()))
            }
            Fix::RequeueMail => {
                let accounts = ctx.accounts().await.map_err(|o| o.message())?;
                let n = crate::mail::requeue_failed(accounts.db()).await.map_err(|e| e.to_string())?;
                Ok(format!("requeued {n} message(s)"))
            }
            Fix::RestrictPermissions(paths) => {
                use std::os::unix::fs::PermissionsExt;
                for path in paths {
                    let dir = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?.is_dir();
                    let mode = if dir { 0o700 } else { 0o600 };
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                        .map_err(|e| format!("cannot chmod {}: {e}", path.display()))?;
                }
                Ok(format!("made {} path(s) private to their owner", paths.len()))
            }
            Fix::SetConfig(settings) => {
                if let Some(why) = self.blocked_here(ctx) {
                    return Err(why);
                }
                let file = config_file(ctx).ok_or("there is no configuration file to edit")?;
                let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                let rewritten = edited(file, &text, settings)?;
                let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
                let backup = PathBuf::from(format!("{}.bak-{stamp}", file.display()));
                std::fs::copy(file, &backup).map_err(|e| format!("cannot back up {}: {e}", file.display()))?;
                // Write beside the file and rename, so a crash never leaves half a config.
                let tmp = PathBuf::from(format!("{}.tmp-{stamp}", file.display()));
                std::fs::write(&tmp, rewritten).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
                std::fs::rename(&tmp, file).map_err(|e| format!("cannot replace {}: {e}", file.display()))?;
                let what = settings.iter().map(|(k, v)| format!("{k} to {v}")).collect::<Vec<_>>().join(", ");
                Ok(format!("set {what} in {}; the previous file is {}", file.display(), backup.display()))
            }
            Fix::All(fixes) => {
                let mut done = Vec::new();
                for fix in fixes {
                    done.push(Box::pin(fix.apply(ctx)).await?);
                }
                Ok(done.join("; "))
            }
        }
    }
}

/// The deployment's configuration file, when it has one.
fn config_file(ctx: &Context) -> Option<&Path> {
    match &ctx.loaded.source {
        crate::config::ConfigSource::File(file) => Some(file),
        crate::config::ConfigSource::Embedded => None,
    }
}

/// `text` with `settings` made, refused unless the result is still a valid configuration.
fn edited(file: &Path, text: &str, settings: &[(String, String)]) -> Result<String, String> {
    let mut new = text.to_string();
    for (key, value) in settings {
        let path: Vec<&str> = key.split('.').collect();
        new = crate::config::edit::set(&new, &path, value)?;
    }
    let source = crate::config::ConfigSource::File(file.to_path_buf());
    crate::config::load_from_str(Some(&new), source, Vec::new())
        .map_err(|e| format!("the edited configuration would not load ({e}); nothing was changed"))?;
    Ok(new)
}

/// The changed lines of an edit, as `diff -u` would mark them (one hunk: edits are local).
fn diff(file: &Path, old: &str, new: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..].iter().rev().zip(b[prefix..].iter().rev()).take_while(|(x, y)| x == y).count();
    let mut out = format!("--- {}:{}\n", file.display(), prefix + 1);
    for line in &a[prefix..a.len() - suffix] {
        out += &format!("-{line}\n");
    }
    for line in &b[prefix..b.len() - suffix] {
        out += &format!("+{line}\n");
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_fixes_for_one_setting_settle_on_the_named_one_or_none() {
        let fixes = ["\"https://x/clients/\"", "\"https://x/\"", "1", "2", "3"]
            .map(|v| Fix::SetConfig(vec![("system_url".into(), v.into())]));
        let set = |value: &str| fixes.iter().find(|f| f.settings()[0].1 == value).expect("one of the values");
        let plan = |check, explicit, value: &str| Planned { check, explicit, fix: set(value) };
        let (kept, dropped) = settle(vec![
            plan("system_url.config", false, "\"https://x/clients/\""),
            plan("system_url.requests", true, "\"https://x/\""),
        ]);
        assert_eq!(kept.iter().map(|p| p.check).collect::<Vec<_>>(), ["system_url.requests"]);
        assert!(dropped[0].starts_with("not fixing system_url.config: its fix sets system_url too"), "{dropped:?}");
        let (kept, dropped) = settle(vec![plan("a", false, "1"), plan("b", false, "2")]);
        assert!(kept.is_empty() && dropped[0].contains("name the one you want"), "{dropped:?}");
        let (kept, dropped) = settle(vec![
            plan("a", false, "1"),
            plan("b", true, "1"),
            Planned { check: "c", explicit: false, fix: &Fix::CollectSessions },
        ]);
        assert_eq!((kept.len(), dropped.len()), (3, 0), "the same value, and other fixes, do not clash");
        // Each pair is told by its own decision, whatever an earlier pair decided.
        let (kept, dropped) = settle(vec![plan("a", true, "1"), plan("b", true, "2"), plan("c", false, "3")]);
        assert!(kept.is_empty());
        assert!(dropped[0].starts_with("not fixing a or b: both set system_url"), "{dropped:?}");
        assert!(dropped[1].starts_with("not fixing c: its fix sets system_url too"), "{dropped:?}");
    }

    /// A configuration edit is offered only where it would count: there is a file, and the
    /// environment does not override the section it writes (the file would change, the
    /// deployment would not). Other fixes need no file.
    #[test]
    fn a_setting_is_applicable_only_where_the_file_decides_it() {
        let file = crate::config::ConfigSource::File("/etc/gatehouse/gatehouse.yaml".into());
        let loaded = |source, env: &[(&str, &str)]| {
            let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
            Context::new(crate::config::load_from_str(Some("system_url: https://x/\n"), source, env).unwrap())
        };
        let slash = Fix::set("system_url", "https://x/clients/");
        let in_file = loaded(file.clone(), &[]);
        assert_eq!(slash.blocked_here(&in_file), None);
        assert_eq!(
            slash.summary(&in_file),
            "set system_url to \"https://x/clients/\" in /etc/gatehouse/gatehouse.yaml"
        );
        let by_env = loaded(file, &[("GATEHOUSE_SYSTEM_URL", "https://y/")]);
        let why = slash.blocked_here(&by_env).expect("the environment decides system_url");
        assert!(why.contains("GATEHOUSE_SYSTEM_URL"), "{why}");
        assert_eq!(Fix::set("sessions.gc", true).blocked_here(&by_env), None, "another section is the file's");
        let embedded = loaded(crate::config::ConfigSource::Embedded, &[]);
        assert!(
            Fix::All(vec![slash.clone(), Fix::CollectSessions])
                .blocked_here(&embedded)
                .unwrap()
                .contains("no file to edit")
        );
        assert_eq!(Fix::CollectSessions.blocked_here(&embedded), None);
    }
}
