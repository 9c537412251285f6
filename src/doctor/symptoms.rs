//! Triage by symptom: the thirteen rows of the troubleshooting seed, each with the words users
//! and admins report and the checks that explain it, most likely cause first. `doctor --symptom
//! NAME` runs those checks and ranks what they found; every problem in a report names the
//! symptoms it explains.

use serde::{Deserialize, Serialize};

use super::model::{CheckResult, Report, Status};

#[derive(Debug, Serialize)]
pub struct Symptom {
    /// What to type after `--symptom`.
    pub name: &'static str,
    /// What people report, in their words (the seed's "Error or Issue").
    pub reported: &'static str,
    /// The seed's cause.
    pub cause: &'static str,
    /// The checks that can explain it, the usual cause first.
    pub checks: &'static [&'static str],
}

pub const ALL: &[Symptom] = &[
    Symptom {
        name: "cloudflare",
        reported: "Running behind a CloudFlare proxy, but proxy settings are not configured; login sessions end \
                   prematurely",
        cause: "CloudFlare's edge addresses are not trusted, so every visitor appears as a rotating edge IP",
        checks: &["proxy.cloudflare", "proxy.trusted", "sessions.lifetime"],
    },
    Symptom {
        name: "frequent-logouts",
        reported: "Admins or users report that the system frequently logged them out",
        cause: "session settings, a proxy or CDN that is not trusted, no disk space, or the visitor's IP changing",
        checks: &[
            "sessions.lifetime",
            "proxy.trusted",
            "proxy.cloudflare",
            "disk.space",
            "sessions.storage",
            "sessions.cookie",
            "time.clock",
            "fleet.drift",
        ],
    },
    Symptom {
        name: "license-key-invalid",
        reported: "Your license key is invalid",
        cause: "a license check ran from a non-web context (cron, CLI) whose location differs",
        checks: &["license.validity"],
    },
    Symptom {
        name: "license-invalid",
        reported: "License Invalid",
        cause: "a wrong key, or the installation moved (domain, IP or directory) without a reissue",
        checks: &["license.validity", "license.connectivity"],
    },
    Symptom {
        name: "login-details-incorrect",
        reported: "Login Details Incorrect. Please try again.",
        cause: "the URL used to log in does not match system_url",
        checks: &[
            "system_url.requests",
            "system_url.config",
            "sessions.cookie",
            "system_url.reachable",
            "proxy.lockouts",
            "accounts.password_hashes",
            "fleet.drift",
        ],
    },
    Symptom {
        name: "login-loop",
        reported: "Redirected back to the login page without an error, or \"Invalid CSRF token\"",
        cause: "sessions are not kept: the store is missing or unwritable, the disk is full, or the cookie never \
                comes back",
        checks: &[
            "sessions.storage",
            "sessions.cookie",
            "system_url.requests",
            "disk.space",
            "disk.permissions",
            "database.connectivity",
        ],
    },
    Symptom {
        name: "no-connection",
        reported: "No Connection",
        cause: "this server cannot reach the licensing server (DNS, firewall, TLS, HTTP)",
        checks: &["license.connectivity", "time.clock"],
    },
    Symptom {
        name: "access-denied",
        reported: "Oops! Access Denied",
        cause: "the admin's role lacks a permission, or an admin logs in as a client whose owner has no password",
        checks: &["admin.roles", "accounts.integrity", "license.validity"],
    },
    Symptom {
        name: "sessions-not-removed",
        reported: "The system is not removing sessions",
        cause: "session garbage collection does not run",
        checks: &["sessions.gc", "cron.activity"],
    },
    Symptom {
        name: "invalid-reset-link",
        reported: "The reset link you have followed is invalid. Please try again.",
        cause: "system_url does not match the URL the user used to reach the reset page",
        checks: &["system_url.config", "system_url.requests", "system_url.reachable", "time.clock"],
    },
    Symptom {
        name: "emails-unsent",
        reported: "General emails (sign-up, password reset) are not sent",
        cause: "mail transport misconfigured, or the queue is not delivered",
        checks: &["email.transport", "email.queue", "cron.activity"],
    },
    Symptom {
        name: "duo",
        reported: "Duo Security login failed: invalid_client: Integration type does not support frameless access",
        cause: "credentials of an old Auth API application; the Universal Prompt needs a Web SDK application's",
        checks: &["twofa.duo", "time.clock"],
    },
    Symptom {
        name: "timezone",
        reported: "Timezone-related issues in the client area or while running automation",
        cause: "the web server's and the cron's time zone differ, or one is misconfigured",
        checks: &["time.timezone", "time.clock", "fleet.drift"],
    },
];

