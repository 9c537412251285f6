//! `http`: a URL answers with the expected status, body text, headers or redirect target.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::unmet;
use crate::doctor::check::Outcome;
use crate::doctor::context::Context;
use crate::net::http;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    url: String,
    #[serde(default = "ok")]
    status: u16,
    #[serde(default)]
    body_contains: Option<String>,
    /// Header name → text its value must contain.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// The `Location` a redirect must point to (prefix).
    #[serde(default)]
    redirect_to: Option<String>,
    /// For https: fail when the certificate expires in fewer days.
    #[serde(default)]
    min_tls_days: Option<i64>,
    /// For https: a PEM file of extra trusted CA certificates (an internal CA).
    #[serde(default)]
    ca_file: Option<String>,
}

fn ok() -> u16 {
    200
}

impl Spec {
    fn parsed(&self) -> Result<url::Url, String> {
        let u = url::Url::parse(&self.url).map_err(|e| format!("http url `{}`: {e}", self.url))?;
        if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
            return Err(format!("http url `{}` must be an absolute http:// or https:// URL", self.url));
        }
        Ok(u)
    }

    pub async fn run(&self, ctx: &Context) -> Outcome {
        let url = match self.parsed() {
            Ok(u) => u,
            Err(e) => return Outcome::error(e),
        };
        let resolver = match ctx.resolver().await {
            Ok(r) => r,
            Err(e) => return Outcome::error(e),
        };
        let trace =
            http::get(&url, resolver, ctx.network_budget(), self.ca_file.as_deref().map(std::path::Path::new)).await;
        let base = |o: Outcome| {
            o.with("url", url.as_str())
                .with("phases", &trace.phases)
                .with("http_status", trace.status)
                .with("location", &trace.location)
                .with("tls_days_left", trace.tls_days_left)
                .with("tls_not_after", &trace.tls_not_after)
        };
        if let Some(failure) = trace.failure() {
            return base(unmet(format!("{url}: {failure}")));
        }
        let status = trace.status.unwrap_or(0);
        if status != self.status {
            return base(unmet(format!("{url} answered HTTP {status}, expected {}", self.status)));
        }
        if let Some(want) = &self.redirect_to
            && !trace.location.as_deref().is_some_and(|l| l.starts_with(want.as_str()))
        {
            return base(unmet(format!("{url} redirects to {:?}, expected {want}", trace.location)));
        }
        for (name, want) in &self.headers {
            let name = name.to_ascii_lowercase();
            let found = trace.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str());
            if !found.is_some_and(|v| v.contains(want.as_str())) {
                return base(unmet(format!("header {name} is {found:?}, expected it to contain {want:?}")));
            }
        }
        if let (Some(min), Some(days)) = (self.min_tls_days, trace.tls_days_left)
            && days < min
        {
            return base(unmet(format!("the certificate of {url} expires in {days} day(s), fewer than {min}")));
        }
        if let Some(needle) = &self.body_contains
            && !trace.body.as_deref().is_some_and(|b| b.contains(needle.as_str()))
        {
            return base(unmet(format!("the body of {url} does not contain {needle:?}")));
        }
        base(Outcome::pass(format!("{url} answered HTTP {status} as expected")))
    }
}

impl super::ProbeKind for Spec {
    fn name(&self) -> &'static str {
        "http"
    }

    fn validate(&self) -> Result<(), String> {
        self.parsed().map(|_| ())
    }

    fn probe<'a>(&'a self, ctx: &'a crate::doctor::context::Context) -> crate::doctor::check::CheckFuture<'a> {
        Box::pin(self.run(ctx))
    }
}
