//! `gatehouse doctor`: run the checks, print the report, exit by the contract (0 nothing at or
//! above --fail-on, 1 otherwise, 2 invalid usage or configuration, 3 internal error).

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::Output;
use super::output::table;
use crate::config::{self, ConfigSource, Duration, Loaded};
use crate::doctor::fix;
use crate::doctor::{self, Context, Doctor, Report, Selection, checks, profile};
use crate::error::{Error, Result};
use crate::report::{self, FailOn, Format, RenderOptions};

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Report format on stdout
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Also write FORMAT to PATH from the same run (repeatable), e.g. --output junit=doctor.xml
    #[arg(long = "output", value_name = "FORMAT=PATH")]
    pub outputs: Vec<String>,
    /// Run only these checks (comma-separated ids); their prerequisites run too
    #[arg(long, value_delimiter = ',', value_name = "ID,…")]
    pub only: Vec<String>,
    /// Do not run these checks (comma-separated ids)
    #[arg(long, value_delimiter = ',', value_name = "ID,…")]
    pub skip: Vec<String>,
    /// Run only checks with this tag (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Profile (checks/*.yaml): selection, thresholds, waivers and probes; linted before anything runs
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Fail only on results worse than in this saved JSON report
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Exit 1 when a result is at or above this level (error and timeout count as fail)
    #[arg(long, value_enum, default_value = "fail")]
    pub fail_on: FailOn,
    /// Per-check deadline, e.g. 2s (default: doctor.timeout)
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Apply the automatic fixes offered for the problems found, then check again. With check
    /// ids, only those; fixes that change who is trusted (proxy.trusted) run only when named
    #[arg(long, value_name = "ID", num_args = 0.., value_delimiter = ',')]
    pub fix: Option<Vec<String>>,
    /// With --fix: say exactly what each fix would change, and change nothing
    #[arg(long, requires = "fix")]
    pub dry_run: bool,
    /// List the checks with their id, title and tags, and run nothing
    #[arg(long)]
    pub list: bool,
    /// List the troubleshooting rows (symptoms) with the words people report, and run nothing
    #[arg(long)]
    pub symptoms: bool,
    /// Run the checks that explain this symptom (see --symptoms) and rank the causes found
    #[arg(long, value_name = "NAME", conflicts_with_all = ["only", "tags"])]
    pub symptom: Option<String>,
}

/// Parses `FORMAT=PATH` pairs up front, so a typo is refused before anything runs.
fn parse_outputs(raw: &[String]) -> Result<Vec<(Format, PathBuf)>> {
    raw.iter()
        .map(|o| {
            let (format, path) = o
                .split_once('=')
                .ok_or_else(|| Error::Usage(format!("--output `{o}`: expected FORMAT=PATH, e.g. junit=doctor.xml")))?;
            let format = format.parse::<Format>().map_err(|e| Error::Usage(format!("--output `{o}`: {e}")))?;
            if path.is_empty() {
                return Err(Error::Usage(format!("--output `{o}`: the path is empty")));
            }
            Ok((format, PathBuf::from(path)))
        })
        .collect()
}

/// Applies (or, dry, describes) the fixes `--fix` chose from `report`, logging to stderr so
/// stdout stays the report. Returns true when something was changed.
async fn apply_fixes(report: &Report, ctx: &Context, named: &[String], dry_run: bool) -> bool {
    let (plans, left) = doctor::run::chosen_fixes(report, named, ctx);
    for why in left {
        eprintln!("{why}");
    }
    if plans.is_empty() {
        eprintln!("--fix: nothing can be fixed automatically");
        return false;
    }
    let mut changed = false;
    for fix::Planned { check: id, fix: f, .. } in plans {
        if dry_run {
            eprintln!("would fix {id}: {}", f.describe(ctx));
            continue;
        }
        eprintln!("fixing {id}: {}", f.describe(ctx));
        match f.apply(ctx).await {
            Ok(done) => {
                changed = true;
                eprintln!("  done: {done}");
            }
            Err(e) => eprintln!("  failed: {e}"),
        }
    }
    changed
}

/// The configuration again, from where it came from, after a fix may have edited it.
fn reload(loaded: &Loaded) -> Result<Loaded> {
    Ok(match &loaded.source {
        ConfigSource::File(path) => config::load(Some(path), std::env::vars())?,
        ConfigSource::Embedded => config::load_from_str(None, ConfigSource::Embedded, std::env::vars())?,
    })
}

