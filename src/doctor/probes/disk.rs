//! `disk`: the filesystem holding a path has enough free space.

use serde::Deserialize;

use super::unmet;
use crate::config::ByteSize;
use crate::doctor::check::Outcome;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    path: String,
    #[serde(default)]
    min_free: Option<ByteSize>,
    #[serde(default)]
    min_free_percent: Option<f64>,
}

impl Spec {
    pub async fn run(&self) -> Outcome {
        let path = self.path.clone();
        let st = match tokio::task::spawn_blocking(move || nix::sys::statvfs::statvfs(path.as_str())).await {
            Ok(Ok(st)) => st,
            Ok(Err(e)) => return unmet(format!("{}: {e}", self.path)),
            Err(e) => return Outcome::error(e.to_string()),
        };
        let block = st.fragment_size() as u64;
        let (free, total) = (st.blocks_available() as u64 * block, st.blocks() as u64 * block);
        let percent = if total == 0 { 100.0 } else { free as f64 * 100.0 / total as f64 };
        let base = |o: Outcome| o.with("path", &self.path).with("free_bytes", free).with("total_bytes", total);
        if let Some(min) = self.min_free
            && free < min.0
        {
            return base(unmet(format!("{} has {} free, below {min}", self.path, ByteSize(free))));
        }
        if let Some(min) = self.min_free_percent
            && percent < min
        {
            return base(unmet(format!("{} has {percent:.1}% free, below {min}%", self.path)));
        }
        base(Outcome::pass(format!("{} has {} ({percent:.1}%) free", self.path, ByteSize(free))))
    }
}

impl super::ProbeKind for Spec {
    fn name(&self) -> &'static str {
        "disk"
    }

    fn validate(&self) -> Result<(), String> {
        if self.path.trim().is_empty() {
            return Err("disk path is empty".into());
        }
        if self.min_free.is_none() && self.min_free_percent.is_none() {
            return Err("disk probe needs min_free or min_free_percent".into());
        }
        Ok(())
    }

    fn probe<'a>(&'a self, _ctx: &'a crate::doctor::context::Context) -> crate::doctor::check::CheckFuture<'a> {
        Box::pin(self.run())
    }
}
