//! Triage by symptom: the thirteen rows of the troubleshooting seed, each with the words users
//! and admins report and the checks that explain it, most likely cause first. `doctor --symptom
//! NAME` runs those checks and ranks what they found; every problem in a report names the
//! symptoms it explains.

use std::collections::BTreeMap;

use serde::Serialize;

use super::check::Meta;
use super::model::{CheckResult, Report, Status, Triage};

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
            "system_url.reachable",
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
        checks: &["sessions.gc", "cron.activity", "fleet.drift"],
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
        checks: &["email.transport", "email.queue", "cron.activity", "fleet.drift"],
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

impl Symptom {
    /// The checks `doctor --symptom` runs: the row's own, most likely first, then every check
    /// whose finding can cause one of them (transitively: a full disk, then what it explains), so
    /// a cause is judged even where the row does not name it.
    pub fn checks_with_causes(&self) -> Vec<&'static str> {
        let metas = metas();
        let mut out: Vec<&'static str> = self.checks.to_vec();
        let mut next = 0;
        while next < out.len() {
            let effect = out[next];
            for m in &metas {
                if m.explains.contains(&effect) && !out.contains(&m.id) {
                    out.push(m.id);
                }
            }
            next += 1;
        }
        out
    }
}

fn metas() -> Vec<&'static Meta> {
    super::checks::builtin().iter().map(|c| c.meta()).collect()
}

/// The names of the symptoms that check `id` can explain, itself or through what it causes.
pub fn explained_by(id: &str) -> Vec<&'static str> {
    ALL.iter().filter(|s| s.checks_with_causes().contains(&id)).map(|s| s.name).collect()
}

pub fn triage(symptom: &'static Symptom, report: &Report) -> Triage {
    let checks = symptom.checks_with_causes();
    let order = |id: &str| checks.iter().position(|c| *c == id).unwrap_or(usize::MAX);
    let metas = metas();
    let explains = |cause: &str, effect: &str| metas.iter().any(|m| m.id == cause && m.explains.contains(&effect));
    let found: Vec<&CheckResult> = report.results.iter().filter(|r| r.status.severity() > 0).collect();
    let follows_from: BTreeMap<String, Vec<String>> = found
        .iter()
        .map(|effect| {
            let causes = found.iter().filter(|c| explains(&c.id, &effect.id)).map(|c| c.id.clone()).collect();
            (effect.id.clone(), causes)
        })
        .filter(|(_, causes): &(String, Vec<String>)| !causes.is_empty())
        .collect();
    // How many found causes stand above a result, along the longest chain (a chain that loops
    // stops where it would repeat).
    fn depth(id: &str, follows_from: &BTreeMap<String, Vec<String>>, seen: &mut Vec<String>) -> usize {
        let Some(causes) = follows_from.get(id) else { return 0 };
        seen.push(id.to_string());
        let mut deepest = 0;
        for cause in causes {
            if !seen.contains(cause) {
                deepest = deepest.max(1 + depth(cause, follows_from, seen));
            }
        }
        seen.pop();
        deepest
    }
    let mut ranked = found.clone();
    ranked.sort_by_key(|r| {
        (depth(&r.id, &follows_from, &mut Vec::new()), std::cmp::Reverse(r.status.severity()), order(&r.id))
    });
    let named = |rs: Vec<&CheckResult>| rs.into_iter().map(|r| r.id.clone()).collect();
    Triage {
        symptom: symptom.name.into(),
        reported: symptom.reported.into(),
        likely_causes: named(ranked),
        follows_from,
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

    /// A report in which each `(id, status)` was found.
    fn report_of(found: &[(&str, Status)]) -> Report {
        let mut report = Report::could_not_start("-");
        report.results = found
            .iter()
            .map(|(id, status)| CheckResult { id: id.to_string(), status: *status, ..report.results[0].clone() })
            .collect();
        report
    }

    #[test]
    fn a_cause_outranks_what_it_explains_whatever_their_severity() {
        let piling_up = find("sessions-not-removed").unwrap();
        let report = report_of(&[("sessions.gc", Status::Fail), ("cron.activity", Status::Warn)]);
        let t = triage(piling_up, &report);
        assert_eq!(t.likely_causes, ["cron.activity", "sessions.gc"]);
        assert_eq!(t.follows_from["sessions.gc"], ["cron.activity"]);

        // Sessions that cannot be written: the full disk first, then the store it breaks.
        let looping = find("login-loop").unwrap();
        let report = report_of(&[
            ("sessions.storage", Status::Fail),
            ("sessions.cookie", Status::Warn),
            ("disk.space", Status::Fail),
        ]);
        assert_eq!(triage(looping, &report).likely_causes, ["disk.space", "sessions.cookie", "sessions.storage"]);
    }

    #[test]
    fn a_symptoms_checks_bring_their_causes() {
        let unsent = find("emails-unsent").unwrap().checks_with_causes();
        assert!(unsent.contains(&"fleet.drift"), "cron run from a copy with its own configuration: {unsent:?}");
        let looping = find("login-loop").unwrap().checks_with_causes();
        assert!(looping.contains(&"disk.permissions") && looping.starts_with(&["sessions.storage"]), "{looping:?}");
    }

    #[test]
    fn what_a_check_explains_exists_and_no_cause_explains_itself() {
        let ids: Vec<&str> = metas().iter().map(|m| m.id).collect();
        for m in metas() {
            for effect in m.explains {
                assert!(ids.contains(effect), "{} explains {effect}, which is no check", m.id);
            }
            // Follow what it explains: it must never come back to itself.
            let mut reached: Vec<&str> = m.explains.to_vec();
            let mut next = 0;
            while next < reached.len() {
                let further = metas().into_iter().find(|c| c.id == reached[next]).map_or(&[][..], |c| c.explains);
                for e in further {
                    if !reached.contains(e) {
                        reached.push(e);
                    }
                }
                next += 1;
            }
            assert!(!reached.contains(&m.id), "{} explains itself through {reached:?}", m.id);
        }
    }

    #[test]
    fn every_check_explains_at_least_one_symptom() {
        for check in crate::doctor::checks::builtin() {
            assert!(!explained_by(check.meta().id).is_empty(), "{} explains no symptom", check.meta().id);
        }
    }
}
