//! Support bundles (`gatehouse report`): everything a support engineer needs to see a
//! deployment, in one folder or `.tar.gz`, secrets redacted by default, with a manifest that
//! hashes every file and says what was skipped and what was redacted.

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::redact::Redactor;
use super::{FailOn, Format, RenderOptions, render};
use crate::config::{Backend, Loaded};
use crate::doctor::Report;
use crate::doctor::context::{Context, DbUnavailable};
use crate::error::{Error, Result};
use crate::store::Db;

/// How many audit entries a bundle carries.
const AUDIT_ENTRIES: i64 = 200;
/// The tables whose row counts a bundle reports.
const TABLES: &[&str] = &[
    "clients",
    "users",
    "memberships",
    "invites",
    "banned_email_domains",
    "security_questions",
    "admins",
    "roles",
    "api_tokens",
    "audit_log",
];

pub struct BundleOptions {
    pub out_dir: PathBuf,
    pub archive: bool,
    pub redact: bool,
    /// Build everything and say what it would be, writing nothing.
    pub preview: bool,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
}

#[derive(Debug, Serialize)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Serialize)]
pub struct Skipped {
    pub item: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct Manifest {
    pub schema: &'static str,
    pub tool: Value,
    pub created_at: String,
    pub redacted: bool,
    pub redactions: std::collections::BTreeMap<&'static str, usize>,
    pub files: Vec<FileEntry>,
    pub skipped: Vec<Skipped>,
}

/// What was written, for the command to print.
pub struct Written {
    pub path: PathBuf,
    pub manifest: Manifest,
}

struct Builder {
    /// None in a preview: files are built and measured, not written.
    dir: Option<PathBuf>,
    redactor: Option<Redactor>,
    files: Vec<FileEntry>,
    skipped: Vec<Skipped>,
    progress: ProgressBar,
}

impl Builder {
    fn add(&mut self, name: &str, text: &str) -> Result<()> {
        self.progress.set_message(name.to_string());
        let text = match &mut self.redactor {
            Some(r) => r.redact(text),
            None => text.to_string(),
        };
        if let Some(dir) = &self.dir {
            let path = dir.join(name);
            std::fs::write(&path, &text)
                .map_err(|e| Error::Internal(format!("cannot write {}: {e}", path.display())))?;
        }
        self.files.push(FileEntry {
            name: name.into(),
            bytes: text.len() as u64,
            sha256: hex::encode(Sha256::digest(&text)),
        });
        self.progress.inc(1);
        Ok(())
    }

    fn add_json(&mut self, name: &str, value: &impl Serialize) -> Result<()> {
        let text = serde_json::to_string_pretty(value).map_err(|e| Error::Internal(e.to_string()))?;
        self.add(name, &(text + "\n"))
    }

