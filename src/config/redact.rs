//! The effective configuration with every secret replaced by `***`.

use super::Config;

impl Config {
    /// A copy that is safe to print, log or put in a support bundle.
    pub fn redacted(&self) -> Config {
        // The `Secret` fields print and serialize as `***` by themselves; the database URL is
        // a URL that may carry a password.
        let mut c = self.clone();
        c.database_url = c.database_url.redacted().parse().unwrap_or_else(|_| c.database_url.clone());
        c
    }

    /// The configuration as YAML with every secret in clear: only for `report --no-redact`,
    /// which an operator asks for by name.
    pub fn to_unredacted_yaml(&mut self) -> String {
        let mut tree = serde_json::to_value(&*self).expect("config serializes");
        for (path, secret) in self.secrets_mut() {
            if let Some(slot) = path.split('.').try_fold(&mut tree, |node, key| node.get_mut(key)) {
                *slot = serde_json::Value::String(secret.expose().to_owned());
            }
        }
        serde_saphyr::to_string(&tree).expect("config serializes")
    }

    /// The redacted configuration as YAML.
    pub fn to_redacted_yaml(&self) -> String {
        serde_saphyr::to_string(&self.redacted()).expect("config serializes")
    }
}