/// A symptom as a person names it: its name in any case and spacing (`Frequent logouts`), or
/// the words users report, whole or their beginning (`Login Details Incorrect`, `Oops! Access
/// Denied`, `Your license key is invalid`).
pub fn find(typed: &str) -> Option<&'static Symptom> {
    let typed = words(typed);
    if typed.is_empty() {
        return None;
    }
    let said = |s: &Symptom| {
        let reported = words(s.reported);
        reported == typed || (typed.len() >= 12 && reported.starts_with(&format!("{typed} ")))
    };
    ALL.iter().find(|s| words(s.name) == typed).or_else(|| ALL.iter().find(|s| said(s)))
}

/// The symptom name nearest to a typo, as clap suggests a subcommand.
pub fn nearest(typed: &str) -> Option<&'static str> {
    let typed = words(typed);
    ALL.iter()
        .map(|s| (strsim::jaro_winkler(&words(s.name), &typed), s.name))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name)
}

/// Lower-case words separated by single spaces: `Login-Details  Incorrect.` → `login details incorrect`.
fn words(text: &str) -> String {
    text.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// The names of the symptoms that check `id` can explain.
pub fn explained_by(id: &str) -> Vec<&'static str> {
    ALL.iter().filter(|s| s.checks.contains(&id)).map(|s| s.name).collect()
}

/// A symptom's checks, judged: likely causes ranked (fail, error and timeout before warn; then
/// in the symptom's order of likelihood), those ruled out (passed), and those that could not
/// tell (skipped, blocked, waived).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Triage {
    pub symptom: String,
    pub reported: String,
    pub likely_causes: Vec<String>,
    pub ruled_out: Vec<String>,
    pub undecided: Vec<String>,
}

pub fn triage(symptom: &'static Symptom, report: &Report) -> Triage {
    let order = |id: &str| symptom.checks.iter().position(|c| *c == id).unwrap_or(usize::MAX);
    let mut found: Vec<&CheckResult> = report.results.iter().filter(|r| r.status.severity() > 0).collect();
    // Results of prerequisites that failed explain it too (a database that is down).
    found.sort_by_key(|r| (std::cmp::Reverse(r.status.severity()), order(&r.id)));
    let named = |rs: Vec<&CheckResult>| rs.into_iter().map(|r| r.id.clone()).collect();
    Triage {
        symptom: symptom.name.into(),
        reported: symptom.reported.into(),
        likely_causes: named(found),
        ruled_out: named(report.results.iter().filter(|r| r.status == Status::Pass).collect()),
        undecided: named(
            report
                .results
                .iter()
                .filter(|r| matches!(r.status, Status::Skipped | Status::Blocked | Status::Waived))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn symptoms_are_found_in_the_words_people_use() {
        use super::{find, nearest};
        let name = |typed: &str| find(typed).map(|s| s.name);
        assert_eq!(name("frequent logouts"), Some("frequent-logouts"));
        assert_eq!(name("Frequent-Logouts"), Some("frequent-logouts"));
        assert_eq!(name("Login Details Incorrect"), Some("login-details-incorrect"));
        assert_eq!(name("Your license key is invalid"), Some("license-key-invalid"));
        assert_eq!(name("Oops! Access Denied"), Some("access-denied"));
        assert_eq!(name("License Invalid"), Some("license-invalid"));
        assert_eq!(name("logouts"), None);
        assert_eq!(nearest("frequnt-logouts"), Some("frequent-logouts"));
        assert_eq!(nearest("zzz"), None);
    }

    use super::*;

    #[test]
    fn every_row_of_the_seed_has_a_symptom_whose_checks_exist() {
        assert_eq!(ALL.len(), 13, "the troubleshooting seed has thirteen rows");
        let ids: Vec<&str> = crate::doctor::checks::builtin().iter().map(|c| c.meta().id).collect();
        for s in ALL {
            for c in s.checks {
                assert!(ids.contains(c), "{}: no check {c}", s.name);
            }
        }
        let names: std::collections::BTreeSet<_> = ALL.iter().map(|s| s.name).collect();
        assert_eq!(names.len(), ALL.len(), "names are unique");
    }

    #[test]
    fn every_check_explains_at_least_one_symptom() {
        for check in crate::doctor::checks::builtin() {
            assert!(!explained_by(check.meta().id).is_empty(), "{} explains no symptom", check.meta().id);
        }
    }
}