    fn skip(&mut self, item: &str, reason: impl Into<String>) {
        self.skipped.push(Skipped { item: item.into(), reason: reason.into() });
        self.progress.inc(1);
    }
}

/// A file-name-safe stamp: the host and the time.
fn bundle_name(report: &Report) -> String {
    let host: String =
        report.host.hostname.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    format!(
        "gatehouse-report-{}-{}",
        if host.is_empty() { "host".into() } else { host },
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    )
}

pub async fn write(loaded: &Loaded, ctx: &Context, report: &Report, options: &BundleOptions) -> Result<Written> {
    let dir = match options.preview {
        true => options.out_dir.join(bundle_name(report)),
        false => fresh_dir(&options.out_dir, &bundle_name(report))?,
    };
    let progress = match options.progress && !options.preview {
        true => ProgressBar::new(11).with_style(
            ProgressStyle::with_template("{spinner} {bar:30} {pos}/{len} {msg}").expect("a valid template"),
        ),
        false => ProgressBar::hidden(),
    };
    let mut b = Builder {
        dir: (!options.preview).then(|| dir.clone()),
        redactor: options.redact.then(|| Redactor::new(&loaded.config)),
        files: Vec::new(),
        skipped: Vec::new(),
        progress,
    };
    let plain = RenderOptions { fail_on: FailOn::Fail, color: false };
    b.add("report.json", &render(Format::Json, report, plain))?;
    b.add("report.html", &render(Format::Html, report, plain))?;
    b.add("report.md", &render(Format::Markdown, report, plain))?;
    b.add_json("system.json", &crate::system::info())?;
    let config =
        if options.redact { loaded.config.to_redacted_yaml() } else { loaded.config.clone().to_unredacted_yaml() };
    b.add("config.yaml", &format!("# effective configuration from {}\n{config}", loaded.source))?;
    match recent_log(&loaded.config.report) {
        Ok((from, lines)) => b.add("service.log", &format!("# the last lines of {from}\n{lines}"))?,
        Err(why) => b.skip("service.log", why),
    }

    match ctx.db().await {
        Ok(db) => {
            b.add_json("database.json", &database_stats(db, loaded).await)?;
            let accounts = crate::services::Services::over(db.clone(), loaded).accounts;
            match accounts.audit_log(None, AUDIT_ENTRIES).await {
                Ok(entries) => b.add_json("audit.json", &entries)?,
                Err(e) => b.skip("audit.json", format!("cannot read the audit log: {e}")),
            }
            // Which processes run where, with which zone and configuration: web vs cron drift.
            match crate::cron::heartbeat::all(db).await {
                Ok(beats) if beats.is_empty() => b.skip("heartbeats.json", "no process has written a heartbeat yet"),
                Ok(beats) => b.add_json("heartbeats.json", &beats)?,
                Err(e) => b.skip("heartbeats.json", format!("cannot read heartbeats: {e}")),
            }
        }
        Err(DbUnavailable::NotCreated(f)) => {
            b.skip("database.json", format!("the database {f} has not been created yet"));
            b.skip("audit.json", "no database");
            b.skip("heartbeats.json", "no database");
        }
        Err(DbUnavailable::Unreachable(e)) => {
            b.skip("database.json", format!("the database is unreachable: {e}"));
            b.skip("audit.json", "no database");
            b.skip("heartbeats.json", "no database");
        }
    }

    let manifest = Manifest {
        schema: "gatehouse.bundle/v1",
        tool: json!({"name": "gatehouse", "version": env!("CARGO_PKG_VERSION")}),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        redacted: options.redact,
        redactions: b.redactor.as_ref().map(|r| r.counts.clone()).unwrap_or_default(),
        files: std::mem::take(&mut b.files),
        skipped: std::mem::take(&mut b.skipped),
    };
    if options.preview {
        return Ok(Written { path: dir, manifest });
    }
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))? + "\n";
    std::fs::write(dir.join("manifest.json"), &text)
        .map_err(|e| Error::Internal(format!("cannot write the manifest: {e}")))?;
    // The same hashes in the form `sha256sum -c SHA256SUMS` checks, the manifest included.
    let mut sums: String =
        manifest.files.iter().map(|f| format!("{}  {}\n", f.sha256, f.name)).collect::<Vec<_>>().concat();
    sums.push_str(&format!("{}  manifest.json\n", hex::encode(Sha256::digest(text.as_bytes()))));
    std::fs::write(dir.join("SHA256SUMS"), sums)
        .map_err(|e| Error::Internal(format!("cannot write SHA256SUMS: {e}")))?;
    b.progress.finish_and_clear();

    if !options.archive {
        return Ok(Written { path: dir, manifest });
    }
    let archive = dir.with_extension("tar.gz");
    archive_dir(&dir, &archive)?;
    std::fs::remove_dir_all(&dir).map_err(|e| Error::Internal(format!("cannot remove {}: {e}", dir.display())))?;
    Ok(Written { path: archive, manifest })
}

