//! The effective configuration with every secret replaced by `***`.

use super::Config;

const MASK: &str = "***";

impl Config {
    /// A copy that is safe to print, log or put in a support bundle.
    pub fn redacted(&self) -> Config {
        let mut c = self.clone();
        c.database_url = c.database_url.redacted().parse().unwrap_or_else(|_| c.database_url.clone());
        for secret in [&mut c.twofa.duo.client_secret, &mut c.mail.smtp.password, &mut c.license.key] {
            if !secret.is_empty() {
                *secret = MASK.into();
            }
        }
        c
    }

    /// The redacted configuration as YAML.
    pub fn to_redacted_yaml(&self) -> String {
        serde_saphyr::to_string(&self.redacted()).expect("config serializes")
    }
}
