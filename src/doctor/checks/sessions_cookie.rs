//! `sessions.cookie`: the session cookie can only work when the scheme and host visitors use
//! match what system_url says. Browsers drop a Secure cookie on plain http (a new session on every
//! request: the login redirect loop), and never send a host-only cookie to another host.

use super::{is_local, observed_requests_if_any, tally};
use crate::auth::sessions::cookie::{COOKIE_NAME, CookieSettings};
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome};
use crate::doctor::context::Context;
use crate::net::encounters::{self, Kind};
use crate::net::observations::Observation;

pub struct Cookie;

static META: Meta = Meta {
    id: "sessions.cookie",
    title: "Session cookie fits how visitors arrive",
    tags: &["sessions", "system_url", "proxy"],
    symptom: "The login page keeps coming back after a correct login (redirect loop), or \"login details incorrect\".",
    cause: "The session cookie is Secure when system_url is https, and browsers drop Secure cookies on plain http; \
            it is host-only for system_url's host. Visitors on plain http, or a TLS proxy that gatehouse does not \
            trust (so it cannot tell https from http), break it.",
    next_steps: "Serve the client area only over https when system_url is https (redirect http to https at the \
                 proxy), list the proxy in trusted_proxies.ranges, and have it send X-Forwarded-Proto.",
    prerequisites: &["system_url.config", "database.connectivity"],
    config: &["system_url", "trusted_proxies"],
    ..Meta::BASE
};

impl Check for Cookie {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        Box::pin(async move {
            let Some(url) = ctx.config().system_url.url() else { return Outcome::skipped("system_url is not set") };
            match observed_requests_if_any(ctx).await {
                Ok(seen) => judge(url, &seen, &forms_met(ctx).await),
                Err(outcome) => outcome,
            }
        })
    }
}

/// What forms met in the last day: how many passed the CSRF checks, and the refusals by cause.
#[derive(Debug, Default, serde::Serialize)]
struct FormsMet {
    accepted: i64,
    refused: std::collections::BTreeMap<String, i64>,
    /// When a form last passed, and when one was last refused for want of the cookie.
    last_accepted_at: Option<i64>,
    last_cookie_missing_at: Option<i64>,
}

impl FormsMet {
    /// Refusals because the session cookie did not come back to system_url's host: what a
    /// cookie the browser drops looks like from the server.
    fn cookie_missing(&self) -> i64 {
        COOKIE_MISSING.iter().filter_map(|cause| self.refused.get(*cause)).sum()
    }

    /// Still happening: no form has passed since the last refusal for want of the cookie (once
    /// the cause is fixed, the next form that passes says so).
    fn still_refusing(&self) -> bool {
        self.last_cookie_missing_at > self.last_accepted_at
    }
}

/// The refusal causes (`web::csrf::Refusal::cause`) of a session cookie that did not come back.
const COOKIE_MISSING: [&str; 2] = ["no session cookie came back", "session ended before the form was sent"];

async fn forms_met(ctx: &Context) -> FormsMet {
    let Ok(accounts) = ctx.accounts().await else { return FormsMet::default() };
    let since = ctx.now() - 86_400;
    let counts = |kind| encounters::since(accounts.db(), kind, since);
    let (accepted, refused) = (counts(Kind::FormAccepted).await, counts(Kind::FormRefused).await);
    let (accepted, refused) = (accepted.unwrap_or_default(), refused.unwrap_or_default());
    FormsMet {
        accepted: accepted.iter().map(|c| c.count).sum(),
        last_accepted_at: accepted.iter().map(|c| c.last_at).max(),
        last_cookie_missing_at: refused
            .iter()
            .filter(|c| COOKIE_MISSING.contains(&c.detail.as_str()))
            .map(|c| c.last_at)
            .max(),
        refused: refused.into_iter().map(|c| (c.detail, c.count)).collect(),
    }
}

/// Refused forms below this count, or below half of all forms, are a browser here and there
/// (an expired tab, a bot posting without cookies), not a cookie that never comes back.
const FORMS_REFUSED_MIN: i64 = 10;

