//! `system_url.requests`: requests that really arrive on another host or scheme than system_url.
//! The session cookie is host-only for system_url's host, so a visitor on `www.` (or on plain
//! http when system_url is https) never gets a working session: "login details incorrect".

use super::{observed_requests, tally};
use crate::auth::sessions::cookie::CookieSettings;
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome};
use crate::doctor::context::Context;

pub struct Requests;

static META: Meta = Meta {
    id: "system_url.requests",
    title: "Requests arrive on system_url",
    tags: &["system_url", "sessions"],
    symptom: "\"Login details incorrect\" although the password is right, for some visitors only.",
    cause: "Visitors reach the client area on another host name (www. or a server name) or scheme than system_url; \
            the session cookie belongs to system_url's host, so their browser never sends it back.",
    next_steps: "Redirect every other host name and plain http to system_url at the web server or proxy, or set \
                 system_url to the address visitors use.",
    prerequisites: &["system_url.config", "database.connectivity"],
    thresholds: &["max_other_percent"],
    ..Meta::BASE
};

impl Check for Requests {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        Box::pin(async move {
            let Some(url) = ctx.config().system_url.url() else { return Outcome::skipped("system_url is not set") };
            let seen = match observed_requests(ctx).await {
                Ok(seen) => seen,
                Err(outcome) => return outcome,
            };
            let host = CookieSettings::from_system_url(url).authority;
            // Only a scheme a trusted proxy vouched for can be held against a request: without a
            // header every request looks like plain http (that case is sessions.cookie's).
            let elsewhere: Vec<_> =
                seen.iter().filter(|o| o.host != host || (o.scheme_from_proxy.0 && o.scheme != url.scheme())).collect();
            let percent = 100.0 * elsewhere.len() as f64 / seen.len() as f64;
            let limit = ctx.threshold(META.id, "max_other_percent", 10.0);
            let base = |o: Outcome| {
                o.with("expected", format!("{}://{host}", url.scheme()))
                    .with("observed_requests", seen.len())
                    .with("elsewhere", elsewhere.len())
                    .with("elsewhere_percent", (percent * 10.0).round() / 10.0)
                    .with("by_origin", tally(&elsewhere, |o| format!("{}://{}", o.scheme, o.host)))
            };
            if elsewhere.is_empty() {
                return base(Outcome::pass(format!("all {} observed requests arrived on {host}", seen.len())));
            }
            let message = format!(
                "{} of {} observed requests ({percent:.0} %) arrived on another host or scheme than {url}: \
                 those visitors get no working session",
                elsewhere.len(),
                seen.len()
            );
            let remediation = format!(
                "Redirect the other names to {url} with a 301 at the web server or proxy (or fix system_url if \
                 visitors are meant to use them)."
            );
            base(if percent > limit { Outcome::fail(message) } else { Outcome::warn(message) }).remediation(remediation)
        })
    }
}
