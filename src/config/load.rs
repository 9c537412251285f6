//! Finding, parsing and overriding the configuration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde_json::Value;
use serde_saphyr::Spanned;

use super::{Config, Secret};

/// Environment variables with the `GATEHOUSE_` prefix that are not configuration keys.
const RESERVED_ENV: &[&str] = &["GATEHOUSE_CONFIG", "GATEHOUSE_LOG", "GATEHOUSE_LOG_FORMAT", "GATEHOUSE_PASSWORD"];
const RESERVED_ENV_PREFIXES: &[&str] = &["GATEHOUSE_TEST_"];

/// A configuration that could not be used. Every variant renders as one line that says where
/// the problem is and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid { path: String, line: u64, column: u64, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    File(PathBuf),
    Embedded,
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::File(p) => write!(f, "{}", p.display()),
            ConfigSource::Embedded => f.write_str("embedded defaults"),
        }
    }
}

/// Where a configuration value was set; shown as `FILE:LINE:COL`, `environment variable NAME`
/// or `embedded default`, to point an operator at the line to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File { path: PathBuf, line: usize, column: usize },
    Env(String),
    Default,
}

impl serde::Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File { path, line, column } => write!(f, "{}:{line}:{column}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Default => f.write_str("embedded default"),
        }
    }
}

/// The effective configuration and where each top-level value came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub source: ConfigSource,
    origins: BTreeMap<String, Origin>,
    /// The `GATEHOUSE_*` variables it was loaded with, so [`Loaded::reread`] applies the same.
    env: Vec<(String, String)>,
}

impl Loaded {
    /// The configuration as its file says now, with the same environment: what a running
    /// server compares against after an edit (the admin area's fixes), and what a restart reads.
    pub fn reread(&self) -> Result<Loaded, ConfigError> {
        match &self.source {
            ConfigSource::File(path) => load(Some(path), self.env.clone()),
            ConfigSource::Embedded => Ok(self.clone()),
        }
    }

    /// Where a top-level key's value was set.
    pub fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }

    /// The directory the deployment lives in: the configuration file's, else the working
    /// directory; canonical, so two processes in one place name it alike.
    pub fn install_dir(&self) -> String {
        match &self.source {
            ConfigSource::File(p) => p.parent().map(Path::to_path_buf),
            ConfigSource::Embedded => None,
        }
        .filter(|d| !d.as_os_str().is_empty())
        .or_else(|| std::env::current_dir().ok())
        .and_then(|d| std::fs::canonicalize(&d).ok().or(Some(d)))
        .map(|d| d.display().to_string())
        .unwrap_or_default()
    }

    /// The first 16 hex digits of the SHA-256 of the redacted effective configuration: equal
    /// fingerprints mean two processes run with the same settings (secrets never leave them).
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(self.config.to_redacted_yaml().as_bytes()))[..16].to_string()
    }
}

/// Resolves and loads the configuration as the contract says, applying environment overrides
/// from `env` (normally `std::env::vars()`).
pub fn load(explicit: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Loaded, ConfigError> {
    let env: Vec<(String, String)> = env.into_iter().collect();
    let from_env = env.iter().find(|(k, _)| k == "GATEHOUSE_CONFIG").map(|(_, v)| PathBuf::from(v));
    let path = explicit.map(Path::to_path_buf).or(from_env).or_else(|| {
        let local = PathBuf::from("gatehouse.yaml");
        local.is_file().then_some(local)
    });
    let (text, source) = match path {
        Some(path) => {
            let bytes = std::fs::read(&path).map_err(|e| ConfigError::Read {
                path: path.display().to_string(),
                message: format!("cannot read configuration file: {e}"),
            })?;
            let text = String::from_utf8(bytes).map_err(|e| not_utf8(&path, e.as_bytes(), e.utf8_error()))?;
            (Some(text), ConfigSource::File(path))
        }
        None => (None, ConfigSource::Embedded),
    };
    load_from_str(text.as_deref(), source, env)
}

/// Parses `text` (or the embedded defaults when `None`) and applies environment overrides.
pub fn load_from_str(
    text: Option<&str>,
    source: ConfigSource,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigError> {
    let name = source.to_string();
    let mut origins = BTreeMap::new();
    let mut config = match text {
        Some(text) if !is_blank_yaml(text) => {
            let config: Config = serde_saphyr::from_str(text).map_err(|e| yaml_error(&name, &e))?;
            // A second, lenient pass records where each top-level key was written.
            if let Ok(spans) = serde_saphyr::from_str::<BTreeMap<String, Spanned<IgnoredAny>>>(text) {
                for (key, span) in spans {
                    let at = span.referenced;
                    let path = PathBuf::from(&name);
                    origins.insert(key, Origin::File { path, line: at.line() as usize, column: at.column() as usize });
                }
            }
            config
        }
        _ => Config::default(),
    };
    if let ConfigSource::File(path) = &source {
        config.resolve_paths(path.parent().unwrap_or(Path::new("")));
    }
    let env: Vec<(String, String)> =
        env.into_iter().filter(|(k, _)| k.starts_with("GATEHOUSE_") && !RESERVED_ENV.contains(&k.as_str())).collect();
    apply_env(&mut config, &mut origins, env.clone())?;
    Ok(Loaded { config, source, origins, env })
}

/// Where a file stops being UTF-8, as an editor shows it (line, column) and as a hex dump shows
/// it (byte offset).
fn not_utf8(path: &Path, bytes: &[u8], err: std::str::Utf8Error) -> ConfigError {
    let offset = err.valid_up_to();
    let before = &bytes[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() as u64 + 1;
    let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..]).chars().count() as u64 + 1;
    ConfigError::Invalid {
        path: path.display().to_string(),
        line,
        column,
        message: format!(
            "not valid UTF-8 (byte offset {offset}, byte 0x{:02x}); save the file as UTF-8",
            bytes[offset]
        ),
    }
}

/// True when a file holds nothing but comments and whitespace (an empty YAML document).
fn is_blank_yaml(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    })
}