pub async fn run(args: DoctorArgs, loaded: Loaded, out: &Output) -> Result<i32> {
    let mut all = checks::builtin();
    let profile = args.profile.as_deref().map(|p| profile::load(p, &all)).transpose()?;
    if let Some(p) = &profile {
        all.extend(p.probes.iter().cloned());
    }
    for id in args.fix.iter().flatten() {
        if !all.iter().any(|c| c.meta().id == id) {
            return Err(Error::Usage(format!("--fix {id}: no such check (`gatehouse doctor --list` shows them)")));
        }
    }
    if args.symptoms {
        let rows = doctor::symptoms::ALL;
        out.emit(&rows, || {
            rows.iter()
                .map(|s| {
                    format!(
                        "{:<22} \"{}\"\n{:<22} cause: {}\n{:<22} checks: {}\n",
                        s.name,
                        s.reported,
                        "",
                        s.cause,
                        "",
                        s.checks.join(", ")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })?;
        return Ok(0);
    }
    let symptom = match args.symptom.as_deref() {
        None => None,
        Some(name) => Some(doctor::symptoms::find(name).ok_or_else(|| {
            let names: Vec<&str> = doctor::symptoms::ALL.iter().map(|s| s.name).collect();
            let hint = doctor::symptoms::nearest(name).map(|n| format!(" Did you mean `{n}`?")).unwrap_or_default();
            Error::Usage(format!(
                "--symptom {name:?}: no such symptom.{hint} Name one of {}, or say it in the words users report \
                 (`--symptoms` lists both)",
                names.join(", ")
            ))
        })?),
    };
    if args.list {
        let rows: Vec<_> = all.iter().map(|c| c.meta()).collect();
        out.emit(
            &rows
                .iter()
                .map(|m| json!({"id": m.id, "title": m.title, "tags": m.tags, "prerequisites": m.prerequisites}))
                .collect::<Vec<_>>(),
            || {
                table(
                    &["ID", "TITLE", "TAGS"],
                    rows.iter().map(|m| vec![m.id.into(), m.title.into(), m.tags.join(",")]).collect(),
                )
            },
        )?;
        return Ok(0);
    }
    let outputs = parse_outputs(&args.outputs)?;
    let per_check = match &args.timeout {
        Some(t) => t.parse::<Duration>().map_err(|e| Error::Usage(format!("--timeout: {e}")))?,
        None => loaded.config.doctor.timeout,
    };
    let baseline = args.baseline.as_deref().map(crate::report::diff::load).transpose()?;
    // The command line narrows what the profile selects; skips add up.
    let from_profile = profile.as_ref().map(|p| p.selection.clone()).unwrap_or_default();
    let only = match symptom {
        Some(s) => s.checks_with_causes().iter().map(|c| c.to_string()).collect(),
        None if args.only.is_empty() => from_profile.only,
        None => args.only,
    };
    let selection = Selection {
        only,
        tags: if args.tags.is_empty() { from_profile.tags } else { args.tags },
        skip: from_profile.skip.into_iter().chain(args.skip).collect(),
    };
    let selected = doctor::select(&all, &selection)?;

    let mut doctor = Doctor::new(&loaded).with_checks(selected).with_deadline(per_check.as_std());
    if let Some(p) = &profile {
        doctor = doctor.with_profile(p);
    }
    let (mut report, ctx) = doctor.examine(loaded).await;
    if let Some(named) = &args.fix
        && apply_fixes(&report, &ctx, named, args.dry_run).await
    {
        // Fixes change the deployment (and maybe the config): look again, with fresh eyes.
        ctx.close().await;
        report = doctor.report(reload(&ctx.loaded)?).await;
    } else {
        ctx.close().await;
    }

    if let Some(s) = symptom {
        report.triage = Some(doctor::symptoms::triage(s, &report));
    }
    // `--json` is the global spelling of `--format json`.
    let format = if out.json { Format::Json } else { args.format };
    let color = format == Format::Human && super::output::colour(out.color, std::io::stdout().is_terminal());
    let options = RenderOptions { fail_on: args.fail_on, color };
    print!("{}", report::render(format, &report, options));
    for (format, path) in outputs {
        let text = report::render(format, &report, RenderOptions { color: false, ..options });
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Internal(format!("cannot create {}: {e}", dir.display())))?;
        }
        std::fs::write(&path, text).map_err(|e| Error::Internal(format!("cannot write {}: {e}", path.display())))?;
    }
    match &baseline {
        Some(before) => {
            let worse = report::regressions(&report, before, args.fail_on);
            let ids: Vec<&str> = worse.iter().map(|r| r.id.as_str()).collect();
            eprintln!(
                "baseline {}: {} result(s) worse than before{}",
                args.baseline.as_deref().unwrap_or_else(|| std::path::Path::new("")).display(),
                worse.len(),
                if ids.is_empty() { String::new() } else { format!(": {}", ids.join(", ")) }
            );
            Ok(i32::from(!worse.is_empty()))
        }
        None => Ok(report::exit_code(format, &report, args.fail_on)),
    }
}
