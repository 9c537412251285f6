//! `system_url.requests`: requests that really arrive on another host or scheme than system_url.
//! The session cookie is host-only for system_url's host, so a visitor on `www.` (or on plain
//! http when system_url is https) never gets a working session: "login details incorrect".
//! Its path is the cookie's Path too, so visitors browsing outside it (the site served at `/`
//! while system_url says `/clients`) never send the cookie back: every login loops.

use super::{observed_requests, tally};
use crate::auth::sessions::cookie::CookieSettings;
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome};
use crate::doctor::context::Context;
use crate::doctor::fix::Fix;
use crate::net::observations::Observation;

pub struct Requests;

static META: Meta = Meta {
    id: "system_url.requests",
    title: "Requests arrive on system_url",
    tags: &["system_url", "sessions"],
    symptom: "\"Login details incorrect\" although the password is right, for some visitors only.",
    cause: "Visitors reach the client area on another host name (www. or a server name), scheme or path than \
            system_url; the session cookie belongs to system_url's host and path, so their browser never sends it \
            back.",
    next_steps: "Redirect every other host name and plain http to system_url at the web server or proxy, or set \
                 system_url to the address visitors use.",
    prerequisites: &["system_url.config", "database.connectivity"],
    thresholds: &["max_other_percent"],
    config: &["system_url"],
    // Moving system_url moves every link and the cookie: only ever on request.
    explicit_fix: true,
    ..Meta::BASE
};

impl Check for Requests {
    fn meta(&self) -> &'static Meta {
        &META
    }

    /// system_url at the path visitors really use (found when the site is served at `/`).
    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        Box::pin(async move {
            let Some(url) = ctx.config().system_url.url() else { return Outcome::skipped("system_url is not set") };
            let seen = match observed_requests(ctx).await {
                Ok(seen) => seen,
                Err(outcome) => return outcome,
            };
            let limit = ctx.threshold(META.id, "max_other_percent", 10.0);
            judge(url, &seen, limit, &ctx.config().listen)
        })
    }
}

/// The Host a proxy sends when it does not pass the visitor's: the address it connects to —
/// `serve`'s own (`listen`, or a loopback name with its port) or an upstream's name without a
/// dot (`proxy_pass http://gatehouse;`).
fn is_upstream_address(host: &str, listen: &str) -> bool {
    let port = |hostport: &str| hostport.rsplit_once(':').map(|(_, p)| p.to_string());
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h).trim_matches(['[', ']']);
    let loopback = name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    host == listen.to_ascii_lowercase()
        || (loopback && port(host).is_some() && port(host) == port(listen))
        || (!name.contains('.')
            && !name.contains(':')
            && name != "localhost"
            && name.parse::<std::net::IpAddr>().is_err())
}

/// The request came through a proxy gatehouse trusts (it named the client or the scheme). A
/// forwarding header from anyone else is a visitor's claim, and says nothing of a proxy.
fn via_proxy(o: &Observation) -> bool {
    o.scheme_from_proxy.0 || o.client_ip != o.peer_ip
}

