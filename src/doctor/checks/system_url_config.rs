//! `system_url.config`: links and cookies derive from the System URL, so a wrong one means
//! "login details incorrect" and "invalid reset link".

use super::is_local;
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome};
use crate::doctor::context::Context;
use crate::doctor::fix::Fix;

pub struct Config;

static META: Meta = Meta {
    id: "system_url.config",
    title: "System URL well-formed",
    tags: &["system_url", "sessions"],
    symptom: "\"Login details incorrect\" although the password is right; \"the reset link you have followed is invalid\".",
    cause: "The URL users browse to does not match system_url: session cookies are scoped to system_url's host \
            and path, and reset links are built from it.",
    next_steps: "Set system_url to exactly the address users type, scheme and path included, with a trailing slash.",
    config: &["system_url", "twofa"],
    explains: &["system_url.reachable", "system_url.requests", "sessions.cookie"],
    ..Meta::BASE
};

impl Check for Config {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        Box::pin(async move {
            let origin = ctx.loaded.origin("system_url");
            let Some(url) = ctx.config().system_url.url() else {
                return Outcome::fail("system_url is not set: reset links and cookies have no origin")
                    .with("configured_in", &origin);
            };
            let host = url.host_str().unwrap_or_default().to_string();
            let evidence = |o: Outcome| {
                o.with("system_url", url.as_str())
                    .with("scheme", url.scheme())
                    .with("host", &host)
                    .with("path", url.path())
                    .with("configured_in", &origin)
            };
            evidence(judge(url, ctx.config().twofa.passkeys))
        })
    }
}

/// The verdict on a set system_url configured at `origin` (the loader already refused
/// credentials, a query or a fragment): a path without its trailing slash joins links wrongly
/// (fixable when the value is in a file); plain http on a public name makes logins loop for
/// users who arrive over https; an IP address cannot be a WebAuthn relying party, so with
/// `passkeys` on, nobody can add or use one.
fn judge(url: &url::Url, passkeys: bool) -> Outcome {
    if !url.path().ends_with('/') {
        let outcome = Outcome::warn(format!(
            "system_url path `{}` has no trailing slash: links will be joined wrongly",
            url.path()
        ))
        .remediation(format!("Set system_url to {}/", url.as_str()));
        return outcome.fixable(Fix::set("system_url", format!("{}/", url.as_str())));
    }
    let host = url.host_str().unwrap_or_default();
    if url.scheme() == "http" && !is_local(host) {
        return Outcome::warn(format!(
            "system_url is plain http on {host}: session cookies are not Secure; if users reach the site over \
             https, logins will loop"
        ))
        .remediation("Serve the client area over https and set system_url to its https:// address.");
    }
    if passkeys && url.domain().is_none() {
        return Outcome::warn(format!(
            "system_url's host {host} is an IP address: browsers refuse passkeys there (WebAuthn needs a domain \
             name as the relying party), so the passkey buttons are hidden"
        ))
        .with("passkeys", true)
        .remediation(
            "Set system_url to the name people reach the site by (for a machine of your own, localhost), or turn \
             passkeys off with twofa.passkeys: false.",
        );
    }
    Outcome::pass(format!("links and cookies derive from {url}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::model::Status;

    fn judged(url: &str) -> Outcome {
        judge(&url::Url::parse(url).unwrap(), false)
    }

    #[test]
    fn links_join_wrongly_without_the_slash() {
        let slashless = judged("https://billing.example.com/portal");
        assert_eq!(slashless.status, Status::Warn);
        assert_eq!(slashless.fix, Some(Fix::set("system_url", "https://billing.example.com/portal/")));
    }

    #[test]
    fn with_passkeys_on_an_ip_address_warns_and_a_name_does_not() {
        let at = |url: &str, passkeys| judge(&url::Url::parse(url).unwrap(), passkeys);
        let ip = at("http://127.0.0.1:8080/", true);
        assert_eq!(ip.status, Status::Warn);
        assert!(ip.message.contains("browsers refuse passkeys"), "{}", ip.message);
        assert_eq!(at("http://[::1]:8080/", true).status, Status::Warn);
        assert_eq!(at("http://127.0.0.1:8080/", false).status, Status::Pass, "passkeys off: nothing to say");
        assert_eq!(at("http://localhost:8080/", true).status, Status::Pass);
        assert_eq!(at("https://billing.example.com/", true).status, Status::Pass);
    }

    #[test]
    fn plain_http_warns_except_on_this_machine() {
        assert_eq!(judged("http://billing.example.com/").status, Status::Warn);
        assert_eq!(judged("http://localhost:8080/").status, Status::Pass);
        assert_eq!(judged("https://billing.example.com/").status, Status::Pass);
    }
}
