//! `system_url.reachable`: system_url leads to *this* gatehouse. DNS → connect → GET
//! `{system_url}.well-known/gatehouse`, which must answer with this deployment's instance id and
//! must not redirect to another host or scheme (a redirect there moves visitors off the cookie's
//! host: "login details incorrect").

use crate::doctor::check::{Check, CheckFuture, Meta, Outcome, judged};
use crate::doctor::context::Context;
use crate::net::http::{self, Trace};
use crate::store::settings;

pub struct Reachable;

static META: Meta = Meta {
    id: "system_url.reachable",
    title: "System URL reaches this instance",
    tags: &["system_url", "network"],
    symptom: "\"Login details incorrect\"; reset links that open another site or fail.",
    cause: "system_url's name resolves to another server, the web server or proxy in front redirects to another \
            host or scheme, or another deployment (staging, an old server) answers at that address.",
    next_steps: "Point system_url's DNS at the server running `gatehouse serve`, proxy it through unchanged, and \
                 make the proxy redirect other names to system_url rather than the reverse.",
    prerequisites: &["system_url.config", "database.connectivity"],
    config: &["system_url"],
    ..Meta::BASE
};

impl Check for Reachable {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        judged(async move {
            let Some(url) = ctx.config().system_url.url() else {
                return Err(Outcome::skipped("system_url is not set"));
            };
            let accounts = ctx.accounts().await?;
            let ours = settings::existing_instance_id(accounts.db())
                .await
                .map_err(|e| Outcome::error(format!("cannot read this deployment's instance id: {e}")))?;
            let target = url
                .join(".well-known/gatehouse")
                .map_err(|e| Outcome::error(format!("cannot build the probe URL from {url}: {e}")))?;
            let resolver = ctx.resolver().await.map_err(Outcome::error)?;
            let trace = http::get(&target, resolver, ctx.network_budget(), None).await;
            Ok(judge(url, &target, &trace, ours.as_deref()))
        })
    }
}

/// The verdict on what answered the probe `target` under system_url `url`: this instance
/// (`ours`, when this database has been served) passes; anything else is named.
fn judge(url: &url::Url, target: &url::Url, trace: &Trace, ours: Option<&str>) -> Outcome {
    let answered: Option<serde_json::Value> = trace.body.as_deref().and_then(|b| serde_json::from_str(b).ok());
    let their_id = answered.as_ref().and_then(|v| v["instance_id"].as_str()).map(str::to_string);
    let base = |o: Outcome| {
        o.with("probe", target.as_str())
            .with("phases", &trace.phases)
            .with("http_status", trace.status)
            .with("location", &trace.location)
            .with("expected_instance_id", ours)
            .with("answered_instance_id", &their_id)
    };
    if let Some(failure) = trace.failure() {
        // A phase that hangs is a finding (named, with its likely cause), not a timeout.
        return base(Outcome::fail(format!("system_url does not answer: {failure}"))).remediation(
            "Start `gatehouse serve` (and the proxy in front of it) and make system_url's name resolve to it.",
        );
    }
    let status = trace.status.unwrap_or(0);
    if (300..400).contains(&status) {
        let location = trace.location.clone().unwrap_or_default();
        let moved = target.join(&location).ok();
        let same_origin = moved.as_ref().is_some_and(|m| m.origin() == url.origin());
        let message = format!("{target} redirects (HTTP {status}) to {location}");
        return base(if same_origin {
            Outcome::warn(format!("{message}: the web server rewrites gatehouse's paths"))
        } else {
            Outcome::fail(format!(
                "{message}, another host or scheme than system_url: visitors sent there lose their session"
            ))
            .remediation(format!(
                "Either set system_url to the address the redirect leads to, or remove the redirect so {url} \
                 is served directly."
            ))
        });
    }
    let Some(theirs) = their_id.as_deref().filter(|_| status == 200) else {
        return base(Outcome::fail(format!(
            "{target} answered HTTP {status}, but not as gatehouse: another site is served at system_url"
        )));
    };
    match ours {
        Some(ours) if ours == theirs => base(Outcome::pass(format!("{url} reaches this instance ({theirs})"))),
        Some(ours) => base(Outcome::fail(format!(
            "{url} reaches another gatehouse instance ({theirs}), not this one ({ours}): a different server \
             or database answers there"
        ))),
        None => base(Outcome::warn(format!(
            "{url} reaches a gatehouse instance ({theirs}), but this database has never been served: the \
             instance there uses another database"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::model::Status;

    const SYSTEM_URL: &str = "https://clients.example.com/";

    fn probe(trace: &Trace, ours: Option<&str>) -> Outcome {
        let url: url::Url = SYSTEM_URL.parse().expect("a URL");
        judge(&url, &url.join(".well-known/gatehouse").expect("a URL"), trace, ours)
    }

    fn answered(status: u16, body: &str, location: Option<&str>) -> Trace {
        Trace {
            status: Some(status),
            body: Some(body.into()),
            location: location.map(str::to_string),
            ..Trace::default()
        }
    }

    #[test]
    fn this_instance_passes_and_another_one_fails() {
        let gatehouse = answered(200, r#"{"instance_id":"i-1"}"#, None);
        assert_eq!(probe(&gatehouse, Some("i-1")).status, Status::Pass);
        let other = probe(&gatehouse, Some("i-2"));
        assert_eq!(other.status, Status::Fail);
        assert!(
            other.message.contains("reaches another gatehouse instance (i-1), not this one (i-2)"),
            "{}",
            other.message
        );
        assert_eq!(probe(&gatehouse, None).status, Status::Warn, "this database was never served");
    }

    #[test]
    fn a_redirect_off_the_origin_fails_and_one_on_it_warns() {
        let away = probe(&answered(301, "", Some("https://www.example.com/.well-known/gatehouse")), Some("i-1"));
        assert_eq!(away.status, Status::Fail);
        assert!(away.message.contains("another host or scheme than system_url"), "{}", away.message);
        let rewritten = probe(&answered(302, "", Some("/index.php")), Some("i-1"));
        assert_eq!(rewritten.status, Status::Warn);
    }

    #[test]
    fn another_site_at_system_url_fails() {
        let outcome = probe(&answered(200, "<html>Welcome to nginx</html>", None), Some("i-1"));
        assert_eq!(outcome.status, Status::Fail);
        assert!(
            outcome.message.ends_with("answered HTTP 200, but not as gatehouse: another site is served at system_url")
        );
        let not_found = probe(&answered(404, r#"{"instance_id":"i-1"}"#, None), Some("i-1"));
        assert_eq!(not_found.status, Status::Fail, "only a 200 counts as gatehouse answering");
    }
}
