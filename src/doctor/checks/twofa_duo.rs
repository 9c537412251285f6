//! `twofa.duo`: Duo Universal Prompt credentials and reachability.

use crate::auth::duo::{Duo, credential_problems};
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome};
use crate::doctor::context::Context;

pub struct DuoCheck;

static META: Meta = Meta {
    id: "twofa.duo",
    title: "Duo two-factor works",
    tags: &["twofa", "duo", "network"],
    symptom: "Duo login fails, e.g. \"Integration type does not support frameless access\".",
    cause: "The keys belong to an old Duo Auth API (iframe) application; the Universal Prompt needs a Web SDK \
            application's Client ID, Client Secret and API hostname. Or the API host is unreachable.",
    next_steps: "In the Duo Admin Panel, protect a new \"Web SDK\" application and copy its Client ID (20 \
                 characters), Client secret (40) and API hostname into twofa.duo.",
    config: &["twofa"],
    ..Meta::BASE
};

impl Check for DuoCheck {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        Box::pin(async move {
            let config = ctx.config();
            let duo = &config.twofa.duo;
            if duo.client_id.is_empty() {
                return Outcome::skipped("Duo is not configured (twofa.duo.client_id is empty)");
            }
            let base = |o: Outcome| o.with("client_id", &duo.client_id).with("api_hostname", &duo.api_hostname);
            let problems = credential_problems(duo);
            if !problems.is_empty() {
                return base(Outcome::fail(format!(
                    "the Duo credentials do not look like Web SDK keys: {}",
                    problems.join("; ")
                )))
                .with("problems", &problems)
                .remediation(META.next_steps);
            }
            let system_url =
                config.system_url.url().cloned().unwrap_or_else(|| "http://localhost/".parse().expect("static"));
            let client = match Duo::from_config(duo, &system_url) {
                Ok(Some(c)) => c,
                Ok(None) => return Outcome::skipped("Duo is not configured"),
                Err(e) => return Outcome::error(e.to_string()),
            };
            let answer = tokio::time::timeout(ctx.network_budget(), client.health_check()).await;
            base(judge(answer.ok().map(|r| r.map_err(|e| e.to_string()))))
        })
    }
}

/// The verdict on Duo's answer to the health check (`None`: none in time). Duo says
/// "frameless" when the keys belong to an old iframe application.
fn judge(answer: Option<Result<(), String>>) -> Outcome {
    match answer {
        None => Outcome::fail("the Duo health check did not answer in time")
            .remediation("Check that this host can reach the API hostname over HTTPS (firewall, DNS)."),
        Some(Ok(())) => Outcome::pass("the Duo health check answered OK"),
        Some(Err(e)) if e.contains("frameless") => Outcome::fail(format!("Duo refused the keys: {e}"))
            .with("duo_error", &e)
            .remediation(format!("These keys are from an old Auth API / iframe application. {}", META.next_steps)),
        Some(Err(e)) => Outcome::fail(format!("the Duo health check failed: {e}"))
            .with("duo_error", &e)
            .remediation("Check the API hostname and the client secret; Duo's message says which is wrong."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::model::Status;

    #[test]
    fn old_iframe_keys_are_named_as_such() {
        let refused = judge(Some(Err("40002: Integration type does not support frameless access".into())));
        assert_eq!(refused.status, Status::Fail);
        assert!(refused.remediation.as_deref().is_some_and(|r| r.starts_with("These keys are from an old Auth API")));
        let other = judge(Some(Err("40301: invalid signature".into())));
        assert!(other.remediation.as_deref().is_some_and(|r| r.contains("client secret")));
    }

    #[test]
    fn an_answer_passes_and_silence_fails() {
        assert_eq!(judge(Some(Ok(()))).status, Status::Pass);
        assert_eq!(judge(None).message, "the Duo health check did not answer in time");
    }
}
