//! `sessions.cookie`: the session cookie can only work when the scheme and host visitors use
//! match what system_url says. Browsers drop a Secure cookie on plain http (a new session on every
//! request: the login redirect loop), and never send a host-only cookie to another host.

use super::{is_local, observed_requests_if_any, tally};
use crate::auth::sessions::cookie::{COOKIE_NAME, CookieSettings};
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome};
use crate::doctor::context::Context;
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
                Ok(seen) => judge(url, &seen),
                Err(outcome) => outcome,
            }
        })
    }
}

/// The verdict on the session cookie `serve` sets for `url`, and on what the requests `seen`
/// show of it: a Secure cookie over plain http fails; a scheme no proxy vouched for, or a
/// cookie without Secure off this machine, warns.
fn judge(url: &url::Url, seen: &[Observation]) -> Outcome {
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
        let outcome = judge(&system_url("https://clients.example.com/"), &[via_proxy("https"), via_proxy("https")]);
        assert_eq!(outcome.status, Status::Pass);
        assert_eq!(
            outcome.message,
            "session cookie is Secure, host-only for clients.example.com, path /; 2 observed requests on \
             clients.example.com match its host and scheme"
        );
    }

    #[test]
    fn plain_http_with_a_secure_cookie_fails() {
        let outcome = judge(&system_url("https://clients.example.com/"), &[via_proxy("https"), via_proxy("http")]);
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
        let outcome = judge(&system_url("https://clients.example.com/"), &seen);
        assert_eq!(outcome.status, Status::Warn);
        assert_eq!(outcome.evidence["peers_without_proto_header"][0][0], "10.0.0.7");
    }

    #[test]
    fn plain_http_warns_off_this_machine_only() {
        assert_eq!(judge(&system_url("http://clients.example.com/"), &[]).status, Status::Warn);
        let local = judge(&system_url("http://localhost:8080/"), &[]);
        assert_eq!(local.status, Status::Pass);
        assert!(local.message.ends_with("no requests observed yet"), "{}", local.message);
    }
}
