//! `system_url.reachable`: system_url leads to *this* gatehouse. DNS → connect → GET
//! `{system_url}.well-known/gatehouse`, which must answer with this deployment's instance id and
//! must not redirect to another host or scheme (a redirect there moves visitors off the cookie's
//! host: "login details incorrect"). It asks several times, on fresh connections, and compares
//! where each answering node keeps its data: nodes behind one name that do not share storage (a
//! folder copied to each) make users loop between the login page and the client area.

use std::time::{Duration, Instant};

use crate::doctor::check::{Check, CheckFuture, Meta, Outcome, judged};
use crate::doctor::context::Context;
use crate::doctor::model::Status;
use crate::net::encounters::{self, Kind};
use crate::net::http::{self, Trace};
use crate::store::settings;

pub struct Reachable;

static META: Meta = Meta {
    id: "system_url.reachable",
    title: "System URL reaches this instance",
    tags: &["system_url", "network"],
    symptom: "\"Login details incorrect\"; reset links that open another site or fail.",
    cause: "system_url's name resolves to another server, the web server or proxy in front redirects to another \
            host or scheme, another deployment (staging, an old server) answers at that address, or the nodes \
            behind it keep their own storage (a folder copied to each) instead of sharing one.",
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
            let started = Instant::now();
            let budget = ctx.network_budget();
            let trace = http::get(&target, resolver, budget, None).await;
            let outcome = judge(url, &target, &trace, ours.as_deref());
            let Some(ours) = ours.filter(|_| outcome.status == Status::Pass) else { return Ok(outcome) };
            // Behind one name there may be several nodes: ask again, on fresh connections, for
            // up to half the budget left, and compare where each answer keeps its data.
            let mut answers: Vec<Answer> = Answer::of(&trace).into_iter().collect();
            let until = started + budget / 2;
            for _ in 1..PROBES {
                let left = until.saturating_duration_since(Instant::now());
                if left < Duration::from_millis(50) {
                    break;
                }
                answers.extend(Answer::of(&http::get(&target, resolver, left, None).await));
            }
            // Served (it has an instance id), so `serve` made the key too; an older serve did not,
            // and then its answers carry no storage id either: nothing to compare.
            let key = settings::existing_storage_key(accounts.db())
                .await
                .map_err(|e| Outcome::error(format!("cannot read this deployment's storage key: {e}")))?
                .unwrap_or_default();
            let mine = settings::storage_id(&key, &ours, &ctx.config().storage_files());
            let since = ctx.now() - 86_400;
            let unknown_sessions: i64 = encounters::since(accounts.db(), Kind::UnknownSession, since)
                .await
                .map_err(|e| Outcome::error(format!("cannot read what visitors met: {e}")))?
                .iter()
                .map(|c| c.count)
                .sum();
            Ok(judge_nodes(outcome, &answers, &mine, unknown_sessions))
        })
    }
}

/// How many times system_url is asked, to meet every node a load balancer spreads over (two
/// nodes in turn need two; six leave 1 in 32 to chance with two nodes picked at random).
const PROBES: usize = 6;

/// What one probe's answer said about the node behind it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
struct Answer {
    instance_id: String,
    /// Absent from gatehouse versions before storage ids.
    storage_id: Option<String>,
}

impl Answer {
    fn of(trace: &Trace) -> Option<Answer> {
        let v: serde_json::Value = serde_json::from_str(trace.body.as_deref()?).ok()?;
        (trace.status == Some(200)).then_some(())?;
        Some(Answer {
            instance_id: v["instance_id"].as_str()?.to_string(),
            storage_id: v["storage_id"].as_str().map(str::to_string),
        })
    }
}

/// The verdict once system_url reached this instance: every answer must come from a node that
/// keeps its data where this one does (`mine`). Nodes that answer with storage of their own —
/// a folder copied to each node, SQLite and all — each know only their own sessions: users
/// loop between the login page and the client area. `unknown_sessions` (session cookies shaped
/// like ours that named no session here, in the last day) is told as what users met.
fn judge_nodes(reached: Outcome, answers: &[Answer], mine: &str, unknown_sessions: i64) -> Outcome {
    let mut nodes: Vec<(&Answer, usize)> = Vec::new();
    for a in answers {
        match nodes.iter_mut().find(|(n, _)| *n == a) {
            Some((_, seen)) => *seen += 1,
            None => nodes.push((a, 1)),
        }
    }
    let elsewhere: Vec<&Answer> =
        nodes.iter().map(|(a, _)| *a).filter(|a| a.storage_id.as_deref().is_some_and(|s| s != mine)).collect();
    let evidence = |o: Outcome| {
        o.with("probes", answers.len())
            .with(
                "nodes",
                nodes
                    .iter()
                    .map(|(a, seen)| {
                        serde_json::json!({"instance_id": a.instance_id, "storage_id": a.storage_id,
                            "answers": seen, "shares_this_storage": a.storage_id.as_deref().map(|s| s == mine)})
                    })
                    .collect::<Vec<_>>(),
            )
            .with("this_storage_id", mine)
            .with("unknown_session_cookies_24h", unknown_sessions)
    };
    if elsewhere.is_empty() {
        let message = if nodes.len() > 1 || answers.len() > 1 {
            format!("{} ({} answers, all from nodes sharing this storage)", reached.message, answers.len())
        } else {
            reached.message.clone()
        };
        return evidence(Outcome { message, ..reached });
    }
    let named: Vec<String> = elsewhere.iter().filter_map(|a| a.storage_id.clone()).collect();
    evidence(Outcome::fail(format!(
        "system_url is answered by {} node(s) whose storage is not this one's ({mine}): {} — each keeps its own \
         accounts and sessions, so a session made on one is unknown to the next, and users loop between the login \
         page and the client area ({unknown_sessions} session cookie(s) unknown here in the last day)",
        named.len(),
        named.join(", ")
    )))
    .remediation(
        "Give every node behind system_url the same storage: one PostgreSQL database (`database_url`) and, with \
         `sessions.store: files`, one shared sessions folder — not a copy of the folder per node. Until then, send \
         each visitor to one node (sticky sessions at the load balancer).",
    )
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

    fn node(instance: &str, storage: Option<&str>) -> Answer {
        Answer { instance_id: instance.into(), storage_id: storage.map(str::to_string) }
    }

    #[test]
    fn nodes_sharing_storage_pass_and_a_node_with_its_own_is_named() {
        let reached = || Outcome::pass("reaches this instance");
        let shared = [node("i-1", Some("s-1")), node("i-1", Some("s-1")), node("i-1", Some("s-1"))];
        let one = judge_nodes(reached(), &shared, "s-1", 0);
        assert_eq!(one.status, Status::Pass);
        assert_eq!(one.evidence["nodes"][0]["answers"], 3);
        // An older gatehouse says nothing of its storage: nothing to compare, no alarm.
        assert_eq!(judge_nodes(reached(), &[node("i-1", None)], "s-1", 5).status, Status::Pass);

        let copied = [node("i-1", Some("s-1")), node("i-1", Some("s-2")), node("i-1", Some("s-1"))];
        let split = judge_nodes(reached(), &copied, "s-1", 7);
        assert_eq!(split.status, Status::Fail);
        assert!(split.message.contains("1 node(s) whose storage is not this one's (s-1): s-2"), "{}", split.message);
        assert!(split.message.contains("7 session cookie(s) unknown here"), "{}", split.message);
        assert_eq!(split.evidence["nodes"][1]["shares_this_storage"], false);
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