/// The verdict on the observed requests (`seen`, at least one) against system_url: some on
/// another host or scheme warn, more than `limit` percent of them fail; requests through a proxy
/// whose Host is the proxy's upstream address (`serve` listens on `listen`) fail with the proxy
/// line to add, since redirecting that name would not help.
fn judge(url: &url::Url, seen: &[Observation], limit: f64, listen: &str) -> Outcome {
    let host = CookieSettings::from_system_url(url).authority;
    // Only a scheme a trusted proxy vouched for can be held against a request: without a
    // header every request looks like plain http (that case is sessions.cookie's).
    // A proxy passes Host for every request or for none: once one came through with the right
    // Host, the upstream addresses before it are history (the proxy was fixed since).
    let proxy_passes_host_since = seen.iter().rposition(|o| via_proxy(o) && o.host == host);
    let fixed_since = |i: usize, o: &Observation| {
        proxy_passes_host_since.is_some_and(|since| i < since) && via_proxy(o) && is_upstream_address(&o.host, listen)
    };
    let elsewhere: Vec<_> = seen
        .iter()
        .enumerate()
        .filter(|(i, o)| !fixed_since(*i, o))
        .map(|(_, o)| o)
        .filter(|o| o.host != host || (o.scheme_from_proxy.0 && o.scheme != url.scheme()))
        .collect();
    let percent = 100.0 * elsewhere.len() as f64 / seen.len() as f64;
    let base = |o: Outcome| {
        o.with("expected", format!("{}://{host}", url.scheme()))
            .with("observed_requests", seen.len())
            .with("elsewhere", elsewhere.len())
            .with("elsewhere_percent", (percent * 10.0).round() / 10.0)
            .with("by_origin", tally(&elsewhere, |o| format!("{}://{}", o.scheme, o.host)))
    };
    if let Some(outcome) = outside_the_path(url, seen) {
        return base(outcome);
    }
    if elsewhere.is_empty() {
        return base(Outcome::pass(format!("all {} observed requests arrived on {host}", seen.len())));
    }
    let upstream: Vec<&&Observation> =
        elsewhere.iter().filter(|o| via_proxy(o) && is_upstream_address(&o.host, listen)).collect();
    if upstream.len() * 2 > elsewhere.len() {
        let hosts = tally(&upstream, |o| o.host.clone());
        // A visitor can write any Host through a proxy that passes it: a few are a question,
        // only more than `limit` percent of all requests is the proxy's doing.
        let share = 100.0 * upstream.len() as f64 / seen.len() as f64;
        let found = if share > limit { Outcome::fail } else { Outcome::warn };
        return base(found(format!(
            "{} of {} observed requests came through a proxy with Host: {} — the address the proxy connects to, \
             not the name visitors typed: the proxy does not pass the visitor's Host header, so no session \
             cookie for {host} ever comes back",
            upstream.len(),
            seen.len(),
            hosts.iter().map(|(h, _)| h.as_str()).collect::<Vec<_>>().join(", ")
        )))
        .remediation(
            "Make the proxy pass the Host visitors used. nginx, in the location that proxies to gatehouse: \
             `proxy_set_header Host $http_host;`; Apache: `ProxyPreserveHost On`; Caddy passes it unless told \
             otherwise (remove `header_up Host …`). A redirect would not help: visitors already use the right name.",
        );
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
}

/// Different client addresses whose pages must lie outside system_url's path before that is
/// evidence enough to offer moving it.
const MIN_VISITORS: usize = 3;

/// Visitors whose pages (their same-host Referer) lie outside system_url's path, when they are
/// most of those who sent one: the session cookie, whose Path is system_url's, never comes back.
fn outside_the_path(url: &url::Url, seen: &[Observation]) -> Option<Outcome> {
    let path = CookieSettings::from_system_url(url).path;
    let base = path.trim_end_matches('/');
    let inside = |p: &str| base.is_empty() || p == base || p.starts_with(&format!("{base}/"));
    let pages: Vec<&Observation> = seen.iter().filter(|o| !o.page_path.is_empty()).collect();
    let outside: Vec<&Observation> = pages.iter().copied().filter(|o| !inside(&o.page_path)).collect();
    if outside.is_empty() || outside.len() * 2 < pages.len() {
        return None;
    }
    let visited = tally(&outside, |o| o.page_path.clone());
    // The page a visitor was on is what their browser (or they) wrote in Referer: one visitor
    // can claim anything. Only as many different client addresses as a site has visitors make
    // it evidence enough to move system_url.
    // Counted as the limiter counts clients: an IPv6 subscriber is one /64, not many addresses.
    let mut addresses: Vec<String> = outside.iter().map(|o| crate::auth::throttle::ip_key(&o.client_ip)).collect();
    addresses.sort_unstable();
    addresses.dedup();
    let vouched = addresses.len() >= MIN_VISITORS;
    // A page right under the root (`/login`, not `/billing/…`) means the site is served at `/`.
    let at_root = outside.iter().any(|o| !o.page_path[1..].contains('/'));
    let suggested = (at_root && vouched).then(|| {
        let mut root = url.clone();
        root.set_path("/");
        root.set_query(None);
        root.to_string()
    });
    let message = format!(
        "system_url's path is {path} — the session cookie's Path — but visitors browse outside it ({}): their \
         browsers never send the session cookie back, so every login loops back to the login page",
        visited.iter().map(|(p, n)| format!("{p} ×{n}")).collect::<Vec<_>>().join(", ")
    );
    let mut outcome = if vouched { Outcome::fail(message) } else { Outcome::warn(message) }
        .with("system_url_path", &path)
        .with("visited_paths", &visited)
        .with("visitor_addresses", addresses.len())
        .with("suggested_system_url", &suggested);
    outcome = match &suggested {
        Some(root) => outcome
            .remediation(format!(
                "The site is served at /: set system_url to {root} (`gatehouse doctor --fix system_url.requests` \
                 does it, with a backup) and restart `serve`; or serve the client area under {path} at the proxy."
            ))
            .fixable(Fix::set("system_url", root)),
        None if !vouched => outcome.remediation(format!(
            "Only {} visitor address(es) reported these pages (in their Referer, which a visitor can write): \
             check with a browser whether the site is served outside {path} before changing system_url.",
            addresses.len()
        )),
        None => outcome.remediation(format!(
            "Set system_url's path to the one visitors use, or serve the client area under {path} at the proxy."
        )),
    };
    Some(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::checks::request;
    use crate::doctor::model::Status;
    use crate::net::observations::Flag;

    const LISTEN: &str = "127.0.0.1:8080";

    #[test]
    fn a_proxy_that_does_not_pass_host_is_named_with_the_line_to_add() {
        let url = system_url("https://clients.example.com/");
        let through =
            |host: &str| Observation { client_ip: "203.0.113.9".into(), ..request(host, "https", "127.0.0.1") };
        for upstream in ["127.0.0.1:8080", "localhost:8080", "gatehouse", "[::1]:8080"] {
            let outcome = judge(&url, &[through(upstream), through(upstream)], 10.0, LISTEN);
            assert_eq!(outcome.status, Status::Fail, "{upstream}: {}", outcome.message);
            assert!(
                outcome.message.contains("the proxy does not pass the visitor's Host header"),
                "{}",
                outcome.message
            );
            assert!(outcome.remediation.as_deref().unwrap_or_default().contains("proxy_set_header Host $http_host;"));
        }
        // Visitors on another public name are still told to be redirected.
        let www = judge(&url, &[through("www.example.com"), through("www.example.com")], 10.0, LISTEN);
        assert!(www.remediation.as_deref().unwrap_or_default().contains("301"), "{:?}", www.remediation);
        // Once the proxy passes Host, the requests before are history.
        let mut fixed = vec![through("gatehouse"), through("gatehouse")];
        fixed.push(through("clients.example.com"));
        assert_eq!(judge(&url, &fixed, 10.0, LISTEN).status, Status::Pass);
        // One visitor's made-up Host among many clean requests: a question, not the proxy's fault.
        let mut mostly_clean: Vec<Observation> = (0..30).map(|_| through("clients.example.com")).collect();
        mostly_clean.push(through("gatehouse"));
        assert_eq!(judge(&url, &mostly_clean, 10.0, LISTEN).status, Status::Warn);
        // A forwarding header from a peer nobody trusted is not a proxy at all.
        let claimed = Observation { forwarded_untrusted: Flag(true), ..request("gatehouse", "https", "203.0.113.9") };
        let claim = judge(&url, &[claimed.clone(), claimed], 10.0, LISTEN);
        assert!(!claim.message.contains("does not pass"), "{}", claim.message);
        // The upstream address without a proxy in front: someone opened the port directly.
        let direct = judge(&url, &on("127.0.0.1:8080", 2), 10.0, LISTEN);
        assert!(!direct.message.contains("does not pass"), "{}", direct.message);
    }

    fn system_url(url: &str) -> url::Url {
        url.parse().expect("a URL")
    }

    fn on(host: &str, n: usize) -> Vec<Observation> {
        (0..n).map(|_| request(host, "http", "10.0.0.2")).collect()
    }

    /// One request on system_url's host from each of `pages` (its Referer's path).
    fn visiting(pages: &[&str]) -> Vec<Observation> {
        let from = |i: usize| request("clients.example.com", "https", &format!("10.0.0.{}", i + 2));
        pages.iter().enumerate().map(|(i, page)| Observation { page_path: page.to_string(), ..from(i) }).collect()
    }

    #[test]
    fn requests_on_another_host_warn_and_past_the_limit_fail() {
        let url = system_url("https://clients.example.com/");
        let mut seen = on("clients.example.com", 95);
        assert_eq!(judge(&url, &seen, 10.0, LISTEN).message, "all 95 observed requests arrived on clients.example.com");
        seen.extend(on("www.example.com", 5));
        let outcome = judge(&url, &seen, 10.0, LISTEN);
        assert_eq!(outcome.status, Status::Warn);
        assert!(
            outcome.message.starts_with("5 of 100 observed requests (5 %) arrived on another host"),
            "{}",
            outcome.message
        );
        assert_eq!(judge(&url, &seen, 4.0, LISTEN).status, Status::Fail);
    }

    #[test]
    fn only_a_scheme_a_proxy_vouched_for_counts_against_a_request() {
        let url = system_url("https://clients.example.com/");
        // Without a proxy's header every request looks like plain http: that is sessions.cookie's.
        assert_eq!(judge(&url, &on("clients.example.com", 3), 10.0, LISTEN).status, Status::Pass);
        let vouched: Vec<_> = on("clients.example.com", 3)
            .into_iter()
            .map(|o| Observation { scheme_from_proxy: Flag(true), ..o })
            .collect();
        assert_eq!(judge(&url, &vouched, 10.0, LISTEN).status, Status::Fail, "the proxy says these came over http");
    }

    #[test]
    fn visitors_outside_system_urls_path_loop_and_the_root_is_suggested() {
        let url = system_url("https://clients.example.com/billing/");
        let seen = visiting(&["/login", "/clientarea", "/account/security", "/billing/clientarea"]);
        let outcome = judge(&url, &seen, 10.0, LISTEN);
        assert_eq!(outcome.status, Status::Fail);
        assert!(outcome.message.starts_with("system_url's path is /billing/ "), "{}", outcome.message);
        assert_eq!(outcome.evidence["suggested_system_url"], "https://clients.example.com/");
        assert!(outcome.fix.is_some());
    }

    #[test]
    fn one_visitor_claiming_pages_outside_the_path_moves_nothing() {
        let url = system_url("https://clients.example.com/billing/");
        let one =
            |page: &str| Observation { page_path: page.into(), ..request("clients.example.com", "https", "10.0.0.9") };
        let seen: Vec<_> = ["/login", "/login", "/clientarea", "/login", "/login", "/login"].map(one).into();
        let outcome = judge(&url, &seen, 10.0, LISTEN);
        assert_eq!(outcome.status, Status::Warn);
        assert!(outcome.fix.is_none(), "a visitor's Referer never moves system_url");
        assert!(outcome.evidence["suggested_system_url"].is_null());
    }

    #[test]
    fn a_few_visitors_outside_the_path_are_not_the_site() {
        let url = system_url("https://clients.example.com/billing/");
        let seen = visiting(&["/login", "/billing/a", "/billing/b"]);
        assert_eq!(judge(&url, &seen, 10.0, LISTEN).status, Status::Pass);
    }
}