/// The verdict on the session cookie `serve` sets for `url`, and on what the requests `seen`
/// and the `forms` posted show of it: a Secure cookie over plain http fails; a scheme no proxy
/// vouched for, a cookie without Secure off this machine, or most forms refused for want of
/// the session cookie, warns. (A visitor can post forms without cookies: the refusals raise a
/// question, and no fix is drawn from them.)
fn judge(url: &url::Url, seen: &[Observation], forms: &FormsMet) -> Outcome {
    let host = url.host_str().unwrap_or_default().to_string();
    // The cookie exactly as `serve` sets it.
    let settings = CookieSettings::from_system_url(url);
    let (secure, authority) = (settings.secure, &settings.authority);
    let cookie = serde_json::json!({
        "name": COOKIE_NAME, "secure": secure, "path": settings.path,
        "domain": format!("{host} (host-only)"), "http_only": true, "same_site": "Lax",
    });
    let on_host: Vec<_> = seen.iter().filter(|o| &o.host == authority).collect();
    let plain_http = on_host.iter().filter(|o| o.scheme_from_proxy.0 && o.scheme == "http").count();
    let unvouched: Vec<_> = on_host.iter().filter(|o| !o.scheme_from_proxy.0).collect();
    let base = |o: Outcome| {
        o.with("cookie", &cookie)
            .with("observed_requests", seen.len())
            .with("on_system_url_host", on_host.len())
            .with("plain_http_via_proxy", plain_http)
            .with("scheme_not_vouched", unvouched.len())
            .with("peers_without_proto_header", tally(&unvouched, |o| o.peer_ip.clone()))
            .with("forms_last_day", forms)
    };
    if secure && plain_http > 0 {
        return base(Outcome::fail(format!(
            "{plain_http} requests reached {host} over plain http (as the proxy reports) while the session \
             cookie is Secure: browsers drop it there, so every such request starts a new session"
        )))
        .remediation(format!("Redirect http://{authority}/ to {url} at the proxy (HTTP 301)."));
    }
    if secure && !unvouched.is_empty() {
        return base(Outcome::warn(format!(
            "system_url is https, but {} of {} requests on {host} came without a trusted \
             X-Forwarded-Proto or CF-Visitor: gatehouse cannot tell whether those visitors use https",
            unvouched.len(),
            on_host.len()
        )))
        .remediation(
            "Add the TLS proxy's address to trusted_proxies.ranges and have it send X-Forwarded-Proto \
             (nginx: `proxy_set_header X-Forwarded-Proto $scheme;`).",
        );
    }
    if !secure && !is_local(&host) {
        return base(Outcome::warn(format!(
            "system_url is plain http on {host}: the session cookie travels without Secure, readable by \
             anyone on the network path"
        )))
        .remediation(format!("Serve the client area over https and set system_url to https://{authority}/."));
    }
    let missing = forms.cookie_missing();
    let all_forms = forms.accepted + forms.refused.values().sum::<i64>();
    if missing >= FORMS_REFUSED_MIN && 2 * missing >= all_forms && forms.still_refusing() {
        return base(Outcome::warn(format!(
            "{missing} of {all_forms} forms in the last day were refused as \"Invalid CSRF token\" because the \
             session cookie did not come back: browsers are not keeping it (a proxy that changes the scheme or \
             host, a Secure cookie on http), or a script posts without it"
        )))
        .remediation(
            "Open the login page as a user does and look at the cookie in the browser's tools: if it is \
             missing or refused, see the scheme and host evidence above; if it is there, the refusals are a \
             script's.",
        );
    }
    let how = if on_host.is_empty() {
        "no requests observed yet".to_string()
    } else {
        // Only host and scheme are judged here; the path visitors use is system_url.requests'.
        format!("{} observed requests on {host} match its host and scheme", on_host.len())
    };
    base(Outcome::pass(format!(
        "session cookie is {}host-only for {host}, path {}; {how}",
        if secure { "Secure, " } else { "" },
        url.path()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::checks::request;
    use crate::doctor::model::Status;
    use crate::net::observations::Flag;

    fn system_url(url: &str) -> url::Url {
        url.parse().expect("a URL")
    }

    fn via_proxy(scheme: &str) -> Observation {
        Observation { scheme_from_proxy: Flag(true), ..request("clients.example.com", scheme, "10.0.0.2") }
    }

    #[test]
    fn https_vouched_for_by_the_proxy_passes() {
        let outcome = judge(
            &system_url("https://clients.example.com/"),
            &[via_proxy("https"), via_proxy("https")],
            &FormsMet::default(),
        );
        assert_eq!(outcome.status, Status::Pass);
        assert_eq!(
            outcome.message,
            "session cookie is Secure, host-only for clients.example.com, path /; 2 observed requests on \
             clients.example.com match its host and scheme"
        );
    }

    #[test]
    fn plain_http_with_a_secure_cookie_fails() {
        let outcome = judge(
            &system_url("https://clients.example.com/"),
            &[via_proxy("https"), via_proxy("http")],
            &FormsMet::default(),
        );
        assert_eq!(outcome.status, Status::Fail);
        assert!(
            outcome.message.starts_with("1 requests reached clients.example.com over plain http"),
            "{}",
            outcome.message
        );
    }

    #[test]
    fn a_scheme_no_proxy_vouched_for_warns_and_names_the_peer() {
        let seen = [request("clients.example.com", "http", "10.0.0.7")];
        let outcome = judge(&system_url("https://clients.example.com/"), &seen, &FormsMet::default());
        assert_eq!(outcome.status, Status::Warn);
        assert_eq!(outcome.evidence["peers_without_proto_header"][0][0], "10.0.0.7");
    }

    #[test]
    fn plain_http_warns_off_this_machine_only() {
        assert_eq!(judge(&system_url("http://clients.example.com/"), &[], &FormsMet::default()).status, Status::Warn);
        let local = judge(&system_url("http://localhost:8080/"), &[], &FormsMet::default());
        assert_eq!(local.status, Status::Pass);
        assert!(local.message.ends_with("no requests observed yet"), "{}", local.message);
    }

    #[test]
    fn most_forms_refused_for_want_of_the_cookie_warns_and_a_few_do_not() {
        let forms = |accepted, missing| FormsMet {
            accepted,
            last_accepted_at: Some(100),
            last_cookie_missing_at: Some(200),
            refused: [("no session cookie came back".to_string(), missing), ("sent from another site".to_string(), 40)]
                .into(),
        };
        let url = system_url("http://localhost:8080/");
        assert_eq!(judge(&url, &[], &forms(100, 9)).status, Status::Pass, "a few: expired tabs, bots");
        assert_eq!(judge(&url, &[], &forms(100, 30)).status, Status::Pass, "under half of all forms");
        let most = judge(&url, &[], &forms(10, 60));
        assert_eq!(most.status, Status::Warn);
        assert!(most.message.starts_with("60 of 110 forms in the last day"), "{}", most.message);
        assert_eq!(most.evidence["forms_last_day"]["refused"]["sent from another site"], 40);
        let since_fixed = FormsMet { last_accepted_at: Some(300), ..forms(10, 60) };
        assert_eq!(judge(&url, &[], &since_fixed).status, Status::Pass, "a form passed since the last refusal");
    }
}