/// The service's most recent log lines: from `report.log_file`, else the journal of
/// `report.journal_unit`; why not, when neither can be read.
fn recent_log(cfg: &crate::config::ReportConfig) -> std::result::Result<(String, String), String> {
    let keep = |text: &str| {
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(cfg.log_lines)..].join("\n") + "\n"
    };
    if !cfg.log_file.is_empty() {
        use std::io::{Read, Seek, SeekFrom};
        let mut file =
            std::fs::File::open(&cfg.log_file).map_err(|e| format!("report.log_file {}: {e}", cfg.log_file))?;
        // The tail is enough: at most 4 MiB from the end, whatever the file's size.
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        file.seek(SeekFrom::Start(len.saturating_sub(4 << 20))).map_err(|e| e.to_string())?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| format!("report.log_file {}: {e}", cfg.log_file))?;
        return Ok((cfg.log_file.clone(), keep(&String::from_utf8_lossy(&bytes))));
    }
    let out = std::process::Command::new("journalctl")
        .args([
            "--unit",
            &cfg.journal_unit,
            "--lines",
            &cfg.log_lines.to_string(),
            "--no-pager",
            "--output",
            "short-iso",
        ])
        .output()
        .map_err(|e| format!("report.log_file is not set and the journal cannot be read (journalctl: {e})"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.trim().is_empty() || text.trim() == "-- No entries --" {
        return Err(format!(
            "report.log_file is not set and the journal has no lines of unit {} ({})",
            cfg.journal_unit,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok((format!("the journal of unit {}", cfg.journal_unit), keep(&text)))
}

/// Creates `out/name` (or `name-2`, `name-3`, … when taken: two bundles in one second must
/// not overwrite each other, nor an archive's folder).
fn fresh_dir(out: &Path, name: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(out).map_err(|e| Error::Usage(format!("cannot create {}: {e}", out.display())))?;
    for n in 1.. {
        let candidate = if n == 1 { out.join(name) } else { out.join(format!("{name}-{n}")) };
        let taken = candidate.with_extension("tar.gz").exists();
        match std::fs::create_dir(&candidate) {
            Ok(()) if !taken => return Ok(candidate),
            Ok(()) => {
                let _ = std::fs::remove_dir(&candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::Usage(format!("cannot create {}: {e}", candidate.display()))),
        }
    }
    unreachable!("some suffix is free")
}

fn archive_dir(dir: &Path, archive: &Path) -> Result<()> {
    let io = |e: std::io::Error| Error::Internal(format!("cannot write {}: {e}", archive.display()));
    let file = std::fs::File::create(archive).map_err(io)?;
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::default()));
    let name = dir.file_name().expect("bundle directories have a name");
    tar.append_dir_all(name, dir).map_err(io)?;
    tar.into_inner().map_err(io)?.finish().map_err(io)?;
    Ok(())
}

async fn database_stats(db: &Db, loaded: &Loaded) -> Value {
    let mut counts = serde_json::Map::new();
    for table in TABLES {
        let sql = crate::store::composed(format!("SELECT COUNT(*) FROM {table}"));
        let value = match sqlx::query_scalar::<_, i64>(sql).fetch_one(db.pool()).await {
            Ok(n) => json!(n),
            Err(e) => json!(format!("unavailable: {}", e.to_string().lines().next().unwrap_or_default())),
        };
        counts.insert(table.to_string(), value);
    }
    let size_bytes: Option<i64> = match db.backend() {
        Backend::Sqlite => loaded.config.database_url.sqlite_path().map(|p| {
            ["", "-wal", "-shm"]
                .iter()
                .filter_map(|s| std::fs::metadata(format!("{p}{s}")).ok())
                .map(|m| m.len() as i64)
                .sum()
        }),
        Backend::Postgres => {
            sqlx::query_scalar("SELECT pg_database_size(current_database())").fetch_one(db.pool()).await.ok()
        }
    };
    let migrations = db.migration_status().await.ok();
    json!({
        "backend": db.backend(),
        // The redaction pass masks the password unless --no-redact was asked for.
        "url": loaded.config.database_url.as_str(),
        "size_bytes": size_bytes,
        "row_counts": counts,
        "migrations": migrations,
    })
}
