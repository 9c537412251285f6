//! `gatehouse serve` and `gatehouse cron`.

use clap::Args;

use super::{Context, Output};
use crate::config::Loaded;
use crate::cron::Cron;
use crate::error::Result;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default: `listen:` from the configuration, 127.0.0.1:8080)
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

pub async fn serve(args: ServeArgs, loaded: Loaded) -> Result<i32> {
    crate::web::serve(loaded, args.listen).await.map(|()| 0)
}

#[derive(Debug, Args)]
#[command(after_help = "Schedule it every cron.interval (default 5m), e.g. in crontab:\n  \
*/5 * * * * cd /srv/gatehouse && gatehouse cron\n\nExit 1 if any job failed, each failure printed with its reason.")]
pub struct CronArgs {
    /// Run only this job
    #[arg(long, value_name = "NAME")]
    pub job: Option<crate::cron::Job>,
}

/// Runs the jobs; exit 1 if any failed (each failure is printed with its reason).
pub async fn cron(args: CronArgs, ctx: &Context, out: &Output) -> Result<i32> {
    let results = Cron { loaded: &ctx.loaded, services: &ctx.services }.run(args.job).await?;
    let failed = results.iter().filter(|r| !r.ok).count();
    out.emit(&results, || {
        results
            .iter()
            .map(|r| format!("{:<12} {}  {}", r.job, if r.ok { "ok    " } else { "FAILED" }, r.detail))
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    Ok(i32::from(failed > 0))
}