pub(crate) fn yaml_error(path: &str, err: &serde_saphyr::Error) -> ConfigError {
    let plain = err.without_snippet().to_string();
    let first = plain.lines().next().unwrap_or_default();
    // Advice addressed to programmers using the parser, not to the operator editing the file.
    let first = first.split(", set DuplicateKeyPolicy").next().unwrap_or(first);
    let message = strip_location_suffix(first).to_string();
    match err.location() {
        Some(at) => ConfigError::Invalid { path: path.into(), line: at.line(), column: at.column(), message },
        None => ConfigError::Read { path: path.into(), message },
    }
}

/// serde-saphyr appends ` at line L column C` to plain messages; the location is already in
/// front of ours.
fn strip_location_suffix(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => &message[..i],
        _ => message,
    }
}

fn apply_env(
    config: &mut Config,
    origins: &mut BTreeMap<String, Origin>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let mut overrides: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("GATEHOUSE_"))
        .filter(|(k, _)| !RESERVED_ENV.contains(&k.as_str()))
        .filter(|(k, _)| !RESERVED_ENV_PREFIXES.iter().any(|p| k.starts_with(p)))
        .collect();
    if overrides.is_empty() {
        return Ok(());
    }
    overrides.sort();
    // Secrets serialize as `***`: hold them aside through the round trip below, and put back
    // those no variable replaced.
    let held: Vec<Secret> = config.secrets_mut().into_iter().map(|(_, s)| std::mem::take(s)).collect();
    let mut tree = serde_json::to_value(&*config).expect("config serializes");
    for (var, raw) in &overrides {
        let env_err = |message: String| ConfigError::Env { var: var.clone(), message };
        let path: Vec<String> = var["GATEHOUSE_".len()..].to_lowercase().split("__").map(String::from).collect();
        let slot = path
            .iter()
            .try_fold(&mut tree, |node, key| node.get_mut(key.as_str()))
            .ok_or_else(|| env_err(format!("`{}` is not a configuration key", path.join("."))))?;
        *slot = coerce(slot, raw).map_err(env_err)?;
        // Deserialize after each override so an error names the variable that caused it.
        serde_json::from_value::<Config>(tree.clone())
            .map_err(|e| env_err(format!("`{raw}` is not valid for `{}`: {e}", path.join("."))))?;
        origins.insert(path[0].clone(), Origin::Env(var.clone()));
    }
    *config = serde_json::from_value(tree).expect("validated above");
    for ((path, secret), held) in config.secrets_mut().into_iter().zip(held) {
        let var = format!("GATEHOUSE_{}", path.replace('.', "__").to_uppercase());
        if !overrides.iter().any(|(k, _)| *k == var) {
            *secret = held;
        }
    }
    Ok(())
}

/// Turns an environment string into a value of the same JSON shape as the key it replaces.
fn coerce(current: &Value, raw: &str) -> Result<Value, String> {
    let raw = raw.trim();
    match current {
        Value::Bool(_) => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Value::Bool(true)),
            "false" | "0" | "no" | "off" => Ok(Value::Bool(false)),
            _ => Err(format!("`{raw}` is not a boolean; expected true or false")),
        },
        Value::Number(_) => serde_json::from_str::<serde_json::Number>(raw)
            .map(Value::Number)
            .map_err(|_| format!("`{raw}` is not a number")),
        Value::Array(_) => {
            if raw.starts_with('[') {
                serde_json::from_str(raw).map_err(|e| format!("`{raw}` is not a JSON list: {e}"))
            } else {
                Ok(Value::Array(
                    raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| Value::String(s.into())).collect(),
                ))
            }
        }
        Value::Object(_) => Err("is a section, not a value; set one of its keys".into()),
        _ => Ok(Value::String(raw.into())),
    }
}
