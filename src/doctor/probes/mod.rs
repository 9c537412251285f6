//! Declarative probes from a profile: each becomes a check of its own, with the id, title and
//! tags the profile gives it. One kind per probe:
//!
//! ```yaml
//! probes:
//!   - id: probe.web_port
//!     title: The web server accepts connections
//!     tcp: { address: "127.0.0.1:8080" }
//! ```

mod command;
mod disk;
mod dns;
mod file;
mod http;
mod sql;
mod tcp;
mod tls;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::check::{Check, CheckFuture, Meta, Outcome};
use super::context::Context;
use super::model::Status;
use crate::config::ConfigError;

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warn,
    #[default]
    Fail,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    id: Spanned<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    /// What a probe that does not hold reports: `fail` (default) or `warn`.
    #[serde(default)]
    severity: Severity,
    #[serde(default)]
    remediation: Option<String>,
    #[serde(default)]
    http: Option<http::Spec>,
    #[serde(default)]
    dns: Option<dns::Spec>,
    #[serde(default)]
    tcp: Option<tcp::Spec>,
    #[serde(default)]
    tls: Option<tls::Spec>,
    #[serde(default)]
    disk: Option<disk::Spec>,
    #[serde(default)]
    file: Option<file::Spec>,
    #[serde(default)]
    command: Option<command::Spec>,
    #[serde(default)]
    sql: Option<sql::Spec>,
}

impl ProbeSpec {
    pub(super) fn id(&self) -> &Spanned<String> {
        &self.id
    }
}

/// What each kind of probe provides: its name in profiles, the check of its settings, and the
/// probe itself. A new kind is a file implementing this, and one field of [`ProbeSpec`].
trait ProbeKind: Send + Sync {
    fn name(&self) -> &'static str;
    fn validate(&self) -> Result<(), String>;
    fn probe<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a>;
    /// A probe that queries the database is blocked while `database.connectivity` fails.
    fn needs_database(&self) -> bool {
        false
    }
}

struct Probe {
    meta: &'static Meta,
    kind: Box<dyn ProbeKind>,
    severity: Severity,
    remediation: Option<String>,
    location: String,
}

fn invalid(path: &str, span: &Spanned<String>, message: String) -> ConfigError {
    ConfigError::Invalid { path: path.into(), line: span.referenced.line(), column: span.referenced.column(), message }
}

/// Validates one probe and makes it a check.
pub(super) fn build(spec: ProbeSpec, path: &str) -> Result<std::sync::Arc<dyn Check>, ConfigError> {
    let id = spec.id.value.trim().to_string();
    let id_ok = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !id_ok {
        return Err(invalid(path, &spec.id, format!("probe id `{id}` may only use letters, digits, '.', '_' and '-'")));
    }
    fn boxed(kind: impl ProbeKind + 'static) -> Box<dyn ProbeKind> {
        Box::new(kind)
    }
    let mut kinds: Vec<Box<dyn ProbeKind>> = [
        spec.http.map(boxed),
        spec.dns.map(boxed),
        spec.tcp.map(boxed),
        spec.tls.map(boxed),
        spec.disk.map(boxed),
        spec.file.map(boxed),
        spec.command.map(boxed),
        spec.sql.map(boxed),
    ]
    .into_iter()
    .flatten()
    .collect();
    let kind = match kinds.len() {
        1 => kinds.pop().expect("one kind"),
        0 => {
            return Err(invalid(
                path,
                &spec.id,
                format!("probe `{id}` needs one kind: http, dns, tcp, tls, disk, file, command or sql"),
            ));
        }
        _ => {
            let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
            return Err(invalid(
                path,
                &spec.id,
                format!("probe `{id}` has several kinds ({}); give it one", names.join(", ")),
            ));
        }
    };
    kind.validate().map_err(|message| invalid(path, &spec.id, format!("probe `{id}`: {message}")))?;

    let location = format!("{path}:{}:{}", spec.id.referenced.line(), spec.id.referenced.column());
    let mut tags: Vec<&'static str> = vec!["probe", kind.name()];
    tags.extend(spec.tags.into_iter().map(|t| &*Box::leak(t.into_boxed_str())));
    // A profile is loaded once per process, so its metadata lives for the whole run.
    let meta: &'static Meta = Box::leak(Box::new(Meta {
        id: Box::leak(id.clone().into_boxed_str()),
        title: Box::leak(spec.title.unwrap_or_else(|| format!("{} probe {id}", kind.name())).into_boxed_str()),
        tags: Box::leak(tags.into_boxed_slice()),
        symptom: "Whatever the profile's author wrote this probe to catch.",
        cause: "The condition the probe asserts does not hold.",
        next_steps: "See the probe's definition in the profile.",
        prerequisites: if kind.needs_database() { &["database.connectivity"] } else { &[] },
        ..Meta::BASE
    }));
    Ok(std::sync::Arc::new(Probe { meta, kind, severity: spec.severity, remediation: spec.remediation, location }))
}

impl Check for Probe {
    fn meta(&self) -> &'static Meta {
        self.meta
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        Box::pin(async move {
            let mut outcome = self.kind.probe(ctx).await;
            if outcome.status == Status::Fail && self.severity == Severity::Warn {
                outcome.status = Status::Warn;
            }
            if outcome.status.severity() > 0 && outcome.remediation.is_none() {
                outcome.remediation = Some(
                    self.remediation.clone().unwrap_or_else(|| format!("See the probe defined at {}.", self.location)),
                );
            }
            outcome.with("defined_at", &self.location)
        })
    }
}

/// Shared by the probe kinds: a failed expectation.
fn unmet(message: impl Into<String>) -> Outcome {
    Outcome::fail(message)
}
