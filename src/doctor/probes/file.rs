//! `file`: a file exists (or not), with at most the given permissions, an owner, and content.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use serde::Deserialize;

use super::unmet;
use crate::doctor::check::Outcome;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    path: String,
    #[serde(default = "yes")]
    exists: bool,
    /// The most permissive mode allowed, in octal (`"0600"`): any extra bit fails.
    #[serde(default)]
    max_mode: Option<String>,
    /// User name or numeric uid.
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    contains: Option<String>,
}

fn yes() -> bool {
    true
}

impl Spec {
    fn max_mode(&self) -> Result<Option<u32>, String> {
        self.max_mode
            .as_deref()
            .map(|m| {
                u32::from_str_radix(m.trim_start_matches("0o"), 8)
                    .map_err(|_| format!("max_mode `{m}` is not octal such as \"0600\""))
            })
            .transpose()
    }

    pub async fn run(&self) -> Outcome {
        let meta = match tokio::fs::metadata(&self.path).await {
            Ok(m) => m,
            Err(_) if !self.exists => {
                return Outcome::pass(format!("{} does not exist, as expected", self.path)).with("path", &self.path);
            }
            Err(e) => return unmet(format!("{}: {e}", self.path)).with("path", &self.path),
        };
        if !self.exists {
            return unmet(format!("{} exists but should not", self.path)).with("path", &self.path);
        }
        let mode = meta.permissions().mode() & 0o7777;
        let owner_uid = meta.uid();
        let owner_name = nix::unistd::User::from_uid(owner_uid.into()).ok().flatten().map(|u| u.name);
        let base = |o: Outcome| {
            o.with("path", &self.path)
                .with("mode", format!("{mode:04o}"))
                .with("owner_uid", owner_uid)
                .with("owner", &owner_name)
        };
        if let Ok(Some(max)) = self.max_mode()
            && mode & !max != 0
        {
            return base(unmet(format!("{} has mode {mode:04o}, more open than {max:04o}", self.path)));
        }
        if let Some(want) = &self.owner {
            let matches =
                want.parse::<u32>().map(|uid| uid == owner_uid).unwrap_or(owner_name.as_deref() == Some(want.as_str()));
            if !matches {
                return base(unmet(format!(
                    "{} is owned by {}, not {want}",
                    self.path,
                    owner_name.clone().unwrap_or(owner_uid.to_string())
                )));
            }
        }
        if let Some(needle) = &self.contains {
            match tokio::fs::read_to_string(&self.path).await {
                Ok(text) if text.contains(needle.as_str()) => {}
                Ok(_) => {
                    return base(unmet(format!("{} does not contain the expected text", self.path)));
                }
                Err(e) => return base(unmet(format!("cannot read {}: {e}", self.path))),
            }
        }
        base(Outcome::pass(format!("{} is as expected", self.path)))
    }
}

impl super::ProbeKind for Spec {
    fn name(&self) -> &'static str {
        "file"
    }

    fn validate(&self) -> Result<(), String> {
        if self.path.trim().is_empty() {
            return Err("file path is empty".into());
        }
        self.max_mode().map(|_| ())
    }

    fn probe<'a>(&'a self, _ctx: &'a crate::doctor::context::Context) -> crate::doctor::check::CheckFuture<'a> {
        Box::pin(self.run())
    }
}
